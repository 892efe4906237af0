//! Sources of inbound mail. Each hands raw bytes and source coordinates to the pipeline
//! and acknowledges the mail only after the pipeline committed (SPEC §3 stage 8).

pub mod durable;
pub mod imap;
pub mod maildir;
pub mod stdin;
