//! The world: employees and contacts acting at random, Meta posting webhooks, Lambda polling the
//! queues and running the timers Scheduler fires, the hosts' clocks jumping; then, every fault
//! and crash switched off, a drain long enough for what is in flight to settle; then the checks.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage as LambdaRecord};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::macros::datetime;

use shared::adapters::memory::MemoryStore;
use shared::archive::Position;
use shared::domain::message::FileKind;
use shared::domain::notice::{contact_text, ContactText, Lang, NoticeCode};
use shared::domain::{Caller, ConversationId, Direction, Message, MessageId, Phone};
use shared::meta::webhook::{InboundContent, InboundMessage};
use shared::plant::{Bug, Planted};
use shared::ports::{
    ByteStream, ChangeStream, Disposition, Item, MediaStore, MediaStoreError, OutboundJob, QueueKind, Store,
    TemplateInfo, Timer,
};
use shared::usecases::{archive, archiver, conversations, media, participants, relay, send, Ports, UseCaseError};

use crate::aws::{Faults, HostClock, SeededEntropy, SimDynamo, SimS3, SimScheduler, SimSqs, TrueClock};
use crate::executor::{self, spawn, spawn_joined, tick, Counts, Executor};
use crate::meta::Meta;
use crate::model::{self, Consent, InboundRecord, Model, SendRecord};

/// One run's knobs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub seed: u64,
    pub plant: Option<Bug>,
    /// How long employees and contacts act, with faults on.
    pub active: Duration,
    /// How long everything in flight then has to settle, faults off.
    pub drain: Duration,
    /// The chance a port call fails, and that a Lambda invocation or API call crashes at a
    /// port call.
    pub fault_rate: f64,
    pub crash_rate: f64,
}

impl Settings {
    pub fn new(seed: u64) -> Settings {
        Settings {
            seed,
            plant: None,
            active: Duration::from_secs(30 * 3600),
            drain: Duration::from_secs(3 * 3600),
            fault_rate: 0.03,
            crash_rate: 0.01,
        }
    }
}

/// What one run came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seed: u64,
    pub violations: Vec<String>,
    pub faults: u64,
    pub counts: Counts,
    /// Messages Meta took.
    pub taken: usize,
    /// A hash of everything Meta took and when: the same seed gives the same trace.
    pub trace: u64,
}

const CONTACTS: [&str; 3] = ["447700900101", "447700900102", "447700900103"];
/// A number that is not on WhatsApp: every message to it fails with 131026.
const UNREACHABLE: &str = "447700900109";
const EMPLOYEES: [&str; 2] = ["u1", "u2"];
const AGENTS: [&str; 2] = ["a1", "a2"];

fn caller(user: &str) -> Caller {
    let roles: &[&str] = if user.starts_with('a') { &["agent"] } else { &[] };
    Caller::new(user, &format!("User {user}"), "retail", "eu").with_roles(roles)
}

/// The media store as S3 is to it: writes that fail (and may have happened), uploads and
/// objects by name.
struct SimMedia {
    uploads: std::sync::Mutex<BTreeMap<String, Vec<u8>>>,
    objects: std::sync::Mutex<BTreeMap<String, Vec<u8>>>,
    faults: Arc<Faults>,
}

impl SimMedia {
    fn kept(&self, id: &str) -> Option<Vec<u8>> {
        self.objects.lock().expect("media").get(id).cloned()
    }

    /// A fault, or not; a failed write may still have happened.
    fn write(
        &self,
        into: &std::sync::Mutex<BTreeMap<String, Vec<u8>>>,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(), MediaStoreError> {
        let fault = self.faults.roll();
        if !fault || self.faults.chance(0.5) {
            into.lock().expect("media").insert(name.to_string(), bytes);
        }
        if fault {
            return Err(MediaStoreError("injected: S3 PUT failed".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl MediaStore for SimMedia {
    async fn put_upload(&self, upload: &str, body: ByteStream, max: u64) -> Result<bool, MediaStoreError> {
        use futures_util::TryStreamExt;
        executor::point().await;
        let chunks: Vec<bytes::Bytes> = body.try_collect().await.map_err(|e| MediaStoreError(Box::new(e)))?;
        let bytes = chunks.concat();
        if bytes.len() as u64 > max {
            return Ok(false);
        }
        self.write(&self.uploads, upload, bytes).map(|()| true)
    }
    async fn open_upload(&self, upload: &str) -> Result<Option<ByteStream>, MediaStoreError> {
        executor::point().await;
        Ok(self.uploads.lock().expect("media").get(upload).cloned().map(shared::ports::byte_stream))
    }
    async fn keep(&self, upload: &str, id: &str, _: &str) -> Result<(), MediaStoreError> {
        executor::point().await;
        let bytes = self.uploads.lock().expect("media").get(upload).cloned();
        let bytes = bytes.ok_or_else(|| MediaStoreError("no such upload".into()))?;
        self.write(&self.objects, id, bytes)
    }
    async fn discard_upload(&self, upload: &str) -> Result<(), MediaStoreError> {
        executor::point().await;
        self.uploads.lock().expect("media").remove(upload);
        Ok(())
    }
    async fn open(&self, id: &str) -> Result<Option<ByteStream>, MediaStoreError> {
        executor::point().await;
        Ok(self.kept(id).map(shared::ports::byte_stream))
    }
    async fn remove(&self, id: &str) -> Result<(), MediaStoreError> {
        executor::point().await;
        self.objects.lock().expect("media").remove(id);
        Ok(())
    }
}

struct World {
    ports: Ports,
    memory: Arc<MemoryStore>,
    truth: Arc<TrueClock>,
    host: Arc<HostClock>,
    sqs: Arc<SimSqs>,
    scheduler: Arc<SimScheduler>,
    meta: Arc<Meta>,
    media: Arc<SimMedia>,
    rng: RefCell<StdRng>,
    model: RefCell<Model>,
    active: Cell<bool>,
    /// The threads employees know, and who is in each.
    threads: RefCell<Vec<(ConversationId, BTreeSet<String>)>>,
    n: Cell<u64>,
    seed: u64,
}

impl World {
    fn next(&self) -> u64 {
        self.n.set(self.n.get() + 1);
        self.n.get()
    }

    fn chance(&self, p: f64) -> bool {
        self.rng.borrow_mut().random_bool(p)
    }

    fn below(&self, n: usize) -> usize {
        self.rng.borrow_mut().random_range(0..n.max(1))
    }

    fn secs(&self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.rng.borrow_mut().random_range(lo * 1000..hi * 1000))
    }

    fn pick<T: Clone>(&self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())].clone())
    }

    fn threads_of(&self, user: &str) -> Vec<ConversationId> {
        self.threads.borrow().iter().filter(|(_, m)| m.contains(user)).map(|(id, _)| id.clone()).collect()
    }

    fn joined(&self, id: &ConversationId, user: &str) {
        let mut threads = self.threads.borrow_mut();
        match threads.iter_mut().find(|(t, _)| t == id) {
            Some((_, members)) => {
                members.insert(user.to_string());
            }
            None => threads.push((id.clone(), [user.to_string()].into())),
        }
    }

    fn left(&self, id: &ConversationId, user: &str) {
        if let Some((_, members)) = self.threads.borrow_mut().iter_mut().find(|(t, _)| t == id) {
            members.remove(user);
        }
    }
}

/// Runs one seed.
pub fn run(settings: &Settings) -> Outcome {
    if std::env::var_os("SIM_TRACE").is_some() {
        // The connector's own logs, among the trace (once per process).
        let _ =
            tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).without_time().with_target(false).try_init();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime");
    let exec = Executor::new(settings.seed, settings.crash_rate);
    let _planted = Planted::on(settings.plant);
    let s = settings.clone();
    let (violations, faults, taken, trace) = exec.run(&rt, async move { main(s).await });
    Outcome { seed: settings.seed, violations, faults, counts: exec.counts(), taken, trace }
}

async fn main(settings: Settings) -> (Vec<String>, u64, usize, u64) {
    let truth = Arc::new(TrueClock::new(datetime!(2036-09-20 09:00 UTC)));
    let host = Arc::new(HostClock::new(truth.clone()));
    let _entropy = shared::domain::ids::install_entropy(Box::new(SeededEntropy::new(settings.seed, host.clone())));
    let faults = Arc::new(Faults::new(settings.seed, settings.fault_rate));
    let memory = Arc::new(MemoryStore::with_clock(truth.clone()));
    let dynamo = Arc::new(SimDynamo::new(memory.clone(), faults.clone()));
    let sqs = Arc::new(SimSqs::new(faults.clone()));
    let scheduler = Arc::new(SimScheduler::new(truth.clone(), faults.clone()));
    let config = shared::config::Settings { retry_base: Duration::from_secs(1), ..Default::default() };
    let templates = [&config.optin_template, &config.resume_template, &config.participant_template]
        .iter()
        .map(|name| TemplateInfo {
            name: name.to_string(),
            language: "en".into(),
            category: "UTILITY".into(),
            params: 1,
        })
        .collect();
    let meta =
        Arc::new(Meta::new(faults.clone(), truth.clone(), dynamo.calls.clone(), vec![UNREACHABLE.into()], templates));
    let store: Arc<dyn Store> = dynamo.clone();
    let media = Arc::new(SimMedia { uploads: Default::default(), objects: Default::default(), faults: faults.clone() });
    let ports = Ports {
        store: store.clone(),
        queue: sqs.clone(),
        scheduler: scheduler.clone(),
        clock: host.clone(),
        whatsapp: meta.clone(),
        media: media.clone(),
        vault: Arc::new(SimS3::new(faults.clone())),
        // On AWS the index is Athena over the vault: nothing for the archiver to feed.
        index: Arc::new(shared::adapters::memory::MemoryIndex::default()),
        journal: Arc::new(shared::ports::NoJournal),
        settings: Arc::new(config),
    };
    let world = Rc::new(World {
        ports,
        memory,
        truth,
        host,
        sqs,
        scheduler,
        meta,
        media,
        rng: RefCell::new(StdRng::seed_from_u64(settings.seed)),
        model: RefCell::default(),
        active: Cell::new(true),
        threads: RefCell::default(),
        n: Cell::new(0),
        seed: settings.seed,
    });

    // The services, running throughout.
    for kind in [QueueKind::Outbound, QueueKind::Receipts] {
        spawn(poll_queue(world.clone(), kind), false, None);
    }
    spawn(fire_schedules(world.clone()), false, None);
    spawn(outbox_sweeps(world.clone()), false, None);
    spawn(post_webhooks(world.clone()), false, None);
    spawn(archive_stream(world.clone()), false, None);
    // The people, and the hosts' clocks, while active.
    for user in EMPLOYEES.iter().chain(AGENTS.iter()) {
        spawn(employee(world.clone(), user), false, None);
    }
    spawn(contacts(world.clone()), false, None);
    spawn(clock_jumps(world.clone()), false, None);

    tokio::time::sleep(settings.active).await;
    world.active.set(false);
    faults.stop();
    executor::stop_crashes();
    // The runbook: an operator sends the timers' dead letters back (docs/aws.md "Dead letters").
    let dead: Vec<Timer> = std::mem::take(&mut *world.scheduler.dead.lock().expect("dead"));
    for timer in dead {
        spawn(invoke_timer(world.clone(), timer), false, None);
    }
    tokio::time::sleep(settings.drain).await;
    // What began in the drain's last moments (an opt-in retry armed a day earlier) gets its
    // bounded time too: up to an hour more while Meta still has webhooks to post.
    for _ in 0..6 {
        if world.meta.deliveries().iter().all(|d| d.acked.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(600)).await;
    }

    let violations = check(&world).await;
    let taken = world.meta.taken();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for t in &taken {
        (t.tick, &t.to, &t.callback, t.text(), t.at.unix_timestamp_nanos()).hash(&mut h);
    }
    (violations, faults.injected(), taken.len(), h.finish())
}

// ---- Services ---------------------------------------------------------------------------------

/// Lambda's event source mapping: polls, invokes the function with a batch, and deletes what
/// the function did not report as failed. A crashed invocation deletes nothing.
async fn poll_queue(world: Rc<World>, kind: QueueKind) {
    loop {
        let batch = world.sqs.receive(kind, 10);
        if batch.is_empty() {
            wait_for(&world.sqs.sent, world.sqs.next_visible(kind)).await;
            continue;
        }
        spawn(invoke_with_batch(world.clone(), kind, batch), true, None);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn invoke_with_batch(world: Rc<World>, kind: QueueKind, batch: Vec<crate::aws::SqsMessage>) {
    let mut event = SqsEvent::default();
    for m in &batch {
        let mut r = LambdaRecord::default();
        r.message_id = Some(m.id.to_string());
        r.receipt_handle = Some(m.receipt.clone());
        r.body = Some(m.body.clone());
        r.attributes.insert("ApproximateReceiveCount".into(), m.receives.to_string());
        if let Some(g) = &m.group {
            r.attributes.insert("MessageGroupId".into(), g.clone());
        }
        event.records.push(r);
    }
    executor::trace(|| format!("LAMBDA {kind:?} batch {:?}", batch.iter().map(|m| &m.body).collect::<Vec<_>>()));
    // What `dispatch::function_handler` does, with each record's outcome noted.
    let outcomes: RefCell<BTreeMap<String, Result<Disposition, ()>>> = RefCell::default();
    let response = match kind {
        QueueKind::Outbound => {
            let outcomes = &outcomes;
            let ports = &world.ports;
            lambda_entry::process_sqs(event, dispatch::QUEUE, &*ports.queue, None, |job: OutboundJob, _| async move {
                let r = dispatch::handle(ports, &job).await;
                outcomes.borrow_mut().insert(job.message_id.to_string(), r.as_ref().map(|d| *d).map_err(|_| ()));
                r
            })
            .await
        }
        QueueKind::Receipts => receipts::function_handler(&world.ports, event, None).await,
    };
    let failed: BTreeSet<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
    if kind == QueueKind::Outbound {
        charged(&world, &batch, &failed, &outcomes.borrow());
    }
    executor::trace(|| format!("LAMBDA {kind:?} reported {failed:?}"));
    for m in batch {
        if !failed.contains(&m.id.to_string()) {
            world.sqs.delete(kind, &m.receipt);
        }
    }
}

/// A FIFO record reported without having run is charged a receive: fair when one before it in
/// its group failed (they come back together), never for another record's wait.
fn charged(
    world: &World,
    batch: &[crate::aws::SqsMessage],
    failed: &BTreeSet<String>,
    outcomes: &BTreeMap<String, Result<Disposition, ()>>,
) {
    let mut waiting: BTreeMap<String, bool> = BTreeMap::new();
    for m in batch {
        let group = m.group.clone().unwrap_or_default();
        let Ok(job) = serde_json::from_str::<OutboundJob>(&m.body) else { continue };
        match outcomes.get(job.message_id.as_str()) {
            Some(outcome) => {
                waiting.entry(group).or_insert(matches!(outcome, Ok(Disposition::RetryAfter(_))));
            }
            None if failed.contains(&m.id.to_string())
                && waiting.get(&group) == Some(&true)
                && !world.sqs.not_carried.lock().expect("sqs").contains(&m.body) =>
            {
                world
                    .model
                    .borrow_mut()
                    .violate(format!("record {} ({}) was charged a receive for another's wait", m.id, job.message_id));
            }
            None => {}
        }
    }
}

/// Scheduler invokes `timers` asynchronously for each schedule due; Lambda retries a failed
/// invocation twice, a minute and two apart, then sends it to the dead letters.
async fn fire_schedules(world: Rc<World>) {
    loop {
        for timer in world.scheduler.take_due() {
            spawn(invoke_timer(world.clone(), timer), false, None);
        }
        wait_for(&world.scheduler.armed, world.scheduler.next_due()).await;
    }
}

async fn invoke_timer(world: Rc<World>, timer: Timer) {
    for attempt in 0..3u64 {
        let w = world.clone();
        let t = timer.clone();
        executor::trace(|| format!("TIMER {timer:?}"));
        let done = spawn_joined(async move { timers::function_handler(&w.ports, t).await }, true).await;
        executor::trace(|| {
            format!(
                "TIMER {} → {:?}",
                timer.name(),
                done.as_ref().map(|r| r.as_ref().map_err(|e| shared::error::Report(e).to_string()))
            )
        });
        if matches!(done, Some(Ok(()))) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(60 * (attempt + 1))).await;
    }
    world.scheduler.dead.lock().expect("dead").push(timer);
}

/// The recurring schedule of the relay's sweep.
async fn outbox_sweeps(world: Rc<World>) {
    loop {
        tokio::time::sleep(Duration::from_secs(300)).await;
        spawn(invoke_timer(world.clone(), Timer::OutboxSweep), false, None);
    }
}

/// Lambda's event source mapping on the table's stream: batches in stream order, one
/// invocation at a time, a failed or crashed one retried with the same batch until it is
/// archived. Now and then, meanwhile, an operator replays a range of the stream, out of order
/// (the runbook's answer to a batch in the dead-letter queue): the chains keep one writer,
/// and every event is archived once. Its own seeded choices, so the rest of the world plays
/// as it would without it.
async fn archive_stream(world: Rc<World>) {
    let mut rng = StdRng::seed_from_u64(world.seed ^ 0xa4c1);
    let mut position: Option<Position> = None;
    let wake = world.memory.archive_notify();
    loop {
        let woken = wake.notified();
        let take = rng.random_range(1..20);
        let batch = world.memory.entries_after(position.as_ref(), take).await.unwrap_or_default();
        let Some(last) = batch.last().map(|e| e.position.clone()) else {
            let _ = tokio::time::timeout(Duration::from_secs(60), woken).await;
            continue;
        };
        if rng.random_bool(0.05) {
            // Mostly over the batch in flight, sometimes anywhere before it.
            let here = position.as_ref().and_then(Position::number).unwrap_or(0);
            let from = match rng.random_bool(0.8) {
                true => Position::of(here + rng.random_range(0..take as u64)),
                false => Position::of(rng.random_range(0..here + 1)),
            };
            let replay = world.memory.entries_after(Some(&from), rng.random_range(1..30)).await.unwrap_or_default();
            let ports = world.ports.clone();
            executor::trace(|| format!("ARCHIVER replay of {} after {from:?}", replay.len()));
            spawn(async move { drop(archiver::archive(&ports, &replay).await) }, true, None);
        }
        let ports = world.ports.clone();
        let entries = batch.clone();
        executor::trace(|| format!("ARCHIVER batch of {} after {position:?}", batch.len()));
        match spawn_joined(async move { archiver::archive(&ports, &entries).await }, true).await {
            Some(Ok(_)) => position = Some(last),
            _ => tokio::time::sleep(Duration::from_millis(rng.random_range(1000..10_000))).await,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Meta posts what is due: each attempt is one webhook call, which the connector may fail or
/// crash in; Meta posts again until it gets a 200.
async fn post_webhooks(world: Rc<World>) {
    loop {
        for d in world.meta.due() {
            let w = world.clone();
            spawn(
                async move {
                    w.meta.attempt(d.id);
                    executor::trace(|| format!("WEBHOOK {:?}", d.event));
                    let ports = w.ports.clone();
                    let event = d.event.clone();
                    let done = spawn_joined(async move { webhook::apply_event(&ports, event).await }, true).await;
                    match done {
                        Some(Ok(())) => w.meta.acked(d.id),
                        _ => w.meta.failed(d.id),
                    }
                },
                false,
                None,
            );
        }
        wait_for(&world.meta.queued, world.meta.next_due()).await;
    }
}

/// Sleeps until `next` (at least a moment) or until told of new work, whichever comes first.
async fn wait_for(told: &tokio::sync::Notify, next: Option<tokio::time::Instant>) {
    let now = tokio::time::Instant::now();
    let until = next.unwrap_or(now + Duration::from_secs(3600)).max(now + Duration::from_millis(200));
    tokio::select! {
        biased;
        _ = told.notified() => {}
        _ = tokio::time::sleep_until(until) => {}
    }
}

async fn clock_jumps(world: Rc<World>) {
    while world.active.get() {
        tokio::time::sleep(world.secs(3600, 8 * 3600)).await;
        if world.chance(0.5) {
            world.host.jump(world.below(62_000) as i64 - 2_000);
        }
    }
}

// ---- People -----------------------------------------------------------------------------------

/// A client call: crashes like any request (the client sees no answer).
async fn call<T: 'static, F>(f: F) -> Option<Result<T, UseCaseError>>
where
    F: std::future::Future<Output = Result<T, UseCaseError>> + 'static,
{
    spawn_joined(f, true).await
}

/// Errors a client takes as the answer (a refusal), not as a reason to try again.
fn refusal(e: &UseCaseError) -> bool {
    matches!(e, UseCaseError::Domain(_) | UseCaseError::NotFound | UseCaseError::Forbidden(_))
}

async fn employee(world: Rc<World>, user: &'static str) {
    let me = caller(user);
    // Known to the directory (colleagues can add them).
    loop {
        let w = world.clone();
        let c = me.clone();
        if let Some(Ok(())) = call(async move { shared::usecases::directory::record(&w.ports, &c).await }).await {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let agent = user.starts_with('a');
    while world.active.get() {
        tokio::time::sleep(world.secs(60, 2400)).await;
        if !world.active.get() {
            break;
        }
        match world.below(100) {
            _ if agent => claim_race(&world).await,
            0..=11 => start_thread(&world, &me).await,
            12..=56 => {
                if let Some(thread) = world.pick(&world.threads_of(user)) {
                    send_text(&world, &me, &thread).await;
                }
            }
            57..=62 => {
                // A burst: many texts in a row (what a release of held ones also looks like).
                if let Some(thread) = world.pick(&world.threads_of(user)) {
                    for _ in 0..world.below(12) + 4 {
                        send_text(&world, &me, &thread).await;
                    }
                }
            }
            63..=68 => recall(&world, &me).await,
            69..=74 => add_colleague(&world, &me).await,
            75..=77 => {
                if let Some(thread) = world.pick(&world.threads_of(user)) {
                    let (w, c) = (world.clone(), me.clone());
                    let _ = call(async move { conversations::resend_optin(&w.ports, &c, &thread).await }).await;
                }
            }
            78..=80 => leave(&world, &me).await,
            _ => snapshot(&world, &me).await,
        }
    }
}

async fn start_thread(world: &Rc<World>, me: &Caller) {
    let contact: &str = world.pick(&[CONTACTS[0], CONTACTS[1], CONTACTS[2], UNREACHABLE]).expect("contacts");
    let (w, c) = (world.clone(), me.clone());
    let cmd =
        conversations::StartConversation { phone: Phone::parse(&format!("+{contact}")).expect("phone"), name: None };
    if let Some(Ok(view)) = call(async move { conversations::start(&w.ports, &c, cmd).await }).await {
        world.joined(&view.id, me.user_id.as_str());
    }
}

/// A file an employee uploads (`POST /media`), tried until answered; its id.
async fn upload(world: &Rc<World>, me: &Caller, bytes: &[u8], mime: &'static str) -> Option<String> {
    for _ in 0..4 {
        let (w, c, b) = (world.clone(), me.clone(), bytes.to_vec());
        if let Some(Ok(m)) = call(async move { media::upload(&w.ports, &c, b, Some(mime)).await }).await {
            return Some(m.id);
        }
        tokio::time::sleep(world.secs(1, 10)).await;
    }
    None
}

/// An employee's text (one time in five a document captioned with it, or a voice note saying
/// it), retried by the client with the same `client_id` until answered.
async fn send_text(world: &Rc<World>, me: &Caller, thread: &ConversationId) {
    let n = world.next();
    let text = format!("msg#{n}#");
    // Most clients send an idempotency key, and try again with it until answered; one without
    // a key must not try again (a second call is a second message).
    let keyed = world.chance(0.7);
    let (content, file) = match world.below(10) {
        0 => {
            let bytes = format!("%PDF-1.7 {text}").into_bytes();
            let Some(media_id) = upload(world, me, &bytes, "application/pdf").await else { return };
            let filename = Some(format!("{n}.pdf"));
            (
                send::Content::File { kind: FileKind::Document, media_id, caption: Some(text.clone()), filename },
                Some(bytes),
            )
        }
        1 => {
            let bytes = format!("OggS {text}").into_bytes();
            let Some(media_id) = upload(world, me, &bytes, "audio/ogg").await else { return };
            (send::Content::File { kind: FileKind::Audio, media_id, caption: None, filename: None }, Some(bytes))
        }
        _ => (send::Content::Text(text.clone()), None),
    };
    let cmd = send::SendCommand { content, client_id: keyed.then(|| format!("k{n}")), reply_to: None };
    let index = {
        let mut model = world.model.borrow_mut();
        model.sends.push(SendRecord {
            text,
            thread: thread.clone(),
            user: me.user_id.to_string(),
            started: tick(),
            completed: None,
            message_id: None,
            refused: None,
            file,
        });
        model.sends.len() - 1
    };
    for _ in 0..4 {
        let (w, c, t, cmd) = (world.clone(), me.clone(), thread.clone(), cmd.clone());
        match call(async move { send::send(&w.ports, &c, &t, cmd).await }).await {
            Some(Ok(view)) => {
                executor::trace(|| {
                    format!(
                        "SEND {} in {thread} by {} → {} {}",
                        world.model.borrow().sends[index].text,
                        me.user_id,
                        view.id,
                        view.status
                    )
                });
                let mut model = world.model.borrow_mut();
                model.sends[index].completed = Some(tick());
                model.sends[index].message_id = Some(view.id.clone());
                model.shown(&view.id, view.status);
                return;
            }
            Some(Err(e)) if refusal(&e) => {
                world.model.borrow_mut().sends[index].refused = Some(e.to_string());
                return;
            }
            _ if keyed => tokio::time::sleep(world.secs(1, 30)).await,
            _ => return,
        }
    }
}

async fn recall(world: &Rc<World>, me: &Caller) {
    let mine: Vec<(ConversationId, MessageId)> = world
        .model
        .borrow()
        .sends
        .iter()
        .filter(|s| s.user == me.user_id.as_str())
        .filter_map(|s| s.message_id.clone().map(|m| (s.thread.clone(), m)))
        .collect();
    let Some((thread, id)) = world.pick(&mine) else { return };
    let (w, c) = (world.clone(), me.clone());
    if let Some(Ok(view)) = call(async move { send::recall(&w.ports, &c, &thread, &id).await }).await {
        world.model.borrow_mut().shown(&view.id, view.status);
    }
}

async fn add_colleague(world: &Rc<World>, me: &Caller) {
    let Some(thread) = world.pick(&world.threads_of(me.user_id.as_str())) else { return };
    let other = if me.user_id.as_str() == EMPLOYEES[0] { EMPLOYEES[1] } else { EMPLOYEES[0] };
    let (w, c, t) = (world.clone(), me.clone(), thread.clone());
    let added = call(async move { participants::add(&w.ports, &c, &t, &other.into(), world_share(&w)).await }).await;
    if let Some(Ok(_)) = added {
        world.joined(&thread, other);
    }
}

fn world_share(world: &World) -> bool {
    world.chance(0.5)
}

async fn leave(world: &Rc<World>, me: &Caller) {
    let Some(thread) = world.pick(&world.threads_of(me.user_id.as_str())) else { return };
    let (w, c, t) = (world.clone(), me.clone(), thread.clone());
    if let Some(Ok(_)) = call(async move { participants::leave(&w.ports, &c, &t).await }).await {
        world.left(&thread, me.user_id.as_str());
    }
}

/// Two agents claim the same contact-started thread at once: at most one wins.
async fn claim_race(world: &Rc<World>) {
    let unassigned = world.ports.store.query_unassigned(None, 20).await.unwrap_or_default();
    let Some(id) = world.pick(&unassigned) else { return };
    let (w1, w2, i1, i2) = (world.clone(), world.clone(), id.clone(), id.clone());
    let a = spawn_joined(async move { conversations::claim(&w1.ports, &caller(AGENTS[0]), &i1).await }, true);
    let b = spawn_joined(async move { conversations::claim(&w2.ports, &caller(AGENTS[1]), &i2).await }, true);
    let (ra, rb) = (a.await, b.await);
    if matches!((&ra, &rb), (Some(Ok(_)), Some(Ok(_)))) {
        world.model.borrow_mut().violate(format!("two claims of {id} both won"));
    }
    for (r, who) in [(ra, AGENTS[0]), (rb, AGENTS[1])] {
        if let Some(Ok(_)) = r {
            world.joined(&id, who);
        }
    }
}

/// A client reads a thread: every status it shows is checked against what it showed before.
async fn snapshot(world: &Rc<World>, me: &Caller) {
    let Some(thread) = world.pick(&world.threads_of(me.user_id.as_str())) else { return };
    let (w, c) = (world.clone(), me.clone());
    let Some(Ok(history)) =
        call(async move { shared::usecases::views::history(&w.ports, &c, &thread, None, 500).await }).await
    else {
        return;
    };
    let mut model = world.model.borrow_mut();
    for m in history.iter().filter(|m| m.direction == Direction::Outbound) {
        model.shown(&m.id, m.status);
    }
}

/// The contacts write, answer, tap the buttons of what they received, and read.
async fn contacts(world: Rc<World>) {
    while world.active.get() {
        tokio::time::sleep(world.secs(60, 3600)).await;
        if !world.active.get() {
            break;
        }
        let contact: &str = world.pick(&CONTACTS).expect("contacts");
        let n = world.next();
        let received = world.meta.inbox(contact);
        let mut file = None;
        let buttons: Vec<String> =
            received.iter().filter_map(|t| t.template()).flat_map(|t| t.buttons.clone()).collect();
        let (content, consent, text, context) = match world.below(100) {
            0..=39 => {
                let t = format!("hello#{n}#");
                (InboundContent::Text { body: t.clone() }, Consent::None, Some(t), None)
            }
            40..=51 => {
                let yes: &str = world.pick(&["yes", "Yes", "YES."]).expect("words");
                (InboundContent::Text { body: yes.into() }, Consent::Accept, None, None)
            }
            52..=59 => {
                let stop: &str = world.pick(&["STOP", "stop", "Stop."]).expect("words");
                (InboundContent::Text { body: stop.into() }, Consent::Reject, None, None)
            }
            60..=79 if !buttons.is_empty() => {
                let payload = world.pick(&buttons).expect("buttons");
                let consent = match shared::usecases::payload::split(&payload).0 {
                    shared::usecases::payload::OPT_IN_YES => Consent::Accept,
                    shared::usecases::payload::OPT_IN_NO | shared::usecases::payload::STOP => Consent::Reject,
                    _ => Consent::None,
                };
                (InboundContent::Button { payload, text: "Tap".into() }, consent, None, None)
            }
            80..=89 => {
                world.meta.contact_reads(contact);
                continue;
            }
            90..=94 => {
                // A signed document, its caption the message's token, its file at Meta.
                let t = format!("hello#{n}#");
                let bytes = format!("%PDF-1.7 mandate {n} signed").into_bytes();
                let meta_id = format!("media-{n}");
                let sha = {
                    use sha2::Digest;
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sha2::Sha256::digest(&bytes))
                };
                world.meta.holds_file(&meta_id, bytes.clone());
                file = Some(bytes);
                let content = InboundContent::File {
                    kind: shared::domain::message::FileKind::Document,
                    media_id: meta_id,
                    mime_type: Some("application/pdf".into()),
                    sha256: Some(sha),
                    caption: Some(t.clone()),
                    filename: Some(format!("mandate-{n}.pdf")),
                    voice: false,
                    url: None,
                };
                (content, Consent::None, Some(t), None)
            }
            _ => {
                let t = format!("hello#{n}#");
                let quoted = world.pick(&received).map(|r| r.wamid);
                (InboundContent::Text { body: t.clone() }, Consent::None, Some(t), quoted)
            }
        };
        let m = InboundMessage {
            wamid: format!("wamid.IN{n}"),
            wa_id: Some(contact.to_string()),
            user_id: None,
            profile_name: Some("Olivia".into()),
            timestamp: shared::ports::Clock::now(&*world.truth),
            context_id: context,
            content,
        };
        world.model.borrow_mut().inbound.push(InboundRecord {
            wamid: m.wamid.clone(),
            contact: contact.to_string(),
            at: m.timestamp,
            consent,
            text,
            file,
        });
        let chatty = consent != Consent::Reject && world.chance(0.3);
        world.meta.contact_sends(m, true);
        // An employee answers at once, as they do when a client writes back (often just as
        // the window opens again, or consent comes, with texts still held).
        if chatty {
            let w = world.clone();
            let delay = world.secs(1, 20);
            spawn(
                async move {
                    tokio::time::sleep(delay).await;
                    let mine: BTreeSet<ConversationId> = w
                        .memory
                        .contact_partition(contact, 1000)
                        .await
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|v| match v.item {
                            Item::ContactThread { conversation_id, .. } => Some(conversation_id),
                            _ => None,
                        })
                        .collect();
                    let known: Vec<(ConversationId, BTreeSet<String>)> =
                        w.threads.borrow().iter().filter(|(id, _)| mine.contains(id)).cloned().collect();
                    let Some((thread, members)) = w.pick(&known) else { return };
                    let Some(user) = w.pick(&members.into_iter().collect::<Vec<_>>()) else { return };
                    send_text(&w, &caller(&user), &thread).await;
                },
                false,
                None,
            );
        }
    }
}

// ---- Checks -----------------------------------------------------------------------------------

/// Every message of every thread of the known contacts, as stored (what any history shows).
async fn all_messages(world: &World) -> BTreeMap<ConversationId, Vec<Message>> {
    let mut out = BTreeMap::new();
    for c in CONTACTS.iter().chain([UNREACHABLE].iter()) {
        for v in world.memory.contact_partition(c, 10_000).await.unwrap_or_default() {
            if let Item::ContactThread { conversation_id, .. } = v.item {
                let msgs: Vec<Message> = world
                    .memory
                    .messages(&conversation_id, None, 100_000, true)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|v| match v.item {
                        Item::Message(m) => Some(m),
                        _ => None,
                    })
                    .collect();
                out.insert(conversation_id, msgs);
            }
        }
    }
    out
}

async fn check(world: &Rc<World>) -> Vec<String> {
    let taken = world.meta.taken();
    let deliveries = world.meta.deliveries();
    let opt_out: Vec<&str> = [Lang::of("en")].iter().map(|l| contact_text(ContactText::OptedOut, *l)).collect();
    let mut model = std::mem::take(&mut *world.model.borrow_mut());
    model::check_meta(&mut model, &taken, &deliveries, &world.ports.settings.optin_template, &opt_out);

    let threads = all_messages(world).await;
    // Every contact's message stored once.
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for m in threads.values().flatten().filter(|m| m.direction == Direction::Inbound) {
        if let Some(tok) = m.body.words().and_then(|w| model::token(w, "hello")) {
            *stored.entry(tok).or_default() += 1;
        }
    }
    model::check_inbound(&mut model, &deliveries, &stored);
    let inbound: Vec<&Message> = threads.values().flatten().filter(|m| m.direction == Direction::Inbound).collect();
    model::check_files(&mut model, &inbound, |id| world.media.kept(id));
    model::check_sent_files(&mut model, &taken);

    let taken_callbacks: BTreeSet<&str> = taken.iter().map(|t| t.callback.as_str()).collect();
    let delivered_wamids: BTreeSet<&str> = deliveries
        .iter()
        .filter(|d| d.acked.is_some())
        .filter_map(|d| match &d.event {
            shared::meta::webhook::WebhookEvent::Status(s)
                if matches!(
                    s.status,
                    shared::domain::ReceiptStatus::Delivered | shared::domain::ReceiptStatus::Read
                ) =>
            {
                Some(s.wamid.as_str())
            }
            _ => None,
        })
        .collect();
    for (id, messages) in &threads {
        // On the record: every message the thread shows, in a chain that verifies under the key
        // and holds every change the thread's items carried.
        let key = world.ports.settings.archive_key.clone().unwrap_or_else(|| std::sync::Arc::from(&b""[..]));
        match (archive::records(&world.ports, id).await, archiver::counts(&world.ports, id).await) {
            (Ok(records), Ok(counts)) => {
                let v = shared::archive::verify_complete(&key, &records, &counts);
                if !v.valid {
                    model.violate(format!("thread {id}'s archive does not verify: {v:?}"));
                }
                let archived: BTreeSet<&MessageId> =
                    records.iter().filter_map(|r| r.event.message_id.as_ref()).collect();
                for m in messages.iter().filter(|m| !archived.contains(&m.id)) {
                    model.violate(format!("message {} of {id} is not on the record", m.id));
                }
                // Every status a message shows that Meta reported is on the record too.
                for m in messages.iter().filter(|m| matches!(m.status.public(), "delivered" | "read")) {
                    if m.direction != Direction::Outbound {
                        continue;
                    }
                    let shown = m.status.public();
                    let on_record = records.iter().any(|r| {
                        r.event.kind == shared::archive::ArchiveKind::Status
                            && r.event.message_id.as_ref() == Some(&m.id)
                            && r.event.details["status"] == shown
                    });
                    if !on_record {
                        model.violate(format!("message {} shows {shown}, which is not on the record", m.id));
                    }
                }
            }
            (Err(e), _) | (_, Err(e)) => model.violate(format!("thread {id}'s archive cannot be read: {e}")),
        }
        let notices: BTreeSet<MessageId> = messages
            .iter()
            .filter_map(|m| m.body.notice())
            .filter(|n| n.code() == NoticeCode::MessageFailed)
            .filter_map(|n| n.message_id().cloned())
            .collect();
        for m in messages.iter().filter(|m| m.direction == Direction::Outbound) {
            let status = m.status.public();
            model.shown(&m.id, status);
            let callback = format!("{}/{}", m.conversation_id, m.id);
            match status {
                "queued" => {
                    let armed: Vec<String> = world
                        .scheduler
                        .pending()
                        .into_iter()
                        .filter(|s| s.timer.name().contains(m.id.as_str()))
                        .map(|s| format!("{:?}", s.timer))
                        .collect();
                    model.violate(format!(
                        "{} ({:?}) never settled: {:?}, lease {:?}, wamid {:?}, attempts {}, not before {:?}; timers armed {armed:?}",
                        m.id,
                        m.body.words(),
                        m.status,
                        m.lease_until,
                        m.wamid,
                        m.attempts,
                        m.not_before
                    ))
                }
                "sent" | "delivered" | "read" if !taken_callbacks.contains(callback.as_str()) => {
                    model.violate(format!("{} shows {status}, but Meta never took it", m.id))
                }
                "failed" => {
                    let code = m.error.as_ref().map(|e| e.code.as_str()).unwrap_or("");
                    if ["131056", "130429", "131048", "http_429"].contains(&code) {
                        model.violate(format!("{} failed on a rate limit ({code})", m.id));
                    }
                    if m.wamid.as_deref().is_some_and(|w| delivered_wamids.contains(w)) {
                        model.violate(format!("{} failed after Meta said it was delivered", m.id));
                    }
                    if m.system.is_none() && !notices.contains(&m.id) {
                        model.violate(format!("{} failed and its author was never told", m.id));
                    }
                }
                "pending" => {
                    let contact = world.memory.get(&shared::ports::Key::conversation(id)).await.ok().flatten();
                    if let Some(v) = contact {
                        if let Item::Conversation(conv) = v.item {
                            let k =
                                world.memory.get(&shared::ports::Key::contact(&conv.contact_key)).await.ok().flatten();
                            if let Some(Item::Contact(k)) = k.map(|v| v.item) {
                                let now = shared::ports::Clock::now(&*world.ports.clock);
                                let waits = conv.closed
                                    || k.consent != shared::domain::ConsentState::OptedIn
                                    || !k.window_open(now);
                                if !waits {
                                    model.violate(format!("{} is held though the contact allows sending", m.id));
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    for (kind, name) in [(QueueKind::Outbound, "outbound"), (QueueKind::Receipts, "receipts")] {
        let dead = world.sqs.dead(kind);
        if !dead.is_empty() {
            model.violate(format!("{} messages in the {name} dead-letter queue, first: {}", dead.len(), dead[0].body));
        }
        let (left, _) = world.sqs.depth(kind);
        if left > 0 {
            model.violate(format!(
                "{left} messages left on the {name} queue: {:?}",
                world.sqs.waiting(kind).first().map(|m| &m.body)
            ));
        }
    }
    // Dead letters after the redrive: timers that fail with every fault switched off. (The
    // sweep recurs: an invocation lost to them is made up by the next one.)
    let dead: Vec<Timer> =
        world.scheduler.dead.lock().expect("dead").iter().filter(|t| **t != Timer::OutboxSweep).cloned().collect();
    if !dead.is_empty() {
        model.violate(format!("{} timers in the dead letters, first: {:?}", dead.len(), dead[0]));
    }
    match relay::pending(&world.ports).await {
        Ok(0) => {}
        other => model.violate(format!("the outbox still holds entries: {other:?}")),
    }
    if let Ok(parked) = relay::parked(&world.ports).await {
        if let Some(p) = parked.first() {
            model.violate(format!("{} outbox entries parked, first: {:?}", parked.len(), p.effect));
        }
    }
    if let Some(d) = deliveries.iter().find(|d| d.acked.is_none()) {
        model.violate(format!("a webhook was never acknowledged: {:?}", d.event));
    }
    model.violations
}
