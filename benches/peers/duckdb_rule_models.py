"""DuckDB peer of the rule-model benchmark: the rule models written by hand in DuckDB SQL.

Usage: duckdb_rule_models.py FORM FILE.parquet MODELS WARMUP RUNS THREADS
  FORM: `window` (FILE holds one row per touch: conversion_id, touch_id, touch_ts, conversion_ts,
        channel) or `list` (FILE holds one row per conversion: conversion_id, path, touch_ts lists
        in time order, conversion_ts)
  MODELS: comma-separated, of linear, position_based, time_decay, last_non_direct

The window form computes every touch's weight with window functions partitioned by conversion; the
list form computes the weights from the lists (len, range, list_transform, list_sum) and unnests
them with the channels. Both sum the weights per channel (the same query shape as phygital's, so
neither side materialises 50 M rows). Prints one line `BENCH-REPORT {json}`: per model the seconds
of the timed runs and the credit per channel.
"""

import json
import resource
import sys
import time

import duckdb

ORDER = "PARTITION BY conversion_id ORDER BY touch_ts, touch_id"

# position_based: 40 % first, 40 % last, 20 % shared by the middle; 1 touch -> 1, 2 touches -> 1/2, 1/2
POSITION = "CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN rn = 1 OR rn = n THEN 0.4 ELSE 0.2 / (n - 2) END"
# time_decay: weight 2^(-age / 7 days), normalised per conversion
DECAY = "pow(0.5, date_diff('microsecond', {touch}, conversion_ts) / 604800000000.0)"
# last_non_direct: the last touch that is not direct; the last touch when all are direct
LAST_NON_DIRECT = "CASE WHEN rn = coalesce(last_non_direct, n) THEN 1.0 ELSE 0.0 END"
NOT_DIRECT = "lower({channel}) NOT IN ('direct', '(direct)')"

WINDOW_WEIGHTS = {
    "linear": "SELECT channel, 1.0 / count(*) OVER (PARTITION BY conversion_id) AS w FROM t",
    "position_based": f"""
        SELECT channel, {POSITION} AS w
        FROM (SELECT channel, row_number() OVER ({ORDER}) AS rn,
                     count(*) OVER (PARTITION BY conversion_id) AS n
              FROM t)
        """,
    "time_decay": f"""
        SELECT channel, d / sum(d) OVER (PARTITION BY conversion_id) AS w
        FROM (SELECT channel, conversion_id, {DECAY.format(touch="touch_ts")} AS d FROM t)
        """,
    "last_non_direct": f"""
        SELECT channel, {LAST_NON_DIRECT} AS w
        FROM (SELECT channel, rn, n,
                     max(CASE WHEN {NOT_DIRECT.format(channel="channel")} THEN rn END)
                         OVER (PARTITION BY conversion_id) AS last_non_direct
              FROM (SELECT channel, conversion_id, row_number() OVER ({ORDER}) AS rn,
                           count(*) OVER (PARTITION BY conversion_id) AS n
                    FROM t))
        """,
}

# Unnesting several lists in one SELECT zips them, element by element (DuckDB's documented rule).
LIST_WEIGHTS = {
    "linear": "SELECT unnest(path) AS channel, 1.0 / len(path) AS w FROM t",
    "position_based": f"""
        SELECT channel, {POSITION} AS w
        FROM (SELECT unnest(path) AS channel, unnest(range(1, len(path) + 1)) AS rn, len(path) AS n
              FROM t)
        """,
    "time_decay": f"""
        SELECT channel, d / total AS w
        FROM (SELECT unnest(path) AS channel, unnest(d) AS d, list_sum(d) AS total
              FROM (SELECT path, list_transform(touch_ts, lambda x: {DECAY.format(touch="x")}) AS d
                    FROM t))
        """,
    "last_non_direct": f"""
        SELECT channel, {LAST_NON_DIRECT} AS w
        FROM (SELECT unnest(path) AS channel, unnest(range(1, len(path) + 1)) AS rn, len(path) AS n,
                     len(path) + 1 - list_position(
                         list_reverse(list_transform(path, lambda c: {NOT_DIRECT.format(channel="c")})), true
                     ) AS last_non_direct
              FROM t)
        """,
}

FORMS = {"window": WINDOW_WEIGHTS, "list": LIST_WEIGHTS}


def main():
    form, path, models = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    warmup, runs, threads = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    if form not in FORMS:
        sys.exit(f"unknown form '{form}'; valid forms: {', '.join(FORMS)}")
    weights = FORMS[form]
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    results = {}
    for model in models:
        sql = (
            f"WITH t AS (SELECT * FROM read_parquet('{path}')), weights AS ({weights[model]}) "
            "SELECT channel, sum(w) AS credit FROM weights GROUP BY channel"
        )
        timings = []
        for run in range(warmup + runs):
            started = time.perf_counter()
            rows = con.execute(sql).fetchall()
            elapsed = time.perf_counter() - started
            print(f"duckdb {form} {model} run {run + 1}: {elapsed:.2f} s", file=sys.stderr)
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
