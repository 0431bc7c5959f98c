//! The world the path tests and the load model run the use cases in: the memory store (or a
//! wrapper of it), a WhatsApp that answers as scripted and records what it was sent, queues and
//! a scheduler that record, and a clock moved by hand.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use shared::adapters::clock::ManualClock;
use shared::adapters::memory::MemoryStore;
use shared::domain::{ConversationId, Message, Phone};
use shared::meta::graph::{parse_send_response, GraphError, OutboundBody, OutboundRequest};
use shared::meta::webhook::{InboundContent, InboundMessage};
use shared::ports::{
    ByteStream, Clock, Disposition, Item, Key, MediaInfo, MediaStore, MediaStoreError, OutboundJob, Queue, QueueError,
    ReceiptsJob, Scheduler, SchedulerError, Store, TemplateInfo, Timer, WhatsApp,
};
use shared::usecases::{conversations, dispatch, inbound, send, Caller, Ports, Settings};

pub const T0: OffsetDateTime = datetime!(2036-09-20 09:00 UTC);
pub const CONTACT: &str = "447700900123";

#[derive(Default)]
pub struct Recorded {
    pub jobs: Mutex<VecDeque<OutboundJob>>,
    pub timers: Mutex<Vec<(Timer, OffsetDateTime)>>,
}

#[async_trait]
impl Queue for Recorded {
    async fn send_outbound(&self, job: OutboundJob) -> Result<(), QueueError> {
        self.jobs.lock().unwrap().push_back(job);
        Ok(())
    }
    async fn send_receipt(&self, _: ReceiptsJob) -> Result<(), QueueError> {
        Ok(())
    }
}

#[async_trait]
impl Scheduler for Recorded {
    async fn schedule(&self, timer: &Timer, at: OffsetDateTime) -> Result<(), SchedulerError> {
        self.timers.lock().unwrap().push((timer.clone(), at));
        Ok(())
    }
}

/// Meta: answers the next scripted answer (taking the message on `Ok` and on a lost answer),
/// or takes it when the script is empty.
#[derive(Default)]
pub struct ScriptedMeta {
    pub script: Mutex<VecDeque<Result<(), GraphError>>>,
    pub taken: Mutex<Vec<OutboundRequest>>,
}

impl ScriptedMeta {
    pub fn then(&self, answer: Result<(), GraphError>) {
        self.script.lock().unwrap().push_back(answer);
    }
    pub fn refuse(&self, status: u16, body: &str) {
        self.then(Err(parse_send_response(status, body.as_bytes()).unwrap_err()));
    }
    pub fn texts(&self) -> Vec<String> {
        self.taken
            .lock()
            .unwrap()
            .iter()
            .map(|r| match &r.body {
                OutboundBody::Text { body } => body.clone(),
                OutboundBody::Template(t) => format!("[{}]", t.name),
                OutboundBody::File { kind, .. } => format!("[{}]", kind.as_str()),
                OutboundBody::Location(l) => l.line(),
            })
            .collect()
    }
}

#[async_trait]
impl WhatsApp for ScriptedMeta {
    async fn send(&self, req: &OutboundRequest) -> Result<String, GraphError> {
        let answer = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
        let took = answer.as_ref().map_or_else(|e| e.lost, |_| true);
        if took {
            self.taken.lock().unwrap().push(req.clone());
        }
        let n = self.taken.lock().unwrap().len();
        answer.map(|()| format!("wamid.T{n}"))
    }
    async fn upload_media(&self, _: ByteStream, _: u64, _: &str) -> Result<String, GraphError> {
        Err(GraphError::unsent("no media"))
    }
    async fn media_info(&self, _: &str) -> Result<MediaInfo, GraphError> {
        Err(GraphError::unsent("no media"))
    }
    async fn download(&self, _: &str, _: usize) -> Result<ByteStream, GraphError> {
        Err(GraphError::unsent("no media"))
    }
    async fn templates(&self) -> Result<Vec<TemplateInfo>, GraphError> {
        Ok(Vec::new())
    }
}

pub struct NoMedia;

#[async_trait]
impl MediaStore for NoMedia {
    async fn put_upload(&self, _: &str, _: ByteStream, _: u64) -> Result<bool, MediaStoreError> {
        Ok(true)
    }
    async fn open_upload(&self, _: &str) -> Result<Option<ByteStream>, MediaStoreError> {
        Ok(None)
    }
    async fn keep(&self, _: &str, _: &str, _: &str) -> Result<(), MediaStoreError> {
        Ok(())
    }
    async fn discard_upload(&self, _: &str) -> Result<(), MediaStoreError> {
        Ok(())
    }
    async fn open(&self, _: &str) -> Result<Option<ByteStream>, MediaStoreError> {
        Ok(None)
    }
    async fn remove(&self, _: &str) -> Result<(), MediaStoreError> {
        Ok(())
    }
}

pub struct World {
    pub ports: Ports,
    pub clock: Arc<ManualClock>,
    pub recorded: Arc<Recorded>,
    pub meta: Arc<ScriptedMeta>,
    pub n: Mutex<u64>,
}

pub fn world() -> World {
    world_on(Arc::new(MemoryStore::new()))
}

pub fn world_on(store: Arc<dyn Store>) -> World {
    let clock = Arc::new(ManualClock::new(T0));
    let recorded = Arc::new(Recorded::default());
    let meta = Arc::new(ScriptedMeta::default());
    let ports = Ports {
        store,
        queue: recorded.clone(),
        scheduler: recorded.clone(),
        clock: clock.clone(),
        whatsapp: meta.clone(),
        media: Arc::new(NoMedia),
        vault: Arc::new(shared::adapters::memory::MemoryVault::default()),
        index: Arc::new(shared::adapters::memory::MemoryIndex::default()),
        journal: Arc::new(shared::ports::NoJournal),
        settings: Arc::new(Settings { retry_base: std::time::Duration::from_millis(1), ..Settings::default() }),
    };
    World { ports, clock, recorded, meta, n: Mutex::new(0) }
}

pub fn alex() -> Caller {
    Caller::new("alex", "Alex", "retail", "eu")
}

impl World {
    pub async fn contact_says(&self, content: InboundContent) {
        self.says_as(CONTACT, content).await;
    }

    /// The contact `wa_id` writes.
    pub async fn says_as(&self, wa_id: &str, content: InboundContent) {
        let n = {
            let mut n = self.n.lock().unwrap();
            *n += 1;
            *n
        };
        let m = InboundMessage {
            wamid: format!("wamid.IN{n}"),
            wa_id: Some(wa_id.into()),
            user_id: None,
            profile_name: Some("Olivia".into()),
            timestamp: self.clock.now(),
            context_id: None,
            content,
        };
        inbound::apply_inbound(&self.ports, &m).await.unwrap();
    }

    pub async fn says(&self, text: &str) {
        self.contact_says(InboundContent::Text { body: text.into() }).await;
    }

    /// A thread with the contact, who accepted and wrote (the window open); what Meta took so
    /// far and the jobs queued are forgotten.
    pub async fn opted_in_thread(&self) -> ConversationId {
        let cmd = conversations::StartConversation { phone: Phone::parse(&format!("+{CONTACT}")).unwrap(), name: None };
        let conv = conversations::start(&self.ports, &alex(), cmd).await.unwrap().id;
        self.says("yes").await;
        self.drain().await;
        self.meta.taken.lock().unwrap().clear();
        conv
    }

    pub async fn send(&self, conv: &ConversationId, text: &str) -> Message {
        let cmd = send::SendCommand { content: send::Content::Text(text.into()), client_id: None, reply_to: None };
        let view = send::send(&self.ports, &alex(), conv, cmd).await.unwrap();
        self.message(conv, &view.id).await
    }

    pub async fn message(&self, conv: &ConversationId, id: &shared::domain::MessageId) -> Message {
        match self.ports.store.get(&Key::message(conv, id)).await.unwrap().map(|v| v.item) {
            Some(Item::Message(m)) => m,
            other => panic!("no message {id}: {other:?}"),
        }
    }

    /// Dispatches every queued job (those it queues in turn too) until none is left.
    pub async fn drain(&self) {
        for _ in 0..10_000 {
            let Some(job) = self.recorded.jobs.lock().unwrap().pop_front() else { return };
            if let Disposition::RetryAfter(_) = dispatch::dispatch(&self.ports, &job).await.unwrap() {
                self.recorded.jobs.lock().unwrap().push_back(job);
                self.clock.advance(Duration::seconds(61));
            }
        }
    }

    pub async fn thread_messages(&self, conv: &ConversationId) -> Vec<Message> {
        self.ports
            .store
            .messages(conv, None, 1000, true)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|v| match v.item {
                Item::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }
}
