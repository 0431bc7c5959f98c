//! A local stand-in for WhatsApp: accepts sends, answers with wamids, posts signed `sent` and
//! `delivered` statuses back to the connector's webhook, and lets a person act as the contact.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::Report;
use crate::meta::graph::{request_json, GraphError, OutboundBody, OutboundRequest, Recipient};
use crate::meta::signature;
use crate::ports::{ByteStream, Clock, MediaInfo, TemplateInfo, WhatsApp};

/// A message on the contact's phone, as the sandbox shows it: one the contact received, or
/// (with `from_contact`) one they sent.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub wamid: String,
    /// The Graph API request, or the webhook message the contact sent, kept as its JSON text
    /// (a tenth of the memory of a `Value`).
    pub request: Box<serde_json::value::RawValue>,
    /// Quick-reply payloads the contact can tap.
    pub buttons: Vec<String>,
    pub text: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub from_contact: bool,
}

pub struct SandboxWhatsApp {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    app_secret: String,
    phone_number_id: String,
    webhook_url: OnceLock<String>,
    clock: Arc<dyn Clock>,
    inbox: Mutex<HashMap<String, Vec<Received>>>,
    /// The digits of each contact whose phone changed, for whoever watches (the web console).
    changed: tokio::sync::broadcast::Sender<String>,
    /// Pictures uploaded by the connector or sent by a contact, by Meta-style id.
    media: Mutex<HashMap<String, (bytes::Bytes, String)>>,
    templates: Vec<TemplateInfo>,
}

/// The sandbox's approved templates: the connector's own (opt-in, resume, participant update,
/// named as configured) and a few a business might have, in the notices' five languages.
pub fn catalog(settings: &crate::usecases::Settings) -> Vec<TemplateInfo> {
    let own = [&settings.optin_template, &settings.resume_template, &settings.participant_template];
    let samples = [("appointment_reminder", "utility", 2), ("order_update", "utility", 1), ("welcome", "marketing", 0)];
    let mut out = Vec::new();
    for language in ["en", "es", "fr", "de", "pt"] {
        for name in own {
            let t =
                TemplateInfo { name: name.clone(), language: language.into(), category: "utility".into(), params: 1 };
            out.push(t);
        }
        for (name, category, params) in samples {
            out.push(TemplateInfo { name: name.into(), language: language.into(), category: category.into(), params });
        }
    }
    out
}

/// What a person can do as the contact.
#[derive(Debug, Clone)]
pub enum ContactAction {
    Text(String),
    /// Taps the button with this payload, or the first whose payload starts with this action
    /// (`OPT_IN_YES`, `OPT_IN_NO`, `RESUME`), on the latest message that has one.
    Tap(String),
    /// Reads everything received so far.
    Read,
    /// Sends a picture (PNG or JPEG bytes) with an optional caption.
    Image {
        bytes: Vec<u8>,
        caption: Option<String>,
    },
    /// Sends one of the phone's samples of every other kind.
    Sample(Sample),
    /// Writes a text quoting the latest message the business sent (Meta's `context`).
    Reply(String),
}

/// What the sandbox contact can send besides texts and pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sample {
    Document,
    Voice,
    Video,
    Sticker,
    Location,
    Contact,
    /// A kind WhatsApp's API does not deliver (a poll).
    Poll,
}

impl Sample {
    /// The file it carries: Meta's type name, its MIME type and a few bytes that start as such
    /// a file does (enough for the connector's checks; not a playable recording).
    fn file(self) -> Option<(&'static str, &'static str, &'static [u8], Value)> {
        match self {
            Sample::Document => Some((
                "document",
                "application/pdf",
                b"%PDF-1.4\n% sandbox mandate\n%%EOF\n",
                json!({"filename": "mandate-signed.pdf", "caption": "The signed mandate"}),
            )),
            Sample::Voice => {
                Some(("audio", "audio/ogg; codecs=opus", b"OggS\0\x02sandbox voice note", json!({"voice": true})))
            }
            Sample::Video => Some((
                "video",
                "video/mp4",
                b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom",
                json!({"caption": "The crack in the wall"}),
            )),
            Sample::Sticker => {
                Some(("sticker", "image/webp", b"RIFF\x1a\0\0\0WEBPVP8 sandbox", json!({"animated": false})))
            }
            Sample::Location | Sample::Contact | Sample::Poll => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the contact has no message with a {0} button")]
    NoSuchButton(String),
    #[error("the sandbox is not connected to a webhook yet")]
    NotConnected,
    #[error("posting the webhook failed: {0}")]
    Post(String),
}

impl SandboxWhatsApp {
    pub fn new(
        app_secret: String,
        phone_number_id: String,
        clock: Arc<dyn Clock>,
        templates: Vec<TemplateInfo>,
    ) -> SandboxWhatsApp {
        SandboxWhatsApp {
            inner: Arc::new(Inner {
                http: reqwest::Client::new(),
                app_secret,
                phone_number_id,
                webhook_url: OnceLock::new(),
                clock,
                inbox: Mutex::new(HashMap::new()),
                changed: tokio::sync::broadcast::channel(256).0,
                media: Mutex::new(HashMap::new()),
                templates,
            }),
        }
    }

    /// Where to post webhooks (the local runner's own `/webhook`), known once it listens.
    pub fn connect(&self, webhook_url: String) {
        let _ = self.inner.webhook_url.set(webhook_url);
    }

    /// What the phone of the contact with these digits shows, oldest first.
    pub fn inbox(&self, digits: &str) -> Vec<Received> {
        self.inner.inbox.lock().map(|i| i.get(digits).cloned().unwrap_or_default()).unwrap_or_default()
    }

    /// The digits of every contact whose phone changes from now on.
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.inner.changed.subscribe()
    }

    /// A picture the connector sent or a contact sent, by its Meta-style id.
    pub fn media(&self, meta_id: &str) -> Option<(bytes::Bytes, String)> {
        self.inner.media.lock().ok().and_then(|m| m.get(meta_id).cloned())
    }

    /// Acts as the contact; returns the webhook body that was posted.
    pub async fn act(&self, digits: &str, name: &str, action: ContactAction) -> Result<Value, SandboxError> {
        let inner = &self.inner;
        let ts = inner.clock.now().unix_timestamp().to_string();
        let wamid = format!("wamid.SANDBOX-IN-{}", ulid::Ulid::new());
        let value = match action {
            ContactAction::Text(body) => json!({
                "contacts": [{"profile": {"name": name}, "wa_id": digits}],
                "messages": [{"from": digits, "id": wamid, "timestamp": ts, "type": "text", "text": {"body": body}}],
            }),
            ContactAction::Tap(action) => {
                let (ctx, payload) = self
                    .inbox(digits)
                    .iter()
                    .rev()
                    .find_map(|r| {
                        r.buttons
                            .iter()
                            .find(|b| *b == &action || b.split(':').next() == Some(action.as_str()))
                            .map(|b| (r.wamid.clone(), b.clone()))
                    })
                    .ok_or(SandboxError::NoSuchButton(action))?;
                json!({
                    "contacts": [{"profile": {"name": name}, "wa_id": digits}],
                    "messages": [{"context": {"from": "15550783881", "id": ctx}, "from": digits, "id": wamid,
                        "timestamp": ts, "type": "button", "button": {"payload": payload, "text": button_label(&payload)}}],
                })
            }
            ContactAction::Image { bytes, caption } => {
                let mime = crate::domain::media::ImageType::sniff(&bytes).map_or("image/png", |t| t.mime()).to_string();
                let meta_id = format!("sandbox-media-{}", ulid::Ulid::new());
                let sha = base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes)),
                );
                if let Ok(mut m) = inner.media.lock() {
                    m.insert(meta_id.clone(), (bytes.into(), mime.clone()));
                }
                json!({
                    "contacts": [{"profile": {"name": name}, "wa_id": digits}],
                    "messages": [{"from": digits, "id": wamid, "timestamp": ts, "type": "image",
                        "image": {"id": meta_id, "mime_type": mime, "sha256": sha, "caption": caption}}],
                })
            }
            ContactAction::Sample(sample) => {
                let (kind, content) = match (sample.file(), sample) {
                    (Some((kind, mime, bytes, mut extra)), _) => {
                        let meta_id = format!("sandbox-media-{}", ulid::Ulid::new());
                        extra["id"] = json!(meta_id);
                        extra["mime_type"] = json!(mime);
                        extra["sha256"] = json!(base64::Engine::encode(
                            &base64::engine::general_purpose::STANDARD,
                            sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(bytes)),
                        ));
                        if let Ok(mut m) = inner.media.lock() {
                            m.insert(meta_id, (bytes::Bytes::copy_from_slice(bytes), mime.to_string()));
                        }
                        (kind, extra)
                    }
                    (None, Sample::Location) => (
                        "location",
                        json!({"latitude": 51.501364, "longitude": -0.14189, "name": "Branch office",
                            "address": "1 Example Street, London SW1A 1AA"}),
                    ),
                    (None, Sample::Contact) => (
                        "contacts",
                        json!([{"name": {"formatted_name": "Harry Patel", "first_name": "Harry", "last_name": "Patel"},
                            "phones": [{"phone": "+44 7700 900456", "wa_id": "447700900456", "type": "MOBILE"}]}]),
                    ),
                    (None, _) => ("unsupported", json!({"type": "poll_creation"})),
                };
                let mut message = json!({"from": digits, "id": wamid, "timestamp": ts, "type": kind});
                message[kind] = content;
                if sample == Sample::Poll {
                    message["errors"] = json!([{"code": 131051, "title": "Message type unknown"}]);
                }
                json!({"contacts": [{"profile": {"name": name}, "wa_id": digits}], "messages": [message]})
            }
            ContactAction::Reply(body) => {
                let quoted = self.inbox(digits).iter().rev().find(|r| !r.from_contact).map(|r| r.wamid.clone());
                let mut message =
                    json!({"from": digits, "id": wamid, "timestamp": ts, "type": "text", "text": {"body": body}});
                if let Some(id) = quoted {
                    message["context"] = json!({"from": "15550783881", "id": id});
                }
                json!({"contacts": [{"profile": {"name": name}, "wa_id": digits}], "messages": [message]})
            }
            ContactAction::Read => {
                let statuses: Vec<Value> = self
                    .inbox(digits)
                    .iter()
                    .filter(|r| !r.from_contact)
                    .map(|r| json!({"id": r.wamid, "status": "read", "timestamp": ts, "recipient_id": digits}))
                    .collect();
                json!({ "statuses": statuses })
            }
        };
        let sent = value.get("messages").and_then(|m| m.get(0)).cloned();
        let body = envelope(&inner.phone_number_id, value);
        inner.post(&body).await?;
        if let Some(message) = sent {
            let text = message
                .pointer("/text/body")
                .or_else(|| message.pointer("/button/text"))
                .or_else(|| message.pointer("/image/caption"))
                .or_else(|| ["document", "video"].iter().find_map(|k| message.get(*k)?.get("caption")))
                .or_else(|| message.pointer("/location/name"))
                .or_else(|| message.pointer("/contacts/0/name/formatted_name"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let request = serde_json::value::to_raw_value(&message).map_err(|e| SandboxError::Post(e.to_string()))?;
            inner.record(digits, Received { wamid, request, buttons: vec![], text, from_contact: true });
        }
        Ok(body)
    }
}

/// The label a person sees on the connector's quick-reply buttons.
fn button_label(payload: &str) -> &'static str {
    match payload.split(':').next() {
        Some("OPT_IN_YES") => "Yes",
        Some("OPT_IN_NO") => "No",
        Some("RESUME") => "Resume conversation",
        _ => "OK",
    }
}

fn envelope(phone_number_id: &str, mut value: Value) -> Value {
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": "15550783881", "phone_number_id": phone_number_id});
    json!({"object": "whatsapp_business_account", "entry": [{"id": "0", "changes": [{"field": "messages", "value": value}]}]})
}

impl Inner {
    fn record(&self, digits: &str, entry: Received) {
        if let Ok(mut inbox) = self.inbox.lock() {
            inbox.entry(digits.to_string()).or_default().push(entry);
        }
        let _ = self.changed.send(digits.to_string());
    }

    async fn post(&self, body: &Value) -> Result<(), SandboxError> {
        let url = self.webhook_url.get().ok_or(SandboxError::NotConnected)?;
        let bytes = serde_json::to_vec(body).map_err(|e| SandboxError::Post(e.to_string()))?;
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature::sign(self.app_secret.as_bytes(), &bytes))
            .body(bytes)
            .send()
            .await
            .map_err(|e| SandboxError::Post(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(SandboxError::Post(format!("webhook answered {}", resp.status())));
        }
        Ok(())
    }

    /// Posts as Meta does a webhook nobody is waiting on: a refused post is tried again, a
    /// little later each time (Meta keeps trying for days; the sandbox, for about six seconds).
    async fn post_until_taken(&self, body: &Value) -> Result<(), SandboxError> {
        let mut wait = Duration::from_millis(100);
        loop {
            match self.post(body).await {
                Err(SandboxError::Post(_)) if wait < Duration::from_secs(4) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                done => return done,
            }
        }
    }
}

#[async_trait]
impl WhatsApp for SandboxWhatsApp {
    async fn upload_media(&self, body: ByteStream, _: u64, mime_type: &str) -> Result<String, GraphError> {
        use futures_util::TryStreamExt;
        let id = format!("sandbox-media-{}", ulid::Ulid::new());
        // The sandbox stands for Meta, which keeps the file: here, in memory.
        let chunks: Vec<bytes::Bytes> = body.try_collect().await.map_err(|e| GraphError::transport(e.to_string()))?;
        let bytes = bytes::Bytes::from(chunks.concat());
        if let Ok(mut m) = self.inner.media.lock() {
            m.insert(id.clone(), (bytes, mime_type.to_string()));
        }
        Ok(id)
    }

    async fn media_info(&self, meta_id: &str) -> Result<MediaInfo, GraphError> {
        let media = self.inner.media.lock().map_err(|_| GraphError::transport("sandbox poisoned"))?;
        let (bytes, mime) = media.get(meta_id).ok_or_else(|| GraphError {
            lost: false,
            http_status: Some(404),
            code: Some(100),
            message: "unknown media".into(),
        })?;
        Ok(MediaInfo {
            url: format!("sandbox://{meta_id}"),
            mime_type: mime.clone(),
            sha256: None,
            file_size: Some(bytes.len() as u64),
        })
    }

    async fn download(&self, url: &str, max: usize) -> Result<ByteStream, GraphError> {
        let id = url.strip_prefix("sandbox://").unwrap_or(url);
        let media = self.inner.media.lock().map_err(|_| GraphError::transport("sandbox poisoned"))?;
        match media.get(id) {
            Some((bytes, _)) if bytes.len() <= max => Ok(crate::ports::byte_stream(bytes.clone())),
            Some(_) => Err(GraphError {
                lost: false,
                http_status: Some(200),
                code: Some(131052),
                message: "media too large".into(),
            }),
            None => {
                Err(GraphError { lost: false, http_status: Some(404), code: None, message: "unknown media".into() })
            }
        }
    }

    async fn templates(&self) -> Result<Vec<TemplateInfo>, GraphError> {
        Ok(self.inner.templates.clone())
    }

    async fn send(&self, req: &OutboundRequest) -> Result<String, GraphError> {
        let digits = match &req.to {
            Recipient::Phone(p) => p.trim_start_matches('+').to_string(),
            Recipient::UserId(u) => u.clone(),
        };
        if let OutboundBody::Template(t) = &req.body {
            if !self.inner.templates.iter().any(|x| x.name == t.name && x.language == t.language) {
                // As Meta answers for a template it does not have in that language.
                return Err(GraphError {
                    lost: false,
                    http_status: Some(404),
                    code: Some(132001),
                    message: format!("template {} ({}) does not exist", t.name, t.language),
                });
            }
        }
        let wamid = format!("wamid.SANDBOX-{}", ulid::Ulid::new());
        let (buttons, text) = match &req.body {
            OutboundBody::Template(t) => (t.buttons.clone(), None),
            OutboundBody::Text { body } => (vec![], Some(body.clone())),
            OutboundBody::File { caption, .. } => (vec![], caption.clone()),
            OutboundBody::Location(l) => (vec![], Some(l.line())),
        };
        let request = serde_json::value::to_raw_value(&request_json(req))
            .map_err(|e| GraphError::unsent(format!("sandbox: {e}")))?;
        let received = Received { wamid: wamid.clone(), request, buttons, text, from_contact: false };
        self.inner.record(&digits, received);
        // The phone answers a moment later, as Meta's webhooks do.
        let inner = self.inner.clone();
        let w = wamid.clone();
        let callback = req.callback.clone();
        tokio::spawn(async move {
            for status in ["sent", "delivered"] {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let ts = inner.clock.now().unix_timestamp().to_string();
                let body = envelope(
                    &inner.phone_number_id,
                    json!({"statuses": [{"id": w, "status": status, "timestamp": ts, "recipient_id": digits,
                        "biz_opaque_callback_data": callback}]}),
                );
                if let Err(e) = inner.post_until_taken(&body).await {
                    tracing::warn!(error = %Report(&e), "sandbox gave up posting a status");
                }
            }
        });
        Ok(wamid)
    }
}
