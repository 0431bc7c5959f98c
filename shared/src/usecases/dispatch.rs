//! The outbound queue's consumer. A thread's queued messages go out in id (= commit) order: a
//! job first sends those older than its own that are still queued (their queue messages may
//! come after it), then its own. Each is claimed (`queued → sending`) and re-checked at that
//! moment: a contact who opted out since gets nothing, a window that closed holds free text
//! again, older held messages keep their place, an opt-in request waits a day after the last
//! one. Then the Graph API call, the wamid, or the failure handed to `outcomes`. A rate limit
//! makes the message wait (`RetryAfter`), and every later one with it: the queue runner applies
//! the wait to this record, and sends its group's later records again behind it.

use time::Duration;

use crate::domain::message::SystemPurpose;
use crate::domain::{Body, ConsentState, Contact, Conversation, Message, MessageKind, MessageStatus};
use crate::meta::graph::{OutboundBody, OutboundRequest, Recipient};
use crate::plant::{self, Bug};
use crate::ports::{Cond, Disposition, Effect, Item, Key, OutboundJob, Timer, Versioned, Write};

use super::commit::{execute, Decision, Plan};
use super::outcomes::{plan_failure, plan_given_up, plan_hold_again, Failure, FailurePlan, GivenUp};
use super::{dispatch_effects, load, load_contact, put_versioned, Ports, Result, Settings, UseCaseError};
use crate::domain::ids::{new_ulid, ConversationId, MessageId};

/// How long a claim holds; a claim older than this lapsed (the process died mid-call).
const LEASE: Duration = Duration::seconds(60);

/// How long a send whose answer was lost waits for a status webhook before it fails.
pub const DELIVERY_DEADLINE: Duration = Duration::minutes(15);

/// Messages one job sends at most: its own and those queued before it in its thread.
const MAX_IN_ONE_GO: usize = 64;

/// What dispatching one message came to.
enum Step {
    /// Sent, failed, held again, or not ours to send: on to the next.
    Next,
    /// It must wait this long, and everything after it with it.
    Wait(std::time::Duration),
}

/// Sends the thread's outgoing queue in order (it holds every message on its way to Meta,
/// oldest first), up to and including the job's own message: requests committed in one order
/// can reach the queue in the other (their publishes race, one waits for the sweep, held
/// messages are released together), and the older always goes first.
pub async fn dispatch(ports: &Ports, job: &OutboundJob) -> Result<Disposition> {
    let conv = &job.conversation_id;
    let mut own_seen = false;
    if !plant::active(Bug::NoLookBack) {
        for _ in 0..MAX_IN_ONE_GO {
            let next = ports.store.queued(conv, 1).await?.into_iter().next();
            let Some(id) = next.filter(|id| *id <= job.message_id) else { break };
            own_seen |= id == job.message_id;
            if let Step::Wait(d) = dispatch_one(ports, &Key::message(conv, &id), true).await? {
                return Ok(Disposition::RetryAfter(d));
            }
        }
    }
    // Its own message, when the queue did not hold it (a job written before the queue was).
    if !own_seen {
        if let Step::Wait(d) = dispatch_one(ports, &Key::message(conv, &job.message_id), false).await? {
            return Ok(Disposition::RetryAfter(d));
        }
    }
    Ok(Disposition::Done)
}

async fn dispatch_one(ports: &Ports, key: &Key, queued: bool) -> Result<Step> {
    let token = new_ulid();
    let (claimed, version, conv, contact) = match claim(ports, key, &token, queued).await? {
        Claim::Taken { msg, version, conv, contact } => (*msg, version, conv, contact),
        Claim::Wait(d) => return Ok(Step::Wait(d)),
        Claim::NotOurs => return Ok(Step::Next),
    };
    // The last look before the Graph API call: a STOP committed since the claim read the
    // contact means this message never leaves.
    let contact = load_contact(&*ports.store, &contact.key).await?.item;
    if opted_out(&claimed, &contact) {
        let failure =
            Failure { code: None, http_status: None, detail: "the contact opted out before it was sent".into() };
        apply_outcome(ports, key, &failure, Outcome::OptedOut).await?;
        return Ok(Step::Next);
    }
    let mut meta_media = None;
    let mut claimed = claimed;
    if let Some(id) = claimed.body.media_id().map(str::to_string) {
        match super::media::meta_id(ports, &id).await? {
            Ok(meta) => meta_media = Some(meta),
            Err(_) if plant::active(Bug::CaptionWithoutFile) && claimed.body.words().is_some() => {
                let text = claimed.body.words().unwrap_or_default().to_string();
                claimed.body = Body::Text { text, prefix: None };
            }
            Err(e) => {
                tracing::warn!(message_id = %claimed.id, error = %e.message, "picture upload refused");
                let failure = Failure { code: e.code, http_status: e.http_status, detail: e.message };
                return refused(ports, key, &failure).await;
            }
        }
    }
    let Some(req) = request_for(&claimed, &conv, &contact, meta_media) else {
        tracing::error!(message_id = %claimed.id, "message has nothing to send");
        return Ok(Step::Next);
    };
    match ports.whatsapp.send(&req).await {
        Ok(wamid) => {
            record_accepted(ports, key, claimed, version, wamid).await?;
            Ok(Step::Next)
        }
        Err(e) if e.lost && !plant::active(Bug::RetryLostAnswer) => {
            let started = claimed.lease_until.map_or(ports.clock.now(), |l| l - LEASE);
            settle_later(ports, &Versioned { item: claimed, version }, started).await?;
            Ok(Step::Next)
        }
        Err(e) => {
            tracing::warn!(message_id = %claimed.id, code = ?e.code, http_status = ?e.http_status, error = %e.message, "Graph API refused a send");
            let failure = Failure { code: e.code, http_status: e.http_status, detail: e.message };
            refused(ports, key, &failure).await
        }
    }
}

/// Meta refused the send at once: retry, wait, hold again, or fail, as `outcomes` decides.
async fn refused(ports: &Ports, key: &Key, failure: &Failure) -> Result<Step> {
    Ok(match apply_outcome(ports, key, failure, Outcome::Refused { in_queue: true }).await? {
        Disposition::RetryAfter(d) => Step::Wait(d),
        Disposition::Done => Step::Next,
    })
}

/// What dispatch finds when it goes to take a message.
#[allow(clippy::large_enum_variant)] // one, moved once
enum Claim {
    /// Ours to send, at this version, to this thread's contact as read.
    Taken { msg: Box<Message>, version: u64, conv: Conversation, contact: Contact },
    /// Not ours to send (already sent, held again, failed, gone, or settling).
    NotOurs,
    /// Another attempt holds it, or a rate limit's backoff runs: look again after this long.
    Wait(std::time::Duration),
}

/// What a claim decides from the message, its thread and its contact as they are now (pure).
#[derive(Debug)]
pub enum ClaimPlan {
    /// Take it for this attempt: the message as claimed, and the contact if the claim moves it.
    Take { msg: Box<Message>, contact: Option<Box<Contact>> },
    /// Not to be sent: failed, or held again.
    Settle(Box<FailurePlan>),
    /// An opt-in request when another left less than a day ago: dropped, quietly.
    Superseded(Box<Message>),
}

/// Whether `contact` no longer takes `msg`: they opted out, and it is not the confirmation of
/// that.
fn opted_out(msg: &Message, contact: &Contact) -> bool {
    contact.consent == ConsentState::OptedOut
        && msg.system != Some(SystemPurpose::OptOutConfirmation)
        && !plant::active(Bug::NoConsentRecheck)
}

/// Re-checks a queued message at the moment it would go: a contact who opted out since gets
/// nothing (but the confirmation of their opt-out); an employee's message held too long has
/// expired; free text finds the window closed, or older messages of its thread held, and is
/// held again in its place; an opt-in request waits a day after the last one that left.
pub fn plan_claim(
    msg: &Message,
    conv: &Conversation,
    contact: &Contact,
    held_before: bool,
    settings: &Settings,
    now: time::OffsetDateTime,
    token: &str,
) -> ClaimPlan {
    let employee = msg.system.is_none();
    let opted_out = opted_out(msg, contact);
    let given_up = |why, detail: &str| {
        let failure = Failure { code: None, http_status: None, detail: detail.into() };
        plan_given_up(conv, contact, msg, &failure, why, now).map(|p| ClaimPlan::Settle(Box::new(p)))
    };
    if opted_out {
        if let Some(p) = given_up(GivenUp::OptedOut, "the contact opted out before it was sent") {
            return p;
        }
    }
    if employee && now >= msg.created_at + settings.held_ttl {
        if let Some(p) = given_up(GivenUp::HeldExpired, "queued too long") {
            return p;
        }
    }
    let free_text = msg.body.kind() != MessageKind::Template;
    let held_before = held_before && !plant::active(Bug::NewTextOvertakesHeld);
    if employee && free_text && (held_before || !contact.window_open(now)) {
        return ClaimPlan::Settle(Box::new(plan_hold_again(conv, contact, msg, settings, now)));
    }
    let mut k = None;
    if msg.system == Some(SystemPurpose::OptinRequest) {
        let recent = contact.optin_dispatched_at.is_some_and(|at| now < at + crate::domain::OPTIN_RESEND_AFTER);
        let unchecked = plant::active(Bug::OptinEveryThread) || plant::active(Bug::OptinRetryUnchecked);
        if recent && !unchecked {
            let mut dropped = msg.clone();
            dropped.status = MessageStatus::Failed;
            dropped.status_at.failed.get_or_insert(now);
            dropped.error = Some(crate::domain::message::MessageError {
                code: "superseded".into(),
                detail: "another opt-in request reached the contact less than a day ago".into(),
                reason: None,
            });
            return ClaimPlan::Superseded(Box::new(dropped));
        }
        let mut c = contact.clone();
        c.optin_dispatched_at = Some(now);
        k = Some(Box::new(c));
    }
    let mut next = msg.clone();
    next.status = MessageStatus::Sending;
    next.lease_until = Some(now + LEASE);
    next.attempts += 1;
    next.claim = Some(token.to_string());
    ClaimPlan::Take { msg: Box::new(next), contact: k }
}

/// Takes the message for this attempt (`token`), after `plan_claim`'s re-checks, under the
/// contact's version as read. A claim that lapsed (the process died, or the answer never came,
/// mid-call) is never retaken: the earlier attempt may have reached Meta, so the message waits
/// for a status webhook or its delivery deadline instead. `queued`: the thread's outgoing queue
/// named it; a message in no state to be there leaves it.
async fn claim(ports: &Ports, key: &Key, token: &str, queued: bool) -> Result<Claim> {
    let not_ours = |conv: &ConversationId, id: &MessageId| {
        let gone = Write::Delete { key: Key::queued(conv, id), cond: Cond::Always };
        Ok(match queued {
            true => Decision::Commit(Plan::of(vec![gone]), Claim::NotOurs),
            false => Decision::Done(Claim::NotOurs),
        })
    };
    execute(ports, || async move {
        let now = ports.clock.now();
        let Some(m) = load::<Message>(&*ports.store, key).await? else {
            tracing::warn!(pk = %key.pk, sk = %key.sk, "queued message not found");
            let (conv, id) = (key.pk.trim_start_matches("CONV#"), key.sk.trim_start_matches("MSG#"));
            return not_ours(&ConversationId::from(conv), &MessageId::from(id));
        };
        let mine = m.item.claim.as_deref() == Some(token) && m.item.lease_until.is_some();
        if m.item.status == MessageStatus::Sending && mine {
            // This attempt's own claim, written by a submission whose answer was lost.
            let (conv, contact) = thread_of(ports, &m.item).await?;
            return Ok(Decision::Done(Claim::Taken {
                msg: Box::new(m.item),
                version: m.version,
                conv: conv.item,
                contact: contact.item,
            }));
        }
        if m.item.claim_lapsed(now) {
            let started = m.item.lease_until.map_or(now, |l| l - LEASE);
            settle_later(ports, &m, started).await?;
            return Ok(Decision::Done(Claim::NotOurs));
        }
        if let (MessageStatus::Sending, Some(lease)) = (m.item.status, m.item.lease_until) {
            return Ok(Decision::Done(Claim::Wait((lease - now).unsigned_abs())));
        }
        if m.item.status != MessageStatus::Queued {
            return not_ours(&m.item.conversation_id, &m.item.id);
        }
        if let Some(at) = m.item.not_before.filter(|at| *at > now) {
            return Ok(Decision::Done(Claim::Wait((at - now).unsigned_abs())));
        }
        let (conv, contact) = thread_of(ports, &m.item).await?;
        let held_before = conv.item.pending_count > 0
            && ports.store.held(&conv.item.id, 1).await?.first().is_some_and(|h| {
                matches!(&h.item, Item::Held { message_id, .. } if *message_id < m.item.id)
            });
        let plan = plan_claim(&m.item, &conv.item, &contact.item, held_before, &ports.settings, now, token);
        let (plan, claimed) = match plan {
            ClaimPlan::Take { msg, contact: moved } => {
                // One write, the message's: its consent is read again once it is claimed.
                let mut writes = vec![put_versioned(Item::Message((*msg).clone()), Some(m.version))];
                let mut contact_now = contact.item.clone();
                if let Some(k) = moved {
                    contact_now = (*k).clone();
                    writes.push(put_versioned(Item::Contact(*k), Some(contact.version)));
                }
                let taken = Claim::Taken { msg, version: m.version + 1, conv: conv.item.clone(), contact: contact_now };
                (Plan::of(writes), taken)
            }
            ClaimPlan::Settle(failure) => {
                tracing::info!(message_id = %m.item.id, status = ?failure.msg.status, "re-checked at dispatch: not sent");
                (failure_commit(&conv, &contact, &m, &failure), Claim::NotOurs)
            }
            ClaimPlan::Superseded(msg) => {
                let out_of_queue = Write::Delete { key: Key::queued(&msg.conversation_id, &msg.id), cond: Cond::Always };
                (Plan::of(vec![put_versioned(Item::Message(*msg), Some(m.version)), out_of_queue]), Claim::NotOurs)
            }
        };
        if plant::active(Bug::NoClaim) {
            if let Claim::Taken { .. } = claimed {
                return Ok(Decision::Done(claimed));
            }
        }
        Ok(Decision::Commit(plan, claimed))
    })
    .await
}

/// The thread a message is in, and its contact.
async fn thread_of(ports: &Ports, m: &Message) -> Result<(Versioned<Conversation>, Versioned<Contact>)> {
    let conv = load::<Conversation>(&*ports.store, &Key::conversation(&m.conversation_id))
        .await?
        .ok_or(UseCaseError::NotFound)?;
    let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
    Ok((conv, contact))
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
            next.claim = None;
            let timer =
                Timer::DeliveryDeadline { conversation_id: next.conversation_id.clone(), message_id: next.id.clone() };
            let out_of_queue = Write::Delete { key: Key::queued(&next.conversation_id, &next.id), cond: Cond::Always };
            let plan = Plan {
                writes: vec![put_versioned(Item::Message(next), Some(current.version)), out_of_queue],
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
    let unchecked = plant::active(Bug::DeadlineWithoutRecheck);
    match load::<Message>(&*ports.store, &key).await? {
        Some(m) if unchecked || (m.item.status == MessageStatus::Sending && m.item.lease_until.is_none()) => {
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
        Body::File { kind, facts, .. } => OutboundBody::File {
            kind: *kind,
            media_id: meta_media?,
            caption: m.body.as_sent(),
            filename: facts.filename.clone(),
        },
        Body::Location(l) => OutboundBody::Location(l.clone()),
        // What only contacts send, and what never leaves.
        Body::Contacts(_) | Body::Interactive(_) | Body::Unsupported { .. } | Body::Reaction(_) | Body::Notice(_) => {
            return None
        }
    };
    Some(OutboundRequest {
        to,
        body,
        callback: format!("{}/{}", m.conversation_id, m.id),
        reply_to: m.context_wamid.clone(),
    })
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
        Ok(Decision::Commit(Plan::of(vec![Write::Put { item: link.clone(), cond: Cond::Always }]), ()))
    })
    .await?;
    let wamid = &wamid;
    let id = claimed.id.clone();
    let claimed_conv = claimed.conversation_id.clone();
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
            next.claim = None;
            Ok(Decision::Commit(Plan::of(vec![put_versioned(Item::Message(next), Some(current.version))]), ()))
        }
    })
    .await?;
    // Out of the outgoing queue, on its own (a plain delete: half the units of a second item in
    // the message's write). Were it lost, dispatch drops the marker of a settled message when
    // it comes to it.
    let conv = &claimed_conv;
    let out_of_queue = Write::Delete { key: Key::queued(conv, &id), cond: Cond::Always };
    ports.store.transact(vec![out_of_queue]).await?;
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
    /// Claimed, then found its contact opted out: failed as `opted_out`, never sent.
    OptedOut,
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
        let (conv, contact) = thread_of(ports, &msg.item).await?;
        let given_up = |why| plan_given_up(&conv.item, &contact.item, &msg.item, failure, why, now);
        let mut plan = match outcome {
            Outcome::Unknown => given_up(GivenUp::DeliveryUnknown),
            Outcome::HeldExpired => given_up(GivenUp::HeldExpired),
            Outcome::OptedOut => given_up(GivenUp::OptedOut),
            Outcome::Refused { .. } => {
                Some(plan_failure(&conv.item, &contact.item, &msg.item, failure, &ports.settings, now))
            }
        };
        // Settled meanwhile (a status came first, a release moved it on): nothing to do.
        let Some(plan) = plan.as_mut() else { return Ok(Decision::Done(Disposition::Done)) };
        let in_queue = outcome == Outcome::Refused { in_queue: true };
        if plan.retry_after.is_some() && !in_queue {
            plan.msg.generation += 1;
            plan.to_queue.insert(0, plan.msg.clone());
        }
        let disposition = match plan.retry_after {
            Some(after) if in_queue => Disposition::RetryAfter(after),
            _ => Disposition::Done,
        };
        Ok(Decision::Commit(failure_commit(&conv, &contact, &msg, plan), disposition))
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
        writes.extend(super::thread_link_change(&conv.item, &plan.conv));
    }
    if plan.contact != contact.item {
        writes.push(put_versioned(Item::Contact(plan.contact.clone()), Some(contact.version)));
    }
    writes.extend(plan.writes.iter().cloned());
    // Settled: out of its thread's outgoing queue (a retry queued anew joins it again).
    let requeued = plan.to_queue.iter().any(|m| m.id == plan.msg.id);
    if plan.msg.status != MessageStatus::Queued && !requeued {
        writes.push(Write::Delete { key: Key::queued(&plan.msg.conversation_id, &plan.msg.id), cond: Cond::Always });
    }
    writes
        .extend(plan.to_queue.iter().filter(|m| m.id != plan.msg.id).map(|m| super::put_new(Item::Message(m.clone()))));
    let mut effects = dispatch_effects(&plan.to_queue);
    effects.extend(plan.timers.iter().map(|(timer, at)| Effect::Timer { timer: timer.clone(), at: *at }));
    Plan { writes, effects, archive: plan.archive.clone(), ..Plan::default() }
}
