//! The compliance archive's records and their hash chain: each record of a thread holds the
//! SHA-256 of the one before, so an edit or a deletion is found by re-computing the chain.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::domain::{ConversationId, MessageId, Sender};

/// The hash before a thread's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record records. Stored, hashed and exported as its snake_case name; a name this
/// build does not know is kept as written, so every stored chain still reads and verifies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum ArchiveKind {
    /// A message as first shown (its own record, written by the commit that creates it).
    Message,
    /// Consent asked, given or withdrawn.
    Consent,
    /// What data-loss prevention redacted or blocked.
    Dlp,
    ConversationStarted,
    /// An agent took a contact-started thread.
    Claimed,
    /// Someone added, removed, left or handed over.
    Participants,
    /// Held messages went out.
    QueueRelease,
    /// Its sender took a message back before it left.
    Recalled,
    Other(String),
}

impl ArchiveKind {
    pub fn as_str(&self) -> &str {
        match self {
            ArchiveKind::Message => "message",
            ArchiveKind::Consent => "consent",
            ArchiveKind::Dlp => "dlp",
            ArchiveKind::ConversationStarted => "conversation_started",
            ArchiveKind::Claimed => "claimed",
            ArchiveKind::Participants => "participants",
            ArchiveKind::QueueRelease => "queue_release",
            ArchiveKind::Recalled => "recalled",
            ArchiveKind::Other(name) => name,
        }
    }
}

impl From<String> for ArchiveKind {
    fn from(name: String) -> ArchiveKind {
        match name.as_str() {
            "message" => ArchiveKind::Message,
            "consent" => ArchiveKind::Consent,
            "dlp" => ArchiveKind::Dlp,
            "conversation_started" => ArchiveKind::ConversationStarted,
            "claimed" => ArchiveKind::Claimed,
            "participants" => ArchiveKind::Participants,
            "queue_release" => ArchiveKind::QueueRelease,
            "recalled" => ArchiveKind::Recalled,
            _ => ArchiveKind::Other(name),
        }
    }
}

impl Serialize for ArchiveKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for ArchiveKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something to archive, as a use case reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveEvent {
    pub conversation_id: ConversationId,
    pub kind: ArchiveKind,
    pub actor: Sender,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub message_id: Option<MessageId>,
    pub wamid: Option<String>,
    pub text_as_sent: Option<String>,
    pub text_as_written: Option<String>,
    #[serde(default)]
    pub details: Value,
}

/// An archived event: its place in the thread's chain and the hashes that link it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    pub seq: u64,
    #[serde(flatten)]
    pub event: ArchiveEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// What the hash covers: everything but the hash itself, in a fixed order.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    prev_hash: &'a str,
    event: &'a ArchiveEvent,
}

pub fn hash(seq: u64, prev_hash: &str, event: &ArchiveEvent) -> String {
    let body = serde_json::to_vec(&Hashed { seq, prev_hash, event }).unwrap_or_default();
    hex::encode(Sha256::digest(&body))
}

/// A chain's last record. It is kept on the thread itself, so every commit that archives
/// moves it under the thread's own condition: a record can be neither skipped, forked nor cut
/// from the end unseen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

impl ArchiveRecord {
    pub fn head(&self) -> ChainHead {
        ChainHead { seq: self.seq, hash: self.hash.clone() }
    }
}

/// Links `event` after the record `prev` (or first in its thread).
pub fn link(prev: Option<&ChainHead>, event: ArchiveEvent) -> ArchiveRecord {
    let (seq, prev_hash) = match prev {
        Some(h) => (h.seq + 1, h.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    let hash = hash(seq, &prev_hash, &event);
    ArchiveRecord { seq, event, prev_hash, hash }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub valid: bool,
    pub records: usize,
    /// The sequence number of the first record that does not check out.
    pub first_break: Option<u64>,
    /// The chain against its last anchored head, where one was anchored.
    pub anchor: Option<AnchorCheck>,
}

impl Verification {
    fn of(valid: bool, records: usize, first_break: Option<u64>) -> Verification {
        Verification { valid, records, first_break, anchor: None }
    }
}

/// Re-computes the chain of one thread's records (in order).
pub fn verify(records: &[ArchiveRecord]) -> Verification {
    let mut prev_hash = GENESIS.to_string();
    for (i, r) in records.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        if r.seq != expected_seq || r.prev_hash != prev_hash || r.hash != hash(r.seq, &r.prev_hash, &r.event) {
            return Verification::of(false, records.len(), Some(expected_seq.min(r.seq)));
        }
        prev_hash = r.hash.clone();
    }
    Verification::of(true, records.len(), None)
}

/// `verify`, and the chain's end against the head its commits recorded: records removed from
/// the end (or a head with no records) break the chain at the first missing sequence number.
pub fn verify_with_head(records: &[ArchiveRecord], head: Option<&ChainHead>) -> Verification {
    let v = verify(records);
    if !v.valid {
        return v;
    }
    let last = records.last().map(ArchiveRecord::head);
    match head {
        Some(h) if last.as_ref() != Some(h) => Verification::of(false, records.len(), Some(records.len() as u64 + 1)),
        _ => v,
    }
}

/// Many threads' chain heads at one moment, stored write-once (on AWS an S3 bucket under Object
/// Lock in compliance mode). A record at or before an anchored head cannot then be changed,
/// removed or re-hashed, not even by someone who rewrites the whole table, without the
/// verifier seeing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Each thread's newest head among those given, by thread id.
    pub heads: BTreeMap<ConversationId, ChainHead>,
}

impl Anchor {
    pub fn of(heads: impl IntoIterator<Item = (ConversationId, ChainHead)>, at: OffsetDateTime) -> Anchor {
        let mut newest: BTreeMap<ConversationId, ChainHead> = BTreeMap::new();
        for (thread, head) in heads {
            if newest.get(&thread).is_none_or(|h| h.seq < head.seq) {
                newest.insert(thread, head);
            }
        }
        Anchor { at, heads: newest }
    }

    /// The stored document, and its name: by time (a reader lists one day's anchors) and then
    /// by content.
    pub fn document(&self) -> (String, Vec<u8>) {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let t = self.at;
        let name = format!(
            "anchors/{:04}/{:02}/{:02}/{:02}{:02}{:02}Z-{}.json",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            &hex::encode(Sha256::digest(&body))[..16]
        );
        (name, body)
    }
}

/// Whether a thread's records (in order, from the first) hold `head` at its place.
pub fn holds(records: &[ArchiveRecord], head: &ChainHead) -> bool {
    head.seq >= 1 && records.get(head.seq as usize - 1).is_some_and(|r| r.seq == head.seq && r.hash == head.hash)
}

/// What the verifier found against a thread's last anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnchorCheck {
    /// The anchor's name in the write-once store.
    pub object: String,
    /// The head that anchor holds for the thread: `None` when the anchor, or the thread in it,
    /// is not there (the record of where it was anchored is then not to be trusted).
    pub head: Option<ChainHead>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    /// The chain holds that head at its place.
    pub matches: bool,
}

/// `v` (a chain's verification) against the head `anchor` holds for thread `thread`, read from
/// the write-once object `object`: the record at the anchored place must carry the anchored
/// hash, so the chain up to there is the one anchored.
pub fn check_anchor(
    mut v: Verification,
    records: &[ArchiveRecord],
    thread: &ConversationId,
    object: String,
    anchor: Option<&Anchor>,
) -> Verification {
    let head = anchor.and_then(|a| a.heads.get(thread)).cloned();
    let matches = head.as_ref().is_some_and(|h| holds(records, h));
    if !matches {
        v.valid = false;
        let at = head.as_ref().map_or(1, |h| h.seq.max(1));
        v.first_break = Some(v.first_break.map_or(at, |b| b.min(at)));
    }
    v.anchor = Some(AnchorCheck { object, head, at: anchor.map(|a| a.at), matches });
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_kind_is_stored_as_the_name_it_always_had_and_an_unknown_one_as_written() {
        use ArchiveKind::*;
        for (kind, name) in [
            (Message, "message"),
            (Consent, "consent"),
            (Dlp, "dlp"),
            (ConversationStarted, "conversation_started"),
            (Claimed, "claimed"),
            (Participants, "participants"),
            (QueueRelease, "queue_release"),
            (Recalled, "recalled"),
        ] {
            assert_eq!(serde_json::to_value(&kind).unwrap(), serde_json::json!(name));
            assert_eq!(serde_json::from_value::<ArchiveKind>(serde_json::json!(name)).unwrap(), kind);
            assert_eq!(kind.to_string(), name);
        }
        let later: ArchiveKind = serde_json::from_value(serde_json::json!("retention_hold")).unwrap();
        assert_eq!(later, Other("retention_hold".into()));
        assert_eq!(serde_json::to_value(&later).unwrap(), serde_json::json!("retention_hold"));
    }

    #[test]
    fn a_record_written_with_string_kinds_and_actors_still_verifies() {
        // As a record was stored before kinds and actors had types: the same bytes, the same hash.
        let e = ArchiveEvent {
            conversation_id: "c".into(),
            kind: ArchiveKind::Consent,
            actor: Sender::Contact,
            at: datetime!(2026-09-20 12:00 UTC),
            message_id: None,
            wamid: Some("wamid.1".into()),
            text_as_sent: None,
            text_as_written: None,
            details: serde_json::json!({"consent": "opted_in"}),
        };
        let stored = format!(
            r#"{{"seq":1,"prev_hash":"{GENESIS}","event":{{"conversation_id":"c","kind":"consent","actor":"contact","at":"2026-09-20T12:00:00Z","message_id":null,"wamid":"wamid.1","text_as_sent":null,"text_as_written":null,"details":{{"consent":"opted_in"}}}}}}"#
        );
        let expected = hex::encode(Sha256::digest(stored.as_bytes()));
        assert_eq!(hash(1, GENESIS, &e), expected);
    }

    fn event(text: &str) -> ArchiveEvent {
        ArchiveEvent {
            conversation_id: "c".into(),
            kind: ArchiveKind::Message,
            actor: "u1".into(),
            at: datetime!(2026-09-20 12:00 UTC),
            message_id: Some("m".into()),
            wamid: None,
            text_as_sent: Some(text.into()),
            text_as_written: Some(text.into()),
            details: Value::Null,
        }
    }

    fn chain(n: usize) -> Vec<ArchiveRecord> {
        let mut out: Vec<ArchiveRecord> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(ArchiveRecord::head);
            let r = link(prev.as_ref(), event(&format!("m{i}")));
            out.push(r);
        }
        out
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert_eq!(verify(&chain(5)), Verification { valid: true, records: 5, first_break: None, anchor: None });
        assert!(verify(&[]).valid);
    }

    #[test]
    fn an_edit_is_found_at_the_edited_record() {
        let mut c = chain(5);
        c[2].event.text_as_sent = Some("changed".into());
        assert_eq!(verify(&c).first_break, Some(3));
    }

    #[test]
    fn a_deletion_or_a_rehashed_edit_breaks_the_next_link() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c).first_break, Some(2));
        let mut d = chain(5);
        d[1].event.text_as_sent = Some("forged".into());
        d[1].hash = hash(d[1].seq, &d[1].prev_hash, &d[1].event);
        assert_eq!(verify(&d).first_break, Some(3), "the forger must rewrite every later record");
    }

    #[test]
    fn records_cut_from_the_end_are_found_by_the_head() {
        let c = chain(5);
        let head = c[4].head();
        assert!(verify_with_head(&c, Some(&head)).valid);
        assert!(verify(&c[..3]).valid, "the chain alone cannot see a cut end");
        assert_eq!(verify_with_head(&c[..3], Some(&head)).first_break, Some(4));
        assert_eq!(verify_with_head(&[], Some(&head)).first_break, Some(1));
    }

    #[test]
    fn records_round_trip_through_json() {
        let c = chain(2);
        let line = serde_json::to_string(&c[1]).unwrap();
        let back: ArchiveRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, c[1]);
        assert!(verify(&[c[0].clone(), back]).valid);
    }

    #[test]
    fn an_anchor_keeps_each_threads_newest_head_and_names_itself_by_time_and_content() {
        let c = chain(3);
        let at = datetime!(2026-12-03 21:05:09 UTC);
        let a = Anchor::of([("c".into(), c[2].head()), ("c".into(), c[0].head()), ("d".into(), c[1].head())], at);
        assert_eq!(a.heads["c"], c[2].head());
        assert_eq!(a.heads["d"], c[1].head());
        let (name, body) = a.document();
        assert!(name.starts_with("anchors/2026/12/03/210509Z-") && name.ends_with(".json"), "{name}");
        assert_eq!(serde_json::from_slice::<Anchor>(&body).unwrap(), a);
        let (other, _) = Anchor::of([("c".into(), c[1].head())], at).document();
        assert_ne!(name, other, "two anchors of one second have two names");
    }

    #[test]
    fn a_chain_rewritten_before_its_anchor_is_found_though_it_verifies_alone() {
        let c = chain(5);
        let anchor = Anchor::of([("c".into(), c[3].head())], datetime!(2026-12-03 21:00 UTC));
        let ok = check_anchor(verify(&c), &c, &"c".into(), "a.json".into(), Some(&anchor));
        assert!(ok.valid && ok.anchor.as_ref().unwrap().matches, "{ok:?}");
        // Someone with the table rewrites record 2 and re-hashes every record after it.
        let mut forged = vec![c[0].clone()];
        for (i, r) in c.iter().enumerate().skip(1) {
            let mut e = r.event.clone();
            if i == 1 {
                e.text_as_sent = Some("forged".into());
            }
            forged.push(link(forged.last().map(ArchiveRecord::head).as_ref(), e));
        }
        assert!(verify(&forged).valid, "the chain alone cannot see it");
        let v = check_anchor(verify(&forged), &forged, &"c".into(), "a.json".into(), Some(&anchor));
        assert!(!v.valid && !v.anchor.as_ref().unwrap().matches);
        assert_eq!(v.first_break, Some(4));
        // Records cut back to before the anchored head.
        let cut = check_anchor(verify(&c[..2]), &c[..2], &"c".into(), "a.json".into(), Some(&anchor));
        assert_eq!((cut.valid, cut.first_break), (false, Some(4)));
        // The anchor the thread's record names is not there, or does not hold the thread.
        let gone = check_anchor(verify(&c), &c, &"c".into(), "gone.json".into(), None);
        assert_eq!((gone.valid, gone.first_break, gone.anchor.unwrap().head), (false, Some(1), None));
        let other = check_anchor(verify(&c), &c, &"x".into(), "a.json".into(), Some(&anchor));
        assert!(!other.valid);
    }
}
