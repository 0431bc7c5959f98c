//! The connector's core: the domain, the use cases over ports, the adapters, and the HTTP edge
//! the functions share. Functions depend on this crate; it depends on no function.

pub mod adapters;
#[cfg(any(feature = "aws", feature = "embedded"))]
pub mod app;
pub mod archive;
pub mod config;
pub mod dlp;
pub mod domain;
pub mod error;
pub mod export;
pub mod http;
pub mod live;
pub mod meta;
pub mod metrics;
pub mod plant;
pub mod ports;
pub mod telemetry;
pub mod usecases;

pub use config::Config;
