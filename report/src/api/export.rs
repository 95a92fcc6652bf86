//! `GET /api/export`: every selected event as NDJSON or CSV, streamed.
//!
//! A blocking task walks the selection with the query layer's [`Export`]
//! (one short read transaction per [`EXPORT_CHUNK_EVENTS`] events, so
//! SQLite's WAL is never pinned for the length of a download) and hands
//! the response body [`EXPORT_BUFFER_BYTES`] at a time through a small
//! bounded channel: a slow client slows the reads instead of growing memory.

use std::io;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use helios_store::query::{
    Export, ExportRequest, FieldPath, Hit, EXPORT_CHUNK_EVENTS, MAX_EXPORT_EVENTS,
};
use serde_json::Value;
use tokio::sync::mpsc;

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
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(EXPORT_CHANNEL_BUFFERS);
    let shutdown = state.shutdown.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut writer = ChunkWriter {
            tx,
            buf: Vec::new(),
        };
        let export = Export::new(backend.as_ref(), request);
        let ok = match format {
            Format::Ndjson => write_ndjson(export, &mut writer, &shutdown),
            Format::Csv => write_csv(export, &columns, &mut writer, &shutdown),
        };
        if ok {
            writer.flush();
        }
    });
    let body = Body::from_stream(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
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
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    /// Sends the buffer if it is full; false once the client is gone.
    fn maybe_send(&mut self) -> bool {
        if self.buf.len() < EXPORT_BUFFER_BYTES {
            return true;
        }
        self.flush()
    }

    fn flush(&mut self) -> bool {
        if self.buf.is_empty() {
            return true;
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).is_ok()
    }

    /// Ends the body with an error, so the client sees a truncated
    /// transfer rather than a short file that looks complete.
    fn fail(&mut self, error: &dyn std::fmt::Display) {
        tracing::warn!(%error, "export stopped by a store error");
        let _ = self.flush();
        let _ = self
            .tx
            .blocking_send(Err(io::Error::other("export failed")));
    }
}

/// Writes hits until the end, an error, a gone client or shutdown; true if
/// it reached the end.
fn pump(
    export: Export<'_>,
    writer: &mut ChunkWriter,
    shutdown: &tokio::sync::watch::Receiver<bool>,
    mut line: impl FnMut(&Hit, &mut Vec<u8>),
) -> bool {
    for (n, hit) in export.enumerate() {
        // Checked once per read chunk: cheap, and bounds shutdown latency.
        if n % EXPORT_CHUNK_EVENTS == 0 && *shutdown.borrow() {
            writer.fail(&"the server is shutting down");
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
    export: Export<'_>,
    writer: &mut ChunkWriter,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> bool {
    pump(export, writer, shutdown, |hit, out| {
        // Serializing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &hit.doc);
        out.push(b'\n');
    })
}

fn write_csv(
    export: Export<'_>,
    columns: &[String],
    writer: &mut ChunkWriter,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> bool {
    let header: Vec<String> = columns.iter().map(|c| csv_cell(c)).collect();
    writer.buf.extend_from_slice(header.join(",").as_bytes());
    writer.buf.extend_from_slice(b"\r\n");
    let paths: Vec<Vec<&str>> = columns.iter().map(|c| c.split('.').collect()).collect();
    pump(export, writer, shutdown, |hit, out| {
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
