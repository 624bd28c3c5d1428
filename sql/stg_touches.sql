-- description: Every marketing touch, online and in store, with the customer it reached. marketing_touches
--   already holds the in-store touches (channel 'store_visit': app beacon or Wi-Fi login; 'qr_scan': one per
--   row of qr_scans), so qr_scans is not added again, which would count each scan twice; its loyalty cards
--   reach the touch through identity stitching instead. The touch's identifiers are resolved like in
--   stg_events in the order app_account_id, email, phone, anonymous_id. Touches that resolve to no customer
--   keep customer_id NULL: they are kept and counted, but cannot join a journey. Grain: one row per touch.
-- column touch_id: marketing_touches.touch_id
-- column touch_ts: time of the touch, UTC
-- column channel: sms, email, push, paid_search, paid_social, display, organic, referral, direct, store_visit, qr_scan
-- column channel_group: 'online' or 'in_store' (store_visit, qr_scan)
-- column campaign: the campaign or utm_campaign of the touch
-- column cost: cost of the touch in roubles, DECIMAL(12,2)
-- column customer_id: the stitched customer; NULL when no identifier of the touch is linked
-- column resolved_by: the identifier type that gave customer_id
-- test: not_null(touch_id, touch_ts, channel, channel_group)
-- test: unique(touch_id)
-- test: accepted_values(channel_group, 'online', 'in_store')
-- test: sql: SELECT staged, source FROM (SELECT (SELECT count(*) FROM stg_touches) AS staged,
--     (SELECT count(*) FROM marketing_touches) AS source) WHERE staged <> source
WITH linked AS (
  SELECT id_type, id_value, customer_id FROM identity_map WHERE status = 'linked'
)
SELECT t.touch_id, t.touch_ts, t.channel,
       CASE WHEN t.channel IN ('store_visit', 'qr_scan') THEN 'in_store' ELSE 'online' END AS channel_group,
       t.campaign, t.cost,
       coalesce(acc.customer_id, e.customer_id, ph.customer_id, a.customer_id) AS customer_id,
       CASE WHEN acc.customer_id IS NOT NULL THEN 'app_account_id'
            WHEN e.customer_id IS NOT NULL THEN 'email'
            WHEN ph.customer_id IS NOT NULL THEN 'phone'
            WHEN a.customer_id IS NOT NULL THEN 'anonymous_id' END AS resolved_by
FROM marketing_touches t
LEFT JOIN linked acc
  ON acc.id_type = 'app_account_id' AND acc.id_value = normalize_identifier('app_account_id', t.app_account_id)
LEFT JOIN linked e ON e.id_type = 'email' AND e.id_value = normalize_email(t.email)
LEFT JOIN linked ph ON ph.id_type = 'phone' AND ph.id_value = normalize_phone(t.phone_raw)
LEFT JOIN linked a
  ON a.id_type = 'anonymous_id' AND a.id_value = normalize_identifier('anonymous_id', t.anonymous_id)
