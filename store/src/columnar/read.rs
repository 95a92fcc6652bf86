//! [`ColdFile`]: an opened cold-tier file (metadata parsed and checked
//! once, the file held open) and the one primitive every scan uses: read
//! some columns of one row group, optionally only some rows.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::arrow::ProjectionMask;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::statistics::Statistics;

use crate::query::error::QueryError;
use crate::query::ir::FieldPath;
use crate::OBJECT_ID_BYTES;

use super::{
    field_column_name, FileSummary, COL_APP, COL_DOC, COL_HOST, COL_ID, COL_RECV, COL_TS, COL_TYPE,
    ENVELOPE_EXACT, FORMAT_VERSION, FORMAT_VERSION_1, MAX_FIELD_DEPTH, META_ENVELOPE,
    META_FIELD_COLUMNS, META_FORMAT,
};

/// What every scan needs besides the files: checked between row groups.
#[derive(Debug, Clone, Copy)]
pub struct ScanLimits<'a> {
    /// Set when the back end is cancelled: the scan ends with
    /// [`QueryError::Cancelled`].
    pub cancelled: &'a AtomicBool,
    /// Past it the scan ends with [`QueryError::Timeout`].
    pub deadline: Instant,
    /// The budget the deadline came from, for the timeout's message.
    pub limit_ms: u64,
}

impl ScanLimits<'_> {
    /// `Err` when the scan must stop now.
    pub(crate) fn check(&self) -> Result<(), QueryError> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(QueryError::Cancelled);
        }
        if Instant::now() >= self.deadline {
            return Err(QueryError::Timeout {
                limit_ms: self.limit_ms,
            });
        }
        Ok(())
    }
}

/// What the metadata says of one row group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupInfo {
    /// Rows in it.
    pub rows: usize,
    /// Smallest and largest `ts`.
    pub ts_min: i64,
    pub ts_max: i64,
    /// Smallest and largest `_id` bytes, when the statistics have them.
    pub ids: Option<([u8; OBJECT_ID_BYTES], [u8; OBJECT_ID_BYTES])>,
}

/// An opened cold-tier file: its metadata parsed and checked, the file kept
/// open (so a merge that unlinks it does not break a running query). Safe
/// to share between threads: reads are positional, no shared offset.
#[derive(Debug)]
pub struct ColdFile {
    path: PathBuf,
    source: Source,
    metadata: ArrowReaderMetadata,
    summary: FileSummary,
    /// Column name → root (= leaf) index.
    columns: HashMap<String, usize>,
    /// Root index → column name.
    names: Vec<String>,
    groups: Vec<GroupInfo>,
    /// Whether `_id`, `ts`, `recv` were checked to be the documents' own
    /// (`helios.envelope_columns`).
    envelope_exact: bool,
    /// Whether `doc` holds templates (format 2) rather than whole
    /// documents (format 1).
    templated: bool,
}

impl ColdFile {
    /// Opens `path`, reads and checks its footer (format version, columns
    /// and their types, field column list, `ts` statistics and order).
    pub fn open(path: &Path) -> Result<Self, QueryError> {
        let file = File::open(path).map_err(|e| store(path, "opening", e))?;
        let len = file
            .metadata()
            .map_err(|e| store(path, "reading the size", e))?
            .len();
        let source = Source {
            file: Arc::new(file),
            len,
        };
        let options = ArrowReaderOptions::new().with_page_index(true);
        let metadata = ArrowReaderMetadata::load(&source, options)
            .map_err(|e| store(path, "reading the footer", e))?;
        let (columns, templated) = check_schema(path, &metadata)?;
        let envelope_exact = metadata
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|pairs| pairs.iter().find(|pair| pair.key == META_ENVELOPE))
            .and_then(|pair| pair.value.as_deref())
            == Some(ENVELOPE_EXACT);
        let groups = group_infos(path, &metadata, &columns)?;
        let rows: usize = groups.iter().map(|g| g.rows).sum();
        let (Some(first), Some(last)) = (groups.first(), groups.last()) else {
            return Err(corrupt(path, "the file has no row groups"));
        };
        let summary = FileSummary {
            rows: rows as u64,
            ts_min_ms: first.ts_min,
            ts_max_ms: last.ts_max,
            bytes: len,
        };
        let mut names = vec![String::new(); columns.len()];
        for (name, index) in &columns {
            names[*index] = name.clone();
        }
        Ok(Self {
            path: path.to_owned(),
            source,
            metadata,
            summary,
            columns,
            names,
            groups,
            envelope_exact,
            templated,
        })
    }

    /// What the file holds.
    pub fn summary(&self) -> &FileSummary {
        &self.summary
    }

    /// Where it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn groups(&self) -> &[GroupInfo] {
        &self.groups
    }

    /// The root index of a fixed column (`COL_*`), checked at open.
    pub(crate) fn column(&self, name: &str) -> usize {
        self.columns[name]
    }

    /// Compressed bytes per column (name, bytes), in column order: what
    /// the file's disk goes to.
    pub fn column_bytes(&self) -> Vec<(String, u64)> {
        let groups = self.metadata.metadata().row_groups();
        self.names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let bytes = groups
                    .iter()
                    .map(|g| u64::try_from(g.column(index).compressed_size()).unwrap_or(0))
                    .sum();
                (name.clone(), bytes)
            })
            .collect()
    }

    /// Whether conditions on `_id`, `ts` and `recv` may be decided from
    /// their columns (the writer checked them against every document).
    pub(crate) fn envelope_exact(&self) -> bool {
        self.envelope_exact
    }

    /// Whether `doc` holds document templates (format 2): documents are
    /// read through `exec`'s expansion, never from `doc` alone.
    pub(crate) fn templated(&self) -> bool {
        self.templated
    }

    /// Root indices of the columns a template may name: all but `host`
    /// and `doc`.
    pub(crate) fn template_columns(&self) -> Vec<usize> {
        (0..self.names.len())
            .filter(|&index| {
                let name = self.names[index].as_str();
                name != COL_HOST && name != COL_DOC
            })
            .collect()
    }

    /// The name of the column at root index `index`.
    pub(crate) fn column_name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// The field column of `path` in this file, if it has one.
    pub(crate) fn field_column(&self, path: &FieldPath) -> Option<usize> {
        if path.segments().len() > MAX_FIELD_DEPTH {
            return None;
        }
        self.columns
            .get(&field_column_name(&path.dotted()))
            .copied()
    }

    /// The columns `columns` (root indices) of row group `group`, only the
    /// rows `selection` picks (all when `None`); `None` when no row is
    /// selected. The batch's columns are in file order; find them by name.
    pub(crate) fn read(
        &self,
        group: usize,
        columns: &[usize],
        selection: Option<RowSelection>,
    ) -> Result<Option<RecordBatch>, QueryError> {
        let rows = self.groups[group].rows;
        let mask = ProjectionMask::roots(self.metadata.parquet_schema(), columns.iter().copied());
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.source.clone(),
            self.metadata.clone(),
        )
        .with_projection(mask)
        .with_row_groups(vec![group])
        // One batch per row group: a row group's dictionary is one
        // array, so per-entry work is done once per row group.
        .with_batch_size(rows.max(1));
        if let Some(selection) = selection {
            builder = builder.with_row_selection(selection);
        }
        let reader = builder
            .build()
            .map_err(|e| store(&self.path, "starting a read", e))?;
        let mut batches = Vec::with_capacity(1);
        for batch in reader {
            batches.push(batch.map_err(|e| store(&self.path, "reading a row group", e))?);
        }
        match batches.len() {
            0 => Ok(None),
            1 => Ok(batches.pop()),
            n => Err(corrupt(
                &self.path,
                &format!("row group {group} read as {n} batches, expected one"),
            )),
        }
    }

    /// A [`QueryError::Corrupt`] about this file.
    pub(crate) fn corrupt(&self, reason: &str) -> QueryError {
        corrupt(&self.path, reason)
    }
}

/// Checks the footer against format 2 or 1 (the same columns; `doc`
/// holds templates in 2); returns column name → index and whether `doc`
/// holds templates.
fn check_schema(
    path: &Path,
    metadata: &ArrowReaderMetadata,
) -> Result<(HashMap<String, usize>, bool), QueryError> {
    let kv = metadata.metadata().file_metadata().key_value_metadata();
    let value_of = |key: &str| {
        kv.and_then(|pairs| pairs.iter().find(|pair| pair.key == key))
            .and_then(|pair| pair.value.clone())
    };
    let templated = match value_of(META_FORMAT) {
        Some(version) if version == FORMAT_VERSION => true,
        Some(version) if version == FORMAT_VERSION_1 => false,
        other => {
            return Err(corrupt(
                path,
                &format!(
                    "{META_FORMAT} is {other:?}, this build reads {FORMAT_VERSION:?} and \
                     {FORMAT_VERSION_1:?}"
                ),
            ))
        }
    };
    let fields: Vec<String> = value_of(META_FIELD_COLUMNS)
        .and_then(|text| serde_json::from_str(&text).ok())
        .ok_or_else(|| {
            corrupt(
                path,
                &format!("{META_FIELD_COLUMNS} is missing or not a list"),
            )
        })?;
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let width = i32::try_from(OBJECT_ID_BYTES).unwrap_or(12);
    let mut expected = vec![
        (COL_ID.to_owned(), DataType::FixedSizeBinary(width)),
        (COL_TS.to_owned(), DataType::Int64),
        (COL_RECV.to_owned(), DataType::Int64),
        (COL_TYPE.to_owned(), dictionary.clone()),
        (COL_APP.to_owned(), dictionary.clone()),
        (COL_HOST.to_owned(), dictionary.clone()),
        (COL_DOC.to_owned(), DataType::Utf8),
    ];
    for dotted in &fields {
        if FieldPath::parse(dotted).is_err() {
            return Err(corrupt(
                path,
                &format!("field column `{dotted}` is not a path"),
            ));
        }
        expected.push((field_column_name(dotted), dictionary.clone()));
    }
    let schema = metadata.schema();
    if schema.fields().len() != expected.len()
        || metadata.parquet_schema().num_columns() != expected.len()
    {
        return Err(corrupt(
            path,
            &format!(
                "{} columns, expected {}",
                schema.fields().len(),
                expected.len()
            ),
        ));
    }
    let mut columns = HashMap::with_capacity(expected.len());
    for (index, ((name, data_type), field)) in expected.into_iter().zip(schema.fields()).enumerate()
    {
        if field.name() != &name || field.data_type() != &data_type {
            return Err(corrupt(
                path,
                &format!(
                    "column {index} is `{}` {}, expected `{name}` {data_type}",
                    field.name(),
                    field.data_type()
                ),
            ));
        }
        columns.insert(name, index);
    }
    Ok((columns, templated))
}

fn group_infos(
    path: &Path,
    metadata: &ArrowReaderMetadata,
    columns: &HashMap<String, usize>,
) -> Result<Vec<GroupInfo>, QueryError> {
    let ts_column = columns[COL_TS];
    let id_column = columns[COL_ID];
    let mut groups = Vec::with_capacity(metadata.metadata().num_row_groups());
    for (index, group) in metadata.metadata().row_groups().iter().enumerate() {
        let rows = usize::try_from(group.num_rows()).unwrap_or(0);
        let ts = match group.column(ts_column).statistics() {
            Some(Statistics::Int64(stats)) => {
                stats.min_opt().copied().zip(stats.max_opt().copied())
            }
            _ => None,
        };
        let Some((ts_min, ts_max)) = ts else {
            return Err(corrupt(
                path,
                &format!("row group {index} has no ts statistics"),
            ));
        };
        let ids = group.column(id_column).statistics().and_then(|stats| {
            let min: [u8; OBJECT_ID_BYTES] = stats.min_bytes_opt()?.try_into().ok()?;
            let max: [u8; OBJECT_ID_BYTES] = stats.max_bytes_opt()?.try_into().ok()?;
            Some((min, max))
        });
        if rows == 0 || ts_min > ts_max {
            return Err(corrupt(
                path,
                &format!("row group {index} has {rows} rows, ts {ts_min}..={ts_max}"),
            ));
        }
        if let Some(previous) = groups.last().map(|g: &GroupInfo| g.ts_max) {
            if previous > ts_min {
                return Err(corrupt(
                    path,
                    &format!("row group {index} starts before the previous one ends (ts order)"),
                ));
            }
        }
        groups.push(GroupInfo {
            rows,
            ts_min,
            ts_max,
            ids,
        });
    }
    Ok(groups)
}

fn store(path: &Path, what: &str, error: impl Into<crate::BoxError>) -> QueryError {
    QueryError::store(format!("{what} cold file {}", path.display()), error)
}

fn corrupt(path: &Path, reason: &str) -> QueryError {
    QueryError::Corrupt {
        context: format!("cold file {}", path.display()),
        reason: reason.to_owned(),
    }
}

/// The open file as Parquet reads it: positional reads (`pread`), so
/// concurrent scans of one [`ColdFile`] never share a file offset
/// (parquet's own `File` reader seeks a shared descriptor).
#[derive(Debug, Clone)]
struct Source {
    file: Arc<File>,
    len: u64,
}

impl Length for Source {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Source {
    type T = BufReader<PositionalRead>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(BufReader::new(PositionalRead {
            file: Arc::clone(&self.file),
            at: start,
        }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let mut buffer = vec![0; length];
        self.file.read_exact_at(&mut buffer, start)?;
        Ok(buffer.into())
    }
}

/// A reader at its own offset into a shared file.
struct PositionalRead {
    file: Arc<File>,
    at: u64,
}

impl Read for PositionalRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}
