//! The cold tier against the reference evaluator: files written from a
//! seeded corpus, every executor function compared with `eval` over the
//! same documents; the format's round trip and its field column rule; the
//! writer's crash safety.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::query::api::{GroupKey, HistogramRequest, Hit};
use crate::query::error::QueryError;
use crate::query::eval;
use crate::query::histogram::Plan;
use crate::query::ir::{
    CompareOp, Cursor, FieldPath, Filter, Literal, Query, RegexPattern, Selection, SortOrder,
    TimeRange,
};
use crate::{format_rfc3339_utc_ms, ObjectId};

use super::write::FAIL_AFTER_ROW_GROUPS;
use super::*;

const T0: i64 = 1_760_000_000_000;

fn no_cancel() -> &'static AtomicBool {
    static FLAG: AtomicBool = AtomicBool::new(false);
    &FLAG
}

fn limits() -> ScanLimits<'static> {
    ScanLimits {
        cancelled: no_cancel(),
        deadline: Instant::now() + Duration::from_secs(60),
        limit_ms: 60_000,
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn id(n: u64) -> ObjectId {
    let mut bytes = [0_u8; 12];
    bytes[..4].copy_from_slice(&(1_760_000_000_u32 + (n / 7) as u32).to_be_bytes());
    bytes[4..].copy_from_slice(&(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_be_bytes());
    ObjectId::from_bytes(bytes)
}

/// A stored document: the envelope, then `members` (JSON text).
fn row(n: u64, ts_ms: i64, event_type: &str, app: Option<&str>, members: &str) -> ColdRow {
    row_with_id(id(n), ts_ms, event_type, app, members)
}

fn row_with_id(
    id: ObjectId,
    ts_ms: i64,
    event_type: &str,
    app: Option<&str>,
    members: &str,
) -> ColdRow {
    let mut doc = format!(
        "{{\"_id\":\"{}\",\"type\":\"{event_type}\",\"ts\":\"{}\",\"recv\":\"{}\"",
        id.to_hex(),
        format_rfc3339_utc_ms(ts_ms).unwrap(),
        format_rfc3339_utc_ms(ts_ms + 5).unwrap()
    );
    if let Some(app) = app {
        doc.push_str(&format!(",\"app\":\"{app}\""));
    }
    if !members.is_empty() {
        doc.push(',');
        doc.push_str(members);
    }
    doc.push('}');
    let host = serde_json::from_str::<Value>(&doc)
        .unwrap()
        .get("host")
        .and_then(Value::as_str)
        .map(str::to_owned);
    ColdRow {
        id,
        ts_ms,
        recv_ms: ts_ms + 5,
        event_type: event_type.to_owned(),
        app: app.map(str::to_owned),
        host,
        doc,
    }
}

/// A seeded corpus: types, a small-cardinality string, a large one,
/// numbers (ints and floats, `1` and `1.0`), arrays, objects that are
/// sometimes arrays of objects, nulls and missing fields.
fn corpus(seed: u64, count: u64) -> Vec<ColdRow> {
    let mut rng = Rng(seed | 1);
    let types = ["click", "view", "error"];
    let countries = ["\"de\"", "\"fr\"", "\"us\"", "null", "1", "[\"de\",\"fr\"]"];
    (0..count)
        .map(|n| {
            let ts = T0 + rng.below(3_600_000) as i64;
            let event_type = types[rng.below(3) as usize];
            let app = match rng.below(3) {
                0 => None,
                1 => Some("a1"),
                _ => Some("a2"),
            };
            let mut members = Vec::new();
            if rng.below(10) < 8 {
                members.push(format!(
                    "\"country\":{}",
                    countries[rng.below(countries.len() as u64) as usize]
                ));
            }
            members.push(format!("\"user\":\"u{}\"", rng.below(400)));
            match rng.below(4) {
                0 => members.push(format!("\"n\":{}", rng.below(10))),
                1 => members.push(format!("\"n\":{}.0", rng.below(10))),
                2 => members.push(format!("\"n\":{}.5", rng.below(10))),
                _ => {}
            }
            if rng.below(3) == 0 {
                members.push("\"tags\":[\"red\",\"blue\"]".to_owned());
            } else if rng.below(2) == 0 {
                members.push("\"tags\":\"red\"".to_owned());
            }
            match rng.below(5) {
                0 => members.push(format!("\"obj\":[{{\"x\":{}}},{{\"y\":1}}]", rng.below(4))),
                1 | 2 => members.push(format!("\"obj\":{{\"x\":{},\"z\":\"q\"}}", rng.below(4))),
                _ => {}
            }
            if event_type == "error" {
                members.push(format!("\"code\":{}", 400 + rng.below(5)));
                members.push("\"host\":\"h1\"".to_owned());
            }
            row(n, ts, event_type, app, &members.join(","))
        })
        .collect()
}

/// The corpus written as two files (`row_group_rows` small, so there are
/// many row groups), the opened files and the parsed documents.
fn fixture(dir: &Path, seed: u64, count: u64) -> (Vec<Arc<ColdFile>>, Vec<Value>, Vec<ColdRow>) {
    let rows = corpus(seed, count);
    let options = WriteOptions {
        row_group_rows: 97,
        ..WriteOptions::default()
    };
    // Two files with overlapping time ranges (late events).
    let (mut first, mut second): (Vec<ColdRow>, Vec<ColdRow>) = rows
        .iter()
        .cloned()
        .partition(|row| row.id.as_bytes()[11] % 3 != 0);
    let mut files = Vec::new();
    for (name, part) in [("a.parquet", &mut first), ("b.parquet", &mut second)] {
        let path = dir.join(name);
        let summary = write_file(&path, part, &options).unwrap();
        let file = ColdFile::open(&path).unwrap();
        assert_eq!(file.summary(), &summary);
        assert!(
            file.envelope_exact(),
            "envelope leaves are decided from columns"
        );
        files.push(Arc::new(file));
    }
    let docs = rows
        .iter()
        .map(|row| serde_json::from_str(&row.doc).unwrap())
        .collect();
    (files, docs, rows)
}

/// A histogram split in a test: the path and its series keys.
type SplitCase = (&'static str, Vec<Option<String>>);

fn path(dotted: &str) -> FieldPath {
    FieldPath::parse(dotted).unwrap()
}

fn s(text: &str) -> Literal {
    Literal::String(text.to_owned())
}

/// Filters covering column leaves (quick and evaluator), document leaves,
/// envelope paths and their mixes.
fn filters() -> Vec<Filter> {
    let c = |p: &str, op, v| Filter::compare(path(p), op, v);
    vec![
        Filter::eq(path("country"), s("de")),
        Filter::compare(path("country"), CompareOp::Ne, s("de")),
        Filter::In {
            path: path("country"),
            values: vec![s("fr"), Literal::Int(1)],
        },
        Filter::Nin {
            path: path("country"),
            values: vec![s("fr"), Literal::Null],
        },
        Filter::eq(path("country"), Literal::Null),
        Filter::In {
            path: path("country"),
            values: (0..12)
                .map(|n| s(&format!("x{n}")))
                .chain([s("us")])
                .collect(),
        },
        Filter::Nin {
            path: path("user"),
            values: (0..20).map(|n| s(&format!("u{n}"))).collect(),
        },
        c("n", CompareOp::Gt, Literal::Int(5)),
        c("n", CompareOp::Eq, Literal::Int(1)),
        c("n", CompareOp::Lte, Literal::Float(2.5)),
        Filter::eq(path("tags"), s("red")),
        Filter::eq(path("obj.x"), Literal::Int(3)),
        Filter::Exists {
            path: path("obj.x"),
            exists: false,
        },
        Filter::Exists {
            path: path("country"),
            exists: true,
        },
        Filter::Prefix {
            path: path("user"),
            prefix: "u1".to_owned(),
        },
        Filter::Contains {
            path: path("user"),
            text: "9".to_owned(),
        },
        Filter::Regex {
            path: path("user"),
            pattern: RegexPattern::new("^u[23]\\d$").unwrap(),
        },
        Filter::or(vec![
            Filter::eq(path("country"), s("de")),
            Filter::eq(path("obj.x"), Literal::Int(3)),
        ]),
        Filter::not(Filter::and(vec![
            Filter::eq(path("type"), s("click")),
            c("n", CompareOp::Lt, Literal::Int(3)),
        ])),
        Filter::eq(path("app"), s("a1")),
        Filter::eq(path("app"), Literal::Null),
        c("ts", CompareOp::Gte, Literal::Date(T0 + 1_800_000)),
        c("_id", CompareOp::Lt, Literal::Id(id(1_000))),
        // Envelope leaves of every shape (decided from the columns).
        c("recv", CompareOp::Lt, Literal::Date(T0 + 900_000)),
        c("recv", CompareOp::Gt, Literal::Int(5)),
        c("ts", CompareOp::Ne, s("x")),
        c("ts", CompareOp::Eq, Literal::Null),
        c("ts", CompareOp::Ne, Literal::Null),
        c("ts", CompareOp::Lte, Literal::Null),
        c("_id", CompareOp::Eq, Literal::Id(id(17))),
        c("_id", CompareOp::Gte, Literal::Date(T0)),
        Filter::In {
            path: path("ts"),
            values: vec![Literal::Null, s("a"), Literal::Date(T0 + 5)],
        },
        Filter::Nin {
            path: path("_id"),
            values: (0..500).map(|n| Literal::Id(id(n))).collect(),
        },
        Filter::Exists {
            path: path("recv"),
            exists: false,
        },
        Filter::Contains {
            path: path("ts"),
            text: "20".to_owned(),
        },
        Filter::or(vec![
            c("ts", CompareOp::Lt, Literal::Date(T0 + 600_000)),
            Filter::eq(path("obj.x"), Literal::Int(1)),
        ]),
        Filter::and(vec![
            Filter::eq(path("code"), Literal::Int(402)),
            Filter::eq(path("host"), s("h1")),
        ]),
    ]
}

fn selections() -> Vec<Selection> {
    let mut out = vec![
        Selection::range(TimeRange::ALL),
        Selection::range(TimeRange::new(T0 + 600_000, T0 + 2_400_017)),
        Selection {
            range: TimeRange::ALL,
            types: vec!["error".to_owned(), "view".to_owned()],
            filter: None,
        },
    ];
    for filter in filters() {
        out.push(Selection {
            range: TimeRange::new(T0 + 100_000, T0 + 3_500_000),
            types: Vec::new(),
            filter: Some(filter.clone()),
        });
        out.push(Selection {
            range: TimeRange::ALL,
            types: vec!["click".to_owned()],
            filter: Some(filter),
        });
    }
    out
}

fn selected<'a>(docs: &'a [Value], select: &Selection) -> Vec<&'a Value> {
    docs.iter()
        .filter(|doc| eval::selection_matches(select, doc))
        .collect()
}

#[test]
fn round_trip_keeps_documents_byte_exact_and_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let members = [
        r#""big":123456789012345678901234567890,"neg":-0,"dec":0.1000000000000000055511151231257827"#,
        r#""u":"żółw 🐢 \u0000 \"q\"","nested":{"a":[1,{"b":[2,3]}],"e":{}}"#,
        r#""x":1"#,
    ];
    let mut rows: Vec<ColdRow> = (0..300_u64)
        .map(|n| {
            // Equal timestamps in runs of 3: ties broken by `_id`.
            let ts = T0 + ((300 - n) / 3) as i64;
            row(n, ts, "t", None, members[(n % 3) as usize])
        })
        .collect();
    let expected: HashMap<ObjectId, String> = rows.iter().map(|r| (r.id, r.doc.clone())).collect();
    let path = dir.path().join("p.parquet");
    let options = WriteOptions {
        row_group_rows: 64,
        ..WriteOptions::default()
    };
    let summary = write_file(&path, &mut rows, &options).unwrap();
    assert_eq!(summary.rows, 300);
    assert_eq!(summary.ts_min_ms, T0);
    assert_eq!(summary.ts_max_ms, T0 + 100);
    let file = Arc::new(ColdFile::open(&path).unwrap());
    assert_eq!(file.groups().len(), 5);
    let files = vec![file.clone()];

    let mut query = Query::new(Selection::range(TimeRange::ALL));
    query.sort = SortOrder::Asc;
    query.limit = 1_000;
    let hits = page(&files, &query, &limits()).unwrap();
    assert_eq!(hits.len(), 300);
    for pair in hits.windows(2) {
        assert!(pair[0].cursor() < pair[1].cursor(), "ascending (ts, _id)");
    }
    for hit in &hits {
        assert_eq!(hit.stored_text.as_deref(), Some(expected[&hit.id].as_str()));
        assert_eq!(hit.document().to_string(), expected[&hit.id]);
    }
    let ids_read = ids(&file).unwrap();
    let hit_ids: Vec<ObjectId> = hits.iter().map(|h| h.id).collect();
    assert_eq!(
        ids_read.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        hit_ids
    );
    assert!(ids_read.iter().all(|(_, app)| app.is_none()));
    let one = get(&files, hit_ids[123], &limits()).unwrap().unwrap();
    assert_eq!(one, hits[123]);
    assert_eq!(get(&files, id(100_000), &limits()).unwrap(), None);
}

#[test]
fn field_columns_follow_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for n in 0..100_u64 {
        let event_type = if n < 90 { "common" } else { "rare" };
        let mut members = vec![
            format!("\"every\":{n}"),
            "\"obj\":{\"in\":{\"x\":1}}".to_owned(),
        ];
        // In 60% of `rare` rows only: qualifies through `rare`.
        if (90..96).contains(&n) {
            members.push("\"rare_only\":true".to_owned());
        }
        // In 40% of `common` rows: not enough anywhere.
        if n < 36 {
            members.push("\"sometimes\":1".to_owned());
        }
        // An array on the way in one row: `arr.x` is not a column (nor
        // `arr`, an object in the other rows); `list`, an array at the last
        // segment, is.
        if n == 5 {
            members.push("\"arr\":[{\"x\":1}]".to_owned());
        } else {
            members.push("\"arr\":{\"x\":2}".to_owned());
        }
        members.push("\"list\":[1,[2]]".to_owned());
        members.push("\"deep\":{\"a\":{\"b\":{\"c\":{\"d\":1}}}}".to_owned());
        members.push("\"dot.ted\":1,\"$op\":1,\"12\":1".to_owned());
        rows.push(row(
            n,
            T0 + n as i64,
            event_type,
            Some("a"),
            &members.join(","),
        ));
    }
    let path = dir.path().join("f.parquet");
    write_file(&path, &mut rows, &WriteOptions::default()).unwrap();
    let file = ColdFile::open(&path).unwrap();
    let has = |dotted: &str| {
        file.field_column(&FieldPath::parse(dotted).unwrap())
            .is_some()
    };
    assert!(has("every"));
    assert!(has("obj.in.x"));
    assert!(has("rare_only"));
    assert!(has("list"), "an array at the last segment is a column");
    assert!(!has("arr"), "an object in some row");
    assert!(
        !has("arr.x"),
        "an array on the way in one row excludes the path"
    );
    assert!(
        !has("obj") && !has("obj.in"),
        "object nodes are not columns"
    );
    assert!(!has("sometimes"));
    assert!(!has("deep.a.b.c"), "objects are not columns");
    assert!(!has("deep.a.b.c.d"), "deeper than {MAX_FIELD_DEPTH}");
    assert!(!has("type") && !has("ts") && !has("_id") && !has("app"));

    // The cap keeps the most frequent (ties by path).
    let capped = dir.path().join("c.parquet");
    let options = WriteOptions {
        max_field_columns: 1,
        ..WriteOptions::default()
    };
    write_file(&capped, &mut rows, &options).unwrap();
    let file = ColdFile::open(&capped).unwrap();
    // `every`, `list` and `obj.in.x` are in every row: `every` sorts first.
    let capped_has = |dotted: &str| {
        file.field_column(&FieldPath::parse(dotted).unwrap())
            .is_some()
    };
    assert!(capped_has("every"));
    assert!(!capped_has("list"));
}

#[test]
fn types_match_the_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let (files, docs, _) = fixture(dir.path(), 7, 3_000);
    for range in [
        TimeRange::ALL,
        TimeRange::new(T0 + 1_000_000, T0 + 1_000_500),
        TimeRange::new(T0 + 600_000, T0 + 2_400_017),
        TimeRange::new(0, 1),
    ] {
        let mut expected: HashMap<String, u64> = HashMap::new();
        for doc in selected(&docs, &Selection::range(range)) {
            *expected
                .entry(doc["type"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        assert_eq!(
            types(&files, range, &limits()).unwrap(),
            expected,
            "{range:?}"
        );
    }
}

#[test]
fn histograms_match_the_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let (files, docs, _) = fixture(dir.path(), 11, 3_000);
    let splits: [Option<SplitCase>; 5] = [
        None,
        Some((
            "country",
            vec![Some("\"de\"".into()), None, Some("null".into())],
        )),
        Some(("obj.x", vec![Some("3".into()), None])),
        Some(("type", vec![Some("\"view\"".into())])),
        Some((
            "tags",
            vec![Some("[\"red\",\"blue\"]".into()), Some("\"red\"".into())],
        )),
    ];
    for select in selections() {
        for split in &splits {
            let request = HistogramRequest {
                select: select.clone(),
                bucket_ms: 60_000,
                split_by: None,
            };
            let Ok(plan) = Plan::new(&request) else {
                // TimeRange::ALL needs too many buckets: use the corpus hour.
                continue;
            };
            let split_path = split.as_ref().map(|(p, _)| path(p));
            let keys: &[Option<String>] = split.as_ref().map_or(&[], |(_, k)| k.as_slice());
            let series: Vec<GroupKey> = keys.iter().map(|_| GroupKey::Missing).collect();
            let mut counts = plan.counts(keys.len());
            let arg = split_path.as_ref().map(|p| (p, keys));
            count_into_histogram(&files, &select, &plan, arg, &mut counts, &limits()).unwrap();
            let got = plan.finish(series.clone(), counts);

            let mut want = plan.counts(keys.len());
            for doc in selected(&docs, &select) {
                let ts = eval::sort_key(doc).unwrap().ts_ms;
                let slot = split_path.as_ref().and_then(|p| {
                    let key = group_node(doc, p.segments()).map(node_key);
                    keys.iter().position(|k| *k == key)
                });
                plan.add(&mut want, ts, slot, 1);
            }
            let want = plan.finish(series, want);
            assert_eq!(got, want, "{select:?} split {split:?}");
        }
    }
}

#[test]
fn hour_histograms_match_the_evaluator() {
    // The selections above over TimeRange::ALL are skipped by the bucket
    // limit; cover them with the corpus hour.
    let dir = tempfile::tempdir().unwrap();
    let (files, docs, _) = fixture(dir.path(), 13, 2_000);
    for mut select in selections() {
        select.range = TimeRange::new(T0, T0 + 3_600_000);
        let request = HistogramRequest {
            select: select.clone(),
            bucket_ms: 300_000,
            split_by: None,
        };
        let plan = Plan::new(&request).unwrap();
        let keys = vec![Some("\"u1\"".to_owned()), Some("\"u7\"".to_owned())];
        let user = path("user");
        let mut counts = plan.counts(keys.len());
        count_into_histogram(
            &files,
            &select,
            &plan,
            Some((&user, &keys)),
            &mut counts,
            &limits(),
        )
        .unwrap();
        let series = vec![GroupKey::Missing, GroupKey::Missing];
        let got = plan.finish(series.clone(), counts);
        let mut want = plan.counts(keys.len());
        for doc in selected(&docs, &select) {
            let key = group_node(doc, user.segments()).map(node_key);
            let slot = keys.iter().position(|k| *k == key);
            plan.add(&mut want, eval::sort_key(doc).unwrap().ts_ms, slot, 1);
        }
        assert_eq!(got, plan.finish(series, want), "{select:?}");
    }
}

#[test]
fn tallies_match_the_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let (files, docs, _) = fixture(dir.path(), 17, 3_000);
    for select in selections() {
        for dotted in [
            "country", "obj.x", "obj", "tags", "type", "app", "n", "nope", "user", "ts",
        ] {
            let p = path(dotted);
            let got = tally(
                &files,
                &select,
                &p,
                100_000,
                1 << 30,
                KeyShare::ALL,
                &limits(),
            )
            .unwrap();
            let mut want = Tally::default();
            for doc in selected(&docs, &select) {
                want.total += 1;
                let key = group_node(doc, p.segments()).map(node_key);
                *want.counts.entry(key).or_default() += 1;
            }
            assert_eq!(got, want, "{select:?} by {dotted}");
        }
    }
}

#[test]
fn tally_refuses_past_its_caps() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _, _) = fixture(dir.path(), 19, 500);
    let all = Selection::range(TimeRange::ALL);
    for (keys, bytes) in [(10, 1 << 30), (100_000, 20)] {
        let error = tally(
            &files,
            &all,
            &path("user"),
            keys,
            bytes,
            KeyShare::ALL,
            &limits(),
        )
        .unwrap_err();
        assert!(matches!(error, QueryError::TooManyGroups(_)), "{error:?}");
    }
}

fn oracle_page(docs: &[Value], query: &Query) -> Vec<Cursor> {
    let mut keys: Vec<Cursor> = selected(docs, &query.select)
        .into_iter()
        .map(|doc| eval::sort_key(doc).unwrap())
        .filter(|key| match (query.after, query.sort) {
            (None, _) => true,
            (Some(after), SortOrder::Desc) => *key < after,
            (Some(after), SortOrder::Asc) => *key > after,
        })
        .collect();
    keys.sort();
    if query.sort == SortOrder::Desc {
        keys.reverse();
    }
    keys.truncate(query.effective_limit() + 1);
    keys
}

#[test]
fn pages_match_the_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let (files, docs, rows) = fixture(dir.path(), 23, 2_000);
    let by_id: HashMap<ObjectId, &ColdRow> = rows.iter().map(|r| (r.id, r)).collect();
    for select in selections() {
        for sort in [SortOrder::Desc, SortOrder::Asc] {
            for limit in [1, 7, 150] {
                let mut query = Query::new(select.clone());
                query.sort = sort;
                query.limit = limit;
                // Walk a few pages by keyset.
                for _ in 0..4 {
                    let hits = page(&files, &query, &limits()).unwrap();
                    let got: Vec<Cursor> = hits.iter().map(Hit::cursor).collect();
                    assert_eq!(got, oracle_page(&docs, &query), "{query:?}");
                    for hit in &hits {
                        assert_eq!(
                            hit.stored_text.as_deref(),
                            Some(by_id[&hit.id].doc.as_str())
                        );
                    }
                    if hits.len() <= limit {
                        break;
                    }
                    query.after = Some(hits[limit - 1].cursor());
                }
            }
        }
    }
}

#[test]
fn projected_pages_match_the_sqlite_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (files, docs, _) = fixture(dir.path(), 29, 500);
    let mut query = Query::new(Selection::range(TimeRange::ALL));
    query.projection = Some(vec![path("obj.x"), path("country")]);
    let hits = page(&files, &query, &limits()).unwrap();
    assert_eq!(hits.len(), query.effective_limit() + 1);
    let by_key: HashMap<Cursor, &Value> = docs
        .iter()
        .map(|doc| (eval::sort_key(doc).unwrap(), doc))
        .collect();
    for hit in hits {
        assert_eq!(hit.stored_text, None);
        let paths = query.projection.as_deref().unwrap();
        assert_eq!(
            hit.doc,
            crate::query::project::project(by_key[&hit.cursor()], paths)
        );
    }
}

#[test]
fn get_and_recent_docs_match_the_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let (files, docs, rows) = fixture(dir.path(), 31, 1_500);
    for row in rows.iter().step_by(97) {
        let hit = get(&files, row.id, &limits()).unwrap().unwrap();
        assert_eq!(hit.stored_text.as_deref(), Some(row.doc.as_str()));
        assert_eq!(hit.ts_ms, row.ts_ms);
    }
    assert_eq!(get(&files, id(99_999), &limits()).unwrap(), None);
    for (range, max) in [
        (TimeRange::ALL, 10),
        (TimeRange::new(T0 + 1_000_000, T0 + 1_200_000), 5_000),
        (TimeRange::new(T0, T0 + 2_000_000), 333),
    ] {
        let got = recent_docs(&files, range, max, &limits()).unwrap();
        let mut want: Vec<&Value> = selected(&docs, &Selection::range(range));
        want.sort_by_key(|doc| std::cmp::Reverse(eval::sort_key(doc).unwrap()));
        want.truncate(max);
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "{range:?} {max}");
    }
}

#[test]
fn scans_stop_when_cancelled_or_late() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _, _) = fixture(dir.path(), 37, 300);
    let cancelled = AtomicBool::new(true);
    let stop = ScanLimits {
        cancelled: &cancelled,
        deadline: Instant::now() + Duration::from_secs(60),
        limit_ms: 60_000,
    };
    assert!(matches!(
        types(&files, TimeRange::ALL, &stop),
        Err(QueryError::Cancelled)
    ));
    let late = ScanLimits {
        cancelled: no_cancel(),
        deadline: Instant::now(),
        limit_ms: 5,
    };
    assert!(matches!(
        page(&files, &Query::new(Selection::range(TimeRange::ALL)), &late),
        Err(QueryError::Timeout { limit_ms: 5 })
    ));
}

#[test]
fn a_failed_write_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    let mut rows = corpus(41, 500);
    let options = WriteOptions {
        row_group_rows: 100,
        ..WriteOptions::default()
    };
    FAIL_AFTER_ROW_GROUPS.with(|hook| hook.set(2));
    let error = write_file(&path, &mut rows, &options);
    FAIL_AFTER_ROW_GROUPS.with(|hook| hook.set(usize::MAX));
    assert!(error.is_err());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "nothing published, no temporary left: {left:?}"
    );

    // A failure leaves an existing file as it was.
    let first = write_file(&path, &mut rows[..100].to_vec(), &options).unwrap();
    FAIL_AFTER_ROW_GROUPS.with(|hook| hook.set(1));
    assert!(write_file(&path, &mut rows, &options).is_err());
    FAIL_AFTER_ROW_GROUPS.with(|hook| hook.set(usize::MAX));
    assert_eq!(ColdFile::open(&path).unwrap().summary(), &first);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // Nothing to write, or bad options: refused before any file exists.
    let empty = dir.path().join("empty.parquet");
    assert!(write_file(&empty, &mut Vec::new(), &options).is_err());
    let bad = WriteOptions {
        row_group_rows: 0,
        ..WriteOptions::default()
    };
    assert!(write_file(&empty, &mut rows, &bad).is_err());
    assert!(!empty.exists());
}

#[test]
fn extraction_matches_the_value_walk() {
    let paths: Vec<String> = [
        "country", "user", "n", "tags", "obj.x", "obj.z", "code", "host", "_id", "f1", "f2", "f3",
        "f4", "f5", "s1", "s2", "s3", "big", "neg",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .collect();
    let columns = super::json::Columns::new(&paths);
    let mut out = super::json::Nodes::new(paths.len());
    let mut rows = corpus(43, 400);
    rows.push(row(
        9,
        T0,
        "t",
        None,
        r#""obj":{"x":{"deep":[1,{"a":"\u00e9"}]}},"n":-0,"tags":[]"#,
    ));
    rows.push(row(
        10,
        T0,
        "t",
        None,
        r#""f1":1.0,"f2":1e300,"f3":-0.0,"f4":0.1,"f5":[1.50,2e-7],"s1":"a\nb\"c\\d\/e","s2":"\u00e9\u001f\ud83d\ude00","s3":{"k\u0065y":"\t"},"big":18446744073709551615,"neg":-9223372036854775808"#,
    ));
    rows.push(row(
        11,
        T0,
        "t",
        None,
        r#""big":123456789012345678901234567890,"neg":-0,"n":-1.25e-3,"f1":{"a":[null,true,{}]}"#,
    ));
    // Each row's extracted texts are the reference evaluator's node keys.
    let mut check = |rows: &[ColdRow], paths: &[String], columns: &super::json::Columns| {
        for row in rows {
            super::json::extract(&row.doc, columns, &mut out).unwrap();
            let doc: Value = serde_json::from_str(&row.doc).unwrap();
            for (index, dotted) in paths.iter().enumerate() {
                let segments: Vec<&str> = dotted.split('.').collect();
                assert_eq!(
                    out.get(index).map(str::to_owned),
                    group_node(&doc, &segments).map(node_key),
                    "{dotted} in {}",
                    row.doc
                );
            }
        }
    };
    check(&rows, &paths, &columns);
    // The same `Nodes` with another tree (its remembered lookups are the
    // first tree's): the other tree's answers.
    let reversed: Vec<String> = paths.iter().rev().cloned().collect();
    let other = super::json::Columns::new(&reversed);
    check(&rows[..20], &reversed, &other);
    let mut census = super::json::Census::default();
    super::json::census(&rows[rows.len() - 3].doc, &mut census).unwrap();
    let mut found = census.found_paths();
    found.sort_unstable();
    assert_eq!(found, ["n", "obj", "obj.x", "obj.x.deep", "tags"]);
    assert!(census.is_array("obj.x.deep") && census.is_array("tags"));
    let is_object = |dotted: &str| census.id(dotted).is_some_and(|id| census.is_object_id(id));
    assert!(is_object("obj") && is_object("obj.x") && !is_object("tags"));
    assert!(super::json::census("[1]", &mut census).is_err());
    assert!(super::json::census("{\"a\":1} x", &mut census).is_err());
}

#[test]
fn envelope_columns_decide_only_when_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = corpus(47, 300);
    let exact = dir.path().join("exact.parquet");
    write_file(&exact, &mut rows.clone(), &WriteOptions::default()).unwrap();
    assert!(ColdFile::open(&exact).unwrap().envelope_exact());
    // One row's `recv` column disagrees with its document: the file must
    // answer `recv` conditions from the documents.
    rows[10].recv_ms = T0 - 1;
    let docs: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::from_str(&r.doc).unwrap())
        .collect();
    let loose = dir.path().join("loose.parquet");
    write_file(&loose, &mut rows, &WriteOptions::default()).unwrap();
    let file = Arc::new(ColdFile::open(&loose).unwrap());
    assert!(!file.envelope_exact());
    let select = Selection {
        range: TimeRange::ALL,
        types: Vec::new(),
        filter: Some(Filter::compare(
            path("recv"),
            CompareOp::Lt,
            Literal::Date(T0),
        )),
    };
    let got = tally(
        &[file],
        &select,
        &path("type"),
        100,
        1 << 20,
        KeyShare::ALL,
        &limits(),
    )
    .unwrap();
    assert_eq!(got.total, selected(&docs, &select).len() as u64);
    assert_eq!(got.total, 0);
}

#[test]
fn pruned_documents_answer_like_whole_ones() {
    let docs = [
        r#"{"a":[{"b":1},2,[{"b":3}],{"b":[4,{"c":5}]}],"x":{"y":"s"},"z":1}"#,
        r#"{"a":{"b":{"c":[1,2]}},"x":[{"y":["s","t"]},"u"],"a":{"b":9}}"#,
        r#"{"a":5,"x":null}"#,
    ];
    let leaves = [
        Filter::eq(path("a.b"), Literal::Int(3)),
        Filter::eq(path("a.b"), Literal::Int(4)),
        Filter::eq(path("a.b"), Literal::Int(9)),
        Filter::eq(path("a.b.c"), Literal::Int(5)),
        Filter::Exists {
            path: path("a.b"),
            exists: true,
        },
        Filter::eq(path("x.y"), s("t")),
        Filter::eq(path("x.y"), Literal::Null),
        Filter::Exists {
            path: path("x"),
            exists: true,
        },
    ];
    for text in docs {
        let whole: Value = serde_json::from_str(text).unwrap();
        for leaf in &leaves {
            let mut paths = super::json::Paths::default();
            let (Filter::Compare { path: p, .. } | Filter::Exists { path: p, .. }) = leaf else {
                unreachable!()
            };
            paths.add(p.segments());
            let pruned = super::json::pruned(text, &paths).unwrap();
            assert_eq!(
                eval::matches(leaf, &pruned),
                eval::matches(leaf, &whole),
                "{leaf:?} on {text}"
            );
            assert_eq!(
                group_node(&pruned, p.segments()),
                group_node(&whole, p.segments()),
                "{p} of {text}"
            );
        }
    }
}

#[test]
fn row_groups_end_at_their_document_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = corpus(53, 200);
    // One document far over the cap gets a row group of its own.
    rows[50].doc = rows[50]
        .doc
        .replacen("{", &format!("{{\"pad\":\"{}\",", "x".repeat(5_000)), 1);
    let options = WriteOptions {
        row_group_doc_bytes: 2_000,
        ..WriteOptions::default()
    };
    let path = dir.path().join("b.parquet");
    write_file(&path, &mut rows.clone(), &options).unwrap();
    let file = Arc::new(ColdFile::open(&path).unwrap());
    let by_id: HashMap<ObjectId, usize> = rows.iter().map(|r| (r.id, r.doc.len())).collect();
    let mut query = Query::new(Selection::range(TimeRange::ALL));
    query.sort = SortOrder::Asc;
    query.limit = 1_000;
    let hits = page(std::slice::from_ref(&file), &query, &limits()).unwrap();
    assert_eq!(hits.len(), rows.len());
    let mut at = 0;
    for group in file.groups() {
        let bytes: usize = hits[at..at + group.rows].iter().map(|h| by_id[&h.id]).sum();
        assert!(
            group.rows == 1 || bytes <= 2_000,
            "{} rows, {bytes} bytes",
            group.rows
        );
        at += group.rows;
    }
    assert!(file.groups().len() > 10);
    assert!(file.groups().iter().any(|g| g.rows == 1));
}

#[test]
fn regexes_refuse_strings_longer_than_they_may_scan() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = RegexPattern::new("x{1,1000}y").unwrap();
    let long = "x".repeat(pattern.max_scan_bytes() + 1);
    let mut rows: Vec<ColdRow> = (0..20_u64)
        .map(|n| {
            let text = if n == 7 { long.as_str() } else { "short" };
            row(
                n,
                T0 + n as i64,
                "t",
                None,
                &format!("\"col\":\"{text}\",\"deep\":[{{\"s\":\"{text}\"}}]"),
            )
        })
        .collect();
    let path_ = dir.path().join("r.parquet");
    write_file(&path_, &mut rows, &WriteOptions::default()).unwrap();
    let file = Arc::new(ColdFile::open(&path_).unwrap());
    assert!(file.field_column(&path("col")).is_some());
    assert!(file.field_column(&path("deep.s")).is_none());
    // Through the column and through the documents alike.
    for dotted in ["col", "deep.s"] {
        let select = Selection {
            range: TimeRange::ALL,
            types: Vec::new(),
            filter: Some(Filter::Regex {
                path: path(dotted),
                pattern: pattern.clone(),
            }),
        };
        let error = tally(
            std::slice::from_ref(&file),
            &select,
            &path("type"),
            10,
            1 << 20,
            KeyShare::ALL,
            &limits(),
        )
        .unwrap_err();
        assert!(
            matches!(&error, QueryError::Invalid(m) if m.contains("scan")),
            "{dotted}: {error:?}"
        );
    }
}

#[test]
fn canonical_keys_reserialize() {
    assert_eq!(
        canonical_key("{ \"b\": 1, \"a\" : [1, 2.0] }").unwrap(),
        "{\"b\":1,\"a\":[1,2.0]}"
    );
    assert_eq!(canonical_key("\"x\"").unwrap(), "\"x\"");
    assert_eq!(canonical_key("nope"), None);
}

/// Timings on reference-like events (one day): run with
/// `HELIOS_COLD_TIMING_EVENTS=1000000 cargo test --release -p helios-store
/// --lib columnar::tests::timings -- --nocapture`. Prints, asserts only
/// agreement between paths; without the variable it says it skipped (a
/// timing run is a benchmark, not part of the suite).
#[test]
fn timings_one_million_events() {
    let Some(count) = std::env::var("HELIOS_COLD_TIMING_EVENTS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    else {
        println!(
            "SKIPPED timings_one_million_events: a timing run; set HELIOS_COLD_TIMING_EVENTS=N (release mode) to run it"
        );
        return;
    };
    let day_ms = 86_400_000_i64;
    let mut rng = Rng(42);
    let types = ["page_view", "click", "api_call", "error", "signup"];
    let started = Instant::now();
    let mut rows: Vec<ColdRow> = (0..count)
        .map(|n| {
            let ts = T0 + (n as i64 * day_ms) / count as i64;
            let user = if rng.below(2) == 0 {
                rng.below(100)
            } else {
                rng.below(110_000)
            };
            let members = format!(
                "\"country\":\"c{}\",\"user\":\"user-{user}\",\"latency_ms\":{},\"trace\":\"{:016x}\",\"path\":\"/api/v1/items/{}\",\"ok\":{}",
                rng.below(50),
                rng.below(2_000),
                rng.next(),
                rng.below(1_000),
                rng.below(10) != 0
            );
            let event_type = types[(rng.below(100) % 5) as usize];
            // As a client makes them: creation second, a fixed node, a
            // counter.
            let mut id = [0_u8; 12];
            id[..4].copy_from_slice(&((ts / 1_000) as u32).to_be_bytes());
            id[4..9].copy_from_slice(&[7, 1, 2, 3, 4]);
            id[9..].copy_from_slice(&(n as u32).to_be_bytes()[1..]);
            row_with_id(ObjectId::from_bytes(id), ts, event_type, Some("shop"), &members)
        })
        .collect();
    let doc_bytes: usize = rows.iter().map(|r| r.doc.len()).sum();
    eprintln!(
        "generated {count} events ({} MB of documents) in {:?}",
        doc_bytes >> 20,
        started.elapsed()
    );
    let dir = tempfile::tempdir().unwrap();
    let file_path = dir.path().join("day.parquet");
    let started = Instant::now();
    let zstd_level = std::env::var("HELIOS_COLD_TIMING_ZSTD")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ZSTD_LEVEL);
    let options = WriteOptions {
        zstd_level,
        ..WriteOptions::default()
    };
    let summary = write_file(&file_path, &mut rows, &options).unwrap();
    eprintln!(
        "write_file: {:?}, {} MB ({:.1} MB per million events)",
        started.elapsed(),
        summary.bytes >> 20,
        summary.bytes as f64 / 1e6 / (count as f64 / 1e6)
    );
    // Where the writer's time goes.
    let started = Instant::now();
    let mut census = super::json::Census::default();
    for row in &rows {
        census.found.clear();
        super::json::census(&row.doc, &mut census).unwrap();
    }
    eprintln!("  of which the path census: {:?}", started.elapsed());
    let fields: Vec<String> = ["country", "user", "latency_ms", "trace", "path", "ok"]
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
    let columns = super::json::Columns::new(&fields);
    let mut out = super::json::Nodes::new(fields.len());
    let started = Instant::now();
    rows.push(row(
        10,
        T0,
        "t",
        None,
        r#""f1":1.0,"f2":1e300,"f3":-0.0,"f4":0.1,"f5":[1.50,2e-7],"s1":"a\nb\"c\\d\/e","s2":"\u00e9\u001f\ud83d\ude00","s3":{"k\u0065y":"\t"},"big":18446744073709551615,"neg":-9223372036854775808"#,
    ));
    rows.push(row(
        11,
        T0,
        "t",
        None,
        r#""big":123456789012345678901234567890,"neg":-0,"n":-1.25e-3,"f1":{"a":[null,true,{}]}"#,
    ));
    for row in &rows {
        super::json::extract(&row.doc, &columns, &mut out).unwrap();
    }
    eprintln!("  of which extracting 6 columns: {:?}", started.elapsed());
    let started = Instant::now();
    let bare = dir.path().join("bare.parquet");
    let options = WriteOptions {
        max_field_columns: 0,
        ..options
    };
    write_file(&bare, &mut rows, &options).unwrap();
    eprintln!("  without field columns: {:?}", started.elapsed());
    std::fs::remove_file(&bare).unwrap();
    let time = |what: &str, run: &mut dyn FnMut() -> String| {
        // Best of three: the first run pays for the page cache.
        let mut best = Duration::MAX;
        let mut out = String::new();
        for _ in 0..3 {
            let started = Instant::now();
            out = run();
            best = best.min(started.elapsed());
        }
        eprintln!("{what:<44} {:>9.1} ms   {out}", best.as_secs_f64() * 1e3);
    };
    let started = Instant::now();
    let files = vec![Arc::new(ColdFile::open(&file_path).unwrap())];
    eprintln!("ColdFile::open: {:?}", started.elapsed());
    for (name, bytes) in files[0].column_bytes() {
        eprintln!("  column {name:<12} {:>8} KB", bytes >> 10);
    }
    let day = TimeRange::new(T0, T0 + day_ms);
    let all = Selection::range(day);
    time("types (whole day)", &mut || {
        format!("{} types", types_fn(&files, day).len())
    });
    let histogram = |select: &Selection| {
        let request = HistogramRequest {
            select: select.clone(),
            bucket_ms: 60_000,
            split_by: None,
        };
        let plan = Plan::new(&request).unwrap();
        let mut counts = plan.counts(0);
        count_into_histogram(&files, select, &plan, None, &mut counts, &limits()).unwrap();
        let total: u64 = plan
            .finish(Vec::new(), counts)
            .buckets
            .iter()
            .map(|b| b.count)
            .sum();
        format!("{total} events")
    };
    time("histogram, 1-minute buckets", &mut || histogram(&all));
    let one_user = Selection {
        filter: Some(Filter::eq(path("user"), s("user-7"))),
        ..all.clone()
    };
    time("histogram, user = one value", &mut || histogram(&one_user));
    let rare_user = Selection {
        filter: Some(Filter::eq(path("user"), s("user-109999"))),
        ..all.clone()
    };
    time("histogram, user = a rare value", &mut || {
        histogram(&rare_user)
    });
    let by_doc = Selection {
        filter: Some(Filter::Prefix {
            path: path("path"),
            prefix: "/api/v1/items/99".to_owned(),
        }),
        ..all.clone()
    };
    time("histogram, prefix on a column", &mut || histogram(&by_doc));
    let doc_leaf = Selection {
        filter: Some(Filter::compare(
            path("recv"),
            CompareOp::Lt,
            Literal::Date(T0 + 3_600_000),
        )),
        ..all.clone()
    };
    time("histogram, recv < 1 h (envelope column)", &mut || {
        histogram(&doc_leaf)
    });
    let nested = Selection {
        filter: Some(Filter::eq(path("nested.deep"), Literal::Int(1))),
        ..all.clone()
    };
    time("histogram, a path in no row (doc leaf)", &mut || {
        histogram(&nested)
    });
    for field in ["country", "user", "trace"] {
        time(&format!("tally {field}"), &mut || match tally(
            &files,
            &all,
            &path(field),
            2_000_000,
            1 << 30,
            KeyShare::ALL,
            &limits(),
        ) {
            Ok(t) => format!("{} keys", t.counts.len()),
            Err(e) => format!("{e}"),
        });
    }
    time("tally country, user = one value", &mut || {
        let t = tally(
            &files,
            &one_user,
            &path("country"),
            1_000,
            1 << 20,
            KeyShare::ALL,
            &limits(),
        )
        .unwrap();
        format!("{} events", t.total)
    });
    let mut query = Query::new(all.clone());
    time("page: newest 100", &mut || {
        format!("{} hits", page(&files, &query, &limits()).unwrap().len())
    });
    query.select = one_user.clone();
    time("page: newest 100, user = one value", &mut || {
        format!("{} hits", page(&files, &query, &limits()).unwrap().len())
    });
    let some_id = rows[count as usize / 2].id;
    time("get (one id)", &mut || {
        format!("{}", get(&files, some_id, &limits()).unwrap().is_some())
    });
    time("recent_docs 5000", &mut || {
        format!(
            "{} docs",
            recent_docs(&files, day, 5_000, &limits()).unwrap().len()
        )
    });
    time("ids (whole file)", &mut || {
        format!("{} ids", ids(&files[0]).unwrap().len())
    });
}

fn types_fn(files: &[Arc<ColdFile>], range: TimeRange) -> HashMap<String, u64> {
    types(files, range, &limits()).unwrap()
}

/// A row whose document is `doc` exactly (for envelopes the builder would
/// not write: escapes, disagreeing columns).
fn raw_row(n: u64, ts_ms: i64, event_type: &str, app: Option<&str>, doc: String) -> ColdRow {
    ColdRow {
        id: id(n),
        ts_ms,
        recv_ms: ts_ms + 5,
        event_type: event_type.to_owned(),
        app: app.map(str::to_owned),
        host: None,
        doc,
    }
}

/// Documents whose values a column cannot always stand for: each must
/// read back byte for byte from its template, and values that differ from
/// their column's text must stay in the template.
fn template_rows() -> Vec<ColdRow> {
    let envelope = |n: u64, ts: i64| {
        format!(
            "\"_id\":\"{}\",\"ts\":\"{}\",\"recv\":\"{}\"",
            id(n).to_hex(),
            format_rfc3339_utc_ms(ts).unwrap(),
            format_rfc3339_utc_ms(ts + 5).unwrap()
        )
    };
    let members = [
        r#""user":"u1","n":-0,"amount":1.50,"big":123456789012345678901234567890"#,
        r#""user":"\u0075\u0032","n":7,"amount":2,"big":1"#,
        r#""user":"żółw 🐢 \"q\"","n":1e3,"amount":-0.0,"big":18446744073709551615"#,
        r#""user":"u4","n":3,"amount":0.5,"big":2,"nested":{"a":[1,{"b":[2,3]}],"e":{}}"#,
        r#""user":"u5","n":3,"amount":0.5,"big":2,"user":"u6""#,
        r#""user" : "u7" ,"n":	4 ,"amount":[1.50],"big":{"x":1}"#,
    ];
    let mut rows = Vec::new();
    for (at, member) in members.iter().enumerate() {
        let n = at as u64;
        let ts = T0 + n as i64;
        rows.push(row(n, ts, "plain", Some("a1"), member));
        // An escaped type and app: their columns hold the decoded text.
        rows.push(raw_row(
            100 + n,
            ts,
            "click",
            Some("a/b"),
            format!(
                "{{{},\"type\":\"cl\\u0069ck\",\"app\":\"a\\/b\",{member}}}",
                envelope(100 + n, ts)
            ),
        ));
        // Upper-case id hex and a `ts` text the column does not render.
        let upper = envelope(200 + n, ts)
            .replace(&id(200 + n).to_hex(), &id(200 + n).to_hex().to_uppercase())
            .replace(".", ".0");
        rows.push(raw_row(
            200 + n,
            ts,
            "t",
            None,
            format!("{{{upper},\"type\":\"t\",{member}}}"),
        ));
    }
    rows
}

#[test]
fn templates_give_every_document_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = template_rows();
    let expected: HashMap<ObjectId, String> = rows.iter().map(|r| (r.id, r.doc.clone())).collect();
    let path = dir.path().join("t.parquet");
    let options = WriteOptions {
        row_group_rows: 5,
        ..WriteOptions::default()
    };
    write_file(&path, &mut rows, &options).unwrap();
    let file = Arc::new(ColdFile::open(&path).unwrap());
    assert!(file.templated());
    assert!(file.field_column(&path_of("user")).is_some());
    assert!(file.field_column(&path_of("amount")).is_some());
    let files = vec![file.clone()];
    let mut query = Query::new(Selection::range(TimeRange::ALL));
    query.limit = 1_000;
    let hits = page(&files, &query, &limits()).unwrap();
    assert_eq!(hits.len(), rows.len());
    for hit in &hits {
        assert_eq!(hit.stored_text.as_deref(), Some(expected[&hit.id].as_str()));
        let one = get(&files, hit.id, &limits()).unwrap().unwrap();
        assert_eq!(one.stored_text, hit.stored_text);
    }
    let recent = recent_docs(&files, TimeRange::ALL, 1_000, &limits()).unwrap();
    assert_eq!(recent.len(), rows.len());
    // A filter the field columns cannot decide reads documents.
    let select = Selection {
        range: TimeRange::ALL,
        types: Vec::new(),
        filter: Some(Filter::Exists {
            path: path_of("nested.e"),
            exists: true,
        }),
    };
    let got = tally(
        &files,
        &select,
        &path_of("type"),
        100,
        1 << 20,
        KeyShare::ALL,
        &limits(),
    )
    .unwrap();
    assert_eq!(got.total, 3);

    // What the templates hold: markers where the text is the column's,
    // the document's own text elsewhere.
    let mut templates = HashMap::new();
    for group in 0..file.groups().len() {
        let batch = file
            .read(group, &[file.column(COL_ID), file.column(COL_DOC)], None)
            .unwrap()
            .unwrap();
        let ids = batch.column_by_name(COL_ID).unwrap();
        let ids = ids
            .as_any()
            .downcast_ref::<arrow_array::FixedSizeBinaryArray>()
            .unwrap();
        let docs = batch.column_by_name(COL_DOC).unwrap();
        let docs = docs
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        for row in 0..batch.num_rows() {
            let id = ObjectId::from_slice(ids.value(row)).unwrap();
            templates.insert(id, docs.value(row).to_owned());
        }
    }
    let user = file.field_column(&path_of("user")).unwrap();
    let marker = |column: usize| format!("\u{1}{column}\u{2}");
    let plain = &templates[&id(0)];
    for column in [0, 1, 2, 3, 4, user] {
        assert!(plain.contains(&marker(column)), "{column} in {plain:?}");
    }
    assert!(plain.contains("1.50"), "1.50 is not its canonical text");
    assert!(plain.contains("123456789012345678901234567890"));
    assert!(!plain.contains("\"u1\""));
    let escaped = &templates[&id(100)];
    assert!(escaped.contains("cl\\u0069ck") && escaped.contains("a\\/b"));
    assert!(!escaped.contains(&marker(3)) && !escaped.contains(&marker(4)));
    assert!(templates[&id(101)].contains("\\u0075\\u0032"));
    let upper = &templates[&id(200)];
    assert!(!upper.contains(&marker(0)) && !upper.contains(&marker(1)));
    assert!(upper.contains(&id(200).to_hex().to_uppercase()));
    // A duplicated member: the column holds one of them; the other stays.
    let twice = &templates[&id(4)];
    assert_eq!(twice.matches(&marker(user)).count(), 1, "{twice:?}");
    // Whitespace around a value stays in the template.
    assert!(templates[&id(5)].contains(&format!("\"user\" : {} ,", marker(user))));
    // Documents in their template form are shorter.
    let total: usize = templates.values().map(String::len).sum();
    let whole: usize = expected.values().map(String::len).sum();
    assert!(total * 10 < whole * 8, "{total} of {whole}");
}

#[test]
fn format_1_files_read_like_format_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = corpus(53, 600);
    rows.extend(template_rows());
    let options = WriteOptions {
        row_group_rows: 128,
        ..WriteOptions::default()
    };
    let v2 = dir.path().join("v2.parquet");
    write_file(&v2, &mut rows.clone(), &options).unwrap();
    let v1 = dir.path().join("v1.parquet");
    super::write::WRITE_FORMAT_1.with(|c| c.set(true));
    let written = write_file(&v1, &mut rows.clone(), &options);
    super::write::WRITE_FORMAT_1.with(|c| c.set(false));
    written.unwrap();
    let v1 = vec![Arc::new(ColdFile::open(&v1).unwrap())];
    let v2 = vec![Arc::new(ColdFile::open(&v2).unwrap())];
    assert!(!v1[0].templated());
    assert!(v2[0].templated());
    assert!(v2[0].summary().bytes < v1[0].summary().bytes);
    let mut query = Query::new(Selection::range(TimeRange::ALL));
    query.limit = 10_000;
    let one = page(&v1, &query, &limits()).unwrap();
    let two = page(&v2, &query, &limits()).unwrap();
    assert_eq!(one.len(), rows.len());
    assert_eq!(one, two);
    for select in selections() {
        let mut query = Query::new(select.clone());
        query.limit = 10_000;
        assert_eq!(
            page(&v1, &query, &limits()).unwrap(),
            page(&v2, &query, &limits()).unwrap()
        );
        let countries = |files: &[Arc<ColdFile>]| {
            let country = path_of("country");
            tally(
                files,
                &select,
                &country,
                100,
                1 << 20,
                KeyShare::ALL,
                &limits(),
            )
            .unwrap()
        };
        assert_eq!(countries(&v1), countries(&v2));
    }
}

fn path_of(dotted: &str) -> FieldPath {
    FieldPath::parse(dotted).unwrap()
}
