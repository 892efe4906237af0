//! Wait stage: IDLE (RFC 2177) when the server offers it and `imap.idle` is on, re-issued
//! after `imap.idle_renew_secs` (before the 29 minutes of RFC 2177 §3); else a poll every
//! `imap.poll_interval_secs`. Either way the wait ends in time for the next full check.

use super::connect::{Caps, Session};
use super::{timed, ImapError, Source};
use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Why the wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The server reported a change (new mail, most likely).
    Changed,
    /// Time for a pass: IDLE renewal, poll interval or full check.
    Timeout,
    /// Shutdown or lease loss.
    Cancelled,
}

/// Whether the server already said, between commands, that the mailbox changed.
fn changed_meanwhile(session: &Session) -> bool {
    let mut changed = false;
    while let Ok(r) = session.unsolicited_responses.try_recv() {
        changed |= matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    changed
}

/// How long to wait: at most `limit`, and not past `until`.
pub fn wait_for(limit: Duration, until: Instant, now: Instant) -> Duration {
    limit.min(until.saturating_duration_since(now))
}

/// Wait for new mail, the next pass or `token`; the session comes back for the next pass.
pub async fn wait(
    source: &Source,
    session: Session,
    caps: Caps,
    until: Instant,
    token: &CancellationToken,
) -> Result<(Session, Wake), ImapError> {
    if changed_meanwhile(&session) {
        return Ok((session, Wake::Changed));
    }
    if caps.idle && source.cfg.idle {
        let limit = Duration::from_secs(source.cfg.idle_renew_secs);
        return idle(
            source,
            session,
            wait_for(limit, until, Instant::now()),
            token,
        )
        .await;
    }
    let limit = Duration::from_secs(source.cfg.poll_interval_secs);
    tokio::select! {
        _ = token.cancelled() => Ok((session, Wake::Cancelled)),
        _ = tokio::time::sleep(wait_for(limit, until, Instant::now())) => Ok((session, Wake::Timeout)),
    }
}

/// RFC 2177 §3: IDLE, wait for an untagged response, DONE.
async fn idle(
    source: &Source,
    session: Session,
    dur: Duration,
    token: &CancellationToken,
) -> Result<(Session, Wake), ImapError> {
    let t = source.step_timeout();
    let mut handle = session.idle();
    timed(t, "IDLE", handle.init()).await?;
    let woke = {
        let (response, _stop) = handle.wait_with_timeout(dur);
        tokio::select! {
            r = response => match r.map_err(|source| ImapError::Imap { what: "IDLE", source })? {
                // The stream also ends (ManualInterrupt) when the connection closes; DONE
                // below then fails and the session is reconnected.
                IdleResponse::NewData(_) | IdleResponse::ManualInterrupt => Wake::Changed,
                IdleResponse::Timeout => Wake::Timeout,
            },
            _ = token.cancelled() => Wake::Cancelled,
        }
    };
    debug!(?woke, "IDLE ended");
    let session = timed(t, "DONE", handle.done()).await?;
    Ok((session, woke))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_end_in_time_for_the_full_check() {
        let now = Instant::now();
        let limit = Duration::from_secs(1500);
        assert_eq!(
            wait_for(limit, now + Duration::from_secs(300), now),
            Duration::from_secs(300)
        );
        assert_eq!(wait_for(limit, now + Duration::from_secs(3000), now), limit);
        assert_eq!(
            wait_for(limit, now, now + Duration::from_secs(1)),
            Duration::ZERO,
            "overdue"
        );
    }
}
