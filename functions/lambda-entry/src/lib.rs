//! What the functions share with the local runner: the claims the HTTP API's JWT authorizer
//! checked, as the caller, and the SQS batch runner.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;

use shared::error::Report;
use shared::usecases::Caller;

/// The router as API Gateway drives it: the authorizer's claims become the caller.
pub fn with_authorizer(router: Router) -> Router {
    router
        .layer(axum::middleware::from_fn(authorizer_claims))
        .layer(axum::middleware::from_fn(shared::http::bounded_input))
}

/// Puts the authorizer's claims on the request as the `Caller` the handlers' `Identity` reads.
async fn authorizer_claims(mut req: Request, next: Next) -> Response {
    let caller = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).and_then(|jwt| Caller::from_claims(&jwt.claims))
        }
        _ => None,
    };
    if let Some(caller) = caller {
        req.extensions_mut().insert(caller);
    }
    next.run(req).await
}

/// How a queue's records relate: FIFO records of one group must not run out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    Fifo,
    Standard,
}

/// What the queue runner needs to know about a queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueSpec {
    pub kind: shared::ports::QueueKind,
    pub ordering: Ordering,
    /// The longest one record can take (its Graph API calls' time-outs and more): a record is
    /// only started while that much time is left before the deadline.
    pub per_record: std::time::Duration,
}

/// The one queue runner, for SQS batches on Lambda and (through the same handlers) the local
/// runner's queues. Every record goes through `handle`; the ones to redeliver are reported:
/// - `RetryAfter(d)`: made visible again after `d` (`ChangeMessageVisibility`), not after the
///   queue's fixed visibility timeout. On a FIFO queue it carries the later records of its
///   group in the batch: each is sent again as a new message behind it (`Queue::send_again`)
///   and acknowledged, unrun. Reported instead, each would count a receive, for nothing,
///   every time the first one waits, and reach the dead letters untried; the handler keeps a
///   thread's order itself (dispatch sends older queued messages first);
/// - a handler error: paced by the queue's visibility timeout; on a FIFO queue the later
///   records of its group are reported with it, unrun (never out of order);
/// - a record that could not finish before `deadline` is not started, and comes back at once;
/// - a body that is not a job is logged and dropped.
pub async fn process_sqs<J, F, Fut>(
    event: aws_lambda_events::sqs::SqsEvent,
    spec: QueueSpec,
    queue: &dyn shared::ports::Queue,
    deadline: Option<std::time::Instant>,
    handle: F,
) -> aws_lambda_events::sqs::SqsBatchResponse
where
    J: serde::de::DeserializeOwned,
    F: Fn(J, u32) -> Fut,
    Fut: std::future::Future<Output = Result<shared::ports::Disposition, shared::usecases::UseCaseError>>,
{
    use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
    use shared::ports::Disposition;
    use std::time::Duration;
    /// What became of a FIFO group's first record that did not finish.
    #[derive(Clone, Copy)]
    enum Stopped {
        /// It waits this long, carrying the rest.
        Carries(Duration),
        /// It failed (or was not started): the rest come back with it, this much later.
        Holds(Duration),
    }
    let fifo = spec.ordering == Ordering::Fifo;
    let mut stopped: std::collections::BTreeMap<String, Stopped> = Default::default();
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let receipt = record.receipt_handle.clone().unwrap_or_default();
        let group = record.attributes.get("MessageGroupId").cloned().unwrap_or_default();
        let receives = record.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
        let out_of_time = deadline.is_some_and(|d| std::time::Instant::now() + spec.per_record > d);
        let later: Option<Duration> = match stopped.get(&group).filter(|_| fifo) {
            Some(Stopped::Carries(after)) => {
                let body = record.body.as_deref().unwrap_or_default();
                let charged = shared::plant::active(shared::plant::Bug::FollowersCharged);
                match charged {
                    false => match queue.send_again(spec.kind, body).await {
                        Ok(()) => continue,
                        Err(e) => {
                            tracing::warn!(message_id = %id, error.message = %Report(&e), "could not carry a record; it comes back with the one it waits behind");
                            Some(*after)
                        }
                    },
                    true => Some(*after),
                }
            }
            Some(Stopped::Holds(after)) => Some(*after),
            None if out_of_time => Some(Duration::ZERO),
            None => match record.body.as_deref().map(serde_json::from_str::<J>) {
                Some(Ok(job)) => match handle(job, receives).await {
                    Ok(Disposition::Done) => None,
                    Ok(Disposition::RetryAfter(after)) => {
                        if queue.delay(spec.kind, &receipt, after).await.is_err() {
                            tracing::warn!(message_id = %id, "could not set when the record comes back");
                        }
                        stopped.entry(group).or_insert(Stopped::Carries(after));
                        failures.push(failure(id));
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(message_id = %id, error.message = %Report(&e), "queue record failed");
                        shared::metrics::queue_record_failed(spec.kind);
                        // The queue's own visibility timeout paces a failure.
                        Some(Duration::MAX)
                    }
                },
                _ => {
                    tracing::error!(message_id = %id, "queue record is not a job; dropped");
                    shared::metrics::queue_record_failed(spec.kind);
                    None
                }
            },
        };
        let Some(after) = later else { continue };
        if after != Duration::MAX {
            if let Err(e) = queue.delay(spec.kind, &receipt, after).await {
                tracing::warn!(message_id = %id, error.message = %Report(&e), "could not set when the record comes back");
            }
        }
        stopped.entry(group).or_insert(Stopped::Holds(after));
        failures.push(failure(id));
    }
    fn failure(id: String) -> BatchItemFailure {
        let mut f = BatchItemFailure::default();
        f.item_identifier = id;
        f
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}
