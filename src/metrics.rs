//! A loopback HTTP endpoint (SPEC §10): `/healthz` answers when the database does,
//! `/metrics` gives Prometheus text counters read from the database at scrape time, so
//! they are right across restarts and across several processes sharing one database.

use crate::store::metrics::Snapshot;
use crate::store::Store;
use std::fmt::Write as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Prometheus text exposition format 0.0.4.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP casegate_inbound_total Inbound mail stored.\n# TYPE casegate_inbound_total counter");
    let _ = writeln!(out, "casegate_inbound_total {}", s.inbound_total);
    let _ = writeln!(out, "# HELP casegate_decisions_total Inbound mail by decision and reason.\n# TYPE casegate_decisions_total counter");
    for (action, reason, n) in &s.decisions {
        let _ = writeln!(out, "casegate_decisions_total{{decision=\"{}\",reason=\"{}\"}} {n}", label(action), label(reason));
    }
    let _ = writeln!(out, "# HELP casegate_quarantine_held Quarantine items waiting for a coordinator.\n# TYPE casegate_quarantine_held gauge");
    let _ = writeln!(out, "casegate_quarantine_held {}", s.quarantine_held);
    let _ = writeln!(out, "# HELP casegate_outbox_items Outbox items by state (pending+sending is the queue depth).\n# TYPE casegate_outbox_items gauge");
    for state in ["pending", "sending", "sent", "failed", "dead"] {
        let n = s.outbox.iter().find(|(st, _)| st == state).map(|(_, n)| *n).unwrap_or(0);
        let _ = writeln!(out, "casegate_outbox_items{{state=\"{state}\"}} {n}");
    }
    out
}

/// Label values are our own codes; escape anyway (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Serve `/healthz` and `/metrics` on `listener` until shutdown.
pub async fn serve(listener: TcpListener, store: Store, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let store = store.clone();
                tokio::spawn(async move { answer(stream, &store).await });
            }
            Err(e) => tracing::warn!(error = %e, "metrics endpoint: accept failed"),
        }
    }
}

/// Read the request head (up to the blank line, at most `buf.len()` bytes, 5 s). Reading it
/// whole matters: closing a socket with unread request bytes resets the connection, and the
/// client loses the response.
async fn read_head(stream: &mut TcpStream, buf: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf[n..])).await {
            Ok(Ok(0)) => break,
            Ok(Ok(k)) => n += k,
            _ => return None,
        }
    }
    (n > 0).then_some(n)
}

/// One request, one response, then close (HTTP/1.1 with `Connection: close`).
async fn answer(mut stream: TcpStream, store: &Store) {
    let mut buf = vec![0u8; 2048];
    let Some(n) = read_head(&mut stream, &mut buf).await else { return };
    let request = String::from_utf8_lossy(&buf[..n]);
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match path {
        "/healthz" => match store.metrics().await {
            Ok(_) => ("200 OK", "ok\n".to_string()),
            Err(e) => ("503 Service Unavailable", format!("database: {e}\n")),
        },
        "/metrics" => match store.metrics().await {
            Ok(s) => ("200 OK", render(&s)),
            Err(e) => ("503 Service Unavailable", format!("database: {e}\n")),
        },
        _ => ("404 Not Found", "not found\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lists_every_outbox_state_and_escapes_labels() {
        let s = Snapshot {
            decisions: vec![("post".into(), "reply-key".into(), 3), ("quarantine".into(), "a\"b".into(), 1)],
            inbound_total: 4,
            quarantine_held: 1,
            outbox: vec![("sent".into(), 7)],
        };
        let text = render(&s);
        assert!(text.contains("casegate_decisions_total{decision=\"post\",reason=\"reply-key\"} 3"));
        assert!(text.contains("reason=\"a\\\"b\""));
        assert!(text.contains("casegate_outbox_items{state=\"sent\"} 7"));
        assert!(text.contains("casegate_outbox_items{state=\"dead\"} 0"));
        assert!(text.contains("casegate_inbound_total 4"));
    }
}
