//! casegate: a daemon that bridges email and vulnerability-coordination cases.
//!
//! The message flow, one mail at a time:
//!
//! ```text
//! ingest (maildir | stdin | imap)  raw bytes ──► store::inbound (stage 1, committed first)
//!   ──► mail::parse → Inbound         (pure)
//!   ──► mail::machine                 (pure: loop, bounce, auto-reply)
//!   ──► pgp::open → Protection        (pure: decrypt, verify, protected headers)
//!   ──► pipeline::gather  → route::Evidence + model::World   (reads the database)
//!   ──► route::decide     → model::Decision { action, reason } (pure)
//!   ──► audience + view::form → who gets the content, the notice, the digest (pure)
//!   ──► store::apply      → post + attachments + outbox items + history, one transaction
//!   ──► source acknowledged (maildir new/ → cur/, stdin exit 0)
//! outbound::worker: outbox ──► view (what each recipient receives, redacted) → render
//!   → pgp::seal (pure) ──► transport (smtp | file | sendmail), retry with backoff
//! ```
//!
//! Pure core (no tokio, sqlx, lettre): [`model`], [`mail`], [`replykey`], [`route`],
//! [`status`], [`workflow`], [`audience`], [`view`], `redact`, [`render`], [`compose`],
//! `delivery`, `intake`, `outgoing`, [`pgp`]. I/O shell:
//! [`config`], [`store`], [`pipeline`], [`ingest`], [`outbound`], [`app`], [`cli`], [`demo`].

pub mod model;
pub mod mail;
pub mod replykey;
pub mod route;
pub mod status;
pub mod workflow;
pub mod audience;
pub(crate) mod redact;
pub mod view;
pub mod render;
pub mod compose;
pub(crate) mod delivery;
pub(crate) mod intake;
pub(crate) mod outgoing;
pub mod pgp;

pub mod config;
pub mod store;
pub mod pipeline;
pub mod actions;
pub mod coordination;
pub mod ingest;
pub mod outbound;
pub mod app;
pub mod cli;
pub mod demo;
pub mod digest;
pub mod schedule;
pub mod metrics;
pub mod sdnotify;
pub mod supervise;
pub(crate) mod instance;
pub(crate) mod stages;
#[cfg(debug_assertions)]
pub(crate) mod fault;
