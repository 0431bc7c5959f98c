//! The ids of threads, messages and users, each a type of its own so that one cannot be passed
//! where another is meant (`Key::membership(user, thread)`, `Key::message(thread, message)`).
//! Not for Meta's ids (wamids, media ids), which only adapters and the webhook parser handle.

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> $name {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                $name(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// So maps and sets keyed by this id can be looked up with a `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id!(
    /// A thread's id: a ULID made when it is opened.
    ConversationId
);
id!(
    /// A message's id: a ULID made in commit order, so a thread's messages sort by it.
    MessageId
);
id!(
    /// An employee's id: their token's subject.
    UserId
);

/// Where new ids and random choices come from: the process's clock and randomness, unless the
/// thread has a source of its own installed (`install_entropy`). The deterministic simulation
/// installs a seeded one, so that a seed replays exactly, ids and jitter included.
pub trait Entropy {
    /// A new ULID, later than any this source made before.
    fn ulid(&mut self) -> ulid::Ulid;
    /// A uniformly random number.
    fn next_u64(&mut self) -> u64;
}

thread_local! {
    static LOCAL: std::cell::RefCell<Option<Box<dyn Entropy>>> = const { std::cell::RefCell::new(None) };
}

/// Makes `source` this thread's entropy until the guard is dropped.
pub fn install_entropy(source: Box<dyn Entropy>) -> EntropyGuard {
    LOCAL.with(|l| *l.borrow_mut() = Some(source));
    EntropyGuard(())
}

/// Puts the process's own entropy back when dropped.
pub struct EntropyGuard(());

impl Drop for EntropyGuard {
    fn drop(&mut self) {
        LOCAL.with(|l| *l.borrow_mut() = None);
    }
}

/// A ULID, strictly increasing within the process (or the installed source), so ids made after
/// a conditional read sort in commit order.
fn next_ulid() -> ulid::Ulid {
    if let Some(u) = LOCAL.with(|l| l.borrow_mut().as_mut().map(|s| s.ulid())) {
        return u;
    }
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut guard = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

/// A random number from this thread's entropy.
pub fn random_u64() -> u64 {
    LOCAL.with(|l| l.borrow_mut().as_mut().map(|s| s.next_u64())).unwrap_or_else(rand::random)
}

/// A random fraction in `[0, 1)` from this thread's entropy.
pub fn random_fraction() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A new ULID as text, for ids that have no type of their own (outbox entries, changes,
/// pictures).
pub fn new_ulid() -> String {
    next_ulid().to_string()
}

impl ConversationId {
    pub fn generate() -> ConversationId {
        ConversationId(new_ulid())
    }
}

impl MessageId {
    pub fn generate() -> MessageId {
        MessageId(new_ulid())
    }

    /// When it was made (ms since the epoch), for ids this connector made.
    pub fn made_ms(&self) -> Option<u64> {
        ulid::Ulid::from_string(&self.0).ok().map(|u| u.timestamp_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stored_as_plain_strings() {
        let id = MessageId::from("01J0000000000000000000000A");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"01J0000000000000000000000A\"");
        assert_eq!(serde_json::from_str::<MessageId>("\"01J0000000000000000000000A\"").unwrap(), id);
    }

    #[test]
    fn generated_ids_increase_and_know_their_time() {
        let (a, b) = (MessageId::generate(), MessageId::generate());
        assert!(a < b);
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64 * 1000;
        assert!(a.made_ms().unwrap().abs_diff(now) < 5_000);
        assert_eq!(MessageId::from("not a ulid").made_ms(), None);
    }
}
