//! The table's stream as the archiver reads it: each record of a write that carried archive
//! events (its `rec` attribute, see `dynamo::carried`) becomes one `StreamEntry` at the
//! record's sequence number. Lambda's event source mapping hands the function these records as
//! JSON; the local runner's stand-in for it reads them with DynamoDB Streams' API and hands
//! over the same JSON.

use serde_json::Value;

use crate::archive::{Carried, Journaled, Position};
use crate::ports::{Item, StreamEntry};

/// A stream record this build cannot read.
#[derive(Debug, thiserror::Error)]
#[error("stream record {position}: {why}")]
pub struct Unreadable {
    pub position: String,
    pub why: String,
}

/// The archive events of stream `records` (Lambda's `Records`), in order; records of writes
/// that carried none are passed over.
pub fn entries_of_stream(records: &[Value]) -> Result<Vec<StreamEntry>, Unreadable> {
    let mut out = Vec::new();
    for r in records {
        let image = r.pointer("/dynamodb/NewImage");
        let Some(carried) = image.and_then(|i| i.pointer("/rec/S")).and_then(Value::as_str) else { continue };
        let position = r.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).unwrap_or_default();
        let unreadable = |why: String| Unreadable { position: position.to_string(), why };
        let carried: Vec<Carried> = serde_json::from_str(carried).map_err(|e| unreadable(e.to_string()))?;
        let item = image.and_then(|i| i.pointer("/body/S")).and_then(Value::as_str);
        let item: Option<Item> = item.map(serde_json::from_str).transpose().map_err(|e| unreadable(e.to_string()))?;
        let message = match &item {
            Some(Item::Message(m)) => Some(m),
            _ => None,
        };
        let records: Vec<Journaled> = carried
            .into_iter()
            .map(|c| {
                c.journaled(message).ok_or_else(|| unreadable("a message's mark on an item that is not one".into()))
            })
            .collect::<Result<_, _>>()?;
        out.push(StreamEntry { position: Position(position.to_string()), records });
    }
    Ok(out)
}
