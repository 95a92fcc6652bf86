//! Recovery: scan every segment of a journal, find the durable log and its
//! tail, tell a torn final commit (truncate, count) from damaged acked data
//! (refuse to open, name file and offset).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::checkpoint::{read_checkpoint, Checkpoint, RecordIds};
use crate::commit::{is_commit_start, parse_commit, CommitError};
use crate::error::{JournalError, Result};
use crate::format::{peek_record_header, BLOCK_BYTES, RECORD_MAGIC};
use crate::segment::{list_segments, read_range, SegmentFile};

/// What recovery learned about one segment.
#[derive(Debug, Clone)]
pub struct SegmentState {
    /// Its file.
    pub path: PathBuf,
    /// Its lap.
    pub lap: u64,
    /// Its size.
    pub size: u64,
    /// Current file length (short after a truncation).
    pub file_len: u64,
    /// First and last record sequence it holds, if any.
    pub seqs: Option<(u64, u64)>,
    /// Offset just past its last valid commit (block 1 if none).
    pub used_end: u64,
}

/// The outcome of scanning a journal directory.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// Every segment, by lap.
    pub segments: Vec<SegmentState>,
    /// Index in `segments` of the one the next commit goes to.
    pub active: usize,
    /// Sequence the next record gets.
    pub next_seq: u64,
    /// The durable checkpoint, if any.
    pub checkpoint: Option<Checkpoint>,
    /// Torn final commits found (0 or 1).
    pub torn_commits: u64,
    /// Where the torn commit was, for the log.
    pub torn_at: Option<(PathBuf, u64)>,
    /// The id fields of the last durable record found (None when no record
    /// follows the checkpoint).
    pub last_record_ids: Option<RecordIds>,
}

impl Recovered {
    /// Sequence of the last durable record (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }
}

/// Scans `dir`, reading only.
pub fn recover(dir: &Path) -> Result<Recovered> {
    let files = list_segments(dir)?;
    let checkpoint = read_checkpoint(dir)?;
    let mut data = Vec::with_capacity(files.len());
    for f in &files {
        data.push(load_segment(f)?);
    }
    let mut segments: Vec<SegmentState> = files
        .iter()
        .map(|f| SegmentState {
            path: f.path.clone(),
            lap: f.header.lap,
            size: f.header.segment_size_bytes,
            file_len: f.file_len,
            seqs: None,
            used_end: BLOCK_BYTES as u64,
        })
        .collect();
    let mut expected: Option<u64> = None;
    let mut active = 0usize;
    let mut torn_commits = 0;
    let mut torn_at = None;
    let mut last_record_ids = None;
    let mut i = 0usize;
    'segments: while i < segments.len() {
        let lap = segments[i].lap;
        let mut pos = BLOCK_BYTES as u64;
        loop {
            let bytes = &data[i][pos as usize..];
            match parse_commit(bytes, pos, lap, expected, true) {
                Ok(c) => {
                    if expected.is_none() {
                        check_no_gap(dir, checkpoint.as_ref(), c.first_seq())?;
                    }
                    let seg = &mut segments[i];
                    seg.seqs = Some(match seg.seqs {
                        Some((first, _)) => (first, c.last_seq()),
                        None => (c.first_seq(), c.last_seq()),
                    });
                    seg.used_end = c.end_offset;
                    // A parsed commit holds at least one event record.
                    if let Some(last) = c.records.last() {
                        last_record_ids = Some(RecordIds {
                            id_base: last.header.id_base,
                            event_count: last.header.count,
                        });
                    }
                    expected = Some(c.last_seq() + 1);
                    active = i;
                    pos = c.end_offset;
                }
                Err(err) => {
                    let reason = match err {
                        CommitError::Invalid(reason) => reason,
                        CommitError::NeedMore => "commit runs past the segment".to_string(),
                    };
                    // The writer moves to the next segment when a group does
                    // not fit: the log then goes on at its first block.
                    if let Some(want) = expected {
                        if i + 1 < segments.len() {
                            let next_lap = segments[i + 1].lap;
                            let block = BLOCK_BYTES as u64;
                            let next = &data[i + 1][BLOCK_BYTES..];
                            if parse_commit(next, block, next_lap, Some(want), true).is_ok() {
                                i += 1;
                                continue 'segments;
                            }
                        }
                    }
                    let min_seq = expected.unwrap_or(1);
                    if let Some((later_path, later_offset)) =
                        find_later_commit(&segments, &data, i, pos, min_seq)
                    {
                        return Err(JournalError::Corrupt {
                            path: segments[i].path.clone(),
                            offset: pos,
                            reason,
                            later_path,
                            later_offset,
                        });
                    }
                    if looks_like_current_commit(&data[i][pos as usize..], lap) {
                        torn_commits += 1;
                        torn_at = Some((segments[i].path.clone(), pos));
                        tracing::warn!(
                            path = %segments[i].path.display(),
                            offset = pos,
                            %reason,
                            "torn final commit truncated (it was never acknowledged)"
                        );
                    }
                    if expected.is_none() {
                        active = i;
                    }
                    break 'segments;
                }
            }
        }
    }
    let next_seq = match expected {
        Some(n) => n,
        None => checkpoint.map_or(1, |c| c.seq + 1),
    };
    Ok(Recovered {
        segments,
        active,
        next_seq,
        checkpoint,
        torn_commits,
        torn_at,
        last_record_ids,
    })
}

fn check_no_gap(dir: &Path, cp: Option<&Checkpoint>, first_seq: u64) -> Result<()> {
    if let Some(cp) = cp {
        if first_seq > cp.seq + 1 {
            return Err(JournalError::Gap {
                dir: dir.to_path_buf(),
                checkpoint_seq: cp.seq,
                first_seq,
            });
        }
    }
    Ok(())
}

fn load_segment(f: &SegmentFile) -> Result<Vec<u8>> {
    let file = File::open(&f.path).map_err(|e| JournalError::io("open", &f.path, e))?;
    read_range(&file, &f.path, 0, f.header.segment_size_bytes)
}

/// A current-lap record header at `bytes[0]` marks a commit that was being
/// written when the process died (as opposed to zeros or an old lap).
fn looks_like_current_commit(bytes: &[u8], lap: u64) -> bool {
    bytes.len() >= 4
        && bytes[0..4] == RECORD_MAGIC.to_le_bytes()
        && peek_record_header(bytes).is_ok_and(|h| h.lap == lap)
}

/// Looks past an invalid commit at (`seg`, `pos`) for a valid commit start
/// of the current lap with sequence ≥ `min_seq`. Only the final commit may
/// be torn, so finding one means acked data before it is damaged. The torn
/// commit itself may sit at `pos` or at the first block of the next segment;
/// those two places are not evidence.
fn find_later_commit(
    segments: &[SegmentState],
    data: &[Vec<u8>],
    seg: usize,
    pos: u64,
    min_seq: u64,
) -> Option<(PathBuf, u64)> {
    let block = BLOCK_BYTES as u64;
    for (j, s) in segments.iter().enumerate().skip(seg) {
        let mut at = if j == seg { pos + block } else { block };
        while at + block <= s.size {
            let bytes = &data[j][at as usize..];
            let torn_candidate = j == seg + 1 && at == block;
            let min = if torn_candidate { min_seq + 1 } else { min_seq };
            if is_commit_start(bytes, s.lap, min) {
                return Some((s.path.clone(), at));
            }
            at += block;
        }
    }
    None
}
