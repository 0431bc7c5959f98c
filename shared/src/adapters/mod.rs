//! Implementations of the ports: `aws`, `embedded` (SQLite, the local default), `graph` (Meta's
//! Cloud API over reqwest), `sandbox` (a local stand-in for WhatsApp) and `memory` (a store for
//! the simulation and tests).

#[cfg(feature = "aws")]
pub mod aws;
pub mod embedded;
pub mod graph;
pub mod memory;
pub mod sandbox;
