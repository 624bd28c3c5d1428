-- description: The attribution models side by side: each channel's share of all conversions and of all
--   revenue under every model but participation, over the whole period, with last_touch (what most tools
--   report by default) as the baseline. '(unattributed)' is a row like the channels, so each model's shares add
--   up to 1 down the column. BI: a table with channel as rows and the *_conversion_share columns; the
--   deltas show which channels the last click under- or over-rates. Grain: one row per channel.
-- column channel: marketing channel or '(unattributed)'
-- column conversions_last_touch: conversions credited by last_touch (the absolute baseline)
-- column first_touch_conversion_share: share of all conversions under first_touch
-- column last_touch_conversion_share: … under last_touch
-- column last_non_direct_conversion_share: … under last_non_direct
-- column linear_conversion_share: … under linear
-- column position_based_conversion_share: … under position_based
-- column j_shaped_conversion_share: … under j_shaped
-- column inverse_j_conversion_share: … under inverse_j
-- column time_decay_conversion_share: … under time_decay
-- column markov_conversion_share: … under markov (transaction level)
-- column shapley_conversion_share: … under shapley (transaction level)
-- column first_touch_revenue_share: share of all revenue under first_touch
-- column last_touch_revenue_share: … under last_touch
-- column last_non_direct_revenue_share: … under last_non_direct
-- column linear_revenue_share: … under linear
-- column position_based_revenue_share: … under position_based
-- column j_shaped_revenue_share: … under j_shaped
-- column inverse_j_revenue_share: … under inverse_j
-- column time_decay_revenue_share: … under time_decay
-- column markov_revenue_share: … under markov
-- column shapley_revenue_share: … under shapley
-- column markov_vs_last_touch: markov_conversion_share - last_touch_conversion_share
-- column shapley_vs_last_touch: shapley_conversion_share - last_touch_conversion_share
-- test: not_null(channel, linear_conversion_share, markov_conversion_share, shapley_revenue_share)
-- test: unique(channel)
-- test: sql: SELECT * FROM (
--     SELECT sum(first_touch_conversion_share) AS first_touch, sum(last_touch_conversion_share) AS last_touch,
--            sum(linear_conversion_share) AS linear, sum(time_decay_conversion_share) AS time_decay,
--            sum(markov_conversion_share) AS markov, sum(shapley_conversion_share) AS shapley,
--            sum(position_based_revenue_share) AS position_based_revenue,
--            sum(markov_revenue_share) AS markov_revenue
--     FROM attribution_model_comparison)
--   WHERE greatest(abs(first_touch - 1), abs(last_touch - 1), abs(linear - 1), abs(time_decay - 1),
--                  abs(markov - 1), abs(shapley - 1), abs(position_based_revenue - 1), abs(markov_revenue - 1))
--         > 1e-9
WITH by_model AS (
  SELECT channel, model, sum(conversions) AS conversions, sum(revenue) AS revenue
  FROM attribution_channel_daily
  WHERE model <> 'participation'
  GROUP BY channel, model
),
shares AS (
  SELECT channel, model, conversions,
         conversions / sum(conversions) OVER (PARTITION BY model) AS conversion_share,
         revenue / sum(revenue) OVER (PARTITION BY model) AS revenue_share
  FROM by_model
),
wide AS (
  SELECT channel,
         coalesce(sum(conversions) FILTER (WHERE model = 'last_touch'), 0) AS conversions_last_touch,
         coalesce(sum(conversion_share) FILTER (WHERE model = 'first_touch'), 0) AS first_touch_conversion_share,
         coalesce(sum(conversion_share) FILTER (WHERE model = 'last_touch'), 0) AS last_touch_conversion_share,
         coalesce(sum(conversion_share) FILTER (WHERE model = 'last_non_direct'), 0)
           AS last_non_direct_conversion_share,
         coalesce(sum(conversion_share) FILTER (WHERE model = 'linear'), 0) AS linear_conversion_share,
         coalesce(sum(conversion_share) FILTER (WHERE model = 'position_based'), 0)
           AS position_based_conversion_share,
         coalesce(sum(conversion_share) FILTER (WHERE model = 'j_shaped'), 0) AS j_shaped_conversion_share,
         coalesce(sum(conversion_share) FILTER (WHERE model = 'inverse_j'), 0) AS inverse_j_conversion_share,
         coalesce(sum(conversion_share) FILTER (WHERE model = 'time_decay'), 0) AS time_decay_conversion_share,
         coalesce(sum(conversion_share) FILTER (WHERE model = 'markov'), 0) AS markov_conversion_share,
         coalesce(sum(conversion_share) FILTER (WHERE model = 'shapley'), 0) AS shapley_conversion_share,
         coalesce(sum(revenue_share) FILTER (WHERE model = 'first_touch'), 0) AS first_touch_revenue_share,
         coalesce(sum(revenue_share) FILTER (WHERE model = 'last_touch'), 0) AS last_touch_revenue_share,
         coalesce(sum(revenue_share) FILTER (WHERE model = 'last_non_direct'), 0) AS last_non_direct_revenue_share,
         coalesce(sum(revenue_share) FILTER (WHERE model = 'linear'), 0) AS linear_revenue_share,
         coalesce(sum(revenue_share) FILTER (WHERE model = 'position_based'), 0) AS position_based_revenue_share,
         coalesce(sum(revenue_share) FILTER (WHERE model = 'j_shaped'), 0) AS j_shaped_revenue_share,
         coalesce(sum(revenue_share) FILTER (WHERE model = 'inverse_j'), 0) AS inverse_j_revenue_share,
         coalesce(sum(revenue_share) FILTER (WHERE model = 'time_decay'), 0) AS time_decay_revenue_share,
         coalesce(sum(revenue_share) FILTER (WHERE model = 'markov'), 0) AS markov_revenue_share,
         coalesce(sum(revenue_share) FILTER (WHERE model = 'shapley'), 0) AS shapley_revenue_share
  FROM shares
  GROUP BY channel
)
SELECT *,
       markov_conversion_share - last_touch_conversion_share AS markov_vs_last_touch,
       shapley_conversion_share - last_touch_conversion_share AS shapley_vs_last_touch
FROM wide
