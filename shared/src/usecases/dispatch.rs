//! The outbound queue's consumer: claim the message (`queued → sending`), call the Graph API,
//! record the wamid, or hand the failure to `outcomes`.

use time::Duration;

use crate::domain::{Body, Contact, Conversation, Message, MessageStatus};
use crate::meta::graph::{OutboundBody, OutboundRequest, Recipient};
use crate::ports::{Disposition, Effect, Item, Key, OutboundJob, Timer, Versioned, Write};

use super::commit::{execute, Decision, Plan};
use super::outcomes::{plan_failure, plan_given_up, Failure, FailurePlan, GivenUp};
use super::{dispatch_effects, load, load_contact, put_versioned, Ports, Result, UseCaseError};
use crate::domain::ids::{ConversationId, MessageId};

/// How long a claim holds; a claim older than this lapsed (the process died mid-call).
const LEASE: Duration = Duration::seconds(60);

/// How long a send whose answer was lost waits for a status webhook before it fails.
pub const DELIVERY_DEADLINE: Duration = Duration::minutes(15);

/// Dispatch first sends the thread's older messages still queued: requests committed in one
/// order can reach the queue in the other (their publishes race), and the older goes first.
/// It looks back in pages of `LOOK_BACK` messages, and on while a whole page is of this
/// message's burst (made less than `OVERTAKE` before it), so a burst of any size keeps its
/// order; at most `MAX_PAGES` pages.
const LOOK_BACK: usize = 8;
const OVERTAKE: Duration = Duration::seconds(5);
const MAX_PAGES: usize = 16;

pub async fn dispatch(ports: &Ports, job: &OutboundJob) -> Result<Disposition> {
    for id in queued_before(ports, job).await? {
        let d = dispatch_one(ports, &Key::message(&job.conversation_id, &id)).await?;
        if d != Disposition::Done {
            // The older one must wait: so must this one, behind it.
            return Ok(d);
        }
    }
    dispatch_one(ports, &Key::message(&job.conversation_id, &job.message_id)).await
}

/// The thread's messages older than the job's that are still queued, oldest first.
async fn queued_before(ports: &Ports, job: &OutboundJob) -> Result<Vec<MessageId>> {
    // Message ids are ULIDs, made in commit order: their times say which made a burst.
    let overtake = OVERTAKE.whole_milliseconds() as u64;
    let burst_from = job.message_id.made_ms().map(|ms| ms.saturating_sub(overtake));
    let mut waiting = Vec::new();
    let mut before = job.message_id.clone();
    for _ in 0..MAX_PAGES {
        let page = ports.store.messages(&job.conversation_id, Some(&before), LOOK_BACK, false).await?;
        let full = page.len() == LOOK_BACK;
        let mut past_burst = burst_from.is_none();
        for v in page {
            if let Item::Message(m) = v.item {
                past_burst |= m.id.made_ms().is_none_or(|ms| burst_from.is_some_and(|from| ms < from));
                if m.status == MessageStatus::Queued {
                    waiting.push(m.id.clone());
                }
                before = m.id;
            }
        }
        if !full || past_burst {
            break;
        }
    }
    waiting.reverse();
    Ok(waiting)
}

async fn dispatch_one(ports: &Ports, key: &Key) -> Result<Disposition> {
    let key = key.clone();
    let (claimed, version) = match claim(ports, &key).await? {
        Claim::Taken(claimed, version) => (claimed, version),
        Claim::Held(for_) => return Ok(Disposition::RetryAfter(for_)),
        Claim::NotOurs => return Ok(Disposition::Done),
    };
    let claimed = *claimed;
    let conv = load::<Conversation>(&*ports.store, &Key::conversation(&claimed.conversation_id))
        .await?
        .ok_or(UseCaseError::NotFound)?;
    let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
    let mut meta_media = None;
    if let Some(id) = claimed.body.media_id() {
        match super::media::meta_id(ports, id).await? {
            Ok(meta) => meta_media = Some(meta),
            Err(e) => {
                tracing::warn!(message_id = %claimed.id, error = %e.message, "picture upload refused");
                let failure = Failure { code: e.code, http_status: e.http_status, detail: e.message };
                return apply_outcome(ports, &key, &failure, Outcome::Refused { in_queue: true }).await;
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
        Err(e) if e.lost => {
            let started = claimed.lease_until.map_or(ports.clock.now(), |l| l - LEASE);
            settle_later(ports, &Versioned { item: claimed, version }, started).await?;
            Ok(Disposition::Done)
        }
        Err(e) => {
            tracing::warn!(message_id = %claimed.id, code = ?e.code, http_status = ?e.http_status, error = %e.message, "Graph API refused a send");
            let failure = Failure { code: e.code, http_status: e.http_status, detail: e.message };
            apply_outcome(ports, &key, &failure, Outcome::Refused { in_queue: true }).await
        }
    }
}

/// What dispatch finds when it goes to take a message.
enum Claim {
    /// Ours to send, at this version.
    Taken(Box<Message>, u64),
    /// Not ours to send (already sent, held again, failed, gone, or settling).
    NotOurs,
    /// Another attempt holds it for this long: look again then (its holder may die).
    Held(std::time::Duration),
}

/// Takes the message for this attempt. A claim that lapsed (the process died, or the answer
/// never came, mid-call) is never retaken: the earlier attempt may have reached Meta, so the
/// message waits for a status webhook or its delivery deadline instead.
async fn claim(ports: &Ports, key: &Key) -> Result<Claim> {
    execute(ports, || async move {
        let now = ports.clock.now();
        let Some(m) = load::<Message>(&*ports.store, key).await? else {
            tracing::warn!(pk = %key.pk, sk = %key.sk, "queued message not found");
            return Ok(Decision::Done(Claim::NotOurs));
        };
        if m.item.claim_lapsed(now) {
            let started = m.item.lease_until.map_or(now, |l| l - LEASE);
            settle_later(ports, &m, started).await?;
            return Ok(Decision::Done(Claim::NotOurs));
        }
        if let (MessageStatus::Sending, Some(lease)) = (m.item.status, m.item.lease_until) {
            return Ok(Decision::Done(Claim::Held((lease - now).unsigned_abs())));
        }
        if m.item.status != MessageStatus::Queued {
            return Ok(Decision::Done(Claim::NotOurs));
        }
        let mut next = m.item.clone();
        next.status = MessageStatus::Sending;
        next.lease_until = Some(now + LEASE);
        next.attempts += 1;
        let plan = Plan::of(vec![put_versioned(Item::Message(next.clone()), Some(m.version))]);
        Ok(Decision::Commit(plan, Claim::Taken(Box::new(next), m.version + 1)))
    })
    .await
}

/// The Graph API may have taken the message but we cannot know: it stays `sending` (no lease)
/// until a status webhook settles it, or `DELIVERY_DEADLINE` after `started` fails it as
/// `delivery_unknown`. At most once to the contact: it is never sent again blindly.
async fn settle_later(ports: &Ports, seen: &Versioned<Message>, started: time::OffsetDateTime) -> Result<()> {
    let key = &Key::message(&seen.item.conversation_id, &seen.item.id);
    let mut first = Some(seen.clone());
    execute(ports, || {
        let known = first.take();
        async move {
            let current = known_or_load(ports, key, known).await?;
            if current.item.status != MessageStatus::Sending || current.item.lease_until.is_none() {
                return Ok(Decision::Done(false));
            }
            let mut next = current.item.clone();
            next.lease_until = None;
            let timer =
                Timer::DeliveryDeadline { conversation_id: next.conversation_id.clone(), message_id: next.id.clone() };
            let plan = Plan {
                writes: vec![put_versioned(Item::Message(next), Some(current.version))],
                effects: vec![Effect::Timer { timer, at: started + DELIVERY_DEADLINE }],
                ..Plan::default()
            };
            Ok(Decision::Commit(plan, true))
        }
    })
    .await?
    .then(|| tracing::warn!(message_id = %seen.item.id, "no answer from the Graph API: waiting for a status"));
    Ok(())
}

/// The message as this attempt already knows it (the first try), or as stored (a retry).
async fn known_or_load(ports: &Ports, key: &Key, known: Option<Versioned<Message>>) -> Result<Versioned<Message>> {
    match known {
        Some(v) => Ok(v),
        None => load::<Message>(&*ports.store, key).await?.ok_or(UseCaseError::NotFound),
    }
}

/// The delivery deadline of a send whose answer was lost: still unsettled, it fails as
/// `delivery_unknown` with a notice, so the employee decides whether to send it again.
pub(crate) async fn delivery_deadline(
    ports: &Ports,
    conversation_id: &ConversationId,
    message_id: &MessageId,
) -> Result<()> {
    let key = Key::message(conversation_id, message_id);
    let failure = Failure { code: None, http_status: None, detail: "no answer from WhatsApp".into() };
    match load::<Message>(&*ports.store, &key).await? {
        Some(m) if m.item.status == MessageStatus::Sending && m.item.lease_until.is_none() => {
            apply_outcome(ports, &key, &failure, Outcome::Unknown).await.map(|_| ())
        }
        _ => Ok(()),
    }
}

/// `CONNECTOR_HELD_TTL` after a message was held: if it still is, it fails as `held_expired`.
pub(crate) async fn held_expired(
    ports: &Ports,
    conversation_id: &ConversationId,
    message_id: &MessageId,
) -> Result<()> {
    let key = Key::message(conversation_id, message_id);
    let failure = Failure { code: None, http_status: None, detail: "held too long".into() };
    match load::<Message>(&*ports.store, &key).await? {
        Some(m) if m.item.status == MessageStatus::Pending => {
            apply_outcome(ports, &key, &failure, Outcome::HeldExpired).await.map(|_| ())
        }
        _ => Ok(()),
    }
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
    let body = match &m.body {
        Body::Text { .. } => OutboundBody::Text { body: m.body.as_sent()? },
        Body::Template(t) => OutboundBody::Template(t.clone()),
        Body::Image { .. } => OutboundBody::Image { media_id: meta_media?, caption: m.body.as_sent() },
        Body::Reaction(_) | Body::Notice(_) => return None,
    };
    Some(OutboundRequest { to, body, callback: format!("{}/{}", m.conversation_id, m.id) })
}

pub(crate) async fn record_accepted(
    ports: &Ports,
    key: &Key,
    claimed: Message,
    version: u64,
    wamid: String,
) -> Result<()> {
    let link = Item::Wamid {
        wamid: wamid.clone(),
        conversation_id: claimed.conversation_id.clone(),
        message_id: claimed.id.clone(),
    };
    // The link first, on its own (a plain write, half the units of one in a transaction): a
    // crash before the message is written leaves a claim that lapses and is settled by its
    // status, which the link (or the callback data) already leads to.
    let link = &link;
    execute(ports, || async move {
        Ok(Decision::Commit(Plan::of(vec![Write::Put { item: link.clone(), cond: crate::ports::Cond::Always }]), ()))
    })
    .await?;
    let wamid = &wamid;
    let id = claimed.id.clone();
    let mut first = Some(Versioned { item: claimed, version });
    execute(ports, || {
        let known = first.take();
        async move {
            let current = known_or_load(ports, key, known).await?;
            let mut next = current.item.clone();
            if next.status == MessageStatus::Sending {
                next.status = MessageStatus::Accepted;
            }
            next.wamid = Some(wamid.clone());
            next.lease_until = None;
            Ok(Decision::Commit(Plan::of(vec![put_versioned(Item::Message(next), Some(current.version))]), ()))
        }
    })
    .await?;
    tracing::info!(message_id = %id, %wamid, "accepted by WhatsApp");
    Ok(())
}

/// How a send ended badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Meta refused it, at once (`in_queue`: the failing queue message is still ours to retry)
    /// or later in a `failed` status (a retry is queued anew).
    Refused { in_queue: bool },
    /// No answer and no status within the deadline: failed as `delivery_unknown`, never retried.
    Unknown,
    /// Held past `CONNECTOR_HELD_TTL`: failed as `held_expired`, never sent.
    HeldExpired,
}

/// Applies a failure to the message under `key`: retry, hold again, or fail with notices.
pub(crate) async fn apply_outcome(
    ports: &Ports,
    key: &Key,
    failure: &Failure,
    outcome: Outcome,
) -> Result<Disposition> {
    execute(ports, || async move {
        let now = ports.clock.now();
        let msg = load::<Message>(&*ports.store, key).await?.ok_or(UseCaseError::NotFound)?;
        let conv = load::<Conversation>(&*ports.store, &Key::conversation(&msg.item.conversation_id))
            .await?
            .ok_or(UseCaseError::NotFound)?;
        let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
        let mut plan = match outcome {
            Outcome::Unknown => {
                plan_given_up(&conv.item, &contact.item, &msg.item, failure, GivenUp::DeliveryUnknown, now)
            }
            Outcome::HeldExpired if msg.item.status != MessageStatus::Pending => {
                return Ok(Decision::Done(Disposition::Done))
            }
            Outcome::HeldExpired => {
                plan_given_up(&conv.item, &contact.item, &msg.item, failure, GivenUp::HeldExpired, now)
            }
            Outcome::Refused { .. } => {
                plan_failure(&conv.item, &contact.item, &msg.item, failure, &ports.settings, now)
            }
        };
        let in_queue = outcome == Outcome::Refused { in_queue: true };
        if plan.retry_after.is_some() && !in_queue {
            plan.msg.generation += 1;
            plan.to_queue.insert(0, plan.msg.clone());
        }
        let disposition = match plan.retry_after {
            Some(after) if in_queue => Disposition::RetryAfter(after),
            _ => Disposition::Done,
        };
        Ok(Decision::Commit(failure_commit(&conv, &contact, &msg, &plan), disposition))
    })
    .await
}

/// The commit of a failure plan, under the versions read.
pub(crate) fn failure_commit(
    conv: &Versioned<Conversation>,
    contact: &Versioned<Contact>,
    msg: &Versioned<Message>,
    plan: &FailurePlan,
) -> Plan {
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
    let mut effects = dispatch_effects(&plan.to_queue);
    effects.extend(plan.timers.iter().map(|(timer, at)| Effect::Timer { timer: timer.clone(), at: *at }));
    Plan { writes, effects, ..Plan::default() }
}
