//! Upgrades: today's collector on a data directory an older collector left
//! behind after a crash.
//!
//! `tests/fixtures/data-dir-9f9280f/` was written by the collector of
//! commit 9f9280f (before checkpoints kept record ids: its checkpoints are
//! format version 1) and SIGKILLed with events acked but not yet stored:
//! journals with records past their checkpoints, recycled segments, node
//! ids, a SQLite store (schema version 1) with its WAL. How it was made,
//! and how to make another: `tests/fixtures/make-data-dir.py`; what it
//! holds: `tests/fixtures/data-dir-9f9280f.json`.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use helios_store::sqlite::SqliteReader;
use helios_store::ObjectId;
use support::{wait_for_count, Collector, Conn, STORE_TIMEOUT};

/// The commit that wrote the fixture.
const FIXTURE_COMMIT: &str = "9f9280f";
/// Bytes of an ObjectId before its node id (4-byte seconds).
const NODE_ID_AT: usize = 4;
/// Bytes of the node id inside an ObjectId.
const NODE_ID_BYTES: usize = 5;
/// New events posted after the upgrade.
const NEW_EVENTS: u64 = 30;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Copies the fixture into a fresh directory (the test must never change
/// the committed files).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// One acked event as the manifest lists it.
struct Expected {
    kind: String,
    app: String,
    id: Option<String>,
}

fn manifest() -> (serde_json::Value, BTreeMap<u64, Expected>) {
    let path = fixtures().join(format!("data-dir-{FIXTURE_COMMIT}.json"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let events = manifest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let expected = Expected {
                kind: e["type"].as_str().unwrap().to_owned(),
                app: e["app"].as_str().unwrap().to_owned(),
                id: e["_id"].as_str().map(str::to_owned),
            };
            (e["n"].as_u64().unwrap(), expected)
        })
        .collect();
    (manifest, events)
}

/// The node ids the old collector persisted, one per journal directory.
fn node_ids(data: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(data.join("journal")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path().join("node-id")).unwrap();
        ids.push(text.trim_end().to_owned());
    }
    ids.sort();
    ids
}

fn node_of(id: ObjectId) -> String {
    id.to_string()[2 * NODE_ID_AT..2 * (NODE_ID_AT + NODE_ID_BYTES)].to_owned()
}

/// A copy of the fixture data directory in a fresh temporary directory.
fn fixture_data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(
        &fixtures().join(format!("data-dir-{FIXTURE_COMMIT}")),
        &data,
    );
    (dir, data)
}

#[test]
fn a_data_directory_from_9f9280f_delivers_every_event_exactly_once() {
    let (manifest, expected) = manifest();
    let total = expected.len() as u64;
    assert_eq!(
        total,
        manifest["stored_before_the_kill"].as_u64().unwrap()
            + manifest["pending_in_journals_at_the_kill"]
                .as_u64()
                .unwrap()
    );
    let big = manifest["big"].as_str().unwrap();
    let text = serde_json::to_string(manifest["text"].as_str().unwrap()).unwrap();

    let (_dir, data) = fixture_data_dir();
    let old_nodes = node_ids(&data);

    let collector = Collector::start(&data, &[]);
    let store = wait_for_count(&collector.db_path(), total);

    check_every_event(&store, &expected, &old_nodes, big, &text);

    // The upgraded collector keeps minting past what the old one minted
    // (its checkpoints held no ids): new events never collide with old ones.
    let mut conn = Conn::open(collector.addr);
    for k in 0..NEW_EVENTS {
        let body = format!("{{\"type\":\"after.upgrade\",\"k\":{k}}}");
        let answer = conn
            .post(&[("Content-Type", "application/json")], body.as_bytes())
            .unwrap();
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    drop(conn);
    wait_for_count(&collector.db_path(), total + NEW_EVENTS);
    assert!(collector.stop().success());
    assert_eq!(node_ids(&data), old_nodes, "node ids are kept");

    // A second start replays nothing twice.
    let collector = Collector::start(&data, &[]);
    let store: SqliteReader = wait_for_count(&collector.db_path(), total + NEW_EVENTS);
    assert_eq!(store.count().unwrap(), total + NEW_EVENTS);
    assert!(collector.stop().success());
}

/// Every fixture event is stored once, as the old collector acknowledged
/// it: type, app, id (client or minted by an old node) and values
/// byte-exact.
fn check_every_event(
    store: &SqliteReader,
    expected: &BTreeMap<u64, Expected>,
    old_nodes: &[String],
    big: &str,
    text: &str,
) {
    let total = expected.len() as u64;
    let mut seen = HashSet::new();
    for id in store.ids().unwrap() {
        let doc = store.get(id).unwrap().expect("listed id reads back");
        let value: serde_json::Value = serde_json::from_str(&doc.doc).expect("stored JSON");
        let n = value["n"].as_u64().expect("every fixture event has n");
        assert!(seen.insert(n), "event {n} stored twice");
        let want = &expected[&n];
        assert_eq!(doc.event_type, want.kind, "event {n}");
        assert_eq!(doc.app.as_deref(), Some(want.app.as_str()), "event {n}");
        match &want.id {
            Some(client_id) => assert_eq!(&id.to_string(), client_id, "event {n}"),
            // A minted id carries its journal's node id: the old file was
            // read, not replaced by a new draw.
            None => assert!(old_nodes.contains(&node_of(id)), "event {n}: {id}"),
        }
        // Client values byte-exact: an integer beyond 64 bits, non-ASCII.
        assert!(doc.doc.contains(&format!("\"big\":{big}")), "{}", doc.doc);
        assert!(doc.doc.contains(&format!("\"text\":{text}")), "{}", doc.doc);
    }
    assert_eq!(seen.len() as u64, total);
}

/// The upgraded store's events (schema version 1, no columnar tier) move
/// into columnar files as the compactor reaches them, and read back the
/// same (issue 22).
#[test]
fn an_upgraded_store_s_events_move_into_columnar_files_unchanged() {
    let (manifest, expected) = manifest();
    let total = expected.len() as u64;
    let big = manifest["big"].as_str().unwrap();
    let text = serde_json::to_string(manifest["text"].as_str().unwrap()).unwrap();
    let (_dir, data) = fixture_data_dir();
    let old_nodes = node_ids(&data);

    let collector = Collector::start(
        &data,
        &[
            "--store-hot-minutes",
            "0",
            "--store-partition-minutes",
            "1",
            "--store-late-hold-minutes",
            "0",
            "--store-compact-every-ms",
            "50",
        ],
    );
    let store = wait_for_count(&collector.db_path(), total);
    let deadline = std::time::Instant::now() + STORE_TIMEOUT;
    // All but the most recently inserted event (always hot) move.
    while store.count_by_tier().unwrap().columnar < total - 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "not compacted: {:?}",
            store.count_by_tier().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    check_every_event(&store, &expected, &old_nodes, big, &text);
    assert!(collector.stop().success());
}
