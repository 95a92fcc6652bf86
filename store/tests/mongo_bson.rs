//! JSON → BSON for the MongoDB sink, against arbitrary input: it never
//! panics, and any JSON object the collector could store comes back with
//! the same values.

mod common;

use helios_store::mongo::event_to_bson;
use helios_store::EventDoc;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn stored(text: String) -> EventDoc {
    let mut doc = common::event(1);
    doc.doc = text;
    doc
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        (-1.0e15f64..1.0e15).prop_map(|f| json!(f)),
        "[a-zA-Z0-9 \"\\\\/\u{e9}\u{1F600}\t\n]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_.$]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = event_to_bson(&stored(text));
    }

    #[test]
    fn mangled_json_never_panics(cut in 0usize..60, value in json_value()) {
        let text = json!({"type": "t", "v": value}).to_string();
        let end = text.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(text.len());
        let _ = event_to_bson(&stored(text[..end].to_owned()));
    }

    #[test]
    fn json_objects_keep_their_values(value in json_value()) {
        let text = json!({"type": "t", "v": value}).to_string();
        let bson = event_to_bson(&stored(text)).expect("valid JSON converts");
        let document = bson::Document::try_from(bson).expect("well-formed BSON");
        let back = to_json(document.get("v").expect("member v"));
        prop_assert_eq!(normalize(&back), normalize(&value));
    }
}

/// The JSON value a BSON value stands for (the types this converter makes
/// from the generated inputs).
fn to_json(value: &bson::Bson) -> Value {
    match value {
        bson::Bson::Null => Value::Null,
        bson::Bson::Boolean(b) => json!(b),
        bson::Bson::Int32(i) => json!(i),
        bson::Bson::Int64(i) => json!(i),
        bson::Bson::Double(f) => json!(f),
        bson::Bson::String(s) => json!(s),
        bson::Bson::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        bson::Bson::Document(d) => {
            Value::Object(d.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        other => panic!("unexpected BSON for generated JSON: {other:?}"),
    }
}

/// Numbers compared as f64 (BSON keeps ints as ints and doubles as
/// doubles; relaxed extended JSON prints both as plain numbers).
fn normalize(value: &Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
