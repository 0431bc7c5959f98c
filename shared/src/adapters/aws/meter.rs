//! A meter on the AWS clients: an SDK interceptor that records every request the adapters
//! make, with the DynamoDB items it writes and the units it is billed, and the list prices
//! that turn them into dollars. The call-budget test and `aws-cost` read it; no function
//! installs it.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::AwsClients;

/// One request: the service, the operation, the DynamoDB items it writes, and the write and
/// read units it is billed on demand.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: &'static str,
    pub operation: String,
    pub item_writes: u32,
    pub write_units: u32,
    /// Strongly consistent reads of items under 4 KB: one unit per item asked for (a query's
    /// few small items: one).
    pub read_units: u32,
    /// The request's body, in bytes (an S3 object's size).
    pub bytes: usize,
}

/// The calls recorded so far; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<Mutex<Vec<Call>>>);

impl Meter {
    /// The calls recorded since the last `take`.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// `clients` with this meter on DynamoDB, SQS, Scheduler and S3 (Secrets Manager is read
    /// once per cold start, Athena once per officer's search, neither per message).
    pub fn clients(&self, base: &AwsClients) -> AwsClients {
        let tap = |service| Tap { service, calls: self.clone() };
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                base.dynamodb.config().to_builder().interceptor(tap("dynamodb")).build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(base.sqs.config().to_builder().interceptor(tap("sqs")).build()),
            scheduler: aws_sdk_scheduler::Client::from_conf(
                base.scheduler.config().to_builder().interceptor(tap("scheduler")).build(),
            ),
            s3: aws_sdk_s3::Client::from_conf(base.s3.config().to_builder().interceptor(tap("s3")).build()),
            secretsmanager: base.secretsmanager.clone(),
            athena: base.athena.clone(),
            eventbridge: aws_sdk_eventbridge::Client::from_conf(
                base.eventbridge.config().to_builder().interceptor(tap("eventbridge")).build(),
            ),
            sdk_config: base.sdk_config.clone(),
        }
    }
}

#[derive(Debug)]
struct Tap {
    service: &'static str,
    calls: Meter,
}

impl Intercept for Tap {
    fn name(&self) -> &'static str {
        "Meter"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request();
        let operation = req
            .headers()
            .get("x-amz-target")
            .map(|t| t.rsplit('.').next().unwrap_or(t).to_string())
            // S3 (no target header): the method alone, an object's key is no operation.
            .unwrap_or_else(|| req.method().to_string());
        let body = req.body().bytes().unwrap_or_default();
        let (item_writes, write_units) = write_units(&operation, body);
        let read_units = match operation.as_str() {
            "GetItem" | "Query" => 1,
            "BatchGetItem" => serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v["RequestItems"]
                        .as_object()
                        .map(|tables| tables.values().map(|t| t["Keys"].as_array().map_or(0, |k| k.len() as u32)).sum())
                })
                .unwrap_or(0),
            _ => 0,
        };
        let call = Call { service: self.service, operation, item_writes, write_units, read_units, bytes: body.len() };
        self.calls.0.lock().unwrap_or_else(|p| p.into_inner()).push(call);
        Ok(())
    }
}

/// Items written and on-demand write units: a unit per started KB of item, doubled inside a
/// transaction.
fn write_units(operation: &str, body: &[u8]) -> (u32, u32) {
    match operation {
        "PutItem" | "UpdateItem" | "DeleteItem" => (1, (body.len() as u32).div_ceil(1024).max(1)),
        "TransactWriteItems" => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v["TransactItems"].as_array().map(|a| {
                    let units: u32 = a.iter().map(|i| item_size(i).div_ceil(1024).max(1) * 2).sum();
                    (a.len() as u32, units)
                })
            })
            .unwrap_or((0, 0)),
        _ => (0, 0),
    }
}

/// The size DynamoDB bills a transaction's item write by: attribute names and values of the
/// item as stored (a put is an `Update` that sets `body`, `v`, maybe `exp_at` and `rec`), not
/// the request's JSON, which escapes the body a second time. A check or delete: its request.
fn item_size(transact_item: &serde_json::Value) -> u32 {
    let Some(update) = transact_item.get("Update") else { return transact_item.to_string().len() as u32 };
    let text = |v: &serde_json::Value| v.as_str().map_or(0, str::len) as u32;
    let key: u32 = update["Key"]
        .as_object()
        .map(|k| k.iter().map(|(name, v)| name.len() as u32 + text(&v["S"])).sum())
        .unwrap_or(0);
    let values = &update["ExpressionAttributeValues"];
    let body = "body".len() as u32 + text(&values[":b"]["S"]);
    let version = "v".len() as u32 + 8;
    let expiry = if values.get(":exp").is_some() { "exp_at".len() as u32 + 8 } else { 0 };
    let records = values.get(":r").map_or(0, |r| "rec".len() as u32 + text(&r["S"]));
    key + body + version + expiry + records
}

/// List prices, us-east-1, in dollars per million (of what each names).
pub mod price {
    /// DynamoDB on demand: write and read request units.
    pub const WRITE_UNIT: f64 = 0.625;
    pub const READ_UNIT: f64 = 0.125;
    /// DynamoDB provisioned, per unit-hour, and a million units' worth at full use.
    pub const WCU_HOUR: f64 = 0.000_65;
    pub const RCU_HOUR: f64 = 0.000_13;
    /// SQS requests (a batch of up to 10 messages is one request).
    pub const SQS_FIFO: f64 = 0.50;
    pub const SQS_STANDARD: f64 = 0.40;
    /// EventBridge Scheduler invocations (its API calls are not billed).
    pub const SCHEDULER_INVOCATION: f64 = 1.00;
    /// S3 Standard: PUT (and COPY, POST, LIST) and GET requests; storage per GB-month.
    pub const S3_PUT: f64 = 5.00;
    pub const S3_GET: f64 = 0.40;
    pub const S3_GB_MONTH: f64 = 0.023;
    /// Lambda on arm64: requests, and a GB-second (per million GB-seconds).
    pub const LAMBDA_REQUEST: f64 = 0.20;
    pub const LAMBDA_GB_SECOND: f64 = 13.3334;
    /// API Gateway: HTTP API requests, WebSocket messages (per 32 KB).
    pub const HTTP_API_REQUEST: f64 = 1.00;
    pub const WEBSOCKET_MESSAGE: f64 = 1.00;
    /// CloudWatch Logs ingestion, per GB.
    pub const LOGS_GB: f64 = 0.50;
}

/// What the table and the queues charge for `calls`, in dollars per million times the calls
/// were made (the outbound queue, the FIFO one, is the only queue a message's path writes
/// to; the receipts queue takes only statuses that overtook their send).
pub fn table_and_queues(calls: &[&Call]) -> f64 {
    calls
        .iter()
        .map(|c| match c.service {
            "dynamodb" => price::WRITE_UNIT * f64::from(c.write_units) + price::READ_UNIT * f64::from(c.read_units),
            "sqs" => price::SQS_FIFO,
            _ => 0.0,
        })
        .sum()
}

/// Write and read units of `calls`.
pub fn units(calls: &[&Call]) -> (u32, u32) {
    (calls.iter().map(|c| c.write_units).sum(), calls.iter().map(|c| c.read_units).sum())
}
