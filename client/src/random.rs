//! Non-cryptographic randomness for id bytes and retry jitter.
//!
//! Neither use needs unpredictability against an attacker, only values that
//! differ between processes and spread retries; std's `RandomState` is seeded
//! from the OS, so hashing with it gives that without another dependency.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// A 64-bit value seeded from OS randomness, the clock and the process id.
pub(crate) fn seed_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// SplitMix64: tiny, fast and well distributed; used only for jitter.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded by [`seed_u64`].
    pub(crate) fn from_entropy() -> Self {
        Rng(seed_u64())
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..=max` (modulo bias is irrelevant for jitter).
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(bound) => self.next_u64() % bound,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_stays_in_range_and_varies() {
        let mut rng = Rng::from_entropy();
        let values: Vec<u64> = (0..1000).map(|_| rng.up_to(10)).collect();
        assert!(values.iter().all(|v| *v <= 10));
        assert!(values.iter().any(|v| *v != values[0]));
        assert_eq!(rng.up_to(0), 0);
    }
}
