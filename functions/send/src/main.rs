#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_entry::run_http(send::router).await
}
