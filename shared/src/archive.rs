//! The compliance archive's records and their hash chain: each record of a thread holds the
//! SHA-256 of the one before, so an edit or a deletion is found by re-computing the chain.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The hash before a thread's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Something to archive, as a use case reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveEvent {
    pub conversation_id: String,
    /// `message`, `consent`, `participant`, `queue_release`, `dlp`, ...
    pub kind: String,
    /// A user id, `contact` or `system`.
    pub actor: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub message_id: Option<String>,
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
}

/// Re-computes the chain of one thread's records (in order).
pub fn verify(records: &[ArchiveRecord]) -> Verification {
    let mut prev_hash = GENESIS.to_string();
    for (i, r) in records.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        if r.seq != expected_seq || r.prev_hash != prev_hash || r.hash != hash(r.seq, &r.prev_hash, &r.event) {
            return Verification { valid: false, records: records.len(), first_break: Some(expected_seq.min(r.seq)) };
        }
        prev_hash = r.hash.clone();
    }
    Verification { valid: true, records: records.len(), first_break: None }
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
        Some(h) if last.as_ref() != Some(h) => {
            Verification { valid: false, records: records.len(), first_break: Some(records.len() as u64 + 1) }
        }
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn event(text: &str) -> ArchiveEvent {
        ArchiveEvent {
            conversation_id: "c".into(),
            kind: "message".into(),
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
        assert_eq!(verify(&chain(5)), Verification { valid: true, records: 5, first_break: None });
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
}
