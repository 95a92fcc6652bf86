//! Which MongoDB failures a retry can fix (DESIGN §5: transient errors are
//! retried with backoff; a document the server refuses goes to dead
//! letters; an operator problem stops the flusher loudly).

use mongodb::error::{Error as DriverError, ErrorKind};

use crate::sink::SinkError;

/// Duplicate key: the event is already stored (a replay or a resend).
pub(crate) const DUPLICATE_KEY: i32 = 11000;

/// Server codes that mean "not now" rather than "not this document":
/// elections and step-downs, shutdowns, timeouts, lock and write
/// conflicts, stale sharding metadata, network trouble reported by mongos.
const TRANSIENT_CODES: [i32; 23] = [
    6,     // HostUnreachable
    7,     // HostNotFound
    24,    // LockTimeout
    50,    // MaxTimeMSExpired
    63,    // StaleShardVersion
    64,    // WriteConcernFailed
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    112,   // WriteConflict
    134,   // ReadConcernMajorityNotAvailableYet
    150,   // StaleEpoch
    189,   // PrimarySteppedDown
    202,   // NetworkInterfaceExceededTimeLimit
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13388, // StaleConfig
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
    462,   // IngressRequestRateLimitExceeded
    10058, // LegacyNotPrimary
];

/// Server codes an operator must fix (credentials, permissions): retrying
/// at the flusher's slow pace is all we can do.
const PERMANENT_CODES: [i32; 3] = [
    13, // Unauthorized
    18, // AuthenticationFailed
    73, // InvalidNamespace
];

/// Whether a per-document write error code is worth retrying.
pub(crate) fn is_transient_code(code: i32) -> bool {
    TRANSIENT_CODES.contains(&code)
}

/// Classifies a driver error that is not about single documents.
pub(crate) fn classify(context: String, error: DriverError) -> SinkError {
    let permanent = match error.kind.as_ref() {
        ErrorKind::Authentication { .. }
        | ErrorKind::InvalidArgument { .. }
        | ErrorKind::InvalidTlsConfig { .. } => true,
        ErrorKind::Command(command) => PERMANENT_CODES.contains(&command.code),
        _ => false,
    };
    if permanent {
        SinkError::permanent(context, error)
    } else {
        // Network errors, server selection, pool clears, step-downs,
        // timeouts and anything unknown: the journal keeps the events, so
        // retrying is always safe (inserts are idempotent by `_id`).
        SinkError::transient(context, error)
    }
}
