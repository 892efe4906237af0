//! No poison mail, honest health (SPEC §3, §10), through `serve` with a Maildir and with a
//! real Dovecot, using the debug build's fault hooks. A mail that panics the pipeline
//! (`X-Casegate-Fault: panic`) is quarantined as `processing-error` after its attempts and
//! the other mails of the batch are posted. A source task that dies (`task-panic`: its loop
//! panics, once per process) does not stop `serve` and does not go unnoticed: while it is
//! dead `/healthz` answers 503 naming it and the systemd watchdog is not pinged (`STATUS=`
//! names it instead); it is restarted with a backoff and ingest goes on. An IMAP mailbox
//! task that ends releases its mailbox lease instead of leaving it renewed by nobody.

mod dovecot;
mod imap_world;
mod support;

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A new report whose reading kills the source task (once per process).
fn poisoned(i: usize) -> Vec<u8> {
    let mut m = b"X-Casegate-Fault: task-panic\r\n".to_vec();
    m.extend(support::report(i));
    m
}

/// A vendor reply that panics the pipeline at every attempt.
fn panics(i: usize) -> Vec<u8> {
    let mut m = b"X-Casegate-Fault: panic\r\n".to_vec();
    m.extend(support::reply(i));
    m
}

/// The panicking mail is held as `processing-error` after every attempt failed; the others
/// are posted once.
async fn assert_poison_held_and_the_rest_posted(store: &casegate::store::Store, posts: i64) {
    let held: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT q.reason, i.message_id, i.attempts FROM quarantine q JOIN inbound_messages i ON i.id = q.inbound_id",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    assert_eq!(held, vec![("processing-error".to_string(), "reply-2@acme.example".to_string(), casegate::pipeline::MAX_ATTEMPTS)]);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM posts").fetch_one(&store.pool).await.unwrap();
    let distinct: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT inbound_id) FROM posts").fetch_one(&store.pool).await.unwrap();
    assert_eq!((n, distinct), (posts, posts), "every other mail posted, once");
}

/// One HTTP/1.1 GET on loopback; the whole response (empty when nothing answers).
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Stands in for systemd: collects sd_notify datagrams (READY, WATCHDOG, STATUS, …).
struct Systemd {
    path: std::path::PathBuf,
    got: Arc<Mutex<Vec<String>>>,
}

impl Systemd {
    fn listen(dir: &std::path::Path) -> Systemd {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let into = got.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok(n) = sock.recv(&mut buf) {
                into.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        Systemd { path, got }
    }

    /// systemd's environment for a `Type=notify` service with `WatchdogSec=0.4`.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("NOTIFY_SOCKET", self.path.display().to_string()), ("WATCHDOG_USEC", "400000".into())]
    }

    fn messages(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

/// Poll `/healthz` until it has answered 503 naming `task` and then 200 again; the 503 body.
fn watch_health_through_a_death(port: u16, task: &str, serve: &dovecot::Serve) -> String {
    let start = Instant::now();
    let mut dead_body = None;
    loop {
        let r = http_get(port, "/healthz");
        if r.starts_with("HTTP/1.1 503") && r.contains(&format!("task {task} is not running")) {
            dead_body.get_or_insert(r.clone());
        } else if r.starts_with("HTTP/1.1 200") && dead_body.is_some() {
            return dead_body.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "/healthz never reported task {task} dead and then alive again (last answer: {r:?}):\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(15));
    }
}

/// The watchdog went quiet while the task was dead: after the STATUS naming it, no
/// WATCHDOG=1 until STATUS=serving.
fn assert_watchdog_quiet_while_dead(systemd: &Systemd, task: &str) {
    let start = Instant::now();
    let recovered = |m: &[String]| m.iter().rposition(|x| x == "STATUS=serving").is_some_and(|i| m[i..].iter().any(|x| x == "WATCHDOG=1"));
    while !recovered(&systemd.messages()) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let msgs = systemd.messages();
    let dead_at = msgs
        .iter()
        .position(|m| m.starts_with("STATUS=") && m.contains(&format!("task {task} is not running")))
        .unwrap_or_else(|| panic!("no STATUS naming the dead task {task}: {msgs:?}"));
    let back = msgs[dead_at..].iter().position(|m| m == "STATUS=serving").map(|i| i + dead_at);
    let back = back.unwrap_or_else(|| panic!("no STATUS=serving after the restart: {msgs:?}"));
    assert!(!msgs[dead_at..back].iter().any(|m| m == "WATCHDOG=1"), "the watchdog was pinged while {task} was dead: {msgs:?}");
    assert!(msgs[..dead_at].iter().any(|m| m == "WATCHDOG=1"), "pinged while healthy: {msgs:?}");
    assert!(msgs[back..].iter().any(|m| m == "WATCHDOG=1"), "pinged again once healthy: {msgs:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn maildir_poison_is_held_and_a_task_that_panics_is_reported_and_restarted() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let md = g.dir.path().join("maildir");
    casegate::ingest::maildir::ensure(&md).unwrap();
    let port = free_port();
    let text = std::fs::read_to_string(&g.cfg.source).unwrap().replace(
        "[outbound]",
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n[inbound]\nmaildir = \"maildir\"\npoll_interval_ms = 100\n[outbound]"),
    );
    std::fs::write(&g.cfg.source, text).unwrap();
    for (i, raw) in [support::report(1), panics(2), poisoned(3), support::report(4)].iter().enumerate() {
        std::fs::write(md.join("new").join(format!("170000000{i}.M1P1.host")), raw).unwrap();
    }
    let systemd = Systemd::listen(g.dir.path());
    let env = systemd.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut serve = dovecot::Serve::start_with_env(&support::binary(), &g.cfg.source, &g.dir.path().join("serve.log"), &env);

    let body = watch_health_through_a_death(port, "maildir", &serve);
    assert!(body.contains("panicked: injected fault: task-panic"), "{body}");
    assert!(!serve.exited(), "serve keeps running:\n{}", serve.log_text());
    let cur = md.join("cur");
    let start = Instant::now();
    while std::fs::read_dir(&cur).unwrap().count() < 4 {
        assert!(start.elapsed() < Duration::from_secs(60), "not every mail taken:\n{}", serve.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let reports: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reports").fetch_one(&g.store.pool).await.unwrap();
    assert_eq!(reports, 3, "every report taken once, the one that killed the task included");
    assert_poison_held_and_the_rest_posted(&g.store, 3).await;
    let metrics = http_get(port, "/metrics");
    assert!(metrics.contains("casegate_task_restarts_total{task=\"maildir\"} 1"), "{metrics}");
    assert!(metrics.contains("casegate_task_up{task=\"maildir\"} 1"), "{metrics}");
    assert_watchdog_quiet_while_dead(&systemd, "maildir");
    assert_eq!(serve.terminate(), Some(0), "{}", serve.log_text());
}

#[tokio::test(flavor = "multi_thread")]
async fn imap_poison_is_held_and_a_task_that_panics_is_reported_and_restarted() {
    let s = imap_world::Setup::new().await;
    let mut c = s.dovecot.client().await;
    for raw in [imap_world::reply(1), panics(2), poisoned(3), imap_world::report(4)] {
        dovecot::append(&mut c, "INBOX", &raw).await;
    }
    let port = free_port();
    let config = s.configure("backlog = \"process\"\npoll_interval_secs = 1\n");
    let text = std::fs::read_to_string(&config).unwrap().replace("[outbound]", &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n[outbound]"));
    std::fs::write(&config, text).unwrap();
    let systemd = Systemd::listen(s.gw.dir.path());
    let env = systemd.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut serve = s.serve_with_env(&config, &env);

    let body = watch_health_through_a_death(port, "imap:INBOX", &serve);
    assert!(body.contains("panicked: injected fault: task-panic"), "{body}");
    s.wait_processed(4, &serve).await;
    s.wait_folders((0, 3, 1)).await;
    assert_poison_held_and_the_rest_posted(&s.gw.store, 3).await;
    assert!(!serve.exited(), "serve keeps running");
    let metrics = http_get(port, "/metrics");
    assert!(metrics.contains("casegate_task_restarts_total{task=\"imap:INBOX\"} 1"), "{metrics}");
    assert_watchdog_quiet_while_dead(&systemd, "imap:INBOX");
    let holder: String = sqlx::query_scalar("SELECT holder FROM imap_leases").fetch_one(&s.gw.store.pool).await.unwrap();
    assert_eq!(holder.split('/').nth(2), Some(serve.pid().to_string().as_str()), "the restarted task holds the lease again");
    assert_eq!(serve.terminate(), Some(0), "{}", serve.log_text());
    assert_eq!(s.scalar("SELECT COUNT(*) FROM imap_leases").await, 0, "released at shutdown");
    let _ = c.logout().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mailbox_task_that_ends_releases_its_lease() {
    let s = imap_world::Setup::new().await;
    let config = s.configure("poll_interval_secs = 1\nlease_secs = 3\n");
    let imap = casegate::config::Config::load(&config).unwrap().imap.unwrap();
    let mailbox = imap.mailboxes[0].clone();
    let source = Arc::new(casegate::ingest::imap::Source::new(s.gw.pipeline.clone(), imap, Arc::new(tokio::sync::Notify::new())).unwrap());
    let task = tokio::spawn(casegate::ingest::imap::run_mailbox(source, mailbox, tokio_util::sync::CancellationToken::new()));
    dovecot::wait_until("the lease taken", Duration::from_secs(30), || async { s.scalar("SELECT COUNT(*) FROM imap_leases").await == 1 }).await;
    // The task ends without its own cleanup: as a panic unwinding through it would.
    task.abort();
    let _ = task.await;
    dovecot::wait_until("the lease released", Duration::from_secs(10), || async { s.scalar("SELECT COUNT(*) FROM imap_leases").await == 0 }).await;
    // Longer than the renewal period (a third of 3 s): nothing renews it behind our back.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(s.scalar("SELECT COUNT(*) FROM imap_leases").await, 0, "the lease stays released");
}
