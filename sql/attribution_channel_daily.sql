-- description: Attributed conversions and revenue by day, channel and model: attribution_touch_credit summed
--   by the conversion's UTC date. '(unattributed)' is a channel like the others, so for every model but
--   participation the channels of a day add up to that day's conversions and revenue, and all days to the
--   totals of stg_conversions. BI: filter one model (never sum across models; participation counts each
--   channel of a path once and adds up to more than the conversions), then sum conversions and revenue over
--   days and channels. Grain: one row per (conversion_date, channel, model).
-- column conversion_date: UTC date of the conversions
-- column channel: marketing channel or '(unattributed)'
-- column channel_group: 'online', 'in_store' or '(unattributed)'
-- column model: the attribution model (see attribution_touch_credit)
-- column conversions: credited conversions (fractional)
-- column revenue: credited revenue, roubles (DOUBLE)
-- column touches: touches of that channel in the day's credited paths (0 for '(unattributed)')
-- column online_conversions: the part of conversions that were online orders
-- column offline_conversions: the part of conversions that were store receipts
-- test: not_null(conversion_date, channel, model, conversions, revenue, touches)
-- test: unique(conversion_date, channel, model)
-- test: sql: SELECT d.model, d.conversions, s.conversions AS expected, d.revenue, s.revenue AS expected_revenue
--   FROM (SELECT model, sum(conversions) AS conversions, sum(revenue) AS revenue
--         FROM attribution_channel_daily WHERE model <> 'participation' GROUP BY model) d
--   CROSS JOIN (SELECT CAST(count(*) AS DOUBLE) AS conversions, CAST(sum(revenue) AS DOUBLE) AS revenue
--               FROM stg_conversions) s
--   WHERE abs(d.conversions - s.conversions) > 1e-9 * greatest(1, s.conversions)
--      OR abs(d.revenue - s.revenue) > 1e-9 * greatest(1, s.revenue)
-- test: sql: SELECT d.conversion_date, d.model, d.conversions, s.conversions AS expected
--   FROM (SELECT conversion_date, model, sum(conversions) AS conversions FROM attribution_channel_daily
--         WHERE model <> 'participation' GROUP BY conversion_date, model) d
--   JOIN (SELECT CAST(conversion_ts AS DATE) AS conversion_date, CAST(count(*) AS DOUBLE) AS conversions
--         FROM stg_conversions GROUP BY 1) s ON s.conversion_date = d.conversion_date
--   WHERE abs(d.conversions - s.conversions) > 1e-9 * greatest(1, s.conversions)
SELECT conversion_date, channel, channel_group, model,
       sum(credit) AS conversions,
       sum(revenue_credit) AS revenue,
       count(touch_id) AS touches,
       coalesce(sum(credit) FILTER (WHERE conversion_channel = 'online'), 0) AS online_conversions,
       coalesce(sum(credit) FILTER (WHERE conversion_channel = 'offline'), 0) AS offline_conversions
FROM attribution_touch_credit
GROUP BY conversion_date, channel, channel_group, model
