//! Errors of the journal. Every error that concerns a file names it.

use std::io;
use std::path::PathBuf;

/// Why bytes could not be decoded as a header or record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Fewer bytes than the structure needs.
    #[error("truncated")]
    Short,
    /// Magic number does not match.
    #[error("bad magic")]
    BadMagic,
    /// CRC32C does not match.
    #[error("checksum mismatch")]
    BadChecksum,
    /// Unknown record kind byte.
    #[error("unknown record kind {0}")]
    BadKind(u8),
    /// A segment written by a format version this build does not know.
    #[error("segment format version {found} is not one this build reads (it reads version {supported}); a newer Helios wrote it")]
    UnsupportedVersion {
        /// The version in the segment header.
        found: u32,
        /// The one version this build reads.
        supported: u32,
    },
    /// A segment written with another block size.
    #[error("unsupported block size {0}")]
    BadBlockSize(u32),
    /// A segment size that is not a positive multiple of the block size.
    #[error("invalid segment size {0}")]
    BadSegmentSize(u64),
}

/// Errors returned by journal operations.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An I/O call failed; `op` says which, `path` on which file.
    #[error("journal {op} failed on {path}: {source}")]
    Io {
        /// What the journal was doing.
        op: &'static str,
        /// File or directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Acked data is damaged: an invalid commit with a valid one after it.
    #[error(
        "journal corrupt: invalid commit in {path} at offset {offset} ({reason}), \
         but a valid later commit exists in {later_path} at offset {later_offset}; \
         refusing to open (run `helios-journal repair` to quarantine the damaged tail)"
    )]
    Corrupt {
        /// Segment holding the invalid commit.
        path: PathBuf,
        /// Byte offset of the invalid commit.
        offset: u64,
        /// What was wrong with it.
        reason: String,
        /// Segment holding the later valid commit.
        later_path: PathBuf,
        /// Its byte offset.
        later_offset: u64,
    },
    /// The checkpoint was written by a newer format than this build reads:
    /// refused rather than replayed from the start, which would lose the
    /// minted-id position it keeps.
    #[error("journal checkpoint {path} has format version {found}, newer than the {supported} this build reads; run the Helios that wrote it (a checkpoint is never guessed at)")]
    NewerCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A segment file is unusable (bad header, wrong size, duplicate lap...).
    #[error("journal segment {path} is unusable: {reason}")]
    BadSegment {
        /// The segment file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Records the checkpoint says are not yet stored are missing on disk.
    #[error("journal {dir} is missing records: checkpoint is at seq {checkpoint_seq} but the first record on disk is seq {first_seq}")]
    Gap {
        /// Journal directory.
        dir: PathBuf,
        /// Checkpointed sequence.
        checkpoint_seq: u64,
        /// First sequence found.
        first_seq: u64,
    },
    /// A previous write or fdatasync failed; the journal must be reopened.
    #[error("journal failed earlier ({cause}); reopen it to recover from disk")]
    Failed {
        /// The original failure.
        cause: String,
    },
    /// No disk space for the segment these appends need. Not a journal
    /// failure: appends succeed again once space returns.
    #[error("no space left for a new journal segment in {dir}")]
    NoSpace {
        /// Journal directory.
        dir: PathBuf,
    },
    /// A new segment could not be prepared for another reason than space
    /// (retried in the background; appends that need it fail meanwhile).
    #[error("journal segment in {dir} unavailable: {reason}")]
    SegmentUnavailable {
        /// Journal directory.
        dir: PathBuf,
        /// The I/O error text.
        reason: String,
    },
    /// More bytes are waiting to be committed than `max_pending_bytes`.
    #[error("journal has {pending_bytes} bytes pending, limit is {max_pending_bytes}")]
    Backpressure {
        /// Bytes waiting.
        pending_bytes: usize,
        /// The configured limit.
        max_pending_bytes: usize,
    },
    /// The record is larger than a commit may be.
    #[error("record of {record_bytes} bytes exceeds the limit of {max_record_bytes}")]
    RecordTooLarge {
        /// Size asked for.
        record_bytes: usize,
        /// The limit.
        max_record_bytes: usize,
    },
    /// The journal directory is on a memory filesystem (tmpfs, ramfs):
    /// nothing written there survives a power loss, so no ack could mean
    /// durable. Allowed only with `JournalConfig::allow_volatile`.
    #[error(
        "journal directory {dir} is on {filesystem}, a memory filesystem: \
         commits there are not durable across a power loss or reboot"
    )]
    Volatile {
        /// Journal directory.
        dir: PathBuf,
        /// The filesystem's name.
        filesystem: String,
    },
    /// The filesystem refuses `O_DIRECT` (EINVAL at the open or at the
    /// first write). Commits can be buffered writes + fdatasync instead,
    /// only when `JournalConfig::buffered_io` asks for it.
    #[error(
        "journal directory {dir} is on {filesystem}, which refuses O_DIRECT (EINVAL at {stage}); \
         commits need O_DIRECT unless buffered writes + fdatasync are chosen (buffered_io)"
    )]
    DirectIoRefused {
        /// Journal directory.
        dir: PathBuf,
        /// The filesystem's name.
        filesystem: String,
        /// Where it was refused: `open` or `first write`.
        stage: &'static str,
        /// The OS error (EINVAL).
        #[source]
        source: io::Error,
    },
    /// Invalid configuration.
    #[error("invalid journal configuration: {0}")]
    Config(String),
    /// The journal was closed.
    #[error("journal is closed")]
    Closed,
}

impl JournalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        JournalError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True for errors that leave acked data intact and clear by themselves
    /// (no space, backpressure): the caller answers 503 and carries on.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            JournalError::NoSpace { .. }
                | JournalError::SegmentUnavailable { .. }
                | JournalError::Backpressure { .. }
        )
    }
}

/// Result alias.
pub type Result<T, E = JournalError> = std::result::Result<T, E>;
