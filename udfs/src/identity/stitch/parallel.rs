//! Work over the whole identity graph on several threads: sorting and grouping its edges
//! (millions of them) and computing a value per node.

use std::cmp::Ordering;

/// Below this many items one thread works: spawning would cost more than it saves.
pub(crate) const MIN_PARALLEL_ITEMS: usize = 1 << 16;

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

/// Writes `map(item)` for every item of `source` into `target` (as long), grouped by
/// `bucket_of(item)` (< `buckets`) in bucket order and in `source` order within a bucket, with up
/// to `threads` threads, each scattering one contiguous chunk of `source` into its own part of
/// every bucket. Returns where each bucket starts in `target`, then where the last one ends.
pub(crate) fn partition_parallel<S, T, B, M>(
    source: &[S],
    target: &mut [T],
    buckets: usize,
    threads: usize,
    bucket_of: &B,
    map: &M,
) -> Vec<usize>
where
    S: Sync,
    T: Send,
    B: Fn(&S) -> usize + Sync,
    M: Fn(&S) -> T + Sync,
{
    let threads = if source.len() < MIN_PARALLEL_ITEMS {
        1
    } else {
        threads.max(1)
    };
    let chunks: Vec<&[S]> = source
        .chunks(source.len().div_ceil(threads).max(1))
        .collect();
    let count = |chunk: &[S]| {
        let mut counts = vec![0usize; buckets];
        for item in chunk {
            counts[bucket_of(item)] += 1;
        }
        counts
    };
    let counts: Vec<Vec<usize>> = on_threads(chunks.clone(), &count);
    let mut starts = Vec::with_capacity(buckets + 1);
    // Bucket-major, chunk-minor: within a bucket, items keep their order in `source`.
    let mut slots: Vec<Vec<&mut [T]>> = (0..chunks.len())
        .map(|_| Vec::with_capacity(buckets))
        .collect();
    let mut rest = &mut target[..source.len()];
    let mut start = 0;
    for bucket in 0..buckets {
        starts.push(start);
        for (chunk_slots, chunk_counts) in slots.iter_mut().zip(&counts) {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(chunk_counts[bucket]);
            start += part.len();
            chunk_slots.push(part);
            rest = tail;
        }
    }
    starts.push(start);
    let scatter = |(chunk, mut slots): (&[S], Vec<&mut [T]>)| {
        for item in chunk {
            let slot = &mut slots[bucket_of(item)];
            // The counts sized every slot for its items: there is always a first place left.
            if let Some((place, tail)) = std::mem::take(slot).split_first_mut() {
                *place = map(item);
                *slot = tail;
            }
        }
    };
    on_threads(chunks.into_iter().zip(slots).collect(), &scatter);
    starts
}

/// `inputs.map(f)`, one input per thread (the last on this one).
pub(crate) fn on_threads<I, T, F>(inputs: Vec<I>, f: &F) -> Vec<T>
where
    I: Send,
    T: Send,
    F: Fn(I) -> T + Sync,
{
    if inputs.len() < 2 {
        return inputs.into_iter().map(f).collect();
    }
    std::thread::scope(|scope| {
        let mut inputs = inputs;
        let last = inputs.pop();
        let handles: Vec<_> = inputs
            .into_iter()
            .map(|input| scope.spawn(move || f(input)))
            .collect();
        let last = last.map(f);
        let mut outputs = Vec::with_capacity(handles.len() + 1);
        for handle in handles {
            // A panic in `f` is a bug: re-raise it on this thread.
            match handle.join() {
                Ok(output) => outputs.push(output),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        outputs.extend(last);
        outputs
    })
}

/// Calls `f(first, part)` on up to `threads` contiguous parts of `items` at once, each part a
/// whole number of `unit`s of items (`first`: the index of its first unit), so that every
/// thread writes its own items.
pub(crate) fn fill_parallel<T, F>(items: &mut [T], unit: usize, threads: usize, f: &F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    let unit = unit.max(1);
    let units = items.len() / unit;
    let threads = if units < MIN_PARALLEL_ITEMS {
        1
    } else {
        threads.max(1)
    };
    let per_part = units.div_ceil(threads).max(1);
    let parts: Vec<(usize, &mut [T])> = items
        .chunks_mut(per_part * unit)
        .enumerate()
        .map(|(i, part)| (i * per_part, part))
        .collect();
    on_threads(parts, &|(first, part)| f(first, part));
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
    fn partitions_like_a_stable_sort_by_bucket_for_any_thread_count() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for (len, buckets) in [
            (0, 4),
            (1, 1),
            (1000, 7),
            (3 * MIN_PARALLEL_ITEMS + 17, 1000),
            (MIN_PARALLEL_ITEMS + 3, 2),
        ] {
            // (bucket, position): items of a bucket must keep their input order.
            let items: Vec<(usize, u32)> = (0..len)
                .map(|i| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ((state % buckets as u64) as usize, i as u32)
                })
                .collect();
            let mut expected: Vec<u64> = items
                .iter()
                .map(|&(b, i)| ((b as u64) << 32) | u64::from(i))
                .collect();
            expected.sort();
            let mut expected_starts = vec![0; buckets + 1];
            for item in &items {
                expected_starts[item.0 + 1] += 1;
            }
            for b in 0..buckets {
                expected_starts[b + 1] += expected_starts[b];
            }
            for threads in [1, 2, 3] {
                let mut target = vec![0u64; len];
                let starts = partition_parallel(
                    &items,
                    &mut target,
                    buckets,
                    threads,
                    &|item: &(usize, u32)| item.0,
                    &|&(b, i): &(usize, u32)| ((b as u64) << 32) | u64::from(i),
                );
                assert_eq!(
                    target, expected,
                    "{len} items, {buckets} buckets, {threads} threads"
                );
                assert_eq!(starts, expected_starts);
            }
        }
    }

    #[test]
    fn fills_like_one_thread_for_any_thread_count() {
        let units = MIN_PARALLEL_ITEMS + 9;
        let fill = |first: usize, part: &mut [u64]| {
            // `first` counts units of 3 items.
            for (i, item) in part.iter_mut().enumerate() {
                *item = (first * 3 + i) as u64;
            }
        };
        let expected: Vec<u64> = (0..3 * units as u64).collect();
        for threads in [1, 2, 3, 5] {
            let mut items = vec![0u64; 3 * units];
            fill_parallel(&mut items, 3, threads, &fill);
            assert_eq!(items, expected, "{threads} threads");
        }
        let mut empty: Vec<u64> = Vec::new();
        fill_parallel(&mut empty, 3, 2, &fill);
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
