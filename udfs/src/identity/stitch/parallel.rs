//! Work over the whole identity graph on several threads: sorting and grouping its edges
//! (millions of them) and computing a value per node.

use std::cmp::Ordering;
use std::mem::MaybeUninit;
use std::ops::Range;

use datafusion::common::{Result, internal_err};

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

/// `map(item)` for every item of `source`, grouped by `bucket_of(item)` (< `buckets`) in bucket
/// order and in `source` order within a bucket, with up to `threads` threads, each scattering
/// one contiguous chunk of `source` into its own part of every bucket. Returns the items, and
/// where each bucket starts among them, then where the last one ends.
pub(crate) fn partition_parallel<S, T, B, M>(
    source: &[S],
    buckets: usize,
    threads: usize,
    bucket_of: &B,
    map: &M,
) -> Result<(Vec<T>, Vec<usize>)>
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
    // Not initialised before the threads write it: the kernel clears every fresh page at its
    // first touch, which then happens on all threads at once rather than on one (0.2-0.8 s for
    // the 384 MB of 16 M edges).
    let mut target: Vec<T> = Vec::with_capacity(source.len());
    let mut starts = Vec::with_capacity(buckets + 1);
    // Bucket-major, chunk-minor: within a bucket, items keep their order in `source`.
    let mut slots: Vec<Vec<&mut [MaybeUninit<T>]>> = (0..chunks.len())
        .map(|_| Vec::with_capacity(buckets))
        .collect();
    let mut rest = &mut target.spare_capacity_mut()[..source.len()];
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
    // Whether the chunk filled its slots exactly: then every place was written once.
    let scatter = |(chunk, mut slots): (&[S], Vec<&mut [MaybeUninit<T>]>)| {
        for item in chunk {
            let slot = &mut slots[bucket_of(item)];
            let Some((place, tail)) = std::mem::take(slot).split_first_mut() else {
                return false;
            };
            place.write(map(item));
            *slot = tail;
        }
        slots.iter().all(|slot| slot.is_empty())
    };
    let filled = on_threads(chunks.into_iter().zip(slots).collect(), &scatter);
    if filled.contains(&false) {
        return internal_err!("partitioning: the buckets of the items changed between passes");
    }
    // SAFETY: the slots split the first `source.len()` places of `target`'s capacity, and each
    // chunk filled its slots exactly (checked above), so every one of those places was written.
    unsafe { target.set_len(source.len()) };
    Ok((target, starts))
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

/// `0..n` in up to `threads` contiguous ranges of about equal length (one below
/// [`MIN_PARALLEL_ITEMS`], none for `n == 0`).
pub(crate) fn even_ranges(n: usize, threads: usize) -> Vec<Range<usize>> {
    let threads = if n < MIN_PARALLEL_ITEMS {
        1
    } else {
        threads.max(1)
    };
    let per_range = n.div_ceil(threads).max(1);
    (0..n)
        .step_by(per_range)
        .map(|start| start..(start + per_range).min(n))
        .collect()
}

/// The parts of `items` that `ranges` (contiguous from 0, in units of `unit` items) cover, each
/// with the index of its first unit.
pub(crate) fn split_ranges<'a, T>(
    items: &'a mut [T],
    unit: usize,
    ranges: &[Range<usize>],
) -> Vec<(usize, &'a mut [T])> {
    let mut rest = items;
    ranges
        .iter()
        .map(|range| {
            let length = (range.len() * unit).min(rest.len());
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(length);
            rest = tail;
            (range.start, part)
        })
        .collect()
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
    let ranges = even_ranges(items.len() / unit, threads);
    on_threads(split_ranges(items, unit, &ranges), &|(first, part)| {
        f(first, part)
    });
}

/// `(0..n).map(f)` computed in up to `threads` contiguous ranges at once, each written in
/// place: for a type whose default is zeroes, fresh pages are first touched on those threads.
pub(crate) fn map_parallel<T, F>(n: usize, threads: usize, f: &F) -> Vec<T>
where
    T: Clone + Default + Send,
    F: Fn(usize) -> T + Sync,
{
    let mut all = vec![T::default(); n];
    fill_parallel(&mut all, 1, threads, &|first, part| {
        for (i, value) in part.iter_mut().enumerate() {
            *value = f(first + i);
        }
    });
    all
}

/// Whether `f(i)` holds for some `i` of `0..n`, asked in up to `threads` ranges at once.
pub(crate) fn any_parallel<F>(n: usize, threads: usize, f: &F) -> bool
where
    F: Fn(usize) -> bool + Sync,
{
    on_threads(even_ranges(n, threads), &|mut range: Range<usize>| {
        range.any(f)
    })
    .contains(&true)
}

/// `items.retain(keep)` on up to `threads` threads: each compacts a contiguous part in place,
/// then the parts close up.
pub(crate) fn retain_parallel<T, F>(items: &mut Vec<T>, threads: usize, keep: &F)
where
    T: Copy + Send,
    F: Fn(&T) -> bool + Sync,
{
    let ranges = even_ranges(items.len(), threads);
    let kept = on_threads(split_ranges(items, 1, &ranges), &|(_, part)| {
        let mut kept = 0;
        for i in 0..part.len() {
            if keep(&part[i]) {
                part[kept] = part[i];
                kept += 1;
            }
        }
        (part.len(), kept)
    });
    close_gaps(items, &kept);
}

/// After consecutive parts of `items` (`(length, kept)` each, in order) moved the items they
/// keep to their front: moves those together and drops the rest.
pub(crate) fn close_gaps<T: Copy>(items: &mut Vec<T>, parts: &[(usize, usize)]) {
    let (mut read, mut write) = (0, 0);
    for &(length, kept) in parts {
        items.copy_within(read..read + kept, write);
        read += length;
        write += kept;
    }
    items.truncate(write);
}

/// Buckets (as a power of two) of the key histogram [`balanced_key_ranges`] cuts at: fine
/// enough for even parts, few enough to sum at once.
const KEY_HISTOGRAM_BITS: u32 = 12;

/// The keys `0..keys` in up to `threads` contiguous ranges that about equally many of the
/// items `0..n` belong to (`key_of(item) < keys`), counted on all threads: for work split by
/// key when the keys are skewed, as the roots of sets are (a set's root is usually its least
/// node, so low ids own more nodes than high ones).
pub(crate) fn balanced_key_ranges<K>(
    keys: usize,
    n: usize,
    threads: usize,
    key_of: &K,
) -> Vec<Range<usize>>
where
    K: Fn(usize) -> usize + Sync,
{
    let items = even_ranges(n, threads);
    let parts = items.len();
    if parts < 2 || keys == 0 {
        return std::iter::once(0..keys).collect();
    }
    let shift = (usize::BITS - (keys - 1).leading_zeros()).saturating_sub(KEY_HISTOGRAM_BITS);
    let buckets = ((keys - 1) >> shift) + 1;
    let histograms = on_threads(items, &|range: Range<usize>| {
        let mut counts = vec![0usize; buckets];
        for item in range {
            counts[key_of(item) >> shift] += 1;
        }
        counts
    });
    let mut ranges = Vec::with_capacity(parts);
    let (mut start, mut counted) = (0, 0);
    for bucket in 0..buckets {
        counted += histograms
            .iter()
            .map(|counts| counts[bucket])
            .sum::<usize>();
        // Cut when the ranges so far hold their share of the items.
        if ranges.len() + 1 < parts && counted * parts >= n * (ranges.len() + 1) {
            let end = ((bucket + 1) << shift).min(keys);
            ranges.push(start..end);
            start = end;
        }
    }
    ranges.push(start..keys);
    ranges
}

/// Per key of `0..keys`, `unit` values that start as `init`, to which `add(values, item)` adds
/// every item of `0..n` with `key_of(item)` that key, in item order. On up to `threads` threads,
/// each owning a range of keys ([`balanced_key_ranges`]) and reading every item: no locks, and
/// the values do not depend on the thread count.
pub(crate) fn fold_by_key<T, K, F>(
    keys: usize,
    unit: usize,
    init: T,
    n: usize,
    threads: usize,
    key_of: &K,
    add: &F,
) -> Vec<T>
where
    T: Clone + Default + Send + Sync,
    K: Fn(usize) -> usize + Sync,
    F: Fn(&mut [T], usize) + Sync,
{
    let unit = unit.max(1);
    let ranges = balanced_key_ranges(keys, n, threads, key_of);
    // Zeroes for most types: pages mapped at first touch, on the threads.
    let mut values = vec![T::default(); keys * unit];
    on_threads(split_ranges(&mut values, unit, &ranges), &|(
        first,
        part,
    )| {
        // Written before the first read: zeroed memory is mapped at first touch, and a read
        // first maps the shared zero page, so that the first write then costs a copy-on-write
        // fault with a TLB flush on every core, page by page (~1 s of CPU in the degree counts
        // of 16 M edges).
        part.fill(init.clone());
        let keys_here = first..first + part.len() / unit;
        for item in 0..n {
            let key = key_of(item);
            if keys_here.contains(&key) {
                let at = (key - first) * unit;
                add(&mut part[at..at + unit], item);
            }
        }
    });
    values
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
                let (target, starts) = partition_parallel(
                    &items,
                    buckets,
                    threads,
                    &|item: &(usize, u32)| item.0,
                    &|&(b, i): &(usize, u32)| ((b as u64) << 32) | u64::from(i),
                )
                .expect("consistent buckets");
                assert_eq!(
                    target, expected,
                    "{len} items, {buckets} buckets, {threads} threads"
                );
                assert_eq!(starts, expected_starts);
            }
        }
    }

    #[test]
    fn buckets_that_change_between_passes_are_an_error() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let items: Vec<u32> = (0..2 * MIN_PARALLEL_ITEMS as u32).collect();
        for threads in [1, 2] {
            // Bucket 0 while counting, 1 while scattering.
            let calls = AtomicUsize::new(0);
            let bucket_of =
                |_: &u32| usize::from(calls.fetch_add(1, Ordering::Relaxed) >= items.len());
            let result = partition_parallel(&items, 2, threads, &bucket_of, &|item| *item);
            let err = result.expect_err("inconsistent buckets");
            assert!(err.to_string().contains("changed between passes"), "{err}");
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

    /// Items with keys skewed toward 0, as the roots of sets are.
    fn skewed_keys(n: usize, keys: usize) -> Vec<usize> {
        let mut state = 0x853c_49e6_748f_ea9b_u64;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let a = (state % keys as u64) as usize;
                let b = ((state >> 32) % keys as u64) as usize;
                a.min(b)
            })
            .collect()
    }

    #[test]
    fn key_ranges_cover_the_keys_with_about_equal_items() {
        let n = 4 * MIN_PARALLEL_ITEMS;
        for keys in [1, 5_000, 1 << 20] {
            let items = skewed_keys(n, keys);
            for threads in [1, 2, 3, 8] {
                let ranges = balanced_key_ranges(keys, n, threads, &|i| items[i]);
                assert!(ranges.len() <= threads);
                assert_eq!(ranges.first().map(|r| r.start), Some(0));
                assert_eq!(ranges.last().map(|r| r.end), Some(keys));
                for pair in ranges.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start, "{ranges:?}");
                }
                if keys > 1_000 {
                    for range in &ranges {
                        let held = items.iter().filter(|k| range.contains(k)).count();
                        // Cut at the buckets of a histogram: within a few buckets of even.
                        assert!(
                            held.abs_diff(n / threads) < n / 50,
                            "{keys} keys, {threads} threads: {held} items in {range:?}"
                        );
                    }
                }
            }
        }
        let no_keys = balanced_key_ranges(0, 10, 2, &|i| i);
        assert_eq!((no_keys.len(), no_keys[0].is_empty()), (1, true));
    }

    #[test]
    fn folds_by_key_like_one_thread_for_any_thread_count() {
        let (n, keys) = (3 * MIN_PARALLEL_ITEMS + 11, 70_001);
        let items = skewed_keys(n, keys);
        // Two values per key: how many items, and the order they came in (a hash of it).
        let mut expected = vec![0u64; 2 * keys];
        for (i, &key) in items.iter().enumerate() {
            expected[2 * key] += 1;
            expected[2 * key + 1] = expected[2 * key + 1].wrapping_mul(31) ^ i as u64;
        }
        for threads in [1, 2, 3, 8] {
            let folded = fold_by_key(keys, 2, 0u64, n, threads, &|i| items[i], &|values, i| {
                values[0] += 1;
                values[1] = values[1].wrapping_mul(31) ^ i as u64;
            });
            assert_eq!(folded, expected, "{threads} threads");
        }
        let none = fold_by_key(3, 2, 7u8, 0, 4, &|i| i, &|_, _| {});
        assert_eq!(none, vec![7; 6]);
    }

    #[test]
    fn retains_and_finds_like_one_thread_for_any_thread_count() {
        let n = 2 * MIN_PARALLEL_ITEMS + 3;
        let items: Vec<u32> = (0..n as u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let keep = |item: &u32| !item.is_multiple_of(3);
        let mut expected = items.clone();
        expected.retain(keep);
        for threads in [1, 2, 3, 8] {
            let mut retained = items.clone();
            retain_parallel(&mut retained, threads, &keep);
            assert_eq!(retained, expected, "{threads} threads");
            assert!(any_parallel(n, threads, &|i| i == n - 1));
            assert!(!any_parallel(n, threads, &|i| i == n));
        }
        let mut empty: Vec<u32> = Vec::new();
        retain_parallel(&mut empty, 2, &keep);
        assert!(empty.is_empty());
        assert!(!any_parallel(0, 2, &|_| true));
    }
}
