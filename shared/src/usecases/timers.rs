//! One-time timers: the window's expiry and the reminder before it, the opt-in retry, a held
//! message's expiry; and the outbox sweep, which a
//! recurring schedule fires on AWS. All re-check the state when they fire, so a stale or
//! repeated timer is harmless.

use crate::domain::message::SystemPurpose;
use crate::domain::notice::{Notice, NoticeKind};
use time::OffsetDateTime;

use crate::domain::contact::Reminder;
use crate::domain::conversation::OptinRetry;
use crate::domain::{ConsentState, Contact, Conversation, WindowTimer};
use crate::ports::{Effect, Item, Key, Timer};

use super::commit::{execute, Decision, Plan};
use super::{
    contact_threads, dispatch_effects, load, load_contact, put_new, put_versioned, system_template, Ports, Result,
    Settings,
};
use crate::domain::ids::ConversationId;

pub async fn fire(ports: &Ports, timer: &Timer) -> Result<()> {
    match timer {
        Timer::WindowExpiry { contact_key } => window_expired(ports, contact_key).await,
        Timer::OptinRetry { conversation_id } => optin_retry(ports, conversation_id).await,
        Timer::DeliveryDeadline { conversation_id, message_id } => {
            super::dispatch::delivery_deadline(ports, conversation_id, message_id).await
        }
        Timer::OutboxSweep => super::relay::sweep(ports).await.map(|_| ()),
        Timer::HeldExpiry { conversation_id, message_id } => {
            super::dispatch::held_expired(ports, conversation_id, message_id).await
        }
        Timer::WindowReminder { contact_key } => window_reminder(ports, contact_key).await,
        Timer::Export { id } => super::export::run(ports, id).await,
        Timer::RetentionSweep => super::retention::sweep(ports).await.map(|_| ()),
    }
}

/// The timers a window ending at `until` needs: its expiry, and the reminder before it.
pub(crate) fn window_timers(settings: &Settings, contact_key: &str, until: OffsetDateTime) -> Vec<Effect> {
    let mut out =
        vec![Effect::Timer { timer: Timer::WindowExpiry { contact_key: contact_key.to_string() }, at: until }];
    if settings.window_reminder.is_positive() {
        let timer = Timer::WindowReminder { contact_key: contact_key.to_string() };
        out.push(Effect::Timer { timer, at: until - settings.window_reminder });
    }
    out
}

/// Shortly before the window closes: `window_closing` to each of the contact's open threads,
/// once per window.
async fn window_reminder(ports: &Ports, contact_key: &str) -> Result<()> {
    execute(ports, || async move {
        let now = ports.clock.now();
        let Some(contact) = load::<Contact>(&*ports.store, &Key::contact(contact_key)).await? else {
            return Ok(Decision::Done(()));
        };
        let mut k = contact.item.clone();
        let mut plan = Plan::default();
        match k.reminder_fired(ports.settings.window_reminder, now) {
            Reminder::Nothing => return Ok(Decision::Done(())),
            Reminder::Rearm(at) => {
                let timer = Timer::WindowReminder { contact_key: contact_key.to_string() };
                plan.effects.push(Effect::Timer { timer, at });
            }
            Reminder::Remind => {
                let threads: Vec<ConversationId> =
                    contact_threads(&*ports.store, contact_key).await?.into_iter().map(|t| t.item.id).collect();
                plan.effects.extend(Effect::notices(threads, Notice::to_all(NoticeKind::WindowClosing), None));
            }
        }
        plan.writes.push(put_versioned(Item::Contact(k), Some(contact.version)));
        Ok(Decision::Commit(plan, ()))
    })
    .await
}

/// The window closed: the contact's threads are paused (once per pause) and told so, each by
/// its own commit through the outbox.
async fn window_expired(ports: &Ports, contact_key: &str) -> Result<()> {
    execute(ports, || async move {
        let now = ports.clock.now();
        let Some(contact) = load::<Contact>(&*ports.store, &Key::contact(contact_key)).await? else {
            return Ok(Decision::Done(()));
        };
        let mut k = contact.item.clone();
        let mut plan = Plan::default();
        match k.window_timer_fired(now) {
            WindowTimer::Nothing => return Ok(Decision::Done(())),
            WindowTimer::Rearm(at) => plan.effects.extend(window_timers(&ports.settings, contact_key, at)),
            WindowTimer::Paused => {
                if k.consent == ConsentState::OptedIn {
                    let threads: Vec<ConversationId> =
                        contact_threads(&*ports.store, contact_key).await?.into_iter().map(|t| t.item.id).collect();
                    plan.effects.extend(Effect::notices(threads, Notice::to_all(NoticeKind::WindowPaused), None));
                }
            }
        }
        plan.writes.push(put_versioned(Item::Contact(k), Some(contact.version)));
        Ok(Decision::Commit(plan, ()))
    })
    .await
}

/// 24 hours after a failed opt-in request: send it once more unless answered, closed, retried
/// already, or the contact was asked from another thread within the day (then at the day's
/// end). The retry moves the contact's last request with it, in the same commit, so a timer
/// that fires twice (Scheduler and Lambda deliver at least once) sends once.
async fn optin_retry(ports: &Ports, conversation_id: &ConversationId) -> Result<()> {
    execute(ports, || async move {
        let now = ports.clock.now();
        let Some(conv) = load::<Conversation>(&*ports.store, &Key::conversation(conversation_id)).await? else {
            return Ok(Decision::Done(()));
        };
        let contact = load_contact(&*ports.store, &conv.item.contact_key).await?;
        let due = match crate::plant::active(crate::plant::Bug::OptinRetryUnchecked) {
            true => OptinRetry::Now,
            false => conv.item.optin_retry_due(&contact.item, now),
        };
        let plan = match due {
            OptinRetry::No => return Ok(Decision::Done(())),
            OptinRetry::At(at) => {
                let timer = Timer::OptinRetry { conversation_id: conversation_id.clone() };
                Plan { effects: vec![Effect::Timer { timer, at }], ..Plan::default() }
            }
            OptinRetry::Now => {
                let (mut c, mut k) = (conv.item.clone(), contact.item.clone());
                let optin = system_template(&c, SystemPurpose::OptinRequest, &ports.settings, now);
                c.optin_sent(optin.id.clone(), now);
                k.optin_requested(now);
                Plan {
                    effects: dispatch_effects([&optin]),
                    writes: vec![
                        put_versioned(Item::Conversation(c), Some(conv.version)),
                        put_versioned(Item::Contact(k), Some(contact.version)),
                        put_new(Item::Message(optin)),
                    ],
                    ..Plan::default()
                }
            }
        };
        Ok(Decision::Commit(plan, ()))
    })
    .await
}
