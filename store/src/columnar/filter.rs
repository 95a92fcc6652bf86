//! Filters over one row group. A [`Pred`] is the IR's filter compiled for
//! one file: a leaf whose path has a dictionary column there (a field
//! column, `type`, `app`) is decided once per dictionary entry by the
//! reference evaluator on a synthetic document (`{"a":{"b": value}}`, or
//! `{}` for a missing field), then mapped over the rows' keys; any other
//! leaf needs the row's parsed `doc`. Rows are first classified in
//! three-valued logic with the `doc` leaves unknown, so documents are read
//! and parsed only for the rows the columns cannot decide.

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, DictionaryArray, RecordBatch, StringArray};
use serde_json::{Map, Value};

use crate::query::error::QueryError;
use crate::query::eval;
use crate::query::ir::{
    CompareOp, FieldPath, Filter, Literal, PATH_APP, PATH_ID, PATH_RECV, PATH_TS, PATH_TYPE,
};
use crate::ObjectId;

use super::read::ColdFile;
use super::{COL_APP, COL_TYPE};

/// How a dictionary column holds its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// Canonical JSON text of the node (field columns).
    Json,
    /// The raw string (`type`, `app`): the node is that JSON string.
    Text,
}

/// A dictionary column that answers for a path in one file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyColumn {
    /// Root index in the file.
    pub index: usize,
    /// How it holds values.
    pub held: Held,
}

impl KeyColumn {
    /// The column answering for `path` in `file`, if any.
    pub(crate) fn of(file: &ColdFile, path: &FieldPath) -> Option<Self> {
        if path.is(PATH_TYPE) {
            return Some(Self {
                index: file.column(COL_TYPE),
                held: Held::Text,
            });
        }
        if path.is(PATH_APP) {
            return Some(Self {
                index: file.column(COL_APP),
                held: Held::Text,
            });
        }
        file.field_column(path).map(|index| Self {
            index,
            held: Held::Json,
        })
    }

    /// The node an entry stands for (`None`: missing).
    pub(crate) fn node(&self, entry: Option<&str>) -> Result<Option<Value>, QueryError> {
        match (entry, self.held) {
            (None, _) => Ok(None),
            (Some(text), Held::Text) => Ok(Some(Value::String(text.to_owned()))),
            (Some(text), Held::Json) => {
                serde_json::from_str(text)
                    .map(Some)
                    .map_err(|e| QueryError::Corrupt {
                        context: "cold file field column".to_owned(),
                        reason: format!("entry is not JSON: {e}"),
                    })
            }
        }
    }

    /// The group key (canonical JSON text) of an entry.
    pub(crate) fn key(&self, entry: &str) -> String {
        match self.held {
            Held::Json => entry.to_owned(),
            Held::Text => Value::String(entry.to_owned()).to_string(),
        }
    }
}

/// A filter compiled for one file.
#[derive(Debug)]
pub(crate) enum Pred {
    /// A leaf decided per dictionary entry of a column.
    Column {
        /// The column.
        column: KeyColumn,
        /// The leaf.
        leaf: Filter,
        /// Texts whose entries match (XOR `negate`) when the leaf is an
        /// equality on strings, booleans or null: a scalar entry is then
        /// decided by text alone.
        quick: Option<Quick>,
    },
    /// A leaf on `_id`, `ts` or `recv` decided per row from that column,
    /// in a file whose writer checked those columns against every
    /// document (`ColdFile::envelope_exact`).
    Envelope {
        /// The column's root index.
        index: usize,
        /// The leaf.
        leaf: Filter,
    },
    /// A leaf that needs the row's document.
    Doc(Filter),
    /// All children.
    And(Vec<Pred>),
    /// Any child.
    Or(Vec<Pred>),
    /// Not the child.
    Not(Box<Pred>),
}

/// An equality leaf decided on a scalar entry's text alone (see
/// `quick_texts`).
#[derive(Debug)]
pub(crate) struct Quick {
    /// The matching texts: compared one by one when few (a byte compare
    /// per dictionary entry), hashed when many.
    texts: Vec<String>,
    set: Option<HashSet<String>>,
    /// `Ne`/`Nin`: the entries that do not match.
    negate: bool,
}

/// Past this many texts a [`Quick`] hashes instead of comparing each.
const QUICK_LINEAR_TEXTS: usize = 8;

impl Quick {
    fn new(mut texts: Vec<String>, negate: bool) -> Self {
        texts.sort_unstable();
        texts.dedup();
        let set = (texts.len() > QUICK_LINEAR_TEXTS).then(|| texts.iter().cloned().collect());
        Self { texts, set, negate }
    }

    fn matches(&self, text: &str) -> bool {
        let found = match &self.set {
            Some(set) => set.contains(text),
            None => self.texts.iter().any(|t| t == text),
        };
        found != self.negate
    }
}

/// Three-valued truth: `Unknown` until the document is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    No,
    Yes,
    Unknown,
}

impl Pred {
    /// Compiles `filter` for `file`.
    pub(crate) fn compile(file: &ColdFile, filter: &Filter) -> Self {
        match filter {
            Filter::And(children) => {
                Pred::And(children.iter().map(|c| Pred::compile(file, c)).collect())
            }
            Filter::Or(children) => {
                Pred::Or(children.iter().map(|c| Pred::compile(file, c)).collect())
            }
            Filter::Not(child) => Pred::Not(Box::new(Pred::compile(file, child))),
            leaf => match envelope_column(file, leaf_path(leaf)) {
                Some(index) => Pred::Envelope {
                    index,
                    leaf: leaf.clone(),
                },
                None => Pred::compile_leaf(file, leaf),
            },
        }
    }

    fn compile_leaf(file: &ColdFile, leaf: &Filter) -> Self {
        match leaf_path(leaf).and_then(|path| KeyColumn::of(file, path)) {
            Some(column) => Pred::Column {
                column,
                quick: quick_texts(leaf, column.held),
                leaf: leaf.clone(),
            },
            None => Pred::Doc(leaf.clone()),
        }
    }

    /// Adds the paths its document leaves read to `out`.
    pub(crate) fn doc_paths(&self, out: &mut super::json::Paths) {
        match self {
            Pred::Doc(leaf) => {
                if let Some(path) = leaf_path(leaf) {
                    out.add(path.segments());
                }
            }
            Pred::Column { .. } | Pred::Envelope { .. } => {}
            Pred::And(children) | Pred::Or(children) => {
                children.iter().for_each(|c| c.doc_paths(out));
            }
            Pred::Not(child) => child.doc_paths(out),
        }
    }

    /// The columns this predicate reads (not counting `doc`).
    pub(crate) fn columns(&self, out: &mut Vec<usize>) {
        match self {
            Pred::Column { column, .. } => out.push(column.index),
            Pred::Envelope { index, .. } => out.push(*index),
            Pred::Doc(_) => {}
            Pred::And(children) | Pred::Or(children) => {
                children.iter().for_each(|c| c.columns(out));
            }
            Pred::Not(child) => child.columns(out),
        }
    }

    /// Per column leaf (in tree order), the truth of each row of `batch`.
    pub(crate) fn leaf_masks(
        &self,
        batch: &RecordBatch,
        file: &ColdFile,
    ) -> Result<Vec<Vec<bool>>, QueryError> {
        let mut masks = Vec::new();
        self.push_masks(batch, file, &mut masks)?;
        Ok(masks)
    }

    fn push_masks(
        &self,
        batch: &RecordBatch,
        file: &ColdFile,
        masks: &mut Vec<Vec<bool>>,
    ) -> Result<(), QueryError> {
        match self {
            Pred::Column {
                column,
                leaf,
                quick,
            } => {
                let array = dictionary(batch, file, column.index)?;
                masks.push(column_mask(array, *column, leaf, quick.as_ref())?);
            }
            Pred::Envelope { index, leaf } => masks.push(envelope_mask(batch, file, *index, leaf)?),
            Pred::Doc(_) => {}
            Pred::And(children) | Pred::Or(children) => {
                for child in children {
                    child.push_masks(batch, file, masks)?;
                }
            }
            Pred::Not(child) => child.push_masks(batch, file, masks)?,
        }
        Ok(())
    }

    /// Row `row` in three-valued logic, `doc` leaves unknown.
    pub(crate) fn tri(&self, row: usize, masks: &[Vec<bool>]) -> Tri {
        let mut next = 0;
        self.tri_at(row, masks, &mut next)
    }

    fn tri_at(&self, row: usize, masks: &[Vec<bool>], next: &mut usize) -> Tri {
        match self {
            Pred::Column { .. } | Pred::Envelope { .. } => {
                let value = masks[*next][row];
                *next += 1;
                if value {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            Pred::Doc(_) => Tri::Unknown,
            Pred::And(children) => {
                let mut out = Tri::Yes;
                for child in children {
                    match child.tri_at(row, masks, next) {
                        Tri::No => out = Tri::No,
                        Tri::Unknown if out == Tri::Yes => out = Tri::Unknown,
                        _ => {}
                    }
                }
                out
            }
            Pred::Or(children) => {
                let mut out = Tri::No;
                for child in children {
                    match child.tri_at(row, masks, next) {
                        Tri::Yes => out = Tri::Yes,
                        Tri::Unknown if out == Tri::No => out = Tri::Unknown,
                        _ => {}
                    }
                }
                out
            }
            Pred::Not(child) => match child.tri_at(row, masks, next) {
                Tri::Yes => Tri::No,
                Tri::No => Tri::Yes,
                Tri::Unknown => Tri::Unknown,
            },
        }
    }

    /// Row `row` decided with its parsed document.
    pub(crate) fn with_doc(
        &self,
        row: usize,
        masks: &[Vec<bool>],
        doc: &Value,
    ) -> Result<bool, QueryError> {
        let mut next = 0;
        self.with_doc_at(row, masks, doc, &mut next)
    }

    fn with_doc_at(
        &self,
        row: usize,
        masks: &[Vec<bool>],
        doc: &Value,
        next: &mut usize,
    ) -> Result<bool, QueryError> {
        // Every child is visited (no short cut), so `next` stays in step
        // with the masks' tree order.
        match self {
            Pred::Column { .. } | Pred::Envelope { .. } => {
                let value = masks[*next][row];
                *next += 1;
                Ok(value)
            }
            Pred::Doc(leaf) => {
                check_regex_scan(leaf, doc)?;
                Ok(eval::matches(leaf, doc))
            }
            Pred::And(children) => {
                let mut all = true;
                for child in children {
                    all &= child.with_doc_at(row, masks, doc, next)?;
                }
                Ok(all)
            }
            Pred::Or(children) => {
                let mut any = false;
                for child in children {
                    any |= child.with_doc_at(row, masks, doc, next)?;
                }
                Ok(any)
            }
            Pred::Not(child) => Ok(!child.with_doc_at(row, masks, doc, next)?),
        }
    }
}

/// The `_id`, `ts` or `recv` column a leaf on `path` may be decided from
/// in `file`, if any.
fn envelope_column(file: &ColdFile, path: Option<&FieldPath>) -> Option<usize> {
    let path = path?;
    if !file.envelope_exact() {
        return None;
    }
    [PATH_ID, PATH_TS, PATH_RECV]
        .into_iter()
        .find(|name| path.is(name))
        .map(|name| file.column(name))
}

/// An envelope node as the evaluator types it.
#[derive(Debug, Clone, Copy)]
enum EnvelopeNode {
    Date(i64),
    Id(ObjectId),
}

/// The truth of `leaf` for each row of an envelope column.
fn envelope_mask(
    batch: &RecordBatch,
    file: &ColdFile,
    index: usize,
    leaf: &Filter,
) -> Result<Vec<bool>, QueryError> {
    let name = file.column_name(index);
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| file.corrupt(&format!("column `{name}` was not read")))?;
    if let Some(ids) = array.as_fixed_size_binary_opt() {
        return (0..ids.len())
            .map(|row| {
                let id = ObjectId::from_slice(ids.value(row))
                    .map_err(|e| file.corrupt(&format!("_id: {e}")))?;
                Ok(envelope_matches(leaf, EnvelopeNode::Id(id)))
            })
            .collect();
    }
    let times = array
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| file.corrupt(&format!("column `{name}` is not Int64")))?;
    Ok(times
        .values()
        .iter()
        .map(|&ms| envelope_matches(leaf, EnvelopeNode::Date(ms)))
        .collect())
}

/// `eval::matches` for a document whose node at the leaf's path is `node`
/// (`_id`, `ts` and `recv` are always present, typed as an id or a date).
/// Tested against the evaluator with every leaf shape: a date or an id is
/// in no other type's bracket, is not a string, and is not an array.
fn envelope_matches(leaf: &Filter, node: EnvelopeNode) -> bool {
    let equal = |literal: &Literal| same_bracket(node, literal) == Some(std::cmp::Ordering::Equal);
    match leaf {
        Filter::Compare { op, value, .. } => match same_bracket(node, value) {
            Some(ordering) => match op {
                CompareOp::Eq => ordering.is_eq(),
                CompareOp::Ne => ordering.is_ne(),
                CompareOp::Lt => ordering.is_lt(),
                CompareOp::Lte => ordering.is_le(),
                CompareOp::Gt => ordering.is_gt(),
                CompareOp::Gte => ordering.is_ge(),
            },
            // Another bracket (null included: the node exists): only `Ne`
            // holds.
            None => *op == CompareOp::Ne,
        },
        Filter::In { values, .. } => values.iter().any(equal),
        Filter::Nin { values, .. } => !values.iter().any(equal),
        Filter::Exists { exists, .. } => *exists,
        Filter::Contains { .. } | Filter::Prefix { .. } | Filter::Regex { .. } => false,
        Filter::And(_) | Filter::Or(_) | Filter::Not(_) => false,
    }
}

fn same_bracket(node: EnvelopeNode, literal: &Literal) -> Option<std::cmp::Ordering> {
    match (node, literal) {
        (EnvelopeNode::Date(ms), Literal::Date(l)) => Some(ms.cmp(l)),
        (EnvelopeNode::Id(id), Literal::Id(l)) => Some(id.cmp(l)),
        _ => None,
    }
}

/// The dictionary column at root index `index` of `batch`.
pub(crate) fn dictionary<'a>(
    batch: &'a RecordBatch,
    file: &ColdFile,
    index: usize,
) -> Result<&'a DictionaryArray<Int32Type>, QueryError> {
    let name = file_column_name(file, index);
    batch
        .column_by_name(name)
        .and_then(|array| array.as_dictionary_opt::<Int32Type>())
        .ok_or_else(|| file.corrupt(&format!("column `{name}` is not a dictionary")))
}

/// The dictionary values of a column as strings.
pub(crate) fn dictionary_values(
    array: &DictionaryArray<Int32Type>,
) -> Result<&StringArray, QueryError> {
    array
        .values()
        .as_string_opt::<i32>()
        .ok_or_else(|| QueryError::Corrupt {
            context: "cold file".to_owned(),
            reason: "dictionary values are not strings".to_owned(),
        })
}

fn file_column_name(file: &ColdFile, index: usize) -> &str {
    file.column_name(index)
}

/// The truth of `leaf` for each row of a dictionary column.
fn column_mask(
    array: &DictionaryArray<Int32Type>,
    column: KeyColumn,
    leaf: &Filter,
    quick: Option<&Quick>,
) -> Result<Vec<bool>, QueryError> {
    let values = dictionary_values(array)?;
    let mut table = Vec::with_capacity(values.len());
    for entry in 0..values.len() {
        let text = (!values.is_null(entry)).then(|| values.value(entry));
        table.push(entry_matches(column, leaf, quick, text)?);
    }
    let missing = entry_matches(column, leaf, quick, None)?;
    let keys = array.keys();
    let mut mask = Vec::with_capacity(array.len());
    for row in 0..array.len() {
        mask.push(if keys.is_null(row) {
            missing
        } else {
            usize::try_from(keys.value(row))
                .ok()
                .and_then(|k| table.get(k).copied())
                .ok_or_else(|| QueryError::Corrupt {
                    context: "cold file".to_owned(),
                    reason: "dictionary key out of range".to_owned(),
                })?
        });
    }
    Ok(mask)
}

/// Whether an entry (`None`: missing) matches `leaf`.
fn entry_matches(
    column: KeyColumn,
    leaf: &Filter,
    quick: Option<&Quick>,
    entry: Option<&str>,
) -> Result<bool, QueryError> {
    if let (Some(quick), Some(text)) = (quick, entry) {
        // An array entry may match by any element: only scalars are
        // decided by text.
        if column.held == Held::Text || !text.starts_with('[') {
            return Ok(quick.matches(text));
        }
    }
    let doc = synthetic_doc(leaf_path(leaf), column.node(entry)?);
    check_regex_scan(leaf, &doc)?;
    Ok(eval::matches(leaf, &doc))
}

/// `{"a":{"b": node}}` for path `a.b`, `{}` without a node.
fn synthetic_doc(path: Option<&FieldPath>, node: Option<Value>) -> Value {
    let (Some(path), Some(mut value)) = (path, node) else {
        return Value::Object(Map::new());
    };
    for segment in path.segments().iter().rev() {
        let mut object = Map::new();
        object.insert(segment.clone(), value);
        value = Value::Object(object);
    }
    value
}

/// The path of a leaf (`None` for And/Or/Not).
fn leaf_path(leaf: &Filter) -> Option<&FieldPath> {
    match leaf {
        Filter::Compare { path, .. }
        | Filter::In { path, .. }
        | Filter::Nin { path, .. }
        | Filter::Exists { path, .. }
        | Filter::Contains { path, .. }
        | Filter::Prefix { path, .. }
        | Filter::Regex { path, .. } => Some(path),
        Filter::And(_) | Filter::Or(_) | Filter::Not(_) => None,
    }
}

/// For `Eq`/`Ne`/`In`/`Nin` on string, boolean or null literals: the
/// entry texts that are equal to a literal, and whether to negate. A
/// scalar entry equals a literal exactly when its canonical text is the
/// literal's (type-bracketed equality; one text per string, `true`,
/// `false`, `null`). Numbers are left to the evaluator (`1` = `1.0`).
fn quick_texts(leaf: &Filter, held: Held) -> Option<Quick> {
    let (literals, negate): (&[Literal], bool) = match leaf {
        Filter::Compare {
            op: CompareOp::Eq,
            value,
            ..
        } => (std::slice::from_ref(value), false),
        Filter::Compare {
            op: CompareOp::Ne,
            value,
            ..
        } => (std::slice::from_ref(value), true),
        Filter::In { values, .. } => (values, false),
        Filter::Nin { values, .. } => (values, true),
        _ => return None,
    };
    let mut texts = Vec::with_capacity(literals.len());
    for literal in literals {
        match (literal, held) {
            (Literal::String(s), Held::Text) => texts.push(s.clone()),
            (Literal::String(s), Held::Json) => texts.push(Value::String(s.clone()).to_string()),
            (Literal::Bool(b), Held::Json) => texts.push(b.to_string()),
            (Literal::Null, Held::Json) => texts.push("null".to_owned()),
            // A string node never equals these.
            (Literal::Bool(_) | Literal::Null, Held::Text) => {}
            // Numbers (1 = 1.0), dates and ids: the evaluator decides.
            _ => return None,
        }
    }
    Some(Quick::new(texts, negate))
}

/// Refuses a regular expression leaf whose strings in `doc` are longer
/// than its pattern may scan (the same client error every back end gives).
fn check_regex_scan(leaf: &Filter, doc: &Value) -> Result<(), QueryError> {
    let Filter::Regex { path, pattern } = leaf else {
        return Ok(());
    };
    let max = pattern.max_scan_bytes();
    let mut longest = 0;
    longest_string(doc, path.segments(), &mut longest);
    if longest > max {
        return Err(QueryError::Invalid(
            crate::query::ScanRefused { len: longest, max }.to_string(),
        ));
    }
    Ok(())
}

/// The longest string a condition at `segments` would test (the nodes of
/// the evaluator's walk and the elements of array nodes).
fn longest_string(value: &Value, segments: &[String], longest: &mut usize) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    let Some(child) = value.as_object().and_then(|o| o.get(first)) else {
        return;
    };
    if rest.is_empty() {
        let mut note = |v: &Value| {
            if let Value::String(s) = v {
                *longest = (*longest).max(s.len());
            }
        };
        note(child);
        if let Value::Array(elements) = child {
            elements.iter().for_each(note);
        }
        return;
    }
    match child {
        Value::Object(_) => longest_string(child, rest, longest),
        Value::Array(elements) => {
            for element in elements.iter().filter(|e| e.is_object()) {
                longest_string(element, rest, longest);
            }
        }
        _ => {}
    }
}
