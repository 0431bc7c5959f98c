//! Data-loss prevention: detectors (payment cards with Luhn, IBANs with their checksum, US
//! SSNs, email addresses, phone numbers, custom regular expressions) and a policy that redacts
//! or blocks what they find. Pure: the policy file is read by `Policy::load`, once, at start-up.

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use regex::Regex;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

mod scan;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Redact,
    Block,
    /// The rule is off.
    Allow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    Card,
    Iban,
    Ssn,
    Email,
    Phone,
}

impl Builtin {
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Card => "card",
            Builtin::Iban => "iban",
            Builtin::Ssn => "ssn",
            Builtin::Email => "email",
            Builtin::Phone => "phone",
        }
    }

    /// ASCII word boundaries and digits: Unicode ones would slow every scan several times.
    fn pattern(self) -> &'static str {
        match self {
            // 13 to 19 digits, single spaces or hyphens between them allowed.
            Builtin::Card => r"(?-u:\b)[0-9](?:[ -]?[0-9]){12,18}(?-u:\b)",
            Builtin::Iban => r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?-u:\b)",
            Builtin::Ssn => r"(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)",
            Builtin::Email => r"(?-u:\b)[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?-u:\b)",
            Builtin::Phone => r"\+[0-9](?:[ ().-]?[0-9]){7,14}(?-u:\b)",
        }
    }

    /// Found by the normalizing scanner (any digits, separators, grouping), not by a pattern.
    fn scanned(self) -> bool {
        matches!(self, Builtin::Card | Builtin::Iban | Builtin::Ssn)
    }

    /// The check a match must also pass (a checksum, a valid range).
    fn valid(self, m: &str) -> bool {
        match self {
            Builtin::Card => luhn(m),
            Builtin::Iban => iban_checksum(m),
            Builtin::Ssn => ssn_valid(m),
            Builtin::Email | Builtin::Phone => true,
        }
    }

    /// On by default: cards, IBANs and SSNs are redacted with no policy configured.
    fn default_action(self) -> Action {
        match self {
            Builtin::Card | Builtin::Iban | Builtin::Ssn => Action::Redact,
            Builtin::Email | Builtin::Phone => Action::Allow,
        }
    }
}

/// A labelled card security code ("CVV: 737", "cvc2 1234", "security code is 123"): the digits.
fn security_codes() -> &'static Regex {
    static CODES: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(
            r"(?i-u:\b(?:cvv2?|cvc2?|cvn|cid|csc|cav2|security +code|verification +(?:code|value))\b(?: +is)?)[ \t:=#.-]{0,3}([0-9]{3,4})(?-u:\b)",
        )
        .expect("the security code pattern compiles")
    });
    &CODES
}

/// The Luhn checksum of a card number (separators ignored).
pub fn luhn(s: &str) -> bool {
    let mut buf = [0u8; 19];
    compact(s.bytes().filter(u8::is_ascii_digit), &mut buf).is_some_and(luhn_ascii)
}

/// Luhn over ASCII digits, 13 to 19 of them.
pub(crate) fn luhn_ascii(d: &[u8]) -> bool {
    if !(13..=19).contains(&d.len()) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &c)| {
            let x = u32::from(c - b'0');
            match (i % 2 == 1, x * 2 > 9) {
                (false, _) => x,
                (true, false) => x * 2,
                (true, true) => x * 2 - 9,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616: move the first four characters to the end, letters to numbers, mod 97 = 1.
pub fn iban_checksum(s: &str) -> bool {
    let mut buf = [0u8; 34];
    compact(s.bytes().filter(|b| !b.is_ascii_whitespace()), &mut buf).is_some_and(iban_ascii)
}

/// The IBAN check over ASCII letters and digits, 15 to 34 of them.
pub(crate) fn iban_ascii(c: &[u8]) -> bool {
    if !(15..=34).contains(&c.len()) {
        return false;
    }
    let mut rem: u32 = 0;
    for &b in c[4..].iter().chain(&c[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            b'a'..=b'z' => u32::from(b - b'a') + 10,
            _ => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// `bytes` into `buf`, or `None` when they do not fit.
fn compact(bytes: impl Iterator<Item = u8>, buf: &mut [u8]) -> Option<&[u8]> {
    let mut n = 0;
    for b in bytes {
        *buf.get_mut(n)? = b;
        n += 1;
    }
    Some(&buf[..n])
}

/// Area 001-899 except 666, group 01-99, serial 0001-9999.
pub fn ssn_valid(s: &str) -> bool {
    let mut buf = [0u8; 9];
    compact(s.bytes().filter(u8::is_ascii_digit), &mut buf).is_some_and(ssn_ascii)
}

/// The SSN check over nine ASCII digits.
pub(crate) fn ssn_ascii(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let d: [u32; 9] = std::array::from_fn(|i| u32::from(d[i] - b'0'));
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    /// A built-in detector, or absent for a custom `pattern`.
    detector: Option<Builtin>,
    /// The custom rule's name (`[REDACTED:<name>]`).
    name: Option<String>,
    pattern: Option<String>,
    action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    rules: Vec<RuleFile>,
    /// Also redact inbound text for what employees see (the archive keeps the original).
    #[serde(default)]
    inbound: bool,
}

#[derive(Debug)]
struct Rule {
    name: String,
    builtin: Option<Builtin>,
    regex: Regex,
    action: Action,
}

/// The rules in force.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
    /// Any pattern rule's pattern: one pass finds whether a text needs a closer look.
    any: Option<Regex>,
    /// Some scanned detector (cards, IBANs, SSNs) is on.
    scanning: bool,
    pub inbound: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("DLP policy {path}: {reason}")]
pub struct PolicyError {
    pub path: String,
    pub reason: String,
}

/// What the policy did to a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// Matches were replaced with `[REDACTED:<rule>]`.
    Redacted {
        text: String,
        rules: Vec<String>,
    },
    /// A blocking rule matched; nothing may be stored or sent.
    Blocked {
        rules: Vec<String>,
    },
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::build(vec![], false).expect("built-in patterns compile")
    }
}

impl Policy {
    /// Reads a JSON policy; any error is fatal at start-up, with the file and the reason.
    pub fn load(path: &str) -> Result<Policy, PolicyError> {
        let err = |reason: String| PolicyError { path: path.to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Policy::from_json(&text).map_err(err)
    }

    pub fn from_json(text: &str) -> Result<Policy, String> {
        let file: PolicyFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Policy::build(file.rules, file.inbound)
    }

    fn build(overrides: Vec<RuleFile>, inbound: bool) -> Result<Policy, String> {
        let mut rules = Vec::new();
        for b in [Builtin::Card, Builtin::Iban, Builtin::Ssn, Builtin::Email, Builtin::Phone] {
            let action =
                overrides.iter().rev().find(|r| r.detector == Some(b)).map_or(b.default_action(), |r| r.action);
            rules.push(Rule {
                name: b.name().into(),
                builtin: Some(b),
                regex: Regex::new(b.pattern()).map_err(|e| e.to_string())?,
                action,
            });
        }
        for r in overrides.into_iter().filter(|r| r.detector.is_none()) {
            let (Some(name), Some(pattern)) = (r.name, r.pattern) else {
                return Err("a custom rule needs a name and a pattern (or a built-in detector)".into());
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(format!("rule name {name:?} must be letters, digits, _ or -"));
            }
            let regex = Regex::new(&pattern).map_err(|e| format!("rule {name}: {e}"))?;
            rules.push(Rule { name, builtin: None, regex, action: r.action });
        }
        rules.retain(|r| r.action != Action::Allow);
        let patterns: Vec<String> = rules
            .iter()
            .filter(|r| r.builtin.is_none_or(|b| !b.scanned()))
            .map(|r| format!("(?:{})", r.regex.as_str()))
            .collect();
        let any =
            if patterns.is_empty() { None } else { Some(Regex::new(&patterns.join("|")).map_err(|e| e.to_string())?) };
        let scanning = rules.iter().any(|r| r.builtin.is_some_and(Builtin::scanned));
        Ok(Policy { rules, any, scanning, inbound })
    }

    /// Applies every rule to `text`: block wins over redact.
    pub fn apply(&self, text: &str) -> Verdict {
        let hits = self.hits(text);
        if hits.is_empty() {
            return Verdict::Clean;
        }
        let blocked: BTreeSet<&str> = hits
            .iter()
            .filter(|h| self.rules[h.2].action == Action::Block)
            .map(|h| self.rules[h.2].name.as_str())
            .collect();
        if !blocked.is_empty() {
            return Verdict::Blocked { rules: blocked.into_iter().map(String::from).collect() };
        }
        let (text, rules) = self.replace(text, hits, |rule, _| format!("[REDACTED:{}]", rule.name));
        Verdict::Redacted { text, rules }
    }

    /// `text` as the compliance archive keeps an original that was redacted or blocked: every
    /// finding (of blocking rules too) becomes `[<rule> …<last four> #<fingerprint>]`. The
    /// fingerprint is an HMAC-SHA256 under `key` of the rule and the finding's letters and
    /// digits (16 hex digits), so whoever holds the key can tell whether a given number was
    /// written, and nobody can read one back; the last four (of cards, IBANs, SSNs and phone
    /// numbers only) are what a receipt shows anyway.
    pub fn fingerprinted(&self, text: &str, key: &[u8]) -> String {
        let hits = self.hits(text);
        if hits.is_empty() {
            return text.to_string();
        }
        self.replace(text, hits, |rule, found| {
            let folded = scan::alphanumerics(found);
            let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
            mac.update(rule.name.as_bytes());
            mac.update(b"\0");
            mac.update(folded.as_bytes());
            let fingerprint = hex::encode(&mac.finalize().into_bytes()[..8]);
            match rule.builtin {
                Some(Builtin::Card | Builtin::Iban | Builtin::Ssn | Builtin::Phone) if folded.len() > 4 => {
                    format!("[{} …{} #{fingerprint}]", rule.name, &folded[folded.len() - 4..])
                }
                _ => format!("[{} #{fingerprint}]", rule.name),
            }
        })
        .0
    }

    /// Every valid finding of every rule in force: (start, end, rule index), bytes as written.
    fn hits(&self, text: &str) -> Vec<(usize, usize, usize)> {
        let patterns = self.any.as_ref().is_some_and(|any| any.is_match(text));
        let numbers = self.scanning && scan::may_hold_numbers(text);
        let mut hits: Vec<(usize, usize, usize)> = Vec::new();
        // A card's security code is data no one may keep (PCI DSS): it goes where cards go.
        if let Some(card) = self.rules.iter().position(|r| r.builtin == Some(Builtin::Card)) {
            hits.extend(
                security_codes().captures_iter(text).filter_map(|c| c.get(1)).map(|m| (m.start(), m.end(), card)),
            );
        }
        if numbers {
            let scanned: Vec<(Builtin, usize)> = self
                .rules
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.builtin.filter(|b| b.scanned()).map(|b| (b, i)))
                .collect();
            hits.extend(scan::find(text, &scanned));
        }
        if patterns {
            for (i, rule) in self.rules.iter().enumerate() {
                if rule.builtin.is_some_and(Builtin::scanned) {
                    continue;
                }
                for m in rule.regex.find_iter(text) {
                    if rule.builtin.is_none_or(|b| b.valid(m.as_str())) {
                        hits.push((m.start(), m.end(), i));
                    }
                }
            }
        }
        hits
    }

    /// `text` with each hit replaced by `with(rule, what was found)`, and the rules that hit.
    /// Overlapping hits are replaced as one, named after the earliest (then longest): a card
    /// that overlaps an SSN before it is covered to its end, never cut short.
    fn replace(
        &self,
        text: &str,
        mut hits: Vec<(usize, usize, usize)>,
        with: impl Fn(&Rule, &str) -> String,
    ) -> (String, Vec<String>) {
        hits.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut merged: Vec<(usize, usize, usize)> = Vec::with_capacity(hits.len());
        let mut names = BTreeSet::new();
        for (start, end, i) in hits {
            names.insert(self.rules[i].name.clone());
            match merged.last_mut() {
                Some(last) if start < last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end, i)),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end, i) in merged {
            out.push_str(&text[at..start]);
            out.push_str(&with(&self.rules[i], &text[start..end]));
            at = end;
        }
        out.push_str(&text[at..]);
        (out, names.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(p: &Policy, t: &str) -> String {
        match p.apply(t) {
            Verdict::Redacted { text, .. } => text,
            Verdict::Clean => t.to_string(),
            Verdict::Blocked { rules } => panic!("blocked by {rules:?}"),
        }
    }

    #[test]
    fn cards_are_redacted_only_when_luhn_valid() {
        let p = Policy::default();
        assert_eq!(redacted(&p, "card 4111 1111 1111 1111 ok"), "card [REDACTED:card] ok");
        assert_eq!(redacted(&p, "card 4111-1111-1111-1111"), "card [REDACTED:card]");
        assert_eq!(redacted(&p, "order 4111111111111112 ref"), "order 4111111111111112 ref", "fails Luhn");
        assert_eq!(redacted(&p, "id 1234567890123456"), "id 1234567890123456");
        assert_eq!(redacted(&p, "tel 0123456789"), "tel 0123456789", "too short for a card");
    }

    #[test]
    fn disguised_cards_are_still_cards() {
        let p = Policy::default();
        assert_eq!(redacted(&p, "card 4111/1111/1111/1111 ok"), "card [REDACTED:card] ok");
        assert_eq!(redacted(&p, "4111_1111_1111_1111"), "[REDACTED:card]");
        assert_eq!(redacted(&p, "it is 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 ok"), "it is [REDACTED:card] ok");
        assert_eq!(redacted(&p, "ref 7 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 09/28"), "ref [REDACTED:card] 09/28");
        assert_eq!(redacted(&p, "ref 8 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 09/28"), "ref 8 [REDACTED:card] 09/28");
        assert_eq!(redacted(&p, "card 4111 - 1111 - 1111 - 1111"), "card [REDACTED:card]");
        let scores = "scores 3 1 4 1 5 9 2 6 5 3 5 8 9 7 9 3 2 3 8 4 6 2 6 4 3 3 8 3 2 7 9 5";
        assert_eq!(redacted(&p, scores), scores, "no window deep inside a long run of digits");
        assert_eq!(redacted(&p, "on 12/03/2026 at 10/11"), "on 12/03/2026 at 10/11", "dates are no card");
    }

    #[test]
    fn a_security_code_goes_where_its_card_goes() {
        let p = Policy::default();
        assert_eq!(
            redacted(&p, "4111 1111 1111 1111 CVV:737 exp 12/28"),
            "[REDACTED:card] CVV:[REDACTED:card] exp 12/28"
        );
        assert_eq!(
            redacted(&p, "cvc2 = 1234, security code 987"),
            "cvc2 = [REDACTED:card], security code [REDACTED:card]"
        );
        assert_eq!(redacted(&p, "see the CVVs 2024 report"), "see the CVVs 2024 report", "a word, not a label");
        let off = Policy::from_json(r#"{"rules":[{"detector":"card","action":"allow"}]}"#).unwrap();
        assert_eq!(off.apply("CVV 737"), Verdict::Clean, "off with its card rule");
        let block = Policy::from_json(r#"{"rules":[{"detector":"card","action":"block"}]}"#).unwrap();
        assert!(matches!(block.apply("my cvv is: 737"), Verdict::Blocked { .. }));
        assert!(matches!(block.apply("CVV: 737"), Verdict::Blocked { .. }));
    }

    #[test]
    fn ibans_need_their_checksum() {
        let p = Policy::default();
        assert_eq!(redacted(&p, "pay GB82 WEST 1234 5698 7654 32 now"), "pay [REDACTED:iban] now");
        assert_eq!(redacted(&p, "DE89370400440532013000"), "[REDACTED:iban]");
        assert_eq!(redacted(&p, "GB82WEST12345698765433"), "GB82WEST12345698765433", "bad checksum");
    }

    #[test]
    fn ssns_need_a_valid_range() {
        let p = Policy::default();
        assert_eq!(redacted(&p, "ssn 123-45-6789."), "ssn [REDACTED:ssn].");
        for bad in ["000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000"] {
            assert_eq!(redacted(&p, bad), bad);
        }
    }

    #[test]
    fn email_and_phone_are_off_by_default_and_on_by_policy() {
        assert_eq!(redacted(&Policy::default(), "a@b.co +44 7700 900123"), "a@b.co +44 7700 900123");
        let p = Policy::from_json(
            r#"{"rules":[{"detector":"email","action":"redact"},{"detector":"phone","action":"redact"}]}"#,
        )
        .unwrap();
        assert_eq!(
            redacted(&p, "mail olivia.b@example.co.uk or +44 7700 900123"),
            "mail [REDACTED:email] or [REDACTED:phone]"
        );
        assert_eq!(redacted(&p, "not@an-email and 2024-01-01"), "not@an-email and 2024-01-01");
    }

    #[test]
    fn block_wins_and_names_its_rules() {
        let p = Policy::from_json(r#"{"rules":[{"detector":"card","action":"block"},{"name":"project","pattern":"PRJ-[0-9]{4}","action":"block"}]}"#).unwrap();
        assert_eq!(
            p.apply("4111111111111111 and PRJ-1234 and 123-45-6789"),
            Verdict::Blocked { rules: vec!["card".into(), "project".into()] }
        );
        assert_eq!(p.apply("nothing here"), Verdict::Clean);
        assert_eq!(redacted(&p, "only 123-45-6789"), "only [REDACTED:ssn]");
    }

    #[test]
    fn custom_rules_redact_and_rules_can_be_turned_off() {
        let p = Policy::from_json(r#"{"rules":[{"name":"ticket","pattern":"TCK-\\d+","action":"redact"},{"detector":"card","action":"allow"}]}"#).unwrap();
        assert_eq!(redacted(&p, "see TCK-42 and 4111111111111111"), "see [REDACTED:ticket] and 4111111111111111");
    }

    #[test]
    fn bad_policies_are_refused_with_a_reason() {
        for bad in [
            "not json",
            r#"{"rules":[{"name":"x","pattern":"(","action":"redact"}]}"#,
            r#"{"rules":[{"name":"x","action":"redact"}]}"#,
            r#"{"rules":[{"detector":"card","action":"shred"}]}"#,
            r#"{"rules":[], "extra": 1}"#,
        ] {
            assert!(Policy::from_json(bad).is_err(), "{bad}");
        }
        let e = Policy::load("/no/such/policy.json").unwrap_err();
        assert!(e.to_string().contains("/no/such/policy.json"));
    }

    #[test]
    fn numbers_are_found_however_they_are_written() {
        let p = Policy::default();
        for (written, want) in [
            ("card 4111 1111 1111 1111 12/27", "card [REDACTED:card] 12/27"),
            ("5555 5555 5555 4444 09/28", "[REDACTED:card] 09/28"),
            ("1 4111 1111 1111 1111", "1 [REDACTED:card]"),
            ("EUR 500 4111 1111 1111 1111", "EUR 500 [REDACTED:card]"),
            ("4111  1111  1111  1111", "[REDACTED:card]"),
            ("4111.1111.1111.1111", "[REDACTED:card]"),
            ("4111\u{a0}1111\u{a0}1111\u{a0}1111!", "[REDACTED:card]!"),
            ("x 4111\u{200b}1111\u{200b}1111\u{200b}1111 y", "x [REDACTED:card] y"),
            ("４１１１ １１１１ １１１１ １１１１", "[REDACTED:card]"),
            ("4111–1111–1111–1111", "[REDACTED:card]"),
            ("IBAN DE89 3704 0044 0532 0130 00 EUR 500", "IBAN [REDACTED:iban] EUR 500"),
            ("iban de89 3704 0044 0532 0130 00.", "iban [REDACTED:iban]."),
            ("ssn 123–45–6789 ok", "ssn [REDACTED:ssn] ok"),
            ("ssn １２３-４５-６７８９", "ssn [REDACTED:ssn]"),
        ] {
            assert_eq!(redacted(&p, written), want, "{written:?}");
        }
        // A CVV right after the number goes with it or stays, the number never does.
        let cvv = redacted(&p, "4111 1111 1111 1111 123");
        assert!(cvv.starts_with("[REDACTED:card]") && !cvv.contains("4111"), "{cvv}");
    }

    #[test]
    fn look_alikes_are_left_alone() {
        let p = Policy::default();
        for clean in [
            "order 4111111111111111111111 shipped",
            "tracking 1Z999AA10123456784",
            "from 2024-01-01 to 2024-12-31, 10:30",
            "total EUR 1.234.567,89 due 05.06.2026",
            "call +44 7700 900123 or 020 7946 0958",
            "invoice 2026 0001 0042 for 3 items",
        ] {
            assert_eq!(redacted(&p, clean), clean);
        }
    }

    proptest::proptest! {
        /// A Luhn-valid number, grouped 4-4-4-4 with any mix of separators, amid other digits:
        /// always redacted, and none of its digits runs survive.
        #[test]
        fn disguised_cards_never_leak(
            body in proptest::collection::vec(0u32..10, 15),
            seps in proptest::collection::vec(proptest::sample::select(vec![" ", "-", ".", "\u{a0}", "\u{200b}", "  ", "\u{2013}"]), 3),
            before in proptest::option::of(0u32..1000),
            after in proptest::option::of(proptest::sample::select(vec![" 12/27", " 123", " EUR 500", "."])),
        ) {
            // The check digit that makes the 16 digits Luhn-valid.
            let check = (0..10).find(|c| {
                let s: String = body.iter().chain(std::iter::once(c)).map(|d| char::from(b'0' + *d as u8)).collect();
                luhn(&s)
            }).unwrap();
            let digits: String = body.iter().chain(std::iter::once(&check)).map(|d| char::from(b'0' + *d as u8)).collect();
            let grouped = format!("{}{}{}{}{}{}{}", &digits[0..4], seps[0], &digits[4..8], seps[1], &digits[8..12], seps[2], &digits[12..16]);
            let text = format!("{}{}{}", before.map(|b| format!("{b} ")).unwrap_or_default(), grouped, after.unwrap_or(""));
            let out = redacted(&p_default(), &text);
            proptest::prop_assert!(out.contains("[REDACTED:card]"), "{text:?} -> {out:?}");
            // The archive's form of the original: a card's last four and fingerprint, no more.
            let kept = p_default().fingerprinted(&text, b"k");
            proptest::prop_assert!(kept.contains("[card …"), "{text:?} -> {kept:?}");
            let outside: String = kept.split('[').map(|part| part.split_once(']').map_or(part, |(_, rest)| rest)).collect();
            proptest::prop_assert!(!outside.contains(&digits[4..8]) || text.matches(&digits[4..8]).count() > 1 || before.is_some_and(|b| b.to_string().contains(&digits[4..8])), "{text:?} -> {kept:?}");
            proptest::prop_assert!(!out.contains(&digits[4..8]) || text.matches(&digits[4..8]).count() > 1 || before.is_some_and(|b| b.to_string().contains(&digits[4..8])), "{text:?} -> {out:?}");
        }
    }

    fn p_default() -> Policy {
        Policy::default()
    }

    #[test]
    fn originals_are_kept_as_last_four_and_a_keyed_fingerprint() {
        let p = Policy::default();
        let kept = p.fingerprinted("card 4111 1111 1111 1111 12/27, IBAN DE89 3704 0044 0532 0130 00 thanks", b"key");
        assert!(!kept.contains("4111 1111") && !kept.contains("3704"), "{kept}");
        assert!(kept.starts_with("card [card …1111 #") && kept.contains(" 12/27, IBAN [iban …3000 #"), "{kept}");
        assert!(kept.ends_with("] thanks"), "{kept}");
        // However it was written, one number has one fingerprint; another key, another one.
        let plain = p.fingerprinted("4111111111111111", b"key");
        assert_eq!(p.fingerprinted("4111-1111-1111-1111", b"key"), plain);
        assert_eq!(p.fingerprinted("４１１１ １１１１ １１１１ １１１１", b"key"), plain);
        assert_ne!(p.fingerprinted("4111111111111111", b"other"), plain);
        assert_ne!(p.fingerprinted("5555555555554444", b"key")[11..], plain[11..]);
        assert_eq!(
            p.fingerprinted("nothing to hide, order 4111111111111112", b"key"),
            "nothing to hide, order 4111111111111112"
        );
    }

    #[test]
    fn blocked_findings_are_fingerprinted_too() {
        let p = Policy::from_json(r#"{"rules": [{"detector": "email", "action": "block"}]}"#).unwrap();
        let kept = p.fingerprinted("write to jo@example.com", b"key");
        assert!(kept.starts_with("write to [email #") && !kept.contains("example"), "{kept}");
    }

    #[test]
    fn a_card_overlapping_an_ssn_before_it_is_covered_to_its_end() {
        // Found by the fuzz test: "001 01 0001" is an SSN's shape, "0001 ... 0009" a card.
        let p = Policy::default();
        match p.apply("001 01 0001 0000 0000 0009 ") {
            Verdict::Redacted { text, rules } => {
                assert_eq!(text, "[REDACTED:ssn] ");
                assert_eq!(rules, vec!["card", "ssn"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_ascii_text_around_matches_is_kept() {
        let p = Policy::default();
        assert_eq!(redacted(&p, "Zoë: 4111 1111 1111 1111 — merci"), "Zoë: [REDACTED:card] — merci");
    }
}
