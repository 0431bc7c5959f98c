//! Searching the record (CONTRACT.md section 8): what a word is, what a filter may ask, and the
//! order of results. Words are folded the way SQLite FTS5's `unicode61 remove_diacritics 2`
//! tokenizer and the Athena query fold them: lower case, accents dropped, split on anything
//! that is not a letter or a digit; a message matches when it holds every word of the query.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::{ConversationId, DomainError, MessageId, Phone, UserId};

/// The longest period one search or export covers.
pub const MAX_PERIOD: Duration = Duration::days(366);
/// Results per page: the default and the most.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
/// Words a query may hold.
pub const MAX_WORDS: usize = 16;

/// `text` as words: lower case, accents dropped ("Crème brûlée" is `creme`, `brulee`).
pub fn words(text: &str) -> Vec<String> {
    let folded: String = text.nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect();
    folded.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

/// Whether `text` holds every one of `wanted` (already `words`).
pub fn holds_all(text: &str, wanted: &[String]) -> bool {
    let have = words(text);
    wanted.iter().all(|w| have.contains(w))
}

/// A search as the caller asked it (`GET /admin/search`, `GET /search`), before it is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub after: Option<String>,
}

/// A checked search: at least one of words, contact or user; a period of at most `MAX_PERIOD`
/// (the year before `to` when `from` is not given; `to` is now when not given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filter {
    pub words: Vec<String>,
    pub contact: Option<Phone>,
    pub user: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub limit: usize,
    #[serde(skip)]
    pub after: Option<Cursor>,
}

impl Filter {
    /// `ask` checked at `now`: `Invalid` (422) names what is wrong.
    pub fn of(ask: &Ask, now: OffsetDateTime) -> Result<Filter, DomainError> {
        let invalid = |m: String| DomainError::Invalid(m);
        let words = ask.q.as_deref().map(words).unwrap_or_default();
        if words.len() > MAX_WORDS {
            return Err(invalid(format!("a search takes at most {MAX_WORDS} words")));
        }
        let contact = ask.contact.as_deref().filter(|c| !c.trim().is_empty()).map(Phone::parse).transpose();
        let contact = contact.map_err(|e| invalid(format!("contact: {e}")))?;
        let user = ask.user.as_deref().map(str::trim).filter(|u| !u.is_empty()).map(UserId::from);
        if words.is_empty() && contact.is_none() && user.is_none() {
            return Err(invalid("a search needs words (q), a contact or a user".into()));
        }
        let (from, to) = period(&ask.from, &ask.to, now)?;
        let limit = ask.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid(format!("limit is from 1 to {MAX_LIMIT}")));
        }
        let after = ask.after.as_deref().map(Cursor::parse).transpose()?;
        Ok(Filter { words, contact, user, from, to, limit, after })
    }

    /// Whether a hit at `at` is inside the period and past the cursor.
    pub fn admits(&self, hit: &Hit) -> bool {
        hit.at >= self.from && hit.at <= self.to && self.after.as_ref().is_none_or(|c| c.before(hit))
    }
}

/// `from` and `to` (RFC 3339) as a period of at most `MAX_PERIOD`: `to` is `now` when not given,
/// `from` the `MAX_PERIOD` before `to`.
fn period(
    from: &Option<String>,
    to: &Option<String>,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), DomainError> {
    let invalid = |m: String| DomainError::Invalid(m);
    let time = |name: &str, v: &Option<String>| -> Result<Option<OffsetDateTime>, DomainError> {
        v.as_deref()
            .map(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339))
            .transpose()
            .map_err(|_| invalid(format!("{name} is not an RFC 3339 time")))
    };
    let to = time("to", to)?.unwrap_or(now);
    let from = time("from", from)?.unwrap_or(to - MAX_PERIOD);
    if from > to {
        return Err(invalid("from is after to".into()));
    }
    if to - from > MAX_PERIOD {
        return Err(invalid(format!("the period may be at most {} days", MAX_PERIOD.whole_days())));
    }
    Ok((from, to))
}

/// An export as the officer asked it (`POST /admin/exports`), before it is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportAsk {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
}

/// What an export covers: the records of a period (at most `MAX_PERIOD`), of the threads its
/// contact, participant or thread narrow it to (every thread with records in the period when
/// none does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Phone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
}

impl Scope {
    /// `ask` checked at `now`: it must name at least a period, a contact, a user or a thread.
    pub fn of(ask: &ExportAsk, now: OffsetDateTime) -> Result<Scope, DomainError> {
        let invalid = |m: String| DomainError::Invalid(m);
        let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let (contact, user, thread) = (given(&ask.contact), given(&ask.user), given(&ask.conversation_id));
        if [&ask.from, &ask.to].iter().all(|v| given(v).is_none())
            && contact.is_none()
            && user.is_none()
            && thread.is_none()
        {
            return Err(invalid("an export needs a period (from, to), a contact, a user or a conversation_id".into()));
        }
        let contact = contact.as_deref().map(Phone::parse).transpose().map_err(|e| invalid(format!("contact: {e}")))?;
        let (from, to) = period(&ask.from, &ask.to, now)?;
        Ok(Scope { from, to, contact, user: user.map(UserId::from), conversation_id: thread.map(ConversationId::from) })
    }
}

/// One message found: the record's thread, message and time, who sent it, its kind, and its
/// text as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub sender: String,
    pub kind: String,
    pub text: Option<String>,
    /// The record's place in its thread's chain (0 for a search of the threads themselves).
    #[serde(skip)]
    pub seq: u64,
}

impl Hit {
    /// Newest first: by time (to the millisecond), then thread, then message, all descending.
    pub fn order(a: &Hit, b: &Hit) -> std::cmp::Ordering {
        b.place().cmp(&a.place())
    }

    fn place(&self) -> (i64, &ConversationId, &MessageId) {
        (millis(self.at), &self.conversation_id, &self.message_id)
    }

    pub fn cursor(&self) -> Cursor {
        Cursor {
            at_ms: millis(self.at),
            conversation_id: self.conversation_id.clone(),
            message_id: self.message_id.clone(),
        }
    }
}

/// Where the next page starts: just after (older than) the last hit given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at_ms: i64,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
}

/// `t` in whole milliseconds since the epoch: the precision results are ordered at.
pub fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Cursor {
    /// `<ms>.<message>.<thread>` (ids hold no dot), opaque to the caller.
    pub fn parse(s: &str) -> Result<Cursor, DomainError> {
        let bad = || DomainError::Invalid("after is not a cursor this search gave".into());
        let mut parts = s.splitn(3, '.');
        let at_ms = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let message = parts.next().filter(|m| !m.is_empty()).ok_or_else(bad)?;
        let thread = parts.next().filter(|t| !t.is_empty()).ok_or_else(bad)?;
        Ok(Cursor { at_ms, conversation_id: thread.into(), message_id: message.into() })
    }

    /// Whether `hit` comes after this cursor, newest first.
    pub fn before(&self, hit: &Hit) -> bool {
        hit.place() < (self.at_ms, &self.conversation_id, &self.message_id)
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.at_ms, self.message_id, self.conversation_id)
    }
}

/// A page of hits, newest first, and where the next starts when there may be more.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub results: Vec<Hit>,
    pub next: Option<String>,
}

impl Page {
    /// The first `limit` of `hits` (sorted newest first); `next` when more were found.
    pub fn of(mut hits: Vec<Hit>, limit: usize) -> Page {
        hits.sort_by(Hit::order);
        let more = hits.len() > limit;
        hits.truncate(limit);
        let next = if more { hits.last().map(|h| h.cursor().to_string()) } else { None };
        Page { results: hits, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-07 12:00 UTC);

    fn ask(q: &str) -> Ask {
        Ask { q: Some(q.into()), ..Ask::default() }
    }

    #[test]
    fn words_fold_case_and_accents_and_split_on_anything_else() {
        assert_eq!(words("Crème BRÛLÉE, s'il-vous-plaît!"), vec!["creme", "brulee", "s", "il", "vous", "plait"]);
        assert_eq!(words("Überweisung 4.500€ an Zoë"), vec!["uberweisung", "4", "500", "an", "zoe"]);
        assert!(words(" ,.;!? ").is_empty());
        assert!(holds_all("Meet at the CAFÉ tomorrow", &words("cafe meet")));
        assert!(!holds_all("Meet at the café", &words("cafe tomorrow")), "every word must match");
        assert!(!holds_all("cafeteria", &words("cafe")), "whole words, not parts");
    }

    #[test]
    fn a_filter_needs_something_to_look_for_and_a_period_within_the_limit() {
        for empty in [Ask::default(), ask(""), ask(" ?! ")] {
            assert!(matches!(Filter::of(&empty, NOW), Err(DomainError::Invalid(m)) if m.contains("needs words")));
        }
        let f = Filter::of(&ask("Bonjour"), NOW).unwrap();
        assert_eq!(
            (f.words.clone(), f.to, f.from, f.limit),
            (vec!["bonjour".into()], NOW, NOW - MAX_PERIOD, DEFAULT_LIMIT)
        );
        let contact = Filter::of(&Ask { contact: Some("+447700900123".into()), ..Ask::default() }, NOW).unwrap();
        assert_eq!(contact.contact.unwrap().digits(), "447700900123");
        let long = Ask { from: Some("2020-01-01T00:00:00Z".into()), ..ask("x") };
        assert!(matches!(Filter::of(&long, NOW), Err(DomainError::Invalid(m)) if m.contains("at most 366 days")));
        assert!(Scope::of(&ExportAsk::default(), NOW).is_err(), "an export of everything is refused");
        let thread = ExportAsk { conversation_id: Some("01C".into()), ..ExportAsk::default() };
        assert_eq!(Scope::of(&thread, NOW).unwrap().from, NOW - MAX_PERIOD);
        let long = ExportAsk { from: Some("2020-01-01T00:00:00Z".into()), ..ExportAsk::default() };
        assert!(matches!(Scope::of(&long, NOW), Err(DomainError::Invalid(m)) if m.contains("366")));
        for bad in [
            Ask { from: Some("yesterday".into()), ..ask("x") },
            Ask { to: Some("2026-12-01T00:00:00Z".into()), from: Some("2026-12-02T00:00:00Z".into()), ..ask("x") },
            Ask { contact: Some("call me".into()), ..Ask::default() },
            Ask { limit: Some(0), ..ask("x") },
            Ask { limit: Some(MAX_LIMIT + 1), ..ask("x") },
            Ask { after: Some("nonsense".into()), ..ask("x") },
            ask(&"w ".repeat(MAX_WORDS + 1)),
        ] {
            assert!(matches!(Filter::of(&bad, NOW), Err(DomainError::Invalid(_))), "{bad:?}");
        }
    }

    fn hit(thread: &str, seq: u64, at: OffsetDateTime) -> Hit {
        Hit {
            conversation_id: thread.into(),
            message_id: format!("m{seq}").into(),
            at,
            sender: "u1".into(),
            kind: "text".into(),
            text: None,
            seq,
        }
    }

    #[test]
    fn pages_run_newest_first_and_the_cursor_resumes_after_the_last_hit_without_repeats() {
        let t = datetime!(2026-12-01 10:00 UTC);
        let all =
            vec![hit("a", 1, t), hit("b", 1, t), hit("a", 2, t + Duration::SECOND), hit("a", 3, t - Duration::SECOND)];
        let first = Page::of(all.clone(), 2);
        let order: Vec<_> = first.results.iter().map(|h| (h.conversation_id.to_string(), h.seq)).collect();
        assert_eq!(order, vec![("a".into(), 2), ("b".into(), 1)]);
        assert_eq!(first.next.as_deref(), Some("1796119200000.m1.b"));
        let cursor = Cursor::parse(first.next.as_deref().unwrap()).unwrap();
        let mut filter = Filter::of(&ask("x"), NOW).unwrap();
        filter.after = Some(cursor);
        let rest: Vec<Hit> = all.into_iter().filter(|h| filter.admits(h)).collect();
        let second = Page::of(rest, 2);
        let order: Vec<_> = second.results.iter().map(|h| (h.conversation_id.to_string(), h.seq)).collect();
        assert_eq!(order, vec![("a".into(), 1), ("a".into(), 3)]);
        assert!(second.next.is_none());
    }
}
