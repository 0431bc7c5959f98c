//! Stand-ins for the AWS services that behave as the services do, faults and limits included,
//! each call a `point` where the executor may switch tasks or crash the caller.
//!
//! - `SimDynamo`: the memory store (DynamoDB's conditions, transactions, item and transaction
//!   limits, idempotent resubmission by token) answering `TransactionConflict` and throttling
//!   (nothing written), `TransactionInProgress` (written or not, unknown), and losing the
//!   answer to a write that happened.
//! - `SimSqs`: a standard queue (at-least-once, unordered, duplicates) and a FIFO queue (a
//!   group blocked while one of its messages is in flight, deduplication for five minutes),
//!   both with visibility timeouts, receive counts and a dead-letter queue after
//!   `max_receives`.
//! - `SimS3`: the archive bucket under Object Lock: a name written once (the same bytes again
//!   are a no-op), a request that fails before it lands, or lands and loses its answer.
//! - `SimScheduler`: EventBridge Scheduler: one-time schedules by name (armed again, replaced),
//!   a time in the past refused, fired up to a minute late; the invocation is Lambda's
//!   asynchronous one, retried twice before its dead letter.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::OffsetDateTime;

use shared::adapters::memory::MemoryStore;
use shared::ports::{
    ArchiveError, Clock, Item, Key, OutboundJob, Queue, QueueError, QueueKind, ReceiptsJob, Scheduler, SchedulerError,
    Store, StoreError, Timer, Transaction, Vault, Versioned,
};

use crate::executor::{point, task_started, tick};

// ---- Faults and time --------------------------------------------------------------------------

/// The seeded source of every fault a port injects; `on` is cleared for the drain at the end.
pub struct Faults {
    rng: Mutex<StdRng>,
    on: AtomicBool,
    /// The chance that one port call fails, one way or another.
    pub rate: f64,
    injected: AtomicU64,
}

impl Faults {
    pub fn new(seed: u64, rate: f64) -> Faults {
        Faults {
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0xfa17)),
            on: AtomicBool::new(true),
            rate,
            injected: 0.into(),
        }
    }

    /// Whether this call fails (counted).
    pub fn roll(&self) -> bool {
        if !self.on.load(Ordering::SeqCst) {
            return false;
        }
        let hit = self.rng.lock().expect("faults").random_bool(self.rate);
        if hit {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }

    /// A seeded choice among `n` (faults on or off).
    pub fn choose(&self, n: usize) -> usize {
        self.rng.lock().expect("faults").random_range(0..n)
    }

    /// A seeded coin (faults on or off).
    pub fn chance(&self, p: f64) -> bool {
        self.rng.lock().expect("faults").random_bool(p)
    }

    pub fn on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    pub fn stop(&self) {
        self.on.store(false, Ordering::SeqCst);
    }

    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }
}

/// The world's own time: tokio's paused clock, from a fixed start.
pub struct TrueClock {
    base: OffsetDateTime,
    start: tokio::time::Instant,
}

impl TrueClock {
    pub fn new(base: OffsetDateTime) -> TrueClock {
        TrueClock { base, start: tokio::time::Instant::now() }
    }
}

impl Clock for TrueClock {
    fn now(&self) -> OffsetDateTime {
        self.base + (tokio::time::Instant::now() - self.start)
    }
}

/// The connector's hosts' clock: the world's time, plus the jumps a host clock makes.
pub struct HostClock {
    truth: Arc<TrueClock>,
    skew_ms: AtomicI64,
}

impl HostClock {
    pub fn new(truth: Arc<TrueClock>) -> HostClock {
        HostClock { truth, skew_ms: 0.into() }
    }

    /// Sets the hosts' clock `ms` off the world's (an NTP step: a minute ahead at most, or a
    /// little behind; the next step puts it somewhere else).
    pub fn jump(&self, ms: i64) {
        self.skew_ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for HostClock {
    fn now(&self) -> OffsetDateTime {
        self.truth.now() + time::Duration::milliseconds(self.skew_ms.load(Ordering::SeqCst))
    }
}

/// Seeded ids and random numbers for the connector's code (its `Entropy`), on the hosts' clock.
pub struct SeededEntropy {
    rng: StdRng,
    clock: Arc<HostClock>,
    generator: ulid::Generator,
}

impl SeededEntropy {
    pub fn new(seed: u64, clock: Arc<HostClock>) -> SeededEntropy {
        SeededEntropy { rng: StdRng::seed_from_u64(seed ^ 0x1d5), clock, generator: ulid::Generator::new() }
    }
}

impl shared::domain::ids::Entropy for SeededEntropy {
    fn ulid(&mut self) -> ulid::Ulid {
        let at = std::time::SystemTime::from(self.clock.now());
        match self.generator.generate_from_datetime_with_source(at, &mut self.rng) {
            Ok(u) => u,
            Err(_) => ulid::Ulid::from_datetime_with_source(at, &mut self.rng),
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.rng.random()
    }
}

// ---- DynamoDB ---------------------------------------------------------------------------------

/// When each task last called the store, on the logical clock: what a decision made after it
/// could have known (the model's "nothing after STOP" reads it).
#[derive(Default)]
pub struct StoreCalls {
    last: Mutex<BTreeMap<u64, u64>>,
}

impl StoreCalls {
    fn note(&self) {
        self.last.lock().expect("calls").insert(task_started(), tick());
    }

    /// The logical time of the running task's last store call.
    pub fn last_of_current_task(&self) -> u64 {
        self.last.lock().expect("calls").get(&task_started()).copied().unwrap_or(0)
    }
}

pub struct SimDynamo {
    pub inner: Arc<MemoryStore>,
    faults: Arc<Faults>,
    pub calls: Arc<StoreCalls>,
}

impl SimDynamo {
    pub fn new(inner: Arc<MemoryStore>, faults: Arc<Faults>) -> SimDynamo {
        SimDynamo { inner, faults, calls: Arc::default() }
    }

    async fn read(&self) -> Result<(), StoreError> {
        point().await;
        self.calls.note();
        match self.faults.roll() {
            true => Err(StoreError::Unavailable("injected: DynamoDB unavailable".into())),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl Store for SimDynamo {
    async fn get(&self, key: &Key) -> Result<Option<Versioned<Item>>, StoreError> {
        self.read().await?;
        self.inner.get(key).await
    }

    async fn query(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        ascending: bool,
    ) -> Result<Vec<Versioned<Item>>, StoreError> {
        self.read().await?;
        self.inner.query(pk, prefix, after, limit, ascending).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Versioned<Item>>>, StoreError> {
        self.read().await?;
        self.inner.get_many(keys).await
    }

    async fn submit(&self, tx: &Transaction) -> Result<(), StoreError> {
        point().await;
        self.calls.note();
        if !self.faults.roll() {
            return self.inner.submit(tx).await;
        }
        match self.faults.choose(5) {
            // The request never reached DynamoDB.
            0 => Err(StoreError::Unavailable("injected: connection refused".into())),
            // TransactionConflict, or throttled: nothing written.
            1 => Err(StoreError::Busy),
            // Written, and the answer lost (a time-out, a dropped connection).
            2 => {
                self.inner.submit(tx).await?;
                Err(StoreError::Unknown("injected: answer lost after the write".into()))
            }
            // TransactionInProgress: it may still commit, or not.
            3 => {
                if self.faults.chance(0.5) {
                    self.inner.submit(tx).await?;
                }
                Err(StoreError::Unknown("injected: TransactionInProgress".into()))
            }
            // A time-out before DynamoDB wrote anything: unknown to the caller all the same.
            _ => Err(StoreError::Unknown("injected: timed out".into())),
        }
    }
}

// ---- S3 ---------------------------------------------------------------------------------------

pub struct SimS3 {
    pub inner: shared::adapters::memory::MemoryVault,
    faults: Arc<Faults>,
}

impl SimS3 {
    pub fn new(faults: Arc<Faults>) -> SimS3 {
        SimS3 { inner: Default::default(), faults }
    }
}

#[async_trait]
impl Vault for SimS3 {
    async fn put(&self, name: &str, body: Vec<u8>) -> Result<(), ArchiveError> {
        point().await;
        if !self.faults.roll() {
            return self.inner.put(name, body).await;
        }
        if self.faults.chance(0.5) {
            self.inner.put(name, body).await?;
            return Err(ArchiveError("injected: S3 answer lost after the write".into()));
        }
        Err(ArchiveError("injected: S3 unavailable".into()))
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        point().await;
        match self.faults.roll() {
            true => Err(ArchiveError("injected: S3 unavailable".into())),
            false => self.inner.get(name).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        point().await;
        match self.faults.roll() {
            true => Err(ArchiveError("injected: S3 unavailable".into())),
            false => self.inner.list(prefix).await,
        }
    }

    async fn erase(&self, name: &str) -> Result<(), ArchiveError> {
        point().await;
        match self.faults.roll() {
            true => Err(ArchiveError("injected: S3 unavailable".into())),
            false => self.inner.erase(name).await,
        }
    }
}

// ---- SQS --------------------------------------------------------------------------------------

/// Receives after which SQS moves a message to its dead-letter queue (the template's
/// `maxReceiveCount`: 100 on the outbound queue, 30 on the receipts queue).
pub fn max_receives(kind: QueueKind) -> u32 {
    match kind {
        QueueKind::Outbound => 100,
        QueueKind::Receipts => 30,
    }
}
/// The queues' visibility timeout (the template's, 720 s).
pub const VISIBILITY: Duration = Duration::from_secs(720);
/// How long SQS FIFO remembers a deduplication id.
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(300);

/// A message on a queue.
#[derive(Debug, Clone)]
pub struct SqsMessage {
    pub id: u64,
    pub body: String,
    pub group: Option<String>,
    pub receives: u32,
    /// The receipt handle of its latest receive.
    pub receipt: String,
    visible_at: tokio::time::Instant,
    in_flight: bool,
}

#[derive(Default)]
struct QueueState {
    messages: VecDeque<SqsMessage>,
    dead: Vec<SqsMessage>,
    dedupe: BTreeMap<String, tokio::time::Instant>,
    next: u64,
}

/// SQS: the outbound FIFO queue and the receipts standard queue.
pub struct SimSqs {
    outbound: Mutex<QueueState>,
    receipts: Mutex<QueueState>,
    faults: Arc<Faults>,
    /// Told of each message sent, so an idle poller need not spin.
    pub sent: tokio::sync::Notify,
    /// Bodies a carried record could not be sent again with (it is then charged, as it must be).
    pub not_carried: Mutex<Vec<String>>,
}

impl SimSqs {
    pub fn new(faults: Arc<Faults>) -> SimSqs {
        SimSqs {
            outbound: Mutex::default(),
            receipts: Mutex::default(),
            faults,
            sent: tokio::sync::Notify::new(),
            not_carried: Mutex::default(),
        }
    }

    fn queue(&self, kind: QueueKind) -> &Mutex<QueueState> {
        match kind {
            QueueKind::Outbound => &self.outbound,
            QueueKind::Receipts => &self.receipts,
        }
    }

    async fn send(
        &self,
        kind: QueueKind,
        group: Option<String>,
        dedupe: Option<String>,
        body: String,
    ) -> Result<(), QueueError> {
        point().await;
        let fault = self.faults.roll().then(|| self.faults.chance(0.5));
        if fault == Some(true) {
            return Err(QueueError("injected: SQS unavailable".into()));
        }
        let now = tokio::time::Instant::now();
        {
            let mut q = self.queue(kind).lock().expect("sqs");
            q.dedupe.retain(|_, at| *at + DEDUPE_WINDOW > now);
            let duplicate = dedupe.as_ref().is_some_and(|d| q.dedupe.contains_key(d));
            if !duplicate {
                if let Some(d) = dedupe {
                    q.dedupe.insert(d, now);
                }
                q.next += 1;
                let id = q.next;
                q.messages.push_back(SqsMessage {
                    id,
                    body,
                    group,
                    receives: 0,
                    receipt: String::new(),
                    visible_at: now,
                    in_flight: false,
                });
            }
        }
        self.sent.notify_waiters();
        match fault {
            // Sent, and the answer lost.
            Some(false) => Err(QueueError("injected: answer lost after the send".into())),
            _ => Ok(()),
        }
    }

    /// When a message of the queue next becomes visible, if one waits.
    pub fn next_visible(&self, kind: QueueKind) -> Option<tokio::time::Instant> {
        self.queue(kind).lock().expect("sqs").messages.iter().map(|m| m.visible_at).min()
    }

    /// What a poller receives: up to `max` visible messages (FIFO: from the heads of groups
    /// with nothing in flight, in order). A message over `MAX_RECEIVES` goes to the dead letters.
    pub fn receive(&self, kind: QueueKind, max: usize) -> Vec<SqsMessage> {
        let now = tokio::time::Instant::now();
        let mut q = self.queue(kind).lock().expect("sqs");
        for m in q.messages.iter_mut() {
            if m.in_flight && m.visible_at <= now {
                m.in_flight = false;
            }
        }
        let mut picked: Vec<usize> = Vec::new();
        match kind {
            QueueKind::Outbound => {
                let mut blocked: Vec<&str> = Vec::new();
                for (i, m) in q.messages.iter().enumerate() {
                    let group = m.group.as_deref().unwrap_or("");
                    if blocked.contains(&group) {
                        continue;
                    }
                    if m.in_flight || m.visible_at > now {
                        blocked.push(group);
                        continue;
                    }
                    if picked.len() < max {
                        picked.push(i);
                    }
                }
            }
            QueueKind::Receipts => {
                let visible: Vec<usize> = q
                    .messages
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !m.in_flight && m.visible_at <= now)
                    .map(|(i, _)| i)
                    .collect();
                let mut visible = visible;
                while !visible.is_empty() && picked.len() < max {
                    let i = visible.remove(self.faults.choose(visible.len()));
                    picked.push(i);
                }
            }
        }
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for i in picked {
            let m = &mut q.messages[i];
            m.receives += 1;
            if m.receives > max_receives(kind) {
                dead.push(i);
                continue;
            }
            m.receipt = format!("{}-{}", m.id, m.receives);
            // A standard queue now and then leaves a copy visible: at-least-once.
            let duplicate = kind == QueueKind::Receipts && self.faults.on() && self.faults.chance(0.02);
            if !duplicate {
                m.in_flight = true;
                m.visible_at = now + VISIBILITY;
            }
            out.push(m.clone());
        }
        for i in dead.into_iter().rev() {
            if let Some(m) = q.messages.remove(i) {
                q.dead.push(m);
            }
        }
        out
    }

    /// Deletes a received message (a stale receipt deletes nothing, as SQS may not).
    pub fn delete(&self, kind: QueueKind, receipt: &str) {
        let mut q = self.queue(kind).lock().expect("sqs");
        q.messages.retain(|m| m.receipt != receipt);
    }

    /// Messages still on the queue, and in its dead-letter queue.
    pub fn depth(&self, kind: QueueKind) -> (usize, usize) {
        let q = self.queue(kind).lock().expect("sqs");
        (q.messages.len(), q.dead.len())
    }

    pub fn dead(&self, kind: QueueKind) -> Vec<SqsMessage> {
        self.queue(kind).lock().expect("sqs").dead.clone()
    }

    pub fn waiting(&self, kind: QueueKind) -> Vec<SqsMessage> {
        self.queue(kind).lock().expect("sqs").messages.iter().cloned().collect()
    }
}

#[async_trait]
impl Queue for SimSqs {
    async fn send_outbound(&self, job: OutboundJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(&job).map_err(|e| QueueError(Box::new(e)))?;
        self.send(QueueKind::Outbound, Some(job.conversation_id.to_string()), Some(job.dedupe_id()), body).await
    }

    async fn send_receipt(&self, job: ReceiptsJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(&job).map_err(|e| QueueError(Box::new(e)))?;
        self.send(QueueKind::Receipts, None, None, body).await
    }

    async fn send_again(&self, kind: QueueKind, body: &str) -> Result<(), QueueError> {
        let mut job: OutboundJob = serde_json::from_str(body).map_err(|e| QueueError(Box::new(e)))?;
        job.carried += 1;
        let sent = match kind {
            QueueKind::Outbound => self.send_outbound(job).await,
            QueueKind::Receipts => Err(QueueError("only FIFO records are carried".into())),
        };
        if sent.is_err() {
            self.not_carried.lock().expect("sqs").push(body.to_string());
        }
        sent
    }

    async fn delay(&self, kind: QueueKind, receipt: &str, after: Duration) -> Result<(), QueueError> {
        point().await;
        if self.faults.roll() {
            return Err(QueueError("injected: ChangeMessageVisibility failed".into()));
        }
        let now = tokio::time::Instant::now();
        let mut q = self.queue(kind).lock().expect("sqs");
        if let Some(m) = q.messages.iter_mut().find(|m| m.receipt == receipt) {
            m.visible_at = now + after;
        }
        Ok(())
    }
}

// ---- EventBridge Scheduler -------------------------------------------------------------------

/// A schedule: the timer, and when Scheduler will invoke its target.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub timer: Timer,
    pub fires: tokio::time::Instant,
}

pub struct SimScheduler {
    schedules: Mutex<BTreeMap<String, Schedule>>,
    /// Told of each schedule made.
    pub armed: tokio::sync::Notify,
    /// Timers whose invocations failed three times (the template's TimersDlq).
    pub dead: Mutex<Vec<Timer>>,
    truth: Arc<TrueClock>,
    faults: Arc<Faults>,
}

impl SimScheduler {
    pub fn new(truth: Arc<TrueClock>, faults: Arc<Faults>) -> SimScheduler {
        SimScheduler {
            schedules: Mutex::default(),
            armed: tokio::sync::Notify::new(),
            dead: Mutex::default(),
            truth,
            faults,
        }
    }

    /// Takes the schedules due now (Scheduler deletes a one-time schedule once it invoked it);
    /// now and then one twice (Scheduler invokes its target at least once).
    pub fn take_due(&self) -> Vec<Timer> {
        let now = tokio::time::Instant::now();
        let mut all = self.schedules.lock().expect("schedules");
        let due: Vec<String> = all.iter().filter(|(_, s)| s.fires <= now).map(|(n, _)| n.clone()).collect();
        let mut out = Vec::new();
        for timer in due.into_iter().filter_map(|n| all.remove(&n)).map(|s| s.timer) {
            if self.faults.on() && self.faults.chance(0.05) {
                out.push(timer.clone());
            }
            out.push(timer);
        }
        out
    }

    /// When the next schedule fires, if any is armed.
    pub fn next_due(&self) -> Option<tokio::time::Instant> {
        self.schedules.lock().expect("schedules").values().map(|s| s.fires).min()
    }

    pub fn pending(&self) -> Vec<Schedule> {
        self.schedules.lock().expect("schedules").values().cloned().collect()
    }
}

#[async_trait]
impl Scheduler for SimScheduler {
    async fn schedule(&self, timer: &Timer, at: OffsetDateTime) -> Result<(), SchedulerError> {
        point().await;
        let fault = self.faults.roll().then(|| self.faults.chance(0.5));
        if fault == Some(true) {
            return Err(SchedulerError::Unavailable("injected: Scheduler unavailable".into()));
        }
        let now = self.truth.now();
        if at < now {
            return Err(SchedulerError::Past);
        }
        // Invoked within the minute after its time (Scheduler's precision).
        let late = Duration::from_millis(self.faults.choose(60_000) as u64);
        let wait = (at - now).unsigned_abs() + late;
        let fires = tokio::time::Instant::now() + wait;
        self.schedules.lock().expect("schedules").insert(timer.name(), Schedule { timer: timer.clone(), fires });
        self.armed.notify_waiters();
        match fault {
            Some(false) => Err(SchedulerError::Unavailable("injected: answer lost after the schedule was made".into())),
            _ => Ok(()),
        }
    }
}
