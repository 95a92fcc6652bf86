//! Request-side validation (DESIGN §3 "Event"): which events of a decoded
//! body are accepted, as byte ranges of the body, and which are rejected,
//! with why.
//!
//! How: a structural scan ([`super::scan`]) finds each event's extent and
//! nesting depth; serde_json then parses exactly that slice once, skipping
//! every value but the envelope members ([`super::fields`]). Together they
//! validate the whole body: serde_json checks every event slice, the glue
//! between slices (`[`, `,`, `]`, whitespace, newlines) is checked here.
//!
//! Why serde_json and not simd-json (`benches/benches/validate.rs`, same
//! run, 300-byte reference events): this path validates ~620 MB/s on an
//! array of 100; a simd-json tape walk with reused buffers applying the same
//! rules runs ~900 MB/s but yields no byte ranges (its tape has no input
//! offsets) and no duplicate check; adding the extent scan (~3.5 GB/s) and
//! the duplicate check (~10%) brings it to about the same cost, plus an
//! input copy because simd-json unescapes in place. At a tie serde_json
//! wins: it is the parser the store's document builder uses on the flush
//! side, so whatever is accepted (and acked) here is known to build there.
//!
//! Choices where DESIGN §3 is silent:
//! - Too deep: a per-event reject in every form. The body is still JSON
//!   and the other events are fine, so there is no reason to refuse them;
//!   the depth is counted without recursion, so no depth can hurt us. (An
//!   event over the depth limit is not parsed, so a syntax error hidden in
//!   it is not noticed: it is rejected either way.)
//! - Duplicate member names (after unescaping): a per-event reject, for
//!   every top-level name. JSON readers disagree on which value wins, so the
//!   event would mean different things to different consumers.
//! - `app` that is not a string: a per-event reject (even when auth will
//!   overwrite it), so the contract does not depend on the server's mode.
//! - `ts_raw` from a client: accepted and dropped when the document is built
//!   (only a relay's `ts_raw` is kept).
//! - In the JSON (object/array) form any syntax error makes the body
//!   malformed (400): past a syntax error no boundary can be trusted. In
//!   NDJSON a line is its own boundary, so a bad line is a per-event reject.

use std::ops::Range;

use super::fields::{
    event_facts, is_unreadable_value, EventFacts, FieldScratch, IdField, StringField, TimeField,
};
use super::priority::Priority;
use super::scan::{skip_whitespace, trim_whitespace, value_extent, Extent};

/// Default for [`ValidateLimits::max_events_per_request`].
pub const DEFAULT_MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// Default for [`ValidateLimits::max_json_depth`].
pub const DEFAULT_MAX_JSON_DEPTH: usize = 32;
/// The largest depth limit honoured: serde_json refuses to nest deeper than
/// 127 (its recursion limit of 128), and a limit above that would let us
/// accept events the flush side cannot parse.
pub const MAX_JSON_DEPTH_CEILING: usize = 127;
/// The largest events-per-request limit honoured. The ids minted for one
/// request share a second and a node id and differ only in the 24-bit
/// counter, so one request must stay far below 2^24 minted ids.
pub const MAX_EVENTS_PER_REQUEST_CEILING: usize = 1 << 20;

/// How the body is framed (from `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// One JSON object, or a JSON array of objects.
    Json,
    /// One JSON value per line; blank lines are skipped.
    Ndjson,
}

/// Per-request limits (config knobs; values above the ceilings are clamped
/// to them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidateLimits {
    /// More events than this in one body: [`BodyError::TooManyEvents`].
    /// Clamped to [`MAX_EVENTS_PER_REQUEST_CEILING`].
    pub max_events_per_request: usize,
    /// Bracket nesting allowed in one event (`{}` is 1): deeper events are
    /// rejected. Clamped to [`MAX_JSON_DEPTH_CEILING`].
    pub max_json_depth: usize,
}

impl Default for ValidateLimits {
    fn default() -> Self {
        Self {
            max_events_per_request: DEFAULT_MAX_EVENTS_PER_REQUEST,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
        }
    }
}

impl ValidateLimits {
    fn max_events(&self) -> usize {
        self.max_events_per_request
            .min(MAX_EVENTS_PER_REQUEST_CEILING)
    }

    fn max_depth(&self) -> usize {
        self.max_json_depth.min(MAX_JSON_DEPTH_CEILING)
    }
}

/// Who sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValidateMode {
    /// A relay (relay-role key, or `Helios-Relay: 1` with auth off): events
    /// may carry `recv`, `app` and `ts_raw`, and must carry `_id`.
    pub relay: bool,
}

/// Why one event was rejected (the `error` of a `rejected` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// An NDJSON line that is not one JSON value.
    #[error("not valid JSON")]
    InvalidJson,
    /// An array element or line that is JSON but not an object.
    #[error("event must be a JSON object")]
    NotAnObject,
    /// Nesting deeper than `max_json_depth`.
    #[error("event nests too deep")]
    TooDeep,
    /// A member name appears twice.
    #[error("duplicate member name")]
    DuplicateName,
    /// No `type` member.
    #[error("missing type")]
    MissingType,
    /// `type` is not a non-empty string.
    #[error("type must be a non-empty string")]
    InvalidType,
    /// `ts` is neither RFC 3339 text nor integer epoch ms in years 0000–9999.
    #[error("ts must be an RFC 3339 string or integer epoch milliseconds")]
    InvalidTs,
    /// `_id` is not a string of 24 hex digits.
    #[error("_id must be 24 hex digits")]
    InvalidId,
    /// `recv` from a client that is not a relay.
    #[error("recv is set by the collector")]
    RecvNotAllowed,
    /// Accepted by the rules, then refused because the journal is too full
    /// for its priority (the store is behind): retry later.
    #[error("{}", budget_refusal(*.0))]
    JournalBudget(Priority),
    /// `recv` from a relay is not a valid time.
    #[error("recv must be an RFC 3339 string or integer epoch milliseconds")]
    InvalidRecv,
    /// `app` is present but not a string.
    #[error("app must be a string")]
    InvalidApp,
    /// A relayed event without `_id` (a relay always forwards the id, so a
    /// replay upstream stays deduplicated).
    #[error("relayed event must carry _id")]
    RelayWithoutId,
    /// A string holds a lone UTF-16 surrogate escape, or a number is beyond
    /// the range of a 64-bit float: valid JSON syntax that no reader of the
    /// stored event could decode.
    #[error("a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff) or a number is beyond the 64-bit float range")]
    UnreadableValue,
}

impl EventError {
    /// Whether the event itself is fine and only the collector's state
    /// refused it (the journal budget): the sender should retry it later,
    /// not drop it as bad data (a syslog RELP frame gets `rsp 500`).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::JournalBudget(_))
    }

    /// The message as a static string (for the response body, without
    /// allocating).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidJson => "not valid JSON",
            Self::NotAnObject => "event must be a JSON object",
            Self::TooDeep => "event nests too deep",
            Self::DuplicateName => "duplicate member name",
            Self::MissingType => "missing type",
            Self::InvalidType => "type must be a non-empty string",
            Self::InvalidTs => "ts must be an RFC 3339 string or integer epoch milliseconds",
            Self::InvalidId => "_id must be 24 hex digits",
            Self::RecvNotAllowed => "recv is set by the collector",
            Self::InvalidRecv => "recv must be an RFC 3339 string or integer epoch milliseconds",
            Self::InvalidApp => "app must be a string",
            Self::RelayWithoutId => "relayed event must carry _id",
            Self::UnreadableValue => {
                "a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff) or a number is beyond the 64-bit float range"
            }
            Self::JournalBudget(priority) => budget_refusal(*priority),
        }
    }
}

/// Why an event of `priority` was refused at the journal budget. The
/// knobs are named rather than their values given: the message is static
/// (no allocation per refused event), and the 503 a wholly refused request
/// gets names the values.
fn budget_refusal(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => {
            "journal budget: low-priority events are refused above --low-priority-budget-percent of the budget (the store is behind); retry later"
        }
        Priority::Normal => {
            "journal budget: normal-priority events are refused in the --high-priority-reserve-percent kept for high priority (the store is behind); retry later"
        }
        Priority::High => "journal budget reached: the store is behind; retry later",
    }
}

/// One rejected event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// 0-based position among the array's elements or the body's non-blank
    /// NDJSON lines (0 for a single object).
    pub index: usize,
    /// Why.
    pub error: EventError,
}

/// The whole body is refused; no event of it is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON, or a top-level value that is neither an object nor an
    /// array (JSON form only). The server answers 400.
    #[error("malformed body: {0}")]
    Malformed(String),
    /// More events than the limit. The server answers 413.
    #[error("more than {limit} events in one request")]
    TooManyEvents {
        /// The limit in force.
        limit: usize,
    },
}

/// The outcome of [`validate`], in buffers reused from request to request
/// (keep one per core: after the first few requests, validation allocates
/// nothing per event).
#[derive(Debug, Default)]
pub struct Validation {
    accepted: Vec<Range<usize>>,
    /// Beside `accepted`, one per accepted event.
    accepted_facts: Vec<AcceptedFacts>,
    rejected: Vec<Reject>,
    mint_count: u32,
    event_count: usize,
    scratch: FieldScratch,
}

impl Validation {
    /// Empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Byte ranges of the body holding the accepted events, in body order,
    /// verbatim (no surrounding whitespace): what gets journaled.
    pub fn accepted(&self) -> &[Range<usize>] {
        &self.accepted
    }

    /// Rejected events, in body order.
    pub fn rejected(&self) -> &[Reject] {
        &self.rejected
    }

    /// How many accepted events carry no `_id`, i.e. how many ids the
    /// collector must mint for this request (`IdMinter::reserve`).
    pub fn mint_count(&self) -> u32 {
        self.mint_count
    }

    /// Events seen: accepted plus rejected.
    pub fn event_count(&self) -> usize {
        self.event_count
    }

    /// How many accepted events have each priority, in
    /// [`Priority::index`] order.
    pub fn accepted_priorities(&self) -> [u64; 3] {
        let mut counts = [0u64; 3];
        for facts in &self.accepted_facts {
            counts[facts.priority.index()] += 1;
        }
        counts
    }

    /// Moves every accepted event whose priority `refused` names into the
    /// rejects ([`EventError::JournalBudget`]), keeping both lists in body
    /// order and the mint count exact. Returns how many were moved per
    /// priority ([`Priority::index`] order). Runs only when the journal is
    /// past a priority threshold, so it may allocate.
    pub fn refuse_priorities(&mut self, refused: impl Fn(Priority) -> bool) -> [u64; 3] {
        let mut counts = [0u64; 3];
        if !self.accepted_facts.iter().any(|f| refused(f.priority)) {
            return counts;
        }
        // Every index below `event_count` is either accepted or rejected,
        // both in body order: the k-th accepted event's index is the k-th
        // index the old rejects do not hold.
        let old_rejects = std::mem::take(&mut self.rejected);
        let mut old_rejects = old_rejects.into_iter().peekable();
        let mut index = 0usize;
        let mut kept = 0usize;
        for k in 0..self.accepted.len() {
            while let Some(reject) = old_rejects.next_if(|r| r.index == index) {
                self.rejected.push(reject);
                index += 1;
            }
            let facts = self.accepted_facts[k];
            if refused(facts.priority) {
                self.rejected.push(Reject {
                    index,
                    error: EventError::JournalBudget(facts.priority),
                });
                counts[facts.priority.index()] += 1;
                if facts.minted {
                    self.mint_count -= 1;
                }
            } else {
                self.accepted.swap(kept, k);
                self.accepted_facts[kept] = facts;
                kept += 1;
            }
            index += 1;
        }
        self.rejected.extend(old_rejects);
        self.accepted.truncate(kept);
        self.accepted_facts.truncate(kept);
        debug_assert_eq!(self.accepted.len() + self.rejected.len(), self.event_count);
        counts
    }

    fn clear(&mut self) {
        self.accepted.clear();
        self.accepted_facts.clear();
        self.rejected.clear();
        self.mint_count = 0;
        self.event_count = 0;
    }
}

/// Validates a decoded request body into `out` (cleared first).
///
/// `Ok` means the body as a whole is acceptable; each event is then either
/// in [`Validation::accepted`] or in [`Validation::rejected`] (all rejected is
/// still `Ok`: the server answers 200 with `accepted: 0`). On `Err`, `out`
/// holds whatever was gathered before the error and must not be used.
pub fn validate(
    body: &[u8],
    format: BodyFormat,
    limits: &ValidateLimits,
    mode: ValidateMode,
    out: &mut Validation,
) -> Result<(), BodyError> {
    out.clear();
    let mut run = Run { limits, mode, out };
    match format {
        BodyFormat::Json => run.json(body),
        BodyFormat::Ndjson => run.ndjson(body),
    }
}

/// One validation in progress.
struct Run<'a> {
    limits: &'a ValidateLimits,
    mode: ValidateMode,
    out: &'a mut Validation,
}

/// What the collector keeps of an accepted event besides its bytes.
#[derive(Debug, Clone, Copy)]
struct AcceptedFacts {
    priority: Priority,
    /// It carries no `_id`: the collector mints one.
    minted: bool,
}

/// What became of one event.
enum Verdict {
    Accepted(AcceptedFacts),
    Rejected(EventError),
    /// Not valid JSON: a reject in NDJSON, a malformed body in JSON form.
    NotJson(NotJson),
}

/// Why an event's bytes are not JSON.
enum NotJson {
    Syntax(serde_json::Error),
    /// serde_json does not check the UTF-8 of strings it skips, so we do.
    Utf8,
}

impl NotJson {
    fn detail(&self) -> String {
        match self {
            Self::Syntax(error) => error.to_string(),
            Self::Utf8 => String::from("invalid UTF-8"),
        }
    }
}

impl Run<'_> {
    fn json(&mut self, body: &[u8]) -> Result<(), BodyError> {
        let start = skip_whitespace(body, 0);
        match body.get(start) {
            None => Err(malformed("empty body")),
            Some(b'{') => self.json_object(body, start),
            Some(b'[') => self.json_array(body, start),
            Some(_) => Err(malformed(
                "the top-level JSON value must be an object or an array of objects",
            )),
        }
    }

    fn json_object(&mut self, body: &[u8], start: usize) -> Result<(), BodyError> {
        let (offset, event) = trim_whitespace(body.get(start..).unwrap_or_default());
        let start = start + offset;
        let depth = self
            .whole_value_depth(event)
            .ok_or_else(|| malformed("expected exactly one JSON object"))?;
        let extent = Extent {
            end: start + event.len(),
            max_depth: depth,
        };
        self.element(body, start, extent)
    }

    /// Depth of `event`, which must be exactly one value (serde_json checks
    /// that when it parses the event). Counting opening brackets, in strings
    /// too, bounds the depth from above at a fraction of a scan's cost; only
    /// events over the limit by that count get the exact scan. `None` when
    /// the exact scan finds no single complete value.
    fn whole_value_depth(&self, event: &[u8]) -> Option<usize> {
        let bound = event
            .iter()
            .filter(|&&byte| byte == b'{' || byte == b'[')
            .count();
        if bound <= self.limits.max_depth() {
            return Some(bound);
        }
        match value_extent(event, 0) {
            Ok(extent) if extent.end == event.len() => Some(extent.max_depth),
            _ => None,
        }
    }

    fn json_array(&mut self, body: &[u8], open: usize) -> Result<(), BodyError> {
        let mut at = skip_whitespace(body, open + 1);
        if body.get(at) == Some(&b']') {
            return self.json_end(body, at + 1);
        }
        loop {
            let extent = value_extent(body, at).map_err(|_| {
                malformed_at(self.out.event_count, "expected a complete JSON value")
            })?;
            self.element(body, at, extent)?;
            at = skip_whitespace(body, extent.end);
            match body.get(at) {
                Some(b',') => at = skip_whitespace(body, at + 1),
                Some(b']') => return self.json_end(body, at + 1),
                _ => {
                    return Err(malformed_at(
                        self.out.event_count,
                        "expected `,` or `]` after the array element",
                    ))
                }
            }
        }
    }

    fn json_end(&mut self, body: &[u8], after_close: usize) -> Result<(), BodyError> {
        if skip_whitespace(body, after_close) == body.len() {
            Ok(())
        } else {
            Err(malformed("unexpected bytes after the JSON array"))
        }
    }

    /// One object-form event or array element at `body[start..extent.end]`.
    fn element(&mut self, body: &[u8], start: usize, extent: Extent) -> Result<(), BodyError> {
        let index = self.next_index()?;
        let range = start..extent.end;
        let event = body.get(range.clone()).unwrap_or_default();
        match self.judge(event, extent.max_depth) {
            Verdict::Accepted(facts) => {
                self.out.accepted.push(range);
                self.out.accepted_facts.push(facts);
            }
            Verdict::Rejected(error) => self.out.rejected.push(Reject { index, error }),
            Verdict::NotJson(error) => return Err(malformed_at(index, &error.detail())),
        }
        Ok(())
    }

    fn ndjson(&mut self, body: &[u8]) -> Result<(), BodyError> {
        let mut line_start = 0usize;
        for line in body.split(|&byte| byte == b'\n') {
            let (offset, event) = trim_whitespace(line);
            let start = line_start + offset;
            line_start += line.len() + 1;
            if event.is_empty() {
                continue;
            }
            let index = self.next_index()?;
            let verdict = match self.whole_value_depth(event) {
                Some(depth) => self.judge(event, depth),
                // Unterminated, or more than one value on the line.
                None => Verdict::Rejected(EventError::InvalidJson),
            };
            match verdict {
                Verdict::Accepted(facts) => {
                    self.out.accepted.push(start..start + event.len());
                    self.out.accepted_facts.push(facts);
                }
                Verdict::Rejected(error) => self.out.rejected.push(Reject { index, error }),
                Verdict::NotJson(_) => self.out.rejected.push(Reject {
                    index,
                    error: EventError::InvalidJson,
                }),
            }
        }
        Ok(())
    }

    /// Counts one more event and returns its index, or refuses the body when
    /// that is one too many (checked before any work on the event, so an
    /// oversized body costs one scan up to the limit, no more).
    fn next_index(&mut self) -> Result<usize, BodyError> {
        let index = self.out.event_count;
        let limit = self.limits.max_events();
        if index >= limit {
            return Err(BodyError::TooManyEvents { limit });
        }
        self.out.event_count += 1;
        Ok(index)
    }

    /// Judges one event whose extent is exactly `event`.
    fn judge(&mut self, event: &[u8], depth: usize) -> Verdict {
        if depth > self.limits.max_depth() {
            return Verdict::Rejected(EventError::TooDeep);
        }
        // The event is journaled verbatim and read back as text: it must be
        // UTF-8 everywhere, including in the values serde_json skips.
        let Ok(event) = std::str::from_utf8(event) else {
            return Verdict::NotJson(NotJson::Utf8);
        };
        if !event.starts_with('{') {
            // Still tell JSON from garbage: in the JSON form garbage makes
            // the whole body malformed.
            return match serde_json::from_str::<serde::de::IgnoredAny>(event) {
                Ok(_) => Verdict::Rejected(EventError::NotAnObject),
                Err(error) => Verdict::NotJson(NotJson::Syntax(error)),
            };
        }
        let facts = match event_facts(event, &mut self.out.scratch) {
            Ok(facts) => facts,
            Err(error) if is_unreadable_value(&error) => {
                return Verdict::Rejected(EventError::UnreadableValue)
            }
            Err(error) => return Verdict::NotJson(NotJson::Syntax(error)),
        };
        if self.out.scratch.has_duplicate_name() {
            return Verdict::Rejected(EventError::DuplicateName);
        }
        match check_rules(&facts, self.mode) {
            Ok(()) => {
                let minted = facts.id == IdField::Absent;
                if minted {
                    self.out.mint_count += 1;
                }
                Verdict::Accepted(AcceptedFacts {
                    priority: facts.priority,
                    minted,
                })
            }
            Err(error) => Verdict::Rejected(error),
        }
    }
}

/// The event rules of DESIGN §3, in the order a client would fix them.
fn check_rules(facts: &EventFacts, mode: ValidateMode) -> Result<(), EventError> {
    match facts.event_type {
        StringField::Absent => return Err(EventError::MissingType),
        StringField::NotString | StringField::Str { empty: true } => {
            return Err(EventError::InvalidType)
        }
        StringField::Str { empty: false } => {}
    }
    if facts.ts == TimeField::Invalid {
        return Err(EventError::InvalidTs);
    }
    match facts.id {
        IdField::Invalid => return Err(EventError::InvalidId),
        IdField::Absent if mode.relay => return Err(EventError::RelayWithoutId),
        IdField::Absent | IdField::Valid(_) => {}
    }
    match (facts.recv, mode.relay) {
        (TimeField::Absent, _) => {}
        (_, false) => return Err(EventError::RecvNotAllowed),
        (TimeField::Invalid, true) => return Err(EventError::InvalidRecv),
        (TimeField::Ms(_), true) => {}
    }
    if facts.app == StringField::NotString {
        return Err(EventError::InvalidApp);
    }
    Ok(())
}

fn malformed(detail: &str) -> BodyError {
    BodyError::Malformed(detail.to_owned())
}

fn malformed_at(index: usize, detail: &str) -> BodyError {
    BodyError::Malformed(format!("event {index}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(body: &str) -> Validation {
        let mut v = Validation::new();
        validate(
            body.as_bytes(),
            BodyFormat::Ndjson,
            &ValidateLimits::default(),
            ValidateMode::default(),
            &mut v,
        )
        .expect("valid body");
        v
    }

    fn texts<'b>(body: &'b str, v: &Validation) -> Vec<&'b str> {
        v.accepted().iter().map(|r| &body[r.clone()]).collect()
    }

    #[test]
    fn refused_priorities_become_rejects_in_body_order_and_ids_to_mint_follow() {
        let body = concat!(
            r#"{"type":"a","priority":"low"}"#,
            "\n",
            r#"{"no":"type"}"#,
            "\n",
            r#"{"type":"b","priority":"high"}"#,
            "\n",
            r#"{"type":"c","priority":"low","_id":"0123456789abcdef01234567"}"#,
            "\n",
            r#"{"type":"d"}"#,
            "\n",
            "not json\n",
            r#"{"type":"e","priority":"low"}"#,
            "\n",
        );
        let mut v = validated(body);
        assert_eq!(v.accepted_priorities(), [1, 1, 3]);
        assert_eq!(v.mint_count(), 4);
        let counts = v.refuse_priorities(|p| p == Priority::Low);
        assert_eq!(counts, [0, 0, 3]);
        assert_eq!(
            texts(body, &v),
            [r#"{"type":"b","priority":"high"}"#, r#"{"type":"d"}"#]
        );
        assert_eq!(v.accepted_priorities(), [1, 1, 0]);
        // Two of the three refused carried no _id.
        assert_eq!(v.mint_count(), 2);
        let rejects: Vec<(usize, EventError)> =
            v.rejected().iter().map(|r| (r.index, r.error)).collect();
        assert_eq!(
            rejects,
            [
                (0, EventError::JournalBudget(Priority::Low)),
                (1, EventError::MissingType),
                (3, EventError::JournalBudget(Priority::Low)),
                (5, EventError::InvalidJson),
                (6, EventError::JournalBudget(Priority::Low)),
            ]
        );
        assert!(EventError::JournalBudget(Priority::Low)
            .as_str()
            .contains("--low-priority-budget-percent"));
    }

    #[test]
    fn refusing_what_is_not_there_changes_nothing_and_refusing_all_empties_accepted() {
        let body = "{\"type\":\"a\"}\n{\"type\":\"b\",\"priority\":\"high\"}\n";
        let mut v = validated(body);
        assert_eq!(v.refuse_priorities(|p| p == Priority::Low), [0, 0, 0]);
        assert_eq!(v.accepted().len(), 2);
        assert!(v.rejected().is_empty());
        assert_eq!(v.refuse_priorities(|_| true), [1, 1, 0]);
        assert!(v.accepted().is_empty());
        assert_eq!(v.mint_count(), 0);
        let indexes: Vec<usize> = v.rejected().iter().map(|r| r.index).collect();
        assert_eq!(indexes, [0, 1]);
    }
}
