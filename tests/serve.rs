//! `casegate serve` with a Maildir source and the file transport: mail dropped into `new/`
//! is routed, moved to `cur/` after commit, the notifications are written, and SIGTERM
//! drains and exits 0.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WORLD: &str = r#"
[gateway]
domain = "cert.example"
intake = ["security@cert.example"]
trusted_authserv_ids = ["mx.cert.example"]
[[org]]
name = "CERT Team"
kind = "coordinator"
domains = ["cert.example"]
[[contact]]
email = "cora@cert.example"
org = "CERT Team"
"#;

/// Our MX says the reporters' domain passed DMARC: they get acknowledgements.
const DMARC: &str = "Authentication-Results: mx.cert.example; dmarc=pass header.from=example.net\r\n";

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 GET on loopback; the whole response as text.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_ingests_the_maildir_sends_and_stops_on_sigterm() {
    let world: support::WorldDesc = toml::from_str(WORLD).unwrap();
    let g = support::gateway(&world).await;
    let maildir = g.dir.path().join("maildir");
    let cfg_path = g.cfg.source.clone();
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = text.replace(
        "[outbound]",
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n[inbound]\nmaildir = \"maildir\"\npoll_interval_ms = 100\n[outbound]"),
    );
    std::fs::write(&cfg_path, text).unwrap();
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for i in 0..5 {
        let mail = format!("From: R{i} <r{i}@example.net>\r\nTo: security@cert.example\r\nSubject: report {i}\r\nMessage-ID: <s{i}@example.net>\r\n{DMARC}\r\nbody {i}\r\n");
        std::fs::write(maildir.join("new").join(format!("170000000{i}.M1P1.host")), mail).unwrap();
    }
    // Stand in for systemd: serve reports READY=1 on NOTIFY_SOCKET (Type=notify).
    let notify_path = g.dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut child = Command::new(support::binary())
        .env("NOTIFY_SOCKET", &notify_path)
        .arg("--config")
        .arg(&cfg_path)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).expect("READY=1 from serve");
    assert_eq!(&buf[..n], b"READY=1");
    wait_until("maildir drained", Duration::from_secs(30), || count(&maildir.join("cur")) == 5);
    assert_eq!(count(&maildir.join("new")), 0);
    assert!(std::fs::read_dir(maildir.join("cur")).unwrap().all(|e| e.unwrap().file_name().to_string_lossy().ends_with(":2,S")));
    // Each report: one notification to cora and one acknowledgement to the reporter.
    let outbox = g.dir.path().join("outbox");
    wait_until("notifications written", Duration::from_secs(30), || count(&outbox) == 10);
    // A mail arriving while serve runs.
    let late = format!("From: Late <late@example.net>\r\nTo: security@cert.example\r\nSubject: late\r\nMessage-ID: <late@example.net>\r\n{DMARC}\r\nx\r\n");
    std::fs::write(maildir.join("tmp").join("1700000009.M1P1.host"), late).unwrap();
    std::fs::rename(maildir.join("tmp").join("1700000009.M1P1.host"), maildir.join("new").join("1700000009.M1P1.host")).unwrap();
    wait_until("late mail routed", Duration::from_secs(30), || count(&outbox) == 12);

    assert!(http_get(port, "/healthz").starts_with("HTTP/1.1 200"));
    let metrics = http_get(port, "/metrics");
    assert!(metrics.contains("casegate_inbound_total 6"), "{metrics}");
    assert!(metrics.contains("casegate_decisions_total{decision=\"open-report\",reason=\"new-report\"} 6"), "{metrics}");
    assert!(metrics.contains("casegate_outbox_items{state=\"sent\"} 12"), "{metrics}");
    assert!(http_get(port, "/nothing").starts_with("HTTP/1.1 404"));

    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0), "serve exits 0 after SIGTERM");
    let n = notify.recv(&mut buf).expect("STOPPING=1 from serve");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let reports: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reports").fetch_one(&g.store.pool).await.unwrap();
    assert_eq!(reports, 6);
}
