//! `casegate deliver`: one mail from standard input (an MTA pipe) or a file.
//!
//! Exit status for the MTA (sysexits.h): 0 when the mail is stored and decided (routed,
//! quarantined or ignored), 75 (EX_TEMPFAIL) when a transient error means the MTA should
//! offer it again.

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
}

impl DeliverError {
    /// The exit status an MTA understands: 75 when retrying may succeed.
    pub fn exit_code(&self) -> i32 {
        match self {
            DeliverError::Read(_) => EX_TEMPFAIL,
            DeliverError::Pipeline(e) if e.is_transient() => EX_TEMPFAIL,
            DeliverError::Pipeline(_) => 1,
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

/// Deliver one mail through the pipeline.
pub async fn deliver(pipeline: &Pipeline, file: Option<&Path>) -> Result<Outcome, DeliverError> {
    let (mail, source_ref) = read_mail(file, pipeline.max_message_bytes())?;
    let source = if file.is_some() { "file" } else { "stdin" };
    Ok(match mail {
        Mail::Whole(raw) => pipeline.ingest(&raw, source, &source_ref).await?,
        Mail::Oversize { head, mut rest } => pipeline.ingest_oversize(&head, &mut *rest, source, &source_ref).await?,
    })
}
