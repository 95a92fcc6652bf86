//! Fixtures shared by the integration tests.
// Each test binary uses a different subset of these fixtures.
#![allow(dead_code)]

use std::path::PathBuf;

use helios_store::{Envelope, EventDoc, ObjectId, TsRaw};

/// 2026-11-30T19:21:43.000Z, a fixed "now" so documents are reproducible.
pub const BASE_MS: i64 = 1_796_066_503_000;
/// The receive time trails the event time by this much in fixtures.
pub const RECV_LAG_MS: i64 = 5;
const NODE: [u8; 5] = [0xA1, 0xB2, 0xC3, 0xD4, 0xE5];

/// A distinct id per `n`, ordered by `n`.
pub fn id(n: u32) -> ObjectId {
    ObjectId::from_parts((BASE_MS / 1000) as u32, NODE, n).expect("counter fits 24 bits")
}

/// Event `n` of app `shop`, built the way the collector builds events.
pub fn event(n: u32) -> EventDoc {
    event_of_app(n, Some("shop"))
}

/// Event `n` (id `id(n)`) of `app`, or of no app.
pub fn event_of_app(n: u32, app: Option<&str>) -> EventDoc {
    let text = format!(r#"{{"type":"signup","n":{n},"host":"web-{n}","plan":"pro"}}"#);
    let envelope = Envelope {
        id: id(n),
        ts_ms: BASE_MS + i64::from(n),
        recv_ms: BASE_MS + i64::from(n) + RECV_LAG_MS,
        app,
        ts_raw: TsRaw::None,
    };
    EventDoc::from_event_json(&text, &envelope).expect("fixture event is valid")
}

/// Events `range`, in order.
pub fn events(range: std::ops::Range<u32>) -> Vec<EventDoc> {
    range.map(event).collect()
}

/// A fresh directory and the path of a (not yet created) store in it.
pub fn temp_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.db");
    (dir, path)
}
