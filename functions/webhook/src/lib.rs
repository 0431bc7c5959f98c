//! `GET/POST /webhook`: Meta's verification handshake and signed deliveries. Inbound messages
//! and statuses are applied before the 200; a status that overtook the record of its send goes
//! to the receipts queue, which tries it again shortly.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use shared::error::Report;
use shared::http::{ApiError, AppState, MAX_WEBHOOK_BODY};
use shared::meta::signature;
use shared::meta::webhook::{self, WebhookEvent};
use shared::ports::ReceiptsJob;
use shared::usecases::{inbound, receipts, Ports, UseCaseError};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhook", get(verify).post(receive))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY))
        .with_state(state)
}

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn verify(
    State(state): State<AppState>,
    query: Result<Query<Handshake>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(h)) = query else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let token_ok = h.verify_token.as_deref().is_some_and(|t| {
        !state.config.verify_token.is_empty() && signature::same_secret(t, &state.config.verify_token)
    });
    match (h.mode.as_deref(), token_ok, h.challenge) {
        (Some("subscribe"), true, Some(challenge)) => {
            ([(axum::http::header::CONTENT_TYPE, "text/plain")], challenge).into_response()
        }
        _ => StatusCode::FORBIDDEN.into_response(),
    }
}

async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let started = std::time::Instant::now();
    let body = body.map_err(|_| ApiError::TooLarge(MAX_WEBHOOK_BODY))?;
    let sig = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    if !signature::verify(state.config.app_secret.as_bytes(), &body, sig) {
        tracing::warn!("webhook refused: bad or missing signature");
        return Err(ApiError::Unauthorized);
    }
    let events = webhook::parse(&body, &state.config.phone_number_id).map_err(|e| {
        tracing::warn!(error.message = %Report(&e), "signed webhook is not a WhatsApp delivery");
        ApiError::InvalidJson(e.to_string())
    })?;
    for event in events {
        apply_event(&state.ports, event).await.map_err(ApiError::from)?;
    }
    shared::metrics::record_millis("WebhookLatency", started.elapsed().as_secs_f64() * 1000.0);
    Ok(StatusCode::OK)
}

/// One event of a delivery. An error here answers 5xx so that Meta delivers again; everything
/// already applied is deduplicated on that redelivery.
pub async fn apply_event(ports: &Ports, event: WebhookEvent) -> Result<(), UseCaseError> {
    match event {
        WebhookEvent::Inbound(m) => {
            inbound::apply_inbound(ports, &m).await?;
        }
        WebhookEvent::Status(s) => {
            if receipts::apply_status(ports, &s).await? == receipts::ReceiptResult::UnknownWamid {
                ports.queue.send_receipt(ReceiptsJob::Status(s)).await?
            }
        }
        WebhookEvent::MarketingPreference { wa_id, stop, .. } => {
            receipts::marketing_preference(ports, &wa_id, stop).await?
        }
        WebhookEvent::AccountError { code, title } => {
            tracing::warn!(code, title, "WhatsApp reported an account error")
        }
        WebhookEvent::Ignored { what } => tracing::info!(what, "webhook item ignored"),
    }
    Ok(())
}
