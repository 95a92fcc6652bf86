//! Logging events that will never be delivered.
//!
//! Every path that loses an event ends here, so the app's log is the place
//! of last resort for the data (SEED "Client API": the logged message must
//! contain the entire document). Lines go to the `log` facade under the
//! target [`LOST_EVENT_LOG_TARGET`] so an app can route them to a file of
//! their own and replay them later.

use std::fmt;

/// `log` target of every lost-event line.
pub const LOST_EVENT_LOG_TARGET: &str = "helios_client::lost";

/// Why an event was lost.
pub(crate) enum LossReason<'a> {
    /// The in-process queue was full (events or bytes); the new event is dropped.
    QueueFull,
    /// The queue was past the share kept for high-priority events; the new
    /// low- or normal-priority event is dropped.
    QueueReserved,
    /// The encoded document is larger than `max_event_bytes`.
    TooLarge { limit_bytes: usize },
    /// `record()` could not build a document (bad type, fields, serializer).
    Invalid(&'a dyn fmt::Display),
    /// `record()` after `shutdown()`.
    ClientShutDown,
    /// The server refused the event (per-event reject or whole-batch 4xx).
    Rejected { reason: &'a str },
    /// Every attempt failed; `last_error` is the final attempt's failure.
    RetriesExhausted { attempts: u32, last_error: &'a str },
    /// Shutdown's deadline passed before the event could be sent.
    ShutdownDeadline,
    /// The sender thread panicked while holding the event (a bug).
    SenderRestarted,
}

impl fmt::Display for LossReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LossReason::QueueFull => f.write_str("queue full, new event dropped"),
            LossReason::QueueReserved => f.write_str(
                "queue 90% full, the rest is kept for priority high: new low/normal event dropped",
            ),
            LossReason::TooLarge { limit_bytes } => {
                write!(f, "event larger than max_event_bytes={limit_bytes}")
            }
            LossReason::Invalid(error) => write!(f, "invalid event: {error}"),
            LossReason::ClientShutDown => f.write_str("recorded after client shutdown"),
            LossReason::Rejected { reason } => write!(f, "rejected by server: {reason}"),
            LossReason::RetriesExhausted {
                attempts,
                last_error,
            } => write!(
                f,
                "retries exhausted after {attempts} attempts, last error: {last_error}"
            ),
            LossReason::ShutdownDeadline => f.write_str("shutdown deadline passed before delivery"),
            LossReason::SenderRestarted => {
                f.write_str("sender thread failed internally and restarted")
            }
        }
    }
}

impl LossReason<'_> {
    /// A server reject is the app's data problem (warn); the rest are
    /// delivery failures (error).
    fn level(&self) -> log::Level {
        match self {
            LossReason::Rejected { .. } | LossReason::Invalid(_) => log::Level::Warn,
            _ => log::Level::Error,
        }
    }
}

/// Logs one lost document whole, or its first `max_logged_bytes` bytes with
/// its full size when it is larger (the line says it was truncated).
pub(crate) fn log_lost(reason: &LossReason<'_>, doc: &[u8], max_logged_bytes: usize) {
    let level = reason.level();
    if !log::log_enabled!(target: LOST_EVENT_LOG_TARGET, level) {
        return;
    }
    if doc.len() <= max_logged_bytes {
        log::log!(
            target: LOST_EVENT_LOG_TARGET,
            level,
            "helios event lost ({reason}): {}",
            String::from_utf8_lossy(doc)
        );
        return;
    }
    let prefix = utf8_prefix(doc, max_logged_bytes);
    log::log!(
        target: LOST_EVENT_LOG_TARGET,
        level,
        "helios event lost ({reason}); document is {} bytes, TRUNCATED to its first {} bytes: {}",
        doc.len(),
        prefix.len(),
        String::from_utf8_lossy(prefix)
    );
}

/// The longest prefix of at most `max_bytes` that does not split a UTF-8
/// character (documents come from serde_json, so they are valid UTF-8).
fn utf8_prefix(doc: &[u8], max_bytes: usize) -> &[u8] {
    let mut end = max_bytes.min(doc.len());
    // A continuation byte looks like 0b10xx_xxxx; back up at most 3 of them.
    for _ in 0..3 {
        if end == 0 || end == doc.len() || doc[end] & 0xc0 != 0x80 {
            break;
        }
        end -= 1;
    }
    &doc[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_never_splits_a_character() {
        let doc = "aé€".as_bytes(); // 1 + 2 + 3 bytes
        assert_eq!(utf8_prefix(doc, 2), b"a");
        assert_eq!(utf8_prefix(doc, 3), "aé".as_bytes());
        assert_eq!(utf8_prefix(doc, 5), "aé".as_bytes());
        assert_eq!(utf8_prefix(doc, 6), doc);
        assert_eq!(utf8_prefix(doc, 100), doc);
    }

    #[test]
    fn reasons_read_as_sentences() {
        let reason = LossReason::RetriesExhausted {
            attempts: 3,
            last_error: "connection refused",
        };
        assert_eq!(
            reason.to_string(),
            "retries exhausted after 3 attempts, last error: connection refused"
        );
    }
}
