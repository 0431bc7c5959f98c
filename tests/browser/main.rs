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

async fn story(name: &str) {
    let _turn = ONE_AT_A_TIME.lock().await;
    if let Some(why) = missing() {
        assert!(std::env::var("CONNECTOR_REQUIRE_BROWSER_TESTS").is_err(), "browser tests required: {why}");
        eprintln!("browser story {name} not run: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CONNECTOR_LISTEN", "127.0.0.1:0".to_string()),
        ("CONNECTOR_DATA_DIR", dir.path().display().to_string()),
        ("CONNECTOR_DEV_CLOCK", "1".into()),
    ];
    let config = shared::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let running = connector_local::start(config).await.unwrap();
    let base = format!("http://{}", running.addr);
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
