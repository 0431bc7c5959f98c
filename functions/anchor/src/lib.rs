//! Anchors the compliance archive. The table's stream brings each archive record as it is
//! committed (`template.yaml` filters out everything else and gathers up to five minutes of
//! them), and each batch becomes one write-once anchor of every thread's newest chain head.
//! An operator may also invoke it with `{"conversation_ids": [...]}` to anchor those threads'
//! heads as they stand (docs/aws.md, "Dead letters"), or with `{"audit": "anchors/2026/12/"}`
//! to check every anchor under that prefix against the chains.

use serde_json::{json, Value};
use shared::archive::ChainHead;
use shared::domain::ConversationId;
use shared::error::Report;
use shared::ports::Item;
use shared::usecases::{archive, Ports, UseCaseError};

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("expected a DynamoDB stream batch, {{\"conversation_ids\": [...]}} or {{\"audit\": \"anchors/...\"}}")]
    Unknown,
    /// Lambda retries the batch (then bisects it, then hands it to the dead-letter queue).
    #[error(transparent)]
    Failed(#[from] UseCaseError),
}

/// Anchors what `event` names; answers with the anchor's name (`null` when nothing was new).
pub async fn handle(ports: &Ports, event: &Value) -> Result<Value, HandlerError> {
    if let Some(prefix) = event.get("audit").and_then(Value::as_str) {
        let report = archive::audit(ports, prefix).await?;
        return Ok(serde_json::to_value(report).unwrap_or_default());
    }
    let heads = if let Some(ids) = event.get("conversation_ids").and_then(Value::as_array) {
        let ids: Vec<ConversationId> = ids.iter().filter_map(|v| v.as_str().map(ConversationId::from)).collect();
        archive::heads_of(ports, &ids).await?
    } else if event.pointer("/Records/0/eventSource").and_then(Value::as_str) == Some("aws:dynamodb") {
        heads_of_stream(event)
    } else if event.get("Records").and_then(Value::as_array).is_some_and(Vec::is_empty) {
        Vec::new()
    } else {
        return Err(HandlerError::Unknown);
    };
    let name = archive::anchor(ports, heads).await?;
    Ok(json!({ "anchor": name }))
}

/// The chain heads the archive records in a stream batch reached; any other record is passed
/// over (the filter lets none through).
pub fn heads_of_stream(event: &Value) -> Vec<(ConversationId, ChainHead)> {
    let records = event["Records"].as_array().map(Vec::as_slice).unwrap_or_default();
    records
        .iter()
        .filter_map(|r| r.pointer("/dynamodb/NewImage/body/S").and_then(Value::as_str))
        .filter_map(|body| match serde_json::from_str::<Item>(body) {
            Ok(Item::ArchiveEntry(r)) => Some((r.event.conversation_id.clone(), r.head())),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %Report(&e), "anchor: a stream record whose body is not an item");
                None
            }
        })
        .collect()
}
