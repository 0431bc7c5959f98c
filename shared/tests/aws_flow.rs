//! The use cases on the AWS adapters (moto): a thread from opt-in to receipts, with every AWS
//! call counted by the SDK interceptor of `shared::adapters::aws::meter`. Prints the calls per
//! operation and what table and queues cost at list prices, and holds today's ceilings (items
//! written per operation, dollars per million), so a change that costs more fails.
//! `scripts/aws-cost` prices the whole of it (archiver, live fan-out, Lambda, S3...).

use std::collections::BTreeMap;

use shared::adapters::aws::meter::{self, Call, Meter};
use shared::adapters::aws::AwsClients;
use shared::domain::{Phone, ReceiptStatus};
use shared::meta::webhook::{InboundContent, InboundMessage, StatusEvent};
use shared::usecases::{conversations, dispatch, inbound, receipts, send, Caller, Ports};

mod support;
use support::aws_clients;

async fn counted_clients(counter: &Meter) -> Option<AwsClients> {
    Some(counter.clients(&aws_clients().await?))
}

fn inbound_msg(wamid: &str, content: InboundContent) -> InboundMessage {
    InboundMessage {
        wamid: wamid.into(),
        wa_id: Some("447700900123".into()),
        user_id: None,
        profile_name: Some("Olivia".into()),
        timestamp: time::OffsetDateTime::now_utc(),
        context_id: None,
        content,
    }
}

/// Item writes, write units, and the calls.
fn summary(calls: &[Call]) -> (u32, u32, String) {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for c in calls {
        *by.entry(format!("{}:{}", c.service, c.operation)).or_default() += 1;
    }
    let own = calls.iter().map(|c| c.item_writes).sum();
    let wu = calls.iter().map(|c| c.write_units).sum();
    (own, wu, by.iter().map(|(k, v)| format!("{k}×{v}")).collect::<Vec<_>>().join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_on_aws_from_optin_to_receipts_within_its_call_budget() {
    let counter = Meter::default();
    let Some(clients) = counted_clients(&counter).await else { return };
    let r = clients.emulator_resources(false).await;
    let config = shared::Config::from_lookup(|_| None).unwrap();
    let state = shared::app::aws(config, r.clone(), clients.clone()).await.unwrap();
    let ports: &Ports = &state.ports;
    let caller = Caller::new("u1", "Alex", "retail", "eu");

    let conv = conversations::start(
        ports,
        &caller,
        conversations::StartConversation { phone: Phone::parse("+447700900123").unwrap(), name: None },
    )
    .await
    .unwrap();
    dispatch::dispatch(ports, &clients.next_outbound_job(&r).await).await.unwrap();
    let accept = InboundContent::Button { payload: format!("OPT_IN_YES:{}", conv.id), text: "Yes".into() };
    assert_eq!(
        inbound::apply_inbound(ports, &inbound_msg("wamid.A", accept.clone())).await.unwrap(),
        inbound::InboundResult::Applied
    );
    assert_eq!(
        inbound::apply_inbound(ports, &inbound_msg("wamid.A", accept)).await.unwrap(),
        inbound::InboundResult::Duplicate
    );
    // The window timer is a one-time schedule named after the contact.
    let schedule = clients
        .scheduler
        .get_schedule()
        .group_name(&r.schedule_group)
        .name("window-447700900123")
        .send()
        .await
        .unwrap();
    assert!(schedule.schedule_expression().unwrap().starts_with("at("));
    // The contact is told their opt-in was recorded.
    let confirmation = clients.next_outbound_job(&r).await;
    dispatch::dispatch(ports, &confirmation).await.unwrap();
    counter.take();

    inbound::apply_inbound(ports, &inbound_msg("wamid.B", InboundContent::Text { body: "Is my order ready?".into() }))
        .await
        .unwrap();
    let inbound_calls = counter.take();

    let cmd = send::SendCommand {
        content: send::Content::Text("Yes, since this morning".into()),
        client_id: None,
        reply_to: None,
    };
    let m = send::send(ports, &caller, &conv.id, cmd).await.unwrap();
    assert_eq!(m.status, "queued");
    let job = clients.next_outbound_job(&r).await;
    assert_eq!(job.message_id, m.id);
    dispatch::dispatch(ports, &job).await.unwrap();
    let send_calls = counter.take();

    let history = shared::usecases::views::history(ports, &caller, &conv.id, None, 100).await.unwrap();
    let sent = history.iter().find(|x| x.id == m.id).unwrap();
    assert_eq!(sent.status, "queued");
    let wamid = {
        let item = ports.store.get(&shared::ports::Key::message(&conv.id, &m.id)).await.unwrap().unwrap();
        let shared::ports::Item::Message(msg) = item.item else { panic!() };
        msg.wamid.unwrap()
    };
    counter.take();
    let status = StatusEvent {
        wamid: wamid.clone(),
        status: ReceiptStatus::Delivered,
        timestamp: time::OffsetDateTime::now_utc(),
        recipient_id: None,
        errors: vec![],
        // Meta echoes the callback data of the send in its sent, delivered and read statuses.
        callback: Some(format!("{}/{}", conv.id, m.id)),
    };
    receipts::apply_status(ports, &status).await.unwrap();
    let status_calls = counter.take();
    assert_eq!(receipts::apply_status(ports, &status).await.unwrap(), receipts::ReceiptResult::Duplicate);
    // A status without it (a failure) finds the message by the wamid's link.
    let read = StatusEvent { status: ReceiptStatus::Read, callback: None, ..status.clone() };
    assert_eq!(receipts::apply_status(ports, &read).await.unwrap(), receipts::ReceiptResult::Applied);
    counter.take();

    // Each change went to the table's stream with the item that carried it: the thread's
    // items count them (the archiver's own test reads them from the stream).
    let counts = shared::usecases::archiver::counts(ports, &conv.id).await.unwrap();
    assert!(counts.values().sum::<u64>() >= 5, "{counts:?}");

    if std::env::var_os("AWS_FLOW_CALLS").is_some() {
        for (name, calls) in [("inbound", &inbound_calls), ("send", &send_calls), ("status", &status_calls)] {
            for c in calls.iter() {
                println!(
                    "  {name}: {}:{} writes {} wu {} ru {}",
                    c.service, c.operation, c.item_writes, c.write_units, c.read_units
                );
            }
        }
    }
    println!("AWS calls per operation (moto, counted by an SDK interceptor):");
    let mut table = Vec::new();
    for (name, calls) in
        [("inbound text", &inbound_calls), ("employee send + dispatch", &send_calls), ("status webhook", &status_calls)]
    {
        let (own, wu, detail) = summary(calls);
        println!("  {name:<26} {:>2} calls; DynamoDB item writes {own}, {wu} write units: {detail}", calls.len());
        table.push(own);
    }
    // Statuses are applied by the webhook itself (the receipts queue takes only those that
    // overtook the record of their send), so an outbound message's cost is its send, its
    // dispatch and three statuses.
    let outbound: Vec<&Call> =
        send_calls.iter().chain(&status_calls).chain(&status_calls).chain(&status_calls).collect();
    let inbound: Vec<&Call> = inbound_calls.iter().collect();
    let (outbound_cost, inbound_cost) = (meter::table_and_queues(&outbound), meter::table_and_queues(&inbound));
    let ((ow, or), (iw, ir)) = (meter::units(&outbound), meter::units(&inbound));
    println!(
        "  per million outbound messages with 3 statuses: ${outbound_cost:.2} ({ow} write units, {or} read units)"
    );
    println!("  per million inbound texts: ${inbound_cost:.2} ({iw} write units, {ir} read units)");
    // Where we are (the goals are $8 and $4; docs/aws.md says what is left): $14.75 and $5.25
    // here (outbound was $16.00 once the archive left the table, before the contact was checked
    // only when a send is held and empty fields were left out of items). A rise of more than
    // one transactional KB fails: times are written with as many sub-second digits as they
    // have, so an item near 1 KB may cost a unit more in one run than in the next.
    assert!(outbound_cost <= 14.75 + 1.25, "an outbound message costs ${outbound_cost:.2} per million");
    assert!(inbound_cost <= 5.25 + 1.25, "an inbound text costs ${inbound_cost:.2} per million");
    assert!(table[2] <= 1, "a status webhook writes {} items", table[2]);
    // The send's commit (message, thread, the check of the contact's version, its outbox entry,
    // its place in the thread's outgoing queue), the entry's delete by the relay, the claim, the
    // accepted answer (message, wamid link), the place's delete.
    assert!(table[1] <= 10, "an outbound message writes {} items", table[1]);
    assert!(table[0] <= 4, "an inbound text writes {} items", table[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_on_aws_are_all_stored() {
    let counter = Meter::default();
    let Some(clients) = counted_clients(&counter).await else { return };
    let r = clients.emulator_resources(false).await;
    let config = shared::Config::from_lookup(|_| None).unwrap();
    let state = shared::app::aws(config, r.clone(), clients.clone()).await.unwrap();
    let ports = state.ports.clone();
    let caller = Caller::new("u1", "A", "s", "r");
    let conv = conversations::start(
        &ports,
        &caller,
        conversations::StartConversation { phone: Phone::parse("+447700900123").unwrap(), name: None },
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (ports, caller, id) = (ports.clone(), caller.clone(), conv.id.clone());
        tasks.push(tokio::spawn(async move {
            let cmd =
                send::SendCommand { content: send::Content::Text(format!("m{i}")), client_id: None, reply_to: None };
            send::send(&ports, &caller, &id, cmd).await.unwrap().id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    for id in &ids {
        assert!(
            ports.store.get(&shared::ports::Key::message(&conv.id, id)).await.unwrap().is_some(),
            "message {id} was acknowledged but is not stored"
        );
    }
    let c = conversations::get(&ports, &caller, &conv.id).await.unwrap();
    assert_eq!(c.pending_count, 20);
    // Every message carried its own record to the stream, in its own commit.
    let counts = shared::usecases::archiver::counts(&ports, &conv.id).await.unwrap();
    for id in &ids {
        let item = shared::ports::Key::message(&conv.id, &shared::domain::MessageId::from(id.as_str())).sk;
        assert_eq!(counts.get(&item), Some(&1), "{id} carried no record");
    }
}
