//! Group and directory routes: add, remove, leave, transfer; the directory search and the
//! admins' upsert.

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use shared::domain::{ConversationId, UserId};
use shared::http::{admit, ApiError, AppJson, AppState, Identity, MAX_JSON_BODY};
use shared::ports::DirectoryUser;
use shared::usecases::directory::{self, Upsert};
use shared::usecases::participants;
use shared::usecases::views::ConversationView;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/conversations/{id}/participants", post(add))
        .route("/conversations/{id}/participants/{user_id}", delete(remove))
        .route("/conversations/{id}/leave", post(leave))
        .route("/conversations/{id}/transfer", post(transfer))
        .route("/directory/users", get(search))
        .route("/directory/users/{id}", put(upsert))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), admit))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    user_id: UserId,
    #[serde(default)]
    share_history: bool,
}

async fn add(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<ConversationId>,
    AppJson(body): AppJson<AddBody>,
) -> Result<Json<ConversationView>, ApiError> {
    Ok(Json(participants::add(&state.ports, &caller, &id, &body.user_id, body.share_history).await?.view))
}

async fn remove(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path((id, user_id)): Path<(ConversationId, UserId)>,
) -> Result<Json<ConversationView>, ApiError> {
    Ok(Json(participants::remove(&state.ports, &caller, &id, &user_id).await?.view))
}

#[derive(Serialize)]
struct Left {
    id: ConversationId,
    status: shared::domain::ConversationStatus,
}

async fn leave(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<ConversationId>,
) -> Result<Json<Left>, ApiError> {
    let changed = participants::leave(&state.ports, &caller, &id).await?;
    Ok(Json(Left { id: changed.view.id, status: changed.view.status }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to_user_id: UserId,
    #[serde(default)]
    share_history: bool,
}

async fn transfer(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<ConversationId>,
    AppJson(body): AppJson<TransferBody>,
) -> Result<Json<Left>, ApiError> {
    let changed = participants::transfer(&state.ports, &caller, &id, &body.to_user_id, body.share_history).await?;
    Ok(Json(Left { id: changed.view.id, status: changed.view.status }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    conversation_id: Option<ConversationId>,
}

#[derive(Serialize)]
struct Users {
    users: Vec<DirectoryUser>,
}

async fn search(
    State(state): State<AppState>,
    Identity(caller): Identity,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Users>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let users = directory::search(&state.ports, &caller, &q.q, q.conversation_id.as_ref()).await?;
    Ok(Json(Users { users }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertBody {
    name: String,
    sub_org: String,
    region: String,
    locale: String,
    whatsapp_enabled: bool,
}

async fn upsert(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<UserId>,
    AppJson(b): AppJson<UpsertBody>,
) -> Result<Json<DirectoryUser>, ApiError> {
    for (field, v) in [("name", &b.name), ("sub_org", &b.sub_org), ("region", &b.region), ("locale", &b.locale)] {
        if v.trim().is_empty() || v.chars().count() > 256 {
            return Err(ApiError::InvalidRequest(format!("{field} must be 1 to 256 characters")));
        }
    }
    if id.as_str().is_empty() || id.as_str().len() > 256 {
        return Err(ApiError::InvalidRequest("user id must be 1 to 256 characters".into()));
    }
    let upsert = Upsert {
        name: b.name.trim().to_string(),
        sub_org: b.sub_org,
        region: b.region,
        locale: b.locale,
        whatsapp_enabled: b.whatsapp_enabled,
    };
    Ok(Json(directory::upsert(&state.ports, &caller, &id, upsert).await?))
}
