//! Maildir source: mail in `new/` is ingested, then moved to `cur/` with the Seen flag
//! (Maildir `:2,S` info) only after the pipeline committed. A crash in between leaves the
//! file in `new/`; the next scan offers it again and deduplication makes that harmless.

use crate::pipeline::Pipeline;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

#[derive(Debug, thiserror::Error)]
pub enum MaildirError {
    #[error("maildir {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Counts of one scan.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanSummary {
    pub ingested: u64,
    pub deferred: u64,
}

/// Create `new/`, `cur/` and `tmp/` when missing.
pub fn ensure(dir: &Path) -> Result<(), MaildirError> {
    for sub in ["new", "cur", "tmp"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|e| MaildirError::Io(p, e))?;
    }
    Ok(())
}

/// File names in `new/`, oldest name first (Maildir names start with a timestamp).
fn pending(dir: &Path) -> Result<Vec<PathBuf>, MaildirError> {
    let new = dir.join("new");
    let rd = std::fs::read_dir(&new).map_err(|e| MaildirError::Io(new.clone(), e))?;
    let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    Ok(files)
}

/// Ingest everything in `new/` once.
pub async fn scan(pipeline: &Pipeline, dir: &Path, shutdown: &CancellationToken) -> Result<ScanSummary, MaildirError> {
    let mut summary = ScanSummary::default();
    for path in pending(dir)? {
        if shutdown.is_cancelled() {
            break;
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let raw = match tokio::fs::read(&path).await {
            Ok(raw) => raw,
            Err(e) => {
                warn!(file = %name, error = %e, "cannot read; will retry");
                summary.deferred += 1;
                continue;
            }
        };
        match pipeline.ingest(&raw, "maildir", &name).await {
            Ok(_) => {
                acknowledge(dir, &path, &name)?;
                summary.ingested += 1;
            }
            Err(e) => {
                error!(file = %name, error = %e, transient = e.is_transient(), "not ingested; left in new/");
                summary.deferred += 1;
            }
        }
    }
    Ok(summary)
}

/// Move a processed file to `cur/` with the Seen flag.
fn acknowledge(dir: &Path, path: &Path, name: &str) -> Result<(), MaildirError> {
    let base = name.split(":2,").next().unwrap_or(name);
    let target = dir.join("cur").join(format!("{base}:2,S"));
    std::fs::rename(path, &target).map_err(|e| MaildirError::Io(target, e))
}

/// Long-lived task: scan, then wait for the interval or shutdown.
pub async fn run(pipeline: Pipeline, dir: PathBuf, interval: Duration, wake: std::sync::Arc<tokio::sync::Notify>, shutdown: CancellationToken) {
    loop {
        match scan(&pipeline, &dir, &shutdown).await {
            Ok(s) if s.ingested > 0 => wake.notify_one(),
            Ok(_) => {}
            Err(e) => error!(error = %e, "maildir scan failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
