//! The checkpoint: how far the store has durably stored a journal.
//!
//! Written atomically: temp file, fsync, rename over the old one, fsync the
//! directory. At every instant the file named `checkpoint` is a whole old
//! or a whole new checkpoint, never neither.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{JournalError, Result};

/// File name of the checkpoint inside a journal directory.
pub const CHECKPOINT_FILE: &str = "checkpoint";
const CHECKPOINT_TMP: &str = "checkpoint.tmp";
const CHECKPOINT_MAGIC: [u8; 4] = *b"HCKP";
/// Version 2 added the last stored record's [`RecordIds`].
const CHECKPOINT_VERSION: u32 = 2;
const CHECKPOINT_V1: u32 = 1;
const CHECKPOINT_V1_BYTES: usize = 36;
const CHECKPOINT_BYTES: usize = 52;
/// Bytes before the id fields (magic, version, seq, lap, end offset).
const POSITION_END: usize = 32;
const ID_BASE_END: usize = POSITION_END + 12;
const EVENT_COUNT_END: usize = ID_BASE_END + 4;

/// The id fields of one record's header ([`crate::RecordMeta::id_base`] and
/// `event_count`), opaque to the journal. A checkpoint keeps those of the
/// last stored record because once its segment is recycled the checkpoint
/// is the only place left that says which ids the journal's writer already
/// minted; the collector continues past them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordIds {
    /// The record's id base.
    pub id_base: [u8; 12],
    /// Events in the record (an upper bound on the ids it minted).
    pub event_count: u32,
}

/// Position of the last record the store holds durably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// Sequence of the last stored record (0: nothing stored yet).
    pub seq: u64,
    /// Lap of the segment holding that record.
    pub lap: u64,
    /// Offset just past that record in its segment.
    pub end_offset: u64,
    /// That record's id fields (all zero in a version 1 checkpoint).
    pub ids: RecordIds,
}

impl Checkpoint {
    fn encode(&self) -> [u8; CHECKPOINT_BYTES] {
        let mut b = [0u8; CHECKPOINT_BYTES];
        b[0..4].copy_from_slice(&CHECKPOINT_MAGIC);
        b[4..8].copy_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.lap.to_le_bytes());
        b[24..32].copy_from_slice(&self.end_offset.to_le_bytes());
        b[POSITION_END..ID_BASE_END].copy_from_slice(&self.ids.id_base);
        b[ID_BASE_END..EVENT_COUNT_END].copy_from_slice(&self.ids.event_count.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..EVENT_COUNT_END]);
        b[EVENT_COUNT_END..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads a version 2 checkpoint, or a version 1 one (written before
    /// checkpoints kept record ids; its ids read as zero).
    fn decode(b: &[u8]) -> Option<Checkpoint> {
        if b.len() < 8 || b[0..4] != CHECKPOINT_MAGIC {
            return None;
        }
        let version = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let crc_at = match (version, b.len()) {
            (CHECKPOINT_VERSION, CHECKPOINT_BYTES) => EVENT_COUNT_END,
            (CHECKPOINT_V1, CHECKPOINT_V1_BYTES) => POSITION_END,
            _ => return None,
        };
        let crc = u32::from_le_bytes([b[crc_at], b[crc_at + 1], b[crc_at + 2], b[crc_at + 3]]);
        if crc32c::crc32c(&b[0..crc_at]) != crc {
            return None;
        }
        let word = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(a)
        };
        let mut ids = RecordIds::default();
        if version == CHECKPOINT_VERSION {
            ids.id_base.copy_from_slice(&b[POSITION_END..ID_BASE_END]);
            ids.event_count = u32::from_le_bytes([
                b[ID_BASE_END],
                b[ID_BASE_END + 1],
                b[ID_BASE_END + 2],
                b[ID_BASE_END + 3],
            ]);
        }
        Some(Checkpoint {
            seq: word(8),
            lap: word(16),
            end_offset: word(24),
            ids,
        })
    }
}

/// The version of a checkpoint that is whole (its CRC holds) but newer than
/// this build's: such a file is not damage, and must not be read as if it
/// were (replaying the whole journal would forget the id position it keeps).
fn newer_version(b: &[u8]) -> Option<u32> {
    if b.len() < 8 || b[0..4] != CHECKPOINT_MAGIC {
        return None;
    }
    let version = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    if version <= CHECKPOINT_VERSION || b.len() < 12 {
        return None;
    }
    // A newer format keeps magic, version and a CRC of all before it last.
    let (body, crc) = b.split_at(b.len() - 4);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    (crc32c::crc32c(body) == crc).then_some(version)
}

/// Reads the checkpoint of `dir`. Absent → `None`. Unreadable or damaged →
/// `None` with a warning: replaying from the start of what is on disk is
/// safe because every store write is idempotent by `_id`. Whole but of a
/// newer version → [`JournalError::NewerCheckpoint`] (never guessed at).
pub fn read_checkpoint(dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(CHECKPOINT_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            if let Some(found) = newer_version(&bytes) {
                return Err(JournalError::NewerCheckpoint {
                    path,
                    found,
                    supported: CHECKPOINT_VERSION,
                });
            }
            let cp = Checkpoint::decode(&bytes);
            if cp.is_none() {
                tracing::warn!(path = %path.display(), "damaged checkpoint ignored; replaying the whole journal");
            }
            Ok(cp)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(JournalError::io("read checkpoint", path, e)),
    }
}

/// The steps of a checkpoint write, in order (for crash tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckpointStep {
    /// The temp file is created and written.
    WriteTemp,
    /// The temp file is fsynced.
    SyncTemp,
    /// The temp file is renamed over `checkpoint`.
    Rename,
    /// The directory is fsynced.
    SyncDir,
}

/// Durably replaces the checkpoint of `dir` with `cp`.
pub fn write_checkpoint(dir: &Path, cp: &Checkpoint) -> Result<()> {
    write_checkpoint_until(dir, cp, None)
}

/// Like [`write_checkpoint`] but stops after `stop_after` as a crash there
/// would. Exists so tests can show every crash point leaves a whole
/// checkpoint.
#[doc(hidden)]
pub fn write_checkpoint_until(
    dir: &Path,
    cp: &Checkpoint,
    stop_after: Option<CheckpointStep>,
) -> Result<()> {
    let stop = |step| stop_after == Some(step);
    let tmp = dir.join(CHECKPOINT_TMP);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| JournalError::io("create checkpoint temp", &tmp, e))?;
    file.write_all(&cp.encode())
        .map_err(|e| JournalError::io("write checkpoint temp", &tmp, e))?;
    if stop(CheckpointStep::WriteTemp) {
        return Ok(());
    }
    file.sync_all()
        .map_err(|e| JournalError::io("fsync checkpoint temp", &tmp, e))?;
    if stop(CheckpointStep::SyncTemp) {
        return Ok(());
    }
    let path = dir.join(CHECKPOINT_FILE);
    fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename checkpoint", &path, e))?;
    if stop(CheckpointStep::Rename) {
        return Ok(());
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("fsync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint {
            seq: 7,
            lap: 2,
            end_offset: 8192,
            ids: RecordIds {
                id_base: [9; 12],
                event_count: 100,
            },
        };
        write_checkpoint(dir.path(), &cp).unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), Some(cp));
    }

    #[test]
    fn a_version_1_checkpoint_still_reads_with_zero_ids() {
        // The 36-byte layout written before checkpoints kept record ids.
        let mut b = Vec::new();
        b.extend_from_slice(&CHECKPOINT_MAGIC);
        b.extend_from_slice(&CHECKPOINT_V1.to_le_bytes());
        b.extend_from_slice(&7u64.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        b.extend_from_slice(&8192u64.to_le_bytes());
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CHECKPOINT_FILE), &b).unwrap();
        let expected = Checkpoint {
            seq: 7,
            lap: 2,
            end_offset: 8192,
            ids: RecordIds::default(),
        };
        assert_eq!(read_checkpoint(dir.path()).unwrap(), Some(expected));
    }

    #[test]
    fn a_whole_checkpoint_of_a_newer_version_refuses_to_open_naming_both_versions() {
        let mut b = Checkpoint::default().encode().to_vec();
        b[4..8].copy_from_slice(&(CHECKPOINT_VERSION + 1).to_le_bytes());
        let crc = crc32c::crc32c(&b[..b.len() - 4]);
        let at = b.len() - 4;
        b[at..].copy_from_slice(&crc.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CHECKPOINT_FILE), &b).unwrap();
        let error = read_checkpoint(dir.path()).expect_err("a newer checkpoint is refused");
        let message = error.to_string();
        assert!(
            message.contains(&(CHECKPOINT_VERSION + 1).to_string())
                && message.contains(&CHECKPOINT_VERSION.to_string()),
            "{message}"
        );
    }

    #[test]
    fn a_checkpoint_of_an_unknown_version_or_length_is_ignored() {
        let cp = Checkpoint::default().encode();
        let mut newer = cp;
        newer[4..8].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(Checkpoint::decode(&newer), None);
        assert_eq!(Checkpoint::decode(&cp[..CHECKPOINT_V1_BYTES]), None);
    }

    #[test]
    fn a_crash_between_any_two_steps_leaves_old_or_new_checkpoint() {
        let steps = [
            CheckpointStep::WriteTemp,
            CheckpointStep::SyncTemp,
            CheckpointStep::Rename,
            CheckpointStep::SyncDir,
        ];
        let old = Checkpoint {
            seq: 10,
            lap: 1,
            end_offset: 4096 * 3,
            ..Checkpoint::default()
        };
        let new = Checkpoint {
            seq: 20,
            lap: 2,
            end_offset: 4096 * 5,
            ..Checkpoint::default()
        };
        for step in steps {
            let dir = tempfile::tempdir().unwrap();
            write_checkpoint(dir.path(), &old).unwrap();
            write_checkpoint_until(dir.path(), &new, Some(step)).unwrap();
            let got = read_checkpoint(dir.path()).unwrap();
            let expect = if step >= CheckpointStep::Rename {
                new
            } else {
                old
            };
            assert_eq!(got, Some(expect), "crash after {step:?}");
        }
    }

    #[test]
    fn a_torn_temp_file_never_replaces_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let old = Checkpoint {
            seq: 3,
            lap: 1,
            end_offset: 4096 * 2,
            ..Checkpoint::default()
        };
        write_checkpoint(dir.path(), &old).unwrap();
        fs::write(dir.path().join(CHECKPOINT_TMP), [1, 2, 3]).unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), Some(old));
    }

    #[test]
    fn a_damaged_checkpoint_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), &Checkpoint::default()).unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        let mut b = fs::read(&path).unwrap();
        b[9] ^= 1;
        fs::write(&path, b).unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), None);
    }
}
