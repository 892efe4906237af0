//! Connection stage: TCP, then implicit TLS (port 993) or STARTTLS (port 143) with rustls,
//! or plaintext on loopback only; the greeting; authentication (LOGIN, AUTHENTICATE PLAIN,
//! AUTHENTICATE XOAUTH2) with the secret read from its file at each connection; the
//! capabilities the source relies on.

use super::{timed, ImapError};
use crate::config::{read_secret_line, ImapAuth, ImapConfig, TlsMode};
use async_imap::imap_proto::{Response, Status};
use async_imap::{Authenticator, Client};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// The byte stream under an IMAP session: plain TCP (loopback only) or TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// An authenticated IMAP session.
pub type Session = async_imap::Session<Stream>;

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What the server offers that changes how the source works.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Caps {
    /// RFC 2177.
    pub idle: bool,
    /// RFC 6851.
    pub moves: bool,
    /// RFC 4315 (UID EXPUNGE).
    pub uidplus: bool,
}

/// An open, authenticated connection.
#[derive(Debug)]
pub struct Connection {
    pub session: Session,
    pub caps: Caps,
}

/// The TLS client settings: the system roots plus the certificates of `imap.ca_file`.
pub fn tls_config(cfg: &ImapConfig) -> Result<Arc<ClientConfig>, ImapError> {
    let tls_err = |detail: String| ImapError::Tls {
        host: cfg.host.clone(),
        detail,
    };
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(file) = &cfg.ca_file {
        let certs = CertificateDer::pem_file_iter(file)
            .map_err(|e| tls_err(format!("imap.ca_file {}: {e}", file.display())))?;
        for cert in certs {
            let cert =
                cert.map_err(|e| tls_err(format!("imap.ca_file {}: {e}", file.display())))?;
            roots
                .add(cert)
                .map_err(|e| tls_err(format!("imap.ca_file {}: {e}", file.display())))?;
        }
    }
    if roots.is_empty() {
        return Err(tls_err(format!(
            "no trusted CA certificates: the system has none ({added} loaded) and imap.ca_file is not set"
        )));
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connect, secure, authenticate and read the capabilities. `tls` is required unless
/// `imap.tls = "none"`.
pub async fn open(
    cfg: &ImapConfig,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Connection, ImapError> {
    let t = Duration::from_secs(cfg.timeout_secs);
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let tcp = tokio::time::timeout(t, TcpStream::connect((cfg.host.as_str(), cfg.port)))
        .await
        .map_err(|_| ImapError::Timeout {
            what: "connect",
            secs: cfg.timeout_secs,
        })?
        .map_err(|source| ImapError::Connect {
            addr: addr.clone(),
            source,
        })?;
    // Commands are small and answered one at a time: do not wait to fill segments.
    let _ = tcp.set_nodelay(true);
    let stream = match (cfg.tls, tls) {
        (TlsMode::None, _) => {
            let peer = tcp.peer_addr().map_err(|source| ImapError::Connect {
                addr: addr.clone(),
                source,
            })?;
            if !peer.ip().is_loopback() {
                return Err(ImapError::NotLoopback(peer.to_string()));
            }
            let mut client = Client::new(Stream::Plain(tcp));
            greeting(&mut client, cfg).await?;
            client
        }
        (TlsMode::Tls, Some(tls)) => {
            let mut client = Client::new(Stream::Tls(Box::new(handshake(tcp, tls, cfg).await?)));
            greeting(&mut client, cfg).await?;
            client
        }
        (TlsMode::StartTls, Some(tls)) => {
            Client::new(Stream::Tls(Box::new(start_tls(tcp, tls, cfg).await?)))
        }
        (_, None) => {
            return Err(ImapError::Tls {
                host: cfg.host.clone(),
                detail: "no TLS settings".into(),
            })
        }
    };
    let mut session = authenticate(stream, cfg).await?;
    let caps = timed(t, "CAPABILITY", session.capabilities()).await?;
    let caps = Caps {
        idle: caps.has_str("IDLE"),
        moves: caps.has_str("MOVE"),
        uidplus: caps.has_str("UIDPLUS"),
    };
    Ok(Connection { session, caps })
}

async fn handshake(
    tcp: TcpStream,
    tls: &Arc<ClientConfig>,
    cfg: &ImapConfig,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let host = cfg
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let name = ServerName::try_from(host).map_err(|e| ImapError::Tls {
        host: cfg.host.clone(),
        detail: format!("not a server name: {e}"),
    })?;
    let connector = TlsConnector::from(Arc::clone(tls));
    tokio::time::timeout(
        Duration::from_secs(cfg.timeout_secs),
        connector.connect(name, tcp),
    )
    .await
    .map_err(|_| ImapError::Timeout {
        what: "TLS handshake",
        secs: cfg.timeout_secs,
    })?
    .map_err(|e| ImapError::Tls {
        host: cfg.host.clone(),
        detail: e.to_string(),
    })
}

/// RFC 3501 §6.2.1 / RFC 2595 §3.1: greeting, STARTTLS, then TLS on the same connection.
async fn start_tls(
    tcp: TcpStream,
    tls: &Arc<ClientConfig>,
    cfg: &ImapConfig,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let t = Duration::from_secs(cfg.timeout_secs);
    let mut client = Client::new(tcp);
    greeting(&mut client, cfg).await?;
    timed(
        t,
        "STARTTLS",
        client.run_command_and_check_ok("STARTTLS", None),
    )
    .await
    .map_err(|e| match e {
        ImapError::Imap { source, .. } => ImapError::Tls {
            host: cfg.host.clone(),
            detail: format!("STARTTLS refused: {source}"),
        },
        other => other,
    })?;
    handshake(client.into_inner(), tls, cfg).await
}

/// RFC 3501 §7.1: the greeting is an untagged OK (or PREAUTH); BYE means go away.
async fn greeting<T>(client: &mut Client<T>, cfg: &ImapConfig) -> Result<(), ImapError>
where
    T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let t = Duration::from_secs(cfg.timeout_secs);
    let first = tokio::time::timeout(t, client.read_response())
        .await
        .map_err(|_| ImapError::Timeout {
            what: "greeting",
            secs: cfg.timeout_secs,
        })?
        .map_err(|e| ImapError::Imap {
            what: "greeting",
            source: e.into(),
        })?;
    let Some(first) = first else {
        return Err(ImapError::Server(format!(
            "{} closed the connection before its greeting",
            cfg.host
        )));
    };
    match first.parsed() {
        Response::Data {
            status: Status::Ok | Status::PreAuth,
            ..
        } => Ok(()),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(ImapError::Server(format!(
            "{} refused the connection: {:?}",
            cfg.host, outcome.information
        ))),
        other => Err(ImapError::Server(format!(
            "{} sent no greeting but {other:?}",
            cfg.host
        ))),
    }
}

/// AUTHENTICATE PLAIN (RFC 4616 §2): `[authzid] NUL authcid NUL passwd`, no authzid.
struct PlainAuth {
    message: Vec<u8>,
}

impl PlainAuth {
    fn new(user: &str, password: &str) -> PlainAuth {
        PlainAuth {
            message: format!("\0{user}\0{password}").into_bytes(),
        }
    }
}

impl Authenticator for PlainAuth {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        std::mem::take(&mut self.message)
    }
}

/// AUTHENTICATE XOAUTH2 (Google's and Microsoft's SASL profile of an OAuth 2.0 bearer
/// token): `user=U ^A auth=Bearer T ^A ^A`. When the token is refused the server sends a
/// JSON challenge, answered with an empty line so that the tagged NO follows.
struct XOAuth2 {
    message: Vec<u8>,
}

impl XOAuth2 {
    fn new(user: &str, token: &str) -> XOAuth2 {
        XOAuth2 {
            message: format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes(),
        }
    }
}

impl Authenticator for XOAuth2 {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        std::mem::take(&mut self.message)
    }
}

async fn authenticate(client: Client<Stream>, cfg: &ImapConfig) -> Result<Session, ImapError> {
    let secret = read_secret_line(&cfg.secret_file).map_err(ImapError::Secret)?;
    let t = Duration::from_secs(cfg.timeout_secs);
    let user = cfg.username.as_str();
    let attempt = async {
        match cfg.auth {
            ImapAuth::Login => client.login(user, &secret).await,
            ImapAuth::Plain => {
                client
                    .authenticate("PLAIN", PlainAuth::new(user, &secret))
                    .await
            }
            ImapAuth::XOAuth2 => {
                client
                    .authenticate("XOAUTH2", XOAuth2::new(user, &secret))
                    .await
            }
        }
    };
    let result = tokio::time::timeout(t, attempt)
        .await
        .map_err(|_| ImapError::Timeout {
            what: "authentication",
            secs: cfg.timeout_secs,
        })?;
    result.map_err(|(e, _client)| match e {
        async_imap::error::Error::No(detail) | async_imap::error::Error::Bad(detail) => {
            ImapError::Auth {
                user: user.to_string(),
                mechanism: cfg.auth.as_str(),
                detail,
            }
        }
        other => ImapError::Imap {
            what: "authentication",
            source: other,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_message_has_no_authzid() {
        let mut a = PlainAuth::new("gw@example.org", "pa ss");
        assert_eq!(a.process(b""), b"\0gw@example.org\0pa ss");
        assert_eq!(
            a.process(b""),
            b"",
            "a second challenge gets an empty answer"
        );
    }

    #[test]
    fn xoauth2_message_and_error_answer() {
        let mut a = XOAuth2::new("someone@example.com", "ya29.token");
        assert_eq!(
            a.process(b""),
            b"user=someone@example.com\x01auth=Bearer ya29.token\x01\x01"
        );
        let challenge =
            br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
        assert_eq!(
            a.process(challenge),
            b"",
            "the error challenge is answered with an empty line"
        );
    }
}
