//! `casegate deliver`: one mail from standard input (an MTA pipe) or a file.
//!
//! Exit status for the MTA (sysexits.h): 0 when the mail is stored and decided (routed,
//! quarantined or ignored), 75 (EX_TEMPFAIL) for everything that is not the mail's fault
//! (configuration, secret, a locked, full, read-only or unreachable database), so that the
//! MTA keeps the mail and offers it again.

use super::durable;
use crate::pipeline::{Outcome, Pipeline, PipelineError};
use std::io::Read;
use std::path::Path;

/// sysexits.h EX_TEMPFAIL.
pub const EX_TEMPFAIL: i32 = 75;

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("cannot read the mail: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("decided, but not yet durable: {0}")]
    Durable(crate::store::StoreError),
}

impl DeliverError {
    /// The exit status an MTA understands. None of these is the mail's fault (a mail that
    /// cannot be parsed or routed is quarantined, exit 0), so each asks the MTA to keep the
    /// mail and offer it again (75), even when only an operator can clear the cause: a
    /// bounce would lose the mail, a deferral keeps it in the MTA's queue.
    pub fn exit_code(&self) -> i32 {
        match self {
            DeliverError::Read(_) | DeliverError::Pipeline(_) | DeliverError::Durable(_) => EX_TEMPFAIL,
        }
    }
}

/// A mail as read from the source: whole, or (over the size limit) its first bytes and
/// the rest still to be read.
pub enum Mail {
    Whole(Vec<u8>),
    Oversize { head: Vec<u8>, rest: Box<dyn Read + Send> },
}

/// Reads the mail from `file`, or from standard input when `None`, holding at most
/// `max_bytes + 1` bytes: a longer mail comes back as [`Mail::Oversize`] with the rest
/// unread.
pub fn read_mail(file: Option<&Path>, max_bytes: u64) -> Result<(Mail, String), DeliverError> {
    let (mut reader, source_ref): (Box<dyn Read + Send>, String) = match file {
        Some(p) => (Box::new(std::fs::File::open(p).map_err(DeliverError::Read)?), p.display().to_string()),
        None => (Box::new(std::io::stdin()), "-".to_string()),
    };
    let mut head = Vec::new();
    (&mut reader).take(max_bytes.saturating_add(1)).read_to_end(&mut head).map_err(DeliverError::Read)?;
    if head.len() as u64 <= max_bytes {
        return Ok((Mail::Whole(head), source_ref));
    }
    Ok((Mail::Oversize { head, rest: reader }, source_ref))
}

/// Deliver one mail through the pipeline. `Ok` only once the decision is durable: the
/// caller's exit 0 acknowledges the mail to the MTA (SPEC §3 stage 8).
pub async fn deliver(pipeline: &Pipeline, file: Option<&Path>) -> Result<Outcome, DeliverError> {
    let (mail, source_ref) = read_mail(file, pipeline.max_message_bytes())?;
    let source = if file.is_some() { "file" } else { "stdin" };
    let outcome = match mail {
        Mail::Whole(raw) => pipeline.ingest(&raw, source, &source_ref).await?,
        Mail::Oversize { head, mut rest } => pipeline.ingest_oversize(&head, &mut *rest, source, &source_ref).await?,
    };
    durable::committed(source, &source_ref);
    durable::barrier(&pipeline.store).await.map_err(DeliverError::Durable)?;
    durable::acknowledged(source, &source_ref);
    Ok(outcome)
}
