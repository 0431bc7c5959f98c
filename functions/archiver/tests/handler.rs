//! The archiver function on the sample stream event in `events/` (as `cargo lambda invoke
//! --data-file` takes it), over the embedded backend with an in-memory vault.

use std::sync::Arc;

use serde_json::{json, Value};
use shared::adapters::memory::MemoryVault;
use shared::archive::{parse_batch, verify, ArchiveKind};
use shared::ports::Vault;
use shared::usecases::Ports;

fn event() -> Value {
    let path = format!("{}/../../events/archiver-stream.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn ports(dir: &tempfile::TempDir) -> (Ports, Arc<MemoryVault>) {
    let data = dir.path().display().to_string();
    let config = shared::Config::from_lookup(|k| (k == "CONNECTOR_DATA_DIR").then(|| data.clone())).unwrap();
    let mut ports = shared::app::embedded(config).await.unwrap().0.ports;
    let vault = Arc::new(MemoryVault::default());
    ports.vault = vault.clone();
    (ports, vault)
}

#[tokio::test]
async fn the_sample_event_becomes_one_write_once_object_and_a_redelivery_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ports, vault) = ports(&dir).await;
    let answer = archiver::handle(&ports, &event()).await.unwrap();
    assert_eq!(answer["records"], 1);
    let name = answer["object"].as_str().unwrap().to_string();
    assert_eq!(vault.list("records/").await.unwrap(), vec![name.clone()]);
    let records = parse_batch(&vault.get(&name).await.unwrap().unwrap()).unwrap();
    assert_eq!(records.len(), 1);
    let key = ports.settings.archive_key.clone().unwrap();
    assert!(verify(&key, &records).valid, "linked under the archive key");
    // The message mark stands for the message as the item holds it.
    let r = &records[0];
    assert_eq!(
        (r.event.kind.clone(), r.event.text_as_sent.as_deref()),
        (ArchiveKind::Message, Some("Is my order ready?"))
    );
    assert_eq!((r.source.item.as_str(), r.source.n), ("MSG#01KBQ4Z7F3M2N5P8R9S0T1V2W3", 1));

    // Lambda hands the same batch over again (the answer to the first was lost).
    assert_eq!(archiver::handle(&ports, &event()).await.unwrap(), json!({"records": 0, "object": null}));
    assert_eq!(vault.list("records/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_record_it_cannot_read_fails_the_batch_instead_of_being_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (ports, vault) = ports(&dir).await;
    let mut bad = event();
    bad["Records"][0]["dynamodb"]["NewImage"]["rec"]["S"] = json!("[{\"source\":");
    let err = archiver::handle(&ports, &bad).await.unwrap_err();
    assert!(matches!(err, archiver::HandlerError::Unreadable(..)), "{err}");
    assert!(vault.list("").await.unwrap().is_empty());
    // A write that carried no archive events passes over.
    let mut quiet = event();
    quiet["Records"][0]["dynamodb"]["NewImage"].as_object_mut().unwrap().remove("rec");
    assert_eq!(archiver::handle(&ports, &quiet).await.unwrap()["records"], 0);
    assert!(matches!(archiver::handle(&ports, &json!({"x": 1})).await, Err(archiver::HandlerError::Unknown)));
}
