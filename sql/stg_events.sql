-- description: Every web-shop and app event with the customer it belongs to. Each row's identifiers are
--   normalised like in identity_edges and looked up in identity_map (linked identifiers only); the first one
--   that resolves, in the order user_id, app_account_id, email, device_id, anonymous_id, gives customer_id.
--   Events whose identifiers resolve to no customer keep customer_id NULL (resolved_by NULL): they are kept and
--   counted, never dropped. Grain: one row per source event (event_id is unique across web and app).
-- column event_id: the source event id (web_events.event_id or app_events.event_id)
-- column event_ts: event time, UTC
-- column source: 'web' (web_events) or 'app' (app_events)
-- column event_name: page_view, login, add_to_cart, order_completed (web); app_open, push_open, screen_view, add_to_cart, order_completed (app)
-- column campaign: utm_campaign (web) or the push campaign that opened the app (app)
-- column order_id: set on order_completed events
-- column revenue: order amount in roubles, DECIMAL(12,2), on order_completed events
-- column customer_id: the stitched customer (identity_map.customer_id); NULL when no identifier of the row is linked
-- column resolved_by: the identifier type that gave customer_id
-- test: not_null(event_id, event_ts, source, event_name)
-- test: unique(event_id)
-- test: accepted_values(source, 'web', 'app')
-- test: accepted_values(resolved_by, 'user_id', 'app_account_id', 'email', 'device_id', 'anonymous_id')
-- test: sql: SELECT event_id FROM stg_events WHERE (customer_id IS NULL) <> (resolved_by IS NULL)
-- test: sql: SELECT source, count(*) AS staged FROM stg_events GROUP BY source
--   HAVING count(*) <> CASE source WHEN 'web' THEN (SELECT count(*) FROM web_events)
--                                  ELSE (SELECT count(*) FROM app_events) END
WITH linked AS (
  SELECT id_type, id_value, customer_id FROM identity_map WHERE status = 'linked'
),
web AS (
  SELECT w.event_id, w.event_ts, 'web' AS source, w.event_name, w.utm_campaign AS campaign, w.order_id,
         w.revenue,
         coalesce(u.customer_id, e.customer_id, a.customer_id) AS customer_id,
         CASE WHEN u.customer_id IS NOT NULL THEN 'user_id'
              WHEN e.customer_id IS NOT NULL THEN 'email'
              WHEN a.customer_id IS NOT NULL THEN 'anonymous_id' END AS resolved_by
  FROM web_events w
  LEFT JOIN linked u ON u.id_type = 'user_id' AND u.id_value = normalize_identifier('user_id', w.user_id)
  LEFT JOIN linked e ON e.id_type = 'email' AND e.id_value = normalize_email(w.email)
  LEFT JOIN linked a
    ON a.id_type = 'anonymous_id' AND a.id_value = normalize_identifier('anonymous_id', w.anonymous_id)
),
app AS (
  SELECT p.event_id, p.event_ts, 'app' AS source, p.event_name, p.campaign, p.order_id, p.revenue,
         coalesce(acc.customer_id, dev.customer_id) AS customer_id,
         CASE WHEN acc.customer_id IS NOT NULL THEN 'app_account_id'
              WHEN dev.customer_id IS NOT NULL THEN 'device_id' END AS resolved_by
  FROM app_events p
  LEFT JOIN linked acc
    ON acc.id_type = 'app_account_id'
   AND acc.id_value = normalize_identifier('app_account_id', p.app_account_id)
  LEFT JOIN linked dev
    ON dev.id_type = 'device_id' AND dev.id_value = normalize_identifier('device_id', p.device_id)
)
SELECT * FROM web
UNION ALL
SELECT * FROM app
