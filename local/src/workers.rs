//! The loops that stand in for SQS triggers and EventBridge Scheduler locally.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

use shared::adapters::embedded::{QueueName, ReceivedJob};
use shared::app::Embedded;
use shared::error::Report;
use shared::http::AppState;
use shared::ports::{Disposition, OutboundJob};
#[cfg(feature = "aws")]
use shared::ports::{Scheduler, SchedulerError, Timer};
use shared::usecases::{Ports, UseCaseError};

/// Receives after which a message that keeps failing is dropped, as an SQS redrive to the DLQ.
const MAX_RECEIVES: u32 = 10;
const BATCH: usize = 32;

/// Where the queue consumers read: the SQLite queues, or SQS.
pub enum Consumers {
    Embedded,
    #[cfg(feature = "aws")]
    Sqs {
        clients: shared::adapters::aws::AwsClients,
        outbound: String,
        receipts: String,
    },
}

pub fn spawn(state: AppState, embedded: Embedded, consumers: Consumers) -> Vec<JoinHandle<()>> {
    let ports = state.ports.clone();
    let mut tasks = match consumers {
        Consumers::Embedded => vec![
            tokio::spawn(consume(ports.clone(), embedded.clone(), QueueName::Outbound)),
            tokio::spawn(consume(ports.clone(), embedded.clone(), QueueName::Receipts)),
        ],
        #[cfg(feature = "aws")]
        Consumers::Sqs { clients, outbound, receipts } => vec![
            tokio::spawn(consume_sqs(ports.clone(), clients.sqs.clone(), outbound, QueueName::Outbound)),
            tokio::spawn(consume_sqs(ports.clone(), clients.sqs, receipts, QueueName::Receipts)),
        ],
    };
    tasks.push(tokio::spawn(timer_loop(ports.clone(), embedded.clone())));
    tasks.push(tokio::spawn(relay_loop(ports.clone())));
    tasks.push(tokio::spawn(sweep_loop(ports, embedded)));
    tasks
}

#[cfg(feature = "aws")]
/// Arms a timer in both schedulers: the real one, and the local table the timer loop fires.
pub struct BothSchedulers(pub Arc<dyn Scheduler>, pub Arc<dyn Scheduler>);

#[cfg(feature = "aws")]
#[async_trait::async_trait]
impl Scheduler for BothSchedulers {
    async fn schedule(&self, timer: &Timer, at: time::OffsetDateTime) -> Result<(), SchedulerError> {
        self.0.schedule(timer, at).await?;
        self.1.schedule(timer, at).await
    }
}

#[cfg(feature = "aws")]
/// What Lambda's SQS event source mapping does, locally: receive a batch, hand it to the
/// function's own handler (the queue runner Lambda runs), and delete what it did not report.
/// Reported records come back when the handler asked (`ChangeMessageVisibility`) or after the
/// queue's visibility timeout.
async fn consume_sqs(ports: Ports, sqs: aws_sdk_sqs::Client, url: String, q: QueueName) {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::error!(error.message = ?e, "SQS receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut event = aws_lambda_events::sqs::SqsEvent::default();
        let mut handles = std::collections::HashMap::new();
        for m in messages {
            let mut record = aws_lambda_events::sqs::SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.attributes = m
                .attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect();
            handles.insert(m.message_id.clone().unwrap_or_default(), m.receipt_handle.clone().unwrap_or_default());
            event.records.push(record);
        }
        let deadline = Some(std::time::Instant::now() + Duration::from_secs(120));
        let response = match q {
            QueueName::Outbound => dispatch::function_handler(&ports, event, deadline).await,
            QueueName::Receipts => receipts::function_handler(&ports, event, deadline).await,
        };
        for failed in &response.batch_item_failures {
            handles.remove(&failed.item_identifier);
        }
        for handle_ in handles.into_values() {
            if let Err(e) = sqs.delete_message().queue_url(&url).receipt_handle(handle_).send().await {
                tracing::error!(error.message = ?e, "could not delete an SQS message");
            }
        }
    }
}

async fn handle(ports: &Ports, q: QueueName, job: &ReceivedJob) -> Result<Disposition, UseCaseError> {
    match q {
        QueueName::Outbound => match serde_json::from_str::<OutboundJob>(&job.body) {
            Ok(j) => dispatch::handle(ports, &j).await,
            Err(e) => {
                tracing::error!(error.message = %Report(&e), "outbound job unreadable; dropped");
                Ok(Disposition::Done)
            }
        },
        QueueName::Receipts => match serde_json::from_str(&job.body) {
            Ok(j) => receipts::handle(ports, &j, job.receives).await,
            Err(e) => {
                tracing::error!(error.message = %Report(&e), "receipt unreadable; dropped");
                Ok(Disposition::Done)
            }
        },
    }
}

/// Hands out the heads of ready groups, runs them concurrently, and settles each.
async fn consume(ports: Ports, embedded: Embedded, q: QueueName) {
    let ports = Arc::new(ports);
    loop {
        let jobs = match embedded.queue.receive(q, ports.clock.now(), BATCH).await {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error.message = %Report(&e), "queue receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if jobs.is_empty() {
            embedded.queue.wait(q, Duration::from_millis(100)).await;
            continue;
        }
        let mut set = JoinSet::new();
        for job in jobs {
            let (ports, embedded) = (ports.clone(), embedded.clone());
            set.spawn(async move {
                let outcome = handle(&ports, q, &job).await;
                let settled = match outcome {
                    Ok(Disposition::Done) => embedded.queue.ack(job.seq).await,
                    Ok(Disposition::RetryAfter(d)) => embedded.queue.retry_at(job.seq, ports.clock.now() + d).await,
                    Err(e) if job.receives >= MAX_RECEIVES => {
                        tracing::error!(error.message = %Report(&e), seq = job.seq, "giving up on a queue message");
                        embedded.queue.ack(job.seq).await
                    }
                    Err(e) => {
                        tracing::warn!(error.message = %Report(&e), seq = job.seq, "queue message failed; will retry");
                        embedded.queue.retry_at(job.seq, ports.clock.now() + Duration::from_secs(1)).await
                    }
                };
                if let Err(e) = settled {
                    tracing::error!(error.message = %Report(&e), "could not settle a queue message");
                }
            });
        }
        while set.join_next().await.is_some() {}
    }
}

/// Fires due timers once a second (the dev clock also fires them on each move).
async fn timer_loop(ports: Ports, embedded: Embedded) {
    loop {
        run_due_timers(&ports, &embedded).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub async fn run_due_timers(ports: &Ports, embedded: &Embedded) {
    match embedded.scheduler.take_due(ports.clock.now()).await {
        Ok(due) => {
            for timer in due {
                if let Err(e) = timers::function_handler(ports, timer).await {
                    tracing::error!(error.message = %Report(&e), "timer failed");
                }
            }
        }
        Err(e) => tracing::error!(error.message = %Report(&e), "reading due timers failed"),
    }
}

/// The relay's sweep: publishes outbox entries a crash or a failed publish left behind.
async fn relay_loop(ports: Ports) {
    loop {
        if let Err(e) = shared::usecases::relay::sweep(&ports).await {
            tracing::warn!(error.message = %Report(&e), "outbox sweep failed");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Forgets dedupe marks past their time, hourly.
async fn sweep_loop(ports: Ports, embedded: Embedded) {
    loop {
        if let Err(e) = embedded.store.sweep_expired(ports.clock.now()).await {
            tracing::warn!(error.message = %Report(&e), "sweep failed");
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
