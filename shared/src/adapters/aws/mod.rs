//! The AWS adapters: DynamoDB (`Store`, and `stream`: its stream as the archiver reads it), SQS
//! (`Queue`), EventBridge Scheduler (`Scheduler`), S3 (`MediaStore`, and `Vault`: the
//! archive's Object Lock bucket), Athena (`RecordIndex`: the officer's search over that bucket) and
//! Secrets Manager (the WhatsApp secrets at a cold start). Clients are
//! built once per cold start from the standard AWS configuration (`AWS_ENDPOINT_URL` points
//! them at an emulator).

pub mod athena;
pub mod calls;
mod dynamo;
pub mod journal;
pub mod meter;
mod s3;
mod scheduler;
pub mod secrets;
mod sqs;
pub mod stream;
mod vault;

pub use athena::{ArchiveObjectsIndex, AthenaIndex};
pub use dynamo::DynamoStore;
pub use journal::EventBridgeJournal;
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
    pub athena: aws_sdk_athena::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
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

    /// Every resource the connector uses, made new on an emulator (tests, `aws-cost`): table,
    /// queues, schedule group, media bucket, and an Object Lock archive bucket when asked.
    pub async fn emulator_resources(&self, with_archive: bool) -> crate::config::AwsResources {
        let table = AwsClients::emulator_name("table");
        DynamoStore::create_table(&self.dynamodb, &table).await.expect("table");
        let fifo = self
            .sqs
            .create_queue()
            .queue_name(format!("{}.fifo", AwsClients::emulator_name("outbound")))
            .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
            .send()
            .await
            .expect("outbound queue");
        let receipts =
            self.sqs.create_queue().queue_name(AwsClients::emulator_name("receipts")).send().await.expect("queue");
        let group = AwsClients::emulator_name("timers");
        self.scheduler.create_schedule_group().name(&group).send().await.expect("schedule group");
        let media = AwsClients::emulator_name("media");
        self.s3.create_bucket().bucket(&media).send().await.expect("media bucket");
        let archive = match with_archive {
            true => {
                let name = AwsClients::emulator_name("archive");
                S3Vault::create_bucket(&self.s3, &name, 2557).await.expect("archive bucket");
                Some(name)
            }
            false => None,
        };
        crate::config::AwsResources {
            table,
            outbound_queue_url: fifo.queue_url().unwrap_or_default().to_string(),
            receipts_queue_url: receipts.queue_url().unwrap_or_default().to_string(),
            schedule_group: group,
            timers_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:timers".into(),
            scheduler_role_arn: "arn:aws:iam::123456789012:role/scheduler".into(),
            timers_dlq_arn: None,
            media_bucket: media,
            archive_bucket: archive,
            search: None,
            journal_bus: None,
            serial_writes: true,
        }
    }

    /// The next job on the outbound queue, received and deleted as the dispatch function's
    /// trigger would (tests, `aws-cost`).
    pub async fn next_outbound_job(&self, r: &crate::config::AwsResources) -> crate::ports::OutboundJob {
        for _ in 0..50 {
            let out = self.sqs.receive_message().queue_url(&r.outbound_queue_url).max_number_of_messages(1).send();
            if let Some(m) = out.await.expect("receive").messages().first() {
                let handle = m.receipt_handle().unwrap_or_default();
                self.sqs
                    .delete_message()
                    .queue_url(&r.outbound_queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
                return serde_json::from_str(m.body().unwrap_or_default()).expect("an outbound job");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no outbound job");
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

    /// The same clients, each noting its calls in `recorder` (see `calls`).
    pub fn recording(&self, recorder: &calls::CallRecorder) -> AwsClients {
        macro_rules! with {
            ($client:expr, $sdk:ident) => {
                $sdk::Client::from_conf($client.config().to_builder().interceptor(recorder.clone()).build())
            };
        }
        AwsClients {
            dynamodb: with!(self.dynamodb, aws_sdk_dynamodb),
            sqs: with!(self.sqs, aws_sdk_sqs),
            scheduler: with!(self.scheduler, aws_sdk_scheduler),
            s3: with!(self.s3, aws_sdk_s3),
            secretsmanager: with!(self.secretsmanager, aws_sdk_secretsmanager),
            athena: with!(self.athena, aws_sdk_athena),
            eventbridge: with!(self.eventbridge, aws_sdk_eventbridge),
            sdk_config: self.sdk_config.clone(),
        }
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
            athena: aws_sdk_athena::Client::new(&conf),
            eventbridge: aws_sdk_eventbridge::Client::new(&conf),
            sdk_config: std::sync::Arc::new(conf),
        }
    }
}

/// The version ids of `key`, newest first, its delete markers among them (`true`): S3 lists
/// a key's versions newest first, page by page.
pub(crate) async fn versions(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<(String, bool)>, crate::ports::Cause> {
    let (mut out, mut after) = (Vec::new(), None::<(Option<String>, Option<String>)>);
    loop {
        let mut list = client.list_object_versions().bucket(bucket).prefix(key);
        if let Some((k, v)) = after.take() {
            list = list.set_key_marker(k).set_version_id_marker(v);
        }
        let page = list.send().await?;
        let kept = page.versions().iter().filter(|v| v.key() == Some(key)).filter_map(|v| v.version_id());
        out.extend(kept.map(|v| (v.to_string(), false)));
        let markers = page.delete_markers().iter().filter(|m| m.key() == Some(key)).filter_map(|m| m.version_id());
        out.extend(markers.map(|m| (m.to_string(), true)));
        if page.is_truncated() != Some(true) {
            return Ok(out);
        }
        after = Some((page.next_key_marker().map(str::to_string), page.next_version_id_marker().map(str::to_string)));
    }
}

/// Deletes every version of `key` (and its delete markers), so nothing of it is left in a
/// versioned bucket; a key with none is no error. Object Lock refuses a version still retained
/// or under a legal hold, and the first refusal is the answer.
pub(crate) async fn delete_every_version(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<(), crate::ports::Cause> {
    for (version, _) in versions(client, bucket, key).await? {
        client.delete_object().bucket(bucket).key(key).version_id(version).send().await?;
    }
    Ok(())
}
