//! The executor: the one way a use case changes anything, and the one place that retries.
//! `execute` runs an attempt (read, then plan purely), commits the attempt's `Plan` (state
//! writes, archive records, outbox entries) in ONE atomic transaction, and on a stale read reads
//! and plans again, bounded, with backoff. A transaction whose answer was lost is submitted again
//! unchanged (same token) until the store says whether it committed, so a lost answer never
//! becomes a second write. A write the plan names as a `Guard` is a decision, not a stale read:
//! its failure ends the attempt with that name.
//!
//! What the commit changed goes in the same transaction (`ChangeEntry`): the live feed's
//! references, and the archive's events, each carried by an item of its thread that the
//! transaction writes (the message it is about, else the thread), whose count of carried
//! changes it moves. The archiver alone links them into the thread's chain, later; the items'
//! counts say what that chain must hold.
//!
//! Not here: deciding what to write (the planners) and publishing what the outbox holds (the
//! relay, which `execute` hands a commit's entries to once it is done).

use crate::archive::{ArchiveEvent, Journaled, Source, RECORD_USE};
use crate::ports::{ChangeEntry, Cond, Effect, Item, Key, OutboxEntry, StoreError, Transaction, Versioned, Write};

use super::{new_ulid, relay, Ports, Result, UseCaseError};
use crate::archive::message_event;

/// Attempts of a read-modify-write before giving up with `Contention`.
pub(crate) const MAX_CONFLICT_RETRIES: usize = 24;

/// Submissions of one transaction whose outcome stays unknown before giving up with
/// `StoreError::Unknown` (nothing is planned again: that could write twice).
const MAX_SUBMISSIONS: usize = 8;

/// A condition that is a decision of the plan, not a stale read: when it fails, the attempt
/// ends with its name (`UseCaseError::Guarded`) instead of reading again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// The inbound message (its wamid's mark) was applied before.
    AlreadyApplied,
    /// The notice (its id: the outbox entry's) was posted before.
    AlreadyPosted,
}

/// What one commit writes: the state writes, the archive events they call for, the effects to
/// publish after, and which writes are guards.
#[derive(Debug, Default)]
pub struct Plan {
    pub writes: Vec<Write>,
    pub archive: Vec<ArchiveEvent>,
    pub effects: Vec<Effect>,
    /// Which writes are guards (set through `guard`).
    pub(super) guards: Vec<(usize, Guard)>,
}

impl Plan {
    pub fn of(writes: Vec<Write>) -> Plan {
        Plan { writes, ..Plan::default() }
    }

    /// Adds `write` as the guard `guard`.
    pub fn guard(&mut self, guard: Guard, write: Write) {
        self.guards.push((self.writes.len(), guard));
        self.writes.push(write);
    }
}

/// What an attempt decided.
pub enum Decision<T> {
    /// Nothing (more) to write: the answer.
    Done(T),
    /// Commit the plan; once committed, the answer.
    Commit(Plan, T),
}

/// Why a commit did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A guard's condition failed: nothing was written.
    #[error("guard {0:?} failed")]
    Guard(Guard),
    /// A condition on what was read failed, or the transaction collided with another: nothing
    /// was written, and reading and planning again may succeed.
    #[error("the state moved since it was read")]
    Stale,
    #[error(transparent)]
    Store(StoreError),
}

/// Runs `attempt` until its plan commits (or it needs none), then publishes the commit's
/// outbox entries; `Guarded` when a guard failed, `Contention` when the state kept moving.
pub async fn execute<T, F, Fut>(ports: &Ports, attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Decision<T>>>,
{
    let (value, entries) = execute_unpublished(ports, attempt).await?;
    relay::publish(ports, entries).await;
    Ok(value)
}

/// `execute`, leaving the committed entries to the caller (the relay, publishing in a loop of
/// its own).
pub async fn execute_unpublished<T, F, Fut>(ports: &Ports, mut attempt: F) -> Result<(T, Vec<OutboxEntry>)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Decision<T>>>,
{
    for n in 0..MAX_CONFLICT_RETRIES {
        match attempt().await? {
            Decision::Done(v) => return Ok((v, Vec::new())),
            Decision::Commit(plan, v) => match commit(ports, plan).await {
                Ok(entries) => return Ok((v, entries)),
                Err(CommitError::Guard(g)) => return Err(UseCaseError::Guarded(g)),
                Err(CommitError::Stale) => backoff(n).await,
                Err(CommitError::Store(e)) => return Err(e.into()),
            },
        }
    }
    Err(UseCaseError::Contention)
}

/// Commits `plan` atomically and returns its outbox entries; it publishes nothing.
pub async fn commit(ports: &Ports, plan: Plan) -> Result<Vec<OutboxEntry>, CommitError> {
    let Plan { mut writes, archive, effects, guards } = plan;
    let guard_at = |index: usize| guards.iter().find(|(i, _)| *i == index).map(|(_, g)| *g);
    let mut events: Vec<ArchiveEvent> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Put { item: Item::Message(m), cond: Cond::NotExists } => Some(message_event(m)),
            _ => None,
        })
        .collect();
    events.extend(archive);
    let records = journal(ports, &mut writes, events).await.map_err(CommitError::Store)?;
    // A message queued for dispatch joins its thread's outgoing queue in the same commit.
    for e in &effects {
        if let Effect::Outbound(job) = e {
            let marker =
                Item::Queued { conversation_id: job.conversation_id.clone(), message_id: job.message_id.clone() };
            writes.push(Write::Put { item: marker, cond: Cond::Always });
        }
    }
    let now = ports.clock.now();
    let entries: Vec<OutboxEntry> =
        effects.into_iter().map(|effect| OutboxEntry::new(new_ulid(), effect, now)).collect();
    writes.extend(entries.iter().map(|e| Write::Put { item: Item::Outbox(e.clone()), cond: Cond::NotExists }));
    let counted = crate::metrics::counted(&writes);
    let changes = crate::ports::change::changes_of(&writes);
    let tx = Transaction { entry: ChangeEntry { changes, records }, ..Transaction::new(writes) };
    match submit(ports, tx).await {
        Ok(()) => {
            crate::metrics::write(&counted);
            Ok(entries)
        }
        Err(StoreError::Conflict { index }) => match guard_at(index) {
            Some(g) => Err(CommitError::Guard(g)),
            None if crate::plant::active(crate::plant::Bug::ConflictIsDuplicate) && !guards.is_empty() => {
                Err(CommitError::Guard(guards[0].1))
            }
            None => Err(CommitError::Stale),
        },
        Err(StoreError::Busy) if crate::plant::active(crate::plant::Bug::ConflictIsDuplicate) && !guards.is_empty() => {
            Err(CommitError::Guard(guards[0].1))
        }
        Err(StoreError::Busy) => Err(CommitError::Stale),
        Err(e) => Err(CommitError::Store(e)),
    }
}

/// Submits `tx`, and submits it again while its outcome is unknown: the store answers a
/// resubmission of a transaction that committed with `Ok`, so the answer is the first one that
/// is neither `Unknown` nor, once it was unknown, `Busy` (a throttled resubmission says nothing
/// of the first submission); a conflict then means it did not commit.
async fn submit(ports: &Ports, mut tx: Transaction) -> Result<(), StoreError> {
    let mut unknown = false;
    for n in 0..MAX_SUBMISSIONS {
        tx.resubmitted = unknown;
        match ports.store.submit(&tx).await {
            Err(StoreError::Unknown(_)) if crate::plant::active(crate::plant::Bug::ReplanUnknown) => {
                return Err(StoreError::Busy)
            }
            Err(StoreError::Unknown(e)) => {
                tracing::warn!(token = %tx.token, error.message = %crate::error::Report(&*e), "transaction outcome unknown; submitting it again");
                unknown = true;
            }
            Err(StoreError::Busy) if unknown => {}
            other => return other,
        }
        backoff(n).await;
    }
    Err(StoreError::Unknown("still unknown after every resubmission".into()))
}

/// Each of `events` carried by an item of its thread that `writes` writes: the message it is
/// about when the plan writes that message under a condition, else the thread itself (read
/// and written back under its version when the plan does not write it). The carrier's count
/// of carried changes moves under the same condition, so the counts stay exact.
async fn journal(
    ports: &Ports,
    writes: &mut Vec<Write>,
    events: Vec<ArchiveEvent>,
) -> Result<Vec<Journaled>, StoreError> {
    let mut unplanned: Vec<Key> = Vec::new();
    for e in &events {
        let key = Key::conversation(&e.conversation_id);
        if carrier(writes, e).is_none() && !unplanned.contains(&key) {
            unplanned.push(key);
        }
    }
    if !unplanned.is_empty() {
        for (key, found) in unplanned.iter().zip(ports.store.get_many(&unplanned).await?) {
            match found {
                Some(Versioned { item: item @ (Item::Conversation(_) | Item::RecordTrail { .. }), version }) => {
                    writes.push(Write::Put { item, cond: Cond::Version(version) })
                }
                None if key.pk == Key::conversation(&RECORD_USE.into()).pk => {
                    writes.push(Write::Put { item: Item::RecordTrail { records: 0 }, cond: Cond::NotExists })
                }
                _ => {
                    return Err(StoreError::Corrupt(format!("archive events for a missing thread: {}", key.pk).into()))
                }
            }
        }
    }
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let source = match carrier(writes, &event).expect("every archived thread is written") {
            Item::Message(m) => {
                m.records += 1;
                Source { item: Key::message(&m.conversation_id, &m.id).sk, n: m.records }
            }
            Item::Conversation(c) => {
                c.records += 1;
                Source { item: Key::conversation(&c.id).sk, n: c.records }
            }
            Item::RecordTrail { records } => {
                *records += 1;
                Source { item: Key::conversation(&RECORD_USE.into()).sk, n: *records }
            }
            _ => unreachable!("a carrier is a message, a thread or the record's trail"),
        };
        out.push(Journaled { source, event });
    }
    Ok(out)
}

/// The item of `writes` that carries `event`: the message it names, written under a condition
/// (a blind write could lose a count), else its thread.
fn carrier<'a>(writes: &'a mut [Write], event: &ArchiveEvent) -> Option<&'a mut Item> {
    let conditional = |cond: &Cond| !matches!(cond, Cond::Always);
    let message = writes.iter().position(|w| match w {
        Write::Put { item: Item::Message(m), cond } => {
            conditional(cond) && m.conversation_id == event.conversation_id && Some(&m.id) == event.message_id.as_ref()
        }
        _ => false,
    });
    let thread = || {
        writes.iter().position(|w| match w {
            Write::Put { item: Item::Conversation(c), cond } => conditional(cond) && c.id == event.conversation_id,
            Write::Put { item: Item::RecordTrail { .. }, cond } => {
                conditional(cond) && event.conversation_id.as_str() == RECORD_USE
            }
            _ => false,
        })
    };
    let at = message.or_else(thread)?;
    match &mut writes[at] {
        Write::Put { item, .. } => Some(item),
        _ => None,
    }
}

/// A short random pause after a lost conditional write, growing with the attempts, so that
/// writers racing for one item spread out instead of colliding again in lockstep.
async fn backoff(attempt: usize) {
    let ceiling_ms = 1u64 << attempt.min(6);
    let ms = crate::domain::ids::random_u64() % (ceiling_ms + 1);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}
