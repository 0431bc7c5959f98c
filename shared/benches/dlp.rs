//! DLP scanner throughput on one core, with the built-in rules (cards, IBANs, SSNs redacted;
//! email and phone turned on too, the worst case), beside a baseline in the same run: a plain
//! substring search over the same text (memchr speed, the floor of any scan).
//!
//! `cargo bench -p shared --bench dlp`

use std::hint::black_box;
use std::time::Instant;

use shared::dlp::{Policy, Verdict};

fn corpus(bytes: usize) -> Vec<String> {
    let lines = [
        "Hi Olivia, your order 58213 is ready for collection at the Camden store from 10am tomorrow.",
        "Thanks! Could you also check whether the blue jacket in size M is back in stock?",
        "Sure, I'll ask the warehouse and come back to you before 5pm. Anything else I can help with?",
        "Olá, a sua encomenda já foi enviada; deverá chegar na quinta-feira. Obrigado pela paciência!",
        "My card is 4111 1111 1111 1111 and the IBAN is GB82 WEST 1234 5698 7654 32, is that ok?",
        "Please call me on +44 7700 900123 or write to olivia.bennett@example.co.uk after 6pm.",
        "Ticket 2024-11-22 / ref 123456789012 — see attachment, SSN 123-45-6789 was in the form.",
    ];
    let mut out = Vec::new();
    let mut total = 0;
    let mut i = 0usize;
    while total < bytes {
        // Six ordinary lines for every one with sensitive data.
        let line = if i % 7 == 6 { lines[4 + (i / 7) % 3] } else { lines[i % 4] };
        let msg = format!("{line} ({i})");
        total += msg.len();
        out.push(msg);
        i += 1;
    }
    out
}

fn main() {
    let texts = corpus(16 * 1024 * 1024);
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let default = Policy::default();
    let all = Policy::from_json(
        r#"{"rules":[{"detector":"email","action":"redact"},{"detector":"phone","action":"redact"}]}"#,
    )
    .unwrap();

    let time = |name: &str, f: &dyn Fn(&str) -> usize| {
        let mut best = f64::MAX;
        let mut hits = 0;
        for _ in 0..5 {
            let start = Instant::now();
            hits = texts.iter().map(|t| f(black_box(t))).sum::<usize>();
            best = best.min(start.elapsed().as_secs_f64());
        }
        let mbps = bytes as f64 / 1e6 / best;
        println!("{name:<40} {mbps:>9.1} MB/s  ({hits} hits, best of 5)");
        mbps
    };
    println!("DLP scan over {:.1} MB of chat messages ({} messages), one core", bytes as f64 / 1e6, texts.len());
    let base = time("baseline: substring search", &|t: &str| usize::from(t.contains("@@")));
    let d = time("built-in defaults (card, iban, ssn)", &|t: &str| {
        usize::from(!matches!(default.apply(t), Verdict::Clean))
    });
    let a = time("all built-ins (+ email, phone)", &|t: &str| usize::from(!matches!(all.apply(t), Verdict::Clean)));
    println!("ratio to baseline: defaults {:.3}, all built-ins {:.3}", d / base, a / base);
}
