-- description: The data-driven models' verdict per channel, from the aggregated paths (attribution_paths):
--   markov_attribution (order 1, exact absorbing-chain solve: removal effects) and shapley_attribution
--   ('simplified', Zhao et al.). attribution_touch_credit spreads each conversion over its own path's channels
--   in proportion to weight. Conversions and revenue are the models' own aggregate credits (Markov revenue uses
--   the value removal effect, so it can differ from the transaction-level revenue credit of
--   attribution_touch_credit); both reconcile to the paths' totals including the '(unattributed)' row.
--   Grain: one row per (model, channel).
-- column model: 'markov' or 'shapley'
-- column channel: the channel, or '(unattributed)' for conversions with an empty path
-- column weight: markov: the removal effect (share of converting walks that visit the channel); shapley: the channel's share of all conversions; NULL for '(unattributed)'
-- column conversions: the model's conversions credited to the channel
-- column revenue: the model's revenue credited to the channel, roubles
-- column conversion_share: conversions / all conversions of attribution_paths
-- test: not_null(model, channel, conversions, revenue, conversion_share)
-- test: unique(model, channel)
-- test: accepted_values(model, 'markov', 'shapley')
-- test: sql: SELECT model, sum(conversions) AS credited, min(total) AS expected FROM attribution_channel_weights
--   CROSS JOIN (SELECT sum(conversions) AS total FROM attribution_paths) GROUP BY model
--   HAVING abs(sum(conversions) - min(total)) > 1e-9 * greatest(1, min(total))
-- test: sql: SELECT model, channel, weight FROM attribution_channel_weights
--   WHERE channel <> '(unattributed)' AND NOT weight >= 0
WITH credits AS (
  SELECT 'markov' AS model, channel, removal_effect AS weight, conversions, revenue
  FROM markov_attribution('attribution_paths', 1)
  UNION ALL
  SELECT 'shapley', channel, CASE WHEN channel <> '(unattributed)' THEN share END, conversions, revenue
  FROM shapley_attribution('attribution_paths', 'simplified')
)
SELECT c.model, c.channel, c.weight, c.conversions, c.revenue, c.conversions / p.total AS conversion_share
FROM credits c
CROSS JOIN (SELECT sum(conversions) AS total FROM attribution_paths) p
