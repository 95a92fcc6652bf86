//! One generated day of events for the query benches (`query_latency`), in
//! two distributions:
//!
//! - `mixed` (issue 6's store): eight types, a nested `user` object of
//!   100 k ids drawn uniformly, tags, 12 countries.
//! - `reference` (issue 22's reference distribution): the shape of
//!   `../shared/bench/event.json` (≈ 300 bytes of JSON as posted, `ts`
//!   included); `type` of 6 values, `country` of 50 values, `user` of
//!   110 k values with a Zipf-like head, integer `latency_ms`, a random
//!   32-hex `trace` id. Per-type members (`path` and `status` for
//!   requests, `amount`, `currency` and `items` for orders) so that field
//!   columns differ by type as they would in a real day.
//!
//! Deterministic (xorshift64* from a fixed seed): a store regenerated with
//! the same size and distribution holds the same events.

use helios_store::{Envelope, EventDoc, ObjectId, TsRaw};

/// 2026-11-30T00:53:20.000Z: the generated day starts here (24 h from it;
/// 15-minute partitions cut it into 97 files).
pub const DAY_START_MS: i64 = 1_796_000_000_000;
pub const DAY_MS: i64 = 86_400_000;
/// Events land up to this much after their slot (time order with jitter,
/// so ids and `ts` correlate as in real ingest).
const JITTER_MS: u64 = 1_000;
/// Bytes of `,"ts":"2026-11-30T17:54:33.123Z"`: the member a client posts
/// and the envelope replaces, counted in the raw size of an event.
pub const POSTED_TS_MEMBER_BYTES: usize = 31;

/// Which day to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    Mixed,
    Reference,
}

impl Distribution {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "mixed" => Some(Self::Mixed),
            "reference" => Some(Self::Reference),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Mixed => "mixed",
            Self::Reference => "reference",
        }
    }

    /// What the bench asks of this day: fields and values that exist in it.
    pub fn probes(self) -> Probes {
        match self {
            Self::Mixed => Probes {
                page_type: "signup",
                field_filter: "plan:pro latency_ms>1500 country:US",
                user_path: "user.id",
                // Uniform ids: every value is as frequent as any other.
                one_user: "4242".to_owned(),
            },
            Self::Reference => Probes {
                page_type: "order.placed",
                field_filter: "level:error latency_ms>1500 country:US",
                user_path: "user",
                one_user: user_name(MID_FREQUENCY_USER_RANK),
            },
        }
    }
}

/// The fields and values the bench's queries use, per distribution.
pub struct Probes {
    /// The type of the typed page query.
    pub page_type: &'static str,
    /// The field filter page query (query bar syntax).
    pub field_filter: &'static str,
    /// The high-cardinality field (group-by top 10, one-value filter).
    pub user_path: &'static str,
    /// One value of it, neither head nor tail.
    pub one_user: String,
}

/// A small deterministic generator (xorshift64*), so stores are reproducible.
pub struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self) -> u64 {
        self.below(100)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// 0.0 ≤ x < 1.0.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws an index with probability proportional to its weight.
struct Weighted {
    cumulative: Vec<f64>,
}

impl Weighted {
    fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let cumulative: Vec<f64> = weights
            .into_iter()
            .map(|w| {
                assert!(w > 0.0, "weights are positive");
                total += w;
                total
            })
            .collect();
        assert!(!cumulative.is_empty(), "at least one weight");
        Self { cumulative }
    }

    /// Zipf weights 1/rank over `n` ranks.
    fn zipf(n: usize) -> Self {
        Self::new((1..=n).map(|rank| 1.0 / rank as f64))
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().expect("not empty");
        let target = rng.unit() * total;
        self.cumulative
            .partition_point(|&c| c <= target)
            .min(self.cumulative.len() - 1)
    }
}

/// `user` values of the reference day.
const USERS: u64 = 110_000;
/// The head: this share of events goes to the first `USER_HEAD` users with
/// Zipf weights (the top user ≈ 4 % of all events); the rest is uniform
/// over all `USERS`, so nearly every value shows up at 1 M events (≈ 6
/// events each).
const USER_HEAD_PERCENT: u64 = 30;
const USER_HEAD: usize = 1_000;
/// The user the one-value filter asks for: rank 100 of the head, ≈ 0.04 %
/// of events (≈ 400 per million).
const MID_FREQUENCY_USER_RANK: u64 = 99;

/// A user's name from its rank: distinct for distinct ranks (multiplying
/// by an odd constant is a bijection of u32), not sorted by frequency.
fn user_name(rank: u64) -> String {
    format!("u-{:08x}", (rank as u32).wrapping_mul(0x9E37_79B1))
}

/// `type` of the reference day and each one's share, percent.
const REFERENCE_TYPES: [(&str, f64); 6] = [
    ("page.view", 40.0),
    ("api.request", 30.0),
    ("user.login", 10.0),
    ("order.placed", 10.0),
    ("search", 7.0),
    ("payment.failed", 3.0),
];
/// 50 `country` values, Zipf-weighted in this order.
const COUNTRIES_50: [&str; 50] = [
    "US", "IN", "GB", "DE", "FR", "BR", "JP", "CA", "ES", "IT", "MX", "NL", "AU", "KR", "PL", "SE",
    "TR", "ID", "AR", "BE", "CH", "AT", "NO", "DK", "FI", "IE", "PT", "CZ", "RO", "HU", "GR", "IL",
    "ZA", "NG", "EG", "SA", "AE", "TH", "VN", "PH", "MY", "SG", "NZ", "CL", "CO", "PE", "UA", "KE",
    "MA", "PK",
];
const SERVICES: [&str; 5] = [
    "checkout-api",
    "catalog-api",
    "auth-service",
    "search-service",
    "web-frontend",
];
const PATHS: [&str; 6] = [
    "/api/v1/orders",
    "/api/v1/cart",
    "/api/v1/products",
    "/api/v1/session",
    "/api/v1/search",
    "/api/v1/users/me",
];
const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "JPY"];

/// Generates the events of one day, in time order.
pub struct DayGenerator {
    distribution: Distribution,
    events: u64,
    rng: Rng,
    types: Weighted,
    countries: Weighted,
    user_head: Weighted,
    text: String,
}

impl DayGenerator {
    pub fn new(distribution: Distribution, events: u64) -> Self {
        assert!(events > 0, "at least one event");
        Self {
            distribution,
            events,
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            types: Weighted::new(REFERENCE_TYPES.iter().map(|(_, share)| *share)),
            countries: Weighted::zipf(COUNTRIES_50.len()),
            user_head: Weighted::zipf(USER_HEAD),
            text: String::with_capacity(512),
        }
    }

    /// The text of the last event (as posted, without `ts`).
    pub fn last_text_len(&self) -> usize {
        self.text.len()
    }

    /// Event `n` of the day (0-based, `n < events`).
    pub fn event(&mut self, n: u64) -> EventDoc {
        assert!(
            n < self.events,
            "event {n} is past the day's {}",
            self.events
        );
        let ts_ms = DAY_START_MS
            + (n as i64 * DAY_MS) / self.events as i64
            + self.rng.below(JITTER_MS) as i64;
        self.text.clear();
        match self.distribution {
            Distribution::Mixed => self.mixed_text(n),
            Distribution::Reference => self.reference_text(n),
        }
        let id = ObjectId::from_parts(
            (ts_ms / 1000) as u32,
            [1, 2, 3, 4, 5],
            (n & 0x00FF_FFFF) as u32,
        )
        .expect("counter masked to 24 bits");
        let envelope = Envelope {
            id,
            ts_ms,
            recv_ms: ts_ms + 3,
            app: Some("bench"),
            ts_raw: TsRaw::None,
        };
        EventDoc::from_event_json(&self.text, &envelope).expect("generated event is valid")
    }

    fn mixed_text(&mut self, n: u64) {
        use std::fmt::Write;
        const TYPES: [&str; 8] = [
            "page_view",
            "page_view",
            "page_view",
            "click",
            "click",
            "signup",
            "login",
            "payment",
        ];
        const PLANS: [&str; 3] = ["free", "pro", "team"];
        const COUNTRIES: [&str; 12] = [
            "US", "US", "US", "FR", "DE", "GB", "JP", "BR", "IN", "CA", "ES", "IT",
        ];
        let rng = &mut self.rng;
        let event_type = rng.pick(&TYPES);
        write!(
            self.text,
            r#"{{"type":"{event_type}","plan":"{plan}","country":"{country}","latency_ms":{latency},"host":"web-{host}","user":{{"id":{user},"name":"user-{user}"}},"tags":["{tag}","t{t2}"],"message":"request {n} served"}}"#,
            plan = rng.pick(&PLANS),
            country = rng.pick(&COUNTRIES),
            latency = rng.below(2_000),
            host = rng.below(50),
            user = rng.below(100_000),
            tag = rng.pick(&["a", "b", "c"]),
            t2 = rng.below(10),
        )
        .expect("writing to a String");
    }

    fn reference_text(&mut self, n: u64) {
        use std::fmt::Write;
        let event_type = REFERENCE_TYPES[self.types.draw(&mut self.rng)].0;
        let country = COUNTRIES_50[self.countries.draw(&mut self.rng)];
        let user = if self.rng.percent() < USER_HEAD_PERCENT {
            self.user_head.draw(&mut self.rng) as u64
        } else {
            self.rng.below(USERS)
        };
        let rng = &mut self.rng;
        // Most requests are fast, 5 % are slow (up to 5 s).
        let latency_ms = if rng.percent() < 5 {
            rng.below(5_000)
        } else {
            1 + rng.below(200)
        };
        let level = match rng.percent() {
            0..=2 => "error",
            3..=9 => "warn",
            _ => "info",
        };
        write!(
            self.text,
            r#"{{"type":"{event_type}","host":"web-{host:02}.prod.internal","service":"{service}","level":"{level}","trace":"{trace_hi:016x}{trace_lo:016x}","span":"{span:016x}","user":"{user}","country":"{country}","latency_ms":{latency_ms},"message":"{event_type} {n} handled""#,
            host = rng.below(40),
            service = rng.pick(&SERVICES),
            trace_hi = rng.next(),
            trace_lo = rng.next(),
            span = rng.next(),
            user = user_name(user),
        )
        .expect("writing to a String");
        match event_type {
            "api.request" => write!(
                self.text,
                r#","path":"{}","status":{}"#,
                rng.pick(&PATHS),
                [200, 200, 200, 200, 201, 204, 304, 400, 404, 500][rng.below(10) as usize],
            ),
            "order.placed" => write!(
                self.text,
                r#","amount":{}.{:02},"currency":"{}","items":{}"#,
                rng.below(500),
                rng.below(100),
                rng.pick(&CURRENCIES),
                1 + rng.below(9),
            ),
            _ => Ok(()),
        }
        .expect("writing to a String");
        self.text.push('}');
    }
}
