//! Meta's side of the webhook: the verification handshake, signatures, every fixture, garbage
//! and huge bodies, duplicates, several entries in one delivery, and business-scoped ids.

use serde_json::json;

use crate::helpers::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/meta");

#[tokio::test]
async fn verification_handshake() {
    let app = spawn_app().await;
    let ok = app
        .client
        .get(app.url("/webhook?hub.mode=subscribe&hub.verify_token=e2e-verify&hub.challenge=1158201444"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    for bad in ["hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", "hub.mode=subscribe&hub.challenge=1", ""] {
        let r = app.client.get(app.url(&format!("/webhook?{bad}"))).send().await.unwrap();
        assert_eq!(r.status(), 403, "{bad}");
    }
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_posts_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await;
    let body = envelope(
        json!({"messages": [{"from": WA_ID, "id": "wamid.X", "timestamp": "1", "type": "text", "text": {"body": "yes"}}]}),
    );
    let bytes = serde_json::to_vec(&body).unwrap();
    assert_eq!(app.webhook_bytes(&bytes, None).await, 401);
    assert_eq!(app.webhook_bytes(&bytes, Some("sha256=00")).await, 401);
    let other = shared::meta::signature::sign(b"another-secret", &bytes);
    assert_eq!(app.webhook_bytes(&bytes, Some(&other)).await, 401);
    let c = app.conversation("u1", conv["id"].as_str().unwrap()).await;
    assert_eq!(c["consent"], "requested");
}

#[tokio::test]
async fn with_no_secret_configured_every_post_is_refused() {
    let app = spawn_with(Options { env: vec![("WHATSAPP_APP_SECRET", String::new())] }).await;
    let bytes = b"{\"object\":\"whatsapp_business_account\",\"entry\":[]}";
    assert_eq!(app.webhook_bytes(bytes, Some(&shared::meta::signature::sign(b"", bytes))).await, 401);
}

/// Every sample delivery, signed over its exact bytes, is acknowledged with 200.
#[tokio::test]
async fn every_fixture_is_acknowledged() {
    let app = spawn_with(Options { env: vec![("WHATSAPP_APP_SECRET", "test_app_secret_do_not_use".into())] }).await;
    app.start_conversation("u1", PHONE).await;
    let sigs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/signatures.json")).unwrap()).unwrap();
    for (name, entry) in sigs["files"].as_object().unwrap() {
        let bytes = std::fs::read(format!("{FIXTURES}/{name}")).unwrap();
        let status = app.webhook_bytes(&bytes, entry["x_hub_signature_256"].as_str()).await;
        assert_eq!(status, 200, "{name}");
        // A redelivery is acknowledged too, and changes nothing.
        assert_eq!(app.webhook_bytes(&bytes, entry["x_hub_signature_256"].as_str()).await, 200, "{name} again");
    }
}

#[tokio::test]
async fn signed_garbage_is_a_4xx_and_huge_bodies_are_refused() {
    let app = spawn_app().await;
    let bytes = b"this is not json";
    let sig = shared::meta::signature::sign(SECRET.as_bytes(), bytes);
    assert_eq!(app.webhook_bytes(bytes, Some(&sig)).await, 400);
    let big = vec![b' '; 3 * 1024 * 1024 + 10];
    let sig = shared::meta::signature::sign(SECRET.as_bytes(), &big);
    assert_eq!(app.webhook_bytes(&big, Some(&sig)).await, 413);
}

#[tokio::test]
async fn a_duplicate_inbound_message_is_stored_once() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await;
    let id = conv["id"].as_str().unwrap();
    let body = envelope(json!({
        "contacts": [{"profile": {"name": "Olivia"}, "wa_id": WA_ID}],
        "messages": [{"from": WA_ID, "id": "wamid.DUP", "timestamp": meta_now(), "type": "text", "text": {"body": "hello"}}]
    }));
    for _ in 0..3 {
        assert_eq!(app.webhook(&body).await, 200);
    }
    let inbound: Vec<_> = app.messages("u1", id).await.into_iter().filter(|m| m["direction"] == "inbound").collect();
    assert_eq!(inbound.len(), 1);
    assert_eq!(inbound[0]["text"], "hello");
}

#[tokio::test]
async fn a_delivery_older_than_the_dedupe_horizon_is_acknowledged_and_ignored() {
    // Meta retries for 7 days and dedupe marks last 9: anything older is a replay, which
    // could opt a contact out (or back in) again.
    let app = spawn_app().await;
    let id = app.opted_in_thread("u1").await;
    let old = (time::OffsetDateTime::now_utc() - time::Duration::days(10)).unix_timestamp().to_string();
    let body = envelope(json!({
        "contacts": [{"profile": {"name": "Olivia"}, "wa_id": WA_ID}],
        "messages": [{"from": WA_ID, "id": "wamid.OLD", "timestamp": old, "type": "text", "text": {"body": "STOP"}}]
    }));
    assert_eq!(app.webhook(&body).await, 200);
    assert_eq!(app.conversation("u1", &id).await["consent"], "opted_in");
    assert!(!app.messages("u1", &id).await.iter().any(|m| m["direction"] == "inbound" && m["text"] == "STOP"));
}

#[tokio::test]
async fn one_delivery_with_several_entries_is_applied_whole() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await;
    let id = conv["id"].as_str().unwrap();
    let msg = |wamid: &str, text: &str| json!({"from": WA_ID, "id": wamid, "timestamp": meta_now(), "type": "text", "text": {"body": text}});
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [{"field": "messages", "value": {"contacts": [{"wa_id": WA_ID, "profile": {"name": "O"}}], "messages": [msg("wamid.A", "one"), msg("wamid.B", "two")]}}]},
        {"id": "1", "changes": [{"field": "account_update", "value": {}}, {"field": "messages", "value": {"messages": [msg("wamid.C", "three"), {"id": "broken"}]}}]}
    ]});
    assert_eq!(app.webhook(&body).await, 200);
    let texts: Vec<_> = app
        .messages("u1", id)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "inbound")
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, vec![json!("one"), json!("two"), json!("three")]);
}

#[tokio::test]
async fn a_contact_known_only_by_business_scoped_id_is_matched() {
    let app = spawn_app().await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let first = envelope(json!({
        "contacts": [{"profile": {"name": "Olivia"}, "wa_id": WA_ID, "user_id": "GB.13491208655302741918"}],
        "messages": [{"from": WA_ID, "from_user_id": "GB.13491208655302741918", "id": "wamid.B1", "timestamp": meta_now(), "type": "text", "text": {"body": "with number"}}]
    }));
    assert_eq!(app.webhook(&first).await, 200);
    let second = envelope(json!({
        "contacts": [{"profile": {"name": "Olivia", "username": "@olivia"}, "user_id": "GB.13491208655302741918"}],
        "messages": [{"from_user_id": "GB.13491208655302741918", "id": "wamid.B2", "timestamp": meta_now(), "type": "text", "text": {"body": "without number"}}]
    }));
    assert_eq!(app.webhook(&second).await, 200);
    let texts: Vec<_> = app
        .messages("u1", &id)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "inbound")
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, vec![json!("with number"), json!("without number")]);
}
