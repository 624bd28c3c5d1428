"""DuckDB peer of the rule-model benchmark: the rule models written by hand as window-function SQL.

Usage: duckdb_rule_models.py TOUCHES.parquet MODELS WARMUP RUNS THREADS
  MODELS: comma-separated, of linear, position_based, time_decay, last_non_direct

Each query reads the touches Parquet, computes every touch's weight with window functions partitioned
by conversion, and sums the weights per channel (the same query shape as phygital's, so neither side
materialises 50 M rows). Prints one line `BENCH-REPORT {json}`: per model the seconds of the timed
runs and the credit per channel.
"""

import json
import resource
import sys
import time

import duckdb

ORDER = "PARTITION BY conversion_id ORDER BY touch_ts, touch_id"

WEIGHTS = {
    "linear": "SELECT channel, 1.0 / count(*) OVER (PARTITION BY conversion_id) AS w FROM t",
    # 40 % first, 40 % last, 20 % shared by the middle; 1 touch -> 1, 2 touches -> 1/2, 1/2
    "position_based": f"""
        SELECT channel,
               CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5
                    WHEN rn = 1 OR rn = n THEN 0.4 ELSE 0.2 / (n - 2) END AS w
        FROM (SELECT channel, row_number() OVER ({ORDER}) AS rn,
                     count(*) OVER (PARTITION BY conversion_id) AS n
              FROM t)
        """,
    # weight 2^(-age / 7 days), normalised per conversion
    "time_decay": """
        SELECT channel, d / sum(d) OVER (PARTITION BY conversion_id) AS w
        FROM (SELECT channel, conversion_id,
                     pow(0.5, date_diff('microsecond', touch_ts, conversion_ts) / 604800000000.0) AS d
              FROM t)
        """,
    # the last touch that is not direct; the last touch when all are direct
    "last_non_direct": f"""
        SELECT channel, CASE WHEN rn = coalesce(last_non_direct, n) THEN 1.0 ELSE 0.0 END AS w
        FROM (SELECT channel, rn, n,
                     max(CASE WHEN lower(channel) NOT IN ('direct', '(direct)') THEN rn END)
                         OVER (PARTITION BY conversion_id) AS last_non_direct
              FROM (SELECT channel, conversion_id, row_number() OVER ({ORDER}) AS rn,
                           count(*) OVER (PARTITION BY conversion_id) AS n
                    FROM t))
        """,
}


def main():
    path, models = sys.argv[1], sys.argv[2].split(",")
    warmup, runs, threads = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    results = {}
    for model in models:
        sql = (
            f"WITH t AS (SELECT * FROM read_parquet('{path}')), weights AS ({WEIGHTS[model]}) "
            "SELECT channel, sum(w) AS credit FROM weights GROUP BY channel"
        )
        timings = []
        for run in range(warmup + runs):
            started = time.perf_counter()
            rows = con.execute(sql).fetchall()
            elapsed = time.perf_counter() - started
            print(f"duckdb {model} run {run + 1}: {elapsed:.2f} s", file=sys.stderr)
            if run >= warmup:
                timings.append(elapsed)
        results[model] = {"seconds": timings, "credit": {str(c): float(v) for c, v in rows}}
    report = {
        "seconds": [],
        "models": results,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "duckdb_version": duckdb.__version__,
    }
    print("BENCH-REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
