"""DuckDB peer of the identity benchmark: connected components by iterated min-label propagation.

Usage: duckdb_min_label.py EDGES.parquet WARMUP RUNS THREADS

This is what warehouse identity tools run (RudderStack Profiles, dbt recipes): every pass gives each
identifier the smallest label among itself and its neighbours, until no label changes. To give DuckDB
its best case, identifiers are first interned into dense integers (timed, reported separately) and the
passes run over integers. Prints one line `BENCH-REPORT {json}` with the seconds of the timed runs, the
iterations, components, identifiers and the process's peak RSS (DuckDB runs in-process).
"""

import json
import resource
import sys
import time

import duckdb


def stitch(con, path):
    started = time.perf_counter()
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE raw AS
        SELECT a_type || ':' || a_value AS a,
               CASE WHEN b_value IS NOT NULL AND b_type IS NOT NULL THEN b_type || ':' || b_value END AS b
        FROM read_parquet(?)
        """,
        [path],
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE nodes AS
        SELECT id, (row_number() OVER ())::INTEGER AS n
        FROM (SELECT a AS id FROM raw UNION SELECT b FROM raw WHERE b IS NOT NULL)
        """
    )
    # Both directions of every distinct edge, plus a self-loop per node, so that one aggregate
    # computes min(own label, neighbours' labels) for every node.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE adjacency AS
        WITH e AS (
            SELECT DISTINCT na.n AS a, nb.n AS b
            FROM raw JOIN nodes na ON raw.a = na.id JOIN nodes nb ON raw.b = nb.id
            WHERE na.n <> nb.n
        )
        SELECT a AS src, b AS dst FROM e
        UNION ALL SELECT b, a FROM e
        UNION ALL SELECT n, n FROM nodes
        """
    )
    con.execute("CREATE OR REPLACE TEMP TABLE labels AS SELECT n AS node, n AS label FROM nodes")
    con.execute("DROP TABLE raw")
    intern_seconds = time.perf_counter() - started
    iterations = 0
    while True:
        iterations += 1
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE next_labels AS
            SELECT a.src AS node, min(l.label) AS label
            FROM adjacency a JOIN labels l ON a.dst = l.node
            GROUP BY a.src
            """
        )
        (changed,) = con.execute(
            "SELECT count(*) FROM next_labels n JOIN labels l USING (node) WHERE n.label <> l.label"
        ).fetchone()
        con.execute("DROP TABLE labels")
        con.execute("ALTER TABLE next_labels RENAME TO labels")
        if changed == 0:
            break
    (components, identifiers) = con.execute(
        "SELECT count(DISTINCT label), count(*) FROM labels"
    ).fetchone()
    for table in ("labels", "adjacency", "nodes"):
        con.execute(f"DROP TABLE {table}")
    return time.perf_counter() - started, intern_seconds, iterations, components, identifiers


def main():
    path, warmup, runs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")
    seconds, intern, passes = [], [], []
    result = None
    for run in range(warmup + runs):
        elapsed, intern_seconds, iterations, components, identifiers = stitch(con, path)
        print(
            f"duckdb run {run + 1}: {elapsed:.2f} s, {iterations} iterations, {components} components",
            file=sys.stderr,
        )
        if run >= warmup:
            seconds.append(elapsed)
            intern.append(intern_seconds)
            passes.append(iterations)
        # The interning numbers nodes in whatever order the parallel scan delivers them, so the
        # number of passes can differ by one or two between runs; the components cannot.
        if result is not None and result != (components, identifiers):
            raise SystemExit(f"runs disagree: {result} vs {(components, identifiers)}")
        result = (components, identifiers)
    components, identifiers = result
    report = {
        "seconds": seconds,
        "intern_seconds": sorted(intern)[len(intern) // 2],
        "iterations": sorted(passes)[len(passes) // 2],
        "components": components,
        "identifiers": identifiers,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "duckdb_version": duckdb.__version__,
    }
    print("BENCH-REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
