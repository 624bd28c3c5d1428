//! Self-contained pseudo-random numbers and unique id scrambling.
//!
//! The generator promises byte-identical output for a seed, so the PRNG lives here (SplitMix64 seeding
//! xoshiro256++, both public-domain algorithms by Vigna et al.) instead of in a crate whose stream could change
//! with an upgrade. Every customer gets its own generator derived from `(seed, stream, customer index)`, which is
//! what makes the output independent of how customers are split into chunks.

/// The SplitMix64 finaliser: a bijection on `u64` with good avalanche, used both to seed and to scramble ids.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Independent random streams of one customer (or of one world-level table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Stream {
    /// Traits, journeys and conversions: everything revenue depends on.
    Plan = 1,
    /// Identifiers, timings, formats and noise of the rows written.
    Detail = 2,
    Stores = 3,
    Catalog = 4,
    /// Offsets of the affine id permutations.
    IdKeys = 5,
}

/// xoshiro256++ seeded through SplitMix64.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The generator of `index` (a customer, a store, …) in `stream` for `seed`.
    pub(crate) fn new(seed: u64, stream: Stream, index: u64) -> Rng {
        let mut sm = mix64(mix64(seed ^ GOLDEN_GAMMA) ^ (stream as u64).wrapping_mul(GOLDEN_GAMMA))
            ^ mix64(index);
        let mut next = || {
            sm = sm.wrapping_add(GOLDEN_GAMMA);
            mix64(sm)
        };
        let mut s = [next(), next(), next(), next()];
        if s == [0; 4] {
            // The all-zero state is xoshiro's only fixed point.
            s[0] = GOLDEN_GAMMA;
        }
        Rng { s }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.s;
        let result = s0.wrapping_add(s3).rotate_left(23).wrapping_add(s0);
        let t = s1 << 17;
        let mut s = [s0, s1, s2 ^ s0, s3 ^ s1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        self.s = s;
        result
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)`; `n = 0` yields 0. Lemire's multiply-shift with rejection, so it is unbiased.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Uniform in `[lo, hi)` (`lo` when the range is empty).
    pub(crate) fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi.abs_diff(lo)) as i64
    }

    /// Uniform index into a slice of `len` elements.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// `true` with probability `p` (`p <= 0` never, `p >= 1` always).
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A uniformly chosen element; `None` for an empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.index(items.len()))
    }

    /// Index chosen with probability proportional to `weights` (all non-negative, not all zero).
    pub(crate) fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.next_f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        // Rounding can leave x a hair above the last bucket: it belongs to the last non-zero weight.
        weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
    }
}

/// Bit layout of [`unique_u64`]: 4 bits of domain, 40 of owner index, 20 of per-owner slot.
pub(crate) const MAX_OWNER_INDEX: u64 = (1 << 40) - 1;
pub(crate) const MAX_SLOT: u32 = (1 << 20) - 1;

/// What a scrambled id belongs to; part of the scrambled value, so ids of different kinds never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum IdDomain {
    Cookie = 1,
    Device = 2,
    TabletCookie = 3,
    WebEvent = 4,
    AppEvent = 5,
    Order = 6,
    Receipt = 7,
    Touch = 8,
    Scan = 9,
}

/// A random-looking but unique 64-bit id: `mix64` is a bijection, so distinct `(domain, owner, slot)` triples
/// (within the bit budget checked by callers) give distinct ids for a given `key`.
pub(crate) fn unique_u64(key: u64, domain: IdDomain, owner: u64, slot: u32) -> u64 {
    debug_assert!(owner <= MAX_OWNER_INDEX && slot <= MAX_SLOT);
    let packed =
        ((domain as u64) << 60) | ((owner & MAX_OWNER_INDEX) << 20) | u64::from(slot & MAX_SLOT);
    mix64(packed ^ key)
}

/// `x ↦ (a·x + b) mod m`: a permutation of `[0, m)` when `gcd(a, m) = 1`. Gives short, unique decimal ids
/// (phones, cards, accounts) that do not reveal the customer index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AffinePermutation {
    multiplier: u128,
    offset: u128,
    modulus: u128,
}

impl AffinePermutation {
    /// `multiplier` must be coprime with `modulus`; `offset_seed` is reduced modulo `modulus`.
    pub(crate) const fn new(multiplier: u64, offset_seed: u64, modulus: u64) -> Self {
        AffinePermutation {
            multiplier: multiplier as u128,
            offset: (offset_seed % modulus) as u128,
            modulus: modulus as u128,
        }
    }

    pub(crate) fn apply(&self, x: u64) -> u64 {
        ((self.multiplier * (u128::from(x) % self.modulus) + self.offset) % self.modulus) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(42, Stream::Plan, 7);
        let mut b = Rng::new(42, Stream::Plan, 7);
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn streams_seeds_and_indices_differ() {
        let first = |seed, stream, index| Rng::new(seed, stream, index).next_u64();
        let base = first(42, Stream::Plan, 7);
        assert_ne!(base, first(43, Stream::Plan, 7));
        assert_ne!(base, first(42, Stream::Detail, 7));
        assert_ne!(base, first(42, Stream::Plan, 8));
    }

    #[test]
    fn known_answer_pins_the_stream() {
        // The output of a seed is part of the product's contract (same seed => same bytes): a change in the
        // algorithm must be deliberate, so the first values of one stream are pinned here.
        // The values were computed independently (Python transcription of the reference algorithms).
        let mut r = Rng::new(1, Stream::Plan, 0);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                0x88EE_D361_0A16_E1C4,
                0x1BBA_9340_593C_3A29,
                0x1FDC_617F_B2C5_ECEF
            ]
        );
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161D_100B_05E5);
    }

    #[test]
    fn xoshiro_reference_vector() {
        // Reference: xoshiro256++ from state {1, 2, 3, 4} (Vigna's C code) starts 41943041, 58720359, …
        let mut r = Rng { s: [1, 2, 3, 4] };
        assert_eq!(r.next_u64(), 41_943_041);
        assert_eq!(r.next_u64(), 58_720_359);
        assert_eq!(r.next_u64(), 3_588_806_011_781_223);
    }

    #[test]
    fn bounded_draws_stay_in_range_and_cover_it() {
        let mut r = Rng::new(9, Stream::Detail, 1);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let x = r.below(7);
            seen[x as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800 && n < 1200), "{seen:?}");
        for _ in 0..1000 {
            let v = r.range_i64(-5, 5);
            assert!((-5..5).contains(&v));
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
        }
        assert_eq!(r.range_i64(3, 3), 3);
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn weighted_respects_zero_weights() {
        let mut r = Rng::new(5, Stream::Detail, 5);
        for _ in 0..1000 {
            assert_ne!(r.weighted(&[1.0, 0.0, 2.0]), 1);
        }
    }

    #[test]
    fn affine_permutation_is_a_bijection() {
        let p = AffinePermutation::new(7, 123_456, 1000);
        let mut seen = vec![false; 1000];
        for x in 0..1000 {
            let y = p.apply(x) as usize;
            assert!(!seen[y]);
            seen[y] = true;
        }
    }

    #[test]
    fn unique_ids_do_not_collide_across_domains() {
        let mut ids = std::collections::HashSet::new();
        for domain in [IdDomain::Cookie, IdDomain::Device, IdDomain::TabletCookie] {
            for owner in 0..50 {
                for slot in 0..20 {
                    assert!(ids.insert(unique_u64(99, domain, owner, slot)));
                }
            }
        }
    }
}
