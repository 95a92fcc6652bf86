//! Repair: when recovery refuses a journal because acked data is damaged,
//! an operator can quarantine the damaged tail and open what precedes it.
//! Nothing is deleted: the damaged bytes and every later segment are moved
//! under `DIR/quarantine/` for inspection.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{JournalError, Result};
use crate::recovery::recover;
use crate::segment::{fsync_dir, list_segments, read_range};

/// Sub-directory that receives quarantined data.
pub const QUARANTINE_DIR: &str = "quarantine";

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    /// Recovery already succeeds; nothing was touched.
    Healthy,
    /// The damaged tail was moved aside.
    Quarantined {
        /// Segment holding the damage.
        path: PathBuf,
        /// Offset from which its bytes were quarantined and zeroed.
        offset: u64,
        /// Files written or moved under the quarantine directory.
        moved: Vec<PathBuf>,
    },
}

/// Quarantines the damaged tail of the journal in `dir`: the bytes of the
/// damaged segment from the bad commit on are copied to
/// `quarantine/<segment>.<offset>.tail` and zeroed in place, and every later
/// segment is moved into `quarantine/`. Records after the damage are lost to
/// the journal (they stay in the quarantine files).
pub fn quarantine_tail(dir: &Path) -> Result<RepairOutcome> {
    let (path, offset) = match recover(dir) {
        Ok(_) => return Ok(RepairOutcome::Healthy),
        Err(JournalError::Corrupt { path, offset, .. }) => (path, offset),
        Err(other) => return Err(other),
    };
    let qdir = dir.join(QUARANTINE_DIR);
    fs::create_dir_all(&qdir).map_err(|e| JournalError::io("create", &qdir, e))?;
    let segments = list_segments(dir)?;
    let Some(idx) = segments.iter().position(|s| s.path == path) else {
        return Err(JournalError::BadSegment {
            path,
            reason: "vanished during repair".into(),
        });
    };
    let seg = &segments[idx];
    let size = seg.header.segment_size_bytes;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| JournalError::io("open for repair", &path, e))?;
    let tail = read_range(&file, &path, offset, size)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let saved = qdir.join(format!("{name}.{offset}.tail"));
    let mut out = fs::File::create(&saved).map_err(|e| JournalError::io("create", &saved, e))?;
    out.write_all(&tail)
        .and_then(|_| out.sync_all())
        .map_err(|e| JournalError::io("write quarantine", &saved, e))?;
    let zeros = vec![0u8; tail.len()];
    file.write_all_at(&zeros, offset)
        .and_then(|_| file.sync_all())
        .map_err(|e| JournalError::io("zero damaged tail", &path, e))?;
    let mut moved = vec![saved];
    for later in &segments[idx + 1..] {
        let name = later
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let to = qdir.join(name);
        fs::rename(&later.path, &to)
            .map_err(|e| JournalError::io("quarantine segment", &later.path, e))?;
        moved.push(to);
    }
    fsync_dir(&qdir)?;
    fsync_dir(dir)?;
    tracing::warn!(path = %path.display(), offset, files = moved.len(), "journal tail quarantined");
    Ok(RepairOutcome::Quarantined {
        path,
        offset,
        moved,
    })
}
