"""Standalone reproduction of three durability problems of LadybugDB 0.22 (only `ladybug`, `numpy` and
`pyarrow` needed), for an upstream report. See docs/ladybug_durability.md for what it shows.

1. copy:    a transaction CREATEs a node and COPYs nodes and relationships, and commits; the process is
            killed during COMMIT (the post-commit checkpoint). After recovery the CREATEd node is there,
            the COPYed rows are not, though the commit was under way or had returned.
2. rebuild: a transaction DROPs a relationship table, creates it again and COPYs rows back; killed during
            COMMIT, the table comes back empty: every relationship is lost, not just the new ones.
3. torn-log: a transaction deletes many relationships; killed while COMMIT writes the log, the database
            then refuses to open ("Checksum verification failed, the WAL file is corrupted") unless opened
            with throw_on_wal_replay_failure=False.

    python docs/ladybug_durability.py            # 512-256-256-256-100 dense: 30-60 s
    python docs/ladybug_durability.py --dense    # 3072-1024-1024-1024-1000 (6.27 M relationships): minutes

Each scenario first runs once without a kill to time its COMMIT, then kills a fresh copy (SIGKILL) at
fractions of that time and reopens the database.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa

SMALL, DENSE = [512, 256, 256, 256, 100], [3072, 1024, 1024, 1024, 1000]


def dense_layers(widths):
    """Node ids and every relationship of a dense layered graph (layer l fully connected to l + 1)."""
    offsets = np.cumsum([0] + widths)
    src, dst = [], []
    for l in range(len(widths) - 1):
        a, b = np.meshgrid(np.arange(widths[l]), np.arange(widths[l + 1]), indexing="ij")
        src.append(a.ravel() + offsets[l])
        dst.append(b.ravel() + offsets[l + 1])
    src, dst = np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64)
    return np.arange(offsets[-1], dtype=np.int64), pa.table({"from": src, "to": dst, "w": np.ones(len(src), np.float32)})


def child(path: str, scenario: str, widths) -> None:
    """Prepare the database, then run the scenario's transaction, printing 'commit' just before COMMIT."""
    import ladybug

    db = ladybug.Database(path)
    conn = ladybug.Connection(db)
    conn.execute("CREATE NODE TABLE Marker(name STRING PRIMARY KEY)")
    conn.execute("CREATE NODE TABLE N(id INT64 PRIMARY KEY)")
    conn.execute("CREATE REL TABLE E(FROM N TO N, w FLOAT)")
    nodes, rels = dense_layers(widths)
    if scenario == "copy":  # a small graph first, then the big one in one transaction
        conn.execute("CREATE (:Marker {name: 'before'})")
        conn.execute("COPY N FROM $rows", {"rows": pa.table({"id": np.arange(10, dtype=np.int64) + (1 << 40)})})
        conn.execute("COPY E FROM $rows", {"rows": pa.table({
            "from": np.arange(9, dtype=np.int64) + (1 << 40), "to": np.arange(1, 10, dtype=np.int64) + (1 << 40),
            "w": np.ones(9, np.float32)})})
        conn.execute("CHECKPOINT")
        conn.execute("BEGIN TRANSACTION")
        conn.execute("CREATE (:Marker {name: 'big'})")
        conn.execute("COPY N FROM $rows", {"rows": pa.table({"id": nodes})})
        conn.execute("COPY E FROM $rows", {"rows": rels})
    else:  # the big graph first, checkpointed
        conn.execute("COPY N FROM $rows", {"rows": pa.table({"id": nodes})})
        conn.execute("COPY E FROM $rows", {"rows": rels})
        conn.execute("CHECKPOINT")
        conn.execute("BEGIN TRANSACTION")
        if scenario == "rebuild":  # every relationship but the last 1000, copied back into a new table
            conn.execute("DROP TABLE E")
            conn.execute("CREATE REL TABLE E(FROM N TO N, w FLOAT)")
            conn.execute("COPY E FROM $rows", {"rows": rels.slice(0, rels.num_rows - 1000)})
        else:  # torn-log: delete the relationships of the first two layers' sources
            conn.execute("MATCH (a:N)-[e:E]->() WHERE a.id < $n DELETE e", {"n": widths[0] + widths[1]})
    print("commit", flush=True)
    started = time.perf_counter()
    conn.execute("COMMIT")
    print(f"committed {time.perf_counter() - started:.3f}", flush=True)
    time.sleep(60)  # killed here at the latest


def look(path: str, read_only: bool = False, **options) -> str:
    """What a fresh process finds when it opens the database."""
    code = (
        "import ladybug, sys\n"
        f"db = ladybug.Database({path!r}, read_only={read_only}, **{options!r})\n"
        "c = ladybug.Connection(db)\n"
        "m = sorted(r[0] for r in c.execute('MATCH (m:Marker) RETURN m.name').get_all())\n"
        "n = c.execute('MATCH (n:N) RETURN count(*)').get_all()[0][0]\n"
        "e = c.execute('MATCH ()-[e:E]->() RETURN count(*)').get_all()[0][0]\n"
        "print(f'markers {m}, {n} nodes, {e} relationships')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if done.returncode:
        return "refused: " + (done.stderr.strip().splitlines() or ["?"])[-1][:160]
    return done.stdout.strip()


def run(scenario: str, widths, kill_after: float | None) -> tuple[float | None, str]:
    """Run the scenario in a child, SIGKILL it ``kill_after`` s into COMMIT (None: let it finish)."""
    directory = tempfile.mkdtemp(prefix=f"ladybug-{scenario}-")
    path = os.path.join(directory, "g.lbdb")
    process = subprocess.Popen([sys.executable, __file__, "child", path, scenario, ",".join(map(str, widths))],
                               stdout=subprocess.PIPE, text=True)
    while process.stdout.readline().strip() != "commit":
        pass
    if kill_after is None:
        took = float(process.stdout.readline().split()[1])
    else:
        time.sleep(kill_after)
        took = None
    process.send_signal(signal.SIGKILL)
    process.wait()
    try:
        if scenario == "torn-log":
            return took, f"default open: {look(path)} | throw_on_wal_replay_failure=False: " + look(
                path, throw_on_wal_replay_failure=False)
        return took, f"read-only open: {look(path, read_only=True)} | read-write open: {look(path)}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    import ladybug

    widths = DENSE if "--dense" in sys.argv else SMALL
    nodes, rels = dense_layers(widths)
    print(f"ladybug {ladybug.__version__}; dense {'-'.join(map(str, widths))}: {len(nodes):,} nodes, {rels.num_rows:,} relationships")
    for scenario in ("copy", "rebuild", "torn-log"):
        took, complete = run(scenario, widths, None)
        print(f"\n{scenario}: COMMIT took {took:.2f} s; not killed -> {complete}")
        fractions = (0.02, 0.05) if scenario == "torn-log" else (0.3, 0.6)
        for fraction in fractions:
            _, found = run(scenario, widths, took * fraction)
            print(f"  killed {took * fraction:.3f} s into COMMIT -> {found}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2], sys.argv[3], [int(w) for w in sys.argv[4].split(",")])
    else:
        main()
