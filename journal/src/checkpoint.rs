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
const CHECKPOINT_VERSION: u32 = 1;
const CHECKPOINT_BYTES: usize = 36;

/// Position of the last record the store holds durably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// Sequence of the last stored record (0: nothing stored yet).
    pub seq: u64,
    /// Lap of the segment holding that record.
    pub lap: u64,
    /// Offset just past that record in its segment.
    pub end_offset: u64,
}

impl Checkpoint {
    fn encode(&self) -> [u8; CHECKPOINT_BYTES] {
        let mut b = [0u8; CHECKPOINT_BYTES];
        b[0..4].copy_from_slice(&CHECKPOINT_MAGIC);
        b[4..8].copy_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.lap.to_le_bytes());
        b[24..32].copy_from_slice(&self.end_offset.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Checkpoint> {
        if b.len() != CHECKPOINT_BYTES || b[0..4] != CHECKPOINT_MAGIC {
            return None;
        }
        let word = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(a)
        };
        let crc = u32::from_le_bytes([b[32], b[33], b[34], b[35]]);
        let version = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        if crc32c::crc32c(&b[0..32]) != crc || version != CHECKPOINT_VERSION {
            return None;
        }
        Some(Checkpoint {
            seq: word(8),
            lap: word(16),
            end_offset: word(24),
        })
    }
}

/// Reads the checkpoint of `dir`. Absent → `None`. Unreadable or damaged →
/// `None` with a warning: replaying from the start of what is on disk is
/// safe because every store write is idempotent by `_id`.
pub fn read_checkpoint(dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(CHECKPOINT_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
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
        };
        write_checkpoint(dir.path(), &cp).unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), Some(cp));
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
        };
        let new = Checkpoint {
            seq: 20,
            lap: 2,
            end_offset: 4096 * 5,
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
