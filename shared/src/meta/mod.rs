//! Meta's WhatsApp Cloud API formats: webhook deliveries in, Graph API requests out, and the
//! `X-Hub-Signature-256` check. Pure data and functions; the HTTP client is an adapter.

pub mod graph;
pub mod signature;
pub mod webhook;
