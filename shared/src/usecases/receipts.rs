//! Status webhooks: sent, delivered, read move a message forward (never back), each with Meta's
//! time; failed hands the message to `outcomes`.

use serde_json::json;

use crate::archive::{ArchiveEvent, ArchiveKind};
use crate::domain::{Contact, Conversation, Message, MessageStatus, ReceiptOutcome, Sender};
use crate::meta::webhook::StatusEvent;
use crate::ports::{Cond, Effect, Item, Key, StoreError, Versioned, Write};

use super::commit::{execute, Decision, Plan};
use super::dispatch::failure_commit;
use super::outcomes::{plan_failure, Failure};
use super::{load, load_contact, put_versioned, Ports, Result, UseCaseError};
use crate::domain::ids::{ConversationId, MessageId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptResult {
    Applied,
    /// This (wamid, status) was applied before.
    Duplicate,
    /// No message of ours has this wamid (yet: the status may have overtaken the send's record).
    UnknownWamid,
}

/// One status webhook. The message's own `status_at` says which (wamid, status) pairs were
/// applied, for as long as the message exists, so a redelivery is found without a separate
/// dedupe item, and a status costs one conditional write.
pub async fn apply_status(ports: &Ports, ev: &StatusEvent) -> Result<ReceiptResult> {
    let applied = execute(ports, || async move {
        let now = ports.clock.now();
        let Some(msg) = find_message(ports, ev).await? else {
            return Ok(Decision::Done(ReceiptResult::UnknownWamid));
        };
        let (conversation_id, message_id) = (msg.item.conversation_id.clone(), msg.item.id.clone());
        // The send's answer is not on the message: lost, or (found by the link dispatch writes
        // first) not recorded yet, maybe never, if dispatch died between the two. The status,
        // which echoes our callback, settles it.
        let learned = msg.item.status == MessageStatus::Sending && msg.item.wamid.is_none();
        let mut next = msg.item.clone();
        if learned {
            next.wamid = Some(ev.wamid.clone());
            next.lease_until = None;
            next.status = MessageStatus::Accepted;
        }
        let outcome = next.apply_receipt(&ev.wamid, ev.status, ev.timestamp);
        let on_record =
            matches!(outcome, ReceiptOutcome::Advanced | ReceiptOutcome::TimeRecorded | ReceiptOutcome::Failed);
        let mut plan = match outcome {
            ReceiptOutcome::Ignored if !learned => return Ok(Decision::Done(ReceiptResult::Duplicate)),
            ReceiptOutcome::Failed => {
                let conv = load::<Conversation>(&*ports.store, &Key::conversation(&conversation_id))
                    .await?
                    .ok_or(UseCaseError::NotFound)?;
                let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
                let failure = failure_of(ev);
                let mut plan = plan_failure(&conv.item, &contact.item, &next, &failure, &ports.settings, now);
                if plan.retry_after.is_some() {
                    plan.msg.generation += 1;
                    plan.to_queue.insert(0, plan.msg.clone());
                }
                if learned {
                    plan.writes.push(wamid_link(ev, &conversation_id, &message_id));
                }
                failure_commit(&conv, &contact, &msg, &plan)
            }
            _ => {
                let mut writes = vec![put_versioned(Item::Message(next), Some(msg.version))];
                if learned {
                    writes.push(wamid_link(ev, &conversation_id, &message_id));
                    writes.push(Write::Delete { key: Key::queued(&conversation_id, &message_id), cond: Cond::Always });
                }
                Plan::of(writes)
            }
        };
        if on_record {
            plan.archive.push(status_event(ev, &conversation_id, &message_id));
        }
        Ok(Decision::Commit(plan, ReceiptResult::Applied))
    })
    .await?;
    if applied == ReceiptResult::Applied {
        tracing::info!(wamid = %ev.wamid, status = ev.status.as_str(), "receipt applied");
    }
    Ok(applied)
}

/// The message a status is about, read. First by the callback data we sent with it,
/// `<conversation>/<message>` (one read): the message, when it has this wamid or none yet (the
/// send's answer was lost, or is not recorded yet). Otherwise by the wamid's link, for a status
/// without our callback.
async fn find_message(ports: &Ports, ev: &StatusEvent) -> Result<Option<Versioned<Message>>> {
    if let Some((conv, msg)) = ev.callback.as_deref().and_then(|c| c.split_once('/')) {
        let key = Key::message(&ConversationId::from(conv), &MessageId::from(msg));
        if let Some(m) = load::<Message>(&*ports.store, &key).await? {
            match m.item.wamid.as_deref() {
                Some(w) if w == ev.wamid => return Ok(Some(m)),
                None if m.item.status == MessageStatus::Sending => return Ok(Some(m)),
                _ => {}
            }
        }
    }
    let Some(link) = ports.store.get(&Key::wamid(&ev.wamid)).await? else {
        return Ok(None);
    };
    let Item::Wamid { conversation_id, message_id, .. } = link.item else {
        return Err(StoreError::Corrupt("wamid item of another kind".into()).into());
    };
    load::<Message>(&*ports.store, &Key::message(&conversation_id, &message_id)).await
}

fn wamid_link(ev: &StatusEvent, conversation_id: &ConversationId, message_id: &MessageId) -> Write {
    Write::Put {
        item: Item::Wamid {
            wamid: ev.wamid.clone(),
            conversation_id: conversation_id.clone(),
            message_id: message_id.clone(),
        },
        cond: crate::ports::Cond::Always,
    }
}

/// A status on the record (CONTRACT.md section 7): what Meta said, at Meta's time, with its
/// error code when it failed.
fn status_event(ev: &StatusEvent, conversation_id: &ConversationId, message_id: &MessageId) -> ArchiveEvent {
    let mut e = super::archive::event(
        conversation_id,
        ArchiveKind::Status,
        Sender::Contact,
        ev.timestamp,
        json!({ "status": ev.status.as_str(), "error_code": ev.errors.first().map(|e| e.code) }),
    );
    e.message_id = Some(message_id.clone());
    e.wamid = Some(ev.wamid.clone());
    e
}

fn failure_of(ev: &StatusEvent) -> Failure {
    let first = ev.errors.first();
    Failure {
        code: first.map(|e| e.code),
        http_status: None,
        detail: first
            .map(|e| match &e.error_data {
                Some(d) if !d.details.is_empty() => d.details.clone(),
                _ => e.message.clone(),
            })
            .unwrap_or_else(|| "failed without an error".into()),
    }
}

/// Meta's `user_preferences` stop: the contact opted out of marketing in WhatsApp itself.
pub async fn marketing_preference(ports: &Ports, wa_id: &str, stop: bool) -> Result<()> {
    if !stop {
        // "resume" re-allows marketing from Meta's side; consent here still needs their "yes".
        return Ok(());
    }
    execute(ports, || async move {
        let now = ports.clock.now();
        let Some(contact) = load::<Contact>(&*ports.store, &Key::contact(wa_id)).await? else {
            return Ok(Decision::Done(()));
        };
        let mut k = contact.item.clone();
        if !k.marketing_opt_out(now) {
            return Ok(Decision::Done(()));
        }
        let mut plan = Plan::of(vec![put_versioned(Item::Contact(k.clone()), Some(contact.version))]);
        let all = super::contact_with_all_threads(&*ports.store, wa_id).await?.map(|(_, t)| t).unwrap_or_default();
        let latest = all.iter().max_by_key(|t| t.item.last_activity_at).map(|t| t.item.id.clone());
        let threads: Vec<ConversationId> = super::open_newest_first(all).into_iter().map(|t| t.item.id).collect();
        let rejected = crate::domain::Notice::to_all(crate::domain::NoticeKind::OptinRejected);
        let event = |thread| super::archive::consent_event(thread, &k, "marketing_opted_out", "user_preferences", now);
        // On the record of each of the contact's open threads (the event is re-addressed to
        // each); with none open, on their latest closed one, in this commit.
        let on_record = threads.first().map(event);
        let carrier = threads.first().or(latest.as_ref());
        if threads.is_empty() {
            plan.archive.extend(carrier.map(event));
        }
        // In the contact's consent history even when no thread carries it.
        plan.writes.push(super::archive::consent_change(&k, "marketing_opted_out", "user_preferences", carrier, now));
        plan.effects.extend(Effect::notices(threads, rejected, on_record));
        Ok(Decision::Commit(plan, ()))
    })
    .await
}
