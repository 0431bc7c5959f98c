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

/// Logging, configuration and adapters, once per cold start.
pub async fn state() -> Result<AppState, lambda_runtime::Error> {
    shared::telemetry::init();
    Ok(shared::app::from_env(shared::Config::from_env()?).await?)
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
