//! Messages as real senders write them (util-linux `logger` 2.38.1 and
//! rsyslog 8.2302's forwarding templates, captured from a socket), RFC
//! 5424's own examples, and malformed input, each checked as the event
//! line it becomes.

use serde_json::{json, Value};

use super::*;

/// 2026-12-07T11:28:15Z, when the captures were made.
const RECV_MS: i64 = 1_796_642_895_000;

fn ctx() -> Context {
    Context {
        recv_ms: RECV_MS,
        utc_offset_s: 0,
    }
}

/// The event `message` becomes under `rule`.
fn event_with(rule: &str, message: &[u8], ctx: &Context) -> Value {
    let rule = TypeRule::parse(rule).unwrap();
    let mut out = Translation::default();
    translate(message, &rule, ctx, &mut out);
    let text = std::str::from_utf8(&out.ndjson).unwrap();
    assert_eq!(text.matches('\n').count(), 1, "one line: {text}");
    assert!(text.ends_with('\n'));
    assert_eq!(out.items.len(), 1);
    assert_eq!(out.items[0].line, Ok(0));
    serde_json::from_str(text).unwrap()
}

fn event(message: &[u8]) -> Value {
    event_with(DEFAULT_TYPE_RULE, message, &ctx())
}

#[test]
fn logger_rfc5424_with_structured_data() {
    // logger --rfc5424 --sd-id x@32473 --sd-param 'a="b"' -t myapp -i "hello rfc5424"
    let line = br#"<13>1 2026-12-07T11:28:15.024792+00:00 vm myapp 25540 - [timeQuality tzKnown="1" isSynced="0"][x@32473 a="b"] hello rfc5424"#;
    assert_eq!(
        event(line),
        json!({
            "type": "syslog",
            "ts": RECV_MS + 24,
            "format": "rfc5424",
            "timestamp": "2026-12-07T11:28:15.024792+00:00",
            "facility": "user", "facility_code": 1,
            "severity": "notice", "severity_code": 5,
            "priority": "normal",
            "hostname": "vm",
            "app_name": "myapp",
            "procid": "25540",
            "structured_data": {
                "timeQuality": {"tzKnown": "1", "isSynced": "0"},
                "x@32473": {"a": "b"}
            },
            "message": "hello rfc5424"
        })
    );
}

#[test]
fn logger_rfc5424_escapes_msgid_and_repeated_params() {
    // logger --rfc5424 --sd-id x@32473 --sd-param 'a="q\"uo\]te"' --sd-param 'b="c"' --msgid ID47 -p local3.warning
    let line = br#"<156>1 2026-12-07T11:28:15.027005+00:00 vm root - ID47 [timeQuality tzKnown="1" isSynced="0"][x@32473 a="q\"uo\]te" b="c"] msg two"#;
    let e = event(line);
    assert_eq!(e["facility"], "local3");
    assert_eq!(e["severity"], "warning");
    assert_eq!(e["msgid"], "ID47");
    assert_eq!(e.get("procid"), None);
    assert_eq!(
        e["structured_data"]["x@32473"],
        json!({"a": "q\"uo]te", "b": "c"})
    );
    // --sd-param 'a="1"' --sd-param 'a="2"'
    let line = br#"<8>1 2026-12-07T11:28:15.029067+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"][x@32473 a="1" a="2"] repeat"#;
    let e = event(line);
    assert_eq!(e["structured_data"]["x@32473"]["a"], json!(["1", "2"]));
    assert_eq!(e["priority"], "high");
}

#[test]
fn logger_rfc5424_without_time_or_host_omits_ts() {
    // logger --rfc5424=notq,notime,nohost bare
    let e = event(b"<13>1 - - root - - - bare");
    assert_eq!(
        e,
        json!({"type": "syslog", "format": "rfc5424", "facility": "user", "facility_code": 1,
               "severity": "notice", "severity_code": 5, "priority": "normal",
               "app_name": "root", "message": "bare"})
    );
}

#[test]
fn logger_rfc3164_with_pid() {
    // logger --rfc3164 -t myapp -i "hello rfc3164"
    let e = event(b"<13>Dec  7 11:28:04 vm myapp[25064]: hello rfc3164");
    assert_eq!(
        e,
        json!({
            "type": "syslog",
            "ts": RECV_MS - 11_000,
            "format": "rfc3164",
            "timestamp": "Dec  7 11:28:04",
            "facility": "user", "facility_code": 1,
            "severity": "notice", "severity_code": 5,
            "priority": "normal",
            "hostname": "vm",
            "app_name": "myapp",
            "procid": "25064",
            "message": "hello rfc3164"
        })
    );
}

#[test]
fn logger_tcp_line_with_trailing_lf() {
    let e = event(b"<13>Dec  7 11:28:08 vm app2: lf one\n");
    assert_eq!(e["app_name"], "app2");
    assert_eq!(e.get("procid"), None);
    assert_eq!(e["message"], "lf one");
}

#[test]
fn rsyslog_protocol23_format_keeps_msg_as_sent() {
    // RSYSLOG_SyslogProtocol23Format, octet-counted, of a BSD input: an
    // LF inside the count, and the space rsyslog keeps before the MSG.
    let e = event(b"<13>1 2026-12-07T11:28:23+00:00 vm myapp 25904 - -  via rsyslog 3164\n");
    assert_eq!(e["format"], "rfc5424");
    assert_eq!(e["ts"], 1_796_642_903_000_i64);
    assert_eq!(e["procid"], "25904");
    assert_eq!(e.get("structured_data"), None);
    assert_eq!(e["message"], " via rsyslog 3164");
}

#[test]
fn rsyslog_forward_format_has_an_rfc3339_time_and_maybe_no_colon() {
    // RSYSLOG_ForwardFormat (omfwd's and omrelp's default) of RFC 5424 input.
    let e = event(b"<13>2026-12-07T11:28:23.237032+00:00 vm myapp[25902] via rsyslog 5424");
    assert_eq!(e["format"], "rfc3164");
    assert_eq!(e["ts"], 1_796_642_903_237_i64);
    assert_eq!(e["timestamp"], "2026-12-07T11:28:23.237032+00:00");
    assert_eq!(
        (&e["hostname"], &e["app_name"], &e["procid"], &e["message"]),
        (
            &json!("vm"),
            &json!("myapp"),
            &json!("25902"),
            &json!("via rsyslog 5424")
        )
    );
    // Without a pid (captured from omrelp).
    let e = event(b"<13>2026-12-07T11:32:04.166783+00:00 vm myapp relp one");
    assert_eq!(
        (&e["app_name"], &e["message"]),
        (&json!("myapp"), &json!("relp one"))
    );
}

#[test]
fn rsyslog_traditional_forward_format() {
    let e = event(b"<13>Dec  7 11:28:23 vm myapp[25904]: via rsyslog 3164");
    assert_eq!(e["ts"], 1_796_642_903_000_i64);
    assert_eq!(e["app_name"], "myapp");
    assert_eq!(e["message"], "via rsyslog 3164");
}

#[test]
fn rfc5424_example_1_bom_removed_no_structured_data() {
    let mut line = b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8".to_vec();
    let e = event(&line);
    assert_eq!(e["ts"], 1_065_910_455_003_i64);
    assert_eq!(
        (&e["facility"], &e["severity"]),
        (&json!("auth"), &json!("crit"))
    );
    assert_eq!(e["priority"], "high");
    assert_eq!(e["hostname"], "mymachine.example.com");
    assert_eq!(e["message"], "'su root' failed for lonvick on /dev/pts/8");
    // Invalid UTF-8 in MSG becomes U+FFFD.
    line.extend_from_slice(b" \xff");
    assert_eq!(
        event(&line)["message"],
        "'su root' failed for lonvick on /dev/pts/8 \u{fffd}"
    );
}

#[test]
fn rfc5424_example_2_microseconds_and_negative_zone() {
    let e = event(b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.");
    assert_eq!(e["ts"], 1_061_727_255_000_i64);
    assert_eq!(
        (&e["facility"], &e["severity"]),
        (&json!("local4"), &json!("notice"))
    );
    assert_eq!(e["message"], "%% It's time to make the do-nuts.");
}

#[test]
fn rfc5424_example_3_and_4_structured_data() {
    let e = event(br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] BOMAn application event log entry..."#);
    assert_eq!(
        e["structured_data"],
        json!({"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}})
    );
    assert_eq!(e["message"], "BOMAn application event log entry...");
    let e = event(br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]"#);
    assert_eq!(
        e["structured_data"]["examplePriority@32473"],
        json!({"class": "high"})
    );
    assert_eq!(e.get("message"), None);
}

#[test]
fn type_rule_reads_parsed_fields() {
    let line = br#"<13>1 - host app - - [origin@123.4 software="nginx"] x"#;
    assert_eq!(event_with("$app_name|syslog", line, &ctx())["type"], "app");
    assert_eq!(
        event_with(
            "$structured_data.origin@123.4.software|syslog",
            line,
            &ctx()
        )["type"],
        "nginx"
    );
    assert_eq!(
        event_with("$msgid|$severity|syslog", line, &ctx())["type"],
        "notice"
    );
    assert_eq!(event_with("$procid|syslog", line, &ctx())["type"], "syslog");
    assert_eq!(
        event_with("$app_name|syslog", b"junk", &ctx())["type"],
        "syslog"
    );
}

#[test]
fn bsd_without_pri_is_user_notice() {
    let e = event(b"Dec  7 11:28:04 vm sshd[42]: Accepted publickey");
    assert_eq!(e["format"], "rfc3164");
    assert_eq!(
        (&e["facility_code"], &e["severity_code"]),
        (&json!(1), &json!(5))
    );
    assert_eq!(e["app_name"], "sshd");
}

#[test]
fn bsd_without_hostname_starts_with_the_tag() {
    let e = event(b"<30>Dec  7 11:28:04 systemd[1]: Started Session 3.");
    assert_eq!(e.get("hostname"), None);
    assert_eq!(
        (&e["app_name"], &e["procid"]),
        (&json!("systemd"), &json!("1"))
    );
    let e = event(b"<30>Dec  7 11:28:04 kernel: eth0 up");
    assert_eq!(e.get("hostname"), None);
    assert_eq!(
        (&e["app_name"], &e["message"]),
        (&json!("kernel"), &json!("eth0 up"))
    );
}

#[test]
fn bsd_time_uses_the_collector_zone_and_nearest_year() {
    let cet = Context {
        recv_ms: RECV_MS,
        utc_offset_s: 3600,
    };
    let e = event_with(DEFAULT_TYPE_RULE, b"<13>Dec  7 12:28:15 h t: m", &cet);
    assert_eq!(e["ts"], RECV_MS);
    // Sent 31 December, received 1 January 2027.
    let new_year = Context {
        recv_ms: 1_798_761_601_000,
        utc_offset_s: 0,
    };
    let e = event_with(DEFAULT_TYPE_RULE, b"<13>Dec 31 23:59:59 h t: m", &new_year);
    assert_eq!(e["ts"], 1_798_761_599_000_i64);
}

#[test]
fn bsd_february_29_without_a_nearby_leap_year_keeps_only_the_text() {
    let e = event(b"<13>Feb 29 12:00:00 h t: m");
    assert_eq!(e["format"], "rfc3164");
    assert_eq!(e.get("ts"), None);
    assert_eq!(e["timestamp"], "Feb 29 12:00:00");
}

#[test]
fn malformed_messages_are_kept_unparsed_with_the_pri_when_it_parsed() {
    for (line, pri) in [
        (&b"<13>hello world"[..], true),
        (b"<13>1 2026-12-07T11:28:15 vm app - - - no zone", true),
        (b"<13>1 - vm app - - [bad sd", true),
        (b"<13>1 - vm app - -x", true),
        (b"<13>1 - vm app", true),
        (b"<13>2 - - - - - - version two", true),
        (b"<192>1 - - - - - - pri too big", false),
        (b"just text", false),
        (b"", false),
        (b"\xff\xfe\x00binary", false),
    ] {
        let e = event(line);
        assert_eq!(e["format"], "unparsed", "{e}");
        let text = String::from_utf8_lossy(super::message::trim_end(line)).into_owned();
        assert_eq!(e["message"], json!(text));
        assert_eq!(e.get("facility").is_some(), pri, "{e}");
        assert_eq!(e.get("priority").is_some(), pri, "{e}");
        assert_eq!(e.get("ts"), None);
    }
    assert_eq!(event(b"<13>junk")["severity"], "notice");
}

#[test]
fn trailing_crlf_and_nul_are_trimmed() {
    assert_eq!(event(b"<13>1 - - - - - - x\r\n\0")["message"], "x");
    assert_eq!(event(b"oops\r\n")["message"], "oops");
}

#[test]
fn control_characters_and_quotes_stay_one_json_line() {
    let e = event(b"<13>1 - - - - - - a\nb\t\"c\" \\ \x01");
    assert_eq!(e["message"], "a\nb\t\"c\" \\ \u{1}");
}

#[test]
fn a_timestamp_outside_the_collectors_range_is_unparsed() {
    // Year 0000 minus an hour would be a ts the collector refuses.
    let e = event(b"<13>1 0000-01-01T00:00:00+01:00 h a - - - x");
    assert_eq!(e["format"], "unparsed");
}

#[test]
fn items_number_the_lines_of_a_batch() {
    let rule = default_type_rule();
    let mut out = Translation::default();
    for message in [
        &b"<13>1 - - - - - - a"[..],
        b"b",
        b"<13>Dec  7 11:28:04 h t: c",
    ] {
        translate(message, &rule, &ctx(), &mut out);
    }
    let lines: Vec<_> = out.items.iter().map(|i| i.line.clone()).collect();
    assert_eq!(lines, [Ok(0), Ok(1), Ok(2)]);
    assert_eq!(out.ndjson.iter().filter(|&&b| b == b'\n').count(), 3);
}
