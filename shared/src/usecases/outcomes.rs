//! What a failed send does, whether Meta refused it at once (dispatch) or later in a `failed`
//! status (receipts): one place decides retries, holds, opt-in and resume failures and notices.

use time::OffsetDateTime;

use crate::domain::conversation::OptinFailure;
use crate::domain::message::{MessageError, SystemPurpose};
use crate::domain::meta_error::{classify, ErrorClass, FailureReason};
use crate::domain::notice::{Notice, NoticeKind};
use crate::domain::{Contact, Conversation, Message, MessageStatus, Sender};
use crate::ports::{Cond, Item, Key, Timer, Write};

use super::{notice_message, put_new, system_template, Settings};

/// A failure as reported: Meta's code when there is one, the HTTP status when there is one.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: Option<i64>,
    pub http_status: Option<u16>,
    pub detail: String,
}

/// The new state and effects of one failure. The caller writes `conv`, `contact` and `msg` under
/// the versions it read, adds `writes`, then queues `to_queue` and arms `timers`.
#[derive(Debug)]
pub struct FailurePlan {
    pub conv: Conversation,
    pub contact: Contact,
    pub msg: Message,
    pub writes: Vec<Write>,
    pub to_queue: Vec<Message>,
    pub timers: Vec<(Timer, OffsetDateTime)>,
    /// Transient: try the same message again after this long.
    pub retry_after: Option<std::time::Duration>,
    /// What the failure changed that goes on the record beside the message (a consent change).
    pub archive: Vec<crate::archive::ArchiveEvent>,
}

impl FailurePlan {
    /// Nothing changed yet: the state as read.
    fn unchanged(conv: &Conversation, contact: &Contact, msg: &Message) -> FailurePlan {
        FailurePlan {
            conv: conv.clone(),
            contact: contact.clone(),
            msg: msg.clone(),
            writes: Vec::new(),
            to_queue: Vec::new(),
            timers: Vec::new(),
            retry_after: None,
            archive: Vec::new(),
        }
    }
}

/// Backoff for attempt `attempts` (1-based): exponential from `base`, Meta's 4^X s for the pair
/// rate limit, with ±25 % jitter, capped at 15 minutes. The first is `base` (a second by
/// default): well within the minute CONTRACT.md section 7 gives a rate limit's first retry.
pub fn backoff(base: std::time::Duration, attempts: u32, pair_rate: bool) -> std::time::Duration {
    let exp = attempts.saturating_sub(1).min(10);
    let factor = if pair_rate { 4u64.saturating_pow(exp) } else { 2u64.saturating_pow(exp) };
    let raw = base.saturating_mul(factor as u32).min(std::time::Duration::from_secs(900));
    let jitter = 0.75 + crate::domain::ids::random_fraction() * 0.5;
    raw.mul_f64(jitter)
}

pub fn plan_failure(
    conv: &Conversation,
    contact: &Contact,
    msg: &Message,
    failure: &Failure,
    settings: &Settings,
    now: OffsetDateTime,
) -> FailurePlan {
    let mut plan = FailurePlan::unchanged(conv, contact, msg);
    let mut class = classify(failure.code, failure.http_status);
    if crate::plant::active(crate::plant::Bug::RateLimitFails) {
        if let ErrorClass::RateLimited { .. } = class {
            class = ErrorClass::Retry;
        }
    }
    match class {
        // Waits as long as Meta asks, counted apart from attempts: it never fails for it.
        ErrorClass::RateLimited { pair_rate } => {
            let after = backoff(settings.retry_base, msg.waits + 1, pair_rate);
            plan.msg.status = MessageStatus::Queued;
            plan.msg.lease_until = None;
            plan.msg.claim = None;
            plan.msg.attempts = plan.msg.attempts.saturating_sub(1);
            plan.msg.waits += 1;
            plan.msg.not_before = Some(now + after);
            plan.retry_after = Some(after);
            return plan;
        }
        ErrorClass::Retry if msg.attempts < settings.max_attempts => {
            let after = backoff(settings.retry_base, msg.attempts.max(1), false);
            plan.msg.status = MessageStatus::Queued;
            plan.msg.lease_until = None;
            plan.msg.claim = None;
            plan.msg.not_before = Some(now + after);
            plan.retry_after = Some(after);
            return plan;
        }
        ErrorClass::Retry => class = ErrorClass::Permanent(FailureReason::RetriesExhausted),
        _ => {}
    }
    if class == ErrorClass::Reengage && msg.system.is_none() {
        hold_for_window(&mut plan, true, settings, now);
        return plan;
    }
    let reason = match class {
        ErrorClass::Permanent(r) => r,
        _ => FailureReason::Unknown,
    };
    fail(&mut plan, failure, reason, now);
    plan
}

/// Why a message is failed for good without asking Meta again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GivenUp {
    /// Its answer was lost and no status settled it in time: it may have reached the contact,
    /// so it is never retried.
    DeliveryUnknown,
    /// Held past `CONNECTOR_HELD_TTL`: its marker goes, and it never reaches the contact out
    /// of context.
    HeldExpired,
    /// The contact opted out after it was queued: it never reaches them.
    OptedOut,
}

impl GivenUp {
    /// Whether `msg` is still where giving up this way applies: a status, a send or a release
    /// that came first has settled it otherwise.
    fn applies(self, msg: &Message) -> bool {
        match self {
            GivenUp::DeliveryUnknown => msg.status == MessageStatus::Sending && msg.lease_until.is_none(),
            // Held, or queued that long (re-checked when it would go).
            GivenUp::HeldExpired => matches!(msg.status, MessageStatus::Pending | MessageStatus::Queued),
            // Queued, or claimed and not yet handed to Meta (the look after the claim).
            GivenUp::OptedOut => matches!(msg.status, MessageStatus::Queued | MessageStatus::Sending),
        }
    }
}

/// Fails `msg` as `why` says, with the sender's notice; `None` when the message has moved on
/// since (the deadline of a send that a status settled meanwhile, say), so nothing changes.
pub fn plan_given_up(
    conv: &Conversation,
    contact: &Contact,
    msg: &Message,
    failure: &Failure,
    why: GivenUp,
    now: OffsetDateTime,
) -> Option<FailurePlan> {
    let recheck = !(why == GivenUp::DeliveryUnknown && crate::plant::active(crate::plant::Bug::DeadlineWithoutRecheck));
    if recheck && !why.applies(msg) {
        return None;
    }
    let mut plan = FailurePlan::unchanged(conv, contact, msg);
    let (reason, code) = match why {
        GivenUp::DeliveryUnknown => (FailureReason::DeliveryUnknown, DELIVERY_UNKNOWN),
        GivenUp::HeldExpired => {
            if msg.status == MessageStatus::Pending {
                plan.conv.pending_count = plan.conv.pending_count.saturating_sub(1);
                plan.writes.push(Write::Delete { key: Key::held(&conv.id, &msg.id), cond: Cond::Always });
            }
            (FailureReason::HeldExpired, HELD_EXPIRED)
        }
        GivenUp::OptedOut => (FailureReason::OptedOut, OPTED_OUT),
    };
    fail(&mut plan, failure, reason, now);
    if let Some(e) = plan.msg.error.as_mut() {
        e.code = code.into();
    }
    Some(plan)
}

/// Holds `msg` again instead of sending it: the window closed since it was queued (a resume
/// request goes out, once a pause), or older messages of its thread are held (it waits behind
/// them, in order).
pub fn plan_hold_again(
    conv: &Conversation,
    contact: &Contact,
    msg: &Message,
    settings: &Settings,
    now: OffsetDateTime,
) -> FailurePlan {
    let mut plan = FailurePlan::unchanged(conv, contact, msg);
    hold_for_window(&mut plan, !contact.window_open(now), settings, now);
    plan
}

/// `error.code` of a message its contact opted out of before it left.
pub const OPTED_OUT: &str = "opted_out";

/// `error.code` of a message that was held too long.
pub const HELD_EXPIRED: &str = "held_expired";

/// `error.code` of a message whose outcome never came.
pub const DELIVERY_UNKNOWN: &str = "delivery_unknown";

/// 131047 (or the window found closed at dispatch): the message is held again, and a resume
/// request goes out unless one already did during this pause. A message held behind others
/// while the window is open only waits its turn.
fn hold_for_window(plan: &mut FailurePlan, window_closed: bool, settings: &Settings, now: OffsetDateTime) {
    plan.msg.status = MessageStatus::Pending;
    plan.msg.lease_until = None;
    plan.msg.claim = None;
    plan.conv.pending_count += 1;
    plan.writes.push(put_new(Item::Held { conversation_id: plan.conv.id.clone(), message_id: plan.msg.id.clone() }));
    let expiry = Timer::HeldExpiry { conversation_id: plan.conv.id.clone(), message_id: plan.msg.id.clone() };
    plan.timers.push((expiry, now + settings.held_ttl));
    if !window_closed {
        return;
    }
    plan.contact.reengagement_required(now);
    if plan.contact.take_resume_request() {
        plan.to_queue.push(system_template(&plan.conv, SystemPurpose::ResumeRequest, settings, now));
        notice(plan, Notice::to_all(NoticeKind::ResumeRequested), now);
    }
}

fn fail(plan: &mut FailurePlan, failure: &Failure, reason: FailureReason, now: OffsetDateTime) {
    let code = failure.code.map_or_else(|| format!("http_{}", failure.http_status.unwrap_or(0)), |c| c.to_string());
    plan.msg.status = MessageStatus::Failed;
    plan.msg.lease_until = None;
    plan.msg.status_at.failed.get_or_insert(now);
    plan.msg.error = Some(MessageError { code, detail: failure.detail.clone(), reason: Some(reason) });
    if reason == FailureReason::MarketingOptOut && plan.contact.marketing_opt_out(now) {
        notice(plan, Notice::to_all(NoticeKind::OptinRejected), now);
        plan.archive.push(super::archive::consent_event(
            &plan.conv.id,
            &plan.contact,
            "marketing_opted_out",
            "meta_131050",
            now,
        ));
        let change = super::archive::consent_change(
            &plan.contact,
            "marketing_opted_out",
            "meta_131050",
            Some(&plan.conv.id),
            now,
        );
        plan.writes.push(change);
    }
    match plan.msg.system {
        Some(SystemPurpose::OptinRequest) => match plan.conv.optin_failed(&plan.msg.id, now) {
            Some(OptinFailure::RetryAt(at)) => {
                let sms_fallback = failure.code == Some(131026);
                notice(plan, Notice::to_all(NoticeKind::OptinFailed { sms_fallback }), now);
                plan.timers.push((Timer::OptinRetry { conversation_id: plan.conv.id.clone() }, at));
            }
            Some(OptinFailure::Close) => notice(plan, Notice::to_all(NoticeKind::OptinClosed), now),
            None => {}
        },
        Some(SystemPurpose::ResumeRequest) => {
            // The next held message may ask again.
            plan.contact.resume_requested = false;
            notice(plan, Notice::to_all(NoticeKind::ResumeFailed), now);
        }
        Some(SystemPurpose::OptOutConfirmation | SystemPurpose::OptinConfirmation) => {}
        Some(SystemPurpose::ParticipantUpdate(change)) => {
            notice(plan, Notice::to_all(NoticeKind::NotifyFailed { change }), now);
        }
        None => {
            let failed = NoticeKind::MessageFailed { message_id: plan.msg.id.clone(), reason };
            // An employee's own message: its author is told (anything else, everyone).
            let told = match &plan.msg.sender {
                Sender::User(author) => Notice::to(author, failed),
                _ => Notice::to_all(failed),
            };
            notice(plan, told, now);
        }
    }
}

fn notice(plan: &mut FailurePlan, n: Notice, now: OffsetDateTime) {
    plan.writes.push(put_new(Item::Message(notice_message(&plan.conv.id, n, now))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contact::InboundIntent;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-09-20 12:00 UTC);

    fn fixture() -> (Conversation, Contact, Message) {
        let mut contact = Contact::new("1".into(), None, None);
        let conv = Conversation::new("c".into(), &contact, "en".into(), T0);
        contact.inbound(InboundIntent::Accept, T0, T0);
        let mut m = Message::outbound("m".into(), "c".into(), "u1".into(), crate::domain::Body::text("hi"), T0);
        m.status = MessageStatus::Sending;
        m.attempts = 1;
        (conv, contact, m)
    }

    fn f(code: i64) -> Failure {
        Failure { code: Some(code), http_status: Some(400), detail: "x".into() }
    }

    #[test]
    fn transient_errors_retry_until_the_cap() {
        let (c, k, mut m) = fixture();
        let s = Settings::default();
        let p = plan_failure(&c, &k, &m, &f(131016), &s, T0);
        assert_eq!(p.msg.status, MessageStatus::Queued);
        assert!(p.retry_after.is_some());
        m.attempts = s.max_attempts;
        let p = plan_failure(&c, &k, &m, &f(131016), &s, T0);
        assert_eq!(p.msg.status, MessageStatus::Failed);
        assert_eq!(p.msg.error.unwrap().reason, Some(FailureReason::RetriesExhausted));
    }

    #[test]
    fn a_rate_limit_waits_in_order_and_never_fails_the_message() {
        let (c, k, mut m) = fixture();
        let s = Settings::default();
        m.attempts = s.max_attempts;
        for code in [131056, 130429, 131048] {
            let p = plan_failure(&c, &k, &m, &f(code), &s, T0);
            assert_eq!(p.msg.status, MessageStatus::Queued, "{code}");
            let wait = p.retry_after.expect("a wait");
            assert!(wait <= std::time::Duration::from_secs(60), "the first retry within a minute: {wait:?}");
            assert_eq!(p.msg.not_before, Some(T0 + wait), "held back until then");
            assert_eq!(p.msg.waits, 1);
        }
    }

    #[test]
    fn reengagement_holds_and_requests_resume_once() {
        let (c, k, m) = fixture();
        let s = Settings::default();
        let p = plan_failure(&c, &k, &m, &f(131047), &s, T0);
        assert_eq!(p.msg.status, MessageStatus::Pending);
        assert_eq!(p.conv.pending_count, 1);
        assert_eq!(p.to_queue.len(), 1);
        let again = plan_failure(&p.conv, &p.contact, &m, &f(131047), &s, T0);
        assert!(again.to_queue.is_empty(), "one resume request per pause");
    }

    #[test]
    fn permanent_error_fails_with_a_notice_to_the_sender() {
        let (c, k, m) = fixture();
        let p = plan_failure(&c, &k, &m, &f(132001), &Settings::default(), T0);
        assert_eq!(p.msg.status, MessageStatus::Failed);
        assert_eq!(p.writes.len(), 1);
    }

    #[test]
    fn optin_failure_schedules_a_retry_then_closes() {
        let (mut c, mut k, mut m) = fixture();
        k.consent = crate::domain::ConsentState::Requested;
        m.system = Some(SystemPurpose::OptinRequest);
        c.optin_sent(m.id.clone(), T0);
        let p = plan_failure(&c, &k, &m, &f(131026), &Settings::default(), T0);
        assert_eq!(p.timers.len(), 1);
        assert!(!p.conv.closed);
        let mut c2 = p.conv.clone();
        c2.optin_sent("m2".into(), T0);
        m.id = "m2".into();
        let p2 = plan_failure(&c2, &k, &m, &f(131026), &Settings::default(), T0);
        assert!(p2.conv.closed);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = std::time::Duration::from_millis(1000);
        assert!(backoff(base, 1, false) <= std::time::Duration::from_millis(1250));
        assert!(backoff(base, 3, true) >= std::time::Duration::from_secs(12));
        assert!(backoff(base, 40, true) <= std::time::Duration::from_secs(1125));
    }
}
