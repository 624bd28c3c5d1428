-- description: Every conversion, online and offline: web-shop and app orders (order_completed events of
--   stg_events) and store receipts (pos_receipts, resolved through the loyalty card, else the phone typed at the
--   till). Conversions whose identifiers resolve to no customer keep customer_id NULL: they still count in every
--   total and reach attribution as '(unattributed)'. Grain: one row per order or receipt.
-- column conversion_id: order_id (online) or receipt_id (store)
-- column conversion_ts: time of the order or receipt, UTC
-- column channel: 'online' (web shop or app) or 'offline' (store)
-- column source: 'web', 'app' or 'store'
-- column store_id: the store of a receipt; NULL online
-- column revenue: amount in roubles, DECIMAL(12,2), never NULL or negative
-- column customer_id: the stitched customer; NULL when no identifier of the order or receipt is linked
-- column resolved_by: the identifier type that gave customer_id
-- test: not_null(conversion_id, conversion_ts, channel, source, revenue)
-- test: unique(conversion_id)
-- test: accepted_values(channel, 'online', 'offline')
-- test: accepted_values(source, 'web', 'app', 'store')
-- test: sql: SELECT conversion_id, revenue FROM stg_conversions WHERE revenue < 0
-- test: sql: SELECT staged, expected FROM (
--     SELECT (SELECT count(*) FROM stg_conversions) AS staged,
--            (SELECT count(*) FROM pos_receipts)
--            + (SELECT count(*) FROM web_events WHERE event_name = 'order_completed')
--            + (SELECT count(*) FROM app_events WHERE event_name = 'order_completed') AS expected)
--   WHERE staged <> expected
-- test: sql: SELECT staged, expected FROM (
--     SELECT (SELECT sum(revenue) FROM stg_conversions) AS staged,
--            (SELECT sum(amount) FROM pos_receipts)
--            + (SELECT sum(revenue) FROM web_events WHERE event_name = 'order_completed')
--            + (SELECT sum(revenue) FROM app_events WHERE event_name = 'order_completed') AS expected)
--   WHERE staged <> expected
WITH linked AS (
  SELECT id_type, id_value, customer_id FROM identity_map WHERE status = 'linked'
)
SELECT order_id AS conversion_id, event_ts AS conversion_ts, 'online' AS channel, source,
       CAST(NULL AS VARCHAR) AS store_id, revenue, customer_id, resolved_by
FROM stg_events
WHERE event_name = 'order_completed'
UNION ALL
SELECT r.receipt_id, r.receipt_ts, 'offline', 'store', r.store_id, r.amount,
       coalesce(card.customer_id, phone.customer_id),
       CASE WHEN card.customer_id IS NOT NULL THEN 'loyalty_card'
            WHEN phone.customer_id IS NOT NULL THEN 'phone' END
FROM pos_receipts r
LEFT JOIN linked card
  ON card.id_type = 'loyalty_card' AND card.id_value = normalize_identifier('loyalty_card', r.loyalty_card)
LEFT JOIN linked phone ON phone.id_type = 'phone' AND phone.id_value = normalize_phone(r.phone_raw)
