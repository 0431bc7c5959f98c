//! The client API's surface: every route's auth and scope, bad input answered with a 4xx
//! JSON error (never a 5xx), history pages, list order and the readers' locales.

use serde_json::{json, Value};

use crate::helpers::*;

/// Every client route, with a body where it takes one.
fn routes(conv: &str) -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        ("POST", "/conversations".into(), Some(json!({"contact": {"phone": PHONE}}))),
        ("GET", "/conversations".into(), None),
        ("GET", format!("/conversations/{conv}"), None),
        ("POST", format!("/conversations/{conv}/optin"), None),
        ("POST", format!("/conversations/{conv}/messages"), Some(json!({"text": "hi"}))),
        ("GET", format!("/conversations/{conv}/messages"), None),
    ]
}

#[tokio::test]
async fn every_route_needs_a_valid_token() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let expired = shared::http::issue_token(
        JWT,
        &shared::http::Claims {
            sub: "u1".into(),
            name: None,
            sub_org: None,
            region: None,
            locale: None,
            roles: vec![],
            exp: 1_000_000,
        },
    );
    let forged = shared::http::issue_token(
        "not-the-secret",
        &shared::http::Claims {
            sub: "u1".into(),
            name: None,
            sub_org: None,
            region: None,
            locale: None,
            roles: vec![],
            exp: i64::MAX / 2,
        },
    );
    for (method, path, body) in routes(&conv) {
        for auth in [None, Some("garbage".to_string()), Some(expired.clone()), Some(forged.clone())] {
            let mut req = app.client.request(method.parse().unwrap(), app.url(&path));
            if let Some(t) = &auth {
                req = req.bearer_auth(t);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path} {auth:?}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "unauthorized");
        }
    }
}

#[tokio::test]
async fn a_non_participant_gets_404_on_every_route_of_the_thread() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    for (method, path, body) in routes(&conv).into_iter().filter(|(_, p, _)| p.contains(&conv)) {
        let (s, v) = app.call(method, &path, Some("intruder"), body.clone()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")), "{method} {path}");
        let (s, _) = app.call(method, &path.replace(&conv, "01NOSUCHCONVERSATION000000"), Some("u1"), body).await;
        assert_eq!(s, 404, "{method} {path} unknown id");
    }
    let (_, list) = app.call("GET", "/conversations", Some("intruder"), None).await;
    assert_eq!(list["conversations"], json!([]));
}

#[tokio::test]
async fn bad_input_gets_a_4xx_json_error_never_a_5xx() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let msgs = format!("/conversations/{conv}/messages");
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("POST", "/conversations", b"{not json".to_vec(), 400, "invalid_json"),
        ("POST", "/conversations", b"".to_vec(), 400, "invalid_json"),
        ("POST", "/conversations", br#"{"contact": {"phone": 447700900123}}"#.to_vec(), 422, "invalid_request"),
        (
            "POST",
            "/conversations",
            br#"{"contact": {"phone": "+447700900123"}, "extra": 1}"#.to_vec(),
            422,
            "invalid_request",
        ),
        ("POST", "/conversations", br#"{"contact": {"phone": "07700 900123"}}"#.to_vec(), 422, "invalid_request"),
        ("POST", "/conversations", br#"{"contact": {"phone": "+12"}}"#.to_vec(), 422, "invalid_request"),
        ("POST", "/conversations", br#"[]"#.to_vec(), 422, "invalid_request"),
        ("POST", &msgs, b"{".to_vec(), 400, "invalid_json"),
        ("POST", &msgs, br#"{"text": 5}"#.to_vec(), 422, "invalid_request"),
        ("POST", &msgs, br#"{"text": "hi", "colour": "red"}"#.to_vec(), 422, "invalid_request"),
        ("POST", &msgs, br#"{}"#.to_vec(), 422, "invalid_request"),
        (
            "POST",
            &msgs,
            br#"{"text": "a", "template": {"name": "x", "language": "en"}}"#.to_vec(),
            422,
            "invalid_request",
        ),
        ("POST", &msgs, br#"{"text": "   "}"#.to_vec(), 422, "invalid_request"),
        ("POST", &msgs, br#"{"template": {"name": "", "language": "en"}}"#.to_vec(), 422, "invalid_request"),
        ("POST", &msgs, br#"{"text": "a", "client_id": ""}"#.to_vec(), 422, "invalid_request"),
        ("POST", &msgs, format!(r#"{{"text": "{}"}}"#, "é".repeat(4097)).into_bytes(), 422, "invalid_request"),
        ("POST", &msgs, format!(r#"{{"text": "{}"}}"#, "x".repeat(1024 * 1024 + 1)).into_bytes(), 413, "too_large"),
        ("POST", "/dev/clock", br#"{"advance_secs": -5}"#.to_vec(), 422, "invalid_request"),
        ("POST", "/dev/clock", br#"{"advance_secs": "soon"}"#.to_vec(), 422, "invalid_request"),
    ];
    for (method, path, body, status, code) in cases {
        let (s, v) = app.raw(method, path, Some("u1"), body.clone()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path} {}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
    }
    // 4096 characters (not bytes) is allowed.
    let (s, _) = app.call("POST", &msgs, Some("u1"), Some(json!({"text": "é".repeat(4096)}))).await;
    assert_eq!(s, 202);
    for q in ["?limit=0", "?limit=501", "?limit=abc", "?bogus=1"] {
        let (s, v) = app.call("GET", &format!("{msgs}{q}"), Some("u1"), None).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_request")), "{q}");
    }
    let (s, v) = app.call("GET", "/no/such/route", Some("u1"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn history_pages_with_after_and_limit() {
    let app = spawn_app().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.send_text("u1", &conv, &format!("m{i}")).await["id"].as_str().unwrap().to_string());
    }
    let (_, page) =
        app.call("GET", &format!("/conversations/{conv}/messages?after={}&limit=2", ids[1]), Some("u1"), None).await;
    let got: Vec<_> =
        page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, ids[2..4].to_vec());
}

#[tokio::test]
async fn threads_are_listed_newest_activity_first_and_notices_follow_the_readers_locale() {
    let app = spawn_app().await;
    let a = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    let b = app.start_conversation("u1", "+447700900456").await["id"].as_str().unwrap().to_string();
    app.send_text("u1", &a, "bump").await;
    let (_, list) = app.call("GET", "/conversations", Some("u1"), None).await;
    let ids: Vec<_> =
        list["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, vec![a.clone(), b]);
    for (locale, start) in [
        ("fr", "Une demande"),
        ("de", "Eine Einwilligungsanfrage"),
        ("pt", "Um pedido"),
        ("es", "Se envió"),
        ("en", "An opt-in"),
    ] {
        let r = app
            .client
            .get(app.url(&format!("/conversations/{a}/messages")))
            .bearer_auth(token_for("u1", locale))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        let n = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["notice"]["code"] == "optin_requested")
            .unwrap()
            .clone();
        assert!(n["text"].as_str().unwrap().starts_with(start), "{locale}: {}", n["text"]);
    }
}

/// A token signed with the right key, with these claims as they are.
fn raw_token(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn half_filled_reserved_or_premature_identities_are_refused() {
    let app = spawn_app().await;
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let full = json!({"sub": "u9", "name": "U Nine", "sub_org": "retail", "region": "eu", "exp": exp});
    assert_eq!(app.call_with("GET", "/conversations", &raw_token(full.clone()), None).await.0, 200);
    let mut cases = Vec::new();
    for drop in ["sub_org", "region"] {
        let mut c = full.clone();
        c.as_object_mut().unwrap().remove(drop);
        cases.push((c, 401, format!("no {drop}")));
    }
    for sub in ["system", "contact"] {
        let mut c = full.clone();
        c["sub"] = json!(sub);
        cases.push((c, 401, format!("sub {sub}")));
    }
    let mut early = full.clone();
    early["nbf"] = json!(exp); // not valid for another hour
    cases.push((early, 401, "nbf in the future".into()));
    for (claims, status, why) in cases {
        let (got, body) = app.call_with("GET", "/conversations", &raw_token(claims), None).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some("unauthorized")), "{why}: {body}");
    }
    // A stock token (no sub_org, no region) is served once an admin has set them.
    let stock = json!({"sub": "cognito-7", "name": "Stock Token", "exp": exp});
    let (got, body) = app.call_with("GET", "/conversations", &raw_token(stock.clone()), None).await;
    assert_eq!(got, 401, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("sub_org"), "{body}");
    let admin = token_with("boss", "en", "retail", "eu", &["admin"]);
    let profile =
        json!({"name": "Stock", "sub_org": "retail", "region": "eu", "locale": "en", "whatsapp_enabled": true});
    assert_eq!(app.call_with("PUT", "/directory/users/cognito-7", &admin, Some(profile)).await.0, 200);
    assert_eq!(app.call_with("GET", "/conversations", &raw_token(stock), None).await.0, 200);
    // A role that is not one of ours grants nothing, whatever its name holds.
    let mut odd = full.clone();
    odd["roles"] = json!(["support admin", "superuser"]);
    let (got, _) = app.call_with("GET", "/conversations?status=unassigned", &raw_token(odd), None).await;
    assert_eq!(got, 403, "'support admin' is not admin");
}

#[tokio::test]
async fn the_dev_clock_refuses_a_leap_it_could_not_keep_and_keeps_working() {
    let app = spawn_app().await;
    let (got, body) = app.call("POST", "/dev/clock", None, Some(json!({"advance_secs": 300_000_000_000i64}))).await;
    assert_eq!(got, 422, "{body}");
    let (got, _) = app.call("POST", "/dev/clock", None, Some(json!({"advance_secs": 3600}))).await;
    assert_eq!(got, 200);
    assert_eq!(app.call("GET", "/conversations", Some("u1"), None).await.0, 200, "the connector still answers");
}

#[tokio::test]
async fn oversized_ids_queries_and_template_parameters_are_refused_not_failed() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    let long = "x".repeat(3000);
    for path in [
        format!("/conversations/{long}"),
        format!("/conversations/{long}/messages"),
        format!("/conversations/{conv}/messages?after={long}"),
        format!("/media/{long}"),
    ] {
        let (got, body) = app.call("GET", &path, Some("u1"), None).await;
        assert_eq!(got, 422, "{} → {body}", &path[..40]);
        assert_eq!(body["error"]["code"], "invalid_request");
    }
    let send = |params: Vec<String>| json!({"template": {"name": "order_update", "language": "en", "params": params}});
    for params in [vec!["p".to_string(); 21], vec!["y".repeat(2000)]] {
        let (got, body) =
            app.call("POST", &format!("/conversations/{conv}/messages"), Some("u1"), Some(send(params))).await;
        assert_eq!(got, 422, "{body}");
    }
    let (got, body) = app
        .call(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some("u1"),
            Some(json!({"template": {"name": long, "language": "en"}})),
        )
        .await;
    assert_eq!(got, 422, "{body}");
}
