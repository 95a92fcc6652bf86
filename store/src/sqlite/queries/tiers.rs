//! The query back end over both tiers of the embedded store: the SQLite
//! hot tier (`events`) and the columnar files its manifest lists
//! (`crate::columnar`).
//!
//! Consistency without a long read transaction: every request reads the
//! manifest (its generation and files), answers from both tiers, then reads
//! the generation again. Publishing a file and deleting its rows from the
//! hot tier is one transaction that bumps the generation, so an unchanged
//! generation means no event moved between the tiers while the request
//! read them: each event was counted exactly once. A changed one (a
//! compaction finished meanwhile, rare) makes the request run again, up to
//! [`MAX_SNAPSHOT_ATTEMPTS`] times.

use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rusqlite::types::{Value as SqlValue, ValueRef};
use serde_json::Value;

use super::{compile, Sql, SqliteQueries};
use crate::columnar::{
    self, canonical_key, group_node, node_key, ColdFile, KeyShare, ScanLimits, Tally,
};
use crate::query::api::{
    DistinctRequest, FieldName, GroupBy, GroupByRequest, GroupCount, GroupKey, Histogram,
    HistogramRequest, Hit, Page, QueryBackend, TailPage, TailRequest, TypeCount,
    MAX_DISTINCT_LIMIT, MAX_FIELD_SAMPLE_DOCS, MAX_READ_DOC_BYTES, MAX_SUGGEST_SCAN_EVENTS,
};
use crate::query::error::QueryError;
use crate::query::eval;
use crate::query::fields::field_names;
use crate::query::histogram::Plan;
use crate::query::ir::{FieldPath, Query, Selection, SortOrder, TimeRange};
use crate::sqlite::manifest::{self, columnar_dir, Manifest};
use crate::ObjectId;

/// How often one request starts over because a compaction moved events
/// between the tiers while it read; past it the request fails (503-like),
/// which only a compactor publishing faster than queries run can cause.
pub const MAX_SNAPSHOT_ATTEMPTS: usize = 4;

/// Most distinct values a group-by or split over both tiers counts: the
/// counts must be exact across tiers, so there is no hand-over to SQLite's
/// GROUP BY as in the hot tier alone. About 64 bytes of map per value plus
/// its text (capped at [`super::MAX_GROUP_KEY_BYTES_IN_MEMORY`]): at most
/// about 100 MB for one request. A field with more values in the range is
/// counted again in passes, each holding a share of the values
/// ([`MAX_TALLY_PASSES`]).
pub const MAX_TIERED_GROUP_KEYS: usize = 1_000_000;

/// Most passes one group-by over both tiers makes when a field has more
/// distinct values than [`MAX_TIERED_GROUP_KEYS`]: the passes grow
/// [`TALLY_PASS_GROWTH`]-fold (4, 16, 64) until each share fits, every pass
/// reading the whole selection again. Past it the request is refused, and
/// so is one whose passes would not finish within its time budget (told
/// from the first passes' pace, not waited out).
pub const MAX_TALLY_PASSES: u64 = 64;

/// How much the passes of a tally grow after a share did not fit: four
/// times, so that a field far past the cap (10 M values against 1 M)
/// costs two refused attempts, not four.
const TALLY_PASS_GROWTH: u64 = 4;

/// Most recent columnar documents read for value suggestions and field
/// names when the hot tier has too few (these are samples, not scans).
const MAX_COLD_SAMPLE_DOCS: usize = 10_000;

/// The columnar files this reader has open, by manifest name: a file stays
/// open (and readable, even once a retention pass unlinks it) while a
/// request uses it; files the manifest no longer lists are dropped from
/// the cache at the next request.
#[derive(Debug)]
pub(super) struct ColdCache {
    dir: PathBuf,
    open: Mutex<HashMap<String, Arc<ColdFile>>>,
}

impl ColdCache {
    pub(super) fn new(db_path: &std::path::Path) -> Self {
        Self {
            dir: columnar_dir(db_path),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The files of `manifest` that may hold events in `from..to`, opened.
    fn files(
        &self,
        manifest: &Manifest,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Arc<ColdFile>>, QueryError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let listed: std::collections::HashSet<&str> = manifest
            .files
            .iter()
            .map(|entry| entry.name.as_str())
            .collect();
        open.retain(|name, _| listed.contains(name.as_str()));
        let mut files = Vec::new();
        for entry in manifest.files.iter().filter(|e| e.overlaps(from_ms, to_ms)) {
            if let Some(file) = open.get(&entry.name) {
                files.push(Arc::clone(file));
                continue;
            }
            let file = Arc::new(ColdFile::open(&self.dir.join(&entry.name))?);
            open.insert(entry.name.clone(), Arc::clone(&file));
            files.push(file);
        }
        Ok(files)
    }
}

/// A histogram split's series: canonical key text (`None` = missing).
type SeriesKeys = Vec<Option<String>>;

impl SqliteQueries {
    /// Runs `answer` over a consistent view of both tiers: the files that
    /// may hold events in `from..to` (empty when none) and the hot tier.
    fn tiered<T>(
        &self,
        from_ms: i64,
        to_ms: i64,
        mut answer: impl FnMut(&[Arc<ColdFile>]) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        for _ in 0..MAX_SNAPSHOT_ATTEMPTS {
            let before = self.manifest()?;
            let files = self.cold.files(&before, from_ms, to_ms)?;
            let result = answer(&files)?;
            if self.generation()? == before.generation {
                return Ok(result);
            }
            tracing::debug!("a compaction moved events while a query read; reading again");
        }
        Err(QueryError::store(
            format!("querying {}", self.path.display()),
            format!(
                "events moved between the hot and columnar tiers during each of \
                 {MAX_SNAPSHOT_ATTEMPTS} attempts"
            ),
        ))
    }

    fn manifest(&self) -> Result<Manifest, QueryError> {
        self.pool
            .with(self.query_timeout, |conn| {
                // One transaction: the generation belongs to the file list.
                conn.execute_batch("BEGIN")?;
                let manifest = manifest::read(conn);
                let end = conn.execute_batch(if manifest.is_ok() {
                    "COMMIT"
                } else {
                    "ROLLBACK"
                });
                let manifest = manifest?;
                end?;
                Ok(manifest)
            })
            .map_err(|error| self.pool_error("reading the columnar manifest", error))
    }

    fn generation(&self) -> Result<i64, QueryError> {
        self.pool
            .with(self.query_timeout, manifest::generation)
            .map_err(|error| self.pool_error("reading the columnar manifest", error))
    }

    fn limits(&self) -> ScanLimits<'_> {
        self.limits_until(Instant::now() + self.query_timeout)
    }

    /// [`Self::limits`] for a request that began earlier: its scans stop
    /// at `deadline`.
    fn limits_until(&self, deadline: Instant) -> ScanLimits<'_> {
        ScanLimits {
            cancelled: self.pool.cancelled(),
            deadline,
            limit_ms: self.query_timeout_ms(),
        }
    }

    /// Every value of `path` among `select` in the hot tier and how often,
    /// keyed like the columnar tier's ([`canonical_key`]). Fails past the
    /// in-memory caps: merging two tiers' counts exactly needs all of them.
    fn hot_tally(
        &self,
        select: &Selection,
        path: &FieldPath,
        share: KeyShare,
    ) -> Result<Tally, QueryError> {
        let mut sql = Sql::default();
        let json_path = sql.bind(SqlValue::Text(compile::json_path(path)?))?;
        let arms = compile::hot_arms(&mut sql, select, "")?;
        sql.push(&arms.union_all(&format!("doc -> {json_path}")));
        // Counted by SQLite's text first; each distinct text is brought to
        // the canonical form once at the end.
        let mut raw: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut missing = 0_u64;
        let mut total = 0_u64;
        let mut key_bytes = 0_usize;
        let mut overflow = false;
        self.scan("grouping events", &sql, |row| {
            total += 1;
            let ValueRef::Text(text) = row.get_ref(0)? else {
                missing += u64::from(share.holds(None));
                return Ok(true);
            };
            if let Some(n) = raw.get_mut(text) {
                *n += 1;
                return Ok(true);
            }
            // A share is decided on the canonical key (the columnar tier's
            // form); a text that is not JSON goes with the missing field to
            // pass 0, and is reported corrupt below.
            if share.of > 1 {
                let key = std::str::from_utf8(text).ok().and_then(canonical_key);
                if !share.holds(key.as_deref()) {
                    return Ok(true);
                }
            }
            if raw.len() >= self.tiered_group_keys
                || key_bytes.saturating_add(text.len()) > self.group_key_bytes_in_memory
            {
                overflow = true;
                return Ok(false);
            }
            key_bytes += text.len();
            raw.insert(text.to_vec(), 1);
            Ok(true)
        })?;
        if overflow {
            return Err(too_many_groups(self.tiered_group_keys));
        }
        let mut tally = Tally {
            counts: HashMap::with_capacity(raw.len() + 1),
            total,
        };
        if missing > 0 {
            tally.counts.insert(None, missing);
        }
        for (text, n) in raw {
            let key = std::str::from_utf8(&text)
                .ok()
                .and_then(canonical_key)
                .ok_or_else(|| QueryError::Corrupt {
                    context: format!("group key in {}", self.path.display()),
                    reason: format!("not JSON: {}", String::from_utf8_lossy(&text)),
                })?;
            // Two SQLite texts can share a canonical form (`1.0`, `1.00`).
            *tally.counts.entry(Some(key)).or_default() += n;
        }
        Ok(tally)
    }

    /// Both tiers' counts of `path`'s values among `select`: every value's
    /// when they fit one pass, else (in passes, [`MAX_TALLY_PASSES`]) the
    /// `top_n` most frequent of each pass, which hold the overall `top_n`
    /// exactly, with the missing field's count and the exact total.
    fn ranked_tally(
        &self,
        files: &[Arc<ColdFile>],
        select: &Selection,
        path: &FieldPath,
        top_n: usize,
    ) -> Result<Tally, QueryError> {
        let deadline = Instant::now() + self.query_timeout;
        let mut passes = 1_u64;
        loop {
            match self.tally_in_passes(files, select, path, top_n, passes, deadline) {
                Err(QueryError::TooManyGroups(_)) if passes < MAX_TALLY_PASSES => {
                    passes = (passes * TALLY_PASS_GROWTH).min(MAX_TALLY_PASSES);
                }
                Err(QueryError::TooManyGroups(_)) => {
                    return Err(too_many_groups(
                        self.tiered_group_keys
                            .saturating_mul(MAX_TALLY_PASSES as usize),
                    ))
                }
                other => return other,
            }
        }
    }

    /// [`Self::ranked_tally`] in `passes` passes (1: every value).
    fn tally_in_passes(
        &self,
        files: &[Arc<ColdFile>],
        select: &Selection,
        path: &FieldPath,
        top_n: usize,
        passes: u64,
        deadline: Instant,
    ) -> Result<Tally, QueryError> {
        if passes == 1 {
            return self.merged_tally(files, select, path, KeyShare::ALL, deadline);
        }
        let mut kept = Tally {
            counts: HashMap::new(),
            total: 0,
        };
        let started = Instant::now();
        for index in 0..passes {
            if Instant::now() > deadline {
                return Err(QueryError::Timeout {
                    limit_ms: self.query_timeout_ms(),
                });
            }
            // Refused at once when the passes left, at the pace so far,
            // would end past the deadline: a clear answer now rather than
            // a timeout after the whole budget.
            if index > 0 {
                let per_pass = started.elapsed() / u32::try_from(index).unwrap_or(u32::MAX);
                let left =
                    per_pass.saturating_mul(u32::try_from(passes - index).unwrap_or(u32::MAX));
                if Instant::now() + left > deadline {
                    return Err(QueryError::Unsupported(format!(
                        "`{path}` has more distinct values than one pass holds ({}); ranking \
                         them exactly takes {passes} passes of about {} ms, past the {} ms \
                         budget: narrow the time range or filter",
                        self.tiered_group_keys,
                        per_pass.as_millis(),
                        self.query_timeout.as_millis()
                    )));
                }
            }
            let share = KeyShare { index, of: passes };
            let tally = self.merged_tally(files, select, path, share, deadline)?;
            // The same columnar files every pass (`tiered` reruns the
            // request if a compaction moved events meanwhile); events
            // inserted between passes count in the later ones only, so
            // each value's count is exact as of its own pass.
            kept.total = tally.total;
            kept.counts.extend(ranked(&tally, top_n));
        }
        Ok(kept)
    }

    /// Both tiers' counts of the values `share` holds of `path` among
    /// `select`.
    fn merged_tally(
        &self,
        files: &[Arc<ColdFile>],
        select: &Selection,
        path: &FieldPath,
        share: KeyShare,
        deadline: Instant,
    ) -> Result<Tally, QueryError> {
        let mut tally = self.hot_tally(select, path, share)?;
        let key_bytes: usize = tally.counts.keys().flatten().map(String::len).sum();
        let cold = columnar::tally(
            files,
            select,
            path,
            self.tiered_group_keys,
            self.group_key_bytes_in_memory,
            share,
            &self.limits_until(deadline),
        )?;
        let mut bytes = key_bytes;
        tally.total += cold.total;
        for (key, n) in cold.counts {
            if let Some(count) = tally.counts.get_mut(&key) {
                *count += n;
                continue;
            }
            bytes = bytes.saturating_add(key.as_ref().map_or(0, String::len));
            if tally.counts.len() >= self.tiered_group_keys
                || bytes > self.group_key_bytes_in_memory
            {
                return Err(too_many_groups(self.tiered_group_keys));
            }
            tally.counts.insert(key, n);
        }
        Ok(tally)
    }

    /// Adds the hot tier's events to a histogram's counts, split by
    /// `series` (canonical keys) when given.
    fn hot_histogram_into(
        &self,
        select: &Selection,
        plan: &Plan,
        split: Option<(&FieldPath, &SeriesKeys)>,
        counts: &mut crate::query::histogram::Counts,
    ) -> Result<(), QueryError> {
        let mut sql = Sql::default();
        let columns = match split {
            None => "ts, NULL".to_owned(),
            Some((path, _)) => {
                let json_path = sql.bind(SqlValue::Text(compile::json_path(path)?))?;
                format!("ts, doc -> {json_path}")
            }
        };
        let arms = compile::hot_arms(&mut sql, select, "")?;
        sql.push(&arms.union_all(&columns));
        let slots: HashMap<Option<String>, usize> = split
            .map(|(_, keys)| {
                keys.iter()
                    .enumerate()
                    .map(|(i, key)| (key.clone(), i))
                    .collect()
            })
            .unwrap_or_default();
        // SQLite's text of a value → its slot, so each distinct text is
        // canonicalized once.
        let mut seen: HashMap<Vec<u8>, Option<usize>> = HashMap::new();
        self.scan("computing a histogram", &sql, |row| {
            let ts: i64 = row.get(0)?;
            let slot = if split.is_none() {
                None
            } else {
                match row.get_ref(1)? {
                    ValueRef::Text(text) => match seen.get(text) {
                        Some(slot) => *slot,
                        None => {
                            let key = std::str::from_utf8(text).ok().and_then(canonical_key);
                            let slot = key.and_then(|key| slots.get(&Some(key)).copied());
                            seen.insert(text.to_vec(), slot);
                            slot
                        }
                    },
                    _ => slots.get(&None).copied(),
                }
            };
            plan.add(counts, ts, slot, 1);
            Ok(true)
        })
    }

    fn sample_docs(
        &self,
        files: &[Arc<ColdFile>],
        range: TimeRange,
        hot_docs: Vec<Value>,
        wanted: usize,
    ) -> Result<Vec<Value>, QueryError> {
        let mut docs = hot_docs;
        if docs.len() < wanted && !files.is_empty() {
            let more = wanted.saturating_sub(docs.len()).min(MAX_COLD_SAMPLE_DOCS);
            docs.extend(columnar::recent_docs(files, range, more, &self.limits())?);
        }
        Ok(docs)
    }
}

/// Ranks a tally: most frequent first, ties by key text with missing
/// first (the hot tier's order), at most `top_n`.
fn ranked(tally: &Tally, top_n: usize) -> Vec<(Option<String>, u64)> {
    let mut groups: Vec<(Option<String>, u64)> = tally
        .counts
        .iter()
        .map(|(key, n)| (key.clone(), *n))
        .collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    groups.truncate(top_n);
    groups
}

fn group_key(key: Option<&str>) -> Result<GroupKey, QueryError> {
    match key {
        None => Ok(GroupKey::Missing),
        Some(text) => serde_json::from_str(text)
            .map(GroupKey::Value)
            .map_err(|error| QueryError::Corrupt {
                context: "group key".to_owned(),
                reason: format!("not JSON: {error}"),
            }),
    }
}

fn too_many_groups(max: usize) -> QueryError {
    QueryError::TooManyGroups(format!(
        "the field has more than {max} distinct values across the hot and columnar tiers; \
         narrow the time range or filter to rank it exactly"
    ))
}

/// Orders hits as a page in `sort` order wants them.
fn page_order(sort: SortOrder, a: &Hit, b: &Hit) -> CmpOrdering {
    let ascending = (a.ts_ms, a.id).cmp(&(b.ts_ms, b.id));
    match sort {
        SortOrder::Asc => ascending,
        SortOrder::Desc => ascending.reverse(),
    }
}

impl QueryBackend for SqliteQueries {
    fn query(&self, query: &Query) -> Result<Page, QueryError> {
        let limit = query.effective_limit();
        let range = query.select.range;
        self.tiered(range.from_ms, range.to_ms, |files| {
            let hot = self.hot_query(query)?;
            if files.is_empty() || limit == 0 {
                return Ok(hot);
            }
            let hot_more = hot.next.is_some();
            let mut cold = columnar::page(files, query, &self.limits())?;
            cold.sort_by(|a, b| page_order(query.sort, a, b));
            let cold_more = cold.len() > limit;
            cold.truncate(limit);
            // A tier that stopped early has unseen events after its last
            // one: the merged page may not go past that point.
            let stops: Vec<&Hit> = [(hot_more, hot.events.last()), (cold_more, cold.last())]
                .into_iter()
                .filter_map(|(more, last)| if more { last } else { None })
                .collect();
            let stop = stops
                .into_iter()
                .min_by(|a, b| page_order(query.sort, a, b))
                .cloned();
            let mut events: Vec<Hit> = hot.events.into_iter().chain(cold).collect();
            events.sort_by(|a, b| page_order(query.sort, a, b));
            let mut more = false;
            if let Some(stop) = &stop {
                let before = events.len();
                events.retain(|hit| page_order(query.sort, hit, stop) != CmpOrdering::Greater);
                more = true;
                debug_assert!(events.len() <= before);
            }
            if events.len() > limit {
                events.truncate(limit);
                more = true;
            }
            let mut bytes = 0_usize;
            if let Some(cut) = events.iter().position(|hit| {
                bytes += hit.stored_text.as_ref().map_or(0, String::len);
                bytes >= MAX_READ_DOC_BYTES
            }) {
                if cut + 1 < events.len() {
                    events.truncate(cut + 1);
                    more = true;
                }
            }
            Ok(Page::keyset(events, more))
        })
    }

    fn histogram(&self, request: &HistogramRequest) -> Result<Histogram, QueryError> {
        let range = request.select.range;
        self.tiered(range.from_ms, range.to_ms, |files| {
            if files.is_empty() {
                return self.hot_histogram(request);
            }
            let plan = Plan::new(request)?;
            let select = &request.select;
            let Some(split) = &request.split_by else {
                let mut counts = plan.counts(0);
                columnar::count_into_histogram(
                    files,
                    select,
                    &plan,
                    None,
                    &mut counts,
                    &self.limits(),
                )?;
                self.hot_histogram_into(select, &plan, None, &mut counts)?;
                return Ok(plan.finish(Vec::new(), counts));
            };
            super::check_top_n(split.top_n)?;
            let tally = self.ranked_tally(files, select, &split.path, split.top_n)?;
            let keys: SeriesKeys = ranked(&tally, split.top_n)
                .into_iter()
                .map(|(key, _)| key)
                .collect();
            let mut counts = plan.counts(keys.len());
            columnar::count_into_histogram(
                files,
                select,
                &plan,
                Some((&split.path, &keys)),
                &mut counts,
                &self.limits(),
            )?;
            self.hot_histogram_into(select, &plan, Some((&split.path, &keys)), &mut counts)?;
            let series = keys
                .iter()
                .map(|key| group_key(key.as_deref()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(plan.finish(series, counts))
        })
    }

    fn group_by(&self, request: &GroupByRequest) -> Result<GroupBy, QueryError> {
        let range = request.select.range;
        self.tiered(range.from_ms, range.to_ms, |files| {
            if files.is_empty() {
                return self.hot_group_by(request);
            }
            super::check_top_n(request.top_n)?;
            let tally = self.ranked_tally(files, &request.select, &request.path, request.top_n)?;
            let groups = ranked(&tally, request.top_n)
                .into_iter()
                .map(|(key, count)| {
                    Ok(GroupCount {
                        key: group_key(key.as_deref())?,
                        count,
                    })
                })
                .collect::<Result<Vec<_>, QueryError>>()?;
            let in_groups: u64 = groups.iter().map(|group| group.count).sum();
            Ok(GroupBy {
                groups,
                other_count: tally.total.saturating_sub(in_groups),
                total: tally.total,
                column: columnar::grouped_by_column(files, &request.path),
            })
        })
    }

    fn distinct(&self, request: &DistinctRequest) -> Result<Vec<GroupCount>, QueryError> {
        let range = request.select.range;
        self.tiered(range.from_ms, range.to_ms, |files| {
            let hot = self.hot_distinct(request)?;
            if !hot.is_empty() || files.is_empty() {
                return Ok(hot);
            }
            // Nothing recent is hot: suggest from the newest columnar events.
            let limit = request.limit.min(MAX_DISTINCT_LIMIT);
            let scan = MAX_SUGGEST_SCAN_EVENTS.min(MAX_COLD_SAMPLE_DOCS);
            let docs = columnar::recent_docs(files, range, scan, &self.limits())?;
            let mut counts: HashMap<String, u64> = HashMap::new();
            for doc in docs
                .iter()
                .filter(|doc| eval::selection_matches(&request.select, doc))
            {
                let Some(node) = group_node(doc, request.path.segments()) else {
                    continue;
                };
                if let Some(prefix) = &request.prefix {
                    if !node
                        .as_str()
                        .is_some_and(|s| s.starts_with(prefix.as_str()))
                    {
                        continue;
                    }
                }
                *counts.entry(node_key(node)).or_default() += 1;
            }
            let tally = Tally {
                total: counts.values().sum(),
                counts: counts.into_iter().map(|(key, n)| (Some(key), n)).collect(),
            };
            ranked(&tally, limit)
                .into_iter()
                .map(|(key, count)| {
                    Ok(GroupCount {
                        key: group_key(key.as_deref())?,
                        count,
                    })
                })
                .collect()
        })
    }

    fn field_names(&self, range: TimeRange, sample: usize) -> Result<Vec<FieldName>, QueryError> {
        let wanted = sample.min(MAX_FIELD_SAMPLE_DOCS);
        self.tiered(range.from_ms, range.to_ms, |files| {
            let hot = self.hot_sample(range, wanted)?;
            let mut names = if hot.len() >= wanted || files.is_empty() {
                field_names(&hot)
            } else {
                field_names(&self.sample_docs(files, range, hot, wanted)?)
            };
            for name in &mut names {
                // A sampled name is a valid path unless it is too deep to
                // query, which no file makes a column of either.
                name.column = match FieldPath::parse(&name.path) {
                    Ok(path) => columnar::grouped_by_column(files, &path),
                    Err(_) => (!files.is_empty()).then_some(false),
                };
            }
            Ok(names)
        })
    }

    fn types(&self, range: TimeRange) -> Result<Vec<TypeCount>, QueryError> {
        self.tiered(range.from_ms, range.to_ms, |files| {
            let hot = self.hot_types(range)?;
            if files.is_empty() {
                return Ok(hot);
            }
            let mut counts = columnar::types(files, range, &self.limits())?;
            for TypeCount { event_type, count } in hot {
                *counts.entry(event_type).or_default() += count;
            }
            let mut types: Vec<TypeCount> = counts
                .into_iter()
                .map(|(event_type, count)| TypeCount { event_type, count })
                .collect();
            types.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then_with(|| a.event_type.cmp(&b.event_type))
            });
            Ok(types)
        })
    }

    fn get(&self, id: ObjectId) -> Result<Option<Hit>, QueryError> {
        self.tiered(i64::MIN, i64::MAX, |files| {
            if let Some(hit) = self.hot_get(id)? {
                return Ok(Some(hit));
            }
            columnar::get(files, id, &self.limits())
        })
    }

    fn tail(&self, request: &TailRequest) -> Result<TailPage, QueryError> {
        // Insertion order is the hot tier's alone: compaction moves events
        // minutes after they were tailed.
        self.hot_tail(request)
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn cancel(&self) {
        self.pool.cancel();
    }
}
