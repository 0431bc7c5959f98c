//! The relay: publishes outbox entries at least once, then deletes them. Right after a commit it
//! publishes that commit's entries (the fast path); `sweep` publishes whatever a crash or a
//! failed publish left behind (locally a worker of the runner, on AWS a scheduled invocation
//! of `timers`). Every effect is idempotent downstream, so publishing twice is harmless.

use crate::error::Report;
use crate::ports::{Cond, Effect, Item, Key, OutboxEntry, Write, OUTBOX_SHARDS};

use super::{notice_message, Ports, Result};
use crate::domain::ids::{ConversationId, MessageId};

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Entries younger than this are left to the fast path of the commit that wrote them.
pub const SWEEP_GRACE: time::Duration = time::Duration::seconds(5);

/// Publishes `entries` in order, deleting each once done. A failure is logged and stops the
/// rest (keeping their order); the sweep takes them up later.
/// Boxed, with `Send` declared: publishing may commit (releases, notices), and a commit
/// publishes, so the compiler cannot infer it through the cycle.
pub fn publish(ports: &Ports, entries: Vec<OutboxEntry>) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        for entry in entries {
            let id = entry.id.clone();
            if let Err(e) = publish_one(ports, entry).await {
                tracing::warn!(outbox_id = %id, error.message = %Report(&e), "outbox entry left for the sweep");
                return;
            }
        }
    })
}

async fn publish_one(ports: &Ports, entry: OutboxEntry) -> Result<()> {
    let key = Key::outbox(entry.shard, &entry.id);
    run(ports, &entry).await?;
    ports.store.transact(vec![Write::Delete { key, cond: Cond::Always }]).await?;
    Ok(())
}

async fn run(ports: &Ports, entry: &OutboxEntry) -> Result<()> {
    match &entry.effect {
        Effect::Outbound(job) => ports.queue.send_outbound(job.clone()).await?,
        Effect::Receipt(job) => ports.queue.send_receipt(job.clone()).await?,
        Effect::Timer { timer, at } => ports.scheduler.schedule(timer, *at).await?,
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
                post_notice(ports, &MessageId::from(entry.id.as_str()), id, notice, why).await?;
            }
        }
    }
    Ok(())
}

/// A notice fanned out to another thread: its id is the outbox entry's, so a second publish
/// finds it written and stops.
async fn post_notice(
    ports: &Ports,
    id: &MessageId,
    conversation_id: &ConversationId,
    notice: &crate::domain::notice::Notice,
    archive: Option<crate::archive::ArchiveEvent>,
) -> Result<()> {
    if ports.store.get(&Key::message(conversation_id, id)).await?.is_some() {
        return Ok(());
    }
    let mut msg = notice_message(conversation_id, notice.clone(), ports.clock.now());
    msg.id = id.clone();
    let plan = super::commit::Plan {
        writes: vec![Write::Put { item: Item::Message(msg), cond: Cond::NotExists }],
        archive: archive.into_iter().collect(),
        effects: Vec::new(),
    };
    match super::commit::commit(ports, plan).await {
        Ok(()) | Err(crate::ports::StoreError::Conflict { index: 0 }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Publishes the entries older than `SWEEP_GRACE`, oldest first in each partition; returns how
/// many were published.
pub async fn sweep(ports: &Ports) -> Result<usize> {
    let cutoff = ports.clock.now() - SWEEP_GRACE;
    let mut published = 0;
    for shard in 0..OUTBOX_SHARDS {
        for entry in ports.store.outbox(shard, 100).await? {
            if entry.created_at > cutoff {
                break;
            }
            let id = entry.id.clone();
            match publish_one(ports, entry).await {
                Ok(()) => published += 1,
                Err(e) => {
                    tracing::error!(outbox_id = %id, error.message = %Report(&e), "outbox entry could not be published");
                    break;
                }
            }
        }
    }
    if published > 0 {
        tracing::info!(published, "outbox swept");
    }
    Ok(published)
}

/// How many entries wait in the outbox (for tests and the simulation's checks).
pub async fn pending(ports: &Ports) -> Result<usize> {
    let mut n = 0;
    for shard in 0..OUTBOX_SHARDS {
        n += ports.store.outbox(shard, 10_000).await?.len();
    }
    Ok(n)
}
