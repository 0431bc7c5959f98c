//! `GET /events`: the live client API as Server-Sent Events (CONTRACT.md section 6). One stream
//! per request; `Last-Event-ID` resumes after the last event received; `: ping` every 15 s.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Extension;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream};

use shared::error::Report;
use shared::http::{admit, ApiError, AppState, Identity};
use shared::live::hub::{Cursor, Hub, Listener};
use shared::usecases::Caller;

/// The longest a stream stays quiet: a comment line keeps proxies and clients from timing out.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub fn router(state: AppState, hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/events", get(events))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), admit))
        .layer(Extension(hub))
        .with_state(state)
}

struct Stream_ {
    hub: Arc<Hub>,
    caller: Caller,
    cursor: Cursor,
    listener: Listener,
    ready: VecDeque<(String, shared::live::render::Event)>,
}

async fn events(
    Extension(hub): Extension<Arc<Hub>>,
    Identity(caller): Identity,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).filter(|v| !v.trim().is_empty());
    let resume = match resume {
        Some(id) => Some(
            Cursor::parse(id)
                .ok_or_else(|| ApiError::InvalidRequest(format!("Last-Event-ID {id:?} is not one of ours")))?,
        ),
        None => None,
    };
    let (listener, head) = hub.listen(&caller).await.map_err(ApiError::from)?;
    // An id past every event so far was never ours: honouring it would skip what comes next.
    if let Some(c) = resume.filter(|c| c.done > head || c.partial.is_some_and(|(seq, _)| seq > head)) {
        return Err(ApiError::InvalidRequest(format!("Last-Event-ID {} is past the last event ({head})", c.done)));
    }
    let cursor = resume.unwrap_or(Cursor { done: head, partial: None });
    let s = Stream_ { hub, caller, cursor, listener, ready: VecDeque::new() };
    let stream = stream::unfold(s, |mut s| async move {
        loop {
            if let Some((id, ev)) = s.ready.pop_front() {
                if s.ready.is_empty() {
                    // An idle stream keeps no room for events (a thousand of them add up).
                    s.ready = VecDeque::new();
                }
                let data = serde_json::to_string(&ev).unwrap_or_else(|_| "null".into());
                return Some((Ok(Event::default().id(id).event(ev.kind()).data(data)), s));
            }
            // Boxed: a stream waiting for news keeps only a pointer to this future's state.
            match Box::pin(s.hub.next(&s.caller, s.cursor)).await {
                Ok((batch, cursor)) => {
                    let moved = cursor != s.cursor;
                    s.cursor = cursor;
                    s.ready.extend(batch);
                    if s.ready.is_empty() && !moved {
                        s.listener.wake.notified().await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %Report(&e), user_id = %s.caller.user_id, "live events: stream ended");
                    return None;
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("ping")))
}
