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

tokio::task_local! {
    /// The function (template.yaml's, by handler name) whose work the current task does: one
    /// per process on Lambda, many in the local runner, which names each around its work.
    static FUNCTION: &'static str;
}

/// Runs `work` as the function `name`'s.
pub async fn as_function<F: std::future::Future>(name: &'static str, work: F) -> F::Output {
    FUNCTION.scope(name, work).await
}

/// The function whose work this task does, if one was named.
pub fn current_function() -> Option<&'static str> {
    FUNCTION.try_with(|f| *f).ok()
}
