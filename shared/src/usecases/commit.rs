//! The one way a use case changes anything: a `Plan` (state writes, archive events, effects)
//! committed in ONE atomic transaction. Messages the plan creates are archived with it; the
//! archive records are linked to each thread's chain head, kept on the thread item, which the
//! same transaction moves (conditionally), so a record can be neither lost, skipped nor forked;
//! effects go into the outbox in the same transaction and the relay publishes them after the
//! commit.
//!
//! Not here: deciding what to write (the planners) and retrying (`retry`).

use crate::archive::{link, ArchiveEvent, ArchiveRecord};
use crate::domain::Conversation;
use crate::domain::ConversationId;
use crate::ports::{Cond, Effect, Item, Key, OutboxEntry, StoreError, Versioned, Write};

use super::archive::message_event;
use super::{new_ulid, put_new, relay, Ports, Result, UseCaseError};

/// Attempts of a read-modify-write before giving up with `Contention`.
pub(crate) const MAX_CONFLICT_RETRIES: usize = 24;

/// What one commit writes. Writes keep their indices in the transaction (a use case may read
/// meaning into `Conflict { index }`); archive and outbox writes come after them.
#[derive(Debug, Default)]
pub struct Plan {
    pub writes: Vec<Write>,
    pub archive: Vec<ArchiveEvent>,
    pub effects: Vec<Effect>,
}

impl Plan {
    pub fn of(writes: Vec<Write>) -> Plan {
        Plan { writes, ..Plan::default() }
    }
}

/// Commits `plan` atomically, then hands its effects to the relay (a failure there leaves them
/// in the outbox for the relay's sweep). `Conflict` means nothing was written.
pub async fn commit(ports: &Ports, plan: Plan) -> Result<(), StoreError> {
    let Plan { mut writes, archive, effects } = plan;
    if ports.store.keeps_changes() {
        let changes = crate::live::changes_of(&writes);
        if !changes.is_empty() {
            writes.push(put_new(Item::Change { id: new_ulid(), changes }));
        }
    }
    let mut events: Vec<ArchiveEvent> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Put { item: Item::Message(m), cond: Cond::NotExists } => Some(message_event(m)),
            _ => None,
        })
        .collect();
    events.extend(archive);
    if !events.is_empty() {
        archive_writes(ports, &mut writes, events).await?;
    }
    let now = ports.clock.now();
    let entries: Vec<OutboxEntry> =
        effects.into_iter().map(|effect| OutboxEntry::new(new_ulid(), effect, now)).collect();
    writes.extend(entries.iter().map(|e| Write::Put { item: Item::Outbox(e.clone()), cond: Cond::NotExists }));
    let counted = crate::metrics::counted(&writes);
    ports.store.transact(writes).await?;
    crate::metrics::write(&counted);
    relay::publish(ports, entries).await;
    Ok(())
}

/// The records of `events` linked onto their threads' chains, and each thread's head moved to
/// its last record. The head lives on the thread: a thread the plan writes carries it there,
/// under the plan's own condition on it; any other thread is read and written back with a
/// condition on the version read.
async fn archive_writes(ports: &Ports, writes: &mut Vec<Write>, events: Vec<ArchiveEvent>) -> Result<(), StoreError> {
    let mut unplanned: Vec<Key> = Vec::new();
    for e in &events {
        let key = Key::conversation(&e.conversation_id);
        if planned_thread(writes, &e.conversation_id).is_none() && !unplanned.contains(&key) {
            unplanned.push(key);
        }
    }
    for (key, found) in unplanned.iter().zip(ports.store.get_many(&unplanned).await?) {
        match found {
            Some(Versioned { item: item @ Item::Conversation(_), version }) => {
                writes.push(Write::Put { item, cond: Cond::Version(version) })
            }
            _ => return Err(StoreError::Corrupt(format!("archive records for a missing thread: {}", key.pk).into())),
        }
    }
    // A thread from a store written while the head was an item of its own goes on from its last
    // record (once: its head is on it from this commit on).
    for w in writes.iter_mut() {
        if let Write::Put { item: Item::Conversation(c), cond: Cond::Version(_) } = w {
            if c.archive_head.is_none() && events.iter().any(|e| e.conversation_id == c.id) {
                let records = ports.archive.read(&c.id).await.map_err(|e| StoreError::Unavailable(Box::new(e)))?;
                c.archive_head = records.last().map(ArchiveRecord::head);
            }
        }
    }
    let mut records = Vec::with_capacity(events.len());
    for event in events {
        let thread = planned_thread(writes, &event.conversation_id).expect("every archived thread is written");
        let record = link(thread.archive_head.as_ref(), event);
        thread.archive_head = Some(record.head());
        records.push(Write::Put { item: Item::ArchiveEntry(record), cond: Cond::NotExists });
    }
    writes.extend(records);
    Ok(())
}

/// The thread `id` as this commit writes it, if it does.
fn planned_thread<'a>(writes: &'a mut [Write], id: &ConversationId) -> Option<&'a mut Conversation> {
    writes.iter_mut().find_map(|w| match w {
        Write::Put { item: Item::Conversation(c), .. } if c.id == *id => Some(c),
        _ => None,
    })
}

/// What one attempt of a read → plan → commit came to.
pub enum Attempt<T> {
    Done(T),
    /// The state moved under us (a conditional write lost): read and plan again.
    Retry,
}

/// Runs `attempt` until it is done, backing off between tries; the only retry loop of the use
/// cases. `Contention` once the tries run out.
pub async fn retry<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Attempt<T>>>,
{
    for n in 0..MAX_CONFLICT_RETRIES {
        match attempt().await? {
            Attempt::Done(v) => return Ok(v),
            Attempt::Retry => backoff(n).await,
        }
    }
    Err(UseCaseError::Contention)
}

/// A short random pause after a lost conditional write, growing with the attempts, so that
/// writers racing for one item spread out instead of colliding again in lockstep.
async fn backoff(attempt: usize) {
    let ceiling_ms = 1u64 << attempt.min(6);
    let ms = crate::domain::ids::random_u64() % (ceiling_ms + 1);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}
