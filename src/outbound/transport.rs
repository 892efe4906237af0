//! Transports (SPEC §7.4): hand one rendered message to the world, bytes unchanged.
//!
//! - `smtp`: lettre's pooled async SMTP client (connections are reused across messages);
//! - `file`: each message written atomically to a folder (demo and tests);
//! - `sendmail`: piped to the local MTA's `sendmail` program.
//!
//! Every failure is classified as transient (retry later) or permanent (give up now).

use crate::config::{OutboundConfig, SmtpConfig, TlsMode, TransportKind};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::{Error as SmtpError, PoolConfig};
use std::sync::Arc;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The SMTP envelope of one message: the bounce address and one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Envelope sender (`MAIL FROM`); empty for the null reverse-path.
    pub from: String,
    /// The single recipient (`RCPT TO`).
    pub to: String,
}

/// Why a message was not delivered, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("transient: {0}")]
    Transient(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }

    /// The reply or error text without the classification prefix.
    pub fn detail(&self) -> &str {
        match self {
            SendError::Transient(s) | SendError::Permanent(s) => s,
        }
    }
}

/// A transport that cannot be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum TransportConfigError {
    #[error("outbound.transport is smtp but [outbound.smtp] is missing")]
    MissingSmtp,
    #[error("outbound.transport is file but outbound.file_dir is missing")]
    MissingFileDir,
    #[error("outbound.smtp: {0}")]
    Smtp(String),
}

/// One configured transport. Cloning is cheap and shares the SMTP connection pool.
#[derive(Clone, Debug)]
pub enum Transport {
    Smtp(SmtpTransport),
    File(FileTransport),
    Sendmail(SendmailTransport),
}

impl Transport {
    /// Build the transport that `cfg.transport` names.
    pub fn from_config(cfg: &OutboundConfig) -> Result<Transport, TransportConfigError> {
        match cfg.transport {
            TransportKind::Smtp => {
                let smtp = cfg.smtp.as_ref().ok_or(TransportConfigError::MissingSmtp)?;
                Ok(Transport::Smtp(SmtpTransport::new(smtp)?))
            }
            TransportKind::File => {
                let dir = cfg
                    .file_dir
                    .as_ref()
                    .ok_or(TransportConfigError::MissingFileDir)?;
                Ok(Transport::File(FileTransport::new(dir)))
            }
            TransportKind::Sendmail => Ok(Transport::Sendmail(SendmailTransport::new(
                &cfg.sendmail_path,
            ))),
        }
    }

    /// Send the bytes unchanged. `Ok` carries the server's reply (e.g.
    /// `250 2.0.0 Ok: queued as X`) or a line saying where the message went.
    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<String, SendError> {
        match self {
            Transport::Smtp(t) => t.send(envelope, bytes).await,
            Transport::File(t) => t.send(envelope, bytes).await,
            Transport::Sendmail(t) => t.send(envelope, bytes).await,
        }
    }

    /// Close pooled connections (SMTP `QUIT`); the other transports hold none.
    pub async fn shutdown(&self) {
        if let Transport::Smtp(t) = self {
            t.shutdown().await;
        }
    }
}

/// SMTP submission through reusable connections.
///
/// Plain and STARTTLS sessions run on our own TCP connections with `TCP_NODELAY` set:
/// lettre writes the end-of-data marker as a separate small segment, which Nagle's
/// algorithm holds back until the server's delayed ACK (about 40 ms per message).
/// Implicit TLS sessions use lettre's own pool.
#[derive(Clone)]
pub struct SmtpTransport {
    inner: SmtpInner,
    server: String,
}

#[derive(Clone)]
enum SmtpInner {
    Own(Arc<ConnectionPool>),
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("server", &self.server)
            .finish()
    }
}

impl SmtpTransport {
    pub fn new(cfg: &SmtpConfig) -> Result<SmtpTransport, TransportConfigError> {
        let server = format!("{}:{}", cfg.host, cfg.port);
        let inner = match cfg.tls {
            TlsMode::None | TlsMode::StartTls => SmtpInner::Own(Arc::new(ConnectionPool::new(cfg))),
            // RFC 8314 §3: implicit TLS from the first byte.
            TlsMode::Tls => SmtpInner::Lettre(lettre_transport(cfg)?),
        };
        Ok(SmtpTransport { inner, server })
    }

    /// `MAIL FROM`, `RCPT TO`, `DATA` with the raw bytes on a reused connection.
    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<String, SendError> {
        let env = lettre_envelope(envelope)?;
        // RFC 5321 §4.1.1.4: the CRLF ending the last line is the first half of the
        // `<CRLF>.<CRLF>` terminator, which lettre always writes in full; passing it too
        // would append an empty line to the message.
        let data = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
        let sent = match &self.inner {
            SmtpInner::Own(pool) => pool.send(&env, data).await,
            SmtpInner::Lettre(t) => t.send_raw(&env, data).await.map_err(|e| classify_smtp(&e)),
        };
        sent.map(|resp| {
            let text: Vec<&str> = resp.message().collect();
            format!("{} {}", resp.code(), text.join(" "))
        })
    }

    async fn shutdown(&self) {
        match &self.inner {
            SmtpInner::Own(pool) => pool.shutdown().await,
            SmtpInner::Lettre(t) => t.shutdown().await,
        }
    }
}

fn lettre_transport(cfg: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, TransportConfigError> {
    let builder = AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host)
        .map_err(|e| TransportConfigError::Smtp(e.to_string()))?
        .port(cfg.port)
        .timeout(Some(Duration::from_secs(cfg.timeout_secs.max(1))))
        .pool_config(PoolConfig::new().max_size(cfg.pool_size.max(1)));
    Ok(match (&cfg.username, &cfg.password) {
        (Some(user), Some(pass)) => builder.credentials(Credentials::new(user.clone(), pass.clone())),
        _ => builder,
    }
    .build())
}

/// Idle SMTP sessions kept for reuse (plain or STARTTLS).
struct ConnectionPool {
    host: String,
    port: u16,
    starttls: bool,
    credentials: Option<Credentials>,
    timeout: Duration,
    max_idle: usize,
    hello: ClientId,
    idle: tokio::sync::Mutex<Vec<AsyncSmtpConnection>>,
}

impl ConnectionPool {
    fn new(cfg: &SmtpConfig) -> ConnectionPool {
        let credentials = match (&cfg.username, &cfg.password) {
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.clone())),
            _ => None,
        };
        ConnectionPool {
            host: cfg.host.clone(),
            port: cfg.port,
            starttls: cfg.tls == TlsMode::StartTls,
            credentials,
            timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
            max_idle: cfg.pool_size.max(1) as usize,
            hello: ClientId::default(),
            idle: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    async fn send(&self, env: &lettre::address::Envelope, data: &[u8]) -> Result<Response, SendError> {
        let reused = self.idle.lock().await.pop();
        let mut conn = match reused {
            Some(c) if !c.has_broken() => c,
            _ => self.connect().await?,
        };
        let sent = tokio::time::timeout(self.timeout, conn.send(env, data)).await;
        match sent {
            Ok(Ok(resp)) => {
                self.keep(conn).await;
                Ok(resp)
            }
            Ok(Err(e)) => Err(classify_smtp(&e)),
            Err(_) => Err(SendError::Transient(format!("{}:{}: timed out", self.host, self.port))),
        }
    }

    async fn keep(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().await;
        if idle.len() < self.max_idle && !conn.has_broken() {
            idle.push(conn);
        }
    }

    /// Connect, say EHLO, upgrade with STARTTLS (RFC 3207, required when configured) and
    /// authenticate.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let session = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| SendError::Transient(format!("{}:{}: {e}", self.host, self.port)))?;
            tcp.set_nodelay(true).map_err(|e| SendError::Transient(e.to_string()))?;
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(|e| classify_smtp(&e))?;
            if self.starttls {
                if !conn.can_starttls() {
                    return Err(SendError::Transient(format!("{}: STARTTLS required but not offered", self.host)));
                }
                let params = TlsParameters::new(self.host.clone()).map_err(|e| SendError::Transient(e.to_string()))?;
                conn.starttls(params, &self.hello).await.map_err(|e| classify_smtp(&e))?;
            }
            if let Some(c) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], c).await.map_err(|e| classify_smtp(&e))?;
            }
            Ok(conn)
        };
        tokio::time::timeout(self.timeout, session)
            .await
            .map_err(|_| SendError::Transient(format!("{}:{}: connect timed out", self.host, self.port)))?
    }

    /// `QUIT` every idle session.
    async fn shutdown(&self) {
        let sessions: Vec<AsyncSmtpConnection> = self.idle.lock().await.drain(..).collect();
        for mut c in sessions {
            let _ = tokio::time::timeout(self.timeout, c.quit()).await;
        }
    }
}

/// Our envelope as lettre's; an unparseable address can never be delivered.
fn lettre_envelope(envelope: &Envelope) -> Result<lettre::address::Envelope, SendError> {
    let parse = |a: &str| {
        a.parse::<Address>()
            .map_err(|e| SendError::Permanent(format!("invalid address {a:?}: {e}")))
    };
    // RFC 5321 §4.5.5: an empty reverse-path is the null sender `<>`.
    let from = match envelope.from.trim() {
        "" => None,
        f => Some(parse(f)?),
    };
    let to = parse(envelope.to.trim())?;
    lettre::address::Envelope::new(from, vec![to])
        .map_err(|e| SendError::Permanent(format!("invalid envelope: {e}")))
}

/// RFC 5321 §4.2.1: 5yz is a permanent negative completion, 4yz a transient one. Everything
/// that is not a 5yz reply (timeouts, refused connections, TLS and network errors, a server
/// lacking an extension we need) is transient: the item is retried until it gives up.
fn classify_smtp(e: &SmtpError) -> SendError {
    let text = match (e.status(), e.source()) {
        (Some(code), Some(src)) => format!("{code} {src}"),
        (Some(code), None) => code.to_string(),
        (None, _) => error_chain(e),
    };
    if e.is_permanent() {
        SendError::Permanent(text)
    } else {
        SendError::Transient(text)
    }
}

/// The error and its sources, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Writes each message to `<dir>/<unix-ms>-<rcpt>-<n>.eml`, exactly the bytes.
#[derive(Clone, Debug)]
pub struct FileTransport {
    dir: PathBuf,
}

/// Numbers the files of this process, so that no two writers (even two transports on the
/// same folder) share a temporary name.
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileTransport {
    pub fn new(dir: &Path) -> FileTransport {
        FileTransport {
            dir: dir.to_path_buf(),
        }
    }

    /// Write to a temporary name in the same folder, flush to disk, then rename, so that a
    /// reader of `<dir>/*.eml` never sees a partial message.
    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<String, SendError> {
        let io = |what: &str, e: std::io::Error| SendError::Transient(format!("{what}: {e}"));
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io(&format!("create {}", self.dir.display()), e))?;
        let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!(".tmp-{}-{n}", std::process::id()));
        write_synced(&tmp, bytes)
            .await
            .map_err(|e| io(&format!("write {}", tmp.display()), e))?;
        let target = self.free_name(&envelope.to, n).await;
        if let Err(e) = tokio::fs::rename(&tmp, &target).await {
            // Best effort: the temporary file is useless now and must not pile up.
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io(&format!("rename to {}", target.display()), e));
        }
        Ok(format!("written {}", target.display()))
    }

    /// A name not in use yet: the counter goes on while a file of that name exists
    /// (another process writing to the same folder in the same millisecond).
    async fn free_name(&self, rcpt: &str, mut n: u64) -> PathBuf {
        let ms = crate::store::now_ms();
        let rcpt = sanitize_rcpt(rcpt);
        loop {
            let path = self.dir.join(format!("{ms}-{rcpt}-{n}.eml"));
            if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                return path;
            }
            n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = tokio::fs::File::create(path).await?;
    f.write_all(bytes).await?;
    f.sync_all().await
}

/// The recipient as a file-name part: letters, digits and `.@+_-`, at most 64 bytes.
fn sanitize_rcpt(rcpt: &str) -> String {
    let keep = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '+' | '_' | '-');
    let s: String = rcpt
        .chars()
        .map(|c| if keep(c) { c } else { '_' })
        .take(64)
        .collect();
    if s.is_empty() {
        "_".to_string()
    } else {
        s
    }
}

/// How long a `sendmail` run may take before it is killed and the send retried.
const SENDMAIL_TIMEOUT: Duration = Duration::from_secs(300);

/// Pipes each message to `<sendmail> -i -f <from> -- <to>`.
#[derive(Clone, Debug)]
pub struct SendmailTransport {
    program: PathBuf,
}

impl SendmailTransport {
    pub fn new(program: &Path) -> SendmailTransport {
        SendmailTransport {
            program: program.to_path_buf(),
        }
    }

    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<String, SendError> {
        let from = if envelope.from.trim().is_empty() {
            "<>"
        } else {
            envelope.from.trim()
        };
        // `-i`: a line with a single dot is data, not the end of the message.
        let mut child = tokio::process::Command::new(&self.program)
            .args(["-i", "-f", from, "--", envelope.to.trim()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                SendError::Transient(format!("cannot run {}: {e}", self.program.display()))
            })?;
        let stdin = child.stdin.take();
        let write = async move {
            match stdin {
                Some(mut s) => s.write_all(bytes).await.and(s.shutdown().await),
                None => Ok(()),
            }
        };
        let run = async { tokio::join!(write, child.wait_with_output()) };
        let (written, output) = tokio::time::timeout(SENDMAIL_TIMEOUT, run)
            .await
            .map_err(|_| SendError::Transient(format!("{} timed out", self.program.display())))?;
        let output = output.map_err(|e| SendError::Transient(format!("sendmail: {e}")))?;
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        sendmail_outcome(output.status, &stderr, written.err())
    }
}

/// sysexits.h: EX_DATAERR (65), EX_NOUSER (67) and EX_NOHOST (68) will not change on a
/// retry; EX_TEMPFAIL (75) and every other failure may.
fn sendmail_outcome(
    status: ExitStatus,
    stderr: &str,
    write_error: Option<std::io::Error>,
) -> Result<String, SendError> {
    let detail = |what: String| {
        if stderr.is_empty() {
            what
        } else {
            format!("{what}: {stderr}")
        }
    };
    match status.code() {
        Some(0) => match write_error {
            None => Ok(detail("sendmail exited 0".to_string())),
            // The MTA exited successfully without reading everything: not a delivery.
            Some(e) => Err(SendError::Transient(detail(format!(
                "writing to sendmail: {e}"
            )))),
        },
        Some(code @ (65 | 67 | 68)) => Err(SendError::Permanent(detail(format!(
            "sendmail exited {code}"
        )))),
        Some(code) => Err(SendError::Transient(detail(format!(
            "sendmail exited {code}"
        )))),
        None => Err(SendError::Transient(detail(
            "sendmail killed by a signal".to_string(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn env(to: &str) -> Envelope {
        Envelope {
            from: "bounce+1@gw.example".into(),
            to: to.into(),
        }
    }

    const MAIL: &[u8] = b"Message-ID: <a@gw.example>\r\nSubject: t\r\n\r\n.\r\nbody\xff\r\n";

    fn eml_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn file_transport_writes_exact_bytes_under_distinct_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let t = Transport::File(FileTransport::new(&dir));
        let r1 = t.send(&env("Alice Smith@x.example"), MAIL).await.unwrap();
        let r2 = t.send(&env("../etc/passwd"), MAIL).await.unwrap();
        let _ = t.send(&env("../etc/passwd"), b"second").await.unwrap();
        assert!(r1.starts_with("written "));
        let files = eml_files(&dir);
        assert_eq!(files.len(), 3);
        let all: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(all.len(), 3, "no temporary files left: {all:?}");
        let first = files
            .iter()
            .find(|p| r1.ends_with(&*p.to_string_lossy()))
            .unwrap();
        assert!(first.to_string_lossy().contains("-Alice_Smith@x.example-"));
        assert_eq!(std::fs::read(first).unwrap(), MAIL);
        let second = files
            .iter()
            .find(|p| r2.ends_with(&*p.to_string_lossy()))
            .unwrap();
        assert_eq!(
            second.parent().unwrap(),
            dir,
            "the recipient cannot escape the folder"
        );
        assert!(second.to_string_lossy().contains("-.._etc_passwd-"));
    }

    #[test]
    fn sanitized_names_are_plain() {
        assert_eq!(sanitize_rcpt("a/b\\c d@x"), "a_b_c_d@x");
        assert_eq!(sanitize_rcpt(""), "_");
        assert_eq!(sanitize_rcpt(&"x".repeat(300)).len(), 64);
    }

    /// A fake sendmail that records its arguments and stdin, then exits with `code`.
    fn fake_sendmail(dir: &Path, code: i32) -> PathBuf {
        let script = dir.join("sendmail");
        let body = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{d}/args'\ncat > '{d}/stdin'\n\
             echo 'fake says hi' >&2\nexit {code}\n",
            d = dir.display()
        );
        std::fs::write(&script, body).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        wait_until_executable(&script);
        script
    }

    /// A test thread that forks while another one still has the script open for writing
    /// gives the child a copy of that descriptor until it execs; running the script
    /// meanwhile fails with ETXTBSY. Run it once until that has passed.
    fn wait_until_executable(script: &Path) {
        const ETXTBSY: i32 = 26;
        for _ in 0..200 {
            let run = std::process::Command::new(script)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            match run {
                Err(e) if e.raw_os_error() == Some(ETXTBSY) => std::thread::sleep(std::time::Duration::from_millis(10)),
                _ => return,
            }
        }
        panic!("{} stayed busy", script.display());
    }

    #[tokio::test]
    async fn sendmail_gets_args_and_exact_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let t = SendmailTransport::new(&fake_sendmail(tmp.path(), 0));
        let reply = t.send(&env("-oQ/tmp@evil.example"), MAIL).await.unwrap();
        assert_eq!(reply, "sendmail exited 0: fake says hi");
        let args = std::fs::read_to_string(tmp.path().join("args")).unwrap();
        assert_eq!(
            args,
            "-i\n-f\nbounce+1@gw.example\n--\n-oQ/tmp@evil.example\n"
        );
        assert_eq!(std::fs::read(tmp.path().join("stdin")).unwrap(), MAIL);
    }

    #[tokio::test]
    async fn sendmail_tempfail_is_transient() {
        let tmp = tempfile::tempdir().unwrap();
        let t = SendmailTransport::new(&fake_sendmail(tmp.path(), 75));
        let err = t.send(&env("a@x.example"), MAIL).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(err.detail(), "sendmail exited 75: fake says hi");
    }

    #[tokio::test]
    async fn sendmail_nouser_is_permanent() {
        let tmp = tempfile::tempdir().unwrap();
        let t = SendmailTransport::new(&fake_sendmail(tmp.path(), 67));
        let err = t.send(&env("a@x.example"), MAIL).await.unwrap_err();
        assert!(!err.is_transient(), "{err}");
    }

    #[tokio::test]
    async fn sendmail_missing_program_is_transient() {
        let tmp = tempfile::tempdir().unwrap();
        let t = SendmailTransport::new(&tmp.path().join("nope"));
        let err = t.send(&env("a@x.example"), MAIL).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
    }

    #[test]
    fn invalid_envelope_is_permanent() {
        let bad = Envelope {
            from: "".into(),
            to: "not an address".into(),
        };
        assert!(!lettre_envelope(&bad).unwrap_err().is_transient());
        let null_sender = Envelope {
            from: " ".into(),
            to: "a@x.example".into(),
        };
        assert!(lettre_envelope(&null_sender).unwrap().from().is_none());
    }

    #[tokio::test]
    async fn refused_connection_is_transient() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            username: None,
            password_file: None,
            password: None,
            timeout_secs: 5,
            pool_size: 1,
        };
        let t = SmtpTransport::new(&cfg).unwrap();
        let err = t.send(&env("a@x.example"), MAIL).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
    }
}
