//! `casegate imap check`: connect, authenticate, and report each configured mailbox (its
//! UIDVALIDITY, messages, the mail waiting to be processed, the checkpoint and what the
//! backlog guard would do, the folders mail is moved to). The mailboxes are opened with
//! EXAMINE and nothing is written to the server; the database is only read (after the
//! migrations every command runs).

use super::{output, CmdResult, Failure};
use crate::config::{Backlog, Config, ImapConfig, ImapMailbox};
use crate::ingest::imap::checkpoint::{candidates, search_criteria};
use crate::ingest::imap::connect::{self, Caps, Session};
use crate::ingest::imap::names::encode_mailbox;
use crate::ingest::imap::{ack, timed, ImapError};
use crate::store::imap::Checkpoint;
use crate::store::Store;
use clap::Subcommand;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum ImapCmd {
    /// Connect and authenticate, then report each mailbox: UIDVALIDITY, messages, backlog,
    /// folders. Exits 1 with the reason when the server or a mailbox cannot be used.
    Check {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Serialize)]
struct Report {
    account: String,
    tls: &'static str,
    auth: &'static str,
    capabilities: Caps,
    acknowledge: ack::Strategy,
    mailboxes: Vec<MailboxReport>,
}

#[derive(Debug, Serialize)]
struct MailboxReport {
    name: String,
    /// Why the mailbox cannot be used; the other fields are empty then.
    error: Option<String>,
    uidvalidity: u32,
    messages: u32,
    /// Mail the next pass would take.
    waiting: usize,
    checkpoint: Option<Checkpoint>,
    /// What `serve` does with the mailbox, in words.
    status: String,
    processed_folder: Option<bool>,
    quarantine_folder: Option<bool>,
    lease_holder: Option<String>,
}

pub async fn imap(cfg: &Config, cmd: &ImapCmd) -> CmdResult {
    let ImapCmd::Check { json } = cmd;
    let imap = cfg.imap.as_ref().ok_or_else(|| Failure {
        code: 1,
        message: "no [imap] section in the configuration".into(),
    })?;
    let store = crate::app::open_store(cfg).await?;
    let failed = |e: ImapError| Failure {
        code: 1,
        message: format!("IMAP check of {} failed: {e}", imap.account()),
    };
    let tls = match imap.tls {
        crate::config::TlsMode::None => None,
        _ => Some(connect::tls_config(imap).map_err(failed)?),
    };
    let mut conn = connect::open(imap, tls.as_ref()).await.map_err(failed)?;
    let mut report = Report {
        account: imap.account(),
        tls: imap.tls.as_str(),
        auth: imap.auth.as_str(),
        capabilities: conn.caps,
        acknowledge: ack::Strategy::choose(conn.caps, imap.acknowledge),
        mailboxes: Vec::new(),
    };
    for mailbox in &imap.mailboxes {
        let m = inspect(imap, &store, &mut conn.session, mailbox, report.acknowledge).await?;
        report.mailboxes.push(m);
    }
    let _ = timed(
        Duration::from_secs(imap.timeout_secs),
        "LOGOUT",
        conn.session.logout(),
    )
    .await;
    if *json {
        output::json(&report);
    } else {
        print_report(&report);
    }
    let bad: Vec<String> = report
        .mailboxes
        .iter()
        .filter_map(|m| m.error.as_ref().map(|e| format!("{}: {e}", m.name)))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            message: format!("IMAP check failed: {}", bad.join("; ")),
        })
    }
}

async fn inspect(
    imap: &ImapConfig,
    store: &Store,
    session: &mut Session,
    mailbox: &ImapMailbox,
    strategy: ack::Strategy,
) -> Result<MailboxReport, Failure> {
    let t = Duration::from_secs(imap.timeout_secs);
    let account = imap.account();
    let mut r = MailboxReport {
        name: mailbox.name.clone(),
        error: None,
        uidvalidity: 0,
        messages: 0,
        waiting: 0,
        checkpoint: store.imap_checkpoint(&account, &mailbox.name).await?,
        status: String::new(),
        processed_folder: None,
        quarantine_folder: None,
        lease_holder: store
            .imap_lease(&account, &mailbox.name)
            .await?
            .map(|l| l.holder),
    };
    let selected = match timed(t, "EXAMINE", session.examine(encode_mailbox(&mailbox.name))).await {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(format!("cannot open the mailbox: {e}"));
            return Ok(r);
        }
    };
    r.uidvalidity = selected.uid_validity.unwrap_or(0);
    r.messages = selected.exists;
    let fresh = Checkpoint {
        uidvalidity: r.uidvalidity,
        floor_uid: 0,
        last_uid: 0,
    };
    let cp = r
        .checkpoint
        .filter(|c| c.uidvalidity == r.uidvalidity)
        .unwrap_or(fresh);
    let (criteria, from) = search_criteria(imap, &cp, true);
    let found = timed(t, "UID SEARCH", session.uid_search(&criteria))
        .await
        .map_err(imap_failure)?;
    r.waiting = candidates(found, from).len();
    r.status = status(imap.backlog, r.checkpoint, r.uidvalidity, r.waiting);
    if strategy != ack::Strategy::Keyword {
        let processed = ack::folder_exists(session, &mailbox.processed, t).await;
        r.processed_folder = Some(processed.map_err(imap_failure)?);
        let quarantine = ack::folder_exists(session, &mailbox.quarantine, t).await;
        r.quarantine_folder = Some(quarantine.map_err(imap_failure)?);
    }
    Ok(r)
}

fn imap_failure(e: ImapError) -> Failure {
    Failure {
        code: 1,
        message: format!("IMAP check failed: {e}"),
    }
}

/// What `serve` will do with the mailbox, in words.
fn status(backlog: Backlog, cp: Option<Checkpoint>, uidvalidity: u32, waiting: usize) -> String {
    match cp {
        None if waiting == 0 => "first contact; empty: serve starts polling".into(),
        None => match backlog {
            Backlog::Refuse => format!(
                "first contact with {waiting} message(s) waiting: imap.backlog = \"refuse\" holds them \
                 (set \"process\" or \"skip\")"
            ),
            Backlog::Process => format!("first contact: imap.backlog = \"process\" processes the {waiting} message(s)"),
            Backlog::Skip => format!("first contact: imap.backlog = \"skip\" leaves the {waiting} message(s) alone"),
        },
        Some(c) if c.uidvalidity != uidvalidity => format!(
            "UIDVALIDITY changed ({} → {uidvalidity}): serve re-scans the mailbox; deduplication keeps mail from \
             being posted twice",
            c.uidvalidity
        ),
        Some(c) => format!("polled: {waiting} message(s) to process; committed through UID {}", c.last_uid),
    }
}

fn print_report(r: &Report) {
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!(
        "{}: connected ({}), authenticated ({})",
        r.account, r.tls, r.auth
    );
    println!(
        "capabilities: IDLE {}, MOVE {}, UIDPLUS {}; acknowledgement: {:?}",
        yes(r.capabilities.idle),
        yes(r.capabilities.moves),
        yes(r.capabilities.uidplus),
        r.acknowledge
    );
    for m in &r.mailboxes {
        if let Some(e) = &m.error {
            println!("mailbox {:?}: ERROR {e}", m.name);
            continue;
        }
        println!(
            "mailbox {:?}: UIDVALIDITY {}, {} message(s), {} waiting",
            m.name, m.uidvalidity, m.messages, m.waiting
        );
        println!("  {}", m.status);
        let folder = |f: Option<bool>| match f {
            Some(true) => "present",
            Some(false) => "missing (created by serve)",
            None => "unused",
        };
        println!(
            "  Processed folder: {}; Quarantine folder: {}",
            folder(m.processed_folder),
            folder(m.quarantine_folder)
        );
        if let Some(h) = &m.lease_holder {
            println!("  lease: {h}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words() {
        let cp = |v| {
            Some(Checkpoint {
                uidvalidity: v,
                floor_uid: 0,
                last_uid: 9,
            })
        };
        assert!(status(Backlog::Refuse, None, 1, 0).contains("empty"));
        assert!(status(Backlog::Refuse, None, 1, 4).contains("\"refuse\" holds them"));
        assert!(status(Backlog::Skip, None, 1, 4).contains("leaves the 4"));
        assert!(status(Backlog::Process, None, 1, 4).contains("processes the 4"));
        assert!(status(Backlog::Refuse, cp(2), 1, 4).contains("UIDVALIDITY changed (2 → 1)"));
        assert!(status(Backlog::Refuse, cp(1), 1, 4).contains("through UID 9"));
    }
}
