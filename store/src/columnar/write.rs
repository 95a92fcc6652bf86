//! [`write_file`]: one partition's rows → one Parquet file (format in the
//! module docs), published atomically.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{ArrayBuilder, Int32Builder, StringBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, FixedSizeBinaryArray, Int64Array, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::StoreError;
use crate::model::{rfc3339_utc_ms_ascii, RFC3339_UTC_MS_BYTES};
use crate::{OBJECT_ID_BYTES, OBJECT_ID_HEX_CHARS};

use super::json::{self, Census, Columns, Nodes};
use super::template;
use super::{
    field_column_name, store_error, ColdRow, FileSummary, WriteOptions, COL_APP, COL_DOC, COL_HOST,
    COL_ID, COL_RECV, COL_TS, COL_TYPE, ENVELOPE_EXACT, FIELD_SHARE_PERCENT, FORMAT_VERSION,
    FORMAT_VERSION_1, MAX_FIELD_COLUMNS, MAX_ROW_GROUP_ROWS, META_ENVELOPE, META_FIELD_COLUMNS,
    META_FORMAT,
};

/// Sorts `rows` by `(ts, _id)` and writes them to `path` atomically: a
/// temporary name in the same directory, fsync, rename, fsync of the
/// directory. On error nothing is left at `path` (an existing file there is
/// untouched) and the temporary file is removed. `rows` must not be empty
/// and every `doc` must be a JSON object.
pub fn write_file(
    path: &Path,
    rows: &mut [ColdRow],
    options: &WriteOptions,
) -> Result<FileSummary, StoreError> {
    check_options(path, options)?;
    if rows.is_empty() {
        return Err(store_error(
            path,
            "writing a cold file",
            "no rows: a cold file holds at least one event",
        ));
    }
    rows.sort_unstable_by_key(|row| (row.ts_ms, row.id));
    let (fields, envelope_exact) = choose_field_columns(path, rows, options)?;
    let temp = temp_path(path)?;
    let written = write_temp(&temp, rows, &fields, envelope_exact, options)
        .and_then(|()| publish(&temp, path));
    if let Err(error) = written {
        // Best effort: the temporary name is never read, only wasted space.
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    let bytes = fs::metadata(path)
        .map_err(|e| store_error(path, "reading the written file's size", e))?
        .len();
    let summary = FileSummary {
        rows: rows.len() as u64,
        ts_min_ms: rows[0].ts_ms,
        ts_max_ms: rows[rows.len() - 1].ts_ms,
        bytes,
    };
    debug_assert!(summary.ts_min_ms <= summary.ts_max_ms);
    Ok(summary)
}

fn check_options(path: &Path, options: &WriteOptions) -> Result<(), StoreError> {
    let problem = if !(1..=MAX_ROW_GROUP_ROWS).contains(&options.row_group_rows) {
        Some(format!(
            "row_group_rows must be 1..={MAX_ROW_GROUP_ROWS}, got {}",
            options.row_group_rows
        ))
    } else if options.row_group_doc_bytes == 0 {
        Some("row_group_doc_bytes must be at least 1".to_owned())
    } else if !(1..=22).contains(&options.zstd_level) {
        Some(format!(
            "zstd_level must be 1..=22, got {}",
            options.zstd_level
        ))
    } else if options.max_field_columns > MAX_FIELD_COLUMNS {
        Some(format!(
            "max_field_columns must be 0..={MAX_FIELD_COLUMNS}, got {}",
            options.max_field_columns
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(store_error(path, "checking the write options", problem)),
        None => Ok(()),
    }
}

/// The field columns of a file (dotted paths, in column order): see the
/// module docs for the rule.
///
/// Also checks that every document's `_id`, `ts` and `recv` are the text
/// its row's columns give (the second value): only then may queries
/// decide conditions on them from the columns.
fn choose_field_columns(
    path: &Path,
    rows: &[ColdRow],
    options: &WriteOptions,
) -> Result<(Vec<String>, bool), StoreError> {
    let max_columns = options.max_field_columns;
    if max_columns == 0 {
        return Ok((Vec::new(), false));
    }
    let mut census = Census::default();
    census.envelope_exact = true;
    // Per event type: its rows and, per path id, the rows holding it.
    let mut per_type: HashMap<&str, (u64, Vec<u64>)> = HashMap::new();
    for row in rows {
        census.found.clear();
        if census.envelope_exact {
            expect_envelope(&mut census, &EnvelopeText::of(row));
        }
        json::census(&row.doc, &mut census).map_err(|e| not_an_object(path, row, e))?;
        if census.seen != 0b111 {
            census.envelope_exact = false;
        }
        let (type_rows, counts) = per_type.entry(row.event_type.as_str()).or_default();
        *type_rows += 1;
        if counts.len() < census.paths.len() {
            counts.resize(census.paths.len(), 0);
        }
        for &id in &census.found {
            counts[id] += 1;
        }
    }
    let mut totals = vec![0u64; census.paths.len()];
    let mut qualified = vec![false; census.paths.len()];
    for (type_rows, counts) in per_type.values() {
        for (id, &n) in counts.iter().enumerate() {
            totals[id] += n;
            if n > 0 && n * 100 >= type_rows * FIELD_SHARE_PERCENT {
                qualified[id] = true;
            }
        }
    }
    // A column holds values only: not a node that is an object in some
    // row, nor one below an array.
    let usable = |id: usize| !census.is_object_id(id) && !below_array(&census.paths[id], &census);
    // The operator's pins first, in their order, where this file has them.
    let pinned: Vec<usize> = options
        .pinned_fields
        .iter()
        .filter_map(|dotted| census.id(dotted))
        .filter(|&id| totals[id] > 0 && usable(id))
        .collect();
    let mut shared: Vec<(&str, u64)> = (0..census.paths.len())
        .filter(|&id| qualified[id] && usable(id) && !pinned.contains(&id))
        .map(|id| (census.paths[id].as_str(), totals[id]))
        .collect();
    shared.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let fields = pinned
        .iter()
        .map(|&id| census.paths[id].as_str())
        .chain(shared.into_iter().map(|(dotted, _)| dotted))
        .take(max_columns)
        .map(str::to_owned)
        .collect();
    Ok((fields, census.envelope_exact))
}

/// The texts a row's `_id`, `ts` and `recv` columns give in a document
/// (`None`: a time outside the RFC 3339 range, which no document holds),
/// formatted once per row and without allocating.
struct EnvelopeText {
    id: [u8; OBJECT_ID_HEX_CHARS],
    ts: Option<[u8; RFC3339_UTC_MS_BYTES]>,
    recv: Option<[u8; RFC3339_UTC_MS_BYTES]>,
}

impl EnvelopeText {
    fn of(row: &ColdRow) -> Self {
        Self {
            id: row.id.hex_bytes(),
            ts: rfc3339_utc_ms_ascii(row.ts_ms),
            recv: rfc3339_utc_ms_ascii(row.recv_ms),
        }
    }

    /// Column `column`'s text (0 `_id`, 1 `ts`, 2 `recv`), unquoted.
    fn get(&self, column: usize) -> Option<&str> {
        let bytes: &[u8] = match column {
            0 => &self.id,
            1 => self.ts.as_ref()?,
            2 => self.recv.as_ref()?,
            _ => return None,
        };
        // Hex digits and RFC 3339 separators: ASCII.
        std::str::from_utf8(bytes).ok()
    }
}

/// Sets the texts `row`'s document must hold for `_id`, `ts`, `recv`.
fn expect_envelope(census: &mut Census, texts: &EnvelopeText) {
    census.seen = 0;
    for (column, expected) in census.expected.iter_mut().enumerate() {
        expected.clear();
        match texts.get(column) {
            Some(text) => expected.push_str(text),
            // No document holds an unformattable time: the check fails.
            None => census.envelope_exact = false,
        }
    }
}

/// Whether a strict prefix of `dotted` (by segments) is an array in some
/// document.
fn below_array(dotted: &str, census: &Census) -> bool {
    dotted
        .match_indices('.')
        .any(|(at, _)| census.is_array(&dotted[..at]))
}

/// A member name usable as one segment of a dotted `FieldPath` (the query
/// layer's rules, plus no `.`, which would make the dotted form ambiguous).
pub(super) fn segment_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('.')
        && !name.starts_with('$')
        && !name.bytes().all(|b| b.is_ascii_digit())
        && !name.chars().any(char::is_control)
}

fn not_an_object(path: &Path, row: &ColdRow, error: serde_json::Error) -> StoreError {
    store_error(
        path,
        format!("event {}: doc is not a JSON object", row.id),
        error,
    )
}

/// The Arrow schema of a file with these field columns.
fn schema(fields: &[String]) -> SchemaRef {
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let width = i32::try_from(OBJECT_ID_BYTES).unwrap_or(12);
    let mut columns = vec![
        Field::new(COL_ID, DataType::FixedSizeBinary(width), false),
        Field::new(COL_TS, DataType::Int64, false),
        Field::new(COL_RECV, DataType::Int64, false),
        Field::new(COL_TYPE, dictionary.clone(), false),
        Field::new(COL_APP, dictionary.clone(), true),
        Field::new(COL_HOST, dictionary.clone(), true),
        Field::new(COL_DOC, DataType::Utf8, false),
    ];
    for dotted in fields {
        columns.push(Field::new(
            field_column_name(dotted),
            dictionary.clone(),
            true,
        ));
    }
    Arc::new(Schema::new(columns))
}

fn properties(
    path: &Path,
    fields: &[String],
    envelope_exact: bool,
    options: &WriteOptions,
) -> Result<WriterProperties, StoreError> {
    let level = ZstdLevel::try_new(options.zstd_level)
        .map_err(|e| store_error(path, "checking the zstd level", e))?;
    let field_list = serde_json::to_string(fields)
        .map_err(|e| store_error(path, "listing the field columns", e))?;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_dictionary_enabled(true)
        .set_max_row_group_size(options.row_group_rows)
        // Statistics only where a reader prunes by them (below).
        .set_statistics_enabled(EnabledStatistics::None)
        .set_key_value_metadata(Some(vec![
            KeyValue::new(
                META_FORMAT.to_owned(),
                if whole_documents() {
                    FORMAT_VERSION_1
                } else {
                    FORMAT_VERSION
                }
                .to_owned(),
            ),
            KeyValue::new(META_FIELD_COLUMNS.to_owned(), field_list),
            KeyValue::new(
                META_ENVELOPE.to_owned(),
                if envelope_exact {
                    ENVELOPE_EXACT
                } else {
                    "unchecked"
                }
                .to_owned(),
            ),
        ]));
    // Readers skip row groups (and pages) by `ts` and `_id` ranges; `recv`
    // is as cheap (integers). Min/max of the other columns, every template
    // and field text compared per row, were pure cost: nothing reads them.
    for column in [COL_ID, COL_TS, COL_RECV] {
        builder = builder
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::Page);
    }
    // Unique per row: a dictionary would only be built and dropped.
    for column in [COL_ID, COL_TS, COL_RECV, COL_DOC] {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    // Ids are a creation second, a node and a counter: split into byte
    // streams, each compresses well (a million ids of one client: 1.4 MB
    // plain + zstd, 0.13 MB split + zstd).
    builder = builder.set_column_encoding(ColumnPath::from(COL_ID), Encoding::BYTE_STREAM_SPLIT);
    // Sorted (ts) or nearly sorted (recv) integers: deltas pack tightly.
    for column in [COL_TS, COL_RECV] {
        builder =
            builder.set_column_encoding(ColumnPath::from(column), Encoding::DELTA_BINARY_PACKED);
    }
    Ok(builder.build())
}

#[cfg(test)]
thread_local! {
    /// Test hook: fail the write after this many row groups (crash
    /// safety). Per thread, so tests running in parallel do not see it.
    pub(super) static FAIL_AFTER_ROW_GROUPS: std::cell::Cell<usize> =
        const { std::cell::Cell::new(usize::MAX) };
}

#[cfg(test)]
thread_local! {
    /// Test hook: write format 1 (whole documents in `doc`), which this
    /// build no longer writes but still reads.
    pub(super) static WRITE_FORMAT_1: std::cell::Cell<bool> =
        const { std::cell::Cell::new(false) };
}

/// Whether this write keeps whole documents (format 1: test hook only).
fn whole_documents() -> bool {
    #[cfg(test)]
    if WRITE_FORMAT_1.with(std::cell::Cell::get) {
        return true;
    }
    false
}

fn write_temp(
    temp: &Path,
    rows: &[ColdRow],
    fields: &[String],
    envelope_exact: bool,
    options: &WriteOptions,
) -> Result<(), StoreError> {
    let schema = schema(fields);
    let props = properties(temp, fields, envelope_exact, options)?;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)
        .map_err(|e| store_error(temp, "creating the temporary file", e))?;
    let mut writer = ArrowWriter::try_new(&file, schema.clone(), Some(props))
        .map_err(|e| store_error(temp, "starting the Parquet writer", e))?;
    let columns = Columns::new(fields);
    let chunks = RowGroups {
        rows,
        max_rows: options.row_group_rows,
        max_doc_bytes: options.row_group_doc_bytes,
    };
    for (index, chunk) in chunks.enumerate() {
        #[cfg(test)]
        if index >= FAIL_AFTER_ROW_GROUPS.with(std::cell::Cell::get) {
            return Err(store_error(temp, "test hook", "injected failure"));
        }
        let batch = row_group_batch(temp, &schema, chunk, &columns, fields.len())?;
        writer
            .write(&batch)
            .and_then(|()| writer.flush())
            .map_err(|e| store_error(temp, format!("writing row group {index}"), e))?;
    }
    writer
        .close()
        .map_err(|e| store_error(temp, "finishing the Parquet file", e))?;
    file.sync_all()
        .map_err(|e| store_error(temp, "syncing the file", e))
}

/// `rows` cut into row groups of at most `max_rows` rows and, past their
/// first row, `max_doc_bytes` of documents.
struct RowGroups<'a> {
    rows: &'a [ColdRow],
    max_rows: usize,
    max_doc_bytes: usize,
}

impl<'a> Iterator for RowGroups<'a> {
    type Item = &'a [ColdRow];

    fn next(&mut self) -> Option<Self::Item> {
        let first = self.rows.first()?;
        let mut bytes = first.doc.len();
        let mut end = 1;
        while end < self.rows.len().min(self.max_rows) {
            bytes = bytes.saturating_add(self.rows[end].doc.len());
            if bytes > self.max_doc_bytes {
                break;
            }
            end += 1;
        }
        let (group, rest) = self.rows.split_at(end);
        self.rows = rest;
        Some(group)
    }
}

/// The columns of one row group.
fn row_group_batch(
    path: &Path,
    schema: &SchemaRef,
    rows: &[ColdRow],
    fields: &Columns,
    field_count: usize,
) -> Result<RecordBatch, StoreError> {
    let ids = FixedSizeBinaryArray::try_from_iter(rows.iter().map(|r| r.id.as_bytes()))
        .map_err(|e| store_error(path, "building the _id column", e))?;
    let ts = Int64Array::from_iter_values(rows.iter().map(|r| r.ts_ms));
    let recv = Int64Array::from_iter_values(rows.iter().map(|r| r.recv_ms));
    let dictionary = |texts: &mut dyn Iterator<Item = Option<&str>>| {
        let mut column = DictionaryColumn::with_capacity(rows.len());
        for text in texts {
            column
                .append(text)
                .map_err(|e| store_error(path, "building a dictionary column", e))?;
        }
        column.finish(path)
    };
    let types = dictionary(&mut rows.iter().map(|r| Some(r.event_type.as_str())))?;
    let apps = dictionary(&mut rows.iter().map(|r| r.app.as_deref()))?;
    let hosts = dictionary(&mut rows.iter().map(|r| r.host.as_deref()))?;
    let mut builders: Vec<DictionaryColumn> = (0..field_count)
        .map(|_| DictionaryColumn::with_capacity(rows.len()))
        .collect();
    let doc_bytes: usize = rows.iter().map(|r| r.doc.len()).sum();
    let mut docs = StringBuilder::with_capacity(rows.len(), doc_bytes);
    let mut nodes = Nodes::new(field_count);
    let mut templates = Templates::default();
    for row in rows {
        json::extract(&row.doc, fields, &mut nodes).map_err(|e| not_an_object(path, row, e))?;
        if whole_documents() {
            docs.append_value(&row.doc);
        } else {
            docs.append_value(templates.template(row, &EnvelopeText::of(row), &nodes));
        }
        for (index, builder) in builders.iter_mut().enumerate() {
            builder
                .append(nodes.get(index))
                .map_err(|e| store_error(path, "building a field column", e))?;
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(ids),
        Arc::new(ts),
        Arc::new(recv),
        Arc::new(types),
        Arc::new(apps),
        Arc::new(hosts),
        Arc::new(docs.finish()),
    ];
    for builder in builders {
        columns.push(Arc::new(builder.finish(path)?));
    }
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| store_error(path, "assembling a row group", e))
}

/// A dictionary column of one row group built without deduplicating:
/// each present row's key points at its own copy of the text. The Parquet
/// writer interns the values into the column chunk's dictionary page
/// itself, from the texts the keys point at, so the file is the same as
/// from a deduplicated array; hashing every text here as well (Arrow's
/// dictionary builder) was a second interning per value (~7 % of a
/// compaction's samples, measured).
struct DictionaryColumn {
    keys: Int32Builder,
    values: StringBuilder,
}

impl DictionaryColumn {
    fn with_capacity(rows: usize) -> Self {
        Self {
            keys: Int32Builder::with_capacity(rows),
            values: StringBuilder::with_capacity(rows, rows.saturating_mul(16)),
        }
    }

    /// Errors only past `i32::MAX` values (a row group holds at most
    /// `MAX_ROW_GROUP_ROWS`, 2^20).
    fn append(&mut self, text: Option<&str>) -> Result<(), ArrowError> {
        match text {
            Some(text) => {
                let key = i32::try_from(self.values.len())
                    .map_err(|_| ArrowError::DictionaryKeyOverflowError)?;
                self.keys.append_value(key);
                self.values.append_value(text);
            }
            None => self.keys.append_null(),
        }
        Ok(())
    }

    fn finish(mut self, path: &Path) -> Result<DictionaryArray<Int32Type>, StoreError> {
        DictionaryArray::try_new(self.keys.finish(), Arc::new(self.values.finish()))
            .map_err(|e| store_error(path, "building a dictionary column", e))
    }
}

/// Root index of the first field column (after `_id`, `ts`, `recv`,
/// `type`, `app`, `host`, `doc`).
const FIRST_FIELD_COLUMN: usize = 7;

/// Builds document templates (format version 2, see `template`), with
/// buffers reused from row to row.
#[derive(Default)]
struct Templates {
    /// `(start, end, column)`: the document's byte ranges to cut.
    cuts: Vec<(usize, usize, usize)>,
    rendered: String,
    template: String,
    /// The expansion of `template` (debug builds' check).
    #[cfg(debug_assertions)]
    check: String,
}

impl Templates {
    /// The template of `row`'s document, whose column nodes `nodes` holds
    /// (from `json::extract`): a value is cut out only where its raw text
    /// is exactly what the column renders, and the template is the whole
    /// document if expanding it would not give the document back (see
    /// below for how that is checked).
    fn template(&mut self, row: &ColdRow, texts: &EnvelopeText, nodes: &Nodes) -> &str {
        self.cuts.clear();
        let spans = nodes.envelope.iter().copied().enumerate();
        let fields = nodes
            .spans
            .iter()
            .copied()
            .enumerate()
            .map(|(index, span)| (FIRST_FIELD_COLUMN + index, span));
        for (column, span) in spans.chain(fields) {
            let Some((start, end)) = span else {
                continue;
            };
            self.rendered.clear();
            let same = render_row_value(row, texts, nodes, column, &mut self.rendered).is_ok()
                && row.doc.get(start..end) == Some(self.rendered.as_str());
            if same {
                self.cuts.push((start, end, column));
            }
        }
        self.cuts.sort_unstable();
        self.template.clear();
        template::build(&row.doc, &self.cuts, &mut self.template);
        // Expanding the template gives the document back when the cuts are
        // disjoint (one per column: a column has one span) and the
        // document holds no marker start byte (so the reader finds exactly
        // the markers built here), each cut's text having been compared
        // with its column's rendering above. Checking that is one memchr
        // over the document; expanding every template was ~4 % of a
        // compaction's samples. Debug builds expand as well.
        let disjoint = self.cuts.windows(2).all(|pair| pair[0].1 <= pair[1].0);
        let expands = disjoint && !row.doc.as_bytes().contains(&template::MARK_START);
        #[cfg(debug_assertions)]
        assert!(
            !expands || self.expands_to(&row.doc),
            "template of {} does not expand to it",
            row.id
        );
        if !expands {
            // Never expected (the cuts are the document's own distinct
            // values, and JSON text holds no raw control byte); the whole
            // document is correct.
            debug_assert!(false, "template of {} would not expand to it", row.id);
            self.template.clear();
            self.template.push_str(&row.doc);
        }
        &self.template
    }
}

impl Templates {
    /// Whether the template just built expands to `doc`, reading each
    /// marker back as a reader does and putting the cut text there (each
    /// cut was compared with its column's rendering when chosen).
    #[cfg(debug_assertions)]
    fn expands_to(&mut self, doc: &str) -> bool {
        self.check.clear();
        let cuts = &self.cuts;
        let expanded = template::expand(&self.template, &mut self.check, |column, out| {
            let &(start, end, _) = cuts
                .iter()
                .find(|cut| cut.2 == column)
                .ok_or("a marker names no cut column")?;
            out.push_str(&doc[start..end]);
            Ok(())
        });
        expanded.is_ok() && self.check == doc
    }
}

/// Appends the text column `column` gives for `row` in a document (the
/// writer's side of `exec`'s expansion: the same texts from the row).
fn render_row_value(
    row: &ColdRow,
    texts: &EnvelopeText,
    nodes: &Nodes,
    column: usize,
    out: &mut String,
) -> Result<(), String> {
    match column {
        0..=2 => {
            let text = texts.get(column).ok_or("time out of range")?;
            template::push_quoted(text, out);
        }
        3 => template::push_json_string(&row.event_type, out),
        4 => template::push_json_string(row.app.as_deref().ok_or("no app")?, out),
        _ => {
            let text = column
                .checked_sub(FIRST_FIELD_COLUMN)
                .and_then(|index| nodes.get(index))
                .ok_or("no such node")?;
            out.push_str(text);
        }
    }
    Ok(())
}

/// A temporary name beside `path`, unique to this process and call.
fn temp_path(path: &Path) -> Result<PathBuf, StoreError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| store_error(path, "naming the temporary file", "no file name"))?;
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id())))
}

/// Renames `temp` onto `path` and syncs the directory, so the name
/// survives a crash.
fn publish(temp: &Path, path: &Path) -> Result<(), StoreError> {
    fs::rename(temp, path).map_err(|e| store_error(path, "renaming into place", e))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| store_error(path, "syncing the directory", e))
}
