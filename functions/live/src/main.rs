use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use live::push::ApiGatewayPush;
use live::{Auth, Live};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let state = lambda_entry::state().await?;
    let auth = match &state.config.jwt_issuer {
        Some(issuer) => Auth::Jwks(shared::http::JwksVerifier::new(issuer, state.config.jwt_audience.clone())),
        None => Auth::Local(shared::http::JwtVerifier::hs256(&state.config.jwt_secret)),
    };
    let endpoint = std::env::var("LIVE_ENDPOINT").unwrap_or_default();
    let push = ApiGatewayPush::for_endpoint(&aws_config::load_from_env().await, &endpoint);
    let live = Live { ports: state.ports.clone(), push: Arc::new(push), auth };
    let live = &live;
    lambda_runtime::run(service_fn(|ev: LambdaEvent<Value>| async move {
        live::handle(live, ev.payload).await.map_err(lambda_runtime::Error::from)
    }))
    .await
}
