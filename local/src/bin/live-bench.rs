//! Live events benchmark (issue: 1,000 open streams in at most 60 MB; an inbound message on
//! every stream of its thread's participants within 50 ms at p99 while 500 webhooks/s arrive).
//!
//! Starts the connector (release build, its own process, a fresh data directory) and a
//! baseline: a server that checks each delivery's signature and hands its text straight to
//! the one stream it is for, persisting nothing. Seeds 1,000 threads, each with its own
//! employee and contact, opens one `GET /events` stream per employee on each, then posts
//! signed inbound texts at a fixed rate and times each from its intended send (no coordinated
//! omission) to its `message` event on the participant's stream. Reports p50 / p99 / max and
//! the connector's peak RSS (with the streams open, before and after the load).
//!
//! `cargo run --release -p connector-local --bin live-bench [-- SECONDS [RATE]]`

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use connector_local::bench::{self, percentile, post, seed, spawn, token, wait_ready, SECRET};
use futures_util::stream::{self, Stream};
use shared::http::JwtVerifier;
use shared::meta::signature;
use tokio::sync::mpsc;

const THREADS: u64 = 1000;
const CONNECTOR: u16 = 3927;
const BASELINE: u16 = 3928;

/// When each text was due to be sent, by its number.
type Sent = Arc<Mutex<HashMap<u64, Instant>>>;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("baseline-server") {
        return baseline_server().await;
    }
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let rate: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(500);
    let dir = std::env::temp_dir().join(format!("live-bench-{}", std::process::id()));
    let mut baseline = spawn(Command::new(std::env::current_exe().unwrap()).arg("baseline-server"));
    let mut connector = bench::connector(CONNECTOR, &dir);
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let base = format!("http://127.0.0.1:{CONNECTOR}");
    wait_ready(&client, &format!("{base}/webhook")).await;
    wait_ready(&client, &format!("http://127.0.0.1:{BASELINE}/ready")).await;
    seed(&client, &base, THREADS, |i| format!("e{i}")).await;
    // Let the seed's own traffic (opt-in confirmations and their statuses) settle.
    tokio::time::sleep(Duration::from_secs(2)).await;

    println!("live events, {THREADS} threads and streams, {rate} inbound texts/s for {secs} s, 2-core machine");
    println!("{:<30} {:>10} {:>10} {:>10} {:>8}", "target", "p50", "p99", "max", "missed");
    let mut p99s = Vec::new();
    for (name, url) in
        [("baseline (no state)", format!("http://127.0.0.1:{BASELINE}")), ("connector (GET /events)", base.clone())]
    {
        let sent: Sent = Default::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let server = if url == base { connector.id() } else { baseline.id() };
        let before = bench::rss_kb(server);
        let streams = open_streams(&client, &url, &sent, tx).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (with_streams, peak_so_far) = (bench::rss_kb(server), bench::peak_rss_kb(server));
        let n = run_load(&client, &url, rate, secs, &sent).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        for s in streams {
            s.abort();
        }
        let mut lat = collect(rx);
        lat.sort();
        let missed = n as usize - lat.len();
        let ms = |d: Duration| format!("{:.2}ms", d.as_secs_f64() * 1e3);
        let (p50, p99, max) = (percentile(&lat, 50), percentile(&lat, 99), *lat.last().unwrap());
        println!("{name:<30} {:>10} {:>10} {:>10} {missed:>8}", ms(p50), ms(p99), ms(max));
        println!(
            "  RSS: {} MB before the streams, {} MB with {THREADS} open (peak so far {} MB)",
            before / 1024,
            with_streams / 1024,
            peak_so_far / 1024
        );
        p99s.push(p99);
    }
    println!(
        "connector peak RSS after the load: {} MB ({} threads)",
        bench::peak_rss_kb(connector.id()) / 1024,
        std::fs::read_dir(format!("/proc/{}/task", connector.id())).map_or(0, |d| d.count())
    );
    println!("connector / baseline p99: {:.2}", p99s[1].as_secs_f64() / p99s[0].as_secs_f64());
    let _ = connector.kill();
    let _ = baseline.kill();
    let _ = connector.wait();
    let _ = baseline.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// One stream per employee; each reports, for every text event it reads, how long after its
/// intended send it came.
async fn open_streams(
    client: &reqwest::Client,
    base: &str,
    sent: &Sent,
    tx: mpsc::UnboundedSender<Duration>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for i in 0..THREADS {
        let resp = client.get(format!("{base}/events")).bearer_auth(token(&format!("e{i}"))).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let (sent, tx) = (sent.clone(), tx.clone());
        tasks.push(tokio::spawn(async move { read_stream(resp, sent, tx).await }));
    }
    tasks
}

async fn read_stream(mut resp: reqwest::Response, sent: Sent, tx: mpsc::UnboundedSender<Duration>) {
    let mut buf = String::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            // Texts read "bench <n>"; only `message` events carry them.
            if !frame.contains("event: message") {
                continue;
            }
            let Some(at) = frame.find("bench ") else { continue };
            let digits: String = frame[at + 6..].chars().take_while(char::is_ascii_digit).collect();
            let due = digits.parse().ok().and_then(|n: u64| sent.lock().unwrap().get(&n).copied());
            if let Some(due) = due {
                let _ = tx.send(due.elapsed());
            }
        }
    }
}

/// Posts `rate` texts a second, each from the next thread's contact; how many were posted.
async fn run_load(client: &reqwest::Client, base: &str, rate: u64, secs: u64, sent: &Sent) -> u64 {
    let total = rate * secs;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = Instant::now();
    let url = format!("{base}/webhook");
    let mut posts = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = start + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        sent.lock().unwrap().insert(n, due);
        let body = bench::text_from(
            n % THREADS,
            &format!("wamid.LIVE{}-{n}", start.elapsed().as_nanos()),
            &format!("bench {n}"),
        );
        let (client, url) = (client.clone(), url.clone());
        posts.push(tokio::spawn(async move { assert!(post(&client, &url, body).await, "a delivery failed") }));
    }
    for p in posts {
        p.await.unwrap();
    }
    total
}

fn collect(mut rx: mpsc::UnboundedReceiver<Duration>) -> Vec<Duration> {
    let mut out = Vec::new();
    while let Ok(d) = rx.try_recv() {
        out.push(d);
    }
    out
}

/// Per employee, the senders of their open streams.
type Streams = Arc<Mutex<HashMap<u64, Vec<mpsc::UnboundedSender<String>>>>>;

/// The floor: checks the signature, reads the sender and text, and hands the text to the stream
/// of the thread it belongs to; no state, no rendering.
async fn baseline_server() {
    let streams: Streams = Default::default();
    let app = axum::Router::new()
        .route("/ready", axum::routing::get(|| async { StatusCode::OK }))
        .route("/webhook", axum::routing::post(deliver).get(|| async { StatusCode::OK }))
        .route("/events", axum::routing::get(events))
        .with_state(streams);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", BASELINE)).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}

async fn deliver(State(streams): State<Streams>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let sig = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    if !signature::verify(SECRET.as_bytes(), &body, sig) {
        return StatusCode::UNAUTHORIZED;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let msg = &v["entry"][0]["changes"][0]["value"]["messages"][0];
    let (Some(from), Some(text)) = (msg["from"].as_str(), msg["text"]["body"].as_str()) else {
        return StatusCode::OK;
    };
    let i: u64 = from[5..].parse().unwrap_or(0);
    let data = serde_json::json!({"text": text}).to_string();
    if let Some(list) = streams.lock().unwrap().get_mut(&i) {
        list.retain(|tx| tx.send(data.clone()).is_ok());
    }
    StatusCode::OK
}

/// `GET /events` as employee `e<i>`, the bearer token checked as the connector checks it.
async fn events(
    State(streams): State<Streams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, StatusCode> {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let caller = token.and_then(|t| JwtVerifier::hs256(bench::JWT).verify(t).ok()).ok_or(StatusCode::UNAUTHORIZED)?;
    let i: u64 = caller.user_id.as_str().trim_start_matches('e').parse().map_err(|_| StatusCode::UNAUTHORIZED)?;
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    streams.lock().unwrap().entry(i).or_default().push(tx);
    let s = stream::unfold(rx, |mut rx| async move {
        let data = rx.recv().await?;
        Some((Ok(Event::default().event("message").data(data)), rx))
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("ping")))
}
