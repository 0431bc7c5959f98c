//! A thread between employees and one contact: its participants, its opt-in attempts, its
//! held-message count, and the status clients see (derived from the contact's consent and window).

use serde::{Deserialize, Serialize};

use super::contact::{ConsentState, Contact};
use super::{ConversationId, DomainError, MessageId, Time, UserId, OPTIN_RESEND_AFTER};

/// At most this many employees in one thread.
pub const MAX_PARTICIPANTS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub user_id: UserId,
    pub name: String,
    pub locale: String,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: Time,
    /// The first message id they may see (joined without the history); `None`: everything.
    #[serde(default)]
    pub history_from: Option<MessageId>,
}

impl Participant {
    pub fn may_see(&self, message_id: &MessageId) -> bool {
        self.history_from.as_ref().is_none_or(|from| message_id >= from)
    }
}

/// What adding someone did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Joined,
    /// Already a participant: nothing changes.
    AlreadyIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Started by the contact; nobody has claimed it yet.
    Unassigned,
    AwaitingOptin,
    Active,
    Paused,
    Closed,
}

/// The opt-in requests this thread sent and how they fared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptinAttempts {
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_sent_at: Option<Time>,
    /// Delivery failures in a row (a second one closes the thread).
    pub failures: u8,
    /// The current request's message id.
    pub message_id: Option<MessageId>,
}

/// What one failed opt-in request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptinFailure {
    /// Tell the participants and retry at this time.
    RetryAt(Time),
    /// The retry failed too: the thread is closed.
    Close,
}

/// What an opt-in retry timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptinRetry {
    Now,
    /// The contact was asked less than a day ago: not before then.
    At(Time),
    /// Answered, closed, or retried already.
    No,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub contact_key: String,
    pub contact_phone: Option<String>,
    pub contact_name: Option<String>,
    pub participants: Vec<Participant>,
    /// Language of the templates sent to the contact (the creator's locale).
    pub language: String,
    pub closed: bool,
    pub optin: OptinAttempts,
    pub pending_count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: Time,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_outbound_at: Option<Time>,
    /// Opened by a contact's message that routed to no thread, and not claimed yet: no
    /// participants, yet open.
    #[serde(default)]
    pub unassigned: bool,
    /// Messages the contact has written here (read marks count against it).
    #[serde(default)]
    pub inbound_count: u64,
    /// Changes this item carried to the archive (`archive::Source`): the archive must hold
    /// each, 1 to `records`.
    #[serde(default, skip_serializing_if = "super::message::is_zero_u64")]
    pub records: u64,
}

impl Conversation {
    /// A new open thread with `contact`, in `language`, nobody in it yet.
    pub fn new(id: ConversationId, contact: &Contact, language: String, now: Time) -> Conversation {
        Conversation {
            id,
            contact_key: contact.key.clone(),
            contact_phone: contact.phone.clone(),
            contact_name: contact.name.clone(),
            participants: Vec::new(),
            language,
            closed: false,
            optin: OptinAttempts::default(),
            pending_count: 0,
            created_at: now,
            last_activity_at: now,
            last_outbound_at: None,
            unassigned: false,
            inbound_count: 0,
            records: 0,
        }
    }

    pub fn is_participant(&self, user_id: &UserId) -> bool {
        self.participants.iter().any(|p| p.user_id == *user_id)
    }

    pub fn status(&self, contact: &Contact, now: Time) -> ConversationStatus {
        if self.closed {
            ConversationStatus::Closed
        } else if self.unassigned {
            ConversationStatus::Unassigned
        } else if contact.consent != ConsentState::OptedIn {
            ConversationStatus::AwaitingOptin
        } else if contact.window_open(now) {
            ConversationStatus::Active
        } else {
            ConversationStatus::Paused
        }
    }

    /// The consent clients see: the contact's, or `failed` while this thread's request is
    /// undeliverable.
    pub fn consent_view(&self, contact: &Contact) -> &'static str {
        match contact.consent {
            ConsentState::OptedIn => "opted_in",
            ConsentState::OptedOut => "opted_out",
            _ if self.optin.failures > 0 => "failed",
            _ => "requested",
        }
    }

    /// An employee asks to send the opt-in request again.
    pub fn check_optin_resend(&self, contact: &Contact, now: Time) -> Result<(), DomainError> {
        if self.closed {
            return Err(DomainError::ConversationClosed);
        }
        match contact.consent {
            ConsentState::OptedIn => return Err(DomainError::AlreadyOptedIn),
            ConsentState::OptedOut => return Err(DomainError::OptedOut),
            _ => {}
        }
        // Once a day per contact, whichever thread asked.
        match self.optin.last_sent_at.max(contact.optin_sent_at) {
            Some(at) if now < at + OPTIN_RESEND_AFTER => Err(DomainError::OptinTooSoon),
            _ => Ok(()),
        }
    }

    pub fn optin_sent(&mut self, message_id: MessageId, now: Time) {
        self.optin.last_sent_at = Some(now);
        self.optin.message_id = Some(message_id);
        self.last_activity_at = now;
    }

    /// The opt-in request `message_id` failed to deliver.
    pub fn optin_failed(&mut self, message_id: &MessageId, now: Time) -> Option<OptinFailure> {
        if self.optin.message_id.as_ref() != Some(message_id) || self.closed {
            return None;
        }
        self.optin.failures += 1;
        self.last_activity_at = now;
        if self.optin.failures >= 2 {
            self.closed = true;
            Some(OptinFailure::Close)
        } else {
            // A second report of this same request must not count again.
            self.optin.message_id = None;
            Some(OptinFailure::RetryAt(now + OPTIN_RESEND_AFTER))
        }
    }

    /// The retry timer fired: retry only if this thread's request failed once and no retry went
    /// out since, the contact has not answered, the thread is open, and the contact was not
    /// asked (from any thread) in the last day; then, when they may be.
    pub fn optin_retry_due(&self, contact: &Contact, now: Time) -> OptinRetry {
        let failing = !self.closed && self.optin.failures == 1 && self.optin.message_id.is_none();
        if !failing || contact.consent != ConsentState::Requested {
            return OptinRetry::No;
        }
        match contact.optin_sent_at {
            Some(at) if now < at + OPTIN_RESEND_AFTER => OptinRetry::At(at + OPTIN_RESEND_AFTER),
            _ => OptinRetry::Now,
        }
    }

    pub fn participant(&self, user_id: &UserId) -> Option<&Participant> {
        self.participants.iter().find(|p| p.user_id == *user_id)
    }

    /// Adds `p` unless already in; a thread holds at most `MAX_PARTICIPANTS`.
    pub fn add_participant(&mut self, p: Participant, now: Time) -> Result<Added, DomainError> {
        self.check_writable()?;
        if self.is_participant(&p.user_id) {
            return Ok(Added::AlreadyIn);
        }
        if self.participants.len() >= MAX_PARTICIPANTS {
            return Err(DomainError::ThreadFull);
        }
        self.participants.push(p);
        self.last_activity_at = now;
        Ok(Added::Joined)
    }

    /// Takes `user_id` out; the thread closes when nobody is left. `None` if not a participant.
    pub fn remove_participant(&mut self, user_id: &UserId, now: Time) -> Option<Participant> {
        let i = self.participants.iter().position(|p| p.user_id == *user_id)?;
        let gone = self.participants.remove(i);
        self.last_activity_at = now;
        if self.participants.is_empty() {
            self.closed = true;
        }
        Some(gone)
    }

    /// In a thread of two or more, texts to the contact start with the sender's name.
    pub fn speaker_prefix(&self, sender_name: &str) -> Option<String> {
        (self.participants.len() > 1).then(|| format!("*{sender_name}*: "))
    }

    /// An agent takes a contact-started thread: the first participant, exactly once.
    pub fn claim(&mut self, p: Participant) -> Result<(), DomainError> {
        if !self.unassigned || self.closed {
            return Err(DomainError::AlreadyClaimed);
        }
        self.unassigned = false;
        self.participants = vec![p];
        Ok(())
    }

    pub fn check_writable(&self) -> Result<(), DomainError> {
        if self.closed {
            Err(DomainError::ConversationClosed)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::InboundIntent;
    use time::macros::datetime;
    use time::Duration;

    const T0: Time = datetime!(2026-09-20 12:00 UTC);

    fn conv() -> Conversation {
        let contact = Contact::new("447700900123".into(), Some("+447700900123".into()), None);
        Conversation::new("c1".into(), &contact, "en".into(), T0)
    }

    fn contact() -> Contact {
        let mut c = Contact::new("447700900123".into(), None, None);
        c.optin_requested(T0);
        c
    }

    #[test]
    fn optin_resend_waits_24_hours() {
        let mut c = conv();
        c.optin_sent("m1".into(), T0);
        assert_eq!(c.check_optin_resend(&contact(), T0 + Duration::hours(23)), Err(DomainError::OptinTooSoon));
        assert_eq!(c.check_optin_resend(&contact(), T0 + Duration::hours(24)), Ok(()));
    }

    #[test]
    fn second_optin_failure_closes_the_thread() {
        let mut c = conv();
        c.optin_sent("m1".into(), T0);
        assert_eq!(c.optin_failed(&"m1".into(), T0), Some(OptinFailure::RetryAt(T0 + Duration::hours(24))));
        assert_eq!(c.optin_failed(&"m1".into(), T0), None, "the same failure reported twice counts once");
        c.optin_sent("m2".into(), T0 + Duration::hours(24));
        assert_eq!(c.optin_failed(&"m2".into(), T0), Some(OptinFailure::Close));
        assert!(c.closed);
        assert_eq!(c.status(&contact(), T0), ConversationStatus::Closed);
    }

    #[test]
    fn failure_of_an_older_request_is_ignored() {
        let mut c = conv();
        c.optin_sent("m2".into(), T0);
        assert_eq!(c.optin_failed(&"m1".into(), T0), None);
    }

    fn person(id: &str) -> Participant {
        Participant { user_id: id.into(), name: id.into(), locale: "en".into(), joined_at: T0, history_from: None }
    }

    #[test]
    fn at_most_ten_participants_and_adding_twice_is_a_no_op() {
        let mut c = conv();
        for i in 0..10 {
            assert_eq!(c.add_participant(person(&format!("u{i}")), T0), Ok(Added::Joined));
        }
        assert_eq!(c.add_participant(person("u3"), T0), Ok(Added::AlreadyIn));
        assert_eq!(c.add_participant(person("u10"), T0), Err(DomainError::ThreadFull));
    }

    #[test]
    fn the_last_one_leaving_closes_the_thread() {
        let mut c = conv();
        c.add_participant(person("a"), T0).unwrap();
        c.add_participant(person("b"), T0).unwrap();
        assert!(c.remove_participant(&"a".into(), T0).is_some());
        assert!(!c.closed);
        assert!(c.remove_participant(&"a".into(), T0).is_none());
        c.remove_participant(&"b".into(), T0);
        assert!(c.closed);
        assert_eq!(c.add_participant(person("c"), T0), Err(DomainError::ConversationClosed));
    }

    #[test]
    fn only_groups_prefix_the_speaker_and_history_is_cut_at_the_join() {
        let mut c = conv();
        c.add_participant(person("a"), T0).unwrap();
        assert_eq!(c.speaker_prefix("A"), None);
        c.add_participant(person("b"), T0).unwrap();
        assert_eq!(c.speaker_prefix("Alex Kim").as_deref(), Some("*Alex Kim*: "));
        let late = Participant { history_from: Some("01B".into()), ..person("c") };
        assert!(!late.may_see(&"01A".into()) && late.may_see(&"01B".into()) && late.may_see(&"01C".into()));
    }

    #[test]
    fn status_follows_consent_and_window() {
        let c = conv();
        let mut k = contact();
        assert_eq!(c.status(&k, T0), ConversationStatus::AwaitingOptin);
        k.inbound(InboundIntent::Accept, T0, T0);
        assert_eq!(c.status(&k, T0), ConversationStatus::Active);
        assert_eq!(c.status(&k, T0 + Duration::hours(24)), ConversationStatus::Paused);
    }
}
