//! Where an event's `type` comes from: one rule per protocol, set by a flag
//! (`--otlp-type`, `--es-type`, `--hec-type`, `--loki-type`; syslog will
//! share the mechanism).
//!
//! A rule is a list of candidates separated by `|`, tried in order; the
//! first that yields a non-empty string wins. A candidate starting with `$`
//! names a field of the Helios event the protocol produces, by its
//! documented path (`$attributes.event.name`, `$labels.job`,
//! `$sourcetype`); any other candidate is literal text. A rule must end
//! in a literal, so `type` is never empty.
//!
//! Dots separate levels, but attribute and label keys contain dots
//! themselves (`service.name`): a path is matched against keys greedily,
//! the longest key that exists first (see [`lookup_json`]).

use std::borrow::Cow;

/// Longest rule accepted (flags are typed by people).
const MAX_RULE_BYTES: usize = 1024;
/// Most candidates in one rule.
const MAX_CANDIDATES: usize = 16;

/// A parsed `type` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRule {
    candidates: Vec<Candidate>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Candidate {
    Field(String),
    Literal(String),
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeRuleError {
    /// Empty, or an empty candidate (`a||b`).
    #[error("empty candidate in type rule {rule:?}")]
    EmptyCandidate {
        /// The rule.
        rule: String,
    },
    /// The last candidate is a field: `type` could end up empty.
    #[error("type rule {rule:?} must end in literal text (e.g. `{rule}|otel.log`) so type is never empty")]
    NoFallback {
        /// The rule.
        rule: String,
    },
    /// Too long or too many candidates.
    #[error(
        "type rule is too long (at most {MAX_RULE_BYTES} bytes and {MAX_CANDIDATES} candidates)"
    )]
    TooLong,
}

impl TypeRule {
    /// Parses `$field|$other.field|literal`.
    pub fn parse(rule: &str) -> Result<TypeRule, TypeRuleError> {
        if rule.len() > MAX_RULE_BYTES {
            return Err(TypeRuleError::TooLong);
        }
        let mut candidates = Vec::new();
        for part in rule.split('|') {
            let part = part.trim();
            let candidate = match part.strip_prefix('$') {
                Some(path) if !path.is_empty() => Candidate::Field(path.to_owned()),
                _ if part.is_empty() || part == "$" => {
                    return Err(TypeRuleError::EmptyCandidate {
                        rule: rule.to_owned(),
                    })
                }
                _ => Candidate::Literal(part.to_owned()),
            };
            candidates.push(candidate);
        }
        if candidates.len() > MAX_CANDIDATES {
            return Err(TypeRuleError::TooLong);
        }
        if !matches!(candidates.last(), Some(Candidate::Literal(_))) {
            return Err(TypeRuleError::NoFallback {
                rule: rule.to_owned(),
            });
        }
        Ok(TypeRule {
            candidates,
            text: rule.to_owned(),
        })
    }

    /// The rule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The type for one event: `lookup(path)` gives the text of the field
    /// at `path` (without the `$`), or `None`. Never empty.
    pub fn resolve<'a>(&'a self, lookup: impl Fn(&str) -> Option<Cow<'a, str>>) -> Cow<'a, str> {
        for candidate in &self.candidates {
            match candidate {
                Candidate::Field(path) => {
                    if let Some(value) = lookup(path) {
                        if !value.is_empty() {
                            return value;
                        }
                    }
                }
                Candidate::Literal(text) => return Cow::Borrowed(text),
            }
        }
        // `parse` guarantees a literal last.
        debug_assert!(false, "type rule without a literal fallback");
        Cow::Borrowed("event")
    }

    /// The field paths it reads (for a decoder that only builds what a
    /// rule needs).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.candidates.iter().filter_map(|c| match c {
            Candidate::Field(path) => Some(path.as_str()),
            Candidate::Literal(_) => None,
        })
    }
}

/// The text at `path` in `value`: strings as they are, numbers and
/// booleans as JSON writes them, anything else `None`. Each level takes
/// the longest dotted key that exists (`resource.service.name` finds
/// `{"resource": {"service.name": "api"}}`).
pub fn lookup_json<'v>(value: &'v serde_json::Value, path: &str) -> Option<Cow<'v, str>> {
    let object = value.as_object()?;
    let mut end = path.len();
    loop {
        let key = &path[..end];
        if let Some(inner) = object.get(key) {
            if end == path.len() {
                return match inner {
                    serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                    serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
                    serde_json::Value::Bool(b) => Some(Cow::Owned(b.to_string())),
                    _ => None,
                };
            }
            if let Some(found) = lookup_json(inner, &path[end + 1..]) {
                return Some(found);
            }
        }
        end = path[..end].rfind('.')?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_non_empty_candidate_wins() {
        let rule = TypeRule::parse("$event_name|$labels.job|otel.log").unwrap();
        let event = json!({"event_name": "", "labels": {"job": "api"}});
        assert_eq!(rule.resolve(|p| lookup_json(&event, p)), "api");
        let event = json!({"labels": {}});
        assert_eq!(rule.resolve(|p| lookup_json(&event, p)), "otel.log");
    }

    #[test]
    fn dotted_keys_match_greedily() {
        let event = json!({"resource": {"service.name": "checkout", "service": {"x": 1}}});
        assert_eq!(
            lookup_json(&event, "resource.service.name").as_deref(),
            Some("checkout")
        );
        assert_eq!(
            lookup_json(&event, "resource.service.x").as_deref(),
            Some("1")
        );
        assert_eq!(lookup_json(&event, "resource.nothing"), None);
        assert_eq!(lookup_json(&event, "resource"), None);
    }

    #[test]
    fn a_rule_must_end_in_a_literal() {
        assert!(matches!(
            TypeRule::parse("$sourcetype"),
            Err(TypeRuleError::NoFallback { .. })
        ));
        assert!(matches!(
            TypeRule::parse("$a||b"),
            Err(TypeRuleError::EmptyCandidate { .. })
        ));
        assert!(matches!(
            TypeRule::parse(""),
            Err(TypeRuleError::EmptyCandidate { .. })
        ));
        assert!(TypeRule::parse("splunk").is_ok());
    }
}
