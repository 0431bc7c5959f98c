use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let (state, _) = shared::app::embedded(shared::Config::from_env()?).await?;
    let ports = &state.ports;
    lambda_runtime::run(service_fn(|ev: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(receipts::function_handler(ports, ev.payload).await)
    }))
    .await
}
