//! The paths issue 26 found open, one named test each: each failed before its fix. They run
//! the use cases in `support`'s world.

mod support;

use support::world::*;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use shared::adapters::memory::MemoryStore;
use shared::domain::{ConversationId, Message, MessageStatus, Phone};
use shared::meta::graph::GraphError;
use shared::meta::webhook::{MetaError, StatusEvent};
use shared::ports::{Clock, Disposition, Item, Key, OutboundJob, Scheduler, Store, Timer};
use shared::usecases::{conversations, dispatch, receipts, relay, send, timers, Caller, Ports};

/// Path 3: a text queued before the contact's STOP (its job still on the queue) is never
/// handed to Meta; it fails as `opted_out`, and its author is told.
#[tokio::test]
async fn path3_a_text_queued_before_a_stop_never_reaches_the_contact() {
    let w = world();
    let conv = w.opted_in_thread().await;
    let msg = w.send(&conv, "Your statement is ready").await;
    assert_eq!(msg.status, MessageStatus::Queued);
    let job = w.recorded.jobs.lock().unwrap().pop_front().expect("the text's job");
    w.says("STOP").await;
    w.meta.taken.lock().unwrap().clear(); // the opt-out confirmation
    w.recorded.jobs.lock().unwrap().clear();
    dispatch::dispatch(&w.ports, &job).await.unwrap();
    let confirmation = shared::domain::notice::contact_text(
        shared::domain::notice::ContactText::OptedOut,
        shared::domain::notice::Lang::of("en"),
    );
    let sent: Vec<String> = w.meta.texts().into_iter().filter(|t| t != confirmation).collect();
    assert!(sent.is_empty(), "sent after STOP: {sent:?}");
    let after = w.message(&conv, &msg.id).await;
    assert_eq!(after.status, MessageStatus::Failed);
    assert_eq!(after.error.map(|e| e.code).as_deref(), Some("opted_out"));
    let told = w
        .thread_messages(&conv)
        .await
        .iter()
        .filter_map(|m| m.body.notice().cloned())
        .any(|n| n.code() == shared::domain::NoticeCode::MessageFailed && n.message_id() == Some(&msg.id));
    assert!(told, "its author gets a message_failed notice");
}

/// Path 4: the delivery deadline of a send whose answer was lost fails it only while it is
/// still unsettled: a status that arrived first wins.
#[tokio::test]
async fn path4_the_delivery_deadline_never_fails_a_delivered_message() {
    let w = world();
    let conv = w.opted_in_thread().await;
    w.meta.then(Err(GraphError::transport("timed out")));
    let msg = w.send(&conv, "Your statement is ready").await;
    w.drain().await;
    assert_eq!(w.message(&conv, &msg.id).await.status, MessageStatus::Sending, "waiting for a status");
    let wamid = "wamid.T1";
    // The deadline's first look finds it unsettled; then its status arrives; then the deadline
    // decides (a store that lets the status in between the two reads).
    let deadline = Timer::DeliveryDeadline { conversation_id: conv.clone(), message_id: msg.id.clone() };
    let status = StatusEvent {
        wamid: wamid.into(),
        status: shared::domain::ReceiptStatus::Delivered,
        timestamp: w.clock.now(),
        recipient_id: None,
        errors: Vec::new(),
        callback: Some(format!("{conv}/{}", msg.id)),
    };
    let between = Between::new(w.ports.store.clone(), Key::message(&conv, &msg.id), 2);
    let ports = Ports { store: between.clone(), ..w.ports.clone() };
    let applied = {
        let (ports, status) = (w.ports.clone(), status.clone());
        move || async move { receipts::apply_status(&ports, &status).await.unwrap() }
    };
    *between.hook.lock().unwrap() = Some(Box::new(move || {
        Box::pin(async move {
            applied().await;
        })
    }));
    w.clock.advance(Duration::minutes(16));
    timers::fire(&ports, &deadline).await.unwrap();
    let after = w.message(&conv, &msg.id).await;
    assert_eq!(after.status, MessageStatus::Delivered, "the status settled it: {:?}", after.error);
}

type Hook = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send>;

/// A store that runs a hook just before the `nth` read of one key: another use case slipping
/// in between two reads of this one.
struct Between {
    inner: Arc<dyn Store>,
    key: Key,
    nth: usize,
    seen: Mutex<usize>,
    hook: Mutex<Option<Hook>>,
}

impl Between {
    fn new(inner: Arc<dyn Store>, key: Key, nth: usize) -> Arc<Between> {
        Arc::new(Between { inner, key, nth, seen: Mutex::new(0), hook: Mutex::new(None) })
    }
}

#[async_trait]
impl Store for Between {
    async fn get(&self, key: &Key) -> Result<Option<shared::ports::Versioned<Item>>, shared::ports::StoreError> {
        if *key == self.key {
            let n = {
                let mut seen = self.seen.lock().unwrap();
                *seen += 1;
                *seen
            };
            if n == self.nth {
                let hook = self.hook.lock().unwrap().take();
                if let Some(h) = hook {
                    h().await;
                }
            }
        }
        self.inner.get(key).await
    }
    async fn query(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        asc: bool,
    ) -> Result<Vec<shared::ports::Versioned<Item>>, shared::ports::StoreError> {
        self.inner.query(pk, prefix, after, limit, asc).await
    }
    async fn get_many(
        &self,
        keys: &[Key],
    ) -> Result<Vec<Option<shared::ports::Versioned<Item>>>, shared::ports::StoreError> {
        let mut out = Vec::new();
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }
    async fn submit(&self, tx: &shared::ports::Transaction) -> Result<(), shared::ports::StoreError> {
        self.inner.submit(tx).await
    }
}

/// Path 5: the opt-in retry timer sends once however often it fires, and not within a day of
/// the contact's last opt-in request from any thread.
#[tokio::test]
async fn path5_an_optin_retry_timer_that_fires_twice_sends_once() {
    let w = world();
    let cmd = conversations::StartConversation { phone: Phone::parse(&format!("+{CONTACT}")).unwrap(), name: None };
    let conv = conversations::start(&w.ports, &alex(), cmd).await.unwrap().id;
    w.drain().await;
    let first = w.meta.taken.lock().unwrap().len();
    assert_eq!(first, 1, "the opt-in request");
    // It fails (the number is not on WhatsApp): a retry in 24 hours.
    let optin = w.thread_messages(&conv).await.into_iter().find(|m| m.system.is_some()).unwrap();
    let failed = StatusEvent {
        wamid: optin.wamid.clone().unwrap(),
        status: shared::domain::ReceiptStatus::Failed,
        timestamp: w.clock.now(),
        recipient_id: None,
        errors: vec![MetaError { code: 131026, title: "x".into(), message: "x".into(), error_data: None }],
        callback: None,
    };
    receipts::apply_status(&w.ports, &failed).await.unwrap();
    w.clock.advance(Duration::hours(24));
    let retry = Timer::OptinRetry { conversation_id: conv.clone() };
    timers::fire(&w.ports, &retry).await.unwrap();
    timers::fire(&w.ports, &retry).await.unwrap();
    w.drain().await;
    assert_eq!(w.meta.texts().len(), 2, "the request and one retry: {:?}", w.meta.texts());
}

#[tokio::test]
async fn path5_the_optin_retry_waits_a_day_after_the_contacts_last_request() {
    let w = world();
    let cmd = || conversations::StartConversation { phone: Phone::parse(&format!("+{CONTACT}")).unwrap(), name: None };
    let conv = conversations::start(&w.ports, &alex(), cmd()).await.unwrap().id;
    w.drain().await;
    let optin = w.thread_messages(&conv).await.into_iter().find(|m| m.system.is_some()).unwrap();
    // Meta reports it failed ten hours later: a retry falls due 24 hours after that.
    w.clock.advance(Duration::hours(10));
    let failed = StatusEvent {
        wamid: optin.wamid.clone().unwrap(),
        status: shared::domain::ReceiptStatus::Failed,
        timestamp: w.clock.now(),
        recipient_id: None,
        errors: vec![MetaError { code: 131049, title: "x".into(), message: "x".into(), error_data: None }],
        callback: None,
    };
    receipts::apply_status(&w.ports, &failed).await.unwrap();
    // 25 hours after the first request, a colleague starts a thread: the contact is asked again.
    w.clock.advance(Duration::hours(15));
    let other = Caller::new("sam", "Sam", "retail", "eu");
    conversations::start(&w.ports, &other, cmd()).await.unwrap();
    w.drain().await;
    let before = w.meta.texts().len();
    assert_eq!(before, 2, "{:?}", w.meta.texts());
    // The first thread's retry falls due nine hours later: the contact was asked nine hours ago.
    w.clock.advance(Duration::hours(9));
    timers::fire(&w.ports, &Timer::OptinRetry { conversation_id: conv.clone() }).await.unwrap();
    w.drain().await;
    assert_eq!(w.meta.texts().len(), before, "no second request within a day: {:?}", w.meta.texts());
}

/// Path 2: Meta's rate limits delay a message and never fail it, however long they last; the
/// first retry comes within a minute.
#[tokio::test]
async fn path2_a_rate_limit_never_fails_a_message() {
    let w = world();
    let conv = w.opted_in_thread().await;
    for _ in 0..12 {
        w.meta.refuse(400, r#"{"error":{"message":"(#131056) Pair rate limit hit","code":131056}}"#);
    }
    let msg = w.send(&conv, "Your statement is ready").await;
    let job = w.recorded.jobs.lock().unwrap().pop_front().unwrap();
    let first = dispatch::dispatch(&w.ports, &job).await.unwrap();
    match first {
        Disposition::RetryAfter(d) => assert!(d <= std::time::Duration::from_secs(60), "first retry in {d:?}"),
        other => panic!("a rate limit must delay the message: {other:?}"),
    }
    w.recorded.jobs.lock().unwrap().push_back(job);
    w.drain().await;
    let after = w.message(&conv, &msg.id).await;
    assert_ne!(after.status, MessageStatus::Failed, "{:?}", after.error);
    assert_eq!(w.meta.texts(), vec!["Your statement is ready".to_string()]);
}

/// Path 1: an outbox entry that fails every time is parked after its attempts, and the entries
/// behind it in its partition are published all the same.
#[tokio::test]
async fn path1_a_poison_outbox_entry_is_parked_and_the_rest_are_published() {
    use shared::ports::{Cond, Effect, OutboxEntry, Write};
    let w = world();
    let old = w.clock.now() - Duration::minutes(5);
    // A release for a thread that does not exist fails every time (its contact is missing).
    let poison =
        OutboxEntry::new("01POISON".into(), Effect::ReleaseHeld { conversation_ids: vec!["ghost".into()] }, old);
    // A job of another thread in the same partition, behind it.
    let job = OutboundJob { conversation_id: "c9".into(), message_id: "m9".into(), generation: 0, carried: 0 };
    let mut good = OutboxEntry::new("01ZGOOD".into(), Effect::Outbound(job), old);
    good.shard = poison.shard;
    let ghost = shared::domain::Conversation::new(
        "ghost".into(),
        &shared::domain::Contact::new("nobody".into(), None, None),
        "en".into(),
        old,
    );
    let mut ghost = ghost;
    ghost.pending_count = 1;
    w.ports
        .store
        .transact(vec![
            Write::Put { item: Item::Conversation(ghost), cond: Cond::NotExists },
            Write::Put { item: Item::Outbox(poison), cond: Cond::NotExists },
            Write::Put { item: Item::Outbox(good), cond: Cond::NotExists },
        ])
        .await
        .unwrap();
    relay::sweep(&w.ports).await.unwrap();
    assert_eq!(w.recorded.jobs.lock().unwrap().len(), 1, "the entry behind the poison one is published");
    for _ in 0..relay::MAX_PUBLISH_ATTEMPTS {
        relay::sweep(&w.ports).await.unwrap();
    }
    assert_eq!(relay::pending(&w.ports).await.unwrap(), 0);
    assert_eq!(relay::parked(&w.ports).await.unwrap().len(), 1, "parked for an operator");
}

/// Path 1: a timer whose time has passed, which Scheduler refuses, fires at once.
#[tokio::test]
async fn path1_a_timer_whose_time_has_passed_fires_at_once() {
    use shared::ports::{Cond, Effect, OutboxEntry, Write};
    let w = world();
    let conv = w.opted_in_thread().await;
    w.meta.then(Err(GraphError::transport("timed out")));
    let msg = w.send(&conv, "Your statement is ready").await;
    w.drain().await;
    // Its delivery deadline, published an hour late: due already.
    let old = w.clock.now() - Duration::hours(1);
    let timer = Timer::DeliveryDeadline { conversation_id: conv.clone(), message_id: msg.id.clone() };
    let entry = OutboxEntry::new("01LATE".into(), Effect::Timer { timer, at: old }, old);
    w.ports.store.transact(vec![Write::Put { item: Item::Outbox(entry), cond: Cond::NotExists }]).await.unwrap();
    relay::sweep(&w.ports).await.unwrap();
    let after = w.message(&conv, &msg.id).await;
    assert_eq!(after.status, MessageStatus::Failed, "the deadline fired at once");
    assert_eq!(after.error.map(|e| e.code).as_deref(), Some("delivery_unknown"));
}

/// Path 6: a transaction whose outcome is unknown (DynamoDB's `TransactionInProgress`, a lost
/// answer) is submitted again as it was, never planned again: one send, one message.
#[tokio::test]
async fn path6_an_unknown_outcome_is_resubmitted_never_planned_again() {
    let memory = Arc::new(MemoryStore::new());
    let lossy = Arc::new(LosesAnswers { inner: memory.clone(), lose: Mutex::new(0) });
    let w = world_on(lossy.clone());
    let conv = w.opted_in_thread().await;
    *lossy.lose.lock().unwrap() = 1;
    let cmd = send::SendCommand { content: send::Content::Text("Once".into()), client_id: None, reply_to: None };
    send::send(&w.ports, &alex(), &conv, cmd).await.unwrap();
    let texts: Vec<Message> =
        w.thread_messages(&conv).await.into_iter().filter(|m| m.body.words() == Some("Once")).collect();
    assert_eq!(texts.len(), 1, "one message, not one per plan");
}

/// Answers the next `lose` transactions with `Unknown`, after writing them.
struct LosesAnswers {
    inner: Arc<MemoryStore>,
    lose: Mutex<usize>,
}

#[async_trait]
impl Store for LosesAnswers {
    async fn get(&self, key: &Key) -> Result<Option<shared::ports::Versioned<Item>>, shared::ports::StoreError> {
        self.inner.get(key).await
    }
    async fn query(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        asc: bool,
    ) -> Result<Vec<shared::ports::Versioned<Item>>, shared::ports::StoreError> {
        self.inner.query(pk, prefix, after, limit, asc).await
    }
    async fn get_many(
        &self,
        keys: &[Key],
    ) -> Result<Vec<Option<shared::ports::Versioned<Item>>>, shared::ports::StoreError> {
        self.inner.get_many(keys).await
    }
    async fn submit(&self, tx: &shared::ports::Transaction) -> Result<(), shared::ports::StoreError> {
        self.inner.submit(tx).await?;
        let mut lose = self.lose.lock().unwrap();
        if *lose > 0 {
            *lose -= 1;
            return Err(shared::ports::StoreError::Unknown("TransactionInProgress".into()));
        }
        Ok(())
    }
}

/// Path 7: every store refuses a transaction DynamoDB would (over 100 writes).
#[tokio::test]
async fn path7_no_store_takes_a_transaction_dynamodb_would_refuse() {
    use shared::ports::{Cond, StoreError, Write};
    let memory = MemoryStore::new();
    let writes: Vec<Write> = (0..101)
        .map(|i| Write::Put { item: Item::Unassigned { conversation_id: format!("c{i}").into() }, cond: Cond::Always })
        .collect();
    assert!(matches!(memory.transact(writes.clone()).await, Err(StoreError::Invalid(_))));
    let dir = tempfile::tempdir().unwrap();
    let db = shared::adapters::embedded::Db::open(dir.path()).unwrap();
    let sqlite = shared::adapters::embedded::SqliteStore::new(db);
    assert!(matches!(sqlite.transact(writes).await, Err(StoreError::Invalid(_))));
    assert!(memory.get(&Key::unassigned(&"c0".into())).await.unwrap().is_none(), "nothing written");
}

/// Path 7: a timer the local runner was firing when it was killed (`kill -9`) fires again when
/// it restarts; once fired, it is disarmed, unless armed again meanwhile.
#[tokio::test]
async fn path7_a_timer_the_local_runner_was_firing_when_killed_fires_again_after_a_restart() {
    use shared::adapters::embedded::{Db, SqliteScheduler};
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let timer = Timer::WindowExpiry { contact_key: CONTACT.into() };
    {
        let scheduler = SqliteScheduler::new(Db::open(dir.path()).unwrap());
        scheduler.schedule(&timer, now - Duration::seconds(1)).await.unwrap();
        assert_eq!(scheduler.due(now).await.unwrap().len(), 1, "firing it, then killed");
    }
    let scheduler = SqliteScheduler::new(Db::open(dir.path()).unwrap());
    let due = scheduler.due(now).await.unwrap();
    assert_eq!(due.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(), vec![timer.clone()], "still armed");
    // Armed again for later while it fired: disarming the old firing leaves the new one.
    scheduler.schedule(&timer, now + Duration::hours(1)).await.unwrap();
    scheduler.fired(&timer, due[0].1).await.unwrap();
    assert!(scheduler.due(now).await.unwrap().is_empty());
    assert_eq!(scheduler.due(now + Duration::hours(2)).await.unwrap().len(), 1, "the new arming stands");
    scheduler.fired(&timer, scheduler.due(now + Duration::hours(2)).await.unwrap()[0].1).await.unwrap();
    assert!(scheduler.due(now + Duration::hours(2)).await.unwrap().is_empty(), "disarmed once fired");
}

/// A store that notes every key read by `get` or `get_many`, and counts the items queries
/// return.
struct Reads {
    inner: Arc<dyn Store>,
    keys: Mutex<Vec<Key>>,
    listed: Mutex<usize>,
}

#[async_trait]
impl Store for Reads {
    async fn get(&self, key: &Key) -> Result<Option<shared::ports::Versioned<Item>>, shared::ports::StoreError> {
        self.keys.lock().unwrap().push(key.clone());
        self.inner.get(key).await
    }
    async fn query(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        asc: bool,
    ) -> Result<Vec<shared::ports::Versioned<Item>>, shared::ports::StoreError> {
        let found = self.inner.query(pk, prefix, after, limit, asc).await?;
        *self.listed.lock().unwrap() += found.len();
        Ok(found)
    }
    async fn get_many(
        &self,
        keys: &[Key],
    ) -> Result<Vec<Option<shared::ports::Versioned<Item>>>, shared::ports::StoreError> {
        self.keys.lock().unwrap().extend(keys.iter().cloned());
        self.inner.get_many(keys).await
    }
    async fn submit(&self, tx: &shared::ports::Transaction) -> Result<(), shared::ports::StoreError> {
        self.inner.submit(tx).await
    }
}

/// Issue 30: an inbound message reads the contact's open threads, not every thread they ever
/// had; a thread closed by its last participant leaving, or by its opt-in failing twice, is
/// marked closed on the contact's link to it in the same commit.
#[tokio::test]
async fn path8_an_inbound_message_reads_only_the_contacts_open_threads() {
    let reads =
        Arc::new(Reads { inner: Arc::new(MemoryStore::new()), keys: Mutex::default(), listed: Mutex::default() });
    let w = world_on(reads.clone());
    let left = w.opted_in_thread().await;
    shared::usecases::participants::leave(&w.ports, &alex(), &left).await.unwrap();
    let link = |conv: &ConversationId| {
        let (store, key) = (reads.inner.clone(), Key::contact_thread(CONTACT, conv));
        async move {
            match store.get(&key).await.unwrap().map(|v| v.item) {
                Some(Item::ContactThread { closed, .. }) => closed,
                other => panic!("no link: {other:?}"),
            }
        }
    };
    assert!(link(&left).await, "the link is marked closed with the thread");

    reads.keys.lock().unwrap().clear();
    w.says("hello again").await;
    let read = std::mem::take(&mut *reads.keys.lock().unwrap());
    assert!(!read.contains(&Key::conversation(&left)), "the closed thread was read: {read:?}");
    let opened: Vec<ConversationId> = w
        .ports
        .store
        .contact_partition(CONTACT, 100)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|v| match v.item {
            Item::ContactThread { conversation_id, closed: false, .. } => Some(conversation_id),
            _ => None,
        })
        .collect();
    assert_eq!(opened.len(), 1, "the message opened one unassigned thread");
    w.says("still there?").await;
    let read = std::mem::take(&mut *reads.keys.lock().unwrap());
    assert!(read.contains(&Key::conversation(&opened[0])), "the open thread is read");
    assert!(!read.contains(&Key::conversation(&left)));
    assert_eq!(
        w.thread_messages(&opened[0])
            .await
            .iter()
            .filter(|m| m.direction == shared::domain::Direction::Inbound)
            .count(),
        2
    );

    // An opt-in failing twice closes its thread, and its link with it.
    let w = world_on(reads.clone());
    let cmd = conversations::StartConversation { phone: Phone::parse("+447700900999").unwrap(), name: None };
    let conv = conversations::start(&w.ports, &alex(), cmd).await.unwrap().id;
    for _ in 0..2 {
        w.drain().await;
        let optin = w.thread_messages(&conv).await.into_iter().rev().find(|m| m.system.is_some()).unwrap();
        let failed = StatusEvent {
            wamid: optin.wamid.clone().unwrap(),
            status: shared::domain::ReceiptStatus::Failed,
            timestamp: w.clock.now(),
            recipient_id: None,
            errors: vec![MetaError { code: 131026, title: "x".into(), message: "x".into(), error_data: None }],
            callback: None,
        };
        receipts::apply_status(&w.ports, &failed).await.unwrap();
        w.clock.advance(Duration::hours(25));
        timers::fire(&w.ports, &Timer::OptinRetry { conversation_id: conv.clone() }).await.unwrap();
    }
    let closed = match reads.inner.get(&Key::conversation(&conv)).await.unwrap().map(|v| v.item) {
        Some(Item::Conversation(c)) => c.closed,
        other => panic!("{other:?}"),
    };
    assert!(closed, "two failed opt-ins close the thread");
    match reads.inner.get(&Key::contact_thread("447700900999", &conv)).await.unwrap().map(|v| v.item) {
        Some(Item::ContactThread { closed, .. }) => assert!(closed, "and its link"),
        other => panic!("{other:?}"),
    }
}

/// Issue 30: a directory search reads the entries it answers (a name-sorted index), not the
/// whole sub-organization; it answers at most 50, by name; a rename, a move or disabling takes
/// the old entry out.
#[tokio::test]
async fn path9_a_directory_search_reads_what_it_answers() {
    use shared::usecases::directory::{self, Upsert, SEARCH_LIMIT};
    let reads =
        Arc::new(Reads { inner: Arc::new(MemoryStore::new()), keys: Mutex::default(), listed: Mutex::default() });
    let w = world_on(reads.clone());
    let mut names: Vec<String> = (0..300).map(|i| format!("Zed {i:03}")).collect();
    names.extend((0..5).map(|i| format!("Al {i}")));
    names.extend(["alba".to_string(), "Alan".to_string(), "Ål".to_string()]);
    for (i, name) in names.iter().enumerate() {
        directory::record(&w.ports, &Caller::new(&format!("u{i}"), name, "retail", "eu")).await.unwrap();
    }
    directory::record(&w.ports, &Caller::new("far", "Alma Far", "retail", "us")).await.unwrap();
    let search = |q: &'static str| {
        let (w, reads) = (&w, reads.clone());
        async move {
            *reads.listed.lock().unwrap() = 0;
            let found = directory::search(&w.ports, &alex(), q, None).await.unwrap();
            let listed = *reads.listed.lock().unwrap();
            assert_eq!(listed, found.len(), "{q:?}: read {listed} entries to answer {}", found.len());
            found.into_iter().map(|u| u.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(search("al").await, ["Al 0", "Al 1", "Al 2", "Al 3", "Al 4", "Alan", "alba"]);
    assert_eq!(search("AL 3").await, ["Al 3"]);
    assert_eq!(search("ål").await, ["Ål"]);
    assert_eq!(search("zed 29").await.len(), 10);
    let first = search("zed").await;
    assert_eq!(first.len(), SEARCH_LIMIT);
    assert_eq!((first[0].as_str(), first[49].as_str()), ("Zed 000", "Zed 049"));
    assert_eq!(search("").await.len(), SEARCH_LIMIT);

    let admin = Caller { roles: vec!["admin".into()], ..Caller::new("boss", "Boss", "retail", "eu") };
    let upsert = |name: &str, enabled: bool| Upsert {
        name: name.into(),
        sub_org: "retail".into(),
        region: "eu".into(),
        locale: "en".into(),
        whatsapp_enabled: enabled,
    };
    directory::upsert(&w.ports, &admin, &"u300".into(), upsert("Bea", true)).await.unwrap();
    assert_eq!(search("al").await, ["Al 1", "Al 2", "Al 3", "Al 4", "Alan", "alba"], "renamed");
    assert_eq!(search("be").await, ["Bea"]);
    directory::upsert(&w.ports, &admin, &"u300".into(), upsert("Bea", false)).await.unwrap();
    assert!(search("be").await.is_empty(), "disabled: out of the index");
    directory::upsert(&w.ports, &admin, &"u300".into(), upsert("Bea", true)).await.unwrap();
    assert_eq!(search("be").await, ["Bea"], "enabled again");
}

/// Issue 30: one function instance reads the agents' connections at most every two seconds,
/// not for each change in an unclaimed thread; an agent who connects through it is seen at
/// once.
#[tokio::test]
async fn path10_the_agents_connections_are_read_once_for_many_changes() {
    use shared::live::socket::{connect, AgentConnections};
    let reads =
        Arc::new(Reads { inner: Arc::new(MemoryStore::new()), keys: Mutex::default(), listed: Mutex::default() });
    let w = world_on(reads.clone());
    let agent =
        |i: usize| Caller { roles: vec!["agent".into()], ..Caller::new(&format!("a{i}"), "Agent", "retail", "eu") };
    for i in 0..3 {
        connect(&w.ports, &agent(i), &format!("conn-{i}"), w.clock.now()).await.unwrap();
    }
    let agents = AgentConnections::default();
    let listed = || *reads.listed.lock().unwrap();
    assert_eq!(agents.list(&w.ports).await.unwrap().len(), 3);
    let after_first = listed();
    assert!(after_first >= 3);
    for _ in 0..10 {
        assert_eq!(agents.list(&w.ports).await.unwrap().len(), 3, "the list read once");
    }
    assert_eq!(listed(), after_first, "ten more changes read nothing");
    connect(&w.ports, &agent(3), "conn-3", w.clock.now()).await.unwrap();
    agents.forget();
    assert_eq!(agents.list(&w.ports).await.unwrap().len(), 4, "an agent connected here is seen at once");
}
