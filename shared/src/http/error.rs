//! `ApiError`: every error a client can see, mapped to its status and JSON in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::DomainError;
use crate::error::Report;
use crate::usecases::UseCaseError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("missing or invalid token")]
    Unauthorized,
    /// A valid token that does not name a caller the connector can serve.
    #[error("{0}")]
    Unidentified(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("the contact opted out of WhatsApp messages")]
    OptedOut,
    #[error("the conversation is closed")]
    ConversationClosed,
    #[error("the contact has already opted in")]
    AlreadyOptedIn,
    #[error("the conversation already has the most participants allowed (10)")]
    ThreadFull,
    #[error("someone else claimed this conversation")]
    AlreadyClaimed,
    #[error("{0}")]
    NotAddable(String),
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("blocked by data-loss prevention rules: {}", .0.join(", "))]
    DlpBlocked(Vec<String>),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the opt-in request can be resent 24 hours after the last one")]
    OptinTooSoon,
    #[error("too many held messages in this conversation (limit {0})")]
    QueueFull(u32),
    #[error("the message may already have left for WhatsApp; it can no longer be recalled")]
    AlreadySent,
    #[error("{0}")]
    InvalidTemplate(String),
    #[error("the service is busy; try again")]
    Busy,
    #[error("the archive has not caught up with the changes committed before this read; try again")]
    ArchiveBehind,
    #[error("{0}")]
    Upstream(String),
    /// Logged with its cause; the client reads a generic message.
    #[error("internal error")]
    Internal(#[source] crate::error::Cause),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::Unauthorized | ApiError::Unidentified(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::OptedOut => (StatusCode::CONFLICT, "opted_out"),
            ApiError::ConversationClosed => (StatusCode::CONFLICT, "conversation_closed"),
            ApiError::AlreadyOptedIn => (StatusCode::CONFLICT, "already_opted_in"),
            ApiError::ThreadFull => (StatusCode::CONFLICT, "thread_full"),
            ApiError::AlreadyClaimed => (StatusCode::CONFLICT, "already_claimed"),
            ApiError::NotAddable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "not_addable"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::InvalidRequest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            ApiError::DlpBlocked(_) => (StatusCode::UNPROCESSABLE_ENTITY, "dlp_blocked"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::OptinTooSoon => (StatusCode::TOO_MANY_REQUESTS, "optin_too_soon"),
            ApiError::QueueFull(_) => (StatusCode::TOO_MANY_REQUESTS, "queue_full"),
            ApiError::AlreadySent => (StatusCode::CONFLICT, "already_sent"),
            ApiError::InvalidTemplate(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_template"),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::ArchiveBehind => (StatusCode::SERVICE_UNAVAILABLE, "archive_behind"),
            ApiError::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(_) = &self {
            tracing::error!(error.message = %Report(&self), "request failed");
        }
        (status, axum::Json(json!({ "error": { "code": code, "message": self.to_string() } }))).into_response()
    }
}

impl From<UseCaseError> for ApiError {
    fn from(e: UseCaseError) -> ApiError {
        match e {
            UseCaseError::Domain(d) => match d {
                DomainError::OptedOut => ApiError::OptedOut,
                DomainError::ConversationClosed => ApiError::ConversationClosed,
                DomainError::OptinTooSoon => ApiError::OptinTooSoon,
                DomainError::AlreadyOptedIn => ApiError::AlreadyOptedIn,
                DomainError::QueueFull(n) => ApiError::QueueFull(n),
                DomainError::ThreadFull => ApiError::ThreadFull,
                DomainError::AlreadyClaimed => ApiError::AlreadyClaimed,
                DomainError::NotAddable(m) => ApiError::NotAddable(m),
                DomainError::DlpBlocked(rules) => ApiError::DlpBlocked(rules),
                DomainError::TooLarge(n) => ApiError::TooLarge(n),
                DomainError::UnsupportedMedia(m) => ApiError::UnsupportedMediaType(m),
                DomainError::Invalid(m) => ApiError::InvalidRequest(m),
                DomainError::AlreadySent => ApiError::AlreadySent,
                DomainError::InvalidTemplate(m) => ApiError::InvalidTemplate(m),
            },
            UseCaseError::NotFound => ApiError::NotFound,
            UseCaseError::Upstream(m) => ApiError::Upstream(format!("WhatsApp is unavailable: {m}")),
            UseCaseError::Forbidden(role) => ApiError::Forbidden(role),
            UseCaseError::Unidentified(why) => ApiError::Unidentified(why),
            UseCaseError::ArchiveBehind => ApiError::ArchiveBehind,
            // Nothing was written, or what was is unknown: the client may try again (with its
            // `client_id`, a repeat is the same message).
            UseCaseError::Contention
            | UseCaseError::Store(crate::ports::StoreError::Busy | crate::ports::StoreError::Unknown(_)) => {
                ApiError::Busy
            }
            other => ApiError::Internal(Box::new(other)),
        }
    }
}
