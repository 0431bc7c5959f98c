//! The web console in a real browser: each story of `console.py` (selenium driving headless
//! Chromium and its driver) against a fresh local runner on the sandbox with the dev clock.
//! Screenshots land in `target/console-screenshots/`. `scripts/test` installs what it needs
//! and sets `CONNECTOR_REQUIRE_BROWSER_TESTS=1`, so a missing browser fails there.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The Python with selenium: the repository's `.venv` if there is one.
fn python() -> PathBuf {
    let venv = workspace().join(".venv/bin/python3");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Why the browser tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let driver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    for path in [&chromium, &driver] {
        if !Path::new(path).exists() {
            return Some(format!("{path} is missing (Debian: apt-get install chromium chromium-driver)"));
        }
    }
    let selenium = Command::new(python()).args(["-c", "import selenium"]).status();
    if !matches!(selenium, Ok(s) if s.success()) {
        return Some("Python's selenium is missing (pip install selenium into .venv)".into());
    }
    None
}

/// One browser at a time: the first-paint figure is not shared with another story's load.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A local runner on a fresh directory: the sandbox and the dev clock, plus `extra`.
async fn runner(extra: &[(&str, &str)]) -> (connector_local::Running, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("CONNECTOR_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        ("CONNECTOR_DATA_DIR".to_string(), dir.path().display().to_string()),
        ("CONNECTOR_DEV_CLOCK".to_string(), "1".to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = shared::Config::from_lookup(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap();
    let running = connector_local::start(config).await.unwrap();
    let base = format!("http://{}", running.addr);
    (running, base, dir)
}

async fn story(name: &str) {
    let _turn = ONE_AT_A_TIME.lock().await;
    if let Some(why) = missing() {
        assert!(std::env::var("CONNECTOR_REQUIRE_BROWSER_TESTS").is_err(), "browser tests required: {why}");
        eprintln!("browser story {name} not run: {why}");
        return;
    }
    // A held text expires after a day, so a story can show that failure with one click.
    let (running, base, _dir) = runner(&[("CONNECTOR_HELD_TTL", "86400")]).await;
    let shots = workspace().join("target/console-screenshots");
    let script = workspace().join("tests/browser/console.py");
    let mut cmd = Command::new(python());
    cmd.arg(&script).args(["--base", &base, "--story", name, "--shots"]).arg(&shots);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
    running.shutdown();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "browser story {name} failed (screenshots in {}):\n{text}", shots.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_story_in_a_browser() {
    story("sandbox").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_story_in_a_browser() {
    story("group").await;
}

// The console's HTTP surface, without a browser.

#[tokio::test]
async fn a_runner_meta_can_reach_refuses_the_public_default_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CONNECTOR_LISTEN", "127.0.0.1:0".to_string()),
        ("CONNECTOR_DATA_DIR", dir.path().display().to_string()),
        ("WHATSAPP_API_BASE_URL", "https://graph.facebook.com/v25.0".into()),
        ("WHATSAPP_ACCESS_TOKEN", "t".into()),
        ("WHATSAPP_APP_SECRET", "an-app-secret".into()),
    ];
    let config = shared::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let refused = connector_local::start(config).await.err().expect("refused").to_string();
    assert!(refused.contains("WHATSAPP_VERIFY_TOKEN, AUTH_JWT_SECRET, CONNECTOR_ARCHIVE_KEY"), "{refused}");
    assert!(!refused.contains("WHATSAPP_APP_SECRET"), "{refused}");
}

#[tokio::test]
async fn the_console_is_served_with_its_security_headers_and_revalidated_by_etag() {
    let (running, base, _dir) = runner(&[]).await;
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let etag = page.headers()["etag"].clone();
    assert!(page.text().await.unwrap().contains("/console/app.js"));
    let again = http.get(format!("{base}/")).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    for asset in ["/console/app.js", "/console/i18n.js", "/console/app.css", "/favicon.ico"] {
        let r = http.get(format!("{base}{asset}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    let config: serde_json::Value =
        http.get(format!("{base}/console/config.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["sandbox"], true);
    assert_eq!(config["dev_clock"], true);
    assert!(config["now"].as_i64().unwrap() > 1_700_000_000);
    // The console answers only what no API route claims; the API's own errors stay JSON.
    let unknown = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<serde_json::Value>().await.unwrap()["error"]["code"], "not_found");
    let wrong = http.post(format!("{base}/events")).send().await.unwrap();
    assert_eq!(wrong.status(), 405);
    assert_eq!(wrong.json::<serde_json::Value>().await.unwrap()["error"]["code"], "method_not_allowed");
    assert_eq!(http.post(format!("{base}/")).send().await.unwrap().status(), 404);
    running.shutdown();
}

#[tokio::test]
async fn dev_tokens_work_on_the_api_and_refuse_reserved_subjects_and_unknown_roles() {
    let (running, base, _dir) = runner(&[]).await;
    let http = reqwest::Client::new();
    let mint = |body: serde_json::Value| http.post(format!("{base}/dev/token")).json(&body).send();
    let r =
        mint(serde_json::json!({"sub": "kim", "name": "Kim Park", "locale": "de", "roles": ["agent"]})).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["claims"]["locale"], "de");
    assert_eq!(body["claims"]["sub_org"], "retail");
    let token = body["token"].as_str().unwrap();
    let list = http.get(format!("{base}/conversations?status=unassigned")).bearer_auth(token).send().await.unwrap();
    assert_eq!(list.status(), 200, "an agent's token lists the unassigned inbox");
    for bad in [
        serde_json::json!({"sub": "system"}),
        serde_json::json!({"sub": "contact"}),
        serde_json::json!({"sub": ""}),
        serde_json::json!({"sub": "x".repeat(65)}),
        serde_json::json!({"sub": "kim", "roles": ["support admin"]}),
    ] {
        assert_eq!(mint(bad.clone()).await.unwrap().status(), 422, "{bad}");
    }
    assert_eq!(
        mint(serde_json::json!({"sub": "kim", "superuser": true})).await.unwrap().status(),
        422,
        "unknown fields are refused"
    );
    running.shutdown();
}

#[tokio::test]
async fn without_the_sandbox_the_console_mints_no_tokens() {
    let (running, base, _dir) = runner(&[
        ("WHATSAPP_API_BASE_URL", "http://127.0.0.1:9"),
        ("WHATSAPP_ACCESS_TOKEN", "t"),
        ("WHATSAPP_APP_SECRET", "an-app-secret"),
        ("WHATSAPP_VERIFY_TOKEN", "a-verify-token"),
        ("AUTH_JWT_SECRET", "a-jwt-secret"),
        ("CONNECTOR_ARCHIVE_KEY", "an-archive-key"),
    ])
    .await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{base}/")).send().await.unwrap().status(), 200);
    let r = http.post(format!("{base}/dev/token")).json(&serde_json::json!({"sub": "kim"})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(http.get(format!("{base}/sandbox/events")).send().await.unwrap().status(), 404);
    let config: serde_json::Value =
        http.get(format!("{base}/console/config.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["sandbox"], false);
    running.shutdown();
}

#[tokio::test]
async fn the_sandbox_announces_each_change_of_a_contacts_phone_and_keeps_what_they_sent() {
    let (running, base, _dir) = runner(&[]).await;
    let http = reqwest::Client::new();
    let mut watch = http.get(format!("{base}/sandbox/events")).send().await.unwrap();
    assert_eq!(watch.headers()["content-type"], "text/event-stream");
    let said = http
        .post(format!("{base}/sandbox/contacts/%2B447700900321/messages"))
        .json(&serde_json::json!({"text": "Hello there"}))
        .send()
        .await
        .unwrap();
    assert_eq!(said.status(), 200);
    let mut seen = String::new();
    while !seen.contains("+447700900321") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), watch.chunk()).await;
        let chunk = chunk.expect("an event within 5 s").unwrap().expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: phone"), "{seen}");
    let phone: serde_json::Value = http
        .get(format!("{base}/sandbox/contacts/%2B447700900321/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mine = &phone["messages"][0];
    assert_eq!(mine["from_contact"], true);
    assert_eq!(mine["text"], "Hello there");
    running.shutdown();
}
