//! Builds the state every function shares from `Config`: on the embedded backend (the local
//! runner's default), with Meta's Graph API or the built-in sandbox.

use std::sync::Arc;

#[cfg(feature = "aws")]
use crate::adapters::aws::{AwsClients, DynamoStore, EventBridgeScheduler, S3MediaStore, S3Vault, SqsQueue};
use crate::adapters::clock::SystemClock;
#[cfg(feature = "embedded")]
use crate::adapters::embedded::{
    Db, DevClock, DiskMediaStore, DiskVault, FileJournal, SqliteIndex, SqliteQueue, SqliteScheduler, SqliteStore,
};
use crate::adapters::graph::GraphWhatsApp;
#[cfg(feature = "sandbox")]
use crate::adapters::sandbox::SandboxWhatsApp;
#[cfg(feature = "aws")]
use crate::config::AwsResources;
use crate::config::{Config, ConfigError};
#[cfg(feature = "embedded")]
use crate::error::Report;
use crate::http::AppState;
#[cfg(feature = "aws")]
use crate::ports::Store;
use crate::ports::{Clock, WhatsApp};
use crate::usecases::Ports;

/// The embedded backends behind an `AppState`, for the loops that drive them.
#[cfg(feature = "embedded")]
#[derive(Clone)]
pub struct Embedded {
    pub db: Db,
    pub store: SqliteStore,
    pub queue: SqliteQueue,
    pub scheduler: SqliteScheduler,
    /// Present when `CONNECTOR_DEV_CLOCK=1`.
    pub dev_clock: Option<Arc<DevClock>>,
    /// Present when no `WHATSAPP_API_BASE_URL` is configured.
    pub sandbox: Option<Arc<SandboxWhatsApp>>,
}

#[cfg(feature = "embedded")]
pub async fn embedded(config: Config) -> Result<(AppState, Embedded), ConfigError> {
    let db = Db::open(&config.data_dir)
        .map_err(|e| ConfigError(format!("{}: {}", config.data_dir.display(), Report(&e))))?;
    let (clock, dev_clock): (Arc<dyn Clock>, _) = if config.dev_clock {
        let dev = Arc::new(DevClock::load(db.clone()).await.map_err(|e| ConfigError(Report(&e).to_string()))?);
        (dev.clone(), Some(dev))
    } else {
        (Arc::new(SystemClock), None)
    };
    // The sandbox is kept apart too: the runner's console drives the contact's side of it.
    let sandbox = config.whatsapp_api_base_url.is_none().then(|| sandbox(&config, clock.clone()));
    let whatsapp = match &sandbox {
        Some(sandbox) => guarded(&config, sandbox.clone()),
        None => whatsapp(&config, clock.clone())?,
    };
    let store = SqliteStore::new(db.clone());
    let queue = SqliteQueue::new(db.clone(), clock.clone());
    let scheduler = SqliteScheduler::new(db.clone());
    let ports = Ports {
        store: Arc::new(store.clone()),
        media: Arc::new(DiskMediaStore::new(&config.data_dir).map_err(|e| ConfigError(Report(&e).to_string()))?),
        vault: Arc::new(DiskVault::new(&config.data_dir)),
        index: Arc::new(SqliteIndex::new(db.clone())),
        journal: Arc::new(FileJournal::new(&config.data_dir)),
        queue: Arc::new(queue.clone()),
        scheduler: Arc::new(scheduler.clone()),
        clock,
        whatsapp,
        settings: Arc::new(config.settings.clone()),
    };
    let state = AppState::new(ports, config);
    Ok((state, Embedded { db, store, queue, scheduler, dev_clock, sandbox }))
}

/// The state of the Lambda function `handler`: the configuration from the environment and,
/// when `CONNECTOR_SECRET_PREFIX` names one, the WhatsApp secrets that function needs
/// (`Secret::needed_by`) from Secrets Manager, and no others; on AWS when `template.yaml`
/// configured it (`CONNECTOR_TABLE` ...), else the embedded backend (e.g. under
/// `cargo lambda watch`).
#[cfg(feature = "aws")]
pub async fn lambda_state(handler: &str) -> Result<AppState, ConfigError> {
    let Ok(prefix) = std::env::var("CONNECTOR_SECRET_PREFIX") else {
        return from_env(Config::from_env()?).await;
    };
    let clients = AwsClients::from_env().await;
    let needed = crate::config::Secret::needed_by(handler);
    let config = config_with_secrets(&clients, &prefix, needed, |k| std::env::var(k).ok()).await?;
    let resources = config
        .aws
        .clone()
        .ok_or_else(|| ConfigError("CONNECTOR_SECRET_PREFIX is set but CONNECTOR_TABLE is not".into()))?;
    aws(config, resources, clients).await
}

/// The configuration `env` gives, with the `held` secrets read from under `prefix` and every
/// other secret withheld (`Config::from_lookup_holding`).
#[cfg(feature = "aws")]
pub async fn config_with_secrets(
    clients: &AwsClients,
    prefix: &str,
    held: &[crate::config::Secret],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let secrets = crate::adapters::aws::secrets::read(&clients.secretsmanager, prefix, held).await?;
    Config::from_lookup_holding(|k| secrets.get(k).cloned().or_else(|| env(k)), held)
}

/// `whatsapp`, or a refusal of every call when this process was not given the access token.
fn guarded(config: &Config, whatsapp: Arc<dyn WhatsApp>) -> Arc<dyn WhatsApp> {
    if config.withheld.contains(&crate::config::Secret::AccessToken) {
        Arc::new(crate::adapters::graph::NoAccessToken)
    } else {
        whatsapp
    }
}

#[cfg(feature = "aws")]
async fn from_env(config: Config) -> Result<AppState, ConfigError> {
    match config.aws.clone() {
        Some(resources) => aws(config, resources, AwsClients::from_env().await).await,
        #[cfg(feature = "embedded")]
        None => Ok(embedded(config).await?.0),
        #[cfg(not(feature = "embedded"))]
        None => Err(ConfigError(
            "CONNECTOR_TABLE is not set, and this build has no embedded backend: build with `--features embedded`"
                .into(),
        )),
    }
}

fn whatsapp(config: &Config, clock: Arc<dyn Clock>) -> Result<Arc<dyn WhatsApp>, ConfigError> {
    let whatsapp: Arc<dyn WhatsApp> = match &config.whatsapp_api_base_url {
        Some(base) => Arc::new(
            GraphWhatsApp::new(
                base,
                &config.phone_number_id,
                &config.business_account_id,
                config.access_token.clone(),
                config.graph_timeout,
                config.media_hosts.clone(),
            )
            .map_err(|e| ConfigError(format!("HTTP client: {e}")))?,
        ),
        #[cfg(feature = "sandbox")]
        None => sandbox(config, clock),
        #[cfg(not(feature = "sandbox"))]
        None => {
            let _ = clock;
            return Err(ConfigError("WHATSAPP_API_BASE_URL is not set: this build has no WhatsApp sandbox".into()));
        }
    };
    Ok(guarded(config, whatsapp))
}

#[cfg(feature = "sandbox")]
fn sandbox(config: &Config, clock: Arc<dyn Clock>) -> Arc<SandboxWhatsApp> {
    Arc::new(SandboxWhatsApp::new(
        config.app_secret.clone(),
        config.phone_number_id.clone(),
        clock,
        crate::adapters::sandbox::catalog(&config.settings),
    ))
}

/// The AWS backends: DynamoDB, SQS, EventBridge Scheduler, S3.
#[cfg(feature = "aws")]
pub async fn aws(config: Config, r: AwsResources, clients: AwsClients) -> Result<AppState, ConfigError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let whatsapp = whatsapp(&config, clock.clone())?;
    let ports = aws_ports(&config, &r, &clients, clock, whatsapp);
    Ok(AppState::new(ports, config))
}

/// The ports on AWS, with the given clock and WhatsApp (the local runner keeps its own).
#[cfg(feature = "aws")]
pub fn aws_ports(
    config: &Config,
    r: &AwsResources,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
    whatsapp: Arc<dyn WhatsApp>,
) -> Ports {
    let dynamo: Arc<dyn Store> =
        Arc::new(DynamoStore::new(clients.dynamodb.clone(), r.table.clone()).with_serial_writes(r.serial_writes));
    Ports {
        store: dynamo,
        queue: Arc::new(SqsQueue::new(clients.sqs.clone(), r.outbound_queue_url.clone(), r.receipts_queue_url.clone())),
        scheduler: Arc::new(
            EventBridgeScheduler::new(
                clients.scheduler.clone(),
                r.schedule_group.clone(),
                r.timers_function_arn.clone(),
                r.scheduler_role_arn.clone(),
            )
            .with_dead_letter(r.timers_dlq_arn.clone()),
        ),
        whatsapp,
        clock,
        media: Arc::new(S3MediaStore::new(clients.s3.clone(), r.media_bucket.clone())),
        vault: match &r.archive_bucket {
            Some(bucket) => Arc::new(S3Vault::new(clients.s3.clone(), bucket.clone(), config.settings.retention)),
            None => Arc::new(crate::adapters::NoVault),
        },
        index: match (&r.search, &r.archive_bucket) {
            (Some(search), _) => {
                Arc::new(crate::adapters::aws::AthenaIndex::new(clients.athena.clone(), search.clone()))
            }
            // The archiver and the retention sweep: Athena reads the objects they write and erase.
            (None, Some(_)) => Arc::new(crate::adapters::aws::ArchiveObjectsIndex),
            (None, None) => Arc::new(crate::adapters::NoIndex),
        },
        journal: match &r.journal_bus {
            Some(bus) => {
                Arc::new(crate::adapters::aws::EventBridgeJournal::new(clients.eventbridge.clone(), bus.clone()))
            }
            None => Arc::new(crate::ports::NoJournal),
        },
        settings: Arc::new(config.settings.clone()),
    }
}

#[cfg(all(test, feature = "aws"))]
mod tests {
    use super::*;

    /// The archiver and the retention sweep run on AWS without Athena (template.yaml gives it to
    /// the admin function alone): their index must take what they add and forget, or every
    /// archive batch and every sweep would fail there. The e2e suite cannot show it: its runner
    /// is every function at once, Athena included.
    #[tokio::test]
    async fn the_archiver_and_the_sweep_on_aws_add_to_and_forget_from_the_index_without_athena() {
        let env = || {
            move |k: &str| {
                let v = match k {
                    "CONNECTOR_TABLE" => "t",
                    "OUTBOUND_QUEUE_URL" => "q",
                    "RECEIPTS_QUEUE_URL" => "r",
                    "SCHEDULE_GROUP" => "g",
                    "TIMERS_FUNCTION_ARN" => "f",
                    "SCHEDULER_ROLE_ARN" => "s",
                    "MEDIA_BUCKET" => "m",
                    "ARCHIVE_BUCKET" => "archive",
                    _ => return None,
                };
                Some(v.to_string())
            }
        };
        let (_, clients) = AwsClients::emulator("http://127.0.0.1:9").await;
        let config = Config::from_lookup(env()).unwrap();
        let r = config.aws.clone().expect("the AWS resources");
        assert!(r.search.is_none() && r.archive_bucket.is_some(), "the archiver's environment");
        let whatsapp = Arc::new(crate::adapters::sandbox::SandboxWhatsApp::new(
            config.app_secret.clone(),
            config.phone_number_id.clone(),
            Arc::new(crate::adapters::clock::SystemClock),
            crate::adapters::sandbox::catalog(&config.settings),
        ));
        let ports = aws_ports(&config, &r, &clients, Arc::new(crate::adapters::clock::SystemClock), whatsapp.clone());
        assert!(ports.index.add(&[]).await.is_ok(), "the archiver adds");
        assert!(ports.index.forget(&[]).await.is_ok(), "the sweep forgets");
    }
}
