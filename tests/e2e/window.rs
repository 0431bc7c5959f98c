//! The 24-hour window: messages held once it closes, one resume request, the flush in order
//! when the contact writes again, and the held-message cap.

use serde_json::json;

use crate::helpers::*;

fn count(app: &TestApp, kind: &str) -> usize {
    app.graph.accepted().iter().filter(|(_, r)| r["type"] == kind).count()
}

fn resume_requests(app: &TestApp) -> Vec<(String, serde_json::Value)> {
    app.graph
        .accepted()
        .into_iter()
        .filter(|(_, r)| {
            r["type"] == "template"
                && r["template"]["components"][1]["parameters"][0]["payload"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("RESUME:"))
        })
        .collect()
}

#[tokio::test]
async fn after_24_hours_the_thread_pauses_holds_asks_once_and_flushes_on_reply() {
    let app = spawn_app().await;
    let id = app.opted_in_thread("u1").await;
    app.advance(24 * 3600 + 1).await;
    let c = app.conversation("u1", &id).await;
    assert_eq!(c["status"], "paused");
    assert!(c["window_open_until"].is_null());
    assert!(app.notices("u1", &id).await.contains(&"window_paused".to_string()));

    let a = app.send_text("u1", &id, "first").await;
    let b = app.send_text("u1", &id, "second").await;
    assert_eq!((a["status"].as_str(), b["status"].as_str()), (Some("pending"), Some("pending")));
    eventually("resume request", || async { (resume_requests(&app).len() == 1).then_some(()) }).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(resume_requests(&app).len(), 1, "once per pause");
    assert_eq!(count(&app, "text"), 0);
    assert!(app.notices("u1", &id).await.contains(&"resume_requested".to_string()));

    // A template may go out while paused.
    let (s, t) = app
        .call(
            "POST",
            &format!("/conversations/{id}/messages"),
            Some("u1"),
            Some(json!({"template": {"name": "order_ready", "language": "en", "params": ["42"]}})),
        )
        .await;
    assert_eq!(s, 202, "{t}");
    eventually("template sent", || async {
        app.graph.accepted().iter().any(|(_, r)| r["template"]["name"] == "order_ready").then_some(())
    })
    .await;

    let (wamid, _) = resume_requests(&app)[0].clone();
    let payload = format!("RESUME:{id}");
    app.contact_taps(&payload, &wamid).await;
    eventually("held flushed", || async { (count(&app, "text") == 2).then_some(()) }).await;
    let texts: Vec<_> = app
        .graph
        .accepted()
        .into_iter()
        .filter(|(_, r)| r["type"] == "text")
        .map(|(_, r)| r["text"]["body"].clone())
        .collect();
    assert_eq!(texts, vec![json!("first"), json!("second")]);
    assert_eq!(app.conversation("u1", &id).await["status"], "active");
    assert!(app.notices("u1", &id).await.contains(&"resumed".to_string()));
    // Held messages going out say so instead (issue 31, "Notices").
    let resumed = app.messages("u1", &id).await.into_iter().find(|m| m["notice"]["code"] == "resumed").unwrap();
    assert_eq!(resumed["text"], "The contact has resumed the conversation. Held messages are being delivered.");
}

#[tokio::test]
async fn any_inbound_message_reopens_and_resumed_is_posted_with_nothing_held() {
    let app = spawn_app().await;
    let id = app.opted_in_thread("u1").await;
    app.advance(25 * 3600).await;
    app.contact_says("I'm back").await;
    let c = app.conversation("u1", &id).await;
    assert_eq!(c["status"], "active");
    let resumed = app.messages("u1", &id).await.into_iter().find(|m| m["notice"]["code"] == "resumed").unwrap();
    // Issue 31, "Notices": the guides' words when nothing was queued.
    assert_eq!(
        resumed["text"],
        "[Auto Message] The contact has resumed the conversation. You can now continue messaging with them."
    );
}

#[tokio::test]
async fn a_later_message_rearms_the_timer_so_a_stale_one_changes_nothing() {
    let app = spawn_app().await;
    let id = app.opted_in_thread("u1").await;
    app.advance(20 * 3600).await;
    app.contact_says("still here").await;
    app.advance(5 * 3600).await;
    assert_eq!(app.conversation("u1", &id).await["status"], "active");
    assert!(!app.notices("u1", &id).await.contains(&"window_paused".to_string()));
    app.advance(20 * 3600).await;
    assert_eq!(app.conversation("u1", &id).await["status"], "paused");
}

#[tokio::test]
async fn held_messages_beyond_the_cap_are_refused() {
    let app = spawn_with(Options { env: vec![("CONNECTOR_MAX_HELD", "3".into())] }).await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    for i in 0..3 {
        app.send_text("u1", &id, &format!("m{i}")).await;
    }
    let (s, v) = app
        .call("POST", &format!("/conversations/{id}/messages"), Some("u1"), Some(json!({"text": "one too many"})))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (429, Some("queue_full")));
}

#[tokio::test]
async fn resume_request_failure_is_told() {
    let app = spawn_app().await;
    let id = app.opted_in_thread("u1").await;
    app.advance(25 * 3600).await;
    app.send_text("u1", &id, "held").await;
    let (wamid, _) = eventually("resume request", || async { resume_requests(&app).into_iter().next() }).await;
    app.status(&wamid, "failed", app.now_unix().await, Some(131026)).await;
    let n = eventually("resume_failed", || async {
        app.messages("u1", &id).await.into_iter().find(|m| m["notice"]["code"] == "resume_failed")
    })
    .await;
    assert_eq!(n["text"], "Failed to deliver resume request.");
}
