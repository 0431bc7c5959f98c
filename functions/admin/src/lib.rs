//! Admin and compliance routes: a thread's compliance archive as JSON Lines (`record-use` is
//! the chain of the record's own uses), its hash-chain verification, a contact's consent
//! history, the search over every thread's record, e-discovery exports and legal holds.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use shared::domain::{ConversationId, Phone};
use shared::export::ExportJob;
use shared::http::{admit, ApiError, AppJson, AppState, Identity};
use shared::usecases::{archive, export, holds};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/admin/conversations/{id}/archive", get(archive_route))
        .route("/admin/contacts/{phone}/consent", get(consent_route))
        .route("/admin/search", get(search_route))
        .route("/admin/exports", post(start_export))
        .route("/admin/exports/{id}", get(export_status))
        .route("/admin/exports/{id}/download", get(export_download))
        .route("/admin/legal-holds", post(place_hold).get(list_holds))
        .route("/admin/legal-holds/{id}", axum::routing::delete(release_hold))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), admit))
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveQuery {
    #[serde(default)]
    verify: bool,
}

async fn archive_route(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<ConversationId>,
    query: Result<Query<ArchiveQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    if q.verify {
        return Ok(Json(archive::verify_chain(&state.ports, &caller, &id).await?).into_response());
    }
    let records = archive::export(&state.ports, &caller, &id).await?;
    let mut body = String::new();
    for r in records {
        body.push_str(&serde_json::to_string(&r).map_err(|e| ApiError::Internal(Box::new(e)))?);
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// `{phone}`: E.164 (`+` percent-encoded or not) or Meta's digits.
async fn consent_route(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(phone): Path<String>,
) -> Result<Json<archive::ConsentHistory>, ApiError> {
    let phone = if phone.starts_with('+') { Phone::parse(&phone) } else { Phone::from_wa_id(&phone) };
    let phone = phone.map_err(ApiError::InvalidRequest)?;
    Ok(Json(archive::consent_history(&state.ports, &caller, phone.digits()).await?))
}

async fn search_route(
    State(state): State<AppState>,
    Identity(caller): Identity,
    query: Result<Query<shared::domain::search::Ask>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<shared::domain::search::Page>, ApiError> {
    let Query(ask) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    Ok(Json(shared::usecases::search::search_record(&state.ports, &caller, &ask).await?))
}

async fn start_export(
    State(state): State<AppState>,
    Identity(caller): Identity,
    AppJson(ask): AppJson<shared::domain::search::ExportAsk>,
) -> Result<(axum::http::StatusCode, Json<serde_json::Value>), ApiError> {
    let job = export::start(&state.ports, &caller, &ask).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(serde_json::json!({ "id": job.id, "status": job.status }))))
}

async fn export_status(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<String>,
) -> Result<Json<ExportJob>, ApiError> {
    Ok(Json(export::status(&state.ports, &caller, &id).await?))
}

async fn export_download(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(match export::download(&state.ports, &caller, &id).await? {
        export::Download::Bytes(body) => {
            let name = format!("attachment; filename=\"export-{id}.zip\"");
            let headers = [(header::CONTENT_TYPE, "application/zip".to_string()), (header::CONTENT_DISPOSITION, name)];
            (headers, axum::body::Body::from_stream(body)).into_response()
        }
        // The link is the caller's alone and short-lived: never cached on the way.
        export::Download::Url(url) => (
            axum::http::StatusCode::SEE_OTHER,
            [(header::LOCATION, url), (header::CACHE_CONTROL, "no-store".to_string())],
        )
            .into_response(),
    })
}

async fn place_hold(
    State(state): State<AppState>,
    Identity(caller): Identity,
    AppJson(ask): AppJson<holds::HoldAsk>,
) -> Result<(axum::http::StatusCode, Json<shared::ports::LegalHold>), ApiError> {
    Ok((axum::http::StatusCode::CREATED, Json(holds::place(&state.ports, &caller, &ask).await?)))
}

async fn list_holds(
    State(state): State<AppState>,
    Identity(caller): Identity,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(serde_json::json!({ "holds": holds::list(&state.ports, &caller).await? })))
}

async fn release_hold(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<String>,
) -> Result<Json<shared::ports::LegalHold>, ApiError> {
    Ok(Json(holds::release(&state.ports, &caller, &id).await?))
}
