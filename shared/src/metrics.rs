//! Business metrics in CloudWatch's Embedded Metric Format: JSON lines on stdout that
//! CloudWatch Logs turns into metrics of the `WhatsAppConnector` namespace, with no API call.
//! Counted from what each commit writes (in one place, as the live feed is), and written only
//! once a Lambda function switches them on (`enable`): the local runner's log stays as it was.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use crate::domain::message::{Direction, MessageStatus};
use crate::ports::{Cond, Item, Write};

pub const NAMESPACE: &str = "WhatsAppConnector";

static ON: AtomicBool = AtomicBool::new(false);

/// Writes the metrics from now on (the Lambda functions call it at a cold start).
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// A dimension's name and value.
pub type Dimension = (&'static str, String);

/// One metric's value, with at most one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub dimension: Option<Dimension>,
    pub value: f64,
    pub unit: &'static str,
}

/// What a commit's writes count: messages received and held when written, outbound messages
/// reaching sent, delivered, read or failed (by error code), and notices by code (opt-in
/// outcomes, window pauses, resume requests, failures...).
pub fn of_commit(writes: &[Write]) -> Vec<Metric> {
    let mut counts: BTreeMap<(&'static str, Option<Dimension>), f64> = BTreeMap::new();
    for w in writes {
        let Write::Put { item: Item::Message(m), cond } = w else { continue };
        let new = matches!(cond, Cond::NotExists);
        let counted = match (m.direction, new, m.status) {
            (Direction::Inbound, true, _) => Some(("MessagesReceived", None)),
            (Direction::Outbound, true, MessageStatus::Pending) => Some(("MessagesHeld", None)),
            (Direction::Outbound, false, MessageStatus::Sent) => Some(("MessagesSent", None)),
            (Direction::Outbound, false, MessageStatus::Delivered) => Some(("MessagesDelivered", None)),
            (Direction::Outbound, false, MessageStatus::Read) => Some(("MessagesRead", None)),
            (Direction::Outbound, _, MessageStatus::Failed) => {
                let code = m.error.as_ref().map_or("unknown".to_string(), |e| e.code.clone());
                Some(("MessagesFailed", Some(("Reason", code))))
            }
            (Direction::Notice, true, _) => m.body.notice().map(|n| {
                let code = serde_json::to_value(n.code()).ok().and_then(|v| v.as_str().map(str::to_string));
                ("Notices", Some(("Code", code.unwrap_or_default())))
            }),
            _ => None,
        };
        if let Some(key) = counted {
            *counts.entry(key).or_default() += 1.0;
        }
    }
    counts.into_iter().map(|((name, dimension), value)| Metric { name, dimension, value, unit: "Count" }).collect()
}

/// A metric as one EMF line.
pub fn emf(metric: &Metric, timestamp_ms: i64) -> String {
    let dims: Vec<&str> = metric.dimension.iter().map(|(k, _)| *k).collect();
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dims],
                "Metrics": [{"Name": metric.name, "Unit": metric.unit}],
            }],
        },
    });
    line[metric.name] = json!(metric.value);
    if let Some((k, v)) = &metric.dimension {
        line[*k] = json!(v);
    }
    line.to_string()
}

/// What a commit will count, when metrics are on (nothing otherwise): taken before the commit,
/// which consumes its writes, and written (`write`) once it succeeded.
pub fn counted(writes: &[Write]) -> Vec<Metric> {
    if ON.load(Ordering::Relaxed) {
        of_commit(writes)
    } else {
        Vec::new()
    }
}

/// Writes one timing in milliseconds (e.g. `WebhookLatency`), when metrics are on.
pub fn record_millis(name: &'static str, millis: f64) {
    if ON.load(Ordering::Relaxed) {
        write(&[Metric { name, dimension: None, value: millis, unit: "Milliseconds" }]);
    }
}

/// One outbox entry parked after failing too often (`OutboxParked`, which an alarm watches).
pub fn parked() {
    if ON.load(Ordering::Relaxed) {
        write(&[Metric { name: "OutboxParked", dimension: None, value: 1.0, unit: "Count" }]);
    }
}

/// A queue record its handler failed, or could not read (`QueueRecordFailed`, by `Queue`;
/// alarmed): a partial batch failure shows here at once, not when the dead letters fill.
pub fn queue_record_failed(queue: crate::ports::QueueKind) {
    if ON.load(Ordering::Relaxed) {
        let queue = match queue {
            crate::ports::QueueKind::Outbound => "outbound",
            crate::ports::QueueKind::Receipts => "receipts",
        };
        let dimension = Some(("Queue", queue.to_string()));
        write(&[Metric { name: "QueueRecordFailed", dimension, value: 1.0, unit: "Count" }]);
    }
}

/// Changes committed and not archived, found by a reconciliation (`ArchiveGap`, alarmed).
pub fn archive_gap(missing: usize) {
    if ON.load(Ordering::Relaxed) {
        write(&[Metric { name: "ArchiveGap", dimension: None, value: missing as f64, unit: "Count" }]);
    }
}

/// Writes metrics as EMF lines on stdout.
pub fn write(metrics: &[Metric]) {
    use std::io::Write as _;
    if metrics.is_empty() {
        return;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let mut out = std::io::stdout().lock();
    for m in metrics {
        let _ = writeln!(out, "{}", emf(m, now as i64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::{Message, MessageError};
    use crate::domain::notice::{Notice, NoticeKind};
    use crate::domain::Body;
    use crate::ports::Item;

    fn put(m: Message, cond: Cond) -> Write {
        Write::Put { item: Item::Message(m), cond }
    }

    fn message(direction: Direction, status: MessageStatus) -> Message {
        let mut m = Message::outbound(
            "m1".into(),
            "c1".into(),
            "u1".into(),
            Body::text("hi"),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        m.direction = direction;
        m.status = status;
        m
    }

    fn notice(kind: NoticeKind) -> Message {
        let mut m = message(Direction::Notice, MessageStatus::Delivered);
        m.body = Body::Notice(Notice::to_all(kind));
        m
    }

    #[test]
    fn a_commit_counts_what_it_moves_and_nothing_it_only_rewrites() {
        let mut failed = message(Direction::Outbound, MessageStatus::Failed);
        failed.error = Some(MessageError { code: "131047".into(), detail: String::new(), reason: None });
        let writes = vec![
            put(message(Direction::Inbound, MessageStatus::Delivered), Cond::NotExists),
            put(message(Direction::Outbound, MessageStatus::Pending), Cond::NotExists),
            put(message(Direction::Outbound, MessageStatus::Pending), Cond::NotExists),
            put(message(Direction::Outbound, MessageStatus::Delivered), Cond::Version(3)),
            put(message(Direction::Outbound, MessageStatus::Sending), Cond::Version(1)),
            put(failed, Cond::Version(2)),
            put(notice(NoticeKind::WindowPaused), Cond::NotExists),
        ];
        let got = of_commit(&writes);
        let find = |name: &str| got.iter().find(|m| m.name == name).cloned();
        assert_eq!(find("MessagesReceived").unwrap().value, 1.0);
        assert_eq!(find("MessagesHeld").unwrap().value, 2.0);
        assert_eq!(find("MessagesDelivered").unwrap().value, 1.0);
        assert_eq!(find("MessagesFailed").unwrap().dimension, Some(("Reason", "131047".to_string())));
        assert_eq!(find("Notices").unwrap().dimension, Some(("Code", "window_paused".to_string())));
        assert!(find("MessagesSent").is_none(), "a claim (sending) counts nothing");
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn an_emf_line_names_its_metric_its_dimension_and_the_namespace() {
        let m =
            Metric { name: "MessagesFailed", dimension: Some(("Reason", "131047".into())), value: 2.0, unit: "Count" };
        let line: serde_json::Value = serde_json::from_str(&emf(&m, 1_700_000_000_000)).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Reason"]]));
        assert_eq!(directive["Metrics"][0], json!({"Name": "MessagesFailed", "Unit": "Count"}));
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(line["MessagesFailed"], 2.0);
        assert_eq!(line["Reason"], "131047");
        let plain = emf(&Metric { name: "WebhookLatency", dimension: None, value: 3.5, unit: "Milliseconds" }, 0);
        assert!(plain.contains(r#""Dimensions":[[]]"#), "{plain}");
    }
}
