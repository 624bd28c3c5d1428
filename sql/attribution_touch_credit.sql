-- description: Credit of every touch of every journey under every attribution model, with the revenue it
--   earns. Rule models (attribution_weight over each conversion's path, ordered by touch_ts, touch_id):
--   first_touch, last_touch, last_non_direct, linear, position_based (40/20/40), j_shaped (20/20/60),
--   inverse_j (60/20/20), time_decay (half-life 7 days) and participation (1 per distinct channel of the path:
--   inflated by design, never add it up with the others). Data-driven models, transaction level: markov and
--   shapley spread each conversion over the distinct channels of its own path in proportion to the channel's
--   weight in attribution_channel_weights, then equally over that channel's touches in the path (a path whose
--   channels all weigh 0 is split linearly). A conversion without touches has one row per model with channel
--   '(unattributed)' and credit 1, so every total includes it. revenue_credit = credit * revenue.
--   Reconciliation (tested): for every model but participation, the credits of a conversion sum to 1 and its
--   revenue credits to its revenue (to 1e-9); that every conversion is here once per model is tested on
--   attribution_channel_daily's totals (a duplicated or missing row breaks one of the two sums, which is
--   cheaper to check than the uniqueness of ~50 rows per conversion). Grain: one row per
--   (conversion, touch, model).
-- column conversion_id: the conversion
-- column conversion_ts: its time
-- column conversion_date: its UTC date
-- column conversion_channel: 'online' or 'offline'
-- column customer_id: the stitched customer (NULL on unattributed conversions without a customer)
-- column touch_id: the touch; NULL on '(unattributed)' rows
-- column touch_ts: its time
-- column channel: the touch's channel or '(unattributed)'
-- column channel_group: 'online', 'in_store' or '(unattributed)'
-- column model: first_touch, last_touch, last_non_direct, linear, position_based, j_shaped, inverse_j, time_decay, participation, markov, shapley
-- column credit: the touch's share of the conversion (DOUBLE)
-- column revenue: the conversion's revenue, roubles (repeated on each row: do not sum it)
-- column revenue_credit: credit * revenue (DOUBLE)
-- test: not_null(conversion_id, conversion_date, channel, model, credit, revenue_credit)
-- test: accepted_values(model, 'first_touch', 'last_touch', 'last_non_direct', 'linear', 'position_based',
--   'j_shaped', 'inverse_j', 'time_decay', 'participation', 'markov', 'shapley')
-- test: sql: SELECT conversion_id, model, sum(credit) AS credit, sum(revenue_credit) AS revenue_credit,
--     min(revenue) AS revenue
--   FROM attribution_touch_credit WHERE model <> 'participation' GROUP BY conversion_id, model
--   HAVING abs(sum(credit) - 1) > 1e-9 OR abs(sum(revenue_credit) - CAST(min(revenue) AS DOUBLE)) > 1e-9
-- test: sql: SELECT conversion_id, touch_id, model, credit FROM attribution_touch_credit
--   WHERE NOT (credit >= 0 AND credit <= 1)
WITH touches AS (
  SELECT * FROM journeys WHERE touch_id IS NOT NULL
),
-- The rule weights are computed next to every column of the touch (one pass, no join back to the touches).
rule_weights AS (
  SELECT conversion_id, conversion_ts, conversion_channel, customer_id, touch_id, touch_ts, channel, channel_group,
         revenue,
         attribution_weight('first_touch', touch_ts, conversion_ts) OVER path AS first_touch,
         attribution_weight('last_touch', touch_ts, conversion_ts) OVER path AS last_touch,
         attribution_weight('last_non_direct', touch_ts, conversion_ts, channel) OVER path AS last_non_direct,
         attribution_weight('linear', touch_ts, conversion_ts) OVER path AS linear,
         attribution_weight('position_based', touch_ts, conversion_ts) OVER path AS position_based,
         attribution_weight('j_shaped', touch_ts, conversion_ts) OVER path AS j_shaped,
         attribution_weight('inverse_j', touch_ts, conversion_ts) OVER path AS inverse_j,
         attribution_weight('time_decay', touch_ts, conversion_ts, INTERVAL '7 days') OVER path AS time_decay,
         attribution_weight('participation', touch_ts, conversion_ts, channel) OVER path AS participation
  FROM touches
  WINDOW path AS (PARTITION BY conversion_id ORDER BY touch_ts, touch_id)
),
-- data-driven models: the conversion's distinct channels with their weight and number of touches
path_channels AS (
  SELECT conversion_id, channel, count(*) AS channel_touches FROM touches GROUP BY conversion_id, channel
),
channel_weights AS (
  SELECT p.conversion_id, p.channel, p.channel_touches,
         coalesce(m.weight, 0) AS markov_weight,
         sum(coalesce(m.weight, 0)) OVER (PARTITION BY p.conversion_id) AS markov_total,
         coalesce(s.weight, 0) AS shapley_weight,
         sum(coalesce(s.weight, 0)) OVER (PARTITION BY p.conversion_id) AS shapley_total,
         count(*) OVER (PARTITION BY p.conversion_id) AS path_channels
  FROM path_channels p
  LEFT JOIN attribution_channel_weights m ON m.model = 'markov' AND m.channel = p.channel
  LEFT JOIN attribution_channel_weights s ON s.model = 'shapley' AND s.channel = p.channel
),
data_driven AS (
  SELECT conversion_id, channel,
         CASE WHEN markov_total > 0 THEN markov_weight / markov_total ELSE 1.0 / path_channels END
           / channel_touches AS markov,
         CASE WHEN shapley_total > 0 THEN shapley_weight / shapley_total ELSE 1.0 / path_channels END
           / channel_touches AS shapley
  FROM channel_weights
),
wide AS (
  SELECT r.*, d.markov, d.shapley
  FROM rule_weights r
  JOIN data_driven d ON d.conversion_id = r.conversion_id AND d.channel = r.channel
),
models(model) AS (
  VALUES ('first_touch'), ('last_touch'), ('last_non_direct'), ('linear'), ('position_based'), ('j_shaped'),
         ('inverse_j'), ('time_decay'), ('participation'), ('markov'), ('shapley')
),
credited AS (
  SELECT w.conversion_id, w.conversion_ts, w.conversion_channel, w.customer_id, w.touch_id, w.touch_ts,
         w.channel, w.channel_group, m.model,
         CASE m.model
           WHEN 'first_touch' THEN w.first_touch
           WHEN 'last_touch' THEN w.last_touch
           WHEN 'last_non_direct' THEN w.last_non_direct
           WHEN 'linear' THEN w.linear
           WHEN 'position_based' THEN w.position_based
           WHEN 'j_shaped' THEN w.j_shaped
           WHEN 'inverse_j' THEN w.inverse_j
           WHEN 'time_decay' THEN w.time_decay
           WHEN 'participation' THEN w.participation
           WHEN 'markov' THEN w.markov
           WHEN 'shapley' THEN w.shapley
         END AS credit,
         w.revenue
  FROM wide w
  CROSS JOIN models m
  UNION ALL
  SELECT j.conversion_id, j.conversion_ts, j.conversion_channel, j.customer_id, j.touch_id, j.touch_ts,
         j.channel, j.channel_group, m.model, 1.0, j.revenue
  FROM journeys j
  CROSS JOIN models m
  WHERE j.touch_id IS NULL
)
SELECT conversion_id, conversion_ts, CAST(conversion_ts AS DATE) AS conversion_date, conversion_channel,
       customer_id, touch_id, touch_ts, channel, channel_group, model, credit, revenue,
       credit * CAST(revenue AS DOUBLE) AS revenue_credit
FROM credited
