//! Deliberate bugs, planted where the real code decides, so that the simulation can prove it
//! finds what it claims to: CI runs it with each bug switched on in turn and expects a broken
//! promise within a fixed number of seeds. Compiled in only with the `planted-bugs` feature
//! (never in a Lambda package); even then each bug is off unless the current thread switches
//! it on (`Planted::on`), so nothing else in a test build ever sees one.

/// One planted bug: what the code then does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// Dispatch sends without re-checking the contact's consent.
    NoConsentRecheck,
    /// Inbound reads any failed condition (a stale read, `TransactionConflict`) as "applied before".
    ConflictIsDuplicate,
    /// Inbound writes no dedupe mark.
    NoDedupeMark,
    /// The archiver leaves a new message's record out, now and then.
    SkipArchiveRecord,
    /// The archiver writes a thread's segment over another writer's, instead of being refused.
    SecondChainWriter,
    /// Dispatch reads a lost Graph API answer as "not taken" and sends again.
    RetryLostAnswer,
    /// The executor plans again when a transaction's outcome is unknown, instead of resubmitting.
    ReplanUnknown,
    /// A status webhook moves a message back (`read` then `delivered` shows `delivered`).
    StatusMovesBack,
    /// The delivery deadline fails a message without re-checking that no status settled it.
    DeadlineWithoutRecheck,
    /// The opt-in retry sends again every time its timer fires, and dispatch lets it through.
    OptinRetryUnchecked,
    /// A new text goes out while older ones of its thread are still held.
    NewTextOvertakesHeld,
    /// Dispatch sends the job's message without the thread's older queued ones first.
    NoLookBack,
    /// Dispatch sends without claiming the message.
    NoClaim,
    /// Opt-in requests go out whatever was sent to the contact in the last 24 hours.
    OptinEveryThread,
    /// A repeated `client_id` makes a new message.
    ClientIdIgnored,
    /// The relay drops a timer whose time has passed instead of firing it.
    PastTimerDropped,
    /// The queue runner charges a waiting message's followers (reports them failed).
    FollowersCharged,
    /// A rate limit fails the message for good once its attempts run out.
    RateLimitFails,
    /// A contact's file is kept without checking Meta's SHA-256.
    SkipMediaChecksum,
    /// When Meta refuses a file's upload, dispatch sends its caption alone, "so the words get
    /// through".
    CaptionWithoutFile,
}

impl Bug {
    pub const ALL: [Bug; 20] = [
        Bug::NoConsentRecheck,
        Bug::ConflictIsDuplicate,
        Bug::NoDedupeMark,
        Bug::SkipArchiveRecord,
        Bug::SecondChainWriter,
        Bug::RetryLostAnswer,
        Bug::ReplanUnknown,
        Bug::StatusMovesBack,
        Bug::DeadlineWithoutRecheck,
        Bug::OptinRetryUnchecked,
        Bug::NewTextOvertakesHeld,
        Bug::NoLookBack,
        Bug::NoClaim,
        Bug::OptinEveryThread,
        Bug::ClientIdIgnored,
        Bug::PastTimerDropped,
        Bug::FollowersCharged,
        Bug::RateLimitFails,
        Bug::SkipMediaChecksum,
        Bug::CaptionWithoutFile,
    ];

    /// By its name in `Debug` form (`SIM_PLANT=NoClaim`).
    pub fn named(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| format!("{b:?}") == name)
    }
}

#[cfg(feature = "planted-bugs")]
thread_local! {
    static ON: std::cell::Cell<Option<Bug>> = const { std::cell::Cell::new(None) };
}

/// Whether `bug` is switched on for this thread (never, without the `planted-bugs` feature).
#[inline(always)]
pub fn active(bug: Bug) -> bool {
    #[cfg(feature = "planted-bugs")]
    {
        ON.with(|on| on.get() == Some(bug))
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}

/// Switches one bug on for this thread until dropped.
#[cfg(feature = "planted-bugs")]
pub struct Planted(());

#[cfg(feature = "planted-bugs")]
impl Planted {
    pub fn on(bug: Option<Bug>) -> Planted {
        ON.with(|on| on.set(bug));
        Planted(())
    }
}

#[cfg(feature = "planted-bugs")]
impl Drop for Planted {
    fn drop(&mut self) {
        ON.with(|on| on.set(None));
    }
}
