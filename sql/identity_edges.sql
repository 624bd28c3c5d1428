-- identity_edges: every pair of identifiers seen together in one source row, normalised, as the input of
-- identity_stitch (columns a_type, a_value, b_type, b_value, ts, source). A row with a single identifier is a
-- sighting (b_* NULL): it keeps the identifier in the identity map with its first/last seen time.
-- Grain: one row per (source row, identifier pair).
WITH sightings AS (
  SELECT 'web_events' AS source, event_ts AS ts,
         'anonymous_id' AS t1, normalize_identifier('anonymous_id', anonymous_id) AS v1,
         'user_id' AS t2, normalize_identifier('user_id', user_id) AS v2,
         'email' AS t3, normalize_email(email) AS v3
  FROM web_events
  UNION ALL
  SELECT 'app_events', event_ts, 'device_id', normalize_identifier('device_id', device_id),
         'app_account_id', normalize_identifier('app_account_id', app_account_id), NULL, NULL
  FROM app_events
  UNION ALL
  SELECT 'pos_receipts', receipt_ts, 'loyalty_card', normalize_identifier('loyalty_card', loyalty_card),
         'phone', normalize_phone(phone_raw), NULL, NULL
  FROM pos_receipts
  UNION ALL
  SELECT 'loyalty_accounts', registered_ts, 'loyalty_card', normalize_identifier('loyalty_card', loyalty_card),
         'phone', normalize_phone(phone_raw), 'email', normalize_email(email_raw)
  FROM loyalty_accounts
  UNION ALL
  SELECT 'loyalty_accounts', registered_ts, 'loyalty_card', normalize_identifier('loyalty_card', loyalty_card),
         'app_account_id', normalize_identifier('app_account_id', app_account_id), NULL, NULL
  FROM loyalty_accounts
  UNION ALL
  SELECT 'marketing_touches', touch_ts, 'email', normalize_email(email), 'phone', normalize_phone(phone_raw),
         'app_account_id', normalize_identifier('app_account_id', app_account_id)
  FROM marketing_touches
  UNION ALL
  SELECT 'marketing_touches', touch_ts, 'anonymous_id', normalize_identifier('anonymous_id', anonymous_id),
         NULL, NULL, NULL, NULL
  FROM marketing_touches
  UNION ALL
  SELECT 'qr_scans', scan_ts, 'anonymous_id', normalize_identifier('anonymous_id', anonymous_id),
         'app_account_id', normalize_identifier('app_account_id', app_account_id),
         'loyalty_card', normalize_identifier('loyalty_card', loyalty_card)
  FROM qr_scans
)
-- each row's identifiers: first with second, first with third, and second with third when there is no first
SELECT t1 AS a_type, v1 AS a_value, CASE WHEN v2 IS NOT NULL THEN t2 END AS b_type, v2 AS b_value, ts, source
FROM sightings WHERE v1 IS NOT NULL
UNION ALL
SELECT t1, v1, t3, v3, ts, source FROM sightings WHERE v1 IS NOT NULL AND v3 IS NOT NULL
UNION ALL
SELECT t2, v2, CASE WHEN v3 IS NOT NULL THEN t3 END, v3, ts, source FROM sightings WHERE v1 IS NULL AND v2 IS NOT NULL
UNION ALL
SELECT t3, v3, NULL, NULL, ts, source FROM sightings WHERE v1 IS NULL AND v2 IS NULL AND v3 IS NOT NULL
