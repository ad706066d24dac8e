"""Run ArcadeDB's embedded server with its Bolt plugin on 127.0.0.1, as a stand-in Neo4j for the tests.

``python tests/arcadedb_server.py ROOT BOLT_PORT HTTP_PORT PASSWORD`` starts the server (its own JVM,
bundled by the ``arcadedb-embedded`` wheel) in a child process, creates the database ``neo4j``, prints
``ready`` and serves until its standard input closes. The pytest fixture in tests/test_neo4j_store.py
starts and stops it; it runs in its own process so that the JVM never enters the test process.
"""
from __future__ import annotations

import sys


def main() -> None:
    root, bolt_port, http_port, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    import arcadedb_embedded

    server = arcadedb_embedded.create_server(
        root,
        root_password=password,
        config={
            "host": "127.0.0.1",  # every listener (HTTP, HTTPS, Bolt) on loopback only
            "http_port": http_port,
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": bolt_port,
        },
    )
    server.start()
    try:
        server.create_database("neo4j")
        print("ready", flush=True)
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
