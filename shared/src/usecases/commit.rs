//! The one way a use case changes anything: a `Plan` (state writes, archive events, effects)
//! committed in ONE atomic transaction. Messages the plan creates are archived with it; the
//! archive records are linked to each thread's chain head, which the same transaction moves
//! (conditionally), so a record can be neither lost, skipped nor forked; effects go into the
//! outbox in the same transaction and the relay publishes them after the commit.
//!
//! Not here: deciding what to write (the planners) and retrying (`retry`).

use std::collections::HashMap;

use crate::archive::{link, ArchiveEvent};
use crate::ports::{Cond, Effect, Item, Key, OutboxEntry, StoreError, Write};

use super::archive::message_event;
use super::{new_id, put_new, relay, Ports, Result, UseCaseError, MAX_CONFLICT_RETRIES};

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
            writes.push(put_new(Item::Change { id: new_id(), changes }));
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
    writes.extend(archive_writes(ports, events).await?);
    let now = ports.clock.now();
    let entries: Vec<OutboxEntry> = effects.into_iter().map(|effect| OutboxEntry::new(new_id(), effect, now)).collect();
    writes.extend(entries.iter().map(|e| Write::Put { item: Item::Outbox(e.clone()), cond: Cond::NotExists }));
    let counted = crate::metrics::counted(&writes);
    ports.store.transact(writes).await?;
    crate::metrics::write(&counted);
    relay::publish(ports, entries).await;
    Ok(())
}

/// A chain's last record: its sequence number and hash.
type Link = (u64, String);

/// The records of `events` linked onto their threads' chains, and the heads moved to them.
async fn archive_writes(ports: &Ports, events: Vec<ArchiveEvent>) -> Result<Vec<Write>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut threads: Vec<String> = Vec::new();
    for e in &events {
        if !threads.contains(&e.conversation_id) {
            threads.push(e.conversation_id.clone());
        }
    }
    let keys: Vec<Key> = threads.iter().map(|t| Key::archive_head(t)).collect();
    let mut heads: HashMap<String, (Option<u64>, Option<Link>)> = HashMap::new();
    for (t, found) in threads.iter().zip(ports.store.get_many(&keys).await?) {
        let head = match found {
            Some(v) => match v.item {
                Item::ArchiveHead { seq, hash, .. } => (Some(v.version), Some((seq, hash))),
                other => return Err(StoreError::Corrupt(format!("archive head is {:?}", other.key()))),
            },
            None => (None, None),
        };
        heads.insert(t.clone(), head);
    }
    let mut writes = Vec::with_capacity(events.len() + threads.len());
    for event in events {
        let (_, prev) = heads.entry(event.conversation_id.clone()).or_default();
        let record = link(prev.as_ref().map(|(s, h)| (*s, h.as_str())), event);
        *prev = Some((record.seq, record.hash.clone()));
        writes.push(Write::Put { item: Item::ArchiveEntry(record), cond: Cond::NotExists });
    }
    for t in threads {
        let (version, Some((seq, hash))) = heads.remove(&t).unwrap_or_default() else { continue };
        let item = Item::ArchiveHead { conversation_id: t, seq, hash };
        writes.push(Write::Put { item, cond: version.map_or(Cond::NotExists, Cond::Version) });
    }
    Ok(writes)
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
    let ms = rand::random::<u64>() % (ceiling_ms + 1);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}
