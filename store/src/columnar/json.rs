//! The writer's two passes over stored documents, as `serde` visitors that
//! build no `serde_json::Value` for the document (only for the nodes a
//! column keeps): the path census that chooses the field columns, and the
//! extraction of those columns' nodes. Both walk object members only, as
//! the group-by semantics do, and give the same answers as parsing the
//! document and walking the `Value` (tested against that).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{ENVELOPE_MEMBERS, MAX_FIELD_DEPTH};

/// What the census learns from the documents. Paths are interned: each
/// distinct dotted path gets an id (its index in `paths`) the first time
/// it is met, so a document costs a lookup per member, not an owned
/// string.
#[derive(Debug, Default)]
pub(super) struct Census {
    /// Every dotted path met so far, by id.
    pub paths: Vec<String>,
    /// The id of each path in `paths`.
    ids: HashMap<String, usize>,
    /// Ids of the paths present in the document (cleared per document by
    /// the caller).
    pub found: Vec<usize>,
    /// Per path id: its node is an array in some document.
    arrays: Vec<bool>,
    /// Per path id: its node is an object in some document.
    objects: Vec<bool>,
    /// The dotted path of the member being visited (a buffer reused from
    /// member to member).
    path: String,
    /// The path id of each member visit of the previous document, in
    /// visiting order: documents of a stream mostly share their shape, so
    /// comparing with the previous document's path at the same visit
    /// replaces hashing the path.
    shape: Vec<usize>,
    /// Members visited so far in this document.
    visits: usize,
    /// The text `_id`, `ts` and `recv` must have in the document (set by
    /// the caller per document, see [`ENVELOPE_CHECKED`]).
    pub expected: [String; 3],
    /// Which of them the document had as expected (bit per member).
    pub seen: u8,
    /// False once a document's `_id`, `ts` or `recv` was not the text its
    /// row's columns give (the caller starts it at true).
    pub envelope_exact: bool,
}

impl Census {
    /// The id of the path in `self.path` (the document's next member
    /// visit), interning it when new.
    fn visit(&mut self) -> usize {
        let visit = self.visits;
        self.visits += 1;
        if let Some(&id) = self.shape.get(visit) {
            if self.paths[id] == self.path {
                return id;
            }
        }
        let id = match self.ids.get(self.path.as_str()) {
            Some(&id) => id,
            None => self.intern(),
        };
        match self.shape.get_mut(visit) {
            Some(slot) => *slot = id,
            None => self.shape.push(id),
        }
        id
    }

    fn intern(&mut self) -> usize {
        let id = self.paths.len();
        self.paths.push(self.path.clone());
        self.ids.insert(self.path.clone(), id);
        self.arrays.push(false);
        self.objects.push(false);
        id
    }

    /// The id of `dotted`, if some document holds it.
    pub(super) fn id(&self, dotted: &str) -> Option<usize> {
        self.ids.get(dotted).copied()
    }

    /// Whether `dotted`'s node is an array in some document.
    pub(super) fn is_array(&self, dotted: &str) -> bool {
        self.id(dotted).is_some_and(|id| self.arrays[id])
    }

    /// Whether path `id`'s node is an object in some document.
    pub(super) fn is_object_id(&self, id: usize) -> bool {
        self.objects[id]
    }

    /// The dotted paths of `found`.
    #[cfg(test)]
    pub(super) fn found_paths(&self) -> Vec<&str> {
        self.found
            .iter()
            .map(|&id| self.paths[id].as_str())
            .collect()
    }
}

/// The envelope members checked against the row's columns, in the order
/// of `Census::expected`.
pub(super) const ENVELOPE_CHECKED: [&str; 3] = ["_id", "ts", "recv"];

/// Adds the paths of `doc` (a JSON object) to `census` (see the module
/// docs of `columnar` for which paths count).
pub(super) fn census(doc: &str, census: &mut Census) -> Result<(), serde_json::Error> {
    census.path.clear();
    census.visits = 0;
    let mut deserializer = serde_json::Deserializer::from_str(doc);
    Level { depth: 1, census }.deserialize(&mut deserializer)?;
    deserializer.end()
}

/// The shape of a node, for the census.
enum Kind {
    Object,
    Array,
    Scalar,
}

/// The members of one object at `depth` (1: the document), whose dotted
/// path is `census.path` (empty for the document).
struct Level<'c> {
    depth: usize,
    census: &'c mut Census,
}

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let prefix_len = self.census.path.len();
        while let Some(name) = map.next_key_seed(Name)? {
            if self.depth == 1 && self.census.envelope_exact {
                if let Some(at) = ENVELOPE_CHECKED.iter().position(|m| *m == name) {
                    let text = map.next_value_seed(StringValue)?;
                    if text.as_deref() == Some(self.census.expected[at].as_str()) {
                        self.census.seen |= 1 << at;
                    } else {
                        self.census.envelope_exact = false;
                    }
                    continue;
                }
            }
            let skip = (self.depth == 1 && ENVELOPE_MEMBERS.contains(&name.as_ref()))
                || !super::write::segment_ok(&name);
            if skip {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let path = &mut self.census.path;
            path.truncate(prefix_len);
            if prefix_len > 0 {
                path.push('.');
            }
            path.push_str(&name);
            let id = self.census.visit();
            let kind = map.next_value_seed(Member {
                depth: self.depth,
                census: self.census,
            })?;
            match kind {
                Kind::Object => self.census.objects[id] = true,
                Kind::Array => self.census.arrays[id] = true,
                Kind::Scalar => {}
            }
            self.census.found.push(id);
        }
        self.census.path.truncate(prefix_len);
        Ok(())
    }
}

/// One member's value at `census.path` (depth `depth`): its kind, and for
/// an object within the depth limit, its members.
struct Member<'c> {
    depth: usize,
    census: &'c mut Census,
}

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = Kind;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Kind, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Kind, A::Error> {
        if self.depth < MAX_FIELD_DEPTH {
            Level {
                depth: self.depth + 1,
                census: self.census,
            }
            .visit_map(map)?;
        } else {
            drain_map(map)?;
        }
        Ok(Kind::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Kind, A::Error> {
        drain_seq(seq)?;
        Ok(Kind::Array)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
}

/// The field columns as a tree of member names, for [`extract`]: level 0
/// is the document's own object, [`Slot::Inner`] names a deeper level.
#[derive(Debug)]
pub(super) struct Columns {
    levels: Vec<HashMap<String, Slot>>,
    /// Unique per tree: a [`Nodes`] keeps lookups of one tree only.
    serial: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The node here is column `n`'s value.
    Column(usize),
    /// Columns lie below, in level `n`.
    Inner(usize),
}

impl Columns {
    /// The tree of `paths` (dotted; none a prefix of another, which the
    /// field column rule guarantees: an object node is never a column).
    pub(super) fn new(paths: &[String]) -> Self {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut levels = vec![HashMap::new()];
        for (index, dotted) in paths.iter().enumerate() {
            let segments: Vec<&str> = dotted.split('.').collect();
            let mut level = 0;
            for (at, segment) in segments.iter().enumerate() {
                let last = at + 1 == segments.len();
                let slot = match levels[level].get(*segment) {
                    Some(&slot) => slot,
                    None => {
                        let slot = if last {
                            Slot::Column(index)
                        } else {
                            levels.push(HashMap::new());
                            Slot::Inner(levels.len() - 1)
                        };
                        levels[level].insert((*segment).to_owned(), slot);
                        slot
                    }
                };
                match slot {
                    Slot::Inner(next) if !last => level = next,
                    _ => break,
                }
            }
        }
        Self {
            levels,
            serial: SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// What a member at some level of the tree is to [`extract`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Slot(Slot),
    /// A top-level envelope member, at this index of [`TEMPLATE_ENVELOPE`].
    Envelope(usize),
    /// Neither: skipped.
    Skip,
}

/// The canonical texts of one document's column nodes, in buffers reused
/// from document to document (no allocation per row for scalar nodes).
#[derive(Debug)]
pub(super) struct Nodes {
    texts: Vec<String>,
    present: Vec<bool>,
    /// Where a node that is not its own canonical text is re-serialized.
    scratch: Vec<u8>,
    /// Per member visit of the previous document, in visiting order: the
    /// level, the member name and what it was (documents of a stream
    /// mostly share their shape: a comparison replaces hashing the name).
    shape: Vec<(usize, String, Found)>,
    /// Members visited so far in this document.
    visits: usize,
    /// `Columns::serial` of the tree `shape` was built from.
    shape_of: Option<u64>,
    /// Per column, the byte range of its node's raw text in the document
    /// (for the document template); `None` when missing.
    pub spans: Vec<Option<(usize, usize)>>,
    /// The byte ranges of the top-level envelope members' raw values, in
    /// the order of [`TEMPLATE_ENVELOPE`]; `None` when missing.
    pub envelope: [Option<(usize, usize)>; 5],
}

/// The top-level members whose raw value [`extract`] locates for the
/// document template, in the order of `Nodes::envelope`.
pub(super) const TEMPLATE_ENVELOPE: [&str; 5] = ["_id", "ts", "recv", "type", "app"];

impl Nodes {
    /// Room for `columns` columns.
    pub(super) fn new(columns: usize) -> Self {
        Self {
            texts: vec![String::new(); columns],
            present: vec![false; columns],
            scratch: Vec::new(),
            shape: Vec::new(),
            visits: 0,
            shape_of: None,
            spans: vec![None; columns],
            envelope: [None; 5],
        }
    }

    /// Column `index`'s node as canonical JSON text, `None` when missing.
    pub(super) fn get(&self, index: usize) -> Option<&str> {
        if !self.present[index] {
            return None;
        }
        Some(&self.texts[index])
    }

    /// What member `name` at `level` of `columns` is, for the document's
    /// next member visit.
    fn resolve(&mut self, columns: &Columns, level: usize, name: &str) -> Found {
        let visit = self.visits;
        self.visits += 1;
        if let Some((seen_level, seen_name, found)) = self.shape.get(visit) {
            if *seen_level == level && seen_name == name {
                return *found;
            }
        }
        let found = match columns.levels[level].get(name) {
            Some(&slot) => Found::Slot(slot),
            // Envelope members are never field columns (the writer's rule).
            None if level == 0 => TEMPLATE_ENVELOPE
                .iter()
                .position(|m| *m == name)
                .map_or(Found::Skip, Found::Envelope),
            None => Found::Skip,
        };
        match self.shape.get_mut(visit) {
            Some(entry) => {
                entry.0 = level;
                entry.1.clear();
                entry.1.push_str(name);
                entry.2 = found;
            }
            None => self.shape.push((level, name.to_owned(), found)),
        }
        found
    }
}

/// Sets `nodes` to the canonical text ([`super::canonical_key`]) of each
/// column's node in `doc` (a JSON object), missing where the field is.
pub(super) fn extract(
    doc: &str,
    columns: &Columns,
    nodes: &mut Nodes,
) -> Result<(), serde_json::Error> {
    nodes.present.iter_mut().for_each(|p| *p = false);
    nodes.spans.iter_mut().for_each(|s| *s = None);
    nodes.envelope = [None; 5];
    nodes.visits = 0;
    if nodes.shape_of != Some(columns.serial) {
        nodes.shape.clear();
        nodes.shape_of = Some(columns.serial);
    }
    let mut deserializer = serde_json::Deserializer::from_str(doc);
    Extract {
        columns,
        nodes,
        base: doc.as_ptr() as usize,
        level: 0,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()
}

struct Extract<'t, 'o> {
    columns: &'t Columns,
    nodes: &'o mut Nodes,
    /// Address of the document's first byte: a raw value's offset is its
    /// address minus this (raw values borrow from the document).
    base: usize,
    /// The level of `columns` this object is at (0: the document's own).
    level: usize,
}

/// The byte range in the document (starting at address `base`) of a raw
/// value borrowed from it.
fn span_of(base: usize, raw: &RawValue) -> (usize, usize) {
    let start = (raw.get().as_ptr() as usize).wrapping_sub(base);
    (start, start + raw.get().len())
}

impl<'de> DeserializeSeed<'de> for Extract<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Extract<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key_seed(Name)? {
            match self.nodes.resolve(self.columns, self.level, &name) {
                Found::Envelope(at) => {
                    let raw: &'de RawValue = map.next_value()?;
                    self.nodes.envelope[at] = Some(span_of(self.base, raw));
                }
                Found::Slot(Slot::Column(index)) => {
                    let raw: &'de RawValue = map.next_value()?;
                    let text = &mut self.nodes.texts[index];
                    canonical_into(raw.get(), text, &mut self.nodes.scratch)
                        .map_err(serde::de::Error::custom)?;
                    self.nodes.present[index] = true;
                    self.nodes.spans[index] = Some(span_of(self.base, raw));
                }
                Found::Slot(Slot::Inner(level)) => map.next_value_seed(Extract {
                    columns: self.columns,
                    nodes: &mut *self.nodes,
                    base: self.base,
                    level,
                })?,
                Found::Skip => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    // Below a member that is not an object there is no member: the walk
    // does not enter arrays.
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Sets `text` to the canonical text of the node whose raw text (a value
/// the parser accepted) is `raw`: `raw` itself where that is what
/// serde_json writes back, else re-serialized through `scratch`.
fn canonical_into(
    raw: &str,
    text: &mut String,
    scratch: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    text.clear();
    if is_canonical(raw) {
        text.push_str(raw);
        #[cfg(debug_assertions)]
        {
            scratch.clear();
            let mut node = serde_json::Deserializer::from_str(raw);
            Canonical { text: scratch }.deserialize(&mut node)?;
            debug_assert_eq!(scratch.as_slice(), raw.as_bytes(), "canonical fast path");
        }
        return Ok(());
    }
    scratch.clear();
    let mut node = serde_json::Deserializer::from_str(raw);
    Canonical { text: scratch }.deserialize(&mut node)?;
    // serde_json's serializer writes UTF-8 only.
    text.push_str(std::str::from_utf8(scratch).map_err(serde::de::Error::custom)?);
    Ok(())
}

/// Whether `raw`, a JSON value the parser accepted (no surrounding
/// whitespace), is its own canonical text: a string without escapes (the
/// parser refused raw control characters, so there is nothing for the
/// serializer to escape), `true`, `false`, `null`, or an integer that
/// parses as `u64`/`i64` (at most 19 digits, or `-` and at most 18, not
/// `-0`, which parses as a double). Numbers with a fraction or exponent,
/// escaped strings and containers are re-serialized.
fn is_canonical(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let all_digits = |digits: &[u8]| !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
    match bytes.first() {
        Some(b'"') => !bytes.contains(&b'\\'),
        Some(b't' | b'f' | b'n') => true,
        Some(b'-') => {
            let digits = &bytes[1..];
            digits.len() <= 18 && all_digits(digits) && digits != b"0"
        }
        Some(b'0'..=b'9') => bytes.len() <= 19 && all_digits(bytes),
        _ => false,
    }
}

/// Writes a node's canonical text: serde_json's own serializer, from the
/// scalar as read (no `Value` for strings, numbers, booleans, null), or
/// from a `Value` for objects and arrays; the same text as
/// `Value::to_string` of the parsed node.
struct Canonical<'b> {
    text: &'b mut Vec<u8>,
}

impl Canonical<'_> {
    fn write<T: serde::Serialize + ?Sized, E: serde::de::Error>(self, value: &T) -> Result<(), E> {
        serde_json::to_writer(self.text, value).map_err(E::custom)
    }
}

impl<'de> DeserializeSeed<'de> for Canonical<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Canonical<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<(), E> {
        self.write(&value)
    }
    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<(), E> {
        self.write(&value)
    }
    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<(), E> {
        self.write(&value)
    }
    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<(), E> {
        // As `Value` holds it (a finite double; JSON has no other).
        self.write(&Value::from(value))
    }
    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<(), E> {
        self.write(value)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.write(&())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let value = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        self.write(&value)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let value = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        self.write(&value)
    }
}

/// A member name, borrowed from the document when it has no escapes.
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(name))
    }

    fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(name.to_owned()))
    }

    fn visit_string<E>(self, name: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(name))
    }
}

/// A value read as a string when it is one (`None` otherwise).
struct StringValue;

impl<'de> DeserializeSeed<'de> for StringValue {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringValue {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(text)))
    }
    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(text.to_owned())))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The member paths a query reads from documents, as a tree: what
/// [`pruned`] keeps.
#[cfg(feature = "query")]
#[derive(Debug, Default)]
pub(super) struct Paths {
    children: HashMap<String, Keep>,
}

#[cfg(feature = "query")]
#[derive(Debug)]
enum Keep {
    /// The whole node.
    Whole,
    /// Only the paths below.
    Below(Paths),
}

#[cfg(feature = "query")]
impl Paths {
    /// Keeps the node at `segments` (and everything under it).
    pub(super) fn add(&mut self, segments: &[String]) {
        let Some((first, rest)) = segments.split_first() else {
            return;
        };
        if rest.is_empty() {
            self.children.insert(first.clone(), Keep::Whole);
            return;
        }
        let slot = self
            .children
            .entry(first.clone())
            .or_insert_with(|| Keep::Below(Paths::default()));
        if let Keep::Below(below) = slot {
            below.add(rest);
        }
    }
}

/// `doc` (a JSON object) reduced to the members on `paths`: every node a
/// walk along those paths reaches (through objects, and through the object
/// elements of arrays met on the way) is as in the whole document, so the
/// evaluator and the group-by walk answer the same on it. Other members,
/// and the non-object elements of arrays on the way, are skipped without
/// being built.
#[cfg(feature = "query")]
pub(super) fn pruned(doc: &str, paths: &Paths) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(doc);
    let value = Prune { paths }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

#[cfg(feature = "query")]
struct Prune<'t> {
    paths: &'t Paths,
}

#[cfg(feature = "query")]
impl<'de> DeserializeSeed<'de> for Prune<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

#[cfg(feature = "query")]
impl<'de> Visitor<'de> for Prune<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = serde_json::Map::new();
        while let Some(name) = map.next_key_seed(Name)? {
            match self.paths.children.get(name.as_ref()) {
                Some(Keep::Whole) => {
                    let node: Value = map.next_value()?;
                    kept.insert(name.into_owned(), node);
                }
                Some(Keep::Below(paths)) => {
                    let node = map.next_value_seed(Prune { paths })?;
                    kept.insert(name.into_owned(), node);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }

    // An array on the way: its object elements continue the walk; the
    // others are never looked at (kept as null placeholders).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element_seed(Prune { paths: self.paths })? {
            elements.push(element);
        }
        Ok(Value::Array(elements))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}
