//! ObjectId minting.
//!
//! The client fixes every event's `_id` at `record()` time so that a resend
//! after a lost acknowledgement carries the same id and the server stores the
//! event once (DESIGN.md §1 invariant 2). The layout is MongoDB's, so ids sort
//! by creation second and need no coordination between processes:
//!
//! | bytes | content |
//! |---|---|
//! | 0..4  | unix seconds, big-endian |
//! | 4..9  | random value, fixed for the life of the process |
//! | 9..12 | big-endian counter, starting at a random value, wrapping at 2^24 |

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::random;

/// Size of an ObjectId in bytes.
pub const OBJECT_ID_BYTES: usize = 12;
/// Length of an ObjectId written as lowercase hex.
pub const OBJECT_ID_HEX_LEN: usize = 2 * OBJECT_ID_BYTES;
/// The counter occupies the low three bytes.
const COUNTER_MASK: u32 = 0x00FF_FFFF;
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// A 12-byte event id, written in JSON as 24 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId([u8; OBJECT_ID_BYTES]);

impl ObjectId {
    /// Builds an id from its three parts; only the low 24 bits of `counter`
    /// are used.
    pub fn from_parts(unix_secs: u32, process_random: [u8; 5], counter: u32) -> Self {
        let mut bytes = [0u8; OBJECT_ID_BYTES];
        bytes[0..4].copy_from_slice(&unix_secs.to_be_bytes());
        bytes[4..9].copy_from_slice(&process_random);
        bytes[9..12].copy_from_slice(&(counter & COUNTER_MASK).to_be_bytes()[1..4]);
        ObjectId(bytes)
    }

    /// The raw 12 bytes.
    pub fn bytes(&self) -> [u8; OBJECT_ID_BYTES] {
        self.0
    }

    /// The creation time in unix seconds (bytes 0..4).
    pub fn unix_secs(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// The id as 24 lowercase hex ASCII bytes, without allocating.
    pub fn hex_bytes(&self) -> [u8; OBJECT_ID_HEX_LEN] {
        let mut out = [0u8; OBJECT_ID_HEX_LEN];
        for (i, byte) in self.0.iter().enumerate() {
            out[2 * i] = HEX_DIGITS[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX_DIGITS[usize::from(byte & 0x0f)];
        }
        out
    }

    /// The id as a 24-character lowercase hex string.
    pub fn to_hex(&self) -> String {
        // hex_bytes only yields ASCII digits, so this never replaces anything.
        String::from_utf8_lossy(&self.hex_bytes()).into_owned()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

/// Per-process state: shared by every `Client` in the process so that two
/// clients never mint the same id.
struct ProcessIdState {
    random: [u8; 5],
    counter: AtomicU32,
}

fn process_state() -> &'static ProcessIdState {
    static STATE: OnceLock<ProcessIdState> = OnceLock::new();
    STATE.get_or_init(|| {
        let seed = random::seed_u64().to_be_bytes();
        let counter_start = random::seed_u64() as u32 & COUNTER_MASK;
        ProcessIdState {
            random: [seed[0], seed[1], seed[2], seed[3], seed[4]],
            counter: AtomicU32::new(counter_start),
        }
    })
}

/// Mints a fresh id for an event created at `unix_secs`.
pub(crate) fn mint(unix_secs: u32) -> ObjectId {
    let state = process_state();
    // Relaxed: the counter only needs to be unique, not ordered with other
    // memory; wrapping past 2^24 is masked in from_parts.
    let counter = state.counter.fetch_add(1, Ordering::Relaxed);
    ObjectId::from_parts(unix_secs, state.random, counter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_seconds_then_random_then_counter_big_endian() {
        let id = ObjectId::from_parts(0x0102_0304, [5, 6, 7, 8, 9], 0x000a_0b0c);
        assert_eq!(id.bytes(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0a, 0x0b, 0x0c]);
        assert_eq!(id.to_hex(), "0102030405060708090a0b0c");
        assert_eq!(id.unix_secs(), 0x0102_0304);
    }

    #[test]
    fn counter_wraps_at_24_bits() {
        let id = ObjectId::from_parts(0, [0; 5], 0x0100_0001);
        assert_eq!(&id.bytes()[9..], &[0, 0, 1]);
    }

    #[test]
    fn minted_ids_are_unique_and_share_the_process_bytes() {
        let a = mint(1_700_000_000);
        let b = mint(1_700_000_000);
        assert_ne!(a, b);
        assert_eq!(a.bytes()[4..9], b.bytes()[4..9]);
        assert_eq!(a.unix_secs(), 1_700_000_000);
        assert_eq!(a.to_hex().len(), OBJECT_ID_HEX_LEN);
        assert!(a
            .to_hex()
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
