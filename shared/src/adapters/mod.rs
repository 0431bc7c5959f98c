//! Implementations of the ports: `aws`, `embedded` (SQLite, the local default), `graph` (Meta's
//! Cloud API over reqwest), `sandbox` (a local stand-in for WhatsApp), `memory` (a store for
//! the simulation and tests) and the clocks. `aws` and `embedded` are features: Lambda builds
//! the one, the local runner the other (and both with `--features aws`); `sandbox` and
//! `test-support` (memory) are never in a Lambda package.

#[cfg(feature = "aws")]
pub mod aws;
pub mod clock;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod graph;
#[cfg(feature = "test-support")]
pub mod memory;
#[cfg(feature = "sandbox")]
pub mod sandbox;
