//! JSON logs for CloudWatch and the local runner alike; level from `RUST_LOG` or
//! `AWS_LAMBDA_LOG_LEVEL`, default `info`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::new(filter))
        .with_target(false)
        .with_current_span(false)
        .without_time()
        .try_init();
}
