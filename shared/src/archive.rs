//! The compliance archive's records and their chains. Each thread's records form one chain:
//! each holds the keyed hash (HMAC-SHA256 under the archive key) of the one before, so an edit,
//! a deletion or a forged record is found by anyone holding the key, and by no one without it.
//! Records are written by the archiver alone (`usecases::archiver`), batched into write-once
//! objects; each names the item of the thread that carried its change and that item's count,
//! so a gap between what was committed and what was archived is found too.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use serde_json::json;

use crate::domain::{Body, ConversationId, Message, MessageId, Notice, Sender};

/// The chain that records the record's own uses: who searched, exported or held what, when. It
/// is archived, linked and verified as a thread's chain is, under this id (no thread's: theirs
/// are ULIDs).
pub const RECORD_USE: &str = "record-use";

/// The hash before a thread's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record records. Stored, hashed and exported as its snake_case name; a name this
/// build does not know is kept as written, so every stored chain still reads and verifies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum ArchiveKind {
    /// A message as first shown (its own record, written by the commit that creates it).
    Message,
    /// A status Meta reported for an outbound message.
    Status,
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
    /// A contact's file, as kept: our id of it, its type, size and SHA-256.
    Media,
    /// A use of the record itself (on the `RECORD_USE` chain): a search, an export, a hold.
    RecordUse,
    Other(String),
}

impl ArchiveKind {
    pub fn as_str(&self) -> &str {
        match self {
            ArchiveKind::Message => "message",
            ArchiveKind::Status => "status",
            ArchiveKind::Consent => "consent",
            ArchiveKind::Dlp => "dlp",
            ArchiveKind::ConversationStarted => "conversation_started",
            ArchiveKind::Claimed => "claimed",
            ArchiveKind::Participants => "participants",
            ArchiveKind::QueueRelease => "queue_release",
            ArchiveKind::Recalled => "recalled",
            ArchiveKind::Media => "media",
            ArchiveKind::RecordUse => "record_use",
            ArchiveKind::Other(name) => name,
        }
    }
}

impl From<String> for ArchiveKind {
    fn from(name: String) -> ArchiveKind {
        match name.as_str() {
            "message" => ArchiveKind::Message,
            "status" => ArchiveKind::Status,
            "consent" => ArchiveKind::Consent,
            "dlp" => ArchiveKind::Dlp,
            "conversation_started" => ArchiveKind::ConversationStarted,
            "claimed" => ArchiveKind::Claimed,
            "participants" => ArchiveKind::Participants,
            "queue_release" => ArchiveKind::QueueRelease,
            "recalled" => ArchiveKind::Recalled,
            "media" => ArchiveKind::Media,
            "record_use" => ArchiveKind::RecordUse,
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
    // What an event has not is absent, not null: it rides in the item that carries it, and an
    // item that stays under 1 KB costs half a write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_as_sent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_as_written: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

/// The archive record of a message as it was stored (the text as sent).
pub fn message_event(m: &Message) -> ArchiveEvent {
    let text = match &m.body {
        Body::Notice(n) => Some(n.render("en")),
        Body::Template(t) => Some(format!("[template {} ({})] {}", t.name, t.language, t.params.join(" | "))),
        Body::Reaction(r) => r.emoji.clone(),
        Body::Unsupported { type_name, .. } => Some(format!("[unsupported: {type_name}]")),
        Body::Contacts(_) => m.body.card_names(),
        Body::Location(l) => Some(l.line()),
        Body::Interactive(i) => Some(i.title.clone()),
        Body::Text { .. } | Body::File { .. } => m.body.as_sent(),
    };
    ArchiveEvent {
        conversation_id: m.conversation_id.clone(),
        kind: ArchiveKind::Message,
        actor: m.sender.clone(),
        at: m.created_at,
        message_id: Some(m.id.clone()),
        wamid: m.wamid.clone(),
        text_as_written: m.body.words().map(str::to_string),
        text_as_sent: text,
        details: json!({
            "direction": m.direction,
            "kind": m.body.kind(),
            "status": m.status.public(),
            "system": m.system,
            "notice": m.body.notice().map(Notice::code),
            "media_id": m.body.media_id(),
            "file": m.body.file().map(|(_, f)| f),
            "location": m.body.location(),
            "contacts": m.body.contacts(),
            "interactive": m.body.interactive(),
            "unsupported": m.body.unsupported().map(|(t, c)| json!({"type": t, "content": c})),
            "reply_to": m.reply_to,
            "dlp_rules": m.dlp_rules,
        }),
    }
}

/// What search finds of a record: a message's, by the text it showed (`text_as_sent`: what DLP
/// left of it, never the original).
pub fn hit(r: &ArchiveRecord) -> Option<crate::domain::search::Hit> {
    if r.event.kind != ArchiveKind::Message {
        return None;
    }
    Some(crate::domain::search::Hit {
        conversation_id: r.event.conversation_id.clone(),
        message_id: r.event.message_id.clone()?,
        at: r.event.at,
        sender: r.event.actor.to_string(),
        kind: r.event.details.get("kind").and_then(Value::as_str).unwrap_or("text").to_string(),
        text: r.event.text_as_sent.clone(),
        seq: r.seq,
    })
}

/// A journaled event as the item that carried it holds it in the stream: in full, or, for a
/// message's own record, a mark that the item itself is the event (it says the same, and an
/// item that stays under a write unit costs half).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
// Built and read one at a time, on the way to and from the stream: boxing would only allocate.
#[allow(clippy::large_enum_variant)]
pub enum Carried {
    Itself { source: Source, itself: bool },
    Event(Journaled),
}

impl Carried {
    /// `j` as `carrier` (when it is a message) carries it.
    pub fn of(j: &Journaled, carrier: Option<&Message>) -> Carried {
        match carrier {
            Some(m) if message_event(m) == j.event => Carried::Itself { source: j.source.clone(), itself: true },
            _ => Carried::Event(j.clone()),
        }
    }

    /// The journaled event again, given the item that carried it.
    pub fn journaled(self, carrier: Option<&Message>) -> Option<Journaled> {
        match self {
            Carried::Event(j) => Some(j),
            Carried::Itself { source, .. } => carrier.map(|m| Journaled { source, event: message_event(m) }),
        }
    }
}

/// The item of its thread that carried a change (its sort key: `META` for the thread,
/// `MSG#<id>` for a message), and that item's count of changes carried so far: a thread's
/// items, each counting what it carried, say what its archive must hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Source {
    pub item: String,
    pub n: u64,
}

/// An event as committed: the item that carried it and its place among that item's changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journaled {
    pub source: Source,
    pub event: ArchiveEvent,
}

/// An archived event: its place in the thread's chain and the hashes that link it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    pub seq: u64,
    #[serde(flatten)]
    pub event: ArchiveEvent,
    pub source: Source,
    pub prev_hash: String,
    pub hash: String,
}

/// What the hash covers: everything but the hash itself, in a fixed order.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    prev_hash: &'a str,
    source: &'a Source,
    event: &'a ArchiveEvent,
}

/// The keyed hash of a record: HMAC-SHA256 under the archive key, in lower-case hex.
pub fn hash(key: &[u8], seq: u64, prev_hash: &str, source: &Source, event: &ArchiveEvent) -> String {
    let body = serde_json::to_vec(&Hashed { seq, prev_hash, source, event }).unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(&body);
    hex::encode(mac.finalize().into_bytes())
}

/// A chain's last record.
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

/// Links `event` (carried by `source`) after the record `prev` (or first in its thread).
pub fn link(key: &[u8], prev: Option<&ChainHead>, j: Journaled) -> ArchiveRecord {
    let (seq, prev_hash) = match prev {
        Some(h) => (h.seq + 1, h.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    let hash = hash(key, seq, &prev_hash, &j.source, &j.event);
    ArchiveRecord { seq, event: j.event, source: j.source, prev_hash, hash }
}

/// A place in the change stream: a decimal number that only grows (DynamoDB Streams' sequence
/// numbers run to 40 digits; the embedded feed's row numbers are small), compared as a number.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Position(pub String);

impl PartialEq for Position {
    fn eq(&self, other: &Position) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Position {}

impl Position {
    pub fn of(n: u64) -> Position {
        Position(n.to_string())
    }

    /// As a number, where it fits one (the embedded feed's).
    pub fn number(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl Ord for Position {
    fn cmp(&self, other: &Position) -> Ordering {
        let digits = |p: &Position| p.0.trim_start_matches('0').to_string();
        let (a, b) = (digits(self), digits(other));
        a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Position) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where some of a thread's records are: one write-once object holds records `first..=last`,
/// the last of them `head`, archived from the stream up to `position`. The archiver writes one
/// per thread per batch, and only where no other starts at `first` (a second writer of the
/// chain is refused); the thread's last one is its chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub conversation_id: ConversationId,
    pub first: u64,
    pub last: u64,
    pub head: String,
    pub position: Position,
    pub object: String,
}

impl Segment {
    pub fn head(&self) -> ChainHead {
        ChainHead { seq: self.last, hash: self.head.clone() }
    }
}

/// Where batches of threads' records go (the Athena table's location, and what the retention
/// sweep erases), and batches of the record's own uses (kept: they prove what was erased).
pub const RECORDS: &str = "records";
pub const USES: &str = "uses";

/// A batch of records as one write-once object: JSON Lines, named by the day it was written
/// (a reader lists one day's batches, retention counts from it) and then by its content, so
/// a batch written again is the same object, and two batches are never one. The `RECORD_USE`
/// chain's records go under `USES`, every thread's under `RECORDS`.
pub fn batch(records: &[ArchiveRecord], at: OffsetDateTime) -> (String, Vec<u8>) {
    let uses = records.iter().any(|r| r.event.conversation_id.as_str() == RECORD_USE);
    let mut body = Vec::new();
    for r in records {
        body.extend(serde_json::to_vec(r).unwrap_or_default());
        body.push(b'\n');
    }
    let name = format!(
        "{}/{:04}/{:02}/{:02}/{:02}{:02}{:02}Z-{}.jsonl",
        if uses { USES } else { RECORDS },
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        &hex::encode(Sha256::digest(&body))[..20]
    );
    (name, body)
}

/// When the batch object `name` was written (to the second, on the connector's clock): what
/// its retention counts from. `None` for a name `batch` did not make.
pub fn written_at(name: &str) -> Option<OffsetDateTime> {
    let mut parts = name.split('/').skip(1);
    let (y, m, d, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let date = time::Date::from_calendar_date(y.parse().ok()?, m.parse::<u8>().ok()?.try_into().ok()?, d.parse().ok()?)
        .ok()?;
    let hms = rest.get(..6)?;
    let at = time::Time::from_hms(hms[..2].parse().ok()?, hms[2..4].parse().ok()?, hms[4..].parse().ok()?).ok()?;
    Some(date.with_time(at).assume_utc())
}

/// A run of one thread's records that the retention sweep erased: `first..=last`, linked after
/// `prev_hash`, the last of them `hash`; and the changes they held (item, `n`s), so that a
/// verification still finds the chain whole and every change accounted for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    pub conversation_id: ConversationId,
    pub first: u64,
    pub last: u64,
    pub prev_hash: String,
    pub hash: String,
    pub sources: BTreeMap<String, Vec<u64>>,
}

/// The runs of each thread's records among `records` (one object's), in chain order.
pub fn erased_runs(records: &[ArchiveRecord]) -> Vec<Erased> {
    let mut sorted: Vec<&ArchiveRecord> = records.iter().collect();
    sorted.sort_by(|a, b| (&a.event.conversation_id, a.seq).cmp(&(&b.event.conversation_id, b.seq)));
    let mut runs: Vec<Erased> = Vec::new();
    for r in sorted {
        match runs.last_mut() {
            Some(run) if run.conversation_id == r.event.conversation_id && run.last + 1 == r.seq => {
                run.last = r.seq;
                run.hash = r.hash.clone();
                run.sources.entry(r.source.item.clone()).or_default().push(r.source.n);
            }
            Some(run) if run.conversation_id == r.event.conversation_id && run.last >= r.seq => {}
            _ => runs.push(Erased {
                conversation_id: r.event.conversation_id.clone(),
                first: r.seq,
                last: r.seq,
                prev_hash: r.prev_hash.clone(),
                hash: r.hash.clone(),
                sources: BTreeMap::from([(r.source.item.clone(), vec![r.source.n])]),
            }),
        }
    }
    runs
}

/// The records of a batch object; `None` when it is not one (a byte changed in its JSON).
pub fn parse_batch(body: &[u8]) -> Option<Vec<ArchiveRecord>> {
    let text = std::str::from_utf8(body).ok()?;
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).ok()).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub valid: bool,
    pub records: usize,
    /// The sequence number of the first record that does not check out.
    pub first_break: Option<u64>,
    /// Changes the thread's items carried that its chain does not hold (the items' counts
    /// against the sources of its records).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<Source>,
}

impl Verification {
    fn of(valid: bool, records: usize, first_break: Option<u64>) -> Verification {
        Verification { valid, records, first_break, missing: Vec::new() }
    }
}

/// Re-computes the chain of one thread's records (in order) under `key`.
pub fn verify(key: &[u8], records: &[ArchiveRecord]) -> Verification {
    verify_across(key, records, &[])
}

/// `verify`, where the retention sweep erased the runs `erased` (on the record of use): a run
/// stands in for its records when it links where they did.
pub fn verify_across(key: &[u8], records: &[ArchiveRecord], erased: &[Erased]) -> Verification {
    let mut prev_hash = GENESIS.to_string();
    let mut expected_seq = 1;
    for r in records {
        // Records the sweep erased before this one: runs that link from where the chain is to it.
        while r.seq > expected_seq {
            let Some(run) = erased.iter().find(|e| e.first == expected_seq && e.prev_hash == prev_hash) else { break };
            (expected_seq, prev_hash) = (run.last + 1, run.hash.clone());
        }
        if r.seq != expected_seq
            || r.prev_hash != prev_hash
            || r.hash != hash(key, r.seq, &r.prev_hash, &r.source, &r.event)
        {
            return Verification::of(false, records.len(), Some(expected_seq.min(r.seq)));
        }
        prev_hash = r.hash.clone();
        expected_seq += 1;
    }
    Verification::of(true, records.len(), None)
}

/// The changes the thread's items say they carried (`counts`: each item's count) that the
/// records do not hold: for each item, every `n` from 1 to its count.
pub fn missing(records: &[ArchiveRecord], counts: &BTreeMap<String, u64>) -> Vec<Source> {
    missing_across(records, counts, &[])
}

/// `missing`, counting the changes of runs the sweep erased as held.
pub fn missing_across(records: &[ArchiveRecord], counts: &BTreeMap<String, u64>, erased: &[Erased]) -> Vec<Source> {
    let mut held: BTreeMap<&str, std::collections::BTreeSet<u64>> = BTreeMap::new();
    for r in records {
        held.entry(r.source.item.as_str()).or_default().insert(r.source.n);
    }
    for run in erased {
        for (item, ns) in &run.sources {
            held.entry(item.as_str()).or_default().extend(ns.iter().copied());
        }
    }
    let mut out = Vec::new();
    for (item, count) in counts {
        let have = held.get(item.as_str());
        for n in 1..=*count {
            if !have.is_some_and(|h| h.contains(&n)) {
                out.push(Source { item: item.clone(), n });
            }
        }
    }
    out
}

/// `verify`, and the items' counts: a change committed and not archived (or records removed
/// from the chain's end) makes it invalid, at the first sequence number past the chain.
pub fn verify_complete(key: &[u8], records: &[ArchiveRecord], counts: &BTreeMap<String, u64>) -> Verification {
    verify_complete_across(key, records, counts, &[])
}

/// `verify_complete` where the sweep erased the runs `erased`.
pub fn verify_complete_across(
    key: &[u8],
    records: &[ArchiveRecord],
    counts: &BTreeMap<String, u64>,
    erased: &[Erased],
) -> Verification {
    let mut v = verify_across(key, records, erased);
    v.missing = missing_across(records, counts, erased);
    if v.valid && !v.missing.is_empty() {
        v.valid = false;
        let past = records.last().map(|r| r.seq).into_iter().chain(erased.iter().map(|e| e.last)).max();
        v.first_break = Some(past.unwrap_or(0) + 1);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const KEY: &[u8] = b"archive-key";

    #[test]
    fn a_kind_is_stored_as_the_name_it_always_had_and_an_unknown_one_as_written() {
        use ArchiveKind::*;
        for (kind, name) in [
            (Message, "message"),
            (Status, "status"),
            (Consent, "consent"),
            (Dlp, "dlp"),
            (ConversationStarted, "conversation_started"),
            (Claimed, "claimed"),
            (Participants, "participants"),
            (QueueRelease, "queue_release"),
            (Recalled, "recalled"),
            (Media, "media"),
            (RecordUse, "record_use"),
        ] {
            assert_eq!(serde_json::to_value(&kind).unwrap(), serde_json::json!(name));
            assert_eq!(serde_json::from_value::<ArchiveKind>(serde_json::json!(name)).unwrap(), kind);
            assert_eq!(kind.to_string(), name);
        }
        let later: ArchiveKind = serde_json::from_value(serde_json::json!("retention_hold")).unwrap();
        assert_eq!(later, Other("retention_hold".into()));
        assert_eq!(serde_json::to_value(&later).unwrap(), serde_json::json!("retention_hold"));
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
            let source = Source { item: "META".into(), n: i as u64 + 1 };
            out.push(link(KEY, prev.as_ref(), Journaled { source, event: event(&format!("m{i}")) }));
        }
        out
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert_eq!(verify(KEY, &chain(5)), Verification::of(true, 5, None));
        assert!(verify(KEY, &[]).valid);
    }

    #[test]
    fn the_hash_is_keyed_so_a_chain_rewritten_without_the_key_is_found() {
        let c = chain(3);
        assert!(!verify(b"another key", &c).valid);
        // Someone without the key rewrites record 2 and re-links every record after it.
        let mut forged = vec![c[0].clone()];
        for (i, r) in c.iter().enumerate().skip(1) {
            let mut e = r.event.clone();
            if i == 1 {
                e.text_as_sent = Some("forged".into());
            }
            let j = Journaled { source: r.source.clone(), event: e };
            forged.push(link(b"a guess", forged.last().map(ArchiveRecord::head).as_ref(), j));
        }
        assert_eq!(verify(KEY, &forged).first_break, Some(2));
    }

    #[test]
    fn an_edit_is_found_at_the_edited_record() {
        let mut c = chain(5);
        c[2].event.text_as_sent = Some("changed".into());
        assert_eq!(verify(KEY, &c).first_break, Some(3));
        let mut d = chain(5);
        d[3].source.n = 9;
        assert_eq!(verify(KEY, &d).first_break, Some(4), "the source is hashed too");
    }

    #[test]
    fn a_deletion_or_a_rehashed_edit_breaks_the_next_link() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(KEY, &c).first_break, Some(2));
        let mut d = chain(5);
        d[1].event.text_as_sent = Some("forged".into());
        d[1].hash = hash(KEY, d[1].seq, &d[1].prev_hash, &d[1].source, &d[1].event);
        assert_eq!(verify(KEY, &d).first_break, Some(3), "the forger must rewrite every later record");
    }

    #[test]
    fn changes_committed_and_not_archived_or_cut_from_the_end_are_found_by_the_items_counts() {
        let c = chain(5);
        let counts = BTreeMap::from([("META".to_string(), 5), ("MSG#m".to_string(), 0)]);
        assert!(verify_complete(KEY, &c, &counts).valid);
        assert!(verify(KEY, &c[..3]).valid, "the chain alone cannot see a cut end");
        let cut = verify_complete(KEY, &c[..3], &counts);
        assert_eq!((cut.valid, cut.first_break), (false, Some(4)));
        assert_eq!(cut.missing, vec![Source { item: "META".into(), n: 4 }, Source { item: "META".into(), n: 5 }]);
        let more = BTreeMap::from([("META".to_string(), 5), ("MSG#m".to_string(), 1)]);
        assert_eq!(verify_complete(KEY, &c, &more).missing, vec![Source { item: "MSG#m".into(), n: 1 }]);
    }

    #[test]
    fn records_round_trip_through_a_batch_named_by_day_and_content() {
        let c = chain(3);
        let at = datetime!(2026-12-03 21:05:09 UTC);
        let (name, body) = batch(&c, at);
        assert!(name.starts_with("records/2026/12/03/210509Z-") && name.ends_with(".jsonl"), "{name}");
        assert_eq!(parse_batch(&body).unwrap(), c);
        assert!(verify(KEY, &parse_batch(&body).unwrap()).valid);
        assert_eq!(batch(&c, at).0, name, "the same batch is the same object");
        assert_ne!(batch(&c[..2], at).0, name, "two batches of one second have two names");
        let mut bad = body.clone();
        bad[3] = b'!';
        assert!(parse_batch(&bad).is_none());
    }

    #[test]
    fn a_batch_says_when_it_was_written_and_uses_go_apart_from_threads() {
        let at = datetime!(2026-12-03 21:05:09 UTC);
        let (name, _) = batch(&chain(2), at);
        assert_eq!(written_at(&name), Some(at));
        assert_eq!(written_at("anchors/a"), None);
        let mut uses = chain(1);
        uses[0].event.conversation_id = RECORD_USE.into();
        assert!(batch(&uses, at).0.starts_with("uses/2026/12/03/210509Z-"));
    }

    #[test]
    fn a_chain_verifies_across_the_runs_the_sweep_erased_and_only_those() {
        let c = chain(7);
        let counts = BTreeMap::from([("META".to_string(), 7)]);
        // Erased: 1..=2 (an old object) and 5 (another), each recorded as a run.
        let runs: Vec<Erased> = [&c[..2], &c[4..5]].iter().flat_map(|r| erased_runs(r)).collect();
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].first, runs[0].last, runs[0].sources["META"].clone()), (1, 2, vec![1, 2]));
        let kept: Vec<ArchiveRecord> = [&c[2..4], &c[5..]].concat();
        let v = verify_complete_across(KEY, &kept, &counts, &runs);
        assert!(v.valid, "{v:?}");
        assert_eq!(v.records, 4);
        assert!(verify_complete_across(KEY, &[], &counts, &[erased_runs(&c)[0].clone()]).valid, "all of it erased");
        // Without the runs, or with a run that does not link, the gap is a break.
        assert_eq!(verify_across(KEY, &kept, &[]).first_break, Some(1));
        assert_eq!(verify_across(KEY, &kept, &runs[..1]).first_break, Some(5));
        let mut forged = runs.clone();
        forged[1].prev_hash = c[0].hash.clone();
        assert_eq!(verify_across(KEY, &kept, &forged).first_break, Some(5));
        // The erased changes count as held; one neither kept nor erased is missing.
        let cut = verify_complete_across(KEY, &kept[..3], &counts, &runs);
        assert_eq!((cut.valid, cut.first_break), (false, Some(7)));
        assert_eq!(cut.missing, vec![Source { item: "META".into(), n: 7 }]);
    }

    #[test]
    fn positions_compare_as_numbers_of_any_length() {
        let p = |s: &str| Position(s.into());
        assert!(p("9") < p("10"));
        assert!(p("100000000000000000000000000000000000001") > p("99999999999999999999999999999999999999"));
        assert_eq!(p("007").cmp(&p("7")), Ordering::Equal);
        assert_eq!(Position::of(42).number(), Some(42));
    }
}
