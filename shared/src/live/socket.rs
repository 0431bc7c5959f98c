//! The live API on AWS: API Gateway WebSocket connections kept in the table, and the fan-out of
//! the table's stream to them. Each change's audience is worked out once; each user's events
//! are rendered once for all their connections; a connection API Gateway reports gone is
//! forgotten.

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use crate::error::Report;
use crate::ports::{Cond, Item, Key, Push, PushError, Write};
use crate::usecases::{Caller, Ports, Result, UseCaseError};

use super::render::events_for;
use super::{audience, changes_of, Change};

/// API Gateway closes a WebSocket connection after 2 hours; its items outlive it a little.
const CONNECTION_TTL: Duration = Duration::minutes(130);

/// How long one function instance reuses the agents' connections it read.
pub const AGENTS_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// The agents' connections, read at most every `AGENTS_TTL` by one function instance: a change
/// in an unclaimed thread reaches every agent, and reading all their connections for each such
/// change would take thousands of read units a second at scale (the load model,
/// `shared/tests/load_model.rs`). An agent who connected through this instance is seen at once
/// (`forget`); through another, within `AGENTS_TTL` (their console lists the inbox on
/// connecting).
#[derive(Default)]
pub struct AgentConnections {
    read: std::sync::Mutex<Option<(std::time::Instant, std::sync::Arc<Vec<Item>>)>>,
}

impl AgentConnections {
    pub async fn list(&self, ports: &Ports) -> Result<std::sync::Arc<Vec<Item>>> {
        if let Some((at, items)) = self.read.lock().ok().and_then(|r| r.clone()) {
            if at.elapsed() < AGENTS_TTL {
                return Ok(items);
            }
        }
        let items = std::sync::Arc::new(ports.store.agent_connections(usize::MAX / 2).await?);
        if let Ok(mut read) = self.read.lock() {
            *read = Some((std::time::Instant::now(), items.clone()));
        }
        Ok(items)
    }

    /// The next `list` reads them again.
    pub fn forget(&self) {
        if let Ok(mut read) = self.read.lock() {
            *read = None;
        }
    }
}

/// `$connect`, after the authorizer proved who `caller` is.
pub async fn connect(ports: &Ports, caller: &Caller, connection_id: &str, now: OffsetDateTime) -> Result<()> {
    let expires_at = now + CONNECTION_TTL;
    let writes = vec![
        Write::Put {
            item: Item::Connection { connection_id: connection_id.to_string(), caller: caller.clone(), expires_at },
            cond: Cond::Always,
        },
        Write::Put {
            item: Item::ConnectionOwner {
                connection_id: connection_id.to_string(),
                user_id: caller.user_id.clone(),
                expires_at,
            },
            cond: Cond::Always,
        },
    ];
    let mut writes = writes;
    if caller.is_agent() {
        let item =
            Item::AgentConnection { connection_id: connection_id.to_string(), caller: caller.clone(), expires_at };
        writes.push(Write::Put { item, cond: Cond::Always });
    }
    ports.store.transact(writes).await?;
    tracing::info!(connection_id, user_id = %caller.user_id, "live connection opened");
    Ok(())
}

/// `$disconnect`, or a connection API Gateway says is gone.
pub async fn disconnect(ports: &Ports, connection_id: &str) -> Result<()> {
    let owner = ports.store.get(&Key::connection_owner(connection_id)).await?;
    let mut writes = vec![
        Write::Delete { key: Key::connection_owner(connection_id), cond: Cond::Always },
        Write::Delete { key: Key::agent_connection(connection_id), cond: Cond::Always },
    ];
    if let Some(Item::ConnectionOwner { user_id, .. }) = owner.map(|v| v.item) {
        writes.push(Write::Delete { key: Key::connection(&user_id, connection_id), cond: Cond::Always });
    }
    ports.store.transact(writes).await?;
    Ok(())
}

/// The changes one record of the table's stream stands for: its new image is one of our items.
pub fn changes_of_record(record: &Value) -> Vec<Change> {
    let body = record.pointer("/dynamodb/NewImage/body/S").and_then(Value::as_str);
    match body.map(serde_json::from_str::<Item>) {
        Some(Ok(item)) => changes_of(&[Write::Put { item, cond: Cond::Always }]),
        Some(Err(e)) => {
            tracing::warn!(error = %Report(&e), "live: a stream record whose body is not an item");
            Vec::new()
        }
        None => Vec::new(),
    }
}

/// The changes a batch of stream records makes, each with the index of the record it goes
/// out at: a change the batch makes again later (a thread's item rewritten by the next commit,
/// a message's sent, delivered and read) only at its last record. Events are rendered from the
/// current state, so the earlier ones would say nothing more; and a retry from any record (a
/// failed one is reported, and Lambda retries from it) still reaches the last.
pub fn changes_of_batch(records: &[Value]) -> Vec<(usize, Change)> {
    let changes: Vec<Vec<Change>> = records.iter().map(changes_of_record).collect();
    let last: std::collections::HashMap<&Change, usize> =
        changes.iter().enumerate().flat_map(|(i, cs)| cs.iter().map(move |c| (c, i))).collect();
    let mut out = Vec::new();
    for (i, cs) in changes.iter().enumerate() {
        out.extend(cs.iter().filter(|c| last[c] == i).map(|c| (i, c.clone())));
    }
    out
}

/// What one fan-out did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FanOut {
    pub posted: usize,
    pub pruned: usize,
    /// Connections an event could not reach after its tries (the record is then retried).
    pub failed: usize,
}

/// Sends each change's events to the connections of everyone who may see them. `id` names
/// the change (the stream record's sequence number): events carry `id`, or `id.i` when one
/// change makes several.
pub async fn fan_out(
    ports: &Ports,
    push: &dyn Push,
    agents: &AgentConnections,
    id: &str,
    change: &Change,
) -> Result<FanOut> {
    let mut done = FanOut::default();
    let who = audience(ports, change).await?;
    let mut groups: Vec<(Caller, Vec<String>)> = Vec::new();
    for user in &who.users {
        let connections = ports.store.connections(user).await?;
        let ids = connections.iter().filter_map(|c| match c {
            Item::Connection { connection_id, .. } => Some(connection_id.clone()),
            _ => None,
        });
        // One rendering per user, from the identity their first connection proved.
        if let Some(Item::Connection { caller, .. }) = connections.first() {
            groups.push((caller.clone(), ids.collect()));
        }
    }
    if who.agents {
        // Agents and admins not already reached see the unclaimed thread too: all of them (the
        // store pages through the index), not the first thousand.
        for agent in agents.list(ports).await?.iter() {
            let Item::AgentConnection { connection_id, caller, .. } = agent.clone() else { continue };
            match groups.iter_mut().find(|(c, _)| c.user_id == caller.user_id) {
                Some((_, ids)) if ids.contains(&connection_id) => {}
                Some((_, ids)) => ids.push(connection_id),
                None => groups.push((caller, vec![connection_id])),
            }
        }
    }
    // Each user's events rendered once, then posted to every connection at once (a few dozen
    // at a time), each connection's in order.
    let mut sends: Vec<(&str, std::sync::Arc<Vec<Vec<u8>>>)> = Vec::new();
    for (caller, connections) in &groups {
        let events = events_for(ports, caller, change, &who.threads).await?;
        if events.is_empty() {
            continue;
        }
        let n = events.len();
        let payloads: Vec<Vec<u8>> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let eid = if i + 1 == n { id.to_string() } else { format!("{id}.{i}") };
                serde_json::to_vec(&json!({"id": eid, "event": e.kind(), "data": e})).unwrap_or_default()
            })
            .collect();
        let payloads = std::sync::Arc::new(payloads);
        sends.extend(connections.iter().map(|c| (c.as_str(), payloads.clone())));
    }
    let outcomes: Vec<(&str, usize, Option<PushError>)> = stream::iter(sends)
        .map(|(connection_id, payloads)| async move {
            let mut posted = 0;
            for p in payloads.iter() {
                if let Err(e) = post(push, connection_id, p).await {
                    return (connection_id, posted, Some(e));
                }
                posted += 1;
            }
            (connection_id, posted, None)
        })
        .buffer_unordered(POSTS_AT_ONCE)
        .collect()
        .await;
    for (connection_id, posted, failed) in outcomes {
        done.posted += posted;
        match failed {
            None => {}
            Some(PushError::Gone) => {
                disconnect(ports, connection_id).await?;
                done.pruned += 1;
            }
            Some(e @ PushError::Failed(_)) => {
                tracing::warn!(connection_id = %connection_id, error = %Report(&e), "live: post failed");
                done.failed += 1;
            }
        }
    }
    // An event a connection did not get comes again: the stream record is retried (the events
    // carry their ids, so a client that got them already skips them).
    if done.failed > 0 {
        return Err(UseCaseError::Upstream(format!("{} live posts failed", done.failed)));
    }
    Ok(done)
}

/// Connections posted to at once: API Gateway's management API takes thousands of posts a
/// second, and one slow connection no longer holds the rest back.
const POSTS_AT_ONCE: usize = 32;

/// Posts one event, trying again twice, a little later each time, while it fails for a
/// reason other than the connection being gone.
async fn post(push: &dyn Push, connection_id: &str, payload: &[u8]) -> Result<(), PushError> {
    let mut tries = 0;
    loop {
        match push.post(connection_id, payload).await {
            Err(PushError::Failed(_)) if tries < 2 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 << (2 * tries))).await;
            }
            other => return other,
        }
    }
}
