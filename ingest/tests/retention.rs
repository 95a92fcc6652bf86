//! `--retention-days`: stored events received longer ago are deleted, newer
//! ones kept. (Old receive times come in through the relay path, which
//! keeps `recv` as sent.)

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::*;

#[test]
fn events_older_than_the_retention_are_deleted_and_newer_kept() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(
        dir.path(),
        &["--retention-days", "5", "--retention-check-ms", "100"],
    );
    let day_ms = 86_400_000i64;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (old, fresh) = (client_id(1), client_id(2));
    let body = format!(
        r#"[{{"_id":"{old}","type":"old","recv":{}}},{{"_id":"{fresh}","type":"fresh","recv":{}}}]"#,
        now - 10 * day_ms,
        now - day_ms
    );
    let r = Conn::open(c.addr)
        .post(&[("Helios-Relay", "1")], body.as_bytes())
        .unwrap();
    assert_eq!(r.json()["accepted"], 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let store = helios_store::sqlite::SqliteReader::open(c.db_path()).ok();
        let ids: Vec<String> = store
            .and_then(|s| s.ids().ok())
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.to_string())
            .collect();
        if ids == vec![fresh.clone()] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention never left exactly the fresh event: {ids:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
