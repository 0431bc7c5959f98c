//! The conversation routes: start a thread (sending the opt-in request), list and read threads,
//! resend the opt-in request, claim a contact-started thread, mark a thread read.

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use shared::domain::{ConversationId, MessageId, Phone};
use shared::http::{admit, ApiError, AppJson, AppState, Identity, MAX_JSON_BODY};
use shared::usecases::conversations::{self, ListFilter, StartConversation};
use shared::usecases::views::ConversationView;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/conversations", post(start).get(list))
        .route("/conversations/{id}", get(get_one))
        .route("/conversations/{id}/optin", post(resend))
        .route("/conversations/{id}/claim", post(claim))
        .route("/conversations/{id}/read", post(read))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), admit))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    contact: ContactBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactBody {
    phone: String,
    name: Option<String>,
}

async fn start(
    State(state): State<AppState>,
    Identity(caller): Identity,
    AppJson(body): AppJson<StartBody>,
) -> Result<(StatusCode, Json<ConversationView>), ApiError> {
    let phone = Phone::parse(&body.contact.phone).map_err(ApiError::InvalidRequest)?;
    let name = body.contact.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 256) {
        return Err(ApiError::InvalidRequest("contact name is longer than 256 characters".into()));
    }
    let view = conversations::start(&state.ports, &caller, StartConversation { phone, name }).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(serde::Serialize)]
struct ConversationList {
    conversations: Vec<ConversationView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<ConversationId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    contact: Option<String>,
    cursor: Option<ConversationId>,
    limit: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    Identity(caller): Identity,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConversationList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let mut filter = match q.status.as_deref() {
        None => ListFilter::default(),
        Some("unassigned") => ListFilter { unassigned: true, ..ListFilter::default() },
        Some(other) => {
            return Err(ApiError::InvalidRequest(format!("status {other:?} cannot be listed; try unassigned")))
        }
    };
    if let Some(phone) = q.contact {
        filter.contact = Some(Phone::parse(&phone).map_err(ApiError::InvalidRequest)?.digits().to_string());
    }
    (filter.cursor, filter.limit) = (q.cursor, q.limit);
    let page = conversations::list(&state.ports, &caller, filter).await?;
    Ok(Json(ConversationList { conversations: page.conversations, next_cursor: page.next_cursor }))
}

async fn claim(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<ConversationId>,
) -> Result<Json<ConversationView>, ApiError> {
    Ok(Json(conversations::claim(&state.ports, &caller, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    up_to: MessageId,
}

async fn read(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<ConversationId>,
    AppJson(body): AppJson<ReadBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let unread = shared::usecases::read_state::mark_read(&state.ports, &caller, &id, &body.up_to).await?;
    Ok(Json(serde_json::json!({ "unread_count": unread })))
}

async fn get_one(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<ConversationId>,
) -> Result<Json<ConversationView>, ApiError> {
    Ok(Json(conversations::get(&state.ports, &caller, &id).await?))
}

async fn resend(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<ConversationId>,
) -> Result<(StatusCode, Json<ConversationView>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(conversations::resend_optin(&state.ports, &caller, &id).await?)))
}
