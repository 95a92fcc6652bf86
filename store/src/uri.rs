//! Store URIs (`sqlite://PATH`, `mongodb://…`, `http(s)://…`) and
//! [`open_sink`], the one way to get a [`Sink`] for a store URI. An
//! `http(s)://` URI names an upstream collector (relay mode): it parses
//! here so every binary reads URIs alike, but the relay sink belongs to the
//! collector (`helios-ingest`), which speaks its own protocol upstream.

use std::path::PathBuf;

use crate::error::StoreError;
#[cfg(all(feature = "sink", feature = "mongodb"))]
use crate::mongo::{MongoOptions, MongoSink};
#[cfg(feature = "sink")]
use crate::sink::Sink;
#[cfg(all(feature = "sink", feature = "sqlite"))]
use crate::sqlite::SqliteSink;

/// Scheme of the embedded store.
pub const SCHEME_SQLITE: &str = "sqlite";
/// Schemes of MongoDB connection strings.
pub const SCHEMES_MONGODB: [&str; 2] = ["mongodb", "mongodb+srv"];
/// Scheme of an upstream collector behind TLS (relay mode).
pub const SCHEME_HTTPS: &str = "https";
/// Scheme of an upstream collector (relay mode).
pub const SCHEME_HTTP: &str = "http";
/// SQLite's name for a private in-memory database: never durable.
const SQLITE_MEMORY: &str = ":memory:";

/// A parsed store URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUri {
    /// `sqlite://PATH`: the file at PATH, relative to the working directory
    /// unless absolute (`sqlite:///var/lib/helios/events.db`). No `~`
    /// expansion, no query parameters: everything after `sqlite://` is the
    /// path.
    Sqlite(PathBuf),
    /// `http(s)://host[:port][/prefix]`: an upstream collector (relay
    /// mode), kept whole.
    Http(String),
    /// `mongodb://…` or `mongodb+srv://…`: any MongoDB connection string,
    /// kept whole for the driver (it may hold credentials: never log it).
    MongoDb(String),
}

impl StoreUri {
    /// Parses a store URI. Errors name the scheme at most, never the whole
    /// text, which may hold credentials.
    pub fn parse(uri: &str) -> Result<Self, StoreError> {
        let (scheme, rest) = split_scheme(uri)?;
        match scheme.as_str() {
            SCHEME_SQLITE => parse_sqlite_path(rest).map(StoreUri::Sqlite),
            SCHEME_HTTP | SCHEME_HTTPS => Ok(StoreUri::Http(format!("{scheme}://{rest}"))),
            mongo if SCHEMES_MONGODB.contains(&mongo) => {
                Ok(StoreUri::MongoDb(format!("{mongo}://{rest}")))
            }
            _ => Err(StoreError::UnknownScheme { scheme }),
        }
    }
}

/// Per-backend settings that are not part of a store URI.
#[cfg(feature = "sink")]
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// Database, collection, layout and retention (MongoDB only).
    #[cfg(feature = "mongodb")]
    pub mongo: MongoOptions,
    /// Age past which an arriving event is written as a late row (SQLite
    /// only; `None`: [`crate::sqlite::DEFAULT_LATE_AFTER_MS`]). The
    /// collector passes its compactor's `partition_ms + hot_ms`.
    #[cfg(feature = "sqlite")]
    pub sqlite_late_after_ms: Option<i64>,
}

/// Opens the sink a store URI names with default options, ready for a
/// flusher thread.
#[cfg(feature = "sink")]
pub fn open_sink(uri: &str) -> Result<Box<dyn Sink + Send>, StoreError> {
    open_sink_with(uri, &SinkOptions::default())
}

/// [`open_sink`] with per-backend options (each backend ignores the
/// others'). An `http(s)://` upstream is refused: the collector opens its
/// relay sink itself.
#[cfg(feature = "sink")]
pub fn open_sink_with(
    uri: &str,
    options: &SinkOptions,
) -> Result<Box<dyn Sink + Send>, StoreError> {
    let _ = options;
    match StoreUri::parse(uri)? {
        #[cfg(feature = "sqlite")]
        StoreUri::Sqlite(path) => {
            let sink = SqliteSink::open(path)?;
            Ok(Box::new(match options.sqlite_late_after_ms {
                Some(late_after_ms) => sink.with_late_after_ms(late_after_ms),
                None => sink,
            }))
        }
        #[cfg(feature = "mongodb")]
        StoreUri::MongoDb(uri) => Ok(Box::new(MongoSink::open(&uri, options.mongo.clone())?)),
        StoreUri::Http(_) => Err(StoreError::InvalidUri {
            reason: "an http(s):// upstream is a collector, not a store: only a collector \
                     (relay mode) forwards to it"
                .to_owned(),
        }),
        #[allow(unreachable_patterns)]
        _ => Err(StoreError::InvalidUri {
            reason: "this build has no back end for that scheme".to_owned(),
        }),
    }
}

/// Splits `scheme://rest`, lowercasing the scheme (RFC 3986: schemes are
/// case-insensitive).
fn split_scheme(uri: &str) -> Result<(String, &str), StoreError> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(StoreError::InvalidUri {
            reason: "no `scheme://` (expected e.g. sqlite://PATH)".to_owned(),
        });
    };
    let plausible = scheme
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !plausible {
        return Err(StoreError::InvalidUri {
            reason: "the part before `://` is not a URI scheme (expected e.g. sqlite://PATH)"
                .to_owned(),
        });
    }
    Ok((scheme.to_ascii_lowercase(), rest))
}

fn parse_sqlite_path(rest: &str) -> Result<PathBuf, StoreError> {
    if rest.is_empty() {
        return Err(StoreError::InvalidUri {
            reason: "sqlite:// needs a file path, e.g. sqlite://data/events.db".to_owned(),
        });
    }
    if rest == SQLITE_MEMORY {
        return Err(StoreError::InvalidUri {
            reason: "sqlite://:memory: is not durable; give a file path".to_owned(),
        });
    }
    Ok(PathBuf::from(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_sqlite_paths_parse() {
        assert_eq!(
            StoreUri::parse("sqlite://data/events.db").unwrap(),
            StoreUri::Sqlite(PathBuf::from("data/events.db"))
        );
        assert_eq!(
            StoreUri::parse("sqlite:///var/lib/helios/events.db").unwrap(),
            StoreUri::Sqlite(PathBuf::from("/var/lib/helios/events.db"))
        );
        assert_eq!(
            StoreUri::parse("SQLite://events.db").unwrap(),
            StoreUri::Sqlite(PathBuf::from("events.db"))
        );
    }

    #[test]
    fn sqlite_without_a_file_path_is_rejected() {
        for uri in ["sqlite://", "sqlite://:memory:"] {
            assert!(
                matches!(StoreUri::parse(uri), Err(StoreError::InvalidUri { .. })),
                "{uri}"
            );
        }
    }

    #[test]
    fn a_uri_without_scheme_is_rejected() {
        for uri in ["events.db", "/var/lib/events.db", "://x", "1sqlite://x"] {
            assert!(
                matches!(StoreUri::parse(uri), Err(StoreError::InvalidUri { .. })),
                "{uri}"
            );
        }
    }
}
