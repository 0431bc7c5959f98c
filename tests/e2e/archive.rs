//! The compliance archive over HTTP: every message, consent and DLP action in one verifiable
//! chain per thread, read by admins and compliance officers only, and a tampered record found by
//! the verifier.

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
async fn only_admins_and_compliance_officers_read_the_record_and_officers_change_nothing() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let (s, v) = app.call("GET", &format!("/admin/conversations/{conv}/archive"), Some("u1"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")));
    let officer = token_with("officer", "en", "retail", "eu", &["compliance"]);
    let (s, v) =
        app.call_with("GET", &format!("/admin/conversations/{conv}/archive?verify=true"), &officer, None).await;
    assert_eq!((s, v["valid"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = app.call_with("GET", "/admin/contacts/%2B447700900123/consent", &officer, None).await;
    assert_eq!((s, v["consent"].as_str()), (200, Some("requested")), "{v}");
    // Reading the record is all the role gives: the directory stays an admin's.
    let profile = json!({"name": "Eve", "sub_org": "retail", "region": "eu", "locale": "en", "whatsapp_enabled": true});
    let (s, v) = app.call_with("PUT", "/directory/users/eve", &officer, Some(profile)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")));
    let (s, _) = app.call("GET", "/admin/conversations/nope/archive", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = app.call_with("GET", "/admin/conversations/nope/archive?verify=true", &auditor(), None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_tampered_record_is_found_by_the_verifier() {
    if on_aws() {
        return; // Edits the embedded vault; the AWS bucket refuses edits (functions/archiver/tests/moto.rs).
    }
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    for t in ["one", "two", "three"] {
        app.send_text("u1", &conv, t).await;
    }
    let records = app.archive(&conv).await;
    let target = records.iter().find(|r| r["text_as_written"] == "two").unwrap()["seq"].as_i64().unwrap();

    // The record's object in the data directory's vault, written once and read-only.
    let object =
        vault_objects(&app).into_iter().find(|p| std::fs::read_to_string(p).unwrap().contains("\"two\"")).unwrap();
    let perms = std::fs::metadata(&object).unwrap().permissions();
    assert!(perms.readonly(), "{} is writable", object.display());
    let mut writable = perms.clone();
    #[allow(clippy::permissions_set_readonly_false)]
    writable.set_readonly(false);
    std::fs::set_permissions(&object, writable).unwrap();
    let edited = std::fs::read_to_string(&object).unwrap().replace("\"two\"", "\"2\"");
    std::fs::write(&object, edited).unwrap();

    let (_, v) =
        app.call_with("GET", &format!("/admin/conversations/{conv}/archive?verify=true"), &auditor(), None).await;
    assert_eq!((v["valid"].as_bool(), v["first_break"].as_i64()), (Some(false), Some(target)), "{v}");
}

/// The batch objects in the embedded vault, oldest first.
pub fn vault_objects(app: &crate::helpers::TestApp) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![app.dir.path().join("vault").join("records")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
