//! `Queue` on SQS: the outbound FIFO queue (group = conversation, deduplication = message and
//! generation) and the standard receipts queue.

use std::time::Duration;

use async_trait::async_trait;

use crate::ports::{Cause, OutboundJob, Queue, QueueError, QueueKind, ReceiptsJob};

pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    outbound_url: String,
    receipts_url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, outbound_url: String, receipts_url: String) -> SqsQueue {
        SqsQueue { client, outbound_url, receipts_url }
    }
}

fn err(e: impl Into<Cause>) -> QueueError {
    QueueError(e.into())
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send_outbound(&self, job: OutboundJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(&job).map_err(err)?;
        self.client
            .send_message()
            .queue_url(&self.outbound_url)
            .message_body(body)
            .message_group_id(job.conversation_id.as_str())
            .message_deduplication_id(job.dedupe_id())
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn send_receipt(&self, job: ReceiptsJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(&job).map_err(err)?;
        self.client.send_message().queue_url(&self.receipts_url).message_body(body).send().await.map_err(err)?;
        Ok(())
    }

    async fn delay(&self, queue: QueueKind, receipt: &str, after: Duration) -> Result<(), QueueError> {
        let url = match queue {
            QueueKind::Outbound => &self.outbound_url,
            QueueKind::Receipts => &self.receipts_url,
        };
        // SQS takes whole seconds, at most 12 hours.
        let secs = after.as_secs_f64().ceil().min(43_200.0) as i32;
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(secs)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }
}
