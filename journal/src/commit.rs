//! Parsing one commit (records + marker) out of segment bytes. Shared by
//! recovery and the reader so both agree on what a valid commit is.

use crate::error::FormatError;
use crate::format::{
    align_up, marker_overlap_records, peek_record_header, verify_record, RecordHeader, RecordKind,
    BLOCK_BYTES, FLAG_COMMIT_START, RECORD_ALIGN_BYTES, RECORD_HEADER_BYTES,
};

/// Where a record sits inside the commit buffer that was parsed.
#[derive(Debug, Clone, Copy)]
pub struct RecordSpan {
    /// Decoded, verified header.
    pub header: RecordHeader,
    /// Offset of the header in the segment.
    pub offset: u64,
}

/// A valid commit.
#[derive(Debug, Clone)]
pub struct ParsedCommit {
    /// Its event records, in order.
    pub records: Vec<RecordSpan>,
    /// Block-aligned offset where the next commit may start.
    pub end_offset: u64,
    /// Records before this commit that were still in flight when it was
    /// submitted (its marker's overlap; 0 when it overlapped nothing).
    pub overlap_records: u64,
}

impl ParsedCommit {
    /// First record sequence.
    pub fn first_seq(&self) -> u64 {
        self.records[0].header.seq
    }

    /// Last record sequence.
    pub fn last_seq(&self) -> u64 {
        self.records[self.records.len() - 1].header.seq
    }

    /// The first sequence of the oldest commit that was still in flight
    /// when this one was submitted (its own first sequence when none was).
    /// This commit can have been acknowledged only after every record from
    /// there on was durable.
    pub fn in_flight_from_seq(&self) -> u64 {
        self.first_seq().saturating_sub(self.overlap_records)
    }
}

/// Why no valid commit starts at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// The bytes given end before the commit does: read more and retry.
    NeedMore,
    /// Not a valid commit; the reason is for humans.
    Invalid(String),
}

/// Parses the commit at segment offset `offset`, whose bytes start at
/// `bytes[0]`. `lap` is the segment's lap; `expected_seq`, when known, the
/// sequence the commit must start with. `at_segment_end` says that `bytes`
/// reaches the end of the segment (so running out is invalid, not "need
/// more").
pub fn parse_commit(
    bytes: &[u8],
    offset: u64,
    lap: u64,
    expected_seq: Option<u64>,
    at_segment_end: bool,
) -> Result<ParsedCommit, CommitError> {
    debug_assert_eq!(offset % BLOCK_BYTES as u64, 0, "commits start on blocks");
    let short = || {
        if at_segment_end {
            CommitError::Invalid("commit runs past the end of the segment".into())
        } else {
            CommitError::NeedMore
        }
    };
    let invalid = |at: usize, what: String| {
        CommitError::Invalid(format!("record at offset {}: {what}", offset + at as u64))
    };
    let mut records: Vec<RecordSpan> = Vec::new();
    let mut at = 0usize;
    loop {
        if at + RECORD_HEADER_BYTES > bytes.len() {
            return Err(short());
        }
        let h = match peek_record_header(&bytes[at..]) {
            Ok(h) => h,
            Err(e) => return Err(invalid(at, e.to_string())),
        };
        if h.lap != lap {
            return Err(invalid(
                at,
                format!("lap {} in segment of lap {lap}", h.lap),
            ));
        }
        let len = h.record_bytes();
        if at + len > bytes.len() {
            return Err(short());
        }
        if let Err(e) = verify_record(&bytes[at..], &h) {
            debug_assert_ne!(e, FormatError::Short);
            return Err(invalid(at, e.to_string()));
        }
        let first = records.first().map(|r| r.header.seq);
        match (first, h.kind) {
            (None, RecordKind::Events) => {
                if h.flags & FLAG_COMMIT_START == 0 {
                    return Err(invalid(
                        at,
                        "first record lacks the commit-start flag".into(),
                    ));
                }
                if let Some(want) = expected_seq {
                    if h.seq != want {
                        return Err(invalid(
                            at,
                            format!("seq {} where {want} was expected", h.seq),
                        ));
                    }
                }
            }
            (None, RecordKind::Marker) => {
                return Err(invalid(at, "commit marker without records".into()));
            }
            (Some(first), RecordKind::Events) => {
                if h.flags & FLAG_COMMIT_START != 0 {
                    return Err(invalid(at, "commit-start flag inside a commit".into()));
                }
                if h.seq != first + records.len() as u64 {
                    return Err(invalid(at, format!("seq {} breaks the sequence", h.seq)));
                }
            }
            (Some(first), RecordKind::Marker) => {
                if h.seq != first || h.count as usize != records.len() {
                    return Err(invalid(
                        at,
                        "commit marker does not match its records".into(),
                    ));
                }
                let end = offset + align_up(at + len, BLOCK_BYTES) as u64;
                return Ok(ParsedCommit {
                    records,
                    end_offset: end,
                    overlap_records: marker_overlap_records(&h),
                });
            }
        }
        // Alignment padding between records is part of the commit: it must
        // read as written (zeros), so no byte of acked data goes unchecked.
        let padded = align_up(len, RECORD_ALIGN_BYTES);
        if at + padded > bytes.len() {
            return Err(short());
        }
        if bytes[at + len..at + padded].iter().any(|&b| b != 0) {
            return Err(invalid(at, "non-zero padding after the record".into()));
        }
        records.push(RecordSpan {
            header: h,
            offset: offset + at as u64,
        });
        at += padded;
    }
}

/// True when a valid commit-start record with sequence at least `min_seq`
/// begins at `bytes[0]` (used to tell a torn tail from damaged acked data).
pub fn is_commit_start(bytes: &[u8], lap: u64, min_seq: u64) -> bool {
    let Ok(h) = peek_record_header(bytes) else {
        return false;
    };
    h.kind == RecordKind::Events
        && h.flags & FLAG_COMMIT_START != 0
        && h.lap == lap
        && h.seq >= min_seq
        && verify_record(bytes, &h).is_ok()
}
