//! Cold start of each function (the one `bootstrap` executable, run as each handler): the time from process start to the first handled event, with
//! its SDK clients built and its secrets read from Secrets Manager, on a small Lambda runtime API of our own (the next-invocation and
//! response routes), against the AWS emulator at `MOTO_ENDPOINT`. Also each process's peak RSS.
//!
//! `cargo build --release -p bootstrap -p connector-local --features connector-local/aws --bins && MOTO_ENDPOINT=http://127.0.0.1:5055 target/release/cold-start`

use std::time::Duration;

use connector_local::lambda_stub::LambdaStub;

#[tokio::main]
async fn main() {
    let stub = LambdaStub::start("cold-start").await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
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
        match stub.invoke(function, body, timeout, &[], Duration::from_secs(20)).await {
            Some(run) => println!(
                "{function:<14} {:>10.1}ms {:>10.1}MB  {}",
                run.took.as_secs_f64() * 1e3,
                run.peak_rss_kb as f64 / 1024.0,
                run.outcome.lines().next().unwrap_or("")
            ),
            None => println!("{function:<14} {:>12} {:>12}  no answer in 20 s", "-", "-"),
        }
    }
}
