//! Dead letters: events the store refuses permanently are appended to
//! `DATA/dead-letter/dead-letter.ndjson` with the reason, fsynced, never
//! silently dropped. (Size bounds and the list/replay command come with the
//! hardening issue.)

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::response::json_string;

/// File name inside the dead-letter directory.
pub const DEAD_LETTER_FILE: &str = "dead-letter.ndjson";

/// Appends dead letters.
pub struct DeadLetters {
    path: PathBuf,
    file: Option<File>,
}

impl DeadLetters {
    /// Dead letters under `dir` (created on first use).
    pub fn new(dir: &Path) -> DeadLetters {
        DeadLetters {
            path: dir.join(DEAD_LETTER_FILE),
            file: None,
        }
    }

    /// Records a whole stored document (JSON text) with the reason.
    pub fn record_doc(&mut self, reason: &str, doc_json: &str) {
        let mut line = Vec::with_capacity(doc_json.len() + reason.len() + 32);
        line.extend_from_slice(b"{\"reason\":");
        json_string(&mut line, reason);
        line.extend_from_slice(b",\"event\":");
        line.extend_from_slice(doc_json.as_bytes());
        line.extend_from_slice(b"}\n");
        self.append(&line);
    }

    /// Records raw bytes that are not a document (lossy UTF-8 as a string).
    pub fn record_raw(&mut self, reason: &str, raw: &[u8]) {
        let mut line = Vec::with_capacity(raw.len() + reason.len() + 32);
        line.extend_from_slice(b"{\"reason\":");
        json_string(&mut line, reason);
        line.extend_from_slice(b",\"raw\":");
        json_string(&mut line, &String::from_utf8_lossy(raw));
        line.extend_from_slice(b"}\n");
        self.append(&line);
    }

    fn append(&mut self, line: &[u8]) {
        let result = self.open().and_then(|f| {
            f.write_all(line)?;
            f.sync_data()
        });
        if let Err(e) = result {
            // Last resort: the log must hold the whole event.
            tracing::error!(path = %self.path.display(), error = %e, event = %String::from_utf8_lossy(line), "cannot write dead letter");
            self.file = None;
        }
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
