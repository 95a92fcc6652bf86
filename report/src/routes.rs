//! The whole HTTP surface: the embedded UI, the API, and the layers every
//! request and response goes through (security headers, `Host` check,
//! auth).

use axum::middleware;
use axum::Router;

use crate::api::{self, AppState};
use crate::assets;
use crate::error::ApiError;
use crate::security::{require_known_host, require_token, security_headers};

/// Where the UI trades the token for a cookie (the one `/api/` path open
/// without it).
pub const LOGIN_PATH: &str = "/api/login";

/// The complete router: UI files, API, auth, the `Host` check, security
/// headers.
pub fn router(state: AppState) -> Router {
    let auth = state.auth.clone();
    let hosts = state.hosts.clone();
    Router::new()
        .merge(assets::router())
        .merge(api::router(state))
        .fallback(|| async { ApiError::NoSuchPath })
        // After the merges (it applies to the routes present): the JSON
        // error shape; axum still adds the route's `Allow` header.
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(auth, require_token))
        // Before the token check and the routes: a request that names
        // another server (DNS rebinding) gets nothing, not even a 401.
        .layer(middleware::from_fn_with_state(hosts, require_known_host))
        // Outermost, so 403s, 401s and 404s carry the headers too.
        .layer(middleware::from_fn(security_headers))
}
