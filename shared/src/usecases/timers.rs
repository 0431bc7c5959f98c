//! One-time timers: the window's expiry and the opt-in retry. Both re-check the state when
//! they fire, so a stale or repeated timer is harmless.

use crate::domain::message::SystemPurpose;
use crate::domain::notice::{Notice, NoticeCode};
use crate::domain::{ConsentState, Contact, Conversation, WindowTimer};
use crate::ports::{Item, Key, StoreError, Timer};

use super::{
    contact_threads, enqueue_all, load, load_contact, notice_message, put_new, put_versioned, system_template, Ports,
    Result, UseCaseError, MAX_CONFLICT_RETRIES,
};

pub async fn fire(ports: &Ports, timer: &Timer) -> Result<()> {
    match timer {
        Timer::WindowExpiry { contact_key } => window_expired(ports, contact_key).await,
        Timer::OptinRetry { conversation_id } => optin_retry(ports, conversation_id).await,
    }
}

/// The window closed: the contact's threads are paused (once per pause) and told so.
async fn window_expired(ports: &Ports, contact_key: &str) -> Result<()> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let now = ports.clock.now();
        let Some(contact) = load::<Contact>(&*ports.store, &Key::contact(contact_key)).await? else {
            return Ok(());
        };
        let mut k = contact.item.clone();
        match k.window_timer_fired(now) {
            WindowTimer::Nothing => return Ok(()),
            WindowTimer::Rearm(at) => {
                // Armed before the write: a timer with no record is harmless, the reverse is not.
                ports.scheduler.schedule(&Timer::WindowExpiry { contact_key: contact_key.to_string() }, at).await?;
                match ports.store.transact(vec![put_versioned(Item::Contact(k), Some(contact.version))]).await {
                    Ok(()) => return Ok(()),
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            WindowTimer::Paused => {}
        }
        let mut writes = vec![put_versioned(Item::Contact(k.clone()), Some(contact.version))];
        if k.consent == ConsentState::OptedIn {
            for t in contact_threads(&*ports.store, contact_key).await? {
                writes.push(put_new(Item::Message(notice_message(
                    &t.item.id,
                    Notice::to_all(NoticeCode::WindowPaused),
                    now,
                ))));
            }
        }
        match ports.store.transact(writes).await {
            Ok(()) => {
                tracing::info!(contact_key, "window closed: threads paused");
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(UseCaseError::Contention)
}

/// 24 hours after a failed opt-in request: send it once more unless answered or closed.
async fn optin_retry(ports: &Ports, conversation_id: &str) -> Result<()> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let now = ports.clock.now();
        let Some(conv) = load::<Conversation>(&*ports.store, &Key::conversation(conversation_id)).await? else {
            return Ok(());
        };
        let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
        if !conv.item.optin_retry_due(&contact.item) {
            return Ok(());
        }
        let mut c = conv.item.clone();
        let optin = system_template(&c, SystemPurpose::OptinRequest, &ports.settings, now);
        c.optin_sent(optin.id.clone(), now);
        let writes =
            vec![put_versioned(Item::Conversation(c), Some(conv.version)), put_new(Item::Message(optin.clone()))];
        match ports.store.transact(writes).await {
            Ok(()) => {
                enqueue_all(&*ports.queue, &[&optin]).await?;
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(UseCaseError::Contention)
}
