//! The HTTP edge shared by every function's router: the state, the one error type and its JSON,
//! the caller's identity, and a JSON body extractor that answers in the contract's terms.

mod auth;
mod error;
mod json;

pub use auth::{admit, issue_token, Claims, Identity, JwksVerifier, JwtVerifier};
pub use error::ApiError;
pub use json::AppJson;

use std::sync::Arc;

use crate::config::Config;
use crate::usecases::Ports;

/// Largest JSON body a client route takes.
pub const MAX_JSON_BODY: usize = 1024 * 1024;
/// Largest webhook delivery Meta sends.
pub const MAX_WEBHOOK_BODY: usize = 3 * 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub ports: Ports,
    pub config: Arc<Config>,
    pub auth: Arc<JwtVerifier>,
}

impl AppState {
    pub fn new(ports: Ports, config: Config) -> AppState {
        AppState {
            ports,
            auth: Arc::new(match config.aws {
                Some(_) => JwtVerifier::authorizer_only(),
                None => JwtVerifier::hs256_for(&config.jwt_secret, config.jwt_issuer.as_deref(), &config.jwt_audience),
            }),
            config: Arc::new(config),
        }
    }
}

/// A request's body as it arrives, for a route that streams it (a large upload).
pub fn byte_stream(body: axum::body::Body) -> crate::ports::ByteStream {
    use futures_util::TryStreamExt;
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// `404` in the contract's JSON, for routes that do not exist.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// The longest path segment, in bytes as sent (an id: ULIDs, user ids of at most 128
/// characters, phone numbers), and query string a request may carry. Longer ones are refused
/// before any handler runs, so no store is asked for a key it cannot hold (DynamoDB answers
/// those with a 500).
pub const MAX_PATH_SEGMENT: usize = 256;
pub const MAX_QUERY: usize = 2048;

/// Middleware: `422 invalid_request` for a path segment or a query string over the bounds.
pub async fn bounded_input(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri();
    if uri.path().split('/').any(|s| s.len() > MAX_PATH_SEGMENT) || uri.query().is_some_and(|q| q.len() > MAX_QUERY) {
        return ApiError::InvalidRequest(format!(
            "a path segment is longer than {MAX_PATH_SEGMENT} bytes or the query longer than {MAX_QUERY}"
        ))
        .into_response();
    }
    next.run(req).await
}
