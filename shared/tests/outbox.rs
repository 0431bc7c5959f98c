//! The commit and the relay on the embedded backend: effects and archive events commit with
//! the state or not at all (and the archiver makes records of exactly those), and what the
//! relay could not publish is published by its sweep.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use shared::adapters::embedded::QueueName;
use shared::app::Embedded;
use shared::archive::{verify_complete, ArchiveEvent, ArchiveRecord, Verification};
use shared::domain::{Body, Contact, Conversation, Message};
use shared::ports::{Cond, Effect, Item, Key, OutboundJob, Queue, QueueError, ReceiptsJob, StoreError, Write};
use shared::usecases::commit::{commit, execute, CommitError, Decision, Plan};
use shared::usecases::{archive, archiver, relay, Ports};

/// The thread's records once the archiver has read every commit so far, and their check
/// against the thread's counts.
async fn archived(ports: &Ports, embedded: &Embedded, conv: &str) -> (Vec<ArchiveRecord>, Verification) {
    archiver::catch_up(ports, &embedded.store).await.unwrap();
    let records = archive::records(ports, &conv.into()).await.unwrap();
    let counts = archiver::counts(ports, &conv.into()).await.unwrap();
    let v = verify_complete(&ports.settings.archive_key.clone().unwrap(), &records, &counts);
    (records, v)
}

/// A queue that refuses everything while `down` is set.
struct FlakyQueue {
    inner: Arc<dyn Queue>,
    down: AtomicBool,
}

#[async_trait]
impl Queue for FlakyQueue {
    async fn send_outbound(&self, job: OutboundJob) -> Result<(), QueueError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(QueueError("down".into()));
        }
        self.inner.send_outbound(job).await
    }
    async fn send_receipt(&self, job: ReceiptsJob) -> Result<(), QueueError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(QueueError("down".into()));
        }
        self.inner.send_receipt(job).await
    }
}

async fn setup(dir: &tempfile::TempDir) -> (Ports, Embedded, Arc<FlakyQueue>) {
    let data = dir.path().display().to_string();
    let config = shared::Config::from_lookup(|k| (k == "CONNECTOR_DATA_DIR").then(|| data.clone())).unwrap();
    let (state, embedded) = shared::app::embedded(config).await.unwrap();
    let mut ports = state.ports.clone();
    let flaky = Arc::new(FlakyQueue { inner: ports.queue.clone(), down: AtomicBool::new(false) });
    ports.queue = flaky.clone();
    // The thread "c1" that the tests' records are archived in (its chain head lives on it).
    let contact = Contact::new("447700900123".into(), Some("+447700900123".into()), None);
    let thread = Conversation::new("c1".into(), &contact, "en".into(), ports.clock.now());
    ports.store.transact(vec![Write::Put { item: Item::Conversation(thread), cond: Cond::NotExists }]).await.unwrap();
    (ports, embedded, flaky)
}

#[tokio::test]
async fn records_for_a_thread_that_does_not_exist_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ports, embedded, _) = setup(&dir).await;
    let mut plan = Plan::default();
    plan.archive = vec![note(&ports, "nope", serde_json::json!({}))];
    assert!(matches!(commit(&ports, plan).await, Err(CommitError::Store(StoreError::Corrupt(_)))));
    assert!(archived(&ports, &embedded, "nope").await.0.is_empty());
}

fn message(conv: &str, id: &str) -> Message {
    let text = Body::text(format!("text of {id}"));
    Message::outbound(id.into(), conv.into(), "u1".into(), text, time::OffsetDateTime::now_utc())
}

/// A record of a kind this build does not know, by `u1`, now.
fn note(ports: &Ports, conv: &str, body: serde_json::Value) -> ArchiveEvent {
    archive::event(
        &conv.into(),
        shared::archive::ArchiveKind::Other("note".into()),
        "u1".into(),
        ports.clock.now(),
        body,
    )
}

fn job(conv: &str, id: &str) -> Effect {
    Effect::Outbound(OutboundJob { conversation_id: conv.into(), message_id: id.into(), generation: 0, carried: 0 })
}

#[tokio::test]
async fn a_commit_writes_state_archive_and_outbox_together_and_the_relay_publishes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (ports, embedded, _) = setup(&dir).await;
    let plan = || {
        let mut plan = Plan::of(vec![Write::Put { item: Item::Message(message("c1", "01A")), cond: Cond::NotExists }]);
        plan.archive = vec![note(&ports, "c1", serde_json::json!({}))];
        plan.effects = vec![job("c1", "01A")];
        plan
    };
    execute(&ports, || async { Ok(Decision::Commit(plan(), ())) }).await.unwrap();
    assert_eq!(embedded.queue.depth(QueueName::Outbound).await.unwrap(), 1);
    assert_eq!(relay::pending(&ports).await.unwrap(), 0, "published and deleted");
    let (records, v) = archived(&ports, &embedded, "c1").await;
    assert_eq!(records.len(), 2, "the message and the note");
    assert!(v.valid, "{v:?}");
}

#[tokio::test]
async fn a_failed_condition_writes_nothing_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let (ports, embedded, _) = setup(&dir).await;
    commit(&ports, Plan::of(vec![Write::Put { item: Item::Message(message("c1", "01A")), cond: Cond::NotExists }]))
        .await
        .unwrap();
    let mut again = Plan::of(vec![Write::Put { item: Item::Message(message("c1", "01A")), cond: Cond::NotExists }]);
    again.archive = vec![note(&ports, "c1", serde_json::json!({}))];
    again.effects = vec![job("c1", "01A")];
    assert!(matches!(commit(&ports, again).await, Err(CommitError::Stale)));
    assert_eq!(archived(&ports, &embedded, "c1").await.0.len(), 1, "no record of what did not happen");
    assert_eq!(embedded.queue.depth(QueueName::Outbound).await.unwrap(), 0);
    assert_eq!(relay::pending(&ports).await.unwrap(), 0);
}

#[tokio::test]
async fn what_the_relay_could_not_publish_waits_in_the_outbox_for_the_sweep_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (ports, embedded, flaky) = setup(&dir).await;
    flaky.down.store(true, Ordering::SeqCst);
    execute(&ports, || {
        let mut plan = Plan::default();
        plan.effects = vec![job("c1", "01A"), job("c1", "01B")];
        async move { Ok(Decision::Commit(plan, ())) }
    })
    .await
    .unwrap();
    assert_eq!(relay::pending(&ports).await.unwrap(), 2, "committed, not lost");
    assert_eq!(embedded.queue.depth(QueueName::Outbound).await.unwrap(), 0);

    // Young entries are left to their own commit's relay; old ones are swept.
    flaky.down.store(false, Ordering::SeqCst);
    assert_eq!(relay::sweep(&ports).await.unwrap(), 0);
    tokio::time::sleep(relay::SWEEP_GRACE.unsigned_abs() + std::time::Duration::from_millis(100)).await;
    assert_eq!(relay::sweep(&ports).await.unwrap(), 2);
    assert_eq!(relay::pending(&ports).await.unwrap(), 0);
    let jobs = embedded.queue.receive(QueueName::Outbound, ports.clock.now(), 10).await.unwrap();
    let ids: Vec<_> = jobs.iter().map(|j| serde_json::from_str::<OutboundJob>(&j.body).unwrap().message_id).collect();
    assert_eq!(ids, vec!["01A"], "one group head at a time, the older first");
}

#[tokio::test]
async fn concurrent_commits_to_one_thread_keep_one_unbroken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (ports, embedded, _) = setup(&dir).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let ports = ports.clone();
        tasks.push(tokio::spawn(async move {
            let event = |n: usize| ArchiveEvent {
                conversation_id: "c1".into(),
                kind: shared::archive::ArchiveKind::Other("note".into()),
                actor: "u1".into(),
                at: time::OffsetDateTime::now_utc(),
                message_id: None,
                wamid: None,
                text_as_sent: Some(format!("note {n}")),
                text_as_written: None,
                details: serde_json::Value::Null,
            };
            execute(&ports, || {
                let mut plan = Plan::default();
                plan.archive = vec![event(i)];
                async move { Ok(Decision::Commit(plan, ())) }
            })
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (records, v) = archived(&ports, &embedded, "c1").await;
    assert_eq!(records.len(), 20);
    assert!(v.valid, "{v:?}");
    let Some(Item::Conversation(c)) = ports.store.get(&Key::conversation(&"c1".into())).await.unwrap().map(|v| v.item)
    else {
        panic!("the thread is gone")
    };
    assert_eq!(c.records, 20, "the thread counts every change it carried");
}

/// A burst of sends whose queue messages all arrive late (their relay failed): the newest one's
/// job comes first, and dispatch sends every older one before it, in order, however many.
#[tokio::test]
async fn a_burst_overtaken_by_its_last_message_still_leaves_in_order() {
    use shared::domain::contact::InboundIntent;
    use shared::domain::Participant;
    use shared::usecases::{dispatch, send, Caller};

    let dir = tempfile::tempdir().unwrap();
    let (ports, embedded, flaky) = setup(&dir).await;
    let now = ports.clock.now();
    let mut contact = Contact::new("447700900124".into(), Some("+447700900124".into()), None);
    contact.inbound(InboundIntent::Accept, now, now);
    let mut thread = Conversation::new("c2".into(), &contact, "en".into(), now);
    thread.participants = vec![Participant {
        user_id: "u1".into(),
        name: "Alex".into(),
        locale: "en".into(),
        joined_at: now,
        history_from: None,
    }];
    ports
        .store
        .transact(vec![
            Write::Put { item: Item::Contact(contact), cond: Cond::NotExists },
            Write::Put { item: Item::Conversation(thread), cond: Cond::NotExists },
        ])
        .await
        .unwrap();
    let caller = Caller::new("u1", "Alex", "retail", "eu");
    flaky.down.store(true, Ordering::SeqCst);
    let mut last = None;
    for i in 0..12 {
        let cmd = send::SendCommand { content: send::Content::Text(format!("t{i}")), client_id: None, reply_to: None };
        last = Some(send::send(&ports, &caller, &"c2".into(), cmd).await.unwrap().id);
    }
    flaky.down.store(false, Ordering::SeqCst);
    let job = OutboundJob { conversation_id: "c2".into(), message_id: last.unwrap(), generation: 0, carried: 0 };
    dispatch::dispatch(&ports, &job).await.unwrap();
    let sandbox = embedded.sandbox.as_ref().expect("the sandbox is the default WhatsApp");
    let texts: Vec<String> = sandbox.inbox("447700900124").into_iter().filter_map(|r| r.text).collect();
    assert_eq!(texts, (0..12).map(|i| format!("t{i}")).collect::<Vec<_>>());
}
