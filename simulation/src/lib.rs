//! The deterministic simulation of the connector under AWS's and Meta's semantics.
//!
//! The real use cases and Lambda handlers (webhook, dispatch, receipts, timers, the relay) run
//! concurrently on a seeded executor that interleaves them at every port call and may crash a
//! Lambda invocation or an API call between any two of them (`executor`). Underneath, adapters
//! behave as the AWS services do, faults and limits included (`aws`): DynamoDB answers
//! `TransactionConflict`, `TransactionInProgress` and lost answers after the write; SQS redelivers,
//! hides in-flight messages, counts receives, blocks a FIFO group behind its head and moves a
//! message to its dead-letter queue; EventBridge Scheduler refuses a time in the past and fires
//! late; Lambda retries an asynchronous invocation twice. Meta is a model of its own (`meta`):
//! it enforces the contact's real 24-hour window and its pair rate limit, loses answers after
//! taking a message, and delivers webhooks late, twice and out of order. Employees and contacts
//! act at random (`world`). Ids, time and every random choice come from the seed.
//!
//! The promises are checked against that model, never against the connector's tables
//! (`model`): what Meta received and when, what the webhooks said, what clients were answered.
//! `SIM_SEED=S` replays one seed exactly; `shared::plant` holds the bugs it must find.

pub mod aws;
pub mod executor;
pub mod meta;
pub mod model;
pub mod world;

pub use world::{run, Outcome, Settings};

/// `f` over every item, on as many threads as the machine has cores (each run is confined to
/// its thread: its executor, entropy and planted bug are thread-local), in the items' order.
pub fn on_every_core<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().expect("a run panicked").push((i, r));
            });
        }
    });
    let mut results = results.into_inner().expect("a run panicked");
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
