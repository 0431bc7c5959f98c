//! The anchor function on moto: archive records from the table's stream become an anchor in an
//! Object Lock bucket (compliance mode); the verifier checks a chain against it, and finds a
//! chain rewritten in the table (records and head alike) that verifies on its own.

use std::sync::Arc;

use serde_json::{json, Value};

use shared::adapters::aws::{AwsClients, DynamoArchive, DynamoStore, S3Vault};
use shared::archive::{link, ArchiveRecord};
use shared::domain::Phone;
use shared::ports::{Cond, Item, Key, Write};
use shared::usecases::{archive, conversations, send, Caller, Ports};

fn caller(user: &str, roles: &[&str]) -> Caller {
    Caller::new(user, &format!("User {user}"), "retail", "eu").with_roles(roles)
}

/// A table and a bucket locked in compliance mode for a day by default, as `template.yaml`
/// makes them.
async fn ports(clients: &AwsClients, dir: &tempfile::TempDir, test: &str) -> (Ports, String) {
    let name = AwsClients::emulator_name(&format!("anchor-{test}"));
    DynamoStore::create_table(&clients.dynamodb, &name).await.unwrap();
    S3Vault::create_bucket(&clients.s3, &name, 1).await.unwrap();
    let data = dir.path().display().to_string();
    let config = shared::Config::from_lookup(|k| (k == "CONNECTOR_DATA_DIR").then(|| data.clone())).unwrap();
    let mut ports = shared::app::embedded(config).await.unwrap().0.ports;
    let store = Arc::new(DynamoStore::new(clients.dynamodb.clone(), name.clone()).with_serial_writes(true));
    ports.store = store.clone();
    ports.archive = Arc::new(DynamoArchive::new(store));
    ports.vault = Some(Arc::new(S3Vault::new(clients.s3.clone(), name.clone())));
    (ports, name)
}

/// A stream batch as Lambda delivers it: each item's new image, its body among it.
fn stream(items: &[Item]) -> Value {
    let records: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            json!({"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {
                "SequenceNumber": format!("{}", 100 + i),
                "NewImage": {"body": {"S": serde_json::to_string(item).unwrap()}}}})
        })
        .collect();
    json!({ "Records": records })
}

#[tokio::test]
async fn the_stream_anchors_heads_write_once_and_the_verifier_finds_a_rewritten_chain() {
    let Some((_, clients)) = AwsClients::emulator_from_env().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (ports, bucket) = ports(&clients, &dir, "stream").await;
    let (alex, admin) = (caller("alex", &[]), caller("ines", &["admin"]));
    let cmd = conversations::StartConversation { phone: Phone::parse("+447700900123").unwrap(), name: None };
    let conv = conversations::start(&ports, &alex, cmd).await.unwrap();
    for text in ["Your statement is ready", "Shall I send it?"] {
        let cmd = send::SendCommand { content: send::Content::Text(text.into()), client_id: None };
        send::send(&ports, &alex, &conv.id, cmd).await.unwrap();
    }
    let records = ports.archive.read(&conv.id).await.unwrap();
    assert!(records.len() >= 3, "{records:?}");

    // Nothing anchored yet: the verifier checks the chain and its head only.
    let v = archive::verify_chain(&ports, &admin, &conv.id).await.unwrap();
    assert!(v.valid && v.anchor.is_none(), "{v:?}");

    // One batch: the archive records, and a message the filter would have kept out.
    let message = ports.store.messages(&conv.id, None, 1, true).await.unwrap().pop().unwrap().item;
    let mut items: Vec<Item> = records.iter().cloned().map(Item::ArchiveEntry).collect();
    items.push(message);
    let answer = anchor::handle(&ports, &stream(&items)).await.unwrap();
    let object = answer["anchor"].as_str().expect("an anchor").to_string();
    assert!(object.starts_with("anchors/"), "{object}");

    // Locked in compliance mode by the bucket's default: the object's version cannot be deleted.
    let head = clients.s3.head_object().bucket(&bucket).key(&object).send().await.unwrap();
    assert_eq!(head.object_lock_mode(), Some(&aws_sdk_s3::types::ObjectLockMode::Compliance));
    let until = head.object_lock_retain_until_date().expect("a retention date").secs();
    assert!(until > time::OffsetDateTime::now_utc().unix_timestamp() + 23 * 3600, "locked for the bucket's day");
    let deleted =
        clients.s3.delete_object().bucket(&bucket).key(&object).version_id(head.version_id().unwrap()).send().await;
    assert!(deleted.is_err(), "a locked version was deleted");

    let v = archive::verify_chain(&ports, &admin, &conv.id).await.unwrap();
    let check = v.anchor.clone().expect("checked against its anchor");
    assert!(v.valid && check.matches, "{v:?}");
    assert_eq!(check.head, Some(records.last().unwrap().head()));
    assert_eq!(check.object, object);

    // Someone with the table rewrites record 2, re-links every later record and moves the
    // thread's head: the chain verifies on its own, not against its anchor.
    let mut forged: Vec<ArchiveRecord> = vec![records[0].clone()];
    for (i, r) in records.iter().enumerate().skip(1) {
        let mut e = r.event.clone();
        if i == 1 {
            e.text_as_sent = Some("nothing was said".into());
        }
        forged.push(link(forged.last().map(ArchiveRecord::head).as_ref(), e));
    }
    let mut writes: Vec<Write> =
        forged.iter().map(|r| Write::Put { item: Item::ArchiveEntry(r.clone()), cond: Cond::Always }).collect();
    let Some(Item::Conversation(mut thread)) =
        ports.store.get(&Key::conversation(&conv.id)).await.unwrap().map(|v| v.item)
    else {
        panic!("no thread")
    };
    thread.archive_head = forged.last().map(ArchiveRecord::head);
    writes.push(Write::Put { item: Item::Conversation(thread), cond: Cond::Always });
    ports.store.transact(writes).await.unwrap();
    let alone = archive::verify_against_head(&*ports.store, &conv.id, &forged).await.unwrap();
    assert!(alone.valid, "the rewrite is consistent: {alone:?}");
    let v = archive::verify_chain(&ports, &admin, &conv.id).await.unwrap();
    assert!(!v.valid && !v.anchor.as_ref().unwrap().matches, "{v:?}");
    assert_eq!(v.first_break, Some(records.len() as u64));

    // The rewrite reaches the stream and is anchored too (same places: the note stays on the
    // first anchor); even anchoring the forged head by hand does not hide it from an audit
    // of the bucket, which holds the first anchor for ever.
    let rewritten = anchor::handle(&ports, &stream(&writes_items(&forged))).await.unwrap();
    assert!(rewritten["anchor"].is_string());
    assert!(!archive::verify_chain(&ports, &admin, &conv.id).await.unwrap().valid, "the note stayed");
    let audit = anchor::handle(&ports, &json!({"audit": "anchors/"})).await.unwrap();
    assert_eq!(audit["anchors"], 2);
    let mismatched: Vec<&str> =
        audit["mismatches"].as_array().unwrap().iter().map(|m| m["object"].as_str().unwrap()).collect();
    assert_eq!(mismatched, vec![object.as_str()], "{audit}");
}

fn writes_items(records: &[ArchiveRecord]) -> Vec<Item> {
    records.iter().cloned().map(Item::ArchiveEntry).collect()
}

#[tokio::test]
async fn an_operator_anchors_quiet_threads_by_hand_and_a_bad_event_is_refused() {
    let Some((_, clients)) = AwsClients::emulator_from_env().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (ports, _) = ports(&clients, &dir, "by-hand").await;
    let alex = caller("alex", &[]);
    let cmd = conversations::StartConversation { phone: Phone::parse("+447700900124").unwrap(), name: None };
    let conv = conversations::start(&ports, &alex, cmd).await.unwrap();
    let answer = anchor::handle(&ports, &json!({"conversation_ids": [conv.id, "no-such-thread"]})).await.unwrap();
    assert!(answer["anchor"].is_string(), "{answer}");
    let v = archive::verify_chain(&ports, &caller("ines", &["admin"]), &conv.id).await.unwrap();
    assert!(v.valid && v.anchor.unwrap().matches);
    assert_eq!(anchor::handle(&ports, &json!({"Records": []})).await.unwrap(), json!({"anchor": null}));
    assert!(anchor::handle(&ports, &json!({"hello": 1})).await.is_err());
}
