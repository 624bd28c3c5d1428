-- description: One row per stitched customer: identifiers, activity span, online and offline orders and
--   revenue, channel segment, RFM scores, LTV, preferred store and channel. Built from identity_map (linked
--   identifiers), stg_conversions and stg_touches. Conversions with no customer are not here (see
--   stg_conversions); every customer of identity_map is, buyers or not.
--   RFM: for buyers only (NULL otherwise), as of the last conversion in the data (as_of_ts). Each score is the
--   quintile of the customer's rank among buyers: 1 + floor(5 * percent_rank()), so ties share a score and
--   a 1-order customer is never scored above another 1-order customer. R ranks recency (5 = most recent),
--   F the number of orders, M the revenue.
--   LTV: ltv_12m = total_revenue / observed_days * 365, the customer's revenue rate projected over a year,
--   where observed_days runs from the customer's first sighting (not before the first conversion of the data)
--   to as_of_ts and is at least 30 days so that newcomers are not extrapolated from a few days.
-- column customer_id: identity_map.customer_id
-- column identifiers: number of linked identifiers of the customer
-- column anonymous_ids: number of cookies
-- column user_ids: number of web-shop accounts
-- column emails: number of e-mail addresses
-- column phones: number of phone numbers
-- column device_ids: number of app devices
-- column app_account_ids: number of app accounts
-- column loyalty_cards: number of loyalty cards
-- column email_list: the e-mail addresses, sorted
-- column phone_list: the phone numbers (E.164), sorted
-- column first_seen: earliest sighting of any identifier of the customer
-- column last_seen: latest sighting of any identifier of the customer
-- column online_orders: web and app orders
-- column offline_orders: store receipts
-- column orders: online_orders + offline_orders
-- column online_revenue: revenue of online orders, roubles
-- column offline_revenue: revenue of store receipts, roubles
-- column total_revenue: online_revenue + offline_revenue
-- column first_order_ts: first conversion, NULL for non-buyers
-- column last_order_ts: last conversion, NULL for non-buyers
-- column channel_segment: 'online_only', 'offline_only', 'hybrid' (bought both online and in store) or 'no_purchase'
-- column touches: marketing touches that reached the customer
-- column recency_days: days from last_order_ts to as_of_ts
-- column r_score: recency quintile 1-5 (5 = most recent), buyers only
-- column f_score: frequency quintile 1-5 (5 = most orders), buyers only
-- column m_score: monetary quintile 1-5 (5 = most revenue), buyers only
-- column rfm_segment: r_score, f_score and m_score as a three-digit string such as '545'
-- column ltv_12m: projected 12-month revenue (see description), roubles
-- column preferred_store: store with the most receipts of the customer (ties: more revenue, then smaller store_id)
-- column preferred_channel: where the customer buys most: 'web', 'app' or 'store' (ties: more revenue, then name)
-- column top_touch_channel: the marketing channel with the most touches of the customer (ties: name)
-- column as_of_ts: the time RFM and LTV are computed at: the last conversion of the data set
-- test: not_null(customer_id, identifiers, orders, total_revenue, channel_segment, touches)
-- test: unique(customer_id)
-- test: accepted_values(channel_segment, 'online_only', 'offline_only', 'hybrid', 'no_purchase')
-- test: sql: SELECT customer_id, r_score, f_score, m_score FROM customer_360
--   WHERE (orders > 0)
--      <> coalesce(r_score BETWEEN 1 AND 5 AND f_score BETWEEN 1 AND 5 AND m_score BETWEEN 1 AND 5, false)
-- test: sql: SELECT customer_id FROM customer_360
--   WHERE orders <> online_orders + offline_orders OR total_revenue <> online_revenue + offline_revenue
-- test: sql: SELECT in_360, resolved FROM (
--     SELECT (SELECT sum(total_revenue) FROM customer_360) AS in_360,
--            (SELECT sum(revenue) FROM stg_conversions WHERE customer_id IS NOT NULL) AS resolved)
--   WHERE in_360 <> resolved
WITH ids AS (
  SELECT customer_id,
         count(*) AS identifiers,
         count(*) FILTER (WHERE id_type = 'anonymous_id') AS anonymous_ids,
         count(*) FILTER (WHERE id_type = 'user_id') AS user_ids,
         count(*) FILTER (WHERE id_type = 'email') AS emails,
         count(*) FILTER (WHERE id_type = 'phone') AS phones,
         count(*) FILTER (WHERE id_type = 'device_id') AS device_ids,
         count(*) FILTER (WHERE id_type = 'app_account_id') AS app_account_ids,
         count(*) FILTER (WHERE id_type = 'loyalty_card') AS loyalty_cards,
         -- Owned copies (Utf8, not views into the scan's pages): the aggregation's memory accounting
         -- counts a view's whole page buffers for every group that keeps one of its strings.
         array_sort(array_agg(arrow_cast(id_value, 'Utf8')) FILTER (WHERE id_type = 'email')) AS email_list,
         array_sort(array_agg(arrow_cast(id_value, 'Utf8')) FILTER (WHERE id_type = 'phone')) AS phone_list,
         min(first_seen) AS first_seen,
         max(last_seen) AS last_seen
  FROM identity_map
  WHERE status = 'linked'
  GROUP BY customer_id
),
window_bounds AS (
  SELECT min(conversion_ts) AS data_start_ts, max(conversion_ts) AS as_of_ts FROM stg_conversions
),
orders AS (
  SELECT customer_id,
         count(*) FILTER (WHERE channel = 'online') AS online_orders,
         count(*) FILTER (WHERE channel = 'offline') AS offline_orders,
         coalesce(sum(revenue) FILTER (WHERE channel = 'online'), 0) AS online_revenue,
         coalesce(sum(revenue) FILTER (WHERE channel = 'offline'), 0) AS offline_revenue,
         min(conversion_ts) AS first_order_ts,
         max(conversion_ts) AS last_order_ts
  FROM stg_conversions
  WHERE customer_id IS NOT NULL
  GROUP BY customer_id
),
-- first_value(… ORDER BY …) per customer picks the favourite in one vectorised aggregation (a window
-- partition per customer is much slower)
by_store AS (
  SELECT customer_id, first_value(store_id ORDER BY receipts DESC, revenue DESC, store_id) AS store_id
  FROM (SELECT customer_id, store_id, count(*) AS receipts, sum(revenue) AS revenue
        FROM stg_conversions
        WHERE customer_id IS NOT NULL AND store_id IS NOT NULL
        GROUP BY customer_id, store_id)
  GROUP BY customer_id
),
by_source AS (
  SELECT customer_id, first_value(source ORDER BY orders DESC, revenue DESC, source) AS source
  FROM (SELECT customer_id, source, count(*) AS orders, sum(revenue) AS revenue
        FROM stg_conversions
        WHERE customer_id IS NOT NULL
        GROUP BY customer_id, source)
  GROUP BY customer_id
),
by_touch_channel AS (
  SELECT customer_id, first_value(channel ORDER BY touches DESC, channel) AS channel, sum(touches) AS touches
  FROM (SELECT customer_id, channel, count(*) AS touches
        FROM stg_touches
        WHERE customer_id IS NOT NULL
        GROUP BY customer_id, channel)
  GROUP BY customer_id
),
base AS (
  SELECT i.*,
         coalesce(o.online_orders, 0) AS online_orders,
         coalesce(o.offline_orders, 0) AS offline_orders,
         coalesce(o.online_orders, 0) + coalesce(o.offline_orders, 0) AS orders,
         coalesce(o.online_revenue, 0) AS online_revenue,
         coalesce(o.offline_revenue, 0) AS offline_revenue,
         coalesce(o.online_revenue, 0) + coalesce(o.offline_revenue, 0) AS total_revenue,
         o.first_order_ts, o.last_order_ts,
         CASE WHEN o.online_orders > 0 AND o.offline_orders > 0 THEN 'hybrid'
              WHEN o.online_orders > 0 THEN 'online_only'
              WHEN o.offline_orders > 0 THEN 'offline_only'
              ELSE 'no_purchase' END AS channel_segment,
         coalesce(t.touches, 0) AS touches,
         w.as_of_ts, w.data_start_ts
  FROM ids i
  CROSS JOIN window_bounds w
  LEFT JOIN orders o ON o.customer_id = i.customer_id
  LEFT JOIN by_touch_channel t ON t.customer_id = i.customer_id
),
rfm AS (
  SELECT customer_id,
         -- percent_rank is 1 on the top rank: least() keeps it in the fifth quintile
         least(5, 1 + CAST(floor(5 * percent_rank() OVER (ORDER BY last_order_ts)) AS INT)) AS r_score,
         least(5, 1 + CAST(floor(5 * percent_rank() OVER (ORDER BY orders)) AS INT)) AS f_score,
         least(5, 1 + CAST(floor(5 * percent_rank() OVER (ORDER BY total_revenue)) AS INT)) AS m_score
  -- The sorts of these windows hold every customer: copying the ids out of the join's shared string
  -- buffers keeps their memory what the rows need (a view into the buffers counts them whole, per batch).
  FROM (SELECT arrow_cast(customer_id, 'Utf8') AS customer_id, last_order_ts, orders, total_revenue
        FROM base WHERE orders > 0)
)
SELECT b.customer_id, b.identifiers, b.anonymous_ids, b.user_ids, b.emails, b.phones, b.device_ids,
       b.app_account_ids, b.loyalty_cards, b.email_list, b.phone_list, b.first_seen, b.last_seen,
       b.online_orders, b.offline_orders, b.orders, b.online_revenue, b.offline_revenue, b.total_revenue,
       b.first_order_ts, b.last_order_ts, b.channel_segment, b.touches,
       CAST(date_part('epoch', b.as_of_ts - b.last_order_ts) / 86400 AS DOUBLE) AS recency_days,
       r.r_score, r.f_score, r.m_score,
       CAST(r.r_score AS VARCHAR) || CAST(r.f_score AS VARCHAR) || CAST(r.m_score AS VARCHAR) AS rfm_segment,
       CAST(b.total_revenue AS DOUBLE) * 365
         / greatest(30, date_part('epoch', b.as_of_ts - greatest(b.first_seen, b.data_start_ts)) / 86400)
         AS ltv_12m,
       s.store_id AS preferred_store,
       src.source AS preferred_channel,
       tc.channel AS top_touch_channel,
       b.as_of_ts
FROM base b
LEFT JOIN rfm r ON r.customer_id = b.customer_id
LEFT JOIN by_store s ON s.customer_id = b.customer_id
LEFT JOIN by_source src ON src.customer_id = b.customer_id
LEFT JOIN by_touch_channel tc ON tc.customer_id = b.customer_id
