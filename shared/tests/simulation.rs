//! Deterministic simulation: the real use cases over the in-memory store and scripted stand-ins
//! for the queues, the scheduler and Meta, driven by a seeded schedule that injects a failure
//! before or after any port call (a crash after a commit, an answer lost after Meta took the
//! message) and Meta's refusals and failed statuses, duplicates and reorders webhooks and
//! queue deliveries, moves the clock past
//! windows, leases and deadlines, and races claims. After each schedule the system is drained
//! without faults and the promises are checked. A failing seed prints the command replaying it.
//!
//! `SIM_SEEDS=N` runs N seeds (default 2,000), `SIM_SEED=S` only seed S, `SIM_STEPS` the steps of
//! each schedule (default 120).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::{Duration, OffsetDateTime};

use shared::adapters::aws::DynamoArchive;
use shared::adapters::embedded::ManualClock;
use shared::adapters::memory::MemoryStore;
use shared::domain::contact::ConsentState;
use shared::domain::notice::NoticeCode;
use shared::domain::{
    Contact, Conversation, ConversationId, Direction, Message, MessageId, MessageStatus, Phone, ReceiptStatus, UserId,
};
use shared::meta::graph::{GraphError, OutboundRequest};
use shared::meta::webhook::{InboundContent, InboundMessage, StatusEvent};
use shared::ports::{
    Clock, Disposition, Item, Key, MediaInfo, MediaStore, MediaStoreError, OutboundJob, Queue, QueueError, ReceiptsJob,
    Scheduler, SchedulerError, Store, StoreError, Timer, Transaction, Versioned, WhatsApp,
};
use shared::usecases::{conversations, dispatch, inbound, receipts, relay, send, timers, Caller, Ports, Settings};

// ---- Faults ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The call fails and does nothing.
    Before,
    /// The call does its work, then its answer is lost (a crash right after, a dropped reply).
    After,
}

struct Faults {
    rng: Mutex<StdRng>,
    on: std::sync::atomic::AtomicBool,
    rate: f64,
    injected: std::sync::atomic::AtomicU64,
}

impl Faults {
    fn roll(&self) -> Option<Fault> {
        if !self.on.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let mut rng = self.rng.lock().unwrap();
        if !rng.random_bool(self.rate) {
            return None;
        }
        self.injected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(if rng.random_bool(0.5) { Fault::Before } else { Fault::After })
    }
}

fn down() -> StoreError {
    StoreError::Unavailable("injected".into())
}

struct FaultyStore {
    inner: Arc<MemoryStore>,
    faults: Arc<Faults>,
}

#[async_trait]
impl Store for FaultyStore {
    async fn get(&self, key: &Key) -> Result<Option<Versioned<Item>>, StoreError> {
        if self.faults.roll().is_some() {
            return Err(down());
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
    ) -> Result<Vec<Versioned<Item>>, StoreError> {
        if self.faults.roll().is_some() {
            return Err(down());
        }
        self.inner.query(pk, prefix, after, limit, asc).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Versioned<Item>>>, StoreError> {
        if self.faults.roll().is_some() {
            return Err(down());
        }
        self.inner.get_many(keys).await
    }
    async fn submit(&self, tx: &Transaction) -> Result<(), StoreError> {
        match self.faults.roll() {
            Some(Fault::Before) => Err(down()),
            Some(Fault::After) => {
                self.inner.submit(tx).await?;
                Err(StoreError::Unknown("injected".into()))
            }
            None => self.inner.submit(tx).await,
        }
    }
}

/// The queues: at-least-once, FIFO per conversation for outbound jobs.
#[derive(Default)]
struct SimQueue {
    outbound: Mutex<VecDeque<OutboundJob>>,
    receipts: Mutex<VecDeque<ReceiptsJob>>,
    faults: Option<Arc<Faults>>,
}

impl SimQueue {
    fn fault(&self) -> Option<Fault> {
        self.faults.as_ref().and_then(|f| f.roll())
    }
}

#[async_trait]
impl Queue for SimQueue {
    async fn send_outbound(&self, job: OutboundJob) -> Result<(), QueueError> {
        let fault = self.fault();
        if fault == Some(Fault::Before) {
            return Err(QueueError("injected".into()));
        }
        let mut q = self.outbound.lock().unwrap();
        // FIFO dedupe: the same message and generation while still queued is dropped.
        if !q.contains(&job) {
            q.push_back(job);
        }
        if fault == Some(Fault::After) {
            return Err(QueueError("injected".into()));
        }
        Ok(())
    }
    async fn send_receipt(&self, job: ReceiptsJob) -> Result<(), QueueError> {
        if self.fault().is_some() {
            return Err(QueueError("injected".into()));
        }
        self.receipts.lock().unwrap().push_back(job);
        Ok(())
    }
}

#[derive(Default)]
struct SimScheduler {
    timers: Mutex<BTreeMap<String, (Timer, OffsetDateTime)>>,
    faults: Option<Arc<Faults>>,
}

#[async_trait]
impl Scheduler for SimScheduler {
    async fn schedule(&self, timer: &Timer, at: OffsetDateTime) -> Result<(), SchedulerError> {
        let fault = self.faults.as_ref().and_then(|f| f.roll());
        if fault == Some(Fault::Before) {
            return Err(SchedulerError::Unavailable("injected".into()));
        }
        self.timers.lock().unwrap().insert(timer.name(), (timer.clone(), at));
        if fault == Some(Fault::After) {
            return Err(SchedulerError::Unavailable("injected".into()));
        }
        Ok(())
    }
}

/// What Meta took: one entry per accepted request.
#[derive(Debug, Clone)]
struct Taken {
    wamid: String,
    callback: String,
}

struct SimMeta {
    taken: Mutex<Vec<Taken>>,
    faults: Arc<Faults>,
    n: Mutex<u64>,
}

#[async_trait]
impl WhatsApp for SimMeta {
    async fn templates(&self) -> Result<Vec<shared::ports::TemplateInfo>, GraphError> {
        Ok(Vec::new())
    }

    async fn send(&self, req: &OutboundRequest) -> Result<String, GraphError> {
        match self.faults.roll() {
            Some(Fault::Before) => {
                let mut rng = self.faults.rng.lock().unwrap();
                return Err(if rng.random_bool(0.5) {
                    GraphError::unsent("connection refused")
                } else {
                    GraphError { lost: false, http_status: Some(503), code: None, message: "unavailable".into() }
                });
            }
            // Meta's own refusals (nothing taken): the window closed, undeliverable, limits.
            _ if self.faults.on.load(std::sync::atomic::Ordering::SeqCst)
                && self.faults.rng.lock().unwrap().random_bool(0.03) =>
            {
                let mut rng = self.faults.rng.lock().unwrap();
                let code = [131047, 131026, 131049, 130429, 131056][rng.random_range(0..5)];
                return Err(GraphError {
                    lost: false,
                    http_status: Some(400),
                    code: Some(code),
                    message: "refused".into(),
                });
            }
            fault => {
                let wamid = {
                    let mut n = self.n.lock().unwrap();
                    *n += 1;
                    format!("wamid.SIM{n}")
                };
                self.taken.lock().unwrap().push(Taken { wamid: wamid.clone(), callback: req.callback.clone() });
                if fault == Some(Fault::After) {
                    return Err(GraphError::transport("timed out"));
                }
                Ok(wamid)
            }
        }
    }
    async fn upload_media(&self, _: Vec<u8>, _: &str) -> Result<String, GraphError> {
        Err(GraphError::unsent("no pictures in the simulation"))
    }
    async fn media_info(&self, _: &str) -> Result<MediaInfo, GraphError> {
        Err(GraphError::unsent("no pictures in the simulation"))
    }
    async fn download(&self, _: &str, _: usize) -> Result<Vec<u8>, GraphError> {
        Err(GraphError::unsent("no pictures in the simulation"))
    }
}

struct NoMedia;

#[async_trait]
impl MediaStore for NoMedia {
    async fn put(&self, _: &str, _: Vec<u8>, _: &str) -> Result<(), MediaStoreError> {
        Err(MediaStoreError("no pictures in the simulation".into()))
    }
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, MediaStoreError> {
        Ok(None)
    }
    async fn put_upload(&self, _: &str, _: Vec<u8>) -> Result<(), MediaStoreError> {
        Err(MediaStoreError("no pictures in the simulation".into()))
    }
    async fn get_upload(&self, _: &str, _: usize) -> Result<Option<Vec<u8>>, MediaStoreError> {
        Ok(None)
    }
}

// ---- The world ------------------------------------------------------------------------------

struct World {
    rng: StdRng,
    ports: Ports,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    queue: Arc<SimQueue>,
    scheduler: Arc<SimScheduler>,
    meta: Arc<SimMeta>,
    faults: Arc<Faults>,
    threads: Vec<(ConversationId, UserId)>,
    /// Inbound webhooks the contact sent: (message, acknowledged with 200).
    inbound: Vec<(InboundMessage, bool)>,
    /// Deliveries Meta will try (again): redeliveries and duplicates.
    redeliver: Vec<InboundMessage>,
    statuses: Vec<StatusEvent>,
    n: u64,
    /// Highest status rank each message was seen at.
    seen: HashMap<MessageId, u8>,
}

const CONTACTS: [&str; 3] = ["447700900101", "447700900102", "447700900103"];

fn caller(user: &str, roles: &[&str]) -> Caller {
    Caller::new(user, &format!("User {user}"), "retail", "eu").with_roles(roles)
}

fn rank(s: MessageStatus) -> u8 {
    match s {
        MessageStatus::Pending => 0,
        MessageStatus::Queued => 1,
        MessageStatus::Sending => 2,
        MessageStatus::Accepted => 3,
        MessageStatus::Sent => 4,
        MessageStatus::Delivered => 5,
        MessageStatus::Read => 6,
        MessageStatus::Failed => 7,
        MessageStatus::Recalled => 8,
    }
}

impl World {
    fn new(seed: u64) -> World {
        let faults = Arc::new(Faults {
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed)),
            on: true.into(),
            rate: 0.04,
            injected: 0.into(),
        });
        let store = Arc::new(MemoryStore::new());
        // Stores expire items (dedupe marks) by the wall clock, as TTLs do: start the simulated
        // clock ahead of it, so a mark lives for its full time in simulated time.
        let clock = Arc::new(ManualClock::new(time::macros::datetime!(2036-09-20 09:00 UTC)));
        let queue = Arc::new(SimQueue { faults: Some(faults.clone()), ..Default::default() });
        let scheduler = Arc::new(SimScheduler { faults: Some(faults.clone()), ..Default::default() });
        let meta = Arc::new(SimMeta { taken: Default::default(), faults: faults.clone(), n: Default::default() });
        let settings = Settings { retry_base: std::time::Duration::from_millis(10), ..Settings::default() };
        let ports = Ports {
            store: Arc::new(FaultyStore { inner: store.clone(), faults: faults.clone() }),
            queue: queue.clone(),
            scheduler: scheduler.clone(),
            clock: clock.clone(),
            whatsapp: meta.clone(),
            archive: Arc::new(DynamoArchive::new(store.clone())),
            media: Arc::new(NoMedia),
            vault: None,
            settings: Arc::new(settings),
        };
        World {
            rng: StdRng::seed_from_u64(seed),
            ports,
            store,
            clock,
            queue,
            scheduler,
            meta,
            faults,
            threads: Vec::new(),
            inbound: Vec::new(),
            redeliver: Vec::new(),
            statuses: Vec::new(),
            n: 0,
            seen: HashMap::new(),
        }
    }

    fn next(&mut self) -> u64 {
        self.n += 1;
        self.n
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.random_range(0..items.len())].clone())
    }

    async fn step(&mut self) {
        match self.rng.random_range(0..100) {
            0..=7 => self.start_thread().await,
            8..=27 => self.employee_sends().await,
            28..=42 => self.contact_writes().await,
            43..=49 => self.meta_redelivers().await,
            50..=67 => self.dispatch_one().await,
            68..=79 => self.status_arrives().await,
            80..=86 => self.time_passes().await,
            87..=91 => {
                let _ = relay::sweep(&self.ports).await;
            }
            92..=93 => self.claim_race().await,
            94..=95 => self.employee_recalls().await,
            _ => self.snapshot().await,
        }
    }

    async fn start_thread(&mut self) {
        let user = self.pick(&["u1", "u2"]).unwrap();
        let contact = self.pick(&CONTACTS[..2]).unwrap();
        let cmd = conversations::StartConversation { phone: Phone::parse(&format!("+{contact}")).unwrap(), name: None };
        if let Ok(view) = conversations::start(&self.ports, &caller(user, &[]), cmd).await {
            self.threads.push((view.id.clone(), user.into()));
        }
    }

    async fn employee_sends(&mut self) {
        let Some((conv, user)) = self.pick(&self.threads.clone()) else { return };
        let client_id = format!("c{}", self.next());
        let cmd =
            send::SendCommand { content: send::Content::Text(format!("text {client_id}")), client_id: Some(client_id) };
        // A client retries a failed call with the same idempotency key.
        for _ in 0..3 {
            if send::send(&self.ports, &caller(user.as_str(), &[]), &conv, cmd.clone()).await.is_ok() {
                return;
            }
        }
    }

    /// The sender takes back one of their recent messages, if it has not left.
    async fn employee_recalls(&mut self) {
        let Some((conv, user)) = self.pick(&self.threads.clone()) else { return };
        let recent = self.store.messages(&conv, None, 5, false).await.unwrap_or_default();
        let mine: Vec<MessageId> = recent
            .into_iter()
            .filter_map(|v| match v.item {
                Item::Message(m) if m.sender.is_user(&user) => Some(m.id),
                _ => None,
            })
            .collect();
        let Some(id) = self.pick(&mine) else { return };
        let _ = send::recall(&self.ports, &caller(user.as_str(), &[]), &conv, &id).await;
    }

    async fn contact_writes(&mut self) {
        let contact = self.pick(&CONTACTS).unwrap();
        let n = self.next();
        let body = match self.rng.random_range(0..10) {
            0..=1 => "yes".to_string(),
            2 => "STOP".to_string(),
            _ => format!("hello {n}"),
        };
        let content = if body == "yes" && self.rng.random_bool(0.5) {
            // The accept button of the latest opt-in request to this contact, when there is one.
            let optin = self.threads.iter().rev().map(|(c, _)| c.clone()).next();
            match optin {
                Some(conv) => InboundContent::Button { payload: format!("OPT_IN_YES:{conv}"), text: "Yes".into() },
                None => InboundContent::Text { body },
            }
        } else {
            InboundContent::Text { body }
        };
        let m = InboundMessage {
            wamid: format!("wamid.IN{n}"),
            wa_id: Some(contact.to_string()),
            user_id: None,
            profile_name: Some("Olivia".into()),
            timestamp: self.clock.now(),
            context_id: None,
            content,
        };
        self.deliver(m).await;
    }

    /// Meta posts a message until it is acknowledged, and sometimes again after that.
    async fn deliver(&mut self, m: InboundMessage) {
        let ok = inbound::apply_inbound(&self.ports, &m).await.is_ok();
        if !ok || self.rng.random_bool(0.2) {
            self.redeliver.push(m.clone());
        }
        self.inbound.push((m, ok));
    }

    async fn meta_redelivers(&mut self) {
        if self.redeliver.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.redeliver.len());
        let m = self.redeliver.swap_remove(i);
        let ok = inbound::apply_inbound(&self.ports, &m).await.is_ok();
        if !ok {
            self.redeliver.push(m.clone());
        }
        if let Some(entry) = self.inbound.iter_mut().find(|(x, _)| x.wamid == m.wamid) {
            entry.1 |= ok;
        }
    }

    async fn dispatch_one(&mut self) {
        let job = {
            let mut q = self.queue.outbound.lock().unwrap();
            if q.is_empty() {
                return;
            }
            // The head of a random group (FIFO per conversation).
            let i = self.rng.random_range(0..q.len());
            let group = q[i].conversation_id.clone();
            let head = q.iter().position(|j| j.conversation_id == group).unwrap();
            q.remove(head).unwrap()
        };
        let outcome = dispatch::dispatch(&self.ports, &job).await;
        let again = match outcome {
            Ok(Disposition::Done) => self.rng.random_bool(0.05), // at-least-once: a duplicate delivery
            Ok(Disposition::RetryAfter(_)) | Err(_) => true,
        };
        if again {
            self.queue.outbound.lock().unwrap().push_back(job);
        }
    }

    async fn status_arrives(&mut self) {
        if self.statuses.is_empty() || self.rng.random_bool(0.5) {
            // Meta reports on something it took, in any order, sometimes twice.
            let taken = self.meta.taken.lock().unwrap().clone();
            if let Some(t) = self.pick(&taken) {
                let status = self.pick(&[ReceiptStatus::Sent, ReceiptStatus::Delivered, ReceiptStatus::Read]).unwrap();
                // Now and then Meta could not deliver it after all (permanent: never sent again).
                let failed = self.rng.random_bool(0.05);
                let errors = if failed {
                    let code = self.pick(&[131026, 131049]).unwrap();
                    vec![shared::meta::webhook::MetaError {
                        code,
                        title: "t".into(),
                        message: "m".into(),
                        error_data: None,
                    }]
                } else {
                    Vec::new()
                };
                self.statuses.push(StatusEvent {
                    wamid: t.wamid,
                    status: if failed { ReceiptStatus::Failed } else { status },
                    timestamp: self.clock.now(),
                    recipient_id: None,
                    errors,
                    // Meta echoes our callback data in sent, delivered and read statuses only.
                    callback: (!failed).then_some(t.callback),
                });
            }
        }
        if self.statuses.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.statuses.len());
        let ev = self.statuses.swap_remove(i);
        if receipts::apply_status(&self.ports, &ev).await.is_err() || self.rng.random_bool(0.1) {
            self.statuses.push(ev);
        }
    }

    async fn time_passes(&mut self) {
        let secs = match self.rng.random_range(0..10) {
            0..=5 => self.rng.random_range(1..120),
            6..=8 => self.rng.random_range(600..4000),
            _ => self.rng.random_range(20 * 3600..30 * 3600),
        };
        self.clock.advance(Duration::seconds(secs));
        self.fire_due().await;
    }

    async fn fire_due(&mut self) {
        let now = self.clock.now();
        let due: Vec<(String, Timer)> = self
            .scheduler
            .timers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(name, (t, _))| (name.clone(), t.clone()))
            .collect();
        for (name, timer) in due {
            if timers::fire(&self.ports, &timer).await.is_ok() {
                let mut all = self.scheduler.timers.lock().unwrap();
                if all.get(&name).is_some_and(|(_, at)| *at <= now) {
                    all.remove(&name);
                }
            }
        }
    }

    /// Two agents claim the same contact-started thread at once: at most one wins.
    async fn claim_race(&mut self) {
        let ids = self.store.query_unassigned(10).await.unwrap_or_default();
        let Some(id) = self.pick(&ids) else { return };
        let (a, b) = (caller("agent1", &["agent"]), caller("agent2", &["agent"]));
        let (ra, rb) =
            tokio::join!(conversations::claim(&self.ports, &a, &id), conversations::claim(&self.ports, &b, &id));
        assert!(!(ra.is_ok() && rb.is_ok()), "two claims of {id} both won");
        for (r, who) in [(ra, "agent1"), (rb, "agent2")] {
            if r.is_ok() {
                self.threads.push((id.clone(), who.into()));
            }
        }
    }

    /// Every message of every thread, straight from the store.
    async fn messages(&self) -> Vec<Message> {
        let mut out = Vec::new();
        for (conv, _) in self.all_threads().await {
            for v in self.store.messages(&conv, None, 100_000, true).await.unwrap() {
                if let Item::Message(m) = v.item {
                    out.push(m);
                }
            }
        }
        out
    }

    async fn all_threads(&self) -> Vec<(ConversationId, Conversation)> {
        let mut out = Vec::new();
        for c in CONTACTS {
            for v in self.store.contact_partition(c, 10_000).await.unwrap() {
                if let Item::ContactThread { conversation_id, .. } = v.item {
                    if let Some(Item::Conversation(conv)) =
                        self.store.get(&Key::conversation(&conversation_id)).await.unwrap().map(|v| v.item)
                    {
                        out.push((conversation_id, conv));
                    }
                }
            }
        }
        out
    }

    /// Statuses never move back: what a message showed, it shows at least from then on.
    async fn snapshot(&mut self) {
        for m in self.messages().await {
            let r = rank(m.status);
            let before = self.seen.entry(m.id.clone()).or_insert(r);
            assert!(
                r >= *before || m.status == MessageStatus::Pending,
                "message {} moved back to {:?}",
                m.id,
                m.status
            );
            *before = (*before).max(r);
        }
    }

    /// No more faults: let everything in flight finish, as the system would in time.
    async fn drain(&mut self) {
        self.faults.on.store(false, std::sync::atomic::Ordering::SeqCst);
        for m in std::mem::take(&mut self.redeliver) {
            let ok = inbound::apply_inbound(&self.ports, &m).await.is_ok();
            assert!(ok, "a redelivery failed without faults");
            if let Some(entry) = self.inbound.iter_mut().find(|(x, _)| x.wamid == m.wamid) {
                entry.1 = true;
            }
        }
        for round in 0..=12 {
            self.clock.advance(Duration::seconds(10));
            relay::sweep(&self.ports).await.unwrap();
            let jobs: Vec<OutboundJob> = self.queue.outbound.lock().unwrap().drain(..).collect();
            for job in jobs {
                if let Disposition::RetryAfter(_) = dispatch::dispatch(&self.ports, &job).await.unwrap() {
                    self.queue.outbound.lock().unwrap().push_back(job);
                }
            }
            // Meta reports on everything it took.
            let taken = self.meta.taken.lock().unwrap().clone();
            for t in taken {
                let ev = StatusEvent {
                    wamid: t.wamid,
                    status: ReceiptStatus::Delivered,
                    timestamp: self.clock.now(),
                    recipient_id: None,
                    errors: Vec::new(),
                    callback: Some(t.callback),
                };
                receipts::apply_status(&self.ports, &ev).await.unwrap();
            }
            for ev in std::mem::take(&mut self.statuses) {
                receipts::apply_status(&self.ports, &ev).await.unwrap();
            }
            if round < 12 {
                // Past leases and delivery deadlines; the last round only finishes what is in flight.
                self.clock.advance(Duration::minutes(16));
                self.fire_due().await;
            }
        }
        let left: Vec<OutboundJob> = self.queue.outbound.lock().unwrap().iter().cloned().collect();
        for job in &left {
            let m = self.store.get(&Key::message(&job.conversation_id, &job.message_id)).await.unwrap();
            eprintln!("left: {job:?} -> {m:?} at {}", self.clock.now());
        }
        assert!(left.is_empty(), "outbound jobs left after draining");
        assert_eq!(relay::pending(&self.ports).await.unwrap(), 0, "outbox entries left after draining");
    }

    async fn check(&mut self) {
        self.snapshot().await;
        let messages = self.messages().await;
        let by_wamid: HashMap<&str, Vec<&Message>> =
            messages.iter().filter(|m| m.direction == Direction::Inbound).fold(HashMap::new(), |mut acc, m| {
                acc.entry(m.wamid.as_deref().unwrap_or("")).or_default().push(m);
                acc
            });
        // 1. Every acknowledged inbound message is stored once.
        for (m, acked) in &self.inbound {
            let stored = by_wamid.get(m.wamid.as_str()).map_or(0, |v| v.len());
            assert!(stored <= 1, "inbound {} stored {stored} times", m.wamid);
            if *acked {
                assert_eq!(stored, 1, "acknowledged inbound {} is not stored", m.wamid);
            }
        }
        // 2. At most once to the contact.
        let taken = self.meta.taken.lock().unwrap().clone();
        let mut per_message: HashMap<&str, usize> = HashMap::new();
        for t in &taken {
            *per_message.entry(t.callback.as_str()).or_default() += 1;
        }
        for (cb, n) in &per_message {
            assert_eq!(*n, 1, "{cb} reached Meta {n} times");
        }
        // 3. Every outbound message ended well, failed with a notice, or waits for a reason.
        let failed_notices: HashSet<&MessageId> = messages
            .iter()
            .filter_map(|m| m.body.notice())
            .filter(|n| n.code() == NoticeCode::MessageFailed)
            .filter_map(|n| n.message_id())
            .collect();
        let threads: HashMap<ConversationId, Conversation> = self.all_threads().await.into_iter().collect();
        let now = self.clock.now();
        for m in messages.iter().filter(|m| m.direction == Direction::Outbound) {
            let conv = &threads[&m.conversation_id];
            let contact: Contact = match self.store.get(&Key::contact(&conv.contact_key)).await.unwrap().map(|v| v.item)
            {
                Some(Item::Contact(c)) => c,
                other => panic!("thread {} has no contact: {other:?}", conv.id),
            };
            match m.status {
                MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read => {}
                MessageStatus::Recalled => {
                    let callback = format!("{}/{}", m.conversation_id, m.id);
                    assert!(!per_message.contains_key(callback.as_str()), "recalled {} reached Meta", m.id);
                }
                MessageStatus::Failed => {
                    if m.system.is_none() {
                        assert!(failed_notices.contains(&m.id), "{} failed without a notice", m.id);
                    }
                }
                MessageStatus::Pending => assert!(
                    contact.consent != ConsentState::OptedIn || !contact.window_open(now) || conv.closed,
                    "{} is held though the contact allows sending ({:?})",
                    m.id,
                    contact
                ),
                other => panic!("{} ended {other:?} (body {:?})", m.id, m.body),
            }
        }
        // Held markers match the counts.
        for (id, conv) in &threads {
            let held = self.store.held(id, 100_000).await.unwrap().len();
            assert_eq!(held as u32, conv.pending_count, "thread {id}: pending_count drifted from the held markers");
        }
        // 4. Every thread's chain verifies and holds every message the thread shows.
        for id in threads.keys() {
            let records = self.ports.archive.read(id).await.unwrap();
            let v = shared::usecases::archive::verify_against_head(&*self.store, id, &records).await.unwrap();
            assert!(v.valid, "thread {id}: {v:?}");
            let archived: HashSet<&MessageId> = records.iter().filter_map(|r| r.event.message_id.as_ref()).collect();
            for m in messages.iter().filter(|m| &m.conversation_id == id) {
                assert!(archived.contains(&m.id), "message {} of {id} is not archived", m.id);
            }
        }
    }
}

fn run_seed(seed: u64, steps: usize) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    rt.block_on(async {
        let mut w = World::new(seed);
        for _ in 0..steps {
            w.step().await;
        }
        w.drain().await;
        w.check().await;
        w.faults.injected.load(std::sync::atomic::Ordering::SeqCst)
    })
}

#[test]
fn every_schedule_keeps_the_promises() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let steps = env("SIM_STEPS").unwrap_or(120) as usize;
    let seeds: Vec<u64> = match env("SIM_SEED") {
        Some(s) => vec![s],
        None => (0..env("SIM_SEEDS").unwrap_or(2000)).collect(),
    };
    let mut faults = 0;
    for &seed in &seeds {
        let outcome = std::panic::catch_unwind(|| run_seed(seed, steps));
        match outcome {
            Ok(n) => faults += n,
            Err(e) => {
                eprintln!(
                    "simulation seed {seed} failed; replay: SIM_SEED={seed} SIM_STEPS={steps} cargo test -p shared --test simulation -- --nocapture"
                );
                std::panic::resume_unwind(e);
            }
        }
    }
    println!("simulation: {} seeds x {steps} steps, {faults} faults injected, every promise kept", seeds.len());
}
