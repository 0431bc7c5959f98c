//! Lambda's event source mapping on the table's stream, locally (the runner on the AWS
//! adapters: moto, or a real table): reads the stream's shards in order with DynamoDB Streams'
//! API and hands their records, as the JSON Lambda would, to the archiver, batch by batch,
//! from a position the runner keeps across restarts.

use serde_json::{json, Value};

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};

type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct TableStream {
    streams: aws_sdk_dynamodbstreams::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

impl TableStream {
    pub fn new(clients: &shared::adapters::aws::AwsClients, table: &str) -> TableStream {
        TableStream {
            streams: aws_sdk_dynamodbstreams::Client::new(&clients.sdk_config),
            dynamodb: clients.dynamodb.clone(),
            table: table.to_string(),
        }
    }

    /// Up to `limit` records after sequence number `after` (from the oldest when `None`), as
    /// Lambda's event would hold them, with the sequence number of the last record read.
    pub async fn records_after(&self, after: Option<&str>, limit: i32) -> Result<Vec<Value>, Error> {
        let table = self.dynamodb.describe_table().table_name(&self.table).send().await?;
        let Some(arn) = table.table().and_then(|t| t.latest_stream_arn()) else {
            return Err(format!("table {} has no stream", self.table).into());
        };
        let stream = self.streams.describe_stream().stream_arn(arn).send().await?;
        let shards = stream.stream_description().map(|d| d.shards().to_vec()).unwrap_or_default();
        let mut out = Vec::new();
        for shard in shards {
            let Some(shard_id) = shard.shard_id() else { continue };
            let ends_before =
                shard.sequence_number_range().and_then(|r| r.ending_sequence_number()).zip(after).is_some_and(
                    |(end, after)| shared::archive::Position(end.into()) <= shared::archive::Position(after.into()),
                );
            if ends_before {
                continue;
            }
            let mut it = self.streams.get_shard_iterator().stream_arn(arn).shard_id(shard_id);
            it = match after {
                Some(seq) if shard_holds(&shard, seq) => {
                    it.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(seq)
                }
                _ => it.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let Some(iterator) = it.send().await?.shard_iterator().map(str::to_string) else { continue };
            let page = self.streams.get_records().shard_iterator(iterator).limit(limit).send().await?;
            for r in page.records() {
                let Some(d) = r.dynamodb() else { continue };
                let seq = d.sequence_number().unwrap_or_default();
                if after.is_some_and(|a| shared::archive::Position(seq.into()) <= shared::archive::Position(a.into())) {
                    continue;
                }
                let mut image = serde_json::Map::new();
                for (name, v) in d.new_image().into_iter().flatten() {
                    if let AttributeValue::S(text) = v {
                        image.insert(name.clone(), json!({ "S": text }));
                    }
                }
                out.push(json!({
                    "eventSource": "aws:dynamodb",
                    "eventName": r.event_name().map(|e| e.as_str()).unwrap_or_default(),
                    "dynamodb": { "SequenceNumber": seq, "NewImage": image },
                }));
            }
            if !out.is_empty() {
                break;
            }
        }
        Ok(out)
    }
}

/// Whether `seq` falls within `shard`'s range (a shard's iterator cannot start after a number
/// from another shard).
fn shard_holds(shard: &aws_sdk_dynamodbstreams::types::Shard, seq: &str) -> bool {
    let Some(range) = shard.sequence_number_range() else { return false };
    let p = shared::archive::Position(seq.into());
    let starts = range.starting_sequence_number().is_some_and(|s| shared::archive::Position(s.into()) <= p);
    let ends = range.ending_sequence_number().is_none_or(|e| p <= shared::archive::Position(e.into()));
    starts && ends
}
