//! Raw MongoDB filter JSON → [`Filter`], through an operator allow-list.
//!
//! Allowed: implicit equality (`{"plan": "pro"}`), dotted paths,
//! `$eq $ne $gt $gte $lt $lte $in $nin $exists $regex` (+ `$options` from
//! `i m s x`, mapped to inline regex flags), `$not` (over operators),
//! `$and $or $nor`. Values are JSON scalars or MongoDB extended JSON for
//! the types JSON lacks: `{"$oid": "…"}`, `{"$date": "RFC 3339" | ms |
//! {"$numberLong": "…"}}`, `{"$numberLong"|"$numberInt"|"$numberDouble": "…"}`.
//!
//! Refused, with a message that says why: anything that runs code on the
//! server (`$where`, `$function`, `$accumulator`, `$expr`, which can call
//! `$function`), and every other operator (`$text`, `$near…`,
//! `$jsonSchema`, `$elemMatch`, `$size`, …): an allow-list, not a
//! deny-list, so an operator added to MongoDB later is refused too.
//! Whole-object and whole-array equality are refused (the IR has no such
//! literals).

use serde_json::{Map, Value};

use crate::model::parse_rfc3339_ms;
use crate::ObjectId;

use super::error::FilterError;
use super::ir::{CompareOp, FieldPath, Filter, Literal, RegexPattern, MAX_REGEXES_PER_FILTER};

/// Deepest nesting of a raw filter (objects and arrays).
pub const MAX_MONGO_FILTER_DEPTH: usize = 32;
/// Most operators and values in one raw filter.
pub const MAX_MONGO_FILTER_NODES: usize = 1_024;

/// Operators that run code on the server.
const CODE_OPERATORS: [&str; 4] = ["$where", "$function", "$accumulator", "$expr"];

/// Translates a MongoDB filter document (see the module docs).
pub fn parse_mongo_filter(filter: &Value) -> Result<Filter, FilterError> {
    let mut parser = Parser { nodes: 0 };
    let object = filter
        .as_object()
        .ok_or_else(|| error("filter", "a filter must be a JSON object"))?;
    let parsed = parser.document(object, "filter", 1)?;
    let regexes = parsed.regex_count();
    if regexes > MAX_REGEXES_PER_FILTER {
        return Err(error(
            "filter",
            format!("the filter holds {regexes} regular expressions; at most {MAX_REGEXES_PER_FILTER} are allowed"),
        ));
    }
    Ok(parsed)
}

fn error(location: &str, message: impl Into<String>) -> FilterError {
    FilterError {
        location: location.to_owned(),
        message: message.into(),
    }
}

fn code_refusal(location: &str, operator: &str) -> FilterError {
    error(
        location,
        format!("`{operator}` is refused: it runs code on the database server"),
    )
}

struct Parser {
    nodes: usize,
}

impl Parser {
    /// Counts one node and checks the depth.
    fn enter(&mut self, location: &str, depth: usize) -> Result<(), FilterError> {
        self.nodes += 1;
        if self.nodes > MAX_MONGO_FILTER_NODES {
            return Err(error(
                location,
                format!("the filter has more than {MAX_MONGO_FILTER_NODES} operators and values"),
            ));
        }
        if depth > MAX_MONGO_FILTER_DEPTH {
            return Err(error(
                location,
                format!("the filter nests deeper than {MAX_MONGO_FILTER_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// `{clause, clause, …}`: all clauses hold.
    fn document(
        &mut self,
        object: &Map<String, Value>,
        location: &str,
        depth: usize,
    ) -> Result<Filter, FilterError> {
        self.enter(location, depth)?;
        let mut clauses = Vec::with_capacity(object.len());
        for (key, value) in object {
            let here = format!("{location}.{key}");
            let clause = if key.starts_with('$') {
                self.logical(key, value, &here, depth + 1)?
            } else {
                let path = FieldPath::parse(key)
                    .map_err(|e| error(&here, format!("field `{key}`: {e}")))?;
                self.field(path, value, &here, depth + 1)?
            };
            clauses.push(clause);
        }
        Ok(single_or(clauses, Filter::And))
    }

    /// A top-level `$…` key: `$and`, `$or`, `$nor`.
    fn logical(
        &mut self,
        key: &str,
        value: &Value,
        location: &str,
        depth: usize,
    ) -> Result<Filter, FilterError> {
        if CODE_OPERATORS.contains(&key) {
            return Err(code_refusal(location, key));
        }
        if !matches!(key, "$and" | "$or" | "$nor") {
            return Err(error(
                location,
                format!(
                    "`{key}` is not an allowed operator (allowed at top level: $and, $or, $nor)"
                ),
            ));
        }
        let items = value
            .as_array()
            .filter(|items| !items.is_empty())
            .ok_or_else(|| {
                error(
                    location,
                    format!("`{key}` needs a non-empty array of filters"),
                )
            })?;
        let mut children = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let here = format!("{location}[{i}]");
            let object = item
                .as_object()
                .ok_or_else(|| error(&here, "each element must be a filter object"))?;
            children.push(self.document(object, &here, depth + 1)?);
        }
        Ok(match key {
            "$and" => single_or(children, Filter::And),
            "$or" => single_or(children, Filter::Or),
            _ => Filter::not(single_or(children, Filter::Or)),
        })
    }

    /// `field: value` or `field: {operators}`.
    fn field(
        &mut self,
        path: FieldPath,
        value: &Value,
        location: &str,
        depth: usize,
    ) -> Result<Filter, FilterError> {
        self.enter(location, depth)?;
        match value {
            Value::Object(object) if is_operator_object(object) => {
                if let Some(literal) = extended_json(object, location)? {
                    return Ok(Filter::eq(path, literal));
                }
                self.operators(&path, object, location, depth + 1)
            }
            Value::Object(_) => Err(error(
                location,
                "equality with a whole object is not supported; compare its fields with dotted paths (a.b)",
            )),
            Value::Array(_) => Err(error(
                location,
                "equality with a whole array is not supported; use $in, or compare elements",
            )),
            scalar => Ok(Filter::eq(path, literal(scalar, location)?)),
        }
    }

    /// `{"$op": …, …}` on one path: all operators hold.
    fn operators(
        &mut self,
        path: &FieldPath,
        object: &Map<String, Value>,
        location: &str,
        depth: usize,
    ) -> Result<Filter, FilterError> {
        let mut conditions = Vec::with_capacity(object.len());
        for (operator, operand) in object {
            let here = format!("{location}.{operator}");
            self.enter(&here, depth)?;
            if !operator.starts_with('$') {
                return Err(error(
                    &here,
                    "operators and field names cannot be mixed in one object",
                ));
            }
            let condition = match operator.as_str() {
                "$eq" => compare(path, CompareOp::Eq, operand, &here)?,
                "$ne" => Filter::not(compare(path, CompareOp::Eq, operand, &here)?),
                "$gt" => compare(path, CompareOp::Gt, operand, &here)?,
                "$gte" => compare(path, CompareOp::Gte, operand, &here)?,
                "$lt" => compare(path, CompareOp::Lt, operand, &here)?,
                "$lte" => compare(path, CompareOp::Lte, operand, &here)?,
                "$in" => Filter::In {
                    path: path.clone(),
                    values: self.literal_list(operand, &here)?,
                },
                "$nin" => Filter::Nin {
                    path: path.clone(),
                    values: self.literal_list(operand, &here)?,
                },
                "$exists" => Filter::Exists {
                    path: path.clone(),
                    exists: truthy(operand, &here)?,
                },
                "$regex" => regex(path, operand, object.get("$options"), &here)?,
                "$options" => {
                    if !object.contains_key("$regex") {
                        return Err(error(&here, "`$options` needs a `$regex` beside it"));
                    }
                    continue;
                }
                "$not" => {
                    let inner = operand
                        .as_object()
                        .filter(|inner| is_operator_object(inner) && !inner.is_empty())
                        .ok_or_else(|| error(&here, "`$not` needs an object of operators"))?;
                    Filter::not(self.operators(path, inner, &here, depth + 1)?)
                }
                other if CODE_OPERATORS.contains(&other) => return Err(code_refusal(&here, other)),
                other => {
                    return Err(error(
                        &here,
                        format!(
                            "`{other}` is not an allowed operator (allowed: $eq $ne $gt $gte $lt \
                             $lte $in $nin $exists $regex $options $not)"
                        ),
                    ))
                }
            };
            conditions.push(condition);
        }
        if conditions.is_empty() {
            return Err(error(
                location,
                "an empty operator object matches nothing sensible",
            ));
        }
        Ok(single_or(conditions, Filter::And))
    }

    fn literal_list(
        &mut self,
        operand: &Value,
        location: &str,
    ) -> Result<Vec<Literal>, FilterError> {
        let items = operand
            .as_array()
            .ok_or_else(|| error(location, "needs an array of values"))?;
        let mut values = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let here = format!("{location}[{i}]");
            self.enter(&here, 0)?;
            values.push(any_literal(item, &here)?);
        }
        Ok(values)
    }
}

/// An object whose keys all start with `$` (operators or extended JSON).
fn is_operator_object(object: &Map<String, Value>) -> bool {
    object.keys().next().is_some_and(|key| key.starts_with('$'))
}

fn compare(
    path: &FieldPath,
    op: CompareOp,
    operand: &Value,
    location: &str,
) -> Result<Filter, FilterError> {
    Ok(Filter::compare(
        path.clone(),
        op,
        any_literal(operand, location)?,
    ))
}

/// A scalar or an extended-JSON value.
fn any_literal(value: &Value, location: &str) -> Result<Literal, FilterError> {
    if let Value::Object(object) = value {
        return extended_json(object, location)?.ok_or_else(|| {
            error(location, "objects are not values here (only $oid, $date, $numberLong, $numberInt, $numberDouble)")
        });
    }
    literal(value, location)
}

/// A JSON scalar as a literal.
fn literal(value: &Value, location: &str) -> Result<Literal, FilterError> {
    match value {
        Value::Null => Ok(Literal::Null),
        Value::Bool(b) => Ok(Literal::Bool(*b)),
        Value::String(s) => Ok(Literal::String(s.clone())),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(Literal::Int(i)),
            None => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Literal::Float)
                .ok_or_else(|| error(location, "number out of range")),
        },
        Value::Array(_) => Err(error(location, "arrays are not values here")),
        Value::Object(_) => Err(error(location, "objects are not values here")),
    }
}

/// `Some(literal)` for a one-key extended-JSON object, `None` for an
/// object that is not extended JSON (operators), an error for a malformed
/// one.
fn extended_json(
    object: &Map<String, Value>,
    location: &str,
) -> Result<Option<Literal>, FilterError> {
    let mut entries = object.iter();
    let (Some((key, value)), None) = (entries.next(), entries.next()) else {
        return Ok(None);
    };
    let text = value.as_str();
    let literal = match key.as_str() {
        "$oid" => Literal::Id(
            text.and_then(|hex| ObjectId::parse_hex(hex).ok())
                .ok_or_else(|| error(location, "`$oid` needs 24 hex digits"))?,
        ),
        "$date" => Literal::Date(date(value).ok_or_else(|| {
            error(
                location,
                "`$date` needs RFC 3339 text, epoch ms, or {\"$numberLong\": \"…\"}",
            )
        })?),
        "$numberLong" | "$numberInt" => Literal::Int(
            text.and_then(|digits| digits.parse().ok())
                .ok_or_else(|| error(location, format!("`{key}` needs an integer string")))?,
        ),
        "$numberDouble" => Literal::Float(
            text.and_then(|digits| digits.parse::<f64>().ok())
                .filter(|f| f.is_finite())
                .ok_or_else(|| error(location, "`$numberDouble` needs a finite number string"))?,
        ),
        _ => return Ok(None),
    };
    Ok(Some(literal))
}

fn date(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => parse_rfc3339_ms(text),
        Value::Number(n) => n.as_i64(),
        Value::Object(object) => object
            .get("$numberLong")
            .and_then(Value::as_str)
            .and_then(|digits| digits.parse().ok())
            .filter(|_| object.len() == 1),
        _ => None,
    }
}

/// `$exists` takes a boolean, or a number (non-zero = true) as MongoDB does.
fn truthy(value: &Value, location: &str) -> Result<bool, FilterError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        _ => Err(error(location, "`$exists` needs true or false")),
    }
}

fn regex(
    path: &FieldPath,
    pattern: &Value,
    options: Option<&Value>,
    location: &str,
) -> Result<Filter, FilterError> {
    let source = pattern
        .as_str()
        .ok_or_else(|| error(location, "`$regex` needs a string pattern"))?;
    let flags = match options {
        None => "",
        Some(Value::String(flags)) => flags.as_str(),
        Some(_) => return Err(error(location, "`$options` must be a string")),
    };
    if let Some(bad) = flags.chars().find(|c| !matches!(c, 'i' | 'm' | 's' | 'x')) {
        return Err(error(
            location,
            format!("unknown `$options` flag `{bad}` (allowed: i, m, s, x)"),
        ));
    }
    let source = if flags.is_empty() {
        source.to_owned()
    } else {
        format!("(?{flags}){source}")
    };
    let pattern = RegexPattern::new(&source)
        .map_err(|e| error(location, format!("{e} (Rust regex syntax)")))?;
    Ok(Filter::Regex {
        path: path.clone(),
        pattern,
    })
}

fn single_or(mut children: Vec<Filter>, combine: fn(Vec<Filter>) -> Filter) -> Filter {
    if children.len() == 1 {
        children.remove(0)
    } else {
        combine(children)
    }
}
