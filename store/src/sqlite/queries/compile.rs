//! IR → SQL over the `events` table (DESIGN §5). Values are always bound
//! parameters, never spliced into the text; only fixed SQL and parameter
//! numbers are written here.
//!
//! Every compiled condition evaluates to 0 or 1, never NULL, so `NOT`
//! behaves as the IR's negation under SQL's three-valued logic.
//!
//! A field's *nodes* (module docs of `query`) come from one of three
//! sources:
//! - a column for the envelope (`ts`, `recv`, `_id`, `type`, `app`), typed
//!   with pseudo JSON types `'date'` and `'oid'` no JSON value has;
//! - `json_type`/`json_extract` at `$."name"` for a one-segment path (no
//!   array can sit before the last segment, so there is one node at most);
//! - a chain of `json_each` joins for longer paths, which traverses an
//!   array before each later segment the way the evaluator does.

use rusqlite::types::Value as SqlValue;

use super::super::schema::late_bucket;

use crate::query::error::QueryError;
use crate::query::ir::{
    CompareOp, FieldPath, Filter, Literal, Selection, PATH_APP, PATH_ID, PATH_RECV, PATH_TS,
    PATH_TYPE,
};

/// Most event types one selection may list.
pub const MAX_SELECTION_TYPES: usize = 256;
/// Most bound parameters one statement may get (SQLite's own default limit
/// is 32766); a bound on the size of a compiled filter.
pub const MAX_SQL_PARAMS: usize = 8_192;

/// SQL text with its bound parameters, built left to right.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) params: Vec<SqlValue>,
}

impl Sql {
    /// Binds `value` and returns its placeholder (`?N`).
    pub(crate) fn bind(&mut self, value: SqlValue) -> Result<String, QueryError> {
        if self.params.len() >= MAX_SQL_PARAMS {
            return Err(QueryError::Invalid(format!(
                "the filter is too large (more than {MAX_SQL_PARAMS} values)"
            )));
        }
        self.params.push(value);
        Ok(format!("?{}", self.params.len()))
    }

    pub(crate) fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

/// The hot tier's rows of one selection as the two arms of a read
/// (schema version 3): *live* rows through the `ts` indexes (partial,
/// `late_bucket IS NULL`) and *late* rows through their buckets
/// (`events_late`, the buckets the time range overlaps). Both
/// arms repeat one compiled condition, so they share its bound parameters.
/// Every read of the hot tier by time unions the two; reads by `_id` or
/// `seq` need not.
#[derive(Debug)]
pub(crate) struct HotArms {
    /// `FROM events WHERE late_bucket IS NULL AND …`.
    pub(crate) live: String,
    /// `FROM events WHERE late_bucket IS NOT NULL AND late_bucket >= … AND …`:
    /// not `INDEXED BY`, which SQLite cannot honour for some filters ("no
    /// query solution"); the bucket range makes `events_late` its choice
    /// unless a better index applies (an `_id` equality).
    pub(crate) late: String,
}

impl HotArms {
    /// `SELECT columns` over both arms, unordered: for scans and counts.
    pub(crate) fn union_all(&self, columns: &str) -> String {
        format!(
            "SELECT {columns} {} UNION ALL SELECT {columns} {}",
            self.live, self.late
        )
    }

    /// `SELECT columns` over both arms, the first `limit` (a placeholder)
    /// rows by `(ts, _id)` in `direction` (`ASC`, `DESC`): each arm ordered
    /// and cut to `limit`, then merged. The live arm walks its index; the
    /// late arm walks its buckets in order (a bucket holds a slice of
    /// `ts`, so bucket order is time order) and sorts one bucket's rows
    /// at a time, stopping once it has `limit`. `columns` must include
    /// `ts` and `_id` (a compound's ORDER BY names result columns).
    pub(crate) fn union_ordered(&self, columns: &str, direction: &str, limit: &str) -> String {
        debug_assert!(direction == "ASC" || direction == "DESC", "{direction}");
        let order = format!("ts {direction}, _id {direction}");
        format!(
            "SELECT * FROM (SELECT {columns} {} ORDER BY {order} LIMIT {limit}) \
             UNION ALL SELECT * FROM (SELECT {columns} {} \
             ORDER BY late_bucket {direction}, {order} LIMIT {limit}) \
             ORDER BY {order} LIMIT {limit}",
            self.live, self.late
        )
    }
}

/// The two arms of `select` in the hot tier, each also held to `extra`
/// (a condition compiled into `sql` already, or empty).
pub(crate) fn hot_arms(
    sql: &mut Sql,
    select: &Selection,
    extra: &str,
) -> Result<HotArms, QueryError> {
    let condition = selection_condition(sql, select)? + extra;
    // The buckets that can hold a row of the range: from the one holding
    // its start up to its end (a bucket starts at or before its rows).
    let first_bucket = sql.bind(SqlValue::Integer(late_bucket(select.range.from_ms)))?;
    let end = sql.bind(SqlValue::Integer(select.range.to_ms))?;
    Ok(HotArms {
        live: format!("FROM events WHERE late_bucket IS NULL AND {condition}"),
        late: format!(
            "FROM events WHERE late_bucket IS NOT NULL \
             AND late_bucket >= {first_bucket} AND late_bucket < {end} AND {condition}"
        ),
    })
}

/// Appends the WHERE condition of a selection (range, types, filter).
pub(crate) fn selection(sql: &mut Sql, select: &Selection) -> Result<(), QueryError> {
    let condition = selection_condition(sql, select)?;
    sql.push(&condition);
    Ok(())
}

/// The WHERE condition of a selection (binding its values into `sql`),
/// for the caller to place.
fn selection_condition(sql: &mut Sql, select: &Selection) -> Result<String, QueryError> {
    if select.types.len() > MAX_SELECTION_TYPES {
        return Err(QueryError::Invalid(format!(
            "{} types selected, the limit is {MAX_SELECTION_TYPES}",
            select.types.len()
        )));
    }
    let from = sql.bind(SqlValue::Integer(select.range.from_ms))?;
    let to = sql.bind(SqlValue::Integer(select.range.to_ms))?;
    let mut condition = format!("ts >= {from} AND ts < {to}");
    if !select.types.is_empty() {
        let mut placeholders = Vec::with_capacity(select.types.len());
        for event_type in &select.types {
            placeholders.push(sql.bind(SqlValue::Text(event_type.clone()))?);
        }
        condition.push_str(&format!(" AND type IN ({})", placeholders.join(", ")));
    }
    if let Some(filter) = &select.filter {
        condition.push_str(" AND ");
        condition.push_str(&compile_filter(sql, filter)?);
    }
    Ok(condition)
}

/// Compiles `filter` to a condition (binding its values into `sql`) and
/// returns the condition's text; the caller places it.
pub(crate) fn compile_filter(sql: &mut Sql, filter: &Filter) -> Result<String, QueryError> {
    match filter {
        Filter::And(children) => combine(sql, children, " AND ", "1"),
        Filter::Or(children) => combine(sql, children, " OR ", "0"),
        Filter::Not(child) => Ok(format!("NOT {}", compile_filter(sql, child)?)),
        Filter::Exists { path, exists } => {
            let source = NodeSource::of(path);
            let present = source.exists(sql)?;
            Ok(if *exists {
                present
            } else {
                format!("NOT {present}")
            })
        }
        Filter::Compare { path, op, value } => compare(sql, path, *op, value),
        Filter::In { path, values } => in_list(sql, path, values),
        Filter::Nin { path, values } => Ok(format!("NOT {}", in_list(sql, path, values)?)),
        Filter::Contains { path, text } => {
            let needle = sql.bind(SqlValue::Text(text.clone()))?;
            any_candidate(sql, path, &|t, v| {
                format!("{t} = 'text' AND instr({v}, {needle}) > 0")
            })
        }
        Filter::Prefix { path, prefix } => {
            let start = sql.bind(SqlValue::Text(prefix.clone()))?;
            any_candidate(sql, path, &|t, v| {
                format!("{t} = 'text' AND substr({v}, 1, length({start})) = {start}")
            })
        }
        Filter::Regex { path, pattern } => {
            let regex = sql.bind(SqlValue::Text(pattern.source().to_owned()))?;
            any_candidate(sql, path, &|t, v| {
                format!("{t} = 'text' AND regexp({regex}, {v})")
            })
        }
    }
}

fn combine(
    sql: &mut Sql,
    children: &[Filter],
    operator: &str,
    empty: &str,
) -> Result<String, QueryError> {
    if children.is_empty() {
        return Ok(empty.to_owned());
    }
    let mut parts = Vec::with_capacity(children.len());
    for child in children {
        parts.push(compile_filter(sql, child)?);
    }
    Ok(balanced(&parts, operator))
}

/// `parts` joined by `operator` as a balanced tree of parentheses. SQLite
/// parses `a OR b OR c …` as a left-deep tree whose depth is the number of
/// terms, and refuses one deeper than 1000 ("Expression tree is too
/// large"); balanced, 1000 terms nest 10 deep.
fn balanced(parts: &[String], operator: &str) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        _ => {
            let (left, right) = parts.split_at(parts.len() / 2);
            format!(
                "({}{operator}{})",
                balanced(left, operator),
                balanced(right, operator)
            )
        }
    }
}

/// `path` equals one of `values`: one flat `IN (?, ?, …)` list per type
/// bracket (strings, numbers, and for envelope columns dates or ids) and a
/// type test for booleans, instead of one condition per value, so the SQL
/// stays small and shallow however long the list is (up to the filter's
/// node limit). Same semantics as an `Or` of `Eq`s: `IN` compares with `=`
/// and the type brackets are checked as `compare` checks them.
fn in_list(sql: &mut Sql, path: &FieldPath, values: &[Literal]) -> Result<String, QueryError> {
    let mut null = false;
    let mut bools = [false; 2];
    let (mut numbers, mut strings, mut dates, mut ids) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for value in values {
        match value {
            Literal::Null => null = true,
            Literal::Bool(b) => bools[usize::from(*b)] = true,
            Literal::Int(i) => numbers.push(SqlValue::Integer(*i)),
            Literal::Float(f) => numbers.push(SqlValue::Real(*f)),
            Literal::String(text) => strings.push(SqlValue::Text(text.clone())),
            Literal::Date(ms) => dates.push(SqlValue::Integer(*ms)),
            Literal::Id(id) => ids.push(SqlValue::Blob(id.as_bytes().to_vec())),
        }
    }
    let mut parts = Vec::new();
    if null {
        parts.push(compare(sql, path, CompareOp::Eq, &Literal::Null)?);
    }
    let source = NodeSource::of(path);
    if let NodeSource::Column {
        value_sql,
        column_type,
        nullable,
        ..
    } = source
    {
        // Only the values of the column's own type can match; the others
        // are not bound at all (an unused parameter breaks the count).
        let same_type = match column_type {
            "text" => strings,
            "date" => dates,
            "oid" => ids,
            _ => Vec::new(),
        };
        if !same_type.is_empty() {
            let list = bind_list(sql, same_type)?;
            parts.push(if nullable {
                format!("({value_sql} IS NOT NULL AND {value_sql} IN ({list}))")
            } else {
                format!("({value_sql} IN ({list}))")
            });
        }
    } else {
        // (type names a candidate must have, placeholders its value must be
        // among, if any).
        let mut conditions: Vec<(&str, Option<String>)> = Vec::new();
        if !numbers.is_empty() {
            conditions.push(("'integer', 'real'", Some(bind_list(sql, numbers)?)));
        }
        if !strings.is_empty() {
            conditions.push(("'text'", Some(bind_list(sql, strings)?)));
        }
        match bools {
            [true, true] => conditions.push(("'false', 'true'", None)),
            [true, false] => conditions.push(("'false'", None)),
            [false, true] => conditions.push(("'true'", None)),
            [false, false] => {}
        }
        // Dates and ids are held only by envelope columns: no JSON node
        // matches them.
        if !conditions.is_empty() {
            parts.push(source.any_candidate(sql, &|t, v| {
                let each: Vec<String> = conditions
                    .iter()
                    .map(|(types, list)| match list {
                        Some(list) => format!("({t} IN ({types}) AND {v} IN ({list}))"),
                        None => format!("({t} IN ({types}))"),
                    })
                    .collect();
                balanced(&each, " OR ")
            })?);
        }
    }
    Ok(if parts.is_empty() {
        "0".to_owned()
    } else {
        balanced(&parts, " OR ")
    })
}

/// Binds `values` and returns their placeholders, comma-separated.
fn bind_list(sql: &mut Sql, values: Vec<SqlValue>) -> Result<String, QueryError> {
    let mut placeholders = Vec::with_capacity(values.len());
    for value in values {
        placeholders.push(sql.bind(value)?);
    }
    Ok(placeholders.join(", "))
}

fn compare(
    sql: &mut Sql,
    path: &FieldPath,
    op: CompareOp,
    literal: &Literal,
) -> Result<String, QueryError> {
    if let Literal::Null = literal {
        // Null is alone in its bracket, and `== null` also matches a missing
        // field (module docs, "Null and missing").
        let is_null = match op {
            CompareOp::Lt | CompareOp::Gt => return Ok("0".to_owned()),
            CompareOp::Eq | CompareOp::Ne | CompareOp::Lte | CompareOp::Gte => {
                let source = NodeSource::of(path);
                let present = source.exists(sql)?;
                let null = any_candidate(sql, path, &|t, _| format!("{t} = 'null'"))?;
                format!("(NOT {present} OR {null})")
            }
        };
        return Ok(if op == CompareOp::Ne {
            format!("NOT {is_null}")
        } else {
            is_null
        });
    }
    if op == CompareOp::Ne {
        return Ok(format!(
            "NOT {}",
            compare(sql, path, CompareOp::Eq, literal)?
        ));
    }
    let source = NodeSource::of(path);
    if let NodeSource::Column { column_type, .. } = source {
        // Decided before binding: an unused parameter would break the
        // statement's parameter count.
        if literal_type(literal) != Some(column_type) {
            return Ok("0".to_owned());
        }
    }
    let condition = typed_condition(sql, op, literal)?;
    match (condition, source) {
        (None, _) => Ok("0".to_owned()),
        // A plain `column op ?` (no coalesce, no type test) so SQLite can
        // use the (type, ts, _id) and (ts, _id) indexes for it.
        (
            Some(condition),
            NodeSource::Column {
                column_type,
                value_sql,
                nullable,
                ..
            },
        ) => Ok(condition.on_column(column_type, value_sql, nullable)),
        (Some(condition), source) => source.any_candidate(sql, &|t, v| condition.render(t, v)),
    }
}

/// A condition on one candidate's (type, value), waiting for the SQL
/// expressions of that candidate.
enum TypedCondition {
    /// `type IN (types)`: booleans, compared by their type name.
    TypeIn(Vec<&'static str>),
    /// `type IN (types) AND value op ?N`.
    Ordered {
        types: &'static [&'static str],
        operator: &'static str,
        placeholder: String,
    },
}

impl TypedCondition {
    /// The condition on a typed envelope column: `0` across brackets.
    fn on_column(&self, column_type: &str, value_sql: &str, nullable: bool) -> String {
        match self {
            TypedCondition::Ordered {
                types,
                operator,
                placeholder,
            } if types.contains(&column_type) => {
                if nullable {
                    format!("({value_sql} IS NOT NULL AND {value_sql} {operator} {placeholder})")
                } else {
                    format!("({value_sql} {operator} {placeholder})")
                }
            }
            _ => "0".to_owned(),
        }
    }

    fn render(&self, t: &str, v: &str) -> String {
        match self {
            TypedCondition::TypeIn(types) => format!("{t} IN ({})", quoted_list(types)),
            TypedCondition::Ordered {
                types,
                operator,
                placeholder,
            } => format!(
                "{t} IN ({}) AND {v} {operator} {placeholder}",
                quoted_list(types)
            ),
        }
    }
}

fn quoted_list(types: &[&str]) -> String {
    types
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The IR type name a column must have to compare with `literal` (`None`
/// for literals no column holds).
fn literal_type(literal: &Literal) -> Option<&'static str> {
    match literal {
        Literal::String(_) => Some("text"),
        Literal::Date(_) => Some("date"),
        Literal::Id(_) => Some("oid"),
        Literal::Null | Literal::Bool(_) | Literal::Int(_) | Literal::Float(_) => None,
    }
}

/// The per-candidate condition of `op literal` (not null, not `Ne`), or
/// `None` when nothing can match.
fn typed_condition(
    sql: &mut Sql,
    op: CompareOp,
    literal: &Literal,
) -> Result<Option<TypedCondition>, QueryError> {
    let operator = match op {
        CompareOp::Eq => "=",
        CompareOp::Lt => "<",
        CompareOp::Lte => "<=",
        CompareOp::Gt => ">",
        CompareOp::Gte => ">=",
        CompareOp::Ne => "<>",
    };
    let (types, bound): (&'static [&'static str], SqlValue) = match literal {
        Literal::Null => return Ok(None),
        Literal::Bool(b) => {
            let types: Vec<&'static str> = [false, true]
                .into_iter()
                .filter(|candidate| bool_holds(op, *candidate, *b))
                .map(|candidate| if candidate { "true" } else { "false" })
                .collect();
            return Ok((!types.is_empty()).then_some(TypedCondition::TypeIn(types)));
        }
        Literal::Int(i) => (&["integer", "real"], SqlValue::Integer(*i)),
        Literal::Float(f) => (&["integer", "real"], SqlValue::Real(*f)),
        Literal::String(s) => (&["text"], SqlValue::Text(s.clone())),
        Literal::Date(ms) => (&["date"], SqlValue::Integer(*ms)),
        Literal::Id(id) => (&["oid"], SqlValue::Blob(id.as_bytes().to_vec())),
    };
    let placeholder = sql.bind(bound)?;
    Ok(Some(TypedCondition::Ordered {
        types,
        operator,
        placeholder,
    }))
}

fn bool_holds(op: CompareOp, candidate: bool, literal: bool) -> bool {
    match op {
        CompareOp::Eq => candidate == literal,
        CompareOp::Ne => candidate != literal,
        CompareOp::Lt => !candidate & literal,
        CompareOp::Lte => candidate <= literal,
        CompareOp::Gt => candidate & !literal,
        CompareOp::Gte => candidate >= literal,
    }
}

/// `1` when some candidate of `path` satisfies `condition(type, value)`.
fn any_candidate(
    sql: &mut Sql,
    path: &FieldPath,
    condition: &dyn Fn(&str, &str) -> String,
) -> Result<String, QueryError> {
    NodeSource::of(path).any_candidate(sql, condition)
}

/// Where the nodes of a path come from (see the file docs).
enum NodeSource<'a> {
    Column {
        /// SQL giving the column's IR type name, NULL when missing.
        type_sql: &'static str,
        /// The column.
        value_sql: &'static str,
        /// The IR type name of every value of the column.
        column_type: &'static str,
        /// Whether NULL (missing) occurs.
        nullable: bool,
    },
    TopLevel(&'a str),
    Chain(&'a [String]),
}

impl<'a> NodeSource<'a> {
    fn of(path: &'a FieldPath) -> Self {
        if let Some(column) = envelope_column(path) {
            return column;
        }
        match path.segments() {
            [single] if member_path_ok(single) => NodeSource::TopLevel(single),
            segments => NodeSource::Chain(segments),
        }
    }

    /// `1` when the path has a node.
    fn exists(&self, sql: &mut Sql) -> Result<String, QueryError> {
        Ok(match self {
            NodeSource::Column { type_sql, .. } => format!("({type_sql} IS NOT NULL)"),
            NodeSource::TopLevel(name) => {
                let json_path = sql.bind(SqlValue::Text(member_path(name)))?;
                format!("(json_type(doc, {json_path}) IS NOT NULL)")
            }
            NodeSource::Chain(segments) => {
                let (from, last) = chain(sql, segments)?;
                format!("EXISTS (SELECT 1 FROM {from} WHERE {last})")
            }
        })
    }

    fn any_candidate(
        &self,
        sql: &mut Sql,
        condition: &dyn Fn(&str, &str) -> String,
    ) -> Result<String, QueryError> {
        Ok(match self {
            NodeSource::Column {
                type_sql,
                value_sql,
                ..
            } => format!("coalesce(({}), 0)", condition(type_sql, value_sql)),
            NodeSource::TopLevel(name) => {
                let p = sql.bind(SqlValue::Text(member_path(name)))?;
                // A one-segment path has one node at most; if it is an array,
                // its elements are candidates too.
                format!(
                    "coalesce((CASE json_type(doc, {p}) WHEN 'array' THEN EXISTS \
                     (SELECT 1 FROM json_each(doc, {p}) AS c WHERE {element}) \
                     ELSE ({node}) END), 0)",
                    element = condition("c.type", "c.atom"),
                    node = condition(
                        &format!("json_type(doc, {p})"),
                        &format!("json_extract(doc, {p})")
                    ),
                )
            }
            NodeSource::Chain(segments) => {
                let (from, last) = chain(sql, segments)?;
                let n = segments.len();
                format!(
                    "EXISTS (SELECT 1 FROM {from} WHERE {last} AND (coalesce(({node}), 0) \
                     OR (m{n}.type = 'array' AND EXISTS (SELECT 1 FROM json_each(m{n}.value) \
                     AS c WHERE {element}))))",
                    node = condition(&format!("m{n}.type"), &format!("m{n}.atom")),
                    element = condition("c.type", "c.atom"),
                )
            }
        })
    }
}

/// The envelope columns, typed as the IR types them.
fn envelope_column(path: &FieldPath) -> Option<NodeSource<'static>> {
    let (type_sql, value_sql, column_type, nullable) = if path.is(PATH_TS) {
        ("'date'", "ts", "date", false)
    } else if path.is(PATH_RECV) {
        ("'date'", "recv", "date", false)
    } else if path.is(PATH_ID) {
        ("'oid'", "_id", "oid", false)
    } else if path.is(PATH_TYPE) {
        ("'text'", "type", "text", false)
    } else if path.is(PATH_APP) {
        // `app` is the envelope's string or absent; NULL column = missing.
        (
            "(CASE WHEN app IS NULL THEN NULL ELSE 'text' END)",
            "app",
            "text",
            true,
        )
    } else {
        return None;
    };
    Some(NodeSource::Column {
        type_sql,
        value_sql,
        column_type,
        nullable,
    })
}

/// The SQLite JSON path of one object member: `$."name"`. A name with a
/// `"` cannot be written in a SQLite JSON path, so such members are
/// matched through [`chain`] (by `key`) instead; see `member_path_ok`.
fn member_path(name: &str) -> String {
    format!("$.\"{name}\"")
}

/// Whether [`member_path`] can address `name`.
pub(crate) fn member_path_ok(name: &str) -> bool {
    !name.contains('"') && !name.contains('\\')
}

/// The FROM clause and key conditions walking `segments` with `json_each`
/// (rows `m1..mN` are the nodes of each level; `e1..` the traversed
/// elements), ending at node `mN`.
fn chain(sql: &mut Sql, segments: &[String]) -> Result<(String, String), QueryError> {
    let mut from = String::from("json_each(doc) AS m1");
    let mut conditions = Vec::with_capacity(segments.len() * 2);
    for (i, segment) in segments.iter().enumerate() {
        let level = i + 1;
        let key = sql.bind(SqlValue::Text(segment.clone()))?;
        conditions.push(format!("m{level}.key = {key}"));
        if level < segments.len() {
            // An object continues as itself, an array as its elements; the
            // next level reads members of those that are objects.
            from.push_str(&format!(
                ", json_each(CASE m{level}.type WHEN 'array' THEN m{level}.value \
                 WHEN 'object' THEN '[' || m{level}.value || ']' ELSE '[]' END) AS e{level}, \
                 json_each(CASE e{level}.type WHEN 'object' THEN e{level}.value ELSE '{{}}' END) \
                 AS m{next}",
                next = level + 1
            ));
            conditions.push(format!("e{level}.type = 'object'"));
        }
    }
    Ok((from, conditions.join(" AND ")))
}

/// The SQLite JSON path of a whole field path, for the group-by key
/// (`doc -> path`), or an error for names a SQLite path cannot express.
pub(crate) fn json_path(path: &FieldPath) -> Result<String, QueryError> {
    let mut text = String::from("$");
    for segment in path.segments() {
        if !member_path_ok(segment) {
            return Err(QueryError::Invalid(format!(
                "cannot group by `{path}`: field names with `\"` or `\\` are not supported here"
            )));
        }
        text.push_str(&format!(".\"{segment}\""));
    }
    Ok(text)
}
