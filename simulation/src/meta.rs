//! Meta, as a model of its own: the Graph API the connector calls, and the webhooks Meta sends.
//!
//! It keeps what the connector cannot see: each contact's real 24-hour window (from the
//! messages the contact sent), a pair rate limit per recipient, and everything it took. A send
//! is refused as Meta refuses (131047 outside the window, 131056 past the pair limit, 130429,
//! a bare 429), or answered with what leaves its outcome unknown (a time-out after Meta took
//! it; a 502 or 504 from a proxy, and codes 1, 2 and 131000, after which Meta may or may not
//! have taken it). Every answer goes through the connector's own parser of Meta's bodies.
//! Statuses follow each message taken, as webhooks delivered late, twice, out of order; a
//! contact not on WhatsApp gets `failed` with 131026.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use shared::domain::message::FileKind;
use shared::domain::ReceiptStatus;
use shared::meta::graph::{parse_send_response, GraphError, OutboundBody, OutboundRequest, Recipient};
use shared::meta::webhook::{InboundMessage, MetaError, StatusEvent, WebhookEvent};
use shared::ports::{ByteStream, Clock, MediaInfo, TemplateInfo, WhatsApp};

use crate::aws::{Faults, StoreCalls, TrueClock};
use crate::executor::{point, task_started, tick};

/// One message Meta took.
#[derive(Debug, Clone)]
pub struct Taken {
    /// On the logical clock.
    pub tick: u64,
    pub at: OffsetDateTime,
    /// The recipient's digits.
    pub to: String,
    pub body: OutboundBody,
    /// The file the contact got with it, as Meta holds it.
    pub file: Option<Vec<u8>>,
    pub callback: String,
    pub wamid: String,
    /// When the sending task started, and when it last read or wrote the store before this call
    /// (what it could have known), on the logical clock.
    pub task_started: u64,
    pub decided: u64,
}

impl Taken {
    /// The text the contact reads (a template: its name).
    pub fn text(&self) -> String {
        match &self.body {
            OutboundBody::Text { body } => body.clone(),
            // A file without a caption (a voice note): what it says, its bytes.
            OutboundBody::File { caption, .. } => caption
                .clone()
                .unwrap_or_else(|| String::from_utf8_lossy(self.file.as_deref().unwrap_or_default()).into()),
            OutboundBody::Location(l) => l.line(),
            OutboundBody::Template(t) => format!("[template {}]", t.name),
        }
    }

    pub fn template(&self) -> Option<&shared::domain::message::TemplateSpec> {
        match &self.body {
            OutboundBody::Template(t) => Some(t),
            _ => None,
        }
    }
}

/// A webhook Meta will post: when, and what.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: u64,
    pub due: tokio::time::Instant,
    pub event: WebhookEvent,
    pub attempts: u32,
    /// Acknowledged (200) at this logical time.
    pub acked: Option<u64>,
    /// When its first attempt started, on the logical clock.
    pub first_attempt: Option<u64>,
}

/// What Meta knows of one recipient.
#[derive(Debug, Clone, Default)]
struct RecipientState {
    /// The contact's last message (Meta's window runs 24 hours from it).
    last_inbound: Option<OffsetDateTime>,
    /// Pair-rate tokens, and when they were last refilled.
    tokens: f64,
    refilled: Option<OffsetDateTime>,
}

/// The pair rate limit: bursts of `PAIR_BURST`, then one message every `PAIR_EVERY` seconds
/// (Meta's is about one every 6 s with bursts; stricter here, so a burst of texts meets it).
const PAIR_BURST: f64 = 4.0;
const PAIR_EVERY: f64 = 15.0;

#[derive(Default)]
struct State {
    taken: Vec<Taken>,
    recipients: BTreeMap<String, RecipientState>,
    deliveries: Vec<Delivery>,
    next_delivery: u64,
    next_wamid: u64,
    /// Files contacts sent, by Meta's media id, for the connector to fetch.
    media: BTreeMap<String, Vec<u8>>,
    /// Files the connector uploaded, by the media id Meta answered.
    uploaded: BTreeMap<String, Vec<u8>>,
}

pub struct Meta {
    state: Mutex<State>,
    /// Told of each webhook queued.
    pub queued: tokio::sync::Notify,
    faults: Arc<Faults>,
    truth: Arc<TrueClock>,
    calls: Arc<StoreCalls>,
    /// Contacts Meta cannot deliver to (not on WhatsApp).
    unreachable: Vec<String>,
    templates: Vec<TemplateInfo>,
}

impl Meta {
    pub fn new(
        faults: Arc<Faults>,
        truth: Arc<TrueClock>,
        calls: Arc<StoreCalls>,
        unreachable: Vec<String>,
        templates: Vec<TemplateInfo>,
    ) -> Meta {
        Meta {
            state: Mutex::default(),
            queued: tokio::sync::Notify::new(),
            faults,
            truth,
            calls,
            unreachable,
            templates,
        }
    }

    /// Everything Meta took, in the order it took it.
    pub fn taken(&self) -> Vec<Taken> {
        self.state.lock().expect("meta").taken.clone()
    }

    /// What `to` received, in order.
    pub fn inbox(&self, to: &str) -> Vec<Taken> {
        self.state.lock().expect("meta").taken.iter().filter(|t| t.to == to).cloned().collect()
    }

    /// A contact's file, kept by Meta under `meta_id` for the connector to fetch.
    pub fn holds_file(&self, meta_id: &str, bytes: Vec<u8>) {
        self.state.lock().expect("meta").media.insert(meta_id.to_string(), bytes);
    }

    /// The contact sends `m` now: it opens their window at Meta, and its webhook is queued.
    pub fn contact_sends(&self, m: InboundMessage, counts_for_window: bool) {
        let now = self.truth.now();
        let mut s = self.state.lock().expect("meta");
        if counts_for_window {
            let to = m.wa_id.clone().unwrap_or_default();
            s.recipients.entry(to).or_default().last_inbound = Some(now);
        }
        let delay = Duration::from_millis(self.faults.choose(3000) as u64);
        push(&mut s, WebhookEvent::Inbound(m), delay);
        drop(s);
        self.queued.notify_waiters();
    }

    /// The contact reads everything they received (a `read` status each, late).
    pub fn contact_reads(&self, to: &str) {
        let mut s = self.state.lock().expect("meta");
        let unread: Vec<Taken> = s.taken.iter().filter(|t| t.to == to).cloned().collect();
        for t in unread {
            let delay = Duration::from_millis(500 + self.faults.choose(5000) as u64);
            push(&mut s, status(&t, ReceiptStatus::Read, self.truth.now(), true), delay);
            if matches!(t.body, OutboundBody::File { kind: FileKind::Audio, .. }) {
                // A voice note is played after it is read (now and then its statuses cross).
                let later = delay + Duration::from_millis(self.faults.choose(8000) as u64);
                push(&mut s, status(&t, ReceiptStatus::Played, self.truth.now(), true), later);
            }
        }
        drop(s);
        self.queued.notify_waiters();
    }

    /// Deliveries due now and not yet acknowledged, each at most once per call; and now and
    /// then one acknowledged before, again (Meta's at-least-once).
    pub fn due(&self) -> Vec<Delivery> {
        let now = tokio::time::Instant::now();
        let mut s = self.state.lock().expect("meta");
        let mut out: Vec<Delivery> =
            s.deliveries.iter().filter(|d| d.acked.is_none() && d.due <= now).cloned().collect();
        if self.faults.on() && !s.deliveries.is_empty() && self.faults.chance(0.05) {
            let i = self.faults.choose(s.deliveries.len());
            if s.deliveries[i].acked.is_some() {
                out.push(s.deliveries[i].clone());
            }
        }
        // Out of order: Meta posts concurrently.
        let mut shuffled = Vec::with_capacity(out.len());
        while !out.is_empty() {
            shuffled.push(out.remove(self.faults.choose(out.len())));
        }
        // Not again until this attempt has had its time.
        for d in s.deliveries.iter_mut() {
            if d.acked.is_none() && d.due <= now {
                d.due = now + Duration::from_secs(30);
            }
        }
        shuffled
    }

    /// When the next delivery falls due, if any waits.
    pub fn next_due(&self) -> Option<tokio::time::Instant> {
        self.state.lock().expect("meta").deliveries.iter().filter(|d| d.acked.is_none()).map(|d| d.due).min()
    }

    /// An attempt of delivery `id` starts.
    pub fn attempt(&self, id: u64) {
        let t = tick();
        let mut s = self.state.lock().expect("meta");
        if let Some(d) = s.deliveries.iter_mut().find(|d| d.id == id) {
            d.attempts += 1;
            d.first_attempt.get_or_insert(t);
        }
    }

    /// The connector answered 200 to delivery `id`.
    pub fn acked(&self, id: u64) {
        let t = tick();
        let mut s = self.state.lock().expect("meta");
        if let Some(d) = s.deliveries.iter_mut().find(|d| d.id == id) {
            d.acked.get_or_insert(t);
        }
    }

    /// The connector failed delivery `id`: Meta tries again, backing off.
    pub fn failed(&self, id: u64) {
        let now = tokio::time::Instant::now();
        let mut s = self.state.lock().expect("meta");
        if let Some(d) = s.deliveries.iter_mut().find(|d| d.id == id) {
            if d.acked.is_none() {
                d.due = now + Duration::from_secs(5 * u64::from(d.attempts.min(12)));
            }
        }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().expect("meta").deliveries.clone()
    }

    fn refuse(&self, status: u16, body: &str) -> GraphError {
        crate::executor::trace(|| format!("META answers {status} {body}"));
        match parse_send_response(status, body.as_bytes()) {
            Err(e) => e,
            Ok(_) => GraphError::unsent("unexpected success"),
        }
    }

    /// Takes `req` (Meta's side of an accepted send) and queues its statuses.
    fn take(&self, req: &OutboundRequest, to: &str) -> String {
        let now = self.truth.now();
        let decided = self.calls.last_of_current_task();
        let started = task_started();
        let mut s = self.state.lock().expect("meta");
        s.next_wamid += 1;
        let wamid = format!("wamid.SIM{}", s.next_wamid);
        let file = match &req.body {
            OutboundBody::File { media_id, .. } => s.uploaded.get(media_id).cloned(),
            _ => None,
        };
        let t = Taken {
            tick: tick(),
            at: now,
            to: to.to_string(),
            body: req.body.clone(),
            file,
            callback: req.callback.clone(),
            wamid: wamid.clone(),
            task_started: started,
            decided,
        };
        crate::executor::trace(|| format!("META took {} to {}: {:?}", t.callback, t.to, t.text()));
        s.taken.push(t.clone());
        let jitter = |n: u64| Duration::from_millis(self.faults.choose(n as usize) as u64);
        if self.unreachable.iter().any(|u| u == to) {
            let failed = StatusEvent {
                wamid: wamid.clone(),
                status: ReceiptStatus::Failed,
                timestamp: now,
                recipient_id: Some(to.to_string()),
                errors: vec![MetaError {
                    code: 131026,
                    title: "Message undeliverable".into(),
                    message: "Message undeliverable".into(),
                    error_data: None,
                }],
                callback: None,
            };
            push(&mut s, WebhookEvent::Status(failed), jitter(4000));
        } else {
            push(&mut s, status(&t, ReceiptStatus::Sent, now, true), jitter(3000));
            push(&mut s, status(&t, ReceiptStatus::Delivered, now, true), Duration::from_millis(500) + jitter(8000));
            // Now and then a status comes twice.
            if self.faults.chance(0.05) {
                push(&mut s, status(&t, ReceiptStatus::Delivered, now, true), jitter(20_000));
            }
        }
        drop(s);
        self.queued.notify_waiters();
        wamid
    }

    /// Whether the pair limit lets one more message go to `to` now (and counts it).
    fn pair_allows(&self, to: &str) -> bool {
        let now = self.truth.now();
        let mut s = self.state.lock().expect("meta");
        let r = s.recipients.entry(to.to_string()).or_default();
        let since = r.refilled.map_or(PAIR_EVERY * PAIR_BURST, |at| (now - at).as_seconds_f64());
        r.tokens = (r.tokens + since / PAIR_EVERY).min(PAIR_BURST);
        r.refilled = Some(now);
        if r.tokens >= 1.0 {
            r.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn window_open(&self, to: &str) -> bool {
        let now = self.truth.now();
        let s = self.state.lock().expect("meta");
        s.recipients.get(to).and_then(|r| r.last_inbound).is_some_and(|at| now < at + time::Duration::hours(24))
    }
}

fn status(t: &Taken, st: ReceiptStatus, at: OffsetDateTime, echo: bool) -> WebhookEvent {
    WebhookEvent::Status(StatusEvent {
        wamid: t.wamid.clone(),
        status: st,
        timestamp: at,
        recipient_id: Some(t.to.clone()),
        errors: Vec::new(),
        callback: echo.then(|| t.callback.clone()),
    })
}

fn push(s: &mut State, event: WebhookEvent, delay: Duration) {
    s.next_delivery += 1;
    let id = s.next_delivery;
    s.deliveries.push(Delivery {
        id,
        due: tokio::time::Instant::now() + delay,
        event,
        attempts: 0,
        acked: None,
        first_attempt: None,
    });
}

fn digits(to: &Recipient) -> String {
    match to {
        Recipient::Phone(p) => p.trim_start_matches('+').to_string(),
        Recipient::UserId(u) => u.clone(),
    }
}

#[async_trait]
impl WhatsApp for Meta {
    async fn send(&self, req: &OutboundRequest) -> Result<String, GraphError> {
        point().await;
        let to = digits(&req.to);
        let template = matches!(req.body, OutboundBody::Template(_));
        if self.faults.roll() {
            // Meta may or may not have taken it: its answer cannot tell.
            let taken = |p: f64| self.faults.chance(p);
            return Err(match self.faults.choose(9) {
                0 => GraphError::unsent("injected: connection refused"),
                1 => self.refuse(503, r#"{"error":{"message":"Service temporarily unavailable","code":2}}"#),
                2 => self.refuse(429, ""),
                3 => self.refuse(400, r#"{"error":{"message":"(#130429) Rate limit hit","code":130429}}"#),
                n @ 4..=7 => {
                    if taken(0.5) {
                        self.take(req, &to);
                    }
                    match n {
                        4 => self.refuse(502, "<html>Bad Gateway</html>"),
                        5 => self.refuse(504, ""),
                        6 => self.refuse(500, r#"{"error":{"message":"Something went wrong","code":131000}}"#),
                        _ => self.refuse(500, r#"{"error":{"message":"An unknown error occurred","code":1}}"#),
                    }
                }
                _ => {
                    self.take(req, &to);
                    GraphError::transport("injected: timed out after Meta took it")
                }
            });
        }
        if !template && !self.window_open(&to) {
            return Err(self.refuse(
                400,
                r#"{"error":{"message":"(#131047) Re-engagement message","code":131047,"error_data":{"details":"More than 24 hours have passed"}}}"#,
            ));
        }
        if let OutboundBody::File { media_id, .. } = &req.body {
            if !self.state.lock().expect("meta").uploaded.contains_key(media_id) {
                return Err(self.refuse(400, r#"{"error":{"message":"(#131053) Media upload error","code":131053}}"#));
            }
        }
        if !self.pair_allows(&to) {
            return Err(self.refuse(400, r#"{"error":{"message":"(#131056) Pair rate limit hit","code":131056}}"#));
        }
        Ok(self.take(req, &to))
    }

    /// Keeps the file under a new id; or refuses, or keeps it and the answer is lost.
    async fn upload_media(&self, body: ByteStream, size: u64, _: &str) -> Result<String, GraphError> {
        use futures_util::TryStreamExt;
        point().await;
        let chunks: Vec<bytes::Bytes> = body.try_collect().await.map_err(|e| GraphError::transport(e.to_string()))?;
        let bytes = chunks.concat();
        if bytes.len() as u64 != size {
            return Err(self.refuse(400, r#"{"error":{"message":"size does not match","code":100}}"#));
        }
        let fault = self.faults.roll().then(|| self.faults.choose(2));
        if fault == Some(0) {
            return Err(self.refuse(500, r#"{"error":{"message":"Something went wrong","code":131000}}"#));
        }
        let mut s = self.state.lock().expect("meta");
        s.next_wamid += 1;
        let id = format!("{}", 9_000_000 + s.next_wamid);
        s.uploaded.insert(id.clone(), bytes);
        if fault.is_some() {
            return Err(GraphError::transport("injected: timed out after Meta kept the upload"));
        }
        Ok(id)
    }

    async fn media_info(&self, meta_id: &str) -> Result<MediaInfo, GraphError> {
        point().await;
        if self.faults.roll() {
            return Err(match self.faults.choose(2) {
                0 => GraphError::unsent("injected: connection refused"),
                _ => self.refuse(500, r#"{"error":{"message":"Something went wrong","code":131000}}"#),
            });
        }
        let s = self.state.lock().expect("meta");
        let bytes =
            s.media.get(meta_id).ok_or_else(|| self.refuse(404, r#"{"error":{"message":"not found","code":100}}"#))?;
        Ok(MediaInfo {
            url: format!("sim://{meta_id}"),
            mime_type: "application/pdf".into(),
            sha256: None,
            file_size: Some(bytes.len() as u64),
        })
    }

    /// The file, or a fault: refused, cut off, or (one time in three) bytes that are not the
    /// file's, which only Meta's SHA-256 can tell.
    async fn download(&self, url: &str, max: usize) -> Result<ByteStream, GraphError> {
        point().await;
        let id = url.strip_prefix("sim://").unwrap_or(url);
        let mut bytes = self.state.lock().expect("meta").media.get(id).cloned().ok_or_else(|| GraphError {
            lost: false,
            http_status: Some(404),
            code: None,
            message: "unknown media".into(),
        })?;
        let mut cut = false;
        if self.faults.roll() {
            match self.faults.choose(4) {
                0 => return Err(GraphError::transport("injected: the download stalled")),
                1 if bytes.len() > 1 => cut = true,
                2 => {
                    return Err(GraphError {
                        lost: false,
                        http_status: Some(503),
                        code: None,
                        message: "injected".into(),
                    })
                }
                _ => bytes[0] ^= 1,
            }
        }
        if bytes.len() > max {
            return Err(GraphError {
                lost: false,
                http_status: Some(200),
                code: Some(131052),
                message: "too large".into(),
            });
        }
        if cut {
            // Half the file, then the connection drops.
            let half = bytes::Bytes::from(bytes[..bytes.len() / 2].to_vec());
            let broke = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected: the download broke off");
            return Ok(Box::pin(futures_util::stream::iter([Ok(half), Err(broke)])));
        }
        Ok(shared::ports::byte_stream(bytes))
    }

    async fn templates(&self) -> Result<Vec<TemplateInfo>, GraphError> {
        point().await;
        Ok(self.templates.clone())
    }
}
