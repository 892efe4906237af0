//! Acknowledge stage (SPEC §3 stage 8), only after the commit: move the mail to the
//! mailbox's Processed or Quarantine folder, or leave it in place with a keyword. The
//! folders are created when missing.

use super::connect::{Caps, Session};
use super::names::{encode_mailbox, uid_set};
use super::{timed, ImapError, Source};
use crate::config::{AckMode, ImapMailbox};
use futures_util::TryStreamExt;
use std::time::Duration;
use tracing::info;

/// Where a committed message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Processed,
    Quarantine,
}

/// How messages are acknowledged on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Strategy {
    /// RFC 6851 §3.2: UID MOVE.
    Move,
    /// RFC 4315 §2.1: UID COPY, `\Deleted`, UID EXPUNGE of exactly those UIDs.
    CopyExpunge,
    /// Neither MOVE nor UIDPLUS: UID COPY and `\Deleted`; a plain EXPUNGE would also remove
    /// other clients' deleted mail, so expunging is left to them. Searches skip `\Deleted`.
    CopyDelete,
    /// `imap.acknowledge = "keyword"`: the keyword only.
    Keyword,
}

impl Strategy {
    pub fn choose(caps: Caps, mode: AckMode) -> Strategy {
        match mode {
            AckMode::Keyword => Strategy::Keyword,
            AckMode::Move if caps.moves => Strategy::Move,
            AckMode::Move if caps.uidplus => Strategy::CopyExpunge,
            AckMode::Move => Strategy::CopyDelete,
        }
    }
}

/// A mailbox name as an IMAP quoted string (RFC 3501 §4.3), for commands that take it raw.
fn quoted(wire: &str) -> String {
    format!("\"{}\"", wire.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether LIST shows the folder `name`.
pub async fn folder_exists(
    session: &mut Session,
    name: &str,
    t: Duration,
) -> Result<bool, ImapError> {
    let wire = encode_mailbox(name);
    let stream = timed(t, "LIST", session.list(Some(""), Some(&quoted(&wire)))).await?;
    let names = tokio::time::timeout(t, stream.try_collect::<Vec<_>>())
        .await
        .map_err(|_| ImapError::Timeout {
            what: "LIST",
            secs: t.as_secs(),
        })?
        .map_err(|source| ImapError::Imap {
            what: "LIST",
            source,
        })?;
    Ok(names.iter().any(|n| n.name() == wire))
}

/// Create `name` unless LIST shows it.
pub async fn ensure_folder(
    session: &mut Session,
    name: &str,
    t: Duration,
) -> Result<(), ImapError> {
    if folder_exists(session, name, t).await? {
        return Ok(());
    }
    let wire = encode_mailbox(name);
    match timed(t, "CREATE", session.create(&wire)).await {
        Ok(()) => {
            info!(folder = %name, "created the folder");
            Ok(())
        }
        // RFC 5530 §3: another instance or client created it meanwhile.
        Err(ImapError::Imap {
            source: async_imap::error::Error::No(detail),
            ..
        }) if detail.contains("ALREADYEXISTS") => Ok(()),
        Err(e) => Err(ImapError::Mailbox {
            mailbox: name.to_string(),
            detail: format!("cannot create the folder: {e}"),
        }),
    }
}

/// The Processed and Quarantine folders of `mailbox`, when mail is moved there.
pub async fn ensure_folders(
    session: &mut Session,
    mailbox: &ImapMailbox,
    strategy: Strategy,
    t: Duration,
) -> Result<(), ImapError> {
    if strategy == Strategy::Keyword {
        return Ok(());
    }
    ensure_folder(session, &mailbox.processed, t).await?;
    ensure_folder(session, &mailbox.quarantine, t).await
}

/// Acknowledge the committed messages of one batch.
pub async fn acknowledge(
    source: &Source,
    session: &mut Session,
    mailbox: &ImapMailbox,
    strategy: Strategy,
    committed: &[(u32, Target)],
) -> Result<(), ImapError> {
    let t = source.step_timeout();
    if committed.is_empty() {
        return Ok(());
    }
    if strategy == Strategy::Keyword {
        let all: Vec<u32> = committed.iter().map(|(uid, _)| *uid).collect();
        // RFC 3501 §6.4.6: .SILENT spares the untagged FETCH answers.
        return store_flags(session, &uid_set(&all), &source.cfg.keyword, t).await;
    }
    for (target, folder) in [
        (Target::Processed, &mailbox.processed),
        (Target::Quarantine, &mailbox.quarantine),
    ] {
        let uids: Vec<u32> = committed
            .iter()
            .filter(|(_, to)| *to == target)
            .map(|(uid, _)| *uid)
            .collect();
        if !uids.is_empty() {
            move_to(
                session,
                strategy,
                &uid_set(&uids),
                &encode_mailbox(folder),
                t,
            )
            .await?;
        }
    }
    Ok(())
}

async fn move_to(
    session: &mut Session,
    strategy: Strategy,
    set: &str,
    folder: &str,
    t: Duration,
) -> Result<(), ImapError> {
    match strategy {
        Strategy::Move => timed(t, "UID MOVE", session.uid_mv(set, folder)).await,
        Strategy::CopyExpunge => {
            timed(t, "UID COPY", session.uid_copy(set, folder)).await?;
            store_flags(session, set, "\\Deleted", t).await?;
            let stream = timed(t, "UID EXPUNGE", session.uid_expunge(set)).await?;
            tokio::time::timeout(t, stream.try_collect::<Vec<_>>())
                .await
                .map_err(|_| ImapError::Timeout {
                    what: "UID EXPUNGE",
                    secs: t.as_secs(),
                })?
                .map_err(|source| ImapError::Imap {
                    what: "UID EXPUNGE",
                    source,
                })?;
            Ok(())
        }
        Strategy::CopyDelete => {
            timed(t, "UID COPY", session.uid_copy(set, folder)).await?;
            store_flags(session, set, "\\Deleted", t).await
        }
        Strategy::Keyword => Ok(()),
    }
}

/// `UID STORE <set> +FLAGS.SILENT (<flag>)`.
async fn store_flags(
    session: &mut Session,
    set: &str,
    flag: &str,
    t: Duration,
) -> Result<(), ImapError> {
    let stream = timed(
        t,
        "UID STORE",
        session.uid_store(set, format!("+FLAGS.SILENT ({flag})")),
    )
    .await?;
    tokio::time::timeout(t, stream.try_collect::<Vec<_>>())
        .await
        .map_err(|_| ImapError::Timeout {
            what: "UID STORE",
            secs: t.as_secs(),
        })?
        .map_err(|source| ImapError::Imap {
            what: "UID STORE",
            source,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_follows_capabilities() {
        let caps = |moves, uidplus| Caps {
            idle: true,
            moves,
            uidplus,
        };
        assert_eq!(
            Strategy::choose(caps(true, true), AckMode::Move),
            Strategy::Move
        );
        assert_eq!(
            Strategy::choose(caps(false, true), AckMode::Move),
            Strategy::CopyExpunge
        );
        assert_eq!(
            Strategy::choose(caps(false, false), AckMode::Move),
            Strategy::CopyDelete
        );
        assert_eq!(
            Strategy::choose(caps(true, true), AckMode::Keyword),
            Strategy::Keyword
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted("Processed"), "\"Processed\"");
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
