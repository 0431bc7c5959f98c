//! Sending to Meta: Graph API errors retried within bounds, permanent ones failed with a
//! notice, re-engagement errors held, `client_id` idempotency and order under concurrency.

use serde_json::json;

use crate::helpers::*;

fn texts(app: &TestApp) -> Vec<serde_json::Value> {
    app.graph.sent().into_iter().filter(|r| r["type"] == "text").collect()
}

async fn message(app: &TestApp, conv: &str, id: &serde_json::Value) -> serde_json::Value {
    app.messages("u1", conv).await.into_iter().find(|m| m["id"] == *id).unwrap()
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried_and_sent_once() {
    let app = spawn_app().await;
    let id = app.opted_in_thread("u1").await;
    app.graph.script([
        (500, json!({})),
        FakeGraph::error(130429),
        (503, json!({"oops": true})),
        FakeGraph::error(131056),
    ]);
    let m = app.send_text("u1", &id, "persist").await;
    eventually("accepted after retries", || async { texts(&app).iter().any(|r| r["_status"] == 200).then_some(()) })
        .await;
    let attempts = texts(&app);
    assert_eq!(attempts.len(), 5);
    assert_eq!(attempts.iter().filter(|r| r["_status"] == 200).count(), 1);
    let (wamid, _) = app.wait_for_request(|r| r["type"] == "text").await;
    app.status(&wamid, "delivered", app.now_unix().await, None).await;
    eventually("delivered", || async { (message(&app, &id, &m["id"]).await["status"] == "delivered").then_some(()) })
        .await;
}

#[tokio::test]
async fn retries_are_bounded() {
    let app = spawn_with(Options { env: vec![("CONNECTOR_MAX_ATTEMPTS", "3".into())] }).await;
    let id = app.opted_in_thread("u1").await;
    app.graph.script((0..10).map(|_| (500, json!({}))));
    let m = app.send_text("u1", &id, "doomed").await;
    let failed = eventually("failed", || async {
        let msg = message(&app, &id, &m["id"]).await;
        (msg["status"] == "failed").then_some(msg)
    })
    .await;
    assert_eq!(texts(&app).len(), 3);
    assert_eq!(failed["error"]["code"], "http_500");
    assert!(failed["error"]["message"].as_str().unwrap().contains("later"));
}

#[tokio::test]
async fn a_permanent_error_fails_with_an_actionable_localized_message() {
    let app = spawn_app().await;
    let id = app.opted_in_thread("u1").await;
    app.graph.script([FakeGraph::error(132001)]);
    let (s, m) = app
        .call(
            "POST",
            &format!("/conversations/{id}/messages"),
            Some("u1"),
            Some(json!({"template": {"name": "missing", "language": "en"}})),
        )
        .await;
    assert_eq!(s, 202);
    let failed = eventually("failed", || async {
        let msg = message(&app, &id, &m["id"]).await;
        (msg["status"] == "failed").then_some(msg)
    })
    .await;
    assert_eq!(failed["error"]["code"], "132001");
    assert!(failed["error"]["message"].as_str().unwrap().contains("administrator"));
    // The sender reads it in their language.
    let es = app
        .client
        .get(app.url(&format!("/conversations/{id}/messages")))
        .bearer_auth(token_for("u1", "es"))
        .send()
        .await
        .unwrap();
    let es: serde_json::Value = es.json().await.unwrap();
    let notice =
        es["messages"].as_array().unwrap().iter().find(|m| m["notice"]["code"] == "message_failed").unwrap().clone();
    assert!(notice["text"].as_str().unwrap().starts_with("No se pudo entregar"));
    assert_eq!(notice["notice"]["audience"], "user");
}

#[tokio::test]
async fn reengagement_error_holds_the_message_and_asks_to_resume() {
    let app = spawn_app().await;
    let id = app.opted_in_thread("u1").await;
    app.graph.script([FakeGraph::error(131047)]);
    let m = app.send_text("u1", &id, "too late").await;
    eventually("held again", || async { (message(&app, &id, &m["id"]).await["status"] == "pending").then_some(()) })
        .await;
    let (wamid, _) = app
        .wait_for_request(|r| {
            r["template"]["components"][1]["parameters"][0]["payload"]
                .as_str()
                .is_some_and(|p| p.starts_with("RESUME:"))
        })
        .await;
    assert_eq!(app.conversation("u1", &id).await["status"], "paused");
    app.contact_taps(&format!("RESUME:{id}"), &wamid).await;
    eventually("sent after resume", || async {
        (texts(&app).iter().filter(|r| r["_status"] == 200).count() == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn async_131047_failure_returns_the_message_to_pending() {
    let app = spawn_app().await;
    let id = app.opted_in_thread("u1").await;
    let m = app.send_text("u1", &id, "hello").await;
    let (wamid, _) = app.wait_for_request(|r| r["type"] == "text").await;
    app.status(&wamid, "failed", app.now_unix().await, Some(131047)).await;
    eventually("pending", || async { (message(&app, &id, &m["id"]).await["status"] == "pending").then_some(()) }).await;
    assert_eq!(app.conversation("u1", &id).await["pending_count"], 1);
    app.contact_says("here").await;
    eventually("resent", || async { (texts(&app).len() == 2).then_some(()) }).await;
}

#[tokio::test]
async fn client_id_makes_a_send_idempotent() {
    let app = spawn_app().await;
    let id = app.opted_in_thread("u1").await;
    let body = json!({"text": "once", "client_id": "abc-1"});
    let (s1, a) = app.call("POST", &format!("/conversations/{id}/messages"), Some("u1"), Some(body.clone())).await;
    let (s2, b) = app.call("POST", &format!("/conversations/{id}/messages"), Some("u1"), Some(body)).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a["id"], b["id"]);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(texts(&app).len(), 1);
}

#[tokio::test]
async fn concurrent_sends_keep_their_order_and_lose_none() {
    let app = spawn_app().await;
    let id = app.opted_in_thread("u1").await;
    let mut handles = Vec::new();
    for i in 0..20 {
        let (client, url, token) =
            (app.client.clone(), app.url(&format!("/conversations/{id}/messages")), app.token("u1"));
        handles.push(tokio::spawn(async move {
            let r = client.post(url).bearer_auth(token).json(&json!({"text": format!("m{i}")})).send().await.unwrap();
            assert_eq!(r.status(), 202);
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    eventually("all sent", || async { (texts(&app).len() == 20).then_some(()) }).await;
    // The order the API accepted them in is the order they left in.
    let history: Vec<_> = app
        .messages("u1", &id)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "outbound" && m["kind"] == "text" && m["system"].is_null())
        .map(|m| m["text"].clone())
        .collect();
    let sent: Vec<_> = texts(&app).into_iter().map(|r| r["text"]["body"].clone()).collect();
    assert_eq!(history, sent);
}
