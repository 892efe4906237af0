//! A real SMTP server for tests: Postfix's `smtp-sink`, started in a temporary directory on
//! a free loopback port, capturing each mail transaction to a file, and killed (by the pid
//! it was started with) when dropped. Also a counting TCP relay, to see how many
//! connections a client opens.
//!
//! `smtp-sink` comes with the Debian package `postfix`; without it the tests fail.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

/// A running `smtp-sink`.
pub struct SmtpSink {
    pub port: u16,
    /// Where each accepted transaction is dumped, one file per message.
    pub dump_dir: PathBuf,
    child: Child,
    _tmp: tempfile::TempDir,
}

/// One captured transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkMessage {
    /// `MAIL FROM` argument, e.g. `<bounce@gw.example>`.
    pub mail_from: String,
    /// `RCPT TO` arguments.
    pub rcpt_to: Vec<String>,
    /// The message as received, with the line ends smtp-sink writes (LF).
    pub data: Vec<u8>,
}

fn smtp_sink_path() -> PathBuf {
    let path = Path::new(SMTP_SINK);
    assert!(
        path.exists(),
        "{SMTP_SINK} is missing: these tests need a real SMTP server; \
         install the Debian package `postfix` (apt-get install postfix)"
    );
    path.to_path_buf()
}

/// A loopback port that nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn running_as_root() -> bool {
    // /proc/self belongs to the effective user of this process.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

impl SmtpSink {
    /// Start `smtp-sink [extra] -d <dir>/%M. 127.0.0.1:<port> 100` and wait until it
    /// accepts connections. `extra` are options such as `["-r", "RCPT"]` (4xx to RCPT).
    pub fn start(extra: &[&str]) -> SmtpSink {
        let program = smtp_sink_path();
        let tmp = tempfile::tempdir().expect("tempdir");
        let dump_dir = tmp.path().join("sink");
        std::fs::create_dir(&dump_dir).expect("create dump dir");
        let mut cmd = Command::new(program);
        if running_as_root() {
            // smtp-sink refuses to run as root without -u; the unprivileged user must be
            // able to reach and write the dump folder.
            let open = |p: &Path, mode| {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
            };
            open(tmp.path(), 0o755);
            open(&dump_dir, 0o777);
            cmd.args(["-u", "nobody"]);
        }
        let port = free_port();
        cmd.args(extra)
            .arg("-d")
            .arg(format!("{}/%M.", dump_dir.display()))
            .arg(format!("127.0.0.1:{port}"))
            .arg("100")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn smtp-sink");
        let mut sink = SmtpSink {
            port,
            dump_dir,
            child,
            _tmp: tmp,
        };
        sink.wait_until_listening();
        sink
    }

    fn wait_until_listening(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("smtp-sink exited at start ({status}): {err}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "smtp-sink did not listen on {addr} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The captured messages, after waiting up to 5 s for at least `n` of them.
    pub fn wait_for(&self, n: usize) -> Vec<SinkMessage> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let msgs = self.messages();
            if msgs.len() >= n || Instant::now() >= deadline {
                return msgs;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Every complete transaction captured so far.
    pub fn messages(&self) -> Vec<SinkMessage> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dump_dir).expect("read dump dir") {
            let bytes = std::fs::read(entry.expect("dir entry").path()).expect("read dump");
            if let Some(m) = parse_dump(&bytes) {
                out.push(m);
            }
        }
        out
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // The pid we started; smtp-sink only changes its user, not its process.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parse one dump file: smtp-sink's `X-…` records, its three-line `Received:` header, then
/// the message, then one empty line. `None` for a transaction that did not finish.
fn parse_dump(bytes: &[u8]) -> Option<SinkMessage> {
    let mut lines = bytes.split_inclusive(|b| *b == b'\n').peekable();
    let (mut mail_from, mut rcpt_to) = (String::new(), Vec::new());
    let mut consumed = 0;
    while let Some(line) = lines.next() {
        consumed += line.len();
        let text = String::from_utf8_lossy(line).trim_end().to_string();
        if let Some(v) = text.strip_prefix("X-Mail-Args: ") {
            mail_from = v.to_string();
        } else if let Some(v) = text.strip_prefix("X-Rcpt-Args: ") {
            rcpt_to.push(v.to_string());
        } else if text.starts_with("Received: ") {
            while let Some(cont) = lines.next_if(|l| l.first() == Some(&b'\t')) {
                consumed += cont.len();
            }
            let rest = &bytes[consumed..];
            let data = rest.strip_suffix(b"\n")?;
            return Some(SinkMessage {
                mail_from,
                rcpt_to,
                data: data.to_vec(),
            });
        }
    }
    None
}

/// How a message looks in a dump: CRLF line ends become LF.
pub fn as_dumped(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// A loopback TCP relay to `target` that counts the connections it accepts.
pub struct CountingRelay {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingRelay {
    pub async fn start(target: u16) -> CountingRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind relay");
        let port = listener.local_addr().expect("relay addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        CountingRelay {
            port,
            connections,
            task,
        }
    }

    pub fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[test]
fn parses_a_dump() {
    let dump = b"X-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: h\n\
X-Mail-Args: <a@b>\nX-Rcpt-Args: <c@d>\nReceived: from h ([127.0.0.1])\n\
\tby smtp-sink (smtp-sink) with ESMTP id 1;\n\tWed, 25 Nov 2026 06:44:17 +0000 (UTC)\n\
Message-ID: <x@y>\n\n.dot\n\n";
    let m = parse_dump(dump).expect("complete dump");
    assert_eq!(m.mail_from, "<a@b>");
    assert_eq!(m.rcpt_to, vec!["<c@d>"]);
    assert_eq!(m.data, as_dumped(b"Message-ID: <x@y>\r\n\r\n.dot\r\n"));
    assert_eq!(
        parse_dump(b"X-Client-Addr: 127.0.0.1\nX-Mail-Args: <a@b>\n"),
        None
    );
}
