-- description: The customer journey of every conversion: the marketing touches of the same customer (online
--   and in store) within the 30-day lookback before it (touch_ts in (conversion_ts - 30 days, conversion_ts]).
--   A touch can belong to several conversions of a customer when their windows overlap; journeys_reset is the
--   variant that cuts the path at the customer's previous conversion. Every conversion of stg_conversions is
--   here: one without any touch in its window (or without a customer) is one row with channel
--   '(unattributed)', touch columns NULL and unattributed_reason saying why. To change the lookback, edit the
--   interval below (and in journeys_reset). Grain: one row per (conversion, touch).
-- column conversion_id: stg_conversions.conversion_id
-- column conversion_ts: time of the conversion
-- column conversion_channel: 'online' or 'offline'
-- column conversion_source: 'web', 'app' or 'store'
-- column revenue: revenue of the conversion in roubles (repeated on each touch row: do not sum it over touches)
-- column customer_id: the stitched customer; NULL for conversions no identifier resolved
-- column touch_id: stg_touches.touch_id; NULL on an '(unattributed)' row
-- column touch_ts: time of the touch
-- column channel: the touch's channel, or '(unattributed)'
-- column channel_group: 'online', 'in_store' or '(unattributed)'
-- column touch_position: 1 for the first touch of the path (ordered by touch_ts, touch_id); 1 on '(unattributed)' rows
-- column path_length: touches in the conversion's path (0 for '(unattributed)')
-- column days_before_conversion: (conversion_ts - touch_ts) in days
-- column unattributed_reason: NULL, 'no_customer' (no identifier of the conversion resolved) or 'no_touch_in_lookback'
-- test: not_null(conversion_id, conversion_ts, revenue, channel, channel_group, touch_position, path_length)
-- test: unique(conversion_id, touch_id)
-- test: accepted_values(unattributed_reason, 'no_customer', 'no_touch_in_lookback')
-- test: relationships(conversion_id, stg_conversions.conversion_id)
-- test: sql: SELECT conversion_id, touch_ts, conversion_ts FROM journeys
--   WHERE touch_ts > conversion_ts OR touch_ts <= conversion_ts - INTERVAL '30 days'
-- test: sql: SELECT c.conversion_id FROM stg_conversions c
--   LEFT JOIN (SELECT DISTINCT conversion_id FROM journeys) j ON j.conversion_id = c.conversion_id
--   WHERE j.conversion_id IS NULL
-- test: sql: SELECT conversion_id, count(*) AS touch_rows, min(path_length) AS path_length FROM journeys
--   GROUP BY conversion_id HAVING count(*) <> greatest(min(path_length), 1) OR min(path_length) <> max(path_length)
WITH matched AS (
  SELECT c.conversion_id, c.conversion_ts, c.channel AS conversion_channel, c.source AS conversion_source,
         c.revenue, c.customer_id, t.touch_id, t.touch_ts, t.channel AS touch_channel, t.channel_group
  FROM stg_conversions c
  LEFT JOIN stg_touches t
    ON t.customer_id = c.customer_id
   AND t.touch_ts <= c.conversion_ts
   AND t.touch_ts > c.conversion_ts - INTERVAL '30 days'
)
SELECT conversion_id, conversion_ts, conversion_channel, conversion_source, revenue, customer_id, touch_id,
       touch_ts,
       coalesce(touch_channel, '(unattributed)') AS channel,
       coalesce(channel_group, '(unattributed)') AS channel_group,
       row_number() OVER (PARTITION BY conversion_id ORDER BY touch_ts, touch_id) AS touch_position,
       count(touch_id) OVER (PARTITION BY conversion_id) AS path_length,
       CAST(date_part('epoch', conversion_ts - touch_ts) / 86400 AS DOUBLE) AS days_before_conversion,
       CASE WHEN customer_id IS NULL THEN 'no_customer'
            WHEN touch_id IS NULL THEN 'no_touch_in_lookback' END AS unattributed_reason
FROM matched
