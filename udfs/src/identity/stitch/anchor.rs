//! Stable customer ids: every component is named after its anchor identifier, so the id depends
//! only on the data, never on input order, partitioning or the run.

use std::cmp::Ordering;

use sha2::{Digest, Sha256};

/// Bytes of SHA-256 kept in a `customer_id` (32 hex characters).
pub(crate) const CUSTOMER_ID_BYTES: usize = 16;

/// What decides the anchor of a component, for one candidate identifier.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnchorCandidate<'a> {
    /// Earliest sighting in µs; `i64::MAX` when unknown (such identifiers come last).
    pub first_seen: i64,
    /// Position of the identifier's type in the priority order (lower = more trusted).
    pub type_rank: u32,
    pub value: &'a [u8],
}

/// The anchor order: earliest `first_seen`, then type priority, then value bytes. Type ranks are
/// distinct per type, so two different identifiers never compare equal.
pub(crate) fn anchor_order(a: &AnchorCandidate, b: &AnchorCandidate) -> Ordering {
    a.first_seen
        .cmp(&b.first_seen)
        .then(a.type_rank.cmp(&b.type_rank))
        .then_with(|| a.value.cmp(b.value))
}

/// The customer id of a component whose anchor is `(id_type, value)`: SHA-256 over the type's
/// length, the type and the value (unambiguous for any bytes), truncated.
pub(crate) fn customer_id(id_type: &str, value: &[u8]) -> [u8; CUSTOMER_ID_BYTES] {
    let mut hasher = Sha256::new();
    hasher.update((id_type.len() as u64).to_be_bytes());
    hasher.update(id_type.as_bytes());
    hasher.update(value);
    let digest = hasher.finalize();
    let mut id = [0u8; CUSTOMER_ID_BYTES];
    id.copy_from_slice(&digest[..CUSTOMER_ID_BYTES]);
    id
}

/// A replacement customer id for a component whose anchor hash is already taken by a customer
/// of the previous identity map (incremental mode); `salt` counts the attempts from 1. Hashed
/// in another domain than [`customer_id`] (a length no type has), so it never equals a plain id.
pub(crate) fn salted_customer_id(
    id_type: &str,
    value: &[u8],
    salt: u32,
) -> [u8; CUSTOMER_ID_BYTES] {
    let mut hasher = Sha256::new();
    hasher.update(u64::MAX.to_be_bytes());
    hasher.update(salt.to_be_bytes());
    hasher.update((id_type.len() as u64).to_be_bytes());
    hasher.update(id_type.as_bytes());
    hasher.update(value);
    let digest = hasher.finalize();
    let mut id = [0u8; CUSTOMER_ID_BYTES];
    id.copy_from_slice(&digest[..CUSTOMER_ID_BYTES]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(first_seen: i64, type_rank: u32, value: &str) -> AnchorCandidate<'_> {
        AnchorCandidate {
            first_seen,
            type_rank,
            value: value.as_bytes(),
        }
    }

    #[test]
    fn earliest_then_priority_then_value() {
        let early = candidate(1, 5, "z");
        let late = candidate(2, 0, "a");
        assert_eq!(anchor_order(&early, &late), Ordering::Less);
        let trusted = candidate(1, 0, "z");
        assert_eq!(anchor_order(&trusted, &early), Ordering::Less);
        let smaller = candidate(1, 0, "a");
        assert_eq!(anchor_order(&smaller, &trusted), Ordering::Less);
        let unknown_time = candidate(i64::MAX, 0, "a");
        assert_eq!(anchor_order(&unknown_time, &late), Ordering::Greater);
    }

    #[test]
    fn customer_ids_are_fixed_and_separate_type_from_value() {
        let id = customer_id("email", b"ann@shop.ru");
        assert_eq!(id, customer_id("email", b"ann@shop.ru"));
        // pinned (also in the slt files and the docs): a change here changes every customer id
        assert_eq!(hex::encode(id), "8c14fb482892d4e7fcfc3a2d635ea45c");
        assert_ne!(customer_id("email", b"a"), customer_id("emai", b"la"));
        assert_ne!(customer_id("phone", b"+1"), customer_id("email", b"+1"));
        assert_ne!(
            salted_customer_id("email", b"a", 1),
            customer_id("email", b"a")
        );
        assert_ne!(
            salted_customer_id("email", b"a", 1),
            salted_customer_id("email", b"a", 2)
        );
    }
}
