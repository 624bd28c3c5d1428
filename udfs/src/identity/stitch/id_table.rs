//! The hash table of one interning partition: identifier hash → the partition's local id.
//!
//! Interning millions of identifiers waits on memory: a partition's table, records and values
//! are too many to stay in cache between chunks, and every sighting reads all three. This table
//! lets the interner load them ahead (software pipelining, see `Partition::intern`): where an
//! identifier's slot is follows from its hash alone, and the slot tells which record to load
//! (hashbrown's table exposes neither). Open addressing with linear probing; a slot is a `u64`
//! holding the low 32 bits of the hash (its tag, which also places it) and `local + 1` (0 is an
//! empty slot), so a probe compares tags without reading the identifier, and growing rehashes
//! nothing but the tags.

/// An empty slot.
const EMPTY: u64 = 0;
/// Slots in a new table.
const MIN_SLOTS: usize = 16;

#[derive(Debug, Default, Clone)]
pub(crate) struct IdTable {
    /// A power of two of slots (or none), at most 3/4 full: a probe always ends at an empty one.
    slots: Vec<u64>,
    len: usize,
}

fn tag(hash: u64) -> u32 {
    hash as u32
}

/// Whether `slot` holds an entry with `hash`'s tag.
fn tagged(slot: u64, hash: u64) -> bool {
    slot != EMPTY && (slot >> 32) as u32 == tag(hash)
}

impl IdTable {
    fn home(&self, hash: u64) -> usize {
        // `len - 1` is the mask of a power of two; an empty table has no slot to find.
        tag(hash) as usize & self.slots.len().wrapping_sub(1)
    }

    /// The local id of the entry of `hash` for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(hash);
        loop {
            let slot = self.slots[at];
            if slot == EMPTY {
                return None;
            }
            if tagged(slot, hash) && eq(slot as u32 - 1) {
                return Some(slot as u32 - 1);
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds `local` (< `u32::MAX`) under `hash`; the caller knows it is not in the table.
    pub(crate) fn insert(&mut self, hash: u64, local: u32) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.place((u64::from(tag(hash)) << 32) | (u64::from(local) + 1));
        self.len += 1;
    }

    fn place(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut at = (slot >> 32) as usize & mask;
        while self.slots[at] != EMPTY {
            at = (at + 1) & mask;
        }
        self.slots[at] = slot;
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(MIN_SLOTS);
        // Written, not `vec![EMPTY; n]`: calloc'd pages read before they are written map the
        // shared zero page, and the first write then costs a copy-on-write fault with a TLB flush
        // on every core.
        let mut slots = Vec::with_capacity(capacity);
        slots.resize(capacity, EMPTY);
        for slot in std::mem::replace(&mut self.slots, slots) {
            if slot != EMPTY {
                self.place(slot);
            }
        }
    }

    /// Starts loading the slot where the search for `hash` begins.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        if let Some(slot) = self.slots.get(self.home(hash)) {
            prefetch(slot);
        }
    }

    /// The local id in the slot where the search for `hash` begins if its tag is `hash`'s: the
    /// entry a search will most likely compare first, so that its data can be loaded ahead.
    #[inline]
    pub(crate) fn likely(&self, hash: u64) -> Option<u32> {
        let slot = *self.slots.get(self.home(hash))?;
        tagged(slot, hash).then(|| slot as u32 - 1)
    }

    pub(crate) fn allocation_size(&self) -> usize {
        self.slots.capacity() * size_of::<u64>()
    }
}

/// Asks the CPU to start loading the cache line of `item` (a hint; a no-op off x86-64).
#[inline(always)]
pub(crate) fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch neither faults nor writes; SSE, which it needs, is in every x86-64 CPU.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (item as *const T).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A hash with few distinct tags, so that probes run long and wrap around.
    fn clustered(key: u64) -> u64 {
        ((key * 0x9e37_79b9) << 32) | (key % 7)
    }

    #[test]
    fn finds_what_was_inserted_with_colliding_tags_and_growth() {
        let mut table = IdTable::default();
        let mut keys: HashMap<u32, u64> = HashMap::new();
        assert_eq!(table.find(clustered(1), |_| true), None);
        assert_eq!(table.likely(clustered(1)), None);
        table.prefetch(clustered(1));
        for local in 0..5_000u32 {
            let key = u64::from(local) * 3 + 1;
            assert_eq!(table.find(clustered(key), |l| keys[&l] == key), None);
            table.insert(clustered(key), local);
            keys.insert(local, key);
        }
        assert!(table.slots.len().is_power_of_two() && table.len * 4 <= table.slots.len() * 3);
        for (&local, &key) in &keys {
            assert_eq!(table.find(clustered(key), |l| keys[&l] == key), Some(local));
            table.prefetch(clustered(key));
            // Only 7 tags: the first slot's entry, if it has the tag, may be another key's.
            if let Some(l) = table.likely(clustered(key)) {
                assert_eq!(clustered(keys[&l]) as u32, clustered(key) as u32);
            }
        }
        // Absent keys with present tags are not found.
        assert_eq!(table.find(clustered(2), |l| keys[&l] == 2), None);
        assert_eq!(
            table.allocation_size(),
            table.slots.capacity() * size_of::<u64>()
        );
    }

    #[test]
    fn the_likely_entry_is_usually_the_one_searched_for() {
        let mut table = IdTable::default();
        let hash = |key: u64| key.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
        for local in 0..10_000u32 {
            table.insert(hash(u64::from(local)), local);
        }
        let likely = (0..10_000u32)
            .filter(|&local| table.likely(hash(u64::from(local))) == Some(local))
            .count();
        assert!(likely > 5_000, "{likely} of 10000 in their first slot");
        for local in 0..10_000u32 {
            assert_eq!(
                table.find(hash(u64::from(local)), |l| l == local),
                Some(local)
            );
        }
    }
}
