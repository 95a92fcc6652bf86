//! Dead letters: events a store refuses permanently are appended to
//! `DATA/dead-letter/dead-letter.ndjson` — one JSON object per line with the
//! format `version`, the `reason` and the whole `event` (or, for bytes that
//! are not a document, `raw`) — fsynced, counted in metrics, never silently
//! dropped. The file is bounded by `--dead-letter-max-bytes`;
//! `helios-collector dead-letter list|replay` reads it and re-submits it to
//! the store.
//!
//! The version is per line because the file is append-only and outlives
//! upgrades: one file can hold lines of several versions. A line without
//! one was written before lines carried it, in the same layout (version
//! 1). A line of a later version is never interpreted: it is listed with a
//! reason naming both versions and stays in the file through a replay.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use helios_store::{parse_rfc3339_ms, EventDoc, ObjectId, Sink};

use crate::response::json_string;

/// File name inside the dead-letter directory.
pub const DEAD_LETTER_FILE: &str = "dead-letter.ndjson";
/// Default bound on the dead-letter file.
pub const DEFAULT_DEAD_LETTER_MAX_BYTES: u64 = 1 << 30;
/// The line format this build writes and reads.
pub const DEAD_LETTER_FORMAT_VERSION: u64 = 1;
/// How every line this build writes starts: the format version first, so a
/// reader can decide before it interprets anything else.
const LINE_START: &[u8] = b"{\"version\":1,\"reason\":";

/// The dead-letter file is at its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLettersFull;

/// Appends dead letters.
pub struct DeadLetters {
    path: PathBuf,
    file: Option<File>,
    max_bytes: u64,
}

impl DeadLetters {
    /// Dead letters under `dir` (created on first use), at most `max_bytes`.
    pub fn new(dir: &Path, max_bytes: u64) -> DeadLetters {
        DeadLetters {
            path: dir.join(DEAD_LETTER_FILE),
            file: None,
            max_bytes,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a whole stored document (JSON text) with the reason.
    pub fn record_doc(&mut self, reason: &str, doc_json: &str) -> Result<(), DeadLettersFull> {
        let mut line = Vec::with_capacity(doc_json.len() + reason.len() + 48);
        line.extend_from_slice(LINE_START);
        json_string(&mut line, reason);
        line.extend_from_slice(b",\"event\":");
        line.extend_from_slice(doc_json.as_bytes());
        line.extend_from_slice(b"}\n");
        self.append(&line)
    }

    /// Records raw bytes that are not a document (lossy UTF-8 as a string).
    pub fn record_raw(&mut self, reason: &str, raw: &[u8]) -> Result<(), DeadLettersFull> {
        let mut line = Vec::with_capacity(raw.len() + reason.len() + 48);
        line.extend_from_slice(LINE_START);
        json_string(&mut line, reason);
        line.extend_from_slice(b",\"raw\":");
        json_string(&mut line, &String::from_utf8_lossy(raw));
        line.extend_from_slice(b"}\n");
        self.append(&line)
    }

    fn append(&mut self, line: &[u8]) -> Result<(), DeadLettersFull> {
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if size + line.len() as u64 > self.max_bytes {
            return Err(DeadLettersFull);
        }
        let result = self.open().and_then(|f| {
            f.write_all(line)?;
            f.sync_data()
        });
        if let Err(e) = result {
            // Last resort: the log must hold the whole event.
            tracing::error!(path = %self.path.display(), error = %e, event = %String::from_utf8_lossy(line), "cannot write dead letter; the event is in this log line");
            self.file = None;
        }
        Ok(())
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            self.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("dead-letter file not open"))
    }
}

/// One line of the dead-letter file.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Why it was refused.
    pub reason: String,
    /// The stored document, when there is one.
    pub event: Option<serde_json::Value>,
    /// The line as written.
    pub line: String,
}

/// Reads every dead letter in `path` (none if the file does not exist).
pub fn read_all(path: &Path) -> std::io::Result<Vec<DeadLetter>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or(serde_json::Value::Null);
        let reason = v["reason"].as_str().unwrap_or("unreadable dead letter");
        // No version: written before lines carried one, same layout.
        let version = v
            .get("version")
            .map_or(Some(DEAD_LETTER_FORMAT_VERSION), |v| v.as_u64());
        let letter = if version == Some(DEAD_LETTER_FORMAT_VERSION) {
            DeadLetter {
                reason: reason.to_string(),
                event: v.get("event").cloned(),
                line,
            }
        } else {
            DeadLetter {
                reason: format!(
                    "dead letter of format version {}; this build reads version \
                     {DEAD_LETTER_FORMAT_VERSION} and leaves it in the file (reason given: {reason})",
                    v["version"]
                ),
                event: None,
                line,
            }
        };
        out.push(letter);
    }
    Ok(out)
}

/// Rebuilds the stored document from a dead letter's `event`.
pub fn event_doc(event: &serde_json::Value) -> Option<EventDoc> {
    let id: ObjectId = event["_id"].as_str()?.parse().ok()?;
    let event_type = event["type"].as_str()?.to_string();
    let ts_ms = parse_rfc3339_ms(event["ts"].as_str()?)?;
    let recv_ms = parse_rfc3339_ms(event["recv"].as_str()?)?;
    Some(EventDoc {
        id,
        event_type,
        ts_ms,
        recv_ms,
        app: event["app"].as_str().map(str::to_string),
        host: event["host"].as_str().map(str::to_string),
        doc: event.to_string(),
    })
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Dead letters now in the store (newly or already).
    pub stored: usize,
    /// Dead letters the store refused again, or that hold no document; they
    /// stay in the file.
    pub kept: usize,
}

/// Re-submits every dead letter to `sink` one by one; the ones stored are
/// removed from the file (rewritten atomically), the rest stay.
pub fn replay(path: &Path, sink: &mut dyn Sink) -> std::io::Result<ReplayOutcome> {
    let letters = read_all(path)?;
    let mut kept = Vec::new();
    let mut outcome = ReplayOutcome::default();
    for letter in letters {
        let doc = letter.event.as_ref().and_then(event_doc);
        let stored = match doc {
            Some(doc) => sink.write_batch(std::slice::from_ref(&doc)).is_ok(),
            None => false,
        };
        if stored {
            outcome.stored += 1;
        } else {
            outcome.kept += 1;
            kept.push(letter.line);
        }
    }
    let tmp = path.with_extension("ndjson.tmp");
    {
        let mut f = File::create(&tmp)?;
        for line in &kept {
            writeln!(f, "{line}")?;
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_format_version_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut letters = DeadLetters::new(dir.path(), DEFAULT_DEAD_LETTER_MAX_BYTES);
        letters
            .record_doc(
                "refused",
                r#"{"_id":"000000000000000000000001","type":"t"}"#,
            )
            .unwrap();
        letters
            .record_raw("does not decode", b"\x01garbage")
            .unwrap();
        let text = std::fs::read_to_string(letters.path()).unwrap();
        for line in text.lines() {
            assert!(line.starts_with(r#"{"version":1,"reason":"#), "{line}");
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["version"], DEAD_LETTER_FORMAT_VERSION);
        }
        let read = read_all(letters.path()).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].reason, "refused");
        assert_eq!(read[0].event.as_ref().unwrap()["type"], "t");
    }

    #[test]
    fn a_line_without_a_version_is_read_as_version_1() {
        // The layout of every line written before lines carried a version.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEAD_LETTER_FILE);
        std::fs::write(
            &path,
            "{\"reason\":\"refused\",\"event\":{\"_id\":\"000000000000000000000001\",\"type\":\"t\"}}\n",
        )
        .unwrap();
        let read = read_all(&path).unwrap();
        assert_eq!(read[0].reason, "refused");
        assert_eq!(read[0].event.as_ref().unwrap()["type"], "t");
    }

    #[test]
    fn a_line_of_a_later_version_is_listed_naming_both_versions_and_never_interpreted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEAD_LETTER_FILE);
        for version in ["2", "\"2\"", "-1"] {
            std::fs::write(
                &path,
                format!(
                    "{{\"version\":{version},\"reason\":\"r\",\"event\":{{\"_id\":\"000000000000000000000001\",\"type\":\"t\",\"ts\":\"2026-11-30T10:00:00.000Z\",\"recv\":\"2026-11-30T10:00:00.000Z\"}}}}\n"
                ),
            )
            .unwrap();
            let read = read_all(&path).unwrap();
            assert!(read[0].event.is_none(), "{version}");
            assert!(
                read[0].reason.contains(&format!("version {version}"))
                    && read[0].reason.contains("version 1"),
                "{}",
                read[0].reason
            );
        }
    }

    #[test]
    fn a_replay_keeps_lines_of_a_later_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEAD_LETTER_FILE);
        let newer = "{\"version\":2,\"reason\":\"r\",\"event\":{\"_id\":\"000000000000000000000001\",\"type\":\"t\",\"ts\":\"2026-11-30T10:00:00.000Z\",\"recv\":\"2026-11-30T10:00:00.000Z\"}}";
        std::fs::write(&path, format!("{newer}\n")).unwrap();
        let store = helios_store::testing::MemoryStore::new();
        let outcome = replay(&path, &mut store.sink()).unwrap();
        assert_eq!(outcome, ReplayOutcome { stored: 0, kept: 1 });
        assert!(store.ids().is_empty());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{newer}\n")
        );
    }
}
