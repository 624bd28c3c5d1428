-- description: Cross-channel conversion (ROPO) by week and channel segment. 'online_to_offline' (research
--   online, purchase offline): store receipts of customers with web or app activity (any event but an order)
--   in the 7 days before the receipt. 'offline_to_online' (showrooming): online orders of customers with an
--   in-store touch (store_visit, qr_scan) in the 7 days before the order. Purchases without a customer cannot be
--   checked: they are counted (purchases) but not in the shares' denominators (purchases_with_customer).
--   channel_segment is the customer's segment in customer_360 ('(no customer)' for unresolved purchases).
--   To change the window, edit the two intervals below. BI: sum the counts over weeks/segments first, then
--   divide (never average the shares). Grain: one row per (week, channel_segment, direction).
-- column week: Monday (UTC) of the purchases' week
-- column channel_segment: the customer's segment in customer_360, or '(no customer)'
-- column direction: 'online_to_offline' (ROPO) or 'offline_to_online' (showrooming)
-- column purchases: purchases of the direction's buying channel (store receipts or online orders)
-- column purchases_with_customer: those with a resolved customer
-- column cross_channel_purchases: those preceded by research in the other channel within 7 days
-- column cross_channel_share: cross_channel_purchases / purchases_with_customer (NULL when 0)
-- column purchasers: distinct customers who purchased
-- column cross_channel_purchasers: distinct customers with at least one cross-channel purchase
-- column revenue: revenue of the purchases, roubles
-- column cross_channel_revenue: revenue of the cross-channel purchases, roubles
-- test: not_null(week, channel_segment, direction, purchases, purchases_with_customer, cross_channel_purchases)
-- test: unique(week, channel_segment, direction)
-- test: accepted_values(direction, 'online_to_offline', 'offline_to_online')
-- test: sql: SELECT week, channel_segment, direction FROM cross_channel_conversion
--   WHERE cross_channel_purchases > purchases_with_customer OR purchases_with_customer > purchases
--      OR cross_channel_purchasers > purchasers
-- test: sql: SELECT counted, expected FROM (SELECT (SELECT sum(purchases) FROM cross_channel_conversion) AS counted,
--     (SELECT count(*) FROM stg_conversions) AS expected) WHERE counted <> expected
WITH researched_online AS (
  SELECT c.conversion_id FROM stg_conversions c
  WHERE c.channel = 'offline' AND EXISTS (
    SELECT 1 FROM stg_events e
    WHERE e.customer_id = c.customer_id AND e.event_name <> 'order_completed'
      AND e.event_ts < c.conversion_ts AND e.event_ts >= c.conversion_ts - INTERVAL '7 days')
),
researched_offline AS (
  SELECT c.conversion_id FROM stg_conversions c
  WHERE c.channel = 'online' AND EXISTS (
    SELECT 1 FROM stg_touches t
    WHERE t.customer_id = c.customer_id AND t.channel_group = 'in_store'
      AND t.touch_ts < c.conversion_ts AND t.touch_ts >= c.conversion_ts - INTERVAL '7 days')
),
purchases AS (
  SELECT c.conversion_id, c.conversion_ts, c.customer_id, c.revenue,
         CASE c.channel WHEN 'offline' THEN 'online_to_offline' ELSE 'offline_to_online' END AS direction,
         CASE WHEN c.customer_id IS NOT NULL
              THEN ron.conversion_id IS NOT NULL OR roff.conversion_id IS NOT NULL END AS cross_channel
  FROM stg_conversions c
  LEFT JOIN researched_online ron ON ron.conversion_id = c.conversion_id
  LEFT JOIN researched_offline roff ON roff.conversion_id = c.conversion_id
)
SELECT CAST(date_trunc('week', p.conversion_ts) AS DATE) AS week,
       coalesce(s.channel_segment, '(no customer)') AS channel_segment,
       p.direction,
       count(*) AS purchases,
       count(p.customer_id) AS purchases_with_customer,
       count(*) FILTER (WHERE p.cross_channel) AS cross_channel_purchases,
       CAST(count(*) FILTER (WHERE p.cross_channel) AS DOUBLE) / nullif(count(p.customer_id), 0)
         AS cross_channel_share,
       count(DISTINCT p.customer_id) AS purchasers,
       count(DISTINCT p.customer_id) FILTER (WHERE p.cross_channel) AS cross_channel_purchasers,
       sum(p.revenue) AS revenue,
       coalesce(sum(p.revenue) FILTER (WHERE p.cross_channel), 0) AS cross_channel_revenue
FROM purchases p
LEFT JOIN customer_360 s ON s.customer_id = p.customer_id
GROUP BY 1, 2, 3
