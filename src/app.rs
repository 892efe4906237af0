//! `casegate serve`: the long-lived tasks (IMAP and Maildir ingest, outbox worker) and shutdown.
//!
//! Each task is one loop on a shared [`CancellationToken`]; SIGTERM or SIGINT cancels it,
//! the tasks finish the mail or the sends in hand, and `serve` exits 0.

use crate::config::{Config, LogFormat};
use crate::ingest::maildir;
use crate::outbound::{transport::Transport, worker};
use crate::pipeline::Pipeline;
use crate::store::Store;
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
    Store::open(&cfg.database.url)
        .await
        .map_err(|e| anyhow::anyhow!("database {}: {e}", cfg.database.url))
}

/// Run until `shutdown` is cancelled.
pub async fn serve(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = open_store(&cfg).await?;
    let pipeline = Pipeline::new(store.clone(), &cfg);
    let transport = Transport::from_config(&cfg.outbound).map_err(|e| anyhow::anyhow!("outbound transport: {e}"))?;
    let wake = Arc::new(Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    let (w_store, w_composer, w_cfg, w_wake, w_stop) = (store.clone(), pipeline.composer.clone(), cfg.outbound.clone(), wake.clone(), shutdown.clone());
    tasks.spawn(async move { worker::run(w_store, w_composer, transport, w_cfg, w_wake, w_stop).await });
    let (d_store, d_composer, d_wake, d_stop) = (store.clone(), pipeline.composer.clone(), wake.clone(), shutdown.clone());
    let d_hour = cfg.digest.hour_utc;
    if let Some(addr) = cfg.http.listen {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("http.listen {addr}: {e}"))?;
        let (m_store, m_stop) = (store.clone(), shutdown.clone());
        tasks.spawn(async move { crate::metrics::serve(listener, m_store, m_stop).await });
    }
    let (k_store, k_pgp, k_stop) = (store.clone(), pipeline.composer.pgp.clone(), shutdown.clone());
    tasks.spawn(async move { crate::digest::run(d_store, d_composer, d_hour, d_wake, d_stop).await });
    tasks.spawn(async move { crate::schedule::key_checks(k_store, k_pgp, crate::schedule::KEY_CHECK_INTERVAL, k_stop).await });
    if let Some(imap) = cfg.imap.clone() {
        let (p, w, stop) = (pipeline.clone(), wake.clone(), shutdown.clone());
        tasks.spawn(async move { crate::ingest::imap::run(p, imap, w, stop).await });
    }
    if let Some(dir) = cfg.inbound.maildir.clone() {
        maildir::ensure(&dir)?;
        let interval = Duration::from_millis(cfg.inbound.poll_interval_ms);
        let (p, stop) = (pipeline.clone(), shutdown.clone());
        tasks.spawn(async move { maildir::run(p, dir, interval, wake, stop).await });
    }
    let stop = shutdown.clone();
    tasks.spawn(async move { crate::sdnotify::watchdog(stop).await });
    let imap = cfg.imap.as_ref().map(|i| i.account());
    info!(maildir = ?cfg.inbound.maildir, imap = ?imap, transport = ?cfg.outbound.transport, "serving");
    crate::sdnotify::notify("READY=1");
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        crate::sdnotify::notify("STOPPING=1");
    });
    while let Some(r) = tasks.join_next().await {
        r?;
    }
    store.pool.close().await;
    info!("stopped");
    Ok(())
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
