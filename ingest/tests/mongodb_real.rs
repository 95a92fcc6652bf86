//! The MongoDB end-to-end suite against a real server: runs whenever
//! `HELIOS_TEST_MONGODB_URI` is set (a replica set for the default
//! majority write concern, e.g.
//! `HELIOS_TEST_MONGODB_URI=mongodb://localhost:27017/?replicaSet=rs0`),
//! and prints "skipped: no MongoDB" otherwise. Each test uses its own
//! database and drops it at the end.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bson::{doc, Document};
use support::*;

const URI_VAR: &str = "HELIOS_TEST_MONGODB_URI";
/// How long the backlog of a kill test may take to reach the server (a
/// remote replica set with majority acknowledgment is slower than SQLite).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);

/// A throwaway database on the real server.
struct RealMongo {
    uri: String,
    database: String,
    runtime: tokio::runtime::Runtime,
    client: mongodb::Client,
}

impl RealMongo {
    /// `None` (and a loud line on stderr) when no server is configured.
    fn connect(test: &str) -> Option<RealMongo> {
        let Ok(uri) = std::env::var(URI_VAR) else {
            skip::skip(
                test,
                &format!("no MongoDB server; set {URI_VAR}=mongodb://… to run it"),
            );
            return None;
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let client = runtime
            .block_on(mongodb::Client::with_uri_str(&uri))
            .expect("HELIOS_TEST_MONGODB_URI is not a usable connection string");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let database = format!("helios_test_{}_{nanos}", std::process::id());
        Some(RealMongo {
            uri,
            database,
            runtime,
            client,
        })
    }

    fn collector(&self, dir: &std::path::Path, port: u16, extra: &[&str]) -> Collector {
        let mut args = vec![
            "--store",
            self.uri.as_str(),
            "--mongodb-database",
            self.database.as_str(),
        ];
        args.extend_from_slice(extra);
        Collector::start_on(dir, port, &args)
    }

    /// `_id` (hex) → number of documents with it.
    fn stored(&self) -> HashMap<String, usize> {
        let collection = self
            .client
            .database(&self.database)
            .collection::<Document>("events");
        self.runtime.block_on(async {
            let mut cursor = collection
                .find(doc! {})
                .projection(doc! { "_id": 1 })
                .await
                .unwrap();
            let mut stored = HashMap::new();
            while cursor.advance().await.unwrap() {
                let id = cursor.current().get_object_id("_id").unwrap().to_hex();
                *stored.entry(id).or_insert(0) += 1;
            }
            stored
        })
    }

    fn one(&self, id: &str) -> Document {
        let collection = self
            .client
            .database(&self.database)
            .collection::<Document>("events");
        let oid = bson::oid::ObjectId::parse_str(id).unwrap();
        self.runtime
            .block_on(async { collection.find_one(doc! { "_id": oid }).await })
            .unwrap()
            .expect("stored")
    }

    fn wait_for(&self, ids: &[String]) -> HashMap<String, usize> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let stored = self.stored();
            let missing = ids.iter().filter(|id| !stored.contains_key(*id)).count();
            if missing == 0 {
                return stored;
            }
            assert!(Instant::now() < deadline, "{missing} acked events missing");
            std::thread::sleep(Duration::from_millis(1000));
        }
    }
}

impl Drop for RealMongo {
    fn drop(&mut self) {
        let db = self.client.database(&self.database);
        let _ = self.runtime.block_on(async { db.drop().await });
    }
}

#[test]
fn real_mongodb_stores_posted_events_with_bson_types() {
    let Some(mongo) = RealMongo::connect("stores posted events") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let c = mongo.collector(dir.path(), free_port(), &[]);
    let id = client_id(1);
    let body = format!(
        r#"{{"_id":"{id}","type":"real","n":7,"big":123456789012345678901234567890,"f":0.5,"nested":{{"a":[1,"b"]}}}}"#
    );
    assert_eq!(
        Conn::open(c.addr)
            .post(&[], body.as_bytes())
            .unwrap()
            .status,
        200
    );
    mongo.wait_for(std::slice::from_ref(&id));
    let stored = mongo.one(&id);
    assert_eq!(stored.get_str("type").unwrap(), "real");
    assert_eq!(stored.get_i32("n").unwrap(), 7);
    assert!(matches!(stored.get("big"), Some(bson::Bson::Decimal128(_))));
    assert_eq!(stored.get_f64("f").unwrap(), 0.5);
    assert!(stored.get_datetime("ts").is_ok());
    assert!(stored.get_datetime("recv").is_ok());
    assert_eq!(c.stop().code(), Some(0));
}

fn sigkills_under_load(mongo: &RealMongo, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let log = LoadLog::default();
    let port = free_port();
    let mut c = mongo.collector(dir.path(), port, extra);
    for cycle in 0..6u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4u64)
            .map(|w| {
                let (stop, log, addr) = (stop.clone(), log.clone(), c.addr);
                let n = if w % 2 == 0 { 1 } else { 20 };
                std::thread::spawn(move || load_worker(addr, n, stop, log))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + cycle * 200));
        c.kill_in_place();
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            assert!(w.join().unwrap().is_empty(), "only 200s before the kill");
        }
        c = mongo.collector(dir.path(), port, extra);
    }
    let acked = log.acked.lock().unwrap().clone();
    assert!(acked.len() > 1000, "only {} acked", acked.len());
    assert_eq!(
        acked.iter().collect::<HashSet<_>>().len(),
        acked.len(),
        "an id acked twice"
    );
    let stored = mongo.wait_for(&acked);
    assert!(stored.values().all(|&n| n == 1), "an event stored twice");
    assert!(stored.len() <= log.next.load(Ordering::SeqCst) as usize);
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn real_mongodb_holds_every_acked_event_exactly_once_across_sigkills() {
    let Some(mongo) = RealMongo::connect("SIGKILLs under load") else {
        return;
    };
    sigkills_under_load(&mongo, &[]);
}

#[test]
fn real_mongodb_time_series_layout_holds_every_acked_event_exactly_once_across_sigkills() {
    let Some(mongo) = RealMongo::connect("time-series layout, SIGKILLs under load") else {
        return;
    };
    sigkills_under_load(&mongo, &["--mongodb-layout", "timeseries"]);
}
