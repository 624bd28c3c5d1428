-- description: The identity map: every identifier of identity_edges with the customer it belongs to, stitched by
--   identity_stitch with the shipped guards (default blocklist, degree quarantine, per-type limits, component
--   size breaker) plus an exact blocklist of identifiers the business knows are shared: the stores' own phone
--   numbers (typed at the till for customers who refuse theirs) and the cookies of the in-store ordering
--   tablets (their sessions open the catalogue with instore=tablet). Blocked identifiers keep a row with a NULL
--   customer_id and status blocked:<rule>. Grain: one row per (id_type, id_value).
-- column id_type: identifier type (user_id, app_account_id, loyalty_card, email, phone, device_id, anonymous_id)
-- column id_value: normalised identifier, as in identity_edges
-- column customer_id: stable customer id (32 hex characters, a hash of the component's anchor identifier); NULL when blocked
-- column first_seen: earliest ts of the identifier in identity_edges
-- column last_seen: latest ts of the identifier in identity_edges
-- column n_edges: edges linking the identifier to another one
-- column status: linked, blocked:<rule> (store_phone, store_tablet or a default rule) or quarantined:<reason>
-- test: not_null(id_type, id_value, status)
-- test: unique(id_type, id_value)
-- test: sql: SELECT * FROM identity_map WHERE (customer_id IS NULL) <> (status LIKE 'blocked:%')
-- test: sql: SELECT m.* FROM identity_map m JOIN stores s ON m.id_type = 'phone' AND m.id_value = normalize_phone(s.phone_raw)
--   WHERE m.status <> 'blocked:store_phone'
SELECT *
FROM identity_stitch('identity_edges', '{"block_query": "SELECT ''phone'' AS id_type, normalize_phone(phone_raw) AS id_value, ''store_phone'' AS rule FROM stores WHERE normalize_phone(phone_raw) IS NOT NULL UNION ALL SELECT DISTINCT ''anonymous_id'', normalize_identifier(''anonymous_id'', anonymous_id), ''store_tablet'' FROM web_events WHERE page_url LIKE ''%instore=tablet%'' AND normalize_identifier(''anonymous_id'', anonymous_id) IS NOT NULL"}')
