//! `POST /conversations/{id}/messages` (compose, hold or queue),
//! `GET /conversations/{id}/messages` (history the caller may see),
//! `DELETE /conversations/{id}/messages/{message_id}` (recall), `GET /templates`,
//! `GET /search` (the caller's threads, by words, contact and period), and files:
//! `POST /media`, `GET /media/{id}`, and uploads in three steps (`POST /media/uploads`, the
//! bytes to where it says, `POST /media/uploads/{id}/complete`) for files too large to pass
//! API Gateway and Lambda's 6 MB payloads once encoded.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use shared::domain::media::MAX_IMAGE_BYTES;
use shared::domain::message::{FileKind, Location, TemplateSpec};
use shared::domain::{ConversationId, MessageId};
use shared::http::{admit, ApiError, AppJson, AppState, Identity, MAX_JSON_BODY};
use shared::usecases::media;
use shared::usecases::send::{self, Content, SendCommand};
use shared::usecases::views::{self, MessageView};

pub fn router(state: AppState) -> Router {
    let messages = Router::new()
        .route("/conversations/{id}/messages", post(send_message).get(history))
        .route("/conversations/{id}/messages/{message_id}", delete(recall))
        .route("/templates", get(templates))
        .route("/search", get(search))
        .route("/media/uploads", post(start_upload))
        .route("/media/uploads/{id}/complete", post(finish_upload))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY));
    let media = Router::new()
        .route("/media", post(upload))
        .route("/media/{id}", get(download))
        // One byte over the limit is enough to tell "too large".
        .layer(DefaultBodyLimit::max(MAX_IMAGE_BYTES + 1));
    // Where the store signs no URL (the local runner), the API takes an upload's bytes itself,
    // streamed: the store stops at the announced kind's limit.
    let uploads = Router::new().route("/media/uploads/{id}", put(put_upload));
    messages
        .merge(media)
        .merge(uploads)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), admit))
        .with_state(state)
}

async fn recall(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path((id, message_id)): Path<(ConversationId, MessageId)>,
) -> Result<Json<MessageView>, ApiError> {
    Ok(Json(send::recall(&state.ports, &caller, &id, &message_id).await?))
}

async fn search(
    State(state): State<AppState>,
    Identity(caller): Identity,
    query: Result<Query<shared::domain::search::Ask>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<shared::domain::search::Page>, ApiError> {
    let Query(ask) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    Ok(Json(shared::usecases::search::search_mine(&state.ports, &caller, &ask).await?))
}

async fn templates(State(state): State<AppState>, Identity(_): Identity) -> Result<Json<serde_json::Value>, ApiError> {
    let list = shared::usecases::templates::list(&state.ports).await?;
    Ok(Json(json!({ "templates": list })))
}

async fn upload(
    State(state): State<AppState>,
    Identity(caller): Identity,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = body.map_err(|_| ApiError::TooLarge(MAX_IMAGE_BYTES))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let m = media::upload(&state.ports, &caller, body.to_vec(), content_type).await?;
    Ok((StatusCode::CREATED, Json(json!({"media_id": m.id, "mime_type": m.mime_type, "size": m.size}))))
}

async fn download(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(match media::get(&state.ports, &caller, &id).await? {
        media::Picture::Bytes(body, mime, size) => {
            let headers = [(header::CONTENT_TYPE, mime), (header::CONTENT_LENGTH, size.to_string())];
            (headers, axum::body::Body::from_stream(body)).into_response()
        }
        // The link is the caller's alone and short-lived: never cached on the way.
        media::Picture::At(url) => {
            (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, url), (header::CACHE_CONTROL, "no-store".into())])
                .into_response()
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartUpload {
    mime_type: String,
}

async fn start_upload(
    State(state): State<AppState>,
    Identity(caller): Identity,
    AppJson(body): AppJson<StartUpload>,
) -> Result<(StatusCode, Json<media::UploadSlot>), ApiError> {
    Ok((StatusCode::CREATED, Json(media::start_upload(&state.ports, &caller, Some(&body.mime_type)).await?)))
}

async fn put_upload(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Result<StatusCode, ApiError> {
    media::put_upload(&state.ports, &caller, &id, shared::http::byte_stream(body)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn finish_upload(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let m = media::finish_upload(&state.ports, &caller, &id).await?;
    Ok((StatusCode::CREATED, Json(json!({"media_id": m.id, "mime_type": m.mime_type, "size": m.size}))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    text: Option<String>,
    image: Option<FileBody>,
    document: Option<FileBody>,
    audio: Option<FileBody>,
    video: Option<FileBody>,
    sticker: Option<FileBody>,
    location: Option<Location>,
    template: Option<TemplateBody>,
    client_id: Option<String>,
    reply_to: Option<MessageId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    media_id: String,
    caption: Option<String>,
    filename: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateBody {
    name: String,
    language: String,
    #[serde(default)]
    params: Vec<String>,
}

const MAX_CLIENT_ID: usize = 128;

fn command(body: SendBody) -> Result<SendCommand, ApiError> {
    let invalid = |m: &str| ApiError::InvalidRequest(m.to_string());
    if body.client_id.as_ref().is_some_and(|c| c.is_empty() || c.len() > MAX_CLIENT_ID) {
        return Err(invalid("client_id must be 1 to 128 characters"));
    }
    let files = [
        (FileKind::Image, body.image),
        (FileKind::Document, body.document),
        (FileKind::Audio, body.audio),
        (FileKind::Video, body.video),
        (FileKind::Sticker, body.sticker),
    ];
    let given = usize::from(body.text.is_some())
        + usize::from(body.template.is_some())
        + usize::from(body.location.is_some())
        + files.iter().filter(|(_, f)| f.is_some()).count();
    if given != 1 {
        return Err(invalid("give exactly one of text, image, document, audio, video, sticker, location or template"));
    }
    let file = files.into_iter().find_map(|(kind, f)| f.map(|f| (kind, f)));
    let content = match (body.text, body.template, body.location, file) {
        (Some(text), ..) => Content::Text(text),
        (_, Some(t), ..) => {
            if t.name.trim().is_empty() || t.name.len() > 512 || t.language.trim().is_empty() || t.language.len() > 15 {
                return Err(invalid("template needs a name and a language code"));
            }
            Content::Template(TemplateSpec { name: t.name, language: t.language, params: t.params, buttons: vec![] })
        }
        (_, _, Some(location), _) => Content::Location(location),
        (_, _, _, Some((kind, f))) => {
            if f.media_id.is_empty() {
                return Err(invalid(&format!("{}.media_id must not be empty", kind.as_str())));
            }
            Content::File {
                kind,
                media_id: f.media_id,
                caption: f.caption.filter(|c| !c.is_empty()),
                filename: f.filename.filter(|n| !n.is_empty()),
            }
        }
        _ => return Err(invalid("nothing to send")),
    };
    Ok(SendCommand { content, client_id: body.client_id, reply_to: body.reply_to })
}

async fn send_message(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<ConversationId>,
    AppJson(body): AppJson<SendBody>,
) -> Result<(StatusCode, Json<MessageView>), ApiError> {
    let cmd = command(body)?;
    let view = send::send(&state.ports, &caller, &id, cmd).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    after: Option<MessageId>,
    limit: Option<usize>,
}

#[derive(serde::Serialize)]
struct HistoryPage {
    messages: Vec<MessageView>,
}

async fn history(
    State(state): State<AppState>,
    Identity(caller): Identity,
    Path(id): Path<ConversationId>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HistoryPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let limit = q.limit.unwrap_or(views::DEFAULT_PAGE);
    if limit == 0 || limit > views::MAX_PAGE {
        return Err(ApiError::InvalidRequest(format!("limit must be 1 to {}", views::MAX_PAGE)));
    }
    let messages = views::history(&state.ports, &caller, &id, q.after.as_ref(), limit).await?;
    Ok(Json(HistoryPage { messages }))
}
