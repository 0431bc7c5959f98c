//! A WhatsApp contact: their consent and their 24-hour customer-service window. Both belong to
//! the contact's number, so every thread with the contact shares them.

use serde::{Deserialize, Serialize};

use super::{Time, WINDOW};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// Never asked.
    Unknown,
    /// An opt-in request went out; no answer yet.
    Requested,
    OptedIn,
    OptedOut,
}

impl ConsentState {
    /// As stored and shown (`opted_in`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentState::Unknown => "unknown",
            ConsentState::Requested => "requested",
            ConsentState::OptedIn => "opted_in",
            ConsentState::OptedOut => "opted_out",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Digits of the number (Meta's `wa_id`), or the business-scoped user id when the number
    /// is unknown.
    pub key: String,
    pub phone: Option<String>,
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub consent: ConsentState,
    pub consent_at: Option<Time>,
    /// Last inbound message + 24 h; `None` before the contact ever wrote.
    pub window_open_until: Option<Time>,
    /// The window's close has been acted on (timer fired or Meta answered 131047), and no
    /// inbound message has re-opened it since.
    pub paused: bool,
    /// A resume-request template went out during the current pause (at most one per pause).
    pub resume_requested: bool,
    /// When the armed window timer fires. Later messages do not move it: when it fires early
    /// it re-arms itself at the window's end, so a busy contact costs one timer, not one each.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub window_timer_at: Option<Time>,
    /// When the last opt-in template went to this contact, from any thread: at most one a day,
    /// so several employees starting threads cannot spam them.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub optin_sent_at: Option<Time>,
    /// Meta's time of the contact's last answer (yes or STOP): an answer written before it, and
    /// delivered after it (webhooks come out of order), changes nothing.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub answered_at: Option<Time>,
    /// When an opt-in template last left for Meta (dispatch's own record): at most one a day
    /// reaches the contact, however late a request planned earlier is sent.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub optin_dispatched_at: Option<Time>,
    /// The window end the participants were last reminded of (`window_closing`, once a window).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub reminded_until: Option<Time>,
    /// The advisor of record: the employee who last wrote to the contact. A message from the
    /// contact that no open thread takes opens a thread with them first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisor: Option<super::UserId>,
}

/// What the reminder timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reminder {
    /// The window closes within the lead time: tell the participants now.
    Remind,
    /// The window was extended: look again then.
    Rearm(Time),
    /// Closed, paused, or already reminded of this window.
    Nothing,
}

/// What the window timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowTimer {
    /// The window closed just now: pause the contact's threads.
    Paused,
    /// The window was extended since the timer was armed: arm it again for then.
    Rearm(Time),
    /// Stale or already acted on.
    Nothing,
}

/// What an inbound message means for consent and the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundIntent {
    /// The accept button of the opt-in request, or a reply of "yes".
    Accept,
    /// The reject button, or "STOP".
    Reject,
    /// The resume button.
    Resume,
    /// Anything else the contact wrote (text, picture, other buttons).
    Message,
    /// A reaction or system notice: stored, but Meta does not say it re-opens the window.
    Passive,
}

/// What changed when the contact's inbound message was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InboundOutcome {
    pub consent_changed: Option<ConsentState>,
    /// The window was closed (or paused) and this message opened it again.
    pub reopened: bool,
    /// Held messages may now go out: consent is given and the window is open.
    pub release_held: bool,
}

/// What happens to a send, decided from the contact's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendGate {
    /// Goes out now.
    Deliver,
    /// Held until consent is given.
    HoldForConsent,
    /// Held until the contact re-opens the window; `request_resume` says a resume-request
    /// template must go out now (first held message of this pause).
    HoldForWindow {
        request_resume: bool,
    },
    Refuse(super::DomainError),
}

impl Contact {
    pub fn new(key: String, phone: Option<String>, name: Option<String>) -> Contact {
        Contact {
            key,
            phone,
            user_id: None,
            name,
            consent: ConsentState::Unknown,
            consent_at: None,
            window_open_until: None,
            paused: false,
            resume_requested: false,
            window_timer_at: None,
            optin_sent_at: None,
            optin_dispatched_at: None,
            answered_at: None,
            reminded_until: None,
            advisor: None,
        }
    }

    /// The time to arm the window timer for, if it is not armed already.
    pub fn arm_window_timer(&mut self, now: Time) -> Option<Time> {
        let until = self.window_open_until.filter(|u| *u > now)?;
        if self.window_timer_at.is_some_and(|t| t > now && t <= until) {
            return None;
        }
        self.window_timer_at = Some(until);
        Some(until)
    }

    pub fn window_open(&self, now: Time) -> bool {
        !self.paused && self.window_open_until.is_some_and(|until| now < until)
    }

    /// The opt-in request went out (or is about to).
    pub fn optin_requested(&mut self, now: Time) {
        if matches!(self.consent, ConsentState::Unknown) {
            self.consent = ConsentState::Requested;
            self.consent_at = Some(now);
        }
        self.optin_sent_at = Some(now);
    }

    /// Whether a new thread should send the opt-in template: the contact has not answered and
    /// was not asked in the last 24 hours (from any thread).
    pub fn optin_due(&self, now: Time) -> bool {
        matches!(self.consent, ConsentState::Unknown | ConsentState::Requested)
            && self.optin_sent_at.is_none_or(|at| now >= at + super::OPTIN_RESEND_AFTER)
    }

    /// Applies one inbound message sent at `sent_at` (Meta's timestamp).
    pub fn inbound(&mut self, intent: InboundIntent, sent_at: Time, now: Time) -> InboundOutcome {
        let mut out = InboundOutcome::default();
        let answer = matches!(intent, InboundIntent::Accept | InboundIntent::Reject);
        if answer && self.answered_at.is_some_and(|at| sent_at < at) {
            // Overtaken by a later answer: the contact's last word stands.
        } else if answer {
            self.answered_at = Some(sent_at);
        }
        let stale = answer && self.answered_at != Some(sent_at);
        match intent {
            _ if stale => {}
            InboundIntent::Accept if self.consent != ConsentState::OptedIn => {
                self.consent = ConsentState::OptedIn;
                self.consent_at = Some(now);
                out.consent_changed = Some(ConsentState::OptedIn);
            }
            InboundIntent::Reject if self.consent != ConsentState::OptedOut => {
                self.consent = ConsentState::OptedOut;
                self.consent_at = Some(now);
                out.consent_changed = Some(ConsentState::OptedOut);
            }
            _ => {}
        }
        let was_open = self.window_open(now);
        if intent != InboundIntent::Passive {
            let until = sent_at + WINDOW;
            // Webhooks come out of order: an older message never shortens the window.
            if self.window_open_until.is_none_or(|u| until > u) {
                self.window_open_until = Some(until);
            }
            if self.window_open_until.is_some_and(|u| now < u) {
                out.reopened = !was_open && (self.paused || self.resume_requested);
                self.paused = false;
                self.resume_requested = false;
            }
        }
        // Whatever was held (for consent or for the window) goes once both allow it: when this
        // message opened the window, or gave consent inside it.
        let opened = !was_open && self.window_open(now);
        out.release_held = self.consent == ConsentState::OptedIn
            && self.window_open(now)
            && (opened || out.consent_changed == Some(ConsentState::OptedIn));
        out
    }

    /// The reminder timer fired at `now`, `lead` before the end of the window it was armed for.
    pub fn reminder_fired(&mut self, lead: time::Duration, now: Time) -> Reminder {
        let Some(until) = self.window_open_until.filter(|u| now < *u && !self.paused) else {
            return Reminder::Nothing;
        };
        if self.reminded_until == Some(until) {
            return Reminder::Nothing;
        }
        if now < until - lead {
            return Reminder::Rearm(until - lead);
        }
        self.reminded_until = Some(until);
        Reminder::Remind
    }

    /// The window timer fired at `now`.
    pub fn window_timer_fired(&mut self, now: Time) -> WindowTimer {
        match self.window_open_until {
            Some(until) if now < until => {
                self.window_timer_at = Some(until);
                WindowTimer::Rearm(until)
            }
            Some(_) if !self.paused => {
                self.paused = true;
                self.window_timer_at = None;
                WindowTimer::Paused
            }
            _ => WindowTimer::Nothing,
        }
    }

    /// Meta refused a free-form message because the window is closed (131047), whatever our
    /// clock said.
    pub fn reengagement_required(&mut self, now: Time) -> bool {
        let changed = !self.paused;
        self.paused = true;
        if self.window_open_until.is_none_or(|u| u > now) {
            self.window_open_until = Some(now);
        }
        changed
    }

    /// Meta reported the contact stopped marketing messages (131050, `user_preferences`).
    pub fn marketing_opt_out(&mut self, now: Time) -> bool {
        if self.consent == ConsentState::OptedOut {
            return false;
        }
        self.consent = ConsentState::OptedOut;
        self.consent_at = Some(now);
        true
    }

    /// Decides what a new employee message does. Templates may go out whenever consent is
    /// given; free-form text needs the window too.
    pub fn gate_send(&mut self, is_template: bool, now: Time) -> SendGate {
        match self.consent {
            ConsentState::OptedOut => SendGate::Refuse(super::DomainError::OptedOut),
            ConsentState::Unknown | ConsentState::Requested => SendGate::HoldForConsent,
            ConsentState::OptedIn if is_template || self.window_open(now) => SendGate::Deliver,
            ConsentState::OptedIn => {
                let request_resume = !self.resume_requested;
                self.resume_requested = true;
                if self.window_open_until.is_some_and(|u| now >= u) {
                    self.paused = true;
                }
                SendGate::HoldForWindow { request_resume }
            }
        }
    }

    /// A held message that Meta sent back (131047) needs a resume request unless one went out
    /// during this pause.
    pub fn take_resume_request(&mut self) -> bool {
        !std::mem::replace(&mut self.resume_requested, true)
    }
}

/// The words that accept, in the notices' five languages (English, French, Spanish, German,
/// Portuguese), with and without their accents.
const ACCEPT: [&str; 6] = ["yes", "oui", "sí", "si", "ja", "sim"];
/// The words that opt out, likewise.
const REJECT: [&str; 7] = ["stop", "arrêt", "arret", "alto", "stopp", "pare", "parar"];

/// How an inbound text reads for consent: one word of `ACCEPT` accepts, of `REJECT` opts out,
/// in any case and with its punctuation; anything else is a message.
pub fn text_intent(body: &str) -> InboundIntent {
    let word = body.trim().trim_start_matches(['¡', '¿']).trim_end_matches(['.', '!', '?']).trim().to_lowercase();
    if ACCEPT.contains(&word.as_str()) {
        InboundIntent::Accept
    } else if REJECT.contains(&word.as_str()) {
        InboundIntent::Reject
    } else {
        InboundIntent::Message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;
    use time::Duration;

    const T0: Time = datetime!(2026-09-20 12:00 UTC);

    fn opted_in_at(t: Time) -> Contact {
        let mut c = Contact::new("447700900123".into(), Some("+447700900123".into()), None);
        c.optin_requested(t);
        c.inbound(InboundIntent::Accept, t, t);
        c
    }

    #[test]
    fn the_consent_words_read_in_the_five_languages_and_nothing_longer_does() {
        for yes in ["yes", "YES", " Oui ", "Sí", "¡Sí!", "si", "Ja.", "SIM"] {
            assert_eq!(text_intent(yes), InboundIntent::Accept, "{yes}");
        }
        for stop in ["STOP", "Arrêt", "ARRET", "alto", "Stopp!", "pare", "Parar"] {
            assert_eq!(text_intent(stop), InboundIntent::Reject, "{stop}");
        }
        for other in ["yes please", "Si, claro", "ja genau", "stop it", "oui?!x", "nein", ""] {
            assert_eq!(text_intent(other), InboundIntent::Message, "{other}");
        }
    }

    #[test]
    fn a_consent_reads_as_it_is_stored() {
        for c in [ConsentState::Unknown, ConsentState::Requested, ConsentState::OptedIn, ConsentState::OptedOut] {
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
        }
    }

    #[test]
    fn a_message_that_opens_the_window_after_a_late_opt_in_releases_what_was_held() {
        // "yes" arrives (redelivered) after its own 24 hours: consent, but no window.
        let mut c = Contact::new("1".into(), None, None);
        let t0 = datetime!(2026-09-20 12:00 UTC);
        let out = c.inbound(InboundIntent::Accept, t0, t0 + Duration::hours(30));
        assert!(out.consent_changed.is_some() && !out.release_held);
        // The contact writes again: the window opens, and what waited for consent goes.
        let out = c.inbound(InboundIntent::Message, t0 + Duration::hours(31), t0 + Duration::hours(31));
        assert!(out.release_held);
        assert!(!out.reopened, "no pause or resume request to announce");
    }

    #[test]
    fn an_answer_delivered_after_a_later_one_changes_nothing() {
        // "yes" at T0, then STOP a minute later; Meta delivers the STOP first.
        let mut c = Contact::new("1".into(), None, None);
        c.optin_requested(T0);
        let out = c.inbound(InboundIntent::Reject, T0 + Duration::minutes(1), T0 + Duration::minutes(2));
        assert_eq!(out.consent_changed, Some(ConsentState::OptedOut));
        let out = c.inbound(InboundIntent::Accept, T0, T0 + Duration::minutes(3));
        assert_eq!(out.consent_changed, None, "the STOP was the contact's last word");
        assert_eq!(c.consent, ConsentState::OptedOut);
        // A yes written after the STOP opts them back in.
        let out = c.inbound(InboundIntent::Accept, T0 + Duration::minutes(5), T0 + Duration::minutes(5));
        assert_eq!(out.consent_changed, Some(ConsentState::OptedIn));
    }

    #[test]
    fn new_contact_holds_messages_until_consent() {
        let mut c = Contact::new("1".into(), None, None);
        c.optin_requested(T0);
        assert_eq!(c.gate_send(false, T0), SendGate::HoldForConsent);
        assert_eq!(c.gate_send(true, T0), SendGate::HoldForConsent);
    }

    #[test]
    fn accepting_opens_window_and_releases_held() {
        let mut c = Contact::new("1".into(), None, None);
        c.optin_requested(T0);
        let out = c.inbound(InboundIntent::Accept, T0, T0);
        assert_eq!(out.consent_changed, Some(ConsentState::OptedIn));
        assert!(out.release_held);
        assert_eq!(c.gate_send(false, T0), SendGate::Deliver);
    }

    #[test]
    fn yes_and_stop_in_any_case() {
        assert_eq!(text_intent(" YeS "), InboundIntent::Accept);
        assert_eq!(text_intent("yes!"), InboundIntent::Accept);
        assert_eq!(text_intent("Stop"), InboundIntent::Reject);
        assert_eq!(text_intent("yes please"), InboundIntent::Message);
    }

    #[test]
    fn stop_refuses_sends_until_yes() {
        let mut c = opted_in_at(T0);
        c.inbound(InboundIntent::Reject, T0, T0);
        assert_eq!(c.gate_send(false, T0), SendGate::Refuse(crate::domain::DomainError::OptedOut));
        assert_eq!(c.gate_send(true, T0), SendGate::Refuse(crate::domain::DomainError::OptedOut));
        let out = c.inbound(InboundIntent::Accept, T0, T0);
        assert!(out.release_held);
        assert_eq!(c.gate_send(false, T0), SendGate::Deliver);
    }

    #[test]
    fn after_24_hours_text_is_held_and_resume_requested_once() {
        let mut c = opted_in_at(T0);
        let later = T0 + Duration::hours(24);
        assert_eq!(c.gate_send(false, later), SendGate::HoldForWindow { request_resume: true });
        assert_eq!(c.gate_send(false, later), SendGate::HoldForWindow { request_resume: false });
        assert_eq!(c.gate_send(true, later), SendGate::Deliver, "templates go any time");
    }

    #[test]
    fn inbound_reopens_paused_window_and_releases() {
        let mut c = opted_in_at(T0);
        let later = T0 + Duration::hours(25);
        assert_eq!(c.window_timer_fired(later), WindowTimer::Paused);
        assert_eq!(c.window_timer_fired(later), WindowTimer::Nothing, "once per pause");
        let out = c.inbound(InboundIntent::Message, later, later);
        assert!(out.reopened && out.release_held);
        assert!(c.window_open(later));
    }

    #[test]
    fn the_reminder_comes_once_per_window_and_follows_an_extended_one() {
        let lead = Duration::hours(1);
        let mut c = opted_in_at(T0);
        c.inbound(InboundIntent::Message, T0 + Duration::hours(10), T0 + Duration::hours(10));
        assert_eq!(c.reminder_fired(lead, T0 + Duration::hours(23)), Reminder::Rearm(T0 + Duration::hours(33)));
        assert_eq!(c.reminder_fired(lead, T0 + Duration::hours(33)), Reminder::Remind);
        assert_eq!(c.reminder_fired(lead, T0 + Duration::hours(33)), Reminder::Nothing, "once per window");
        c.inbound(InboundIntent::Message, T0 + Duration::hours(33), T0 + Duration::hours(33));
        assert_eq!(c.reminder_fired(lead, T0 + Duration::hours(56)), Reminder::Remind, "a new window, a new reminder");
        assert_eq!(c.reminder_fired(lead, T0 + Duration::hours(58)), Reminder::Nothing, "closed");
    }

    #[test]
    fn an_early_window_timer_rearms_for_the_new_end() {
        let mut c = opted_in_at(T0);
        assert_eq!(c.arm_window_timer(T0), Some(T0 + Duration::hours(24)));
        c.inbound(InboundIntent::Message, T0 + Duration::hours(20), T0 + Duration::hours(20));
        assert_eq!(c.arm_window_timer(T0 + Duration::hours(20)), None, "the armed timer stays");
        assert_eq!(c.window_timer_fired(T0 + Duration::hours(24)), WindowTimer::Rearm(T0 + Duration::hours(44)));
        assert!(c.window_open(T0 + Duration::hours(24)));
        assert_eq!(c.window_timer_fired(T0 + Duration::hours(44)), WindowTimer::Paused);
        assert_eq!(c.arm_window_timer(T0 + Duration::hours(45)), None, "nothing to arm for a closed window");
    }

    #[test]
    fn older_inbound_never_shortens_window() {
        let mut c = opted_in_at(T0 + Duration::hours(5));
        c.inbound(InboundIntent::Message, T0, T0 + Duration::hours(5));
        assert_eq!(c.window_open_until, Some(T0 + Duration::hours(29)));
    }

    #[test]
    fn reactions_do_not_reopen_the_window() {
        let mut c = opted_in_at(T0);
        let later = T0 + Duration::hours(30);
        c.window_timer_fired(later);
        let out = c.inbound(InboundIntent::Passive, later, later);
        assert!(!out.reopened && !c.window_open(later));
    }

    #[test]
    fn reengagement_pauses_an_open_window() {
        let mut c = opted_in_at(T0);
        assert!(c.reengagement_required(T0 + Duration::hours(1)));
        assert!(!c.window_open(T0 + Duration::hours(1)));
        assert!(c.take_resume_request());
        assert!(!c.take_resume_request());
    }

    fn intent() -> impl Strategy<Value = InboundIntent> {
        prop_oneof![
            Just(InboundIntent::Accept),
            Just(InboundIntent::Reject),
            Just(InboundIntent::Resume),
            Just(InboundIntent::Message),
            Just(InboundIntent::Passive),
        ]
    }

    #[derive(Debug, Clone)]
    enum Step {
        Inbound(InboundIntent, i64),
        Timer,
        Send(bool),
        Reengage,
        Advance(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (intent(), -3600i64..3600).prop_map(|(i, skew)| Step::Inbound(i, skew)),
            Just(Step::Timer),
            any::<bool>().prop_map(Step::Send),
            Just(Step::Reengage),
            (0i64..200_000).prop_map(Step::Advance),
        ]
    }

    proptest! {
        /// Whatever happens, a message is delivered only with consent, free-form text only in an
        /// open window, and at most one resume request goes out per pause.
        #[test]
        fn state_machine_invariants(steps in proptest::collection::vec(step(), 1..60)) {
            let mut c = Contact::new("1".into(), None, None);
            c.optin_requested(T0);
            let mut now = T0;
            let mut resumes_this_pause = 0;
            for s in steps {
                match s {
                    Step::Advance(secs) => now += Duration::seconds(secs),
                    Step::Inbound(i, skew) => {
                        let out = c.inbound(i, now + Duration::seconds(skew.min(0)), now);
                        if out.reopened || c.window_open(now) { resumes_this_pause = 0; }
                        if out.release_held { prop_assert!(c.consent == ConsentState::OptedIn && c.window_open(now)); }
                    }
                    Step::Timer => { c.window_timer_fired(now); }
                    Step::Reengage => { c.reengagement_required(now); }
                    Step::Send(template) => match c.gate_send(template, now) {
                        SendGate::Deliver => {
                            prop_assert_eq!(c.consent, ConsentState::OptedIn);
                            prop_assert!(template || c.window_open(now));
                        }
                        SendGate::HoldForWindow { request_resume } => {
                            if request_resume { resumes_this_pause += 1; }
                            prop_assert!(resumes_this_pause <= 1);
                        }
                        SendGate::HoldForConsent => prop_assert!(c.consent != ConsentState::OptedIn),
                        SendGate::Refuse(_) => prop_assert_eq!(c.consent, ConsentState::OptedOut),
                    },
                }
            }
        }
    }
}
