//! The syslog parser, the TCP framer and the RELP session under arbitrary
//! input: any bytes and mutations of real messages never panic them;
//! every event line is one the collector's validation takes (a JSON
//! object, a non-empty string `type`, an integer `ts` in range if any,
//! never `recv`, `app`, `ts_raw` or `_id`); generated RFC 5424 messages
//! come back field for field; framing does not depend on how the stream
//! was cut into reads.

use helios_shippers::syslog::{self, relp, Context, TcpFramer};
use helios_shippers::{Translation, TypeRule};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Lines as real senders write them, for mutation.
const SEEDS: &[&[u8]] = &[
    br#"<13>1 2026-12-07T11:28:15.024792+00:00 vm myapp 25540 - [timeQuality tzKnown="1" isSynced="0"][x@32473 a="q\"uo\]te" a="2"] hello"#,
    b"<13>Dec  7 11:28:04 vm myapp[25064]: hello rfc3164",
    b"<13>2026-12-07T11:28:23.237032+00:00 vm myapp[25902] via rsyslog 5424\n",
    b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed",
    b"Feb 29 00:00:00 kernel: x",
];

/// 2026-12-07T11:28:15Z.
const RECV_MS: i64 = 1_796_642_895_000;

const CTX: Context = Context {
    recv_ms: RECV_MS,
    utc_offset_s: 0,
};

/// The collector's `ts` range (years 0000 to 9999).
const TS_RANGE: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

/// Translates `message`, checks the line, returns the event.
fn event_of(message: &[u8], rule: &TypeRule) -> Map<String, Value> {
    let mut out = Translation::default();
    syslog::translate(message, rule, &CTX, &mut out);
    assert_eq!(out.items.len(), 1);
    let text = std::str::from_utf8(&out.ndjson).expect("the line is UTF-8");
    let line = text.strip_suffix('\n').expect("the line ends in a newline");
    assert!(!line.contains('\n'), "one line: {line}");
    let Value::Object(event) = serde_json::from_str(line).expect("the line is JSON") else {
        panic!("not an object: {line}");
    };
    match event.get("type") {
        Some(Value::String(kind)) => assert!(!kind.is_empty(), "{line}"),
        other => panic!("type must be a non-empty string, got {other:?}: {line}"),
    }
    if let Some(ts) = event.get("ts") {
        let ts = ts.as_i64().expect("ts is an integer");
        assert!(TS_RANGE.contains(&ts), "{line}");
    }
    for forbidden in ["recv", "app", "ts_raw", "_id"] {
        assert!(!event.contains_key(forbidden), "{forbidden} in {line}");
    }
    let format = event["format"].as_str().expect("format is a string");
    assert!(
        ["rfc5424", "rfc3164", "unparsed"].contains(&format),
        "{line}"
    );
    if let Some(priority) = event.get("priority") {
        assert!(["high", "normal", "low"].contains(&priority.as_str().unwrap_or("")));
    }
    event
}

fn rules() -> Vec<TypeRule> {
    [
        "syslog",
        "$app_name|$hostname|syslog",
        "$structured_data.x@32473.a|$severity|syslog",
    ]
    .iter()
    .map(|rule| TypeRule::parse(rule).expect("valid rule"))
    .collect()
}

/// Flipped, inserted and removed bytes and a cut of a seed.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(SEEDS),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0_u8..4), 1..8),
    )
        .prop_map(|(seed, edits)| {
            let mut bytes = seed.to_vec();
            for (at, byte, kind) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let at = at.index(bytes.len());
                match kind {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    2 => {
                        bytes.remove(at);
                    }
                    _ => bytes.truncate(at),
                }
            }
            bytes
        })
}

/// A header field: printable ASCII without space, not the NILVALUE.
fn header_field() -> impl Strategy<Value = String> {
    "[!-~]{1,20}".prop_filter("not NILVALUE", |s| s != "-")
}

/// An SD-NAME.
fn sd_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9@.!#-]{1,12}"
}

/// An SD-PARAM value's escaping (RFC 5424 §6.3.3).
fn escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Which sequence of reads a stream is cut into.
fn cuts() -> impl Strategy<Value = Vec<prop::sample::Index>> {
    prop::collection::vec(any::<prop::sample::Index>(), 0..6)
}

fn split_at_cuts<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for point in points.into_iter().chain([bytes.len()]) {
        chunks.push(&bytes[from..point]);
        from = point;
    }
    chunks
}

/// Every framer result over `chunks`, messages as bytes, errors as `None`.
fn frame_all(max: usize, chunks: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
    let mut framer = TcpFramer::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        framer.push(chunk);
        loop {
            match framer.next_message() {
                Ok(Some(message)) => {
                    assert!(!message.is_empty() && message.len() <= max);
                    out.push(Some(message.to_vec()));
                }
                Ok(None) => break,
                Err(_) => out.push(None),
            }
        }
        assert!(framer.buffered_bytes() <= max + 16 + chunk.len());
    }
    out
}

/// Every RELP request over `chunks`, as text, ending at the first error.
fn relp_all(chunks: &[&[u8]]) -> Vec<String> {
    let mut session = relp::RelpSession::new(64);
    let mut out = Vec::new();
    for chunk in chunks {
        session.push(chunk);
        loop {
            match session.next_request() {
                Ok(Some(request)) => out.push(format!("{request:?}")),
                Ok(None) => break,
                Err(error) => {
                    let mut answer = Vec::new();
                    error.render(&mut answer);
                    assert!(answer.ends_with(b"0 serverclose 0\n"));
                    out.push(format!("{error:?}"));
                    return out;
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_make_one_valid_event(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        for rule in &rules() {
            event_of(&bytes, rule);
        }
    }

    #[test]
    fn mutated_real_messages_make_one_valid_event(bytes in mutated()) {
        for rule in &rules() {
            event_of(&bytes, rule);
        }
    }

    #[test]
    fn generated_rfc5424_messages_come_back_field_for_field(
        pri in 0_u8..192,
        hostname in header_field(),
        app_name in header_field(),
        procid in header_field(),
        msgid in header_field(),
        elements in prop::collection::vec(
            (sd_name(), prop::collection::vec((sd_name(), any::<String>()), 0..4)),
            0..4,
        ),
        message in any::<String>(),
    ) {
        let mut line = format!("<{pri}>1 2026-12-07T11:28:15.5-01:30 {hostname} {app_name} {procid} {msgid} ");
        if elements.is_empty() {
            line.push('-');
        }
        for (id, params) in &elements {
            line.push('[');
            line.push_str(id);
            for (name, value) in params {
                line.push_str(&format!(" {name}=\"{}\"", escape(value)));
            }
            line.push(']');
        }
        line.push(' ');
        line.push_str(&message);
        let event = event_of(line.as_bytes(), &rules()[0]);
        prop_assert_eq!(&event["format"], "rfc5424");
        prop_assert_eq!(event["ts"].as_i64(), Some(RECV_MS + 500 + 5400 * 1000));
        prop_assert_eq!(event["facility_code"].as_u64(), Some(u64::from(pri / 8)));
        prop_assert_eq!(event["severity_code"].as_u64(), Some(u64::from(pri % 8)));
        for (name, value) in [("hostname", &hostname), ("app_name", &app_name), ("procid", &procid), ("msgid", &msgid)] {
            prop_assert_eq!(event[name].as_str(), Some(value.as_str()));
        }
        // The message as sent, without a BOM and the trailing bytes framing drops.
        let expected = message.strip_prefix('\u{feff}').unwrap_or(&message);
        let expected = expected.trim_end_matches(['\n', '\r', '\0']);
        prop_assert_eq!(event.get("message").and_then(Value::as_str), (!expected.is_empty()).then_some(expected));
        // Structured data: every value of every (id, name), in order.
        let mut want: Vec<(String, String, Vec<String>)> = Vec::new();
        for (id, params) in &elements {
            if !want.iter().any(|(i, _, _)| i == id) {
                want.push((id.clone(), String::new(), Vec::new()));
            }
            for (name, value) in params {
                match want.iter_mut().find(|(i, n, _)| i == id && n == name) {
                    Some((_, _, values)) => values.push(value.clone()),
                    None => want.push((id.clone(), name.clone(), vec![value.clone()])),
                }
            }
        }
        let sd = event.get("structured_data");
        prop_assert_eq!(sd.is_some(), !elements.is_empty());
        for (id, name, values) in want {
            let object = &sd.expect("structured data")[id.as_str()];
            prop_assert!(object.is_object());
            if name.is_empty() {
                continue;
            }
            let got = &object[name.as_str()];
            let got: Vec<&str> = match got {
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                other => other.as_str().into_iter().collect(),
            };
            prop_assert_eq!(got, values.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }

    #[test]
    fn framing_does_not_depend_on_how_reads_cut_the_stream(
        bytes in prop::collection::vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b' '), b'0'..=b'9'], 0..300),
        max in 1_usize..40,
        cuts in cuts(),
    ) {
        let whole = frame_all(max, &[&bytes]);
        prop_assert_eq!(frame_all(max, &split_at_cuts(&bytes, &cuts)), whole);
    }

    #[test]
    fn framed_messages_come_back_whatever_the_framing(
        messages in prop::collection::vec(
            ("[ -~]{1,30}".prop_filter("a line starting with digits and a space is a count", |m: &String| !m.starts_with(|c: char| c.is_ascii_digit())), any::<bool>()),
            1..8,
        ),
        cuts in cuts(),
    ) {
        let mut stream = Vec::new();
        for (message, counted) in &messages {
            if *counted {
                stream.extend_from_slice(format!("{} {message}", message.len()).as_bytes());
            } else {
                stream.extend_from_slice(message.as_bytes());
                stream.extend_from_slice(b"\r\n");
            }
        }
        let got = frame_all(64, &split_at_cuts(&stream, &cuts));
        let want: Vec<Option<Vec<u8>>> = messages.iter().map(|(m, _)| Some(m.as_bytes().to_vec())).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn relp_sessions_do_not_depend_on_how_reads_cut_the_stream(
        frames in prop::collection::vec(
            prop_oneof![
                Just(b"1 open 30 relp_version=0\ncommands=syslog\n".to_vec()),
                prop::collection::vec(any::<u8>(), 0..20)
                    .prop_map(|data| { let mut f = format!("2 syslog {} ", data.len()).into_bytes(); f.extend(data); f.push(b'\n'); f }),
                Just(b"3 close 0\n".to_vec()),
                prop::collection::vec(any::<u8>(), 0..12),
            ],
            0..5,
        ),
        cuts in cuts(),
    ) {
        let bytes = frames.concat();
        let whole = relp_all(&[&bytes]);
        prop_assert_eq!(relp_all(&split_at_cuts(&bytes, &cuts)), whole);
    }

    #[test]
    fn any_bytes_never_panic_the_relp_session(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        relp_all(&[&bytes]);
    }
}
