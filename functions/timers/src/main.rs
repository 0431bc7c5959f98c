use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let state = lambda_entry::state().await?;
    let ports = &state.ports;
    lambda_runtime::run(service_fn(|ev: LambdaEvent<shared::ports::Timer>| async move {
        timers::function_handler(ports, ev.payload).await.map_err(lambda_runtime::Error::from)
    }))
    .await
}
