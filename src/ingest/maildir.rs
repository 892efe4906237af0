//! Maildir source: mail in `new/` is ingested, then moved to `cur/` with the Seen flag
//! (Maildir `:2,S` info) only after the pipeline committed. A crash in between leaves the
//! file in `new/`; the next scan offers it again and deduplication makes that harmless.
//!
//! Only regular files are read, and never through a symlink: anything else in `new/` (a
//! symlink, a fifo, a directory, a device node) is moved unread to `.casegate-rejected/`
//! beside `cur/`, with a log line.

use super::durable;
use crate::pipeline::Pipeline;
use std::fs::{FileType, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

/// Where entries of `new/` that are not regular files are moved, beside `cur/`.
pub const REJECTED: &str = ".casegate-rejected";

#[derive(Debug, thiserror::Error)]
pub enum MaildirError {
    #[error("maildir {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("maildir: committed mail not acknowledged: {0}")]
    Durable(crate::store::StoreError),
}

/// Counts of one scan.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanSummary {
    pub ingested: u64,
    pub deferred: u64,
    /// Entries that were not regular files, moved to [`REJECTED`].
    pub rejected: u64,
}

/// Create `new/`, `cur/` and `tmp/` when missing.
pub fn ensure(dir: &Path) -> Result<(), MaildirError> {
    for sub in ["new", "cur", "tmp"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|e| MaildirError::Io(p, e))?;
    }
    Ok(())
}

/// Entries of `new/` of any kind, oldest name first (Maildir names start with a timestamp).
fn pending(dir: &Path) -> Result<Vec<PathBuf>, MaildirError> {
    let new = dir.join("new");
    let rd = std::fs::read_dir(&new).map_err(|e| MaildirError::Io(new.clone(), e))?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    Ok(entries)
}

/// One entry of `new/`, as found.
#[derive(Debug)]
enum Entry {
    Mail(Vec<u8>),
    /// Not a regular file: what it is instead.
    NotRegular(&'static str),
}

/// What a file type is, when it is not a regular file.
fn not_regular(t: FileType) -> Option<&'static str> {
    let kind = if t.is_file() {
        return None;
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else {
        "special file"
    };
    Some(kind)
}

/// Read `path` only if it is a regular file: look at the entry itself (lstat), then open it
/// without following a symlink and without waiting on a fifo (`O_NOFOLLOW | O_NONBLOCK`),
/// and check that what was opened is that same regular file (it may have been replaced in
/// between; then it is left for the next scan).
fn read_regular(path: &Path) -> std::io::Result<Entry> {
    let seen = std::fs::symlink_metadata(path)?;
    if let Some(kind) = not_regular(seen.file_type()) {
        return Ok(Entry::NotRegular(kind));
    }
    let mut file = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Entry::NotRegular("symlink")),
        Err(e) => return Err(e),
    };
    let opened = file.metadata()?;
    if let Some(kind) = not_regular(opened.file_type()) {
        return Ok(Entry::NotRegular(kind));
    }
    if !same_file(&seen, &opened) {
        return Err(std::io::Error::other("replaced while being opened"));
    }
    let mut raw = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0));
    file.read_to_end(&mut raw)?;
    Ok(Entry::Mail(raw))
}

fn same_file(a: &Metadata, b: &Metadata) -> bool {
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

/// Committed files acknowledged together: one durability barrier covers them all.
const ACK_BATCH: usize = 64;

/// What became of one entry of `new/`.
enum Taken {
    /// Committed; to be moved to `cur/` after the barrier.
    Committed(PathBuf, String),
    Rejected,
    Deferred,
}

/// Ingest everything in `new/` once. Committed files are moved to `cur/` in batches, each
/// after a durability barrier (SPEC §3 stage 8).
pub async fn scan(pipeline: &Pipeline, dir: &Path, shutdown: &CancellationToken) -> Result<ScanSummary, MaildirError> {
    let mut summary = ScanSummary::default();
    let mut committed = Vec::new();
    for path in pending(dir)? {
        if shutdown.is_cancelled() {
            break;
        }
        match take(pipeline, dir, path).await {
            Taken::Committed(path, name) => committed.push((path, name)),
            Taken::Rejected => summary.rejected += 1,
            Taken::Deferred => summary.deferred += 1,
        }
        if committed.len() >= ACK_BATCH {
            summary.ingested += acknowledge_all(pipeline, dir, &mut committed).await?;
        }
    }
    summary.ingested += acknowledge_all(pipeline, dir, &mut committed).await?;
    Ok(summary)
}

/// Read one entry of `new/` and hand it to the pipeline, or move it aside.
async fn take(pipeline: &Pipeline, dir: &Path, path: PathBuf) -> Taken {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let reading = path.clone();
    let entry = tokio::task::spawn_blocking(move || read_regular(&reading))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    let raw = match entry {
        Ok(Entry::Mail(raw)) => raw,
        Ok(Entry::NotRegular(kind)) => {
            return match reject(dir, &path, &name, kind) {
                Ok(()) => Taken::Rejected,
                Err(e) => {
                    error!(file = %name, kind, error = %e, "not a regular file, and cannot be moved aside; left unread in new/");
                    Taken::Deferred
                }
            };
        }
        Err(e) => {
            warn!(file = %name, error = %e, "cannot read; will retry");
            return Taken::Deferred;
        }
    };
    #[cfg(debug_assertions)]
    crate::fault::source_task(&raw);
    match pipeline.ingest(&raw, "maildir", &name).await {
        Ok(_) => {
            durable::committed("maildir", &name);
            Taken::Committed(path, name)
        }
        Err(e) => {
            error!(file = %name, error = %e, transient = e.is_transient(), "not ingested; left in new/");
            Taken::Deferred
        }
    }
}

/// Make the commits durable, then move the committed files to `cur/`; how many were moved.
async fn acknowledge_all(pipeline: &Pipeline, dir: &Path, committed: &mut Vec<(PathBuf, String)>) -> Result<u64, MaildirError> {
    if committed.is_empty() {
        return Ok(0);
    }
    durable::barrier(&pipeline.store).await.map_err(MaildirError::Durable)?;
    let mut moved = 0;
    for (path, name) in committed.drain(..) {
        acknowledge(dir, &path, &name)?;
        durable::acknowledged("maildir", &name);
        moved += 1;
    }
    Ok(moved)
}

/// Move an entry that is not a regular file, unread, to [`REJECTED`] (under a free name).
fn reject(dir: &Path, path: &Path, name: &str, kind: &str) -> Result<(), MaildirError> {
    let aside = dir.join(REJECTED);
    std::fs::create_dir_all(&aside).map_err(|e| MaildirError::Io(aside.clone(), e))?;
    let mut target = aside.join(name);
    let mut n = 1;
    while std::fs::symlink_metadata(&target).is_ok() {
        target = aside.join(format!("{name}.{n}"));
        n += 1;
    }
    std::fs::rename(path, &target).map_err(|e| MaildirError::Io(target.clone(), e))?;
    warn!(file = %name, kind, moved_to = %target.display(), "not a regular file: not read, moved aside");
    Ok(())
}

/// Move a processed file to `cur/` with the Seen flag.
fn acknowledge(dir: &Path, path: &Path, name: &str) -> Result<(), MaildirError> {
    let base = name.split(":2,").next().unwrap_or(name);
    let target = dir.join("cur").join(format!("{base}:2,S"));
    std::fs::rename(path, &target).map_err(|e| MaildirError::Io(target, e))
}

/// Long-lived task: scan, then wait for the interval or shutdown. A scan that fails (the
/// folder is gone or unreadable, the database cannot make commits durable) ends the task
/// with the error; `serve`'s supervisor reports it and starts the task again, which
/// re-creates missing folders.
pub async fn run(pipeline: Pipeline, dir: PathBuf, interval: Duration, wake: std::sync::Arc<tokio::sync::Notify>, shutdown: CancellationToken) -> Result<(), MaildirError> {
    ensure(&dir)?;
    loop {
        let s = scan(&pipeline, &dir, &shutdown).await?;
        if s.ingested > 0 {
            wake.notify_one();
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
