"""ChannelAttribution peer of the attribution benchmark and of tests/channel_attribution.rs.

Usage: channel_attribution.py JOURNEYS.parquet ORDERS SEEDS WARMUP RUNS NCORE
  ORDERS, SEEDS: comma-separated (e.g. 1,2,3 and 0,1000,2000)

ChannelAttribution (GPL) runs only here, in its own process. The journeys are read with DuckDB and
aggregated into ChannelAttribution's usual input, one row per distinct path `a > b > c` with total
conversions, value and nulls (untimed: ChannelAttribution gets its best case). Timed: `markov_model`
per order at its defaults with the first seed (warm-up, then RUNS runs; its result is reported as
`default`), and `heuristic_models`. Then every seed runs once per order at a tight tolerance (`PRECISE`):
at its defaults ChannelAttribution's estimate is off by several per cent and its seeds do not show it
(it keeps the one of its 10 runs nearest the median conversions, and runs of seeds s and s + 1 share
9 random generators); the precise runs, with seeds at least 10 apart, converge on the exact chain and
their spread is an honest noise estimate. Prints one line `BENCH-REPORT {json}`.
"""

import json
import os
import resource
import sys
import time

import duckdb

# ChannelAttribution prints a banner on import; keep stdout for the report line.
_stdout = sys.stdout
sys.stdout = sys.stderr
import ChannelAttribution as ca  # noqa: E402

sys.stdout = _stdout


# ChannelAttribution's knobs for the agreement runs: 10x its default simulations, 5x tighter convergence.
PRECISE = {"nsim_start": 1e6, "conv_par": 0.01}


def by_channel(frame, conversions, value):
    return {
        "conversions": {str(c): float(v) for c, v in zip(frame["channel_name"], frame[conversions])},
        "revenue": {str(c): float(v) for c, v in zip(frame["channel_name"], frame[value])},
    }


def quiet(function, *args, **kwargs):
    """Runs a ChannelAttribution call with its progress output sent to stderr."""
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        return function(*args, **kwargs)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main():
    path, orders, seeds = sys.argv[1], sys.argv[2], sys.argv[3]
    warmup, runs, ncore = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    orders = [int(o) for o in orders.split(",")]
    seeds = [int(s) for s in seeds.split(",")]
    started = time.perf_counter()
    data = duckdb.sql(
        f"""
        SELECT array_to_string(path, ' > ') AS path, sum(conversions) AS total_conversions,
               sum(revenue) AS total_conversion_value, sum(nulls) AS total_null
        FROM read_parquet('{path}')
        WHERE len(path) > 0
        GROUP BY 1
        """
    ).df()
    load_seconds = time.perf_counter() - started

    markov = {}
    for order in orders:
        timings = []
        for run in range(warmup + runs):
            started = time.perf_counter()
            frame = quiet(
                ca.markov_model, data, "path", "total_conversions", var_value="total_conversion_value",
                var_null="total_null", order=order, ncore=ncore, seed=seeds[0], verbose=False, flg_pro=False,
            )
            if run >= warmup:
                timings.append(time.perf_counter() - started)
        default = by_channel(frame, "total_conversions", "total_conversion_value")
        results = {}
        for seed in seeds:
            frame = quiet(
                ca.markov_model, data, "path", "total_conversions", var_value="total_conversion_value",
                var_null="total_null", order=order, ncore=ncore, seed=seed, verbose=False, flg_pro=False,
                **PRECISE,
            )
            results[str(seed)] = by_channel(frame, "total_conversions", "total_conversion_value")
        markov[str(order)] = {"seconds": timings, "default": default, "seeds": results}

    timings = []
    for run in range(warmup + runs):
        started = time.perf_counter()
        frame = quiet(
            ca.heuristic_models, data, "path", "total_conversions", var_value="total_conversion_value", flg_pro=False
        )
        if run >= warmup:
            timings.append(time.perf_counter() - started)
    heuristics = {"seconds": timings}
    for model in ("first_touch", "last_touch", "linear_touch"):
        heuristics[model] = by_channel(frame, f"{model}_conversions", f"{model}_value")

    report = {
        "seconds": [],
        "load_seconds": load_seconds,
        "distinct_paths": len(data),
        "markov": markov,
        "heuristics": heuristics,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "channelattribution_version": getattr(ca, "__version__", "2.2.5"),
    }
    print("BENCH-REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
