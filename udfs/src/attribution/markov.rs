//! The exact Markov-chain attribution kernel: an absorbing chain built from aggregated paths with
//! ChannelAttribution's semantics, solved exactly instead of by simulation.
//!
//! **States.** Order 1: one state per channel, consecutive duplicates of a path collapsed
//! (`a, a, b` is `a → b`). Order k > 1: the states are the windows of k consecutive channels of
//! the path (`a, b, c` at order 2 is `(a, b) → (b, c)`), a path shorter than k is one state of all
//! its channels, and consecutive equal windows are collapsed; this is what ChannelAttribution's
//! `markov_model(order = k)` builds. Every path starts in `(start)` and ends in `(conversion)`
//! with weight `conversions` and in `(null)` with weight `nulls`; each of its transitions has
//! weight `conversions + nulls`. Transition probabilities are the weights normalised per state.
//!
//! **Removal effect.** `RE_c = 1 − P(conversion | c removed) / P(conversion)`, where removing `c`
//! sends every state containing `c` to `(null)`. That is exactly `P(visit c | conversion)`, the
//! quantity ChannelAttribution estimates by simulation (the share of simulated converting paths
//! that visited `c`): a converting walk avoids `c` precisely when it converts in the chain
//! without `c`. Conversion credit is `RE_c / Σ RE × total conversions`.
//!
//! **Revenue.** ChannelAttribution draws a converting walk's value from the values per conversion
//! of the paths that converted from the walk's last state, and credits it to every channel the
//! walk visited. The exact counterpart used here: the mean value per conversion of state `s` is
//! `m_s = revenue of paths ending in s / their conversions`, the value removal effect is
//! `1 − V(c removed) / V` with `V = Σ_s P(absorbed from s into conversion) · m_s`, and revenue
//! credit is the value removal effect normalised over channels × total revenue.
//!
//! **Solve.** `x = Q x + r` (absorption into conversion, and value) by Gauss-Seidel run twice, up
//! from 0 and down from an upper bound: both sequences are monotone and bracket the solution, so
//! the gap at `(start)` is a proven error bound. The solve stops when that gap is below
//! [`RELATIVE_TOLERANCE`] of the result, and fails with an error after [`MAX_SWEEPS`].

use std::cmp::Ordering;

use datafusion::common::{HashMap, Result, exec_err, plan_err};

use super::paths_input::AggregatedPaths;

/// Highest supported order.
pub(crate) const MAX_ORDER: usize = 4;

/// Bound on the error of every absorption probability, relative to the unrestricted chain's.
pub(crate) const RELATIVE_TOLERANCE: f64 = 1e-13;

/// Gauss-Seidel sweeps before the solve gives up (only chains whose walks almost never end need
/// that many).
pub(crate) const MAX_SWEEPS: usize = 200_000;

/// State names of the chain outside the channel states.
pub(crate) const START: &str = "(start)";
pub(crate) const CONVERSION: &str = "(conversion)";
pub(crate) const NULL: &str = "(null)";

/// Separator of the channels in the name of a higher-order state: `a > b`.
pub(crate) const TUPLE_SEPARATOR: &str = " > ";

/// A channel state: up to [`MAX_ORDER`] channel ids (no allocation per state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct StateKey {
    len: u8,
    channels: [u32; MAX_ORDER],
}

impl StateKey {
    fn new(channels: &[u32]) -> Self {
        let mut key = Self {
            len: channels.len() as u8,
            channels: [0; MAX_ORDER],
        };
        key.channels[..channels.len()].copy_from_slice(channels);
        key
    }

    fn as_slice(&self) -> &[u32] {
        &self.channels[..self.len as usize]
    }
}

impl Ord for StateKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl PartialOrd for StateKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The absorbing chain. Transient state 0 is `(start)`; states `1..` are channel states in
/// channel order. Transitions between transient states are stored by row (CSR).
#[derive(Debug, Clone)]
pub(crate) struct MarkovChain {
    keys: Vec<StateKey>,
    row_start: Vec<usize>,
    targets: Vec<u32>,
    probabilities: Vec<f64>,
    conversion_probability: Vec<f64>,
    null_probability: Vec<f64>,
    value_per_conversion: Vec<f64>,
    channel_count: usize,
    total_conversions: f64,
    total_revenue: f64,
}

/// One transition of the chain, by state names, for the `transitions` output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Transition {
    pub from: String,
    pub to: String,
    pub probability: f64,
}

/// Removal effects per channel (index = channel id), for conversions and for value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RemovalEffects {
    pub conversion: Vec<f64>,
    pub value: Vec<f64>,
}

/// Absorption into `(conversion)` from `(start)`, and the value absorbed.
#[derive(Debug, Clone, Copy)]
struct Absorption {
    conversion: f64,
    value: f64,
}

impl MarkovChain {
    /// Builds the order-`order` chain of `paths` (order 1 to [`MAX_ORDER`]).
    pub(crate) fn build(paths: &AggregatedPaths, order: usize) -> Result<Self> {
        if !(1..=MAX_ORDER).contains(&order) {
            return plan_err!("markov order must be between 1 and {MAX_ORDER}, got {order}");
        }
        const FROM_START: u32 = u32::MAX;
        let mut ids = StateIds::new(paths.channels.len(), order);
        let mut keys: Vec<StateKey> = Vec::new();
        let mut weights: HashMap<u64, f64> = HashMap::new();
        let mut ends: Vec<[f64; 3]> = Vec::new(); // conversions, nulls, revenue ending in a state
        let mut states: Vec<u32> = Vec::new();
        let (mut total_conversions, mut total_revenue) = (0.0, 0.0);
        for path in &paths.paths {
            let totals = path.totals;
            let weight = totals.conversions + totals.nulls;
            if weight == 0.0 {
                continue; // a path nobody walked adds no transition
            }
            states.clear();
            for window in state_windows(&path.channels, order) {
                let id = ids.get_or_insert(window, || {
                    keys.push(StateKey::new(window));
                    ends.push([0.0; 3]);
                    (keys.len() - 1) as u32
                });
                if states.last() != Some(&id) {
                    states.push(id);
                }
            }
            let mut from = FROM_START;
            for &to in &states {
                *weights.entry(edge_key(from, to)).or_default() += weight;
                from = to;
            }
            if let Some(end) = ends.get_mut(from as usize) {
                end[0] += totals.conversions;
                end[1] += totals.nulls;
                end[2] += totals.revenue;
            }
            total_conversions += totals.conversions;
            total_revenue += totals.revenue;
        }

        // Renumber: (start) = 0, channel states by key order, so the output does not depend on
        // which path came first.
        let mut order_of: Vec<u32> = (0..keys.len() as u32).collect();
        order_of.sort_by(|&a, &b| keys[a as usize].cmp(&keys[b as usize]));
        let mut index = vec![0u32; keys.len()];
        for (rank, &old) in order_of.iter().enumerate() {
            index[old as usize] = rank as u32 + 1;
        }
        let n = keys.len() + 1;
        let mut sorted_keys = vec![StateKey::new(&[]); n];
        let mut end_weights = vec![[0.0; 3]; n];
        for (old, key) in keys.iter().enumerate() {
            sorted_keys[index[old] as usize] = *key;
            end_weights[index[old] as usize] = ends[old];
        }
        let mut edges: Vec<(u32, u32, f64)> = weights
            .into_iter()
            .map(|(key, weight)| {
                let (from, to) = ((key >> 32) as u32, key as u32);
                let from = if from == FROM_START {
                    0
                } else {
                    index[from as usize]
                };
                (from, index[to as usize], weight)
            })
            .collect();
        edges.sort_by_key(|&(from, to, _)| (from, to));

        let mut out_weight = vec![0.0; n];
        for &(from, _, weight) in &edges {
            out_weight[from as usize] += weight;
        }
        for (state, end) in end_weights.iter().enumerate() {
            out_weight[state] += end[0] + end[1];
        }
        let mut row_start = vec![0usize; n + 1];
        for &(from, _, _) in &edges {
            row_start[from as usize + 1] += 1;
        }
        for state in 0..n {
            row_start[state + 1] += row_start[state];
        }
        let targets = edges.iter().map(|&(_, to, _)| to).collect();
        let probabilities = edges
            .iter()
            .map(|&(from, _, weight)| weight / out_weight[from as usize])
            .collect();
        let share = |state: usize, end: usize| {
            if out_weight[state] > 0.0 {
                end_weights[state][end] / out_weight[state]
            } else {
                0.0
            }
        };
        let conversion_probability = (0..n).map(|s| share(s, 0)).collect();
        let null_probability = (0..n).map(|s| share(s, 1)).collect();
        let value_per_conversion = end_weights
            .iter()
            .map(|end| if end[0] > 0.0 { end[2] / end[0] } else { 0.0 })
            .collect();
        Ok(Self {
            keys: sorted_keys,
            row_start,
            targets,
            probabilities,
            conversion_probability,
            null_probability,
            value_per_conversion,
            channel_count: paths.channels.len(),
            total_conversions,
            total_revenue,
        })
    }

    /// Number of transient states, `(start)` included.
    #[cfg(test)]
    pub(crate) fn state_count(&self) -> usize {
        self.keys.len()
    }

    /// Conversions and revenue of the paths in the chain (non-empty paths).
    pub(crate) fn totals(&self) -> (f64, f64) {
        (self.total_conversions, self.total_revenue)
    }

    /// Every transition with a positive probability: by source state, then target, with
    /// `(conversion)` and `(null)` last.
    pub(crate) fn transitions(&self, channels: &[String]) -> Vec<Transition> {
        let mut out = Vec::with_capacity(self.targets.len() + 2 * self.keys.len());
        for state in 0..self.keys.len() {
            let from = self.state_name(state, channels);
            for edge in self.row_start[state]..self.row_start[state + 1] {
                out.push(Transition {
                    from: from.clone(),
                    to: self.state_name(self.targets[edge] as usize, channels),
                    probability: self.probabilities[edge],
                });
            }
            for (to, probability) in [
                (CONVERSION, self.conversion_probability[state]),
                (NULL, self.null_probability[state]),
            ] {
                if probability > 0.0 {
                    out.push(Transition {
                        from: from.clone(),
                        to: to.to_string(),
                        probability,
                    });
                }
            }
        }
        out
    }

    fn state_name(&self, state: usize, channels: &[String]) -> String {
        if state == 0 {
            return START.to_string();
        }
        let names: Vec<&str> = self.keys[state]
            .as_slice()
            .iter()
            .map(|&c| channels.get(c as usize).map_or("?", String::as_str))
            .collect();
        names.join(TUPLE_SEPARATOR)
    }

    /// Removal effects of every channel; `None` when nothing converts (they are undefined).
    pub(crate) fn removal_effects(&self) -> Result<Option<RemovalEffects>> {
        if self.total_conversions <= 0.0 {
            return Ok(None);
        }
        let n = self.keys.len();
        let mut removed = vec![false; n];
        let base = self.absorb(&removed, None)?;
        let mut states_of: Vec<Vec<usize>> = vec![Vec::new(); self.channel_count];
        for (state, key) in self.keys.iter().enumerate().skip(1) {
            let channels = key.as_slice();
            for (i, &channel) in channels.iter().enumerate() {
                // a tuple like (a, b, a) lists its state under a once
                if !channels[..i].contains(&channel) {
                    states_of[channel as usize].push(state);
                }
            }
        }
        let mut effects = RemovalEffects {
            conversion: vec![0.0; self.channel_count],
            value: vec![0.0; self.channel_count],
        };
        for (channel, states) in states_of.iter().enumerate() {
            if states.is_empty() {
                continue; // the channel is on no walked path: removing it changes nothing
            }
            for &state in states {
                removed[state] = true;
            }
            let without = self.absorb(&removed, Some(base))?;
            for &state in states {
                removed[state] = false;
            }
            effects.conversion[channel] = removal_effect(without.conversion, base.conversion);
            effects.value[channel] = removal_effect(without.value, base.value);
        }
        Ok(Some(effects))
    }

    /// Solves the absorption from `(start)` with the `removed` states sent to `(null)`.
    ///
    /// `base` is the unrestricted chain's solution, which scales the tolerance of the restricted
    /// solves (their removal effects divide by it).
    fn absorb(&self, removed: &[bool], base: Option<Absorption>) -> Result<Absorption> {
        let n = self.keys.len();
        let value_bound = self
            .value_per_conversion
            .iter()
            .copied()
            .fold(0.0, f64::max);
        // x = [conversion lower, conversion upper, value lower, value upper] per state.
        let mut x = vec![[0.0, 1.0, 0.0, value_bound]; n];
        for (state, &is_removed) in removed.iter().enumerate() {
            if is_removed {
                x[state] = [0.0; 4];
            }
        }
        for sweep in 1..=MAX_SWEEPS {
            // Backwards, so (start) is updated last, from this sweep's values.
            for state in (0..n).rev() {
                if removed[state] {
                    continue;
                }
                let to_conversion = self.conversion_probability[state];
                let to_value = to_conversion * self.value_per_conversion[state];
                let mut next = [to_conversion, to_conversion, to_value, to_value];
                for edge in self.row_start[state]..self.row_start[state + 1] {
                    let p = self.probabilities[edge];
                    let target = &x[self.targets[edge] as usize];
                    for (sum, bound) in next.iter_mut().zip(target) {
                        *sum += p * bound;
                    }
                }
                x[state] = next;
            }
            let [lower_c, upper_c, lower_v, upper_v] = x[0];
            let (scale_c, scale_v) = match base {
                Some(base) => (base.conversion, base.value),
                None => (lower_c, lower_v),
            };
            let converged = upper_c - lower_c <= RELATIVE_TOLERANCE * scale_c
                && upper_v - lower_v <= RELATIVE_TOLERANCE * scale_v;
            if converged {
                return Ok(Absorption {
                    conversion: (lower_c + upper_c) / 2.0,
                    value: (lower_v + upper_v) / 2.0,
                });
            }
            if sweep == MAX_SWEEPS {
                return exec_err!(
                    "markov_attribution: the absorbing-chain solve did not converge in {MAX_SWEEPS} sweeps \
                     (P(conversion) between {lower_c} and {upper_c}): the paths make walks that almost never end"
                );
            }
        }
        exec_err!("markov_attribution: the absorbing-chain solve ran no sweep")
    }
}

/// `1 − without / with`, kept in [0, 1] against rounding.
fn removal_effect(without: f64, with: f64) -> f64 {
    if with > 0.0 {
        (1.0 - without / with).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// A transition `from → to` as one integer key (cheaper to hash than a pair).
fn edge_key(from: u32, to: u32) -> u64 {
    (u64::from(from) << 32) | u64::from(to)
}

/// The most slots [`StateIds`] gives a dense table (4 MiB of ids).
const MAX_DENSE_STATES: usize = 1 << 20;

/// State ids by channel window, while the chain is built: a dense table indexed by the window
/// (as a number in base `channels`, after the windows of every shorter length) when all
/// possible windows fit in [`MAX_DENSE_STATES`] slots, as with tens of channels up to order 4;
/// a hash map otherwise.
enum StateIds {
    Dense {
        channels: usize,
        /// `offsets[l]`: the first slot of the windows of length `l + 1`.
        offsets: [usize; MAX_ORDER],
        ids: Vec<u32>,
    },
    Hashed(HashMap<StateKey, u32>),
}

impl StateIds {
    const UNSET: u32 = u32::MAX;

    fn new(channels: usize, order: usize) -> Self {
        let mut offsets = [0usize; MAX_ORDER];
        let mut slots = 0usize;
        let mut windows = 1usize;
        for offset in offsets.iter_mut().take(order) {
            *offset = slots;
            windows = windows.saturating_mul(channels);
            slots = slots.saturating_add(windows);
        }
        if slots <= MAX_DENSE_STATES {
            Self::Dense {
                channels,
                offsets,
                ids: vec![Self::UNSET; slots],
            }
        } else {
            Self::Hashed(HashMap::new())
        }
    }

    /// The id of `window`, numbered by `insert` when it is new.
    fn get_or_insert(&mut self, window: &[u32], insert: impl FnOnce() -> u32) -> u32 {
        match self {
            Self::Dense {
                channels,
                offsets,
                ids,
            } => {
                // Windows are 1 to `order` channels long, each id below `channels`.
                let slot = offsets[window.len() - 1]
                    + window
                        .iter()
                        .fold(0usize, |slot, &c| slot * *channels + c as usize);
                if ids[slot] == Self::UNSET {
                    ids[slot] = insert();
                }
                ids[slot]
            }
            Self::Hashed(ids) => *ids.entry(StateKey::new(window)).or_insert_with(insert),
        }
    }
}

/// The channel windows of a path at `order`, before collapsing repeats (see the module docs).
fn state_windows(path: &[u32], order: usize) -> impl Iterator<Item = &[u32]> {
    let size = order.min(path.len()).max(1);
    path.windows(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(rows: &[(&[&str], f64, f64, f64)]) -> AggregatedPaths {
        AggregatedPaths::from_numbers("markov_attribution", rows).unwrap()
    }

    /// The absorption probabilities by a dense Gaussian elimination of (I − Q) x = r: an
    /// independent solve of the same chain.
    fn dense_absorption(chain: &MarkovChain, removed: &[bool]) -> (f64, f64) {
        let n = chain.state_count();
        let mut a = vec![vec![0.0; n + 2]; n];
        for s in 0..n {
            a[s][s] = 1.0;
            if removed[s] {
                continue;
            }
            for e in chain.row_start[s]..chain.row_start[s + 1] {
                a[s][chain.targets[e] as usize] -= chain.probabilities[e];
            }
            a[s][n] = chain.conversion_probability[s];
            a[s][n + 1] = chain.conversion_probability[s] * chain.value_per_conversion[s];
        }
        for col in 0..n {
            let pivot = (col..n)
                .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
                .unwrap();
            a.swap(col, pivot);
            let pivot_row = a[col].clone();
            for (row, values) in a.iter_mut().enumerate() {
                if row != col {
                    let factor = values[col] / pivot_row[col];
                    for (value, p) in values[col..].iter_mut().zip(&pivot_row[col..]) {
                        *value -= factor * p;
                    }
                }
            }
        }
        (a[0][n] / a[0][0], a[0][n + 1] / a[0][0])
    }

    fn dense_removal_effects(chain: &MarkovChain) -> Vec<(f64, f64)> {
        let n = chain.state_count();
        let base = dense_absorption(chain, &vec![false; n]);
        (0..chain.channel_count as u32)
            .map(|channel| {
                let removed: Vec<bool> = (0..n)
                    .map(|s| s > 0 && chain.keys[s].as_slice().contains(&channel))
                    .collect();
                let without = dense_absorption(chain, &removed);
                (1.0 - without.0 / base.0, 1.0 - without.1 / base.1)
            })
            .collect()
    }

    /// A small deterministic pseudo-random generator (tests only; no dependency).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, bound: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % bound
        }
    }

    fn random_paths(seed: u64, channels: &[&'static str], rows: usize) -> AggregatedPaths {
        let mut rng = Lcg(seed);
        let mut owned: Vec<(Vec<&str>, f64, f64, f64)> = Vec::new();
        for _ in 0..rows {
            let len = 1 + rng.next(6) as usize;
            let path: Vec<&str> = (0..len)
                .map(|_| channels[rng.next(channels.len() as u64) as usize])
                .collect();
            let conversions = rng.next(4) as f64 + if rng.next(3) == 0 { 0.5 } else { 0.0 };
            let revenue = if conversions > 0.0 {
                rng.next(1000) as f64 / 7.0
            } else {
                0.0
            };
            let nulls = rng.next(9) as f64;
            owned.push((path, conversions, revenue, nulls));
        }
        let rows: Vec<(&[&str], f64, f64, f64)> = owned
            .iter()
            .map(|(p, c, r, n)| (p.as_slice(), *c, *r, *n))
            .collect();
        paths(&rows)
    }

    #[test]
    fn hand_computed_first_order_chain() -> Result<()> {
        // start→a 4/5, start→b 1/5; a→b 1/2, a→null 1/2; b→conversion 2/3, b→null 1/3.
        let input = paths(&[
            (&["a", "b"], 1.0, 10.0, 1.0),
            (&["b"], 1.0, 30.0, 0.0),
            (&["a", "a"], 0.0, 0.0, 2.0),
        ]);
        let chain = MarkovChain::build(&input, 1)?;
        let names: Vec<(String, String, f64)> = chain
            .transitions(&input.channels)
            .into_iter()
            .map(|t| (t.from, t.to, t.probability))
            .collect();
        let expect = |from: &str, to: &str, p: f64| (from.to_string(), to.to_string(), p);
        assert_eq!(
            names,
            vec![
                expect("(start)", "a", 0.8),
                expect("(start)", "b", 0.2),
                expect("a", "b", 0.5),
                expect("a", "(null)", 0.5),
                expect("b", "(conversion)", 2.0 / 3.0),
                expect("b", "(null)", 1.0 / 3.0),
            ]
        );
        // P(conversion) = 0.8·0.5·2/3 + 0.2·2/3 = 0.4; without a: 0.2·2/3; without b: 0.
        let effects = chain.removal_effects()?.unwrap();
        assert!(
            (effects.conversion[0] - 2.0 / 3.0).abs() < 1e-12,
            "{effects:?}"
        );
        assert!((effects.conversion[1] - 1.0).abs() < 1e-12, "{effects:?}");
        Ok(())
    }

    #[test]
    fn removal_effect_is_the_probability_of_visiting_given_conversion() -> Result<()> {
        // An acyclic chain: enumerate every walk from (start) exactly and compare
        // P(visit c ∧ conversion) / P(conversion) with the removal effect.
        let input = paths(&[
            (&["a", "b", "c"], 2.0, 50.0, 3.0),
            (&["a", "c"], 1.0, 5.0, 4.0),
            (&["b", "c"], 3.0, 90.0, 1.0),
            (&["b"], 0.0, 0.0, 6.0),
            (&["a"], 1.0, 20.0, 2.0),
        ]);
        let chain = MarkovChain::build(&input, 1)?;
        // (state, probability so far, visited mask)
        let mut stack = vec![(0usize, 1.0f64, 0u32)];
        let (mut conversion, mut visits) = (0.0, [0.0f64; 3]);
        let (mut value, mut value_visits) = (0.0, [0.0f64; 3]);
        while let Some((state, p, mut mask)) = stack.pop() {
            if state > 0 {
                mask |= 1 << chain.keys[state].as_slice()[0];
            }
            let converted = p * chain.conversion_probability[state];
            let converted_value = converted * chain.value_per_conversion[state];
            conversion += converted;
            value += converted_value;
            for c in 0..3 {
                if mask & (1 << c) != 0 {
                    visits[c] += converted;
                    value_visits[c] += converted_value;
                }
            }
            for e in chain.row_start[state]..chain.row_start[state + 1] {
                stack.push((chain.targets[e] as usize, p * chain.probabilities[e], mask));
            }
        }
        let effects = chain.removal_effects()?.unwrap();
        for c in 0..3 {
            assert!(
                (effects.conversion[c] - visits[c] / conversion).abs() < 1e-12,
                "{c}"
            );
            assert!(
                (effects.value[c] - value_visits[c] / value).abs() < 1e-12,
                "{c}"
            );
        }
        Ok(())
    }

    #[test]
    fn agrees_with_a_dense_solve_on_random_chains() -> Result<()> {
        let channels = ["a", "b", "c", "d", "e"];
        for seed in 0..12u64 {
            let input = random_paths(seed, &channels, 40);
            for order in 1..=MAX_ORDER {
                let chain = MarkovChain::build(&input, order)?;
                let effects = chain.removal_effects()?.unwrap();
                for (c, (conversion, value)) in
                    dense_removal_effects(&chain).into_iter().enumerate()
                {
                    assert!(
                        (effects.conversion[c] - conversion).abs() < 1e-9,
                        "seed {seed} order {order} channel {c}: {} vs {conversion}",
                        effects.conversion[c]
                    );
                    assert!(
                        (effects.value[c] - value).abs() < 1e-9,
                        "seed {seed} order {order}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn hashed_state_ids_agree_with_a_dense_solve() -> Result<()> {
        // 40 channels at order 4 have more possible windows than the dense table takes.
        let names: Vec<&'static str> = (0..40)
            .map(|i| &*Box::leak(format!("c{i:02}").into_boxed_str()))
            .collect();
        assert!(matches!(
            StateIds::new(names.len(), MAX_ORDER),
            StateIds::Hashed(_)
        ));
        assert!(matches!(
            StateIds::new(5, MAX_ORDER),
            StateIds::Dense { .. }
        ));
        let input = random_paths(7, &names, 60);
        let chain = MarkovChain::build(&input, MAX_ORDER)?;
        let effects = chain.removal_effects()?.unwrap();
        for (c, (conversion, value)) in dense_removal_effects(&chain).into_iter().enumerate() {
            assert!((effects.conversion[c] - conversion).abs() < 1e-9, "{c}");
            assert!((effects.value[c] - value).abs() < 1e-9, "{c}");
        }
        Ok(())
    }

    #[test]
    fn collapses_repeats_and_builds_tuple_states() -> Result<()> {
        let input = paths(&[
            (&["a", "a", "b", "a"], 1.0, 0.0, 0.0),
            (&["b"], 0.0, 0.0, 1.0),
        ]);
        let names = |order: usize| -> Vec<(String, String)> {
            MarkovChain::build(&input, order)
                .unwrap()
                .transitions(&input.channels)
                .into_iter()
                .map(|t| (t.from, t.to))
                .collect()
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            names(1),
            vec![
                pair("(start)", "a"),
                pair("(start)", "b"),
                pair("a", "b"),
                pair("a", "(conversion)"),
                pair("b", "a"),
                pair("b", "(null)"),
            ]
        );
        // order 2: (a,a) → (a,b) → (b,a); the one-channel path [b] is the state (b)
        assert_eq!(
            names(2),
            vec![
                pair("(start)", "a > a"),
                pair("(start)", "b"),
                pair("a > a", "a > b"),
                pair("a > b", "b > a"),
                pair("b", "(null)"),
                pair("b > a", "(conversion)"),
            ]
        );
        assert!(MarkovChain::build(&input, 5).is_err());
        Ok(())
    }

    #[test]
    fn nothing_converts_means_no_removal_effects() -> Result<()> {
        let input = paths(&[(&["a", "b"], 0.0, 0.0, 3.0)]);
        assert!(MarkovChain::build(&input, 1)?.removal_effects()?.is_none());
        Ok(())
    }

    #[test]
    fn endless_walks_fail_instead_of_returning_a_wrong_answer() -> Result<()> {
        // One journey alternating a, b a million times: a walk leaves the a ⇄ b cycle with
        // probability ~1e-6 per step, far too slowly for the bounded solve to prove convergence.
        let long: Vec<&str> = (0..2_000_000)
            .map(|i| if i % 2 == 0 { "a" } else { "b" })
            .collect();
        let input = paths(&[(long.as_slice(), 1.0, 0.0, 1.0)]);
        let chain = MarkovChain::build(&input, 1)?;
        let err = chain.removal_effects().unwrap_err().to_string();
        assert!(err.contains("did not converge in 200000 sweeps"), "{err}");
        Ok(())
    }
}
