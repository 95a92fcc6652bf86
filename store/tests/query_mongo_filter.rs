//! Raw MongoDB filter JSON through the operator allow-list.

use helios_store::query::{
    parse_mongo_filter, CompareOp, FieldPath, Filter, FilterError, Literal, RegexPattern,
    MAX_MONGO_FILTER_DEPTH, MAX_MONGO_FILTER_NODES,
};
use helios_store::ObjectId;
use serde_json::{json, Value};

fn path(dotted: &str) -> FieldPath {
    FieldPath::parse(dotted).unwrap()
}

fn s(text: &str) -> Literal {
    Literal::String(text.to_owned())
}

fn parse(filter: Value) -> Filter {
    parse_mongo_filter(&filter).unwrap_or_else(|e| panic!("{filter}: {e}"))
}

fn refused(filter: Value) -> FilterError {
    parse_mongo_filter(&filter).expect_err(&filter.to_string())
}

#[test]
fn implicit_equality_on_scalars() {
    assert_eq!(
        parse(json!({"plan": "pro"})),
        Filter::eq(path("plan"), s("pro"))
    );
    assert_eq!(
        parse(json!({"n": 3})),
        Filter::eq(path("n"), Literal::Int(3))
    );
    assert_eq!(
        parse(json!({"r": 2.5})),
        Filter::eq(path("r"), Literal::Float(2.5))
    );
    assert_eq!(
        parse(json!({"ok": true})),
        Filter::eq(path("ok"), Literal::Bool(true))
    );
    assert_eq!(
        parse(json!({"x": null})),
        Filter::eq(path("x"), Literal::Null)
    );
}

#[test]
fn several_fields_are_and() {
    assert_eq!(
        parse(json!({"a": 1, "b": "x"})),
        Filter::And(vec![
            Filter::eq(path("a"), Literal::Int(1)),
            Filter::eq(path("b"), s("x")),
        ])
    );
}

#[test]
fn empty_filter_matches_everything() {
    assert_eq!(parse(json!({})), Filter::all());
}

#[test]
fn dotted_paths_are_nested_fields() {
    assert_eq!(
        parse(json!({"user.address.city": "Paris"})),
        Filter::eq(path("user.address.city"), s("Paris"))
    );
}

#[test]
fn comparison_operators() {
    let cases = [
        ("$eq", CompareOp::Eq),
        ("$gt", CompareOp::Gt),
        ("$gte", CompareOp::Gte),
        ("$lt", CompareOp::Lt),
        ("$lte", CompareOp::Lte),
    ];
    for (operator, op) in cases {
        assert_eq!(
            parse(json!({"ms": {operator: 250}})),
            Filter::compare(path("ms"), op, Literal::Int(250)),
            "{operator}"
        );
    }
}

#[test]
fn ne_is_not_eq() {
    assert_eq!(
        parse(json!({"plan": {"$ne": "pro"}})),
        Filter::not(Filter::eq(path("plan"), s("pro")))
    );
}

#[test]
fn several_operators_on_one_field_are_and() {
    assert_eq!(
        parse(json!({"ms": {"$gt": 1, "$lt": 9}})),
        Filter::And(vec![
            Filter::compare(path("ms"), CompareOp::Gt, Literal::Int(1)),
            Filter::compare(path("ms"), CompareOp::Lt, Literal::Int(9)),
        ])
    );
}

#[test]
fn in_and_nin_take_arrays_of_values() {
    assert_eq!(
        parse(json!({"plan": {"$in": ["pro", 2, null]}})),
        Filter::In {
            path: path("plan"),
            values: vec![s("pro"), Literal::Int(2), Literal::Null]
        }
    );
    assert_eq!(
        parse(json!({"plan": {"$nin": []}})),
        Filter::Nin {
            path: path("plan"),
            values: vec![]
        }
    );
}

#[test]
fn exists_takes_booleans_and_numbers() {
    let exists = |b| Filter::Exists {
        path: path("coupon"),
        exists: b,
    };
    assert_eq!(parse(json!({"coupon": {"$exists": true}})), exists(true));
    assert_eq!(parse(json!({"coupon": {"$exists": false}})), exists(false));
    assert_eq!(parse(json!({"coupon": {"$exists": 1}})), exists(true));
    assert_eq!(parse(json!({"coupon": {"$exists": 0}})), exists(false));
}

#[test]
fn regex_options_become_inline_flags() {
    assert_eq!(
        parse(json!({"msg": {"$regex": "^err", "$options": "im"}})),
        Filter::Regex {
            path: path("msg"),
            pattern: RegexPattern::new("(?im)^err").unwrap()
        }
    );
    assert_eq!(
        parse(json!({"msg": {"$regex": "a.c"}})),
        Filter::Regex {
            path: path("msg"),
            pattern: RegexPattern::new("a.c").unwrap()
        }
    );
}

#[test]
fn not_negates_an_operator_object() {
    assert_eq!(
        parse(json!({"ms": {"$not": {"$gt": 5}}})),
        Filter::not(Filter::compare(path("ms"), CompareOp::Gt, Literal::Int(5)))
    );
}

#[test]
fn and_or_nor_combine_filters() {
    let a = Filter::eq(path("a"), Literal::Int(1));
    let b = Filter::eq(path("b"), Literal::Int(2));
    assert_eq!(
        parse(json!({"$and": [{"a": 1}, {"b": 2}]})),
        Filter::And(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        parse(json!({"$or": [{"a": 1}, {"b": 2}]})),
        Filter::Or(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        parse(json!({"$nor": [{"a": 1}, {"b": 2}]})),
        Filter::not(Filter::Or(vec![a, b]))
    );
}

#[test]
fn extended_json_gives_ids_dates_and_typed_numbers() {
    let hex = "6b0dccc70102030405000012";
    assert_eq!(
        parse(json!({"_id": {"$oid": hex}})),
        Filter::eq(path("_id"), Literal::Id(ObjectId::parse_hex(hex).unwrap()))
    );
    assert_eq!(
        parse(json!({"ts": {"$gte": {"$date": "2026-11-30T19:21:43Z"}}})),
        Filter::compare(path("ts"), CompareOp::Gte, Literal::Date(1_796_066_503_000))
    );
    assert_eq!(
        parse(json!({"ts": {"$lt": {"$date": {"$numberLong": "1796066503000"}}}})),
        Filter::compare(path("ts"), CompareOp::Lt, Literal::Date(1_796_066_503_000))
    );
    assert_eq!(
        parse(json!({"n": {"$numberLong": "9007199254740993"}})),
        Filter::eq(path("n"), Literal::Int(9_007_199_254_740_993))
    );
    assert_eq!(
        parse(json!({"n": {"$in": [{"$numberDouble": "0.5"}]}})),
        Filter::In {
            path: path("n"),
            values: vec![Literal::Float(0.5)]
        }
    );
}

#[test]
fn code_running_operators_are_refused_as_such() {
    for filter in [
        json!({"$where": "this.a > 1"}),
        json!({"$expr": {"$function": {"body": "return true", "args": [], "lang": "js"}}}),
        json!({"$function": {}}),
        json!({"$accumulator": {}}),
        json!({"a": {"$where": "1"}}),
        json!({"$and": [{"a": 1}, {"$where": "sleep(1000)"}]}),
        json!({"a": {"$not": {"$expr": {}}}}),
    ] {
        let e = refused(filter.clone());
        assert!(e.message.contains("runs code"), "{filter}: {e}");
    }
}

#[test]
fn refusal_names_the_location() {
    let e = refused(json!({"$and": [{"a": 1}, {"b": {"$where": "1"}}]}));
    assert_eq!(e.location, "filter.$and[1].b.$where");
}

#[test]
fn operators_outside_the_allow_list_are_refused() {
    for filter in [
        json!({"$text": {"$search": "x"}}),
        json!({"$jsonSchema": {}}),
        json!({"$comment": "x"}),
        json!({"loc": {"$near": [0, 0]}}),
        json!({"loc": {"$nearSphere": [0, 0]}}),
        json!({"loc": {"$geoWithin": {}}}),
        json!({"a": {"$elemMatch": {"b": 1}}}),
        json!({"a": {"$size": 1}}),
        json!({"a": {"$all": [1]}}),
        json!({"a": {"$type": "string"}}),
        json!({"a": {"$mod": [2, 0]}}),
        json!({"a": {"$bogus": 1}}),
    ] {
        let e = refused(filter.clone());
        assert!(
            e.message.contains("not an allowed operator"),
            "{filter}: {e}"
        );
    }
}

#[test]
fn whole_object_and_array_equality_are_refused() {
    assert!(refused(json!({"a": {"b": 1}}))
        .message
        .contains("whole object"));
    assert!(refused(json!({"a": [1, 2]}))
        .message
        .contains("whole array"));
    assert!(refused(json!({"a": {"$eq": [1]}}))
        .message
        .contains("arrays"));
}

#[test]
fn malformed_operands_are_refused() {
    let cases = [
        json!({"a": {"$in": 1}}),
        json!({"a": {"$exists": "yes"}}),
        json!({"a": {"$regex": 1}}),
        json!({"a": {"$regex": "x", "$options": "g"}}),
        json!({"a": {"$options": "i"}}),
        json!({"a": {"$regex": "("}}),
        json!({"a": {"$not": 1}}),
        json!({"$and": []}),
        json!({"$or": {"a": 1}}),
        json!({"$nor": [1]}),
        json!({"_id": {"$oid": "xyz"}}),
        json!({"ts": {"$date": "yesterday"}}),
        json!({"a": {"$gt": 1, "b": 2}}),
        json!([{"a": 1}]),
        json!("a"),
    ];
    for filter in cases {
        refused(filter);
    }
}

#[test]
fn invalid_field_paths_are_refused() {
    assert_eq!(refused(json!({"a..b": 1})).location, "filter.a..b");
    refused(json!({"items.0": 1}));
}

#[test]
fn depth_is_limited() {
    let mut filter = json!({"a": 1});
    for _ in 0..MAX_MONGO_FILTER_DEPTH {
        filter = json!({ "$and": [filter] });
    }
    assert!(refused(filter).message.contains("deeper"));
}

#[test]
fn size_is_limited() {
    let values: Vec<Value> = (0..MAX_MONGO_FILTER_NODES).map(|i| json!(i)).collect();
    assert!(refused(json!({"a": {"$in": values}}))
        .message
        .contains("more than"));
}

#[test]
fn more_regex_operators_than_the_limit_are_refused() {
    use helios_store::query::MAX_REGEXES_PER_FILTER;
    let branches = |n: usize| -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| serde_json::json!({ format!("f{i}"): { "$regex": format!("a{i}") } }))
            .collect()
    };
    assert!(
        parse_mongo_filter(&serde_json::json!({ "$or": branches(MAX_REGEXES_PER_FILTER) })).is_ok()
    );
    let error =
        parse_mongo_filter(&serde_json::json!({ "$or": branches(MAX_REGEXES_PER_FILTER + 1) }))
            .unwrap_err();
    assert!(error.to_string().contains("regular expressions"), "{error}");
}
