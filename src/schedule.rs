//! Periodic work of `serve`, apart from the mail flow: key-expiry warnings (SPEC §5.4).
//! Each job is one loop on the shutdown token.

use crate::pgp::PgpState;
use crate::store::{now_ms, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often `serve` looks for contacts whose last usable key expires within 14 days.
pub(crate) const KEY_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// Long-lived task: give the due key-expiry warnings at start and then every `every`.
pub(crate) async fn key_checks(store: Store, pgp: Arc<PgpState>, every: Duration, shutdown: CancellationToken) {
    loop {
        if let Err(e) = store.refresh_keyring(&pgp).await {
            tracing::warn!(error = %e, "keyring refresh failed");
        }
        match store.warn_expiring_keys(&pgp, now_ms()).await {
            Ok(given) if !given.is_empty() => tracing::info!(warnings = given.len(), "key expiry warnings given"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "key expiry check failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
