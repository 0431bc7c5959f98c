//! Search (CONTRACT.md section 8): the officer's over every thread's record, each use of it on
//! the record itself, and every user's over the threads they may read.

use serde_json::{json, Value};

use crate::helpers::*;

fn officer() -> String {
    token_with("officer", "en", "retail", "eu", &["compliance"])
}

async fn search(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    app.call_with("GET", &format!("/admin/search?{query}"), token, None).await
}

fn texts(v: &Value) -> Vec<String> {
    v["results"].as_array().unwrap().iter().map(|r| r["text"].as_str().unwrap_or("").to_string()).collect()
}

/// A thread with Olivia where u1 wrote about a café, a card number DLP redacted, and Olivia
/// answered; and a second thread, with another contact, about a café too.
async fn two_threads(app: &TestApp) -> (String, String) {
    let conv = app.opted_in_thread("u1").await;
    app.send_text("u1", &conv, "Meet at the Café Crème tomorrow?").await;
    app.send_text("u1", &conv, "card 4111 1111 1111 1111").await;
    app.contact_says("Merci, à demain au CAFE").await;
    let other = app.start_conversation("u2", "+447700900777").await["id"].as_str().unwrap().to_string();
    app.send_text("u2", &other, "The cafe is closed on Sundays").await;
    (conv, other)
}

#[tokio::test]
async fn an_officer_finds_every_word_folded_newest_first_by_what_was_shown_and_each_search_is_on_the_record() {
    if on_aws() {
        return; // Athena runs the query on AWS; moto only replays answers (see search_on_athena).
    }
    let app = spawn_app().await;
    let (conv, other) = two_threads(&app).await;
    let found = eventually("the three café messages indexed", || async {
        let (s, v) = search(&app, &officer(), "q=caf%C3%A9").await;
        assert_eq!(s, 200, "{v}");
        (v["results"].as_array().unwrap().len() == 3).then_some(v)
    })
    .await;
    // Newest first; case and accents folded both ways.
    assert_eq!(
        texts(&found),
        vec!["The cafe is closed on Sundays", "Merci, à demain au CAFE", "Meet at the Café Crème tomorrow?"]
    );
    let first = &found["results"][2];
    assert_eq!((first["conversation_id"].as_str(), first["sender"].as_str()), (Some(conv.as_str()), Some("u1")));
    assert_eq!(first["kind"], "text");
    assert!(first["message_id"].is_string() && first["at"].is_string());
    assert!(found["next"].is_null());

    // Every word must match; whole words only.
    let (_, v) = search(&app, &officer(), "q=cafe+demain").await;
    assert_eq!(texts(&v), vec!["Merci, à demain au CAFE"]);
    let (_, v) = search(&app, &officer(), "q=caf").await;
    assert!(texts(&v).is_empty());
    // The card is found by what was shown, never by the original.
    let (_, v) = search(&app, &officer(), "q=4111").await;
    assert!(texts(&v).is_empty(), "{v}");
    let (_, v) = search(&app, &officer(), "q=card+redacted").await;
    assert_eq!(texts(&v), vec!["card [REDACTED:card]"]);

    // Narrowed by contact, by participant, by period; paged.
    let (_, v) = search(&app, &officer(), "q=cafe&contact=%2B447700900777").await;
    assert_eq!(texts(&v), vec!["The cafe is closed on Sundays"]);
    assert_eq!(v["results"][0]["conversation_id"], other.as_str());
    let (_, v) = search(&app, &officer(), "q=cafe&user=u1").await;
    assert_eq!(texts(&v).len(), 2);
    let (_, v) = search(&app, &officer(), "contact=%2B447700900123&user=u2").await;
    assert!(texts(&v).is_empty(), "u2 is not in Olivia's thread");
    let (_, v) = search(&app, &officer(), "q=cafe&from=2020-01-01T00:00:00Z&to=2020-12-31T00:00:00Z").await;
    assert!(texts(&v).is_empty());
    let (_, page1) = search(&app, &officer(), "q=cafe&limit=2").await;
    assert_eq!(texts(&page1).len(), 2);
    let next = page1["next"].as_str().unwrap();
    let (_, page2) = search(&app, &officer(), &format!("q=cafe&limit=2&after={next}")).await;
    assert_eq!(texts(&page2), vec!["Meet at the Café Crème tomorrow?"]);
    assert!(page2["next"].is_null());

    // Each search is on the record: who, what, when, in a chain that verifies.
    let uses = eventually("the searches on the record", || async {
        let resp = app.archive_response("record-use", &auditor()).await;
        let text = resp.text().await.unwrap();
        let uses: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (uses.iter().filter(|u| u["details"]["action"] == "search").count() >= 10).then_some(uses)
    })
    .await;
    let by_officer: Vec<&Value> = uses.iter().filter(|u| u["actor"] == "officer").collect();
    let contact_search = by_officer
        .iter()
        .find(|u| u["details"]["filter"]["contact"] == "+447700900777")
        .expect("the contact search is on the record");
    assert_eq!(contact_search["kind"], "record_use");
    assert_eq!(contact_search["details"]["filter"]["words"], json!(["cafe"]));
    assert_eq!(contact_search["details"]["results"], 1);
    assert_eq!(contact_search["details"]["roles"], json!(["compliance"]));
    let (s, v) = app.call_with("GET", "/admin/conversations/record-use/archive?verify=true", &officer(), None).await;
    assert_eq!((s, v["valid"].as_bool()), (200, Some(true)), "{v}");
}

#[tokio::test]
async fn a_search_without_terms_over_a_long_period_or_by_someone_without_the_role_is_refused() {
    let app = spawn_app().await;
    for (query, says) in [
        ("", "needs words"),
        ("q=%3F%21", "needs words"),
        ("q=x&from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "at most 366 days"),
        ("q=x&from=yesterday", "RFC 3339"),
        ("q=x&to=2026-01-01T00:00:00Z&from=2026-02-01T00:00:00Z", "after"),
        ("contact=call+me", "contact"),
        ("q=x&limit=0", "limit"),
        ("q=x&after=nonsense", "cursor"),
        ("q=x&colour=red", "unknown field"),
    ] {
        let (s, v) = search(&app, &officer(), query).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_request")), "{query}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{query}: {v}");
    }
    let (s, v) = app.call("GET", "/admin/search?q=x", Some("u1"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")));
    let (s, _) = app.call("GET", "/admin/search?q=x", None, None).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn a_user_searches_the_threads_they_may_read_as_they_read_them() {
    let app = spawn_app().await;
    let (conv, _) = two_threads(&app).await;
    let mine = |user: &'static str, query: &'static str| {
        let app = &app;
        async move { app.call("GET", &format!("/search?{query}"), Some(user), None).await }
    };
    let (s, v) = mine("u1", "q=CAFE").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(texts(&v), vec!["Merci, à demain au CAFE", "Meet at the Café Crème tomorrow?"]);
    assert_eq!(v["results"][0]["sender"], "contact");
    let (_, v) = mine("u2", "q=cafe").await;
    assert_eq!(texts(&v), vec!["The cafe is closed on Sundays"], "only u2's own thread");
    let (_, v) = mine("u1", "q=4111").await;
    assert!(texts(&v).is_empty(), "the card as shown, never the original: {v}");
    let (_, v) = mine("u1", "q=cafe&contact=%2B447700900777").await;
    assert!(texts(&v).is_empty());

    // A colleague added without the history finds only what came after they joined.
    app.register("u3").await;
    let (s, v) = app.add("u1", &conv, "u3", false).await;
    assert_eq!(s, 200, "{v}");
    app.contact_says("See you at the cafe at ten").await;
    let (_, v) = mine("u3", "q=cafe").await;
    assert_eq!(texts(&v), vec!["See you at the cafe at ten"]);

    let (s, v) = mine("u1", "q=cafe&user=u2").await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_request")));
    let (s, _) = mine("u1", "").await;
    assert_eq!(s, 422);
    let (s, _) = app.call("GET", "/search?q=cafe", None, None).await;
    assert_eq!(s, 401);
}

/// On AWS the officer's search is Athena's, which no emulator here runs (`FakeAthena`): what
/// this shows is the query the connector asked (its words, threads and partitions), the answer
/// read back as results, and the search on the record. What such a query finds is shown on
/// SQLite FTS5 above and by the query's unit tests.
#[tokio::test]
async fn search_on_athena() {
    if !on_aws() {
        return;
    }
    let app = spawn_app().await;
    let (conv, _) = two_threads(&app).await;
    let row = |cells: [&str; 6]| cells.map(str::to_string).to_vec();
    *app.athena.as_ref().unwrap().rows.lock().unwrap() = vec![
        row(["conversation_id", "message_id", "at", "actor", "kind", "text_as_sent"]),
        row([&conv, "01M2", "2026-12-07T10:00:01Z", "contact", "text", "Merci, à demain au CAFE"]),
        row([&conv, "01M1", "2026-12-07T10:00:00Z", "u1", "text", "Meet at the Café Crème tomorrow?"]),
    ];
    let (s, v) = search(&app, &officer(), "q=Caf%C3%A9&contact=%2B447700900123&limit=1").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(texts(&v), vec!["Merci, à demain au CAFE"]);
    let first = &v["results"][0];
    assert_eq!((first["message_id"].as_str(), first["sender"].as_str()), (Some("01M2"), Some("contact")));
    assert_eq!(v["next"].as_str().map(|n| n.ends_with(&format!(".01M2.{conv}"))), Some(true), "{v}");

    let sql = app.athena.as_ref().unwrap().queries.lock().unwrap().last().cloned().unwrap();
    assert!(sql.contains("FROM \"connector\".\"records\""), "{sql}");
    assert!(sql.contains("contains(words, 'cafe')"), "{sql}");
    assert!(sql.contains(&format!("conversation_id IN ('{conv}')")), "{sql}");
    assert!(sql.contains("LIMIT 2"), "{sql}");

    let used = eventually("the search on the record", || async {
        let text = app.archive_response("record-use", &auditor()).await.text().await.unwrap();
        let uses: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        uses.into_iter().find(|u| u["details"]["action"] == "search")
    })
    .await;
    assert_eq!((used["actor"].as_str(), used["details"]["results"].as_u64()), (Some("officer"), Some(1)));
}

const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2,
    0, 0, 0,
];

async fn export(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.call_with("POST", "/admin/exports", token, Some(body)).await
}

/// Starts an export and waits until it is settled.
pub(crate) async fn finished_export(app: &TestApp, body: Value) -> Value {
    let (s, v) = export(app, &officer(), body).await;
    assert_eq!((s, v["status"].as_str()), (202, Some("running")), "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // It starts two seconds later, on the timer loop's next tick: up to 30 s on a loaded machine.
    for _ in 0..300 {
        let (s, v) = app.call_with("GET", &format!("/admin/exports/{id}"), &officer(), None).await;
        assert_eq!(s, 200, "{v}");
        if v["status"] != "running" {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("export {id} still running after 30 s");
}

/// The export's ZIP, as its officer downloads it (following AWS's redirect to S3).
pub(crate) async fn downloaded(app: &TestApp, id: &str) -> Vec<u8> {
    let r =
        app.client.get(app.url(&format!("/admin/exports/{id}/download"))).bearer_auth(officer()).send().await.unwrap();
    assert_eq!(r.status(), 200, "reqwest follows the 303 to S3 on AWS");
    r.bytes().await.unwrap().to_vec()
}

pub(crate) async fn verify_export(zip: &[u8]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.zip");
    std::fs::write(&path, zip).unwrap();
    match shared::export::verify(&path, ARCHIVE_KEY.as_bytes()).await {
        Ok(check) => (check.valid, check.problem.unwrap_or_default()),
        Err(e) => (false, e.to_string()),
    }
}

#[tokio::test]
async fn an_export_holds_every_record_and_file_of_its_scope_and_verifies_offline_until_a_byte_changes() {
    let app = spawn_app().await;
    let (conv, other) = two_threads(&app).await;
    let r = app.client.post(app.url("/media")).bearer_auth(app.token("u1")).header("content-type", "image/png");
    let uploaded: Value = r.body(PNG.to_vec()).send().await.unwrap().json().await.unwrap();
    let media_id = uploaded["media_id"].as_str().unwrap();
    let body = json!({"image": {"media_id": media_id, "caption": "the chart"}});
    let (s, v) = app.call("POST", &format!("/conversations/{conv}/messages"), Some("u1"), Some(body)).await;
    assert_eq!(s, 202, "{v}");
    let records = app.archive(&conv).await;

    let job = finished_export(&app, json!({"contact": PHONE})).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["records"], json!(records.len()), "{job}");
    assert_eq!(job["media"], 1);
    let zip = downloaded(&app, job["id"].as_str().unwrap()).await;
    assert_eq!(job["bytes"], json!(zip.len()));
    assert_eq!(verify_export(&zip).await, (true, String::new()));

    // What is inside: the thread's records as archived, the picture by its hash, the manifest.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.zip");
    std::fs::write(&path, &zip).unwrap();
    let reader = async_zip::tokio::read::fs::ZipFileReader::new(&path).await.unwrap();
    let names: Vec<String> =
        reader.file().entries().iter().map(|e| e.filename().as_str().unwrap().to_string()).collect();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(PNG));
    assert_eq!(names, vec!["records.jsonl".to_string(), format!("media/{sha}"), "manifest.json".to_string()]);
    let mut text = String::new();
    reader.reader_with_entry(0).await.unwrap().read_to_string_checked(&mut text).await.unwrap();
    let exported: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(exported, records, "the thread's records, as the archive holds them");
    assert!(exported.iter().all(|r| r["conversation_id"] != other.as_str()), "another contact's thread is not in it");
    let mut text = String::new();
    reader.reader_with_entry(2).await.unwrap().read_to_string_checked(&mut text).await.unwrap();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(manifest["threads"][0]["conversation_id"], conv.as_str());
    assert_eq!(
        (manifest["threads"][0]["first"].as_u64(), manifest["threads"][0]["last"].as_u64()),
        (Some(1), Some(records.len() as u64))
    );
    assert_eq!(manifest["threads"][0]["head"], records.last().unwrap()["hash"]);
    assert_eq!(manifest["scope"]["contact"], PHONE);

    // A byte changed anywhere is found, and named.
    let at = |needle: &[u8]| zip.windows(needle.len()).position(|w| w == needle).unwrap();
    let mut forged = zip.clone();
    forged[at(&PNG[12..16]) + 1] ^= 1; // inside the stored picture
    let (valid, why) = verify_export(&forged).await;
    assert!(!valid && why.contains(&format!("media/{sha}")), "{why}");
    let mut cut = zip.clone();
    let manifest_at = at(b"manifest.json");
    cut.truncate(manifest_at.saturating_sub(100));
    assert!(!verify_export(&cut).await.0, "a truncated export does not verify");

    // The export and the download are on the record.
    let uses = eventually("the export on the record", || async {
        let text = app.archive_response("record-use", &auditor()).await.text().await.unwrap();
        let uses: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (uses.iter().any(|u| u["details"]["action"] == "download")).then_some(uses)
    })
    .await;
    let asked = uses.iter().find(|u| u["details"]["action"] == "export").unwrap();
    assert_eq!(
        (asked["actor"].as_str(), asked["details"]["export_id"].as_str()),
        (Some("officer"), job["id"].as_str())
    );
}

#[tokio::test]
async fn an_export_of_nothing_is_done_and_empty_and_a_bad_one_is_refused() {
    let app = spawn_app().await;
    let job = finished_export(&app, json!({"from": "2020-01-01T00:00:00Z", "to": "2020-06-01T00:00:00Z"})).await;
    assert_eq!(
        (job["status"].as_str(), job["records"].as_u64(), job["media"].as_u64()),
        (Some("done"), Some(0), Some(0)),
        "{job}"
    );
    for (body, says) in [
        (json!({}), "needs a period"),
        (json!({"from": "2020-01-01T00:00:00Z", "to": "2022-01-01T00:00:00Z"}), "at most 366 days"),
        (json!({"contact": "nobody"}), "contact"),
        (json!({"from": "soon"}), "RFC 3339"),
    ] {
        let (s, v) = export(&app, &officer(), body.clone()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_request")), "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let (s, _) = app.call("POST", "/admin/exports", Some("u1"), Some(json!({"contact": PHONE}))).await;
    assert_eq!(s, 403);
    let (s, _) = app.call_with("GET", "/admin/exports/01NOSUCHEXPORT", &officer(), None).await;
    assert_eq!(s, 404);
}

/// The archive's objects holding records of `thread`, and whether each is under an S3 legal
/// hold (AWS only: the local vault keeps none).
async fn objects_held(app: &TestApp, thread: &str) -> Vec<(String, bool)> {
    let Some(aws) = &app.aws else { return Vec::new() };
    let bucket = app.env["ARCHIVE_BUCKET"].clone();
    let listed = aws.s3.list_objects_v2().bucket(&bucket).prefix("records/").send().await.unwrap();
    let mut out = Vec::new();
    for o in listed.contents() {
        let key = o.key().unwrap().to_string();
        let body = aws.s3.get_object().bucket(&bucket).key(&key).send().await.unwrap();
        let text = String::from_utf8(body.body.collect().await.unwrap().to_vec()).unwrap();
        let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if !records.iter().any(|r| r["conversation_id"] == thread) {
            continue;
        }
        let hold = aws.s3.get_object_legal_hold().bucket(&bucket).key(&key).send().await;
        let on = hold.ok().and_then(|h| h.legal_hold().and_then(|l| l.status()).map(|s| s.as_str() == "ON"));
        out.push((key, on.unwrap_or(false)));
    }
    out
}

#[tokio::test]
async fn a_legal_hold_covers_a_contact_s_threads_until_every_hold_on_them_is_released_each_on_the_record() {
    let app = spawn_app().await;
    let (conv, other) = two_threads(&app).await;
    app.archive(&conv).await; // every record of the thread archived
    let conv = conv.as_str();
    let app = &app;
    let place = |body: Value| async move { app.call_with("POST", "/admin/legal-holds", &officer(), Some(body)).await };
    let (s, by_contact) = place(json!({"contact": PHONE, "reason": "FCA enquiry 2026/118"})).await;
    assert_eq!(s, 201, "{by_contact}");
    assert_eq!(
        (by_contact["contact"].as_str(), by_contact["reason"].as_str()),
        (Some(PHONE), Some("FCA enquiry 2026/118"))
    );
    assert_eq!((by_contact["by"].as_str(), by_contact["released_at"].is_null()), (Some("officer"), true));
    let (s, by_thread) = place(json!({"conversation_id": conv, "reason": "litigation hold"})).await;
    assert_eq!(s, 201, "{by_thread}");
    if on_aws() {
        let held = objects_held(app, conv).await;
        assert!(!held.is_empty() && held.iter().all(|(_, on)| *on), "every object of the held thread: {held:?}");
        let others: Vec<_> =
            objects_held(app, &other).await.into_iter().filter(|(k, _)| !held.iter().any(|(h, _)| h == k)).collect();
        assert!(others.iter().all(|(_, on)| !on), "objects of other threads only are not held: {others:?}");
    }
    // What is archived later is held as it is written.
    app.send_text("u1", conv, "one more, under the hold").await;
    app.archive(conv).await;
    if on_aws() {
        let held = objects_held(app, conv).await;
        assert!(held.iter().all(|(_, on)| *on), "{held:?}");
    }

    let (s, v) = app.call_with("GET", "/admin/legal-holds", &officer(), None).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = v["holds"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![by_thread["id"].as_str().unwrap(), by_contact["id"].as_str().unwrap()], "newest first");

    // Released one: the other still covers the thread; released both: nothing is held.
    let release = |id: String| async move {
        app.call_with("DELETE", &format!("/admin/legal-holds/{id}"), &officer(), None).await
    };
    let (s, v) = release(by_contact["id"].as_str().unwrap().to_string()).await;
    assert_eq!((s, v["released_by"].as_str()), (200, Some("officer")), "{v}");
    assert!(v["released_at"].is_string());
    if on_aws() {
        assert!(objects_held(app, conv).await.iter().all(|(_, on)| *on), "the thread's own hold still covers it");
    }
    let (s, first) = release(by_thread["id"].as_str().unwrap().to_string()).await;
    assert_eq!(s, 200);
    if on_aws() {
        let held = objects_held(app, conv).await;
        assert!(held.iter().all(|(_, on)| !on), "{held:?}");
    }
    let (s, again) = release(by_thread["id"].as_str().unwrap().to_string()).await;
    assert_eq!((s, &again["released_at"]), (200, &first["released_at"]), "released once");

    // Bad input.
    for (body, status) in [
        (json!({"contact": "+447700900999", "reason": "x"}), 404),
        (json!({"conversation_id": "01NOSUCHTHREAD", "reason": "x"}), 404),
        (json!({"contact": PHONE}), 422),
        (json!({"contact": PHONE, "conversation_id": conv, "reason": "x"}), 422),
        (json!({"reason": "x"}), 422),
    ] {
        let (s, v) = place(body.clone()).await;
        assert_eq!(s, status, "{body}: {v}");
    }
    let (s, _) =
        app.call("POST", "/admin/legal-holds", Some("u1"), Some(json!({"contact": PHONE, "reason": "x"}))).await;
    assert_eq!(s, 403);
    let (s, _) = release("01NOSUCHHOLD".into()).await;
    assert_eq!(s, 404);

    // Each placement and release is on the record, with what the hold covered.
    let uses = eventually("the holds on the record", || async {
        let text = app.archive_response("record-use", &auditor()).await.text().await.unwrap();
        let uses: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (uses.iter().filter(|u| u["details"]["action"] == "legal_hold_released").count() == 2).then_some(uses)
    })
    .await;
    let placed: Vec<&Value> = uses.iter().filter(|u| u["details"]["action"] == "legal_hold").collect();
    assert_eq!(placed.len(), 2);
    assert_eq!(placed[0]["details"]["hold"]["reason"], "FCA enquiry 2026/118");
}

/// The journal's events so far: each record as archived (locally the data directory's
/// `journal.jsonl`; on AWS what the bus's rule put on the test's queue).
async fn journal(app: &TestApp) -> Vec<Value> {
    let Some(aws) = &app.aws else {
        let text = std::fs::read_to_string(app.dir.path().join("journal.jsonl")).unwrap_or_default();
        return text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    };
    let mut out = Vec::new();
    loop {
        let got = aws
            .sqs
            .receive_message()
            .queue_url(&app.env["JOURNAL_INBOX_URL"])
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            return out;
        }
        for m in got.messages() {
            let event: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            assert_eq!(
                (event["source"].as_str(), event["detail-type"].as_str()),
                (Some("whatsapp-connector.archive"), Some("ArchiveRecord"))
            );
            out.push(event["detail"].clone());
        }
    }
}

#[tokio::test]
async fn every_record_goes_out_on_the_vendors_journal_as_it_is_archived() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.send_text("u1", &conv, "for the vendor's archive").await;
    let records = app.archive(&conv).await;
    let mut seen: Vec<Value> = Vec::new();
    for _ in 0..100 {
        seen.extend(journal(&app).await.into_iter().filter(|r| r["conversation_id"] == conv.as_str()));
        if records.iter().all(|r| seen.contains(r)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for r in &records {
        assert!(seen.contains(r), "{r} is not on the journal: {seen:?}");
    }
}
