-- description: The aggregated paths the data-driven models (markov_attribution, shapley_attribution) read:
--   one row per distinct channel path with the conversions and revenue that followed it and the times it was
--   seen without a conversion (nulls). Converting paths are the journeys (30-day lookback): the channels of
--   each conversion's touches in time order; a conversion without touches has the empty path [] (reported by
--   the models as '(unattributed)'). Non-converting paths are the customer's touches that belong to no
--   journey, cut into runs wherever two consecutive touches are more than 30 days apart (the lookback: a run
--   never straddles a conversion, because any touch within 30 days before a conversion is in its journey).
--   Touches with no customer cannot be placed in a path and are left out (stg_touches counts them).
--   Grain: one row per distinct path.
-- column path: the channels in time order (ties by touch_id), repeats kept
-- column conversions: conversions whose journey is this path
-- column revenue: their revenue, roubles (DOUBLE)
-- column nulls: non-converting runs of touches with this path
-- test: not_null(path, conversions, revenue, nulls)
-- test: unique(path)
-- test: sql: SELECT total, expected FROM (SELECT (SELECT sum(conversions) FROM attribution_paths) AS total,
--     (SELECT CAST(count(*) AS DOUBLE) FROM stg_conversions) AS expected) WHERE total <> expected
-- test: sql: SELECT total, expected FROM (SELECT (SELECT sum(revenue) FROM attribution_paths) AS total,
--     (SELECT CAST(sum(revenue) AS DOUBLE) FROM stg_conversions) AS expected) WHERE abs(total - expected) > 1e-9 * greatest(1, expected)
-- test: sql: SELECT path FROM attribution_paths WHERE conversions = 0 AND nulls = 0
-- array_agg(channel ORDER BY touch_ts, touch_id) builds the same paths, but its order-sensitive accumulator is
-- several times slower with tens of thousands of groups: each touch becomes a pair [sort key, channel], the
-- pairs are sorted as lists (by key: time in microseconds, zero-padded, then touch_id), flattened, and every
-- second element is the path.
WITH converting_pairs AS (
  SELECT conversion_id,
         array_sort(array_agg(make_array(lpad(CAST(CAST(touch_ts AS BIGINT) AS VARCHAR), 20, '0') || touch_id,
                                         channel))
                    FILTER (WHERE touch_id IS NOT NULL)) AS pairs,
         -- an empty list of the channels' own type, for a conversion without touches
         array_slice(array_agg(channel), 1, 0) AS no_path,
         CAST(min(revenue) AS DOUBLE) AS revenue
  FROM journeys
  GROUP BY conversion_id
),
converting AS (
  SELECT CASE WHEN pairs IS NULL THEN no_path
              ELSE array_slice(flatten(pairs), 2, CAST(2 * cardinality(pairs) AS BIGINT), 2) END AS path,
         revenue
  FROM converting_pairs
),
unconverted_touches AS (
  SELECT t.customer_id, t.touch_id, t.touch_ts, t.channel
  FROM stg_touches t
  LEFT JOIN (SELECT DISTINCT touch_id FROM journeys WHERE touch_id IS NOT NULL) j ON j.touch_id = t.touch_id
  WHERE t.customer_id IS NOT NULL AND j.touch_id IS NULL
),
-- Runs are numbered over one global order instead of PARTITION BY customer_id: a window partition per
-- customer costs far more than the comparison with the previous row's customer.
run_starts AS (
  SELECT customer_id, touch_id, touch_ts, channel,
         CASE WHEN (lag(customer_id) OVER by_customer_time IS DISTINCT FROM customer_id)
                OR touch_ts > lag(touch_ts) OVER by_customer_time + INTERVAL '30 days' THEN 1 ELSE 0 END
           AS starts_run
  FROM unconverted_touches
  WINDOW by_customer_time AS (ORDER BY customer_id, touch_ts, touch_id)
),
runs AS (
  SELECT touch_id, touch_ts, channel,
         sum(starts_run) OVER (ORDER BY customer_id, touch_ts, touch_id ROWS UNBOUNDED PRECEDING) AS run
  FROM run_starts
),
non_converting AS (
  SELECT array_slice(flatten(pairs), 2, CAST(2 * cardinality(pairs) AS BIGINT), 2) AS path
  FROM (
    SELECT array_sort(array_agg(make_array(lpad(CAST(CAST(touch_ts AS BIGINT) AS VARCHAR), 20, '0') || touch_id,
                                           channel))) AS pairs
    FROM runs
    GROUP BY run
  )
)
SELECT path, sum(conversions) AS conversions, sum(revenue) AS revenue, sum(nulls) AS nulls
FROM (
  SELECT path, 1.0 AS conversions, revenue, 0.0 AS nulls FROM converting
  UNION ALL
  SELECT path, 0.0, 0.0, 1.0 FROM non_converting
)
GROUP BY path
