//! Checkpoint stage: select the mailbox, compare its UIDVALIDITY with the stored one, and on
//! the first contact apply the backlog guard (`imap.backlog`). Also the pure rules: which
//! UIDs a pass asks for, and how far a batch moves the checkpoint.

use super::names::encode_mailbox;
use super::{connect::Session, timed, ImapError, Source};
use crate::config::{AckMode, Backlog, ImapConfig, ImapMailbox};
use crate::store::imap::Checkpoint;
use crate::store::now_ms;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The selected mailbox and where casegate stands in it.
#[derive(Debug, Clone)]
pub struct MailboxState {
    pub uidvalidity: u32,
    pub checkpoint: Checkpoint,
}

/// What the first contact with a mailbox does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstContact {
    /// Start from this checkpoint.
    Start(Checkpoint),
    /// `backlog = "refuse"` and mail is waiting: process nothing.
    Refuse,
}

/// The backlog guard (pure): `waiting` messages are in the mailbox, the highest UID given so
/// far is `uid_next - 1`.
pub fn first_contact(
    backlog: Backlog,
    waiting: usize,
    uidvalidity: u32,
    uid_next: u32,
) -> FirstContact {
    let start = |floor: u32| {
        FirstContact::Start(Checkpoint {
            uidvalidity,
            floor_uid: floor,
            last_uid: floor,
        })
    };
    match backlog {
        _ if waiting == 0 => start(0),
        Backlog::Process => start(0),
        Backlog::Skip => start(uid_next.saturating_sub(1)),
        Backlog::Refuse => FirstContact::Refuse,
    }
}

/// The `UID SEARCH` criteria of a pass (RFC 3501 §6.4.4) and the lowest UID it may return.
/// Mail at or below the floor is never touched; in keyword mode a quick pass starts after
/// the last committed UID and a full pass re-checks everything above the floor for mail
/// whose keyword was never set. Mail marked `\Deleted` (acknowledged without UIDPLUS) is done.
pub fn search_criteria(cfg: &ImapConfig, cp: &Checkpoint, full: bool) -> (String, u32) {
    let from = match cfg.acknowledge {
        AckMode::Keyword if !full => cp.last_uid.max(cp.floor_uid),
        _ => cp.floor_uid,
    }
    .saturating_add(1);
    let keyword = match cfg.acknowledge {
        AckMode::Keyword => format!(" UNKEYWORD {}", cfg.keyword),
        AckMode::Move => String::new(),
    };
    (format!("UID {from}:* UNDELETED{keyword}"), from)
}

/// The UIDs a search returned that a pass may take, ascending. RFC 3501 §6.4.8: `n:*`
/// always includes the highest UID even when it is below `n`, so filter again.
pub fn candidates(found: impl IntoIterator<Item = u32>, from: u32) -> Vec<u32> {
    let mut uids: Vec<u32> = found.into_iter().filter(|u| *u >= from).collect();
    uids.sort_unstable();
    uids
}

/// How far a batch moves the checkpoint: the highest UID of `batch` (ascending) up to which
/// every message was committed or is gone from the mailbox (asked for but not returned).
pub fn committed_through(batch: &[u32], returned: &[u32], committed: &[u32]) -> Option<u32> {
    let mut through = None;
    for uid in batch {
        if committed.contains(uid) || !returned.contains(uid) {
            through = Some(*uid);
        } else {
            break;
        }
    }
    through
}

/// UIDs of the mail a pass would take now.
pub async fn search(
    source: &Source,
    session: &mut Session,
    cp: &Checkpoint,
    full: bool,
) -> Result<Vec<u32>, ImapError> {
    let (criteria, from) = search_criteria(&source.cfg, cp, full);
    let found = timed(
        source.step_timeout(),
        "UID SEARCH",
        session.uid_search(&criteria),
    )
    .await?;
    Ok(candidates(found, from))
}

/// Select the mailbox and settle the checkpoint. `None` when `token` was cancelled while
/// the backlog guard held the mailbox.
pub async fn open(
    source: &Source,
    session: &mut Session,
    mailbox: &ImapMailbox,
    token: &CancellationToken,
) -> Result<Option<MailboxState>, ImapError> {
    let mut told = None;
    loop {
        let (uidvalidity, uid_next) = select(source, session, mailbox).await?;
        let store = &source.pipeline.store;
        match store.imap_checkpoint(&source.account, &mailbox.name).await? {
            Some(cp) if cp.uidvalidity == uidvalidity => {
                return Ok(Some(MailboxState { uidvalidity, checkpoint: cp }))
            }
            // RFC 3501 §2.3.1.1: a new UIDVALIDITY means the old UIDs mean nothing. Re-scan
            // the whole mailbox; deduplication keeps mail from being posted twice.
            Some(cp) if cp.floor_uid == 0 => {
                warn!(old = cp.uidvalidity, new = uidvalidity, "UIDVALIDITY changed: re-scanning the mailbox");
                let fresh = Checkpoint { uidvalidity, floor_uid: 0, last_uid: 0 };
                store.imap_set_checkpoint(&source.account, &mailbox.name, fresh, now_ms()).await?;
                return Ok(Some(MailboxState { uidvalidity, checkpoint: fresh }));
            }
            // Mail was skipped at the first contact and can no longer be told from new mail:
            // the backlog guard decides again.
            Some(cp) if told.is_none() => warn!(
                old = cp.uidvalidity,
                new = uidvalidity,
                "UIDVALIDITY changed and mail was skipped at the first contact: applying imap.backlog again"
            ),
            Some(_) | None => {}
        }
        if let Some(state) =
            guard(source, session, mailbox, uidvalidity, uid_next, &mut told).await?
        {
            return Ok(Some(state));
        }
        tokio::select! {
            _ = token.cancelled() => return Ok(None),
            _ = tokio::time::sleep(Duration::from_secs(source.cfg.poll_interval_secs)) => {}
        }
    }
}

/// First contact: apply `imap.backlog`. `None` while it refuses (said once per count).
async fn guard(
    source: &Source,
    session: &mut Session,
    mailbox: &ImapMailbox,
    uidvalidity: u32,
    uid_next: u32,
    told: &mut Option<usize>,
) -> Result<Option<MailboxState>, ImapError> {
    let probe = Checkpoint {
        uidvalidity,
        floor_uid: 0,
        last_uid: 0,
    };
    let waiting = search(source, session, &probe, true).await?.len();
    match first_contact(source.cfg.backlog, waiting, uidvalidity, uid_next) {
        FirstContact::Start(cp) => {
            let skipped = if cp.floor_uid > 0 { waiting } else { 0 };
            let backlog = source.cfg.backlog.as_str();
            info!(waiting, skipped, backlog, "first contact with this mailbox");
            let store = &source.pipeline.store;
            store
                .imap_set_checkpoint(&source.account, &mailbox.name, cp, now_ms())
                .await?;
            Ok(Some(MailboxState {
                uidvalidity,
                checkpoint: cp,
            }))
        }
        FirstContact::Refuse if *told != Some(waiting) => {
            warn!(
                waiting,
                "backlog guard: first contact with a mailbox holding {waiting} message(s); imap.backlog = \"refuse\" \
                 processes none of them. Set imap.backlog = \"process\" to process them or \"skip\" to leave them, \
                 or empty the mailbox; rechecking every imap.poll_interval_secs"
            );
            *told = Some(waiting);
            Ok(None)
        }
        FirstContact::Refuse => Ok(None),
    }
}

/// SELECT: the UIDVALIDITY and UIDNEXT of the mailbox.
async fn select(
    source: &Source,
    session: &mut Session,
    mailbox: &ImapMailbox,
) -> Result<(u32, u32), ImapError> {
    let wire = encode_mailbox(&mailbox.name);
    let selected = timed(source.step_timeout(), "SELECT", session.select(&wire))
        .await
        .map_err(|e| match e {
            ImapError::Imap {
                source: async_imap::error::Error::No(detail),
                ..
            } => ImapError::Mailbox {
                mailbox: mailbox.name.clone(),
                detail: format!("cannot select: {detail}"),
            },
            other => other,
        })?;
    // RFC 3501 §6.3.1: the OK of SELECT carries UIDVALIDITY; without it UIDs cannot be kept.
    let uidvalidity = selected.uid_validity.ok_or_else(|| ImapError::Mailbox {
        mailbox: mailbox.name.clone(),
        detail: "the server gave no UIDVALIDITY".into(),
    })?;
    Ok((uidvalidity, selected.uid_next.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsMode;
    use std::path::PathBuf;

    fn cfg(ack: AckMode) -> ImapConfig {
        ImapConfig {
            host: "127.0.0.1".into(),
            port: 143,
            tls: TlsMode::None,
            ca_file: None,
            username: "gw".into(),
            auth: crate::config::ImapAuth::Login,
            secret_file: PathBuf::new(),
            backlog: Backlog::Refuse,
            acknowledge: ack,
            keyword: "$Done".into(),
            batch_size: 100,
            idle: true,
            idle_renew_secs: 1500,
            poll_interval_secs: 30,
            full_check_secs: 300,
            timeout_secs: 60,
            reconnect_max_secs: 300,
            lease_secs: 60,
            mailboxes: vec![],
        }
    }

    #[test]
    fn backlog_guard() {
        let cp = |f| {
            FirstContact::Start(Checkpoint {
                uidvalidity: 5,
                floor_uid: f,
                last_uid: f,
            })
        };
        assert_eq!(
            first_contact(Backlog::Refuse, 0, 5, 1),
            cp(0),
            "an empty mailbox starts"
        );
        assert_eq!(
            first_contact(Backlog::Refuse, 3, 5, 40),
            FirstContact::Refuse
        );
        assert_eq!(first_contact(Backlog::Process, 3, 5, 40), cp(0));
        assert_eq!(first_contact(Backlog::Skip, 3, 5, 40), cp(39));
        assert_eq!(
            first_contact(Backlog::Skip, 3, 5, 0),
            cp(0),
            "no UIDNEXT: nothing to skip by"
        );
    }

    #[test]
    fn search_starts_above_the_floor_or_the_checkpoint() {
        let cp = Checkpoint {
            uidvalidity: 1,
            floor_uid: 10,
            last_uid: 50,
        };
        let mv = cfg(AckMode::Move);
        assert_eq!(
            search_criteria(&mv, &cp, false),
            ("UID 11:* UNDELETED".into(), 11)
        );
        assert_eq!(
            search_criteria(&mv, &cp, true),
            ("UID 11:* UNDELETED".into(), 11)
        );
        let kw = cfg(AckMode::Keyword);
        assert_eq!(
            search_criteria(&kw, &cp, false),
            ("UID 51:* UNDELETED UNKEYWORD $Done".into(), 51)
        );
        assert_eq!(
            search_criteria(&kw, &cp, true),
            ("UID 11:* UNDELETED UNKEYWORD $Done".into(), 11)
        );
        let top = Checkpoint {
            uidvalidity: 1,
            floor_uid: 0,
            last_uid: u32::MAX,
        };
        assert_eq!(search_criteria(&kw, &top, false).1, u32::MAX, "saturates");
    }

    #[test]
    fn candidates_drop_the_star_answer() {
        assert_eq!(candidates([7, 3, 12], 5), vec![7, 12]);
        assert_eq!(
            candidates([4], 5),
            Vec::<u32>::new(),
            "`5:*` answered with the highest UID 4"
        );
    }

    #[test]
    fn checkpoint_moves_over_committed_and_vanished_mail_only() {
        let batch = [3, 4, 5, 6, 7];
        assert_eq!(committed_through(&batch, &batch, &batch), Some(7));
        assert_eq!(
            committed_through(&batch, &[3, 4, 6, 7], &[3, 4, 6, 7]),
            Some(7),
            "5 vanished"
        );
        assert_eq!(
            committed_through(&batch, &batch, &[3, 4, 6]),
            Some(4),
            "5 failed"
        );
        assert_eq!(committed_through(&batch, &batch, &[]), None);
        assert_eq!(committed_through(&batch, &[], &[]), Some(7), "all gone");
        assert_eq!(committed_through(&[], &[], &[]), None);
    }
}
