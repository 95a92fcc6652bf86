//! [`SqliteQueries`]: the query back end over an SQLite store (DESIGN §5,
//! §6). Every request is one or two statements on a pooled read-only
//! connection, each its own short read transaction, so no request pins the
//! WAL for longer than a statement.

mod compile;
mod conn;
mod tiers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::HashMap;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params_from_iter, Connection};
use serde_json::Value;

use crate::error::StoreError;
use crate::ObjectId;

use crate::query::api::{
    DistinctRequest, GroupBy, GroupByRequest, GroupCount, GroupKey, Histogram, HistogramRequest,
    Hit, Page, TailCursor, TailPage, TailRequest, TypeCount, MAX_DISTINCT_LIMIT,
    MAX_FIELD_SAMPLE_DOCS, MAX_READ_DOC_BYTES, MAX_SUGGEST_SCAN_EVENTS, MAX_TAIL_LIMIT, MAX_TOP_N,
};
use crate::query::error::QueryError;
use crate::query::histogram::Plan;
use crate::query::ir::{FieldPath, Query, Selection, SortOrder, TimeRange};
use crate::query::project::project;
use compile::Sql;
use conn::Pool;

pub use conn::SQLITE_QUERY_POOL_MAX_IDLE;
pub use tiers::{MAX_SNAPSHOT_ATTEMPTS, MAX_TALLY_PASSES, MAX_TIERED_GROUP_KEYS};

/// Time budget of one statement: a whole-store group-by over 10 M events
/// takes about 12 s here; past the budget SQLite interrupts the statement
/// and the request fails with [`QueryError::Timeout`] instead of holding a
/// connection (and a WAL read mark) indefinitely.
pub const SQLITE_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Most distinct values a group-by or histogram split counts in memory;
/// past it SQLite's own GROUP BY (a temp B-tree, slower but bounded by
/// disk, not memory) takes over.
pub const MAX_GROUP_KEYS_IN_MEMORY: usize = 100_000;

/// Most bytes of distinct values a group-by keeps in memory: values can be
/// whole objects of megabytes, so the count limit alone does not bound
/// memory; past it SQLite's GROUP BY takes over too.
pub const MAX_GROUP_KEY_BYTES_IN_MEMORY: usize = 64 << 20;

/// Ranked values of a field: `(JSON text or None for missing, count)`, most
/// frequent first, and the number of selected events.
struct Ranked {
    groups: Vec<(Option<String>, u64)>,
    total: u64,
}

/// One event row as read: `(_id, ts, doc)`.
type DocRow = (Vec<u8>, i64, String);

/// Most rows past the tail cursor one tail poll examines: with a filter
/// that matches little, a poll still returns quickly and moves the cursor.
pub const MAX_TAIL_SCAN_ROWS: i64 = 10_000;

/// The SQLite query back end: a small pool of read-only connections to one
/// store file. Cheap to share (`Arc`), safe to call from many threads.
pub struct SqliteQueries {
    path: PathBuf,
    pool: Pool,
    group_keys_in_memory: usize,
    group_key_bytes_in_memory: usize,
    /// Most distinct values one pass of a group-by over both tiers counts.
    tiered_group_keys: usize,
    query_timeout: Duration,
    /// The columnar tier's open files.
    cold: tiers::ColdCache,
}

impl std::fmt::Debug for SqliteQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueries")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteQueries {
    /// Opens the store at `path` read-only. It must exist and have this
    /// build's schema; one connection is opened now to check that.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let pool = Pool::open(&path)?;
        Ok(Self {
            cold: tiers::ColdCache::new(&path),
            path,
            pool,
            group_keys_in_memory: MAX_GROUP_KEYS_IN_MEMORY,
            group_key_bytes_in_memory: MAX_GROUP_KEY_BYTES_IN_MEMORY,
            tiered_group_keys: MAX_TIERED_GROUP_KEYS,
            query_timeout: SQLITE_QUERY_TIMEOUT,
        })
    }

    /// Sets the time budget of each statement (default
    /// [`SQLITE_QUERY_TIMEOUT`]); past it the request fails with
    /// [`QueryError::Timeout`].
    pub fn with_query_timeout(mut self, budget: Duration) -> Self {
        self.query_timeout = budget;
        self
    }

    /// Lowers how many distinct values a group-by counts in memory before
    /// handing over to SQLite's GROUP BY (default and maximum
    /// [`MAX_GROUP_KEYS_IN_MEMORY`]): for memory-tight deployments, and for
    /// tests of the hand-over.
    pub fn with_group_keys_in_memory(mut self, max: usize) -> Self {
        self.group_keys_in_memory = max.min(MAX_GROUP_KEYS_IN_MEMORY);
        self
    }

    /// Lowers how many bytes of distinct values a group-by keeps in memory
    /// (default and maximum [`MAX_GROUP_KEY_BYTES_IN_MEMORY`]).
    pub fn with_group_key_bytes_in_memory(mut self, max: usize) -> Self {
        self.group_key_bytes_in_memory = max.min(MAX_GROUP_KEY_BYTES_IN_MEMORY);
        self
    }

    /// Lowers how many distinct values one pass of a group-by over both
    /// tiers counts (default and maximum [`MAX_TIERED_GROUP_KEYS`]; more
    /// values take more passes, up to [`MAX_TALLY_PASSES`]): for
    /// memory-tight deployments, and for tests of the passes.
    pub fn with_tiered_group_keys(mut self, max: usize) -> Self {
        self.tiered_group_keys = max.clamp(1, MAX_TIERED_GROUP_KEYS);
        self
    }

    /// SQLite's plan for one page of `query` (`EXPLAIN QUERY PLAN`, one
    /// line per step, indented two spaces per level below its parent
    /// step), for operators and tests: which index a query uses.
    pub fn explain(&self, query: &Query) -> Result<Vec<String>, QueryError> {
        let page = page_sql(query, query.effective_limit())?;
        let sql = Sql {
            text: format!("EXPLAIN QUERY PLAN {}", page.text),
            params: page.params,
        };
        let steps = self.rows("explaining a query", &sql, |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(3)?,
            ))
        })?;
        // A step comes after its parent, so each parent's depth is known.
        let mut depths: HashMap<i64, usize> = HashMap::new();
        Ok(steps
            .into_iter()
            .map(|(id, parent, detail)| {
                let depth = depths.get(&parent).map_or(0, |d| d + 1);
                depths.insert(id, depth);
                format!("{}{detail}", "  ".repeat(depth))
            })
            .collect())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The per-request time budget in milliseconds, as errors state it.
    fn query_timeout_ms(&self) -> u64 {
        u64::try_from(self.query_timeout.as_millis()).unwrap_or(u64::MAX)
    }

    fn pool_error(&self, context: &str, error: conn::PoolError) -> QueryError {
        match error {
            conn::PoolError::Open(error) => QueryError::store(context.to_owned(), error),
            conn::PoolError::Stopped(conn::Stop::Deadline) => QueryError::Timeout {
                limit_ms: self.query_timeout_ms(),
            },
            conn::PoolError::Stopped(conn::Stop::Cancelled) => QueryError::Cancelled,
            conn::PoolError::Stopped(conn::Stop::Scan(refused)) => {
                QueryError::Invalid(refused.to_string())
            }
            conn::PoolError::Sql(error) => match too_complex(&error) {
                Some(reason) => QueryError::Invalid(format!(
                    "the filter is too complex for SQLite ({reason}): use fewer conditions or \
                     less nesting"
                )),
                None => QueryError::store(format!("{context} in {}", self.path.display()), error),
            },
        }
    }

    /// Runs `sql` and maps each row with `map`.
    fn rows<T>(
        &self,
        context: &str,
        sql: &Sql,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, QueryError> {
        self.pool
            .with(self.query_timeout, |conn: &Connection| {
                let mut statement = conn.prepare_cached(&sql.text)?;
                let rows = statement.query_map(params_from_iter(sql.params.iter()), map)?;
                rows.collect::<rusqlite::Result<Vec<T>>>()
            })
            .map_err(|error| self.pool_error(context, error))
    }

    /// Rows of `(key, doc)` from `sql`, at most `limit` and at most
    /// [`MAX_READ_DOC_BYTES`] of `doc` text (but at least one row), and
    /// whether more rows were left (`sql` should ask for `limit + 1` when
    /// the caller needs to know that by count).
    fn bounded_rows<T>(
        &self,
        context: &str,
        sql: &Sql,
        limit: usize,
        mut map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<(T, String)>,
    ) -> Result<(Vec<(T, String)>, bool), QueryError> {
        let mut rows = Vec::new();
        let mut doc_bytes = 0usize;
        let mut more = false;
        self.scan(context, sql, |row| {
            if rows.len() == limit {
                more = true;
                return Ok(false);
            }
            let row = map(row)?;
            doc_bytes += row.1.len();
            rows.push(row);
            if doc_bytes >= MAX_READ_DOC_BYTES {
                more = true;
                return Ok(false);
            }
            Ok(true)
        })?;
        Ok((rows, more))
    }

    /// Runs `sql` and hands each row to `each` until it returns `false`;
    /// one statement, so one read transaction.
    fn scan(
        &self,
        context: &str,
        sql: &Sql,
        mut each: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<bool>,
    ) -> Result<(), QueryError> {
        self.pool
            .with(self.query_timeout, |conn: &Connection| {
                let mut statement = conn.prepare_cached(&sql.text)?;
                let mut rows = statement.query(params_from_iter(sql.params.iter()))?;
                while let Some(row) = rows.next()? {
                    if !each(row)? {
                        break;
                    }
                }
                Ok(())
            })
            .map_err(|error| self.pool_error(context, error))
    }

    /// The `limit` most frequent values of `path` among `select` (as
    /// SQLite's JSON text; `None` = missing), and the number of events.
    /// Counted in memory while streaming the selection (no temp B-tree);
    /// past `group_keys_in_memory` distinct values SQLite's GROUP BY
    /// takes over.
    fn rank_values(
        &self,
        select: &Selection,
        path: &FieldPath,
        limit: usize,
    ) -> Result<Ranked, QueryError> {
        let mut sql = Sql::default();
        let json_path = sql.bind(SqlValue::Text(compile::json_path(path)?))?;
        let arms = compile::hot_arms(&mut sql, select, "")?;
        sql.push(&arms.union_all(&format!("doc -> {json_path}")));
        let mut counts: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut missing = 0_u64;
        let mut total = 0_u64;
        let mut overflow = false;
        let mut key_bytes = 0_usize;
        self.scan("grouping events", &sql, |row| {
            total += 1;
            let ValueRef::Text(key) = row.get_ref(0)? else {
                missing += 1;
                return Ok(true);
            };
            if let Some(n) = counts.get_mut(key) {
                *n += 1;
            } else if counts.len() < self.group_keys_in_memory
                && key_bytes.saturating_add(key.len()) <= self.group_key_bytes_in_memory
            {
                key_bytes += key.len();
                counts.insert(key.to_vec(), 1);
            } else {
                overflow = true;
                return Ok(false);
            }
            Ok(true)
        })?;
        if overflow {
            let groups = self.top_values_sql(select, path, limit, None, None)?;
            return Ok(Ranked {
                groups,
                total: self.count(select)?,
            });
        }
        let mut ranked: Vec<(Option<String>, u64)> = counts
            .into_iter()
            .map(|(key, n)| (Some(String::from_utf8_lossy(&key).into_owned()), n))
            .collect();
        if missing > 0 {
            ranked.push((None, missing));
        }
        // Most frequent first; ties by key, missing first (SQLite's NULL
        // order), so both paths rank alike.
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(limit);
        Ok(Ranked {
            groups: ranked,
            total,
        })
    }

    fn group_counts(
        &self,
        ranked: Vec<(Option<String>, u64)>,
    ) -> Result<Vec<GroupCount>, QueryError> {
        ranked
            .into_iter()
            .map(|(key, count)| {
                Ok(GroupCount {
                    key: self.group_key(key.as_deref())?,
                    count,
                })
            })
            .collect()
    }

    fn count(&self, select: &Selection) -> Result<u64, QueryError> {
        let mut sql = Sql::default();
        let arms = compile::hot_arms(&mut sql, select, "")?;
        sql.push(&format!(
            "SELECT (SELECT count(*) {}) + (SELECT count(*) {})",
            arms.live, arms.late
        ));
        let counts = self.rows("counting events", &sql, |row| row.get::<_, i64>(0))?;
        Ok(counts.first().map_or(0, |n| to_count(*n)))
    }

    fn hit(&self, id: &[u8], ts_ms: i64, doc: &str) -> Result<Hit, QueryError> {
        let id = ObjectId::from_slice(id).map_err(|error| QueryError::Corrupt {
            context: format!("event in {}", self.path.display()),
            reason: format!("_id: {error}"),
        })?;
        let doc = serde_json::from_str(doc).map_err(|error| QueryError::Corrupt {
            context: format!("event {id} in {}", self.path.display()),
            reason: format!("doc is not JSON: {error}"),
        })?;
        Ok(Hit {
            id,
            ts_ms,
            doc,
            stored_text: None,
        })
    }

    /// Rows of `(_id, ts, doc)` → hits, projected.
    fn hits(
        &self,
        rows: Vec<(Vec<u8>, i64, String)>,
        projection: Option<&[FieldPath]>,
    ) -> Result<Vec<Hit>, QueryError> {
        rows.into_iter()
            .map(|(id, ts_ms, doc)| {
                let mut hit = self.hit(&id, ts_ms, &doc)?;
                match projection {
                    Some(paths) => hit.doc = project(&hit.doc, paths),
                    None => hit.stored_text = Some(doc),
                }
                Ok(hit)
            })
            .collect()
    }

    /// Top `limit` values of the group key of `path` among `select` by
    /// SQLite's GROUP BY (as JSON text; `None` = missing), most frequent
    /// first; `scan` bounds the number of (most recent) events read, and
    /// `prefix` keeps string values starting with it.
    fn top_values_sql(
        &self,
        select: &Selection,
        path: &FieldPath,
        limit: usize,
        scan: Option<usize>,
        prefix: Option<&str>,
    ) -> Result<Vec<(Option<String>, u64)>, QueryError> {
        let mut sql = Sql::default();
        let json_path = sql.bind(SqlValue::Text(compile::json_path(path)?))?;
        let extra = if prefix.is_some() {
            format!(", doc ->> {json_path} AS raw, json_type(doc, {json_path}) AS t")
        } else {
            String::new()
        };
        let arms = compile::hot_arms(&mut sql, select, "")?;
        let rows = match scan {
            Some(scan) => {
                let scan = sql.bind(SqlValue::Integer(to_sql_int(scan)))?;
                arms.union_ordered(
                    &format!("doc -> {json_path} AS k{extra}, ts, _id"),
                    "DESC",
                    &scan,
                )
            }
            None => arms.union_all(&format!("doc -> {json_path} AS k{extra}")),
        };
        sql.push(&format!("SELECT k, count(*) AS n FROM ({rows})"));
        if let Some(prefix) = prefix {
            let start = sql.bind(SqlValue::Text(prefix.to_owned()))?;
            sql.push(&format!(
                " WHERE t = 'text' AND substr(raw, 1, length({start})) = {start}"
            ));
        }
        let limit = sql.bind(SqlValue::Integer(to_sql_int(limit)))?;
        sql.push(&format!(" GROUP BY k ORDER BY n DESC, k LIMIT {limit}"));
        let rows = self.rows("grouping events", &sql, |row| {
            Ok((row.get::<_, Option<String>>(0)?, row.get::<_, i64>(1)?))
        })?;
        Ok(rows
            .into_iter()
            .map(|(key, n)| (key, to_count(n)))
            .collect())
    }

    fn group_key(&self, json: Option<&str>) -> Result<GroupKey, QueryError> {
        match json {
            None => Ok(GroupKey::Missing),
            Some(text) => serde_json::from_str(text)
                .map(GroupKey::Value)
                .map_err(|error| QueryError::Corrupt {
                    context: format!("group key in {}", self.path.display()),
                    reason: format!("not JSON: {error}"),
                }),
        }
    }

    fn head_seq(&self) -> Result<i64, QueryError> {
        let sql = Sql {
            text: "SELECT coalesce(max(seq), 0) FROM events".to_owned(),
            params: Vec::new(),
        };
        let heads = self.rows("reading the last seq", &sql, |row| row.get::<_, i64>(0))?;
        Ok(heads.first().copied().unwrap_or(0))
    }
}

/// The hot tier alone (the `events` table): what each request reads from
/// SQLite; `tiers.rs` adds the columnar files.
impl SqliteQueries {
    fn hot_query(&self, query: &Query) -> Result<Page, QueryError> {
        let limit = query.effective_limit();
        if limit == 0 {
            return Ok(Page {
                events: Vec::new(),
                next: None,
            });
        }
        let sql = page_sql(query, limit)?;
        let (rows, more) = self.bounded_rows("querying events", &sql, limit, |row| {
            Ok(((row.get(0)?, row.get(1)?), row.get(2)?))
        })?;
        let rows = rows
            .into_iter()
            .map(|((id, ts), doc)| (id, ts, doc))
            .collect();
        let events = self.hits(rows, query.projection.as_deref())?;
        Ok(Page::keyset(events, more))
    }

    fn hot_histogram(&self, request: &HistogramRequest) -> Result<Histogram, QueryError> {
        let plan = Plan::new(request)?;
        // Counted in Rust while streaming `ts` off the covering (ts, _id)
        // index: SQLite's GROUP BY on a computed bucket would sort every
        // row through a temp B-tree first (~5x slower, measured).
        let mut sql = Sql::default();
        let (ranked, columns) = match &request.split_by {
            None => (Vec::new(), "ts, NULL".to_owned()),
            Some(split) => {
                check_top_n(split.top_n)?;
                let ranked = self
                    .rank_values(&request.select, &split.path, split.top_n)?
                    .groups;
                let json_path = sql.bind(SqlValue::Text(compile::json_path(&split.path)?))?;
                (ranked, format!("ts, doc -> {json_path}"))
            }
        };
        let arms = compile::hot_arms(&mut sql, &request.select, "")?;
        sql.push(&arms.union_all(&columns));
        let mut slots: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut missing_slot = None;
        for (i, (key, _)) in ranked.iter().enumerate() {
            match key {
                Some(text) => {
                    slots.insert(text.as_bytes().to_vec(), i);
                }
                None => missing_slot = Some(i),
            }
        }
        let mut counts = plan.counts(ranked.len());
        self.scan("computing a histogram", &sql, |row| {
            let ts: i64 = row.get(0)?;
            let slot = match row.get_ref(1)? {
                ValueRef::Text(key) => slots.get(key).copied(),
                _ => missing_slot,
            };
            plan.add(&mut counts, ts, slot, 1);
            Ok(true)
        })?;
        let series = self
            .group_counts(ranked)?
            .into_iter()
            .map(|group| group.key)
            .collect();
        Ok(plan.finish(series, counts))
    }

    fn hot_group_by(&self, request: &GroupByRequest) -> Result<GroupBy, QueryError> {
        check_top_n(request.top_n)?;
        let ranked = self.rank_values(&request.select, &request.path, request.top_n)?;
        let groups = self.group_counts(ranked.groups)?;
        let in_groups: u64 = groups.iter().map(|group| group.count).sum();
        Ok(GroupBy {
            groups,
            other_count: ranked.total.saturating_sub(in_groups),
            total: ranked.total,
            column: None,
        })
    }

    fn hot_distinct(&self, request: &DistinctRequest) -> Result<Vec<GroupCount>, QueryError> {
        let limit = request.limit.min(MAX_DISTINCT_LIMIT);
        let ranked = self.top_values_sql(
            &request.select,
            &request.path,
            limit,
            Some(MAX_SUGGEST_SCAN_EVENTS),
            request.prefix.as_deref(),
        )?;
        let groups = self.group_counts(ranked)?;
        // A missing field is not a value to suggest.
        Ok(groups
            .into_iter()
            .filter(|group| group.key != GroupKey::Missing)
            .collect())
    }

    /// The most recent `sample_limit` documents in `range`, parsed (a
    /// document that is not JSON is skipped: samples are best effort, and
    /// `query` reports such rows as corrupt).
    fn hot_sample(&self, range: TimeRange, sample_limit: usize) -> Result<Vec<Value>, QueryError> {
        let sample_limit = sample_limit.min(MAX_FIELD_SAMPLE_DOCS);
        let mut sql = Sql::default();
        let arms = compile::hot_arms(&mut sql, &Selection::range(range), "")?;
        let sample = sql.bind(SqlValue::Integer(to_sql_int(sample_limit)))?;
        sql.push(&arms.union_ordered("doc, ts, _id", "DESC", &sample));
        let (texts, _) = self.bounded_rows("sampling documents", &sql, sample_limit, |row| {
            Ok(((), row.get(0)?))
        })?;
        Ok(texts
            .iter()
            .filter_map(|((), text)| serde_json::from_str(text).ok())
            .collect())
    }

    fn hot_types(&self, range: TimeRange) -> Result<Vec<TypeCount>, QueryError> {
        let mut sql = Sql::default();
        let arms = compile::hot_arms(&mut sql, &Selection::range(range), "")?;
        // Each arm counts by type on its own (the live one off the
        // `(type, ts, _id)` index); the sums merge the two.
        sql.push(&format!(
            "SELECT type, sum(n) AS n FROM (SELECT type, count(*) AS n {} GROUP BY type \
             UNION ALL SELECT type, count(*) AS n {} GROUP BY type) \
             GROUP BY type ORDER BY n DESC, type",
            arms.live, arms.late
        ));
        let rows = self.rows("counting types", &sql, |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        Ok(rows
            .into_iter()
            .map(|(event_type, n)| TypeCount {
                event_type,
                count: to_count(n),
            })
            .collect())
    }

    fn hot_get(&self, id: ObjectId) -> Result<Option<Hit>, QueryError> {
        let sql = Sql {
            text: "SELECT _id, ts, doc FROM events WHERE _id = ?1".to_owned(),
            params: vec![SqlValue::Blob(id.as_bytes().to_vec())],
        };
        let rows = self.rows("reading one event", &sql, |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
        Ok(self.hits(rows, None)?.into_iter().next())
    }

    fn hot_tail(&self, request: &TailRequest) -> Result<TailPage, QueryError> {
        let head = self.head_seq()?;
        let Some(after) = &request.after else {
            return Ok(TailPage {
                events: Vec::new(),
                next: TailCursor(head.to_string()),
                behind: false,
            });
        };
        let after: i64 = after.0.parse().map_err(|_| {
            QueryError::Invalid(format!(
                "tail cursor `{}` is not a sequence number",
                after.0
            ))
        })?;
        // Sequence numbers start at 1 and a cursor at 0 is "before the
        // first": a negative one was never handed out (following it would
        // replay the whole store, or stall below the first row).
        if after < 0 {
            return Err(QueryError::Invalid(format!(
                "tail cursor `{after}` is out of range: positions are 0 or more"
            )));
        }
        // A cursor past the head means rows with the highest `seq` were
        // deleted and SQLite will hand those numbers out again (`seq` has no
        // AUTOINCREMENT): follow from the head, or the reused numbers would
        // be skipped.
        let after = after.min(head);
        let scan_end = head.min(after.saturating_add(MAX_TAIL_SCAN_ROWS));
        let limit = request.limit.min(MAX_TAIL_LIMIT);
        let mut sql = Sql::default();
        let from = sql.bind(SqlValue::Integer(after))?;
        let to = sql.bind(SqlValue::Integer(scan_end))?;
        sql.push(&format!(
            "SELECT seq, _id, ts, doc FROM events WHERE seq > {from} AND seq <= {to} AND "
        ));
        let select = Selection {
            range: TimeRange::ALL,
            types: request.types.clone(),
            filter: request.filter.clone(),
        };
        compile::selection(&mut sql, &select)?;
        let fetch = sql.bind(SqlValue::Integer(to_sql_int(limit)))?;
        sql.push(&format!(" ORDER BY seq LIMIT {fetch}"));
        let (rows, cut) = self.bounded_rows("tailing events", &sql, limit, |row| {
            Ok((
                (row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?),
                row.get(3)?,
            ))
        })?;
        let rows: Vec<(i64, DocRow)> = rows
            .into_iter()
            .map(|((seq, id, ts), doc)| (seq, (id, ts, doc)))
            .collect();
        // A full page (by count or by bytes) stops at its last event; a
        // short one has seen every row up to the end of the scan.
        let next = if (rows.len() == limit || cut) && limit > 0 {
            rows.last().map_or(scan_end, |(seq, _)| *seq)
        } else if limit == 0 {
            after
        } else {
            scan_end.max(after)
        };
        let events = self.hits(rows.into_iter().map(|(_, row)| row).collect(), None)?;
        Ok(TailPage {
            events,
            next: TailCursor(next.to_string()),
            // At most MAX_TAIL_SCAN_ROWS rows per poll: past the head's
            // reach the rest waits for the next poll, which must come at
            // once (a tail filtered to a rare type reads 10,000 rows per
            // 250 ms otherwise: 40,000 events/s, behind a faster store).
            behind: next < head,
        })
    }
}

/// SQLite's own words for a statement beyond its limits (expression depth,
/// parser stack, terms, variables, sizes): the filter's fault, not the
/// store's, so a client error. `None` for any other failure.
fn too_complex(error: &rusqlite::Error) -> Option<String> {
    const MARKERS: [&str; 7] = [
        "Expression tree is too large",
        "parser stack overflow",
        "too many terms in compound SELECT",
        "too many SQL variables",
        "too many FROM clause terms",
        "at most 64 tables in a join",
        "too many arguments on function",
    ];
    let rusqlite::Error::SqliteFailure(failure, message) = error else {
        return None;
    };
    let message = message.as_deref().unwrap_or("");
    if failure.code == rusqlite::ErrorCode::TooBig
        || MARKERS.iter().any(|marker| message.contains(marker))
    {
        return Some(if message.is_empty() {
            error.to_string()
        } else {
            message.to_owned()
        });
    }
    None
}

/// The statement of one page: the selection, the keyset position, the
/// order, and one row more than `limit` (which tells whether a next page
/// exists).
fn page_sql(query: &Query, limit: usize) -> Result<Sql, QueryError> {
    let mut sql = Sql::default();
    let (compare, direction) = match query.sort {
        SortOrder::Desc => ("<", "DESC"),
        SortOrder::Asc => (">", "ASC"),
    };
    let mut keyset = String::new();
    if let Some(after) = &query.after {
        let ts = sql.bind(SqlValue::Integer(after.ts_ms))?;
        let id = sql.bind(SqlValue::Blob(after.id.as_bytes().to_vec()))?;
        keyset = format!(" AND (ts, _id) {compare} ({ts}, {id})");
    }
    let arms = compile::hot_arms(&mut sql, &query.select, &keyset)?;
    let fetch = sql.bind(SqlValue::Integer(to_sql_int(limit + 1)))?;
    sql.push(&arms.union_ordered("_id, ts, doc", direction, &fetch));
    Ok(sql)
}

fn check_top_n(top_n: usize) -> Result<(), QueryError> {
    if top_n == 0 || top_n > MAX_TOP_N {
        return Err(QueryError::Invalid(format!(
            "top_n must be 1..={MAX_TOP_N}, got {top_n}"
        )));
    }
    Ok(())
}

/// A count SQLite returned (never negative) as `u64`.
fn to_count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A bounded size as an SQL integer (every size here is capped far below
/// `i64::MAX`).
fn to_sql_int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
