//! Pictures both ways: uploads checked by their bytes, sent to Meta by id, contacts' pictures
//! fetched and checked, and each served only to who may see it.

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2,
    0, 0, 0,
];
const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xFF, 0xD9];

async fn upload(app: &TestApp, user: &str, bytes: Vec<u8>, content_type: &str) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/media"))
        .bearer_auth(app.token(user))
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn fetch(app: &TestApp, user: &str, id: &str) -> (u16, Vec<u8>, String) {
    let r = app.client.get(app.url(&format!("/media/{id}"))).bearer_auth(app.token(user)).send().await.unwrap();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec(), ct)
}

#[tokio::test]
async fn uploads_are_checked_by_their_bytes_and_size() {
    let app = spawn_app().await;
    let (s, v) = upload(&app, "u1", JPEG.to_vec(), "image/jpeg").await;
    assert_eq!((s, v["mime_type"].as_str()), (201, Some("image/jpeg")));
    let (s, v) = upload(&app, "u1", PNG.to_vec(), "image/jpeg").await;
    assert_eq!((s, v["mime_type"].as_str()), (201, Some("image/png")), "a PNG labelled JPEG is taken as a PNG");
    let (s, v) = upload(&app, "u1", b"GIF89a\x01\x00\x01\x00".to_vec(), "image/png").await;
    assert_eq!((s, v["error"]["code"].as_str()), (415, Some("unsupported_media_type")));
    let (s, _) = upload(&app, "u1", PNG.to_vec(), "image/gif").await;
    assert_eq!(s, 415);
    let mut big = JPEG.to_vec();
    big.resize(6 * 1024 * 1024, 0);
    let (s, v) = upload(&app, "u1", big, "image/jpeg").await;
    assert_eq!((s, v["error"]["code"].as_str()), (413, Some("too_large")));
    let r =
        app.client.post(app.url("/media")).header("content-type", "image/png").body(PNG.to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_picture_is_uploaded_to_meta_sent_by_id_and_shown_to_participants_only() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.accept_optin().await;
    let (_, up) = upload(&app, "u1", PNG.to_vec(), "image/png").await;
    let media_id = up["media_id"].as_str().unwrap().to_string();
    assert_eq!(fetch(&app, "u2", &media_id).await.0, 404, "not yet in any thread of u2");

    let (s, m) = app
        .call(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some("u1"),
            Some(json!({"image": {"media_id": media_id, "caption": "card 4111 1111 1111 1111"}})),
        )
        .await;
    assert_eq!(s, 202, "{m}");
    assert_eq!((m["kind"].as_str(), m["text"].as_str()), (Some("image"), Some("card [REDACTED:card]")));
    let (_, req) = app.wait_for_request(|r| r["type"] == "image").await;
    let upload_req = app.graph.sent().into_iter().find(|r| r["_upload"].is_string()).unwrap();
    assert_eq!(
        (upload_req["messaging_product"].as_str(), upload_req["_mime"].as_str()),
        (Some("whatsapp"), Some("image/png"))
    );
    assert_eq!(req["image"]["id"], upload_req["_upload"]);
    assert_eq!(req["image"]["caption"], "card [REDACTED:card]");

    let (s, bytes, ct) = fetch(&app, "u1", &media_id).await;
    assert_eq!((s, bytes.as_slice(), ct.as_str()), (200, PNG, "image/png"));
    app.register("u2").await;
    app.add("u1", &conv, "u2", true).await;
    assert_eq!(fetch(&app, "u2", &media_id).await.0, 200, "participants of the thread may see it");
    assert_eq!(fetch(&app, "stranger", &media_id).await.0, 404);

    let (s, _) = app
        .call(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some("u1"),
            Some(json!({"image": {"media_id": "01NOSUCHMEDIA"}})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .call(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some("u1"),
            Some(json!({"image": {"media_id": media_id, "caption": "x".repeat(1025)}})),
        )
        .await;
    assert_eq!(s, 422);
}

fn inbound_image(meta_id: &str, sha: &str) -> Value {
    envelope(json!({
        "contacts": [{"profile": {"name": "Olivia"}, "wa_id": WA_ID}],
        "messages": [{"from": WA_ID, "id": format!("wamid.IMG-{meta_id}"), "timestamp": meta_now(), "type": "image",
            "image": {"caption": "the parcel", "mime_type": "image/jpeg", "sha256": sha, "id": meta_id}}]
    }))
}

async fn image_message(app: &TestApp, conv: &str) -> Value {
    app.messages("u1", conv).await.into_iter().find(|m| m["direction"] == "inbound" && m["kind"] == "image").unwrap()
}

#[tokio::test]
async fn a_contacts_picture_is_fetched_checked_and_served_to_participants() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.graph.media.lock().unwrap().insert("in-1".into(), (JPEG.to_vec(), "image/jpeg".into()));
    app.graph.download_script.lock().unwrap().push_back(500);
    let sha = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(JPEG));
    assert_eq!(app.webhook(&inbound_image("in-1", &sha)).await, 200);
    let m = eventually("picture stored", || async {
        let m = image_message(&app, &conv).await;
        m["media_id"].is_string().then_some(m)
    })
    .await;
    assert_eq!((m["text"].as_str(), m["status"].as_str()), (Some("the parcel"), Some("delivered")));
    let (s, bytes, ct) = fetch(&app, "u1", m["media_id"].as_str().unwrap()).await;
    assert_eq!((s, bytes.as_slice(), ct.as_str()), (200, JPEG, "image/jpeg"));
    assert_eq!(fetch(&app, "stranger", m["media_id"].as_str().unwrap()).await.0, 404);
}

#[tokio::test]
async fn a_colleague_added_without_the_history_fetches_only_the_pictures_sent_since() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    let send = |media_id: String| {
        let app = &app;
        let conv = conv.clone();
        async move {
            let body = json!({"image": {"media_id": media_id}});
            let (s, m) = app.call("POST", &format!("/conversations/{conv}/messages"), Some("u1"), Some(body)).await;
            assert_eq!(s, 202, "{m}");
        }
    };
    let (_, before) = upload(&app, "u1", PNG.to_vec(), "image/png").await;
    let before = before["media_id"].as_str().unwrap().to_string();
    send(before.clone()).await;
    // The contact's picture, before the join too.
    app.graph.media.lock().unwrap().insert("in-1".into(), (JPEG.to_vec(), "image/jpeg".into()));
    let sha = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(JPEG));
    assert_eq!(app.webhook(&inbound_image("in-1", &sha)).await, 200);
    let theirs = eventually("picture stored", || async {
        image_message(&app, &conv).await["media_id"].as_str().map(String::from)
    })
    .await;

    for (user, history) in [("with", true), ("without", false)] {
        app.register(user).await;
        assert_eq!(app.add("u1", &conv, user, history).await.0, 200);
    }
    for id in [&before, &theirs] {
        assert_eq!(fetch(&app, "with", id).await.0, 200);
        assert_eq!(fetch(&app, "without", id).await.0, 404, "sent before they joined without the history");
    }
    // Sent again after the join: now it is in a message they may see.
    send(before.clone()).await;
    assert_eq!(fetch(&app, "without", &before).await.0, 200);
    let (_, after) = upload(&app, "u1", JPEG.to_vec(), "image/jpeg").await;
    let after = after["media_id"].as_str().unwrap().to_string();
    send(after.clone()).await;
    assert_eq!(fetch(&app, "without", &after).await.0, 200);
}

#[tokio::test]
async fn a_picture_whose_sha256_does_not_match_is_shown_as_unavailable() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    app.graph.media.lock().unwrap().insert("in-2".into(), (JPEG.to_vec(), "image/jpeg".into()));
    let wrong = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"something else"));
    app.webhook(&inbound_image("in-2", &wrong)).await;
    let m = eventually("placeholder", || async {
        let m = image_message(&app, &conv).await;
        (m["status"] == "failed").then_some(m)
    })
    .await;
    assert_eq!(m["error"]["code"], "media_unavailable");
    assert!(m["media_id"].is_null());
    assert_eq!(m["text"], "the parcel", "the message itself is never lost");
}

/// The three-step upload as a client does it: announce, put the bytes where it says (the API
/// itself, with the token; or a presigned S3 URL, without), then complete.
async fn upload_in_steps(app: &TestApp, user: &str, bytes: Vec<u8>, mime: &str) -> (u16, Value, String) {
    let (s, slot) = app.call("POST", "/media/uploads", Some(user), Some(json!({"mime_type": mime}))).await;
    assert_eq!(s, 201, "{slot}");
    let id = slot["media_id"].as_str().unwrap().to_string();
    let (put, body) = put_bytes(app, user, &slot, bytes).await;
    if put == 413 {
        // The API took the bytes itself and refused them at once (on S3: at completion).
        return (put, body, id);
    }
    assert!((200..300).contains(&put), "the bytes are taken: {put}");
    let (s, v) = app.call("POST", &format!("/media/uploads/{id}/complete"), Some(user), None).await;
    (s, v, id)
}

async fn put_bytes(app: &TestApp, user: &str, slot: &Value, bytes: Vec<u8>) -> (u16, Value) {
    assert_eq!(slot["upload"]["method"], "PUT");
    let url = slot["upload"]["url"].as_str().unwrap();
    let mut req = if url.starts_with('/') {
        app.client.put(app.url(url)).bearer_auth(app.token(user))
    } else {
        app.client.put(url)
    };
    for (k, v) in slot["upload"]["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    let r = req.body(bytes).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_picture_near_the_limit_goes_up_and_down_around_the_api_payload_limit() {
    let app = spawn_app().await;
    // 5 MB: 6.7 MB once base64-encoded, past API Gateway's and Lambda's 6 MB payloads.
    let mut big = PNG.to_vec();
    big.resize(5 * 1024 * 1024, 7);
    let (s, v, id) = upload_in_steps(&app, "u1", big.clone(), "image/png").await;
    assert_eq!(
        (s, v["mime_type"].as_str(), v["size"].as_u64()),
        (201, Some("image/png"), Some(big.len() as u64)),
        "{v}"
    );
    let (s, again) = app.call("POST", &format!("/media/uploads/{id}/complete"), Some("u1"), None).await;
    assert_eq!((s, &again), (201, &v), "completing again answers the same picture");

    let r = app.client.get(app.url(&format!("/media/{id}"))).bearer_auth(app.token("u1")).send().await.unwrap();
    assert_eq!(r.status(), 200, "followed to wherever the picture is");
    assert_eq!(Sha256::digest(r.bytes().await.unwrap()), Sha256::digest(&big));
    if on_aws() {
        let no_follow = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let r = no_follow.get(app.url(&format!("/media/{id}"))).bearer_auth(app.token("u1")).send().await.unwrap();
        assert_eq!(r.status(), 307, "on S3 the client fetches the bytes itself");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(r.headers()["location"].to_str().unwrap().contains("X-Amz-Signature"));
    }

    // The picture is sent by its id like any other.
    let conv = app.opted_in_thread("u1").await;
    let (s, m) = app
        .call("POST", &format!("/conversations/{conv}/messages"), Some("u1"), Some(json!({"image": {"media_id": id}})))
        .await;
    assert_eq!(s, 202, "{m}");
}

#[tokio::test]
async fn an_upload_is_checked_when_completed_and_only_its_uploader_may_put_or_complete_it() {
    let app = spawn_app().await;
    let (s, v) = app.call("POST", "/media/uploads", Some("u1"), Some(json!({"mime_type": "image/gif"}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (415, Some("unsupported_media_type")));

    let mut over = JPEG.to_vec();
    over.resize(5 * 1024 * 1024 + 1, 0);
    let (s, v, _) = upload_in_steps(&app, "u1", over, "image/jpeg").await;
    assert_eq!((s, v["error"]["code"].as_str()), (413, Some("too_large")), "{v}");
    let (s, v, _) = upload_in_steps(&app, "u1", b"GIF89a\x01\x00\x01\x00".to_vec(), "image/png").await;
    assert_eq!((s, v["error"]["code"].as_str()), (415, Some("unsupported_media_type")), "{v}");

    // u2 cannot complete, overwrite or fetch u1's upload.
    let (_, slot) = app.call("POST", "/media/uploads", Some("u1"), Some(json!({"mime_type": "image/png"}))).await;
    let id = slot["media_id"].as_str().unwrap();
    assert_eq!(put_bytes(&app, "u1", &slot, PNG.to_vec()).await.0 / 100, 2);
    assert_eq!(app.call("POST", &format!("/media/uploads/{id}/complete"), Some("u2"), None).await.0, 404);
    let r = app
        .client
        .put(app.url(&format!("/media/uploads/{id}")))
        .bearer_auth(app.token("u2"))
        .body(JPEG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "u2's bytes go to an upload of u2's own, never u1's");
    let (s, v) = app.call("POST", &format!("/media/uploads/{id}/complete"), Some("u1"), None).await;
    assert_eq!((s, v["mime_type"].as_str()), (201, Some("image/png")), "{v}");
    assert_eq!(app.call("POST", &format!("/media/uploads/{id}/complete"), Some("u2"), None).await.0, 404);
    assert_eq!(fetch(&app, "u2", id).await.0, 404);
    // Never announced, or not an id at all.
    assert_eq!(app.call("POST", "/media/uploads/01NEVERANNOUNCED/complete", Some("u1"), None).await.0, 404);
    assert_eq!(app.call("POST", "/media/uploads/..%2F..%2Fetc/complete", Some("u1"), None).await.0, 404);
}

fn from_contact(id: &str, kind: &str, content: Value, context: Option<&str>) -> Value {
    let mut m = json!({"from": WA_ID, "id": format!("wamid.KIND-{id}"), "timestamp": meta_now(), "type": kind});
    m[kind] = content;
    if let Some(c) = context {
        m["context"] = json!({"from": "15550783881", "id": c});
    }
    envelope(json!({"contacts": [{"profile": {"name": "Olivia"}, "wa_id": WA_ID}], "messages": [m]}))
}

#[tokio::test]
async fn every_kind_a_contact_sends_is_kept_with_its_content_its_file_and_what_it_answers() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.send_text("u1", &conv, "Could you send the signed mandate?").await;
    let (ours, _) = app.wait_for_request(|r| r["text"]["body"] == "Could you send the signed mandate?").await;
    let asked = app.messages("u1", &conv).await.into_iter().find(|m| m["text"] == "Could you send the signed mandate?");
    let asked = asked.unwrap()["id"].as_str().unwrap().to_string();
    // Meta says it was sent: by then the send, and its wamid, are on record.
    app.status(&ours, "sent", app.now_unix().await, None).await;
    eventually("our message sent", || async {
        app.messages("u1", &conv).await.iter().any(|m| m["id"] == asked.as_str() && m["status"] == "sent").then_some(())
    })
    .await;

    let pdf = b"%PDF-1.7 the signed mandate".to_vec();
    let voice = b"OggS a voice instruction".to_vec();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b));
    app.graph.media.lock().unwrap().insert("doc-1".into(), (pdf.clone(), "application/pdf".into()));
    app.graph.media.lock().unwrap().insert("voice-1".into(), (voice.clone(), "audio/ogg; codecs=opus".into()));
    let document = json!({"caption": "Signed", "filename": "mandate.pdf", "mime_type": "application/pdf",
        "sha256": b64(&pdf), "id": "doc-1"});
    let audio = json!({"mime_type": "audio/ogg; codecs=opus", "sha256": b64(&voice), "id": "voice-1", "voice": true});
    let location =
        json!({"latitude": 51.501364, "longitude": -0.14189, "name": "Branch office", "address": "1 Example St"});
    let card = json!([{"name": {"formatted_name": "Harry Patel"}, "phones": [{"phone": "+44 7700 900456"}]}]);
    let list = json!({"type": "list_reply", "list_reply": {"id": "branch-london", "title": "London"}});
    for body in [
        from_contact("doc", "document", document, Some(&ours)),
        from_contact("voice", "audio", audio, None),
        from_contact("loc", "location", location, None),
        from_contact("card", "contacts", card, None),
        from_contact("list", "interactive", list, None),
        from_contact("poll", "unsupported", json!({"type": "poll_creation"}), None),
        from_contact("new", "hologram", json!({"label": "next year's kind"}), None),
    ] {
        assert_eq!(app.webhook(&body).await, 200);
    }
    let inbound = |kind: &'static str| {
        let app = &app;
        let conv = conv.clone();
        async move {
            eventually(kind, || async {
                let m = app.messages("u1", &conv).await.into_iter().find(|m| m["kind"] == kind)?;
                // A file's message is complete once its bytes are kept.
                (m.get("media").is_none() || m["media"]["id"].is_string()).then_some(m)
            })
            .await
        }
    };
    let doc = inbound("document").await;
    let hex = |b: &[u8]| hex::encode(Sha256::digest(b));
    assert_eq!(doc["text"], "Signed");
    assert_eq!(doc["reply_to"], asked.as_str(), "it answers our message");
    assert_eq!(doc["media"]["filename"], "mandate.pdf");
    assert_eq!(doc["media"]["sha256"], hex(&pdf).as_str());
    assert_eq!(
        (doc["media"]["size"].as_u64(), doc["media"]["mime_type"].as_str()),
        (Some(pdf.len() as u64), Some("application/pdf"))
    );
    assert_eq!(doc["media"]["id"], doc["media_id"]);
    let (s, bytes, ct) = fetch(&app, "u1", doc["media_id"].as_str().unwrap()).await;
    assert_eq!((s, bytes, ct.as_str()), (200, pdf.clone(), "application/pdf"));
    assert_eq!(fetch(&app, "stranger", doc["media_id"].as_str().unwrap()).await.0, 404);

    let note = inbound("audio").await;
    assert_eq!(
        (note["media"]["voice"].as_bool(), note["media"]["sha256"].as_str()),
        (Some(true), Some(hex(&voice).as_str()))
    );
    assert!(note["reply_to"].is_null());
    let place = inbound("location").await;
    assert_eq!(
        (place["location"]["name"].as_str(), place["location"]["latitude"].as_f64()),
        (Some("Branch office"), Some(51.501364))
    );
    let card = inbound("contacts").await;
    assert_eq!(
        (card["contacts"][0]["phones"][0]["phone"].as_str(), card["text"].as_str()),
        (Some("+44 7700 900456"), Some("Harry Patel"))
    );
    let tap = app.messages("u1", &conv).await.into_iter().find(|m| m["interactive"]["type"] == "list_reply").unwrap();
    assert_eq!(tap["interactive"], json!({"type": "list_reply", "id": "branch-london", "title": "London"}));
    let unknown: Vec<String> = app
        .messages("u1", &conv)
        .await
        .into_iter()
        .filter(|m| m["kind"] == "unsupported")
        .map(|m| m["unsupported"]["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(unknown, ["poll_creation", "hologram"]);

    // On the record: each with its content, the file with what its bytes are.
    let records = app.archive(&conv).await;
    let record =
        |id: &Value| records.iter().find(|r| r["kind"] == "message" && r["message_id"] == *id).cloned().unwrap();
    let d = record(&doc["id"]);
    assert_eq!(
        (d["details"]["kind"].as_str(), d["details"]["file"]["filename"].as_str()),
        (Some("document"), Some("mandate.pdf"))
    );
    assert_eq!(d["details"]["reply_to"], asked.as_str());
    let kept = records.iter().find(|r| r["kind"] == "media" && r["message_id"] == doc["id"]);
    let kept = kept.expect("the kept file is on the record");
    assert_eq!(
        (kept["details"]["sha256"].as_str(), kept["details"]["size"].as_u64()),
        (Some(hex(&pdf).as_str()), Some(pdf.len() as u64))
    );
    assert_eq!(record(&place["id"])["details"]["location"]["address"], "1 Example St");
    assert_eq!(record(&card["id"])["details"]["contacts"][0]["name"]["formatted_name"], "Harry Patel");
    let hologram = records.iter().find(|r| r["details"]["unsupported"]["type"] == "hologram").unwrap();
    assert_eq!(hologram["details"]["unsupported"]["content"]["hologram"]["label"], "next year's kind");
}

#[tokio::test]
async fn documents_audio_video_and_places_go_out_as_meta_takes_them_and_a_reply_quotes() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.contact_says("Please send me the contract").await;
    let asked =
        app.messages("u1", &conv).await.into_iter().find(|m| m["text"] == "Please send me the contract").unwrap();
    let send = |body: Value| {
        let app = &app;
        let conv = conv.clone();
        async move { app.call("POST", &format!("/conversations/{conv}/messages"), Some("u1"), Some(body)).await }
    };

    let pdf = b"%PDF-1.7 the contract".to_vec();
    let (s, up) = upload(&app, "u1", pdf.clone(), "application/pdf").await;
    assert_eq!((s, up["mime_type"].as_str()), (201, Some("application/pdf")), "{up}");
    let doc = up["media_id"].as_str().unwrap().to_string();
    let (s, m) = send(json!({"document": {"media_id": doc, "filename": "contract.pdf", "caption": "Here it is"},
        "reply_to": asked["id"]}))
    .await;
    assert_eq!(s, 202, "{m}");
    assert_eq!((m["kind"].as_str(), m["reply_to"].as_str()), (Some("document"), asked["id"].as_str()));
    assert_eq!(
        (m["media"]["filename"].as_str(), m["media"]["size"].as_u64()),
        (Some("contract.pdf"), Some(pdf.len() as u64))
    );
    let (_, req) = app.wait_for_request(|r| r["type"] == "document").await;
    assert_eq!(
        (req["document"]["filename"].as_str(), req["document"]["caption"].as_str()),
        (Some("contract.pdf"), Some("Here it is"))
    );
    assert!(req["document"]["id"].is_string(), "sent by Meta's id: {req}");
    assert_eq!(req["context"]["message_id"], asked_wamid(&app, &asked).await.as_str(), "quoted for the contact");

    let ogg = b"OggS\0\x02a voice note".to_vec();
    let (s, up) = upload(&app, "u1", ogg, "audio/ogg").await;
    assert_eq!(s, 201, "{up}");
    let (s, m) = send(json!({"audio": {"media_id": up["media_id"]}})).await;
    assert_eq!((s, m["kind"].as_str()), (202, Some("audio")), "{m}");
    let (voice, req) = app.wait_for_request(|r| r["type"] == "audio").await;
    assert!(req["audio"].get("caption").is_none());
    // The contact plays it: past read, shown and on the record.
    let now = app.now_unix().await;
    for status in ["delivered", "played", "read"] {
        assert_eq!(app.status(&voice, status, now, None).await, 200);
    }
    let played = eventually("the voice note played", || async {
        let m = app.messages("u1", &conv).await.into_iter().find(|x| x["id"] == m["id"])?;
        (m["status"] == "played" && m["status_at"]["read"].is_string()).then_some(m)
    })
    .await;
    assert!(played["status_at"]["played"].is_string());
    let (s, _) = send(json!({"audio": {"media_id": up["media_id"], "caption": "no"}})).await;
    assert_eq!(s, 422, "an audio takes no caption");

    let mp4 = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec();
    let (_, up) = upload(&app, "u1", mp4, "video/mp4").await;
    let (s, m) = send(json!({"video": {"media_id": up["media_id"], "caption": "The walkthrough"}})).await;
    assert_eq!((s, m["kind"].as_str()), (202, Some("video")), "{m}");
    app.wait_for_request(|r| r["type"] == "video" && r["video"]["caption"] == "The walkthrough").await;
    let (s, v) = send(json!({"image": {"media_id": up["media_id"]}})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (415, Some("unsupported_media_type")), "a video is no picture");

    let (s, m) = send(json!({"location": {"latitude": 51.501364, "longitude": -0.14189, "name": "Our branch"}})).await;
    assert_eq!((s, m["location"]["name"].as_str()), (202, Some("Our branch")), "{m}");
    let (_, req) = app.wait_for_request(|r| r["type"] == "location").await;
    assert_eq!(
        (req["location"]["latitude"].as_f64(), req["location"]["name"].as_str()),
        (Some(51.501364), Some("Our branch"))
    );

    // Bad input: a clear error, nothing sent.
    let (s, _) = send(json!({"location": {"latitude": 91, "longitude": 0}})).await;
    assert_eq!(s, 422);
    let (s, v) = send(json!({"text": "which?", "reply_to": "01NOSUCHMESSAGE"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_request")), "{v}");
    let (s, _) = send(json!({"text": "a", "location": {"latitude": 1, "longitude": 1}})).await;
    assert_eq!(s, 422, "one kind per message");
    let (s, v) = upload(&app, "u1", b"GIF89a".to_vec(), "image/gif").await;
    assert_eq!((s, v["error"]["code"].as_str()), (415, Some("unsupported_media_type")));
    let (s, _) = upload(&app, "u1", pdf.clone(), "image/png").await;
    assert_eq!(s, 415, "a PDF labelled a picture");
    let mut sticker = b"RIFF\0\0\0\0WEBPVP8 ".to_vec();
    sticker.resize(600 * 1024, 0);
    let (s, v) = upload(&app, "u1", sticker, "image/webp").await;
    assert_eq!((s, v["error"]["code"].as_str()), (413, Some("too_large")), "a sticker is at most 500 KB");

    // A document larger than POST /media takes goes in three steps.
    let mut big = b"%PDF-1.7 ".to_vec();
    big.resize(7 * 1024 * 1024, b'x');
    let (s, done, _) = upload_in_steps(&app, "u1", big.clone(), "application/pdf").await;
    assert_eq!((s, done["size"].as_u64()), (201, Some(big.len() as u64)), "{done}");
    let (s, bytes, ct) = fetch(&app, "u1", done["media_id"].as_str().unwrap()).await;
    assert_eq!((s, bytes.len(), ct.as_str()), (200, big.len(), "application/pdf"));
}

/// Meta's id of `m`, a message the contact sent.
async fn asked_wamid(app: &TestApp, m: &Value) -> String {
    let records = app.archive(m["conversation_id"].as_str().unwrap()).await;
    let record = records.iter().find(|r| r["message_id"] == m["id"] && r["kind"] == "message").unwrap();
    record["wamid"].as_str().unwrap().to_string()
}
