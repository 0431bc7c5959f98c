//! End-to-end tests: the local runner driven over HTTP as a client app and as Meta would.

mod api;
mod archive;
mod consent;
mod dispatch;
mod dlp;
mod groups;
mod helpers;
mod live;
mod media;
mod receipts;
mod record;
mod restart;
mod retention;
mod search;
mod webhook;
mod window;
