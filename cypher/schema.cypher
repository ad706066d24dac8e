// The archive's constraints and indexes on a Neo4j 5 server (Community edition: composite
// uniqueness constraints, no NODE KEY). netarchive creates them itself (`netarchive init`, and before the
// first ingest); run this file in Neo4j Browser only to create them by hand, e.g. before an offline
// `neo4j-admin database import`. Idempotent. Neo4j only: the embedded archive has its own DDL
// (netarchive/store/ladybug_schema.py). Kept equal to SCHEMA_CYPHER in netarchive/store/neo4j.py by a test.

// One Run node per run name.
CREATE CONSTRAINT run_name IF NOT EXISTS FOR (r:Run) REQUIRE r.name IS UNIQUE;
// A checkpoint is (run, level).
CREATE CONSTRAINT checkpoint_key IF NOT EXISTS FOR (c:Checkpoint) REQUIRE (c.run, c.level) IS UNIQUE;
// A neuron is (run, level, group, index); this constraint's index serves the synapse ingest seeks.
CREATE CONSTRAINT neuron_group_key IF NOT EXISTS FOR (n:Neuron) REQUIRE (n.run, n.level, n.`group`, n.`index`) IS UNIQUE;
// A neuron group of a checkpoint (reads, write-back), and all neurons of a checkpoint (rm).
CREATE INDEX neuron_group IF NOT EXISTS FOR (n:Neuron) ON (n.run, n.level, n.`group`);
CREATE INDEX neuron_checkpoint IF NOT EXISTS FOR (n:Neuron) ON (n.run, n.level);

// Wait until they are online before a large ingest.
CALL db.awaitIndexes(300);
