//! Proves the simulation finds what it claims to: with each planted bug switched on in turn
//! (`shared::plant::Bug`), some seed among the first `SIM_PLANT_SEEDS` (default 100) must break
//! a promise that the same seed keeps without it. A bug it cannot find is a hole in the simulation to close, never a bug to drop.

use std::time::Instant;

use shared::plant::Bug;
use simulation::{on_every_core, run, Settings};

fn main() {
    let budget: u64 = std::env::var("SIM_PLANT_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let only = std::env::var("SIM_PLANT").ok();
    let started = Instant::now();
    let bugs: Vec<Bug> =
        Bug::ALL.into_iter().filter(|b| only.as_deref().is_none_or(|o| format!("{b:?}") == o)).collect();
    // Found: a seed that breaks a promise with the bug and keeps them all without it.
    let searches = on_every_core(&bugs, |&bug| {
        let t = Instant::now();
        let found = (0..budget).find_map(|seed| {
            let outcome = run(&Settings { plant: Some(bug), ..Settings::new(seed) });
            let broken = outcome.violations.first().cloned()?;
            run(&Settings::new(seed)).violations.is_empty().then_some((seed, broken))
        });
        (found, t.elapsed())
    });
    let mut missed = Vec::new();
    for (&bug, (found, took)) in bugs.iter().zip(searches) {
        match found {
            Some((seed, what)) => println!(
                "{bug:?}: found by seed {seed} in {:.1} s: {}",
                took.as_secs_f64(),
                what.chars().take(160).collect::<String>()
            ),
            None => {
                println!("{bug:?}: NOT FOUND in {budget} seeds");
                missed.push(bug);
            }
        }
    }
    println!(
        "planted bugs: {} found, {} missed, in {:.1} s",
        Bug::ALL.len() - missed.len(),
        missed.len(),
        started.elapsed().as_secs_f64()
    );
    if !missed.is_empty() {
        println!("test result: FAILED. the simulation missed {missed:?}");
        std::process::exit(1);
    }
    println!("test result: ok. 1 passed; 0 failed; 0 ignored");
}
