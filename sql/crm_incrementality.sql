-- description: Incrementality of the CRM programme from its holdout: revenue, orders and buying rate per
--   customer of the treated ('target') group against the held-out 'control' group, with the absolute and
--   relative lift and 95 % confidence intervals. Units are customers: each crm_holdout key is normalised and
--   resolved through identity_map; keys of one customer count once; a customer whose keys fall in both groups
--   is left out (excluded_conflicting_customers); a key that resolves to no customer is a customer with no
--   purchases (intention to treat: it was assigned, and bought nothing we can see). Outcomes are over the
--   whole period of stg_conversions, online and offline.
--   Statistics: Welch's unequal-variance standard error se = sqrt(s_t²/n_t + s_c²/n_c) with the normal
--   approximation (groups of hundreds or more): absolute lift ± 1.96·se. The relative lift
--   target_mean / control_mean - 1 uses the delta method: se_rel = sqrt(s_t²/(n_t·m_c²) + m_t²·s_c²/(n_c·m_c⁴)).
--   z_score = absolute_lift / se (|z| > 1.96: significant at 5 %). Grain: one row per metric.
-- column metric: 'revenue_per_customer' (roubles), 'orders_per_customer' or 'buyer_rate' (share of customers with an order)
-- column control_customers: customers in the control group
-- column target_customers: customers in the target group
-- column control_mean: the metric's mean in the control group
-- column target_mean: the metric's mean in the target group
-- column absolute_lift: target_mean - control_mean
-- column standard_error: Welch standard error of absolute_lift
-- column absolute_lift_ci_low: absolute_lift - 1.96 * standard_error
-- column absolute_lift_ci_high: absolute_lift + 1.96 * standard_error
-- column relative_lift: target_mean / control_mean - 1
-- column relative_lift_ci_low: relative_lift - 1.96 * delta-method standard error
-- column relative_lift_ci_high: relative_lift + 1.96 * delta-method standard error
-- column z_score: absolute_lift / standard_error
-- column excluded_conflicting_customers: customers left out because their keys are in both groups
-- column unresolved_keys: holdout keys that resolved to no customer (counted as customers without purchases)
-- test: not_null(metric, control_customers, target_customers, control_mean, target_mean, absolute_lift)
-- test: unique(metric)
-- test: accepted_values(metric, 'revenue_per_customer', 'orders_per_customer', 'buyer_rate')
-- test: sql: SELECT metric FROM crm_incrementality
--   WHERE NOT (absolute_lift_ci_low <= absolute_lift AND absolute_lift <= absolute_lift_ci_high)
--      OR control_customers < 2 OR target_customers < 2
WITH keys AS (
  SELECT h."group" AS crm_group, h.key_type, h.customer_key,
         normalize_identifier(h.key_type, h.customer_key) AS id_value
  FROM crm_holdout h
),
resolved AS (
  SELECT k.crm_group, k.key_type, k.customer_key, m.customer_id
  FROM keys k
  LEFT JOIN identity_map m ON m.status = 'linked' AND m.id_type = k.key_type AND m.id_value = k.id_value
),
units AS (
  SELECT coalesce(customer_id, key_type || ':' || customer_key) AS unit, customer_id,
         min(crm_group) AS crm_group, count(DISTINCT crm_group) AS groups
  FROM resolved
  GROUP BY 1, 2
),
outcomes AS (
  SELECT customer_id, count(*) AS orders, CAST(sum(revenue) AS DOUBLE) AS revenue
  FROM stg_conversions
  WHERE customer_id IS NOT NULL
  GROUP BY customer_id
),
per_unit AS (
  SELECT u.crm_group, coalesce(o.revenue, 0) AS revenue, CAST(coalesce(o.orders, 0) AS DOUBLE) AS orders,
         CASE WHEN o.orders > 0 THEN 1.0 ELSE 0.0 END AS buyer
  FROM units u
  LEFT JOIN outcomes o ON o.customer_id = u.customer_id
  WHERE u.groups = 1
),
-- one pass over the customers for all metrics; the three rows are unpivoted from the aggregated row
groups AS (
  SELECT count(*) FILTER (WHERE crm_group = 'control') AS n_c,
         count(*) FILTER (WHERE crm_group = 'target') AS n_t,
         avg(revenue) FILTER (WHERE crm_group = 'control') AS revenue_m_c,
         avg(revenue) FILTER (WHERE crm_group = 'target') AS revenue_m_t,
         var_samp(revenue) FILTER (WHERE crm_group = 'control') AS revenue_v_c,
         var_samp(revenue) FILTER (WHERE crm_group = 'target') AS revenue_v_t,
         avg(orders) FILTER (WHERE crm_group = 'control') AS orders_m_c,
         avg(orders) FILTER (WHERE crm_group = 'target') AS orders_m_t,
         var_samp(orders) FILTER (WHERE crm_group = 'control') AS orders_v_c,
         var_samp(orders) FILTER (WHERE crm_group = 'target') AS orders_v_t,
         avg(buyer) FILTER (WHERE crm_group = 'control') AS buyer_m_c,
         avg(buyer) FILTER (WHERE crm_group = 'target') AS buyer_m_t,
         var_samp(buyer) FILTER (WHERE crm_group = 'control') AS buyer_v_c,
         var_samp(buyer) FILTER (WHERE crm_group = 'target') AS buyer_v_t,
         (SELECT count(*) FROM units WHERE groups > 1) AS conflicting,
         (SELECT count(*) FROM resolved WHERE customer_id IS NULL) AS unresolved
  FROM per_unit
),
metrics AS (
  SELECT 'revenue_per_customer' AS metric, n_c, n_t, revenue_m_c AS m_c, revenue_m_t AS m_t,
         revenue_v_c AS v_c, revenue_v_t AS v_t, conflicting, unresolved
  FROM groups
  UNION ALL
  SELECT 'orders_per_customer', n_c, n_t, orders_m_c, orders_m_t, orders_v_c, orders_v_t, conflicting, unresolved
  FROM groups
  UNION ALL
  SELECT 'buyer_rate', n_c, n_t, buyer_m_c, buyer_m_t, buyer_v_c, buyer_v_t, conflicting, unresolved
  FROM groups
),
stats AS (
  SELECT *, m_t - m_c AS lift, sqrt(v_t / n_t + v_c / n_c) AS se, m_t / m_c - 1 AS rel,
         sqrt(v_t / (n_t * m_c * m_c) + m_t * m_t * v_c / (n_c * m_c * m_c * m_c * m_c)) AS rel_se
  FROM metrics
)
SELECT metric, n_c AS control_customers, n_t AS target_customers, m_c AS control_mean, m_t AS target_mean,
       lift AS absolute_lift, se AS standard_error,
       lift - 1.96 * se AS absolute_lift_ci_low, lift + 1.96 * se AS absolute_lift_ci_high,
       rel AS relative_lift, rel - 1.96 * rel_se AS relative_lift_ci_low, rel + 1.96 * rel_se AS relative_lift_ci_high,
       lift / se AS z_score,
       conflicting AS excluded_conflicting_customers,
       unresolved AS unresolved_keys
FROM stats
