//! The default DLP policy against a corpus of disguised card numbers, IBANs and SSNs and of
//! look-alikes that are none of them (`tests/fixtures/dlp-corpus.jsonl`, written by
//! `scripts/dlp-corpus.py`): prints recall and the false-positive rate, per disguise where
//! anything was missed, and holds both to their floor and ceiling.
//!
//! `cargo test -p shared --test dlp_corpus -- --nocapture`

use std::collections::BTreeMap;

use serde::Deserialize;
use shared::dlp::{Policy, Verdict};

#[derive(Deserialize)]
struct Case {
    text: String,
    kind: Option<String>,
    leak: Option<String>,
    how: String,
}

fn corpus() -> Vec<Case> {
    let text = include_str!("fixtures/dlp-corpus.jsonl");
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_default_policy_finds_disguised_numbers_and_leaves_look_alikes_alone() {
    let policy = Policy::default();
    let cases = corpus();
    let (mut positives, mut found, mut negatives, mut false_alarms) = (0, 0, 0, 0);
    let mut misses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for case in &cases {
        let verdict = policy.apply(&case.text);
        match (&case.kind, &case.leak) {
            (Some(kind), Some(leak)) => {
                positives += 1;
                let kept = policy.fingerprinted(&case.text, b"corpus-key");
                let caught = match &verdict {
                    Verdict::Redacted { text, rules } => rules.contains(kind) && !text.contains(leak.as_str()),
                    _ => false,
                };
                // The archive's form of the original never holds the number either.
                if caught && !kept.contains(leak.as_str()) {
                    found += 1;
                } else {
                    misses.entry(case.how.clone()).or_default().push(format!("{:?} -> {verdict:?}", case.text));
                }
            }
            _ => {
                negatives += 1;
                if verdict != Verdict::Clean {
                    false_alarms += 1;
                    misses
                        .entry(format!("false alarm: {}", case.how))
                        .or_default()
                        .push(format!("{:?} -> {verdict:?}", case.text));
                }
            }
        }
    }
    let recall = found as f64 / positives as f64;
    let fpr = false_alarms as f64 / negatives as f64;
    println!("DLP corpus, default policy: {positives} disguised positives, {negatives} look-alike negatives");
    println!("recall {recall:.3} ({found}/{positives}); false-positive rate {fpr:.3} ({false_alarms}/{negatives})");
    for (how, cases) in &misses {
        println!("  {how}: {}", cases.len());
        for c in cases.iter().take(3) {
            println!("    {c}");
        }
    }
    assert!(positives >= 200 && negatives >= 200, "the corpus holds {positives} positives and {negatives} negatives");
    assert!(recall >= 0.99, "recall {recall:.3}");
    assert!(fpr <= 0.05, "false-positive rate {fpr:.3}");
}

/// A Luhn-valid 16-digit number from 15 digits.
fn card_of(body: &[u32]) -> String {
    let digits = |extra: u32| -> String {
        body.iter().chain(std::iter::once(&extra)).map(|d| char::from(b'0' + *d as u8)).collect()
    };
    (0..10).map(digits).find(|n| shared::dlp::luhn(n)).unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 20_000, ..Default::default() })]

    /// Fuzzing at volume: any text of digits of several scripts, separators, invisible
    /// characters, letters and punctuation; the policy never panics (a finding cut inside a
    /// character would), and what it finds maps back to the text as written.
    #[test]
    fn the_scanner_never_panics(text in "[0-9０-９٠-٩ \\-.\u{a0}\u{2009}\u{200b}\u{ad}a-zA-Zａ-ｚ/#+()@é€]{0,120}") {
        let policy = Policy::default();
        if let Verdict::Redacted { text: out, .. } = policy.apply(&text) {
            proptest::prop_assert!(out.contains("[REDACTED:"));
        }
        let _ = policy.fingerprinted(&text, b"k");
    }

    /// A card amid random digits and separators is never left readable: the redaction may
    /// take more than the card (a longer Luhn-valid candidate), never less.
    #[test]
    fn a_card_amid_noise_never_leaks(
        body in proptest::collection::vec(0u32..10, 15),
        sep in proptest::sample::select(vec![" ", "-", ".", "\u{a0}", "\u{200b}", "  "]),
        before in "[0-9a-z /]{0,12}",
        after in "[0-9a-z /]{0,12}",
    ) {
        let card = card_of(&body);
        let written = card.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(sep);
        let text = format!("{before} {written} {after}");
        let middle = &card[4..12];
        let out = match Policy::default().apply(&text) {
            Verdict::Redacted { text, .. } => text,
            other => return Err(proptest::test_runner::TestCaseError::fail(format!("{text:?} -> {other:?}"))),
        };
        let digits_of = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        proptest::prop_assert!(!digits_of(&out).contains(middle) || digits_of(&before).contains(middle) || digits_of(&after).contains(middle), "{text:?} -> {out:?}");
    }
}
