//! [`Export`]: every event of a selection, read page by page so that no
//! read transaction stays open while the caller writes the output (on
//! SQLite a long reader pins the WAL and stops checkpoints, DESIGN §6).

use super::api::{Hit, QueryBackend};
use super::error::QueryError;
use super::ir::{FieldPath, Query, Selection, SortOrder, MAX_PAGE_LIMIT};

/// Events per page an export reads: one short read transaction each.
pub const EXPORT_CHUNK_EVENTS: usize = MAX_PAGE_LIMIT;
/// Most events one export yields: a bound on one request's work.
pub const MAX_EXPORT_EVENTS: u64 = 10_000_000;

/// An export request.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    /// Which events.
    pub select: Selection,
    /// In which order.
    pub sort: SortOrder,
    /// Only these fields (see [`Query::projection`]).
    pub projection: Option<Vec<FieldPath>>,
    /// Stop after this many events (capped at [`MAX_EXPORT_EVENTS`]).
    pub max_events: u64,
}

/// An iterator over the events of an [`ExportRequest`], fetching
/// [`EXPORT_CHUNK_EVENTS`] at a time through [`QueryBackend::query`] with
/// keyset pagination. After an error it yields nothing more.
pub struct Export<'a> {
    backend: &'a dyn QueryBackend,
    query: Query,
    remaining: u64,
    buffered: std::vec::IntoIter<Hit>,
    done: bool,
}

impl<'a> Export<'a> {
    /// Starts an export; nothing is read until the first `next()`.
    pub fn new(backend: &'a dyn QueryBackend, request: ExportRequest) -> Self {
        let query = Query {
            select: request.select,
            sort: request.sort,
            limit: EXPORT_CHUNK_EVENTS,
            after: None,
            projection: request.projection,
        };
        Self {
            backend,
            query,
            remaining: request.max_events.min(MAX_EXPORT_EVENTS),
            buffered: Vec::new().into_iter(),
            done: false,
        }
    }

    fn refill(&mut self) -> Result<(), QueryError> {
        let page = self.backend.query(&self.query)?;
        match page.next {
            Some(next) => self.query.after = Some(next),
            None => self.done = true,
        }
        self.buffered = page.events.into_iter();
        Ok(())
    }
}

impl Iterator for Export<'_> {
    type Item = Result<Hit, QueryError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            if let Some(hit) = self.buffered.next() {
                self.remaining -= 1;
                return Some(Ok(hit));
            }
            if self.done {
                return None;
            }
            if let Err(error) = self.refill() {
                self.done = true;
                self.remaining = 0;
                return Some(Err(error));
            }
        }
    }
}
