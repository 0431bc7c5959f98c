//! Implementations of the ports: `embedded` (SQLite, the local default), `graph` (Meta's
//! Cloud API over reqwest) and `sandbox` (a local stand-in for WhatsApp).

pub mod aws;
pub mod embedded;
pub mod graph;
pub mod sandbox;
