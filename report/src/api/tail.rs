//! `GET /api/tail`: a live tail as Server-Sent Events, following insertion
//! order (DESIGN §6: an event flushed late still shows up, because the
//! position is the store's insertion order, not `ts`).
//!
//! Each connection polls the query layer every [`TAIL_POLL_INTERVAL`]
//! (on the blocking pool, like every query); after a full poll (the tail is
//! behind) it polls again at once, so it catches up instead of falling
//! further behind under load. The SSE `id` of the last
//! event of each poll is the tail position, so a browser that reconnects
//! sends it back as `Last-Event-ID` and resumes without a gap (an event may
//! repeat; the UI drops rows it already shows). A position too long for an
//! SSE id (MongoDB's carries the ids of its trailing window) is kept in
//! [`ResumePositions`] under a short id instead.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use helios_store::query::{TailCursor, TailRequest};
use tokio::sync::{watch, OwnedSemaphorePermit};

use super::AppState;
use crate::backend::Backend;
use crate::error::ApiError;
use crate::params::{self, Params};

/// Live-tail connections at once; more get 503.
pub const MAX_TAIL_CLIENTS: usize = 32;
/// How often a tail asks the store for new events.
pub const TAIL_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Most events one poll forwards (the next poll continues).
const TAIL_POLL_EVENTS: usize = 500;
/// SSE comment sent on a quiet connection so proxies keep it open.
const TAIL_KEEPALIVE: Duration = Duration::from_secs(15);
/// Longest tail position accepted from a client.
const MAX_TAIL_CURSOR_BYTES: usize = 128;
/// Long positions kept for resuming; the oldest are forgotten first (a
/// browser coming back with a forgotten id starts at the end).
pub const MAX_RESUME_POSITIONS: usize = 4096;
/// First character of a short id that stands for a kept position (store
/// positions start with a digit or `-`).
const RESUME_ID_PREFIX: &str = "r";

/// Tail positions too long to travel as an SSE `id`, under short ids.
#[derive(Debug, Default)]
pub struct ResumePositions {
    inner: Mutex<ResumeInner>,
}

#[derive(Debug, Default)]
struct ResumeInner {
    next: u64,
    by_id: HashMap<u64, String>,
    order: VecDeque<u64>,
}

impl ResumePositions {
    /// Keeps `position` and returns the short id that stands for it.
    fn remember(&self, position: String) -> String {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let id = inner.next;
        inner.next += 1;
        inner.by_id.insert(id, position);
        inner.order.push_back(id);
        while inner.order.len() > MAX_RESUME_POSITIONS {
            if let Some(old) = inner.order.pop_front() {
                inner.by_id.remove(&old);
            }
        }
        format!("{RESUME_ID_PREFIX}{id}")
    }

    /// What `text` stands for as a short id (see [`Recalled`]).
    fn recall(&self, text: &str) -> Recalled {
        let Some(number) = text.strip_prefix(RESUME_ID_PREFIX) else {
            return Recalled::NotShort;
        };
        // Exactly the form `remember` writes: digits, no sign, no leading
        // zero (so one id has one spelling).
        let canonical = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
            && (number == "0" || !number.starts_with('0'));
        let Some(id) = number.parse::<u64>().ok().filter(|_| canonical) else {
            return Recalled::Malformed;
        };
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.by_id.get(&id) {
            Some(position) => Recalled::Kept(position.clone()),
            None => Recalled::Forgotten,
        }
    }
}

/// What a client's tail position is, as a short id.
#[derive(Debug, PartialEq, Eq)]
enum Recalled {
    /// Not a short id: a store position.
    NotShort,
    /// A short id for this kept position.
    Kept(String),
    /// A well-formed short id this server no longer (or never: an earlier
    /// run's) has: the tail follows from the end.
    Forgotten,
    /// Starts like a short id but is none this server could have written.
    Malformed,
}

/// `GET /api/tail?types&q&filter&after` (or the `Last-Event-ID` header).
pub async fn tail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let given = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or_else(|| params::text(&params, "after"));
    let after = match given.map(|text| (text, state.tail_positions.recall(text))) {
        None => None,
        Some((_, Recalled::Kept(position))) => Some(TailCursor(position)),
        Some((text, Recalled::Forgotten)) => {
            tracing::info!(
                id = text,
                "tail resume id forgotten; following from the end"
            );
            None
        }
        Some((_, Recalled::Malformed)) => return Err(not_handed_out()),
        Some((text, Recalled::NotShort)) => Some(tail_cursor(text)?),
    };
    let request = TailRequest {
        types: params::types(&params)?,
        filter: params::filter(&params)?,
        after,
        limit: TAIL_POLL_EVENTS,
    };
    let permit = Arc::clone(&state.tail_clients)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::Busy(format!(
                "at most {MAX_TAIL_CLIENTS} live tails at once; try again shortly"
            ))
        })?;
    // The first poll runs before answering, so a store that cannot tail or
    // is not there yet gets a proper status instead of an empty stream.
    let mut tail = Tail {
        backend: Arc::clone(&state.backend),
        request: Some(request),
        pending: VecDeque::new(),
        behind: false,
        positions: Arc::clone(&state.tail_positions),
        shutdown: state.shutdown.clone(),
        _permit: permit,
    };
    tail.poll().await?;
    let events = stream::unfold(tail, |mut tail| async move {
        tail.next_event().await.map(|event| (Ok(event), tail))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(TAIL_KEEPALIVE)))
}

/// A tail position from a client: short and plain, because it is echoed
/// back as an SSE `id` line.
/// The store judges its own positions (a 400 for one out of its range).
fn tail_cursor(text: &str) -> Result<TailCursor, ApiError> {
    if !is_plain_cursor(text) {
        return Err(not_handed_out());
    }
    Ok(TailCursor(text.to_owned()))
}

fn not_handed_out() -> ApiError {
    ApiError::BadRequest("the tail position is not one this server handed out".to_owned())
}

/// Whether a position can travel as an SSE `id` line (axum panics on line
/// breaks there) and in a query string without surprises.
fn is_plain_cursor(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_TAIL_CURSOR_BYTES
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// One connection's tail.
struct Tail {
    backend: Arc<Backend>,
    /// `None` only while a poll runs (it travels to the blocking pool).
    request: Option<TailRequest>,
    pending: VecDeque<Event>,
    /// Whether the last poll came back full: more may be waiting already.
    behind: bool,
    /// Where positions too long for an SSE id are kept.
    positions: Arc<ResumePositions>,
    shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl Tail {
    /// The next event to send; `None` ends the stream (shutdown or a store
    /// error: the browser reconnects from its last id).
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if *self.shutdown.borrow() {
                return None;
            }
            if !self.behind {
                tokio::select! {
                    () = tokio::time::sleep(TAIL_POLL_INTERVAL) => {}
                    _ = self.shutdown.changed() => return None,
                }
            }
            if let Err(error) = self.poll().await {
                tracing::warn!(%error, "live tail stopped");
                return None;
            }
        }
    }

    /// Asks the store for what came after the current position.
    async fn poll(&mut self) -> Result<(), ApiError> {
        let Some(request) = self.request.take() else {
            return Ok(());
        };
        let (page, mut request) = self
            .backend
            .run(move |b| b.tail(&request).map(|page| (page, request)))
            .await?;
        self.behind = page.behind;
        let last = page.events.len().saturating_sub(1);
        for (i, hit) in page.events.iter().enumerate() {
            let mut event = Event::default()
                .event("event")
                .data(hit.document().to_string());
            if i == last {
                let id = if is_plain_cursor(&page.next.0) {
                    page.next.0.clone()
                } else {
                    self.positions.remember(page.next.0.clone())
                };
                event = event.id(id);
            }
            self.pending.push_back(event);
        }
        request.after = Some(page.next);
        self.request = Some(request);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_position_travels_as_a_short_id_and_comes_back_whole() {
        let positions = ResumePositions::default();
        let long = format!(
            "1700000000000.0{}",
            ".5-0123456789abcdef01234567".repeat(50)
        );
        let id = positions.remember(long.clone());
        assert!(is_plain_cursor(&id), "{id}");
        assert_eq!(positions.recall(&id), Recalled::Kept(long));
    }

    #[test]
    fn store_positions_are_not_mistaken_for_short_ids() {
        let positions = ResumePositions::default();
        assert_eq!(positions.recall("42"), Recalled::NotShort);
        assert_eq!(positions.recall("-3.7"), Recalled::NotShort);
    }

    #[test]
    fn a_short_id_this_server_could_not_have_written_is_malformed() {
        let positions = ResumePositions::default();
        for text in ["r", "rx", "r-1", "r01", "r+1", "r99999999999999999999999"] {
            assert_eq!(positions.recall(text), Recalled::Malformed, "{text}");
        }
        assert_eq!(positions.recall("r7"), Recalled::Forgotten);
    }

    #[test]
    fn the_oldest_positions_are_forgotten_past_the_bound() {
        let positions = ResumePositions::default();
        let first = positions.remember("first".to_owned());
        for n in 0..MAX_RESUME_POSITIONS {
            positions.remember(n.to_string());
        }
        assert_eq!(
            positions.recall(&first),
            Recalled::Forgotten,
            "forgotten, not an error"
        );
    }
}
