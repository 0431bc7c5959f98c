//! The local runner: every function's router on one port, the queue consumers and the timer
//! loop on the embedded SQLite backend, the WhatsApp sandbox, the dev clock and the web console.

pub mod bench;
mod console;
mod dev;
mod events;
#[cfg(feature = "aws")]
pub mod lambda_stub;
#[cfg(feature = "aws")]
pub mod stream;
mod workers;

use std::net::SocketAddr;

use std::sync::Arc;

use axum::Router;
use tokio::task::JoinHandle;

use shared::app::Embedded;
use shared::error::Report;
use shared::http::AppState;
use shared::live::hub::Hub;
use shared::Config;

pub use dev::local_claims;

pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub embedded: Embedded,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops the server and the loops (in-flight work is left for the next start to redo).
    pub fn shutdown(self) {
        for t in self.tasks {
            t.abort();
        }
    }

    /// Waits until the server stops (it does not, short of an error).
    pub async fn wait(mut self) {
        if let Some(server) = self.tasks.pop() {
            let _ = server.await;
        }
    }
}

pub fn router(state: AppState, embedded: &Embedded, hub: Option<Arc<Hub>>, named: bool) -> Router {
    // On AWS adapters, each function's routes run as that function's work, so that the AWS
    // calls they make are its calls (`telemetry::as_function`, recorded for the least-privilege
    // test); the embedded default, which makes none, goes without the layer.
    let of = |function: &'static str, routes: Router| match named {
        true => {
            routes.layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
                shared::telemetry::as_function(function, next.run(req))
            }))
        }
        false => routes,
    };
    let mut app = Router::new()
        .merge(of("webhook", webhook::router(state.clone())))
        .merge(of("optin", optin::router(state.clone())))
        .merge(of("participants", participants::router(state.clone())))
        .merge(of("admin", admin::router(state.clone())))
        .merge(of("send", send::router(state.clone())));
    if let Some(clock) = &embedded.dev_clock {
        app = app.merge(dev::clock_router(state.clone(), embedded.clone(), clock.clone()));
    }
    if let Some(sandbox) = &embedded.sandbox {
        app = app.merge(dev::sandbox_router(sandbox.clone())).merge(dev::token_router(state.clone()));
    }
    let console = Arc::new(console::Console::new(state.clone(), embedded));
    let app = app.fallback(console::fallback(console)).method_not_allowed_fallback(dev::method_not_allowed);
    // The event streams in front, with everything else behind them: a connection's memory grows
    // with the route table it is served from, and a thousand streams held 13 MB more when
    // `/events` was one route among forty (`live-bench`: 57 MB against 44).
    let app = match hub {
        Some(hub) => {
            events::router(state, hub).method_not_allowed_fallback(dev::method_not_allowed).fallback_service(app)
        }
        None => app,
    };
    // Input bounds around the whole router at once, rather than layered on each of its routes
    // (webhook-bench measured 1,769-1,783/s that way, 1,885-2,200/s this way, on a noisy host).
    Router::new().fallback_service(app).layer(axum::middleware::from_fn(shared::http::bounded_input))
}

/// Why this configuration must not start, if it must not: the README's public secrets, the
/// unauthenticated sandbox (it posts signed webhooks and mints tokens) and the dev clock are
/// for a runner on loopback that keeps its state to itself. With a real Graph API or AWS
/// resources, the secrets must be one's own; listening beyond loopback, nothing of the three
/// may be on; with AWS resources, no sandbox, and no dev clock but against an emulator
/// (`CONNECTOR_DYNAMODB_SERIAL_WRITES=1`, which the tests set).
pub fn unsafe_setup(config: &Config) -> Option<String> {
    let exposed = !on_loopback(&config.listen);
    let aws = config.aws.as_ref();
    let mut problems = Vec::new();
    let public = config.public_secrets();
    if !public.is_empty() && (exposed || aws.is_some() || config.whatsapp_api_base_url.is_some()) {
        problems.push(format!("{} must be set: the local defaults are public", public.join(", ")));
    }
    if config.whatsapp_api_base_url.is_none() && (exposed || aws.is_some()) {
        problems.push(
            "WHATSAPP_API_BASE_URL must be set: the built-in sandbox is for a runner on loopback with its own data"
                .into(),
        );
    }
    if config.dev_clock && (exposed || aws.is_some_and(|r| !r.serial_writes)) {
        problems.push("CONNECTOR_DEV_CLOCK must be off: anyone who reaches it can move time".into());
    }
    let place = match (exposed, aws.is_some(), config.whatsapp_api_base_url.is_some()) {
        (true, _, _) => format!("listens on {}, beyond loopback", config.listen),
        (false, true, _) => "uses AWS resources".to_string(),
        _ => "talks to Meta".to_string(),
    };
    (!problems.is_empty()).then(|| format!("this runner {place}, so {}", problems.join("; ")))
}

/// The state and queue consumers on AWS: the AWS ports, with the local clock, WhatsApp and
/// timer loop (an emulator's scheduler may never fire).
#[cfg(feature = "aws")]
fn on_aws(
    config: Config,
    r: &shared::config::AwsResources,
    clients: AwsClients,
    embedded: &shared::http::AppState,
) -> (shared::http::AppState, workers::Consumers) {
    let mut ports =
        shared::app::aws_ports(&config, r, &clients, embedded.ports.clock.clone(), embedded.ports.whatsapp.clone());
    ports.scheduler =
        std::sync::Arc::new(workers::BothSchedulers(ports.scheduler.clone(), embedded.ports.scheduler.clone()));
    let mut state = shared::http::AppState::new(ports, config);
    // No API Gateway in front of the local runner: it checks the tokens itself.
    let c = &state.config;
    state.auth = std::sync::Arc::new(shared::http::JwtVerifier::hs256_for(
        &c.jwt_secret,
        c.jwt_issuer.as_deref(),
        &c.jwt_audience,
    ));
    let consumers = workers::Consumers::Sqs {
        clients,
        outbound: r.outbound_queue_url.clone(),
        receipts: r.receipts_queue_url.clone(),
        table: r.table.clone(),
    };
    (state, consumers)
}

/// Whether `listen` (`host:port`) is a loopback address only this machine can reach.
fn on_loopback(listen: &str) -> bool {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => listen.rsplit_once(':').is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
    }
}

/// Opens the data directory, binds `config.listen` (port 0 picks one) and starts everything:
/// on the embedded backend, or on AWS when `CONNECTOR_TABLE` and the other resource names are
/// set (then the SDK's standard configuration, e.g. `AWS_ENDPOINT_URL`, says where AWS is).
pub async fn start(config: Config) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    let clients = match config.aws {
        #[cfg(feature = "aws")]
        Some(_) => Some(AwsClients::from_env().await),
        #[cfg(not(feature = "aws"))]
        Some(_) => {
            return Err("CONNECTOR_TABLE names AWS resources, but this build has no AWS adapters: \
                               build with `--features aws`"
                .into())
        }
        None => None,
    };
    start_with(config, clients).await
}

/// The AWS SDK's clients, configured the standard way (`AWS_ENDPOINT_URL`, ...).
#[cfg(feature = "aws")]
pub type AwsClients = shared::adapters::aws::AwsClients;
/// None: this build has no AWS adapters (the `aws` feature).
#[cfg(not(feature = "aws"))]
pub enum AwsClients {}

/// As `start`, with the AWS clients to use when the configuration names AWS resources.
pub async fn start_with(
    config: Config,
    clients: Option<AwsClients>,
) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    if let Some(refusal) = unsafe_setup(&config) {
        return Err(refusal.into());
    }
    let listen = config.listen.clone();
    let (embedded_state, embedded) = shared::app::embedded(config.clone()).await?;
    let on_embedded = config.aws.is_none();
    let (state, consumers) = match (config.aws.clone(), clients) {
        #[cfg(feature = "aws")]
        (Some(r), Some(clients)) => on_aws(config, &r, clients, &embedded_state),
        _ => (embedded_state, workers::Consumers::Embedded),
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    if let Some(sandbox) = &embedded.sandbox {
        sandbox.connect(format!("http://{addr}/webhook"));
    }
    let mut tasks = workers::spawn(state.clone(), embedded.clone(), consumers);
    // Live events need the embedded store's change feed (on AWS they go over WebSockets).
    let hub = match on_embedded {
        true => {
            let (hub, task) = Hub::start(state.ports.clone(), Arc::new(embedded.store.clone())).await?;
            tasks.insert(0, task);
            Some(hub)
        }
        false => None,
    };
    let app = router(state.clone(), &embedded, hub, !on_embedded);
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error.message = %Report(&e), "server stopped");
        }
    }));
    tracing::info!(%addr, sandbox = embedded.sandbox.is_some(), dev_clock = embedded.dev_clock.is_some(), "connector listening");
    Ok(Running { addr, state, embedded, tasks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap()
    }

    const OWN_SECRETS: [(&str, &str); 4] = [
        ("WHATSAPP_APP_SECRET", "a"),
        ("WHATSAPP_VERIFY_TOKEN", "b"),
        ("AUTH_JWT_SECRET", "c"),
        ("CONNECTOR_ARCHIVE_KEY", "d"),
    ];

    const AWS: [(&str, &str); 7] = [
        ("CONNECTOR_TABLE", "t"),
        ("OUTBOUND_QUEUE_URL", "q"),
        ("RECEIPTS_QUEUE_URL", "r"),
        ("SCHEDULE_GROUP", "g"),
        ("TIMERS_FUNCTION_ARN", "f"),
        ("SCHEDULER_ROLE_ARN", "s"),
        ("MEDIA_BUCKET", "m"),
    ];

    #[test]
    fn the_newcomers_runner_on_loopback_starts_with_every_default() {
        assert_eq!(unsafe_setup(&config(&[("CONNECTOR_DEV_CLOCK", "1")])), None);
        assert_eq!(unsafe_setup(&config(&[("CONNECTOR_LISTEN", "localhost:8080")])), None);
        assert_eq!(unsafe_setup(&config(&[("CONNECTOR_LISTEN", "[::1]:3000")])), None);
    }

    #[test]
    fn beyond_loopback_public_secrets_the_sandbox_and_the_dev_clock_are_refused() {
        let why = unsafe_setup(&config(&[("CONNECTOR_LISTEN", "0.0.0.0:3000"), ("CONNECTOR_DEV_CLOCK", "1")])).unwrap();
        assert!(why.starts_with("this runner listens on 0.0.0.0:3000, beyond loopback"), "{why}");
        for name in ["WHATSAPP_APP_SECRET", "CONNECTOR_ARCHIVE_KEY", "WHATSAPP_API_BASE_URL", "CONNECTOR_DEV_CLOCK"] {
            assert!(why.contains(name), "{name}: {why}");
        }
        let mut own: Vec<(&str, &str)> = OWN_SECRETS.to_vec();
        own.extend([
            ("CONNECTOR_LISTEN", "192.168.1.5:3000"),
            ("WHATSAPP_API_BASE_URL", "https://graph.facebook.com/v25.0"),
            ("WHATSAPP_ACCESS_TOKEN", "t"),
        ]);
        assert_eq!(unsafe_setup(&config(&own)), None, "own secrets, Meta's API, no dev clock");
    }

    #[test]
    fn with_aws_resources_the_sandbox_is_refused_and_the_dev_clock_only_against_an_emulator() {
        let mut vars: Vec<(&str, &str)> = OWN_SECRETS.to_vec();
        vars.extend(AWS);
        let why = unsafe_setup(&config(&vars)).unwrap();
        assert!(why.starts_with("this runner uses AWS resources") && why.contains("WHATSAPP_API_BASE_URL"), "{why}");
        vars.extend([("WHATSAPP_API_BASE_URL", "http://127.0.0.1:9/v25.0"), ("WHATSAPP_ACCESS_TOKEN", "t")]);
        assert_eq!(unsafe_setup(&config(&vars)), None);
        vars.push(("CONNECTOR_DEV_CLOCK", "1"));
        assert!(unsafe_setup(&config(&vars)).unwrap().contains("CONNECTOR_DEV_CLOCK"));
        vars.push(("CONNECTOR_DYNAMODB_SERIAL_WRITES", "1"));
        assert_eq!(unsafe_setup(&config(&vars)), None, "the tests' emulator");
    }
}
