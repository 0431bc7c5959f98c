//! The outbound queue's consumer: claim the message (`queued → sending`), call the Graph API,
//! record the wamid, or hand the failure to `outcomes`.

use time::Duration;

use crate::domain::{Contact, Conversation, Message, MessageKind, MessageStatus};
use crate::meta::graph::{OutboundBody, OutboundRequest, Recipient};
use crate::ports::{Disposition, Item, Key, OutboundJob, StoreError, Versioned, Write};

use super::outcomes::{plan_failure, Failure, FailurePlan};
use super::{enqueue_all, load, load_contact, put_versioned, Ports, Result, UseCaseError, MAX_CONFLICT_RETRIES};

/// How long a claim holds; a claim older than this (the process died mid-call) may be retaken.
const LEASE: Duration = Duration::seconds(60);

/// How far back dispatch looks for older messages of the thread still waiting: two requests
/// committed in one order can reach the queue in the other, and the older goes first.
const LOOK_BACK: usize = 8;

pub async fn dispatch(ports: &Ports, job: &OutboundJob) -> Result<Disposition> {
    let earlier = ports
        .store
        .query(
            &format!("CONV#{}", job.conversation_id),
            "MSG#",
            Some(&format!("MSG#{}", job.message_id)),
            LOOK_BACK,
            false,
        )
        .await?;
    let now = ports.clock.now();
    let mut waiting: Vec<String> = earlier
        .into_iter()
        .filter_map(|v| match v.item {
            Item::Message(m) if m.status == MessageStatus::Queued && m.claimable(now) => Some(m.id),
            _ => None,
        })
        .collect();
    waiting.reverse();
    for id in waiting {
        let d = dispatch_one(ports, &Key::message(&job.conversation_id, &id)).await?;
        if d != Disposition::Done {
            // The older one must wait: so must this one, behind it.
            return Ok(d);
        }
    }
    dispatch_one(ports, &Key::message(&job.conversation_id, &job.message_id)).await
}

async fn dispatch_one(ports: &Ports, key: &Key) -> Result<Disposition> {
    let key = key.clone();
    let Some((claimed, version)) = claim(ports, &key).await? else {
        return Ok(Disposition::Done);
    };
    let conv = load::<Conversation>(&*ports.store, &Key::conversation(&claimed.conversation_id))
        .await?
        .ok_or(UseCaseError::NotFound)?;
    let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
    let mut meta_media = None;
    if let (MessageKind::Image, Some(id)) = (claimed.kind, &claimed.media_id) {
        match super::media::meta_id(ports, id).await? {
            Ok(meta) => meta_media = Some(meta),
            Err(e) => {
                tracing::warn!(message_id = %claimed.id, error = %e.message, "picture upload refused");
                let failure = Failure { code: e.code, http_status: e.http_status, detail: e.message };
                return apply_failure(ports, &key, &failure, true).await;
            }
        }
    }
    let Some(req) = request_for(&claimed, &conv.item, &contact.item, meta_media) else {
        tracing::error!(message_id = %claimed.id, "message has nothing to send");
        return Ok(Disposition::Done);
    };
    match ports.whatsapp.send(&req).await {
        Ok(wamid) => {
            record_accepted(ports, &key, claimed, version, wamid).await?;
            Ok(Disposition::Done)
        }
        Err(e) => {
            tracing::warn!(message_id = %claimed.id, code = ?e.code, http_status = ?e.http_status, error = %e.message, "Graph API refused a send");
            let failure = Failure { code: e.code, http_status: e.http_status, detail: e.message };
            apply_failure(ports, &key, &failure, true).await
        }
    }
}

/// Takes the message for this attempt, or `None` when it is not ours to send (already sent,
/// held again, failed, gone, or claimed by a live attempt).
async fn claim(ports: &Ports, key: &Key) -> Result<Option<(Message, u64)>> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let now = ports.clock.now();
        let Some(m) = load::<Message>(&*ports.store, key).await? else {
            tracing::warn!(pk = %key.pk, sk = %key.sk, "queued message not found");
            return Ok(None);
        };
        if !m.item.claimable(now) {
            return Ok(None);
        }
        let mut next = m.item.clone();
        next.status = MessageStatus::Sending;
        next.lease_until = Some(now + LEASE);
        next.attempts += 1;
        match ports.store.transact(vec![put_versioned(Item::Message(next.clone()), Some(m.version))]).await {
            Ok(()) => return Ok(Some((next, m.version + 1))),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(UseCaseError::Contention)
}

fn request_for(
    m: &Message,
    conv: &Conversation,
    contact: &Contact,
    meta_media: Option<String>,
) -> Option<OutboundRequest> {
    let to = match (&contact.phone, &contact.user_id) {
        (Some(p), _) => Recipient::Phone(p.clone()),
        (None, Some(u)) => Recipient::UserId(u.clone()),
        (None, None) => Recipient::Phone(conv.contact_phone.clone()?),
    };
    let body = match m.kind {
        MessageKind::Text => {
            OutboundBody::Text { body: format!("{}{}", m.prefix.as_deref().unwrap_or(""), m.text.as_deref()?) }
        }
        MessageKind::Template => OutboundBody::Template(m.template.clone()?),
        MessageKind::Image => OutboundBody::Image {
            media_id: meta_media?,
            caption: m.text.as_ref().map(|t| format!("{}{t}", m.prefix.as_deref().unwrap_or(""))),
        },
        MessageKind::Reaction | MessageKind::Notice => return None,
    };
    Some(OutboundRequest { to, body, callback: m.id.clone() })
}

async fn record_accepted(ports: &Ports, key: &Key, claimed: Message, version: u64, wamid: String) -> Result<()> {
    let link = Item::Wamid {
        wamid: wamid.clone(),
        conversation_id: claimed.conversation_id.clone(),
        message_id: claimed.id.clone(),
    };
    let mut current = Versioned { item: claimed, version };
    for _ in 0..MAX_CONFLICT_RETRIES {
        let mut next = current.item.clone();
        if next.status == MessageStatus::Sending {
            next.status = MessageStatus::Accepted;
        }
        next.wamid = Some(wamid.clone());
        next.lease_until = None;
        let writes = vec![
            put_versioned(Item::Message(next), Some(current.version)),
            Write::Put { item: link.clone(), cond: crate::ports::Cond::Always },
        ];
        match ports.store.transact(writes).await {
            Ok(()) => {
                tracing::info!(message_id = %current.item.id, %wamid, "accepted by WhatsApp");
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => {
                current = load::<Message>(&*ports.store, key).await?.ok_or(UseCaseError::NotFound)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(UseCaseError::Contention)
}

/// Applies a failure to the message under `key`: retry, hold again, or fail with notices.
/// `in_queue` says the failing queue message is still ours to retry (dispatch); a `failed`
/// status (receipts) queues a new attempt instead.
pub(crate) async fn apply_failure(ports: &Ports, key: &Key, failure: &Failure, in_queue: bool) -> Result<Disposition> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let now = ports.clock.now();
        let msg = load::<Message>(&*ports.store, key).await?.ok_or(UseCaseError::NotFound)?;
        let conv = load::<Conversation>(&*ports.store, &Key::conversation(&msg.item.conversation_id))
            .await?
            .ok_or(UseCaseError::NotFound)?;
        let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
        let mut plan = plan_failure(&conv.item, &contact.item, &msg.item, failure, &ports.settings, now);
        if plan.retry_after.is_some() && !in_queue {
            plan.msg.generation += 1;
            plan.to_queue.insert(0, plan.msg.clone());
        }
        match commit_plan(ports, &conv, &contact, &msg, &plan).await? {
            true => {
                return Ok(match plan.retry_after {
                    Some(after) if in_queue => Disposition::RetryAfter(after),
                    _ => Disposition::Done,
                })
            }
            false => continue,
        }
    }
    Err(UseCaseError::Contention)
}

/// Writes a failure plan under the versions read; `false` on a conflict (read again and retry).
pub(crate) async fn commit_plan(
    ports: &Ports,
    conv: &Versioned<Conversation>,
    contact: &Versioned<Contact>,
    msg: &Versioned<Message>,
    plan: &FailurePlan,
) -> Result<bool> {
    let mut writes = vec![put_versioned(Item::Message(plan.msg.clone()), Some(msg.version))];
    if plan.conv != conv.item {
        writes.push(put_versioned(Item::Conversation(plan.conv.clone()), Some(conv.version)));
    }
    if plan.contact != contact.item {
        writes.push(put_versioned(Item::Contact(plan.contact.clone()), Some(contact.version)));
    }
    writes.extend(plan.writes.iter().cloned());
    writes
        .extend(plan.to_queue.iter().filter(|m| m.id != plan.msg.id).map(|m| super::put_new(Item::Message(m.clone()))));
    match ports.store.transact(writes).await {
        Ok(()) => {}
        Err(StoreError::Conflict { .. }) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    enqueue_all(&*ports.queue, &plan.to_queue.iter().collect::<Vec<_>>()).await?;
    for (timer, at) in &plan.timers {
        ports.scheduler.schedule(timer, *at).await?;
    }
    Ok(true)
}
