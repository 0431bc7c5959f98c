#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_entry::run_sqs(
        |ports, batch, deadline| async move { dispatch::function_handler(&ports, batch, deadline).await },
    )
    .await
}
