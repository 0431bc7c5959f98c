//! The anchor function on the sample stream event in `events/` (as `cargo lambda invoke
//! --data-file` takes it), over the embedded backend with an in-memory vault instead of its
//! disk one.

use std::sync::Arc;

use serde_json::Value;
use shared::adapters::memory::MemoryVault;
use shared::archive::{verify, Anchor, ArchiveRecord, ChainHead};
use shared::ports::Vault;

fn event() -> Value {
    let path = format!("{}/../../events/anchor-stream-archive.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_sample_event_holds_one_real_archive_record() {
    let event = event();
    let body = event.pointer("/Records/0/dynamodb/NewImage/body/S").and_then(Value::as_str).unwrap();
    let Ok(shared::ports::Item::ArchiveEntry(record)) = serde_json::from_str(body) else { panic!("not a record") };
    assert!(verify(std::slice::from_ref::<ArchiveRecord>(&record)).valid, "its hash is the real one");
    let heads = anchor::heads_of_stream(&event);
    assert_eq!(heads, vec![(record.event.conversation_id.clone(), ChainHead { seq: 1, hash: record.hash.clone() })]);
}

#[tokio::test]
async fn a_batch_becomes_one_anchor_and_without_a_vault_nothing_happens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let config = shared::Config::from_lookup(|k| (k == "CONNECTOR_DATA_DIR").then(|| data.clone())).unwrap();
    let mut ports = shared::app::embedded(config).await.unwrap().0.ports;
    ports.vault = None;
    assert_eq!(anchor::handle(&ports, &event()).await.unwrap(), serde_json::json!({"anchor": null}));

    let vault = Arc::new(MemoryVault::default());
    ports.vault = Some(vault.clone());
    let answer = anchor::handle(&ports, &event()).await.unwrap();
    let name = answer["anchor"].as_str().unwrap();
    assert_eq!(vault.list("anchors/").await.unwrap(), vec![name.to_string()]);
    let stored: Anchor = serde_json::from_slice(&vault.get(name).await.unwrap().unwrap()).unwrap();
    assert_eq!(stored.heads.into_iter().collect::<Vec<_>>(), anchor::heads_of_stream(&event()));
}
