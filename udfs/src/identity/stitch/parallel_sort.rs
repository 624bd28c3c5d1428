//! Sorting the identity graph's edges on several threads (millions of them, sorted twice per call).

use std::cmp::Ordering;

/// Below this many items one thread sorts: spawning would cost more than it saves.
const MIN_PARALLEL_ITEMS: usize = 1 << 16;

/// Sorts `items` by `compare` (unstable) with up to `threads` threads: the slice is split at its
/// median (`select_nth_unstable_by`, one linear pass), and both halves are sorted at the same time,
/// recursively. No extra memory, unlike a merge.
pub(crate) fn sort_unstable_by_parallel<T, F>(items: &mut [T], threads: usize, compare: &F)
where
    T: Send,
    F: Fn(&T, &T) -> Ordering + Sync,
{
    if threads < 2 || items.len() < MIN_PARALLEL_ITEMS {
        items.sort_unstable_by(compare);
        return;
    }
    let middle = items.len() / 2;
    items.select_nth_unstable_by(middle, compare);
    let (left, right) = items.split_at_mut(middle);
    std::thread::scope(|scope| {
        scope.spawn(|| sort_unstable_by_parallel(left, threads / 2, compare));
        sort_unstable_by_parallel(right, threads - threads / 2, compare);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_one_thread_for_any_thread_count() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let items: Vec<(u32, u32)> = (0..3 * MIN_PARALLEL_ITEMS + 17)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state % 1000) as u32, i as u32)
            })
            .collect();
        let mut expected = items.clone();
        expected.sort();
        for threads in [1, 2, 3, 4] {
            let mut sorted = items.clone();
            sort_unstable_by_parallel(&mut sorted, threads, &|a: &(u32, u32), b| a.cmp(b));
            assert_eq!(sorted, expected, "{threads} threads");
        }
    }
}
