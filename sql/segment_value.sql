-- description: Customer value by channel segment (customer_360.channel_segment: where the customer bought in
--   the period): customers, orders, revenue per customer, and the uplift of each segment over single-channel
--   buyers (online_only and offline_only pooled) — "how much more are hybrid customers worth". The segment is
--   behavioural: a hybrid has bought at least twice by definition, so part of its uplift is that it buys more
--   often (compare orders_per_customer and avg_order_value). 'no_purchase' customers (identifiers without an
--   order: mostly browsers) are listed with zero revenue and left out of the single-channel baseline.
--   Grain: one row per channel segment.
-- column channel_segment: 'online_only', 'offline_only', 'hybrid' or 'no_purchase'
-- column customers: customers of the segment
-- column orders: their orders
-- column revenue: their revenue, roubles
-- column revenue_share: share of all customers' revenue
-- column revenue_per_customer: revenue / customers, roubles (DOUBLE)
-- column orders_per_customer: orders / customers
-- column avg_order_value: revenue / orders, roubles (NULL without orders)
-- column avg_ltv_12m: mean of customer_360.ltv_12m
-- column single_channel_revenue_per_customer: revenue per customer of online_only and offline_only together
-- column uplift_vs_single_channel: revenue_per_customer / single_channel_revenue_per_customer - 1 (hybrid: the "~70 % more")
-- test: not_null(channel_segment, customers, revenue, revenue_per_customer)
-- test: unique(channel_segment)
-- test: accepted_values(channel_segment, 'online_only', 'offline_only', 'hybrid', 'no_purchase')
-- test: sql: SELECT total, expected FROM (SELECT (SELECT sum(revenue) FROM segment_value) AS total,
--     (SELECT sum(total_revenue) FROM customer_360) AS expected) WHERE total <> expected
WITH by_segment AS (
  SELECT channel_segment, count(*) AS customers, sum(orders) AS orders, sum(total_revenue) AS revenue,
         avg(ltv_12m) AS avg_ltv_12m
  FROM customer_360
  GROUP BY channel_segment
),
single_channel AS (
  SELECT CAST(sum(revenue) AS DOUBLE) / sum(customers) AS revenue_per_customer
  FROM by_segment
  WHERE channel_segment IN ('online_only', 'offline_only')
)
SELECT b.channel_segment, b.customers, b.orders, b.revenue,
       CAST(b.revenue AS DOUBLE) / CAST(sum(b.revenue) OVER () AS DOUBLE) AS revenue_share,
       CAST(b.revenue AS DOUBLE) / b.customers AS revenue_per_customer,
       CAST(b.orders AS DOUBLE) / b.customers AS orders_per_customer,
       CAST(b.revenue AS DOUBLE) / nullif(b.orders, 0) AS avg_order_value,
       b.avg_ltv_12m,
       s.revenue_per_customer AS single_channel_revenue_per_customer,
       CAST(b.revenue AS DOUBLE) / b.customers / s.revenue_per_customer - 1 AS uplift_vs_single_channel
FROM by_segment b
CROSS JOIN single_channel s
