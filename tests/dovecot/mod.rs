//! A real IMAP server for tests: Dovecot, started from `dovecot.conf.in` in a temporary
//! directory on loopback ports the test picks, with a plain listener (LOGIN, STARTTLS) and an
//! implicit-TLS listener whose certificate is signed by a throwaway CA, a passwd-file user
//! and Maildir storage owned by a system mail user. Stopped by its pid when dropped.
//!
//! Dovecot comes with the Debian package `dovecot-imapd` (scripts/test.sh installs it);
//! without it these tests fail.

#![allow(dead_code)]

use async_imap::Session;
use futures_util::TryStreamExt;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

const DOVECOT: &str = "/usr/sbin/dovecot";
const TEMPLATE: &str = include_str!("dovecot.conf.in");
pub const USER: &str = "gw";
pub const PASSWORD: &str = "imap secret \"quoted\"";

/// A running Dovecot.
pub struct Dovecot {
    pub dir: tempfile::TempDir,
    /// Plain listener (LOGIN, STARTTLS).
    pub port: u16,
    /// Implicit-TLS listener.
    pub tls_port: u16,
    child: Option<Child>,
}

/// A logged-in test client.
pub type Client = Session<TcpStream>;

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn run(cmd: &mut Command) {
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc/self")) == 0
}

fn user_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["passwd", name])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn id_of(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// (mail user, mail group, internal user, login user, first valid uid). As root: the
/// system `mail` user (created as `casegate-mail` when missing) and Dovecot's own users; as
/// another user: that user everywhere.
fn users() -> (String, String, String, String, String) {
    if !is_root() {
        let me = id_of("-un");
        return (me.clone(), id_of("-gn"), me.clone(), me, id_of("-u"));
    }
    let mail = if user_exists("mail") {
        "mail".to_string()
    } else {
        if !user_exists("casegate-mail") {
            run(Command::new("useradd").args([
                "--system",
                "--user-group",
                "--no-create-home",
                "casegate-mail",
            ]));
        }
        "casegate-mail".to_string()
    };
    let uid = String::from_utf8_lossy(
        &Command::new("id")
            .args(["-u", &mail])
            .output()
            .expect("id")
            .stdout,
    )
    .trim()
    .to_string();
    let gid = String::from_utf8_lossy(
        &Command::new("id")
            .args(["-gn", &mail])
            .output()
            .expect("id")
            .stdout,
    )
    .trim()
    .to_string();
    (mail, gid, "dovecot".into(), "dovenull".into(), uid)
}

/// A CA and a certificate for localhost / 127.0.0.1 signed by it, with the openssl tool.
fn make_certificates(tls: &Path) {
    std::fs::create_dir_all(tls).expect("tls dir");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .current_dir(tls)
        .args(["req", "-x509"])
        .args(ec)
        .args([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=casegate test CA",
        ]));
    run(Command::new("openssl")
        .current_dir(tls)
        .arg("req")
        .args(ec)
        .args([
            "-keyout",
            "key.pem",
            "-out",
            "cert.csr",
            "-subj",
            "/CN=localhost",
        ]));
    std::fs::write(
        tls.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("ext");
    run(Command::new("openssl").current_dir(tls).args([
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]));
}

/// The pids whose parent is `parent` (from /proc/PID/stat).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
            let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            after
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u32>().ok())
                == Some(parent)
        })
        .collect()
}

impl Dovecot {
    /// Write the configuration and start Dovecot; panics naming the package when it is missing.
    pub fn start() -> Dovecot {
        assert!(
            Path::new(DOVECOT).exists(),
            "{DOVECOT} is missing: these tests need a real IMAP server; install the Debian package \
             `dovecot-imapd` (apt-get install dovecot-imapd; scripts/test.sh does it)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let (mail, group, internal, login, first_uid) = users();
        let (port, tls_port) = (free_port(), free_port());
        let conf = TEMPLATE
            .replace("@DIR@", &root.display().to_string())
            .replace("@PORT@", &port.to_string())
            .replace("@TLS_PORT@", &tls_port.to_string())
            .replace("@MAIL_USER@", &mail)
            .replace("@MAIL_GROUP@", &group)
            .replace("@INTERNAL_USER@", &internal)
            .replace("@LOGIN_USER@", &login)
            .replace("@FIRST_UID@", &first_uid);
        std::fs::write(root.join("dovecot.conf"), conf).expect("write dovecot.conf");
        std::fs::write(
            root.join("users"),
            format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
        )
        .expect("users");
        std::fs::write(root.join("imap-password"), format!("{PASSWORD}\n")).expect("password file");
        make_certificates(&root.join("tls"));
        let home = root.join("home");
        std::fs::create_dir_all(&home).expect("home");
        if is_root() {
            run(Command::new("chown")
                .arg(format!("{mail}:{group}"))
                .arg(&home));
        }
        let mut d = Dovecot {
            dir,
            port,
            tls_port,
            child: None,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let conf = self.dir.path().join("dovecot.conf");
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {DOVECOT}: {e}"));
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("dovecot exited with {status}:\n{}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "dovecot did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The master's pid, from `base_dir/master.pid`.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("run/master.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// SIGTERM the master by its pid, SIGKILL the processes it started that are still there
    /// (the master waits for the IMAP sessions otherwise), and wait until it is gone and the
    /// port is free: every client connection is cut.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = self.pid().unwrap_or(child.id());
        let children = children_of(pid);
        let kill = |signal: &str, pid: u32| {
            let _ = Command::new("kill")
                .arg(signal)
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        };
        kill("-TERM", pid);
        std::thread::sleep(Duration::from_millis(200));
        for c in children {
            kill("-KILL", c);
        }
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.wait();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && start.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop, then start again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("imap-password")
    }

    /// The `[imap]` section of a casegate config for the plain listener (plaintext on
    /// loopback), with `extra` lines added to it.
    pub fn imap_section(&self, extra: &str) -> String {
        format!(
            "[imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{USER}\"\npassword_file = \"{}\"\n{extra}",
            self.port,
            self.password_file().display()
        )
    }

    /// A logged-in client on the plain listener.
    pub async fn client(&self) -> Client {
        let tcp = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to dovecot");
        let mut client = async_imap::Client::new(tcp);
        client
            .read_response()
            .await
            .expect("greeting")
            .expect("greeting");
        client
            .login(USER, PASSWORD)
            .await
            .map_err(|(e, _)| e)
            .expect("login")
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Store `raw` in `mailbox` (RFC 3501 §6.3.11 APPEND).
pub async fn append(client: &mut Client, mailbox: &str, raw: &[u8]) {
    client
        .append(mailbox, None, None, raw)
        .await
        .unwrap_or_else(|e| panic!("APPEND to {mailbox}: {e}"));
}

/// How many messages `mailbox` holds, and its UIDVALIDITY (EXAMINE, read-only). A missing
/// mailbox counts as empty with UIDVALIDITY 0.
pub async fn count(client: &mut Client, mailbox: &str) -> (u32, u32) {
    match client.examine(mailbox).await {
        Ok(m) => (m.exists, m.uid_validity.unwrap_or(0)),
        Err(_) => (0, 0),
    }
}

/// The raw messages of `mailbox`, in UID order.
pub async fn messages(client: &mut Client, mailbox: &str) -> Vec<Vec<u8>> {
    let m = client.examine(mailbox).await.expect("examine");
    if m.exists == 0 {
        return Vec::new();
    }
    let stream = client
        .uid_fetch("1:*", "(UID BODY.PEEK[])")
        .await
        .expect("fetch");
    let mut all: Vec<(u32, Vec<u8>)> = stream
        .try_collect::<Vec<_>>()
        .await
        .expect("fetch")
        .iter()
        .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
        .collect();
    all.sort();
    all.into_iter().map(|(_, b)| b).collect()
}

/// A `casegate serve` process whose log (stderr) goes to a file.
pub struct Serve {
    child: Child,
    pub log: PathBuf,
}

impl Serve {
    /// Start `casegate --config CONFIG serve`, logging to `log` (appended).
    pub fn start(binary: &Path, config: &Path, log: &Path) -> Serve {
        Serve::start_with_env(binary, config, log, &[])
    }

    /// The same with extra environment variables (such as `CASEGATE_LOG`).
    pub fn start_with_env(binary: &Path, config: &Path, log: &Path, env: &[(&str, &str)]) -> Serve {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = Command::new(binary)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn casegate serve");
        Serve {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code (within 30 s).
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().ok().flatten() {
                return s.code();
            }
            if start.elapsed() > Duration::from_secs(30) {
                self.kill9();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if !self.exited() {
            self.kill9();
        }
    }
}

/// Poll `f` every 50 ms until it is true; panic naming `what` after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP relay on loopback in front of a server, to cut the network: `stall` stops
/// forwarding (connections hang, as behind a dead link), `resume` closes every connection
/// it carried and forwards again.
pub struct Relay {
    pub port: u16,
    stalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    pub fn start(target: u16) -> Relay {
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("addr").port();
        let stalled = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (s, o) = (stalled.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut held = o.lock().expect("relay lock");
                for stream in [&client, &upstream] {
                    held.push(stream.try_clone().expect("clone"));
                }
                drop(held);
                for (from, to) in [
                    (client.try_clone(), upstream.try_clone()),
                    (upstream.try_clone(), client.try_clone()),
                ] {
                    let (Ok(from), Ok(to), s) = (from, to, s.clone()) else {
                        continue;
                    };
                    std::thread::spawn(move || pump(from, to, &s));
                }
            }
        });
        Relay {
            port,
            stalled,
            open,
        }
    }

    /// Stop forwarding: every connection hangs.
    pub fn stall(&self) {
        self.stalled
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Close every connection carried so far, and forward again.
    pub fn resume(&self) {
        for stream in self.open.lock().expect("relay lock").drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        self.stalled
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copy `from` to `to` until either closes; while stalled, copy nothing.
fn pump(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    stalled: &std::sync::atomic::AtomicBool,
) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 16384];
    loop {
        if stalled.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}
