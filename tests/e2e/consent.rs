//! Consent: the opt-in template, messages pending until the contact accepts, STOP and "yes",
//! resending after 24 hours, and a failed request retried once before the thread closes.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn messages_wait_for_consent_and_go_out_in_order_on_accept() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await;
    let id = conv["id"].as_str().unwrap();
    assert_eq!(conv["status"], "awaiting_optin");
    assert_eq!(conv["consent"], "requested");
    let (_, optin) = app.wait_for_request(|r| r["type"] == "template").await;
    assert_eq!(optin["to"], PHONE);
    let payloads: Vec<_> = optin["template"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "button")
        .map(|c| c["parameters"][0]["payload"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(payloads, vec![format!("OPT_IN_YES:{id}"), format!("OPT_IN_NO:{id}")]);

    for t in ["one", "two", "three"] {
        let m = app.send_text("u1", id, t).await;
        assert_eq!(m["status"], "pending");
    }
    assert_eq!(app.conversation("u1", id).await["pending_count"], 3);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(app.sent_texts().is_empty(), "nothing leaves before consent");

    app.accept_optin().await;
    eventually("held messages sent", || async { (app.sent_texts().len() == 3).then_some(()) }).await;
    assert_eq!(app.sent_texts(), vec!["one", "two", "three"]);
    let c = app.conversation("u1", id).await;
    assert_eq!(
        (c["status"].as_str(), c["consent"].as_str(), c["pending_count"].as_u64()),
        (Some("active"), Some("opted_in"), Some(0))
    );
    assert!(c["window_open_until"].is_string());
    assert!(app.notices("u1", id).await.contains(&"optin_accepted".to_string()));
}

#[tokio::test]
async fn a_reply_of_yes_in_any_case_accepts() {
    let app = spawn_app().await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.send_text("u1", &id, "held").await;
    app.contact_says("  YeS ").await;
    eventually("held message sent", || async { (app.sent_texts() == vec!["held"]).then_some(()) }).await;
    assert_eq!(app.conversation("u1", &id).await["consent"], "opted_in");
}

#[tokio::test]
async fn stop_opts_out_tells_the_contact_and_yes_opts_back_in() {
    let app = spawn_app().await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.accept_optin().await;
    app.contact_says("STOP").await;
    let c = app.conversation("u1", &id).await;
    assert_eq!(c["consent"], "opted_out");
    let (s, v) =
        app.call("POST", &format!("/conversations/{id}/messages"), Some("u1"), Some(json!({"text": "hi"}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("opted_out")));
    let (s, _) = app
        .call(
            "POST",
            &format!("/conversations/{id}/messages"),
            Some("u1"),
            Some(json!({"template": {"name": "promo", "language": "en"}})),
        )
        .await;
    assert_eq!(s, 409, "templates need consent too");
    eventually("opt-out confirmation", || async { app.sent_texts().iter().any(|t| t.contains("YES")).then_some(()) })
        .await;
    assert!(app.notices("u1", &id).await.contains(&"optin_rejected".to_string()));

    app.contact_says("yes").await;
    assert_eq!(app.conversation("u1", &id).await["consent"], "opted_in");
    app.send_text("u1", &id, "welcome back").await;
    eventually("message after opt-in", || async {
        app.sent_texts().contains(&"welcome back".to_string()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_reject_button_opts_out() {
    let app = spawn_app().await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let (wamid, _) = app.wait_for_request(|r| r["type"] == "template").await;
    app.contact_taps(&format!("OPT_IN_NO:{id}"), &wamid).await;
    assert_eq!(app.conversation("u1", &id).await["consent"], "opted_out");
}

#[tokio::test]
async fn optin_resend_waits_24_hours() {
    let app = spawn_app().await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    // The first request out before the clock moves: a resend replaces one not yet sent.
    app.wait_for_request(|r| r["type"] == "template").await;
    let (s, v) = app.call("POST", &format!("/conversations/{id}/optin"), Some("u1"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (429, Some("optin_too_soon")));
    app.advance(24 * 3600).await;
    let (s, _) = app.call("POST", &format!("/conversations/{id}/optin"), Some("u1"), None).await;
    assert_eq!(s, 202);
    eventually("second opt-in request", || async {
        (app.graph.accepted().iter().filter(|(_, r)| r["type"] == "template").count() == 2).then_some(())
    })
    .await;
    let (s, _) = app.call("POST", &format!("/conversations/{id}/optin"), Some("u1"), None).await;
    assert_eq!(s, 429);
}

#[tokio::test]
async fn failed_optin_is_retried_after_24_hours_then_the_thread_closes() {
    let app = spawn_app().await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.send_text("u1", &id, "held").await;
    let (wamid, _) = app.wait_for_request(|r| r["type"] == "template").await;
    let now = app.now_unix().await;
    assert_eq!(app.status(&wamid, "failed", now, Some(131026)).await, 200);
    let failed = eventually("optin_failed notice", || async {
        app.messages("u1", &id).await.into_iter().find(|m| m["notice"]["code"] == "optin_failed")
    })
    .await;
    assert_eq!(failed["notice"]["sms_fallback"], true);
    assert_eq!(app.conversation("u1", &id).await["consent"], "failed");

    app.advance(24 * 3600).await;
    let (retry, _) = app.wait_for_request(|r| r["type"] == "template" && r["_wamid"] != wamid.as_str()).await;
    app.status(&retry, "failed", now + 86400, Some(131026)).await;
    eventually("thread closed", || async { (app.conversation("u1", &id).await["status"] == "closed").then_some(()) })
        .await;
    assert!(app.notices("u1", &id).await.contains(&"optin_closed".to_string()));
    let (s, v) =
        app.call("POST", &format!("/conversations/{id}/messages"), Some("u1"), Some(json!({"text": "x"}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("conversation_closed")));
}

#[tokio::test]
async fn marketing_stop_131050_opts_the_contact_out() {
    let app = spawn_app().await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.accept_optin().await;
    let m = app.send_text("u1", &id, "offer").await;
    let (wamid, _) = app.wait_for_request(|r| r["type"] == "text").await;
    app.status(&wamid, "failed", app.now_unix().await, Some(131050)).await;
    eventually("opted out", || async { (app.conversation("u1", &id).await["consent"] == "opted_out").then_some(()) })
        .await;
    let msgs = app.messages("u1", &id).await;
    let failed = msgs.iter().find(|x| x["id"] == m["id"]).unwrap();
    assert_eq!((failed["status"].as_str(), failed["error"]["code"].as_str()), (Some("failed"), Some("131050")));
}

#[tokio::test]
async fn consent_belongs_to_the_number_so_a_second_thread_needs_no_optin() {
    let app = spawn_app().await;
    app.start_conversation("u1", PHONE).await;
    app.accept_optin().await;
    let second = app.start_conversation("u2", PHONE).await;
    assert_eq!(second["consent"], "opted_in");
    assert_eq!(second["status"], "active");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(app.graph.accepted().iter().filter(|(_, r)| r["type"] == "template").count(), 1);
}

#[tokio::test]
async fn every_consent_change_from_every_source_is_in_the_contacts_history_threads_or_not() {
    let app = spawn_app().await;
    let history = |who: String| {
        let app = &app;
        async move { app.call_with("GET", "/admin/contacts/%2B447700900123/consent", &who, None).await }
    };
    // A contact with no thread and no history is unknown here.
    assert_eq!(history(auditor()).await.0, 404);

    // Meta says they stopped marketing before any thread: on their history, in no thread.
    let stop = json!({"object": "whatsapp_business_account", "entry": [{"id": "0", "changes": [{"field": "user_preferences",
        "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
            "user_preferences": [{"wa_id": WA_ID, "detail": "User requested to stop marketing messages",
                "category": "marketing_messages", "value": "stop", "timestamp": app.now_unix().await}]}}]}]});
    // A contact Meta's word is about: asked, accepted, and their only employee left the thread.
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.accept_optin().await;
    let (s, v) = app.call("POST", &format!("/conversations/{id}/leave"), Some("u1"), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(app.webhook(&stop).await, 200);
    app.contact_says("yes").await;
    app.contact_says("STOP").await;

    let (s, v) = history(auditor()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["phone"].as_str(), v["consent"].as_str()), (Some(PHONE), Some("opted_out")));
    let steps: Vec<(String, String)> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["consent"].as_str().unwrap().to_string(), h["source"].as_str().unwrap().to_string()))
        .collect();
    let want = [
        ("requested", "optin_request"),
        ("opted_in", "button"),
        ("marketing_opted_out", "user_preferences"),
        ("opted_in", "keyword"),
        ("opted_out", "stop"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(steps, want, "oldest first");
    let at: Vec<&str> = v["history"].as_array().unwrap().iter().map(|h| h["at"].as_str().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    assert_eq!(v["history"][0]["conversation_id"], id.as_str());
    // With no thread open, Meta's word goes on the write-once record of their latest thread.
    assert_eq!(v["history"][2]["conversation_id"], id.as_str());
    eventually("Meta's stop on the closed thread's record", || async {
        let records = app.archive(&id).await;
        records.iter().any(|r| r["kind"] == "consent" && r["details"]["source"] == "user_preferences").then_some(())
    })
    .await;

    assert_eq!(history(token_for("u1", "en")).await.0, 403, "admins only");
    let (s, _) = app.call_with("GET", "/admin/contacts/not-a-phone/consent", &auditor(), None).await;
    assert_eq!(s, 422);
}

/// Issue 31, "Languages": the contact's keywords in the five languages of the notices
/// ("oui, sí, ja, sim; arrêt, alto, stopp, pare ...") as well as English.
#[tokio::test]
async fn the_contact_may_answer_and_opt_out_in_the_notices_five_languages() {
    let app = spawn_app().await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.wait_for_request(|r| r["type"] == "template").await;
    for (answer, consent) in [
        ("Oui", "opted_in"),
        ("ARRÊT", "opted_out"),
        ("¡Sí!", "opted_in"),
        ("Stopp", "opted_out"),
        ("ja", "opted_in"),
        ("pare.", "opted_out"),
        ("Sim", "opted_in"),
        ("alto", "opted_out"),
    ] {
        app.contact_says(answer).await;
        assert_eq!(app.conversation("u1", &id).await["consent"], consent, "after {answer:?}");
    }
    // A sentence that starts with one is a message, not an answer.
    app.contact_says("Oui, merci").await;
    assert_eq!(app.conversation("u1", &id).await["consent"], "opted_out");
    let texts: Vec<String> =
        app.messages("u1", &id).await.iter().filter_map(|m| m["text"].as_str().map(str::to_string)).collect();
    assert!(texts.contains(&"Oui, merci".to_string()), "{texts:?}");
}

/// The text of the thread's first notice with `code`.
async fn notice_text(app: &TestApp, id: &str, code: &str) -> String {
    let found =
        eventually(code, || async { app.messages("u1", id).await.into_iter().find(|m| m["notice"]["code"] == code) })
            .await;
    found["text"].as_str().unwrap().to_string()
}

/// Issue 31, "Notices": the acceptance notice says held messages are being delivered only when
/// some are; when nothing was held the employee is told they can start the conversation. The
/// opt-in failure reads as the guides have it.
#[tokio::test]
async fn the_acceptance_and_failure_notices_read_as_the_guides_have_them() {
    let app = spawn_app().await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.accept_optin().await;
    assert_eq!(
        notice_text(&app, &id, "optin_accepted").await,
        "The contact accepted to receive messages. You can start the conversation."
    );

    let app = spawn_app().await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.send_text("u1", &id, "held").await;
    app.accept_optin().await;
    assert_eq!(
        notice_text(&app, &id, "optin_accepted").await,
        "The contact accepted to receive messages. Held messages are being delivered."
    );

    // "We were unable to deliver your opt-in message. We'll attempt to resend it and keep you
    // updated."
    let app = spawn_app().await;
    let id = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let (wamid, _) = app.wait_for_request(|r| r["type"] == "template").await;
    let now = app.now_unix().await;
    assert_eq!(app.status(&wamid, "failed", now, Some(131049)).await, 200);
    assert_eq!(
        notice_text(&app, &id, "optin_failed").await,
        "We were unable to deliver your opt-in message. We'll attempt to resend it and keep you updated."
    );
}
