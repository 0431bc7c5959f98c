//! Status webhooks: sent, delivered, read move a message forward (never back), each with Meta's
//! time; failed hands the message to `outcomes`.

use time::OffsetDateTime;

use crate::domain::{Contact, Conversation, Message, ReceiptOutcome};
use crate::meta::webhook::StatusEvent;
use crate::ports::{Item, Key, StoreError, Write};

use super::dispatch::commit_plan;
use super::outcomes::{plan_failure, Failure};
use super::{load, load_contact, put_new, put_versioned, Ports, Result, UseCaseError, MAX_CONFLICT_RETRIES};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptResult {
    Applied,
    /// This (wamid, status) was applied before.
    Duplicate,
    /// No message of ours has this wamid (yet: the status may have overtaken the send's record).
    UnknownWamid,
}

pub(crate) fn dedupe_mark(id: String, now: OffsetDateTime, ports: &Ports) -> Write {
    put_new(Item::Dedupe { id, expires_at: now + ports.settings.dedupe_ttl })
}

/// One status webhook. The message's own `status_at` says which (wamid, status) pairs were
/// applied, for as long as the message exists, so a redelivery is found without a separate
/// dedupe item, and a status costs one conditional write.
pub async fn apply_status(ports: &Ports, ev: &StatusEvent) -> Result<ReceiptResult> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let now = ports.clock.now();
        let Some(link) = ports.store.get(&Key::wamid(&ev.wamid)).await? else {
            return Ok(ReceiptResult::UnknownWamid);
        };
        let Item::Wamid { conversation_id, message_id, .. } = link.item else {
            return Err(StoreError::Corrupt("wamid item of another kind".into()).into());
        };
        let key = Key::message(&conversation_id, &message_id);
        let msg = load::<Message>(&*ports.store, &key).await?.ok_or(UseCaseError::NotFound)?;
        let mut next = msg.item.clone();
        let outcome = next.apply_receipt(&ev.wamid, ev.status, ev.timestamp);
        let committed = match outcome {
            ReceiptOutcome::Ignored => return Ok(ReceiptResult::Duplicate),
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
                commit_plan(ports, &conv, &contact, &msg, &plan).await?
            }
            ReceiptOutcome::Advanced | ReceiptOutcome::TimeRecorded => {
                match ports.store.transact(vec![put_versioned(Item::Message(next), Some(msg.version))]).await {
                    Ok(()) => true,
                    Err(StoreError::Conflict { .. }) => false,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if committed {
            tracing::info!(message_id = %message_id, status = ev.status.as_str(), ?outcome, "receipt applied");
            return Ok(ReceiptResult::Applied);
        }
    }
    Err(UseCaseError::Contention)
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
    for _ in 0..MAX_CONFLICT_RETRIES {
        let now = ports.clock.now();
        let Some(contact) = load::<Contact>(&*ports.store, &Key::contact(wa_id)).await? else {
            return Ok(());
        };
        let mut k = contact.item.clone();
        if !k.marketing_opt_out(now) {
            return Ok(());
        }
        let mut writes = vec![put_versioned(Item::Contact(k), Some(contact.version))];
        for conv in super::contact_threads(&*ports.store, wa_id).await? {
            writes.push(put_new(Item::Message(super::notice_message(
                &conv.item.id,
                crate::domain::Notice::to_all(crate::domain::NoticeCode::OptinRejected),
                now,
            ))));
        }
        match ports.store.transact(writes).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(UseCaseError::Contention)
}
