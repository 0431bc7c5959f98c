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

/// Logging, configuration and adapters, once per cold start. On AWS one cheap read opens the
/// HTTPS connection to DynamoDB during init, so the first event does not pay for it.
pub async fn state() -> Result<AppState, lambda_runtime::Error> {
    shared::telemetry::init();
    let state = shared::app::from_env(shared::Config::from_env()?).await?;
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
    router.layer(axum::middleware::from_fn(authorizer_claims))
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

/// Runs an SQS-triggered function: `handler` gets the shared ports and one batch.
pub async fn run_sqs<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(shared::usecases::Ports, aws_lambda_events::sqs::SqsEvent) -> Fut,
    Fut: std::future::Future<Output = aws_lambda_events::sqs::SqsBatchResponse>,
{
    let ports = state().await?.ports;
    lambda_runtime::run(lambda_runtime::service_fn(
        |ev: lambda_runtime::LambdaEvent<aws_lambda_events::sqs::SqsEvent>| {
            let fut = handler(ports.clone(), ev.payload);
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

/// Runs every record of an SQS batch through `handle` and reports the ones to redeliver. On a
/// FIFO queue, after the first failure of a group, that record and every later one of the same
/// group are reported instead of run. A body that is not a job is logged and dropped.
pub async fn process_sqs<J, F, Fut>(
    event: aws_lambda_events::sqs::SqsEvent,
    ordering: Ordering,
    handle: F,
) -> aws_lambda_events::sqs::SqsBatchResponse
where
    J: serde::de::DeserializeOwned,
    F: Fn(J, u32) -> Fut,
    Fut: std::future::Future<Output = Result<shared::ports::Disposition, shared::usecases::UseCaseError>>,
{
    use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
    let mut failed_groups = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record.attributes.get("MessageGroupId").cloned().unwrap_or_default();
        let receives = record.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
        let ok = if ordering == Ordering::Fifo && failed_groups.contains(&group) {
            false
        } else {
            match record.body.as_deref().map(serde_json::from_str::<J>) {
                Some(Ok(job)) => match handle(job, receives).await {
                    Ok(shared::ports::Disposition::Done) => true,
                    Ok(shared::ports::Disposition::RetryAfter(_)) => false,
                    Err(e) => {
                        tracing::error!(message_id = %id, error.message = %e, "queue record failed");
                        false
                    }
                },
                _ => {
                    tracing::error!(message_id = %id, "queue record is not a job; dropped");
                    true
                }
            }
        };
        if !ok {
            failed_groups.insert(group);
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            failures.push(f);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}
