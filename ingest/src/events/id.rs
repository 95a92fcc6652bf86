//! Minting ObjectIds for events that arrive without `_id` (DESIGN §3):
//! 4-byte receive seconds | 5-byte node id | 3-byte per-journal counter.
//!
//! Determinism is the point: a record stores only the *base* id (the first
//! minted id's bytes); the k-th minted event of the record gets the base
//! with `counter + k`. The flush side recomputes ids from the record alone,
//! so every replay of the journal yields the same ids and the store
//! deduplicates them. Uniqueness is the other half: [`IdMinter`] never
//! hands out a position it (or an earlier run on the same journal) handed
//! out before, whatever the clock does.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use helios_journal::RecordIds;
use helios_store::{ObjectId, COUNTER_MAX, NODE_ID_BYTES, OBJECT_ID_BYTES};

/// File in a journal directory holding its node id: 10 lowercase hex digits
/// and a newline (text, so an operator can read and compare it).
pub const NODE_ID_FILE: &str = "node-id";
/// The node-id file's format version: the bare line above is version 1. A
/// later format must start with a line `version N` (N > 1), which this
/// build refuses naming both versions instead of drawing a new node id
/// (a new draw could repeat ids the journal already minted).
pub const NODE_ID_FILE_VERSION: u32 = 1;
/// How a versioned node-id file's first line starts.
const NODE_ID_VERSION_PREFIX: &str = "version ";
/// Temporary name the node id is written under before the atomic rename.
const NODE_ID_TEMP_FILE: &str = "node-id.tmp";
/// Where randomness comes from (Linux only, like the rest of the collector;
/// no crate needed for 5 bytes).
const RANDOM_SOURCE: &str = "/dev/urandom";

const SECONDS_BYTES: usize = 4;
const COUNTER_START: usize = SECONDS_BYTES + NODE_ID_BYTES;
const MS_PER_SECOND: i64 = 1_000;

/// Ids one second's counter can tell apart: a record never mints more, so
/// `--max-events-per-request` is capped at this.
pub const COUNTER_SPACE: u32 = COUNTER_MAX + 1;

/// Hands out minted-id bases for one journal. Not shared between cores:
/// each journal has its own minter (the counter is per journal, the node id
/// per journal directory).
///
/// Ids minted by one journal are unique forever, whatever the clock does:
/// the minter's position `(seconds, counter)` only moves forward. It starts
/// past the last record the journal ever held (recovery, or the checkpoint
/// once that record's segment is recycled), follows the receive clock when
/// the clock is ahead of it, stays put when the clock stands still or steps
/// back (the ids then carry a second a little after their receive time),
/// and moves to the next second when a second's 2^24 counters run out
/// rather than wrap onto ids already used.
#[derive(Debug, Clone)]
pub struct IdMinter {
    node_id: [u8; NODE_ID_BYTES],
    /// Seconds field of the next base; never decreases.
    seconds: u32,
    /// Counter of the next base, `0..=COUNTER_SPACE` (`COUNTER_SPACE`: this
    /// second is used up). Every counter below it in `seconds` may be taken.
    next_counter: u32,
}

impl IdMinter {
    /// A minter for a journal whose last record (ever) had the id fields
    /// `last` (`RecoveryReport::last_record_ids`; `None` for a new journal).
    /// Its first id comes after every id that record could have minted.
    pub fn resume(node_id: [u8; NODE_ID_BYTES], last: Option<RecordIds>) -> Self {
        let (seconds, next_counter) = match last {
            None => (0, 0),
            Some(ids) => {
                let base = ObjectId::from_bytes(ids.id_base);
                // `event_count` bounds the ids the record minted. A record
                // written before ids stopped wrapping may have wrapped within
                // its second: then the whole second is treated as used.
                let end = u64::from(base.counter()) + u64::from(ids.event_count);
                match u32::try_from(end) {
                    Ok(end) if end <= COUNTER_SPACE => (base.timestamp_secs(), end),
                    _ => (base.timestamp_secs().saturating_add(1), 0),
                }
            }
        };
        Self {
            node_id,
            seconds,
            next_counter,
        }
    }

    /// The node id in every id this minter makes.
    pub fn node_id(&self) -> [u8; NODE_ID_BYTES] {
        self.node_id
    }

    /// Reserves `n` consecutive counters for one record and returns the base
    /// id to journal as `RecordMeta::id_base`; the record's ids are
    /// `minted_id(base, 0..n)`, none of them minted before.
    ///
    /// The seconds field is those of `recv_ms` when that is ahead of every
    /// id minted so far, else the minter's current second (or the next one
    /// when fewer than `n` counters are left in it). Seconds before 1970
    /// count as 0; past 2106 the field saturates (a clock that far off is
    /// broken).
    pub fn reserve(&mut self, recv_ms: i64, n: u32) -> [u8; OBJECT_ID_BYTES] {
        assert!(
            n <= COUNTER_SPACE,
            "a record mints at most {COUNTER_SPACE} ids (config caps --max-events-per-request)"
        );
        let now = recv_ms
            .div_euclid(MS_PER_SECOND)
            .clamp(0, i64::from(u32::MAX));
        let now = u32::try_from(now).unwrap_or(u32::MAX);
        if now > self.seconds {
            self.seconds = now;
            self.next_counter = 0;
        }
        if u64::from(self.next_counter) + u64::from(n) > u64::from(COUNTER_SPACE) {
            self.seconds = self.seconds.saturating_add(1);
            self.next_counter = 0;
        }
        let mut base = [0u8; OBJECT_ID_BYTES];
        base[..SECONDS_BYTES].copy_from_slice(&self.seconds.to_be_bytes());
        base[SECONDS_BYTES..COUNTER_START].copy_from_slice(&self.node_id);
        write_counter(&mut base, self.next_counter);
        self.next_counter += n;
        debug_assert!(self.next_counter <= COUNTER_SPACE);
        base
    }
}

/// The `k`-th (0-based) minted id of a record whose base is `id_base`: same
/// seconds and node, counter `base + k`. [`IdMinter::reserve`] never lets
/// that pass 2^24; the wrap (mod 2^24) remains only so records journaled by
/// older collectors replay with the ids they were acked with.
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
            let problem = match file_version(&text) {
                Some(version) => format!(
                    "written in node-id file format version {version}; this build reads \
                     version {NODE_ID_FILE_VERSION}: run a Helios that knows version {version}"
                ),
                None => format!("expected {} hex digits and a newline", 2 * NODE_ID_BYTES),
            };
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {problem}", path.display()),
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

/// The version a later node-id file format declares on its first line
/// (`version N`), if it declares one this build does not read.
fn file_version(text: &[u8]) -> Option<u32> {
    let first_line = text.split(|&b| b == b'\n').next()?;
    let digits = std::str::from_utf8(first_line)
        .ok()?
        .strip_prefix(NODE_ID_VERSION_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&v| v != NODE_ID_FILE_VERSION)
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
    use std::collections::HashSet;

    use super::*;

    const NODE: [u8; NODE_ID_BYTES] = [1, 2, 3, 4, 5];
    const T0_MS: i64 = 1_796_066_503_000;

    /// Reserves `n` ids and returns them.
    fn mint(minter: &mut IdMinter, recv_ms: i64, n: u32) -> Vec<ObjectId> {
        let base = minter.reserve(recv_ms, n);
        (0..n).map(|k| minted_id(base, k)).collect()
    }

    /// What recovery would report after the record `(base, n)`.
    fn last(base: [u8; OBJECT_ID_BYTES], n: u32) -> Option<RecordIds> {
        Some(RecordIds {
            id_base: base,
            event_count: n,
        })
    }

    fn assert_all_new(seen: &mut HashSet<ObjectId>, ids: Vec<ObjectId>) {
        for id in ids {
            assert!(seen.insert(id), "{id} minted twice");
        }
    }

    #[test]
    fn a_clock_that_stands_still_never_repeats_an_id_across_restarts() {
        let mut seen = HashSet::new();
        let mut resume_from = None;
        for _restart in 0..5 {
            let mut minter = IdMinter::resume(NODE, resume_from);
            let mut record = None;
            for n in [1, 100, 7, 1000] {
                let base = minter.reserve(T0_MS, n);
                assert_all_new(&mut seen, (0..n).map(|k| minted_id(base, k)).collect());
                record = Some((base, n));
            }
            let (base, n) = record.unwrap();
            resume_from = last(base, n);
        }
        assert_eq!(seen.len(), 5 * 1108);
    }

    #[test]
    fn a_clock_that_steps_back_never_moves_the_seconds_back() {
        let mut minter = IdMinter::resume(NODE, None);
        let first = mint(&mut minter, T0_MS, 10);
        let after_step = mint(&mut minter, T0_MS - 3_600_000, 10);
        assert!(after_step
            .iter()
            .all(|id| id.timestamp_secs() >= first[0].timestamp_secs()));
        let mut seen = HashSet::new();
        assert_all_new(&mut seen, first);
        assert_all_new(&mut seen, after_step);
    }

    #[test]
    fn a_restart_with_the_clock_stepped_back_continues_past_the_last_record() {
        let mut minter = IdMinter::resume(NODE, None);
        let base = minter.reserve(T0_MS + 5_000, 3);
        let mut seen: HashSet<ObjectId> = (0..3).map(|k| minted_id(base, k)).collect();
        let mut restarted = IdMinter::resume(NODE, last(base, 3));
        assert_all_new(&mut seen, mint(&mut restarted, T0_MS, 3));
    }

    #[test]
    fn the_clock_moving_ahead_is_followed() {
        let mut minter = IdMinter::resume(NODE, None);
        mint(&mut minter, T0_MS, 5);
        let later = mint(&mut minter, T0_MS + 2_000, 1);
        assert_eq!(
            i64::from(later[0].timestamp_secs()),
            (T0_MS + 2_000) / MS_PER_SECOND
        );
        assert_eq!(later[0].counter(), 0);
    }

    #[test]
    fn a_used_up_second_moves_to_the_next_instead_of_wrapping() {
        let mut minter = IdMinter::resume(NODE, None);
        let most = ObjectId::from_bytes(minter.reserve(T0_MS, COUNTER_SPACE - 10));
        let next = mint(&mut minter, T0_MS, 20);
        assert_eq!(
            most.counter(),
            0,
            "the second's counters 0..2^24-10 are taken"
        );
        let second = most.timestamp_secs();
        assert!(next.iter().all(|id| id.timestamp_secs() == second + 1));
        assert_eq!(next[0].counter(), 0);
        let mut seen = HashSet::new();
        assert_all_new(&mut seen, next);
    }

    #[test]
    fn resuming_after_a_wrapped_legacy_record_skips_its_whole_second() {
        let old_base = ObjectId::from_parts(1_000, NODE, COUNTER_MAX - 1).unwrap();
        let mut minter = IdMinter::resume(NODE, last(old_base.bytes(), 5));
        let id = mint(&mut minter, 0, 1)[0];
        assert_eq!((id.timestamp_secs(), id.counter()), (1_001, 0));
    }

    #[test]
    fn any_sequence_of_clocks_and_restarts_mints_each_id_once() {
        // A small deterministic walk: still, back, forward, restarts.
        let mut seen = HashSet::new();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut clock_ms = T0_MS;
        let mut minter = IdMinter::resume(NODE, None);
        let mut last_record = None;
        for _ in 0..1_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 6 {
                0 => clock_ms -= (state >> 8) as i64 % 5_000,
                1 => clock_ms += (state >> 8) as i64 % 3_000,
                2 => minter = IdMinter::resume(NODE, last_record),
                _ => {}
            }
            let n = (state >> 20) as u32 % 3_000;
            let base = minter.reserve(clock_ms, n);
            assert_all_new(&mut seen, (0..n).map(|k| minted_id(base, k)).collect());
            last_record = last(base, n);
        }
    }

    #[test]
    fn node_id_file_text_round_trips() {
        let node = [0x00, 0x1f, 0xa0, 0xff, 0x42];
        let text = format_node_id_file(node);
        assert_eq!(text, "001fa0ff42\n");
        assert_eq!(parse_node_id_file(text.as_bytes()), Some(node));
    }

    #[test]
    fn a_node_id_file_of_a_later_format_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NODE_ID_FILE);
        std::fs::write(&path, "version 2\nnode 001fa0ff42\n").unwrap();
        let err = load_or_create_node_id(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("version 2") && message.contains("version 1"),
            "{message}"
        );
        // Refused, not replaced by a fresh draw.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "version 2\nnode 001fa0ff42\n"
        );
    }

    #[test]
    fn a_version_1_node_id_file_is_the_bare_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NODE_ID_FILE), "001fa0ff42\n").unwrap();
        assert_eq!(
            load_or_create_node_id(dir.path()).unwrap(),
            [0x00, 0x1f, 0xa0, 0xff, 0x42]
        );
        for text in [
            &b"version 1\n"[..],
            b"version \n",
            b"version x\n",
            b"garbage",
        ] {
            assert_eq!(file_version(text), None, "{text:?}");
        }
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
