//! Recovery: scan every segment of a journal, find the durable log and its
//! tail, tell a torn final commit (truncate, count) from damaged acked data
//! (refuse to open, name file and offset).

use std::path::{Path, PathBuf};

use crate::checkpoint::{read_checkpoint, Checkpoint, RecordIds};
use crate::commit::{is_commit_start, parse_commit, CommitError, ParsedCommit};
use crate::error::{JournalError, Result};
use crate::format::{
    peek_record_header, verify_record, BLOCK_BYTES, FLAG_MAY_OVERLAP, RECORD_HEADER_BYTES,
    RECORD_MAGIC,
};
use crate::segment::{list_segments, ScanMeter, SegmentWindow};

/// Read-ahead of a window that streams through a segment's commits: large
/// enough that small commits cost few reads, small enough to keep the
/// memory of opening a journal flat however many segments it has.
const SCAN_WINDOW_BYTES: usize = 1 << 20;

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
    /// Commits found past the torn one that were in flight together with
    /// it, so never acknowledged (FORMAT.md, "Overlapping commits"): the
    /// segment and offset of each one's first block. Opening the journal
    /// erases those blocks before it writes, so that no later recovery
    /// can chain into them.
    pub unacked_overlapping: Vec<(PathBuf, u64)>,
    /// Bytes the scan read from segment files.
    pub read_bytes: u64,
    /// The largest buffer the scan held at once, in bytes.
    pub peak_window_bytes: usize,
}

impl Recovered {
    /// Sequence of the last durable record (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }
}

/// Scans `dir`, reading only, in bounded memory: each segment is streamed
/// through one window (at most its largest commit is held), and segments
/// after the end of the log are read only as far as needed to tell whether
/// the writer ever reached them in their lap.
pub fn recover(dir: &Path) -> Result<Recovered> {
    let files = list_segments(dir)?;
    let checkpoint = read_checkpoint(dir)?;
    let meter = ScanMeter::default();
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
    let mut unacked_overlapping = Vec::new();
    let mut i = 0usize;
    'segments: while i < segments.len() {
        let lap = segments[i].lap;
        let mut window = scan_window(&segments[i], &meter)?;
        let mut pos = BLOCK_BYTES as u64;
        loop {
            match parse_commit_at(&mut window, pos, lap, expected)? {
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
                Err(reason) => {
                    // The writer moves to the next segment when a group does
                    // not fit: the log then goes on at its first block.
                    if let Some(want) = expected {
                        if let Some(next) = segments.get(i + 1) {
                            let mut probe = probe_window(next, &meter)?;
                            let block = BLOCK_BYTES as u64;
                            if parse_commit_at(&mut probe, block, next.lap, Some(want))?.is_ok() {
                                i += 1;
                                continue 'segments;
                            }
                        }
                    }
                    let min_seq = expected.unwrap_or(1);
                    // The sequence the commit at `pos` would have started
                    // with: after the last valid one, else after the
                    // checkpoint (older segments may be recycled).
                    let lost_seq = expected.unwrap_or(checkpoint.map_or(1, |c| c.seq + 1));
                    let later = later_commits(
                        &segments,
                        &mut window,
                        (i, pos),
                        (min_seq, lost_seq),
                        &meter,
                    )?;
                    if let Some(Later::Evidence(later_path, later_offset)) = later.last() {
                        return Err(JournalError::Corrupt {
                            path: segments[i].path.clone(),
                            offset: pos,
                            reason,
                            later_path: later_path.clone(),
                            later_offset: *later_offset,
                        });
                    }
                    for l in later {
                        if let Later::Overlapping(path, offset) = l {
                            unacked_overlapping.push((path, offset));
                        }
                    }
                    if !unacked_overlapping.is_empty() {
                        // The commit at `pos` was in flight with them: it
                        // is torn or was never written.
                        torn_commits += 1;
                        torn_at = Some((segments[i].path.clone(), pos));
                        tracing::warn!(
                            path = %segments[i].path.display(),
                            offset = pos,
                            %reason,
                            overlapping = unacked_overlapping.len(),
                            "torn commit truncated with the later commits in flight with it (none was acknowledged)"
                        );
                    } else if looks_like_current_commit(
                        window.bytes_from(pos, RECORD_HEADER_BYTES)?,
                        lap,
                    ) {
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
        unacked_overlapping,
        read_bytes: meter.read_bytes(),
        peak_window_bytes: meter.peak_window_bytes(),
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

/// A window that streams through a segment (the written part of the log).
fn scan_window<'m>(seg: &SegmentState, meter: &'m ScanMeter) -> Result<SegmentWindow<'m>> {
    SegmentWindow::open(&seg.path, seg.size, SCAN_WINDOW_BYTES, meter)
}

/// A window that reads a block at a time (a first commit, a first record).
fn probe_window<'m>(seg: &SegmentState, meter: &'m ScanMeter) -> Result<SegmentWindow<'m>> {
    SegmentWindow::open(&seg.path, seg.size, BLOCK_BYTES, meter)
}

/// Parses the commit at `pos`, reading more of the segment until it fits
/// or the segment ends. `Err` inside: why no valid commit starts there.
fn parse_commit_at(
    window: &mut SegmentWindow<'_>,
    pos: u64,
    lap: u64,
    expected: Option<u64>,
) -> Result<std::result::Result<ParsedCommit, String>> {
    let mut want = BLOCK_BYTES;
    loop {
        let size = window.size();
        let bytes = window.bytes_from(pos, want)?;
        let at_end = pos + bytes.len() as u64 == size;
        match parse_commit(bytes, pos, lap, expected, at_end) {
            Ok(c) => return Ok(Ok(c)),
            Err(CommitError::Invalid(reason)) => return Ok(Err(reason)),
            Err(CommitError::NeedMore) => {
                debug_assert!(!at_end, "the segment's end is never need-more");
                want = bytes.len().max(BLOCK_BYTES) * 2;
            }
        }
    }
}

/// A current-lap record header at `bytes[0]` marks a commit that was being
/// written when the process died (as opposed to zeros or an old lap).
fn looks_like_current_commit(bytes: &[u8], lap: u64) -> bool {
    bytes.len() >= 4
        && bytes[0..4] == RECORD_MAGIC.to_le_bytes()
        && peek_record_header(bytes).is_ok_and(|h| h.lap == lap)
}

/// A commit start found past the end of the log.
enum Later {
    /// One that was in flight with the commit at the end of the log (see
    /// [`later_commits`]): never acknowledged.
    Overlapping(PathBuf, u64),
    /// One that proves acked data before it damaged.
    Evidence(PathBuf, u64),
}

/// Every valid commit start of sequence ≥ `min_seq` past the invalid
/// commit at `(seg, pos)`, up to and including the first that is evidence
/// of damage. With commits in flight together, the commit at `pos`
/// (sequence `lost_seq` on) may be torn while later ones landed; a later
/// one cannot have been acknowledged, and is no evidence, when it records
/// that it was in flight with `pos`'s commit: a whole commit whose marker's
/// overlap reaches back to `lost_seq` (or earlier), or a torn one (its
/// marker lost) whose first record carries `FLAG_MAY_OVERLAP`.
fn later_commits<'m>(
    segments: &[SegmentState],
    window: &mut SegmentWindow<'m>,
    (seg, pos): (usize, u64),
    (min_seq, lost_seq): (u64, u64),
    meter: &'m ScanMeter,
) -> Result<Vec<Later>> {
    let mut found = Vec::new();
    let mut other: Option<(usize, SegmentWindow<'m>)> = None;
    let (mut from_seg, mut from) = (seg, pos);
    loop {
        let hit = if from_seg == seg {
            find_later_commit(segments, window, from_seg, from, min_seq, meter)?
        } else {
            let Some((_, w)) = other.as_mut() else {
                unreachable!("a window is open on every later segment searched");
            };
            find_later_commit(segments, w, from_seg, from, min_seq, meter)?
        };
        let Some((path, at)) = hit else {
            return Ok(found);
        };
        let Some(j) = segments.iter().position(|s| s.path == path) else {
            unreachable!("found in one of the segments");
        };
        let w = if j == seg {
            &mut *window
        } else {
            if other.as_ref().is_none_or(|(k, _)| *k != j) {
                other = Some((j, scan_window(&segments[j], meter)?));
            }
            let Some((_, w)) = other.as_mut() else {
                unreachable!("opened above");
            };
            w
        };
        let lap = segments[j].lap;
        let overlapping = match parse_commit_at(w, at, lap, None)? {
            Ok(c) => c.first_seq() > lost_seq && c.in_flight_from_seq() <= lost_seq,
            Err(_) => peek_record_header(w.bytes_from(at, RECORD_HEADER_BYTES)?)
                .is_ok_and(|h| h.flags & FLAG_MAY_OVERLAP != 0),
        };
        if !overlapping {
            found.push(Later::Evidence(path, at));
            return Ok(found);
        }
        found.push(Later::Overlapping(path, at));
        (from_seg, from) = (j, at);
    }
}

/// Looks past an invalid commit at (`seg`, `pos`) for a valid commit start
/// of the current lap with sequence ≥ `min_seq`. Only the final commit may
/// be torn, so finding one means acked data before it is damaged. The torn
/// commit itself may sit at `pos` or at the first block of the next segment;
/// those two places are not evidence. `window` reads segment `seg`.
///
/// The rest of segment `seg` and all of the next one are scanned block by
/// block. A segment after those is scanned only when its first data block
/// may hold a commit of its lap: the writer starts every segment it reaches
/// there, so a segment whose first block is zeros (never written) or a
/// verified record of an older lap (recycled, not reached since) holds no
/// commit of its lap, and is read no further than that block. Damage that
/// wiped exactly that first block goes unseen only if every segment from
/// the next one on was damaged too (the writer filled them in order), so
/// a journal of any number of prepared segments opens reading its written
/// part, two segments more, and one block of each of the others.
fn find_later_commit(
    segments: &[SegmentState],
    window: &mut SegmentWindow<'_>,
    seg: usize,
    pos: u64,
    min_seq: u64,
    meter: &ScanMeter,
) -> Result<Option<(PathBuf, u64)>> {
    let block = BLOCK_BYTES as u64;
    let this = &segments[seg];
    if let Some(at) = scan_for_commit_start(window, pos + block, this.lap, min_seq, false)? {
        return Ok(Some((this.path.clone(), at)));
    }
    for (j, s) in segments.iter().enumerate().skip(seg + 1) {
        let torn_candidate = j == seg + 1;
        if !torn_candidate && !may_hold_its_lap(&mut probe_window(s, meter)?, s.lap)? {
            continue;
        }
        let mut later = scan_window(s, meter)?;
        if let Some(at) = scan_for_commit_start(&mut later, block, s.lap, min_seq, torn_candidate)?
        {
            return Ok(Some((s.path.clone(), at)));
        }
    }
    Ok(None)
}

/// The first block boundary at or after `from` where a valid commit start
/// of `lap` with sequence ≥ `min_seq` begins (> `min_seq` at the first
/// data block when that block is a torn-commit candidate).
fn scan_for_commit_start(
    window: &mut SegmentWindow<'_>,
    from: u64,
    lap: u64,
    min_seq: u64,
    first_block_torn_candidate: bool,
) -> Result<Option<u64>> {
    let block = BLOCK_BYTES as u64;
    let mut at = from;
    while at + block <= window.size() {
        let torn_candidate = first_block_torn_candidate && at == block;
        let min = if torn_candidate { min_seq + 1 } else { min_seq };
        if commit_start_at(window, at, lap, min)? {
            return Ok(Some(at));
        }
        at += block;
    }
    Ok(None)
}

/// Whether a valid commit start (see [`is_commit_start`]) begins at `at`.
/// The whole record is read only when its header claims this lap, so
/// garbage lengths elsewhere never make a read bigger than the window.
fn commit_start_at(
    window: &mut SegmentWindow<'_>,
    at: u64,
    lap: u64,
    min_seq: u64,
) -> Result<bool> {
    let record_bytes = match peek_record_header(window.bytes_from(at, RECORD_HEADER_BYTES)?) {
        Ok(h) if h.lap == lap => h.record_bytes(),
        _ => return Ok(false),
    };
    Ok(is_commit_start(
        window.bytes_from(at, record_bytes)?,
        lap,
        min_seq,
    ))
}

/// False only when the first data block of a segment of `lap` shows that
/// the writer never reached it in this lap: zeros (a new segment) or a
/// record of an older lap that verifies (a recycled one, its old content
/// intact). Anything else, damage included, may be a commit of this lap.
fn may_hold_its_lap(probe: &mut SegmentWindow<'_>, lap: u64) -> Result<bool> {
    let block = BLOCK_BYTES as u64;
    let head = probe.bytes_from(block, RECORD_HEADER_BYTES)?;
    if head.len() >= RECORD_HEADER_BYTES && head[..RECORD_HEADER_BYTES].iter().all(|&b| b == 0) {
        return Ok(false);
    }
    let header = match peek_record_header(head) {
        Ok(h) if h.lap < lap => h,
        _ => return Ok(true),
    };
    let record = probe.bytes_from(block, header.record_bytes())?;
    Ok(verify_record(record, &header).is_err())
}
