//! The live function's four kinds of event, from `events/` as API Gateway and DynamoDB Streams
//! deliver them, on the embedded backend with a recording `Push`; and the management API's
//! answers moto cannot give (a connection gone) from stubbed SDK responses.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Value};

use live::{Auth, HandlerError, Live};
use shared::domain::Phone;
use shared::ports::{Item, Key, Push, PushError};
use shared::usecases::{conversations, Caller};

fn event(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Remembers what was posted; connections named `gone-*` are gone, `down-*` always fail, and
/// `flaky-*` fail their first post.
#[derive(Default)]
struct Recorder {
    posted: Mutex<Vec<(String, Value)>>,
    failed_once: Mutex<Vec<String>>,
}

#[async_trait]
impl Push for Recorder {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> Result<(), PushError> {
        if connection_id.starts_with("gone-") {
            return Err(PushError::Gone);
        }
        if connection_id.starts_with("down-") {
            return Err(PushError::Failed("management API unavailable".into()));
        }
        if connection_id.starts_with("flaky-") {
            let mut failed = self.failed_once.lock().unwrap();
            if !failed.iter().any(|c| c == connection_id) {
                failed.push(connection_id.to_string());
                return Err(PushError::Failed("throttled".into()));
            }
        }
        self.posted.lock().unwrap().push((connection_id.to_string(), serde_json::from_slice(payload).unwrap()));
        Ok(())
    }
}

async fn live(dir: &tempfile::TempDir) -> (Live, Arc<Recorder>) {
    let data = dir.path().display().to_string();
    let config = shared::Config::from_lookup(|k| (k == "CONNECTOR_DATA_DIR").then(|| data.clone())).unwrap();
    let state = shared::app::embedded(config).await.unwrap().0;
    let push = Arc::new(Recorder::default());
    let auth = Auth::Local(shared::http::JwtVerifier::hs256(&state.config.jwt_secret));
    (Live { ports: state.ports.clone(), push: push.clone(), auth, agents: Default::default() }, push)
}

fn alex() -> Caller {
    Caller::new("alex", "Alex Kim", "retail", "eu")
}

/// A token for `caller`, signed as the local runner's (the handler's `Auth::Local`).
fn token_of(caller: &Caller) -> String {
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    shared::http::issue_token("local-jwt-secret", &shared::http::Claims::of(caller, exp))
}

/// `$connect` checks the token itself: a missing, forged or expired one is answered `401`, an
/// answer and not an error (a Lambda authorizer could only fail, which pages someone).
#[tokio::test]
async fn connect_answers_a_missing_forged_or_expired_token_with_401_and_fails_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (live, _) = live(&dir).await;
    let expired = {
        let mut claims: Value = json!({"sub": "alex", "sub_org": "retail", "region": "eu", "exp": 1_000_000});
        claims["name"] = json!("Alex Kim");
        let claims: shared::http::Claims = serde_json::from_value(claims).unwrap();
        shared::http::issue_token("local-jwt-secret", &claims)
    };
    for token in [json!("forged"), json!(expired), json!(""), Value::Null] {
        let mut ev = event("live-connect.json");
        ev["queryStringParameters"]["token"] = token.clone();
        assert_eq!(live::handle(&live, ev).await, Ok(json!({"statusCode": 401})), "{token}");
    }
    assert!(live.ports.store.connections(&"alex".into()).await.unwrap().is_empty());
    assert_eq!(live::handle(&live, json!({"hello": 1})).await.unwrap_err(), HandlerError::Unknown);
}

#[tokio::test]
async fn connections_are_kept_and_forgotten_on_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let (live, _) = live(&dir).await;
    assert_eq!(live::handle(&live, event("live-connect.json")).await.unwrap(), json!({"statusCode": 200}));
    let conns = live.ports.store.connections(&"alex".into()).await.unwrap();
    assert!(
        matches!(&conns[..], [Item::Connection { connection_id, caller, .. }] if connection_id == "Xa1bCd2eFg3=" && *caller == alex())
    );

    let mut message = event("live-connect.json");
    message["requestContext"]["eventType"] = json!("MESSAGE");
    assert_eq!(live::handle(&live, message).await.unwrap(), json!({"statusCode": 200}));

    assert_eq!(live::handle(&live, event("live-disconnect.json")).await.unwrap(), json!({"statusCode": 200}));
    assert!(live.ports.store.connections(&"alex".into()).await.unwrap().is_empty());
    assert!(live.ports.store.get(&Key::connection_owner("Xa1bCd2eFg3=")).await.unwrap().is_none());
}

#[tokio::test]
async fn connect_takes_the_scope_an_admin_set_and_refuses_a_user_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let (live, _) = live(&dir).await;
    let boss = Caller { user_id: "boss".into(), roles: vec!["admin".into()], ..alex() };
    let set = |enabled: bool| shared::usecases::directory::Upsert {
        name: "Alex Kim".into(),
        sub_org: "wholesale".into(),
        region: "eu".into(),
        locale: "en".into(),
        whatsapp_enabled: enabled,
    };
    shared::usecases::directory::upsert(&live.ports, &boss, &"alex".into(), set(true)).await.unwrap();
    assert_eq!(live::handle(&live, event("live-connect.json")).await.unwrap(), json!({"statusCode": 200}));
    let conns = live.ports.store.connections(&"alex".into()).await.unwrap();
    assert!(
        matches!(&conns[..], [Item::Connection { caller, .. }] if caller.sub_org == "wholesale"),
        "the directory's scope, not the token's: {conns:?}"
    );
    live::handle(&live, event("live-disconnect.json")).await.unwrap();

    shared::usecases::directory::upsert(&live.ports, &boss, &"alex".into(), set(false)).await.unwrap();
    assert_eq!(live::handle(&live, event("live-connect.json")).await.unwrap(), json!({"statusCode": 403}));
    assert!(live.ports.store.connections(&"alex".into()).await.unwrap().is_empty());
}

/// The fixture's stream record, carrying `item` as its new image.
fn stream_of(item: &Item) -> Value {
    let mut ev = event("live-stream-message.json");
    ev["Records"][0]["dynamodb"]["NewImage"]["body"]["S"] = json!(serde_json::to_string(item).unwrap());
    ev
}

#[tokio::test]
async fn the_stream_reaches_the_participants_connections_and_prunes_gone_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (live, push) = live(&dir).await;
    // A record of a thread nobody may see reaches no one, and is not a failure.
    let answer = live::handle(&live, event("live-stream-message.json")).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert!(push.posted.lock().unwrap().is_empty());

    let cmd = conversations::StartConversation { phone: Phone::parse("+447700900123").unwrap(), name: None };
    let conv = conversations::start(&live.ports, &alex(), cmd).await.unwrap();
    let now = live.ports.clock.now();
    shared::live::socket::connect(&live.ports, &alex(), "phone-1", now).await.unwrap();
    shared::live::socket::connect(&live.ports, &alex(), "gone-laptop", now).await.unwrap();
    let mut bob = alex();
    bob.user_id = "bob".into();
    shared::live::socket::connect(&live.ports, &bob, "bob-1", now).await.unwrap();

    let notice = live.ports.store.messages(&conv.id, None, 10, true).await.unwrap().pop().unwrap().item;
    let answer = live::handle(&live, stream_of(&notice)).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let posted = push.posted.lock().unwrap().clone();
    assert_eq!(posted.len(), 1, "alex's live connection only: {posted:?}");
    let (to, body) = &posted[0];
    assert_eq!(to, "phone-1");
    assert_eq!(body["event"], "message");
    assert_eq!(body["id"], "4421584500000000017450439091");
    assert_eq!(body["data"]["conversation_id"], conv.id.as_str());
    let ids: Vec<String> = live
        .ports
        .store
        .connections(&"alex".into())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|i| match i {
            Item::Connection { connection_id, .. } => Some(connection_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec!["phone-1"], "the gone connection was pruned");
}

/// Issue 26, path 7: a post that fails is tried again, and an event a connection still did not
/// get brings the stream record back (Lambda retries it) instead of being dropped.
#[tokio::test]
async fn path7_a_failed_post_is_tried_again_and_then_the_record_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (live, push) = live(&dir).await;
    let cmd = conversations::StartConversation { phone: Phone::parse("+447700900123").unwrap(), name: None };
    let conv = conversations::start(&live.ports, &alex(), cmd).await.unwrap();
    let now = live.ports.clock.now();
    shared::live::socket::connect(&live.ports, &alex(), "flaky-phone", now).await.unwrap();
    let notice = live.ports.store.messages(&conv.id, None, 10, true).await.unwrap().pop().unwrap().item;
    let answer = live::handle(&live, stream_of(&notice)).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}), "the second try got through");
    assert_eq!(push.posted.lock().unwrap().len(), 1);

    shared::live::socket::connect(&live.ports, &alex(), "down-laptop", now).await.unwrap();
    let answer = live::handle(&live, stream_of(&notice)).await.unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "4421584500000000017450439091"}]}),
        "the record comes back for the connection that did not get it"
    );
}

#[tokio::test]
async fn a_gone_connection_and_other_failures_come_back_from_the_management_api() {
    use aws_sdk_apigatewaymanagement::operation::post_to_connection::{PostToConnectionError, PostToConnectionOutput};
    use aws_sdk_apigatewaymanagement::types::error::{ForbiddenException, GoneException};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    let ok = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(|r| r.connection_id() == Some("here"))
        .then_output(|| PostToConnectionOutput::builder().build());
    let gone = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(|r| r.connection_id() == Some("gone"))
        .then_error(|| PostToConnectionError::GoneException(GoneException::builder().build()));
    let forbidden = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(|r| r.connection_id() == Some("forbidden"))
        .then_error(|| PostToConnectionError::ForbiddenException(ForbiddenException::builder().build()));
    let client = mock_client!(aws_sdk_apigatewaymanagement, RuleMode::MatchAny, [&ok, &gone, &forbidden]);
    let push = live::push::ApiGatewayPush::new(client);
    assert!(push.post("here", b"{}").await.is_ok());
    assert!(matches!(push.post("gone", b"{}").await, Err(PushError::Gone)));
    assert!(matches!(push.post("forbidden", b"{}").await, Err(PushError::Failed(_))));
}

#[tokio::test]
async fn a_thread_nobody_claimed_reaches_agents_connections_and_no_one_elses() {
    let dir = tempfile::tempdir().unwrap();
    let (live, push) = live(&dir).await;
    let now = live.ports.clock.now();
    let mut agent = alex();
    agent.user_id = "agent-1".into();
    agent.roles = vec!["agent".into()];
    shared::live::socket::connect(&live.ports, &agent, "agent-phone", now).await.unwrap();
    shared::live::socket::connect(&live.ports, &alex(), "alex-phone", now).await.unwrap();

    let message = contact_writes_first(&live, "wamid.FIRST", "Hello, I want to open an account").await;
    assert_eq!(live::handle(&live, stream_of(&message)).await.unwrap(), json!({"batchItemFailures": []}));
    let posted = push.posted.lock().unwrap().clone();
    let to: Vec<&str> = posted.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(to, vec!["agent-phone"], "{posted:?}");
    assert_eq!(posted[0].1["data"]["text"], "Hello, I want to open an account");

    // Gone on $disconnect: from the agents' index too.
    let disconnect = json!({"requestContext": {"eventType": "DISCONNECT", "connectionId": "agent-phone"}});
    live::handle(&live, disconnect).await.unwrap();
    assert!(live.ports.store.get(&Key::agent_connection("agent-phone")).await.unwrap().is_none());
}

#[tokio::test]
async fn a_caller_without_scope_connects_only_once_an_admin_has_set_it() {
    let dir = tempfile::tempdir().unwrap();
    let (live, _) = live(&dir).await;
    let stock = Caller { user_id: "cognito-7".into(), sub_org: String::new(), region: String::new(), ..alex() };
    let mut connect = event("live-connect.json");
    connect["queryStringParameters"]["token"] = json!(token_of(&stock));
    assert_eq!(live::handle(&live, connect.clone()).await.unwrap(), json!({"statusCode": 401}));
    assert!(live.ports.store.connections(&"cognito-7".into()).await.unwrap().is_empty());

    let boss = Caller { user_id: "boss".into(), roles: vec!["admin".into()], ..alex() };
    let profile = shared::usecases::directory::Upsert {
        name: "Stock".into(),
        sub_org: "retail".into(),
        region: "eu".into(),
        locale: "en".into(),
        whatsapp_enabled: true,
    };
    shared::usecases::directory::upsert(&live.ports, &boss, &"cognito-7".into(), profile).await.unwrap();
    assert_eq!(live::handle(&live, connect).await.unwrap(), json!({"statusCode": 200}));
    let conns = live.ports.store.connections(&"cognito-7".into()).await.unwrap();
    assert!(matches!(&conns[..], [Item::Connection { caller, .. }] if caller.sub_org == "retail"), "{conns:?}");
}

/// Holds each post a moment and remembers how many were in flight at once.
#[derive(Default)]
struct Slow {
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    posted: Mutex<Vec<String>>,
}

#[async_trait]
impl Push for Slow {
    async fn post(&self, connection_id: &str, _: &[u8]) -> Result<(), PushError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        self.in_flight.fetch_sub(1, SeqCst);
        self.posted.lock().unwrap().push(connection_id.to_string());
        Ok(())
    }
}

/// A user's many connections (an agent's tabs, a team's phones) are posted to at once, a few
/// dozen at a time, so one slow connection does not hold the rest back.
#[tokio::test]
async fn the_stream_posts_to_many_connections_at_once_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _) = live(&dir).await;
    let slow = Arc::new(Slow::default());
    let live = Live { ports: base.ports.clone(), push: slow.clone(), auth: base.auth, agents: Default::default() };
    let cmd = conversations::StartConversation { phone: Phone::parse("+447700900123").unwrap(), name: None };
    let conv = conversations::start(&live.ports, &alex(), cmd).await.unwrap();
    let now = live.ports.clock.now();
    for i in 0..40 {
        shared::live::socket::connect(&live.ports, &alex(), &format!("tab-{i}"), now).await.unwrap();
    }
    let notice = live.ports.store.messages(&conv.id, None, 10, true).await.unwrap().pop().unwrap().item;
    let answer = live::handle(&live, stream_of(&notice)).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let mut posted = slow.posted.lock().unwrap().clone();
    posted.sort();
    posted.dedup();
    assert_eq!(posted.len(), 40, "each connection once");
    let most = slow.most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=32).contains(&most), "{most} posts in flight at once");
}

/// No silent cap: an unclaimed thread reaches every agent connection, past the first thousand.
#[tokio::test]
async fn an_unclaimed_thread_reaches_every_agent_connection_past_a_thousand() {
    let dir = tempfile::tempdir().unwrap();
    let (live, push) = live(&dir).await;
    let now = live.ports.clock.now();
    let mut agent = alex();
    agent.user_id = "agent-1".into();
    agent.roles = vec!["agent".into()];
    for i in 0..1001 {
        shared::live::socket::connect(&live.ports, &agent, &format!("agent-tab-{i}"), now).await.unwrap();
    }
    let message = contact_writes_first(&live, "wamid.MANY", "Hello").await;
    assert_eq!(live::handle(&live, stream_of(&message)).await.unwrap(), json!({"batchItemFailures": []}));
    let mut to: Vec<String> = push.posted.lock().unwrap().iter().map(|(c, _)| c.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 1001);
}

/// A contact writes first: their unclaimed thread's message, as committed.
async fn contact_writes_first(live: &Live, wamid: &str, text: &str) -> Item {
    use shared::meta::webhook::{InboundContent, InboundMessage};
    let m = InboundMessage {
        wamid: wamid.into(),
        wa_id: Some("447700900777".into()),
        user_id: None,
        profile_name: Some("Olivia".into()),
        timestamp: live.ports.clock.now(),
        context_id: None,
        content: InboundContent::Text { body: text.into() },
    };
    shared::usecases::inbound::apply_inbound(&live.ports, &m).await.unwrap();
    let conv = live.ports.store.query_unassigned(None, 10).await.unwrap().remove(0);
    live.ports.store.messages(&conv, None, 10, true).await.unwrap().pop().unwrap().item
}

/// Issue 30: a change a batch makes again later (a message's sent, delivered and read, a
/// thread's item rewritten) goes out once per connection, at its last record, with the state
/// of then; a change made once still goes out at its own record.
#[tokio::test]
async fn a_change_repeated_in_a_batch_goes_out_once_at_its_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let (live, push) = live(&dir).await;
    let cmd = conversations::StartConversation { phone: Phone::parse("+447700900123").unwrap(), name: None };
    let conv = conversations::start(&live.ports, &alex(), cmd).await.unwrap();
    shared::live::socket::connect(&live.ports, &alex(), "phone-1", live.ports.clock.now()).await.unwrap();
    let notice = live.ports.store.messages(&conv.id, None, 10, true).await.unwrap().pop().unwrap().item;
    let thread = live.ports.store.get(&shared::ports::Key::conversation(&conv.id)).await.unwrap().unwrap().item;

    // Five records: the notice three times, the thread once between, the notice's last after.
    let mut ev = stream_of(&notice);
    let one = ev["Records"][0].clone();
    let record = |item: &Item, seq: u32| {
        let mut r = one.clone();
        r["dynamodb"]["NewImage"]["body"]["S"] = json!(serde_json::to_string(item).unwrap());
        r["dynamodb"]["SequenceNumber"] = json!(format!("{seq:010}"));
        r
    };
    ev["Records"] = json!([record(&notice, 1), record(&notice, 2), record(&thread, 3), record(&notice, 4)]);
    let answer = live::handle(&live, ev).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let posted = push.posted.lock().unwrap().clone();
    let events: Vec<(String, String)> = posted
        .iter()
        .map(|(_, b)| (b["event"].as_str().unwrap().to_string(), b["id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        events,
        [("conversation".to_string(), "0000000003".to_string()), ("message".to_string(), "0000000004".to_string())],
        "the notice once, at its last record: {posted:?}"
    );
}
