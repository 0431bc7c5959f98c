//! Dispatch records Meta's answer in two plain writes: the wamid's link, then the message. A
//! status that comes between them (or after dispatch died there) finds the message by the link
//! while it is still `sending`, and settles it: never dropped as a duplicate.

use shared::domain::{Body, Contact, Conversation, Message, MessageStatus, ReceiptStatus};
use shared::meta::webhook::StatusEvent;
use shared::ports::{Cond, Item, Key, Write};
use shared::usecases::receipts::{self, ReceiptResult};

#[tokio::test]
async fn a_status_between_the_link_and_the_message_settles_the_send() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let config = shared::Config::from_lookup(|k| (k == "CONNECTOR_DATA_DIR").then(|| data.clone())).unwrap();
    let ports = shared::app::embedded(config).await.unwrap().0.ports;
    let now = ports.clock.now();
    let contact = Contact::new("447700900123".into(), Some("+447700900123".into()), None);
    let thread = Conversation::new("c1".into(), &contact, "en".into(), now);
    let mut m = Message::outbound("m1".into(), "c1".into(), "u1".into(), Body::text("hello"), now);
    m.status = MessageStatus::Sending;
    m.lease_until = Some(now + time::Duration::seconds(60));
    let link = Item::Wamid { wamid: "wamid.A".into(), conversation_id: "c1".into(), message_id: "m1".into() };
    let writes = [Item::Contact(contact), Item::Conversation(thread), Item::Message(m), link];
    ports
        .store
        .transact(writes.into_iter().map(|item| Write::Put { item, cond: Cond::NotExists }).collect())
        .await
        .unwrap();

    let ev = StatusEvent {
        wamid: "wamid.A".into(),
        status: ReceiptStatus::Delivered,
        timestamp: now,
        recipient_id: None,
        errors: vec![],
        callback: Some("c1/m1".into()),
    };
    assert_eq!(receipts::apply_status(&ports, &ev).await.unwrap(), ReceiptResult::Applied);
    let Some(Item::Message(m)) =
        ports.store.get(&Key::message(&"c1".into(), &"m1".into())).await.unwrap().map(|v| v.item)
    else {
        panic!("the message is gone")
    };
    assert_eq!((m.status, m.wamid.as_deref(), m.lease_until), (MessageStatus::Delivered, Some("wamid.A"), None));
    assert!(m.status_at.delivered.is_some());
    assert_eq!(receipts::apply_status(&ports, &ev).await.unwrap(), ReceiptResult::Duplicate, "and only once");
}
