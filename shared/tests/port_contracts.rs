//! One contract for each port beside the store (whose own is `store_contract.rs`), run on each
//! of its adapters: the embedded one, and the AWS one on moto (started by `scripts/test`, whose
//! address arrives in `MOTO_ENDPOINT`). Media, queue, scheduler, change stream and vault.
//!
//! A port that only writes (the queue, the scheduler) is read back the way its consumer reads
//! it: the local runner's SQLite queue and due timers, or SQS and EventBridge Scheduler.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use shared::adapters::aws::{
    at_expression, AwsClients, DynamoStore, EventBridgeScheduler, S3MediaStore, S3Vault, SqsQueue,
};
use shared::adapters::embedded::{Db, DiskMediaStore, DiskVault, QueueName, SqliteQueue, SqliteScheduler, SqliteStore};
use shared::adapters::memory::MemoryVault;
use shared::archive::{message_event, ArchiveKind, Journaled, Source};
use shared::domain::{Body, Contact, Conversation, Message, Sender};
use shared::meta::webhook::StatusEvent;
use shared::ports::{
    byte_stream, ByteStream, ChangeStream, Cond, Item, Key, MediaFetch, MediaStore, OutboundJob, Queue, QueueKind,
    ReceiptsJob, Scheduler, Store, StreamEntry, Timer, Transaction, Vault, Write,
};
use time::OffsetDateTime;

mod support;
use support::{aws_clients, unique};

// ---- Media ------------------------------------------------------------------------------

async fn disk_media() -> Option<(Arc<dyn MediaStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    Some((Arc::new(DiskMediaStore::new(dir.path()).unwrap()), dir))
}

/// Versioning on, as the template's buckets have it.
async fn versioned(c: &AwsClients, bucket: &str) {
    let on = aws_sdk_s3::types::VersioningConfiguration::builder()
        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
        .build();
    c.s3.put_bucket_versioning().bucket(bucket).versioning_configuration(on).send().await.unwrap();
}

async fn s3_media() -> Option<(Arc<dyn MediaStore>, ())> {
    let c = aws_clients().await?;
    let bucket = unique("media");
    c.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    // Versioned, as the template's media bucket is.
    versioned(&c, &bucket).await;
    Some((Arc::new(S3MediaStore::new(c.s3.clone(), bucket)), ()))
}

async fn read(body: Option<ByteStream>) -> Option<Vec<u8>> {
    use futures_util::TryStreamExt;
    let chunks: Vec<bytes::Bytes> = body?.try_collect().await.unwrap();
    Some(chunks.concat())
}

/// `n` bytes in chunks of 1 MB, as a client's PUT or Meta's download brings them.
fn chunked(n: usize) -> ByteStream {
    let chunks: Vec<std::io::Result<bytes::Bytes>> = (0..n)
        .step_by(1 << 20)
        .map(|at| Ok(bytes::Bytes::from(vec![(at >> 20) as u8; (n - at).min(1 << 20)])))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

async fn a_kept_upload_round_trips_and_a_missing_one_is_none(media: Arc<dyn MediaStore>) {
    let png = b"\x89PNG\r\n\x1a\n....".to_vec();
    assert!(media.put_upload("01UP0", byte_stream(png.clone()), 100).await.unwrap());
    media.keep("01UP0", "01ABC", "image/png").await.unwrap();
    media.keep("01UP0", "01ABC", "image/png").await.unwrap();
    media.discard_upload("01UP0").await.unwrap();
    media.discard_upload("01UP0").await.unwrap();
    assert_eq!(read(media.open("01ABC").await.unwrap()).await, Some(png), "kept, whatever became of the upload");
    assert_eq!(read(media.open_upload("01UP0").await.unwrap()).await, None);
    assert!(media.open("01NONE").await.unwrap().is_none());
}

async fn a_removed_file_is_gone_and_removing_it_again_is_harmless(media: Arc<dyn MediaStore>) {
    assert!(media.put_upload("01UP2", byte_stream(b"file".to_vec()), 100).await.unwrap());
    media.keep("01UP2", "01GONE", "application/pdf").await.unwrap();
    media.keep("01UP2", "01STAYS", "application/pdf").await.unwrap();
    media.remove("01GONE").await.unwrap();
    media.remove("01GONE").await.unwrap();
    media.remove("01NEVER").await.unwrap();
    assert!(media.open("01GONE").await.unwrap().is_none());
    assert_eq!(read(media.open("01STAYS").await.unwrap()).await, Some(b"file".to_vec()), "only the one named");
}

/// On a versioned bucket nothing of a removed file is left: no older version to restore.
#[tokio::test]
async fn s3_a_removed_file_leaves_no_version_behind() {
    let Some(c) = aws_clients().await else { return };
    let Some((media, ())) = s3_media().await else { return };
    assert!(media.put_upload("01UP3", byte_stream(b"v".to_vec()), 100).await.unwrap());
    media.keep("01UP3", "01FILE", "image/png").await.unwrap();
    media.keep("01UP3", "01FILE", "image/png").await.unwrap();
    media.remove("01FILE").await.unwrap();
    let buckets = c.s3.list_buckets().send().await.unwrap();
    for b in buckets.buckets().iter().filter_map(|b| b.name()) {
        let listed = c.s3.list_object_versions().bucket(b).prefix("media/01FILE").send().await.unwrap();
        assert!(listed.versions().is_empty() && listed.delete_markers().is_empty(), "{b}: {listed:?}");
    }
}

/// A file past one CopyObject (5 GB on S3; 5 MB here) is kept by a multipart copy, whole.
#[tokio::test]
async fn s3_a_file_past_one_copy_is_kept_in_parts() {
    let Some(c) = aws_clients().await else { return };
    let bucket = unique("bigcopy");
    c.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let media = S3MediaStore::new(c.s3.clone(), bucket.clone()).with_copy_part(5 * 1024 * 1024);
    let n = 12 * (1 << 20) + 7;
    assert!(media.put_upload("01BIG", chunked(n), n as u64).await.unwrap());
    media.keep("01BIG", "01KEPT", "application/zip").await.unwrap();
    let kept = read(media.open("01KEPT").await.unwrap()).await.unwrap();
    let sent = read(Some(chunked(n))).await.unwrap();
    assert!(kept == sent, "{} bytes kept of {}", kept.len(), sent.len());
    let head = c.s3.head_object().bucket(&bucket).key("media/01KEPT").send().await.unwrap();
    assert_eq!(head.content_type(), Some("application/zip"));
    assert!(head.e_tag().unwrap_or("").contains("-3"), "three parts: {:?}", head.e_tag());
}

async fn an_upload_streams_and_stops_past_its_limit(media: Arc<dyn MediaStore>) {
    assert!(media.open_upload("01UPNONE").await.unwrap().is_none());
    // Over S3's 8 MB part: a multipart upload there.
    let n = 20 * (1 << 20) + 3;
    assert!(media.put_upload("01UP1", chunked(n), n as u64).await.unwrap());
    let got = read(media.open_upload("01UP1").await.unwrap()).await.unwrap();
    assert_eq!(got.len(), n);
    assert_eq!((got[0], got[(9 << 20) + 5], got[n - 1]), (0, 9, 20));
    assert!(!media.put_upload("01UP2", chunked(n), n as u64 - 1).await.unwrap(), "one byte over is over");
    assert!(media.open_upload("01UP2").await.unwrap().is_none(), "nothing kept of a refused upload");
    let broken: ByteStream = Box::pin(futures_util::stream::iter([
        Ok(bytes::Bytes::from(vec![1; 10 << 20])),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut")),
    ]));
    assert!(media.put_upload("01UP3", broken, u64::MAX).await.is_err());
    assert!(media.open_upload("01UP3").await.unwrap().is_none(), "nothing kept of a broken upload");
}

/// A store either serves the bytes through the API (no URL) or signs URLs that work.
async fn a_signed_url_takes_or_serves_the_bytes(media: Arc<dyn MediaStore>) {
    let ttl = Duration::from_secs(300);
    let http = reqwest::Client::new();
    if let Some(url) = media.upload_url("01UP2", "image/jpeg", ttl).await.unwrap() {
        let put = http.put(url).header("content-type", "image/jpeg").body(vec![1, 2, 3]).send().await.unwrap();
        assert!(put.status().is_success(), "{}", put.status());
        assert_eq!(read(media.open_upload("01UP2").await.unwrap()).await, Some(vec![1, 2, 3]));
    }
    assert!(media.put_upload("01UP4", byte_stream(vec![9; 5]), 5).await.unwrap());
    media.keep("01UP4", "01DL", "image/png").await.unwrap();
    if let Some(url) = media.download_url("01DL", ttl).await.unwrap() {
        let got = http.get(url).send().await.unwrap();
        assert!(got.status().is_success(), "{}", got.status());
        assert_eq!(got.headers()["content-type"], "image/png");
        assert_eq!(&got.bytes().await.unwrap()[..], &[9; 5]);
    }
}

// ---- Queue ------------------------------------------------------------------------------

/// A queue and the way its consumer takes what is on it.
enum Queues {
    Sqlite(SqliteQueue),
    Sqs { q: SqsQueue, c: AwsClients, outbound: String, receipts: String },
}

impl Queues {
    fn port(&self) -> &dyn Queue {
        match self {
            Queues::Sqlite(q) => q,
            Queues::Sqs { q, .. } => q,
        }
    }

    /// Every body on `kind`, in the order the consumer gets them, each deleted once taken (a
    /// FIFO group's next message shows only then).
    async fn drain(&self, kind: QueueKind) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let before = bodies.len();
            match self {
                Queues::Sqlite(q) => {
                    let name = match kind {
                        QueueKind::Outbound => QueueName::Outbound,
                        QueueKind::Receipts => QueueName::Receipts,
                    };
                    for job in q.receive(name, OffsetDateTime::now_utc(), 10).await.unwrap() {
                        bodies.push(job.body);
                        q.ack(job.seq).await.unwrap();
                    }
                }
                Queues::Sqs { c, outbound, receipts, .. } => {
                    let url = if kind == QueueKind::Outbound { outbound } else { receipts };
                    let out = c.sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
                    for m in out.messages() {
                        bodies.push(m.body().unwrap_or_default().to_string());
                        let handle = m.receipt_handle().unwrap_or_default();
                        c.sqs.delete_message().queue_url(url).receipt_handle(handle).send().await.unwrap();
                    }
                }
            }
            if bodies.len() == before {
                return bodies;
            }
        }
    }

    async fn outbound(&self) -> Vec<OutboundJob> {
        self.drain(QueueKind::Outbound).await.iter().map(|b| serde_json::from_str(b).unwrap()).collect()
    }
}

async fn sqlite_queue() -> Option<(Queues, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(shared::adapters::clock::SystemClock);
    Some((Queues::Sqlite(SqliteQueue::new(Db::open(dir.path()).unwrap(), clock)), dir))
}

async fn sqs_queue() -> Option<(Queues, ())> {
    let c = aws_clients().await?;
    let outbound = support::fifo_queue(&c, "outbound").await;
    let receipts = c.sqs.create_queue().queue_name(unique("receipts")).send().await.unwrap();
    let receipts = receipts.queue_url().unwrap_or_default().to_string();
    let q = SqsQueue::new(c.sqs.clone(), outbound.clone(), receipts.clone());
    Some((Queues::Sqs { q, c, outbound, receipts }, ()))
}

fn job(conv: &str, message: &str, generation: u32) -> OutboundJob {
    OutboundJob { conversation_id: conv.into(), message_id: message.into(), generation, carried: 0 }
}

async fn a_job_sent_again_is_taken_once_and_a_new_generation_is_another(q: Queues) {
    let port = q.port();
    port.send_outbound(job("c1", "m1", 0)).await.unwrap();
    port.send_outbound(job("c1", "m1", 0)).await.unwrap();
    port.send_outbound(job("c1", "m1", 1)).await.unwrap();
    assert_eq!(q.outbound().await, vec![job("c1", "m1", 0), job("c1", "m1", 1)]);
}

async fn one_threads_jobs_are_taken_in_the_order_sent(q: Queues) {
    for i in 0..6 {
        q.port().send_outbound(job("c1", &format!("m{i}"), 0)).await.unwrap();
        q.port().send_outbound(job("c2", &format!("n{i}"), 0)).await.unwrap();
    }
    let taken = q.outbound().await;
    assert_eq!(taken.len(), 12, "{taken:?}");
    for conv in ["c1", "c2"] {
        let ids: Vec<_> =
            taken.iter().filter(|j| j.conversation_id == conv).map(|j| &j.message_id.as_str()[1..]).collect();
        assert_eq!(ids, ["0", "1", "2", "3", "4", "5"], "{conv}");
    }
}

async fn a_receipt_job_is_taken_as_it_was_sent(q: Queues) {
    let fetch = ReceiptsJob::FetchMedia(MediaFetch {
        conversation_id: "c1".into(),
        message_id: "m1".into(),
        media_id: "01PIC".into(),
        meta_id: "meta-7".into(),
        sha256: Some("abc".into()),
        kind: shared::domain::message::FileKind::Image,
    });
    let status = StatusEvent {
        wamid: "wamid.X".into(),
        status: shared::domain::ReceiptStatus::Delivered,
        timestamp: time::macros::datetime!(2026-12-04 10:00 UTC),
        recipient_id: Some("447700900123".into()),
        errors: Vec::new(),
        callback: Some("m1".into()),
    };
    q.port().send_receipt(fetch.clone()).await.unwrap();
    q.port().send_receipt(ReceiptsJob::Status(status.clone())).await.unwrap();
    let mut taken: Vec<ReceiptsJob> =
        q.drain(QueueKind::Receipts).await.iter().map(|b| serde_json::from_str(b).unwrap()).collect();
    // The receipts queue keeps no order.
    taken.sort_by_key(|j| matches!(j, ReceiptsJob::Status(_)));
    assert_eq!(taken, vec![fetch, ReceiptsJob::Status(status)]);
}

// ---- Scheduler ----------------------------------------------------------------------------

/// A scheduler and where its timers can be seen armed.
enum Timers {
    Sqlite(SqliteScheduler, Db),
    EventBridge(EventBridgeScheduler, AwsClients, String),
}

impl Timers {
    fn port(&self) -> &dyn Scheduler {
        match self {
            Timers::Sqlite(s, ..) => s,
            Timers::EventBridge(s, ..) => s,
        }
    }

    /// Each armed timer's name and when it fires, as a Scheduler `at(...)` expression.
    async fn armed(&self) -> Vec<(String, String)> {
        let mut armed = match self {
            Timers::Sqlite(_, db) => db
                .read(|c| {
                    let mut stmt = c.prepare("SELECT name, due_at FROM timers")?;
                    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                })
                .await
                .unwrap()
                .into_iter()
                .map(|(name, due)| (name, at_expression(OffsetDateTime::from_unix_timestamp(due).unwrap())))
                .collect(),
            Timers::EventBridge(_, c, group) => {
                let mut out = Vec::new();
                let list = c.scheduler.list_schedules().group_name(group).send().await.unwrap();
                for s in list.schedules() {
                    let name = s.name().unwrap_or_default();
                    let got = c.scheduler.get_schedule().group_name(group).name(name).send().await.unwrap();
                    out.push((name.to_string(), got.schedule_expression().unwrap_or_default().to_string()));
                }
                out
            }
        };
        armed.sort();
        armed
    }
}

async fn sqlite_timers() -> Option<(Timers, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    Some((Timers::Sqlite(SqliteScheduler::new(db.clone()), db), dir))
}

async fn eventbridge_timers() -> Option<(Timers, ())> {
    let c = aws_clients().await?;
    let (s, group) = support::eventbridge_scheduler(&c).await;
    Some((Timers::EventBridge(s, c, group), ()))
}

/// `h` hours after `now`, in whole seconds: what every scheduler keeps. Each test reads the
/// clock once, so the times it arms and the times it expects cannot straddle a second.
fn hours_after(now: OffsetDateTime, h: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(now.unix_timestamp() + h * 3600).unwrap()
}

async fn arming_a_timer_again_moves_it(t: Timers) {
    let now = OffsetDateTime::now_utc();
    let timer = Timer::WindowExpiry { contact_key: "447700900123".into() };
    t.port().schedule(&timer, hours_after(now, 24)).await.unwrap();
    t.port().schedule(&timer, hours_after(now, 27)).await.unwrap();
    assert_eq!(t.armed().await, vec![(timer.name(), at_expression(hours_after(now, 27)))]);
}

async fn timers_of_other_names_are_armed_side_by_side(t: Timers) {
    let timers = [
        Timer::WindowExpiry { contact_key: "447700900123".into() },
        Timer::WindowExpiry { contact_key: "447700900456".into() },
        Timer::OptinRetry { conversation_id: "c1".into() },
        Timer::HeldExpiry { conversation_id: "c1".into(), message_id: "m1".into() },
    ];
    let now = OffsetDateTime::now_utc();
    for (i, timer) in timers.iter().enumerate() {
        t.port().schedule(timer, hours_after(now, i as i64 + 1)).await.unwrap();
    }
    let mut want: Vec<_> = timers
        .iter()
        .enumerate()
        .map(|(i, timer)| (timer.name(), at_expression(hours_after(now, i as i64 + 1))))
        .collect();
    want.sort();
    assert_eq!(t.armed().await, want);
}

// ---- Change stream ----------------------------------------------------------------------

/// A store whose commits' archive events are read back as the archiver reads them: the feed
/// the embedded and memory stores keep, or on DynamoDB each written item's `rec` as the
/// table's stream shows it (`stream::entries_of_stream` over the item's new image).
enum Streams {
    Pulled(Arc<dyn Store>, Arc<dyn ChangeStream>),
    Dynamo(Arc<dyn Store>, aws_sdk_dynamodb::Client, String),
}

impl Streams {
    fn store(&self) -> &dyn Store {
        match self {
            Streams::Pulled(s, _) | Streams::Dynamo(s, ..) => &**s,
        }
    }

    /// Submits `tx`; the entries it added to the stream.
    async fn commit(&self, tx: Transaction) -> (Result<(), shared::ports::StoreError>, Vec<StreamEntry>) {
        match self {
            Streams::Pulled(store, stream) => {
                let before = stream.entries_after(None, 10_000).await.unwrap().last().map(|e| e.position.clone());
                let r = store.submit(&tx).await;
                (r, stream.entries_after(before.as_ref(), 10_000).await.unwrap())
            }
            Streams::Dynamo(store, client, table) => {
                let r = store.submit(&tx).await;
                let mut records = Vec::new();
                for w in tx.writes.iter().filter(|w| matches!(w, Write::Put { .. })) {
                    let key = w.key();
                    let got = client
                        .get_item()
                        .table_name(table)
                        .key("pk", AttributeValue::S(key.pk))
                        .key("sk", AttributeValue::S(key.sk))
                        .consistent_read(true)
                        .send()
                        .await
                        .unwrap();
                    let text = |name: &str| match got.item().and_then(|i| i.get(name)) {
                        Some(AttributeValue::S(s)) => Some(serde_json::json!({ "S": s })),
                        _ => None,
                    };
                    let mut image = serde_json::Map::new();
                    for name in ["body", "rec"] {
                        if let Some(v) = text(name) {
                            image.insert(name.into(), v);
                        }
                    }
                    let seq = format!("{}", 1000 + records.len());
                    records.push(serde_json::json!({"dynamodb": {"SequenceNumber": seq, "NewImage": image}}));
                }
                (r, shared::adapters::aws::stream::entries_of_stream(&records).unwrap())
            }
        }
    }
}

async fn sqlite_stream() -> Option<(Streams, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::new(Db::open(dir.path()).unwrap()));
    Some((Streams::Pulled(store.clone(), store), dir))
}

async fn memory_stream() -> Option<(Streams, ())> {
    let store = Arc::new(shared::adapters::memory::MemoryStore::new());
    Some((Streams::Pulled(store.clone(), store), ()))
}

async fn dynamo_stream() -> Option<(Streams, ())> {
    let c = aws_clients().await?;
    let table = unique("stream");
    DynamoStore::create_table(&c.dynamodb, &table).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(c.dynamodb.clone(), table.clone()));
    Some((Streams::Dynamo(store, c.dynamodb.clone(), table), ()))
}

fn thread_and_message() -> (Conversation, Message) {
    let now = OffsetDateTime::now_utc();
    let contact = Contact::new("447700900123".into(), Some("+447700900123".into()), None);
    let conv = Conversation::new("c1".into(), &contact, "en".into(), now);
    let m = Message::outbound("m1".into(), "c1".into(), "u1".into(), Body::text("hello"), now);
    (conv, m)
}

fn consent(conv: &Conversation, n: u64) -> Journaled {
    let event = shared::usecases::archive::event(
        &conv.id,
        ArchiveKind::Consent,
        Sender::Contact,
        OffsetDateTime::now_utc(),
        serde_json::json!({ "consent": "opted_in", "n": n }),
    );
    Journaled { source: Source { item: Key::conversation(&conv.id).sk, n }, event }
}

async fn a_commits_archive_events_come_back_in_order_with_what_carried_them(s: Streams) {
    let (mut conv, mut m) = thread_and_message();
    m.records = 1;
    conv.records = 1;
    let message =
        Journaled { source: Source { item: Key::message(&conv.id, &m.id).sk, n: 1 }, event: message_event(&m) };
    let first = consent(&conv, 1);
    let mut tx = Transaction::new(vec![
        Write::Put { item: Item::Conversation(conv.clone()), cond: Cond::NotExists },
        Write::Put { item: Item::Message(m.clone()), cond: Cond::NotExists },
    ]);
    tx.entry.records = vec![message.clone(), first.clone()];
    let (r, entries) = s.commit(tx).await;
    r.unwrap();
    let got: Vec<Journaled> = entries.iter().flat_map(|e| e.records.clone()).collect();
    let mut want = vec![message, first];
    want.sort_by(|a, b| a.source.cmp(&b.source));
    let mut sorted = got.clone();
    sorted.sort_by(|a, b| a.source.cmp(&b.source));
    assert_eq!(sorted, want, "every event, once, as committed");
    let positions: Vec<_> = entries.iter().map(|e| e.position.clone()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");

    // The next write of the thread carries its own event, and not the first one's again.
    conv.records = 2;
    let second = consent(&conv, 2);
    let mut tx = Transaction::new(vec![Write::Put { item: Item::Conversation(conv.clone()), cond: Cond::Version(1) }]);
    tx.entry.records = vec![second.clone()];
    let (r, entries) = s.commit(tx).await;
    r.unwrap();
    assert_eq!(entries.iter().flat_map(|e| e.records.clone()).collect::<Vec<_>>(), vec![second]);
    // A write that carries nothing leaves nothing on the stream.
    let quiet = Transaction::new(vec![Write::Put { item: Item::Conversation(conv), cond: Cond::Version(2) }]);
    let (r, entries) = s.commit(quiet).await;
    r.unwrap();
    assert!(entries.is_empty(), "{entries:?}");
}

async fn a_refused_commit_leaves_nothing_on_the_stream(s: Streams) {
    let (mut conv, _) = thread_and_message();
    s.store()
        .transact(vec![Write::Put { item: Item::Conversation(conv.clone()), cond: Cond::NotExists }])
        .await
        .unwrap();
    conv.records = 1;
    let mut tx = Transaction::new(vec![Write::Put { item: Item::Conversation(conv.clone()), cond: Cond::Version(7) }]);
    tx.entry.records = vec![consent(&conv, 1)];
    let (r, entries) = s.commit(tx).await;
    assert!(r.is_err());
    let carried: Vec<Journaled> = entries.iter().flat_map(|e| e.records.clone()).collect();
    assert!(carried.is_empty(), "{carried:?}");
}

// ---- Vault ------------------------------------------------------------------------------

async fn s3_vault() -> Option<(Arc<dyn Vault>, AwsClients, String)> {
    let c = aws_clients().await?;
    let bucket = unique("anchors");
    S3Vault::create_bucket(&c.s3, &bucket, 1).await.unwrap();
    Some((Arc::new(S3Vault::new(c.s3.clone(), bucket.clone(), time::Duration::days(1))), c, bucket))
}

async fn disk_vault() -> Option<(Arc<dyn Vault>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    Some((Arc::new(DiskVault::new(dir.path())), dir))
}

/// A name is a path of plain parts inside the vault's folder.
#[tokio::test]
async fn disk_a_name_that_would_leave_the_vault_is_refused() {
    let (vault, dir) = disk_vault().await.unwrap();
    for name in ["../escaped", "anchors/../../escaped", "/etc/escaped", ""] {
        assert!(vault.put(name, b"x".to_vec()).await.is_err(), "{name:?}");
    }
    assert!(!dir.path().join("escaped").exists());
}

async fn memory_vault() -> Option<(Arc<dyn Vault>, ())> {
    Some((Arc::new(MemoryVault::default()), ()))
}

async fn s3_vault_port() -> Option<(Arc<dyn Vault>, ())> {
    s3_vault().await.map(|(vault, ..)| (vault, ()))
}

/// A versioned bucket without Object Lock, where an erasure is up to the vault alone (the
/// lock's own refusals: `s3_object_lock_refuses_an_erasure_within_retention_or_under_a_hold`).
async fn s3_unlocked_vault() -> Option<(Arc<dyn Vault>, ())> {
    let c = aws_clients().await?;
    let bucket = unique("unlocked");
    c.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    versioned(&c, &bucket).await;
    Some((Arc::new(S3Vault::new(c.s3.clone(), bucket, time::Duration::days(1))), ()))
}

async fn a_name_is_written_once(vault: Arc<dyn Vault>) {
    vault.put("anchors/a", b"first".to_vec()).await.unwrap();
    vault.put("anchors/a", b"first".to_vec()).await.expect("the same bytes again: a retry");
    assert!(vault.put("anchors/a", b"other".to_vec()).await.is_err(), "other bytes under a written name");
    assert_eq!(vault.get("anchors/a").await.unwrap().as_deref(), Some(&b"first"[..]));
    assert_eq!(vault.get("anchors/none").await.unwrap(), None);
}

async fn names_are_listed_by_prefix_in_order(vault: Arc<dyn Vault>) {
    for name in ["anchors/2", "anchors/1", "notes/1", "anchors/10"] {
        vault.put(name, name.as_bytes().to_vec()).await.unwrap();
    }
    assert_eq!(vault.list("anchors/").await.unwrap(), ["anchors/1", "anchors/10", "anchors/2"]);
    assert_eq!(vault.list("none/").await.unwrap(), Vec::<String>::new());
}

async fn an_erased_name_is_gone_and_names_list_past_a_name(vault: Arc<dyn Vault>) {
    for name in ["records/1", "records/2", "records/3", "uses/1"] {
        vault.put(name, name.as_bytes().to_vec()).await.unwrap();
    }
    assert_eq!(vault.list_after("records/", "records/1", 10).await.unwrap(), ["records/2", "records/3"]);
    assert_eq!(vault.list_after("records/", "", 1).await.unwrap(), ["records/1"]);
    vault.erase("records/2").await.unwrap();
    vault.erase("records/2").await.unwrap();
    assert_eq!(vault.get("records/2").await.unwrap(), None);
    assert_eq!(vault.list("records/").await.unwrap(), ["records/1", "records/3"]);
    assert_eq!(vault.get("records/3").await.unwrap().as_deref(), Some(&b"records/3"[..]));
}

/// Object Lock refuses an erasure within a batch's retention, counted from the time in its name,
/// and under a legal hold, whoever asks; past both, nothing of it is left.
#[tokio::test]
async fn s3_object_lock_refuses_an_erasure_within_retention_or_under_a_hold() {
    let Some((_, c, bucket)) = s3_vault().await else { return };
    let vault = S3Vault::new(c.s3.clone(), bucket.clone(), time::Duration::seconds(2));
    let (name, body) = shared::archive::batch(&[], time::OffsetDateTime::now_utc());
    vault.put(&name, body).await.unwrap();
    assert!(vault.erase(&name).await.is_err(), "within retention");
    vault.hold(&name, true).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(vault.erase(&name).await.is_err(), "under a legal hold");
    assert!(vault.get(&name).await.unwrap().is_some());
    vault.hold(&name, false).await.unwrap();
    vault.erase(&name).await.unwrap();
    assert_eq!(vault.get(&name).await.unwrap(), None);
    let listed = c.s3.list_object_versions().bucket(&bucket).prefix(&name).send().await.unwrap();
    assert!(listed.versions().is_empty() && listed.delete_markers().is_empty(), "{listed:?}");
}

/// Someone who bypasses the vault (and the bucket policy that demands conditional puts) can add
/// a version over an anchor, never delete the first: the vault reads the first.
#[tokio::test]
async fn s3_a_version_put_past_the_vault_does_not_stand_in_for_the_anchor() {
    let Some((vault, c, bucket)) = s3_vault().await else { return };
    vault.put("anchors/a", b"first".to_vec()).await.unwrap();
    let forged = c.s3.put_object().bucket(&bucket).key("anchors/a").body(b"forged".to_vec().into());
    forged.checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256).send().await.unwrap();
    assert_eq!(vault.get("anchors/a").await.unwrap().as_deref(), Some(&b"first"[..]));
}

// ---- Every contract on every adapter ------------------------------------------------------

/// The tests of one port on one adapter: `$make` gives the port and what must outlive it, or
/// `None` (an AWS adapter without the emulator).
macro_rules! contract {
    ($module:ident = $make:ident: $($test:ident),+ $(,)?) => {
        mod $module {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                if let Some((port, _keep)) = super::$make().await {
                    super::$test(port).await;
                }
            })+
        }
    };
}

contract!(media_disk = disk_media: a_kept_upload_round_trips_and_a_missing_one_is_none, an_upload_streams_and_stops_past_its_limit, a_signed_url_takes_or_serves_the_bytes, a_removed_file_is_gone_and_removing_it_again_is_harmless);
contract!(media_s3 = s3_media: a_kept_upload_round_trips_and_a_missing_one_is_none, an_upload_streams_and_stops_past_its_limit, a_signed_url_takes_or_serves_the_bytes, a_removed_file_is_gone_and_removing_it_again_is_harmless);
contract!(queue_sqlite = sqlite_queue: a_job_sent_again_is_taken_once_and_a_new_generation_is_another, one_threads_jobs_are_taken_in_the_order_sent, a_receipt_job_is_taken_as_it_was_sent);
contract!(queue_sqs = sqs_queue: a_job_sent_again_is_taken_once_and_a_new_generation_is_another, one_threads_jobs_are_taken_in_the_order_sent, a_receipt_job_is_taken_as_it_was_sent);
contract!(scheduler_sqlite = sqlite_timers: arming_a_timer_again_moves_it, timers_of_other_names_are_armed_side_by_side);
contract!(scheduler_eventbridge = eventbridge_timers: arming_a_timer_again_moves_it, timers_of_other_names_are_armed_side_by_side);
contract!(stream_sqlite = sqlite_stream: a_commits_archive_events_come_back_in_order_with_what_carried_them, a_refused_commit_leaves_nothing_on_the_stream);
contract!(stream_memory = memory_stream: a_commits_archive_events_come_back_in_order_with_what_carried_them, a_refused_commit_leaves_nothing_on_the_stream);
contract!(stream_dynamodb = dynamo_stream: a_commits_archive_events_come_back_in_order_with_what_carried_them, a_refused_commit_leaves_nothing_on_the_stream);
contract!(vault_disk = disk_vault: a_name_is_written_once, names_are_listed_by_prefix_in_order, an_erased_name_is_gone_and_names_list_past_a_name);
contract!(vault_memory = memory_vault: a_name_is_written_once, names_are_listed_by_prefix_in_order, an_erased_name_is_gone_and_names_list_past_a_name);
contract!(vault_s3 = s3_vault_port: a_name_is_written_once, names_are_listed_by_prefix_in_order);
contract!(vault_s3_unlocked = s3_unlocked_vault: an_erased_name_is_gone_and_names_list_past_a_name);
