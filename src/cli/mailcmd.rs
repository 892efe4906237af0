//! `deliver`, `post`, `quarantine`, `outbox`, `digest`, `schedule`.

use super::{output, CmdResult, Failure};
use crate::config::Config;
use crate::ingest::stdin;
use crate::model::Attachment;
use crate::pipeline::Pipeline;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

pub async fn deliver(cfg: &Config, file: Option<&Path>, json: bool) -> CmdResult {
    let store = crate::app::open_store(cfg).await.map_err(|e| Failure { code: stdin::EX_TEMPFAIL, message: e.to_string() })?;
    let pipeline = Pipeline::new(store, cfg);
    match stdin::deliver(&pipeline, file).await {
        Ok(o) if json => {
            output::json(&o);
            Ok(())
        }
        Ok(o) => {
            println!("{} ({}){}", o.decision, o.reason_detail, o.thread.map(|t| format!(" → {t}")).unwrap_or_default());
            Ok(())
        }
        Err(e) => Err(Failure { code: e.exit_code(), message: e.to_string() }),
    }
}

#[derive(Debug, Args)]
pub struct PostArgs {
    /// The thread: `VU#123456` (discussion), `private:VU#123456:<org>`, `VRF#..` (report).
    #[arg(long)]
    pub thread: String,
    /// The author, a coordinator's address.
    #[arg(long)]
    pub from: String,
    /// The text; read from standard input when neither --text nor --file is given.
    #[arg(long, conflicts_with = "file")]
    pub text: Option<String>,
    /// Read the text from FILE.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Attach FILE (repeatable).
    #[arg(long = "attach")]
    pub attach: Vec<PathBuf>,
    /// Pin the post: delivered at once even to digest readers.
    #[arg(long)]
    pub pinned: bool,
}

fn read_body(a: &PostArgs) -> Result<String, Failure> {
    let usage = |flag: &str, e: std::io::Error| Failure { code: super::EXIT_USAGE, message: format!("{flag}: {e}") };
    match (&a.text, &a.file) {
        (Some(t), _) => Ok(t.clone()),
        (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| usage("--file", e)),
        (None, None) => std::io::read_to_string(std::io::stdin()).map_err(|e| usage("stdin", e)),
    }
}

fn read_attachments(paths: &[PathBuf]) -> Result<Vec<Attachment>, Failure> {
    paths
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).map_err(|e| Failure { code: super::EXIT_USAGE, message: format!("--attach {}: {e}", p.display()) })?;
            let filename = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "attachment".into());
            Ok(Attachment { filename, content_type: "application/octet-stream".into(), bytes })
        })
        .collect()
}

pub async fn post(cfg: &Config, a: &PostArgs) -> CmdResult {
    let body = read_body(a)?;
    let attachments = read_attachments(&a.attach)?;
    let store = crate::app::open_store(cfg).await?;
    let thread = store.thread_by_name(&a.thread).await.map_err(|e| Failure { code: super::EXIT_USAGE, message: format!("--thread: {e}") })?;
    let pipeline = Pipeline::new(store.clone(), cfg);
    let r = crate::actions::post(&store, &pipeline.composer, thread, &a.from, &body, &attachments, a.pinned).await?;
    println!("post {}: {} message(s) queued, {} for digests", r.post_id, r.outbox.len(), r.digest.len());
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCmd {
    /// List held mail (all items with --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show one item and its raw mail.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Post a held mail into a thread.
    Release {
        id: i64,
        /// `VU#123456`, `private:VU#123456:<org>` or `VRF#..`.
        #[arg(long)]
        to: String,
    },
    /// Reject a held mail (kept, never posted).
    Reject {
        id: i64,
        #[arg(long, default_value = "rejected by coordinator")]
        note: String,
    },
}

pub async fn quarantine(cfg: &Config, cmd: &QuarantineCmd) -> CmdResult {
    let store = crate::app::open_store(cfg).await?;
    match cmd {
        QuarantineCmd::List { all, json } => {
            let items = store.list_quarantine(*all).await?;
            if *json {
                output::json(&items);
            } else {
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|q| vec![q.id.to_string(), q.state.clone(), output::time(q.created_at), q.reason_detail.clone(), q.message_id.clone().unwrap_or_default()])
                    .collect();
                output::table(&["ID", "STATE", "HELD SINCE", "REASON", "MESSAGE-ID"], &rows);
            }
        }
        QuarantineCmd::Show { id, json } => {
            let q = store.quarantine_item(*id).await?;
            let raw = store.inbound_raw(q.inbound_id).await?;
            if *json {
                output::json(&serde_json::json!({ "item": q, "raw": String::from_utf8_lossy(&raw) }));
            } else {
                println!("quarantine {} ({}): {}\n", q.id, q.state, q.reason_detail);
                println!("{}", String::from_utf8_lossy(&raw));
            }
        }
        QuarantineCmd::Release { id, to } => {
            let thread = store.thread_by_name(to).await.map_err(|e| Failure { code: super::EXIT_USAGE, message: format!("--to: {e}") })?;
            let pipeline = Pipeline::new(store.clone(), cfg);
            let r = crate::actions::release(&store, &pipeline.composer, *id, thread).await?;
            println!("released {id} into {to} as post {}: {} message(s) queued", r.post_id, r.outbox.len());
        }
        QuarantineCmd::Reject { id, note } => {
            store.reject_quarantine(*id, note).await?;
            println!("rejected {id}");
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum OutboxCmd {
    /// List outbox items (newest first).
    List {
        /// pending, sending, sent, failed or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Send everything due now, then exit.
    Send {
        #[arg(long)]
        json: bool,
    },
    /// Make a failed, dead or waiting item due now.
    Retry { id: i64 },
}

pub async fn outbox(cfg: &Config, cmd: &OutboxCmd) -> CmdResult {
    let store = crate::app::open_store(cfg).await?;
    match cmd {
        OutboxCmd::List { state, limit, json } => {
            if let Some(s) = state {
                crate::model::OutboxState::parse(s).ok_or_else(|| Failure {
                    code: super::EXIT_USAGE,
                    message: format!("--state: invalid value {s:?}; expected one of {}", crate::model::OutboxState::choices()),
                })?;
            }
            let items = store.list_outbox(state.as_deref(), *limit).await?;
            if *json {
                output::json(&items);
            } else {
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|o| vec![o.id.to_string(), o.state.clone(), o.kind.clone(), o.rcpt.clone(), o.attempts.to_string(), o.last_reply.clone().unwrap_or_default()])
                    .collect();
                output::table(&["ID", "STATE", "KIND", "TO", "TRIES", "LAST REPLY"], &rows);
            }
        }
        OutboxCmd::Send { json } => {
            let transport = crate::outbound::transport::Transport::from_config(&cfg.outbound)?;
            let s = crate::outbound::worker::send_due(&store, &std::sync::Arc::new(crate::compose::Composer::from_config(cfg)), &transport, &cfg.outbound).await?;
            if *json {
                output::json(&s);
            } else {
                println!("sent {}, retrying {}, failed {}, dead {}", s.sent, s.retried, s.failed, s.dead);
            }
        }
        OutboxCmd::Retry { id } => {
            if !store.retry_outbox(*id, crate::store::now_ms()).await? {
                return Err(Failure { code: 1, message: format!("no outbox item {id}") });
            }
            println!("outbox item {id} is due now");
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum DigestCmd {
    /// Queue every pending digest now (`serve` does it daily), then `outbox send` delivers them.
    Send {
        #[arg(long)]
        json: bool,
    },
}

pub async fn digest(cfg: &Config, cmd: &DigestCmd) -> CmdResult {
    let DigestCmd::Send { json } = cmd;
    let store = crate::app::open_store(cfg).await?;
    let pipeline = Pipeline::new(store.clone(), cfg);
    let s = crate::digest::send_digests(&store, &pipeline.composer).await?;
    if *json {
        output::json(&s);
    } else {
        println!("queued {} digest message(s) with {} post(s); {} no longer readable", s.messages, s.posts, s.dropped);
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Run what is due now (or at --now), each job once per due item, then exit;
    /// `outbox send` delivers what it queued.
    Run {
        /// The time to run at: 2026-04-20, 2026-04-20 14:00 (UTC) or RFC 3339.
        #[arg(long)]
        now: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn schedule(cfg: &Config, cmd: &ScheduleCmd) -> CmdResult {
    let ScheduleCmd::Run { now, json } = cmd;
    let now = match now {
        Some(t) => crate::workflow::parse_time(t).map_err(|e| Failure { code: super::EXIT_USAGE, message: format!("--now: {e}") })?,
        None => crate::store::now_ms(),
    };
    let store = crate::app::open_store(cfg).await?;
    let pipeline = Pipeline::new(store.clone(), cfg);
    let s = crate::schedule::run_due(&store, &pipeline.composer, cfg, now).await?;
    if *json {
        output::json(&s);
    } else {
        println!(
            "reminders {}, digests {}, coordinators' summaries {}, dead-item notices {}, bouncing notices {}, key warnings {}",
            s.reminders, s.digests.messages, s.coordinator_summaries, s.dead_notices, s.bouncing_notices, s.key_warnings
        );
    }
    Ok(())
}
