//! Maps SQLite errors to [`SinkError`] classes, in one place so the retry
//! policy of the SQLite sink can be read (and reviewed) at a glance.

use rusqlite::ErrorCode;

use crate::model::EventDoc;
use crate::sink::SinkError;

/// Classifies an error that is not about one row.
///
/// Transient: contention (busy/locked), I/O errors, a full disk, memory
/// pressure, a schema change under a prepared statement, an interrupt —
/// all of which can clear without anyone touching the file. Everything else
/// (corruption, read-only file, permission, misuse, unknown codes) is
/// permanent: retrying in a tight loop would only hide it. Both keep the
/// events in the journal; the difference is how loudly and how often the
/// flusher retries.
pub(crate) fn classify(error: rusqlite::Error, context: impl Into<String>) -> SinkError {
    if is_transient(&error) {
        SinkError::transient(context, error)
    } else {
        SinkError::permanent(context, error)
    }
}

/// Classifies an error from inserting `doc`, at `index` in its batch: a
/// constraint or size violation refuses that event alone; anything else is
/// about the store and classified as [`classify`] does.
pub(crate) fn classify_row(error: rusqlite::Error, index: usize, doc: &EventDoc) -> SinkError {
    match code(&error) {
        Some(ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch) => {
            SinkError::DocRefused {
                index,
                id: doc.id,
                reason: error.to_string(),
            }
        }
        _ => classify(
            error,
            format!("inserting event {} at batch index {index}", doc.id),
        ),
    }
}

fn code(error: &rusqlite::Error) -> Option<ErrorCode> {
    match error {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
        _ => None,
    }
}

fn is_transient(error: &rusqlite::Error) -> bool {
    matches!(
        code(error),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::OutOfMemory
                | ErrorCode::CannotOpen
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::SchemaChanged
                | ErrorCode::OperationInterrupted
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_error(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_locked_io_and_full_disk_are_transient() {
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_IOERR,
            rusqlite::ffi::SQLITE_FULL,
        ] {
            assert!(
                classify(sqlite_error(code), "test").is_transient(),
                "code {code}"
            );
        }
    }

    #[test]
    fn corruption_and_read_only_are_permanent() {
        for code in [
            rusqlite::ffi::SQLITE_CORRUPT,
            rusqlite::ffi::SQLITE_READONLY,
            rusqlite::ffi::SQLITE_NOTADB,
        ] {
            let error = classify(sqlite_error(code), "test");
            assert!(
                matches!(error, SinkError::Permanent { .. }),
                "code {code}: {error}"
            );
        }
    }
}
