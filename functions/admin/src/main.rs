#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let (state, _) = shared::app::embedded(shared::Config::from_env()?).await?;
    lambda_http::run(admin::router(state)).await
}
