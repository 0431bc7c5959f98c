//! Local-only routes: the dev clock, the WhatsApp sandbox's contact controls, and (with the
//! sandbox) client tokens for the web console.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use shared::adapters::embedded::{DevClock, DevClockError};
use shared::adapters::sandbox::{ContactAction, Sample, SandboxWhatsApp};
use shared::app::Embedded;
use shared::domain::Phone;
use shared::http::{issue_token, ApiError, AppJson, AppState, Claims};
use shared::usecases::{Caller, ROLES};

pub async fn method_not_allowed() -> (axum::http::StatusCode, Json<Value>) {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({"error": {"code": "method_not_allowed", "message": "this route does not take that method"}})),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    advance_secs: i64,
}

pub fn clock_router(state: AppState, embedded: Embedded, clock: Arc<DevClock>) -> Router {
    Router::new().route(
        "/dev/clock",
        post(move |AppJson(a): AppJson<Advance>| {
            let (state, embedded, clock) = (state.clone(), embedded.clone(), clock.clone());
            async move {
                if a.advance_secs < 0 {
                    return Err(ApiError::InvalidRequest("advance_secs must be 0 or more".into()));
                }
                let now = clock.advance(a.advance_secs).await.map_err(|e| match e {
                    DevClockError::TooFar => ApiError::InvalidRequest(e.to_string()),
                    DevClockError::Db(e) => ApiError::Internal(Box::new(e)),
                })?;
                crate::workers::run_due_timers(&state.ports, &embedded).await;
                let now = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                Ok(Json(json!({ "now": now })))
            }
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Act {
    text: Option<String>,
    /// `accept`, `reject`, `resume`, or a payload prefix such as `OPT_IN_YES`.
    tap: Option<String>,
    #[serde(default)]
    read: bool,
    /// Sends a small built-in picture, with this caption (may be empty).
    image: Option<String>,
    /// Sends a built-in sample: `document`, `voice`, `video`, `sticker`, `location`, `contact`
    /// or `poll` (a kind WhatsApp's API does not deliver).
    sample: Option<Sample>,
    /// A text quoting the latest message the business sent.
    reply: Option<String>,
    name: Option<String>,
}

/// A 1×1 PNG: what the sandbox contact sends as a picture.
const SANDBOX_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0, 0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D,
    0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

fn digits(phone: &str) -> Result<String, ApiError> {
    let p = if phone.starts_with('+') { Phone::parse(phone) } else { Phone::from_wa_id(phone) };
    p.map(|p| p.digits().to_string()).map_err(ApiError::InvalidRequest)
}

pub fn sandbox_router(sandbox: Arc<SandboxWhatsApp>) -> Router {
    Router::new()
        .route("/sandbox/contacts/{phone}/messages", get(inbox).post(act))
        .route("/sandbox/events", get(watch))
        .route("/sandbox/media/{id}", get(media))
        .with_state(sandbox)
}

/// Server-Sent Events: `phone` with `{"phone": "+<digits>"}` each time a contact's phone
/// changes (a message received or sent), so the console's phone panel needs no polling.
async fn watch(
    State(sandbox): State<Arc<SandboxWhatsApp>>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let stream = futures_util::stream::unfold(sandbox.watch(), |mut rx| async move {
        use tokio::sync::broadcast::error::RecvError;
        let phone = match rx.recv().await {
            Ok(digits) => format!("+{digits}"),
            // Fell behind: "every phone changed" makes the watcher read again.
            Err(RecvError::Lagged(_)) => "*".to_string(),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(Event::default().event("phone").data(json!({ "phone": phone }).to_string())), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)).text("ping"))
}

/// A picture on a contact's phone (one the connector uploaded or the contact sent).
async fn media(State(sandbox): State<Arc<SandboxWhatsApp>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let (bytes, mime) = sandbox.media(&id).ok_or(ApiError::NotFound)?;
    Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
}

/// A local client's claims: the sandbox's defaults (retail, eu, en) where one is not given,
/// valid for 30 days.
pub fn local_claims(
    sub: String,
    name: Option<String>,
    locale: Option<String>,
    sub_org: Option<String>,
    region: Option<String>,
    roles: Vec<String>,
) -> Claims {
    let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    Claims {
        name: Some(given(name).unwrap_or_else(|| sub.clone())),
        sub_org: Some(given(sub_org).unwrap_or_else(|| "retail".into())),
        region: Some(given(region).unwrap_or_else(|| "eu".into())),
        locale: Some(given(locale).unwrap_or_else(|| "en".into())),
        roles,
        exp: time::OffsetDateTime::now_utc().unix_timestamp() + 30 * 24 * 3600,
        sub,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mint {
    sub: String,
    name: Option<String>,
    locale: Option<String>,
    sub_org: Option<String>,
    region: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// `POST /dev/token`: a client token signed with `AUTH_JWT_SECRET`, as `connector-local token`
/// prints. Mounted only with the sandbox, where every secret is a local one.
pub fn token_router(state: AppState) -> Router {
    Router::new().route(
        "/dev/token",
        post(move |AppJson(m): AppJson<Mint>| {
            let state = state.clone();
            async move {
                let sub = m.sub.trim().to_string();
                if sub.len() > 64 {
                    return Err(ApiError::InvalidRequest("sub must be 64 characters at most".into()));
                }
                if let Some(r) = m.roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
                    return Err(ApiError::InvalidRequest(format!("unknown role {r:?}: one of {ROLES:?}")));
                }
                let claims = local_claims(sub, m.name, m.locale, m.sub_org, m.region, m.roles);
                // The same check every request's caller passes: no empty or reserved sub.
                Caller::from(claims.clone())
                    .checked()
                    .and_then(Caller::scoped)
                    .map_err(|e| ApiError::InvalidRequest(e.into()))?;
                Ok(Json(json!({ "token": issue_token(&state.config.jwt_secret, &claims), "claims": claims })))
            }
        }),
    )
}

async fn inbox(
    State(sandbox): State<Arc<SandboxWhatsApp>>,
    Path(phone): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "messages": sandbox.inbox(&digits(&phone)?) })))
}

async fn act(
    State(sandbox): State<Arc<SandboxWhatsApp>>,
    Path(phone): Path<String>,
    AppJson(a): AppJson<Act>,
) -> Result<Json<Value>, ApiError> {
    let given = [a.text.is_some(), a.tap.is_some(), a.read, a.image.is_some(), a.sample.is_some(), a.reply.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ApiError::InvalidRequest("give one of text, reply, tap, read, image or sample".into()));
    }
    let action = match (a.text, a.tap, a.image, a.sample, a.reply) {
        (_, _, Some(caption), _, _) => {
            ContactAction::Image { bytes: SANDBOX_PNG.to_vec(), caption: Some(caption).filter(|c| !c.is_empty()) }
        }
        (Some(t), ..) => ContactAction::Text(t),
        (_, _, _, Some(sample), _) => ContactAction::Sample(sample),
        (_, _, _, _, Some(reply)) => ContactAction::Reply(reply),
        (_, Some(tap), ..) => ContactAction::Tap(
            match tap.as_str() {
                "accept" | "yes" => "OPT_IN_YES",
                "reject" | "no" => "OPT_IN_NO",
                "resume" => "RESUME",
                other => other,
            }
            .to_string(),
        ),
        _ => ContactAction::Read,
    };
    let name = a.name.unwrap_or_else(|| "Sandbox contact".into());
    let posted =
        sandbox.act(&digits(&phone)?, &name, action).await.map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    Ok(Json(json!({ "posted": posted })))
}
