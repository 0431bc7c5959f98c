//! The archiver function on moto: what the use cases commit reaches the table's stream, and
//! each batch of it becomes one object in an Object Lock bucket (compliance mode), linked into
//! each thread's keyed chain. What a table writer does afterwards (a segment removed, the stream
//! redelivered) neither changes nor hides a record.

use std::sync::Arc;

use serde_json::{json, Value};

use shared::adapters::aws::{AwsClients, DynamoStore, S3Vault};
use shared::domain::Phone;
use shared::ports::{Cond, Key, Write};
use shared::usecases::{archive, conversations, send, Caller, Ports};

fn caller(user: &str, roles: &[&str]) -> Caller {
    Caller::new(user, &format!("User {user}"), "retail", "eu").with_roles(roles)
}

/// A table with its stream and a bucket locked in compliance mode for a day by default, as
/// `template.yaml` makes them.
async fn ports(clients: &AwsClients, dir: &tempfile::TempDir, test: &str) -> (Ports, String) {
    let name = AwsClients::emulator_name(&format!("archiver-{test}"));
    DynamoStore::create_table(&clients.dynamodb, &name).await.unwrap();
    S3Vault::create_bucket(&clients.s3, &name, 1).await.unwrap();
    let data = dir.path().display().to_string();
    let config = shared::Config::from_lookup(|k| (k == "CONNECTOR_DATA_DIR").then(|| data.clone())).unwrap();
    let mut ports = shared::app::embedded(config).await.unwrap().0.ports;
    ports.store = Arc::new(DynamoStore::new(clients.dynamodb.clone(), name.clone()).with_serial_writes(true));
    ports.vault = Arc::new(S3Vault::new(clients.s3.clone(), name.clone(), time::Duration::days(1)));
    (ports, name)
}

/// Everything on the table's stream so far, as Lambda's event would hold it.
async fn stream(clients: &AwsClients, table: &str) -> Value {
    let reader = connector_local::stream::TableStream::new(clients, table);
    let mut records = Vec::new();
    loop {
        let after = records.last().and_then(|r: &Value| r.pointer("/dynamodb/SequenceNumber")).and_then(Value::as_str);
        let page = reader.records_after(after, 100).await.unwrap();
        if page.is_empty() {
            return json!({ "Records": records });
        }
        records.extend(page);
    }
}

#[tokio::test]
async fn the_stream_becomes_locked_objects_and_a_table_writer_hides_nothing() {
    let Some((_, clients)) = AwsClients::emulator_from_env().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (ports, bucket) = ports(&clients, &dir, "stream").await;
    let (alex, admin) = (caller("alex", &[]), caller("ines", &["admin"]));
    let cmd = conversations::StartConversation { phone: Phone::parse("+447700900123").unwrap(), name: None };
    let conv = conversations::start(&ports, &alex, cmd).await.unwrap();
    for text in ["Your statement is ready", "Shall I send it?"] {
        let cmd = send::SendCommand { content: send::Content::Text(text.into()), client_id: None, reply_to: None };
        send::send(&ports, &alex, &conv.id, cmd).await.unwrap();
    }
    // Nothing is archived until the archiver has read the stream: the table holds no record.
    assert!(archive::records(&ports, &conv.id).await.unwrap().is_empty());

    let batch = stream(&clients, &bucket).await;
    let answer = archiver::handle(&ports, &batch).await.unwrap();
    let object = answer["object"].as_str().expect("an object").to_string();
    assert!(object.starts_with("records/"), "{object}");
    let records = archive::records(&ports, &conv.id).await.unwrap();
    assert!(records.len() >= 3, "{records:?}");
    for text in ["Your statement is ready", "Shall I send it?"] {
        assert!(records.iter().any(|r| r.event.text_as_sent.as_deref() == Some(text)), "{text} not archived");
    }
    let v = archive::verify_chain(&ports, &admin, &conv.id).await.unwrap();
    assert!(v.valid, "{v:?}");
    // Lambda hands the same batch over again: nothing more.
    assert_eq!(archiver::handle(&ports, &batch).await.unwrap()["records"], 0);

    // Locked in compliance mode by the bucket's default: the version cannot be deleted, and
    // the name cannot be written with other bytes.
    let head = clients.s3.head_object().bucket(&bucket).key(&object).send().await.unwrap();
    assert_eq!(head.object_lock_mode(), Some(&aws_sdk_s3::types::ObjectLockMode::Compliance));
    let until = head.object_lock_retain_until_date().expect("a retention date").secs();
    assert!(until > time::OffsetDateTime::now_utc().unix_timestamp() + 23 * 3600, "locked for the bucket's day");
    let deleted =
        clients.s3.delete_object().bucket(&bucket).key(&object).version_id(head.version_id().unwrap()).send().await;
    assert!(deleted.is_err(), "a locked version was deleted");
    assert!(ports.vault.put(&object, b"forged".to_vec()).await.is_err(), "a locked name was written again");

    // Someone with the table removes the thread's segment: the chain loses its records, which
    // the thread's counts and an audit of the bucket both find.
    let segments = ports.store.segments(&conv.id, 10, true).await.unwrap();
    let key = Key::archive_segment(&conv.id, segments[0].first);
    ports.store.transact(vec![Write::Delete { key, cond: Cond::Always }]).await.unwrap();
    let v = archive::verify_chain(&ports, &admin, &conv.id).await;
    assert!(matches!(v, Ok(ref v) if !v.valid && !v.missing.is_empty()), "{v:?}");
    let audit = archiver::handle(&ports, &json!({"audit": "records/"})).await.unwrap();
    assert_eq!(audit["objects"], 1);
    assert_eq!(audit["mismatches"].as_array().unwrap().len(), records.len(), "{audit}");
    let gaps = archiver::handle(&ports, &json!({"reconcile": [conv.id]})).await.unwrap();
    assert!(gaps["gaps"][conv.id.as_str()].as_array().is_some_and(|g| !g.is_empty()), "{gaps}");
}
