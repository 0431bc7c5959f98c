//! The numeric detectors (cards, IBANs, SSNs), however the number is written: the text is first
//! normalized (non-ASCII decimal digits and full-width letters folded to ASCII; spaces of every
//! kind, dashes and dots to one separator; zero-width characters dropped), then digit groups
//! are tried at every group boundary, so a number next to other digits (an expiry date, a CVV,
//! an amount) is still found, while an unbroken run of digits stays one candidate (a long order
//! number is never cut into a "card"). Every finding maps back to the bytes as written.

use super::{iban_ascii, luhn_ascii, ssn_ascii, Builtin};

/// A normalized character and the bytes of the original text it stands for.
#[derive(Debug, Clone, Copy)]
struct Unit {
    c: u8,
    start: usize,
    end: usize,
}

const SEP: u8 = b' ';
const OTHER: u8 = b'#';
/// A zero-width character: invisible inside a group, and a sign the writer hid its grouping.
const ZW: u8 = 0;

/// First code points of Unicode's runs of ten decimal digits (the common scripts, full-width
/// and mathematical digits included).
const DIGIT_RUNS: &[u32] = &[
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66, 0x0DE6, 0x0E50,
    0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50,
    0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6,
];

fn fold(c: char) -> Option<u8> {
    if c.is_ascii() {
        return Some(match c {
            '0'..='9' | 'A'..='Z' => c as u8,
            'a'..='z' => c.to_ascii_uppercase() as u8,
            // Slashes, underscores and bars too: "4111/1111/1111/1111" is a card as written.
            ' ' | '\t' | '\n' | '\r' | '-' | '.' | '/' | '\\' | '_' | '|' => SEP,
            _ => OTHER,
        });
    }
    let u = c as u32;
    if let Some(run) = DIGIT_RUNS.iter().find(|&&r| (r..r + 10).contains(&u)) {
        return Some(b'0' + (u - run) as u8);
    }
    match u {
        // Zero-width space, non-joiner, joiner, word joiner, BOM, soft hyphen.
        0x200B..=0x200D | 0x2060 | 0xFEFF | 0x00AD => Some(ZW),
        // Full-width letters.
        0xFF21..=0xFF3A => Some(b'A' + (u - 0xFF21) as u8),
        0xFF41..=0xFF5A => Some(b'A' + (u - 0xFF41) as u8),
        // Hyphens and dashes, the minus sign, full-width hyphen and full stop.
        0x2010..=0x2015 | 0x2212 | 0xFF0D | 0xFF0E | 0x2024 | 0x00B7 => Some(SEP),
        _ if c.is_whitespace() => Some(SEP),
        _ => Some(OTHER),
    }
}

/// The letters and digits of `text`, folded to upper-case ASCII as the detectors see them.
pub(super) fn alphanumerics(text: &str) -> String {
    text.chars().filter_map(fold).filter(u8::is_ascii_alphanumeric).map(char::from).collect()
}

fn normalize(text: &str) -> Vec<Unit> {
    text.char_indices().filter_map(|(i, c)| fold(c).map(|n| Unit { c: n, start: i, end: i + c.len_utf8() })).collect()
}

fn in_group(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == ZW
}

/// Whether `text` holds a chain of at least nine digits (of any script, separated by at most
/// three separators, zero-width characters seen through): every card, SSN and IBAN does. One
/// pass, no allocation: most messages stop here.
pub(super) fn may_hold_numbers(text: &str) -> bool {
    let (mut digits, mut seps) = (0, 0);
    for c in text.chars() {
        // Letters and punctuation end a chain; the common ASCII cases without a table lookup.
        let class = if c.is_ascii_digit() {
            b'0'
        } else if c.is_ascii_alphabetic() {
            OTHER
        } else {
            match fold(c) {
                Some(d) if d.is_ascii_digit() => b'0',
                Some(SEP) => SEP,
                None | Some(ZW) => ZW,
                Some(_) => OTHER,
            }
        };
        match class {
            b'0' => {
                digits += 1;
                seps = 0;
                if digits >= 9 {
                    return true;
                }
            }
            SEP => {
                seps += 1;
                if seps > MAX_SEPS {
                    digits = 0;
                }
            }
            ZW => {}
            _ => {
                digits = 0;
                seps = 0;
            }
        }
    }
    false
}

/// A maximal run of alphanumeric units, `[from, to)` in the normalized text.
#[derive(Debug, Clone, Copy)]
struct Group {
    from: usize,
    to: usize,
    digits_only: bool,
    /// Holds zero-width characters: its size says nothing of how the number is grouped.
    hidden: bool,
    /// Its letters and digits (zero-width characters not counted).
    len: usize,
}

/// Separators that still join two groups: " - " is three.
const MAX_SEPS: usize = 3;

/// Groups of alphanumerics, split by one to three separators; anything else ends a chain.
/// Returns chains of groups (each chain: groups separated by at most `MAX_SEPS` separators).
fn chains(units: &[Unit]) -> Vec<Vec<Group>> {
    let mut out: Vec<Vec<Group>> = Vec::new();
    let mut chain: Vec<Group> = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let c = units[i].c;
        if in_group(c) {
            let from = i;
            while i < units.len() && in_group(units[i].c) {
                i += 1;
            }
            let members = &units[from..i];
            let len = members.iter().filter(|u| u.c != ZW).count();
            if len == 0 {
                // Zero-width characters alone join nothing.
                if !chain.is_empty() {
                    out.push(std::mem::take(&mut chain));
                }
                continue;
            }
            let digits_only = members.iter().all(|u| u.c.is_ascii_digit() || u.c == ZW);
            let hidden = members.iter().any(|u| u.c == ZW);
            chain.push(Group { from, to: i, digits_only, hidden, len });
            // One to three separators continue the chain; anything else ends it.
            let mut seps = 0;
            while i < units.len() && units[i].c == SEP && seps <= MAX_SEPS {
                seps += 1;
                i += 1;
            }
            if seps == 0 || seps > MAX_SEPS || i >= units.len() || !in_group(units[i].c) {
                out.push(std::mem::take(&mut chain));
            }
        } else {
            if !chain.is_empty() {
                out.push(std::mem::take(&mut chain));
            }
            i += 1;
        }
    }
    if !chain.is_empty() {
        out.push(chain);
    }
    out
}

/// The letters and digits of `groups`, into `buf` on the stack (a checksum per candidate
/// allocates nothing); `None` when they do not fit (longer than any number checked).
fn chars_of<'a>(units: &[Unit], groups: &[Group], buf: &'a mut [u8; 34]) -> Option<&'a [u8]> {
    let mut n = 0;
    for u in groups.iter().flat_map(|g| &units[g.from..g.to]).filter(|u| u.c != ZW) {
        *buf.get_mut(n)? = u.c;
        n += 1;
    }
    Some(&buf[..n])
}

/// Original byte range of groups `[a..=b]` of a chain.
fn span(units: &[Unit], a: &Group, b: &Group) -> (usize, usize) {
    (units[a.from].start, units[b.to - 1].end)
}

fn len(g: &Group) -> usize {
    g.len
}

/// Whether a group's size fits its place in a grouped card number (any size when hidden).
fn fits(g: &Group, sizes: std::ops::RangeInclusive<usize>) -> bool {
    g.hidden || sizes.contains(&g.len)
}

/// Card numbers: an unbroken run of 13-19 digits, or groups (the first 4-8 digits, inner ones
/// 3-8, the last 2-8; or 6 then 13, as 19-digit cards are also printed) adding up to 13-19,
/// Luhn-valid. For each start, the longest wins.
fn cards(units: &[Unit], chain: &[Group], out: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    while i < chain.len() {
        let mut found = None;
        if chain[i].digits_only {
            let mut total = 0;
            for j in i..chain.len() {
                let g = &chain[j];
                if !g.digits_only {
                    break;
                }
                total += len(g);
                if total > 19 {
                    break;
                }
                let single = i == j;
                // An unbroken run stands alone. Grouped: the first group 4-8 digits, inner ones
                // 3-8, the last 2-8 (zero-width characters merge groups, so up to 8).
                let six_thirteen = j == i + 1 && len(&chain[i]) == 6 && len(g) == 13;
                let shape_ok = if single {
                    (13..=19).contains(&len(g))
                } else {
                    six_thirteen || (fits(&chain[i], 4..=8) && fits(g, 2..=8))
                };
                if j > i + 1 && !fits(&chain[j - 1], 3..=8) {
                    break;
                }
                if shape_ok && total >= 13 && chars_of(units, &chain[i..=j], &mut [0; 34]).is_some_and(luhn_ascii) {
                    found = Some(j);
                }
                if single && !fits(g, 4..=8) {
                    break;
                }
            }
        }
        match found {
            Some(j) => {
                out.push(span(units, &chain[i], &chain[j]));
                i = j + 1;
            }
            None => i += 1,
        }
    }
}

/// Cards written one digit a group, to slip past a scanner ("4 1 1 1 ..."): in a run of
/// single digits, the stretches of 13-19 that are Luhn-valid, starting and ending at most two
/// digits short of the run's ends (a stray digit before it, a date after it). Never a window
/// deep inside a long run, which would pass Luhn one time in ten.
fn spaced_cards(units: &[Unit], chain: &[Group], out: &mut Vec<(usize, usize)>) {
    let single = |g: &Group| g.digits_only && !g.hidden && g.len == 1;
    let mut i = 0;
    while i < chain.len() {
        if !single(&chain[i]) {
            i += 1;
            continue;
        }
        let end = chain[i..].iter().position(|g| !single(g)).map_or(chain.len(), |n| i + n);
        let run = &chain[i..end];
        // Every valid stretch, redacted as one: two that overlap leave no digit of either.
        let valid: Vec<(usize, usize)> = (0..=2usize)
            .flat_map(|a| (0..=2usize).map(move |b| (a, run.len().saturating_sub(b))))
            .filter(|&(a, b)| b > a && (13..=19).contains(&(b - a)))
            .filter(|&(a, b)| chars_of(units, &run[a..b], &mut [0; 34]).is_some_and(luhn_ascii))
            .collect();
        if let (Some(a), Some(b)) = (valid.iter().map(|v| v.0).min(), valid.iter().map(|v| v.1).max()) {
            out.push(span(units, &run[a], &run[b - 1]));
        }
        i = end;
    }
}

/// IBANs: two letters, two digits, then groups of letters and digits; the longest candidate
/// ending at a group boundary (15-34 characters) that passes mod 97.
fn ibans(units: &[Unit], chain: &[Group], out: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    while i < chain.len() {
        let mut head = units[chain[i].from..chain[i].to].iter().filter(|u| u.c != ZW).map(|u| u.c);
        let starts = head.next().is_some_and(|c| c.is_ascii_uppercase())
            && head.next().is_some_and(|c| c.is_ascii_uppercase())
            && head.next().is_some_and(|c| c.is_ascii_digit())
            && head.next().is_some_and(|c| c.is_ascii_digit());
        let mut found = None;
        if starts {
            let mut total = 0;
            for j in i..chain.len() {
                total += len(&chain[j]);
                if total > 34 {
                    break;
                }
                if total >= 15 && chars_of(units, &chain[i..=j], &mut [0; 34]).is_some_and(iban_ascii) {
                    found = Some(j);
                }
            }
        }
        match found {
            Some(j) => {
                out.push(span(units, &chain[i], &chain[j]));
                i = j + 1;
            }
            None => i += 1,
        }
    }
}

/// US SSNs: groups of 3, 2 and 4 digits, in a valid range.
fn ssns(units: &[Unit], chain: &[Group], out: &mut Vec<(usize, usize)>) {
    for w in chain.windows(3) {
        let shape = [len(&w[0]), len(&w[1]), len(&w[2])] == [3, 2, 4];
        if shape && w.iter().all(|g| g.digits_only) && chars_of(units, w, &mut [0; 34]).is_some_and(ssn_ascii) {
            out.push(span(units, &w[0], &w[2]));
        }
    }
}

/// What the `detectors` (each with its rule's index) find in `text`, normalized once: byte
/// ranges of the text as written, with the rule index.
pub(super) fn find(text: &str, detectors: &[(Builtin, usize)]) -> Vec<(usize, usize, usize)> {
    let units = normalize(text);
    let mut out = Vec::new();
    let mut found = Vec::new();
    for chain in chains(&units) {
        for &(detector, rule) in detectors {
            match detector {
                Builtin::Card => {
                    cards(&units, &chain, &mut found);
                    spaced_cards(&units, &chain, &mut found);
                }
                Builtin::Iban => ibans(&units, &chain, &mut found),
                Builtin::Ssn => ssns(&units, &chain, &mut found),
                Builtin::Email | Builtin::Phone => {}
            }
            out.extend(found.drain(..).map(|(s, e)| (s, e, rule)));
        }
    }
    out
}
