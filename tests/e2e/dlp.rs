//! Data-loss prevention: cards, IBANs and SSNs redacted before storage and sending, a policy
//! that blocks or adds rules, and contacts' texts redacted for employees.

use serde_json::json;

use crate::helpers::*;

fn policy(json: &str) -> String {
    let path = std::env::temp_dir().join(format!("dlp-{}-{}.json", std::process::id(), json.len()));
    std::fs::write(&path, json).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn with_no_policy_cards_ibans_and_ssns_are_redacted_before_storage_and_sending() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    let m = app
        .send_text(
            "u1",
            &conv,
            "card 4111 1111 1111 1111, iban GB82 WEST 1234 5698 7654 32, ssn 123-45-6789, ref 4111111111111112",
        )
        .await;
    let want = "card [REDACTED:card], iban [REDACTED:iban], ssn [REDACTED:ssn], ref 4111111111111112";
    assert_eq!(m["text"], want);
    assert_eq!(m["dlp_rules"], json!(["card", "iban", "ssn"]));
    let (_, req) = app.wait_for_request(|r| r["type"] == "text").await;
    assert_eq!(req["text"]["body"], want);
    let notice = app.messages("u1", &conv).await.into_iter().find(|m| m["notice"]["code"] == "dlp_redacted").unwrap();
    assert_eq!(notice["notice"]["audience"], "user");
}

#[tokio::test]
async fn a_policy_can_block_and_add_rules() {
    let path = policy(
        r#"{"rules": [{"detector": "card", "action": "block"}, {"name": "project", "pattern": "PRJ-[0-9]{4}", "action": "redact"}]}"#,
    );
    let app = spawn_with(Options { env: vec![("CONNECTOR_DLP_POLICY", path)] }).await;
    let conv = app.opted_in_thread("u1").await;
    let (s, v) = app
        .call("POST", &format!("/conversations/{conv}/messages"), Some("u1"), Some(json!({"text": "4111111111111111"})))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("dlp_blocked")));
    assert!(v["error"]["message"].as_str().unwrap().contains("card"));
    let m = app.send_text("u1", &conv, "about PRJ-1234").await;
    assert_eq!(m["text"], "about [REDACTED:project]");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!app.graph.sent().iter().any(|r| r["text"]["body"].as_str().is_some_and(|b| b.contains("4111"))));
    // The attempt is on the record, without the card in clear.
    let records = app.archive(&conv).await;
    let block = records.iter().find(|r| r["kind"] == "dlp" && r["details"]["action"] == "block").unwrap();
    let written = block["text_as_written"].as_str().unwrap();
    assert!(written.starts_with("[card …1111 #") && !written.contains("4111"), "{written}");
}

#[tokio::test]
async fn inbound_text_can_be_redacted_for_employees() {
    let path = policy(r#"{"rules": [], "inbound": true}"#);
    let app = spawn_with(Options { env: vec![("CONNECTOR_DLP_POLICY", path)] }).await;
    let conv = app.opted_in_thread("u1").await;
    app.contact_says("my card is 4111 1111 1111 1111").await;
    let inbound = app
        .messages("u1", &conv)
        .await
        .into_iter()
        .find(|m| {
            m["direction"] == "inbound" && m["kind"] == "text" && m["text"].as_str().unwrap().starts_with("my card")
        })
        .unwrap();
    assert_eq!(inbound["text"], "my card is [REDACTED:card]");
    let records = app.archive(&conv).await;
    let dlp = records.iter().find(|r| r["kind"] == "dlp" && r["details"]["action"] == "redact_inbound").unwrap();
    let written = dlp["text_as_written"].as_str().unwrap();
    assert!(written.starts_with("my card is [card …1111 #") && !written.contains("4111 1111"), "{written}");
}
