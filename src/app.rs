//! `casegate serve`: the long-lived tasks (IMAP and Maildir ingest, outbox worker, the
//! scheduler of reminders, digests, key checks and the coordinators' notes, HTTP endpoint)
//! and shutdown.
//!
//! Each task is one loop on a shared [`CancellationToken`]; SIGTERM or SIGINT cancels it,
//! the tasks finish the mail or the sends in hand, and `serve` exits 0. Each runs under a
//! supervisor ([`crate::supervise`]) that restarts it when it dies before shutdown; while
//! one is dead, `/healthz` says which and the systemd watchdog is not pinged.

use crate::config::{Config, LogFormat};
use crate::ingest::{imap, maildir};
use crate::outbound::{transport::Transport, worker};
use crate::pipeline::Pipeline;
use crate::store::Store;
use crate::supervise::{supervise, Health};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Install the `tracing` subscriber (text or JSON) once; later calls do nothing.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CASEGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Open the database named by the config (creating and migrating it).
pub async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let options = crate::store::StoreOptions { busy_timeout: Duration::from_millis(cfg.database.busy_timeout_ms) };
    Store::open_with(&cfg.database.url, &options)
        .await
        .map_err(|e| anyhow::anyhow!("database {}: {e}", cfg.database.url))
}

/// `serve`'s long-lived tasks, each under a supervisor that restarts it when it dies, and
/// the [`Health`] they report to.
struct Tasks {
    set: tokio::task::JoinSet<()>,
    health: Health,
    shutdown: CancellationToken,
}

impl Tasks {
    /// Run the task `start` makes as `name`, restarted whenever it ends before shutdown.
    fn supervise<F, Fut>(&mut self, name: impl Into<String>, start: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        self.set.spawn(supervise(name.into(), self.health.clone(), self.shutdown.clone(), start));
    }
}

/// Run until `shutdown` is cancelled.
pub async fn serve(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = open_store(&cfg).await?;
    let pipeline = Pipeline::new(store.clone(), &cfg);
    let transport = Transport::from_config(&cfg.outbound).map_err(|e| anyhow::anyhow!("outbound transport: {e}"))?;
    let wake = Arc::new(Notify::new());
    let mut tasks = Tasks { set: tokio::task::JoinSet::new(), health: Health::default(), shutdown: shutdown.clone() };
    let (w_store, w_composer, w_cfg, w_wake, w_stop) = (store.clone(), pipeline.composer.clone(), cfg.outbound.clone(), wake.clone(), shutdown.clone());
    tasks.supervise("outbox", move || {
        let run = worker::run(w_store.clone(), w_composer.clone(), transport.clone(), w_cfg.clone(), w_wake.clone(), w_stop.clone());
        async move {
            run.await;
            Ok(())
        }
    });
    if let Some(addr) = cfg.http.listen {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("http.listen {addr}: {e}"))?;
        let (listener, m_store, m_health, m_stop) = (Arc::new(listener), store.clone(), tasks.health.clone(), shutdown.clone());
        tasks.supervise("http", move || {
            let run = crate::metrics::serve(listener.clone(), m_store.clone(), m_health.clone(), m_stop.clone());
            async move {
                run.await;
                Ok(())
            }
        });
    }
    // One scheduler on one clock: key checks, digests, reminders, the coordinators' notes.
    let (d_store, d_composer, d_cfg, d_wake, d_stop) = (store.clone(), pipeline.composer.clone(), Arc::new(cfg.clone()), wake.clone(), shutdown.clone());
    tasks.supervise("scheduler", move || {
        let run = crate::schedule::run(d_store.clone(), d_composer.clone(), d_cfg.clone(), d_wake.clone(), d_stop.clone());
        async move {
            run.await;
            Ok(())
        }
    });
    spawn_ingest(&mut tasks, &cfg, &pipeline, &wake);
    tokio::spawn(crate::sdnotify::watchdog(tasks.health.clone(), shutdown.clone()));
    let imap = cfg.imap.as_ref().map(|i| i.account());
    info!(maildir = ?cfg.inbound.maildir, imap = ?imap, transport = ?cfg.outbound.transport, "serving");
    crate::sdnotify::notify("READY=1");
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        crate::sdnotify::notify("STOPPING=1");
    });
    while let Some(r) = tasks.set.join_next().await {
        r?;
    }
    store.pool.close().await;
    info!("stopped");
    Ok(())
}

/// The ingest tasks: one per IMAP mailbox (`imap:<mailbox>`) and the Maildir (`maildir`).
fn spawn_ingest(tasks: &mut Tasks, cfg: &Config, pipeline: &Pipeline, wake: &Arc<Notify>) {
    if let Some(imap) = cfg.imap.clone() {
        let shared = Arc::new(imap::Shared::new(pipeline.clone(), imap.clone(), wake.clone()));
        for mailbox in imap.mailboxes {
            let (shared, stop) = (shared.clone(), tasks.shutdown.clone());
            tasks.supervise(format!("imap:{}", mailbox.name), move || {
                let run = imap::run_supervised(shared.clone(), mailbox.clone(), stop.clone());
                async move { run.await.map_err(|e| e.to_string()) }
            });
        }
    }
    if let Some(dir) = cfg.inbound.maildir.clone() {
        let interval = Duration::from_millis(cfg.inbound.poll_interval_ms);
        let (p, w, stop) = (pipeline.clone(), wake.clone(), tasks.shutdown.clone());
        tasks.supervise("maildir", move || {
            let run = maildir::run(p.clone(), dir.clone(), interval, w.clone(), stop.clone());
            async move { run.await.map_err(|e| e.to_string()) }
        });
    }
}

/// Cancel `token` on SIGTERM or SIGINT.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: draining"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT: draining"),
        }
        token.cancel();
    });
}
