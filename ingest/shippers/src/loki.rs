//! Loki push: `POST /loki/api/v1/push` (work in progress: the decoder is being written).

use crate::{Answer, Failure, LineReject, Request, Settings, Translation, TypeRule};

/// The default `type` rule.
pub fn default_type_rule() -> TypeRule {
    TypeRule::parse("$labels.job|$labels.service_name|loki").expect("the default rule parses")
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
