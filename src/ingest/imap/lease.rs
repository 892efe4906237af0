//! One poller per mailbox (SPEC §9): an instance polls a mailbox only while it holds the
//! mailbox's lease row, renews it at a third of its lifetime, and stops polling as soon as
//! it cannot be sure it still holds it. Another instance takes the mailbox over when the
//! lease expires, or at once when the holder is a process on this same machine that no
//! longer exists (a `serve` killed with SIGKILL and restarted).

use super::Source;
use crate::instance::{holder_is_dead, process_alive};
use crate::store::now_ms;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A held lease: `token()` is cancelled on shutdown or when the lease may have been lost.
pub struct Held {
    token: CancellationToken,
    keeper: JoinHandle<()>,
}

impl Held {
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Stop renewing and delete the row, so that another instance takes over at once.
    pub async fn release(self, source: &Source, mailbox: &str) {
        self.token.cancel();
        let _ = self.keeper.await;
        if let Err(e) = source
            .pipeline
            .store
            .imap_release_lease(&source.account, mailbox, &source.holder)
            .await
        {
            warn!(error = %e, "cannot release the mailbox lease; it expires by itself");
        }
    }
}

/// Wait until this instance holds the lease of `mailbox` (or `shutdown`: `None`).
pub async fn acquire(
    source: &Source,
    mailbox: &str,
    ttl: Duration,
    shutdown: &CancellationToken,
) -> Option<Held> {
    let retry = (ttl / 4).max(Duration::from_millis(200));
    let mut told = String::new();
    loop {
        let started = Instant::now();
        match claim(source, mailbox, ttl).await {
            Ok(true) => {
                let token = shutdown.child_token();
                let keeper = tokio::spawn(keep(Keeper {
                    store: source.pipeline.store.clone(),
                    account: source.account.clone(),
                    mailbox: mailbox.to_string(),
                    holder: source.holder.clone(),
                    ttl,
                    expires: started + ttl,
                    token: token.clone(),
                }));
                return Some(Held { token, keeper });
            }
            Ok(false) => {
                let holder = current_holder(source, mailbox).await.unwrap_or_default();
                if holder != told {
                    info!(%holder, "mailbox polled by another instance; waiting for its lease");
                    told = holder;
                }
            }
            Err(e) => warn!(error = %e, "cannot claim the mailbox lease"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(retry) => {}
        }
    }
}

async fn current_holder(source: &Source, mailbox: &str) -> Option<String> {
    source
        .pipeline
        .store
        .imap_lease(&source.account, mailbox)
        .await
        .ok()
        .flatten()
        .map(|l| l.holder)
}

/// Claim or renew; a holder that is certainly dead is taken over before its lease expires.
async fn claim(source: &Source, mailbox: &str, ttl: Duration) -> crate::store::Result<bool> {
    let store = &source.pipeline.store;
    let dead = current_holder(source, mailbox)
        .await
        .filter(|h| holder_is_dead(h, &source.holder, process_alive));
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    store
        .imap_claim_lease(
            &source.account,
            mailbox,
            &source.holder,
            now_ms(),
            ttl_ms,
            dead.as_deref(),
        )
        .await
}

struct Keeper {
    store: crate::store::Store,
    account: String,
    mailbox: String,
    holder: String,
    ttl: Duration,
    /// Until when the lease is certainly ours (measured from before the last claim).
    expires: Instant,
    token: CancellationToken,
}

/// Renew every third of the lifetime; cancel the token when the lease went to another
/// instance, or when it could not be renewed and less than a third of it is left.
async fn keep(mut k: Keeper) {
    let every = k.ttl / 3;
    let ttl_ms = i64::try_from(k.ttl.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            _ = k.token.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let started = Instant::now();
        match k
            .store
            .imap_claim_lease(&k.account, &k.mailbox, &k.holder, now_ms(), ttl_ms, None)
            .await
        {
            Ok(true) => k.expires = started + k.ttl,
            Ok(false) => {
                warn!(mailbox = %k.mailbox, "the mailbox lease went to another instance; stopping");
                k.token.cancel();
                return;
            }
            Err(e) if Instant::now() + every >= k.expires => {
                warn!(mailbox = %k.mailbox, error = %e, "cannot renew the mailbox lease before it expires; stopping");
                k.token.cancel();
                return;
            }
            Err(e) => {
                warn!(mailbox = %k.mailbox, error = %e, "cannot renew the mailbox lease; retrying")
            }
        }
    }
}
