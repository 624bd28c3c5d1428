//! Short names (channels, identifier types, sources: at most 16 bytes) as a pair of integers, so
//! that the per-row lookups of the attribution and identity readers compare and hash two words
//! instead of calling `memcmp` and hashing bytes.

use std::hash::Hasher;

/// The longest name a [`ShortName`] holds.
pub(crate) const SHORT_NAME_BYTES: usize = 16;

/// A name of at most [`SHORT_NAME_BYTES`] bytes as two integers and its length. Distinct
/// names give distinct keys, and making one takes two (overlapping) unaligned loads of the name,
/// no copy: the loads cover every byte of the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShortName {
    head: u64,
    tail: u64,
    len: u8,
}

impl std::hash::Hash for ShortName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // One word: equal hashes of different names are told apart by `Eq`.
        state.write_u64(self.head ^ self.tail.rotate_left(32) ^ u64::from(self.len) << 56);
    }
}

/// `bytes` as a [`ShortName`], or `None` when it is longer than [`SHORT_NAME_BYTES`].
pub(crate) fn short_name_key(bytes: &[u8]) -> Option<ShortName> {
    let len = bytes.len();
    let word = |range: std::ops::Range<usize>| -> Option<u64> {
        Some(match range.len() {
            8 => u64::from_le_bytes(bytes.get(range)?.try_into().ok()?),
            _ => u64::from(u32::from_le_bytes(bytes.get(range)?.try_into().ok()?)),
        })
    };
    let (head, tail) = match len {
        0 => (0, 0),
        1..=3 => (
            u64::from(bytes[0]) | u64::from(bytes[len / 2]) << 8 | u64::from(bytes[len - 1]) << 16,
            0,
        ),
        4..=7 => (word(0..4)?, word(len - 4..len)?),
        8..=SHORT_NAME_BYTES => (word(0..8)?, word(len - 8..len)?),
        _ => return None,
    };
    Some(ShortName {
        head,
        tail,
        len: len as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_names_have_distinct_keys() {
        let names: [&[u8]; 12] = [
            b"",
            b"a",
            b"ab",
            b"ab\0",
            b"aba",
            b"abc",
            b"abcd",
            b"abcde",
            b"abcdefgh",
            b"abcdefghi",
            b"0123456789abcdef",
            b"0123456789abcdeg",
        ];
        for (i, a) in names.iter().enumerate() {
            for (j, b) in names.iter().enumerate() {
                assert_eq!(
                    short_name_key(a) == short_name_key(b),
                    i == j,
                    "{a:?} {b:?}"
                );
            }
        }
        assert!(short_name_key(b"seventeen bytes!!").is_none());
        assert_eq!(short_name_key(b"phone"), short_name_key(b"phone"));
    }
}
