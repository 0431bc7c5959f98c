//! The archiver on AWS: the only writer of the compliance archive. The table's stream brings
//! every write that carried archive events (its `rec` attribute; `template.yaml` filters out
//! the rest), in order per thread, and each batch becomes one write-once object in the archive
//! bucket (`usecases::archiver`). A failed batch is retried as it was, in order, until it is
//! archived: nothing is skipped (the stream's iterator age alarms long before its 24 hours
//! run out; docs/aws.md, "A stuck archiver"). An operator may also invoke it with
//! `{"audit": "records/2026/12/"}` to check every object under that prefix against the chains,
//! or `{"reconcile": ["<thread id>", ...]}` to compare those threads' counts with their chains;
//! a daily schedule asks `{"reconcile_days": 2}`: every thread archived in the last two days.

use serde_json::{json, Value};
use shared::domain::ConversationId;
use shared::usecases::{archive, archiver, Ports, UseCaseError};

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("expected a DynamoDB stream batch, {{\"audit\": \"records/...\"}} or {{\"reconcile\": [...]}}")]
    Unknown,
    /// A stream record this build cannot read: the batch is retried (and the shard waits) rather
    /// than archived without it.
    #[error("stream record {0}: {1}")]
    Unreadable(String, String),
    /// Lambda retries the batch.
    #[error(transparent)]
    Failed(#[from] UseCaseError),
}

/// Archives (or audits, or reconciles) what `event` names.
pub async fn handle(ports: &Ports, event: &Value) -> Result<Value, HandlerError> {
    if let Some(prefix) = event.get("audit").and_then(Value::as_str) {
        let report = archive::audit(ports, prefix).await?;
        return Ok(serde_json::to_value(report).unwrap_or_default());
    }
    let days = event.get("reconcile_days").and_then(Value::as_u64);
    if let Some(ids) = event.get("reconcile").and_then(Value::as_array).cloned().or(match days {
        Some(n) => Some(archive::threads_archived_since(ports, n).await?.into_iter().map(|t| json!(t)).collect()),
        None => None,
    }) {
        let mut gaps = serde_json::Map::new();
        for id in ids.iter().filter_map(Value::as_str).map(ConversationId::from) {
            let missing = archive::reconcile(ports, &id).await?;
            if !missing.is_empty() {
                tracing::error!(conversation_id = %id, missing = missing.len(), "archive gap");
                shared::metrics::archive_gap(missing.len());
                gaps.insert(id.to_string(), serde_json::to_value(missing).unwrap_or_default());
            }
        }
        return Ok(json!({ "gaps": gaps }));
    }
    let Some(records) = event.get("Records").and_then(Value::as_array) else { return Err(HandlerError::Unknown) };
    let entries = shared::adapters::aws::stream::entries_of_stream(records)
        .map_err(|e| HandlerError::Unreadable(e.position, e.why))?;
    let done = archiver::archive(ports, &entries).await?;
    if let Some(lag) = done.lag {
        shared::metrics::record_millis("ArchiveLag", lag.whole_milliseconds() as f64);
    }
    tracing::info!(records = done.records, threads = done.threads, object = ?done.object, "archived");
    Ok(json!({ "records": done.records, "object": done.object }))
}
