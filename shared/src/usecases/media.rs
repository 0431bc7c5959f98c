//! Files: uploads from employees (checked by their bytes), fetching contacts' files from Meta
//! (checked by their SHA-256), serving them to the thread's participants only, and Meta's media
//! id for sending.

use base64::Engine;
use sha2::{Digest, Sha256};
use time::Duration;

use crate::archive::ArchiveKind;
use crate::domain::media::{max_bytes, ImageType, Refusal, MAX_IMAGE_BYTES};
use crate::domain::message::FileKind;
use crate::domain::message::MessageError;
use crate::domain::meta_error::FailureReason;
use crate::domain::{Body, DomainError, Message, MessageStatus, Sender};
use crate::error::Report;
use crate::meta::graph::GraphError;
use crate::ports::{ByteStream, Cond, Disposition, Item, Key, MediaFetch, MediaRecord, Write};

use super::commit::{execute, Decision, Plan};
use super::{load, new_ulid, put_versioned, Caller, Ports, Result, UseCaseError};
use crate::domain::ids::ConversationId;

/// Meta keeps uploaded media 30 days; re-upload a day before.
const META_MEDIA_LIFETIME: Duration = Duration::days(29);
/// Receives of a fetch job before a file is given up on.
const FETCH_ATTEMPTS: u32 = 5;

/// What reading a file told: its size, its SHA-256 and its first bytes (enough to know its
/// format), gathered chunk by chunk.
#[derive(Default)]
struct Scan {
    size: u64,
    sha: Sha256,
    head: Vec<u8>,
    /// Why the bytes stopped coming, when they did.
    failed: Option<String>,
}

/// The bytes `media::check` reads to tell a format.
const HEAD: usize = 64;

impl Scan {
    fn add(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        self.sha.update(chunk);
        let room = HEAD.saturating_sub(self.head.len());
        self.head.extend_from_slice(&chunk[..room.min(chunk.len())]);
    }

    /// Reads `body` to its end, or until it passes `max` bytes (`None` then).
    async fn read(mut body: ByteStream, max: u64) -> Result<Option<Scan>> {
        use futures_util::StreamExt;
        let mut scan = Scan::default();
        while let Some(chunk) = body.next().await {
            scan.add(&chunk.map_err(|e| crate::ports::MediaStoreError(Box::new(e)))?);
            if scan.size > max {
                return Ok(None);
            }
        }
        Ok(Some(scan))
    }

    /// `body`, scanned into `scan` as it passes.
    fn tap(body: ByteStream, scan: std::sync::Arc<std::sync::Mutex<Scan>>) -> ByteStream {
        use futures_util::StreamExt;
        Box::pin(body.inspect(move |chunk| {
            let mut scan = scan.lock().unwrap_or_else(|p| p.into_inner());
            match chunk {
                Ok(bytes) => scan.add(bytes),
                Err(e) => scan.failed = Some(e.to_string()),
            }
        }))
    }

    fn sha256(&self) -> String {
        hex::encode(self.sha.clone().finalize())
    }
}

/// A file labelled `content_type` as WhatsApp would take it (`media::check`).
fn checked(content_type: Option<&str>, scan: &Scan) -> Result<(FileKind, String)> {
    crate::domain::media::check_head(content_type, &scan.head, scan.size).map_err(|r| match r {
        Refusal::TooLarge(max) => DomainError::TooLarge(max).into(),
        Refusal::Unsupported(why) => DomainError::UnsupportedMedia(why).into(),
    })
}

/// `POST /media`: a file of a type WhatsApp takes, at most what the API takes in one body
/// (`MAX_IMAGE_BYTES`; larger files go through `POST /media/uploads`), taken for what its
/// bytes are.
pub async fn upload(ports: &Ports, caller: &Caller, bytes: Vec<u8>, content_type: Option<&str>) -> Result<MediaRecord> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(DomainError::TooLarge(MAX_IMAGE_BYTES).into());
    }
    // In memory already: checked before it is stored, never read back.
    let mut scan = Scan::default();
    scan.add(&bytes);
    let (_, mime) = checked(content_type, &scan)?;
    let id = new_ulid();
    let name = upload_name(caller, &id)?;
    ports.media.put_upload(&name, crate::ports::byte_stream(bytes), MAX_IMAGE_BYTES as u64).await?;
    keep(ports, caller, &name, id, mime, scan).await
}

/// How long a client has to put an upload's bytes, and to fetch a file from its URL.
pub const URL_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Where a client puts the bytes of a file it announced.
#[derive(serde::Serialize)]
pub struct UploadSlot {
    pub media_id: String,
    pub upload: UploadRequest,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}

/// The request that puts the bytes: a PUT to `url` with `headers`.
#[derive(serde::Serialize)]
pub struct UploadRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: std::collections::BTreeMap<&'static str, String>,
}

/// An upload's name in the media store: its id and its uploader, so that no one else can put
/// or finish it.
fn upload_name(caller: &Caller, id: &str) -> Result<String> {
    upload_object(caller.user_id.as_str(), id).ok_or(UseCaseError::NotFound)
}

/// The store's name for the upload `id` of `user_id` (what a presigned URL writes to).
pub fn upload_object(user_id: &str, id: &str) -> Option<String> {
    if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(format!("{id}{}", &hex::encode(Sha256::digest(user_id))[..16]))
}

/// `POST /media/uploads`: a file of `content_type` announced; its bytes go where the slot
/// says, then `finish_upload` checks and keeps them. On S3 the client writes them itself. The
/// id ends with the announced type's code (`media::type_code`), so finishing needs no state.
pub async fn start_upload(ports: &Ports, caller: &Caller, content_type: Option<&str>) -> Result<UploadSlot> {
    let unsupported =
        || DomainError::UnsupportedMedia(format!("WhatsApp does not take files of type {content_type:?}"));
    let (_, mime) = crate::domain::media::accepted(content_type.unwrap_or("")).ok_or_else(unsupported)?;
    let code = crate::domain::media::type_code(&mime).ok_or_else(unsupported)?;
    let id = format!("{}{code:02}", new_ulid());
    let signed = ports.media.upload_url(&upload_name(caller, &id)?, &mime, URL_TTL).await?;
    // Where the store signs no URL, the API takes the bytes itself (a path on the API).
    let url = signed.unwrap_or_else(|| format!("/media/uploads/{id}"));
    let upload = UploadRequest { method: "PUT", url, headers: [("content-type", mime)].into() };
    Ok(UploadSlot { media_id: id, upload, expires_at: ports.clock.now() + URL_TTL })
}

/// The type an upload's id announced.
fn announced(id: &str) -> Result<&'static str> {
    let code = id.get(id.len().saturating_sub(2)..).and_then(|c| c.parse().ok());
    code.and_then(crate::domain::media::type_of_code).ok_or(UseCaseError::NotFound)
}

/// `PUT /media/uploads/{id}`: the bytes of an announced file, where the store signs no URL,
/// streamed to the store as they come.
pub async fn put_upload(ports: &Ports, caller: &Caller, id: &str, body: crate::ports::ByteStream) -> Result<()> {
    let (kind, _) = crate::domain::media::accepted(announced(id)?).ok_or(UseCaseError::NotFound)?;
    if !ports.media.put_upload(&upload_name(caller, id)?, body, max_bytes(kind) as u64).await? {
        return Err(DomainError::TooLarge(max_bytes(kind)).into());
    }
    Ok(())
}

/// `POST /media/uploads/{id}/complete`: the uploaded bytes checked as `POST /media` checks
/// them, and kept as the file `id`. Finishing again answers the same file.
pub async fn finish_upload(ports: &Ports, caller: &Caller, id: &str) -> Result<MediaRecord> {
    let name = upload_name(caller, id)?;
    if let Some(done) = load::<MediaRecord>(&*ports.store, &Key::media(id)).await? {
        return if done.item.owner.is_user(&caller.user_id) { Ok(done.item) } else { Err(UseCaseError::NotFound) };
    }
    let announced = announced(id)?;
    let (kind, _) = crate::domain::media::accepted(announced).ok_or(UseCaseError::NotFound)?;
    // Read back once to check it (never whole in memory).
    let body = ports.media.open_upload(&name).await?.ok_or(UseCaseError::NotFound)?;
    let max = max_bytes(kind);
    let scan = Scan::read(body, max as u64).await?.ok_or(DomainError::TooLarge(max))?;
    let (_, mime) = checked(Some(announced), &scan)?;
    keep(ports, caller, &name, id.to_string(), mime, scan).await
}

/// Keeps the checked upload `name` (of type `mime`, as `scan` read it) as the file `id` of
/// `caller`: kept, recorded, and only then let go.
async fn keep(ports: &Ports, caller: &Caller, name: &str, id: String, mime: String, scan: Scan) -> Result<MediaRecord> {
    let record = MediaRecord {
        id,
        owner: caller.sender(),
        mime_type: mime.clone(),
        size: scan.size,
        sha256: scan.sha256(),
        meta_id: None,
        meta_uploaded_at: None,
        conversations: vec![],
        latest_message: Default::default(),
        created_at: ports.clock.now(),
    };
    ports.media.keep(name, &record.id, &mime).await?;
    let record = record_once(ports, record).await?;
    discard(ports, name).await;
    Ok(record)
}

/// Lets an upload go once its file is kept (S3's lifecycle removes any left behind).
async fn discard(ports: &Ports, name: &str) {
    if let Err(e) = ports.media.discard_upload(name).await {
        tracing::warn!(error = %Report(&e), "an upload kept as a file could not be removed");
    }
}

/// Writes `record` unless it is there already (finished twice at once: the first one counts).
async fn record_once(ports: &Ports, record: MediaRecord) -> Result<MediaRecord> {
    let record = &record;
    execute(ports, || async move {
        if let Some(kept) = load::<MediaRecord>(&*ports.store, &Key::media(&record.id)).await? {
            return Ok(Decision::Done(kept.item));
        }
        let put = Write::Put { item: Item::Media(record.clone()), cond: Cond::NotExists };
        Ok(Decision::Commit(Plan::of(vec![put]), record.clone()))
    })
    .await
}

/// Whether `caller` may see the file: its uploader, or a participant of a thread it is in
/// who may see a message of that thread carrying it (one who joined without the history may
/// not fetch the files from before).
async fn may_see(ports: &Ports, caller: &Caller, m: &MediaRecord) -> Result<bool> {
    if m.owner.is_user(&caller.user_id) {
        return Ok(true);
    }
    let keys: Vec<Key> = m.conversations.iter().map(Key::conversation).collect();
    for v in ports.store.get_many(&keys).await?.into_iter().flatten() {
        let Item::Conversation(c) = v.item else { continue };
        let Some(p) = c.participants.iter().find(|p| p.user_id == caller.user_id) else { continue };
        if p.history_from.is_none() || m.latest_message.get(&c.id).is_some_and(|msg| p.may_see(msg)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A file as `GET /media/{id}` answers it.
pub enum Picture {
    /// Its bytes as they are read, with its type and size.
    Bytes(crate::ports::ByteStream, String, u64),
    /// Where the client fetches it itself (S3, presigned), for `URL_TTL`.
    At(String),
}

/// `GET /media/{id}`: the file, or `NotFound` for anyone else.
pub async fn get(ports: &Ports, caller: &Caller, id: &str) -> Result<Picture> {
    let record = load::<MediaRecord>(&*ports.store, &Key::media(id)).await?.ok_or(UseCaseError::NotFound)?.item;
    if !may_see(ports, caller, &record).await? {
        return Err(UseCaseError::NotFound);
    }
    if let Some(url) = ports.media.download_url(id, URL_TTL).await? {
        return Ok(Picture::At(url));
    }
    let body = ports.media.open(id).await?.ok_or(UseCaseError::NotFound)?;
    Ok(Picture::Bytes(body, record.mime_type, record.size))
}

/// Whether the caller may send this file in `conversation_id`: theirs, or already there.
pub(crate) fn sendable(record: &MediaRecord, caller: &Caller, conversation_id: &ConversationId) -> Result<()> {
    if !record.owner.is_user(&caller.user_id) && !record.conversations.contains(conversation_id) {
        return Err(UseCaseError::NotFound);
    }
    Ok(())
}

/// Meta's id for our file, uploading it first when it never was or has expired.
pub(crate) async fn meta_id(ports: &Ports, id: &str) -> Result<std::result::Result<String, GraphError>> {
    let now = ports.clock.now();
    let v = load::<MediaRecord>(&*ports.store, &Key::media(id)).await?.ok_or(UseCaseError::NotFound)?;
    if let (Some(meta), Some(at)) = (&v.item.meta_id, v.item.meta_uploaded_at) {
        if now < at + META_MEDIA_LIFETIME {
            return Ok(Ok(meta.clone()));
        }
    }
    let body = ports.media.open(id).await?.ok_or(UseCaseError::NotFound)?;
    let meta = match ports.whatsapp.upload_media(body, v.item.size, &v.item.mime_type).await {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    let meta = &meta;
    execute(ports, || async move {
        let Some(v) = load::<MediaRecord>(&*ports.store, &Key::media(id)).await? else {
            return Err(UseCaseError::NotFound);
        };
        // Another upload's id, kept meanwhile, is as good as this one.
        if v.item.meta_id.is_some() && v.item.meta_uploaded_at.is_some_and(|at| now < at + META_MEDIA_LIFETIME) {
            return Ok(Decision::Done(()));
        }
        let mut next = v.item.clone();
        next.meta_id = Some(meta.clone());
        next.meta_uploaded_at = Some(now);
        Ok(Decision::Commit(Plan::of(vec![put_versioned(Item::Media(next), Some(v.version))]), ()))
    })
    .await?;
    Ok(Ok(meta.clone()))
}

/// Whether a SHA-256 `digest` is Meta's `expected` (base64, or hex).
fn sha_matches(digest: &[u8], expected: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    expected == b64 || expected.eq_ignore_ascii_case(&hex::encode(digest))
}

/// Fetches a contact's file: `GET /{media-id}`, then the download with the bearer token,
/// streamed into the store as an upload of its own (no more than its kind's limit), then the
/// SHA-256 check, and only then kept. Transient failures retry; after the last attempt, or on
/// a bad checksum or size, the message shows the file as unavailable, with the reason, and
/// keeps everything else it carried.
pub async fn fetch_inbound(ports: &Ports, job: &MediaFetch, receives: u32) -> Result<Disposition> {
    let max = max_bytes(job.kind);
    // Each attempt its own upload: two deliveries of one job never write the same object.
    let staged = format!("{}{}", job.media_id, new_ulid());
    let scan = std::sync::Arc::new(std::sync::Mutex::new(Scan::default()));
    let outcome = async {
        let info = ports.whatsapp.media_info(&job.meta_id).await?;
        let body = ports.whatsapp.download(&info.url, max).await?;
        let fit = match ports.media.put_upload(&staged, Scan::tap(body, scan.clone()), max as u64).await {
            Ok(fit) => fit,
            Err(e) => match scan.lock().unwrap_or_else(|p| p.into_inner()).failed.take() {
                // The download broke off, not the store.
                Some(why) => return Err(GraphError::transport(why)),
                None => return Ok(Err(e)),
            },
        };
        Ok::<_, GraphError>(Ok((info, fit)))
    }
    .await;
    let (info, fit) = match outcome {
        Ok(Ok(ok)) => ok,
        Ok(Err(store)) => return Err(store.into()),
        Err(e) if receives < FETCH_ATTEMPTS && e.code != Some(131052) => {
            tracing::warn!(media_id = %job.media_id, error = %Report(&e), "file download failed; will retry");
            return Ok(Disposition::RetryAfter(std::time::Duration::from_secs(u64::from(receives.max(1)))));
        }
        Err(e) => return give_up(ports, job, &e.message).await,
    };
    if !fit {
        return give_up(ports, job, &format!("the file is over {max} bytes, the limit for its kind")).await;
    }
    let scan = std::mem::take(&mut *scan.lock().unwrap_or_else(|p| p.into_inner()));
    let digest = scan.sha.clone().finalize();
    let expected = job.sha256.as_deref().or(info.sha256.as_deref());
    let expected = expected.filter(|_| !crate::plant::active(crate::plant::Bug::SkipMediaChecksum));
    if let Some(sha) = expected {
        if !sha_matches(&digest, sha) {
            discard(ports, &staged).await;
            return give_up(ports, job, "the downloaded file does not match its SHA-256").await;
        }
    }
    let sniffed = ImageType::sniff(&scan.head).filter(|_| job.kind == FileKind::Image);
    let mime = sniffed.map_or(info.mime_type.clone(), |t| t.mime().to_string());
    let sha256 = hex::encode(digest);
    let size = scan.size;
    let record = MediaRecord {
        id: job.media_id.clone(),
        owner: Sender::Contact,
        mime_type: mime.clone(),
        size,
        sha256: sha256.clone(),
        meta_id: None,
        meta_uploaded_at: None,
        conversations: vec![job.conversation_id.clone()],
        latest_message: [(job.conversation_id.clone(), job.message_id.clone())].into(),
        created_at: ports.clock.now(),
    };
    ports.media.keep(&staged, &job.media_id, &mime).await?;
    record_once(ports, record).await?;
    discard(ports, &staged).await;
    let mut kept = super::archive::event(
        &job.conversation_id,
        ArchiveKind::Media,
        Sender::Contact,
        ports.clock.now(),
        serde_json::json!({"media_id": job.media_id, "kind": job.kind, "mime_type": mime, "size": size, "sha256": sha256}),
    );
    kept.message_id = Some(job.message_id.clone());
    set_message(ports, job, Some(kept), |m| {
        // A fetch that already gave up stands: the first outcome is the message's.
        if m.status == MessageStatus::Failed {
            return false;
        }
        if let Body::File { media_id, facts, .. } = &mut m.body {
            if media_id.is_some() {
                return false;
            }
            *media_id = Some(job.media_id.clone());
            facts.mime_type = Some(mime.clone());
            facts.size = Some(size);
            facts.sha256 = Some(sha256.clone());
        }
        true
    })
    .await?;
    Ok(Disposition::Done)
}

async fn give_up(ports: &Ports, job: &MediaFetch, why: &str) -> Result<Disposition> {
    tracing::warn!(media_id = %job.media_id, why, "file unavailable");
    let now = ports.clock.now();
    set_message(ports, job, None, |m| {
        // Kept by another delivery of the same job: the file is there.
        if m.body.media_id().is_some() || m.status == MessageStatus::Failed {
            return false;
        }
        m.status = MessageStatus::Failed;
        m.status_at.failed.get_or_insert(now);
        m.error = Some(MessageError {
            code: "media_unavailable".into(),
            detail: why.to_string(),
            reason: Some(FailureReason::MediaUnavailable),
        });
        true
    })
    .await?;
    Ok(Disposition::Done)
}

/// Changes the fetched file's message when `f` says it changed, with `record` on the record
/// in the same commit.
async fn set_message(
    ports: &Ports,
    job: &MediaFetch,
    record: Option<crate::archive::ArchiveEvent>,
    f: impl Fn(&mut Message) -> bool,
) -> Result<()> {
    let key = &Key::message(&job.conversation_id, &job.message_id);
    let (f, record) = (&f, &record);
    execute(ports, || async move {
        let Some(v) = load::<Message>(&*ports.store, key).await? else { return Ok(Decision::Done(())) };
        let mut next = v.item.clone();
        if !f(&mut next) {
            return Ok(Decision::Done(()));
        }
        let mut plan = Plan::of(vec![put_versioned(Item::Message(next), Some(v.version))]);
        plan.archive.extend(record.clone());
        Ok(Decision::Commit(plan, ()))
    })
    .await
}
