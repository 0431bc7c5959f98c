//! The relay: publishes outbox entries at least once, then deletes them. Right after a commit the
//! executor hands it that commit's entries (the fast path); `sweep` publishes whatever a crash or
//! a failed publish left behind (locally a worker of the runner, on AWS a scheduled invocation
//! of `timers`). Every effect is idempotent downstream, so publishing twice is harmless.
//!
//! An entry that keeps failing is parked after `MAX_PUBLISH_ATTEMPTS` (an error log and a metric
//! an alarm watches, docs/aws.md "Parked outbox entries"), so it never blocks the entries behind
//! it; until then it blocks only the entries of its own thread, which must keep their order.
//! A timer whose time has passed (an entry published late, or Scheduler refusing it) is fired
//! here and now.

use std::collections::{BTreeSet, VecDeque};

use crate::error::Report;
use crate::ports::{Cond, Effect, Item, Key, OutboxEntry, SchedulerError, Write, OUTBOX_SHARDS};

use super::commit::{execute_unpublished, Decision, Guard, Plan};
use super::{notice_message, Ports, Result, UseCaseError};
use crate::domain::ids::{ConversationId, MessageId};

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Entries younger than this are left to the fast path of the commit that wrote them.
pub const SWEEP_GRACE: time::Duration = time::Duration::seconds(5);

/// Failed publishes of one entry before it is parked.
pub const MAX_PUBLISH_ATTEMPTS: u32 = 10;

/// Publishes `entries` in order, deleting each once done, and then what publishing them
/// committed in turn. A failure is logged and stops the rest (keeping their order); the sweep
/// takes them up later. Boxed, with `Send` declared: an effect may run a use case, whose
/// executor publishes in turn.
pub fn publish(ports: &Ports, entries: Vec<OutboxEntry>) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let mut work: VecDeque<OutboxEntry> = entries.into();
        while let Some(entry) = work.pop_front() {
            match publish_one(ports, &entry).await {
                Ok(more) => work.extend(more),
                Err(e) => {
                    tracing::warn!(outbox_id = %entry.id, error.message = %Report(&e), "outbox entry left for the sweep");
                    return;
                }
            }
        }
    })
}

/// Runs one entry's effect and deletes the entry; what the effect committed, to publish next.
async fn publish_one(ports: &Ports, entry: &OutboxEntry) -> Result<Vec<OutboxEntry>> {
    let more = run(ports, entry).await?;
    ports.store.transact(vec![Write::Delete { key: Key::outbox(entry.shard, &entry.id), cond: Cond::Always }]).await?;
    Ok(more)
}

/// Boxed: a timer fired here may be the sweep's own, which runs entries in turn.
fn run<'a>(ports: &'a Ports, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<Vec<OutboxEntry>>> {
    Box::pin(run_effect(ports, entry))
}

async fn run_effect(ports: &Ports, entry: &OutboxEntry) -> Result<Vec<OutboxEntry>> {
    let mut more = Vec::new();
    match &entry.effect {
        Effect::Outbound(job) => ports.queue.send_outbound(job.clone()).await?,
        Effect::Receipt(job) => ports.queue.send_receipt(job.clone()).await?,
        Effect::Timer { timer, at } => {
            let due = *at <= ports.clock.now();
            let scheduled = match due {
                true => Err(SchedulerError::Past),
                false => ports.scheduler.schedule(timer, *at).await,
            };
            match scheduled {
                Ok(()) => {}
                Err(SchedulerError::Past) if crate::plant::active(crate::plant::Bug::PastTimerDropped) => {}
                Err(SchedulerError::Past) => {
                    tracing::info!(timer = %timer.name(), at = %at, "timer due already: fired now");
                    super::timers::fire(ports, timer).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Effect::ReleaseHeld { conversation_ids } => {
            for id in conversation_ids {
                super::release::release_held(ports, id).await?;
            }
        }
        Effect::Notice { conversation_ids, notice, archive } => {
            for id in conversation_ids {
                let why = archive.clone().map(|mut e| {
                    e.conversation_id = id.clone();
                    e
                });
                more.extend(post_notice(ports, &MessageId::from(entry.id.as_str()), id, notice, why).await?);
            }
        }
    }
    Ok(more)
}

/// A notice fanned out to another thread: its id is the outbox entry's, so a second publish
/// finds it written and stops.
async fn post_notice(
    ports: &Ports,
    id: &MessageId,
    conversation_id: &ConversationId,
    notice: &crate::domain::notice::Notice,
    archive: Option<crate::archive::ArchiveEvent>,
) -> Result<Vec<OutboxEntry>> {
    let posted = execute_unpublished(ports, || {
        let archive = archive.clone();
        async move {
            if ports.store.get(&Key::message(conversation_id, id)).await?.is_some() {
                return Ok(Decision::Done(()));
            }
            let mut msg = notice_message(conversation_id, notice.clone(), ports.clock.now());
            msg.id = id.clone();
            let mut plan = Plan { archive: archive.into_iter().collect(), ..Plan::default() };
            plan.guard(Guard::AlreadyPosted, Write::Put { item: Item::Message(msg), cond: Cond::NotExists });
            Ok(Decision::Commit(plan, ()))
        }
    })
    .await;
    match posted {
        Ok(((), entries)) => Ok(entries),
        Err(UseCaseError::Guarded(Guard::AlreadyPosted)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Publishes the entries older than `SWEEP_GRACE`, oldest first in each partition; returns how
/// many were published. An entry that fails holds back the later entries of its thread (they
/// keep their order) and no others; after `MAX_PUBLISH_ATTEMPTS` failures it is parked. A
/// partition that cannot be read is left to the next sweep: the sweep itself never fails (it
/// runs every minute, and a failed run would page someone through the timers' dead letters).
pub async fn sweep(ports: &Ports) -> Result<usize> {
    let cutoff = ports.clock.now() - SWEEP_GRACE;
    let mut published = 0;
    for shard in 0..OUTBOX_SHARDS {
        let mut blocked: BTreeSet<String> = BTreeSet::new();
        let entries = match ports.store.outbox(shard, 100).await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(shard, error.message = %Report(&e), "outbox partition unreadable; left to the next sweep");
                continue;
            }
        };
        for entry in entries {
            if entry.created_at > cutoff {
                break;
            }
            let order = entry.effect.order_key().unwrap_or(&entry.id).to_string();
            if blocked.contains(&order) {
                continue;
            }
            match publish_one(ports, &entry).await {
                Ok(more) => {
                    published += 1;
                    publish(ports, more).await;
                }
                Err(e) => {
                    tracing::error!(outbox_id = %entry.id, attempts = entry.attempts + 1, error.message = %Report(&e), "outbox entry could not be published");
                    if let Err(e) = failed(ports, entry).await {
                        tracing::warn!(error.message = %Report(&e), "could not count the failed publish");
                    }
                    blocked.insert(order);
                }
            }
        }
    }
    if published > 0 {
        tracing::info!(published, "outbox swept");
    }
    Ok(published)
}

/// Counts a failed publish on the entry, or parks it once it has failed too often: out of the
/// outbox, into the parked partition, with an error log the parked-entries alarm counts.
async fn failed(ports: &Ports, entry: OutboxEntry) -> Result<()> {
    let key = Key::outbox(entry.shard, &entry.id);
    let mut next = entry.clone();
    next.attempts += 1;
    let writes = match next.attempts >= MAX_PUBLISH_ATTEMPTS {
        true => {
            tracing::error!(outbox_id = %entry.id, effect = ?entry.effect, "outbox entry parked");
            crate::metrics::parked();
            vec![Write::Delete { key, cond: Cond::Always }, super::put_new(Item::Parked(next))]
        }
        false => vec![Write::Put { item: Item::Outbox(next), cond: Cond::Always }],
    };
    ports.store.transact(writes).await?;
    Ok(())
}

/// How many entries wait in the outbox (for tests and the simulation's checks).
pub async fn pending(ports: &Ports) -> Result<usize> {
    let mut n = 0;
    for shard in 0..OUTBOX_SHARDS {
        n += ports.store.outbox(shard, 10_000).await?.len();
    }
    Ok(n)
}

/// The parked entries, oldest first (for the runbook and the simulation's checks).
pub async fn parked(ports: &Ports) -> Result<Vec<OutboxEntry>> {
    Ok(ports.store.parked(10_000).await?)
}
