//! Runs the simulation over many seeds, on every core, and fails on the lowest seed that broke a
//! promise, printing the one command that replays it. `SIM_SEEDS=N` runs seeds 0..N (default 2,000), `SIM_FROM=K` starts
//! at K, `SIM_SEED=S` runs only seed S (twice, and checks the two runs are the same),
//! `SIM_PLANT=Name` switches one planted bug on (`shared::plant::Bug`).

use std::time::Instant;

use shared::plant::Bug;
use simulation::{on_every_core, run, Settings};

fn env(k: &str) -> Option<u64> {
    std::env::var(k).ok().and_then(|v| v.parse().ok())
}

fn main() {
    let plant = std::env::var("SIM_PLANT").ok().map(|n| Bug::named(&n).unwrap_or_else(|| panic!("no planted bug {n}")));
    let started = Instant::now();
    if let Some(seed) = env("SIM_SEED") {
        let settings = Settings { plant, ..Settings::new(seed) };
        let first = run(&settings);
        let again = run(&settings);
        for v in &first.violations {
            println!("  {v}");
        }
        println!(
            "seed {seed}: {} broken promises; {} port-call faults, {} crashes, {} switches ({} tasks, {} points), {} messages taken by Meta",
            first.violations.len(),
            first.faults,
            first.counts.crashes,
            first.counts.switches,
            first.counts.tasks,
            first.counts.points,
            first.taken
        );
        assert_eq!(
            (first.trace, first.faults, first.counts.switches, first.counts.crashes),
            (again.trace, again.faults, again.counts.switches, again.counts.crashes),
            "seed {seed} did not replay the same"
        );
        println!("seed {seed} replays exactly (trace {:016x})", first.trace);
        if !first.violations.is_empty() {
            std::process::exit(1);
        }
        return;
    }
    let from = env("SIM_FROM").unwrap_or(0);
    let count = env("SIM_SEEDS").unwrap_or(2000);
    let seeds: Vec<u64> = (from..from + count).collect();
    let outcomes = on_every_core(&seeds, |&seed| run(&Settings { plant, ..Settings::new(seed) }));
    let (mut faults, mut crashes, mut switches, mut taken) = (0, 0, 0, 0);
    for outcome in outcomes {
        let seed = outcome.seed;
        if !outcome.violations.is_empty() {
            println!("seed {seed} broke {} promises:", outcome.violations.len());
            for v in &outcome.violations {
                println!("  {v}");
            }
            let planted = plant.map(|b| format!("SIM_PLANT={b:?} ")).unwrap_or_default();
            println!("replay: {planted}SIM_SEED={seed} cargo test -p simulation --test seeds");
            std::process::exit(1);
        }
        faults += outcome.faults;
        crashes += outcome.counts.crashes;
        switches += outcome.counts.switches;
        taken += outcome.taken;
    }
    println!(
        "simulation: {count} seeds from {from}, every promise kept; {faults} port-call faults, {crashes} crashes, \
         {switches} task switches, {taken} messages taken by Meta, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("test result: ok. 1 passed; 0 failed; 0 ignored");
}
