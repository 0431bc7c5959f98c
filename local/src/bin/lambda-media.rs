//! Peak memory of the Lambda handlers that move a large file (100 MB by default, or `$1` MB), run
//! as on Lambda (the `bootstrap` executable under a Lambda runtime API of our own, on moto):
//! `send` finishing an upload a client put on S3 (read back to check it, copied to its id), and
//! `receipts` fetching a contact's document from Meta (a stand-in Graph API here) into S3. The
//! baseline, in the same run, is each function's peak on an event that moves no file.
//!
//! `cargo build --release -p bootstrap -p connector-local --features connector-local/aws --bins && MOTO_ENDPOINT=http://127.0.0.1:5055 target/release/lambda-media`

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use connector_local::lambda_stub::{Invocation, LambdaStub};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::ports::MediaStore;

const CHUNK: usize = 1 << 20;

/// The file: a PDF header, then `x`s, `mb` MB in all, in 1 MB chunks.
fn chunks(mb: usize) -> impl Iterator<Item = bytes::Bytes> {
    (0..mb).map(|i| {
        let mut c = vec![b'x'; CHUNK];
        if i == 0 {
            c[..9].copy_from_slice(b"%PDF-1.7 ");
        }
        bytes::Bytes::from(c)
    })
}

fn stream(mb: usize) -> shared::ports::ByteStream {
    Box::pin(futures_util::stream::iter(chunks(mb).map(Ok)))
}

fn report(what: &str, run: Option<Invocation>, baseline_kb: u64) -> u64 {
    let Some(run) = run else {
        println!("{what:<44} no answer");
        return 0;
    };
    let ratio = match baseline_kb {
        0 => "-".to_string(),
        b => format!("{:.2}x", run.peak_rss_kb as f64 / b as f64),
    };
    println!(
        "{what:<44} {:>8.1}MB {ratio:>7} {:>8.1}s  {}",
        run.peak_rss_kb as f64 / 1024.0,
        run.took.as_secs_f64(),
        &run.outcome[..run.outcome.len().min(40)]
    );
    run.peak_rss_kb
}

/// An API Gateway (HTTP API) event for the `send` function, as user `alex`.
fn api_event(root: &str, method: &str, path: &str, id: &str) -> String {
    let mut e: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/events/send-post-message-unknown-thread.json")).unwrap(),
    )
    .unwrap();
    e["routeKey"] = json!(format!("{method} {path}"));
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["routeKey"] = json!(format!("{method} {path}"));
    e["body"] = json!("");
    e["pathParameters"] = json!({ "id": id });
    e.to_string()
}

/// An SQS event of one receipts job.
fn sqs_event(job: Value) -> String {
    json!({"Records": [{
        "messageId": "m-0", "receiptHandle": "rh-0", "body": job.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1789905600000", "SenderId": "AROAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1789905600001"},
        "messageAttributes": {}, "md5OfBody": "00000000000000000000000000000000", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:receipts", "awsRegion": "eu-west-1"}]})
    .to_string()
}

#[derive(Clone)]
struct Meta {
    base: String,
    mb: usize,
    sha256: String,
}

async fn media_info(State(m): State<Meta>, Path(_): Path<String>) -> Json<Value> {
    Json(json!({"url": format!("{}/download/doc", m.base), "mime_type": "application/pdf", "sha256": m.sha256,
        "file_size": m.mb * CHUNK, "id": "1", "messaging_product": "whatsapp"}))
}

async fn download(State(m): State<Meta>) -> impl IntoResponse {
    let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks(m.mb).map(Ok::<_, std::io::Error>)));
    ([("content-type", "application/pdf".to_string()), ("content-length", (m.mb * CHUNK).to_string())], body)
}

#[tokio::main]
async fn main() {
    let mb: usize = std::env::args().nth(1).map_or(100, |a| a.parse().expect("a size in MB"));
    let stub = LambdaStub::start("lambda-media").await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let media = shared::adapters::aws::S3MediaStore::new(stub.clients.s3.clone(), stub.media_bucket.clone());
    let mut sha = Sha256::new();
    chunks(mb).for_each(|c| sha.update(&c));
    let sha256 = hex::encode(sha.finalize());

    // The stand-in Graph API: the media's URL, then its bytes, streamed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let meta = Meta { base: format!("http://{}", listener.local_addr().unwrap()), mb, sha256: sha256.clone() };
    let graph = meta.base.clone();
    let app = Router::new().route("/download/doc", get(download)).route("/{id}", get(media_info)).with_state(meta);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let env = [("WHATSAPP_API_BASE_URL", graph.as_str())];
    let wait = Duration::from_secs(300);

    println!("peak RSS of a Lambda handler moving a {mb} MB document (moto), against the same function on an event that moves no file");
    println!("{:<44} {:>10} {:>7} {:>9}  outcome", "handler", "peak RSS", "ratio", "time");
    let code = shared::domain::media::type_code("application/pdf").unwrap();
    let idle = stub.invoke(
        "send",
        api_event(root, "POST", "/media/uploads/01NOSUCH00/complete", "01NOSUCH00"),
        30,
        &env,
        wait,
    );
    let idle = report("send: finish an unknown upload (baseline)", idle.await, 0);
    let id = format!("{}{code:02}", ulid::Ulid::new());
    let name = shared::usecases::media::upload_object("alex", &id).unwrap();
    assert!(media.put_upload(&name, stream(mb), u64::MAX).await.unwrap());
    let path = format!("/media/uploads/{id}/complete");
    let run = stub.invoke("send", api_event(root, "POST", &path, &id), 30, &env, wait).await;
    report(&format!("send: finish a {mb} MB upload"), run, idle);

    let job = |media_id: &str, meta_id: &str| {
        json!({"fetch_media": {"conversation_id": ulid::Ulid::new().to_string(), "message_id": ulid::Ulid::new().to_string(),
            "media_id": media_id, "meta_id": meta_id, "sha256": sha256, "kind": "document"}})
    };
    let idle = stub.invoke("receipts", sqs_event(json!({"not": "a job"})), 120, &env, wait).await;
    let idle = report("receipts: a job it cannot read (baseline)", idle, 0);
    let media_id = ulid::Ulid::new().to_string();
    let run = stub.invoke("receipts", sqs_event(job(&media_id, "1234")), 120, &env, wait).await;
    report(&format!("receipts: fetch a {mb} MB document from Meta"), run, idle);
    let kept = media.open(&media_id).await.unwrap().is_some();
    println!("the fetched document is kept in S3: {kept}");
}
