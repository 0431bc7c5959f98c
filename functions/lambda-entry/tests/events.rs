//! The sample events in `events/` (the same files `cargo lambda invoke --data-file` takes) run
//! through each function's handler as Lambda would deliver them.

use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use shared::config::Secret;
use shared::http::AppState;

fn event(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The state of the function `handler` over the shared data in `dir`, holding only the secrets
/// that function is given on AWS (`Secret::needed_by`), as `events/`' samples are signed.
async fn state(dir: &tempfile::TempDir, handler: &str) -> AppState {
    let data = dir.path().display().to_string();
    let env = |k: &str| match k {
        "CONNECTOR_DATA_DIR" => Some(data.clone()),
        "WHATSAPP_APP_SECRET" => Some("events-app-secret".into()),
        "WHATSAPP_VERIFY_TOKEN" => Some("events-verify-token".into()),
        "WHATSAPP_ACCESS_TOKEN" => Some("events-token".into()),
        "CONNECTOR_ARCHIVE_KEY" => Some("events-archive-key".into()),
        _ => None,
    };
    let config = shared::Config::from_lookup_holding(env, Secret::needed_by(handler)).unwrap();
    shared::app::embedded(config).await.unwrap().0
}

async fn call(router: fn(AppState) -> Router, state: &AppState, name: &str) -> (u16, String) {
    let req = lambda_http::request::from_str(&event(name)).unwrap();
    let resp = lambda_entry::with_authorizer(router(state.clone())).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn http_events_reach_their_handlers_with_the_authorizers_claims() {
    let dir = tempfile::tempdir().unwrap();
    let st = |handler| state(&dir, handler);
    let webhook = st("webhook").await;
    assert_eq!(call(webhook::router, &webhook, "webhook-get-verify.json").await, (200, "1158201444".into()));
    assert_eq!(call(webhook::router, &webhook, "webhook-post-unsigned.json").await.0, 401);
    assert_eq!(call(webhook::router, &webhook, "webhook-post-text.json").await.0, 200);

    let optin = st("optin").await;
    let (s, body) = call(optin::router, &optin, "optin-post-conversation.json").await;
    assert_eq!(s, 201, "{body}");
    let conv: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(conv["participants"][0]["user_id"], "alex", "the caller comes from the authorizer's claims");
    let (s, body) = call(optin::router, &optin, "optin-get-conversations.json").await;
    assert_eq!((s, body.contains(conv["id"].as_str().unwrap())), (200, true));
    assert_eq!(call(send::router, &st("send").await, "send-post-message-unknown-thread.json").await.0, 404);
    let participants = st("participants").await;
    assert_eq!(call(participants::router, &participants, "participants-get-directory.json").await.0, 200);
    let admin = st("admin").await;
    assert_eq!(call(admin::router, &admin, "admin-get-archive-unknown.json").await.0, 404, "admin, but no such thread");
}

#[tokio::test]
async fn queue_and_timer_events_are_handled_record_by_record() {
    let dir = tempfile::tempdir().unwrap();
    let batch = serde_json::from_str(&event("receipts-sqs-unknown-wamid.json")).unwrap();
    let resp = receipts::function_handler(&state(&dir, "receipts").await.ports, batch, None).await;
    // The unknown wamid may belong to a send not yet recorded: retried. The unreadable one is dropped.
    let failed: Vec<_> = resp.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec!["m-0"]);

    let batch = serde_json::from_str(&event("dispatch-sqs-fifo-batch.json")).unwrap();
    assert!(dispatch::function_handler(&state(&dir, "dispatch").await.ports, batch, None)
        .await
        .batch_item_failures
        .is_empty());

    let timers = state(&dir, "timers").await;
    for name in [
        "timers-window-expiry.json",
        "timers-optin-retry.json",
        "timers-delivery-deadline.json",
        "timers-outbox-sweep.json",
    ] {
        let timer = serde_json::from_str(&event(name)).unwrap();
        timers::function_handler(&timers.ports, timer).await.unwrap();
    }
}

/// What a function is not given fails closed: no handshake, no signature, no Graph API call.
#[tokio::test]
async fn a_function_without_a_secret_refuses_what_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let send = state(&dir, "send").await;
    assert_eq!(call(webhook::router, &send, "webhook-get-verify.json").await.0, 403);
    assert_eq!(call(webhook::router, &send, "webhook-post-text.json").await.0, 401);
    let timers = state(&dir, "timers").await;
    let err = timers.ports.whatsapp.templates().await.unwrap_err();
    assert!(err.message.contains("no WhatsApp access token") && !err.lost, "{err:?}");
}
