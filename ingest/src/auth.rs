//! API keys (`--api-keys FILE`): each key is bound to an app and a role.
//!
//! File format, one key per line, `#` starts a comment:
//!
//! ```text
//! # key                                   app       role
//! k_live_3f9a0c…                          billing   ingest
//! sha256:5e884898da28047151d0e56f8dc629…  edge-1    relay
//! ```
//!
//! A key may be written as `sha256:<64 hex digits>`, the SHA-256 of the key,
//! so the file need not hold the secret itself. Keys are kept only as
//! hashes in memory and looked up by the hash of what a request presents
//! (`Authorization: Bearer KEY`). Keys never appear in logs or metrics.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Send events for its app; `app` is stamped from the key.
    Ingest,
    /// A relay forwarding events it journaled: `_id`, `ts`, `ts_raw`,
    /// `recv`, `app` are kept as sent.
    Relay,
}

/// Who a request's key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The app events are stamped with (ingest role).
    pub app: String,
    /// The key's role.
    pub role: Role,
}

/// The loaded keys.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_hash: HashMap<[u8; 32], Principal>,
}

/// Why a request is not authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header in a scheme we read (401).
    Missing,
    /// A key that is not in the file (401).
    Unknown,
}

impl ApiKeys {
    /// Parses the key file text; errors name the line.
    pub fn parse(text: &str) -> Result<ApiKeys, String> {
        let mut by_hash = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [key, app, role] = fields.as_slice() else {
                return Err(format!("line {}: expected `KEY APP ROLE`", i + 1));
            };
            let role = match *role {
                "ingest" => Role::Ingest,
                "relay" => Role::Relay,
                other => {
                    return Err(format!(
                        "line {}: unknown role {other:?} (ingest or relay)",
                        i + 1
                    ))
                }
            };
            let hash = match key.strip_prefix("sha256:") {
                Some(hex) => parse_hash(hex)
                    .ok_or_else(|| format!("line {}: sha256: needs 64 hex digits", i + 1))?,
                None => hash_key(key.as_bytes()),
            };
            let principal = Principal {
                app: (*app).to_string(),
                role,
            };
            if by_hash.insert(hash, principal).is_some() {
                return Err(format!("line {}: duplicate key", i + 1));
            }
        }
        if by_hash.is_empty() {
            return Err("no keys in the file".into());
        }
        Ok(ApiKeys { by_hash })
    }

    /// Loads `path`.
    pub fn load(path: &Path) -> Result<ApiKeys, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The principal of a request's `Authorization` header value. The key
    /// may come in any scheme the shippers' clients send it in:
    /// `Bearer KEY` (Helios, OTLP, Loki), `Splunk KEY` (HEC), `ApiKey KEY`
    /// (Elasticsearch clients; also `ApiKey base64(id:KEY)`, the form they
    /// build from an id and a key) and `Basic base64(user:KEY)` (the
    /// password is the key, the user name is ignored).
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<&Principal, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?.trim_ascii();
        // The scheme is case-insensitive (RFC 9110 §11.1), the credentials
        // follow after one or more spaces.
        let space = value
            .iter()
            .position(|&b| b == b' ')
            .ok_or(AuthError::Missing)?;
        let (scheme, credentials) = value.split_at(space);
        let credentials = credentials.trim_ascii();
        let lookup = |key: &[u8]| self.by_hash.get(&hash_key(key));
        if scheme.eq_ignore_ascii_case(b"Bearer") || scheme.eq_ignore_ascii_case(b"Splunk") {
            return lookup(credentials).ok_or(AuthError::Unknown);
        }
        if scheme.eq_ignore_ascii_case(b"ApiKey") {
            if let Some(found) = lookup(credentials) {
                return Ok(found);
            }
            return decode_pair(credentials)
                .and_then(|(_, key)| lookup(&key))
                .ok_or(AuthError::Unknown);
        }
        if scheme.eq_ignore_ascii_case(b"Basic") {
            return decode_pair(credentials)
                .and_then(|(_, key)| lookup(&key))
                .ok_or(AuthError::Unknown);
        }
        Err(AuthError::Missing)
    }
}

/// `base64(first:second)` → its two halves (split at the first colon, as
/// Basic auth does: a key may contain colons, a user name may not).
fn decode_pair(credentials: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

fn hash_key(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shippers_schemes_carry_the_same_key() {
        use base64::Engine as _;
        let keys = ApiKeys::parse("k1 billing ingest\n").unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        for header in [
            "Bearer k1".to_string(),
            "Splunk k1".to_string(),
            "splunk   k1".to_string(),
            "ApiKey k1".to_string(),
            format!("ApiKey {}", b64("some-id:k1")),
            format!("Basic {}", b64("anyone:k1")),
        ] {
            let p = keys.authenticate(Some(header.as_bytes()));
            assert_eq!(p.map(|p| p.app.as_str()), Ok("billing"), "{header}");
        }
        for header in [
            format!("Basic {}", b64("k1:wrong")),
            format!("Basic {}", b64("k1")),
            "Basic !!!".to_string(),
            "ApiKey nope".to_string(),
        ] {
            assert_eq!(
                keys.authenticate(Some(header.as_bytes())),
                Err(AuthError::Unknown),
                "{header}"
            );
        }
        assert_eq!(
            keys.authenticate(Some(b"Digest k1")),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn plain_and_hashed_keys_authenticate() {
        // sha256("secret")
        let keys = ApiKeys::parse(
            "# comment\nk1 billing ingest\nsha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b edge relay # trailing\n",
        )
        .unwrap();
        assert_eq!(
            keys.authenticate(Some(b"Bearer k1")).unwrap().app,
            "billing"
        );
        assert_eq!(
            keys.authenticate(Some(b"Bearer secret")).unwrap().role,
            Role::Relay
        );
        assert_eq!(
            keys.authenticate(Some(b"Bearer nope")),
            Err(AuthError::Unknown)
        );
        assert_eq!(keys.authenticate(None), Err(AuthError::Missing));
        assert_eq!(
            keys.authenticate(Some(b"Negotiate k1")),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let keys = ApiKeys::parse("k1 billing ingest\n").unwrap();
        for value in [
            &b"bearer k1"[..],
            b"BEARER k1",
            b"BeArEr  k1",
            b"  Bearer k1  ",
        ] {
            assert_eq!(
                keys.authenticate(Some(value)).map(|p| p.app.as_str()),
                Ok("billing"),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
        assert_eq!(
            keys.authenticate(Some(b"Bearerk1")),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn a_bad_key_file_names_the_line() {
        assert!(ApiKeys::parse("k1 billing admin")
            .unwrap_err()
            .contains("line 1"));
        assert!(ApiKeys::parse("\nk1 billing")
            .unwrap_err()
            .contains("line 2"));
        assert!(ApiKeys::parse("k1 a ingest\nk1 b ingest")
            .unwrap_err()
            .contains("duplicate"));
        assert!(ApiKeys::parse("# nothing").is_err());
    }
}
