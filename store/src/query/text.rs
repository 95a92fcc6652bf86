//! The query bar's language → [`Filter`].
//!
//! ```text
//! type:signup plan:pro latency_ms>250 NOT country:US
//! (plan:pro OR plan:team) -host:web-1* user.email:*@example.com message:/time(d)?out/i
//! ```
//!
//! | form | meaning |
//! |---|---|
//! | `field:value` | equal (see "values" below) |
//! | `field!=value` | not equal (same as `-field:value`; matches a missing field) |
//! | `field>v` `field>=v` `field<v` `field<=v` | comparisons |
//! | `field:"quoted value"` | equal to exactly this string (`\"` and `\\` escape) |
//! | `field:abc*` | string starts with `abc` |
//! | `field:*abc*` | string contains `abc` |
//! | `field:*abc` | string ends with `abc` |
//! | `field:/regex/flags` | Rust `regex` syntax; flags `i`, `m`, `s`, `x`; `\/` is a `/` |
//! | `field:*` | the field exists (`-field:*`: it is missing) |
//! | `a b`, `a AND b` | both |
//! | `a OR b` | either (`AND` binds tighter than `OR`) |
//! | `NOT a`, `-a` | not |
//! | `( … )` | grouping |
//!
//! An operator is read from the whole run of `:<>=!` after the field (but
//! `::` is `:` and a value starting with `:`, as in `ip:::1`); a run that
//! is no operator (`a>>1`, `a=>1`, `a:>1`) is an error, not an operator
//! and a value that starts with `>`. Such a value must be quoted.
//!
//! Keywords are upper case; `and`/`or`/`not` are ordinary words. Field
//! names are dotted paths (`user.address.city`), made of anything but
//! spaces, parentheses, quotes and `:<>=!`.
//!
//! **Values.** An unquoted value that reads as a number, `true`, `false` or
//! `null` matches that JSON value *or* the same text as a string (`code:200`
//! finds `200` and `"200"`): type brackets would otherwise make such a
//! search silently miss half the events. With `>`/`<` an unquoted number
//! compares numerically only, any other value as a string. `null` also
//! matches a missing field (IR semantics). A quoted value is always a
//! string. For `ts` and `recv` the value is a date, RFC 3339 or integer
//! epoch milliseconds (`ts>=2026-11-30T00:00:00Z`); for `_id` it is 24 hex
//! digits.
//!
//! **Bare words are refused** (`error` alone): "search the whole document"
//! has no index-friendly, back-end-neutral meaning (MongoDB would need
//! `$text` or server-side code); the error suggests `field:*word*`.
//!
//! Errors carry the byte offset of the offending token, or the input's
//! length when something is missing at the end.

use crate::model::parse_rfc3339_ms;
use crate::ObjectId;

use super::error::ParseError;
use super::ir::{
    CompareOp, FieldPath, Filter, Literal, RegexPattern, MAX_REGEXES_PER_FILTER, PATH_ID,
    PATH_RECV, PATH_TS,
};

/// Longest text query accepted, in bytes.
pub const MAX_TEXT_QUERY_BYTES: usize = 4_096;
/// Most terms (field conditions) in one text query.
pub const MAX_TEXT_TERMS: usize = 256;
/// Deepest nesting of parentheses and `NOT`s.
pub const MAX_TEXT_DEPTH: usize = 32;

/// Parses the query bar's language (see the module docs) into a [`Filter`].
/// An empty or all-blank query is `Filter::And(vec![])`, which matches
/// every event.
pub fn parse_text(input: &str) -> Result<Filter, ParseError> {
    if input.len() > MAX_TEXT_QUERY_BYTES {
        return Err(ParseError {
            offset: MAX_TEXT_QUERY_BYTES,
            message: format!(
                "the query is {} bytes long, the limit is {MAX_TEXT_QUERY_BYTES}",
                input.len()
            ),
        });
    }
    let mut parser = Parser {
        input,
        pos: 0,
        terms: 0,
    };
    parser.skip_blanks();
    if parser.at_end() {
        return Ok(Filter::all());
    }
    let filter = parser.or(0)?;
    parser.skip_blanks();
    let regexes = filter.regex_count();
    if regexes > MAX_REGEXES_PER_FILTER {
        return Err(ParseError {
            offset: 0,
            message: format!(
                "the query holds {regexes} regular expressions (`/…/` and `*suffix` terms); at most {MAX_REGEXES_PER_FILTER} are allowed"
            ),
        });
    }
    match parser.peek() {
        None => Ok(filter),
        Some(')') => Err(parser.error_here("unexpected `)` without a matching `(`")),
        // `or`/`and` stop only at `)`, `OR` or the end.
        Some(_) => Err(parser.error_here("unexpected text")),
    }
}

/// The comparison a term asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermOp {
    Match,
    NotEqual,
    Compare(CompareOp),
}

/// A keyword, when the next word is exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    And,
    Or,
    Not,
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
    terms: usize,
}

impl<'a> Parser<'a> {
    fn error_at(&self, offset: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            offset,
            message: message.into(),
        }
    }

    fn error_here(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.pos, message)
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    fn skip_blanks(&mut self) {
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.bump(c);
        }
    }

    /// The run of characters up to a blank or a parenthesis.
    fn word(&self) -> &'a str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .unwrap_or(rest.len());
        &rest[..end]
    }

    fn keyword(&self) -> Option<Keyword> {
        match self.word() {
            "AND" => Some(Keyword::And),
            "OR" => Some(Keyword::Or),
            "NOT" => Some(Keyword::Not),
            _ => None,
        }
    }

    /// True where no further condition can start: the end, `)` or `OR`.
    fn at_boundary(&self) -> bool {
        matches!(self.peek(), None | Some(')')) || self.keyword() == Some(Keyword::Or)
    }

    fn or(&mut self, depth: usize) -> Result<Filter, ParseError> {
        let mut children = vec![self.and(depth)?];
        loop {
            self.skip_blanks();
            if self.keyword() != Some(Keyword::Or) {
                break;
            }
            let at = self.pos;
            self.pos += "OR".len();
            self.skip_blanks();
            if self.at_boundary() || self.keyword() == Some(Keyword::And) {
                return Err(self.error_at(at, "`OR` needs a condition on both sides"));
            }
            children.push(self.and(depth)?);
        }
        Ok(collapse(children, Filter::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Filter, ParseError> {
        let mut children = vec![self.unary(depth)?];
        loop {
            self.skip_blanks();
            if self.at_boundary() {
                break;
            }
            if self.keyword() == Some(Keyword::And) {
                let at = self.pos;
                self.pos += "AND".len();
                self.skip_blanks();
                if self.at_boundary() || self.keyword() == Some(Keyword::And) {
                    return Err(self.error_at(at, "`AND` needs a condition on both sides"));
                }
            }
            children.push(self.unary(depth)?);
        }
        Ok(collapse(children, Filter::And))
    }

    fn unary(&mut self, depth: usize) -> Result<Filter, ParseError> {
        self.skip_blanks();
        let at = self.pos;
        let negated = if self.keyword() == Some(Keyword::Not) {
            self.pos += "NOT".len();
            true
        } else if self.rest().starts_with('-') {
            // `-` negates only when glued to what it negates.
            match self.rest()[1..].chars().next() {
                Some(c) if !c.is_whitespace() && c != ')' => {
                    self.pos += 1;
                    true
                }
                _ => return Err(self.error_at(at, "`-` must be followed by a condition")),
            }
        } else {
            false
        };
        if !negated {
            return self.primary(depth);
        }
        if depth + 1 > MAX_TEXT_DEPTH {
            return Err(self.error_at(at, format!("nesting deeper than {MAX_TEXT_DEPTH} levels")));
        }
        self.skip_blanks();
        if self.at_boundary() || matches!(self.keyword(), Some(Keyword::And)) {
            return Err(self.error_at(at, "`NOT` needs a condition after it"));
        }
        Ok(Filter::not(self.unary(depth + 1)?))
    }

    fn primary(&mut self, depth: usize) -> Result<Filter, ParseError> {
        self.skip_blanks();
        let at = self.pos;
        match self.peek() {
            None => Err(self.error_here("expected a condition")),
            Some(')') => Err(self.error_here("unexpected `)` without a matching `(`")),
            Some('(') => {
                if depth + 1 > MAX_TEXT_DEPTH {
                    return Err(
                        self.error_here(format!("nesting deeper than {MAX_TEXT_DEPTH} levels"))
                    );
                }
                self.bump('(');
                self.skip_blanks();
                if self.peek() == Some(')') {
                    return Err(self.error_at(at, "empty parentheses"));
                }
                if self.at_end() {
                    return Err(self.error_at(at, "unclosed `(`"));
                }
                let inner = self.or(depth + 1)?;
                self.skip_blanks();
                if self.peek() != Some(')') {
                    return Err(self.error_at(at, "unclosed `(`"));
                }
                self.bump(')');
                Ok(inner)
            }
            Some('"') => Err(self.error_here(
                "a quoted string must follow `field:`; to search a field write field:\"text\"",
            )),
            Some(_) => match self.keyword() {
                Some(Keyword::Or) => Err(self.error_here("`OR` needs a condition on both sides")),
                Some(Keyword::And) => Err(self.error_here("`AND` needs a condition on both sides")),
                _ => self.term(),
            },
        }
    }

    fn term(&mut self) -> Result<Filter, ParseError> {
        let start = self.pos;
        self.terms += 1;
        if self.terms > MAX_TEXT_TERMS {
            return Err(self.error_at(start, format!("more than {MAX_TEXT_TERMS} conditions")));
        }
        let rest = self.rest();
        let field_end = rest
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '(' | ')' | '"' | ':' | '<' | '>' | '=' | '!')
            })
            .unwrap_or(rest.len());
        let field = &rest[..field_end];
        self.pos += field_end;
        let op_at = self.pos;
        if field.is_empty() {
            return Err(if operator_run(self.rest()).is_empty() {
                self.error_at(start, "expected a condition")
            } else {
                self.error_at(op_at, "expected a field name before the operator")
            });
        }
        let op = self.operator()?.ok_or_else(|| {
            self.error_at(
                start,
                format!(
                    "bare word `{}`: search a field with field:value, or field:*{}* \
                     for a substring",
                    field, field
                ),
            )
        })?;
        let path = FieldPath::parse(field)
            .map_err(|error| self.error_at(start, format!("field `{field}`: {error}")))?;
        self.value(path, op)
    }

    /// Reads `:`, `=`, `!=`, `<`, `<=`, `>`, `>=`; `None` where no operator
    /// character follows the field. A run of operator characters that is
    /// none of these (`>>`, `=>`, `<>`, `:>`, `!!=`) is refused at its first
    /// character past the longest operator it starts with: read as an
    /// operator and a value (`latency_ms>>100` as `> ">100"`), such a typo
    /// would run as a string comparison that silently finds nothing.
    fn operator(&mut self) -> Result<Option<TermOp>, ParseError> {
        let run = operator_run(self.rest());
        if run.is_empty() {
            return Ok(None);
        }
        if let Some(op) = term_op(run) {
            self.pos += run.len();
            return Ok(Some(op));
        }
        // The run is ASCII, so every length is a char boundary.
        let known_len = (1..run.len())
            .rev()
            .find(|&len| term_op(&run[..len]).is_some())
            .unwrap_or(0);
        let stray = &run[known_len..=known_len];
        let hint = if known_len == 0 {
            String::new()
        } else {
            format!(" (quote a value that starts with `{stray}`)")
        };
        Err(self.error_at(
            self.pos + known_len,
            format!(
                "unknown operator `{run}`: the operators are `:` `=` `!=` `<` `<=` `>` `>=`{hint}"
            ),
        ))
    }

    fn value(&mut self, path: FieldPath, op: TermOp) -> Result<Filter, ParseError> {
        let at = self.pos;
        match self.peek() {
            None => {
                return Err(self.error_here(format!("missing value after `{path}`")));
            }
            Some(c) if c.is_whitespace() || c == ')' || c == '(' => {
                return Err(self.error_here(format!("missing value after `{path}`")));
            }
            _ => {}
        }
        if self.peek() == Some('"') {
            let text = self.quoted()?;
            return typed_string(&path, op, text).map_err(|m| self.error_at(at, m));
        }
        if self.peek() == Some('/') {
            if op != TermOp::Match {
                return Err(self.error_at(at, "a regular expression needs `field:/…/`"));
            }
            return self.regex(path);
        }
        let raw = self.word();
        self.pos += raw.len();
        unquoted(&path, op, raw).map_err(|message| self.error_at(at, message))
    }

    /// A `"…"` string; the cursor is on the opening quote.
    fn quoted(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        self.bump('"');
        let mut text = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(text);
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('"' | '\\'))) => text.push(escaped),
                    Some((_, other)) => {
                        text.push('\\');
                        text.push(other);
                    }
                    None => break,
                },
                _ => text.push(c),
            }
        }
        Err(self.error_at(open, "unterminated quoted string"))
    }

    /// A `/…/flags` regular expression; the cursor is on the first `/`.
    fn regex(&mut self, path: FieldPath) -> Result<Filter, ParseError> {
        let open = self.pos;
        self.bump('/');
        let mut source = String::new();
        let mut chars = self.rest().char_indices();
        let mut closed = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '/' => {
                    closed = Some(i);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, '/')) => source.push('/'),
                    Some((_, other)) => {
                        source.push('\\');
                        source.push(other);
                    }
                    None => break,
                },
                _ => source.push(c),
            }
        }
        let Some(close) = closed else {
            return Err(self.error_at(open, "unterminated regular expression"));
        };
        self.pos += close + 1;
        let flags_at = self.pos;
        let flags = self.word();
        if let Some((i, bad)) = flags
            .char_indices()
            .find(|(_, c)| !matches!(c, 'i' | 'm' | 's' | 'x'))
        {
            return Err(self.error_at(
                flags_at + i,
                format!("unknown regular expression flag `{bad}` (use i, m, s, x)"),
            ));
        }
        self.pos += flags.len();
        let source = if flags.is_empty() {
            source
        } else {
            format!("(?{flags}){source}")
        };
        let pattern =
            RegexPattern::new(&source).map_err(|error| self.error_at(open, error.to_string()))?;
        Ok(Filter::Regex { path, pattern })
    }
}

/// The operator characters at the start of `rest`: where an operator is
/// read from. After `:` or `=` (equality) a value may start with `:`
/// (`ip:::1`), so only `<>=!` continue the run; after `<`, `>` or `!` a `:`
/// is a mistyped operator too (`a>:1`).
fn operator_run(rest: &str) -> &str {
    let Some(first) = rest.chars().next() else {
        return "";
    };
    if !matches!(first, ':' | '<' | '>' | '=' | '!') {
        return "";
    }
    let colon_continues = matches!(first, '<' | '>' | '!');
    let continues = |c: char| matches!(c, '<' | '>' | '=' | '!') || (c == ':' && colon_continues);
    let len = rest[1..]
        .find(|c: char| !continues(c))
        .map_or(rest.len(), |i| i + 1);
    debug_assert!(rest[..len].is_ascii(), "operator characters are ASCII");
    &rest[..len]
}

/// The operator spelled exactly `text`, if any.
fn term_op(text: &str) -> Option<TermOp> {
    Some(match text {
        ":" | "=" => TermOp::Match,
        "!=" => TermOp::NotEqual,
        "<" => TermOp::Compare(CompareOp::Lt),
        "<=" => TermOp::Compare(CompareOp::Lte),
        ">" => TermOp::Compare(CompareOp::Gt),
        ">=" => TermOp::Compare(CompareOp::Gte),
        _ => return None,
    })
}

fn collapse(mut children: Vec<Filter>, combine: fn(Vec<Filter>) -> Filter) -> Filter {
    if children.len() == 1 {
        children.remove(0)
    } else {
        combine(children)
    }
}

fn negate_if(op: TermOp, filter: Filter) -> Filter {
    if op == TermOp::NotEqual {
        Filter::not(filter)
    } else {
        filter
    }
}

/// A quoted value: always a string, except on the typed envelope fields.
fn typed_string(path: &FieldPath, op: TermOp, text: String) -> Result<Filter, String> {
    if is_typed_field(path) {
        return typed_value(path, op, &text);
    }
    let literal = Literal::String(text);
    Ok(match op {
        TermOp::Compare(compare) => Filter::compare(path.clone(), compare, literal),
        TermOp::Match | TermOp::NotEqual => negate_if(op, Filter::eq(path.clone(), literal)),
    })
}

fn is_typed_field(path: &FieldPath) -> bool {
    path.is(PATH_TS) || path.is(PATH_RECV) || path.is(PATH_ID)
}

/// A value for `ts`/`recv` (a date) or `_id` (an ObjectId).
fn typed_value(path: &FieldPath, op: TermOp, text: &str) -> Result<Filter, String> {
    let literal = if path.is(PATH_ID) {
        Literal::Id(
            ObjectId::parse_hex(text).map_err(|error| format!("`{path}` needs an id: {error}"))?,
        )
    } else {
        let ms = parse_rfc3339_ms(text)
            .or_else(|| integer(text))
            .ok_or_else(|| {
                format!(
                    "`{path}` needs a date: RFC 3339 (2026-11-30T19:21:43Z) or epoch milliseconds"
                )
            })?;
        Literal::Date(ms)
    };
    Ok(match op {
        TermOp::Compare(compare) => Filter::compare(path.clone(), compare, literal),
        TermOp::Match | TermOp::NotEqual => negate_if(op, Filter::eq(path.clone(), literal)),
    })
}

/// An unquoted value (see "Values" in the module docs).
fn unquoted(path: &FieldPath, op: TermOp, raw: &str) -> Result<Filter, String> {
    if raw == "*" {
        return match op {
            TermOp::Match => Ok(Filter::Exists {
                path: path.clone(),
                exists: true,
            }),
            TermOp::NotEqual => Ok(Filter::Exists {
                path: path.clone(),
                exists: false,
            }),
            TermOp::Compare(_) => Err("`*` (exists) needs `field:*`".to_owned()),
        };
    }
    if raw.contains('*') {
        return wildcard(path, op, raw);
    }
    if is_typed_field(path) {
        return typed_value(path, op, raw);
    }
    let scalar = scalar(raw);
    let string = Literal::String(raw.to_owned());
    Ok(match op {
        TermOp::Compare(compare) => {
            Filter::compare(path.clone(), compare, scalar.unwrap_or(string))
        }
        TermOp::Match | TermOp::NotEqual => {
            let equal = match scalar {
                Some(typed) => Filter::In {
                    path: path.clone(),
                    values: vec![typed, string],
                },
                None => Filter::eq(path.clone(), string),
            };
            negate_if(op, equal)
        }
    })
}

/// `abc*`, `*abc*`, `*abc`: prefix, contains, suffix.
fn wildcard(path: &FieldPath, op: TermOp, raw: &str) -> Result<Filter, String> {
    if matches!(op, TermOp::Compare(_)) {
        return Err("wildcards need `field:`, not a comparison".to_owned());
    }
    let leading = raw.starts_with('*');
    let trailing = raw.ends_with('*') && raw.len() > 1;
    let core = &raw[usize::from(leading)..raw.len() - usize::from(trailing)];
    if core.is_empty() || core.contains('*') {
        return Err(
            "wildcards go only at the start and/or end of a value (abc*, *abc*, *abc)".to_owned(),
        );
    }
    let path = path.clone();
    let filter = match (leading, trailing) {
        (true, true) => Filter::Contains {
            path,
            text: core.to_owned(),
        },
        (false, true) => Filter::Prefix {
            path,
            prefix: core.to_owned(),
        },
        _ => Filter::Regex {
            path,
            pattern: RegexPattern::new(&format!("{}$", regex::escape(core)))
                .map_err(|error| error.to_string())?,
        },
    };
    Ok(negate_if(op, filter))
}

/// A number, boolean or null spelled in JSON's way.
fn scalar(raw: &str) -> Option<Literal> {
    match raw {
        "true" => return Some(Literal::Bool(true)),
        "false" => return Some(Literal::Bool(false)),
        "null" => return Some(Literal::Null),
        _ => {}
    }
    if !is_json_number(raw) {
        return None;
    }
    if let Some(i) = integer(raw) {
        return Some(Literal::Int(i));
    }
    raw.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Literal::Float)
}

fn integer(raw: &str) -> Option<i64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// JSON's number grammar (so `inf`, `NaN`, `1_000`, `0x10` stay strings).
fn is_json_number(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == bytes.len()
}
