//! systemd notifications (sd_notify(3)): `READY=1` once serving, `WATCHDOG=1` at half the
//! watchdog interval while every task is alive (`STATUS=` names a dead one), `STOPPING=1`
//! on shutdown. Without `NOTIFY_SOCKET` every call does
//! nothing, so `serve` runs the same outside systemd.

use crate::supervise::Health;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Send one notification; errors are logged, never fatal.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let result = UnixDatagram::unbound().and_then(|sock| {
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            // An abstract socket (sd_notify(3): a leading '@').
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)
        } else {
            sock.send_to(state.as_bytes(), &path)
        }
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, state, "sd_notify failed");
    }
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Long-lived task: ping the watchdog at half its interval until shutdown, but only while
/// every supervised task is alive. While one is dead there is no ping (systemd restarts
/// the service if that lasts longer than `WatchdogSec`), and `STATUS=` says which task.
pub async fn watchdog(health: Health, shutdown: CancellationToken) {
    let Some(every) = watchdog_interval() else { return };
    let mut tick = tokio::time::interval(every / 2);
    let mut told: Option<String> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let problem = health.problem();
        if problem != told {
            notify(&format!("STATUS={}", problem.as_deref().unwrap_or("serving")));
            told = problem;
        }
        if told.is_none() {
            notify("WATCHDOG=1");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        // The environment is process-wide; this is the only test that sets it.
        std::env::set_var("NOTIFY_SOCKET", &path);
        notify("READY=1");
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        notify("READY=1"); // no socket configured: nothing happens, no panic
    }
}
