//! The load model (issue 30): what a business's traffic asks of each DynamoDB partition.
//!
//! The real use cases run over a metered memory store that charges each call as DynamoDB
//! on-demand does: a strongly consistent read 1 unit per 4 KB (a get, or each item of a batch
//! get, at least 1; a query on the sum of what it returns), a write 1 unit per KB of the item,
//! twice inside a transaction. The units each partition took are then scaled to the target:
//! 10,000 messages a second across ten numbers (5,000 out with three statuses each, 5,000 in),
//! 1M contacts, 50k employees. A partition that many keys share (the outbox's, the unassigned
//! inbox's, the agents' connections, a directory) takes its share of all of it; a partition of
//! one thread, contact or employee takes what that one entity's own traffic asks. DynamoDB
//! throttles a partition past 1,000 write or 3,000 read units a second: none may pass half.
//!
//! `cargo test -p shared --test load_model -- --nocapture` prints the table docs/aws.md quotes.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::Duration;

use shared::adapters::memory::MemoryStore;
use shared::domain::{MessageStatus, Phone, ReceiptStatus};
use shared::meta::webhook::{InboundContent, StatusEvent};
use shared::ports::{Clock, Item, Key, Store, StoreError, Transaction, Versioned, Write};
use shared::usecases::{conversations, directory, receipts, send, Caller};

use support::world::*;

/// Read and write units each partition took.
#[derive(Default)]
struct Metered {
    inner: MemoryStore,
    units: Mutex<BTreeMap<String, (f64, f64)>>,
}

fn size(item: &Item) -> usize {
    let key = item.key();
    serde_json::to_vec(item).unwrap().len() + key.pk.len() + key.sk.len()
}

fn units(bytes: usize, per: usize) -> f64 {
    bytes.div_ceil(per).max(1) as f64
}

impl Metered {
    fn charge(&self, pk: &str, read: f64, write: f64) {
        let mut all = self.units.lock().unwrap();
        let u = all.entry(pk.to_string()).or_default();
        u.0 += read;
        u.1 += write;
    }
    fn take(&self) -> BTreeMap<String, (f64, f64)> {
        std::mem::take(&mut *self.units.lock().unwrap())
    }
}

#[async_trait]
impl Store for Metered {
    async fn get(&self, key: &Key) -> Result<Option<Versioned<Item>>, StoreError> {
        let found = self.inner.get(key).await?;
        self.charge(&key.pk, units(found.as_ref().map_or(0, |v| size(&v.item)), 4096), 0.0);
        Ok(found)
    }
    async fn query(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        asc: bool,
    ) -> Result<Vec<Versioned<Item>>, StoreError> {
        let found = self.inner.query(pk, prefix, after, limit, asc).await?;
        self.charge(pk, units(found.iter().map(|v| size(&v.item)).sum(), 4096), 0.0);
        Ok(found)
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Versioned<Item>>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }
    async fn submit(&self, tx: &Transaction) -> Result<(), StoreError> {
        self.inner.submit(tx).await?;
        let factor = if tx.writes.len() > 1 { 2.0 } else { 1.0 };
        // The stream's entry of the commit rides on its first write.
        let mut extra = serde_json::to_vec(&tx.entry).map(|e| e.len()).unwrap_or(0);
        for w in &tx.writes {
            let bytes = match w {
                Write::Put { item, .. } => size(item),
                Write::Delete { .. } | Write::Check { .. } => 0,
            };
            self.charge(&w.key().pk, 0.0, factor * units(bytes + std::mem::take(&mut extra), 1024));
        }
        Ok(())
    }
}

/// The class of a partition: its key's first part (`CONV`, `OUTBOX`, ...; see `item.rs`).
fn class(pk: &str) -> &str {
    pk.split('#').next().unwrap_or(pk)
}

/// Partitions shared by every key of their class, and how many of them there are.
fn shared_partitions(class: &str) -> Option<u32> {
    use shared::ports::{INDEX_SHARDS, OUTBOX_SHARDS};
    match class {
        "OUTBOX" => Some(OUTBOX_SHARDS),
        "UNASSIGNED" | "WSAGENTS" => Some(INDEX_SHARDS),
        // One per sub-organization and region: a business of 50k employees in one of them.
        "DIR" => Some(1),
        _ => None,
    }
}

const CONTACTS: usize = 120;
const EMPLOYEES: usize = 12;

/// The target: messages a second each way, and the rates of what is not a message.
const OUT_PER_S: f64 = 5_000.0;
const IN_PER_S: f64 = 5_000.0;
/// Contacts who write first (a new unassigned thread), directory searches (a keystroke each)
/// and listings of the unassigned inbox, a second.
const FIRST_WORDS_PER_S: f64 = 500.0;
const SEARCHES_PER_S: f64 = 200.0;
/// The busiest thread, contact and employee: a message each way every second in one thread
/// (Meta paces a pair at about one every six seconds), and an employee in 20 such threads.
const THREAD_FLOWS_PER_S: f64 = 1.0;
const EMPLOYEE_FLOWS_PER_S: f64 = 20.0;
/// Live function instances at once: one per stream shard, which grow with the table's
/// partitions (a hundred is several times what this traffic needs). Each reads the agents'
/// connections at most every `AGENTS_TTL`, whatever the changes in unclaimed threads.
const LIVE_INSTANCES: f64 = 100.0;

struct Row {
    class: String,
    reads: f64,
    writes: f64,
    basis: String,
}

#[tokio::test]
async fn no_partition_passes_half_its_limit_at_ten_thousand_messages_a_second() {
    let metered = Arc::new(Metered::default());
    let w = world_on(metered.clone());
    let employee = |i: usize| Caller::new(&format!("e{}", i % EMPLOYEES), &format!("Employee {i}"), "retail", "eu");
    let wa = |i: usize| format!("447700{i:06}");
    let mut threads = Vec::new();
    for i in 0..CONTACTS {
        let cmd = conversations::StartConversation { phone: Phone::parse(&format!("+{}", wa(i))).unwrap(), name: None };
        threads.push(conversations::start(&w.ports, &employee(i), cmd).await.unwrap().id);
        w.says_as(&wa(i), InboundContent::Text { body: "yes".into() }).await;
    }
    w.drain().await;
    metered.take();

    // One flow per thread: a text out, sent, its three statuses, and a reply in.
    for (i, conv) in threads.iter().enumerate() {
        let cmd = send::SendCommand {
            content: send::Content::Text("Your statement is ready".into()),
            client_id: None,
            reply_to: None,
        };
        let id = send::send(&w.ports, &employee(i), conv, cmd).await.unwrap().id;
        w.drain().await;
        let wamid = w.message(conv, &id).await.wamid.expect("sent");
        for status in [ReceiptStatus::Sent, ReceiptStatus::Delivered, ReceiptStatus::Read] {
            w.clock.advance(Duration::seconds(1));
            let event = StatusEvent {
                wamid: wamid.clone(),
                status,
                timestamp: w.clock.now(),
                recipient_id: Some(wa(i)),
                errors: vec![],
                callback: None,
            };
            receipts::apply_status(&w.ports, &event).await.unwrap();
        }
        assert_eq!(w.message(conv, &id).await.status, MessageStatus::Read);
        w.says_as(&wa(i), InboundContent::Text { body: "Thank you".into() }).await;
    }
    w.drain().await;
    let flows = metered.take();

    // Contacts who write first: each opens an unassigned thread.
    for i in 0..CONTACTS {
        w.says_as(&wa(10_000 + i), InboundContent::Text { body: "Hello".into() }).await;
    }
    let first_words = metered.take();

    // Searches of a directory of 1,000 (two letters typed, as the console sends them).
    for i in 0..1000 {
        let c = Caller::new(
            &format!("d{i}"),
            &format!("{} Person {i}", ["Al", "Bo", "Cy", "Di", "Ed"][i % 5]),
            "retail",
            "eu",
        );
        directory::record(&w.ports, &c).await.unwrap();
    }
    metered.take();
    for q in ["al", "bo", "cy", "di", "ed"] {
        directory::search(&w.ports, &alex(), q, None).await.unwrap();
    }
    let searches = metered.take();

    // What a change in an unclaimed thread reads to reach every agent: their connections, 2,000
    // of them (the live function's fan-out).
    let expires_at = w.clock.now() + Duration::hours(2);
    for i in 0..2000 {
        let caller = Caller {
            roles: vec!["agent".into()],
            ..Caller::new(&format!("a{i}"), &format!("Agent {i}"), "retail", "eu")
        };
        let item = Item::AgentConnection { connection_id: format!("conn-{i:05}-AbCdEfGhIjKlMnO="), caller, expires_at };
        let tx = Transaction::new(vec![Write::Put { item, cond: shared::ports::Cond::Always }]);
        metered.inner.submit(&tx).await.unwrap();
    }
    assert_eq!(w.ports.store.agent_connections(usize::MAX / 2).await.unwrap().len(), 2000);
    let fan_out = metered.take();

    let mut rows: Vec<Row> = Vec::new();
    let scale = |measured: &BTreeMap<String, (f64, f64)>, per_op: f64, ops: f64, basis: &str, rows: &mut Vec<Row>| {
        let mut by_class: BTreeMap<&str, (f64, f64, usize, f64, f64)> = BTreeMap::new();
        for (pk, (r, wr)) in measured {
            let e = by_class.entry(class(pk)).or_default();
            e.0 += r;
            e.1 += wr;
            e.2 += 1;
            e.3 = e.3.max(*r);
            e.4 = e.4.max(*wr);
        }
        for (class, (r, wr, keys, max_r, max_w)) in by_class {
            let (reads, writes, basis) = match shared_partitions(class) {
                // All of the class's traffic, spread over its partitions (keys hash evenly).
                Some(n) => (r / ops * per_op / n as f64, wr / ops * per_op / n as f64, format!("{basis}, over {n}")),
                // One entity's own: the busiest key of the class, at that entity's rate.
                None => {
                    let per = if class == "USER" { EMPLOYEE_FLOWS_PER_S } else { THREAD_FLOWS_PER_S };
                    let flows_per_key = ops / keys.max(1) as f64;
                    (max_r / flows_per_key * per, max_w / flows_per_key * per, format!("one key at {per} flows/s"))
                }
            };
            rows.push(Row { class: class.to_string(), reads, writes, basis });
        }
    };
    scale(&flows, OUT_PER_S.max(IN_PER_S), CONTACTS as f64, "messages", &mut rows);
    scale(&first_words, FIRST_WORDS_PER_S, CONTACTS as f64, "first words", &mut rows);
    scale(&searches, SEARCHES_PER_S, 5.0, "searches", &mut rows);
    let agent_reads_per_s = LIVE_INSTANCES / shared::live::socket::AGENTS_TTL.as_secs_f64();
    scale(&fan_out, agent_reads_per_s, 1.0, "agents' connections read", &mut rows);
    // Traffic of every kind at once: a class's rows add up.
    let mut total: BTreeMap<String, Row> = BTreeMap::new();
    for r in rows {
        let t = total.entry(r.class.clone()).or_insert(Row {
            class: r.class.clone(),
            reads: 0.0,
            writes: 0.0,
            basis: String::new(),
        });
        t.reads += r.reads;
        t.writes += r.writes;
        t.basis = if t.basis.is_empty() { r.basis } else { format!("{}; {}", t.basis, r.basis) };
    }
    let rows: Vec<Row> = total.into_values().collect();

    println!("| partition | read units/s | write units/s | from |");
    println!("| --- | ---: | ---: | --- |");
    let mut over = Vec::new();
    for r in &rows {
        println!("| `{}` | {:.0} | {:.0} | {} |", r.class, r.reads, r.writes, r.basis);
        if r.reads > 1_500.0 || r.writes > 500.0 {
            over.push(format!("{} ({:.0} reads/s, {:.0} writes/s)", r.class, r.reads, r.writes));
        }
    }
    assert!(over.is_empty(), "partitions past half their limit: {over:?}");
}
