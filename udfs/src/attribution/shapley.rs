//! Shapley-value attribution kernels over aggregated paths.
//!
//! * `simplified` (Zhao, Mahboobi, Bagheri 2018, "Shapley Value Methods for Attribution Modeling
//!   in Online Advertising"): with the coalition value `v(S) = Σ_{T ⊆ S} R(T)`, where `R(T)` is
//!   what the journeys whose set of channels is exactly `T` produced, the Shapley value of
//!   channel `c` is `Σ_{T ∋ c} R(T) / |T|`: each path's conversions and revenue are split equally
//!   among its distinct channels. Linear in the input, any number of channels.
//! * `exact`: the same game evaluated by the Shapley formula over all `2^n` coalitions of the
//!   `n` channels (`φ_c = Σ_{S ∌ c} |S|! (n−|S|−1)! / n! · (v(S ∪ {c}) − v(S))`), the textbook
//!   computation of "coalition conversion values". By Zhao et al.'s theorem it equals
//!   `simplified`; it is kept as the auditable form and refuses more than
//!   [`MAX_EXACT_CHANNELS`] channels.
//! * `leave_one_out` (Google fractribution's "shapley"): per converting path, each position's
//!   marginal contribution is `max(p(path) − p(path without that position), 0)`, with
//!   `p = conversions / (conversions + nulls)` of the path as observed (0 for a path not in the
//!   input); a one-channel path gets `p`. Contributions are normalised per path, or the last
//!   channel gets everything when they are all 0, and summed per channel.
//!
//! Every method credits each path's conversions and revenue by shares that sum to 1, so the
//! channel totals equal the input totals.

use datafusion::common::{HashMap, Result, exec_err};

use super::paths_input::{AggregatedPaths, PathTotals};

/// Most channels `exact` accepts: it evaluates `2^n` coalitions.
pub(crate) const MAX_EXACT_CHANNELS: usize = 15;

/// Credited conversions and revenue per channel (index = channel id).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ShapleyCredits {
    pub conversions: Vec<f64>,
    pub revenue: Vec<f64>,
}

impl ShapleyCredits {
    fn zero(channels: usize) -> Self {
        Self {
            conversions: vec![0.0; channels],
            revenue: vec![0.0; channels],
        }
    }

    fn credit(&mut self, channel: u32, share: f64, totals: &PathTotals) {
        self.conversions[channel as usize] += share * totals.conversions;
        self.revenue[channel as usize] += share * totals.revenue;
    }
}

/// The distinct channels of a path, sorted.
fn channel_set(path: &[u32], out: &mut Vec<u32>) {
    out.clear();
    out.extend_from_slice(path);
    out.sort_unstable();
    out.dedup();
}

/// Zhao et al.'s simplified Shapley value.
pub(crate) fn simplified(paths: &AggregatedPaths) -> ShapleyCredits {
    let mut credits = ShapleyCredits::zero(paths.channels.len());
    let mut set = Vec::new();
    for path in &paths.paths {
        channel_set(&path.channels, &mut set);
        let share = 1.0 / set.len() as f64;
        for &channel in &set {
            credits.credit(channel, share, &path.totals);
        }
    }
    credits
}

/// The Shapley formula over every coalition of the game `v(S) = Σ_{T ⊆ S} R(T)`.
pub(crate) fn exact(paths: &AggregatedPaths) -> Result<ShapleyCredits> {
    let n = paths.channels.len();
    if n > MAX_EXACT_CHANNELS {
        return exec_err!(
            "shapley_attribution: method 'exact' evaluates 2^n coalitions and accepts at most {MAX_EXACT_CHANNELS} channels, the paths have {n}; use 'simplified' (the same values in linear time)"
        );
    }
    let coalitions = 1usize << n;
    // R(T), then v(S) = Σ_{T ⊆ S} R(T) by the subset-sum (zeta) transform.
    let mut conversions = vec![0.0; coalitions];
    let mut revenue = vec![0.0; coalitions];
    for path in &paths.paths {
        let mask = path
            .channels
            .iter()
            .fold(0usize, |mask, &c| mask | (1 << c));
        conversions[mask] += path.totals.conversions;
        revenue[mask] += path.totals.revenue;
    }
    for bit in 0..n {
        for mask in 0..coalitions {
            if mask & (1 << bit) != 0 {
                conversions[mask] += conversions[mask ^ (1 << bit)];
                revenue[mask] += revenue[mask ^ (1 << bit)];
            }
        }
    }
    // weight[s] = s! (n − s − 1)! / n! = 1 / (n · C(n − 1, s))
    let weight: Vec<f64> = (0..n)
        .map(|s| {
            let mut binomial = 1.0;
            for k in 0..s {
                binomial = binomial * (n - 1 - k) as f64 / (k + 1) as f64;
            }
            1.0 / (n as f64 * binomial)
        })
        .collect();
    let mut credits = ShapleyCredits::zero(n);
    for channel in 0..n {
        let bit = 1usize << channel;
        for coalition in (0..coalitions).filter(|m| m & bit == 0) {
            let w = weight[coalition.count_ones() as usize];
            credits.conversions[channel] +=
                w * (conversions[coalition | bit] - conversions[coalition]);
            credits.revenue[channel] += w * (revenue[coalition | bit] - revenue[coalition]);
        }
    }
    Ok(credits)
}

/// fractribution's normalised leave-one-out counterfactual with last-touch fallback.
pub(crate) fn leave_one_out(paths: &AggregatedPaths) -> ShapleyCredits {
    let probability_of: HashMap<&[u32], f64> = paths
        .paths
        .iter()
        .map(|path| (&*path.channels, conversion_probability(&path.totals)))
        .collect();
    let mut credits = ShapleyCredits::zero(paths.channels.len());
    let mut contributions: Vec<f64> = Vec::new();
    let mut counterfactual: Vec<u32> = Vec::new();
    for path in &paths.paths {
        if path.totals.conversions == 0.0 {
            continue; // nothing to credit (revenue needs conversions, see paths_input)
        }
        let channels = &path.channels;
        let p = conversion_probability(&path.totals);
        contributions.clear();
        if channels.len() == 1 {
            contributions.push(p);
        } else {
            for position in 0..channels.len() {
                counterfactual.clear();
                counterfactual.extend_from_slice(&channels[..position]);
                counterfactual.extend_from_slice(&channels[position + 1..]);
                let without = probability_of
                    .get(counterfactual.as_slice())
                    .copied()
                    .unwrap_or(0.0);
                contributions.push((p - without).max(0.0));
            }
        }
        let sum: f64 = contributions.iter().sum();
        if sum > 0.0 {
            for (position, contribution) in contributions.iter().enumerate() {
                credits.credit(channels[position], contribution / sum, &path.totals);
            }
        } else if let Some(&last) = channels.last() {
            credits.credit(last, 1.0, &path.totals);
        }
    }
    credits
}

fn conversion_probability(totals: &PathTotals) -> f64 {
    let count = totals.conversions + totals.nulls;
    if count > 0.0 {
        totals.conversions / count
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(rows: &[(&[&str], f64, f64, f64)]) -> AggregatedPaths {
        AggregatedPaths::from_numbers("shapley_attribution", rows).unwrap()
    }

    fn assert_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-9, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn three_channel_game_by_hand() -> Result<()> {
        // R({a}) = 2, R({a,b}) = 3, R({a,b,c}) = 6, so v(a) = 2, v(ab) = 5, v(ac) = 2, v(abc) = 11
        // and v = 0 without a. φ_a = 1/3·2 + 1/6·5 + 1/6·2 + 1/3·11 = 5.5,
        // φ_b = 1/6·(5−2) + 1/3·(11−2) = 3.5, φ_c = 1/3·(11−5) = 2.
        let input = paths(&[
            (&["a"], 2.0, 20.0, 1.0),
            (&["b", "a", "b"], 3.0, 30.0, 0.0),
            (&["c", "a", "b"], 6.0, 60.0, 9.0),
        ]);
        let exact = exact(&input)?;
        assert_close(&exact.conversions, &[5.5, 3.5, 2.0]);
        assert_close(&exact.revenue, &[55.0, 35.0, 20.0]);
        let simplified = simplified(&input);
        assert_close(&simplified.conversions, &[5.5, 3.5, 2.0]);
        Ok(())
    }

    #[test]
    fn exact_equals_simplified_on_many_channels() -> Result<()> {
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        let mut rows: Vec<(Vec<&str>, f64, f64, f64)> = Vec::new();
        for i in 0..60usize {
            let path: Vec<&str> = (0..1 + i % 5)
                .map(|k| names[(i * 7 + k * 3) % names.len()])
                .collect();
            rows.push((
                path,
                (i % 4) as f64 + 0.25,
                (i * 13 % 97) as f64,
                (i % 3) as f64,
            ));
        }
        let rows: Vec<(&[&str], f64, f64, f64)> = rows
            .iter()
            .map(|(p, c, r, n)| (p.as_slice(), *c, *r, *n))
            .collect();
        let input = paths(&rows);
        let exact = exact(&input)?;
        let simplified = simplified(&input);
        assert_close(&exact.conversions, &simplified.conversions);
        assert_close(&exact.revenue, &simplified.revenue);
        Ok(())
    }

    #[test]
    fn exact_refuses_more_than_fifteen_channels() {
        let names: Vec<String> = (0..16).map(|i| format!("c{i:02}")).collect();
        let path: Vec<&str> = names.iter().map(String::as_str).collect();
        let input = paths(&[(path.as_slice(), 1.0, 0.0, 0.0)]);
        let err = exact(&input).unwrap_err().to_string();
        assert!(
            err.contains("at most 15 channels, the paths have 16"),
            "{err}"
        );
    }

    #[test]
    fn leave_one_out_matches_fractribution() {
        // The Snowplow dbt-snowplow-fractribution test vectors (Apache-2.0): see
        // tests/slt/attribution/shapley.slt for the SQL version of the same check.
        let input = paths(&[
            (&["Direct"], 3.0, 94.42, 25.0),
            (&["Organic_Search"], 1.0, 66.5, 26.0),
            (&["Referral", "Direct"], 0.0, 0.0, 1.0),
            (&["Video"], 1.0, 200.0, 2.0),
            (&["Organic_Search", "Paid_Search_Other"], 0.0, 0.0, 2.0),
            (&["Referral"], 0.0, 0.0, 2.0),
            (&["Organic_Search", "Direct"], 1.0, 140.0, 1.0),
            (&["Paid_Search_Other"], 0.0, 0.0, 1.0),
            (&["Unmatched_Channel"], 0.0, 0.0, 1.0),
        ]);
        let credits = leave_one_out(&input);
        // channels in name order: Direct, Organic_Search, Paid_Search_Other, Referral,
        // Unmatched_Channel, Video
        assert_close(
            &credits.conversions,
            &[3.5409582690664606, 1.459041731664606, 0.0, 0.0, 0.0, 1.0],
        );
        assert_close(
            &credits.revenue,
            &[
                170.154_157_651_304_48,
                130.765_842_349_304_48,
                0.0,
                0.0,
                0.0,
                200.0,
            ],
        );
    }

    #[test]
    fn leave_one_out_falls_back_to_last_touch_and_counts_positions() {
        // [a, b]: p = 0.5 and both counterfactuals convert better, so all contributions are 0
        // and b (last) gets the conversion. [c, d, c]: removing either c gives [d, c] or [c, d].
        let input = paths(&[
            (&["a", "b"], 1.0, 10.0, 1.0),
            (&["a"], 9.0, 0.0, 1.0),
            (&["b"], 9.0, 0.0, 1.0),
            (&["c", "d", "c"], 1.0, 0.0, 0.0),
            (&["d", "c"], 1.0, 0.0, 1.0),
        ]);
        let credits = leave_one_out(&input);
        // [c, d, c]: p = 1; positions: c → 1 − p([d, c]) = 0.5, d → 1 − p([c, c]) = 1,
        // c → 1 − p([c, d]) = 1; shares 0.2, 0.4, 0.4 → c 0.6, d 0.4.
        // [d, c]: p = 0.5; d → 0.5 − p([c]) = 0.5, c → 0.5 − p([d]) = 0.5 → 0.5 each.
        assert_close(&credits.conversions, &[9.0, 10.0, 1.1, 0.9]);
        assert_close(&credits.revenue, &[0.0, 10.0, 0.0, 0.0]);
    }
}
