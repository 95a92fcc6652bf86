//! The web UI in a real headless Chromium, driven through chromedriver
//! (W3C WebDriver over HTTP, see `support::webdriver`). Needs the Debian
//! packages `chromium` and `chromium-driver`; without them these tests
//! fail with a message saying so (CI installs them), they never skip.

mod support;

use std::collections::HashSet;

use serde_json::{json, Value};
use support::webdriver::Browser;
use support::{shared, Stack};

fn rows(browser: &Browser) -> usize {
    browser.find_all("#results tbody tr.event-row").len()
}

fn wait_rows(browser: &Browser, n: usize) {
    browser.wait_for(&format!("{n} result rows"), || rows(browser) == n);
}

fn csp_complaints(browser: &Browser) -> Vec<String> {
    browser
        .console()
        .into_iter()
        .filter(|m| m.contains("Content Security Policy") || m.contains("Refused to"))
        .collect()
}

#[test]
fn a_query_shows_the_histogram_and_the_matching_rows() {
    let stack = shared();
    let browser = Browser::start();
    browser.goto(&format!("http://{}/", stack.report));
    wait_rows(&browser, 40);
    browser.wait_for("histogram bars", || {
        !browser.find_all("#histogram svg rect.bar").is_empty()
    });
    let summary = browser.text(&browser.find("#summary"));
    assert!(summary.starts_with("40 events"), "{summary}");

    let query = browser.find("#query");
    browser.type_into(&query, "type:signup plan:pro");
    browser.click(&browser.find("#run"));
    wait_rows(&browser, 6);
    browser.wait_for("the histogram of the filtered events", || {
        browser
            .text(&browser.find("#summary"))
            .starts_with("6 events")
    });
    let url = browser.url();
    assert!(
        url.contains("q=type%3Asignup+plan%3Apro"),
        "state in the URL: {url}"
    );
    browser.screenshot("query");
    let types = browser.text(&browser.find("#types"));
    assert!(types.contains("signup") && types.contains("24"), "{types}");
    assert!(
        csp_complaints(&browser).is_empty(),
        "{:?}",
        csp_complaints(&browser)
    );
}

/// `(series name, computed CSS colour)` pairs.
type SeriesColours = Vec<(String, String)>;

/// Each histogram bar's series (from its tooltip, "time · series: count")
/// and computed fill, and each legend entry's name and computed swatch
/// colour, as the browser resolved the CSS.
fn split_histogram_colours(browser: &Browser) -> (SeriesColours, SeriesColours) {
    let drawn = browser.script(
        "const bars = [...document.querySelectorAll('#histogram svg rect.bar')].map((r) => \
           [r.querySelector('title').textContent, getComputedStyle(r).fill]); \
         const legend = [...document.querySelectorAll('#legend .legend-item')].map((i) => \
           [i.textContent, getComputedStyle(i.querySelector('.swatch')).backgroundColor]); \
         return [bars, legend];",
    );
    let pairs = |list: &Value| -> SeriesColours {
        serde_json::from_value(list.clone()).unwrap_or_else(|e| panic!("{e}: {list}"))
    };
    let bars = pairs(&drawn[0])
        .into_iter()
        .map(|(title, fill)| {
            let series = title
                .split_once(" · ")
                .and_then(|(_, rest)| rest.rsplit_once(": "))
                .map(|(series, _count)| series.to_owned())
                .unwrap_or_else(|| panic!("a bar title names its series: {title:?}"));
            (series, fill)
        })
        .collect();
    (bars, pairs(&drawn[1]))
}

#[test]
fn a_split_histogram_draws_each_series_in_its_legend_colour() {
    let stack = shared();
    let browser = Browser::start();
    browser.goto(&format!("http://{}/?split=type", stack.report));
    wait_rows(&browser, 40);
    browser.wait_for("a legend of the three types", || {
        browser.find_all("#legend .legend-item").len() == 3
    });
    let (bars, legend) = split_histogram_colours(&browser);
    browser.screenshot("split-histogram");
    let names: HashSet<&str> = legend.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        HashSet::from(["signup", "login", "purchase"]),
        "{legend:?}"
    );
    let colours: HashSet<&str> = legend.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(colours.len(), 3, "one colour per series: {legend:?}");
    let bar_colours: HashSet<&str> = bars.iter().map(|(_, fill)| fill.as_str()).collect();
    assert_eq!(bar_colours.len(), 3, "bars in three colours: {bars:?}");
    for (series, fill) in &bars {
        let (_, swatch) = legend
            .iter()
            .find(|(name, _)| name == series)
            .unwrap_or_else(|| panic!("series {series} of a bar is in the legend {legend:?}"));
        assert_eq!(fill, swatch, "the {series} bars match its legend swatch");
    }
}

#[test]
fn clicking_a_value_filters_on_it_and_back_undoes_it() {
    let stack = shared();
    let browser = Browser::start();
    browser.goto(&format!("http://{}/?q=type%3Asignup", stack.report));
    wait_rows(&browser, 24);
    let chip = browser.find("#results .value[data-field=\"country\"]");
    let country = browser.text(&chip);
    browser.click(&chip);
    wait_rows(&browser, 8);
    let query: Value = browser.script("return document.getElementById('query').value;");
    assert_eq!(query, json!(format!("type:signup country:\"{country}\"")));
    let shown: Value = browser.script(
        "return [...document.querySelectorAll('#results .value[data-field=\"country\"]')]\
         .map(e => e.textContent);",
    );
    assert!(
        shown
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c == &json!(country)),
        "{shown}"
    );
    browser.back();
    wait_rows(&browser, 24);
    let query: Value = browser.script("return document.getElementById('query').value;");
    assert_eq!(query, json!("type:signup"));
}

#[test]
fn the_group_by_panel_lists_top_values_and_filters_on_click() {
    let stack = shared();
    let browser = Browser::start();
    browser.goto(&format!(
        "http://{}/?group=plan&q=type%3Asignup",
        stack.report
    ));
    browser.wait_for("the group-by panel", || {
        browser.find_all("#groups li.value-row").len() == 3
    });
    let first = browser.find("#groups li.value-row");
    assert!(
        browser.text(&first).starts_with("free"),
        "{}",
        browser.text(&first)
    );
    browser.click(&first);
    wait_rows(&browser, 12);
}

#[test]
fn opening_an_event_shows_its_whole_document_as_pretty_json() {
    let stack = shared();
    let browser = Browser::start();
    browser.goto(&format!("http://{}/?q=type%3Apurchase", stack.report));
    wait_rows(&browser, 6);
    let row = browser.find("#results tbody tr.event-row td.time");
    browser.click(&row);
    let detail = browser.find("#results tr.detail pre");
    browser.wait_for("the event's JSON", || {
        browser.text(&detail).contains("\"amount\"")
    });
    browser.screenshot("event");
    let text = browser.text(&detail);
    assert!(text.starts_with("{\n  \"_id\": \""), "{text}");
    let url = browser.url();
    assert!(url.contains("open="), "the open event is in the URL: {url}");
    // The URL alone reopens it (shareable).
    browser.goto(&url);
    let detail = browser.find("#results tr.detail pre");
    browser.wait_for("the reopened event", || {
        browser.text(&detail).contains("\"amount\"")
    });
}

#[test]
fn the_live_tail_shows_a_newly_stored_event() {
    let stack = Stack::start();
    stack.ingest(&[json!({"type": "warmup"})], 1);
    let browser = Browser::start();
    browser.goto(&format!("http://{}/", stack.report));
    wait_rows(&browser, 1);
    browser.click(&browser.find("#tail-toggle"));
    browser.wait_for("the tail to connect", || {
        browser.script("return document.body.dataset.tail;") == json!("open")
    });
    stack.ingest(&[json!({"type": "arrived-live", "n": 7})], 2);
    let fresh = browser.find("#results tr.event-row.fresh");
    assert!(browser.text(&fresh).contains("arrived-live"));
    assert_eq!(rows(&browser), 2);
    assert!(browser.url().contains("tail=1"));
}

#[test]
fn event_content_is_shown_as_text_and_never_runs() {
    let stack = Stack::start();
    let img = "<img src=x onerror=window.__pwned=1>";
    let script = "<script>window.__pwned=2</script>";
    stack.ingest(
        &[
            json!({"type": img, "note": script, "html": {"k": img}}),
            json!({"type": "xss", "note": img, "payload": [script, img]}),
        ],
        2,
    );
    let browser = Browser::start();
    browser.goto(&format!("http://{}/?group=note&split=note", stack.report));
    wait_rows(&browser, 2);
    for row in browser.find_all("#results tbody tr.event-row td.time") {
        browser.click(&row);
    }
    browser.wait_for("both events opened", || {
        browser.find_all("#results tr.detail pre").len() == 2
            && browser
                .find_all("#results tr.detail pre")
                .iter()
                .all(|pre| browser.text(pre).contains("\"note\""))
    });
    browser.wait_for("the group-by panel", || {
        browser.find_all("#groups li.value-row").len() == 2
    });
    browser.screenshot("xss");
    // Give any injected handler its chance (image error events are async).
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        browser.script("return typeof window.__pwned;"),
        json!("undefined"),
        "event content ran as code"
    );
    assert!(browser
        .find_all("#results img, #groups img, #histogram img, #legend img")
        .is_empty());
    assert!(browser.find_all("#results script").is_empty());
    let table = browser.text(&browser.find("#results"));
    assert!(table.contains(img), "the payload is shown as text: {table}");
    assert!(
        table.contains(script),
        "the payload is shown as text: {table}"
    );
    let groups = browser.text(&browser.find("#groups"));
    assert!(groups.contains(script) && groups.contains(img), "{groups}");
    assert!(
        csp_complaints(&browser).is_empty(),
        "{:?}",
        csp_complaints(&browser)
    );
}

#[test]
fn an_absolute_range_from_the_url_and_a_relative_one_from_the_picker() {
    let stack = shared();
    let base = support::corpus_base_ms();
    let (from, to) = (base - 60_000, base + 5 * 60_000);
    let expected = support::corpus()
        .iter()
        .filter(|e| (from..to).contains(&e["ts"].as_i64().unwrap()))
        .count();
    let browser = Browser::start();
    browser.goto(&format!("http://{}/?from={from}&to={to}", stack.report));
    wait_rows(&browser, expected);
    let picker: Value = browser.script(
        "return [document.getElementById('range').value, \
         document.getElementById('custom-range').hidden];",
    );
    assert_eq!(picker, json!(["custom", false]));
    let export = browser.script("return document.getElementById('export-csv').href;");
    let export = export.as_str().unwrap();
    assert!(
        export.contains("format=csv") && export.contains(&format!("from={from}")),
        "export links follow the view: {export}"
    );

    browser.click(&browser.find("#range option[value=\"24h\"]"));
    wait_rows(&browser, 40);
    assert!(browser.url().contains("range=24h"), "{}", browser.url());
}

#[test]
fn a_bad_filter_shows_the_error_with_a_caret_under_its_position() {
    let stack = shared();
    let browser = Browser::start();
    browser.goto(&format!("http://{}/", stack.report));
    wait_rows(&browser, 40);
    browser.type_into(&browser.find("#query"), "plan:pro (country:US");
    browser.click(&browser.find("#run"));
    browser.wait_for("the error box", || {
        browser.script("return document.getElementById('error').hidden;") == json!(false)
    });
    let caret = browser.text(&browser.find("#error-caret"));
    let lines: Vec<&str> = caret.lines().collect();
    assert_eq!(lines[0], "plan:pro (country:US", "{caret}");
    assert!(lines[1].trim_start() == "^", "{caret}");
}

#[test]
fn the_mongodb_mode_filters_and_clicks_add_to_the_json() {
    let stack = shared();
    let browser = Browser::start();
    browser.goto(&format!(
        "http://{}/?mode=mongo&q={}",
        stack.report,
        support::enc(r#"{"type": "signup"}"#)
    ));
    wait_rows(&browser, 24);
    let chip = browser.find("#results .value[data-field=\"plan\"]");
    let plan = browser.text(&chip);
    browser.click(&chip);
    let expected = if plan == "free" { 12 } else { 6 };
    wait_rows(&browser, expected);
    let query: Value = browser.script("return JSON.parse(document.getElementById('query').value);");
    assert_eq!(query, json!({"type": "signup", "plan": plan}));
}

#[test]
fn with_a_token_the_ui_asks_for_it_once_and_then_works_including_the_tail() {
    let stack = Stack::start_with(&["--token", "ui-s3cret-0123456789"]);
    stack.ingest(&[json!({"type": "guarded"})], 1);
    let browser = Browser::start();
    browser.goto(&format!("http://{}/?tail=1", stack.report));
    let token = browser.find("#login:not([hidden]) #login-token");
    browser.type_into(&token, "ui-s3cret-0123456789");
    browser.click(&browser.find("#login button"));
    wait_rows(&browser, 1);
    browser.wait_for("the tail to connect with the cookie", || {
        browser.script("return document.body.dataset.tail;") == json!("open")
    });
    stack.ingest(&[json!({"type": "guarded-live"})], 2);
    browser.find("#results tr.event-row.fresh");
    let cookies: Value = browser.script("return document.cookie;");
    assert_eq!(cookies, json!(""), "the token cookie is HttpOnly");
}

#[test]
fn load_more_and_the_export_links_reuse_the_window_the_query_ran_with() {
    let stack = Stack::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // More than one page (100 rows), all within the default hour.
    let events: Vec<Value> = (0..150i64)
        .map(|i| json!({"type": "paged", "n": i, "ts": now - 60_000 - i * 1_000}))
        .collect();
    stack.ingest(&events, 150);
    let browser = Browser::start();
    browser.goto(&format!("http://{}/", stack.report));
    wait_rows(&browser, 100);
    let export = browser.script(
        "const u = new URL(document.getElementById('export-ndjson').href); \
         return [u.searchParams.get('from'), u.searchParams.get('to')];",
    );
    // A relative range read again now would have moved on.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    browser.script(
        "window.__requests = []; const fetch0 = window.fetch; \
         window.fetch = (url, opts) => { window.__requests.push(String(url)); \
         return fetch0(url, opts); }; return null;",
    );
    browser.click(&browser.find("#more"));
    wait_rows(&browser, 150);
    let more = browser.script(
        "const u = new URL(window.__requests.find(r => r.startsWith('/api/events?')), \
         location.href); \
         return [u.searchParams.get('from'), u.searchParams.get('to')];",
    );
    assert_eq!(
        more, export,
        "the second page and the export use one window"
    );
    let ids: Value = browser.script(
        "return new Set([...document.querySelectorAll('#results tr.event-row')]\
         .map(r => r.dataset.id)).size;",
    );
    assert_eq!(ids, json!(150), "every event once");
}

#[test]
fn clicking_a_proto_member_adds_it_to_the_mongodb_filter() {
    let stack = Stack::start();
    stack.ingest(
        &[
            json!({"type": "proto", "__proto__": "polluted"}),
            json!({"type": "proto", "__proto__": "other"}),
            json!({"type": "plain"}),
        ],
        3,
    );
    let browser = Browser::start();
    browser.goto(&format!(
        "http://{}/?mode=mongo&q={}",
        stack.report,
        support::enc(r#"{"type": "proto"}"#)
    ));
    wait_rows(&browser, 2);
    let chip = browser.find("#results .value[data-field=\"__proto__\"]");
    let value = browser.text(&chip);
    browser.click(&chip);
    wait_rows(&browser, 1);
    let query = browser.script("return document.getElementById('query').value;");
    let query: Value = serde_json::from_str(query.as_str().unwrap()).unwrap();
    assert_eq!(query, json!({"type": "proto", "__proto__": value}));
}

#[test]
fn a_range_named_like_an_object_member_falls_back_to_the_default() {
    let stack = shared();
    let browser = Browser::start();
    browser.goto(&format!("http://{}/?range=__proto__", stack.report));
    wait_rows(&browser, 40);
    browser.goto(&format!("http://{}/?range=toString", stack.report));
    wait_rows(&browser, 40);
    let picker = browser.script("return document.getElementById('range').value;");
    assert_eq!(picker, json!("1h"));
}

#[test]
fn the_group_by_panel_says_when_a_field_is_counted_from_documents_not_a_column() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::columnar_store(dir.path());
    let server = support::ReportOnly::start(&format!("sqlite://{}", store.display()));
    let base = support::corpus_base_ms();
    let minutes = i64::from(support::COLUMNAR_STORE_EVENTS) + 1;
    let range = format!("from={}&to={}", base - 60_000, base + minutes * 60_000);
    let browser = Browser::start();

    browser.goto(&format!("http://{}/?group=coupon&{range}", server.addr));
    browser.wait_for("the note under the coupon counts", || {
        !browser.find_all("#group-note:not([hidden])").is_empty()
    });
    let note = browser.text(&browser.find("#group-note"));
    assert!(note.starts_with("coupon is not a column"), "{note}");

    browser.goto(&format!("http://{}/?group=plan&{range}", server.addr));
    browser.wait_for("the plan counts", || {
        browser.find_all("#groups li.value-row").len() == 3
    });
    assert!(browser.find_all("#group-note:not([hidden])").is_empty());
}
