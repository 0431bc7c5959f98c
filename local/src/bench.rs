//! What the benchmark binaries share: starting the connector as its own release process, signed
//! Meta deliveries, client tokens, seeding threads, and reading a process's peak memory.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use shared::http::{issue_token, Claims};
use shared::meta::signature;

pub const SECRET: &str = "bench-secret";
pub const JWT: &str = "bench-jwt";

/// Starts `cmd` with its output quiet (errors still show).
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e} (build it with --release first)"))
}

/// The connector binary beside this one, on `port`, with a fresh data directory.
pub fn connector(port: u16, dir: &std::path::Path) -> Child {
    let exe = std::env::current_exe().unwrap().with_file_name("connector-local");
    spawn(
        Command::new(exe)
            .env("CONNECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("CONNECTOR_DATA_DIR", dir)
            .env("WHATSAPP_APP_SECRET", SECRET)
            .env("AUTH_JWT_SECRET", JWT)
            .env("RUST_LOG", "warn")
            .env("MALLOC_ARENA_MAX", "2"),
    )
}

pub async fn wait_ready(client: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if client.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not come up");
}

pub fn token(sub: &str) -> String {
    let claims = Claims { exp: i64::MAX / 4, ..crate::local_claims(sub.into(), None, None, None, None, vec![]) };
    issue_token(JWT, &claims)
}

/// The number of contact `i`, as Meta's `wa_id`.
pub fn phone(i: u64) -> String {
    format!("44770{:07}", i)
}

/// A signed-to-be delivery of one inbound message `body` from `wa_id`.
pub fn delivery(wa_id: &str, wamid: &str, body: serde_json::Value) -> Vec<u8> {
    let ts = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let mut msg = body;
    msg["from"] = json!(wa_id);
    msg["id"] = json!(wamid);
    msg["timestamp"] = json!(ts);
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Bench"}, "wa_id": wa_id}], "messages": [msg]}}]}]}))
    .unwrap()
}

/// A text from contact `i`.
pub fn text_from(i: u64, wamid: &str, text: &str) -> Vec<u8> {
    delivery(&phone(i), wamid, json!({"type": "text", "text": {"body": text}}))
}

/// Posts a delivery signed with `SECRET`; whether it was taken (200).
pub async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> bool {
    let sig = signature::sign(SECRET.as_bytes(), &body);
    matches!(client.post(url).header("x-hub-signature-256", sig).body(body).send().await, Ok(r) if r.status() == 200)
}

/// Threads `0..n`, thread `i` started by `user(i)` with contact `i`, who accepted (so every
/// later message of theirs opens the window).
pub async fn seed(client: &reqwest::Client, base: &str, n: u64, user: impl Fn(u64) -> String) {
    for i in 0..n {
        let r = client
            .post(format!("{base}/conversations"))
            .bearer_auth(token(&user(i)))
            .json(&json!({"contact": {"phone": format!("+{}", phone(i))}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert!(post(client, &format!("{base}/webhook"), text_from(i, &format!("wamid.SEED{i}"), "yes")).await);
    }
}

/// A process's peak resident memory (VmHWM), in KiB.
pub fn peak_rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmHWM:")
}

/// A process's resident memory now (VmRSS), in KiB.
pub fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS:")
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Percentile `p` (0-100) of sorted `xs`.
pub fn percentile(xs: &[Duration], p: usize) -> Duration {
    xs[(xs.len() * p / 100).min(xs.len() - 1)]
}
