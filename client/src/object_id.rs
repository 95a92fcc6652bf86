//! ObjectId minting.
//!
//! The client fixes every event's `_id` at `record()` time so that a resend
//! after a lost acknowledgement carries the same id and the server stores the
//! event once (DESIGN.md §1 invariant 2). The value type is the workspace's
//! one [`ObjectId`] (crate `helios-object-id`, shared with the store); this
//! module is the client's minting policy:
//!
//! | bytes | content |
//! |---|---|
//! | 0..4  | unix seconds, big-endian |
//! | 4..9  | random value, fixed for the life of the process |
//! | 9..12 | big-endian counter, starting at a random value, wrapping at 2^24 |

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub use helios_object_id::{ObjectId, NODE_ID_BYTES, OBJECT_ID_BYTES, OBJECT_ID_HEX_CHARS};

use crate::random;

/// Length of an ObjectId written as lowercase hex.
pub const OBJECT_ID_HEX_LEN: usize = OBJECT_ID_HEX_CHARS;

/// Per-process state: shared by every `Client` in the process so that two
/// clients never mint the same id.
struct ProcessIdState {
    random: [u8; NODE_ID_BYTES],
    counter: AtomicU32,
}

fn process_state() -> &'static ProcessIdState {
    static STATE: OnceLock<ProcessIdState> = OnceLock::new();
    STATE.get_or_init(|| {
        let seed = random::seed_u64().to_be_bytes();
        let counter_start = random::seed_u64() as u32 & helios_object_id::COUNTER_MAX;
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
    // memory. Wrapping past 2^24 within one second would need 16 M events a
    // second from one process; the 5 random bytes still separate processes.
    let counter = state.counter.fetch_add(1, Ordering::Relaxed);
    ObjectId::from_parts_wrapping(unix_secs, state.random, counter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_are_unique_and_share_the_process_bytes() {
        let a = mint(1_700_000_000);
        let b = mint(1_700_000_000);
        assert_ne!(a, b);
        assert_eq!(a.node_id(), b.node_id());
        assert_eq!(a.timestamp_secs(), 1_700_000_000);
        assert_eq!(a.to_hex().len(), OBJECT_ID_HEX_LEN);
        assert!(a
            .to_hex()
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
