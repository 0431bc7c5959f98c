//! `Store` on one DynamoDB table: `pk`/`sk` keys, the item as JSON in `body`, its version in
//! `v`, `exp_at` (the table's TTL attribute) on dedupe marks, and `rec`, the archive events
//! the write carried (for the table's stream; see `stream`). Conditions are DynamoDB
//! condition expressions; several writes go in one `TransactWriteItems`, one write in a plain
//! `UpdateItem`/`DeleteItem` (half the write units).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck, Delete, KeySchemaElement,
    KeyType, KeysAndAttributes, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use time::OffsetDateTime;

use crate::archive::Carried;
use crate::ports::{Cause, Cond, Item, Key, Store, StoreError, Transaction, Versioned, Write};

/// The attribute a write's archive events ride in, to the table's stream.
pub const RECORDS: &str = "rec";

pub struct DynamoStore {
    client: Client,
    table: String,
    /// One write at a time: only for emulators whose transactions are not isolated (moto can
    /// lose a committed item when a concurrent transaction is cancelled). Reads stay concurrent,
    /// so conditional conflicts and their retries are still exercised.
    serial_writes: Option<tokio::sync::Mutex<()>>,
}

type Attrs = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([("pk".to_string(), s(&key.pk)), ("sk".to_string(), s(&key.sk))])
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn unavailable(e: impl Into<Cause>) -> StoreError {
    StoreError::Unavailable(e.into())
}

/// A condition expression with the names and values it uses.
struct Expr {
    condition: Option<String>,
    names: HashMap<String, String>,
    values: Attrs,
}

impl Expr {
    /// The names and values as the SDK takes them: absent when empty (DynamoDB refuses empty maps).
    fn maps(&mut self) -> (Option<HashMap<String, String>>, Option<Attrs>) {
        let names = std::mem::take(&mut self.names);
        let values = std::mem::take(&mut self.values);
        ((!names.is_empty()).then_some(names), (!values.is_empty()).then_some(values))
    }
}

fn condition(cond: Cond) -> Expr {
    let mut e = Expr { condition: None, names: HashMap::new(), values: HashMap::new() };
    match cond {
        Cond::Always => {}
        Cond::NotExists => {
            // An expired item (TTL deletion is lazy) counts as absent, and so does a key
            // without a body (never written by us; an emulator can leave one behind).
            e.condition = Some("attribute_not_exists(#b) OR #e <= :now".into());
            e.names.insert("#b".into(), "body".into());
            e.names.insert("#e".into(), "exp_at".into());
            e.values.insert(":now".into(), n(now_secs()));
        }
        Cond::Version(v) => {
            e.condition = Some("#v = :ver".into());
            e.names.insert("#v".into(), "v".into());
            e.values.insert(":ver".into(), n(v));
        }
    }
    e
}

/// The archive events `item` carries in `tx` (`rec`, as JSON), for the table's stream: the
/// archiver reads them from the stream record of the write.
fn carried(tx: &Transaction, item: &Item) -> Option<String> {
    if tx.entry.records.is_empty() {
        return None;
    }
    let key = item.key();
    let message = match item {
        Item::Message(m) => Some(m),
        _ => None,
    };
    let carried: Vec<Carried> = tx
        .entry
        .records
        .iter()
        .filter(|j| j.source.item == key.sk && Key::conversation(&j.event.conversation_id).pk == key.pk)
        .map(|j| Carried::of(j, message))
        .collect();
    (!carried.is_empty()).then(|| serde_json::to_string(&carried).unwrap_or_default())
}

/// The `SET` of a put: the body, the next version, the expiry if any, and the archive events
/// it carries (`rec`; removed from a write that carries none, so the stream never shows an
/// item's events twice).
fn put_update(item: &Item, cond: Cond, records: Option<String>) -> Result<(String, Expr), StoreError> {
    let body = serde_json::to_string(item).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    let mut e = condition(cond);
    e.names.insert("#b".into(), "body".into());
    e.names.insert("#v".into(), "v".into());
    e.values.insert(":b".into(), s(body));
    e.values.insert(":zero".into(), n(0));
    e.values.insert(":one".into(), n(1));
    let mut update = "SET #b = :b, #v = if_not_exists(#v, :zero) + :one".to_string();
    let mut remove = Vec::new();
    e.names.insert("#e".into(), "exp_at".into());
    match item.expires_at() {
        Some(at) => {
            update.push_str(", #e = :exp");
            e.values.insert(":exp".into(), n(at.unix_timestamp()));
        }
        None => remove.push("#e"),
    }
    e.names.insert("#r".into(), RECORDS.into());
    match records {
        Some(json) => {
            update.push_str(", #r = :r");
            e.values.insert(":r".into(), s(json));
        }
        None => remove.push("#r"),
    }
    if !remove.is_empty() {
        update.push_str(" REMOVE ");
        update.push_str(&remove.join(", "));
    }
    Ok((update, e))
}

fn decode(attrs: &Attrs) -> Result<Option<Versioned<Item>>, StoreError> {
    if let Some(AttributeValue::N(exp)) = attrs.get("exp_at") {
        if exp.parse::<i64>().is_ok_and(|e| e <= now_secs()) {
            return Ok(None);
        }
    }
    let body = match attrs.get("body") {
        Some(AttributeValue::S(b)) => b,
        // Only keys: nothing of ours was ever stored here.
        None => return Ok(None),
        Some(_) => return Err(StoreError::Corrupt("item body is not a string".into())),
    };
    let version = match attrs.get("v") {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| StoreError::Corrupt("bad version".into()))?,
        _ => return Err(StoreError::Corrupt("item without a version".into())),
    };
    let item = serde_json::from_str(body).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    Ok(Some(Versioned { item, version }))
}

/// What a failed write means, by DynamoDB's error code: a collision or a throttle wrote
/// nothing (`Busy`); a request that was never built wrote nothing; anything else (a time-out, a
/// lost or unreadable answer, a server error, `TransactionInProgress`) may have written, and is
/// `Unknown` until the same write is submitted again.
fn write_failure<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &e {
        SdkError::ConstructionFailure(_) => unavailable(e),
        SdkError::ServiceError(se) => match se.err().code() {
            Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded") => {
                StoreError::Busy
            }
            Some("ValidationException") => match se.err().message() {
                Some(m) if m.contains("size") => StoreError::Invalid(m.to_string()),
                _ => unavailable(e),
            },
            Some("ResourceNotFoundException" | "AccessDeniedException") => unavailable(e),
            _ => StoreError::Unknown(Box::new(e)),
        },
        _ => StoreError::Unknown(Box::new(e)),
    }
}

/// A resubmitted single write's failed condition: a conflict on write 0, unless the item
/// already is what this write makes (`old`: the item as DynamoDB found it). That is this very
/// write, committed by the submission whose answer was lost: a single write has no token to
/// say so, so the item itself does.
fn single_conflict(w: &Write, old: Option<&Attrs>) -> Result<(), StoreError> {
    let landed = match (w, old) {
        (Write::Put { item, .. }, Some(old)) => {
            let ours = serde_json::to_string(item).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
            matches!(old.get("body"), Some(AttributeValue::S(b)) if *b == ours)
        }
        // Gone, as the delete asked.
        (Write::Delete { .. }, None) => true,
        (Write::Delete { .. }, Some(old)) => !old.contains_key("body"),
        _ => false,
    };
    match landed {
        true => Ok(()),
        false => Err(StoreError::Conflict { index: 0 }),
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore { client, table: table.into(), serial_writes: None }
    }

    /// Serializes writes (see `serial_writes`); never needed against DynamoDB itself.
    pub fn with_serial_writes(mut self, on: bool) -> DynamoStore {
        self.serial_writes = on.then(|| tokio::sync::Mutex::new(()));
        self
    }

    /// Creates the table as `template.yaml` does (for tests against an emulator).
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let key = |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build();
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk").map_err(unavailable)?)
            .attribute_definitions(attr("sk").map_err(unavailable)?)
            .key_schema(key("pk", KeyType::Hash).map_err(unavailable)?)
            .key_schema(key("sk", KeyType::Range).map_err(unavailable)?)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .map_err(unavailable)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        let ttl =
            TimeToLiveSpecification::builder().enabled(true).attribute_name("exp_at").build().map_err(unavailable)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn single(&self, tx: &Transaction) -> Result<(), StoreError> {
        let w = &tx.writes[0];
        let outcome = match w {
            Write::Put { item, cond } => {
                let (update, e) = put_update(item, *cond, carried(tx, item))?;
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(&item.key())))
                    .update_expression(update)
                    .set_condition_expression(e.condition)
                    .set_expression_attribute_names(Some(e.names))
                    .set_expression_attribute_values(Some(e.values))
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| match e {
                        SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception() => {
                            match se.into_err() {
                                UpdateItemError::ConditionalCheckFailedException(c) => Ok(c.item),
                                _ => Ok(None),
                            }
                        }
                        other => Err(write_failure(other)),
                    })
            }
            Write::Delete { key, cond } => {
                let mut e = condition(*cond);
                let (names, values) = e.maps();
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(key)))
                    .set_condition_expression(e.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| match e {
                        SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception() => {
                            match se.into_err() {
                                DeleteItemError::ConditionalCheckFailedException(c) => Ok(c.item),
                                _ => Ok(None),
                            }
                        }
                        other => Err(write_failure(other)),
                    })
            }
            Write::Check { .. } => return self.many(tx).await,
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(Ok(old)) if tx.resubmitted => single_conflict(w, old.as_ref()),
            Err(Ok(_)) => Err(StoreError::Conflict { index: 0 }),
            Err(Err(e)) => Err(e),
        }
    }

    async fn many(&self, tx: &Transaction) -> Result<(), StoreError> {
        let mut items = Vec::with_capacity(tx.writes.len());
        for w in &tx.writes {
            let item = match w {
                Write::Put { item, cond } => {
                    let (update, e) = put_update(item, *cond, carried(tx, item))?;
                    let u = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(&item.key())))
                        .update_expression(update)
                        .set_condition_expression(e.condition)
                        .set_expression_attribute_names(Some(e.names))
                        .set_expression_attribute_values(Some(e.values))
                        .build()
                        .map_err(unavailable)?;
                    TransactWriteItem::builder().update(u).build()
                }
                Write::Delete { key, cond } => {
                    let mut e = condition(*cond);
                    let (names, values) = e.maps();
                    let d = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(key)))
                        .set_condition_expression(e.condition)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(unavailable)?;
                    TransactWriteItem::builder().delete(d).build()
                }
                Write::Check { key, cond } => {
                    let mut e = condition(*cond);
                    let expr =
                        e.condition.take().unwrap_or_else(|| "attribute_exists(pk) OR attribute_not_exists(pk)".into());
                    let (names, values) = e.maps();
                    let c = ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(key)))
                        .condition_expression(expr)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(unavailable)?;
                    TransactWriteItem::builder().condition_check(c).build()
                }
            };
            items.push(item);
        }
        // The token makes a resubmission of a transaction that did commit (the SDK's own retry,
        // or the executor's after `Unknown`) succeed without writing twice.
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(&tx.token)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) if se.err().is_transaction_canceled_exception() => match se.into_err() {
                TransactWriteItemsError::TransactionCanceledException(c) => Err(cancelled(c.cancellation_reasons())),
                other => Err(StoreError::Unknown(Box::new(other))),
            },
            Err(SdkError::ServiceError(se))
                if se.err().is_provisioned_throughput_exceeded_exception()
                    || se.err().is_request_limit_exceeded()
                    || se.err().is_throttling_exception() =>
            {
                Err(StoreError::Busy)
            }
            Err(SdkError::ServiceError(se)) if se.err().is_transaction_in_progress_exception() => {
                Err(StoreError::Unknown(Box::new(se.into_err())))
            }
            Err(other) => Err(write_failure(other)),
        }
    }
}

/// What a cancelled transaction means: a failed condition names its write; a collision with
/// another transaction (or throttling) wrote nothing and may be retried as it was.
fn cancelled(reasons: &[CancellationReason]) -> StoreError {
    if let Some(index) = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
        return StoreError::Conflict { index };
    }
    let retryable = ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"];
    if reasons.iter().any(|r| r.code().is_some_and(|c| retryable.contains(&c))) {
        return StoreError::Busy;
    }
    unavailable(format!("transaction cancelled: {reasons:?}"))
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Versioned<Item>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        match out.item() {
            Some(attrs) => decode(attrs),
            None => Ok(None),
        }
    }

    async fn query(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        ascending: bool,
    ) -> Result<Vec<Versioned<Item>>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Attrs> =
            after.map(|a| HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(a))]));
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .scan_index_forward(ascending)
                .limit((limit - out.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .expression_attribute_values(":pk", s(pk));
            q = if prefix.is_empty() {
                q.key_condition_expression("pk = :pk")
            } else {
                q.key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                    .expression_attribute_values(":p", s(prefix))
            };
            let page = q.send().await.map_err(unavailable)?;
            for attrs in page.items() {
                if let Some(v) = decode(attrs)? {
                    out.push(v);
                }
            }
            match page.last_evaluated_key() {
                Some(k) if out.len() < limit => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Versioned<Item>>>, StoreError> {
        let mut found: HashMap<(String, String), Versioned<Item>> = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(key_attrs).collect()))
                .consistent_read(true)
                .build()
                .map_err(unavailable)?;
            loop {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(unavailable)?;
                for attrs in out.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                        (attrs.get("pk"), attrs.get("sk"))
                    {
                        if let Some(v) = decode(attrs)? {
                            found.insert((pk.clone(), sk.clone()), v);
                        }
                    }
                }
                match out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() => pending = rest.clone(),
                    _ => break,
                }
            }
        }
        Ok(keys.iter().map(|k| found.remove(&(k.pk.clone(), k.sk.clone()))).collect())
    }

    async fn submit(&self, tx: &Transaction) -> Result<(), StoreError> {
        tx.check_count()?;
        let _serial = match &self.serial_writes {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        match tx.writes.len() {
            0 => Ok(()),
            1 => self.single(tx).await,
            _ => self.many(tx).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes.iter().map(|c| CancellationReason::builder().code(*c).build()).collect()
    }

    #[test]
    fn a_failed_condition_names_its_write() {
        assert!(matches!(
            cancelled(&reasons(&["None", "None", "ConditionalCheckFailed"])),
            StoreError::Conflict { index: 2 }
        ));
    }

    #[test]
    fn a_collision_with_another_transaction_is_busy_never_write_zero() {
        assert!(matches!(cancelled(&reasons(&["TransactionConflict", "None"])), StoreError::Busy));
        assert!(matches!(cancelled(&reasons(&["None", "ThrottlingError"])), StoreError::Busy));
    }

    #[test]
    fn other_cancellations_are_failures() {
        assert!(matches!(cancelled(&reasons(&["ValidationError"])), StoreError::Unavailable(_)));
    }
}
