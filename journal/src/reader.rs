//! Reading committed records, from any thread (flushers). Reads stop at the
//! durable mark, so a reader never sees a commit that is still in flight,
//! and every block it reads is one the writer will never rewrite.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use crate::checkpoint::{Checkpoint, RecordIds};
use crate::commit::{parse_commit, CommitError};
use crate::error::{JournalError, Result};
use crate::format::{align_up, RECORD_ALIGN_BYTES, RECORD_HEADER_BYTES};
use crate::segment::read_range;
use crate::shared::{SegmentInfo, Shared};

/// First read size when parsing a commit; doubled until the commit fits.
const READ_WINDOW_BYTES: usize = 256 << 10;

/// One committed record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence.
    pub seq: u64,
    /// Checkpoint to persist once this record (and all before it) is stored.
    pub checkpoint: Checkpoint,
    /// Receive time, UTC ms.
    pub recv_ms: i64,
    /// Clock offset applied, ms.
    pub clock_offset_ms: i64,
    /// First minted id.
    pub id_base: [u8; 12],
    /// Events in the payload.
    pub event_count: u32,
    /// App name.
    pub app: String,
    /// The payload as appended.
    pub payload: Vec<u8>,
}

/// Iterates committed records in sequence order across segments.
pub struct JournalReader {
    shared: Arc<Shared>,
    next_seq: u64,
    /// Segment lap and offset of the next commit to parse, once located.
    cursor: Option<(u64, u64)>,
    file: Option<(u64, PathBuf, File)>,
    /// Bytes read ahead: (lap, start offset, bytes). Holds only durable
    /// data (read below the durable mark), so it never goes stale.
    window: Option<(u64, u64, Vec<u8>)>,
}

impl JournalReader {
    pub(crate) fn new(shared: Arc<Shared>, after_seq: u64) -> JournalReader {
        JournalReader {
            shared,
            next_seq: after_seq + 1,
            cursor: None,
            file: None,
            window: None,
        }
    }

    /// Goes back to read from the record after `after_seq` again (a
    /// flusher whose in-flight batches were lost rewinds to its durable
    /// checkpoint; those records are still on disk, since segments are
    /// recycled only behind the checkpoint).
    pub fn rewind(&mut self, after_seq: u64) {
        self.next_seq = after_seq + 1;
        self.cursor = None;
        self.file = None;
        self.window = None;
    }

    /// Sequence of the next record this reader returns.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Up to `max_records` further durable records; empty when caught up.
    pub fn read_batch(&mut self, max_records: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        while out.len() < max_records {
            let step = self.next_step()?;
            let (lap, offset, limit, path) = match step {
                Step::CaughtUp => break,
                Step::Recycled => continue,
                Step::NextSegment(next_lap) => {
                    self.cursor = Some((next_lap, crate::format::BLOCK_BYTES as u64));
                    continue;
                }
                Step::Read {
                    lap,
                    offset,
                    limit,
                    path,
                } => (lap, offset, limit, path),
            };
            let (records, end) = self.read_commit(lap, path, offset, limit)?;
            self.cursor = Some((lap, end));
            for r in records {
                if r.seq >= self.next_seq && out.len() < max_records {
                    self.next_seq = r.seq + 1;
                    out.push(r);
                } else if r.seq >= self.next_seq {
                    // Batch full mid-commit: re-read this commit next time.
                    self.cursor = Some((lap, offset));
                    break;
                }
            }
        }
        Ok(out)
    }

    /// What to do next, decided under the shared lock. The lock is also
    /// taken by the committer after every commit, on a collector core,
    /// while this runs on the nice-10 flusher: it copies a few integers
    /// (and a path only when a new segment file must be opened), never the
    /// segment list, so a flusher preempted while holding it holds it for
    /// no allocation's time.
    fn next_step(&mut self) -> Result<Step> {
        let st = self.shared.lock();
        let durable = st.durable;
        if self.next_seq > durable.seq {
            return Ok(Step::CaughtUp);
        }
        let (lap, offset) = match self.cursor {
            Some(c) => c,
            None => locate(&st.segments, self.next_seq)
                .ok_or_else(|| self.lost("no segment holds it".into()))?,
        };
        let Some(seg) = st.segments.iter().find(|s| s.lap == lap) else {
            // Recycled behind us (the checkpoint passed it): everything
            // still to read is in a later segment.
            if self.cursor.take().is_some() {
                return Ok(Step::Recycled);
            }
            return Err(self.lost(format!("segment of lap {lap} is gone")));
        };
        let limit = if lap == durable.lap {
            durable.end_offset
        } else {
            seg.used_end
        };
        if offset >= limit {
            return match st.segments.iter().find(|s| s.lap > lap) {
                Some(next) => Ok(Step::NextSegment(next.lap)),
                None => Err(self.lost(format!("no segment after lap {lap}"))),
            };
        }
        let open = self.file.as_ref().is_some_and(|(l, _, _)| *l == lap);
        Ok(Step::Read {
            lap,
            offset,
            limit,
            path: (!open).then(|| seg.path.clone()),
        })
    }

    fn lost(&self, what: String) -> JournalError {
        JournalError::Failed {
            cause: format!("reader at seq {}: {what}", self.next_seq),
        }
    }

    /// Parses the commit at `offset` of segment `lap` (below `limit`);
    /// `path` is given when that segment's file is not the one open.
    fn read_commit(
        &mut self,
        lap: u64,
        path: Option<PathBuf>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Record>, u64)> {
        if let Some(path) = path {
            let f = File::open(&path).map_err(|e| JournalError::io("open for read", &path, e))?;
            self.file = Some((lap, path, f));
        }
        debug_assert!(self.file.as_ref().is_some_and(|(l, _, _)| *l == lap));
        let Some((_, path, file)) = self.file.as_ref() else {
            unreachable!("file opened above");
        };
        let mut window = READ_WINDOW_BYTES as u64;
        loop {
            // Parse from the read-ahead window when it covers `offset`;
            // otherwise (or when the commit runs past it) read anew.
            let cached = match &self.window {
                Some((window_lap, start, bytes))
                    if *window_lap == lap
                        && *start <= offset
                        && offset < start + bytes.len() as u64 =>
                {
                    let from = (offset - start) as usize;
                    let at_end = start + bytes.len() as u64 == limit;
                    match parse_commit(&bytes[from..], offset, lap, None, at_end) {
                        Err(CommitError::NeedMore) => None,
                        other => Some(other),
                    }
                }
                _ => None,
            };
            let parsed = match cached {
                Some(p) => p,
                None => {
                    let end = (offset + window).min(limit);
                    let bytes = read_range(file, path, offset, end)?;
                    self.window = Some((lap, offset, bytes));
                    let Some((_, _, bytes)) = self.window.as_ref() else {
                        unreachable!("window set above");
                    };
                    let result = parse_commit(bytes, offset, lap, None, end == limit);
                    if matches!(result, Err(CommitError::NeedMore)) {
                        window *= 2;
                        continue;
                    }
                    result
                }
            };
            let Some((_, start, bytes)) = self.window.as_ref() else {
                unreachable!("parsed from the window");
            };
            let base = (offset - start) as usize;
            let bytes = &bytes[base..];
            match parsed {
                Ok(commit) => {
                    let mut records = Vec::with_capacity(commit.records.len());
                    for span in &commit.records {
                        let h = span.header;
                        let at = (span.offset - offset) as usize + RECORD_HEADER_BYTES;
                        let app_end = at + h.app_len as usize;
                        let payload_end = app_end + h.payload_len as usize;
                        let record_end =
                            span.offset + align_up(h.record_bytes(), RECORD_ALIGN_BYTES) as u64;
                        records.push(Record {
                            seq: h.seq,
                            checkpoint: Checkpoint {
                                seq: h.seq,
                                lap,
                                end_offset: record_end,
                                ids: RecordIds {
                                    id_base: h.id_base,
                                    event_count: h.count,
                                },
                            },
                            recv_ms: h.recv_ms,
                            clock_offset_ms: h.clock_offset_ms,
                            id_base: h.id_base,
                            event_count: h.count,
                            app: String::from_utf8_lossy(&bytes[at..app_end]).into_owned(),
                            payload: bytes[app_end..payload_end].to_vec(),
                        });
                    }
                    return Ok((records, commit.end_offset));
                }
                Err(CommitError::NeedMore) => unreachable!("handled above"),
                Err(CommitError::Invalid(reason)) => {
                    return Err(JournalError::Failed {
                        cause: format!(
                            "durable commit unreadable in {} at {offset}: {reason}",
                            path.display()
                        ),
                    })
                }
            }
        }
    }
}

/// The reader's next move, from the shared state.
enum Step {
    /// Every durable record has been read.
    CaughtUp,
    /// The cursor's segment was recycled: locate again.
    Recycled,
    /// The cursor reached the end of its segment: go on at this lap.
    NextSegment(u64),
    /// Parse the commit at `offset` of `lap`, below `limit`; open `path`
    /// first when given.
    Read {
        lap: u64,
        offset: u64,
        limit: u64,
        path: Option<PathBuf>,
    },
}

/// The segment holding `next_seq` (or the first after it), at its first
/// commit.
fn locate(segments: &[SegmentInfo], next_seq: u64) -> Option<(u64, u64)> {
    let block = crate::format::BLOCK_BYTES as u64;
    segments
        .iter()
        .find(|s| {
            s.seqs
                .is_some_and(|(first, last)| first <= next_seq && next_seq <= last)
        })
        .or_else(|| {
            segments
                .iter()
                .find(|s| s.seqs.is_none_or(|(first, _)| first > next_seq))
        })
        .map(|seg| (seg.lap, block))
}
