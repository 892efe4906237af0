//! IMAP source (SPEC §3 stages 1 and 8): one task per configured mailbox.
//!
//! Each task takes the mailbox's lease ([`lease`]), connects ([`connect`]), selects the
//! mailbox and applies the checkpoint and the first-start backlog guard ([`checkpoint`]),
//! fetches unacknowledged mail with `UID FETCH (BODY.PEEK[])` in batches and hands each
//! message to [`Pipeline::ingest`] ([`fetch`]), acknowledges each committed message by moving
//! it to the Processed or Quarantine folder or by setting a keyword ([`ack`]), then waits
//! with IDLE or polls ([`idle`]). Any connection, TLS, authentication or protocol error drops
//! the connection and retries with exponential backoff and jitter; nothing is acknowledged
//! before its decision is committed, so a crash or a cut at any point re-fetches the mail
//! and deduplication makes that harmless.

pub mod ack;
pub mod checkpoint;
pub mod connect;
pub mod fetch;
pub mod idle;
pub mod lease;
pub mod names;

use crate::config::{ImapConfig, ImapMailbox, TlsMode};
use crate::pipeline::{Outcome, Pipeline, PipelineError};
use crate::store::StoreError;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio_rustls::rustls::ClientConfig;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn, Instrument};

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("plaintext IMAP refused: {0} is not a loopback address")]
    NotLoopback(String),
    #[error("TLS with {host}: {detail}")]
    Tls { host: String, detail: String },
    #[error("authentication as {user:?} ({mechanism}) refused: {detail}")]
    Auth {
        user: String,
        mechanism: &'static str,
        detail: String,
    },
    #[error("IMAP secret: {0}")]
    Secret(String),
    #[error("{what} timed out after {secs} s")]
    Timeout { what: &'static str, secs: u64 },
    #[error("{what}: {source}")]
    Imap {
        what: &'static str,
        source: async_imap::error::Error,
    },
    #[error("mailbox {mailbox:?}: {detail}")]
    Mailbox { mailbox: String, detail: String },
    #[error("{0}")]
    Server(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{source_ref} not ingested: {source}")]
    Ingest {
        source_ref: String,
        source: PipelineError,
    },
}

impl ImapError {
    /// Credentials refused or unreadable: retried slowly, never hammered.
    pub fn is_auth(&self) -> bool {
        matches!(self, ImapError::Auth { .. } | ImapError::Secret(_))
    }
}

/// Run one IMAP command future under the step timeout.
pub(crate) async fn timed<T>(
    t: Duration,
    what: &'static str,
    fut: impl Future<Output = async_imap::error::Result<T>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(t, fut).await {
        Err(_) => Err(ImapError::Timeout {
            what,
            secs: t.as_secs(),
        }),
        Ok(Err(source)) => Err(ImapError::Imap { what, source }),
        Ok(Ok(v)) => Ok(v),
    }
}

/// One committed mail, reported to an observer (the benchmark) right after its commit.
#[derive(Debug, Clone)]
pub struct Committed {
    pub mailbox: String,
    pub uid: u32,
    pub outcome: Outcome,
    /// When the commit returned.
    pub at: Instant,
    /// Time spent in [`Pipeline::ingest`] for this mail (retries included).
    pub ingest_time: Duration,
}

/// What every mailbox task of one `[imap]` account shares.
#[derive(Debug)]
pub struct Source {
    pub pipeline: Pipeline,
    pub cfg: ImapConfig,
    /// `imap://user@host:port`: the key of checkpoints and leases.
    pub account: String,
    /// This instance's lease holder id.
    pub holder: String,
    pub tls: Option<Arc<ClientConfig>>,
    /// Woken after mail is committed, so the outbox worker sends without waiting.
    pub wake: Arc<Notify>,
    pub observer: Option<mpsc::UnboundedSender<Committed>>,
}

impl Source {
    /// Builds the TLS settings once (the system roots are read here).
    pub fn new(
        pipeline: Pipeline,
        cfg: ImapConfig,
        wake: Arc<Notify>,
    ) -> Result<Source, ImapError> {
        let tls = match cfg.tls {
            TlsMode::None => None,
            TlsMode::Tls | TlsMode::StartTls => Some(connect::tls_config(&cfg)?),
        };
        Ok(Source {
            pipeline,
            account: cfg.account(),
            holder: crate::instance::holder_id(rand::random()),
            cfg,
            tls,
            wake,
            observer: None,
        })
    }

    fn step_timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.timeout_secs)
    }
}

/// `serve`'s IMAP task: one task per mailbox until `shutdown`. Errors are logged and retried;
/// they never stop `serve`, whose outbox worker keeps running.
pub async fn run(
    pipeline: Pipeline,
    cfg: ImapConfig,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let source = match Source::new(pipeline, cfg, wake) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            error!(error = %e, "IMAP source not started");
            return;
        }
    };
    run_source(source, shutdown).await;
}

/// Run every mailbox of `source` until `shutdown`.
pub async fn run_source(source: Arc<Source>, shutdown: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    for mailbox in source.cfg.mailboxes.clone() {
        let span = tracing::info_span!("imap", mailbox = %mailbox.name);
        tasks.spawn(run_mailbox(Arc::clone(&source), mailbox, shutdown.clone()).instrument(span));
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            error!(error = %e, "IMAP mailbox task failed");
        }
    }
}

/// One mailbox: hold its lease, and within it connect, ingest and wait, reconnecting with
/// backoff after every failure.
pub async fn run_mailbox(source: Arc<Source>, mailbox: ImapMailbox, shutdown: CancellationToken) {
    let ttl = Duration::from_secs(source.cfg.lease_secs);
    loop {
        let Some(held) = lease::acquire(&source, &mailbox.name, ttl, &shutdown).await else {
            return;
        };
        info!(holder = %source.holder, "polling this mailbox");
        supervise(&source, &mailbox, held.token()).await;
        held.release(&source, &mailbox.name).await;
        if shutdown.is_cancelled() {
            return;
        }
        warn!("lease lost; waiting to take the mailbox again");
    }
}

/// Sessions one after another while `token` (shutdown or lease loss) is not cancelled.
async fn supervise(source: &Source, mailbox: &ImapMailbox, token: &CancellationToken) {
    let mut failures: u32 = 0;
    while !token.is_cancelled() {
        let err = match session(source, mailbox, token, &mut failures).await {
            Ok(()) => return,
            Err(e) => e,
        };
        failures = failures.saturating_add(1);
        let max = Duration::from_secs(source.cfg.reconnect_max_secs);
        let delay = reconnect_delay(failures, err.is_auth(), max, rand::random());
        if err.is_auth() {
            error!(error = %err, retry_in_secs = delay.as_secs(), "IMAP authentication failed; check imap.username and the secret file");
        } else {
            warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "IMAP connection failed; reconnecting");
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection: select, drain, wait, until `token` is cancelled (`Ok`) or an error.
async fn session(
    source: &Source,
    mailbox: &ImapMailbox,
    token: &CancellationToken,
    failures: &mut u32,
) -> Result<(), ImapError> {
    let mut conn = connect::open(&source.cfg, source.tls.as_ref()).await?;
    let strategy = ack::Strategy::choose(conn.caps, source.cfg.acknowledge);
    ack::ensure_folders(&mut conn.session, mailbox, strategy, source.step_timeout()).await?;
    let Some(mut state) = checkpoint::open(source, &mut conn.session, mailbox, token).await? else {
        logout(conn.session, source.step_timeout()).await;
        return Ok(());
    };
    info!(uidvalidity = state.uidvalidity, idle = conn.caps.idle && source.cfg.idle, ack = ?strategy, "connected");
    let full_every = Duration::from_secs(source.cfg.full_check_secs);
    let mut next_full = Instant::now();
    loop {
        let full = Instant::now() >= next_full;
        if full {
            next_full = Instant::now() + full_every;
        }
        let pass = fetch::Pass {
            source,
            mailbox,
            strategy,
            token,
        };
        fetch::drain(pass, &mut conn.session, &mut state, full, failures).await?;
        *failures = 0;
        if token.is_cancelled() {
            break;
        }
        let (session, woke) = idle::wait(source, conn.session, conn.caps, next_full, token).await?;
        conn.session = session;
        if woke == idle::Wake::Cancelled {
            break;
        }
    }
    logout(conn.session, source.step_timeout()).await;
    Ok(())
}

async fn logout(mut session: connect::Session, t: Duration) {
    // RFC 3501 §6.1.3: say goodbye; the connection is dropped either way.
    let _ = timed(t, "LOGOUT", session.logout()).await;
}

/// Wait before reconnection attempt number `failures` (1, 2, …): 1 s doubling (60 s doubling
/// after an authentication failure) up to `max`, then "equal jitter": between half and all
/// of it, by `jitter` in 0..1, so that instances cut off together do not return together.
pub fn reconnect_delay(failures: u32, auth: bool, max: Duration, jitter: f64) -> Duration {
    let first = if auth {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(1)
    };
    let doublings = failures.saturating_sub(1).min(20);
    let base = first
        .saturating_mul(1u32 << doublings)
        .min(max.max(Duration::from_secs(1)));
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    base.mul_f64(0.5 + 0.5 * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_double_with_jitter_and_a_cap() {
        let max = Duration::from_secs(300);
        let d = |n, auth, j| reconnect_delay(n, auth, max, j).as_millis();
        assert_eq!(d(1, false, 1.0), 1000);
        assert_eq!(d(2, false, 1.0), 2000);
        assert_eq!(d(3, false, 0.0), 2000, "half of 4 s at the least jitter");
        assert_eq!(d(10, false, 1.0), 300_000, "capped");
        assert_eq!(d(u32::MAX, false, 1.0), 300_000);
        assert_eq!(
            d(1, true, 1.0),
            60_000,
            "authentication failures start slow"
        );
        assert_eq!(d(3, true, 1.0), 240_000);
        assert_eq!(d(0, false, f64::NAN), 500);
        assert_eq!(
            reconnect_delay(1, true, Duration::from_secs(5), 1.0).as_millis(),
            5000
        );
        for n in 1..40 {
            let lo = d(n, false, 0.0);
            let hi = d(n, false, 1.0);
            assert!(lo * 2 == hi || lo * 2 + 1 == hi, "{n}: {lo} {hi}");
        }
    }

    #[test]
    fn auth_errors_are_told_apart() {
        let auth = ImapError::Auth {
            user: "u".into(),
            mechanism: "plain",
            detail: "no".into(),
        };
        assert!(auth.is_auth());
        assert!(ImapError::Secret("cannot read".into()).is_auth());
        assert!(!ImapError::Timeout {
            what: "connect",
            secs: 1
        }
        .is_auth());
    }
}
