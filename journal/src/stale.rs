//! Erasing the commits recovery found in flight together with a torn one
//! (never acknowledged; FORMAT.md, "Overlapping commits") before the
//! writer resumes at the torn commit's offset.
//!
//! Left in place, such a commit could be read as data later: the writer
//! reuses the torn commit's sequence numbers from its offset, so a new
//! commit the same size as the torn one (a client retrying the same
//! request) would end exactly where the stale one starts, with the very
//! sequence it starts with, and a later recovery would chain into records
//! that were never acknowledged and are stored again. Zeroing each stale
//! commit's first block removes its commit-start record (no other record
//! can start a commit), and the zeros are made durable before any new
//! commit is written, so a crash in between only repeats this.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::error::{JournalError, Result};
use crate::format::BLOCK_BYTES;

/// Zeroes the first block of each listed commit (segment, offset) and
/// fdatasyncs every file touched.
pub(crate) fn erase_commit_starts(commits: &[(PathBuf, u64)]) -> Result<()> {
    let zeros = vec![0u8; BLOCK_BYTES];
    let mut touched: Vec<&PathBuf> = Vec::new();
    for (path, offset) in commits {
        debug_assert_eq!(offset % BLOCK_BYTES as u64, 0, "commits start on blocks");
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| JournalError::io("open to erase a stale commit", path, e))?;
        file.write_all_at(&zeros, *offset)
            .map_err(|e| JournalError::io("erase a stale commit", path, e))?;
        if !touched.contains(&path) {
            touched.push(path);
        }
    }
    for path in touched {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.sync_data())
            .map_err(|e| JournalError::io("fdatasync after erasing stale commits", path, e))?;
    }
    Ok(())
}
