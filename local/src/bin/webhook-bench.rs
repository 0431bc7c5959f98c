//! Webhook ingress benchmark. Starts the connector (release build, its own process, a fresh
//! data directory, no dev clock) and a baseline server that only checks the signature and
//! answers 200, seeds 1,000 contacts with open threads, then posts signed deliveries, each a
//! new inbound text from one of those contacts, to both over loopback:
//! - saturation: a closed loop of 64 connections for a fixed time → deliveries/s;
//! - fixed rate: 1,000 deliveries/s for a fixed time, latency measured from each request's
//!   intended start (no coordinated omission) → p50 / p99;
//! - peak RSS of the connector process (VmHWM).
//!
//! `cargo run --release -p connector-local --bin webhook-bench [-- SECONDS]`

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use connector_local::bench::{self, post, seed, spawn, token, wait_ready, SECRET};
use shared::meta::signature;

const CONTACTS: u64 = 1000;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("baseline-server") {
        return baseline_server().await;
    }
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let exe = std::env::current_exe().unwrap();
    let dir = std::env::temp_dir().join(format!("webhook-bench-{}", std::process::id()));

    let mut baseline = spawn(Command::new(&exe).arg("baseline-server"));
    let mut connector = bench::connector(3917, &dir);
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    wait_ready(&client, "http://127.0.0.1:3917/webhook").await;
    wait_ready(&client, "http://127.0.0.1:3918/webhook").await;
    seed(&client, "http://127.0.0.1:3917", CONTACTS, |_| "bench".into()).await;

    let seq = Arc::new(AtomicU64::new(0));
    println!("webhook ingress, {secs} s per run, {CONTACTS} contacts with open threads, 2-core machine");
    println!("{:<28} {:>14} {:>12} {:>12}", "target", "saturation/s", "p50 @1000/s", "p99 @1000/s");
    let mut results = Vec::new();
    for (name, url) in [
        ("baseline (signature only)", "http://127.0.0.1:3918/webhook"),
        ("connector (persisted)", "http://127.0.0.1:3917/webhook"),
    ] {
        let rate = saturate(&client, url, &seq, Duration::from_secs(secs)).await;
        let (p50, p99) = fixed_rate(&client, url, &seq, 1000, Duration::from_secs(secs)).await;
        println!("{name:<28} {rate:>14.0} {:>10.2}ms {:>10.2}ms", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3);
        results.push(rate);
    }
    println!("connector / baseline throughput: {:.2}", results[1] / results[0]);
    println!("connector peak RSS: {} MB", bench::peak_rss_kb(connector.id()) / 1024);
    let stored = client
        .get("http://127.0.0.1:3917/conversations")
        .bearer_auth(token("bench"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    println!("connector still answering after the runs: HTTP {stored}");
    let _ = connector.kill();
    let _ = baseline.kill();
    let _ = connector.wait();
    let _ = baseline.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn next(seq: &AtomicU64) -> Vec<u8> {
    let n = seq.fetch_add(1, Ordering::Relaxed);
    bench::text_from(n % CONTACTS, &format!("wamid.BENCH{n}"), "Is my order ready?")
}

async fn saturate(client: &reqwest::Client, url: &str, seq: &Arc<AtomicU64>, d: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + d;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (client, url, seq, done) = (client.clone(), url.to_string(), seq.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                if post(&client, &url, next(&seq)).await {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn fixed_rate(
    client: &reqwest::Client,
    url: &str,
    seq: &Arc<AtomicU64>,
    per_sec: u64,
    d: Duration,
) -> (Duration, Duration) {
    let total = per_sec * d.as_secs();
    let interval = Duration::from_nanos(1_000_000_000 / per_sec);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let intended = start + interval * i as u32;
        tokio::time::sleep_until(intended.into()).await;
        let (client, url, body) = (client.clone(), url.to_string(), next(seq));
        tasks.push(tokio::spawn(async move {
            let ok = post(&client, &url, body).await;
            (ok, intended.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (ok, l) = t.await.unwrap();
        assert!(ok, "a delivery failed");
        lat.push(l);
    }
    lat.sort();
    (lat[lat.len() / 2], lat[lat.len() * 99 / 100])
}

/// Checks the signature over the raw bytes and answers 200: the floor any ingress pays.
async fn baseline_server() {
    let app = axum::Router::new().route(
        "/webhook",
        axum::routing::post(|headers: HeaderMap, body: Bytes| async move {
            let sig = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
            if signature::verify(SECRET.as_bytes(), &body, sig) {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            }
        })
        .get(|| async { StatusCode::OK }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3918").await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
