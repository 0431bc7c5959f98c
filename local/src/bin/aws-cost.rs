//! What a million messages cost on AWS: drives a workload shaped like a month of traffic
//! (contacts who write, employees who answer, Meta's three statuses for each answer, a window
//! opened and closed per contact) through the AWS adapters on the emulator at `MOTO_ENDPOINT`,
//! with every AWS request and DynamoDB unit counted by an SDK interceptor
//! (`shared::adapters::aws::meter`). The table's stream is read after each phase and handed to
//! the archiver and to the live fan-out, as their event source mappings would, so their writes,
//! reads and S3 objects are counted with the traffic that caused them.
//!
//! Priced at list prices (us-east-1, `meter::price`): DynamoDB on demand (and provisioned at
//! 70% use), SQS, Scheduler invocations, S3 requests and a year of storage, Lambda GB-seconds
//! from the measured duration of each handler's work at the template's 256 MB, API Gateway
//! requests and WebSocket messages, CloudWatch Logs from the bytes the code logged (plus
//! Lambda's own three lines per invocation). Stream reads by Lambda are free.
//!
//! `scripts/aws-cost` starts moto and runs it; `AWS_COST_CONTACTS=N` (default 10) scales it.
//! The last line: `per million: inbound <a> outbound <b> (table+queues); full inbound <c> outbound <d>`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use shared::adapters::aws::meter::{price, Call, Meter};
use shared::adapters::aws::AwsClients;
use shared::domain::{Phone, ReceiptStatus};
use shared::meta::webhook::{InboundContent, InboundMessage, StatusEvent};
use shared::ports::{Clock, Push, PushError, Timer};
use shared::usecases::{archiver, conversations, dispatch, inbound, receipts, send, timers, Caller, Ports};
use time::{Duration, OffsetDateTime};

/// Messages each contact writes, and answers each gets.
const INBOUND_PER_CONTACT: usize = 5;
const OUTBOUND_PER_CONTACT: usize = 5;
/// The template's function memory.
const LAMBDA_GB: f64 = 0.25;
/// A DynamoDB, SQS or S3 request's round trip in the same region, in milliseconds.
const REQUEST_MS: f64 = 8.0;
/// Lambda's START, END and REPORT lines of one invocation.
const PLATFORM_LOG_BYTES: usize = 330;
/// Records per archiver or live invocation: the stream at about 400 changes a second, with
/// the archiver's one-second batching window (fewer per batch costs more per record).
const STREAM_BATCH: usize = 100;

/// What one bucket (inbound or outbound) used.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Usage {
    messages: usize,
    dynamodb_write_units: u64,
    dynamodb_read_units: u64,
    sqs_requests: u64,
    scheduler_calls: u64,
    scheduler_invocations: u64,
    s3_puts: u64,
    s3_gets: u64,
    s3_bytes: u64,
    lambda_invocations: u64,
    lambda_seconds: f64,
    http_requests: u64,
    websocket_messages: u64,
    log_bytes: u64,
    /// Requests, write units and read units by stage and operation (`AWS_COST_CALLS=1` prints them).
    calls: BTreeMap<String, (u64, u64, u64)>,
    /// The handlers' own CPU time (the process's, moto runs apart), in seconds.
    cpu_seconds: f64,
    /// AWS requests the handlers made (each one a wait in a Lambda's duration).
    requests: u64,
}

impl Usage {
    fn add_calls(&mut self, stage: &str, calls: &[Call]) {
        self.requests += calls.len() as u64;
        for c in calls {
            let e = self.calls.entry(format!("{stage} {}:{}", c.service, c.operation)).or_default();
            *e = (e.0 + 1, e.1 + u64::from(c.write_units), e.2 + u64::from(c.read_units));
            match c.service {
                "dynamodb" => {
                    self.dynamodb_write_units += u64::from(c.write_units);
                    self.dynamodb_read_units += u64::from(c.read_units);
                }
                "sqs" => self.sqs_requests += 1,
                "scheduler" => self.scheduler_calls += 1,
                "s3" if c.operation.starts_with("PUT") => {
                    self.s3_puts += 1;
                    self.s3_bytes += c.bytes as u64;
                }
                "s3" => self.s3_gets += 1,
                _ => {}
            }
        }
    }

    fn invoked(&mut self, started: Instant, cpu: f64) {
        self.lambda_invocations += 1;
        self.lambda_seconds += started.elapsed().as_secs_f64();
        self.cpu_seconds += cpu_seconds() - cpu;
    }

    /// Billed Lambda seconds: the handlers' CPU time as measured, and a wait of
    /// `REQUEST_MS` per AWS request (moto answers far slower than AWS does in-region, so the
    /// wall time measured here is not what Lambda would bill).
    fn billed_seconds(&self) -> f64 {
        self.cpu_seconds + self.requests as f64 * REQUEST_MS / 1000.0
    }

    /// Dollars per million messages, by what charges them.
    fn prices(&self) -> BTreeMap<&'static str, f64> {
        let per = |n: f64| n / self.messages.max(1) as f64;
        let gb = 1024.0 * 1024.0 * 1024.0;
        let ddb =
            price::WRITE_UNIT * self.dynamodb_write_units as f64 + price::READ_UNIT * self.dynamodb_read_units as f64;
        BTreeMap::from([
            ("1 dynamodb", per(ddb)),
            ("2 sqs", per(price::SQS_FIFO * self.sqs_requests as f64)),
            ("3 scheduler", per(price::SCHEDULER_INVOCATION * self.scheduler_invocations as f64)),
            (
                "4 s3",
                per(price::S3_PUT * self.s3_puts as f64
                    + price::S3_GET * self.s3_gets as f64
                    + price::S3_GB_MONTH * 12.0 * self.s3_bytes as f64 * 1e6 / gb),
            ),
            (
                "5 lambda",
                per(price::LAMBDA_REQUEST * self.lambda_invocations as f64
                    + price::LAMBDA_GB_SECOND * self.billed_seconds() * LAMBDA_GB),
            ),
            ("6 api gateway", per(price::HTTP_API_REQUEST * self.http_requests as f64)),
            ("7 websocket", per(price::WEBSOCKET_MESSAGE * self.websocket_messages as f64)),
            ("8 logs", per(price::LOGS_GB * self.log_bytes as f64 * 1e6 / gb)),
        ])
    }

    fn table_and_queues(&self) -> f64 {
        let p = self.prices();
        p["1 dynamodb"] + p["2 sqs"]
    }

    fn full(&self) -> f64 {
        self.prices().values().sum()
    }

    /// DynamoDB provisioned, at 70% of what is provisioned used, per million messages.
    fn provisioned_table(&self) -> f64 {
        let hours = |units: u64| units as f64 / 3600.0 / 0.7;
        (price::WCU_HOUR * hours(self.dynamodb_write_units) + price::RCU_HOUR * hours(self.dynamodb_read_units)) * 1e6
            / self.messages.max(1) as f64
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Report {
    contacts: usize,
    inbound: Usage,
    outbound: Usage,
}

/// The connector's clock, moved by the workload (a day on, to close the windows).
struct Shifted(Mutex<Duration>);

impl Clock for Shifted {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + *self.0.lock().unwrap()
    }
}

/// The WebSocket API's `@connections` posts, counted (a message per started 32 KB).
#[derive(Default)]
struct CountedPush(AtomicUsize);

#[async_trait::async_trait]
impl Push for CountedPush {
    async fn post(&self, _connection_id: &str, payload: &[u8]) -> Result<(), PushError> {
        self.0.fetch_add(payload.len().div_ceil(32 * 1024).max(1), Ordering::Relaxed);
        Ok(())
    }
}

fn main() {
    if std::env::var_os("AWS_COST_DRIVE").is_some() {
        let report = tokio::runtime::Runtime::new().unwrap().block_on(drive());
        eprintln!("@@report {}", serde_json::to_string(&report).unwrap());
        return;
    }
    // The workload runs in a child whose standard output (its logs and metrics, as CloudWatch
    // would take them) is counted here, phase by phase.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("AWS_COST_DRIVE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let counting = std::thread::spawn(move || {
        let mut bytes: BTreeMap<String, u64> = BTreeMap::new();
        let mut phase = String::from("setup");
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(p) = line.strip_prefix("@@phase ") {
                phase = p.to_string();
            } else {
                *bytes.entry(phase.clone()).or_default() += line.len() as u64 + 1;
            }
        }
        bytes
    });
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut report = None;
    for line in stderr.lines().map_while(Result::ok) {
        match line.strip_prefix("@@report ") {
            Some(json) => report = Some(serde_json::from_str::<Report>(json).unwrap()),
            None => eprintln!("{line}"),
        }
    }
    let status = child.wait().unwrap();
    let logged = counting.join().unwrap();
    let Some(mut r) = report.filter(|_| status.success()) else {
        eprintln!("aws-cost: the workload failed ({status})");
        std::process::exit(1);
    };
    for (phase, usage) in [("inbound", &mut r.inbound), ("outbound", &mut r.outbound)] {
        usage.log_bytes =
            logged.get(phase).copied().unwrap_or(0) + usage.lambda_invocations * PLATFORM_LOG_BYTES as u64;
    }
    print(&r);
}

fn print(r: &Report) {
    let (i, o) = (&r.inbound, &r.outbound);
    if std::env::var_os("AWS_COST_CALLS").is_some() {
        for (name, u) in [("inbound", i), ("outbound", o)] {
            for (call, (n, wu, ru)) in &u.calls {
                let per = |x: u64| x as f64 / u.messages.max(1) as f64;
                println!(
                    "  {name} {call}: {:.2} requests, {:.2} wu, {:.2} ru per message",
                    per(*n),
                    per(*wu),
                    per(*ru)
                );
            }
        }
    }
    println!(
        "aws-cost: {} contacts; {} inbound texts (with {} windows opened and closed), {} outbound texts with 3 statuses each",
        r.contacts, i.messages, r.contacts, o.messages
    );
    println!("per message (measured)             inbound   outbound");
    let row = |name: &str, a: f64, b: f64| println!("  {name:<31} {a:>8.2} {b:>10.2}");
    let per = |u: &Usage, n: f64| n / u.messages.max(1) as f64;
    row("DynamoDB write units", per(i, i.dynamodb_write_units as f64), per(o, o.dynamodb_write_units as f64));
    row("DynamoDB read units", per(i, i.dynamodb_read_units as f64), per(o, o.dynamodb_read_units as f64));
    row("SQS requests", per(i, i.sqs_requests as f64), per(o, o.sqs_requests as f64));
    row("Scheduler API calls", per(i, i.scheduler_calls as f64), per(o, o.scheduler_calls as f64));
    row("Scheduler invocations", per(i, i.scheduler_invocations as f64), per(o, o.scheduler_invocations as f64));
    row("S3 PUTs", per(i, i.s3_puts as f64), per(o, o.s3_puts as f64));
    row("S3 bytes archived", per(i, i.s3_bytes as f64), per(o, o.s3_bytes as f64));
    row("Lambda invocations", per(i, i.lambda_invocations as f64), per(o, o.lambda_invocations as f64));
    row("Lambda wall ms (on moto)", per(i, i.lambda_seconds * 1000.0), per(o, o.lambda_seconds * 1000.0));
    row("Lambda CPU ms", per(i, i.cpu_seconds * 1000.0), per(o, o.cpu_seconds * 1000.0));
    row("Lambda billed ms (CPU + 8/request)", per(i, i.billed_seconds() * 1000.0), per(o, o.billed_seconds() * 1000.0));
    row("API Gateway requests", per(i, i.http_requests as f64), per(o, o.http_requests as f64));
    row("WebSocket messages", per(i, i.websocket_messages as f64), per(o, o.websocket_messages as f64));
    row("log bytes", per(i, i.log_bytes as f64), per(o, o.log_bytes as f64));
    println!("dollars per million messages        inbound   outbound");
    let (pi, po) = (i.prices(), o.prices());
    for (name, a) in &pi {
        row(&name[2..], *a, po[name]);
    }
    row("DynamoDB provisioned (70% used)", i.provisioned_table(), o.provisioned_table());
    println!(
        "per million: inbound ${:.2} outbound ${:.2} (table+queues); full inbound ${:.2} outbound ${:.2}",
        i.table_and_queues(),
        o.table_and_queues(),
        i.full(),
        o.full()
    );
}

/// The workload: set up (not counted), then each phase counted into its bucket.
async fn drive() -> Report {
    shared::telemetry::init();
    shared::metrics::enable();
    let contacts: usize = std::env::var("AWS_COST_CONTACTS").ok().and_then(|n| n.parse().ok()).unwrap_or(10);
    let Some((_, base)) = AwsClients::emulator_from_env().await else {
        panic!("MOTO_ENDPOINT is not set: scripts/aws-cost starts moto and sets it");
    };
    let meter = Meter::default();
    let clients = meter.clients(&base);
    let r = base.emulator_resources(true).await;
    let config = shared::Config::from_lookup(|_| None).unwrap();
    let clock = Arc::new(Shifted(Mutex::new(Duration::ZERO)));
    let whatsapp = Arc::new(shared::adapters::sandbox::SandboxWhatsApp::new(
        config.app_secret.clone(),
        config.phone_number_id.clone(),
        clock.clone(),
        shared::adapters::sandbox::catalog(&config.settings),
    ));
    let ports = shared::app::aws_ports(&config, &r, &clients, clock.clone(), whatsapp);
    let stream = connector_local::stream::TableStream::new(&base, &r.table);
    let push = CountedPush::default();
    let mut drained: Option<String> = None;
    let caller = Caller::new("u1", "Alex", "retail", "eu");
    let mut threads = Vec::new();

    // Set-up: each contact opted in, the employee connected to the live API.
    shared::live::socket::connect(&ports, &caller, "conn-u1", clock.now()).await.unwrap();
    for n in 0..contacts {
        let phone = format!("+4477009{n:05}");
        let conv = conversations::start(
            &ports,
            &caller,
            conversations::StartConversation { phone: Phone::parse(&phone).unwrap(), name: None },
        )
        .await
        .unwrap();
        dispatch::dispatch(&ports, &clients.next_outbound_job(&r).await).await.unwrap();
        let yes = InboundContent::Button { payload: format!("OPT_IN_YES:{}", conv.id), text: "Yes".into() };
        inbound::apply_inbound(&ports, &inbound_msg(&phone, &format!("wamid.yes{n}"), yes)).await.unwrap();
        dispatch::dispatch(&ports, &clients.next_outbound_job(&r).await).await.unwrap();
        threads.push((phone, conv.id));
    }
    let mut setup = Usage::default();
    drain(&ports, &stream, &push, &mut drained, &meter, &mut setup).await;
    meter.take();

    // Inbound: contacts write; each message re-arms its contact's window timer.
    let mut report = Report { contacts, ..Report::default() };
    phase("inbound");
    for k in 0..INBOUND_PER_CONTACT {
        for (n, (phone, _)) in threads.iter().enumerate() {
            let text = InboundContent::Text { body: format!("Is my order {k} ready? It was placed last week.") };
            let (started, cpu) = (Instant::now(), cpu_seconds());
            inbound::apply_inbound(&ports, &inbound_msg(phone, &format!("wamid.in{n}.{k}"), text)).await.unwrap();
            report.inbound.invoked(started, cpu);
            report.inbound.add_calls("webhook", &meter.take());
            report.inbound.http_requests += 1;
            report.inbound.messages += 1;
        }
    }

    drain(&ports, &stream, &push, &mut drained, &meter, &mut report.inbound).await;

    // Outbound: employees answer; each answer is dispatched and gets sent, delivered, read.
    phase("outbound");
    for k in 0..OUTBOUND_PER_CONTACT {
        for (_, conv) in &threads {
            let o = &mut report.outbound;
            let (started, cpu) = (Instant::now(), cpu_seconds());
            let cmd = send::SendCommand {
                content: send::Content::Text(format!("Yes, order {k} left our warehouse this morning.")),
                client_id: None,
                reply_to: None,
            };
            let m = send::send(&ports, &caller, conv, cmd).await.unwrap();
            o.invoked(started, cpu);
            o.add_calls("send", &meter.take());
            o.http_requests += 1;
            o.messages += 1;
            let job = clients.next_outbound_job(&r).await;
            let (started, cpu) = (Instant::now(), cpu_seconds());
            dispatch::dispatch(&ports, &job).await.unwrap();
            o.invoked(started, cpu);
            o.add_calls("dispatch", &meter.take());
            // The bench's own read: not the connector's.
            let wamid = wamid_of(&ports, conv, &m.id).await;
            meter.take();
            for status in [ReceiptStatus::Sent, ReceiptStatus::Delivered, ReceiptStatus::Read] {
                let ev = StatusEvent {
                    wamid: wamid.clone(),
                    status,
                    timestamp: clock.now(),
                    recipient_id: None,
                    errors: vec![],
                    callback: Some(format!("{}/{}", conv, m.id)),
                };
                let (started, cpu) = (Instant::now(), cpu_seconds());
                receipts::apply_status(&ports, &ev).await.unwrap();
                o.invoked(started, cpu);
                o.add_calls("status", &meter.take());
                o.http_requests += 1;
            }
        }
    }
    drain(&ports, &stream, &push, &mut drained, &meter, &mut report.outbound).await;

    // A day on, each contact's window closes: its timer fires once (the contact wrote last).
    phase("inbound");
    *clock.0.lock().unwrap() = Duration::hours(25);
    for (phone, _) in &threads {
        let timer = Timer::WindowExpiry { contact_key: phone.trim_start_matches('+').to_string() };
        let (started, cpu) = (Instant::now(), cpu_seconds());
        timers::fire(&ports, &timer).await.unwrap();
        report.inbound.invoked(started, cpu);
        report.inbound.scheduler_invocations += 1;
    }
    report.inbound.add_calls("timers", &meter.take());
    drain(&ports, &stream, &push, &mut drained, &meter, &mut report.inbound).await;
    phase("end");
    report
}

/// Marks where the logs that follow belong (the parent counts them).
fn phase(name: &str) {
    println!("@@phase {name}");
}

/// Hands what the table's stream holds after `position` to the archiver and the live fan-out,
/// `STREAM_BATCH` records an invocation each, as their event source mappings would.
async fn drain(
    ports: &Ports,
    stream: &connector_local::stream::TableStream,
    push: &CountedPush,
    position: &mut Option<String>,
    meter: &Meter,
    usage: &mut Usage,
) {
    let agents = shared::live::socket::AgentConnections::default();
    loop {
        let records = stream.records_after(position.as_deref(), STREAM_BATCH as i32).await.unwrap();
        let Some(last) = records.last().and_then(|r| r.pointer("/dynamodb/SequenceNumber")).and_then(|s| s.as_str())
        else {
            return;
        };
        let last = last.to_string();
        let entries = shared::adapters::aws::stream::entries_of_stream(&records).unwrap();
        if !entries.is_empty() {
            let (started, cpu) = (Instant::now(), cpu_seconds());
            archiver::archive(ports, &entries).await.unwrap();
            usage.invoked(started, cpu);
            usage.add_calls("archiver", &meter.take());
        }
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let before = push.0.load(Ordering::Relaxed);
        for (i, change) in shared::live::socket::changes_of_batch(&records) {
            let seq = records[i].pointer("/dynamodb/SequenceNumber").and_then(|s| s.as_str()).unwrap_or("0");
            shared::live::socket::fan_out(ports, push, &agents, seq, &change).await.unwrap();
        }
        usage.invoked(started, cpu);
        usage.add_calls("live", &meter.take());
        usage.websocket_messages += (push.0.load(Ordering::Relaxed) - before) as u64;
        *position = Some(last);
    }
}

async fn wamid_of(ports: &Ports, conv: &shared::domain::ConversationId, id: &shared::domain::MessageId) -> String {
    let key = shared::ports::Key::message(conv, id);
    match ports.store.get(&key).await.unwrap().map(|v| v.item) {
        Some(shared::ports::Item::Message(m)) => m.wamid.expect("dispatched, so it has a wamid"),
        other => panic!("no message {id}: {other:?}"),
    }
}

fn inbound_msg(phone: &str, wamid: &str, content: InboundContent) -> InboundMessage {
    InboundMessage {
        wamid: wamid.into(),
        wa_id: Some(phone.trim_start_matches('+').into()),
        user_id: None,
        profile_name: Some("Olivia".into()),
        timestamp: OffsetDateTime::now_utc(),
        context_id: None,
        content,
    }
}

/// This process's CPU time so far (user and system, every thread), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
