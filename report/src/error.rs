//! [`ApiError`]: every refusal the API gives, as one JSON shape
//! `{"error": "...", "detail": "...", "position": N?}` (the collector's shape,
//! plus the filter's error position where there is one).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use helios_store::query::QueryError;
use serde_json::json;

/// An API failure, mapped to a status code and a JSON body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is missing or malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The filter (text language or MongoDB JSON) does not parse or is not
    /// allowed (400); `position` is the character offset of the problem in
    /// the filter text, when known.
    #[error("{detail}")]
    BadFilter {
        /// What is wrong, for a person.
        detail: String,
        /// Character offset into the filter text (text language, JSON
        /// syntax errors).
        position: Option<usize>,
        /// Where in a raw MongoDB filter (`$and[1].plan.$regex`).
        location: Option<String>,
    },
    /// No token, or the wrong one (401).
    #[error("a valid token is required")]
    Unauthorized,
    /// The request may not be served at all (403), e.g. its `Host` names
    /// a server this is not (DNS rebinding).
    #[error("{0}")]
    Forbidden(String),
    /// No such event (404).
    #[error("no such event")]
    NotFound,
    /// No such path: neither a page of the UI nor an API endpoint (404).
    #[error("no such page or API endpoint")]
    NoSuchPath,
    /// The path exists but not for this method (405); the router adds the
    /// `Allow` header.
    #[error("this path does not take that method; the Allow header lists those it takes")]
    MethodNotAllowed,
    /// A limit on concurrent work was reached (503, try again later).
    #[error("{0}")]
    Busy(String),
    /// The store is not there yet (503): e.g. the collector has not created
    /// the SQLite file.
    #[error("{0}")]
    NotReady(String),
    /// This store cannot do that (501), e.g. a live tail where the back
    /// end cannot follow insertion order.
    #[error("{0}")]
    NotSupported(String),
    /// The store failed (500). The detail is logged, not sent: it may name
    /// paths or hosts.
    #[error("store error: {0}")]
    Store(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad request"),
            ApiError::BadFilter { .. } => (StatusCode::BAD_REQUEST, "bad filter"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound | ApiError::NoSuchPath => (StatusCode::NOT_FOUND, "not found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "no store yet"),
            ApiError::NotSupported(_) => (StatusCode::NOT_IMPLEMENTED, "not supported"),
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = self.parts();
        let body = match &self {
            ApiError::BadFilter {
                detail,
                position,
                location,
            } => {
                json!({ "error": error, "detail": detail, "position": position, "location": location })
            }
            ApiError::Store(detail) => {
                tracing::error!(error = %detail, "query failed");
                json!({ "error": error, "detail": "the store could not answer; see the server log" })
            }
            other => json!({ "error": error, "detail": other.to_string() }),
        };
        (status, Json(body)).into_response()
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::Invalid(detail) => ApiError::BadRequest(detail),
            QueryError::Unsupported(detail) | QueryError::TooManyGroups(detail) => {
                ApiError::NotSupported(detail)
            }
            QueryError::Timeout { .. } | QueryError::Cancelled => ApiError::Busy(error.to_string()),
            other => ApiError::Store(other.to_string()),
        }
    }
}
