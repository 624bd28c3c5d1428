//! Work over the whole identity graph on several threads: sorting its edges (millions of them,
//! sorted twice per call) and computing a value per node.

use std::cmp::Ordering;

/// Below this many items one thread works: spawning would cost more than it saves.
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

/// `(0..n).map(f)` computed in up to `threads` contiguous ranges at once.
pub(crate) fn map_parallel<T, F>(n: usize, threads: usize, f: &F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    if threads < 2 || n < MIN_PARALLEL_ITEMS {
        return (0..n).map(f).collect();
    }
    let per_thread = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..n)
            .step_by(per_thread)
            .map(|start| {
                let end = (start + per_thread).min(n);
                scope.spawn(move || (start..end).map(f).collect::<Vec<T>>())
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        for part in parts {
            // A panic in `f` is a bug: re-raise it on this thread, as `(0..n).map(f)` would.
            match part.join() {
                Ok(values) => all.extend(values),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    })
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

    #[test]
    fn maps_like_one_thread_for_any_thread_count() {
        let n = 2 * MIN_PARALLEL_ITEMS + 5;
        let expected: Vec<u64> = (0..n).map(|i| (i as u64).wrapping_mul(31) ^ 7).collect();
        for threads in [1, 2, 3, 8] {
            let mapped = map_parallel(n, threads, &|i| (i as u64).wrapping_mul(31) ^ 7);
            assert_eq!(mapped, expected, "{threads} threads");
        }
        assert!(map_parallel(0, 4, &|i| i).is_empty());
    }
}
