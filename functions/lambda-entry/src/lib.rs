//! What every function's `main.rs` shares: logging and state built once per cold start, and,
//! for HTTP functions, the claims the HTTP API's JWT authorizer checked, as the caller.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;

use shared::http::AppState;
use shared::usecases::Caller;

/// Logging, business metrics (EMF), configuration and adapters, once per cold start. On AWS
/// one cheap read opens the HTTPS connection to DynamoDB during init, so the first event does
/// not pay for it.
pub async fn state() -> Result<AppState, lambda_runtime::Error> {
    shared::telemetry::init();
    shared::metrics::enable();
    let state = shared::app::lambda_state().await?;
    if state.config.aws.is_some() {
        let warm = shared::ports::Key { pk: "WARM".into(), sk: "WARM".into() };
        if let Err(e) = state.ports.store.get(&warm).await {
            tracing::warn!(error.message = %e, "warming the DynamoDB connection failed");
        }
    }
    Ok(state)
}

/// Runs an HTTP function's router under API Gateway.
pub async fn run_http(router: fn(AppState) -> Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(with_authorizer(router(state().await?))).await
}

/// The router as API Gateway drives it: the authorizer's claims become the caller.
pub fn with_authorizer(router: Router) -> Router {
    router
        .layer(axum::middleware::from_fn(authorizer_claims))
        .layer(axum::middleware::from_fn(shared::http::bounded_input))
}

/// Puts the authorizer's claims on the request as the `Caller` the handlers' `Identity` reads.
async fn authorizer_claims(mut req: Request, next: Next) -> Response {
    let caller = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).and_then(|jwt| Caller::from_claims(&jwt.claims))
        }
        _ => None,
    };
    if let Some(caller) = caller {
        req.extensions_mut().insert(caller);
    }
    next.run(req).await
}

/// Runs an SQS-triggered function: `handler` gets the shared ports, one batch, and the time by
/// which the invocation must answer.
pub async fn run_sqs<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(shared::usecases::Ports, aws_lambda_events::sqs::SqsEvent, Option<std::time::Instant>) -> Fut,
    Fut: std::future::Future<Output = aws_lambda_events::sqs::SqsBatchResponse>,
{
    let ports = state().await?.ports;
    lambda_runtime::run(lambda_runtime::service_fn(
        |ev: lambda_runtime::LambdaEvent<aws_lambda_events::sqs::SqsEvent>| {
            // The context's deadline is wall-clock milliseconds; the runner wants an instant.
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let left = std::time::Duration::from_millis(ev.context.deadline.saturating_sub(now_ms));
            let fut = handler(ports.clone(), ev.payload, Some(std::time::Instant::now() + left));
            async move { Ok::<_, lambda_runtime::Error>(fut.await) }
        },
    ))
    .await
}

/// How a queue's records relate: FIFO records of one group must not run out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    Fifo,
    Standard,
}

/// What the queue runner needs to know about a queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueSpec {
    pub kind: shared::ports::QueueKind,
    pub ordering: Ordering,
    /// The longest one record can take (its Graph API calls' time-outs and more): a record is
    /// only started while that much time is left before the deadline.
    pub per_record: std::time::Duration,
}

/// The one queue runner, for SQS batches on Lambda and (through the same handlers) the local
/// runner's SQS consumer. Every record goes through `handle`; the ones to redeliver are reported:
/// - `RetryAfter(d)`: made visible again after `d` (`ChangeMessageVisibility`), not after the
///   queue's fixed visibility timeout;
/// - FIFO: after a record of a group fails or must wait, the later records of that group are
///   not run (never out of order); they come back with it. They were not attempted: the
///   handlers count attempts on the message itself (dispatch's claim), not by receive count;
/// - a record that could not finish before `deadline` is not started, and comes back at once;
/// - a body that is not a job is logged and dropped.
pub async fn process_sqs<J, F, Fut>(
    event: aws_lambda_events::sqs::SqsEvent,
    spec: QueueSpec,
    queue: &dyn shared::ports::Queue,
    deadline: Option<std::time::Instant>,
    handle: F,
) -> aws_lambda_events::sqs::SqsBatchResponse
where
    J: serde::de::DeserializeOwned,
    F: Fn(J, u32) -> Fut,
    Fut: std::future::Future<Output = Result<shared::ports::Disposition, shared::usecases::UseCaseError>>,
{
    use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
    use shared::ports::Disposition;
    use std::time::Duration;
    // Per FIFO group that stopped: when its records should come back.
    let mut stopped: std::collections::HashMap<String, Duration> = Default::default();
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let receipt = record.receipt_handle.clone().unwrap_or_default();
        let group = record.attributes.get("MessageGroupId").cloned().unwrap_or_default();
        let receives = record.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
        let out_of_time = deadline.is_some_and(|d| std::time::Instant::now() + spec.per_record > d);
        let later: Option<Duration> =
            if let Some(after) = stopped.get(&group).filter(|_| spec.ordering == Ordering::Fifo) {
                Some(*after)
            } else if out_of_time {
                Some(Duration::ZERO)
            } else {
                match record.body.as_deref().map(serde_json::from_str::<J>) {
                    Some(Ok(job)) => match handle(job, receives).await {
                        Ok(Disposition::Done) => None,
                        Ok(Disposition::RetryAfter(after)) => Some(after),
                        Err(e) => {
                            tracing::error!(message_id = %id, error.message = %e, "queue record failed");
                            // The queue's own visibility timeout paces a failure.
                            Some(Duration::MAX)
                        }
                    },
                    _ => {
                        tracing::error!(message_id = %id, "queue record is not a job; dropped");
                        None
                    }
                }
            };
        let Some(after) = later else { continue };
        if after != Duration::MAX {
            if let Err(e) = queue.delay(spec.kind, &receipt, after).await {
                tracing::warn!(message_id = %id, error.message = %e, "could not set when the record comes back");
            }
        }
        stopped.entry(group).or_insert(after);
        let mut f = BatchItemFailure::default();
        f.item_identifier = id;
        failures.push(f);
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}
