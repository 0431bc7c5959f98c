//! Receipts: sent, delivered, read and failed, each with its time, never moving backwards,
//! whatever order Meta's statuses arrive in.

use crate::helpers::*;

async fn sent_message(app: &TestApp) -> (String, serde_json::Value, String) {
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.accept_optin().await;
    let m = app.send_text("u1", &id, "tracked").await;
    let (wamid, _) = app.wait_for_request(|r| r["type"] == "text").await;
    (id, m["id"].clone(), wamid)
}

async fn find(app: &TestApp, conv: &str, id: &serde_json::Value) -> serde_json::Value {
    app.messages("u1", conv).await.into_iter().find(|m| m["id"] == *id).unwrap()
}

#[tokio::test]
async fn statuses_in_reverse_order_end_at_read_with_every_time() {
    let app = spawn_app().await;
    let (conv, id, wamid) = sent_message(&app).await;
    let t = 1_789_905_600;
    for (s, ts) in [("read", t + 30), ("delivered", t + 20), ("sent", t + 10)] {
        assert_eq!(app.status(&wamid, s, ts, None).await, 200);
    }
    let m = eventually("all three times", || async {
        let m = find(&app, &conv, &id).await;
        ["sent", "delivered", "read"].iter().all(|s| m["status_at"][s].is_string()).then_some(m)
    })
    .await;
    assert_eq!(m["status"], "read");
    assert_eq!(m["status_at"]["read"], "2026-09-20T12:00:30Z");
    assert_eq!(m["status_at"]["delivered"], "2026-09-20T12:00:20Z");
    assert_eq!(m["status_at"]["sent"], "2026-09-20T12:00:10Z");
}

#[tokio::test]
async fn a_status_that_overtakes_the_answer_to_its_send_is_applied_once_the_send_is_recorded() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.graph.script([(SLOW, serde_json::json!({}))]);
    let m = app.send_text("u1", &conv, "overtaken").await;
    let (wamid, _) = app.wait_for_request(|r| r["text"]["body"] == "overtaken").await;
    // Meta's status arrives while the connector still waits for the answer with the wamid.
    assert_eq!(app.status(&wamid, "delivered", 1_789_905_620, None).await, 200);
    let m = eventually("delivered", || async {
        let m = find(&app, &conv, &m["id"]).await;
        (m["status"] == "delivered").then_some(m)
    })
    .await;
    assert_eq!(m["status_at"]["delivered"], "2026-09-20T12:00:20Z");
}

#[tokio::test]
async fn redelivered_statuses_change_nothing() {
    let app = spawn_app().await;
    let (conv, id, wamid) = sent_message(&app).await;
    app.status(&wamid, "delivered", 1_789_905_620, None).await;
    let first = eventually("delivered", || async {
        let m = find(&app, &conv, &id).await;
        (m["status"] == "delivered").then_some(m)
    })
    .await;
    for _ in 0..3 {
        app.status(&wamid, "delivered", 1_789_905_999, None).await;
        app.status(&wamid, "sent", 1_789_905_999, None).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = find(&app, &conv, &id).await;
    assert_eq!(after["status"], "delivered");
    assert_eq!(after["status_at"]["delivered"], first["status_at"]["delivered"]);
}

#[tokio::test]
async fn a_skipped_delivered_is_fine_and_failed_after_read_does_not_undo_it() {
    let app = spawn_app().await;
    let (conv, id, wamid) = sent_message(&app).await;
    app.status(&wamid, "sent", 1_789_905_610, None).await;
    app.status(&wamid, "read", 1_789_905_630, None).await;
    eventually("read", || async { (find(&app, &conv, &id).await["status"] == "read").then_some(()) }).await;
    app.status(&wamid, "failed", 1_789_905_640, Some(131000)).await;
    eventually("the failure's time recorded", || async {
        find(&app, &conv, &id).await["status_at"]["failed"].is_string().then_some(())
    })
    .await;
    let m = find(&app, &conv, &id).await;
    assert_eq!(m["status"], "read");
}

#[tokio::test]
async fn system_messages_have_receipts_too() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let (wamid, _) = app.wait_for_request(|r| r["type"] == "template").await;
    app.status(&wamid, "delivered", 1_789_905_620, None).await;
    eventually("opt-in request delivered", || async {
        app.messages("u1", &conv)
            .await
            .into_iter()
            .find(|m| m["system"] == "optin_request" && m["status"] == "delivered")
    })
    .await;
}
