//! The whole HTTP surface: the embedded UI, the API, and the layers every
//! response goes through (auth, security headers).

use axum::middleware;
use axum::Router;

use crate::api::{self, AppState};
use crate::assets;
use crate::error::ApiError;
use crate::security::{require_token, security_headers};

/// Where the UI trades the token for a cookie (the one `/api/` path open
/// without it).
pub const LOGIN_PATH: &str = "/api/login";

/// The complete router: UI files, API, auth, security headers.
pub fn router(state: AppState) -> Router {
    let auth = state.auth.clone();
    Router::new()
        .merge(assets::router())
        .merge(api::router(state))
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn_with_state(auth, require_token))
        // Outermost, so 401s and 404s carry the headers too.
        .layer(middleware::from_fn(security_headers))
}
