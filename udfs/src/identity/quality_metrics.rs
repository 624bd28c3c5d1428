//! The clustering metrics of `identity_quality`: a predicted clustering (customers) compared with
//! a true one (persons) over the same identifiers.
//!
//! Everything is computed from the contingency table — `n_ij` identifiers in predicted cluster
//! `i` and true cluster `j`, row sums `a_i`, column sums `b_j` — found by sorting the
//! assignments twice, so pairs are counted as `Σ n·(n−1)/2`, never enumerated:
//! - pairwise precision = `Σ C(n_ij, 2) / Σ C(a_i, 2)`, recall = `Σ C(n_ij, 2) / Σ C(b_j, 2)`;
//! - B-cubed (Bagga & Baldwin 1998) precision = `(1/N) Σ n_ij² / a_i`, recall =
//!   `(1/N) Σ n_ij² / b_j` (the per-identifier precision and recall, averaged).
//!
//! Counts are `u64`; ratios are formed in `f64` at the end. A ratio whose denominator is zero is
//! undefined (`None`): no predicted pair → pairwise precision `None`, no true pair → recall
//! `None`, no identifier → every ratio `None`; an F1 is `None` when either side is.

use std::collections::BTreeMap;

/// One identifier evaluated: its predicted cluster, its true cluster and its type (dense ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Assignment {
    pub predicted: u64,
    pub truth: u64,
    pub id_type: u32,
}

/// The figures `identity_quality` reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ClusterQuality {
    pub pairwise_precision: Option<f64>,
    pub pairwise_recall: Option<f64>,
    pub pairwise_f1: Option<f64>,
    pub bcubed_precision: Option<f64>,
    pub bcubed_recall: Option<f64>,
    pub bcubed_f1: Option<f64>,
    pub identifiers: u64,
    pub clusters_predicted: u64,
    pub clusters_true: u64,
    /// Size of the largest predicted cluster; `None` without identifiers.
    pub largest_cluster: Option<u64>,
    /// Distinct true clusters in the largest predicted cluster (the most among equally large
    /// ones); `None` without identifiers.
    pub largest_cluster_true_persons: Option<u64>,
    /// Predicted clusters of one identifier.
    pub singletons: u64,
    /// Per type id (`0..type_count`): identifiers alone in their predicted cluster.
    pub singletons_by_type: Vec<u64>,
    /// Predicted clusters holding identifiers of more than one true cluster.
    pub over_merged_clusters: u64,
    /// Predicted clusters by size in powers of two: `[b]` counts sizes in `(2^(b-1), 2^b]` (`[0]`: size 1);
    /// as long as the largest cluster's bucket.
    pub size_histogram: Vec<u64>,
}

/// The [`ClusterQuality::size_histogram`] bucket of a cluster size ≥ 1: `⌈log2(size)⌉`.
pub(crate) fn size_bucket(size: u64) -> usize {
    (u64::BITS - size.saturating_sub(1).leading_zeros()) as usize
}

/// The sizes a histogram bucket holds, as written in metric names: `1`, `2`, `3-4`, `5-8`, …
pub(crate) fn size_bucket_label(bucket: usize) -> String {
    match bucket {
        0 => "1".to_string(),
        1 => "2".to_string(),
        b if b < 64 => format!("{}-{}", (1u64 << (b - 1)) + 1, 1u64 << b),
        _ => format!("{}-", (1u64 << 63) + 1),
    }
}

/// `n·(n−1)/2` without overflow for any `n` a `u64` count can reach in memory.
fn pairs(n: u64) -> u128 {
    u128::from(n) * u128::from(n.saturating_sub(1)) / 2
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

fn f1(precision: Option<f64>, recall: Option<f64>) -> Option<f64> {
    let (p, r) = (precision?, recall?);
    Some(if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    })
}

/// Runs of equal `key` in a sorted slice, as `(start, end)` ranges.
fn runs<'a, T>(
    items: &'a [T],
    key: impl Fn(&T) -> u64 + 'a,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= items.len() {
            return None;
        }
        let first = key(&items[start]);
        let end = start
            + items[start..]
                .iter()
                .take_while(|item| key(item) == first)
                .count();
        let run = (start, end);
        start = end;
        Some(run)
    })
}

/// A B-cubed sum, Σ cell² / size over the cells of clusters: the squares are summed exactly per
/// cluster size and divided once per size, in size order. The clusters come in the order their
/// ids were given, which follows the order rows arrived in; summed in that order, the last bits
/// of a figure moved from run to run.
#[derive(Debug, Default)]
struct SquaresBySize(BTreeMap<u64, u128>);

impl SquaresBySize {
    fn add(&mut self, size: u64, cell: u64) {
        *self.0.entry(size).or_default() += u128::from(cell) * u128::from(cell);
    }

    fn sum(&self) -> f64 {
        self.0
            .iter()
            .map(|(size, squares)| *squares as f64 / *size as f64)
            .sum()
    }
}

/// Compares the predicted with the true clustering of `assignments` (reordered in place);
/// `type_count` bounds the type ids.
pub(crate) fn cluster_quality(assignments: &mut [Assignment], type_count: usize) -> ClusterQuality {
    let mut quality = ClusterQuality {
        identifiers: assignments.len() as u64,
        singletons_by_type: vec![0; type_count],
        ..ClusterQuality::default()
    };

    // By true cluster, then predicted: column sums b_j and the cells of each column.
    assignments.sort_unstable_by_key(|a| (a.truth, a.predicted));
    let mut true_pairs = 0u128;
    let mut same_cluster_pairs = 0u128;
    let mut bcubed_recall_sums = SquaresBySize::default();
    for (start, end) in runs(assignments, |a| a.truth) {
        let column = &assignments[start..end];
        let size = column.len() as u64;
        quality.clusters_true += 1;
        true_pairs += pairs(size);
        for (cell_start, cell_end) in runs(column, |a| a.predicted) {
            let cell = (cell_end - cell_start) as u64;
            same_cluster_pairs += pairs(cell);
            bcubed_recall_sums.add(size, cell);
        }
    }

    // By predicted cluster, then true: row sums a_i, the cells of each row, sizes and types.
    assignments.sort_unstable_by_key(|a| (a.predicted, a.truth));
    let mut predicted_pairs = 0u128;
    let mut bcubed_precision_sums = SquaresBySize::default();
    let mut largest: Option<(u64, u64)> = None;
    for (start, end) in runs(assignments, |a| a.predicted) {
        let row = &assignments[start..end];
        let size = row.len() as u64;
        quality.clusters_predicted += 1;
        predicted_pairs += pairs(size);
        let mut persons = 0u64;
        for (cell_start, cell_end) in runs(row, |a| a.truth) {
            let cell = (cell_end - cell_start) as u64;
            persons += 1;
            bcubed_precision_sums.add(size, cell);
        }
        if persons > 1 {
            quality.over_merged_clusters += 1;
        }
        let bucket = size_bucket(size);
        if quality.size_histogram.len() <= bucket {
            quality.size_histogram.resize(bucket + 1, 0);
        }
        quality.size_histogram[bucket] += 1;
        if size == 1 {
            quality.singletons += 1;
            if let Some(count) = quality.singletons_by_type.get_mut(row[0].id_type as usize) {
                *count += 1;
            }
        }
        if largest.is_none_or(|best| (size, persons) > best) {
            largest = Some((size, persons));
        }
    }
    quality.largest_cluster = largest.map(|(size, _)| size);
    quality.largest_cluster_true_persons = largest.map(|(_, persons)| persons);

    let same = same_cluster_pairs as f64;
    quality.pairwise_precision = ratio(same, predicted_pairs as f64);
    quality.pairwise_recall = ratio(same, true_pairs as f64);
    quality.pairwise_f1 = f1(quality.pairwise_precision, quality.pairwise_recall);
    let n = quality.identifiers as f64;
    quality.bcubed_precision = ratio(bcubed_precision_sums.sum(), n);
    quality.bcubed_recall = ratio(bcubed_recall_sums.sum(), n);
    quality.bcubed_f1 = f1(quality.bcubed_precision, quality.bcubed_recall);
    quality
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Assignments from `(predicted, truth)` pairs, all of type 0.
    fn assignments(rows: &[(u64, u64)]) -> Vec<Assignment> {
        rows.iter()
            .map(|&(predicted, truth)| Assignment {
                predicted,
                truth,
                id_type: 0,
            })
            .collect()
    }

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.unwrap();
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    /// Bagga & Baldwin, "Algorithms for Scoring Coreference Chains" (LREC 1998 workshop), §4 and
    /// Fig. 2: true chains {1..5}, {6, 7}, {8..12}. Response (b) merges {6, 7} with {8..12}:
    /// B-cubed precision 16/21 ≈ 76 %, recall 100 %. Response (c) merges {1..5} with {8..12}:
    /// precision 7/12 ≈ 58 %, recall 100 % — B-cubed penalises (c) more, which MUC does not.
    fn bagga_baldwin_truth() -> Vec<u64> {
        (1..=12)
            .map(|i| match i {
                1..=5 => 0,
                6 | 7 => 1,
                _ => 2,
            })
            .collect()
    }

    #[test]
    fn bagga_baldwin_textbook_example() {
        let truth = bagga_baldwin_truth();
        // (b): {1..5}, {6..12}
        let mut b: Vec<_> = truth
            .iter()
            .map(|&t| (if t == 0 { 0 } else { 1 }, t))
            .collect::<Vec<_>>();
        let quality = cluster_quality(&mut assignments(&b), 1);
        close(quality.bcubed_precision, 16.0 / 21.0);
        close(quality.bcubed_recall, 1.0);
        close(quality.bcubed_f1, 2.0 * (16.0 / 21.0) / (16.0 / 21.0 + 1.0));
        // Pairs: same-cluster 10 + 1 + 10 = 21, predicted C(5,2) + C(7,2) = 31, true 21.
        close(quality.pairwise_precision, 21.0 / 31.0);
        close(quality.pairwise_recall, 1.0);
        assert_eq!(quality.clusters_predicted, 2);
        assert_eq!(quality.clusters_true, 3);
        assert_eq!(quality.largest_cluster, Some(7));
        assert_eq!(quality.largest_cluster_true_persons, Some(2));
        assert_eq!(quality.over_merged_clusters, 1);
        assert_eq!(quality.singletons, 0);
        // Sizes 5 and 7: buckets 3-4 (none), 5-8 (both).
        assert_eq!(quality.size_histogram, vec![0, 0, 0, 2]);

        // (c): {1..5, 8..12}, {6, 7}
        b = truth
            .iter()
            .map(|&t| (if t == 1 { 1 } else { 0 }, t))
            .collect();
        let quality = cluster_quality(&mut assignments(&b), 1);
        close(quality.bcubed_precision, 7.0 / 12.0);
        close(quality.bcubed_recall, 1.0);
        // Pairs: predicted C(10,2) + 1 = 46.
        close(quality.pairwise_precision, 21.0 / 46.0);
        assert_eq!(quality.largest_cluster, Some(10));
    }

    #[test]
    fn a_perfect_map_scores_one_everywhere() {
        let rows: Vec<_> = bagga_baldwin_truth()
            .iter()
            .map(|&t| (t + 100, t))
            .collect();
        let quality = cluster_quality(&mut assignments(&rows), 1);
        for metric in [
            quality.pairwise_precision,
            quality.pairwise_recall,
            quality.pairwise_f1,
            quality.bcubed_precision,
            quality.bcubed_recall,
            quality.bcubed_f1,
        ] {
            close(metric, 1.0);
        }
        assert_eq!(quality.over_merged_clusters, 0);
        assert_eq!(quality.largest_cluster_true_persons, Some(1));
    }

    #[test]
    fn an_all_singletons_map_has_no_recall_and_undefined_pairwise_precision() {
        let rows: Vec<_> = bagga_baldwin_truth()
            .iter()
            .enumerate()
            .map(|(i, &t)| (i as u64, t))
            .collect();
        let mut input = assignments(&rows);
        input[0].id_type = 1;
        let quality = cluster_quality(&mut input, 2);
        close(quality.pairwise_recall, 0.0);
        // No predicted pair: precision is undefined, and so is F1.
        assert_eq!(quality.pairwise_precision, None);
        assert_eq!(quality.pairwise_f1, None);
        close(quality.bcubed_precision, 1.0);
        // Per identifier recall 1/|its person|: (5·1/5 + 2·1/2 + 5·1/5) / 12.
        close(quality.bcubed_recall, 3.0 / 12.0);
        assert_eq!(quality.singletons, 12);
        assert_eq!(quality.singletons_by_type, vec![11, 1]);
        assert_eq!(quality.largest_cluster, Some(1));
    }

    #[test]
    fn over_merging_lowers_precision_not_recall() {
        // Two persons of two identifiers each, all merged into one customer.
        let quality = cluster_quality(&mut assignments(&[(0, 0), (0, 0), (0, 1), (0, 1)]), 1);
        close(quality.pairwise_precision, 2.0 / 6.0);
        close(quality.pairwise_recall, 1.0);
        close(quality.bcubed_precision, 0.5);
        close(quality.bcubed_recall, 1.0);
        assert!(quality.pairwise_precision.unwrap() < 1.0);
        assert_eq!(quality.over_merged_clusters, 1);
        assert_eq!(quality.largest_cluster_true_persons, Some(2));
    }

    #[test]
    fn largest_cluster_ties_report_the_most_persons() {
        // Two clusters of two: one pure, one merging two persons.
        let quality = cluster_quality(&mut assignments(&[(0, 0), (0, 0), (1, 1), (1, 2)]), 1);
        assert_eq!(quality.largest_cluster, Some(2));
        assert_eq!(quality.largest_cluster_true_persons, Some(2));
    }

    #[test]
    fn no_identifiers_leaves_every_ratio_undefined() {
        let quality = cluster_quality(&mut [], 0);
        assert_eq!(quality.identifiers, 0);
        assert_eq!(quality.bcubed_precision, None);
        assert_eq!(quality.pairwise_recall, None);
        assert_eq!(quality.largest_cluster, None);
        assert_eq!(quality.clusters_predicted, 0);
        assert!(quality.size_histogram.is_empty());
    }

    #[test]
    fn size_buckets_are_powers_of_two() {
        let buckets: Vec<usize> = [1, 2, 3, 4, 5, 8, 9, 16, 17, 1000]
            .into_iter()
            .map(size_bucket)
            .collect();
        assert_eq!(buckets, vec![0, 1, 2, 2, 3, 3, 4, 4, 5, 10]);
        assert_eq!(size_bucket(u64::MAX), 64);
        let labels: Vec<String> = (0..5).map(size_bucket_label).collect();
        assert_eq!(labels, ["1", "2", "3-4", "5-8", "9-16"]);
        assert_eq!(size_bucket_label(10), "513-1024");
        assert_eq!(size_bucket_label(64), "9223372036854775809-");
        // Every cluster lands in the bucket whose label contains its size.
        let quality = cluster_quality(
            &mut assignments(&[(0, 0), (1, 1), (1, 1), (2, 2), (2, 2), (2, 2)]),
            1,
        );
        assert_eq!(quality.size_histogram, vec![1, 1, 1]);
    }

    #[test]
    fn pair_counts_do_not_overflow() {
        assert_eq!(pairs(0), 0);
        assert_eq!(pairs(1), 0);
        assert_eq!(pairs(5), 10);
        assert_eq!(
            pairs(u64::MAX),
            u128::from(u64::MAX) * u128::from(u64::MAX - 1) / 2
        );
    }

    /// The figures do not depend on the ids the clusters were given (they follow the order rows
    /// arrive in): relabelled clusterings give bit-identical figures.
    #[test]
    fn relabelled_clusters_give_identical_figures() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        let pairs: Vec<(u64, u64)> = (0..20_000)
            .map(|_| {
                let person = random(3_000);
                // Mostly the person's own cluster, sometimes split off or merged with another.
                let predicted = match random(10) {
                    0 => 3_000 + random(500),
                    1 => person / 2,
                    _ => person,
                };
                (predicted, person)
            })
            .collect();
        let reference = cluster_quality(&mut assignments(&pairs), 1);
        for relabel in [7_919u64, 104_729] {
            let relabelled: Vec<(u64, u64)> = pairs
                .iter()
                .map(|&(p, t)| ((p * relabel) % 1_000_003, (t * relabel) % 1_000_033))
                .collect();
            let quality = cluster_quality(&mut assignments(&relabelled), 1);
            assert_eq!(quality, reference, "relabelled by {relabel}");
        }
    }
}
