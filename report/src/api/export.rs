//! `GET /api/export`: every selected event as NDJSON or CSV, streamed.
//!
//! A blocking task walks the selection with the query layer's [`Export`]
//! (one short read transaction per [`EXPORT_CHUNK_EVENTS`] events, so
//! SQLite's WAL is never pinned for the length of a download) and hands
//! the response body [`EXPORT_BUFFER_BYTES`] at a time through a small
//! bounded channel: a slow client slows the reads instead of growing memory.
//! A client that takes nothing for the idle timeout
//! ([`crate::config::EXPORT_IDLE_TIMEOUT`]), or a server shutting down,
//! ends the export and frees its slot; the body then ends with an error, so
//! the client sees a truncated transfer, never a short file that looks
//! complete.
//!
//! The first chunk is read before the answer starts, so a selection that
//! cannot run (a refused pattern scan, a filter too complex for the store,
//! a timeout) gets its proper status instead of a broken download. Without
//! `fields=`, the CSV columns are the envelope's and then the value paths
//! of that first chunk, the exported events themselves (so `types`, `q`
//! and `filter` shape them), most frequent first; a member name with a dot
//! is one column, looked up whole.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use helios_store::query::{
    value_paths, Export, ExportRequest, Hit, QueryError, EXPORT_CHUNK_EVENTS, MAX_EXPORT_EVENTS,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use super::AppState;
use crate::error::ApiError;
use crate::params::{self, Params};

/// Exports running at once; more get 503 (each holds a blocking thread).
pub const MAX_CONCURRENT_EXPORTS: usize = 4;
/// Most CSV columns (given with `fields=` or sampled from the events).
pub const MAX_CSV_COLUMNS: usize = 64;
/// Response bytes gathered before they are handed to the connection.
const EXPORT_BUFFER_BYTES: usize = 64 * 1024;
/// Buffers in flight between the reader and the connection.
const EXPORT_CHANNEL_BUFFERS: usize = 4;
/// CSV columns every export without `fields=` starts with (the envelope
/// members people sort and filter by).
const CSV_ENVELOPE: [&str; 4] = ["_id", "ts", "type", "app"];

/// A CSV column: the member names leading to its value.
type Column = Vec<String>;

#[derive(Clone, Copy)]
enum Format {
    Ndjson,
    Csv,
}

/// `GET /api/export?format=ndjson|csv&...&fields&limit`.
pub async fn export(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let format = match params::text(&params, "format") {
        None | Some("ndjson") => Format::Ndjson,
        Some("csv") => Format::Csv,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`format` is `ndjson` or `csv`".to_owned(),
            ))
        }
    };
    let select = params::selection(&params)?;
    let fields = params::path_list(&params, "fields", MAX_CSV_COLUMNS)?;
    let max_events = match params::text(&params, "limit") {
        None => MAX_EXPORT_EVENTS,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_EXPORT_EVENTS).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "`limit` must be a number from 1 to {MAX_EXPORT_EVENTS}"
                ))
            })?,
    };
    let permit = std::sync::Arc::clone(&state.exports)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::Busy(format!(
                "at most {MAX_CONCURRENT_EXPORTS} exports run at once; try again shortly"
            ))
        })?;
    // With `fields=`, those columns; otherwise chosen from the first chunk.
    let columns: Option<Vec<Column>> = match (format, &fields) {
        (Format::Csv, Some(fields)) => Some(fields.iter().map(|f| f.segments().to_vec()).collect()),
        _ => None,
    };
    let request = ExportRequest {
        select,
        sort: params::sort(&params)?,
        projection: fields,
        max_events,
    };
    // Open (or fail to open) the store before answering 200.
    let backend = {
        let b = std::sync::Arc::clone(&state.backend);
        tokio::task::spawn_blocking(move || b.open_blocking())
            .await
            .map_err(|e| ApiError::Store(format!("export task failed: {e}")))??
    };
    let (tx, rx) = mpsc::channel::<Bytes>(EXPORT_CHANNEL_BUFFERS);
    let (started_tx, started_rx) = oneshot::channel::<Result<(), ApiError>>();
    let complete = Arc::new(AtomicBool::new(false));
    let mut writer = ChunkWriter {
        tx,
        buf: Vec::new(),
        runtime: tokio::runtime::Handle::current(),
        shutdown: state.shutdown.clone(),
        idle_timeout: state.export_idle_timeout,
    };
    let finished = Arc::clone(&complete);
    tokio::task::spawn_blocking(move || {
        // Dropped when this task ends, however it ends: the slot frees.
        let _permit = permit;
        let mut export = Export::new(backend.as_ref(), request);
        let first = match first_chunk(&mut export) {
            Ok(first) => first,
            Err(error) => {
                let _ = started_tx.send(Err(ApiError::from(error)));
                return;
            }
        };
        if started_tx.send(Ok(())).is_err() {
            return;
        }
        let columns = match format {
            Format::Csv => {
                Some(columns.unwrap_or_else(|| default_columns(first.iter().map(|hit| &hit.doc))))
            }
            Format::Ndjson => None,
        };
        let hits = first.into_iter().map(Ok).chain(export);
        let ok = match columns {
            None => write_ndjson(hits, &mut writer),
            Some(columns) => write_csv(hits, &columns, &mut writer),
        };
        if ok && writer.flush() {
            finished.store(true, Ordering::Release);
        }
    });
    started_rx
        .await
        .map_err(|_| ApiError::Store("export task failed before its first chunk".to_owned()))??;
    let body = Body::from_stream(stream::unfold(Some(rx), move |rx| {
        let complete = Arc::clone(&complete);
        async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(chunk) => Some((Ok(chunk), Some(rx))),
                // The writer is gone: a clean end only if it finished.
                None if complete.load(Ordering::Acquire) => None,
                None => Some((Err(io::Error::other("export stopped early")), None)),
            }
        }
    }));
    let (content_type, file) = match format {
        Format::Ndjson => ("application/x-ndjson", "helios-events.ndjson"),
        Format::Csv => ("text/csv; charset=utf-8", "helios-events.csv"),
    };
    let disposition = format!("attachment; filename=\"{file}\"");
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response())
}

/// The first chunk of an export: what the CSV columns are chosen from,
/// and what tells whether the selection runs at all before answering.
fn first_chunk(export: &mut Export<'_>) -> Result<Vec<Hit>, QueryError> {
    // Exactly one read: the export fetches EXPORT_CHUNK_EVENTS at a time.
    export.by_ref().take(EXPORT_CHUNK_EVENTS).collect()
}

/// The envelope columns, then the value paths of `docs` (most frequent
/// first), up to [`MAX_CSV_COLUMNS`].
fn default_columns<'a>(docs: impl IntoIterator<Item = &'a Value>) -> Vec<Column> {
    let mut columns: Vec<Column> = CSV_ENVELOPE.iter().map(|c| vec![(*c).to_owned()]).collect();
    for path in value_paths(docs, MAX_CSV_COLUMNS) {
        if columns.len() >= MAX_CSV_COLUMNS {
            break;
        }
        if !columns.contains(&path) {
            columns.push(path);
        }
    }
    columns
}

/// Gathers output and hands it on in [`EXPORT_BUFFER_BYTES`] pieces.
struct ChunkWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    /// The server's runtime, to wait on the channel with a deadline from
    /// the blocking thread.
    runtime: tokio::runtime::Handle,
    shutdown: watch::Receiver<bool>,
    /// How long one hand-over may wait for the client to take data.
    idle_timeout: Duration,
}

/// Why a hand-over to the connection did not happen.
#[derive(Debug, thiserror::Error)]
enum SendStop {
    /// The client went away.
    #[error("the client is gone")]
    Gone,
    /// The client took nothing for the idle timeout.
    #[error("the client took no data for {0:?}")]
    Stalled(Duration),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    Shutdown,
}

impl ChunkWriter {
    /// Sends the buffer if it is full; false once the export must stop.
    fn maybe_send(&mut self) -> bool {
        if self.buf.len() < EXPORT_BUFFER_BYTES {
            return true;
        }
        self.flush()
    }

    /// Hands the buffer on; false (and logged) once the export must stop.
    fn flush(&mut self) -> bool {
        if self.buf.is_empty() {
            return true;
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        match self.send(chunk) {
            Ok(()) => true,
            Err(SendStop::Gone) => false,
            Err(stop) => {
                tracing::info!(reason = %stop, "export stopped");
                false
            }
        }
    }

    /// Waits until the connection takes `chunk`, at most the idle timeout,
    /// and not past the start of a shutdown.
    fn send(&mut self, chunk: Bytes) -> Result<(), SendStop> {
        let Self {
            tx,
            runtime,
            shutdown,
            idle_timeout,
            ..
        } = self;
        let idle_timeout = *idle_timeout;
        runtime.block_on(async move {
            tokio::select! {
                sent = tx.send(chunk) => sent.map_err(|_| SendStop::Gone),
                () = tokio::time::sleep(idle_timeout) => Err(SendStop::Stalled(idle_timeout)),
                // Also when the server is gone altogether (sender dropped).
                _ = shutdown.wait_for(|stop| *stop) => Err(SendStop::Shutdown),
            }
        })
    }

    /// Stops on an error: what is buffered goes out, then the body ends
    /// with an error (the export never reports itself complete).
    fn fail(&mut self, error: &dyn std::fmt::Display) {
        tracing::warn!(%error, "export stopped by a store error");
        let _ = self.flush();
    }
}

/// Writes hits until the end, an error, a gone or stalled client or
/// shutdown; true if it reached the end.
fn pump(
    hits: impl Iterator<Item = Result<Hit, QueryError>>,
    writer: &mut ChunkWriter,
    mut line: impl FnMut(&Hit, &mut Vec<u8>),
) -> bool {
    for (n, hit) in hits.enumerate() {
        // Checked once per read chunk: cheap, and bounds shutdown latency.
        if n % EXPORT_CHUNK_EVENTS == 0 && *writer.shutdown.borrow() {
            tracing::info!("export stopped: the server is shutting down");
            return false;
        }
        match hit {
            Ok(hit) => line(&hit, &mut writer.buf),
            Err(error) => {
                writer.fail(&error);
                return false;
            }
        }
        if !writer.maybe_send() {
            return false;
        }
    }
    true
}

fn write_ndjson(
    hits: impl Iterator<Item = Result<Hit, QueryError>>,
    writer: &mut ChunkWriter,
) -> bool {
    pump(hits, writer, |hit, out| {
        // Serializing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &hit.document());
        out.push(b'\n');
    })
}

fn write_csv(
    hits: impl Iterator<Item = Result<Hit, QueryError>>,
    columns: &[Column],
    writer: &mut ChunkWriter,
) -> bool {
    // A column's header is its dotted path; a member name with a dot reads
    // the same as the nested path it spells, but is its own column.
    let header: Vec<String> = columns.iter().map(|c| csv_cell(&c.join("."))).collect();
    writer.buf.extend_from_slice(header.join(",").as_bytes());
    writer.buf.extend_from_slice(b"\r\n");
    pump(hits, writer, |hit, out| {
        for (i, path) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if let Some(value) = lookup(&hit.doc, path) {
                out.extend_from_slice(csv_value(value).as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
    })
}

/// The node at a path of member names through nested objects (no array
/// traversal: a CSV cell holds one value).
fn lookup<'v>(doc: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter()
        .try_fold(doc, |node, key| node.get(key.as_str()))
}

fn csv_value(value: &Value) -> String {
    match value {
        Value::String(s) => csv_cell(s),
        Value::Null => String::new(),
        other => csv_cell(&other.to_string()),
    }
}

/// One RFC 4180 cell. Text a spreadsheet would run as a formula (leading
/// `=`, `+`, `-`, `@`, tab or CR: OWASP's CSV injection list) gets a leading
/// `'`, because event content is untrusted and exports get opened in
/// spreadsheets.
fn csv_cell(text: &str) -> String {
    let guarded =
        if text.starts_with(['=', '+', '-', '@', '\t', '\r']) && text.parse::<f64>().is_err() {
            format!("'{text}")
        } else {
            text.to_owned()
        };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn formula_like_text_is_defused_but_numbers_are_not() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_value(&serde_json::json!(-5)), "-5");
        assert_eq!(csv_cell("-5"), "-5");
    }

    fn path(segments: &[&str]) -> Column {
        segments.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn nested_values_are_looked_up_by_their_member_names() {
        let doc = serde_json::json!({"user": {"plan": "pro"}, "n": 1, "a.b": 2});
        assert_eq!(
            lookup(&doc, &path(&["user", "plan"])),
            Some(&Value::from("pro"))
        );
        assert_eq!(lookup(&doc, &path(&["user", "none"])), None);
        assert_eq!(lookup(&doc, &path(&["a.b"])), Some(&Value::from(2)));
        assert_eq!(
            csv_value(lookup(&doc, &path(&["user"])).unwrap()),
            "\"{\"\"plan\"\":\"\"pro\"\"}\""
        );
    }

    #[test]
    fn default_columns_are_the_envelope_then_the_documents_value_paths() {
        let docs = [
            serde_json::json!({"_id": "x", "ts": "t", "type": "a", "a.b": 1, "u": {"p": 2}}),
            serde_json::json!({"_id": "y", "ts": "t", "type": "a", "u": {"p": 3}}),
        ];
        assert_eq!(
            default_columns(&docs),
            vec![
                path(&["_id"]),
                path(&["ts"]),
                path(&["type"]),
                path(&["app"]),
                path(&["u", "p"]),
                path(&["a.b"]),
            ]
        );
    }
}
