//! Elasticsearch bulk (work in progress: the decoder is being written).

use crate::{Answer, Failure, LineReject, Request, Settings, Translation, TypeRule};

/// The default `type` rule.
pub fn default_type_rule() -> TypeRule {
    TypeRule::parse("$index|elasticsearch").expect("the default rule parses")
}

/// Translates a request body (see [`crate::decode`]).
pub fn decode(
    _req: &Request<'_>,
    _body: &[u8],
    _settings: &Settings,
    _out: &mut Translation,
) -> Result<(), Failure> {
    Err(Failure::Internal("not implemented yet".into()))
}

/// The answer to a journaled request (see [`crate::render_success`]).
pub fn render_success(
    _req: &Request<'_>,
    _translation: &Translation,
    _rejected: &[LineReject<'_>],
    _took_ms: u64,
    out: &mut Vec<u8>,
) -> Answer {
    out.extend_from_slice(b"{}");
    Answer {
        status: 200,
        content_type: "application/json",
        headers: "",
        retry_after: false,
    }
}

/// The answer to a refused request (see [`crate::render_failure`]).
pub fn render_failure(_req: &Request<'_>, failure: &Failure, out: &mut Vec<u8>) -> Answer {
    crate::json_string(out, &failure.to_string());
    Answer {
        status: 500,
        content_type: "application/json",
        headers: "",
        retry_after: false,
    }
}

/// The index a bulk path names: `Some("")` for `/_bulk`, `Some(index)` for
/// `/{index}/_bulk`, `None` for any other path.
pub fn path_index(path: &str) -> Option<&str> {
    let rest = path.strip_suffix("/_bulk")?;
    if rest.is_empty() {
        return Some("");
    }
    let index = rest.strip_prefix('/')?;
    (!index.is_empty() && !index.contains('/')).then_some(index)
}

/// `GET /`: the version document.
pub fn render_info(out: &mut Vec<u8>) -> Answer {
    out.extend_from_slice(b"{}");
    Answer {
        status: 200,
        content_type: "application/json",
        headers: "",
        retry_after: false,
    }
}
