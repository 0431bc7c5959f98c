//! Group threads: add (same sub-organization and region), remove, leave and transfer, with or
//! without the history; the contact and the employees told, and told when telling failed.

use serde_json::{json, Value};

use crate::helpers::*;

async fn notice_texts(app: &TestApp, user: &str, conv: &str) -> Vec<String> {
    app.messages(user, conv)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "notice")
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn directory_lists_enabled_colleagues_of_the_same_sub_org_and_region_by_name_prefix() {
    let app = spawn_app().await;
    let admin = token_with("boss", "en", "retail", "eu", &["admin"]);
    for (id, name, sub_org, region, enabled) in [
        ("alice", "Alice Smith", "retail", "eu", true),
        ("alan", "alan Turing", "retail", "eu", true),
        ("bob", "Bob Jones", "retail", "eu", true),
        ("off", "Alfred Off", "retail", "eu", false),
        ("far", "Alma Far", "retail", "us", true),
        ("other", "Alba Other", "wholesale", "eu", true),
    ] {
        let (s, v) = app.call_with("PUT", &format!("/directory/users/{id}"), &admin, Some(json!({"name": name, "sub_org": sub_org, "region": region, "locale": "en", "whatsapp_enabled": enabled}))).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["user_id"], id);
    }
    let (s, v) = app.call("GET", "/directory/users?q=al", Some("u1"), None).await;
    assert_eq!(s, 200);
    let ids: Vec<_> = v["users"].as_array().unwrap().iter().map(|u| u["user_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["alan", "alice"]);
    assert_eq!(v["users"][0]["sub_org"], "retail");
    assert_eq!(v["users"][0]["whatsapp_enabled"], true);

    let conv = app.opted_in_thread("u1").await;
    assert_eq!(app.add("u1", &conv, "alice", true).await.0, 200);
    let (_, v) = app.call("GET", &format!("/directory/users?q=AL&conversation_id={conv}"), Some("u1"), None).await;
    let ids: Vec<_> = v["users"].as_array().unwrap().iter().map(|u| u["user_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["alan"]);
    let (s, _) = app.call("GET", &format!("/directory/users?conversation_id={conv}"), Some("intruder"), None).await;
    assert_eq!(s, 404);

    let (s, v) = app
        .call(
            "PUT",
            "/directory/users/x",
            Some("u1"),
            Some(json!({"name": "X", "sub_org": "retail", "region": "eu", "locale": "en", "whatsapp_enabled": true})),
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")));
    let (s, _) = app.call_with("PUT", "/directory/users/x", &admin, Some(json!({"name": "X"}))).await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn a_users_first_authenticated_call_of_any_kind_records_them_in_the_directory() {
    let app = spawn_app().await;
    let search = |q: &'static str| {
        let app = &app;
        async move {
            let (s, v) = app.call("GET", &format!("/directory/users?q={q}"), Some("u1"), None).await;
            assert_eq!(s, 200, "{v}");
            v["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["user_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    // Refused before the token is checked, or by a bad token: nobody is recorded.
    let (s, _) = app.call_with("GET", "/conversations", "not-a-token", None).await;
    assert_eq!(s, 401);
    assert!(search("user").await.iter().all(|id| id == "u1"));
    // A read, a refused write and another sub-organization's user: each caller is recorded once,
    // in their own sub-organization and region.
    let (s, _) = app.call("GET", "/conversations", Some("reader"), None).await;
    assert_eq!(s, 200);
    let (s, _) = app.call("POST", "/conversations", Some("writer"), Some(json!({"contact": {}}))).await;
    assert_eq!(s, 422);
    let outsider = token_with("outsider", "en", "wholesale", "eu", &[]);
    assert_eq!(app.call_with("GET", "/conversations", &outsider, None).await.0, 200);
    assert_eq!(search("user").await, vec!["reader", "u1", "writer"]);
    let (_, v) = app.call_with("GET", "/directory/users?q=user", &outsider, None).await;
    assert_eq!(v["users"][0]["user_id"], "outsider");
    assert_eq!(v["users"][0]["name"], "User outsider");
}

#[tokio::test]
async fn an_admin_who_moves_or_disables_a_user_overrides_the_token_they_still_hold() {
    let app = spawn_app().await;
    let admin = token_with("boss", "en", "retail", "eu", &["admin"]);
    let put = |id: &'static str, sub_org: &'static str, enabled: bool| {
        let body = json!({"name": id, "sub_org": sub_org, "region": "eu", "locale": "en", "whatsapp_enabled": enabled});
        let admin = admin.clone();
        let app = &app;
        async move { app.call_with("PUT", &format!("/directory/users/{id}"), &admin, Some(body)).await }
    };
    put("rita", "retail", true).await;
    put("wes", "wholesale", true).await;
    // u1's token says retail/eu; an admin moved u1 to wholesale since.
    let conv = app.opted_in_thread("u1").await;
    let (s, v) = put("u1", "wholesale", true).await;
    assert_eq!((s, v["managed"].as_bool()), (200, Some(true)));
    let (_, v) = app.call("GET", "/directory/users", Some("u1"), None).await;
    let ids: Vec<_> = v["users"].as_array().unwrap().iter().map(|u| u["user_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"wes") && !ids.contains(&"rita"), "{ids:?}");
    let (s, v) = app.add("u1", &conv, "rita", true).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("not_addable")), "the old scope no longer counts");
    assert_eq!(app.add("u1", &conv, "wes", true).await.0, 200);

    // Turned off: every request of theirs is refused, the live stream included, though their
    // token is still valid; turned on again, they are back.
    put("u1", "wholesale", false).await;
    for (method, path) in [("GET", "/conversations".to_string()), ("GET", format!("/conversations/{conv}/messages"))] {
        let (s, v) = app.call(method, &path, Some("u1"), None).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")), "{path}");
    }
    if !on_aws() {
        // The SSE stream is the embedded runner's (on AWS: the WebSocket API, its $connect
        // tested in functions/live).
        let r = app.client.get(app.url("/events")).bearer_auth(app.token("u1")).send().await.unwrap();
        assert_eq!(r.status(), 403);
    }
    let (s, _) =
        app.call("POST", &format!("/conversations/{conv}/messages"), Some("u1"), Some(json!({"text": "hi"}))).await;
    assert_eq!(s, 403);
    put("u1", "wholesale", true).await;
    assert_eq!(app.call("GET", "/conversations", Some("u1"), None).await.0, 200);

    // An admin cannot lock themselves out: no one could turn them on again from their token.
    let me = json!({"name": "Boss", "sub_org": "retail", "region": "eu", "locale": "en", "whatsapp_enabled": false});
    let (s, v) = app.call_with("PUT", "/directory/users/boss", &admin, Some(me)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_request")), "{v}");
    assert_eq!(app.call_with("GET", "/conversations", &admin, None).await.0, 200);
}

#[tokio::test]
async fn only_addable_colleagues_join_and_the_eleventh_is_refused() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    // Another sub-organization, and a disabled user.
    app.call_with("GET", "/conversations", &token_with("w1", "en", "wholesale", "eu", &[]), None).await;
    let admin = token_with("boss", "en", "retail", "eu", &["admin"]);
    app.call_with(
        "PUT",
        "/directory/users/off",
        &admin,
        Some(json!({"name": "Off", "sub_org": "retail", "region": "eu", "locale": "en", "whatsapp_enabled": false})),
    )
    .await;
    let mut answers = Vec::new();
    for who in ["w1", "off", "nobody"] {
        let (s, v) = app.add("u1", &conv, who, true).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("not_addable")), "{who}");
        answers.push(v["error"]["message"].as_str().unwrap().replace(who, "X"));
    }
    // Another organization, a disabled user and an unknown one read the same: the answer
    // tells nothing about the directory outside the caller's partition.
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    app.register("u2").await;
    let (s, _) = app.add("intruder", &conv, "u2", true).await;
    assert_eq!(s, 404, "only a participant may add");

    for i in 2..=10 {
        app.register(&format!("u{i}")).await;
        let (s, v) = app.add("u1", &conv, &format!("u{i}"), true).await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, v) = app.add("u1", &conv, "u2", true).await;
    assert_eq!((s, v["participants"].as_array().unwrap().len()), (200, 10), "adding someone already in is a no-op");
    app.register("u11").await;
    let (s, v) = app.add("u3", &conv, "u11", true).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("thread_full")));
}

#[tokio::test]
async fn two_adds_racing_for_the_last_seat_one_wins() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    for i in 2..=9 {
        app.register(&format!("u{i}")).await;
        assert_eq!(app.add("u1", &conv, &format!("u{i}"), false).await.0, 200);
    }
    app.register("x").await;
    app.register("y").await;
    let (a, b) = tokio::join!(app.add("u1", &conv, "x", false), app.add("u2", &conv, "y", false));
    let mut statuses = vec![a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, vec![200, 409]);
    assert_eq!(app.conversation("u1", &conv).await["participants"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn history_before_the_join_is_shared_only_when_asked() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.send_text("u1", &conv, "before").await;
    app.register("with").await;
    app.register("without").await;
    app.add("u1", &conv, "with", true).await;
    app.add("u1", &conv, "without", false).await;
    app.send_text("u1", &conv, "after").await;
    let seen = |msgs: Vec<Value>| {
        msgs.into_iter()
            .filter(|m| m["kind"] == "text" && m["direction"] == "outbound" && m["sender"] != "system")
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(seen(app.messages("with", &conv).await), vec!["before", "after"]);
    assert_eq!(seen(app.messages("without", &conv).await), vec!["after"]);
}

#[tokio::test]
async fn remove_leave_and_transfer_with_their_notices() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    for u in ["u2", "u3", "u4"] {
        app.register(u).await;
        app.add("u1", &conv, u, true).await;
    }
    assert!(notice_texts(&app, "u2", &conv)
        .await
        .contains(&"Your colleague User u1 has added User u3 to the conversation.".to_string()));
    eventually("contact told of the join", || async {
        app.sent_texts().contains(&"User u2 has joined the conversation.".to_string()).then_some(())
    })
    .await;

    let (s, v) = app.call("DELETE", &format!("/conversations/{conv}/participants/u2"), Some("u1"), None).await;
    assert_eq!(s, 200, "{v}");
    for (method, path, body) in [
        ("GET", format!("/conversations/{conv}"), None),
        ("GET", format!("/conversations/{conv}/messages"), None),
        ("POST", format!("/conversations/{conv}/messages"), Some(json!({"text": "x"}))),
        ("POST", format!("/conversations/{conv}/participants"), Some(json!({"user_id": "u3", "share_history": true}))),
        ("POST", format!("/conversations/{conv}/leave"), None),
        ("POST", format!("/conversations/{conv}/optin"), None),
    ] {
        let (s, _) = app.call(method, &path, Some("u2"), body).await;
        assert_eq!(s, 404, "removed user on {method} {path}");
    }
    let (_, list) = app.call("GET", "/conversations", Some("u2"), None).await;
    assert_eq!(list["conversations"], json!([]));
    assert!(notice_texts(&app, "u3", &conv)
        .await
        .contains(&"Your colleague User u1 has removed User u2 from the conversation.".to_string()));
    eventually("contact told of the removal", || async {
        app.sent_texts().contains(&"User u2 has left the conversation.".to_string()).then_some(())
    })
    .await;

    let (s, v) = app.call("POST", &format!("/conversations/{conv}/leave"), Some("u3"), None).await;
    assert_eq!((s, v["id"].as_str(), v["status"].as_str()), (200, Some(conv.as_str()), Some("active")));
    assert!(notice_texts(&app, "u1", &conv)
        .await
        .contains(&"Your colleague User u3 has left the conversation.".to_string()));

    app.register("u5").await;
    let (s, v) = app
        .call(
            "POST",
            &format!("/conversations/{conv}/transfer"),
            Some("u4"),
            Some(json!({"to_user_id": "u5", "share_history": false})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let ids: Vec<_> = app.conversation("u1", &conv).await["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["u1", "u5"]);
    assert_eq!(app.call("GET", &format!("/conversations/{conv}"), Some("u4"), None).await.0, 404);

    let (_, v) = app.call("POST", &format!("/conversations/{conv}/leave"), Some("u5"), None).await;
    assert_eq!(v["status"], "active");
    let (_, v) = app.call("POST", &format!("/conversations/{conv}/leave"), Some("u1"), None).await;
    assert_eq!(v["status"], "closed", "the last one out closes the thread");
}

#[tokio::test]
async fn a_failed_notification_to_the_contact_is_told() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.register("u2").await;
    app.add("u1", &conv, "u2", true).await;
    let (wamid, _) = app
        .wait_for_request(|r| r["type"] == "text" && r["text"]["body"].as_str().is_some_and(|b| b.contains("joined")))
        .await;
    app.status(&wamid, "failed", app.now_unix().await, Some(131026)).await;
    let n = eventually("notify_failed", || async {
        app.messages("u2", &conv).await.into_iter().find(|m| m["notice"]["code"] == "notify_failed")
    })
    .await;
    assert_eq!(n["text"], "We were unable to notify the contact that a participant was added to the conversation.");
}

#[tokio::test]
async fn outside_the_window_the_contact_is_told_by_template() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.advance(25 * 3600).await;
    app.register("u2").await;
    app.add("u1", &conv, "u2", true).await;
    let (_, req) = app
        .wait_for_request(|r| r["type"] == "template" && r["template"]["name"] == "connector_participant_update")
        .await;
    assert_eq!(req["template"]["components"][0]["parameters"][0]["text"], "User u2 has joined the conversation.");
}

#[tokio::test]
async fn in_a_group_the_sender_is_named_and_the_name_counts_toward_the_limit() {
    let app = spawn_app().await;
    let conv = app.opted_in_thread("u1").await;
    app.send_text("u1", &conv, "solo").await;
    app.register("u2").await;
    app.add("u1", &conv, "u2", true).await;
    app.send_text("u2", &conv, "group").await;
    eventually("both sent", || async { app.sent_texts().contains(&"*User u2*: group".to_string()).then_some(()) })
        .await;
    assert!(app.sent_texts().contains(&"solo".to_string()));
    let (s, v) = app
        .call("POST", &format!("/conversations/{conv}/messages"), Some("u2"), Some(json!({"text": "x".repeat(4090)})))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_request")));
}

#[tokio::test]
async fn replies_go_to_the_thread_they_answer_else_to_the_latest_outbound() {
    let app = spawn_app().await;
    let a = app.opted_in_thread("u1").await;
    let b = app.start_conversation("u2", PHONE).await["id"].as_str().unwrap().to_string();
    app.send_text("u1", &a, "from a").await;
    let (wamid_a, _) = app.wait_for_request(|r| r["text"]["body"] == "from a").await;
    app.send_text("u2", &b, "from b").await;
    app.wait_for_request(|r| r["text"]["body"] == "from b").await;

    app.contact_says("no context").await;
    let body = envelope(json!({
        "contacts": [{"profile": {"name": "Olivia"}, "wa_id": WA_ID}],
        "messages": [{"context": {"from": "15550783881", "id": wamid_a}, "from": WA_ID, "id": "wamid.CTX", "timestamp": app.now_unix().await.to_string(), "type": "text", "text": {"body": "answering a"}}]
    }));
    assert_eq!(app.webhook(&body).await, 200);
    let inbound = |msgs: Vec<Value>| {
        msgs.into_iter()
            .filter(|m| m["direction"] == "inbound")
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(inbound(app.messages("u2", &b).await).contains(&"no context".to_string()));
    assert!(inbound(app.messages("u1", &a).await).contains(&"answering a".to_string()));
    assert!(!inbound(app.messages("u1", &a).await).contains(&"no context".to_string()));
}

/// The first admin (docs/aws.md, "Identity"): their token has the admin role (a Cognito group)
/// and no sub_org or region, and no admin is there yet to set them. They may set their own
/// profile, and nothing else, until they have.
#[tokio::test]
async fn the_first_admin_sets_their_own_scope_and_may_do_nothing_else_without_one() {
    let app = spawn_app().await;
    let first = token_with("first-admin", "en", "", "", &["admin"]);
    let agent = token_with("agent-x", "en", "", "", &["agent"]);
    let profile = |name: &str| json!({"name": name, "sub_org": "retail", "region": "eu", "locale": "en", "whatsapp_enabled": true});
    let (s, _) = app.call_with("GET", "/directory/users?q=a", &first, None).await;
    assert_eq!(s, 401, "no scope, no directory");
    let (s, v) = app.call_with("PUT", "/directory/users/agent-x", &first, Some(profile("Agent X"))).await;
    assert_eq!(s, 401, "not someone else's profile first: {v}");
    let (s, v) = app.call_with("PUT", "/directory/users/agent-x", &agent, Some(profile("Agent X"))).await;
    assert_eq!(s, 401, "only an admin sets their own: {v}");

    let (s, v) = app.call_with("PUT", "/directory/users/first-admin", &first, Some(profile("First Admin"))).await;
    assert_eq!((s, v["sub_org"].as_str()), (200, Some("retail")), "{v}");
    let (s, v) = app.call_with("GET", "/directory/users?q=first", &first, None).await;
    assert_eq!(s, 200, "scoped by the profile now: {v}");
    let (s, v) = app.call_with("PUT", "/directory/users/agent-x", &first, Some(profile("Agent X"))).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.call_with("GET", "/directory/users?q=agent", &agent, None).await;
    assert_eq!(s, 200, "the agent is scoped by the admin's profile of them: {v}");
}

/// Issue 31, "Enablement": "Your organization has to enable WhatsApp Messaging Connector".
/// With `CONNECTOR_NEW_USERS_ENABLED=false`, a user seen for the first time waits until an admin
/// enables them (today's default enables them on first sight); an admin is enabled at once.
#[tokio::test]
async fn with_enablement_on_a_new_user_waits_for_an_admin() {
    let app = spawn_with(Options { env: vec![("CONNECTOR_NEW_USERS_ENABLED", "false".into())] }).await;
    let (s, v) = app.call("GET", "/conversations", Some("newbie"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("not enabled for you yet"), "{v}");
    let (s, _) = app.call("POST", "/conversations", Some("newbie"), Some(json!({"contact": {"phone": PHONE}}))).await;
    assert_eq!(s, 403, "still waiting");

    let admin = token_with("boss", "en", "retail", "eu", &["admin"]);
    assert_eq!(app.call_with("GET", "/conversations", &admin, None).await.0, 200, "an admin is enabled at once");
    let (s, v) = app.call_with("GET", "/directory/users?q=user%20n", &admin, None).await;
    assert_eq!(s, 200);
    assert!(v["users"].as_array().unwrap().is_empty(), "a user not enabled is not listed: {v}");

    let body =
        json!({"name": "New Bie", "sub_org": "retail", "region": "eu", "locale": "en", "whatsapp_enabled": true});
    assert_eq!(app.call_with("PUT", "/directory/users/newbie", &admin, Some(body)).await.0, 200);
    assert_eq!(app.call("GET", "/conversations", Some("newbie"), None).await.0, 200, "enabled by the admin");
    let (_, v) = app.call_with("GET", "/directory/users?q=new", &admin, None).await;
    assert_eq!(v["users"][0]["user_id"], "newbie");
}
