//! The executor: the query IR over cold files, one row group at a time.
//! Each function reads only the columns it needs, skips row groups whose
//! `ts` (or `_id`) statistics rule them out, and checks the scan limits
//! between row groups. Results are partial answers the tiered back end
//! merges with the hot tier's (counts add up; pages merge by `(ts, _id)`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, DictionaryArray, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::RowSelection;
use serde_json::Value;

use crate::query::api::Hit;
use crate::query::error::QueryError;
use crate::query::histogram::{Counts, Plan};
use crate::query::ir::{Cursor, FieldPath, Query, Selection, SortOrder, TimeRange};
use crate::query::project::project;
use crate::{ObjectId, OBJECT_ID_BYTES};

use super::filter::{dictionary, dictionary_values, Held, KeyColumn, Pred, Tri};
use super::json::{pruned, Paths};
use super::read::{ColdFile, GroupInfo, ScanLimits};
use super::template;
use super::{group_node, node_key, COL_APP, COL_DOC, COL_ID, COL_RECV, COL_TS, COL_TYPE};

/// Most threads one aggregation (`types`, `count_into_histogram`,
/// `tally`) scans row groups with: the targets are set on 2 cores, and
/// requests run side by side, so one request takes at most two.
pub const MAX_SCAN_THREADS: usize = 2;

/// Event types in `range` with their counts, over `files`.
pub fn types(
    files: &[Arc<ColdFile>],
    range: TimeRange,
    limits: &ScanLimits<'_>,
) -> Result<HashMap<String, u64>, QueryError> {
    let mut work = Vec::new();
    for file in files {
        for (group, info) in file.groups().iter().enumerate() {
            if overlaps(info, range) {
                work.push((&**file, group));
            }
        }
    }
    let parts = parallel(&work, limits, HashMap::new, |counts, &(file, group)| {
        let info = &file.groups()[group];
        let type_column = file.column(COL_TYPE);
        let inside = range.from_ms <= info.ts_min && info.ts_max < range.to_ms;
        // A row group wholly inside the range needs no `ts` at all.
        let columns = if inside {
            vec![type_column]
        } else {
            vec![file.column(COL_TS), type_column]
        };
        let Some(batch) = file.read(group, &columns, None)? else {
            return Ok(());
        };
        let rows = if inside {
            0..batch.num_rows()
        } else {
            ts_window(ts_values(&batch, file)?, range)
        };
        let types = dictionary(&batch, file, type_column)?;
        let (per_entry, _) = count_keys(types, rows.map(|r| r as u32))?;
        let values = dictionary_values(types)?;
        for (entry, n) in per_entry.into_iter().enumerate() {
            if n > 0 {
                let name = values.value(entry);
                match counts.get_mut(name) {
                    Some(count) => *count += n,
                    None => {
                        counts.insert(name.to_owned(), n);
                    }
                }
            }
        }
        Ok(())
    })?;
    let mut counts: HashMap<String, u64> = HashMap::new();
    for part in parts {
        for (name, n) in part {
            *counts.entry(name).or_default() += n;
        }
    }
    Ok(counts)
}

/// One file of an aggregation: the compiled selection and how the
/// grouped path is read there (its column, or the documents).
struct FileJob<'a> {
    scan: FileScan<'a>,
    key_column: Option<KeyColumn>,
    need: DocNeed,
}

/// The jobs of `files` (a grouped `path`, if any) and their row groups in
/// `select.range`.
fn jobs<'a>(
    files: &'a [Arc<ColdFile>],
    select: &'a Selection,
    path: Option<&FieldPath>,
) -> (Vec<FileJob<'a>>, Vec<(usize, usize)>) {
    let mut jobs = Vec::with_capacity(files.len());
    let mut work = Vec::new();
    for file in files {
        let key_column = path.and_then(|path| KeyColumn::of(file, path));
        let extra: Vec<usize> = key_column.iter().map(|c| c.index).collect();
        let need = if path.is_some() && key_column.is_none() {
            DocNeed::All
        } else {
            DocNeed::None
        };
        let scan = FileScan::new(file, select, &extra);
        work.extend(scan.groups(select.range).map(|group| (jobs.len(), group)));
        jobs.push(FileJob {
            scan,
            key_column,
            need,
        });
    }
    (jobs, work)
}

/// Adds the events of `select` in `files` to `counts` (laid out by
/// `plan`). With `split`, each event also counts in the slot of its value
/// of the path: the series keys are canonical JSON texts (`None`: the
/// field is missing), in slot order; any other value counts as Other.
pub(crate) fn count_into_histogram(
    files: &[Arc<ColdFile>],
    select: &Selection,
    plan: &Plan,
    split: Option<(&FieldPath, &[Option<String>])>,
    counts: &mut Counts,
    limits: &ScanLimits<'_>,
) -> Result<(), QueryError> {
    let Some(buckets) = Buckets::of(plan) else {
        return Ok(());
    };
    let series = split.map(|(_, keys)| SeriesSlots::new(keys));
    let width = series.as_ref().map_or(1, |s| s.other + 1);
    let (jobs, work) = jobs(files, select, split.map(|(path, _)| path));
    let init = || vec![0_u64; buckets.count * width];
    let parts = parallel(&work, limits, init, |local, &(job, group)| {
        let FileJob {
            scan,
            key_column,
            need,
        } = &jobs[job];
        let file = scan.file;
        let Some(selected) = scan.select(group, Window::default(), *need)? else {
            return Ok(());
        };
        let ts = ts_values(&selected.batch, file)?;
        let mut cursor = buckets.cursor();
        match (&series, split) {
            (Some(series), Some((path, _))) => {
                let slots = row_slots(file, &selected, *key_column, path, series)?;
                for (&row, slot) in selected.rows.iter().zip(slots) {
                    if let Some(b) = cursor.index(ts[row]) {
                        local[b * width + slot] += 1;
                    }
                }
            }
            _ => {
                for &row in &selected.rows {
                    if let Some(b) = cursor.index(ts[row]) {
                        local[b] += 1;
                    }
                }
            }
        }
        Ok(())
    })?;
    let mut total = init();
    for part in parts {
        for (sum, n) in total.iter_mut().zip(part) {
            *sum += n;
        }
    }
    for (cell, &n) in total.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let (bucket, slot) = (cell / width, cell % width);
        let start_ms = buckets.start_ms(bucket);
        let series_slot = series
            .as_ref()
            .and_then(|s| (slot < s.other).then_some(slot));
        plan.add(counts, start_ms, series_slot, n);
    }
    Ok(())
}

/// Counts per value of a field (see [`tally`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tally {
    /// Events per value: canonical JSON text of the node, `None` when the
    /// field is missing.
    pub counts: HashMap<Option<String>, u64>,
    /// All selected events.
    pub total: u64,
}

/// Which values of a field one pass of a tally counts: those whose
/// canonical key hashes to `index` modulo `of`, and the missing field in
/// pass 0 only. A field with more distinct values than one request may
/// hold is ranked exactly in `of` passes over the same events, each
/// within the caps: a value's count is whole in the one pass that holds
/// it, so the overall top N is among the passes' own top Ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyShare {
    /// This pass, `0..of`.
    pub index: u64,
    /// How many passes share the values (≥ 1).
    pub of: u64,
}

impl KeyShare {
    /// One pass counting every value.
    pub const ALL: KeyShare = KeyShare { index: 0, of: 1 };

    /// Whether this pass counts `key` (`None`: the field is missing).
    pub fn holds(&self, key: Option<&str>) -> bool {
        debug_assert!(self.index < self.of, "{self:?}");
        if self.of <= 1 {
            return true;
        }
        match key {
            None => self.index == 0,
            Some(key) => {
                use std::hash::{Hash, Hasher};
                // Fixed keys: every pass of one process agrees.
                let mut hasher = std::hash::DefaultHasher::new();
                key.hash(&mut hasher);
                hasher.finish() % self.of == self.index
            }
        }
    }
}

/// A tally being gathered, within its caps.
struct Tallier<'a> {
    present: HashMap<String, u64>,
    missing: u64,
    total: u64,
    key_bytes: usize,
    path: &'a FieldPath,
    max_keys: usize,
    max_key_bytes: usize,
    share: KeyShare,
}

impl<'a> Tallier<'a> {
    fn new(path: &'a FieldPath, max_keys: usize, max_key_bytes: usize, share: KeyShare) -> Self {
        Self {
            present: HashMap::new(),
            missing: 0,
            total: 0,
            key_bytes: 0,
            path,
            max_keys,
            max_key_bytes,
            share,
        }
    }

    /// Adds `n` events with key `key` (looked up without a copy; copied
    /// only when new), if this pass counts it.
    fn add(&mut self, key: &str, n: u64) -> Result<(), QueryError> {
        if let Some(count) = self.present.get_mut(key) {
            *count += n;
            return Ok(());
        }
        if !self.share.holds(Some(key)) {
            return Ok(());
        }
        self.make_room(key.len())?;
        self.present.insert(key.to_owned(), n);
        Ok(())
    }

    fn add_missing(&mut self, n: u64) -> Result<(), QueryError> {
        if !self.share.holds(None) {
            return Ok(());
        }
        if self.missing == 0 && n > 0 {
            self.make_room(0)?;
        }
        self.missing += n;
        Ok(())
    }

    fn make_room(&mut self, len: usize) -> Result<(), QueryError> {
        let keys = self.present.len() + usize::from(self.missing > 0);
        if keys >= self.max_keys || self.key_bytes.saturating_add(len) > self.max_key_bytes {
            return Err(QueryError::TooManyGroups(format!(
                "`{}` has more than {} distinct values (or {} bytes of them) in the \
                 selection: too many for an exact top N; narrow the selection",
                self.path, self.max_keys, self.max_key_bytes
            )));
        }
        self.key_bytes += len;
        Ok(())
    }

    fn merge(&mut self, other: Tallier<'_>) -> Result<(), QueryError> {
        self.total += other.total;
        self.add_missing(other.missing)?;
        for (key, n) in other.present {
            self.add(&key, n)?;
        }
        Ok(())
    }

    fn finish(self) -> Tally {
        let mut counts: HashMap<Option<String>, u64> = self
            .present
            .into_iter()
            .map(|(key, n)| (Some(key), n))
            .collect();
        if self.missing > 0 {
            counts.insert(None, self.missing);
        }
        Tally {
            counts,
            total: self.total,
        }
    }
}

/// The exact count of every value of `path` (the node as one value, arrays
/// not unwound, none traversed on the way) among `select` in `files`.
/// Counts only the values `share` holds. Fails with
/// [`QueryError::TooManyGroups`] past `max_keys` distinct values
/// or `max_key_bytes` of key text: an exact top N would need more memory
/// than a request may hold. (Each of up to [`MAX_SCAN_THREADS`] threads
/// holds up to those caps before the merge.)
pub fn tally(
    files: &[Arc<ColdFile>],
    select: &Selection,
    path: &FieldPath,
    max_keys: usize,
    max_key_bytes: usize,
    share: KeyShare,
    limits: &ScanLimits<'_>,
) -> Result<Tally, QueryError> {
    let (jobs, work) = jobs(files, select, Some(path));
    let group_paths = one_path(path);
    let init = || Tallier::new(path, max_keys, max_key_bytes, share);
    let parts = parallel(&work, limits, init, |tally, &(job, group)| {
        let FileJob {
            scan,
            key_column,
            need,
        } = &jobs[job];
        let file = scan.file;
        let Some(selected) = scan.select(group, Window::default(), *need)? else {
            return Ok(());
        };
        tally.total += selected.rows.len() as u64;
        match key_column {
            Some(column) => {
                let array = dictionary(&selected.batch, file, column.index)?;
                let rows = selected.rows.iter().map(|&r| r as u32);
                let (per_entry, missing) = count_keys(array, rows)?;
                let values = dictionary_values(array)?;
                for (entry, n) in per_entry.into_iter().enumerate() {
                    if n > 0 {
                        match column.held {
                            Held::Json => tally.add(values.value(entry), n)?,
                            Held::Text => tally.add(&column.key(values.value(entry)), n)?,
                        }
                    }
                }
                tally.add_missing(missing)?;
            }
            None => {
                for &row in &selected.rows {
                    let doc = selected.pruned_doc(file, row, &group_paths)?;
                    match group_node(&doc, path.segments()) {
                        Some(node) => tally.add(&node_key(node), 1)?,
                        None => tally.add_missing(1)?,
                    }
                }
            }
        }
        Ok(())
    })?;
    let mut parts = parts.into_iter();
    let mut tally = parts.next().unwrap_or_else(init);
    for part in parts {
        tally.merge(part)?;
    }
    Ok(tally.finish())
}

/// Whether `path` is a column in every one of `files` (so [`tally`] counts
/// it from dictionaries), `None` when there are no files. The rule for
/// which fields become columns is the writer's (`write.rs`); this only
/// reports the outcome, so the UI can say which top-N answers are slow.
pub fn grouped_by_column(files: &[Arc<ColdFile>], path: &FieldPath) -> Option<bool> {
    if files.is_empty() {
        return None;
    }
    Some(files.iter().all(|file| KeyColumn::of(file, path).is_some()))
}

/// Runs `each` on every item of `work` on up to [`MAX_SCAN_THREADS`]
/// threads (this one included), each folding into its own accumulator
/// from `init`; the limits are checked before every item, and the first
/// error stops every thread. Returns the accumulators, to be merged.
fn parallel<W: Sync, T: Send>(
    work: &[W],
    limits: &ScanLimits<'_>,
    init: impl Fn() -> T + Sync,
    each: impl Fn(&mut T, &W) -> Result<(), QueryError> + Sync,
) -> Result<Vec<T>, QueryError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(MAX_SCAN_THREADS)
        .min(work.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let run = || -> Result<T, QueryError> {
        let mut acc = init();
        while !failed.load(Ordering::Relaxed) {
            let Some(item) = work.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let step = limits.check().and_then(|()| each(&mut acc, item));
            if let Err(error) = step {
                failed.store(true, Ordering::Relaxed);
                return Err(error);
            }
        }
        Ok(acc)
    };
    if threads == 1 {
        return Ok(vec![run()?]);
    }
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(run)).collect();
        let mut parts = vec![run()];
        for helper in helpers {
            parts.push(helper.join().unwrap_or_else(|_| {
                Err(QueryError::store(
                    "scanning cold files",
                    "a scan thread panicked",
                ))
            }));
        }
        parts.into_iter().collect()
    })
}

/// Up to `query.effective_limit() + 1` events of `query.select` in
/// `files`, strictly after `query.after` in `query.sort` order, in that
/// order, the projection applied as the SQLite back end applies it
/// (`stored_text` is the stored document when there is no projection).
pub fn page(
    files: &[Arc<ColdFile>],
    query: &Query,
    limits: &ScanLimits<'_>,
) -> Result<Vec<Hit>, QueryError> {
    let limit = query.effective_limit();
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows = ordered_docs(
        files,
        &query.select,
        query.sort,
        query.after,
        limit + 1,
        limits,
    )?;
    rows.into_iter()
        .map(|row| {
            let doc: Value = parse(&row.doc, row.id)?;
            Ok(match &query.projection {
                Some(paths) => Hit {
                    id: row.id,
                    ts_ms: row.ts_ms,
                    doc: project(&doc, paths),
                    stored_text: None,
                },
                None => Hit {
                    id: row.id,
                    ts_ms: row.ts_ms,
                    doc,
                    stored_text: Some(row.doc),
                },
            })
        })
        .collect()
}

/// The event with `_id` `id` in `files` (the first file that has it), its
/// stored text kept. Row groups whose `_id` statistics exclude `id` are
/// not read.
pub fn get(
    files: &[Arc<ColdFile>],
    id: ObjectId,
    limits: &ScanLimits<'_>,
) -> Result<Option<Hit>, QueryError> {
    let wanted = id.as_bytes();
    for file in files {
        for (group, info) in file.groups().iter().enumerate() {
            if let Some((min, max)) = &info.ids {
                if wanted < min || wanted > max {
                    continue;
                }
            }
            limits.check()?;
            let Some(batch) = file.read(group, &[file.column(COL_ID)], None)? else {
                continue;
            };
            let ids = id_values(&batch, file)?;
            let Some(row) = (0..ids.len()).find(|&row| ids.value(row) == wanted) else {
                continue;
            };
            let docs = read_docs(file, group, &[row], &[file.column(COL_TS)])?;
            let ts = ts_values(&docs.batch, file)?[0];
            let text = docs.texts.value(0).to_owned();
            let doc = parse(&text, id)?;
            return Ok(Some(Hit {
                id,
                ts_ms: ts,
                doc,
                stored_text: Some(text),
            }));
        }
    }
    Ok(None)
}

/// The newest `max_docs` documents with `ts` in `range` in `files`, newest
/// first (for field names and suggestions). A document that is not JSON
/// is skipped: samples are best effort, and `page` reports it as corrupt.
pub fn recent_docs(
    files: &[Arc<ColdFile>],
    range: TimeRange,
    max_docs: usize,
    limits: &ScanLimits<'_>,
) -> Result<Vec<Value>, QueryError> {
    if max_docs == 0 {
        return Ok(Vec::new());
    }
    let select = Selection::range(range);
    let rows = ordered_docs(files, &select, SortOrder::Desc, None, max_docs, limits)?;
    Ok(rows
        .into_iter()
        .filter_map(|row| serde_json::from_str(&row.doc).ok())
        .collect())
}

/// The `_id` and app of every row of `file`, in file order (for the sink's
/// deduplication).
pub fn ids(file: &ColdFile) -> Result<Vec<(ObjectId, Option<String>)>, QueryError> {
    let mut out = Vec::with_capacity(usize::try_from(file.summary().rows).unwrap_or(0));
    for group in 0..file.groups().len() {
        out.extend(group_ids(file, group)?);
    }
    Ok(out)
}

/// The `_id` and app of every row of row group `group` of `file` (the
/// sink's uniqueness check reads only the groups whose statistics may
/// hold an id).
pub(crate) fn group_ids(
    file: &ColdFile,
    group: usize,
) -> Result<Vec<(ObjectId, Option<String>)>, QueryError> {
    let app_column = file.column(COL_APP);
    let Some(batch) = file.read(group, &[file.column(COL_ID), app_column], None)? else {
        return Ok(Vec::new());
    };
    let ids = id_values(&batch, file)?;
    let apps = dictionary(&batch, file, app_column)?;
    let values = dictionary_values(apps)?;
    let keys = apps.keys();
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let id =
            ObjectId::from_slice(ids.value(row)).map_err(|e| file.corrupt(&format!("_id: {e}")))?;
        let app = (!keys.is_null(row))
            .then(|| entry(values, keys.value(row)).map(str::to_owned))
            .transpose()
            .map_err(|()| file.corrupt("app key out of range"))?;
        out.push((id, app));
    }
    Ok(out)
}

// ---------------------------------------------------------------------
// Scanning one file.

/// Which documents a scan of a row group must also read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DocNeed {
    /// None (beyond those the filter needs).
    None,
    /// Every selected row's.
    All,
    /// Only the first `n` selected rows (in file order) are wanted, with
    /// their documents.
    First(usize),
    /// Only the last `n`.
    Last(usize),
}

/// Exclusive `(ts, _id)` bounds on the rows of a scan (keyset paging).
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    after: Option<Cursor>,
    before: Option<Cursor>,
}

/// A selection compiled for one file.
struct FileScan<'a> {
    file: &'a ColdFile,
    select: &'a Selection,
    pred: Option<Pred>,
    /// Root indices to read for every row group (sorted, unique).
    columns: Vec<usize>,
    /// What the document leaves read of a document.
    doc_paths: Paths,
}

/// The rows of one row group in the selection.
struct Selected {
    /// The scan's columns, every row of the group.
    batch: RecordBatch,
    /// Selected rows, ascending.
    rows: Vec<usize>,
    /// Documents of (at least) the selected rows, when asked for.
    docs: Option<Docs>,
}

/// Documents of some rows of a row group.
struct Docs {
    rows: Vec<usize>,
    texts: StringArray,
    /// The other columns read with them (same rows).
    batch: RecordBatch,
}

impl Docs {
    fn text(&self, row: usize) -> Option<&str> {
        self.rows
            .binary_search(&row)
            .ok()
            .map(|at| self.texts.value(at))
    }
}

impl Selected {
    fn doc_text(&self, file: &ColdFile, row: usize) -> Result<&str, QueryError> {
        self.docs
            .as_ref()
            .and_then(|docs| docs.text(row))
            .ok_or_else(|| file.corrupt("a selected row's document was not read"))
    }

    /// The document of `row`, reduced to `paths`.
    fn pruned_doc(&self, file: &ColdFile, row: usize, paths: &Paths) -> Result<Value, QueryError> {
        let text = self.doc_text(file, row)?;
        pruned(text, paths).map_err(|e| file.corrupt(&format!("doc is not a JSON object: {e}")))
    }
}

impl<'a> FileScan<'a> {
    fn new(file: &'a ColdFile, select: &'a Selection, extra: &[usize]) -> Self {
        let pred = select.filter.as_ref().map(|f| Pred::compile(file, f));
        let mut columns = vec![file.column(COL_TS)];
        if !select.types.is_empty() {
            columns.push(file.column(COL_TYPE));
        }
        if let Some(pred) = &pred {
            pred.columns(&mut columns);
        }
        columns.extend_from_slice(extra);
        columns.sort_unstable();
        columns.dedup();
        let mut doc_paths = Paths::default();
        if let Some(pred) = &pred {
            pred.doc_paths(&mut doc_paths);
        }
        Self {
            file,
            select,
            pred,
            columns,
            doc_paths,
        }
    }

    /// Row groups that may hold rows in `range`, in file order.
    fn groups(&self, range: TimeRange) -> impl DoubleEndedIterator<Item = usize> + '_ {
        self.file
            .groups()
            .iter()
            .enumerate()
            .filter(move |(_, info)| overlaps(info, range))
            .map(|(group, _)| group)
    }

    /// The selected rows of row group `group` within `window`, and the
    /// documents `need` asks for; `None` when nothing is selected.
    fn select(
        &self,
        group: usize,
        window: Window,
        need: DocNeed,
    ) -> Result<Option<Selected>, QueryError> {
        let file = self.file;
        let Some(batch) = file.read(group, &self.columns, None)? else {
            return Ok(None);
        };
        let ts = ts_values(&batch, file)?;
        let mut bounds = ts_window(ts, self.select.range);
        if window.after.is_some() || window.before.is_some() {
            bounds = self.keyset_window(&batch, bounds, window)?;
        }
        if bounds.is_empty() {
            return Ok(None);
        }
        let type_ok = self.type_mask(&batch)?;
        let masks = match &self.pred {
            Some(pred) => pred.leaf_masks(&batch, file)?,
            None => Vec::new(),
        };
        let mut rows = Vec::with_capacity(bounds.len());
        let mut pending = Vec::new();
        for row in bounds {
            if type_ok.as_ref().is_some_and(|ok| !ok[row]) {
                continue;
            }
            match self.pred.as_ref().map_or(Tri::Yes, |p| p.tri(row, &masks)) {
                Tri::Yes => rows.push(row),
                Tri::Unknown => pending.push(row),
                Tri::No => {}
            }
        }
        let mut docs = None;
        if !pending.is_empty() {
            let pred = self
                .pred
                .as_ref()
                .ok_or_else(|| file.corrupt("undecided rows"))?;
            // With every document wanted, read the decided rows' too, once.
            let read_rows = if need == DocNeed::All {
                merged(&rows, &pending)
            } else {
                pending.clone()
            };
            let read = read_docs(file, group, &read_rows, &[])?;
            for &row in &pending {
                let text = read
                    .text(row)
                    .ok_or_else(|| file.corrupt("document not read"))?;
                let doc = pruned(text, &self.doc_paths)
                    .map_err(|e| file.corrupt(&format!("doc is not a JSON object: {e}")))?;
                if pred.with_doc(row, &masks, &doc)? {
                    rows.push(row);
                }
            }
            rows.sort_unstable();
            if need == DocNeed::All {
                docs = Some(read);
            }
        }
        match need {
            DocNeed::None => {}
            DocNeed::All => {
                if docs.is_none() && !rows.is_empty() {
                    docs = Some(read_docs(file, group, &rows, &[])?);
                }
            }
            DocNeed::First(n) => {
                rows.truncate(n);
            }
            DocNeed::Last(n) => {
                let cut = rows.len().saturating_sub(n);
                rows.drain(..cut);
            }
        }
        if matches!(need, DocNeed::First(_) | DocNeed::Last(_)) && !rows.is_empty() {
            let also = [file.column(COL_ID), file.column(COL_TS)];
            docs = Some(read_docs(file, group, &rows, &also)?);
        }
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(Selected { batch, rows, docs }))
    }

    /// `bounds` narrowed to the rows strictly inside `window` (rows are
    /// sorted by `(ts, _id)`).
    fn keyset_window(
        &self,
        batch: &RecordBatch,
        bounds: std::ops::Range<usize>,
        window: Window,
    ) -> Result<std::ops::Range<usize>, QueryError> {
        let ts = ts_values(batch, self.file)?;
        let ids = id_values(batch, self.file)?;
        let key = |row: usize| (ts[row], ids.value(row));
        let mut start = bounds.start;
        let mut end = bounds.end;
        if let Some(after) = window.after {
            let bound = (after.ts_ms, &after.id.as_bytes()[..]);
            start = start.max(partition(bounds.clone(), |row| key(row) <= bound));
        }
        if let Some(before) = window.before {
            let bound = (before.ts_ms, &before.id.as_bytes()[..]);
            end = end.min(partition(bounds, |row| key(row) < bound));
        }
        Ok(start..end.max(start))
    }

    /// Per row, whether its type is selected (`None`: any type is).
    fn type_mask(&self, batch: &RecordBatch) -> Result<Option<Vec<bool>>, QueryError> {
        if self.select.types.is_empty() {
            return Ok(None);
        }
        let types = dictionary(batch, self.file, self.file.column(COL_TYPE))?;
        let values = dictionary_values(types)?;
        let table: Vec<bool> = (0..values.len())
            .map(|entry| {
                let name = values.value(entry);
                self.select.types.iter().any(|t| t == name)
            })
            .collect();
        let keys = types.keys();
        Ok(Some(
            (0..types.len())
                .map(|row| {
                    !keys.is_null(row)
                        && usize::try_from(keys.value(row))
                            .ok()
                            .and_then(|k| table.get(k).copied())
                            .unwrap_or(false)
                })
                .collect(),
        ))
    }
}

/// The first row in `range` for which `before` is false (`before` holds
/// for a prefix of the range).
fn partition(range: std::ops::Range<usize>, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (range.start, range.end);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// One row of an ordered scan.
struct DocRow {
    ts_ms: i64,
    id: ObjectId,
    doc: String,
}

impl DocRow {
    fn cursor(&self) -> Cursor {
        Cursor {
            ts_ms: self.ts_ms,
            id: self.id,
        }
    }
}

/// The first `want` rows of `select` in `files` strictly after `after` in
/// `sort` order, with their documents. Files and row groups are visited
/// in that order and skipped once they cannot beat the rows in hand.
fn ordered_docs(
    files: &[Arc<ColdFile>],
    select: &Selection,
    sort: SortOrder,
    after: Option<Cursor>,
    want: usize,
    limits: &ScanLimits<'_>,
) -> Result<Vec<DocRow>, QueryError> {
    let mut order: Vec<&Arc<ColdFile>> = files.iter().collect();
    match sort {
        SortOrder::Desc => order.sort_by_key(|f| std::cmp::Reverse(f.summary().ts_max_ms)),
        SortOrder::Asc => order.sort_by_key(|f| f.summary().ts_min_ms),
    }
    let mut kept: Vec<DocRow> = Vec::new();
    for file in order {
        let worst = (kept.len() >= want).then(|| kept[want - 1].cursor());
        if let Some(worst) = worst {
            let beyond = match sort {
                SortOrder::Desc => file.summary().ts_max_ms < worst.ts_ms,
                SortOrder::Asc => file.summary().ts_min_ms > worst.ts_ms,
            };
            if beyond {
                continue;
            }
        }
        let window = match sort {
            SortOrder::Desc => Window {
                after: worst,
                before: after,
            },
            SortOrder::Asc => Window {
                after,
                before: worst,
            },
        };
        let extra = [file.column(COL_ID)];
        let scan = FileScan::new(file, select, &extra);
        let groups: Vec<usize> = match sort {
            SortOrder::Desc => scan.groups(select.range).rev().collect(),
            SortOrder::Asc => scan.groups(select.range).collect(),
        };
        let mut found: Vec<DocRow> = Vec::new();
        for group in groups {
            if found.len() >= want {
                break;
            }
            let info = &file.groups()[group];
            if !group_in_window(info, window) {
                continue;
            }
            limits.check()?;
            let need = want - found.len();
            let need = match sort {
                SortOrder::Desc => DocNeed::Last(need),
                SortOrder::Asc => DocNeed::First(need),
            };
            let Some(selected) = scan.select(group, window, need)? else {
                continue;
            };
            let docs = selected
                .docs
                .as_ref()
                .ok_or_else(|| file.corrupt("documents not read"))?;
            let ts = ts_values(&docs.batch, file)?;
            let ids = id_values(&docs.batch, file)?;
            let mut rows: Vec<DocRow> = Vec::with_capacity(docs.rows.len());
            for (at, &ts_ms) in ts.iter().enumerate().take(docs.rows.len()) {
                rows.push(DocRow {
                    ts_ms,
                    id: ObjectId::from_slice(ids.value(at))
                        .map_err(|e| file.corrupt(&format!("_id: {e}")))?,
                    doc: docs.texts.value(at).to_owned(),
                });
            }
            if sort == SortOrder::Desc {
                rows.reverse();
            }
            found.extend(rows);
        }
        kept.extend(found);
        match sort {
            SortOrder::Desc => kept.sort_by_key(|row| std::cmp::Reverse(row.cursor())),
            SortOrder::Asc => kept.sort_by_key(DocRow::cursor),
        }
        kept.truncate(want);
    }
    Ok(kept)
}

/// Whether a row group may hold rows strictly inside `window`.
fn group_in_window(info: &GroupInfo, window: Window) -> bool {
    window.after.is_none_or(|after| info.ts_max >= after.ts_ms)
        && window
            .before
            .is_none_or(|before| info.ts_min <= before.ts_ms)
}

// ---------------------------------------------------------------------
// Column helpers.

fn overlaps(info: &GroupInfo, range: TimeRange) -> bool {
    info.ts_max >= range.from_ms && info.ts_min < range.to_ms
}

/// The rows of a sorted `ts` column inside `range`.
fn ts_window(ts: &[i64], range: TimeRange) -> std::ops::Range<usize> {
    let start = ts.partition_point(|&t| t < range.from_ms);
    let end = ts.partition_point(|&t| t < range.to_ms);
    start..end.max(start)
}

fn ts_values<'a>(batch: &'a RecordBatch, file: &ColdFile) -> Result<&'a [i64], QueryError> {
    batch
        .column_by_name(COL_TS)
        .and_then(|a| a.as_primitive_opt::<Int64Type>())
        .map(|a| a.values().as_ref())
        .ok_or_else(|| file.corrupt("ts is not Int64"))
}

fn id_values<'a>(
    batch: &'a RecordBatch,
    file: &ColdFile,
) -> Result<&'a arrow_array::FixedSizeBinaryArray, QueryError> {
    batch
        .column_by_name(COL_ID)
        .and_then(|a| a.as_fixed_size_binary_opt())
        .filter(|a| usize::try_from(a.value_length()).ok() == Some(OBJECT_ID_BYTES))
        .ok_or_else(|| file.corrupt("_id is not 12 bytes"))
}

/// Rows per dictionary entry among `rows`, and rows with a null key.
fn count_keys(
    array: &DictionaryArray<Int32Type>,
    rows: impl Iterator<Item = u32>,
) -> Result<(Vec<u64>, u64), QueryError> {
    let entries = array.values().len();
    let mut per_entry = vec![0_u64; entries];
    let mut missing = 0;
    let keys = array.keys();
    let values = keys.values();
    let nulls = keys.nulls();
    for row in rows {
        let row = row as usize;
        if nulls.is_some_and(|n| n.is_null(row)) {
            missing += 1;
            continue;
        }
        let slot = usize::try_from(values[row])
            .ok()
            .and_then(|k| per_entry.get_mut(k))
            .ok_or_else(|| QueryError::Corrupt {
                context: "cold file".to_owned(),
                reason: "dictionary key out of range".to_owned(),
            })?;
        *slot += 1;
    }
    Ok((per_entry, missing))
}

fn entry(values: &StringArray, key: i32) -> Result<&str, ()> {
    usize::try_from(key)
        .ok()
        .filter(|&k| k < values.len())
        .map(|k| values.value(k))
        .ok_or(())
}

/// Reads the documents (and `also` columns) of `rows` (ascending) of a
/// row group.
fn read_docs(
    file: &ColdFile,
    group: usize,
    rows: &[usize],
    also: &[usize],
) -> Result<Docs, QueryError> {
    let total = file.groups()[group].rows;
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    for &row in rows {
        match ranges.last_mut() {
            Some(last) if last.end == row => last.end += 1,
            _ => ranges.push(row..row + 1),
        }
    }
    let selection = RowSelection::from_consecutive_ranges(ranges.into_iter(), total);
    let mut columns = vec![file.column(COL_DOC)];
    columns.extend_from_slice(also);
    columns.sort_unstable();
    columns.dedup();
    let batch = file
        .read(group, &columns, Some(selection.clone()))?
        .ok_or_else(|| file.corrupt("selected documents missing"))?;
    if batch.num_rows() != rows.len() {
        return Err(file.corrupt(&format!(
            "read {} documents, selected {}",
            batch.num_rows(),
            rows.len()
        )));
    }
    let texts = batch
        .column_by_name(COL_DOC)
        .and_then(|a| a.as_string_opt::<i32>())
        .ok_or_else(|| file.corrupt("doc is not Utf8"))?
        .clone();
    let texts = if file.templated() {
        // Then only the columns these rows' templates name: each column
        // read costs a page decompression, and few rows name few columns.
        let named = named_columns(file, &texts);
        let values = if named.is_empty() {
            None
        } else {
            let values = file
                .read(group, &named, Some(selection))?
                .ok_or_else(|| file.corrupt("selected template values missing"))?;
            if values.num_rows() != rows.len() {
                return Err(file.corrupt("read template values of other rows"));
            }
            Some(values)
        };
        expand_docs(file, values.as_ref(), &texts)?
    } else {
        texts
    };
    Ok(Docs {
        rows: rows.to_vec(),
        texts,
        batch,
    })
}

/// The columns (root indices, ascending) that `templates` name and a
/// template may name; a marker naming another column is reported when
/// expanding.
fn named_columns(file: &ColdFile, templates: &StringArray) -> Vec<usize> {
    let allowed = file.template_columns();
    let mut named = vec![false; allowed.iter().max().map_or(0, |m| m + 1)];
    for row in 0..templates.len() {
        template::for_each_marker(templates.value(row), |column| {
            if let Some(flag) = named.get_mut(column) {
                *flag = true;
            }
        });
    }
    allowed.into_iter().filter(|&c| named[c]).collect()
}

/// How a column a template names renders its value in a document.
enum Render<'a> {
    Id(&'a arrow_array::FixedSizeBinaryArray),
    Time(&'a [i64]),
    /// A dictionary of strings written as JSON strings (`type`, `app`).
    JsonString(&'a DictionaryArray<Int32Type>, &'a StringArray),
    /// A dictionary of JSON texts (field columns).
    Raw(&'a DictionaryArray<Int32Type>, &'a StringArray),
}

impl Render<'_> {
    fn push(&self, row: usize, out: &mut String) -> Result<(), String> {
        match self {
            Render::Id(ids) => {
                let id = ObjectId::from_slice(ids.value(row)).map_err(|e| e.to_string())?;
                template::push_quoted(&id.to_hex(), out);
            }
            Render::Time(values) => {
                let text =
                    crate::format_rfc3339_utc_ms(values[row]).ok_or("a time out of range")?;
                template::push_quoted(&text, out);
            }
            Render::JsonString(array, values) => {
                template::push_json_string(dictionary_text(array, values, row)?, out);
            }
            Render::Raw(array, values) => out.push_str(dictionary_text(array, values, row)?),
        }
        Ok(())
    }
}

fn dictionary_text<'a>(
    array: &DictionaryArray<Int32Type>,
    values: &'a StringArray,
    row: usize,
) -> Result<&'a str, String> {
    if array.is_null(row) {
        return Err("a template names a null value".to_owned());
    }
    entry(values, array.keys().value(row)).map_err(|()| "dictionary key out of range".to_owned())
}

/// The documents of a format 2 `batch` (selected rows): each template in
/// `templates` expanded with the row's values of the columns it names
/// (read into `batch` by `read_docs`).
fn expand_docs(
    file: &ColdFile,
    batch: Option<&RecordBatch>,
    templates: &StringArray,
) -> Result<StringArray, QueryError> {
    let mut renders: Vec<Option<Render<'_>>> = Vec::new();
    let columns = if batch.is_some() {
        file.template_columns()
    } else {
        Vec::new()
    };
    for index in columns {
        let Some(batch) = batch else {
            break;
        };
        let name = file.column_name(index);
        let Some(array) = batch.column_by_name(name) else {
            continue;
        };
        let render = if name == COL_ID {
            Render::Id(id_values(batch, file)?)
        } else if name == COL_TS || name == COL_RECV {
            let values = array
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| file.corrupt("a time column is not Int64"))?;
            Render::Time(values.values().as_ref())
        } else {
            let array = array
                .as_dictionary_opt::<Int32Type>()
                .ok_or_else(|| file.corrupt("a dictionary column is not one"))?;
            let values = array
                .values()
                .as_string_opt::<i32>()
                .ok_or_else(|| file.corrupt("a dictionary is not Utf8"))?;
            if name == COL_TYPE || name == COL_APP {
                Render::JsonString(array, values)
            } else {
                Render::Raw(array, values)
            }
        };
        if renders.len() <= index {
            renders.resize_with(index + 1, || None);
        }
        renders[index] = Some(render);
    }
    let mut out = arrow_array::builder::StringBuilder::with_capacity(
        templates.len(),
        templates.value_data().len() * 2,
    );
    let mut text = String::new();
    for row in 0..templates.len() {
        text.clear();
        template::expand(templates.value(row), &mut text, |column, out| {
            renders
                .get(column)
                .and_then(Option::as_ref)
                .ok_or_else(|| format!("a template names column {column}, not one it may"))?
                .push(row, out)
        })
        .map_err(|reason| file.corrupt(&format!("doc template: {reason}")))?;
        out.append_value(&text);
    }
    Ok(out.finish())
}

/// `a` and `b` (each ascending, disjoint) merged, ascending.
fn merged(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out.sort_unstable();
    out
}

fn parse(text: &str, id: ObjectId) -> Result<Value, QueryError> {
    serde_json::from_str(text).map_err(|e| QueryError::Corrupt {
        context: format!("cold event {id}"),
        reason: format!("doc is not JSON: {e}"),
    })
}

// ---------------------------------------------------------------------
// Histogram helpers.

/// The bucket layout of a [`Plan`], learned through its own `finish` (an
/// empty histogram lists every bucket's start), so rows sorted by `ts` are
/// bucketed by comparing against the current bucket's end instead of a
/// division per row.
struct Buckets {
    first_ms: i64,
    width_ms: i64,
    count: usize,
}

impl Buckets {
    fn of(plan: &Plan) -> Option<Self> {
        let probe = plan.finish(Vec::new(), plan.counts(0));
        let first_ms = probe.buckets.first()?.start_ms;
        Some(Self {
            first_ms,
            width_ms: probe.bucket_ms,
            count: probe.buckets.len(),
        })
    }

    fn start_ms(&self, bucket: usize) -> i64 {
        self.first_ms + self.width_ms * bucket as i64
    }

    fn cursor(&self) -> BucketCursor<'_> {
        BucketCursor {
            buckets: self,
            start: i128::MAX,
            end: i128::MIN,
            index: 0,
        }
    }
}

/// The bucket of the last row seen.
struct BucketCursor<'a> {
    buckets: &'a Buckets,
    start: i128,
    end: i128,
    index: usize,
}

impl BucketCursor<'_> {
    fn index(&mut self, ts_ms: i64) -> Option<usize> {
        let ts = i128::from(ts_ms);
        if self.start <= ts && ts < self.end {
            return Some(self.index);
        }
        let width = i128::from(self.buckets.width_ms);
        let offset = (ts - i128::from(self.buckets.first_ms)).div_euclid(width);
        let index = usize::try_from(offset)
            .ok()
            .filter(|&i| i < self.buckets.count)?;
        self.index = index;
        self.start = i128::from(self.buckets.first_ms) + offset * width;
        self.end = self.start + width;
        Some(index)
    }
}

/// Series key → slot; `other` is the Other slot (= number of series).
struct SeriesSlots {
    by_key: HashMap<String, usize>,
    missing: Option<usize>,
    other: usize,
}

impl SeriesSlots {
    fn new(keys: &[Option<String>]) -> Self {
        let mut by_key = HashMap::with_capacity(keys.len());
        let mut missing = None;
        for (slot, key) in keys.iter().enumerate() {
            match key {
                Some(text) => {
                    by_key.entry(text.clone()).or_insert(slot);
                }
                None => missing = missing.or(Some(slot)),
            }
        }
        Self {
            by_key,
            missing,
            other: keys.len(),
        }
    }

    fn slot(&self, key: Option<&str>) -> usize {
        match key {
            Some(text) => self.by_key.get(text).copied().unwrap_or(self.other),
            None => self.missing.unwrap_or(self.other),
        }
    }
}

/// The series slot of each selected row.
fn row_slots(
    file: &ColdFile,
    selected: &Selected,
    column: Option<KeyColumn>,
    path: &FieldPath,
    series: &SeriesSlots,
) -> Result<Vec<usize>, QueryError> {
    match column {
        Some(column) => {
            let array = dictionary(&selected.batch, file, column.index)?;
            let values = dictionary_values(array)?;
            let table: Vec<usize> = (0..values.len())
                .map(|entry| series.slot(Some(&column.key(values.value(entry)))))
                .collect();
            let missing = series.slot(None);
            let keys = array.keys();
            selected
                .rows
                .iter()
                .map(|&row| {
                    if keys.is_null(row) {
                        return Ok(missing);
                    }
                    usize::try_from(keys.value(row))
                        .ok()
                        .and_then(|k| table.get(k).copied())
                        .ok_or_else(|| file.corrupt("dictionary key out of range"))
                })
                .collect()
        }
        None => {
            let paths = one_path(path);
            selected
                .rows
                .iter()
                .map(|&row| {
                    let doc = selected.pruned_doc(file, row, &paths)?;
                    let key = group_node(&doc, path.segments()).map(node_key);
                    Ok(series.slot(key.as_deref()))
                })
                .collect()
        }
    }
}

/// The tree of one path.
fn one_path(path: &FieldPath) -> Paths {
    let mut paths = Paths::default();
    paths.add(path.segments());
    paths
}
