//! The reference evaluator: the IR's semantics (see the [module
//! docs](super)) over stored documents as `serde_json::Value`, written for
//! clarity, not speed. It is the oracle the back ends are tested against.
//!
//! A document is the stored `doc` JSON: `_id` is read as an ObjectId from
//! its 24 hex digits, `ts` and `recv` as dates from their RFC 3339 text.

use std::cmp::Ordering;

use serde_json::Value;

use crate::model::parse_rfc3339_ms;
use crate::ObjectId;

use super::ir::{
    CompareOp, Cursor, FieldPath, Filter, Literal, Selection, PATH_ID, PATH_RECV, PATH_TS,
    PATH_TYPE,
};

/// Whether `doc` matches `filter`.
pub fn matches(filter: &Filter, doc: &Value) -> bool {
    match filter {
        Filter::Compare { path, op, value } => compare(&nodes(doc, path), *op, value),
        Filter::In { path, values } => {
            let found = nodes(doc, path);
            values
                .iter()
                .any(|value| compare(&found, CompareOp::Eq, value))
        }
        Filter::Nin { path, values } => {
            let found = nodes(doc, path);
            !values
                .iter()
                .any(|value| compare(&found, CompareOp::Eq, value))
        }
        Filter::Exists { path, exists } => nodes(doc, path).is_empty() != *exists,
        Filter::Contains { path, text } => {
            any_string(&nodes(doc, path), |s| s.contains(text.as_str()))
        }
        Filter::Prefix { path, prefix } => {
            any_string(&nodes(doc, path), |s| s.starts_with(prefix.as_str()))
        }
        Filter::Regex { path, pattern } => any_string(&nodes(doc, path), |s| pattern.is_match(s)),
        Filter::And(children) => children.iter().all(|child| matches(child, doc)),
        Filter::Or(children) => children.iter().any(|child| matches(child, doc)),
        Filter::Not(child) => !matches(child, doc),
    }
}

/// Whether `doc` is in the selection: `ts` in the range, `type` among the
/// types (if any), and the filter (if any).
pub fn selection_matches(select: &Selection, doc: &Value) -> bool {
    let in_range = date_of(doc, PATH_TS).is_some_and(|ts| select.range.contains(ts));
    let type_ok = select.types.is_empty()
        || doc
            .get(PATH_TYPE)
            .and_then(Value::as_str)
            .is_some_and(|t| select.types.iter().any(|wanted| wanted == t));
    let filter_ok = select
        .filter
        .as_ref()
        .is_none_or(|filter| matches(filter, doc));
    in_range && type_ok && filter_ok
}

/// The `(ts, _id)` sort key of a document, `None` if its envelope is
/// damaged.
pub fn sort_key(doc: &Value) -> Option<Cursor> {
    Some(Cursor {
        ts_ms: date_of(doc, PATH_TS)?,
        id: id_of(doc)?,
    })
}

/// A node the walk reached, typed as the IR types it.
#[derive(Debug, Clone, Copy)]
enum Node<'a> {
    Json(&'a Value),
    Date(i64),
    Id(ObjectId),
}

/// The nodes at `path` (see "Paths" in the module docs).
fn nodes<'a>(doc: &'a Value, path: &FieldPath) -> Vec<Node<'a>> {
    // The envelope fields are typed: a date or an id, never their text.
    if path.is(PATH_TS) || path.is(PATH_RECV) {
        let name = &path.segments()[0];
        return date_of(doc, name).map(Node::Date).into_iter().collect();
    }
    if path.is(PATH_ID) {
        return id_of(doc).map(Node::Id).into_iter().collect();
    }
    let mut found = Vec::new();
    walk(doc, path.segments(), &mut found);
    found
}

fn walk<'a>(value: &'a Value, segments: &[String], found: &mut Vec<Node<'a>>) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    let Some(child) = value.as_object().and_then(|object| object.get(first)) else {
        return;
    };
    if rest.is_empty() {
        found.push(Node::Json(child));
        return;
    }
    match child {
        Value::Object(_) => walk(child, rest, found),
        // Traverse one array level: its object elements continue the walk.
        Value::Array(elements) => {
            for element in elements.iter().filter(|e| e.is_object()) {
                walk(element, rest, found);
            }
        }
        _ => {}
    }
}

/// The values a condition is tested against: each node, and each element
/// of a node that is an array.
fn candidates<'a>(found: &[Node<'a>]) -> Vec<Node<'a>> {
    let mut out = Vec::with_capacity(found.len());
    for node in found {
        out.push(*node);
        if let Node::Json(Value::Array(elements)) = node {
            out.extend(elements.iter().map(Node::Json));
        }
    }
    out
}

fn compare(found: &[Node<'_>], op: CompareOp, literal: &Literal) -> bool {
    if let Literal::Null = literal {
        // Null is alone in its bracket: <= and >= mean ==, < and > nothing;
        // and == null also matches a missing field (MongoDB).
        return match op {
            CompareOp::Eq | CompareOp::Lte | CompareOp::Gte => {
                found.is_empty() || any_eq(found, literal)
            }
            CompareOp::Ne => !(found.is_empty() || any_eq(found, literal)),
            CompareOp::Lt | CompareOp::Gt => false,
        };
    }
    match op {
        CompareOp::Ne => !any_eq(found, literal),
        _ => candidates(found)
            .iter()
            .filter_map(|node| bracket_cmp(node, literal))
            .any(|ordering| op_holds(op, ordering)),
    }
}

fn any_eq(found: &[Node<'_>], literal: &Literal) -> bool {
    candidates(found)
        .iter()
        .any(|node| bracket_cmp(node, literal) == Some(Ordering::Equal))
}

fn op_holds(op: CompareOp, ordering: Ordering) -> bool {
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Lte => ordering != Ordering::Greater,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Gte => ordering != Ordering::Less,
    }
}

/// `node` compared with `literal` when both are in the same type bracket,
/// else `None` (they never match).
fn bracket_cmp(node: &Node<'_>, literal: &Literal) -> Option<Ordering> {
    match (node, literal) {
        (Node::Json(Value::Null), Literal::Null) => Some(Ordering::Equal),
        (Node::Json(Value::Bool(b)), Literal::Bool(l)) => Some(b.cmp(l)),
        (Node::Json(Value::Number(n)), Literal::Int(_) | Literal::Float(_)) => {
            cmp_numbers(json_number(n)?, literal_number(literal)?)
        }
        (Node::Json(Value::String(s)), Literal::String(l)) => Some(s.as_bytes().cmp(l.as_bytes())),
        (Node::Date(ms), Literal::Date(l)) => Some(ms.cmp(l)),
        (Node::Id(id), Literal::Id(l)) => Some(id.cmp(l)),
        _ => None,
    }
}

/// A number as the stores hold it: an `i64` when it fits, else a double
/// (SQLite and MongoDB both turn larger integers into doubles).
#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i64),
    Float(f64),
}

fn json_number(n: &serde_json::Number) -> Option<Number> {
    match n.as_i64() {
        Some(i) => Some(Number::Int(i)),
        None => n.as_f64().map(Number::Float),
    }
}

fn literal_number(literal: &Literal) -> Option<Number> {
    match literal {
        Literal::Int(i) => Some(Number::Int(*i)),
        Literal::Float(f) => Some(Number::Float(*f)),
        _ => None,
    }
}

/// Exact numeric comparison of integers and doubles (no rounding of the
/// integer through `f64`), as SQLite and MongoDB compare them.
fn cmp_numbers(a: Number, b: Number) -> Option<Ordering> {
    match (a, b) {
        (Number::Int(x), Number::Int(y)) => Some(x.cmp(&y)),
        (Number::Float(x), Number::Float(y)) => x.partial_cmp(&y),
        (Number::Int(x), Number::Float(y)) => cmp_int_float(x, y),
        (Number::Float(x), Number::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    }
}

/// 2^63 as a double: the first double above every `i64`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

fn cmp_int_float(int: i64, float: f64) -> Option<Ordering> {
    if float.is_nan() {
        return None;
    }
    if float >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if float < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    // Now `float` lies within i64's range: compare integer parts exactly,
    // then the fraction breaks the tie.
    let truncated = float.trunc();
    #[allow(clippy::cast_possible_truncation)] // in range, checked above
    let whole = truncated as i64;
    match int.cmp(&whole) {
        Ordering::Equal => {
            let fraction = float - truncated;
            Some(if fraction > 0.0 {
                Ordering::Less
            } else if fraction < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            })
        }
        other => Some(other),
    }
}

fn any_string(found: &[Node<'_>], test: impl Fn(&str) -> bool) -> bool {
    candidates(found).iter().any(|node| match node {
        Node::Json(Value::String(s)) => test(s),
        _ => false,
    })
}

fn date_of(doc: &Value, name: &str) -> Option<i64> {
    doc.get(name)
        .and_then(Value::as_str)
        .and_then(parse_rfc3339_ms)
}

fn id_of(doc: &Value) -> Option<ObjectId> {
    doc.get(PATH_ID)
        .and_then(Value::as_str)
        .and_then(|hex| ObjectId::parse_hex(hex).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_floats_compare_exactly() {
        let big = (1_i64 << 53) + 1;
        // `big as f64` rounds down to 2^53: the exact comparison must see
        // the integer as larger.
        assert_eq!(
            cmp_numbers(Number::Int(big), Number::Float((1_i64 << 53) as f64)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp_numbers(Number::Int(2), Number::Float(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_numbers(Number::Int(-2), Number::Float(-2.5)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp_numbers(Number::Float(3.0), Number::Int(3)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp_numbers(Number::Int(i64::MAX), Number::Float(TWO_POW_63)),
            Some(Ordering::Less)
        );
    }
}
