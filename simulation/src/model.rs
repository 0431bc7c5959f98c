//! What the world saw, and the promises checked against it: what Meta took (and when, and what
//! the sending task could have known), what the webhooks said and when they were acknowledged,
//! what clients were answered. Never the connector's own tables, except to read what a client
//! would (the history a thread shows, its archive).

use std::collections::{BTreeMap, BTreeSet};

use shared::domain::{ConversationId, MessageId};
use shared::meta::webhook::{InboundContent, WebhookEvent};

use crate::meta::{Delivery, Taken};

/// An employee's text, as the client saw it.
#[derive(Debug, Clone)]
pub struct SendRecord {
    /// `msg#<n>#`: unique, so it is recognised wherever it arrives.
    pub text: String,
    pub thread: ConversationId,
    pub user: String,
    /// When the client first called, and when a call was answered `202` (logical clock).
    pub started: u64,
    pub completed: Option<u64>,
    pub message_id: Option<MessageId>,
    /// The API refused it (`opted_out`, `conversation_closed` ...).
    pub refused: Option<String>,
    /// The file it carried (a document captioned with the text, or a voice note saying it).
    pub file: Option<Vec<u8>>,
}

/// What a contact sent.
#[derive(Debug, Clone)]
pub struct InboundRecord {
    pub wamid: String,
    pub contact: String,
    pub at: time::OffsetDateTime,
    pub consent: Consent,
    /// `hello#<n>#` for a plain message (unique), a document's caption too.
    pub text: Option<String>,
    /// A document's bytes.
    pub file: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Accept,
    Reject,
    None,
}

/// Where public statuses stand on the way forward (failed and recalled are apart).
pub fn rank(status: &str) -> Option<u8> {
    match status {
        "pending" => Some(0),
        "queued" => Some(1),
        "sent" => Some(2),
        "delivered" => Some(3),
        "read" => Some(4),
        "played" => Some(5),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct Model {
    pub sends: Vec<SendRecord>,
    pub inbound: Vec<InboundRecord>,
    /// Per message, the highest status shown so far, and whether `delivered` (or more) was.
    pub shown: BTreeMap<MessageId, (String, bool)>,
    pub violations: Vec<String>,
}

impl Model {
    pub fn violate(&mut self, what: String) {
        if self.violations.len() < 20 {
            self.violations.push(what);
        }
    }

    /// A status a client was shown: never back, never `failed` once `delivered` was shown, and
    /// nothing after `failed` or `recalled`.
    pub fn shown(&mut self, id: &MessageId, status: &str) {
        let before = self.shown.get(id).cloned();
        if let Some((was, delivered)) = &before {
            let back = match (rank(was), rank(status)) {
                // Held again (131047 or the re-check at dispatch) is the one way back.
                (Some(1), Some(0)) => false,
                (Some(w), Some(s)) => s < w,
                (Some(_), None) => status == "failed" && *delivered,
                (None, _) => was != status,
            };
            if back {
                self.violate(format!("message {id} was shown {was}, then {status}"));
            }
        }
        let delivered = before.as_ref().is_some_and(|(_, d)| *d) || rank(status).is_some_and(|r| r >= 3);
        let keep = match &before {
            Some((was, _)) if rank(was).zip(rank(status)).is_some_and(|(w, s)| s < w) => was.clone(),
            _ => status.to_string(),
        };
        self.shown.insert(id.clone(), (keep, delivered));
    }
}

/// The unique token in a text (`msg#12#`), wherever it sits (after a group's speaker prefix).
pub fn token(text: &str, kind: &str) -> Option<String> {
    let start = text.find(&format!("{kind}#"))?;
    let rest = &text[start + kind.len() + 1..];
    let end = rest.find('#')?;
    Some(format!("{kind}#{}#", &rest[..end]))
}

/// The promises on what Meta took.
pub fn check_meta(
    model: &mut Model,
    taken: &[Taken],
    deliveries: &[Delivery],
    optin_template: &str,
    opt_out_texts: &[&str],
) {
    // At most once: a message of ours (by its callback), an employee's text (by its token).
    let mut by_callback: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_text: BTreeMap<String, usize> = BTreeMap::new();
    for t in taken {
        *by_callback.entry(t.callback.as_str()).or_default() += 1;
        if let Some(tok) = token(&t.text(), "msg") {
            *by_text.entry(tok).or_default() += 1;
        }
    }
    for (cb, n) in by_callback.iter().filter(|(_, n)| **n > 1) {
        model.violate(format!("message {cb} reached the contact {n} times"));
    }
    for (text, n) in by_text.iter().filter(|(_, n)| **n > 1) {
        model.violate(format!("text {text} reached the contact {n} times"));
    }

    // Per thread, in the order sent: a text whose call was answered before another's began
    // reaches the contact first.
    let position: BTreeMap<String, usize> =
        taken.iter().enumerate().filter_map(|(i, t)| token(&t.text(), "msg").map(|tok| (tok, i))).collect();
    let sends: Vec<&SendRecord> = model.sends.iter().filter(|s| s.completed.is_some()).collect();
    let mut disorder = Vec::new();
    for a in &sends {
        for b in &sends {
            if a.thread != b.thread || a.completed >= Some(b.started) {
                continue;
            }
            if let (Some(pa), Some(pb)) = (position.get(&a.text), position.get(&b.text)) {
                if pa > pb {
                    disorder.push(format!("{} reached the contact after {}, though sent before it", a.text, b.text));
                }
            }
        }
    }
    for d in disorder {
        model.violate(d);
    }

    // At most one opt-in request a contact a day (less the time one Graph call takes).
    let mut optins: BTreeMap<&str, Vec<time::OffsetDateTime>> = BTreeMap::new();
    for t in taken.iter().filter(|t| t.template().is_some_and(|tp| tp.name == optin_template)) {
        optins.entry(t.to.as_str()).or_default().push(t.at);
    }
    for (to, times) in optins {
        for w in times.windows(2) {
            if w[1] - w[0] < time::Duration::hours(24) - time::Duration::minutes(2) {
                model.violate(format!("{to} got two opt-in requests {} apart", w[1] - w[0]));
            }
        }
    }

    // Nothing after STOP: no message decided after a STOP was acknowledged, unless the contact
    // said yes again after it (a "yes" being delivered counts: it may have been applied).
    for t in taken {
        if opt_out_texts.contains(&t.text().as_str()) {
            continue;
        }
        if let Some(stop) = opted_out_at(model, deliveries, &t.to, t.decided) {
            model.violate(format!(
                "{} ({}) reached {} after their STOP {} was acknowledged",
                t.callback,
                t.text(),
                t.to,
                stop
            ));
        }
    }
}

/// The contact's STOP in force at logical time `at`, if any: acknowledged before `at`, the
/// latest by Meta's timestamp, with no "yes" sent after it whose delivery began before `at`.
fn opted_out_at(model: &Model, deliveries: &[Delivery], contact: &str, at: u64) -> Option<String> {
    let delivered = |wamid: &str| -> (Option<u64>, Option<u64>) {
        let mut acked = None;
        let mut began = None;
        let earliest = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        for d in deliveries {
            if let WebhookEvent::Inbound(m) = &d.event {
                if m.wamid == wamid {
                    acked = earliest(acked, d.acked);
                    began = earliest(began, d.first_attempt);
                }
            }
        }
        (acked, began)
    };
    let stop = model
        .inbound
        .iter()
        .filter(|m| m.contact == contact && m.consent == Consent::Reject)
        .filter(|m| delivered(&m.wamid).0.is_some_and(|ack| ack < at))
        .max_by_key(|m| m.at)?;
    let yes_after = model.inbound.iter().any(|m| {
        m.contact == contact
            && m.consent == Consent::Accept
            && m.at >= stop.at
            && delivered(&m.wamid).1.is_some_and(|began| began < at)
    });
    (!yes_after).then(|| stop.wamid.clone())
}

/// Every acknowledged message of a contact is stored exactly once, any other at most once.
pub fn check_inbound(model: &mut Model, deliveries: &[Delivery], stored: &BTreeMap<String, usize>) {
    let acked: BTreeSet<&str> = deliveries
        .iter()
        .filter(|d| d.acked.is_some())
        .filter_map(|d| match &d.event {
            WebhookEvent::Inbound(m) => Some(m.wamid.as_str()),
            _ => None,
        })
        .collect();
    let mut problems = Vec::new();
    for m in &model.inbound {
        let Some(text) = &m.text else { continue };
        let n = stored.get(text).copied().unwrap_or(0);
        if n > 1 {
            problems.push(format!("the contact's {text} is stored {n} times"));
        } else if n == 0 && acked.contains(m.wamid.as_str()) {
            problems.push(format!("the contact's {text} was acknowledged but is not stored"));
        }
    }
    for p in problems {
        model.violate(p);
    }
}

/// Every document a contact sent whose message is stored ends kept, byte for byte, under the
/// id its message names (in the media store, the S3 of this world), or failed as
/// `media_unavailable`: never both, never neither.
pub fn check_files(model: &mut Model, stored: &[&shared::domain::Message], kept: impl Fn(&str) -> Option<Vec<u8>>) {
    let mut problems = Vec::new();
    for m in &model.inbound {
        let (Some(text), Some(bytes)) = (&m.text, &m.file) else { continue };
        for msg in stored.iter().filter(|s| s.body.words().and_then(|w| token(w, "hello")).as_deref() == Some(text)) {
            let unavailable = msg.error.as_ref().is_some_and(|e| e.code == "media_unavailable");
            match (msg.body.media_id(), unavailable) {
                (Some(id), false) => match kept(id) {
                    Some(k) if &k == bytes => {}
                    Some(_) => problems.push(format!("{text}'s file was kept with other bytes than the contact's")),
                    None => problems.push(format!("{text}'s file {id} is named but not kept")),
                },
                (None, true) => {}
                (Some(_), true) => problems.push(format!("{text}'s file is kept and also unavailable")),
                (None, false) => problems.push(format!("{text}'s file was neither kept nor given up on")),
            }
        }
    }
    for p in problems {
        model.violate(p);
    }
}

/// Every file of ours a contact got is the one its employee sent, byte for byte; a text went
/// without one.
pub fn check_sent_files(model: &mut Model, taken: &[Taken]) {
    let mut problems = Vec::new();
    for t in taken {
        let Some(tok) = token(&t.text(), "msg") else { continue };
        let Some(send) = model.sends.iter().find(|s| s.text == tok) else { continue };
        match (&send.file, &t.file) {
            (Some(sent), Some(got)) if sent != got => {
                problems.push(format!("{tok}'s file reached the contact with other bytes than the employee's"))
            }
            (Some(_), None) => problems.push(format!("{tok} reached the contact without its file")),
            (None, Some(_)) => problems.push(format!("{tok} reached the contact with a file it never had")),
            _ => {}
        }
    }
    for p in problems {
        model.violate(p);
    }
}

/// The content Meta's webhook carried for a contact's message.
pub fn text_of(content: &InboundContent) -> Option<&str> {
    match content {
        InboundContent::Text { body } => Some(body),
        _ => None,
    }
}
