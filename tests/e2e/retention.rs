//! Retention (CONTRACT.md section 8): past its retention a record and its files are erased
//! everywhere they live, by a sweep on the connector's clock, unless a legal hold covers them;
//! what is held stays searchable and exportable, and every chain still verifies.

use serde_json::{json, Value};

use crate::helpers::*;

const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2,
    0, 0, 0,
];
const OTHER: &str = "+447700900777";

fn officer() -> String {
    token_with("officer", "en", "retail", "eu", &["compliance"])
}

fn texts(v: &Value) -> Vec<String> {
    v["results"].as_array().unwrap().iter().map(|r| r["text"].as_str().unwrap_or("").to_string()).collect()
}

async fn verified(app: &TestApp, conv: &str) -> Value {
    let r = app.client.get(app.url(&format!("/admin/conversations/{conv}/archive?verify=true"))).bearer_auth(auditor());
    let v: Value = r.send().await.unwrap().json().await.unwrap();
    v
}

/// The thread's messages as u2 reads them, each as its JSON.
async fn shown(app: &TestApp, conv: &str) -> Vec<String> {
    app.messages("u2", conv).await.iter().map(Value::to_string).collect()
}

/// The versions (and delete markers) the archive bucket holds under `records/` (AWS only).
async fn archive_keys(app: &TestApp) -> Vec<String> {
    let Some(aws) = &app.aws else { return Vec::new() };
    let bucket = app.env["ARCHIVE_BUCKET"].clone();
    let listed = aws.s3.list_object_versions().bucket(&bucket).prefix("records/").send().await.unwrap();
    let versions = listed.versions().iter().filter_map(|v| v.key());
    versions.chain(listed.delete_markers().iter().filter_map(|m| m.key())).map(str::to_string).collect()
}

#[tokio::test]
async fn past_retention_the_sweep_erases_what_no_hold_covers_everywhere_and_every_chain_still_verifies() {
    // Three seconds of retention (a test setting, with the dev clock): on AWS the objects' Object
    // Lock runs on the emulator's own clock, so they must really be three seconds old.
    let opts = Options { env: vec![("CONNECTOR_RETENTION_SECS", "3".into())] };
    let app = spawn_with(opts).await;
    let wall = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((app.now_unix().await - wall).abs() < 5, "the test starts on the wall clock");

    // Held: Olivia's thread, by a hold on her number.
    let kept = app.opted_in_thread("u1").await;
    app.send_text("u1", &kept, "Quarterly portfolio review on Friday").await;
    app.archive(&kept).await;
    let hold = json!({"contact": PHONE, "reason": "FCA enquiry 2026/131"});
    let (s, v) = app.call_with("POST", "/admin/legal-holds", &officer(), Some(hold)).await;
    assert_eq!(s, 201, "{v}");

    // Not held: another contact's thread, with a picture.
    let gone = app.start_conversation("u2", OTHER).await["id"].as_str().unwrap().to_string();
    app.send_text("u2", &gone, "Your portfolio rebalancing plan").await;
    let r = app.client.post(app.url("/media")).bearer_auth(app.token("u2")).header("content-type", "image/png");
    let uploaded: Value = r.body(PNG.to_vec()).send().await.unwrap().json().await.unwrap();
    let media_id = uploaded["media_id"].as_str().unwrap().to_string();
    let body = json!({"image": {"media_id": media_id, "caption": "the allocation"}});
    let (s, v) = app.call("POST", &format!("/conversations/{gone}/messages"), Some("u2"), Some(body)).await;
    assert_eq!(s, 202, "{v}");
    // Until the picture's own record is archived: the retention below counts from the object
    // that holds it (on moto its lock runs on the wall clock), and a slow archiver could write
    // it after the others.
    let picture = v["id"].as_str().unwrap().to_string();
    let archived = eventually("the picture on the record", || async {
        let archived = app.archive(&gone).await;
        archived.iter().any(|r| r.to_string().contains(&picture)).then_some(archived)
    })
    .await;
    assert!(archived.len() >= 3, "{archived:?}");
    let (s, _) = app.call("GET", &format!("/media/{media_id}"), Some("u2"), None).await;
    assert_eq!(s, 200, "the picture is there before the sweep");
    let before = archive_keys(&app).await;

    // Not yet: the sweep runs hourly on the connector's clock, and nothing goes before it.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let before_sweep = shown(&app, &gone).await;
    assert!(before_sweep.iter().any(|m| m.contains("Your portfolio rebalancing plan")), "{before_sweep:?}");
    app.advance(3600).await;
    let uses = eventually("the sweep's erasure on the record", || async {
        let text = app.archive_response("record-use", &auditor()).await.text().await.unwrap();
        let uses: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        uses.iter().any(|u| u["details"]["action"] == "erase").then_some(uses)
    })
    .await;
    let erased: Vec<&Value> = uses.iter().filter(|u| u["details"]["action"] == "erase").collect();
    assert!(erased.iter().all(|u| u["actor"] == "system"), "{erased:?}");
    let runs: Vec<&Value> = erased.iter().flat_map(|u| u["details"]["runs"].as_array().unwrap()).collect();
    assert!(runs.iter().any(|r| r["conversation_id"] == gone.as_str()), "{runs:?}");
    assert!(runs.iter().all(|r| r["conversation_id"] != kept.as_str()), "the held thread is not erased: {runs:?}");

    // Gone from the table (the employee's history and search), the file store and the archive...
    let left = shown(&app, &gone).await;
    assert!(!left.iter().any(|m| m.contains("portfolio rebalancing") || m.contains("allocation")), "{left:?}");
    let (s, _) = app.call("GET", &format!("/media/{media_id}"), Some("u2"), None).await;
    assert_eq!(s, 404, "the picture is erased");
    let (s, v) = app.call("GET", "/search?q=portfolio", Some("u2"), None).await;
    assert_eq!((s, texts(&v)), (200, Vec::<String>::new()), "{v}");
    let verify = verified(&app, &gone).await;
    assert_eq!((verify["valid"].as_bool(), verify["records"].as_u64()), (Some(true), Some(0)), "{verify}");
    let text = app.archive_response(&gone, &auditor()).await.text().await.unwrap();
    assert!(text.trim().is_empty(), "nothing of the thread is left to read: {text}");
    if !on_aws() {
        // The officer's search (on AWS Athena reads the objects themselves: gone with them).
        let (s, v) = app.call_with("GET", "/admin/search?q=portfolio", &officer(), None).await;
        assert_eq!((s, texts(&v)), (200, vec!["Quarterly portfolio review on Friday".to_string()]), "{v}");
    } else {
        let after = archive_keys(&app).await;
        assert!(after.len() < before.len(), "every version of the erased objects is gone: {before:?} {after:?}");
    }

    // ...while the held thread stays whole: exportable, searchable by its employee, verifiable.
    let job = crate::search::finished_export(&app, json!({"contact": OTHER})).await;
    assert_eq!((job["status"].as_str(), job["records"].as_u64()), (Some("done"), Some(0)), "{job}");
    let job = crate::search::finished_export(&app, json!({"contact": PHONE})).await;
    assert_eq!(job["status"], "done", "{job}");
    assert!(job["records"].as_u64().unwrap() >= 3, "{job}");
    let zip = crate::search::downloaded(&app, job["id"].as_str().unwrap()).await;
    assert_eq!(crate::search::verify_export(&zip).await, (true, String::new()));
    let (s, v) = app.call("GET", "/search?q=portfolio", Some("u1"), None).await;
    assert_eq!((s, texts(&v)), (200, vec!["Quarterly portfolio review on Friday".to_string()]), "{v}");
    let verify = verified(&app, &kept).await;
    assert_eq!(verify["valid"], true, "{verify}");
    assert!(verify["records"].as_u64().unwrap() >= 3, "{verify}");

    // Released: the next sweep erases the held thread's objects too.
    let (_, v) = app.call_with("GET", "/admin/legal-holds", &officer(), None).await;
    let id = v["holds"][0]["id"].as_str().unwrap().to_string();
    let (s, _) = app.call_with("DELETE", &format!("/admin/legal-holds/{id}"), &officer(), None).await;
    assert_eq!(s, 200);
    app.advance(3600).await;
    eventually("the released thread erased", || async {
        let verify = verified(&app, &kept).await;
        (verify["valid"] == true && verify["records"] == 0).then_some(())
    })
    .await;

    // The erased thread goes on: a new record links after the erased run, and the chain verifies.
    app.send_text("u2", &gone, "A new plan").await;
    let records = app.archive(&gone).await;
    assert!(records[0]["seq"].as_u64().unwrap() > archived.len() as u64, "{records:?}");
    let verify = verified(&app, &gone).await;
    assert_eq!(verify["valid"], true, "{verify}");
}
