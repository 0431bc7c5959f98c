//! The one executable every function ships: Lambda passes a function's `Handler` as `_HANDLER`,
//! and that name picks which function this cold start runs. One binary is one release link for
//! the whole stack instead of one per function.

use std::sync::Arc;

use axum::Router;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::error::Report;
use shared::http::AppState;

/// The handlers `template.yaml` names, in its order.
const HANDLERS: [&str; 10] =
    ["webhook", "send", "optin", "participants", "admin", "receipts", "dispatch", "timers", "live", "archiver"];

#[tokio::main]
async fn main() -> Result<(), Error> {
    let handler = std::env::var("_HANDLER").unwrap_or_default();
    match handler.as_str() {
        "webhook" => run_http(webhook::router).await,
        "send" => run_http(send::router).await,
        "optin" => run_http(optin::router).await,
        "participants" => run_http(participants::router).await,
        "admin" => run_http(admin::router).await,
        "receipts" => {
            run_sqs(|ports, batch, deadline| async move { receipts::function_handler(&ports, batch, deadline).await })
                .await
        }
        "dispatch" => {
            run_sqs(|ports, batch, deadline| async move { dispatch::function_handler(&ports, batch, deadline).await })
                .await
        }
        "timers" => timers().await,
        "live" => live().await,
        "archiver" => archiver().await,
        other => Err(format!("_HANDLER is {other:?}: expected one of {}", HANDLERS.join(", ")).into()),
    }
}

/// Logging, business metrics (EMF), configuration and adapters, once per cold start. On AWS
/// one cheap read opens the HTTPS connection to DynamoDB during init, so the first event does
/// not pay for it.
async fn state() -> Result<AppState, Error> {
    shared::telemetry::init();
    shared::metrics::enable();
    // Each function reads only the secrets its handler needs.
    let state = shared::app::lambda_state(&std::env::var("_HANDLER").unwrap_or_default()).await?;
    if state.config.aws.is_some() {
        let warm = shared::ports::Key { pk: "WARM".into(), sk: "WARM".into() };
        if let Err(e) = state.ports.store.get(&warm).await {
            tracing::warn!(error.message = %Report(&e), "warming the DynamoDB connection failed");
        }
    }
    Ok(state)
}

/// Runs an HTTP function's router under API Gateway.
async fn run_http(router: fn(AppState) -> Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_entry::with_authorizer(router(state().await?))).await
}

/// Runs an SQS-triggered function: `handler` gets the shared ports, one batch, and the time by
/// which the invocation must answer.
async fn run_sqs<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(shared::usecases::Ports, aws_lambda_events::sqs::SqsEvent, Option<std::time::Instant>) -> Fut,
    Fut: std::future::Future<Output = aws_lambda_events::sqs::SqsBatchResponse>,
{
    let ports = state().await?.ports;
    lambda_runtime::run(service_fn(|ev: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| {
        // The context's deadline is wall-clock milliseconds; the runner wants an instant.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let left = std::time::Duration::from_millis(ev.context.deadline.saturating_sub(now_ms));
        let fut = handler(ports.clone(), ev.payload, Some(std::time::Instant::now() + left));
        async move { Ok::<_, Error>(fut.await) }
    }))
    .await
}

/// Scheduler's timers: a window expiry, an opt-in retry, a reminder.
async fn timers() -> Result<(), Error> {
    let state = state().await?;
    let ports = &state.ports;
    lambda_runtime::run(service_fn(|ev: LambdaEvent<shared::ports::Timer>| async move {
        timers::function_handler(ports, ev.payload).await.map_err(Error::from)
    }))
    .await
}

/// The WebSocket API's authorizer and routes, and the table stream's fan-out.
async fn live() -> Result<(), Error> {
    let state = state().await?;
    let auth = match &state.config.jwt_issuer {
        Some(issuer) => live::Auth::Jwks(shared::http::JwksVerifier::new(issuer, state.config.jwt_audience.clone())),
        None => live::Auth::Local(shared::http::JwtVerifier::hs256(&state.config.jwt_secret)),
    };
    let endpoint = std::env::var("LIVE_ENDPOINT").unwrap_or_default();
    let push =
        live::push::ApiGatewayPush::for_endpoint(&shared::adapters::aws::config_loader().load().await, &endpoint);
    let live = live::Live { ports: state.ports.clone(), push: Arc::new(push), auth, agents: Default::default() };
    let live = &live;
    lambda_runtime::run(service_fn(|ev: LambdaEvent<serde_json::Value>| async move {
        live::handle(live, ev.payload).await.map_err(Error::from)
    }))
    .await
}

/// The archive, from the table's stream (or an operator's audit or reconciliation).
async fn archiver() -> Result<(), Error> {
    let state = state().await?;
    let ports = &state.ports;
    lambda_runtime::run(service_fn(|ev: LambdaEvent<serde_json::Value>| async move {
        archiver::handle(ports, &ev.payload).await.map_err(Error::from)
    }))
    .await
}

#[cfg(test)]
mod tests {
    /// Every function in the template names a handler this executable runs, and each runs once.
    #[test]
    fn the_templates_handlers_are_the_ones_this_executable_runs() {
        let template = include_str!("../../../template.yaml");
        let named: Vec<&str> =
            template.lines().filter_map(|l| l.trim().strip_prefix("Handler: ")).map(str::trim).collect();
        assert_eq!(named, super::HANDLERS);
        let builds = template.matches("BuildProperties: { Binary: bootstrap }").count();
        assert_eq!(builds, named.len(), "every function builds the one bootstrap executable");
    }
}
