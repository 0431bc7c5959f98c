//! A `kill -9` of the local runner and a restart lose nothing acknowledged.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::helpers::*;

struct Process {
    child: Child,
    base: String,
}

fn launch(app_env: &std::collections::HashMap<String, String>) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_connector-under-test"))
        .envs(app_env)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("unexpected: {line:?}")).to_string();
    Process { child, base: format!("http://{addr}") }
}

/// kill -9 with held messages, then start again on the same data directory: nothing is lost,
/// the dev clock is where it was, and the held messages still go out in order on consent.
#[tokio::test]
async fn kill_9_and_restart_loses_nothing() {
    if on_aws() {
        return; // About the embedded SQLite backend; on AWS, DynamoDB and SQS hold the state.
    }
    let mut app = spawn_app().await;
    let env = app.env.clone();
    // Stop the in-process runner: from here the process under test owns the data directory.
    app.restart().await;
    let conv = app.start_conversation("u1", PHONE).await["id"].as_str().unwrap().to_string();
    // Let the opt-in request reach Meta first: a send cut off mid-call is never sent again
    // blindly (it waits for a status or fails as delivery_unknown), which is not this test.
    app.wait_for_request(|r| r["type"] == "template").await;
    drop_runner(&mut app);

    let mut p = launch(&env);
    app.base = p.base.clone();
    for t in ["one", "two"] {
        app.send_text("u1", &conv, t).await;
    }
    app.advance(3600).await;
    let before = app.now_unix().await;
    p.child.kill().unwrap(); // SIGKILL
    p.child.wait().unwrap();

    let mut p2 = launch(&env);
    app.base = p2.base.clone();
    let c = app.conversation("u1", &conv).await;
    assert_eq!((c["pending_count"].as_u64(), c["status"].as_str()), (Some(2), Some("awaiting_optin")));
    assert!(app.now_unix().await >= before, "the dev clock survives the restart");
    app.accept_optin().await;
    eventually("held messages sent after restart", || async {
        let t: Vec<_> = app
            .graph
            .accepted()
            .into_iter()
            .filter(|(_, r)| r["type"] == "text")
            .map(|(_, r)| r["text"]["body"].clone())
            .collect();
        (t == vec![json!("one"), json!("two")]).then_some(())
    })
    .await;
    p2.child.kill().unwrap();
    p2.child.wait().unwrap();
}

fn drop_runner(app: &mut TestApp) {
    app.stop();
}
