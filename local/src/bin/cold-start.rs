//! Cold start of each function (the one `bootstrap` executable, run as each handler): the time from process start to the first handled event, with
//! its SDK clients built and its secrets read from Secrets Manager, on a small Lambda runtime API of our own (the next-invocation and
//! response routes), against the AWS emulator at `MOTO_ENDPOINT`. Also each process's peak RSS.
//!
//! `cargo build --release -p bootstrap -p connector-local --features connector-local/aws --bins && MOTO_ENDPOINT=http://127.0.0.1:5055 target/release/cold-start`

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use shared::config::Secret;
use tokio::sync::Notify;

#[derive(Clone)]
struct Runtime {
    /// The next event, and the function's timeout in seconds (as in template.yaml).
    event: Arc<Mutex<Option<(String, u64)>>>,
    outcome: Arc<Mutex<Option<(Instant, String)>>>,
    done: Arc<Notify>,
}

async fn next(State(rt): State<Runtime>) -> (HeaderMap, String) {
    let event = rt.event.lock().unwrap().take();
    let Some((event, timeout)) = event else {
        // One invocation per process: later polls wait until the process is stopped.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let mut h = HeaderMap::new();
    h.insert("lambda-runtime-aws-request-id", HeaderValue::from_static("cold-start-1"));
    let deadline = now_ms() + u128::from(timeout) * 1000;
    h.insert("lambda-runtime-deadline-ms", HeaderValue::from_str(&deadline.to_string()).unwrap());
    h.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:f"),
    );
    h.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-5759e988-bd862e3fe1be46a994272793"));
    (h, event)
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

async fn respond(State(rt): State<Runtime>, Path((_, kind)): Path<(String, String)>, body: String) -> &'static str {
    *rt.outcome.lock().unwrap() = Some((Instant::now(), format!("{kind}: {}", &body[..body.len().min(120)])));
    rt.done.notify_one();
    "{}"
}

async fn init_error(State(rt): State<Runtime>, body: String) -> &'static str {
    *rt.outcome.lock().unwrap() = Some((Instant::now(), format!("init error: {body}")));
    rt.done.notify_one();
    "{}"
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") else {
        eprintln!("set MOTO_ENDPOINT to a running moto (scripts/test starts one; or: .venv/bin/moto_server -p 5055)");
        std::process::exit(2);
    };
    let conf = shared::adapters::aws::config_loader()
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    let clients = shared::adapters::aws::AwsClients::from_conf(&conf);
    let table = format!("cold-start-{}", std::process::id());
    shared::adapters::aws::DynamoStore::create_table(&clients.dynamodb, &table).await.unwrap();
    // Each function reads the WhatsApp secrets it needs at its cold start, as on Lambda.
    let secrets = format!("cold-start-{}", std::process::id());
    for (secret, value) in [
        (Secret::AppSecret, "events-app-secret"),
        (Secret::AccessToken, "events-token"),
        (Secret::VerifyToken, "events-verify-token"),
        (Secret::ArchiveKey, "events-archive-key"),
    ] {
        let id = shared::adapters::aws::secrets::id(&secrets, secret);
        clients.secretsmanager.create_secret().name(id).secret_string(value).send().await.unwrap();
    }
    // The archiver writes its batches to a bucket under Object Lock, as on AWS.
    let archive = format!("cold-start-archive-{}", std::process::id());
    clients.s3.create_bucket().bucket(&archive).object_lock_enabled_for_bucket(true).send().await.unwrap();

    let rt = Runtime { event: Default::default(), outcome: Default::default(), done: Arc::new(Notify::new()) };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(respond))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let exe_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    // Each with its timeout in template.yaml: a queue function defers what it has no time for.
    let cases = [
        ("webhook", "webhook-get-verify.json", 30),
        ("send", "send-post-message-unknown-thread.json", 30),
        ("optin", "optin-get-conversations.json", 30),
        ("participants", "participants-get-directory.json", 30),
        ("admin", "admin-get-archive-unknown.json", 30),
        ("receipts", "receipts-sqs-unknown-wamid.json", 120),
        ("dispatch", "dispatch-sqs-fifo-batch.json", 120),
        ("timers", "timers-window-expiry.json", 30),
        ("archiver", "archiver-stream.json", 300),
    ];
    println!("cold start: process start to first handled event, SDK clients built (moto), one run each");
    println!("{:<14} {:>12} {:>12}  outcome", "function", "cold start", "peak RSS");
    for (function, event, timeout) in cases {
        let body = std::fs::read_to_string(format!("{root}/events/{event}")).unwrap();
        *rt.event.lock().unwrap() = Some((body, timeout));
        *rt.outcome.lock().unwrap() = None;
        let start = Instant::now();
        let mut child = Command::new(exe_dir.join("bootstrap"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("_HANDLER", function)
            .env("AWS_LAMBDA_RUNTIME_API", &api)
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_LEVEL", "ERROR")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("CONNECTOR_TABLE", &table)
            .env("OUTBOUND_QUEUE_URL", format!("{endpoint}/123456789012/outbound.fifo"))
            .env("RECEIPTS_QUEUE_URL", format!("{endpoint}/123456789012/receipts"))
            .env("SCHEDULE_GROUP", "timers")
            .env("TIMERS_FUNCTION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:timers")
            .env("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/scheduler")
            .env("MEDIA_BUCKET", "media")
            .env("ARCHIVE_BUCKET", &archive)
            .env("CONNECTOR_SECRET_PREFIX", &secrets)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{function}: {e} (cargo build --release -p bootstrap first)"));
        let _ = tokio::time::timeout(Duration::from_secs(20), rt.done.notified()).await;
        let outcome = rt.outcome.lock().unwrap().clone();
        let rss = peak_rss_kb(child.id());
        let _ = child.kill();
        let _ = child.wait();
        match outcome {
            Some((at, what)) => println!(
                "{function:<14} {:>10.1}ms {:>10.1}MB  {}",
                (at - start).as_secs_f64() * 1e3,
                rss as f64 / 1024.0,
                what.lines().next().unwrap_or("")
            ),
            None => println!("{function:<14} {:>12} {:>12}  no answer in 20 s", "-", "-"),
        }
    }
}
