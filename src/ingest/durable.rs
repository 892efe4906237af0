//! The acknowledgement rule of every source (SPEC §3 stage 8): a source is acknowledged
//! (IMAP MOVE or flag, Maildir rename, exit 0 to the MTA) only after the commits that
//! decided its mail are durable. Commits run with `synchronous=NORMAL` in WAL mode, so a
//! source calls [`barrier`] ([`Store::make_durable`]) between the commits of a batch and
//! its acknowledgement: one sync covers the whole batch.
//!
//! In debug builds the order is recorded for tests: with `CASEGATE_ACK_LOG` set to a file,
//! [`committed`], [`barrier`] and [`acknowledged`] append one line each (`commit SOURCE REF`,
//! `durable`, `ack SOURCE REF`). Release builds record nothing.

use crate::store::{Store, StoreError};

/// The mail `source_ref` of `source` is committed (the pipeline returned `Ok`).
pub fn committed(source: &str, source_ref: &str) {
    record(&format!("commit {source} {source_ref}"));
}

/// Make every commit so far durable; the source may acknowledge once this returns `Ok`.
pub async fn barrier(store: &Store) -> Result<(), StoreError> {
    store.make_durable().await?;
    record("durable");
    Ok(())
}

/// The mail `source_ref` of `source` is acknowledged to its source.
pub fn acknowledged(source: &str, source_ref: &str) {
    record(&format!("ack {source} {source_ref}"));
}

/// Append one line to `CASEGATE_ACK_LOG` (debug builds only; one `write` per line, so the
/// lines of concurrent tasks and processes do not mix).
#[cfg(debug_assertions)]
fn record(line: &str) {
    use std::io::Write;
    let Some(path) = std::env::var_os("CASEGATE_ACK_LOG") else {
        return;
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut f) = file {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

#[cfg(not(debug_assertions))]
fn record(_line: &str) {}
