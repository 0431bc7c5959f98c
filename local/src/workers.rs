//! The loops that stand in for SQS triggers and EventBridge Scheduler locally.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

use shared::adapters::embedded::QueueName;
use shared::app::Embedded;
use shared::error::Report;
use shared::http::AppState;
use shared::ports::ChangeStream;
#[cfg(feature = "aws")]
use shared::ports::{Scheduler, SchedulerError, Timer};
use shared::telemetry::as_function;
use shared::usecases::Ports;

const BATCH: usize = 32;

/// Where the queue consumers read: the SQLite queues, or SQS.
pub enum Consumers {
    Embedded,
    #[cfg(feature = "aws")]
    Sqs {
        clients: shared::adapters::aws::AwsClients,
        outbound: String,
        receipts: String,
        /// The table whose stream the archiver reads.
        table: String,
    },
}

pub fn spawn(state: AppState, embedded: Embedded, consumers: Consumers) -> Vec<JoinHandle<()>> {
    let ports = state.ports.clone();
    let mut tasks = match consumers {
        Consumers::Embedded => {
            let stream: Arc<dyn ChangeStream> = Arc::new(embedded.store.clone());
            vec![
                tokio::spawn(consume(ports.clone(), embedded.clone(), QueueName::Outbound)),
                tokio::spawn(consume(ports.clone(), embedded.clone(), QueueName::Receipts)),
                tokio::spawn(archiver_loop(ports.clone(), stream)),
            ]
        }
        #[cfg(feature = "aws")]
        Consumers::Sqs { clients, outbound, receipts, table } => vec![
            tokio::spawn(consume_sqs(ports.clone(), clients.sqs.clone(), outbound, QueueName::Outbound)),
            tokio::spawn(consume_sqs(ports.clone(), clients.sqs.clone(), receipts, QueueName::Receipts)),
            tokio::spawn(stream_archiver_loop(
                ports.clone(),
                crate::stream::TableStream::new(&clients, &table),
                embedded.clone(),
            )),
        ],
    };
    tasks.push(tokio::spawn(timer_loop(ports.clone(), embedded.clone())));
    tasks.push(tokio::spawn(relay_loop(ports.clone())));
    tasks.push(tokio::spawn(retention_loop(ports.clone())));
    tasks.push(tokio::spawn(sweep_loop(ports, embedded)));
    tasks
}

#[cfg(feature = "aws")]
/// Whose work Lambda's event source mappings are: they receive and delete the queues'
/// messages under the function's role (SAM grants those with the queue event).
const EVENT_SOURCE: &str = "event-source";

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
        let receive = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send();
        let received = as_function(EVENT_SOURCE, receive).await;
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
            QueueName::Outbound => as_function("dispatch", dispatch::function_handler(&ports, event, deadline)).await,
            QueueName::Receipts => as_function("receipts", receipts::function_handler(&ports, event, deadline)).await,
        };
        for failed in &response.batch_item_failures {
            handles.remove(&failed.item_identifier);
        }
        for handle_ in handles.into_values() {
            let delete = sqs.delete_message().queue_url(&url).receipt_handle(handle_).send();
            if let Err(e) = as_function(EVENT_SOURCE, delete).await {
                tracing::error!(error.message = ?e, "could not delete an SQS message");
            }
        }
    }
}

/// Receives after which a message that keeps failing is dropped, as SQS moves it to the
/// queue's dead-letter queue (the template's `maxReceiveCount` of each queue).
fn max_receives(q: QueueName) -> u32 {
    match q {
        QueueName::Outbound => 100,
        QueueName::Receipts => 20,
    }
}

/// What Lambda's SQS event source mapping does, locally, over the SQLite queues: each group
/// head handed out goes through the function's own handler (the one queue runner Lambda runs),
/// concurrently with the others, as a batch of one. A record the runner reports comes back when
/// it asked (`Queue::delay`) or after the queue's visibility timeout; one reported past its
/// queue's receives is dropped with an error, as SQS would move it to its dead letters.
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
                let seq = job.seq.to_string();
                let mut record = aws_lambda_events::sqs::SqsMessage::default();
                record.message_id = Some(seq.clone());
                record.receipt_handle = Some(seq.clone());
                record.body = Some(job.body.clone());
                record.attributes.insert("ApproximateReceiveCount".into(), job.receives.to_string());
                if let Some(g) = &job.group {
                    record.attributes.insert("MessageGroupId".into(), g.clone());
                }
                let mut event = aws_lambda_events::sqs::SqsEvent::default();
                event.records.push(record);
                let deadline = Some(std::time::Instant::now() + Duration::from_secs(120));
                let response = match q {
                    QueueName::Outbound => dispatch::function_handler(&ports, event, deadline).await,
                    QueueName::Receipts => receipts::function_handler(&ports, event, deadline).await,
                };
                let reported = response.batch_item_failures.iter().any(|f| f.item_identifier == seq);
                let settled = match reported {
                    false => embedded.queue.ack(job.seq).await,
                    true if job.receives >= max_receives(q) => {
                        tracing::error!(seq = job.seq, body = %job.body, "a queue message failed every receive; dropped");
                        embedded.queue.ack(job.seq).await
                    }
                    true => Ok(()),
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
    match embedded.scheduler.due(ports.clock.now()).await {
        Ok(due) => {
            for (timer, at) in due {
                // Disarmed once handled (a failure arms it again, a little later): a process
                // killed meanwhile fires it again when it restarts.
                match as_function("timers", timers::function_handler(ports, timer.clone())).await {
                    Ok(()) => {
                        if let Err(e) = embedded.scheduler.fired(&timer, at).await {
                            tracing::error!(error.message = %Report(&e), "could not disarm a fired timer");
                        }
                    }
                    Err(e) => tracing::error!(error.message = %Report(&e), "timer failed"),
                }
            }
        }
        Err(e) => tracing::error!(error.message = %Report(&e), "reading due timers failed"),
    }
}

/// The relay's sweep: publishes outbox entries a crash or a failed publish left behind.
async fn relay_loop(ports: Ports) {
    loop {
        // On AWS the timers function runs it (Timer::OutboxSweep).
        if let Err(e) = as_function("timers", shared::usecases::relay::sweep(&ports)).await {
            tracing::warn!(error.message = %Report(&e), "outbox sweep failed");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(feature = "aws")]
/// Where the local reader of the table's stream has read to (the data directory's settings).
const STREAM_POSITION: &str = "archiver_stream_position";

#[cfg(feature = "aws")]
/// What Lambda's event source mapping does with the archiver on the table's stream, locally:
/// batches in order, each retried until the archiver takes it, the position moved after.
async fn stream_archiver_loop(ports: Ports, stream: crate::stream::TableStream, embedded: Embedded) {
    let mut position = embedded.db.setting(STREAM_POSITION).await.ok().flatten();
    loop {
        let records = match as_function(EVENT_SOURCE, stream.records_after(position.as_deref(), 100)).await {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error.message = %Report(&*e), "reading the table's stream failed; will retry");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(last) = records.last().and_then(|r| r.pointer("/dynamodb/SequenceNumber")).and_then(|s| s.as_str())
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let last = last.to_string();
        let entries = match shared::adapters::aws::stream::entries_of_stream(&records) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!(error.message = %Report(&e), "a stream record the archiver cannot read; the stream waits");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        if let Err(e) = as_function("archiver", shared::usecases::archiver::archive(&ports, &entries)).await {
            tracing::warn!(error.message = %Report(&e), "archiving failed; will retry");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if let Err(e) = embedded.db.set_setting(STREAM_POSITION, last.clone()).await {
            tracing::warn!(error.message = %Report(&e), "keeping the stream's position failed");
        }
        position = Some(last);
    }
}

/// The retention sweep, hourly on the connector's clock (so the dev clock moves it on too): on
/// AWS a schedule fires it in the timers function.
async fn retention_loop(ports: Ports) {
    let hour = time::Duration::hours(1);
    let mut next = ports.clock.now() + hour;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if ports.clock.now() < next {
            continue;
        }
        next = ports.clock.now() + hour;
        let sweep = shared::usecases::timers::fire(&ports, &shared::ports::Timer::RetentionSweep);
        if let Err(e) = as_function("timers", sweep).await {
            tracing::warn!(error.message = %Report(&e), "retention sweep failed; it runs again in an hour");
        }
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

/// The local stand-in for the table's stream that feeds the `archiver` function: the archiver
/// reads the embedded store's feed from its position as commits write it, so a record is
/// archived moments after its commit (and after a restart, from where it stopped).
async fn archiver_loop(ports: Ports, stream: Arc<dyn ChangeStream>) {
    let wake = stream.archive_notify();
    loop {
        let woken = wake.notified();
        if let Err(e) = shared::usecases::archiver::catch_up(&ports, &*stream).await {
            tracing::warn!(error.message = %Report(&e), "archiving failed; will retry");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), woken).await;
    }
}
