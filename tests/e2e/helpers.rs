//! Test harness: a local runner on a temp data directory and a free port, a fake Graph API
//! that records what it is sent and answers as scripted, and typed client helpers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use shared::http::{issue_token, Claims};

pub const SECRET: &str = "e2e-app-secret";
pub const JWT: &str = "e2e-jwt-secret";
pub const ARCHIVE_KEY: &str = "e2e-archive-key";
pub const PHONE: &str = "+447700900123";
pub const WA_ID: &str = "447700900123";
/// How the English opt-in confirmation to the contact begins.
pub const OPTIN_CONFIRMED: &str = "Thank you. You will now receive our messages";

/// A picture's bytes and MIME type.
pub type Picture = (Vec<u8>, String);

/// A scripted answer: Meta takes the message, and the answer is lost (slower than the client's
/// time-out, `WHATSAPP_API_TIMEOUT_MS` in the test).
pub const LOST: u16 = 0;
/// A scripted answer: Meta takes the message and answers, 600 ms late.
pub const SLOW: u16 = 1;

/// A scripted Graph API: each send pops the next answer (default: accepted with a new wamid).
#[derive(Clone, Default)]
pub struct FakeGraph {
    pub requests: Arc<Mutex<Vec<Value>>>,
    script: Arc<Mutex<VecDeque<(u16, Value)>>>,
    counter: Arc<Mutex<u64>>,
    /// Meta media id → bytes: what was uploaded, and what contacts "sent".
    pub media: Arc<Mutex<HashMap<String, Picture>>>,
    /// Answers for downloads, consumed before the stored bytes are served.
    pub download_script: Arc<Mutex<VecDeque<u16>>>,
    pub base: Arc<Mutex<String>>,
}

impl FakeGraph {
    pub async fn start() -> (FakeGraph, String) {
        let fake = FakeGraph::default();
        let app = Router::new()
            .route("/v25.0/{pnid}/messages", post(graph_send))
            .route("/v25.0/{pnid}/media", post(graph_upload))
            .route("/v25.0/{pnid}/message_templates", axum::routing::get(graph_templates))
            .route("/v25.0/{media_id}", axum::routing::get(graph_media_info))
            .route("/download/{media_id}", axum::routing::get(graph_download))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        *fake.base.lock().unwrap() = format!("http://{addr}");
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, format!("http://{addr}/v25.0"))
    }

    /// A wamid Meta would give, new each time.
    fn next_wamid(&self) -> String {
        let mut n = self.counter.lock().unwrap();
        *n += 1;
        format!("wamid.FAKE{n}")
    }

    /// The next answers, in order, e.g. `(500, json!({}))`.
    pub fn script(&self, answers: impl IntoIterator<Item = (u16, Value)>) {
        self.script.lock().unwrap().extend(answers);
    }

    pub fn error(code: i64) -> (u16, Value) {
        (
            400,
            json!({"error": {"message": format!("(#{code}) error"), "type": "OAuthException", "code": code, "fbtrace_id": "x"}}),
        )
    }

    /// The requests the connector made for the test's messages: all of them but its own
    /// confirmation to a contact who opted in (`all` has it).
    pub fn sent(&self) -> Vec<Value> {
        let confirmation = |r: &Value| r["text"]["body"].as_str().is_some_and(|b| b.starts_with(OPTIN_CONFIRMED));
        self.all().into_iter().filter(|r| !confirmation(r)).collect()
    }

    pub fn all(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests that got a wamid, with it.
    pub fn accepted(&self) -> Vec<(String, Value)> {
        self.sent()
            .into_iter()
            .filter_map(|r| r.get("_wamid").and_then(|w| w.as_str()).map(|w| (w.to_string(), r.clone())))
            .collect()
    }
}

/// The business account's templates as Meta lists them, over two pages. `missing` is listed
/// though Meta refuses it when sent (approved a moment ago, paused since: the list is cached).
async fn graph_templates(
    State(fake): State<FakeGraph>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let body = |name: &str, lang: &str, text: &str, status: &str| {
        json!({"name": name, "language": lang, "status": status, "category": "UTILITY",
               "components": [{"type": "BODY", "text": text}]})
    };
    if q.contains_key("after") {
        return (StatusCode::OK, Json(json!({"data": [body("missing", "en", "Hi", "APPROVED")]})));
    }
    let next = format!("{}/v25.0/e2e-waba/message_templates?after=page2", fake.base.lock().unwrap());
    (
        StatusCode::OK,
        Json(json!({"data": [
            body("promo", "en", "Our offer", "APPROVED"),
            body("order_update", "en", "Order {{1}} ships on {{2}}.", "APPROVED"),
            body("order_ready", "en", "Your order {{1}} is ready.", "APPROVED"),
            body("draft", "en", "Not yet", "PENDING")],
            "paging": {"cursors": {"after": "page2"}, "next": next}})),
    )
}

async fn graph_upload(
    State(fake): State<FakeGraph>,
    mut multipart: axum::extract::Multipart,
) -> (StatusCode, Json<Value>) {
    let mut fields = serde_json::Map::new();
    let mut file = Vec::new();
    let mut mime = String::new();
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            mime = field.content_type().unwrap_or("").to_string();
            file = field.bytes().await.unwrap().to_vec();
        } else {
            fields.insert(name, json!(field.text().await.unwrap()));
        }
    }
    let id = format!("meta-media-{}", next_id());
    fields.insert("_upload".into(), json!(id));
    fields.insert("_mime".into(), json!(mime));
    fields.insert("_size".into(), json!(file.len()));
    fake.requests.lock().unwrap().push(Value::Object(fields));
    fake.media.lock().unwrap().insert(id.clone(), (file, mime));
    (StatusCode::OK, Json(json!({"id": id})))
}

async fn graph_media_info(
    State(fake): State<FakeGraph>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> (StatusCode, Json<Value>) {
    let media = fake.media.lock().unwrap();
    match media.get(&id) {
        Some((bytes, mime)) => {
            let base = fake.base.lock().unwrap().clone();
            (
                StatusCode::OK,
                Json(
                    json!({"messaging_product": "whatsapp", "url": format!("{base}/download/{id}"), "mime_type": mime, "file_size": bytes.len(), "id": id}),
                ),
            )
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"error": {"message": "not found", "code": 100}}))),
    }
}

async fn graph_download(
    State(fake): State<FakeGraph>,
    headers: axum::http::HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> (StatusCode, Vec<u8>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer e2e-token") {
        return (StatusCode::UNAUTHORIZED, vec![]);
    }
    if let Some(status) = fake.download_script.lock().unwrap().pop_front() {
        return (StatusCode::from_u16(status).unwrap(), vec![]);
    }
    match fake.media.lock().unwrap().get(&id) {
        Some((bytes, _)) => (StatusCode::OK, bytes.clone()),
        None => (StatusCode::NOT_FOUND, vec![]),
    }
}

/// Meta's answer to a send it took.
fn accepted(body: &Value, wamid: &str) -> Value {
    json!({"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": WA_ID}], "messages": [{"id": wamid}]})
}

async fn graph_send(
    State(fake): State<FakeGraph>,
    headers: axum::http::HeaderMap,
    Json(mut body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    assert_eq!(headers.get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer e2e-token"));
    let answer = fake.script.lock().unwrap().pop_front();
    let (status, reply) = match answer {
        Some(a) => a,
        None => (200, accepted(&body, &fake.next_wamid())),
    };
    if status == SLOW || status == LOST {
        // Meta takes the message; its answer comes late, or (LOST) never reaches the connector.
        let wamid = fake.next_wamid();
        body["_wamid"] = json!(wamid);
        body["_status"] = json!(200);
        fake.requests.lock().unwrap().push(body.clone());
        if status == LOST {
            tokio::time::sleep(Duration::from_secs(3)).await;
            return (StatusCode::OK, Json(json!({})));
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        return (StatusCode::OK, Json(accepted(&body, &wamid)));
    }
    if let Some(w) = reply["messages"][0]["id"].as_str() {
        body["_wamid"] = json!(w);
    }
    body["_status"] = json!(status);
    fake.requests.lock().unwrap().push(body);
    (StatusCode::from_u16(status).unwrap(), Json(reply))
}

/// Athena as the officer's search calls it (its JSON protocol): it records each query and
/// answers every one with the rows it is given (a header row first, as Athena's).
#[derive(Clone, Default)]
pub struct FakeAthena {
    pub queries: Arc<Mutex<Vec<String>>>,
    pub rows: Arc<Mutex<Vec<Vec<String>>>>,
}

impl FakeAthena {
    pub async fn start() -> (FakeAthena, String) {
        let fake = FakeAthena::default();
        let app = Router::new().route("/", post(athena_call)).with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, format!("http://{addr}"))
    }
}

async fn athena_call(
    State(fake): State<FakeAthena>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let call: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let target = headers.get("x-amz-target").and_then(|t| t.to_str().ok()).unwrap_or("");
    let answer = match target.trim_start_matches("AmazonAthena.") {
        "StartQueryExecution" => {
            let mut queries = fake.queries.lock().unwrap();
            queries.push(call["QueryString"].as_str().unwrap_or("").to_string());
            json!({ "QueryExecutionId": format!("q{}", queries.len()) })
        }
        "GetQueryExecution" => {
            let id = call["QueryExecutionId"].as_str().unwrap_or("");
            let n: usize = id.trim_start_matches('q').parse().unwrap_or(0);
            let query = fake.queries.lock().unwrap().get(n.saturating_sub(1)).cloned().unwrap_or_default();
            json!({ "QueryExecution": { "QueryExecutionId": id, "Query": query, "Status": { "State": "SUCCEEDED" } } })
        }
        "GetQueryResults" => {
            let rows: Vec<Value> = fake
                .rows
                .lock()
                .unwrap()
                .iter()
                .map(|r| json!({ "Data": r.iter().map(|c| json!({ "VarCharValue": c })).collect::<Vec<_>>() }))
                .collect();
            json!({ "ResultSet": { "Rows": rows } })
        }
        other => return (StatusCode::BAD_REQUEST, format!("FakeAthena does not do {other}")).into_response(),
    };
    ([("content-type", "application/x-amz-json-1.1")], answer.to_string()).into_response()
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub graph: FakeGraph,
    pub dir: Arc<tempfile::TempDir>,
    pub env: HashMap<String, String>,
    /// Set when the suite runs on the AWS adapters (`E2E_BACKEND=aws`, on moto).
    pub aws: Option<shared::adapters::aws::AwsClients>,
    /// Athena, on the AWS adapters.
    pub athena: Option<FakeAthena>,
    running: Option<connector_local::Running>,
}

/// Whether this run of the suite is wired to the AWS adapters on moto.
pub fn on_aws() -> bool {
    std::env::var("E2E_BACKEND").as_deref() == Ok("aws")
}

/// Fresh AWS resources on moto for one test, as template.yaml would create them.
async fn aws_resources(env: &mut HashMap<String, String>) -> shared::adapters::aws::AwsClients {
    let endpoint =
        std::env::var("MOTO_ENDPOINT").expect("E2E_BACKEND=aws needs MOTO_ENDPOINT (scripts/test sets both)");
    let (_, c) = shared::adapters::aws::AwsClients::emulator(&endpoint).await;
    let run = shared::adapters::aws::AwsClients::emulator_name("e2e");
    let name = |p: &str| format!("{run}-{p}");
    shared::adapters::aws::DynamoStore::create_table(&c.dynamodb, &name("table")).await.unwrap();
    let fifo = c
        .sqs
        .create_queue()
        .queue_name(format!("{}.fifo", name("outbound")))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap();
    let receipts = c.sqs.create_queue().queue_name(name("receipts")).send().await.unwrap();
    c.scheduler.create_schedule_group().name(name("timers")).send().await.unwrap();
    c.s3.create_bucket().bucket(name("media")).send().await.unwrap();
    shared::adapters::aws::S3Vault::create_bucket(&c.s3, &name("archive"), 1).await.unwrap();
    // The officer's search: Athena, which moto cannot serve to this SDK (its Athena model is
    // botocore's REST one; the SDK speaks Athena's JSON protocol): `FakeAthena` stands in.
    // The archive vendors' journal: a bus, and a rule that hands its events to a queue the
    // tests read (`journal_on_aws`).
    c.eventbridge.create_event_bus().name(name("journal")).send().await.unwrap();
    let inbox = c.sqs.create_queue().queue_name(name("journal-inbox")).send().await.unwrap();
    let inbox_url = inbox.queue_url().unwrap().to_string();
    let arn = c
        .sqs
        .get_queue_attributes()
        .queue_url(&inbox_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap();
    let pattern = r#"{"source": ["whatsapp-connector.archive"]}"#;
    c.eventbridge
        .put_rule()
        .name(name("journal-rule"))
        .event_bus_name(name("journal"))
        .event_pattern(pattern)
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("inbox").arn(arn).build().unwrap();
    c.eventbridge
        .put_targets()
        .rule(name("journal-rule"))
        .event_bus_name(name("journal"))
        .targets(target)
        .send()
        .await
        .unwrap();
    for (k, v) in [
        ("JOURNAL_BUS", name("journal")),
        ("JOURNAL_INBOX_URL", inbox_url),
        ("ATHENA_WORKGROUP", "primary".into()),
        ("ATHENA_DATABASE", "connector".into()),
        ("ATHENA_TABLE", "records".into()),
        ("CONNECTOR_TABLE", name("table")),
        ("OUTBOUND_QUEUE_URL", fifo.queue_url().unwrap().to_string()),
        ("RECEIPTS_QUEUE_URL", receipts.queue_url().unwrap().to_string()),
        ("SCHEDULE_GROUP", name("timers")),
        ("TIMERS_FUNCTION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:timers".into()),
        ("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/scheduler".into()),
        ("MEDIA_BUCKET", name("media")),
        ("ARCHIVE_BUCKET", name("archive")),
        // moto's transactions are not isolated from each other: one write at a time there.
        ("CONNECTOR_DYNAMODB_SERIAL_WRITES", "1".into()),
    ] {
        env.insert(k.into(), v);
    }
    c
}

#[derive(Default)]
pub struct Options {
    pub env: Vec<(&'static str, String)>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(opts: Options) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        shared::telemetry::init();
    }
    let (graph, graph_url) = FakeGraph::start().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut env: HashMap<String, String> = [
        ("CONNECTOR_LISTEN", "127.0.0.1:0".to_string()),
        ("CONNECTOR_DATA_DIR", dir.path().display().to_string()),
        ("WHATSAPP_API_BASE_URL", graph_url),
        ("WHATSAPP_ACCESS_TOKEN", "e2e-token".into()),
        ("WHATSAPP_BUSINESS_ACCOUNT_ID", "e2e-waba".into()),
        ("WHATSAPP_APP_SECRET", SECRET.into()),
        ("WHATSAPP_VERIFY_TOKEN", "e2e-verify".into()),
        ("AUTH_JWT_SECRET", JWT.into()),
        ("CONNECTOR_ARCHIVE_KEY", ARCHIVE_KEY.into()),
        ("CONNECTOR_DEV_CLOCK", "1".into()),
        ("CONNECTOR_RETRY_BASE_MS", "20".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in opts.env {
        env.insert(k.to_string(), v);
    }
    let (aws, athena) = match on_aws() {
        true => {
            let mut clients = aws_resources(&mut env).await;
            let (athena, url) = FakeAthena::start().await;
            let conf = aws_sdk_athena::config::Builder::from(&*clients.sdk_config).endpoint_url(url).build();
            clients.athena = aws_sdk_athena::Client::from_conf(conf);
            (Some(clients), Some(athena))
        }
        false => (None, None),
    };
    let mut app =
        TestApp { base: String::new(), client: reqwest::Client::new(), graph, dir, env, aws, athena, running: None };
    app.start().await;
    app
}

impl TestApp {
    async fn start(&mut self) {
        let env = self.env.clone();
        let config = shared::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
        // The runner's AWS calls, noted for the least-privilege check when asked (scripts/test);
        // the tests' own calls (set-up, checks) go through `self.aws`, unrecorded.
        let clients = match std::env::var("CONNECTOR_AWS_CALLS") {
            Ok(path) => self.aws.as_ref().map(|c| c.recording(&shared::adapters::aws::calls::CallRecorder::new(path))),
            Err(_) => self.aws.clone(),
        };
        let running = connector_local::start_with(config, clients).await.unwrap();
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    /// Stops the runner and starts it again on the same data directory.
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.start().await;
    }

    /// Stops the in-process runner (another process may then use the data directory).
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn token(&self, user: &str) -> String {
        token_for(user, "en")
    }

    pub async fn call(&self, method: &str, path: &str, user: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method.parse().unwrap(), self.url(path));
        if let Some(u) = user {
            req = req.bearer_auth(self.token(u));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn call_with(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method.parse().unwrap(), self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// The user's first call records them in the directory.
    pub async fn register(&self, user: &str) {
        let (s, _) = self.call("GET", "/conversations", Some(user), None).await;
        assert_eq!(s, 200);
    }

    pub async fn add(&self, by: &str, conv: &str, user: &str, share_history: bool) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/conversations/{conv}/participants"),
            Some(by),
            Some(json!({"user_id": user, "share_history": share_history})),
        )
        .await
    }

    pub async fn raw(&self, method: &str, path: &str, user: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut req =
            self.client.request(method.parse().unwrap(), self.url(path)).header("content-type", "application/json");
        if let Some(u) = user {
            req = req.bearer_auth(self.token(u));
        }
        let resp = req.body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn start_conversation(&self, user: &str, phone: &str) -> Value {
        let (s, v) = self
            .call("POST", "/conversations", Some(user), Some(json!({"contact": {"phone": phone, "name": "Olivia"}})))
            .await;
        assert_eq!(s, 201, "{v}");
        v
    }

    pub async fn send_text(&self, user: &str, conv: &str, text: &str) -> Value {
        let (s, v) = self
            .call("POST", &format!("/conversations/{conv}/messages"), Some(user), Some(json!({"text": text})))
            .await;
        assert_eq!(s, 202, "{v}");
        v
    }

    pub async fn conversation(&self, user: &str, conv: &str) -> Value {
        let (s, v) = self.call("GET", &format!("/conversations/{conv}"), Some(user), None).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    pub async fn messages(&self, user: &str, conv: &str) -> Vec<Value> {
        let (s, v) = self.call("GET", &format!("/conversations/{conv}/messages"), Some(user), None).await;
        assert_eq!(s, 200, "{v}");
        v["messages"].as_array().unwrap().clone()
    }

    pub async fn notices(&self, user: &str, conv: &str) -> Vec<String> {
        self.messages(user, conv)
            .await
            .iter()
            .filter(|m| m["direction"] == "notice")
            .map(|m| m["notice"]["code"].as_str().unwrap().to_string())
            .collect()
    }

    /// Posts a webhook delivery signed with the app secret.
    pub async fn webhook(&self, body: &Value) -> u16 {
        let bytes = serde_json::to_vec(body).unwrap();
        self.webhook_bytes(&bytes, Some(&shared::meta::signature::sign(SECRET.as_bytes(), &bytes))).await
    }

    pub async fn webhook_bytes(&self, bytes: &[u8], sig: Option<&str>) -> u16 {
        let mut req =
            self.client.post(self.url("/webhook")).header("content-type", "application/json").body(bytes.to_vec());
        if let Some(s) = sig {
            req = req.header("X-Hub-Signature-256", s);
        }
        req.send().await.unwrap().status().as_u16()
    }

    pub async fn advance(&self, secs: i64) {
        let (s, v) = self.call("POST", "/dev/clock", None, Some(json!({"advance_secs": secs}))).await;
        assert_eq!(s, 200, "{v}");
    }

    pub async fn now_unix(&self) -> i64 {
        let (_, v) = self.call("POST", "/dev/clock", None, Some(json!({"advance_secs": 0}))).await;
        time::OffsetDateTime::parse(v["now"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    }

    /// The contact writes `text`.
    pub async fn contact_says(&self, text: &str) -> String {
        let wamid = format!("wamid.IN-{}", next_id());
        let ts = self.now_unix().await.to_string();
        let body = envelope(json!({
            "contacts": [{"profile": {"name": "Olivia"}, "wa_id": WA_ID}],
            "messages": [{"from": WA_ID, "id": wamid, "timestamp": ts, "type": "text", "text": {"body": text}}]
        }));
        assert_eq!(self.webhook(&body).await, 200);
        wamid
    }

    /// The contact taps a quick-reply button with this payload on our message `context`.
    pub async fn contact_taps(&self, payload: &str, context: &str) {
        let ts = self.now_unix().await.to_string();
        let body = envelope(json!({
            "contacts": [{"profile": {"name": "Olivia"}, "wa_id": WA_ID}],
            "messages": [{"context": {"from": "15550783881", "id": context}, "from": WA_ID, "id": format!("wamid.TAP-{}", next_id()),
                "timestamp": ts, "type": "button", "button": {"payload": payload, "text": "Yes"}}]
        }));
        assert_eq!(self.webhook(&body).await, 200);
    }

    pub async fn status(&self, wamid: &str, status: &str, ts: i64, error: Option<i64>) -> u16 {
        let mut s = json!({"id": wamid, "status": status, "timestamp": ts.to_string(), "recipient_id": WA_ID});
        if let Some(code) = error {
            s["errors"] = json!([{"code": code, "title": "t", "message": "m", "error_data": {"details": "d"}}]);
        }
        self.webhook(&envelope(json!({"statuses": [s]}))).await
    }

    /// A thread's archive read with `token`. A `503 archive_behind` (the archiver more than
    /// 20 s behind, as on a loaded machine) is tried again, as a client would, twice.
    pub async fn archive_response(&self, conv: &str, token: &str) -> reqwest::Response {
        let mut tries = 0;
        loop {
            let r = self
                .client
                .get(self.url(&format!("/admin/conversations/{conv}/archive")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            tries += 1;
            if r.status() != 503 || tries == 3 {
                return r;
            }
        }
    }

    /// A thread's compliance archive, as an admin exports it (JSON Lines).
    pub async fn archive(&self, conv: &str) -> Vec<Value> {
        let r = self.archive_response(conv, &auditor()).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/x-ndjson");
        r.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Accepts the opt-in request of the latest template the fake Graph API received.
    pub async fn accept_optin(&self) {
        let (wamid, req) = self.wait_for_request(|r| r["type"] == "template").await;
        let payload = req["template"]["components"][1]["parameters"][0]["payload"].as_str().unwrap().to_string();
        assert!(payload.starts_with("OPT_IN_YES:"), "{payload}");
        self.contact_taps(&payload, &wamid).await;
        // The contact is told their opt-in was recorded: that request comes first (a script the
        // test sets next is for the test's own messages).
        let confirmed = |r: &Value| r["text"]["body"].as_str().is_some_and(|b| b.starts_with(OPTIN_CONFIRMED));
        eventually("the opt-in confirmation", || async {
            self.graph.all().iter().any(|r| confirmed(r) && r.get("_wamid").is_some()).then_some(())
        })
        .await;
    }

    /// A thread started by `user` whose contact has accepted the opt-in request.
    pub async fn opted_in_thread(&self, user: &str) -> String {
        let id = self.start_conversation(user, PHONE).await["id"].as_str().unwrap().to_string();
        self.accept_optin().await;
        id
    }

    /// Bodies of the texts the Graph API accepted, in order.
    pub fn sent_texts(&self) -> Vec<String> {
        self.graph
            .accepted()
            .into_iter()
            .filter(|(_, r)| r["type"] == "text")
            .map(|(_, r)| r["text"]["body"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub async fn wait_for_request(&self, pred: impl Fn(&Value) -> bool) -> (String, Value) {
        let rounds = if on_aws() { 750 } else { 200 };
        for _ in 0..rounds {
            if let Some(found) = self.graph.accepted().into_iter().rev().find(|(_, r)| pred(r)) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no such Graph API request; got {:?}", self.graph.sent());
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

fn next_id() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

pub fn envelope(value: Value) -> Value {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": "15550783881", "phone_number_id": "106540352242922"});
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]})
}

pub fn token_for(user: &str, locale: &str) -> String {
    token_with(user, locale, "retail", "eu", &[])
}

/// A webhook timestamp of now, as Meta writes it (seconds, a string): deliveries older than the
/// dedupe horizon are ignored.
pub fn meta_now() -> String {
    time::OffsetDateTime::now_utc().unix_timestamp().to_string()
}

/// An admin who reads the archive.
pub fn auditor() -> String {
    token_with("auditor", "en", "retail", "eu", &["admin"])
}

pub fn token_with(user: &str, locale: &str, sub_org: &str, region: &str, roles: &[&str]) -> String {
    issue_token(
        JWT,
        &Claims {
            sub: user.into(),
            name: Some(format!("User {user}")),
            sub_org: Some(sub_org.into()),
            region: Some(region.into()),
            locale: Some(locale.into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            exp: time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
        },
    )
}

/// Polls `f` until it returns `Some`, for up to 5 s.
pub async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    // The AWS run goes through moto and SQS long polls: give it longer.
    let rounds = if on_aws() { 750 } else { 250 };
    for _ in 0..rounds {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A client's `GET /events` stream.
pub struct Events {
    resp: reqwest::Response,
    buf: String,
}

/// One event: its id, type and data.
pub type LiveEvent = (String, String, Value);

impl Events {
    /// The next event within `wait`, skipping comment lines; `None` if none came.
    pub async fn next(&mut self, wait: Duration) -> Option<LiveEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !kind.is_empty() {
                    return Some((id, kind, serde_json::from_str(&data).unwrap()));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await.ok()?.unwrap()?;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Events until `pred` matches one (returned last), within `wait`.
    pub async fn until(&mut self, wait: Duration, pred: impl Fn(&LiveEvent) -> bool) -> Vec<LiveEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(e) => {
                    let done = pred(&e);
                    seen.push(e);
                    if done {
                        return seen;
                    }
                }
                None => panic!("no matching event within {wait:?}; got {seen:?}"),
            }
        }
    }
}

impl TestApp {
    /// Opens `GET /events` as `token`'s user, resuming after `last_id` when given.
    pub async fn events_as(&self, token: &str, last_id: Option<&str>) -> Events {
        let mut req = self.client.get(self.url("/events")).bearer_auth(token);
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Events { resp, buf: String::new() }
    }

    pub async fn events(&self, user: &str, last_id: Option<&str>) -> Events {
        self.events_as(&self.token(user), last_id).await
    }
}
