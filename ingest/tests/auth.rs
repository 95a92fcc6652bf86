//! API keys: 401 without or with an unknown key, the app stamped from the
//! key (a forged `app` is overridden), relayed events only from relay keys.

mod support;

use support::*;

const KEYS: &str = "k-billing billing ingest\nk-payroll payroll ingest\nk-edge edge relay\n";

fn collector(dir: &std::path::Path) -> Collector {
    let keys = dir.join("keys");
    std::fs::write(&keys, KEYS).unwrap();
    Collector::start(&dir.join("data"), &["--api-keys", keys.to_str().unwrap()])
}

#[test]
fn a_request_without_a_key_or_with_an_unknown_one_gets_401_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = collector(dir.path());
    let mut conn = Conn::open(c.addr);
    let r = conn.post(&[], br#"{"type":"x"}"#).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthorized");
    let r = conn
        .post(&[("Authorization", "Bearer wrong")], br#"{"type":"x"}"#)
        .unwrap();
    assert_eq!(r.status, 401);
    let r = conn
        .post(
            &[("Authorization", "Bearer k-billing")],
            br#"{"type":"ok"}"#,
        )
        .unwrap();
    assert_eq!(r.status, 200, "the connection keeps being served");
    let store = wait_for_count(&c.db_path(), 1);
    assert_eq!(store.count().unwrap(), 1);
}

#[test]
fn the_app_is_stamped_from_the_key_even_when_the_event_claims_another() {
    let dir = tempfile::tempdir().unwrap();
    let c = collector(dir.path());
    let id = client_id(1);
    let body = format!(r#"{{"_id":"{id}","type":"x","app":"payroll"}}"#);
    let r = Conn::open(c.addr)
        .post(&[("Authorization", "Bearer k-billing")], body.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
    let store = wait_for_count(&c.db_path(), 1);
    let doc = store.get(oid(&id)).unwrap().unwrap();
    assert_eq!(doc.app.as_deref(), Some("billing"));
    let v: serde_json::Value = serde_json::from_str(&doc.doc).unwrap();
    assert_eq!(v["app"], "billing");
}

#[test]
fn relayed_events_from_a_non_relay_key_get_403() {
    let dir = tempfile::tempdir().unwrap();
    let c = collector(dir.path());
    let r = Conn::open(c.addr)
        .post(
            &[("Authorization", "Bearer k-billing"), ("Helios-Relay", "1")],
            br#"{"type":"x"}"#,
        )
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "forbidden");
}

#[test]
fn a_relay_key_forwards_recv_app_and_ts_raw_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let c = collector(dir.path());
    let id = client_id(7);
    let body = format!(
        r#"{{"_id":"{id}","type":"x","app":"shop","recv":"2026-01-02T03:04:05.678Z","ts":"2026-01-02T03:04:00.000Z","ts_raw":"2026-01-02T02:04:00.000Z"}}"#
    );
    let r = Conn::open(c.addr)
        .post(&[("Authorization", "Bearer k-edge")], body.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["accepted"], 1);
    let store = wait_for_count(&c.db_path(), 1);
    let doc = store.get(oid(&id)).unwrap().unwrap();
    assert_eq!(doc.app.as_deref(), Some("shop"));
    let v: serde_json::Value = serde_json::from_str(&doc.doc).unwrap();
    assert_eq!(v["recv"], "2026-01-02T03:04:05.678Z");
    assert_eq!(v["ts_raw"], "2026-01-02T02:04:00.000Z");
}

#[test]
fn an_ingest_key_may_not_send_recv() {
    let dir = tempfile::tempdir().unwrap();
    let c = collector(dir.path());
    let r = Conn::open(c.addr)
        .post(
            &[("Authorization", "Bearer k-billing")],
            br#"[{"type":"x","recv":1},{"type":"y"}]"#,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["rejected"][0]["index"], 0);
}

#[test]
fn a_non_loopback_bind_without_keys_refuses_to_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_helios-collector"))
        .args([
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
            "/nonexistent-helios-test",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api-keys"));
}

#[test]
fn another_apps_event_reusing_a_stored_id_never_erases_it_and_is_kept_as_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let c = collector(dir.path());
    let id = client_id(11);
    let billing = format!(r#"{{"_id":"{id}","type":"invoice","amount":10}}"#);
    let r = Conn::open(c.addr)
        .post(&[("Authorization", "Bearer k-billing")], billing.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
    wait_for_count(&c.db_path(), 1);

    // Client ids are guessable: payroll sends an event with billing's id.
    let payroll = format!(r#"{{"_id":"{id}","type":"salary","amount":99}}"#);
    let r = Conn::open(c.addr)
        .post(&[("Authorization", "Bearer k-payroll")], payroll.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200, "durable in the journal, so acked");

    let letters = wait_for_dead_letters(&dir.path().join("data"));
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.contains("different app"),
        "{}",
        letters[0].reason
    );
    let kept = letters[0].event.as_ref().expect("the whole event is kept");
    assert_eq!(
        (kept["app"].as_str(), kept["type"].as_str()),
        (Some("payroll"), Some("salary"))
    );
    let store = wait_for_count(&c.db_path(), 1);
    let stored = store.get(oid(&id)).unwrap().unwrap();
    assert_eq!(
        stored.app.as_deref(),
        Some("billing"),
        "billing's event is intact"
    );
    assert_eq!(stored.event_type, "invoice");
}
