//! CONTRACT.md section 6: live events, read state, recall, held expiry, templates, the window
//! reminder, the opt-in confirmation and `?contact=`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(5);

fn is_message_with(text: &'static str) -> impl Fn(&LiveEvent) -> bool {
    move |(_, kind, data)| kind == "message" && data["text"] == text
}

#[tokio::test]
async fn events_arrive_live_and_a_reconnect_resumes_without_loss_or_duplicates() {
    if on_aws() {
        return; // On AWS the live API is the WebSocket API (handler tests in functions/live).
    }
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.register("u9").await;
    let mut stream = app.events("u1", None).await;
    let mut outsider = app.events("u9", None).await;

    app.contact_says("first").await;
    let mut seen = stream.until(WAIT, is_message_with("first")).await;
    if !seen.iter().any(|(_, k, _)| k == "conversation") {
        seen.extend(stream.until(WAIT, |(_, k, _)| k == "conversation").await);
    }
    let (last_id, _, msg) = seen.iter().rev().find(|(_, k, _)| k == "message").unwrap().clone();
    assert_eq!((msg["conversation_id"].as_str(), msg["direction"].as_str()), (Some(conv.as_str()), Some("inbound")));
    let view = &seen.iter().rev().find(|(_, k, _)| k == "conversation").unwrap().2;
    assert_eq!(view["id"], conv.as_str());
    assert_eq!(view["unread_count"], 2, "the tap on the opt-in button and the text");
    let last_id = seen.last().map_or(last_id, |(id, _, _)| id.clone());

    // Disconnected: two more messages and a status change happen meanwhile.
    drop(stream);
    app.contact_says("second").await;
    app.contact_says("third").await;
    let mut resumed = app.events("u1", Some(&last_id)).await;
    let after = resumed.until(WAIT, is_message_with("third")).await;
    let texts: Vec<&str> =
        after.iter().filter(|(_, k, _)| k == "message").filter_map(|(_, _, d)| d["text"].as_str()).collect();
    assert_eq!(texts, vec!["second", "third"], "each missed message once, in order, nothing from before");
    let ids: Vec<&str> = after.iter().map(|(id, _, _)| id.as_str()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "no event twice");

    // Only what the caller may see: someone outside the thread hears nothing of it.
    assert!(outsider.next(Duration::from_millis(300)).await.is_none(), "an outsider got an event");

    let (s, v) = app.raw("GET", "/events", None, Vec::new()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("unauthorized")));
    for id in ["x", "99999999", "99999999.0"] {
        // Not an id at all, or past every event so far (honoured, it would skip what comes next).
        let bad = app.client.get(app.url("/events")).bearer_auth(app.token("u1")).header("Last-Event-ID", id).send();
        assert_eq!(bad.await.unwrap().status().as_u16(), 422, "{id}");
    }
}

#[tokio::test]
async fn a_removed_employee_gets_their_notice_and_then_nothing_more() {
    if on_aws() {
        return;
    }
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.register("u2").await;
    assert_eq!(app.add("u1", &conv, "u2", true).await.0, 200);
    let mut u2 = app.events("u2", None).await;
    let (s, _) = app.call("DELETE", &format!("/conversations/{conv}/participants/u2"), Some("u1"), None).await;
    assert_eq!(s, 200);
    let got = u2.until(WAIT, |(_, k, _)| k == "removed").await;
    let removed = &got.last().unwrap().2;
    assert_eq!(removed["conversation_id"], conv.as_str());
    assert_eq!(removed["notice"]["notice"]["code"], "participant_removed");
    assert!(removed["notice"]["text"].as_str().unwrap().contains("removed you"), "{removed}");
    app.contact_says("after removal").await;
    while let Some((_, kind, data)) = u2.next(Duration::from_millis(400)).await {
        assert_ne!(data["text"], "after removal", "a removed employee still hears the thread ({kind})");
    }
}

#[tokio::test]
async fn read_marks_count_unread_messages_and_never_move_back() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.contact_says("one").await;
    app.contact_says("two").await;
    let view = app.conversation("u1", &conv).await;
    let inbound: Vec<Value> =
        app.messages("u1", &conv).await.into_iter().filter(|m| m["direction"] == "inbound").collect();
    // The tap on the opt-in button counts as written by the contact, as do the two texts.
    assert_eq!(view["unread_count"], inbound.len());
    let (s, v) = app
        .call("POST", &format!("/conversations/{conv}/read"), Some("u1"), Some(json!({"up_to": inbound[2]["id"]})))
        .await;
    assert_eq!((s, v["unread_count"].as_u64()), (200, Some(0)), "{v}");
    let (s, v) = app
        .call("POST", &format!("/conversations/{conv}/read"), Some("u1"), Some(json!({"up_to": inbound[0]["id"]})))
        .await;
    assert_eq!((s, v["unread_count"].as_u64()), (200, Some(0)), "an older mark does not move it back");
    app.contact_says("three").await;
    let (_, list) = app.call("GET", "/conversations", Some("u1"), None).await;
    assert_eq!(list["conversations"][0]["unread_count"], 1);
    let (s, _) =
        app.call("POST", &format!("/conversations/{conv}/read"), Some("u1"), Some(json!({"up_to": "nope"}))).await;
    assert_eq!(s, 404);
    let (s, _) = app
        .call("POST", &format!("/conversations/{conv}/read"), Some("u2"), Some(json!({"up_to": inbound[0]["id"]})))
        .await;
    assert_eq!(s, 404, "only participants have a read mark");
}

#[tokio::test]
async fn a_held_message_can_be_recalled_and_never_reaches_the_contact() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let held = app.send_text("u1", &conv, "take me back").await;
    assert_eq!(held["status"], "pending");
    let path = format!("/conversations/{conv}/messages/{}", held["id"].as_str().unwrap());
    let (s, v) = app.call("DELETE", &path, Some("u2"), None).await;
    assert_eq!(s, 404, "not a participant: {v}");
    let (s, v) = app.call("DELETE", &path, Some("u1"), None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("recalled")), "{v}");
    assert!(v["status_at"]["recalled"].is_string());
    let (s, v) = app.call("DELETE", &path, Some("u1"), None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("recalled")), "recalling twice is harmless");
    assert_eq!(app.conversation("u1", &conv).await["pending_count"], 0);

    app.accept_optin().await;
    let sent = app.send_text("u1", &conv, "after consent").await;
    eventually("the later text to go out", || async {
        app.sent_texts().iter().any(|t| t.contains("after consent")).then_some(())
    })
    .await;
    assert!(!app.sent_texts().iter().any(|t| t.contains("take me back")), "a recalled message went out");
    let path = format!("/conversations/{conv}/messages/{}", sent["id"].as_str().unwrap());
    let (s, v) = app.call("DELETE", &path, Some("u1"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("already_sent")), "{v}");
    let history = app.messages("u1", &conv).await;
    assert!(history.iter().any(|m| m["text"] == "take me back" && m["status"] == "recalled"), "kept in the history");
}

#[tokio::test]
async fn only_its_sender_recalls_a_message() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.register("u2").await;
    assert_eq!(app.add("u1", &conv, "u2", true).await.0, 200);
    let held = app.send_text("u1", &conv, "mine").await;
    let path = format!("/conversations/{conv}/messages/{}", held["id"].as_str().unwrap());
    let (s, v) = app.call("DELETE", &path, Some("u2"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")), "{v}");
}

#[tokio::test]
async fn a_message_held_past_its_time_expires_with_a_notice_and_is_never_sent() {
    let app = spawn_with(Options { env: vec![("CONNECTOR_HELD_TTL", "3600".into())] }).await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let held = app.send_text("u1", &conv, "too late").await;
    app.advance(3601).await;
    let id = held["id"].as_str().unwrap().to_string();
    let failed = eventually("the held message to expire", || async {
        app.messages("u1", &conv).await.into_iter().find(|m| m["id"] == id.as_str() && m["status"] == "failed")
    })
    .await;
    assert_eq!(failed["error"]["code"], "held_expired");
    assert!(app.notices("u1", &conv).await.contains(&"message_failed".to_string()));
    assert_eq!(app.conversation("u1", &conv).await["pending_count"], 0);
    app.accept_optin().await;
    app.send_text("u1", &conv, "fresh").await;
    eventually("the fresh text to go out", || async {
        app.sent_texts().iter().any(|t| t.contains("fresh")).then_some(())
    })
    .await;
    assert!(!app.sent_texts().iter().any(|t| t.contains("too late")), "an expired message went out");
}

#[tokio::test]
async fn templates_are_listed_and_a_send_is_checked_against_them() {
    let app = spawn_app().await;
    let (s, v) = app.call("GET", "/templates", Some("u1"), None).await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<(String, u64)> = v["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["params"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        names,
        vec![("missing".into(), 0), ("order_ready".into(), 1), ("order_update".into(), 2), ("promo".into(), 0)],
        "approved ones of every page, not the pending draft"
    );
    let conv = app.opted_in_thread("u1").await;
    let send = |template: Value| {
        let app = &app;
        let path = format!("/conversations/{conv}/messages");
        async move { app.call("POST", &path, Some("u1"), Some(json!({ "template": template }))).await }
    };
    let (s, v) = send(json!({"name": "nope", "language": "en"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_template")), "{v}");
    let (s, v) = send(json!({"name": "promo", "language": "fr"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_template")), "{v}");
    let (s, v) = send(json!({"name": "order_update", "language": "en", "params": ["A1"]})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_template")), "{v}");
    let (s, v) = send(json!({"name": "order_update", "language": "en", "params": ["A1", "Monday"]})).await;
    assert_eq!(s, 202, "{v}");
    let (s, _) = app.call("GET", "/templates", None, None).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn participants_are_reminded_once_before_the_window_closes() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.contact_says("hello").await;
    let closing = || async { app.notices("u1", &conv).await.iter().filter(|c| c.as_str() == "window_closing").count() };
    app.advance(22 * 3600).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(closing().await, 0, "not yet: more than an hour is left");
    app.advance(3600 + 60).await;
    eventually("the window_closing notice", || async { (closing().await == 1).then_some(()) }).await;
    app.advance(2 * 3600).await;
    eventually("the window to pause", || async {
        app.notices("u1", &conv).await.contains(&"window_paused".to_string()).then_some(())
    })
    .await;
    assert_eq!(closing().await, 1, "once per window");
}

#[tokio::test]
async fn the_contact_is_told_their_opt_in_was_recorded() {
    let app = spawn_app().await;
    app.opted_in_thread("u1").await;
    let confirmations: Vec<Value> = app
        .graph
        .all()
        .into_iter()
        .filter(|r| r["type"] == "text" && r["text"]["body"].as_str().is_some_and(|b| b.starts_with(OPTIN_CONFIRMED)))
        .collect();
    assert_eq!(confirmations.len(), 1, "{confirmations:?}");
    assert_eq!(confirmations[0]["to"], PHONE);
}

#[tokio::test]
async fn threads_can_be_listed_for_one_contact() {
    let app = spawn_app().await;
    let a = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.start_conversation("u1", "+447700900999").await;
    let (s, v) = app.call("GET", "/conversations?contact=%2B447700900123", Some("u1"), None).await;
    assert_eq!(s, 200, "{v}");
    let ids: Vec<&str> = v["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![a.as_str()]);
    let (s, v) = app.call("GET", "/conversations?contact=%2B447700900123", Some("u2"), None).await;
    assert_eq!((s, v["conversations"].as_array().map(Vec::len)), (200, Some(0)), "only the caller's threads");
    let (s, _) = app.call("GET", "/conversations?contact=nope", Some("u1"), None).await;
    assert_eq!(s, 422);
}
