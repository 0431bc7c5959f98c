//! The `connector-local` commands an operator runs beside the server.

use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("connector-cli-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_connector-local"))
        .args(args)
        .env("CONNECTOR_DATA_DIR", &dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

#[test]
fn archive_fingerprint_prints_a_text_as_the_archive_keeps_it() {
    let (ok, out) = run(&["archive", "fingerprint", "card", "4111-1111-1111-1111", "12/27"], &[]);
    assert!(ok);
    assert_eq!(out, "card [card …1111 #ae44e229f4a1e947] 12/27", "the README's example, local default key");
    let (_, other) = run(&["archive", "fingerprint", "4111111111111111"], &[("CONNECTOR_ARCHIVE_KEY", "k2")]);
    assert!(other.starts_with("[card …1111 #") && !other.contains("ae44e229f4a1e947"), "{other}");
    let (_, clean) = run(&["archive", "fingerprint", "order", "4111111111111112"], &[]);
    assert_eq!(clean, "order 4111111111111112");
}

#[test]
fn archive_audit_checks_every_record_under_a_prefix_against_the_chains() {
    let (ok, out) = run(&["archive", "audit", "records/"], &[]);
    assert!(ok, "{out}");
    assert!(out.contains("\"objects\":0") && out.contains("\"records\":0"), "{out}");
    // A segment that names a record no chain holds (written beside the archiver), and one that
    // is not a segment at all: both are named.
    let dir = std::env::temp_dir().join(format!("connector-cli-{}", std::process::id()));
    let day = dir.join("vault/records/2026/12/04");
    std::fs::create_dir_all(&day).unwrap();
    let forged = r#"{"seq":3,"conversation_id":"c1","kind":"message","actor":"contact","at":"2026-12-04T10:00:00Z","source":{"item":"MSG#m","n":1},"prev_hash":"00","hash":"feed"}"#;
    std::fs::write(day.join("100000Z-x.jsonl"), forged).unwrap();
    std::fs::write(day.join("100001Z-y.jsonl"), "not a segment").unwrap();
    let (ok, out) = run(&["archive", "audit", "records/2026/"], &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("\"conversation_id\":\"c1\"") && out.contains("\"seq\":3"), "{out}");
    assert!(out.contains("100001Z-y.jsonl"), "{out}");
    let _ = std::fs::remove_dir_all(dir.join("vault"));
}
