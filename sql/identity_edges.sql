-- description: The evidence of identity stitching: identifiers seen together in one source row, normalised, as
--   the input of identity_stitch. Every source table of the data model contributes: web_events (cookie with the
--   login's user_id and e-mail), app_events (device with the signed-in app account), pos_receipts (loyalty card
--   with the phone said at the till), loyalty_accounts (card with its phone, e-mail and app account),
--   marketing_touches (the recipient's e-mail / phone / app account with the cookie or app a click landed on),
--   qr_scans (app account or cookie with the loyalty card) and crm_holdout (the CRM's customer keys, sightings
--   only). Each row links its first identifier, in the order user_id, app_account_id, loyalty_card, email,
--   phone, device_id, anonymous_id (the most trusted first, so a junk cookie or phone in the row cannot be the
--   only bridge), to each other identifier of the row; a row with a single identifier is a sighting (b_* NULL)
--   that keeps the identifier in the map with its first/last seen time. Values that do not normalise (invalid
--   phones, empty strings) are dropped. Grain: one row per (source row, identifier linked to the row's first).
-- column a_type: type of the row's first identifier
-- column a_value: its normalised value (normalize_identifier / normalize_email / normalize_phone)
-- column b_type: type of the other identifier; NULL for a sighting
-- column b_value: its normalised value; NULL for a sighting
-- column ts: when the row happened (event, receipt, touch, scan time; registration time of loyalty accounts)
-- column source: the source table
-- test: not_null(a_type, a_value, source)
-- test: accepted_values(a_type, 'user_id', 'app_account_id', 'loyalty_card', 'email', 'phone', 'device_id', 'anonymous_id')
-- test: accepted_values(source, 'web_events', 'app_events', 'pos_receipts', 'loyalty_accounts', 'marketing_touches', 'qr_scans', 'crm_holdout')
-- test: sql: SELECT * FROM identity_edges WHERE (b_type IS NULL) <> (b_value IS NULL)
-- test: sql: SELECT * FROM identity_edges WHERE a_type = b_type AND a_value = b_value
WITH sightings AS (
  -- One row per source row; identifier slots in trust order (see the description).
  SELECT 'web_events' AS source, event_ts AS ts,
         'user_id' AS t1, normalize_identifier('user_id', user_id) AS v1,
         'email' AS t2, normalize_email(email) AS v2,
         'anonymous_id' AS t3, normalize_identifier('anonymous_id', anonymous_id) AS v3,
         CAST(NULL AS VARCHAR) AS t4, CAST(NULL AS VARCHAR) AS v4
  FROM web_events
  UNION ALL
  SELECT 'app_events', event_ts,
         'app_account_id', normalize_identifier('app_account_id', app_account_id),
         'device_id', normalize_identifier('device_id', device_id), NULL, NULL, NULL, NULL
  FROM app_events
  UNION ALL
  SELECT 'pos_receipts', receipt_ts,
         'loyalty_card', normalize_identifier('loyalty_card', loyalty_card),
         'phone', normalize_phone(phone_raw), NULL, NULL, NULL, NULL
  FROM pos_receipts
  UNION ALL
  SELECT 'loyalty_accounts', registered_ts,
         'loyalty_card', normalize_identifier('loyalty_card', loyalty_card),
         'app_account_id', normalize_identifier('app_account_id', app_account_id),
         'email', normalize_email(email_raw),
         'phone', normalize_phone(phone_raw)
  FROM loyalty_accounts
  UNION ALL
  SELECT 'marketing_touches', touch_ts,
         'app_account_id', normalize_identifier('app_account_id', app_account_id),
         'email', normalize_email(email),
         'phone', normalize_phone(phone_raw),
         'anonymous_id', normalize_identifier('anonymous_id', anonymous_id)
  FROM marketing_touches
  UNION ALL
  SELECT 'qr_scans', scan_ts,
         'app_account_id', normalize_identifier('app_account_id', app_account_id),
         'loyalty_card', normalize_identifier('loyalty_card', loyalty_card),
         'anonymous_id', normalize_identifier('anonymous_id', anonymous_id), NULL, NULL
  FROM qr_scans
  UNION ALL
  -- The holdout has no timestamp: its keys only keep their identifiers known (no edge is derived from it).
  SELECT 'crm_holdout', CAST(NULL AS TIMESTAMP),
         key_type, normalize_identifier(key_type, customer_key), NULL, NULL, NULL, NULL, NULL, NULL
  FROM crm_holdout
),
anchored AS (
  SELECT source, ts, t1, v1, t2, v2, t3, v3, t4, v4,
         CASE WHEN v1 IS NOT NULL THEN t1 WHEN v2 IS NOT NULL THEN t2 WHEN v3 IS NOT NULL THEN t3
              WHEN v4 IS NOT NULL THEN t4 END AS anchor_type,
         coalesce(v1, v2, v3, v4) AS anchor_value,
         CAST(v1 IS NOT NULL AS INT) + CAST(v2 IS NOT NULL AS INT) + CAST(v3 IS NOT NULL AS INT)
           + CAST(v4 IS NOT NULL AS INT) AS identifiers
  FROM sightings
)
-- One pass: each row's links come out of one UNNEST. (A UNION ALL of one branch per link slot read and
-- normalised every source row once per branch: DataFusion inlines a CTE into each of its uses.)
SELECT anchor_type AS a_type, anchor_value AS a_value, link['t'] AS b_type, link['v'] AS b_value, ts, source
FROM (
  SELECT anchor_type, anchor_value, identifiers, ts, source,
         -- A slot links to the anchor only when an earlier slot holds the anchor; a lone identifier is a sighting.
         unnest(CASE WHEN identifiers = 1
                     THEN [named_struct('t', CAST(NULL AS VARCHAR), 'v', CAST(NULL AS VARCHAR))]
                     ELSE [named_struct('t', t2, 'v', CASE WHEN v1 IS NOT NULL THEN v2 END),
                           named_struct('t', t3, 'v', CASE WHEN coalesce(v1, v2) IS NOT NULL THEN v3 END),
                           named_struct('t', t4, 'v', CASE WHEN coalesce(v1, v2, v3) IS NOT NULL THEN v4 END)]
                END) AS link
  FROM anchored
)
WHERE identifiers = 1 OR link['v'] IS NOT NULL
