//! The loops that stand in for SQS triggers and EventBridge Scheduler locally.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

use shared::adapters::embedded::{QueueName, ReceivedJob};
use shared::app::Embedded;
use shared::http::AppState;
use shared::ports::{Disposition, OutboundJob};
use shared::usecases::{Ports, UseCaseError};

/// Receives after which a message that keeps failing is dropped, as an SQS redrive to the DLQ.
const MAX_RECEIVES: u32 = 10;
const BATCH: usize = 32;

pub fn spawn(state: AppState, embedded: Embedded) -> Vec<JoinHandle<()>> {
    let ports = state.ports.clone();
    vec![
        tokio::spawn(consume(ports.clone(), embedded.clone(), QueueName::Outbound)),
        tokio::spawn(consume(ports.clone(), embedded.clone(), QueueName::Receipts)),
        tokio::spawn(timer_loop(ports.clone(), embedded.clone())),
        tokio::spawn(sweep_loop(ports, embedded)),
    ]
}

async fn handle(ports: &Ports, q: QueueName, job: &ReceivedJob) -> Result<Disposition, UseCaseError> {
    match q {
        QueueName::Outbound => match serde_json::from_str::<OutboundJob>(&job.body) {
            Ok(j) => dispatch::handle(ports, &j).await,
            Err(e) => {
                tracing::error!(error.message = %e, "outbound job unreadable; dropped");
                Ok(Disposition::Done)
            }
        },
        QueueName::Receipts => match serde_json::from_str(&job.body) {
            Ok(j) => receipts::handle(ports, &j, job.receives).await,
            Err(e) => {
                tracing::error!(error.message = %e, "receipt unreadable; dropped");
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
                tracing::error!(error.message = %e, "queue receive failed");
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
                        tracing::error!(error.message = %e, seq = job.seq, "giving up on a queue message");
                        embedded.queue.ack(job.seq).await
                    }
                    Err(e) => {
                        tracing::warn!(error.message = %e, seq = job.seq, "queue message failed; will retry");
                        embedded.queue.retry_at(job.seq, ports.clock.now() + Duration::from_secs(1)).await
                    }
                };
                if let Err(e) = settled {
                    tracing::error!(error.message = %e, "could not settle a queue message");
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
                    tracing::error!(error.message = %e, "timer failed");
                }
            }
        }
        Err(e) => tracing::error!(error.message = %e, "reading due timers failed"),
    }
}

/// Forgets dedupe marks past their time, hourly.
async fn sweep_loop(ports: Ports, embedded: Embedded) {
    loop {
        if let Err(e) = embedded.store.sweep_expired(ports.clock.now()).await {
            tracing::warn!(error.message = %e, "sweep failed");
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
