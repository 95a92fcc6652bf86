//! Regular expressions with bounded work.
//!
//! The `regex` crate matches in time linear in the text, but the factor is
//! the size of the pattern once its counted repetitions are expanded: when
//! the lazy DFA gives up (its cache thrashes, as it does on nested counted
//! repetitions), the fallback costs about 17–22 ns per text byte and NFA
//! *position* (measured on `(?:a{1,100}){1,100}c`: 10,001 positions, 15.7 s
//! for one 100 KB value, release build). A single match cannot be
//! interrupted, so the work of each one is bounded before it starts:
//!
//! - at compile time: the source length ([`MAX_REGEX_PATTERN_BYTES`]), the
//!   product of nested counted repetitions ([`MAX_REGEX_REPETITION`]), the
//!   expanded positions ([`MAX_REGEX_POSITIONS`]), the compiled size
//!   ([`REGEX_SIZE_LIMIT_BYTES`]), the lazy DFA's cache
//!   ([`REGEX_DFA_SIZE_LIMIT_BYTES`]) and the group nesting
//!   ([`REGEX_NEST_LIMIT`]);
//! - per match: positions × text bytes may not exceed
//!   [`MAX_REGEX_SCAN_WORK`] (1.5 s in the worst case measured), so a
//!   pattern scans strings up to [`BoundedRegex::max_scan_bytes`] long; a
//!   back end refuses a longer one with an error rather than answer from a
//!   partial scan (the reference evaluator, which defines what matches,
//!   has no such limit).
//!
//! Between matches the back ends check their statement deadline, so a query
//! stops within its time budget plus at most one bounded match.
//!
//! Positions are counted by a small scanner over the pattern source
//! ([`shape`]): one per literal character, class, escape or `.`, summed over
//! alternatives, multiplied by counted repetitions (`{n,m}` by `m`, `{n,}`
//! by `n + 1`). It errs towards counting more, never fewer; whatever it
//! misreads, the compiled size limit still holds.

use super::error::PatternError;

/// Longest regular expression source accepted, in bytes.
pub const MAX_REGEX_PATTERN_BYTES: usize = 1_024;
/// Compiled size limit of one regular expression (the `regex` crate's
/// `size_limit`): bounds the memory of a pattern. Unicode classes are large
/// (`\w` alone is about 50 KB), so `\w{1,5}` is near the limit where
/// `[a-zA-Z0-9_]{1,5}` or `(?-u:\w){1,5}` are small.
pub const REGEX_SIZE_LIMIT_BYTES: usize = 256 << 10;
/// Cache of one pattern's lazy DFA (the `regex` crate's `dfa_size_limit`).
pub const REGEX_DFA_SIZE_LIMIT_BYTES: usize = 1 << 20;
/// Deepest nesting of groups and repetitions in a pattern (the `regex`
/// crate's `nest_limit`; its default is 250).
pub const REGEX_NEST_LIMIT: u32 = 32;
/// Largest product of nested counted repetitions: `(a{1,50}){1,50}` is
/// 2,500 and refused, `a{1000}` and `(\d{1,3}\.){3}` pass.
pub const MAX_REGEX_REPETITION: u64 = 1_000;
/// Most positions a pattern may expand to (see the module docs): every
/// accepted pattern can scan strings of at least
/// `MAX_REGEX_SCAN_WORK / MAX_REGEX_POSITIONS` bytes (32 KiB).
pub const MAX_REGEX_POSITIONS: u64 = 2_048;
/// Work bound of one match: positions × text bytes. At the measured worst
/// case (about 22 ns per position and byte, once the lazy DFA has given
/// up) one match takes 1.5 s: `(?:a{1,31}){1,32}c` over the 66 KB it may
/// scan, release build.
pub const MAX_REGEX_SCAN_WORK: u64 = 1 << 26;

/// A compiled pattern and its positions (the work per text byte).
#[derive(Debug, Clone)]
pub(crate) struct BoundedRegex {
    regex: regex::Regex,
    positions: u64,
}

/// A match refused because the text is longer than the pattern may scan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the regular expression may scan strings of up to {max} bytes and a selected value has \
     {len}: simplify the pattern (fewer and smaller repetitions scan further), use a substring \
     match (`field:*text*`) instead, or narrow the selection"
)]
pub struct ScanRefused {
    /// The text's length, bytes.
    pub len: usize,
    /// The pattern's limit, bytes.
    pub max: usize,
}

impl BoundedRegex {
    /// Checks `source` against the limits (module docs) and compiles it.
    pub(crate) fn new(source: &str) -> Result<Self, PatternError> {
        if source.len() > MAX_REGEX_PATTERN_BYTES {
            return Err(PatternError::TooLong {
                len: source.len(),
                max: MAX_REGEX_PATTERN_BYTES,
            });
        }
        let shape = shape(source);
        if shape.repetition > MAX_REGEX_REPETITION {
            return Err(PatternError::RepetitionTooLarge {
                product: shape.repetition,
                max: MAX_REGEX_REPETITION,
            });
        }
        if shape.positions > MAX_REGEX_POSITIONS {
            return Err(PatternError::TooManyPositions {
                positions: shape.positions,
                max: MAX_REGEX_POSITIONS,
            });
        }
        let regex = regex::RegexBuilder::new(source)
            .size_limit(REGEX_SIZE_LIMIT_BYTES)
            .dfa_size_limit(REGEX_DFA_SIZE_LIMIT_BYTES)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .map_err(|error| {
                let hint = match error {
                    regex::Error::CompiledTooBig(_) => {
                        " (Unicode classes such as \\w, \\d or . are large once repeated; \
                         ASCII ones such as [a-zA-Z0-9_] or (?-u:\\w) are small)"
                    }
                    _ => "",
                };
                PatternError::Invalid {
                    message: format!("{error}{hint}"),
                }
            })?;
        Ok(Self {
            regex,
            positions: shape.positions.max(1),
        })
    }

    /// Longest string one match may scan (module docs).
    pub(crate) fn max_scan_bytes(&self) -> usize {
        usize::try_from(MAX_REGEX_SCAN_WORK / self.positions).unwrap_or(usize::MAX)
    }

    /// Whether the pattern matches anywhere in `text`, refusing a text
    /// longer than [`Self::max_scan_bytes`] before any work.
    pub(crate) fn is_match_bounded(&self, text: &str) -> Result<bool, ScanRefused> {
        let max = self.max_scan_bytes();
        if text.len() > max {
            return Err(ScanRefused {
                len: text.len(),
                max,
            });
        }
        Ok(self.regex.is_match(text))
    }

    /// Whether the pattern matches anywhere in `text`, however long (the
    /// reference evaluator's semantics).
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

/// What [`shape`] found in a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Positions once counted repetitions are expanded.
    pub(crate) positions: u64,
    /// Largest product of nested counted repetition bounds (1 if none).
    pub(crate) repetition: u64,
}

/// The last atom of a group, which a following quantifier applies to.
#[derive(Debug, Clone, Copy)]
struct Atom {
    positions: u64,
    repetition: u64,
}

/// An open group (the whole pattern is the outermost one).
#[derive(Debug, Clone, Copy)]
struct Frame {
    positions: u64,
    repetition: u64,
    last: Option<Atom>,
    /// `x` flag: whitespace and `#` comments are not pattern text.
    verbose: bool,
}

impl Frame {
    fn new(verbose: bool) -> Self {
        Self {
            positions: 0,
            repetition: 1,
            last: None,
            verbose,
        }
    }

    fn push(&mut self, atom: Atom) {
        self.positions = self.positions.saturating_add(atom.positions);
        self.repetition = self.repetition.max(atom.repetition);
        self.last = Some(atom);
    }

    /// Applies `{…}` with upper bound `times` to the last atom.
    fn repeat(&mut self, times: u64) {
        let Some(atom) = self.last else {
            return;
        };
        let repeated = Atom {
            positions: atom.positions.saturating_mul(times),
            repetition: atom.repetition.saturating_mul(times.max(1)),
        };
        self.positions = self
            .positions
            .saturating_sub(atom.positions)
            .saturating_add(repeated.positions);
        self.repetition = self.repetition.max(repeated.repetition);
        self.last = Some(repeated);
    }
}

/// Counts the positions and the repetition product of a pattern in the
/// `regex` crate's syntax (module docs). Never fails: text it cannot read
/// counts as literal characters, and the compiler judges the syntax.
pub(crate) fn shape(source: &str) -> Shape {
    let chars: Vec<char> = source.chars().collect();
    let mut stack = vec![Frame::new(false)];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let verbose = stack.last().is_some_and(|frame| frame.verbose);
        i += 1;
        if verbose && c.is_whitespace() {
            continue;
        }
        if verbose && c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        match c {
            '\\' => {
                i = skip_escape(&chars, i);
                top(&mut stack).push(single());
            }
            '[' => {
                i = skip_class(&chars, i);
                top(&mut stack).push(single());
            }
            '(' => {
                let (next, group) = open_group(&chars, i, verbose);
                i = next;
                match group {
                    Group::Flags(verbose) => top(&mut stack).verbose = verbose,
                    Group::Opens(verbose) => stack.push(Frame::new(verbose)),
                }
            }
            ')' => {
                if stack.len() > 1 {
                    if let Some(closed) = stack.pop() {
                        top(&mut stack).push(Atom {
                            positions: closed.positions,
                            repetition: closed.repetition,
                        });
                    }
                }
            }
            '|' => top(&mut stack).last = None,
            // Uncounted quantifiers (and the lazy `?`) add no positions.
            '*' | '+' | '?' => {}
            '{' => match counted(&chars, i) {
                Some((next, times)) => {
                    i = next;
                    top(&mut stack).repeat(times);
                }
                None => top(&mut stack).push(single()),
            },
            _ => top(&mut stack).push(single()),
        }
    }
    while stack.len() > 1 {
        if let Some(closed) = stack.pop() {
            top(&mut stack).push(Atom {
                positions: closed.positions,
                repetition: closed.repetition,
            });
        }
    }
    let whole = stack.first().copied().unwrap_or(Frame::new(false));
    Shape {
        positions: whole.positions,
        repetition: whole.repetition,
    }
}

fn single() -> Atom {
    Atom {
        positions: 1,
        repetition: 1,
    }
}

fn top(stack: &mut [Frame]) -> &mut Frame {
    // The outermost frame is never popped, so the stack is never empty;
    // the index form avoids a panic path all the same.
    let last = stack.len().saturating_sub(1);
    &mut stack[last]
}

/// Skips the rest of an escape whose `\` was just read; returns the index
/// after it.
fn skip_escape(chars: &[char], mut i: usize) -> usize {
    let Some(&c) = chars.get(i) else {
        return i;
    };
    i += 1;
    // These escapes take a braced argument (`\p{Greek}`, `\x{263a}`,
    // `\b{start}`); the braces are not a counted repetition.
    if matches!(c, 'p' | 'P' | 'x' | 'u' | 'U' | 'b' | 'B') && chars.get(i) == Some(&'{') {
        while i < chars.len() && chars[i] != '}' {
            i += 1;
        }
        return (i + 1).min(chars.len());
    }
    let fixed = match c {
        'x' => 2,
        'u' => 4,
        'U' => 8,
        'p' | 'P' => 1,
        _ => 0,
    };
    (i + fixed).min(chars.len())
}

/// Skips a character class whose `[` was just read (nested classes, POSIX
/// `[:alpha:]`, escapes, a leading `]` as a literal); returns the index
/// after its `]`.
fn skip_class(chars: &[char], mut i: usize) -> usize {
    let mut depth = 1_usize;
    let mut at_start = true;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if at_start && c == '^' {
            continue;
        }
        if at_start && c == ']' {
            at_start = false;
            continue;
        }
        at_start = false;
        match c {
            '\\' => i = (i + 1).min(chars.len()),
            '[' if chars.get(i) == Some(&':') => {
                while i + 1 < chars.len() && !(chars[i] == ':' && chars[i + 1] == ']') {
                    i += 1;
                }
                i = (i + 2).min(chars.len());
            }
            '[' => {
                depth += 1;
                at_start = true;
            }
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    i
}

/// What a `(` opened.
enum Group {
    /// `(?flags)`: no group; the flags change the current one.
    Flags(bool),
    /// A group, with its `x` flag.
    Opens(bool),
}

/// Reads what follows a `(`: returns the index after the group's opening
/// and what it opened.
fn open_group(chars: &[char], mut i: usize, verbose: bool) -> (usize, Group) {
    if chars.get(i) != Some(&'?') {
        return (i, Group::Opens(verbose));
    }
    i += 1;
    // Named groups: `(?P<name>`, `(?<name>`.
    if matches!(chars.get(i), Some('P' | '<')) {
        while i < chars.len() && chars[i] != '>' {
            i += 1;
        }
        return ((i + 1).min(chars.len()), Group::Opens(verbose));
    }
    let mut on = true;
    let mut flagged = verbose;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '-' => on = false,
            'x' => flagged = on,
            ':' => return (i, Group::Opens(flagged)),
            ')' => return (i, Group::Flags(flagged)),
            _ => {}
        }
    }
    (i, Group::Opens(flagged))
}

/// Reads a counted repetition whose `{` was just read: `{n}`, `{n,}`,
/// `{n,m}` or `{,m}` (blanks allowed). Returns the index after `}` and the
/// number of copies the compiler makes, or `None` if this is no counted
/// repetition (then `{` is a literal).
fn counted(chars: &[char], start: usize) -> Option<(usize, u64)> {
    let close = start + chars.get(start..)?.iter().position(|&c| c == '}')?;
    let inner: String = chars[start..close]
        .iter()
        .filter(|c| !c.is_whitespace())
        .collect();
    let number = |text: &str| -> Option<u64> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Digits only: a parse failure is an overflow, i.e. huge.
        Some(text.parse().unwrap_or(u64::MAX))
    };
    let times = match inner.split_once(',') {
        None => number(&inner)?,
        Some((low, "")) => number(low)?.saturating_add(1),
        Some(("", high)) => number(high)?,
        Some((low, high)) => number(low)?.max(number(high)?),
    };
    Some((close + 1, times))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(source: &str) -> u64 {
        shape(source).positions
    }

    fn repetition(source: &str) -> u64 {
        shape(source).repetition
    }

    #[test]
    fn literals_classes_and_escapes_are_one_position_each() {
        assert_eq!(positions("error"), 5);
        assert_eq!(positions(r"\d\w[a-z]."), 4);
        assert_eq!(positions(r"[]a]b"), 2);
        assert_eq!(positions(r"[[:alpha:][^x]]c"), 2);
        assert_eq!(positions(r"\p{Greek}\x{263a}\pL"), 3);
        assert_eq!(positions(r"a\{3}"), 4, "an escaped brace is literal text");
    }

    #[test]
    fn alternatives_add_and_counted_repetitions_multiply() {
        assert_eq!(positions("ab|cd"), 4);
        assert_eq!(positions("a{3}"), 3);
        assert_eq!(positions("a{2,}"), 3);
        assert_eq!(positions("(ab){1,10}c"), 21);
        assert_eq!(positions("(?:a{1,100}){1,100}c"), 10_001);
        assert_eq!(repetition("(?:a{1,100}){1,100}c"), 10_000);
        assert_eq!(repetition(r"(\d{1,3}\.){3}\d{1,3}"), 9);
        assert_eq!(repetition("a*b+c?"), 1);
    }

    #[test]
    fn braces_that_are_not_a_repetition_are_literal() {
        assert_eq!(positions("a{x}"), 4);
        assert_eq!(repetition("a{x}"), 1);
        assert_eq!(positions(r"\b{start}ab"), 3);
    }

    #[test]
    fn verbose_mode_skips_blanks_and_comments() {
        assert_eq!(positions("(?x) a b # c{1000}\n c"), 3);
        assert_eq!(repetition("(?x) a # {1000}\n"), 1);
        assert_eq!(
            positions("(?x: a b ) c d"),
            6,
            "the flag ends with its group"
        );
    }

    #[test]
    fn nested_counted_repetitions_are_refused_before_compiling() {
        let error = BoundedRegex::new("(a{1,50}){1,50}c").unwrap_err();
        assert!(
            matches!(
                error,
                PatternError::RepetitionTooLarge { product: 2_500, .. }
            ),
            "{error}"
        );
        assert!(BoundedRegex::new(r"(\d{1,3}\.){3}\d{1,3}").is_ok());
        assert!(BoundedRegex::new("a{1000}").is_ok());
    }

    #[test]
    fn too_many_positions_are_refused() {
        let source = "(abc|def){1,700}";
        let error = BoundedRegex::new(source).unwrap_err();
        assert!(
            matches!(
                error,
                PatternError::TooManyPositions {
                    positions: 4_200,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_large_compiled_pattern_is_refused_with_a_hint() {
        let error = BoundedRegex::new(r"\w{1,20}").unwrap_err();
        assert!(error.to_string().contains("[a-zA-Z0-9_]"), "{error}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let source = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(BoundedRegex::new(&source).is_err());
    }

    #[test]
    fn the_scan_limit_shrinks_as_positions_grow() {
        let simple = BoundedRegex::new("error").unwrap();
        assert_eq!(simple.max_scan_bytes() as u64, MAX_REGEX_SCAN_WORK / 5);
        let costly = BoundedRegex::new("(?:a{1,31}){1,32}c").unwrap();
        assert_eq!(costly.max_scan_bytes() as u64, MAX_REGEX_SCAN_WORK / 993);
        let text = "a".repeat(costly.max_scan_bytes() + 1);
        assert_eq!(
            costly.is_match_bounded(&text),
            Err(ScanRefused {
                len: text.len(),
                max: costly.max_scan_bytes()
            })
        );
        assert_eq!(costly.is_match_bounded("aac"), Ok(true));
    }
}
