//! Messages of a thread (outbound, inbound, notices) and their receipts, which only move
//! forward: queued < sent < delivered < read, with `failed` apart.

use serde::{Deserialize, Serialize};

use super::notice::Notice;
use super::Time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outbound,
    Inbound,
    Notice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    Image,
    Template,
    Reaction,
    Notice,
}

/// Where a message is in its life. `Sending` and `Accepted` show as `queued` to clients: the
/// `sent` status and its time come from Meta's webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Held: waiting for consent or for the window.
    Pending,
    Queued,
    /// Claimed by dispatch until `lease_until`.
    Sending,
    /// The Graph API accepted it and gave a wamid.
    Accepted,
    Sent,
    Delivered,
    Read,
    Failed,
    /// Taken back by its sender before it was handed to Meta.
    Recalled,
}

impl MessageStatus {
    pub fn public(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Queued | MessageStatus::Sending | MessageStatus::Accepted => "queued",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Recalled => "recalled",
        }
    }

    /// Position on the forward-only ladder; `None` for `failed`, which stands apart.
    fn rank(self) -> Option<u8> {
        match self {
            MessageStatus::Pending => Some(0),
            MessageStatus::Queued => Some(1),
            MessageStatus::Sending => Some(2),
            MessageStatus::Accepted => Some(3),
            MessageStatus::Sent => Some(4),
            MessageStatus::Delivered => Some(5),
            MessageStatus::Read => Some(6),
            MessageStatus::Failed | MessageStatus::Recalled => None,
        }
    }
}

/// The statuses Meta reports in webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Sent => "sent",
            ReceiptStatus::Delivered => "delivered",
            ReceiptStatus::Read => "read",
            ReceiptStatus::Failed => "failed",
        }
    }
    fn as_status(self) -> MessageStatus {
        match self {
            ReceiptStatus::Sent => MessageStatus::Sent,
            ReceiptStatus::Delivered => MessageStatus::Delivered,
            ReceiptStatus::Read => MessageStatus::Read,
            ReceiptStatus::Failed => MessageStatus::Failed,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusTimes {
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub sent: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub delivered: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub read: Option<Time>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub failed: Option<Time>,
    /// When its sender took it back (only then present).
    #[serde(with = "time::serde::rfc3339::option", default, skip_serializing_if = "Option::is_none")]
    pub recalled: Option<Time>,
}

impl StatusTimes {
    fn slot(&mut self, s: ReceiptStatus) -> &mut Option<Time> {
        match s {
            ReceiptStatus::Sent => &mut self.sent,
            ReceiptStatus::Delivered => &mut self.delivered,
            ReceiptStatus::Read => &mut self.read,
            ReceiptStatus::Failed => &mut self.failed,
        }
    }
}

/// Why a message failed: Meta's code (or ours) and the catalog entry the employee reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageError {
    pub code: String,
    /// Meta's own words, for operators; clients read the localized text of `reason`.
    pub detail: String,
    pub reason: Option<super::meta_error::FailureReason>,
}

/// Templates the connector sends on its own; their outcomes drive the consent and window flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemPurpose {
    OptinRequest,
    ResumeRequest,
    OptOutConfirmation,
    /// Tells the contact their opt-in was recorded.
    OptinConfirmation,
    /// Tells the contact that a participant joined, was removed or left.
    ParticipantUpdate(super::notice::ParticipantChange),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSpec {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub params: Vec<String>,
    /// Quick-reply payloads, one per button, in order.
    #[serde(default)]
    pub buttons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub message_id: String,
    pub emoji: Option<String>,
}

/// Who wrote a message. Stored and shown as one string: `contact`, `system`, or the employee's
/// user id (no user may have either of the other two as id).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum Sender {
    Contact,
    /// The connector itself: templates it sends, notices.
    System,
    User(String),
}

impl Sender {
    /// The ids the connector keeps for itself.
    pub const RESERVED: [&'static str; 2] = ["contact", "system"];

    pub fn as_str(&self) -> &str {
        match self {
            Sender::Contact => "contact",
            Sender::System => "system",
            Sender::User(id) => id,
        }
    }

    /// Whether the employee `user_id` wrote it.
    pub fn is_user(&self, user_id: &str) -> bool {
        matches!(self, Sender::User(id) if id == user_id)
    }
}

impl From<String> for Sender {
    fn from(s: String) -> Sender {
        match s.as_str() {
            "contact" => Sender::Contact,
            "system" => Sender::System,
            _ => Sender::User(s),
        }
    }
}

impl From<&str> for Sender {
    fn from(s: &str) -> Sender {
        Sender::from(s.to_string())
    }
}

impl Serialize for Sender {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// ULID: sorts by creation, so a thread's history and its held messages are in order.
    pub id: String,
    pub conversation_id: String,
    pub direction: Direction,
    pub kind: MessageKind,
    pub sender: Sender,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Data-loss prevention rules that redacted this message's text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dlp_rules: Vec<String>,
    /// `*Name*: `, put before the text sent to the contact in a group thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<Reaction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPurpose>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Notice>,
    pub status: MessageStatus,
    pub status_at: StatusTimes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<MessageError>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Meta's id of the current attempt (outbound) or of the message (inbound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    /// Graph API attempts so far (for bounded retries).
    pub attempts: u32,
    /// Bumped each time the message is queued again, so queue dedupe ids stay unique.
    pub generation: u32,
    #[serde(with = "time::serde::rfc3339::option", default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Time>,
}

/// What a status webhook did to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// Not this message's current attempt, or already known: nothing changes.
    Ignored,
    /// Its time was recorded; the status stays (it arrived late).
    TimeRecorded,
    Advanced,
    /// The message failed just now.
    Failed,
}

impl Message {
    pub fn outbound(id: String, conversation_id: String, sender: Sender, kind: MessageKind, now: Time) -> Message {
        Message {
            id,
            conversation_id,
            direction: Direction::Outbound,
            kind,
            sender,
            text: None,
            dlp_rules: Vec::new(),
            prefix: None,
            media_id: None,
            template: None,
            reaction: None,
            system: None,
            notice: None,
            status: MessageStatus::Queued,
            status_at: StatusTimes::default(),
            error: None,
            created_at: now,
            client_id: None,
            wamid: None,
            attempts: 0,
            generation: 0,
            lease_until: None,
        }
    }

    /// Applies Meta's status for attempt `wamid` at Meta's time `at`.
    pub fn apply_receipt(&mut self, wamid: &str, status: ReceiptStatus, at: Time) -> ReceiptOutcome {
        if self.wamid.as_deref() != Some(wamid) || self.direction != Direction::Outbound {
            return ReceiptOutcome::Ignored;
        }
        let slot = self.status_at.slot(status);
        let new_time = slot.is_none();
        if new_time {
            *slot = Some(at);
        }
        let target = status.as_status();
        let advances = match (self.status.rank(), target.rank()) {
            (Some(cur), Some(new)) => new > cur,
            // Failed overrides only what is not yet delivered.
            (Some(cur), None) => cur < MessageStatus::Delivered.rank().unwrap_or(0),
            (None, _) => false,
        };
        if advances {
            self.status = target;
            self.lease_until = None;
            if status == ReceiptStatus::Failed {
                ReceiptOutcome::Failed
            } else {
                ReceiptOutcome::Advanced
            }
        } else if new_time {
            ReceiptOutcome::TimeRecorded
        } else {
            ReceiptOutcome::Ignored
        }
    }

    /// A dispatch attempt claimed it and neither finished nor settled it before its lease ran
    /// out (the process died mid-call): the attempt may have reached Meta.
    pub fn claim_lapsed(&self, now: Time) -> bool {
        self.status == MessageStatus::Sending && self.lease_until.is_some_and(|l| now >= l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;
    use time::Duration;

    const T0: Time = datetime!(2026-09-20 12:00 UTC);

    #[test]
    fn a_sender_is_stored_and_read_as_the_string_it_always_was() {
        for (sender, stored) in
            [(Sender::Contact, "contact"), (Sender::System, "system"), (Sender::User("u1".into()), "u1")]
        {
            assert_eq!(serde_json::to_value(&sender).unwrap(), serde_json::json!(stored));
            assert_eq!(serde_json::from_value::<Sender>(serde_json::json!(stored)).unwrap(), sender);
            assert_eq!(sender.to_string(), stored);
        }
        assert!(Sender::User("u1".into()).is_user("u1"));
        assert!(!Sender::System.is_user("system") && !Sender::User("u1".into()).is_user("u2"));
    }

    fn accepted() -> Message {
        let mut m = Message::outbound("01".into(), "c".into(), "u".into(), MessageKind::Text, T0);
        m.status = MessageStatus::Accepted;
        m.wamid = Some("w1".into());
        m
    }

    #[test]
    fn receipts_in_reverse_order_end_at_read_with_every_time() {
        let mut m = accepted();
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Read, T0 + Duration::seconds(3)), ReceiptOutcome::Advanced);
        assert_eq!(
            m.apply_receipt("w1", ReceiptStatus::Delivered, T0 + Duration::seconds(2)),
            ReceiptOutcome::TimeRecorded
        );
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Sent, T0 + Duration::seconds(1)), ReceiptOutcome::TimeRecorded);
        assert_eq!(m.status, MessageStatus::Read);
        assert_eq!(m.status_at.sent, Some(T0 + Duration::seconds(1)));
        assert_eq!(m.status_at.delivered, Some(T0 + Duration::seconds(2)));
    }

    #[test]
    fn redelivered_receipt_changes_nothing() {
        let mut m = accepted();
        m.apply_receipt("w1", ReceiptStatus::Sent, T0);
        let before = m.clone();
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Sent, T0 + Duration::seconds(9)), ReceiptOutcome::Ignored);
        assert_eq!(m, before);
    }

    #[test]
    fn receipt_for_an_old_attempt_is_ignored() {
        let mut m = accepted();
        assert_eq!(m.apply_receipt("w0", ReceiptStatus::Failed, T0), ReceiptOutcome::Ignored);
        assert_eq!(m.status, MessageStatus::Accepted);
    }

    #[test]
    fn failed_stands_apart() {
        let mut m = accepted();
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Failed, T0), ReceiptOutcome::Failed);
        assert_eq!(m.apply_receipt("w1", ReceiptStatus::Sent, T0), ReceiptOutcome::TimeRecorded);
        assert_eq!(m.status, MessageStatus::Failed);
        let mut d = accepted();
        d.apply_receipt("w1", ReceiptStatus::Delivered, T0);
        assert_eq!(d.apply_receipt("w1", ReceiptStatus::Failed, T0), ReceiptOutcome::TimeRecorded);
        assert_eq!(d.status, MessageStatus::Delivered);
    }

    #[test]
    fn a_claim_lapses_when_its_lease_runs_out_and_only_then() {
        let mut m = accepted();
        m.status = MessageStatus::Sending;
        m.lease_until = Some(T0 + Duration::seconds(60));
        assert!(!m.claim_lapsed(T0));
        assert!(m.claim_lapsed(T0 + Duration::seconds(60)));
        m.lease_until = None;
        assert!(!m.claim_lapsed(T0 + Duration::days(1)), "settled later: waits for a status or its deadline");
    }

    fn receipt() -> impl Strategy<Value = ReceiptStatus> {
        prop_oneof![
            Just(ReceiptStatus::Sent),
            Just(ReceiptStatus::Delivered),
            Just(ReceiptStatus::Read),
            Just(ReceiptStatus::Failed)
        ]
    }

    proptest! {
        /// In any order and with any duplicates, the status never moves backwards, and the end
        /// state does not depend on the order (except failed, which only wins before delivery).
        #[test]
        fn status_only_moves_forward(seq in proptest::collection::vec(receipt(), 0..12)) {
            let mut m = accepted();
            for s in &seq {
                let before = m.status;
                m.apply_receipt("w1", *s, T0);
                if let (Some(b), Some(a)) = (before.rank(), m.status.rank()) { prop_assert!(a >= b); }
                if before == MessageStatus::Failed { prop_assert_eq!(m.status, MessageStatus::Failed); }
            }
            let best = seq.iter().filter(|s| **s != ReceiptStatus::Failed).map(|s| s.as_status().rank()).max().flatten();
            if !seq.contains(&ReceiptStatus::Failed) {
                prop_assert_eq!(m.status.rank(), best.or(Some(3)));
            }
        }
    }
}
