//! The one queue runner: what it runs, what it reports, and when reported records come back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use lambda_entry::{process_sqs, Ordering, QueueSpec};
use shared::ports::{Disposition, OutboundJob, Queue, QueueError, QueueKind, ReceiptsJob};
use shared::usecases::UseCaseError;

#[derive(Default)]
struct Recorder {
    delays: Mutex<Vec<(String, Duration)>>,
    again: Mutex<Vec<String>>,
}

#[async_trait]
impl Queue for Recorder {
    async fn send_outbound(&self, _: OutboundJob) -> Result<(), QueueError> {
        Ok(())
    }
    async fn send_again(&self, _: QueueKind, body: &str) -> Result<(), QueueError> {
        self.again.lock().unwrap().push(body.to_string());
        Ok(())
    }
    async fn send_receipt(&self, _: ReceiptsJob) -> Result<(), QueueError> {
        Ok(())
    }
    async fn delay(&self, _: QueueKind, receipt: &str, after: Duration) -> Result<(), QueueError> {
        self.delays.lock().unwrap().push((receipt.to_string(), after));
        Ok(())
    }
}

/// Records `(id, group, body)`; the body says what the handler answers.
fn batch(records: &[(&str, &str, &str)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (id, group, body) in records {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.to_string());
        m.receipt_handle = Some(format!("rh-{id}"));
        m.body = Some(format!("\"{body}\""));
        m.attributes.insert("MessageGroupId".into(), group.to_string());
        event.records.push(m);
    }
    event
}

const FIFO: QueueSpec =
    QueueSpec { kind: QueueKind::Outbound, ordering: Ordering::Fifo, per_record: Duration::from_secs(1) };

async fn answer(body: String, ran: &Mutex<Vec<String>>) -> Result<Disposition, UseCaseError> {
    ran.lock().unwrap().push(body.clone());
    match body.as_str() {
        "later" => Ok(Disposition::RetryAfter(Duration::from_secs(7))),
        "boom" => Err(UseCaseError::Contention),
        _ => Ok(Disposition::Done),
    }
}

fn failed(r: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
}

/// Issue 26, path 2: a record that waits (a rate limit, a claim held elsewhere) comes back when
/// asked, and carries the later records of its group: each is sent again behind it, fresh, and
/// acknowledged unrun, instead of being reported, which would count a receive against each,
/// for nothing, every time the first one waits (20 of them, and the dead letters).
#[tokio::test]
async fn path2_followers_of_a_waiting_record_are_carried_not_charged() {
    let q = Recorder::default();
    let ran = Mutex::new(Vec::new());
    let event = batch(&[("1", "a", "later"), ("2", "b", "ok-b"), ("3", "a", "ok-a"), ("4", "b", "ok-b2")]);
    let r = process_sqs(event, FIFO, &q, None, |job: String, _| answer(job, &ran)).await;
    assert_eq!(failed(&r), vec!["1"], "record 3 rides with record 1");
    assert_eq!(*ran.lock().unwrap(), vec!["later", "ok-b", "ok-b2"], "record 3 is not run");
    assert_eq!(*q.again.lock().unwrap(), vec!["\"ok-a\"".to_string()], "record 3 is sent again, behind record 1");
    assert_eq!(
        *q.delays.lock().unwrap(),
        vec![("rh-1".to_string(), Duration::from_secs(7))],
        "record 1 comes back when asked, not after the queue's visibility timeout"
    );
}

/// A record that fails holds back its group's later records, reported with it (never out of
/// order): they come back together after the queue's visibility timeout.
#[tokio::test]
async fn a_failure_holds_back_the_rest_of_its_group() {
    let q = Recorder::default();
    let ran = Mutex::new(Vec::new());
    let event = batch(&[("1", "a", "boom"), ("2", "b", "ok-b"), ("3", "a", "ok-a")]);
    let r = process_sqs(event, FIFO, &q, None, |job: String, _| answer(job, &ran)).await;
    assert_eq!(failed(&r), vec!["1", "3"]);
    assert_eq!(*ran.lock().unwrap(), vec!["boom", "ok-b"]);
    assert!(q.delays.lock().unwrap().is_empty(), "paced by the queue");
}

#[tokio::test]
async fn a_failure_is_paced_by_the_queue_and_a_standard_queue_runs_everything() {
    let q = Recorder::default();
    let ran = Mutex::new(Vec::new());
    let spec = QueueSpec { ordering: Ordering::Standard, ..FIFO };
    let r =
        process_sqs(batch(&[("1", "", "boom"), ("2", "", "ok")]), spec, &q, None, |job: String, _| answer(job, &ran))
            .await;
    assert_eq!(failed(&r), vec!["1"]);
    assert_eq!(ran.lock().unwrap().len(), 2);
    assert!(q.delays.lock().unwrap().is_empty());
}

#[tokio::test]
async fn records_that_could_not_finish_before_the_deadline_are_not_started() {
    let q = Recorder::default();
    let ran = Mutex::new(Vec::new());
    let deadline = Some(Instant::now() + Duration::from_millis(500));
    let r = process_sqs(batch(&[("1", "a", "ok"), ("2", "b", "ok")]), FIFO, &q, deadline, |job: String, _| {
        answer(job, &ran)
    })
    .await;
    assert_eq!(failed(&r), vec!["1", "2"]);
    assert!(ran.lock().unwrap().is_empty());
    assert_eq!(q.delays.lock().unwrap()[0].1, Duration::ZERO, "back at once, for a fresh invocation");
}
