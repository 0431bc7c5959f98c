//! The compliance archive over HTTP: every message, consent and DLP action in one verifiable
//! chain per thread, read by admins only, and a tampered record found by the verifier.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn every_message_consent_and_dlp_action_is_archived_in_a_verifiable_chain() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.send_text("u1", &conv, "held until consent").await;
    app.accept_optin().await;
    app.send_text("u1", &conv, "card 4111 1111 1111 1111").await;
    app.contact_says("STOP").await;
    eventually("opt-out confirmation sent", || async {
        app.graph.sent().iter().any(|r| r["text"]["body"].as_str().is_some_and(|b| b.contains("YES"))).then_some(())
    })
    .await;

    let records = app.archive(&conv).await;
    let kinds: Vec<&str> = records.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    for k in ["conversation_started", "message", "consent", "queue_release", "dlp"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], json!(i + 1));
        assert_eq!(r["conversation_id"], conv.as_str());
    }
    let dlp = records.iter().find(|r| r["kind"] == "dlp").unwrap();
    // What was written, the card as its last four and a fingerprint under the archive key.
    let written = dlp["text_as_written"].as_str().unwrap();
    assert!(written.starts_with("card [card …1111 #") && !written.contains("4111"), "{written}");
    let fingerprint = shared::dlp::Policy::default().fingerprinted("4111111111111111", ARCHIVE_KEY.as_bytes());
    assert_eq!(written, format!("card {fingerprint}"), "the auditor's key matches the card");
    assert_eq!(dlp["text_as_sent"], "card [REDACTED:card]");
    let consents: Vec<_> =
        records.iter().filter(|r| r["kind"] == "consent").map(|r| r["details"]["consent"].clone()).collect();
    assert_eq!(consents, vec![json!("opted_in"), json!("opted_out")]);
    assert!(records.iter().any(|r| r["details"]["system"] == "optin_request"));

    let (s, v) =
        app.call_with("GET", &format!("/admin/conversations/{conv}/archive?verify=true"), &auditor(), None).await;
    assert_eq!((s, v["valid"].as_bool(), v["first_break"].is_null()), (200, Some(true), true));
    assert_eq!(v["records"], json!(records.len()));
}

#[tokio::test]
async fn only_admins_read_the_archive() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let (s, v) = app.call("GET", &format!("/admin/conversations/{conv}/archive"), Some("u1"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")));
    let (s, _) = app.call("GET", "/admin/conversations/nope/archive", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = app.call_with("GET", "/admin/conversations/nope/archive?verify=true", &auditor(), None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_tampered_record_is_found_by_the_verifier() {
    if on_aws() {
        return; // Edits the embedded SQLite archive; the AWS chain is checked in shared/tests.
    }
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    for t in ["one", "two", "three"] {
        app.send_text("u1", &conv, t).await;
    }
    let records = app.archive(&conv).await;
    let target = records.iter().find(|r| r["text_as_written"] == "two").unwrap()["seq"].as_i64().unwrap();

    let db = rusqlite::Connection::open(app.dir.path().join("connector.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let refused = db.execute(
        "UPDATE archive SET body = replace(body, '\"two\"', '\"2\"') WHERE conversation_id = ?1 AND seq = ?2",
        rusqlite::params![conv, target],
    );
    assert!(refused.is_err(), "the table is append-only");
    db.execute_batch("DROP TRIGGER archive_no_update").unwrap();
    db.execute(
        "UPDATE archive SET body = replace(body, '\"two\"', '\"2\"') WHERE conversation_id = ?1 AND seq = ?2",
        rusqlite::params![conv, target],
    )
    .unwrap();

    let (_, v) =
        app.call_with("GET", &format!("/admin/conversations/{conv}/archive?verify=true"), &auditor(), None).await;
    assert_eq!((v["valid"].as_bool(), v["first_break"].as_i64()), (Some(false), Some(target)));
}
