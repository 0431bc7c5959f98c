//! The AWS adapters: DynamoDB (`Store`, and `stream`: its stream as the archiver reads it), SQS
//! (`Queue`), EventBridge Scheduler (`Scheduler`), S3 (`MediaStore`, and `Vault`: the
//! archive's Object Lock bucket) and Secrets Manager (the WhatsApp secrets at a cold start). Clients are
//! built once per cold start from the standard AWS configuration (`AWS_ENDPOINT_URL` points
//! them at an emulator).

mod dynamo;
pub mod meter;
mod s3;
mod scheduler;
pub mod secrets;
mod sqs;
pub mod stream;
mod vault;

pub use dynamo::DynamoStore;
pub use s3::S3MediaStore;
pub use scheduler::{at_expression, EventBridgeScheduler};
pub use sqs::SqsQueue;
pub use vault::S3Vault;

/// One client per service, sharing the loaded configuration.
#[derive(Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub s3: aws_sdk_s3::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    /// The configuration they share, for a client of another service (the local runner's
    /// reader of the table's stream).
    pub sdk_config: std::sync::Arc<aws_config::SdkConfig>,
}

/// The SDK's one HTTPS client: hyper 1 and rustls with ring (the workspace's `Cargo.toml` says
/// why not the SDK's default).
pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The standard AWS configuration loader (environment, profile, the role Lambda gives), with
/// that client.
pub fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http_client())
}

impl AwsClients {
    pub async fn from_env() -> AwsClients {
        AwsClients::from_conf(&config_loader().load().await)
    }

    /// The configuration and clients for an emulator at `endpoint` (moto, in tests): a fixed
    /// region and test credentials.
    pub async fn emulator(endpoint: &str) -> (aws_config::SdkConfig, AwsClients) {
        let conf = config_loader()
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "static"))
            .load()
            .await;
        let clients = AwsClients::from_conf(&conf);
        (conf, clients)
    }

    /// A name for a test's own table, queue or bucket on a shared emulator: `prefix`, then a
    /// fresh ULID. Not a process id: one emulator outlives many test processes (40 in
    /// `scripts/e2e-soak`), and a reused process id met the tables an earlier one made.
    /// Lowercase, as bucket names must be.
    pub fn emulator_name(prefix: &str) -> String {
        format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
    }

    /// For the adapter tests: the emulator `scripts/test` started (`MOTO_ENDPOINT`), or `None`
    /// when it did not (the tests then pass without running, unless
    /// `CONNECTOR_REQUIRE_AWS_TESTS=1`, as in CI, makes that an error).
    pub async fn emulator_from_env() -> Option<(aws_config::SdkConfig, AwsClients)> {
        let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") else {
            assert!(
                std::env::var("CONNECTOR_REQUIRE_AWS_TESTS").as_deref() != Ok("1"),
                "MOTO_ENDPOINT is not set: run the tests with scripts/test"
            );
            eprintln!("MOTO_ENDPOINT not set: AWS adapter test not run (scripts/test runs them)");
            return None;
        };
        Some(AwsClients::emulator(&endpoint).await)
    }

    pub fn from_conf(conf: &aws_config::SdkConfig) -> AwsClients {
        let conf = conf.clone();
        let s3_conf = aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build();
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::new(&conf),
            sqs: aws_sdk_sqs::Client::new(&conf),
            scheduler: aws_sdk_scheduler::Client::new(&conf),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            secretsmanager: aws_sdk_secretsmanager::Client::new(&conf),
            sdk_config: std::sync::Arc::new(conf),
        }
    }
}
