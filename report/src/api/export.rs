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
    Export, ExportRequest, FieldPath, Hit, EXPORT_CHUNK_EVENTS, MAX_EXPORT_EVENTS,
};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::read::DEFAULT_FIELD_SAMPLE;
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
/// CSV columns every export starts with.
const CSV_ENVELOPE: [&str; 5] = ["_id", "ts", "type", "app", "host"];

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
    let columns = match (format, &fields) {
        (Format::Csv, Some(fields)) => fields.iter().map(FieldPath::dotted).collect(),
        (Format::Csv, None) => {
            let range = select.range;
            let names = state
                .backend
                .run(move |b| b.field_names(range, DEFAULT_FIELD_SAMPLE))
                .await?;
            default_columns(names.into_iter().map(|f| f.path))
        }
        (Format::Ndjson, _) => Vec::new(),
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
        let export = Export::new(backend.as_ref(), request);
        let ok = match format {
            Format::Ndjson => write_ndjson(export, &mut writer),
            Format::Csv => write_csv(export, &columns, &mut writer),
        };
        if ok && writer.flush() {
            finished.store(true, Ordering::Release);
        }
    });
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

/// The envelope columns, then the sampled field names, up to the limit.
fn default_columns(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut columns: Vec<String> = CSV_ENVELOPE.iter().map(|c| (*c).to_owned()).collect();
    for name in names {
        if columns.len() >= MAX_CSV_COLUMNS {
            break;
        }
        if !columns.contains(&name) {
            columns.push(name);
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
    export: Export<'_>,
    writer: &mut ChunkWriter,
    mut line: impl FnMut(&Hit, &mut Vec<u8>),
) -> bool {
    for (n, hit) in export.enumerate() {
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

fn write_ndjson(export: Export<'_>, writer: &mut ChunkWriter) -> bool {
    pump(export, writer, |hit, out| {
        // Serializing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &hit.doc);
        out.push(b'\n');
    })
}

fn write_csv(export: Export<'_>, columns: &[String], writer: &mut ChunkWriter) -> bool {
    let header: Vec<String> = columns.iter().map(|c| csv_cell(c)).collect();
    writer.buf.extend_from_slice(header.join(",").as_bytes());
    writer.buf.extend_from_slice(b"\r\n");
    let paths: Vec<Vec<&str>> = columns.iter().map(|c| c.split('.').collect()).collect();
    pump(export, writer, |hit, out| {
        for (i, path) in paths.iter().enumerate() {
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

/// The node at a dotted path through nested objects (no array traversal:
/// a CSV cell holds one value).
fn lookup<'v>(doc: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(doc, |node, key| node.get(key))
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

    #[test]
    fn nested_values_are_looked_up_by_dotted_path() {
        let doc = serde_json::json!({"user": {"plan": "pro"}, "n": 1});
        assert_eq!(lookup(&doc, &["user", "plan"]), Some(&Value::from("pro")));
        assert_eq!(lookup(&doc, &["user", "none"]), None);
        assert_eq!(
            csv_value(lookup(&doc, &["user"]).unwrap()),
            "\"{\"\"plan\"\":\"\"pro\"\"}\""
        );
    }
}
