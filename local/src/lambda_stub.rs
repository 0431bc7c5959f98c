//! Lambda as the benchmark binaries see it: a small Lambda runtime API of our own (the
//! next-invocation and response routes) that runs the one `bootstrap` executable as a function,
//! one invocation per process, against the AWS emulator at `MOTO_ENDPOINT`, with the resources
//! and secrets template.yaml would give it. For cold starts and for a handler's peak memory.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use shared::adapters::aws::AwsClients;
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
    h.insert("lambda-runtime-aws-request-id", HeaderValue::from_static("stub-1"));
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

/// One invocation: how long from process start to its answer, the answer, the peak RSS.
pub struct Invocation {
    pub took: Duration,
    pub outcome: String,
    pub peak_rss_kb: u64,
}

pub struct LambdaStub {
    pub clients: AwsClients,
    pub endpoint: String,
    pub table: String,
    pub media_bucket: String,
    secrets: String,
    archive: String,
    api: String,
    rt: Runtime,
}

impl LambdaStub {
    /// Fresh resources on the emulator at `MOTO_ENDPOINT` (exits with a hint when it is unset).
    pub async fn start(name: &str) -> LambdaStub {
        let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") else {
            eprintln!(
                "set MOTO_ENDPOINT to a running moto (scripts/test starts one; or: .venv/bin/moto_server -p 5055)"
            );
            std::process::exit(2);
        };
        let conf = shared::adapters::aws::config_loader()
            .endpoint_url(&endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "static"))
            .load()
            .await;
        let clients = AwsClients::from_conf(&conf);
        let run = format!("{name}-{}", std::process::id());
        shared::adapters::aws::DynamoStore::create_table(&clients.dynamodb, &run).await.unwrap();
        // Each function reads the WhatsApp secrets it needs at its cold start, as on Lambda.
        for (secret, value) in [
            (Secret::AppSecret, "events-app-secret"),
            (Secret::AccessToken, "events-token"),
            (Secret::VerifyToken, "events-verify-token"),
            (Secret::ArchiveKey, "events-archive-key"),
        ] {
            let id = shared::adapters::aws::secrets::id(&run, secret);
            clients.secretsmanager.create_secret().name(id).secret_string(value).send().await.unwrap();
        }
        // The archiver writes its batches to a bucket under Object Lock, as on AWS.
        let archive = format!("{run}-archive");
        clients.s3.create_bucket().bucket(&archive).object_lock_enabled_for_bucket(true).send().await.unwrap();
        let media_bucket = format!("{run}-media");
        clients.s3.create_bucket().bucket(&media_bucket).send().await.unwrap();

        let rt = Runtime { event: Default::default(), outcome: Default::default(), done: Arc::new(Notify::new()) };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(respond))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(rt.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        LambdaStub { clients, endpoint, table: run.clone(), media_bucket, secrets: run, archive, api, rt }
    }

    /// Runs `function` (the `bootstrap` beside this executable) on `event` with its `timeout`
    /// from template.yaml and `env` besides the resources'; `None` when it gives no answer
    /// within `wait`.
    pub async fn invoke(
        &self,
        function: &str,
        event: String,
        timeout: u64,
        env: &[(&str, &str)],
        wait: Duration,
    ) -> Option<Invocation> {
        *self.rt.event.lock().unwrap() = Some((event, timeout));
        *self.rt.outcome.lock().unwrap() = None;
        let exe_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
        let endpoint = &self.endpoint;
        let start = Instant::now();
        let mut child = Command::new(exe_dir.join("bootstrap"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("_HANDLER", function)
            .env("AWS_LAMBDA_RUNTIME_API", &self.api)
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_LEVEL", "ERROR")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("CONNECTOR_TABLE", &self.table)
            .env("OUTBOUND_QUEUE_URL", format!("{endpoint}/123456789012/outbound.fifo"))
            .env("RECEIPTS_QUEUE_URL", format!("{endpoint}/123456789012/receipts"))
            .env("SCHEDULE_GROUP", "timers")
            .env("TIMERS_FUNCTION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:timers")
            .env("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/scheduler")
            .env("MEDIA_BUCKET", &self.media_bucket)
            .env("ARCHIVE_BUCKET", &self.archive)
            .env("CONNECTOR_SECRET_PREFIX", &self.secrets)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{function}: {e} (cargo build --release -p bootstrap first)"));
        let _ = tokio::time::timeout(wait, self.rt.done.notified()).await;
        let outcome = self.rt.outcome.lock().unwrap().clone();
        let peak_rss_kb = crate::bench::peak_rss_kb(child.id());
        let _ = child.kill();
        let _ = child.wait();
        outcome.map(|(at, outcome)| Invocation { took: at - start, outcome, peak_rss_kb })
    }
}
