//! Minting ObjectIds for events that arrive without `_id` (DESIGN §3):
//! 4-byte receive seconds | 5-byte node id | 3-byte per-journal counter.
//!
//! Determinism is the point: a record stores only the *base* id (the first
//! minted id's bytes); the k-th minted event of the record gets the base
//! with `counter + k`. The flush side recomputes ids from the record alone,
//! so every replay of the journal yields the same ids and the store
//! deduplicates them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use helios_store::{ObjectId, COUNTER_MAX, NODE_ID_BYTES, OBJECT_ID_BYTES};

/// File in a journal directory holding its node id: 10 lowercase hex digits
/// and a newline (text, so an operator can read and compare it).
pub const NODE_ID_FILE: &str = "node-id";
/// Temporary name the node id is written under before the atomic rename.
const NODE_ID_TEMP_FILE: &str = "node-id.tmp";
/// Where randomness comes from (Linux only, like the rest of the collector;
/// no crate needed for 5 bytes).
const RANDOM_SOURCE: &str = "/dev/urandom";

const SECONDS_BYTES: usize = 4;
const COUNTER_START: usize = SECONDS_BYTES + NODE_ID_BYTES;
const MS_PER_SECOND: i64 = 1_000;

/// Hands out minted-id bases for one journal. Not shared between cores:
/// each journal has its own minter (the counter is per journal, the node id
/// per journal directory).
#[derive(Debug, Clone)]
pub struct IdMinter {
    node_id: [u8; NODE_ID_BYTES],
    next_counter: u32,
}

impl IdMinter {
    /// A minter whose first id uses `start_counter` (taken mod 2^24: a start
    /// point, so masking loses nothing).
    ///
    /// Pick the start so ids minted after a restart within the same second
    /// cannot repeat earlier ones: continue from the last recovered record
    /// (`counter(id_base) + mint count`) or start at a random value.
    pub fn new(node_id: [u8; NODE_ID_BYTES], start_counter: u32) -> Self {
        Self {
            node_id,
            next_counter: start_counter & COUNTER_MAX,
        }
    }

    /// The node id in every id this minter makes.
    pub fn node_id(&self) -> [u8; NODE_ID_BYTES] {
        self.node_id
    }

    /// The counter the next reserved base will carry.
    pub fn next_counter(&self) -> u32 {
        self.next_counter
    }

    /// Reserves `n` consecutive counters for one record and returns the base
    /// id to journal as `RecordMeta::id_base`: seconds of `recv_ms`, this
    /// node, the current counter. The counter advances by `n` (mod 2^24).
    ///
    /// Seconds before 1970 are written as 0 and after 2106 as `u32::MAX`
    /// (the field is unsigned 32-bit); a receive clock that far off is
    /// broken, and the counter still keeps ids distinct.
    pub fn reserve(&mut self, recv_ms: i64, n: u32) -> [u8; OBJECT_ID_BYTES] {
        let seconds = recv_ms
            .div_euclid(MS_PER_SECOND)
            .clamp(0, i64::from(u32::MAX));
        let seconds = u32::try_from(seconds).unwrap_or(u32::MAX);
        let mut base = [0u8; OBJECT_ID_BYTES];
        base[..SECONDS_BYTES].copy_from_slice(&seconds.to_be_bytes());
        base[SECONDS_BYTES..COUNTER_START].copy_from_slice(&self.node_id);
        write_counter(&mut base, self.next_counter);
        self.next_counter = self.next_counter.wrapping_add(n) & COUNTER_MAX;
        base
    }
}

/// The `k`-th (0-based) minted id of a record whose base is `id_base`: same
/// seconds and node, counter `base + k` mod 2^24.
pub fn minted_id(id_base: [u8; OBJECT_ID_BYTES], k: u32) -> ObjectId {
    let base = ObjectId::from_bytes(id_base);
    // 2^24 divides 2^32, so wrapping in u32 and then masking is mod 2^24.
    let counter = base.counter().wrapping_add(k) & COUNTER_MAX;
    let mut bytes = id_base;
    write_counter(&mut bytes, counter);
    ObjectId::from_bytes(bytes)
}

fn write_counter(id: &mut [u8; OBJECT_ID_BYTES], counter: u32) {
    // The low three bytes of the big-endian counter.
    let [_, high, mid, low] = counter.to_be_bytes();
    id[COUNTER_START..].copy_from_slice(&[high, mid, low]);
}

/// The node id of the journal directory `dir`: read from `dir/node-id`, or
/// drawn at random and persisted there durably (temp file, fsync, rename,
/// fsync of the directory) the first time.
///
/// A file that exists but does not hold a node id is an error, not a reason
/// to draw a new one: something else wrote there, and an operator should
/// look. The caller must own `dir` (one collector per data directory), as
/// two processes creating it at once could each return their own draw.
pub fn load_or_create_node_id(dir: &Path) -> io::Result<[u8; NODE_ID_BYTES]> {
    let path = dir.join(NODE_ID_FILE);
    match fs::read(&path) {
        Ok(text) => parse_node_id_file(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: expected {} hex digits and a newline",
                    path.display(),
                    2 * NODE_ID_BYTES
                ),
            )
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => create_node_id(dir),
        Err(error) => Err(error),
    }
}

fn create_node_id(dir: &Path) -> io::Result<[u8; NODE_ID_BYTES]> {
    let mut node_id = [0u8; NODE_ID_BYTES];
    File::open(RANDOM_SOURCE)?.read_exact(&mut node_id)?;
    let temp = dir.join(NODE_ID_TEMP_FILE);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)?;
    file.write_all(format_node_id_file(node_id).as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, dir.join(NODE_ID_FILE))?;
    // The rename is durable only once the directory entry is.
    File::open(dir)?.sync_all()?;
    Ok(node_id)
}

fn format_node_id_file(node_id: [u8; NODE_ID_BYTES]) -> String {
    let mut text: String = node_id.iter().map(|byte| format!("{byte:02x}")).collect();
    text.push('\n');
    text
}

fn parse_node_id_file(text: &[u8]) -> Option<[u8; NODE_ID_BYTES]> {
    let digits = text.strip_suffix(b"\n")?;
    // `from_str_radix` would take a sign ("+0"): check the digits first.
    if digits.len() != 2 * NODE_ID_BYTES || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut node_id = [0u8; NODE_ID_BYTES];
    for (out, pair) in node_id.iter_mut().zip(digits.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *out = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(node_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_file_text_round_trips() {
        let node = [0x00, 0x1f, 0xa0, 0xff, 0x42];
        let text = format_node_id_file(node);
        assert_eq!(text, "001fa0ff42\n");
        assert_eq!(parse_node_id_file(text.as_bytes()), Some(node));
    }

    #[test]
    fn node_id_file_rejects_anything_else() {
        for text in [
            &b""[..],
            b"001fa0ff42",
            b"001fa0ff4\n",
            b"001fa0ff4g\n",
            b"+01fa0ff42\n",
        ] {
            assert_eq!(parse_node_id_file(text), None, "{text:?}");
        }
    }
}
