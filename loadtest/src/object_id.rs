//! Unique 24-hex-digit ObjectId strings for `--ids-out` runs.
//!
//! Layout of the 12 bytes: 4-byte run start (unix seconds) | 3-byte random
//! run nonce | 1-byte thread index | 4-byte per-thread counter. Threads never
//! share a counter (no atomics on the hot path), and two runs differ in the
//! seconds or, within one second, almost surely in the nonce. Only the last 8
//! hex digits change from one id to the next.

use std::hash::{BuildHasher, Hasher};

/// Length of an id as hex text.
pub const ID_HEX_LEN: usize = 24;
/// Ids one thread can mint in one run (the counter's range).
pub const MAX_IDS_PER_THREAD: u64 = 1 << 32;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Mints ids for one thread.
pub struct IdMinter {
    prefix_hex: [u8; 16],
    next: u64,
}

impl IdMinter {
    /// A minter for thread `thread_index` of the run started at `run_secs`
    /// (unix seconds); only the low 24 bits of `run_nonce` are used. The counter
    /// starts at 0.
    pub fn new(run_secs: u32, run_nonce: u32, thread_index: u8) -> IdMinter {
        let mut prefix = [0u8; 8];
        prefix[..4].copy_from_slice(&run_secs.to_be_bytes());
        prefix[4..7].copy_from_slice(&run_nonce.to_be_bytes()[1..]);
        prefix[7] = thread_index;
        let mut prefix_hex = [0u8; 16];
        encode_hex(&prefix, &mut prefix_hex);
        IdMinter {
            prefix_hex,
            next: 0,
        }
    }

    /// The next id, written into `out` (24 bytes).
    pub fn mint_into(&mut self, out: &mut [u8]) {
        assert_eq!(out.len(), ID_HEX_LEN);
        assert!(
            self.next < MAX_IDS_PER_THREAD,
            "id counter exhausted: {MAX_IDS_PER_THREAD} ids on one thread"
        );
        out[..16].copy_from_slice(&self.prefix_hex);
        encode_hex(&(self.next as u32).to_be_bytes(), &mut out[16..]);
        self.next += 1;
    }
}

/// Random bits for the run nonce, from std's per-process random hash keys
/// (no extra dependency for 24 random bits).
pub fn run_nonce() -> u32 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish() as u32
}

fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), bytes.len() * 2);
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_unique_and_thread_tagged() {
        let mut a = IdMinter::new(0x6543_2100, 0xabcdef, 1);
        let mut b = IdMinter::new(0x6543_2100, 0xabcdef, 2);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            for m in [&mut a, &mut b] {
                let mut id = [0u8; ID_HEX_LEN];
                m.mint_into(&mut id);
                assert!(id
                    .iter()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
                assert!(seen.insert(id));
            }
        }
        let mut id = [0u8; ID_HEX_LEN];
        IdMinter::new(0x6543_2100, 0xabcdef, 7).mint_into(&mut id);
        assert_eq!(&id, b"65432100abcdef0700000000");
    }
}
