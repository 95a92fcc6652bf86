//! open_sink: store URIs to sinks.

mod common;

use helios_store::sqlite::SqliteReader;
use helios_store::{open_sink, StoreError};

use common::{events, temp_store};

#[test]
fn a_sqlite_uri_opens_a_working_sink() {
    let (_dir, path) = temp_store();
    let uri = format!("sqlite://{}", path.display());
    let mut sink = open_sink(&uri).unwrap();

    let outcome = sink.write_batch(&events(0..3)).unwrap();

    assert_eq!(outcome.inserted, 3);
    assert_eq!(sink.describe(), uri);
    assert_eq!(SqliteReader::open(&path).unwrap().count().unwrap(), 3);
}

#[test]
fn the_sink_can_move_to_a_flusher_thread() {
    let (_dir, path) = temp_store();
    let mut sink = open_sink(&format!("sqlite://{}", path.display())).unwrap();
    let handle = std::thread::spawn(move || sink.write_batch(&events(0..2)).map(|o| o.inserted));
    assert_eq!(handle.join().unwrap().unwrap(), 2);
}

#[test]
fn unknown_schemes_are_rejected_by_name() {
    let error = open_sink("postgres://db/events")
        .err()
        .expect("unknown scheme");
    assert!(
        matches!(&error, StoreError::UnknownScheme { scheme } if scheme == "postgres"),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("postgres"), "{message}");
    assert!(
        message.contains("sqlite://"),
        "says what is expected: {message}"
    );
}

#[test]
fn errors_never_echo_credentials_from_the_uri() {
    for uri in [
        "mongodb://admin:s3cret@db.example:notaport/helios",
        "mongodb://admin:s3cret@db.example/helios?w=0",
        "ftp://admin:s3cret@host/x",
        "admin:s3cret@host",
    ] {
        let message = open_sink(uri).err().expect("refused").to_string();
        assert!(!message.contains("s3cret"), "{uri}: {message}");
    }
}

#[test]
fn text_without_a_scheme_is_an_invalid_uri() {
    let error = open_sink("data/events.db").err().expect("no scheme");
    assert!(matches!(error, StoreError::InvalidUri { .. }), "{error}");
    assert!(error.to_string().contains("sqlite://"), "{error}");
}

#[test]
fn an_upstream_collector_is_not_a_store_this_crate_opens() {
    // Relay mode belongs to the collector (helios-ingest's RelaySink).
    for uri in [
        "http://upstream.example:8080/base",
        "https://central.example",
    ] {
        let error = open_sink(uri).err().expect("not a store");
        assert!(matches!(error, StoreError::InvalidUri { .. }), "{error}");
        assert!(error.to_string().contains("collector"), "{error}");
    }
}

#[test]
fn a_mongodb_uri_opens_without_contacting_the_server() {
    // Nothing listens there: opening must not block or fail (a collector
    // starts and journals while MongoDB is down).
    let sink = open_sink("mongodb://admin:s3cret@127.0.0.1:9/?directConnection=true").unwrap();
    let described = sink.describe();
    assert_eq!(described, "mongodb://127.0.0.1:9/helios.events");
}

#[test]
fn an_unacknowledged_write_concern_is_refused() {
    let message = open_sink("mongodb://127.0.0.1:9/?w=0")
        .err()
        .expect("w=0 cannot confirm durability")
        .to_string();
    assert!(message.contains("w=0"), "{message}");
}
