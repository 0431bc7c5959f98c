//! `AppJson<T>`: reads the body (size-limited by the router), then parses it; syntax errors are
//! `400 invalid_json`, wrong types and unknown fields `422 invalid_request`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::ApiError;

pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e.status() {
            axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(super::MAX_JSON_BODY),
            _ => ApiError::InvalidJson(e.body_text()),
        })?;
        parse(&bytes).map(AppJson)
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidRequest(e.to_string()),
        _ => ApiError::InvalidJson(e.to_string()),
    })
}
