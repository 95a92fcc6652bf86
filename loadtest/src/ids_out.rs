//! `--ids-out`: the ids of acked events, one 24-hex id per line.
//!
//! Each thread buffers its lines and appends whole buffers to the shared
//! file under a lock, so lines never interleave and the hot path takes no
//! lock. The file is opened for appending (a run can add to the ids of an
//! earlier one, e.g. before and after a server restart).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::request::IdHex;

/// Buffered bytes per thread before they are appended to the file.
pub const FLUSH_BYTES: usize = 64 * 1024;

/// The file all threads append to.
#[derive(Clone)]
pub struct IdFile(Arc<Mutex<File>>);

impl IdFile {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: &Path) -> io::Result<IdFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(IdFile(Arc::new(Mutex::new(file))))
    }
}

/// One thread's buffer in front of the [`IdFile`].
pub struct IdSink {
    file: IdFile,
    buf: Vec<u8>,
    written: u64,
    error: Option<io::Error>,
}

impl IdSink {
    /// An empty buffer in front of `file`.
    pub fn new(file: IdFile) -> IdSink {
        IdSink {
            file,
            buf: Vec::with_capacity(FLUSH_BYTES + 64),
            written: 0,
            error: None,
        }
    }

    /// Buffers `id` as one line, appending the buffer to the file once it
    /// reaches [`FLUSH_BYTES`].
    pub fn push(&mut self, id: &IdHex) {
        self.buf.extend_from_slice(id);
        self.buf.push(b'\n');
        self.written += 1;
        if self.buf.len() >= FLUSH_BYTES {
            self.flush();
        }
    }

    /// Appends the buffered lines; the first failure is kept for
    /// [`IdSink::finish`] (later lines are dropped: the file is already
    /// incomplete, and the run reports it).
    pub fn flush(&mut self) {
        if self.error.is_none() && !self.buf.is_empty() {
            let mut file = self.file.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = file.write_all(&self.buf) {
                self.error = Some(e);
            }
        }
        self.buf.clear();
    }

    /// Flushes and returns the number of ids written, or the first error.
    pub fn finish(mut self) -> io::Result<u64> {
        self.flush();
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.written),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_append_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        let file = IdFile::open(&path).unwrap();
        let mut a = IdSink::new(file.clone());
        let mut b = IdSink::new(file);
        for i in 0..5000u32 {
            let mut id = [b'0'; 24];
            id[16..].copy_from_slice(format!("{i:08x}").as_bytes());
            if i % 2 == 0 {
                a.push(&id)
            } else {
                b.push(&id)
            }
        }
        assert_eq!(a.finish().unwrap() + b.finish().unwrap(), 5000);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: std::collections::HashSet<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5000);
        assert!(lines.iter().all(|l| l.len() == 24));
    }
}
