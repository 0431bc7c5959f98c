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
use crate::ports::{Cond, Disposition, Item, Key, MediaFetch, MediaRecord, Write};

use super::commit::{execute, Decision, Plan};
use super::{load, new_ulid, put_versioned, Caller, Ports, Result, UseCaseError};
use crate::domain::ids::ConversationId;

/// Meta keeps uploaded media 30 days; re-upload a day before.
const META_MEDIA_LIFETIME: Duration = Duration::days(29);
/// Receives of a fetch job before a file is given up on.
const FETCH_ATTEMPTS: u32 = 5;

/// `bytes` labelled `content_type` as WhatsApp would take them (`media::check`).
fn checked(content_type: Option<&str>, bytes: &[u8]) -> Result<(FileKind, String)> {
    crate::domain::media::check(content_type, bytes).map_err(|r| match r {
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
    keep(ports, caller, new_ulid(), bytes, content_type).await
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
    if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(UseCaseError::NotFound);
    }
    Ok(format!("{id}{}", &hex::encode(Sha256::digest(caller.user_id.as_str()))[..16]))
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

/// `PUT /media/uploads/{id}`: the bytes of an announced file, where the store signs no URL.
pub async fn put_upload(ports: &Ports, caller: &Caller, id: &str, bytes: Vec<u8>) -> Result<()> {
    let (kind, _) = crate::domain::media::accepted(announced(id)?).ok_or(UseCaseError::NotFound)?;
    if bytes.len() > max_bytes(kind) {
        return Err(DomainError::TooLarge(max_bytes(kind)).into());
    }
    Ok(ports.media.put_upload(&upload_name(caller, id)?, bytes).await?)
}

/// `POST /media/uploads/{id}/complete`: the uploaded bytes checked as `POST /media` checks
/// them, and kept as the file `id`. Finishing again answers the same file.
pub async fn finish_upload(ports: &Ports, caller: &Caller, id: &str) -> Result<MediaRecord> {
    let name = upload_name(caller, id)?;
    if let Some(done) = load::<MediaRecord>(&*ports.store, &Key::media(id)).await? {
        return if done.item.owner.is_user(&caller.user_id) { Ok(done.item) } else { Err(UseCaseError::NotFound) };
    }
    let mime = announced(id)?;
    let (kind, _) = crate::domain::media::accepted(mime).ok_or(UseCaseError::NotFound)?;
    let bytes = ports.media.get_upload(&name, max_bytes(kind)).await?.ok_or(UseCaseError::NotFound)?;
    keep(ports, caller, id.to_string(), bytes, Some(mime)).await
}

/// Keeps `bytes` as the file `id` of `caller`, if WhatsApp takes them as labelled.
async fn keep(
    ports: &Ports,
    caller: &Caller,
    id: String,
    bytes: Vec<u8>,
    content_type: Option<&str>,
) -> Result<MediaRecord> {
    let (_, mime) = checked(content_type, &bytes)?;
    let record = MediaRecord {
        id,
        owner: caller.sender(),
        mime_type: mime.clone(),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        meta_id: None,
        meta_uploaded_at: None,
        conversations: vec![],
        latest_message: Default::default(),
        created_at: ports.clock.now(),
    };
    ports.media.put(&record.id, bytes, &mime).await?;
    record_once(ports, record).await
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
    Bytes(Vec<u8>, String),
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
    let bytes = ports.media.get(id).await?.ok_or(UseCaseError::NotFound)?;
    Ok(Picture::Bytes(bytes, record.mime_type))
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
    let bytes = ports.media.get(id).await?.ok_or(UseCaseError::NotFound)?;
    let meta = match ports.whatsapp.upload_media(bytes, &v.item.mime_type).await {
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

/// Whether `bytes` match Meta's `sha256` (base64, or hex).
fn sha_matches(bytes: &[u8], expected: &str) -> bool {
    let digest = Sha256::digest(bytes);
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    expected == b64 || expected.eq_ignore_ascii_case(&hex::encode(digest))
}

/// Fetches a contact's file: `GET /{media-id}`, then the download with the bearer token (no
/// more than its kind's limit), then the SHA-256 check. Transient failures retry; after the
/// last attempt, or on a bad checksum, the message shows the file as unavailable, with the
/// reason, and keeps everything else it carried.
pub async fn fetch_inbound(ports: &Ports, job: &MediaFetch, receives: u32) -> Result<Disposition> {
    let outcome = async {
        let info = ports.whatsapp.media_info(&job.meta_id).await?;
        let bytes = ports.whatsapp.download(&info.url, max_bytes(job.kind)).await?;
        Ok::<_, GraphError>((info, bytes))
    }
    .await;
    let (info, bytes) = match outcome {
        Ok(ok) => ok,
        Err(e) if receives < FETCH_ATTEMPTS && e.code != Some(131052) => {
            tracing::warn!(media_id = %job.media_id, error = %Report(&e), "file download failed; will retry");
            return Ok(Disposition::RetryAfter(std::time::Duration::from_secs(u64::from(receives.max(1)))));
        }
        Err(e) => return give_up(ports, job, &e.message).await,
    };
    let expected = job.sha256.as_deref().or(info.sha256.as_deref());
    let expected = expected.filter(|_| !crate::plant::active(crate::plant::Bug::SkipMediaChecksum));
    if let Some(sha) = expected {
        if !sha_matches(&bytes, sha) {
            return give_up(ports, job, "the downloaded file does not match its SHA-256").await;
        }
    }
    let sniffed = ImageType::sniff(&bytes).filter(|_| job.kind == FileKind::Image);
    let mime = sniffed.map_or(info.mime_type.clone(), |t| t.mime().to_string());
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let size = bytes.len() as u64;
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
    ports.media.put(&job.media_id, bytes, &mime).await?;
    record_once(ports, record).await?;
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
