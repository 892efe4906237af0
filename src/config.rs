//! Configuration: TOML → [`Config`]. Unknown keys are errors; loading reports every
//! problem at once with its dotted key path (SPEC §10); secrets are read from files, never
//! written inline.
//!
//! The file is parsed into a [`toml::Table`] and walked by a small reader (`Section`) that
//! records each problem in `Problems` and carries on with a default, so that one run of
//! `check-config` lists everything that is wrong.

use crate::mail::AddressBook;
use crate::model::Assurance;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// The whole configuration, with relative paths already resolved against the directory of
/// the config file and secrets already read.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file this was read from (empty for a config built in memory).
    pub source: PathBuf,
    pub gateway: GatewayConfig,
    pub database: DatabaseConfig,
    pub posting: PostingConfig,
    pub inbound: InboundConfig,
    pub intake: IntakeConfig,
    pub outbound: OutboundConfig,
    pub log: LogConfig,
    pub pgp: PgpConfig,
    /// The IMAP source; `None` when there is no `[imap]` section.
    pub imap: Option<ImapConfig>,
    pub http: HttpConfig,
    pub digest: DigestConfig,
    pub coordination: CoordinationConfig,
}

/// The loopback HTTP endpoint with `/healthz` and `/metrics` (SPEC §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Loopback address and port, e.g. `127.0.0.1:9187`; no endpoint when absent.
    pub listen: Option<std::net::SocketAddr>,
}

/// Daily digests (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestConfig {
    /// Hour of the day (UTC, 0–23) at which `serve` queues the digests. Default 7.
    pub hour_utc: u32,
}

/// The coordination workflow (SPEC §6.6, §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinationConfig {
    /// Days after the initial contact on which a vendor that has neither replied nor given
    /// a status is reminded. Default `[7, 14]`.
    pub reminder_days: Vec<u32>,
    /// Hour of the day (UTC, 0–23) of the coordinators' daily summary. Default 7.
    pub summary_hour_utc: u32,
    /// At most one case summary (`-info`) per contact and case in this many seconds.
    /// Default 3600.
    pub info_interval_secs: u64,
    /// What a reporter is told when their report is declined.
    pub decline_text: String,
    /// A participant added after the discussion started gets the discussion so far with
    /// the case summary (SPEC §6.6). Default true.
    pub late_joiner_history: bool,
}

/// The default wording of a declined report.
pub const DEFAULT_DECLINE_TEXT: &str = "Thank you for your report. After review, we will not coordinate it \
as a case: it is outside our scope, or it is handled elsewhere already. You are free to contact \
the vendor directly and to publish your findings.";

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Shown in From: `"<author> via <name>" <cases@domain>`. Default `casegate`.
    pub name: String,
    /// Lowercase mail domain of the gateway. Required.
    pub domain: String,
    /// Local part of case addresses. Default `cases`.
    pub local_part: String,
    /// Lowercase intake addresses. Default `["security@<domain>"]`.
    pub intake: Vec<String>,
    /// Case id prefix. Default `VU#`.
    pub case_prefix: String,
    /// File holding the HMAC secret for reply and bounce keys (at least 16 bytes).
    pub secret_file: PathBuf,
    /// The secret's bytes, read from `secret_file` at load time.
    pub secret: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `sqlite://path` (relative paths resolved against the config directory).
    /// Default `sqlite://casegate.db`.
    pub url: String,
    /// How long a statement waits for another connection's lock before failing with
    /// SQLITE_BUSY. Default 30000.
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Clone)]
pub struct PostingConfig {
    /// Global minimum sender assurance for posting into threads. Default `dmarc`.
    pub min_assurance: Assurance,
    /// `authserv-id`s whose Authentication-Results headers are trusted. Default empty.
    pub trusted_authserv_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// Largest mail accepted for processing; larger ones are quarantined. Default 25 MiB.
    pub max_message_bytes: u64,
    /// Maildir polled by `serve` (its `new/`, `cur/` and `tmp/`). Optional.
    pub maildir: Option<PathBuf>,
    /// How often `serve` scans the Maildir, in milliseconds. Default 1000.
    pub poll_interval_ms: u64,
    /// Limits on a mail's shape: `max_mime_depth` (at most 32), `max_mime_parts`,
    /// `max_header_fields`, `max_recipients`, `max_references`, `max_body_text_bytes`.
    pub limits: crate::mail::Limits,
}

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// At most one acknowledgement per sender in this many seconds. Default 3600.
    pub ack_interval_secs: u64,
    /// Which senders of a new report get an acknowledgement. Default `authenticated`.
    pub acknowledge: AckPolicy,
    /// At most this many acknowledgements to anyone per hour. Default 60.
    pub ack_max_per_hour: u64,
}

/// Who gets the acknowledgement of a new report (SPEC §8; a forged From must not make the
/// gateway mail a third party).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPolicy {
    /// Senders with a trusted DMARC pass or a good signature.
    Authenticated,
    /// Every sender (outside the gateway's own domain).
    All,
    /// Nobody.
    None,
}

impl AckPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authenticated" => Some(AckPolicy::Authenticated),
            "all" => Some(AckPolicy::All),
            "none" => Some(AckPolicy::None),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Smtp,
    File,
    Sendmail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain SMTP (only sensible on loopback).
    None,
    StartTls,
    /// Implicit TLS (submissions port 465).
    Tls,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    /// Default 25 (none), 587 (starttls), 465 (tls).
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Read from `password_file` at load time.
    pub password: Option<String>,
    /// Per-command timeout in seconds. Default 30.
    pub timeout_secs: u64,
    /// Connections kept open for reuse. Default 4.
    pub pool_size: u32,
}

#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// First retry delay in seconds. Default 60.
    pub initial_secs: u64,
    /// Largest delay in seconds. Default 21600 (6 h).
    pub max_secs: u64,
    /// Give up (state `dead`) this many seconds after the item was created. Default 432000 (5 days).
    pub give_up_secs: u64,
}

#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Default `file` when `file_dir` is set and no `[outbound.smtp]`, else `smtp`.
    pub transport: TransportKind,
    /// Attachments larger than this are listed with size and sha256 instead. Default 10 MiB.
    pub max_attachment_bytes: u64,
    /// Folder for the `file` transport.
    pub file_dir: Option<PathBuf>,
    pub smtp: Option<SmtpConfig>,
    /// Sendmail binary for the `sendmail` transport. Default `/usr/sbin/sendmail`.
    pub sendmail_path: PathBuf,
    pub retry: RetryConfig,
    /// Items sent concurrently by the worker. Default 8.
    pub concurrency: usize,
    /// How long a claim on an item being sent holds without renewal (the sender renews it
    /// every third of this while it sends). Default 60.
    pub claim_lease_secs: u64,
}

/// The gateway's OpenPGP keys (SPEC §5).
#[derive(Debug, Clone)]
pub struct PgpConfig {
    /// The current secret key (signs and decrypts), written by `casegate keys generate`.
    /// Default `gateway-key.asc` beside the config file. Until it exists the gateway neither
    /// signs nor decrypts (it still encrypts to recipients' certificates).
    pub key_file: PathBuf,
    /// Earlier secret keys that still decrypt (key rollover). Default none.
    pub old_key_files: Vec<PathBuf>,
    /// The keys, read and checked at load time; `None` while `key_file` does not exist.
    pub keys: Option<std::sync::Arc<crate::pgp::keyring::GatewayKeys>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `tracing` filter, default `info`.
    pub level: String,
}

/// How the IMAP client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapAuth {
    /// The LOGIN command (RFC 3501 §6.2.3).
    Login,
    /// AUTHENTICATE PLAIN (RFC 4616).
    Plain,
    /// AUTHENTICATE XOAUTH2 with an OAuth 2.0 access token (Gmail, Microsoft 365).
    XOAuth2,
}

/// What the first contact with a mailbox that already holds mail does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// Process nothing, log the count and wait for the operator.
    Refuse,
    /// Process the mail already there.
    Process,
    /// Leave the mail already there untouched; process only mail that arrives later.
    Skip,
}

/// How a committed mail is acknowledged on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// Moved to the mailbox's `processed` or `quarantine` folder.
    Move,
    /// Left in place with `imap.keyword` set (for read-only deployments).
    Keyword,
}

/// One polled mailbox and the folders its mail is moved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapMailbox {
    /// Mailbox name as the server shows it (UTF-8; encoded for the wire). Default `INBOX`.
    pub name: String,
    /// Where routed, ignored and bounce mail goes. Default `Processed`.
    pub processed: String,
    /// Where quarantined mail goes. Default `Quarantine`.
    pub quarantine: String,
}

/// `[imap]`: the IMAP source of `serve` (SPEC §3 stage 1).
#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    /// Default 993 (tls), 143 (starttls, none).
    pub port: u16,
    /// Default `tls`; `none` is accepted only for a loopback host.
    pub tls: TlsMode,
    /// PEM file of extra CA certificates trusted besides the system roots.
    pub ca_file: Option<PathBuf>,
    pub username: String,
    /// Default `login`.
    pub auth: ImapAuth,
    /// `password_file` (login, plain) or `oauth2_token_file` (xoauth2). Read at load time to
    /// check it, and again at each connection so that a refreshed token is picked up.
    pub secret_file: PathBuf,
    /// Default `refuse`.
    pub backlog: Backlog,
    /// Default `move`.
    pub acknowledge: AckMode,
    /// Keyword set by `acknowledge = "keyword"`. Default `$CasegateProcessed`.
    pub keyword: String,
    /// Messages per UID FETCH. Default 100.
    pub batch_size: u32,
    /// Use IDLE when the server offers it. Default true.
    pub idle: bool,
    /// IDLE is re-issued after this many seconds. Default 1500 (25 min; at most 29 min).
    pub idle_renew_secs: u64,
    /// Poll interval without IDLE, in seconds. Default 30.
    pub poll_interval_secs: u64,
    /// A full check of every mailbox at least this often, in seconds, IDLE or not. Default 300.
    pub full_check_secs: u64,
    /// Timeout of each network step (connect, TLS, one command, one fetched message). Default 60.
    pub timeout_secs: u64,
    /// Longest wait between reconnection attempts, in seconds. Default 300.
    pub reconnect_max_secs: u64,
    /// Lifetime of the lease that lets one instance poll a mailbox, in seconds. Default 60.
    pub lease_secs: u64,
    /// Default one mailbox, `INBOX`.
    pub mailboxes: Vec<ImapMailbox>,
}

impl ImapAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ImapAuth::Login => "login",
            ImapAuth::Plain => "plain",
            ImapAuth::XOAuth2 => "xoauth2",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "login" => Some(ImapAuth::Login),
            "plain" => Some(ImapAuth::Plain),
            "xoauth2" => Some(ImapAuth::XOAuth2),
            _ => None,
        }
    }
}

impl Backlog {
    pub fn as_str(self) -> &'static str {
        match self {
            Backlog::Refuse => "refuse",
            Backlog::Process => "process",
            Backlog::Skip => "skip",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refuse" => Some(Backlog::Refuse),
            "process" => Some(Backlog::Process),
            "skip" => Some(Backlog::Skip),
            _ => None,
        }
    }
}

impl AckMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Move => "move",
            AckMode::Keyword => "keyword",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "move" => Some(AckMode::Move),
            "keyword" => Some(AckMode::Keyword),
            _ => None,
        }
    }
}

impl ImapConfig {
    /// The usual IMAP port of a TLS mode: 993 (implicit TLS), else 143.
    pub fn default_port(tls: TlsMode) -> u16 {
        // RFC 8314 §3.3: imaps on 993; RFC 3501 §2.1 / RFC 2595 §3.1: imap (STARTTLS) on 143.
        match tls {
            TlsMode::Tls => 993,
            TlsMode::StartTls | TlsMode::None => 143,
        }
    }

    /// Names the account in checkpoints and leases: `imap://user@host:port`.
    pub fn account(&self) -> String {
        format!("imap://{}@{}:{}", self.username, self.host, self.port)
    }
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Smtp => "smtp",
            TransportKind::File => "file",
            TransportKind::Sendmail => "sendmail",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "smtp" => Some(TransportKind::Smtp),
            "file" => Some(TransportKind::File),
            "sendmail" => Some(TransportKind::Sendmail),
            _ => None,
        }
    }
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::StartTls => "starttls",
            TlsMode::Tls => "tls",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(TlsMode::None),
            "starttls" => Some(TlsMode::StartTls),
            "tls" => Some(TlsMode::Tls),
            _ => None,
        }
    }
    /// The usual port of the mode: 25 (none), 587 (starttls), 465 (tls).
    pub fn default_port(self) -> u16 {
        match self {
            // RFC 5321 §4.5.4.2 / RFC 6409 §3.1 / RFC 8314 §3.3: smtp, submission, submissions.
            TlsMode::None => 25,
            TlsMode::StartTls => 587,
            TlsMode::Tls => 465,
        }
    }
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// One problem in the configuration, named by its dotted key path (`outbound.smtp.port`),
/// or `(file)` for a problem with the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

/// Every problem found in one configuration, in file order of the sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    fn one(key: &str, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError {
            key: key.to_string(),
            message: message.into(),
        }])
    }
}

/// The key used for problems with the file as a whole (unreadable, TOML syntax).
const FILE_KEY: &str = "(file)";

const SECTIONS: &[&str] = &[
    "gateway", "database", "posting", "inbound", "intake", "outbound", "log", "pgp", "imap", "http", "digest",
    "coordination",
];
const GATEWAY_KEYS: &[&str] = &[
    "name",
    "domain",
    "local_part",
    "intake",
    "case_prefix",
    "secret_file",
];
const DATABASE_KEYS: &[&str] = &["url", "busy_timeout_ms"];
const POSTING_KEYS: &[&str] = &["min_assurance", "trusted_authserv_ids"];
const INBOUND_KEYS: &[&str] = &[
    "max_message_bytes",
    "maildir",
    "poll_interval_ms",
    "max_mime_depth",
    "max_mime_parts",
    "max_header_fields",
    "max_recipients",
    "max_references",
    "max_body_text_bytes",
];
/// Deepest MIME nesting that may be configured.
const MAX_MIME_DEPTH: u64 = 32;
const INTAKE_KEYS: &[&str] = &["ack_interval_secs", "acknowledge", "ack_max_per_hour"];
const OUTBOUND_KEYS: &[&str] = &[
    "transport",
    "max_attachment_bytes",
    "file_dir",
    "sendmail_path",
    "concurrency",
    "claim_lease_secs",
    "smtp",
    "retry",
];
const SMTP_KEYS: &[&str] = &[
    "host",
    "port",
    "tls",
    "username",
    "password_file",
    "timeout_secs",
    "pool_size",
];
const RETRY_KEYS: &[&str] = &["initial_secs", "max_secs", "give_up_secs"];
const LOG_KEYS: &[&str] = &["format", "level"];
const HTTP_KEYS: &[&str] = &["listen"];
const DIGEST_KEYS: &[&str] = &["hour_utc"];
const COORDINATION_KEYS: &[&str] = &[
    "reminder_days",
    "summary_hour_utc",
    "info_interval_secs",
    "decline_text",
    "late_joiner_history",
];
const PGP_KEYS: &[&str] = &["key_file", "old_key_files"];
const DEFAULT_KEY_FILE: &str = "gateway-key.asc";
const IMAP_KEYS: &[&str] = &[
    "host",
    "port",
    "tls",
    "ca_file",
    "username",
    "auth",
    "password_file",
    "oauth2_token_file",
    "backlog",
    "acknowledge",
    "keyword",
    "batch_size",
    "idle",
    "idle_renew_secs",
    "poll_interval_secs",
    "full_check_secs",
    "timeout_secs",
    "reconnect_max_secs",
    "lease_secs",
    "mailbox",
];
const IMAP_MAILBOX_KEYS: &[&str] = &["name", "processed", "quarantine"];
/// RFC 2177 §3: the server may drop an IDLE client after 30 minutes; re-issue before 29.
const IMAP_IDLE_MAX_SECS: u64 = 29 * 60;

const DEFAULT_DATABASE_URL: &str = "sqlite://casegate.db";
const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";
const MIB: u64 = 1024 * 1024;
/// Fewest secret bytes accepted for the HMAC key of reply and bounce addresses.
const MIN_SECRET_BYTES: usize = 16;
/// Largest count a TOML integer can hold.
const TOML_MAX: u64 = i64::MAX as u64;

/// The problems found so far.
#[derive(Debug, Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    fn add(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigError {
            key: key.to_string(),
            message: message.into(),
        });
    }
}

/// `expected a string, found integer`.
fn expected(what: &str, found: &Value) -> String {
    format!("expected {what}, found {}", found.type_str())
}

/// One table of the file with its dotted path. `table` is `None` when the section is absent
/// or is not a table (`broken`, already reported), so that its keys read as defaults.
struct Section<'t> {
    path: String,
    table: Option<&'t Table>,
    broken: bool,
}

impl<'t> Section<'t> {
    fn root(table: &'t Table, p: &mut Problems) -> Self {
        for (name, value) in table {
            if !SECTIONS.contains(&name.as_str()) {
                let what = if value.is_table() {
                    "section"
                } else {
                    "top-level key"
                };
                let known = SECTIONS.join(", ");
                p.add(
                    name,
                    format!("unknown key: there is no such {what}; sections are {known}"),
                );
            } else if !value.is_table() {
                p.add(name, expected("a table", value));
            }
        }
        Section {
            path: String::new(),
            table: Some(table),
            broken: false,
        }
    }

    /// The sub-table `name`, with its unknown keys reported.
    fn table(&self, name: &str, known: &[&str], p: &mut Problems) -> Section<'t> {
        let path = self.key(name);
        match self.get(name) {
            Some(Value::Table(t)) => {
                report_unknown(&path, t, known, p);
                Section {
                    path,
                    table: Some(t),
                    broken: false,
                }
            }
            Some(v) => {
                // The root reports its own non-table sections.
                if !self.path.is_empty() {
                    p.add(&path, expected("a table", v));
                }
                Section {
                    path,
                    table: None,
                    broken: true,
                }
            }
            None => Section {
                path,
                table: None,
                broken: self.broken,
            },
        }
    }

    fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn get(&self, name: &str) -> Option<&'t Value> {
        self.table.and_then(|t| t.get(name))
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Reports a missing required key (unless the section itself was already reported).
    fn missing(&self, name: &str, p: &mut Problems) {
        if !self.broken {
            p.add(&self.key(name), "missing (required)");
        }
    }

    fn string(&self, name: &str, p: &mut Problems) -> Option<String> {
        match self.get(name)? {
            Value::String(s) => Some(s.clone()),
            v => {
                p.add(&self.key(name), expected("a string", v));
                None
            }
        }
    }

    fn required_string(&self, name: &str, p: &mut Problems) -> Option<String> {
        if !self.has(name) {
            self.missing(name, p);
        }
        self.string(name, p)
    }

    fn strings(&self, name: &str, p: &mut Problems) -> Option<Vec<String>> {
        let items = match self.get(name)? {
            Value::Array(items) => items,
            v => {
                p.add(&self.key(name), expected("an array of strings", v));
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                v => p.add(&format!("{}[{i}]", self.key(name)), expected("a string", v)),
            }
        }
        Some(out)
    }

    /// An integer in `1..=max`, or `default` when absent or wrong.
    fn count(&self, name: &str, default: u64, max: u64, p: &mut Problems) -> u64 {
        let n = match self.get(name) {
            None => return default,
            Some(Value::Integer(n)) => *n,
            Some(v) => {
                p.add(&self.key(name), expected("an integer", v));
                return default;
            }
        };
        match u64::try_from(n) {
            Ok(0) => p.add(&self.key(name), "must be greater than zero"),
            Ok(n) if n <= max => return n,
            _ => p.add(
                &self.key(name),
                format!("must be between 1 and {max}, found {n}"),
            ),
        }
        default
    }

    /// An hour of the day (UTC, 0–23); 7 when absent or wrong.
    fn hour(&self, name: &str, p: &mut Problems) -> u32 {
        match self.get(name) {
            None => 7,
            Some(Value::Integer(h)) if (0..=23).contains(h) => *h as u32,
            Some(Value::Integer(h)) => {
                p.add(&self.key(name), format!("must be an hour from 0 to 23, found {h}"));
                7
            }
            Some(v) => {
                p.add(&self.key(name), expected("an integer", v));
                7
            }
        }
    }

    /// A path, resolved against `base` when relative.
    fn path(&self, name: &str, base: &Path, p: &mut Problems) -> Option<PathBuf> {
        let s = self.string(name, p)?;
        if s.is_empty() {
            p.add(&self.key(name), "must not be empty");
            return None;
        }
        Some(base.join(s))
    }

    /// One of a fixed set of spellings; `Err(())` when present but invalid (reported).
    fn choice<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        choices: &str,
        p: &mut Problems,
    ) -> Result<Option<T>, ()> {
        let Some(s) = self.string(name, p) else {
            return if self.has(name) { Err(()) } else { Ok(None) };
        };
        match parse(&s) {
            Some(v) => Ok(Some(v)),
            None => {
                p.add(
                    &self.key(name),
                    format!("invalid value {s:?}; expected one of {choices}"),
                );
                Err(())
            }
        }
    }
}

/// Reports every key of `table` not in `known`. A key `x` for which `x_file` is known is a
/// secret written inline, and the message says so.
fn report_unknown(path: &str, table: &Table, known: &[&str], p: &mut Problems) {
    for name in table.keys() {
        if known.contains(&name.as_str()) {
            continue;
        }
        let key = format!("{path}.{name}");
        let file_key = format!("{name}_file");
        if known.contains(&file_key.as_str()) {
            p.add(
                &key,
                format!("unknown key: secrets are never written inline; put it in a file and set `{file_key}`"),
            );
        } else {
            p.add(
                &key,
                format!("unknown key; keys of [{path}] are {}", known.join(", ")),
            );
        }
    }
}

/// RFC 1035 §2.3.1 / RFC 5321 §4.1.2: dot-separated labels of letters, digits and inner
/// hyphens, each at most 63 octets, 253 in all. A gateway domain also needs at least two
/// labels and a top-level label that is not all digits (an IP address is not a mail domain).
fn is_domain(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    s.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()))
}

/// RFC 5322 §3.2.3: a dot-atom of atext; RFC 5321 §4.5.3.1.1: at most 64 octets.
fn is_local_part(s: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    let atext = |b: u8| b.is_ascii_alphanumeric() || SPECIALS.contains(&b);
    (1..=64).contains(&s.len()) && s.split('.').all(|a| !a.is_empty() && a.bytes().all(atext))
}

/// `local@domain` with a dot-atom local part (quoted local parts are not accepted).
fn is_address(s: &str) -> bool {
    s.rsplit_once('@')
        .is_some_and(|(local, domain)| is_local_part(local) && is_domain(domain))
}

/// Letters followed by an optional `#` or `-` (`VU#`, `CASE-`, `VU`). Digits are refused
/// although they look harmless: case ids and addresses are split at the first digit
/// ([`AddressBook::case_digits`]), so a digit in the prefix would corrupt every case id.
fn is_case_prefix(s: &str) -> bool {
    let letters = s.strip_suffix(['#', '-']).unwrap_or(s);
    !letters.is_empty() && letters.bytes().all(|b| b.is_ascii_alphabetic())
}

fn read_gateway(root: &Section, base: &Path, p: &mut Problems) -> GatewayConfig {
    let s = root.table("gateway", GATEWAY_KEYS, p);
    let name = s
        .string("name", p)
        .unwrap_or_else(|| "casegate".to_string());
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        p.add(
            &s.key("name"),
            "must be non-empty text without control characters",
        );
    }
    let domain = s
        .required_string("domain", p)
        .map(|d| d.to_ascii_lowercase());
    if let Some(d) = domain.as_deref().filter(|d| !is_domain(d)) {
        p.add(
            &s.key("domain"),
            format!("{d:?} is not a mail domain (like example.org)"),
        );
    }
    let local_part = s.string("local_part", p).map(|l| l.to_ascii_lowercase());
    // RFC 5233 §1: `+` separates the tag, so it cannot be part of the local part itself.
    if let Some(l) = local_part
        .as_deref()
        .filter(|l| !is_local_part(l) || l.contains('+'))
    {
        p.add(
            &s.key("local_part"),
            format!("{l:?} is not a local part without `+`"),
        );
    }
    let local_part = local_part.unwrap_or_else(|| "cases".to_string());
    let domain = domain.unwrap_or_default();
    let intake = read_intake(&s, &domain, &local_part, p);
    let case_prefix = s
        .string("case_prefix", p)
        .unwrap_or_else(|| "VU#".to_string());
    if !is_case_prefix(&case_prefix) {
        p.add(
            &s.key("case_prefix"),
            format!("{case_prefix:?} must be letters followed by an optional `#` or `-`"),
        );
    }
    let (secret_file, secret) = read_secret(&s, base, p);
    GatewayConfig {
        name,
        domain,
        local_part,
        intake,
        case_prefix,
        secret_file,
        secret,
    }
}

fn read_intake(s: &Section, domain: &str, local_part: &str, p: &mut Problems) -> Vec<String> {
    let Some(list) = s.strings("intake", p) else {
        return if domain.is_empty() {
            Vec::new()
        } else {
            vec![format!("security@{domain}")]
        };
    };
    let case_local = format!("{local_part}@");
    let case_tagged = format!("{local_part}+");
    let mut intake = Vec::with_capacity(list.len());
    for (i, address) in list.into_iter().enumerate() {
        let key = format!("{}[{i}]", s.key("intake"));
        let address = address.to_ascii_lowercase();
        if !is_address(&address) {
            p.add(
                &key,
                format!("{address:?} is not a mail address (like security@example.org)"),
            );
        } else if address.ends_with(&format!("@{domain}"))
            && (address.starts_with(&case_local) || address.starts_with(&case_tagged))
        {
            p.add(
                &key,
                format!("{address:?} is the gateway's own case address"),
            );
        } else {
            intake.push(address);
        }
    }
    intake
}

/// The HMAC secret: the trimmed content of `secret_file`, at least 16 bytes.
fn read_secret(s: &Section, base: &Path, p: &mut Problems) -> (PathBuf, Vec<u8>) {
    if !s.has("secret_file") {
        s.missing("secret_file", p);
        return (PathBuf::new(), Vec::new());
    }
    let Some(path) = s.path("secret_file", base, p) else {
        return (PathBuf::new(), Vec::new());
    };
    let key = s.key("secret_file");
    match std::fs::read(&path) {
        Err(e) => p.add(&key, format!("cannot read {}: {e}", path.display())),
        Ok(bytes) => {
            let secret = bytes.trim_ascii();
            if secret.len() >= MIN_SECRET_BYTES {
                return (path, secret.to_vec());
            }
            p.add(
                &key,
                format!(
                    "{} holds {} bytes after trimming; at least {MIN_SECRET_BYTES} are needed",
                    path.display(),
                    secret.len()
                ),
            );
        }
    }
    (path, Vec::new())
}

/// Splits a sqlite URL into its path and its `?query` (with the `?`), or says why not.
fn split_sqlite_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or_else(|| format!("{url:?} is not a sqlite URL (sqlite://PATH or sqlite::memory:)"))?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.find('?').map_or((rest, ""), |i| rest.split_at(i));
    if path.is_empty() {
        return Err(format!("{url:?} names no database file"));
    }
    Ok((path, query))
}

/// `sqlite://relative.db` → `sqlite:///base/relative.db`; memory and absolute URLs unchanged.
/// A `postgres://` or `postgresql://` URL selects PostgreSQL and is kept as it is (SPEC §9).
fn resolve_sqlite_url(url: &str, base: &Path) -> Result<String, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_string());
    }
    let (path, query) = split_sqlite_url(url)
        .map_err(|e| if url.starts_with("sqlite:") { e } else { format!("{url:?} is not a sqlite: or postgres:// URL") })?;
    if path == ":memory:" || Path::new(path).is_absolute() {
        return Ok(url.to_string());
    }
    Ok(format!("sqlite://{}{query}", base.join(path).display()))
}

fn read_database(root: &Section, base: &Path, p: &mut Problems) -> DatabaseConfig {
    let s = root.table("database", DATABASE_KEYS, p);
    let url = s
        .string("url", p)
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
    let busy_timeout_ms = s.count("busy_timeout_ms", 30_000, TOML_MAX, p);
    match resolve_sqlite_url(&url, base) {
        Ok(url) => DatabaseConfig { url, busy_timeout_ms },
        Err(message) => {
            p.add(&s.key("url"), message);
            DatabaseConfig { url, busy_timeout_ms }
        }
    }
}

fn read_posting(root: &Section, p: &mut Problems) -> PostingConfig {
    let s = root.table("posting", POSTING_KEYS, p);
    let min_assurance = s
        .choice("min_assurance", Assurance::parse, &Assurance::choices(), p)
        .ok()
        .flatten()
        .unwrap_or(Assurance::Dmarc);
    let ids = s.strings("trusted_authserv_ids", p).unwrap_or_default();
    let mut trusted_authserv_ids = Vec::with_capacity(ids.len());
    for (i, id) in ids.into_iter().enumerate() {
        // RFC 8601 §2.2: the authserv-id is a `value` (a token, usually a host name).
        let token = |c: char| c.is_ascii_graphic() && !matches!(c, ';' | '"' | '(' | ')');
        if id.is_empty() || !id.chars().all(token) {
            let key = format!("{}[{i}]", s.key("trusted_authserv_ids"));
            p.add(
                &key,
                format!("{id:?} is not an authserv-id (like mx.example.org)"),
            );
        } else {
            trusted_authserv_ids.push(id.to_ascii_lowercase());
        }
    }
    PostingConfig {
        min_assurance,
        trusted_authserv_ids,
    }
}

fn read_inbound(root: &Section, base: &Path, p: &mut Problems) -> InboundConfig {
    let s = root.table("inbound", INBOUND_KEYS, p);
    InboundConfig {
        max_message_bytes: s.count("max_message_bytes", 25 * MIB, TOML_MAX, p),
        maildir: s.path("maildir", base, p),
        poll_interval_ms: s.count("poll_interval_ms", 1000, TOML_MAX, p),
        limits: read_limits(&s, p),
    }
}

fn read_limits(s: &Section, p: &mut Problems) -> crate::mail::Limits {
    let d = crate::mail::Limits::default();
    let mut count = |key: &str, default: usize, max: u64| {
        usize::try_from(s.count(key, default as u64, max, p)).unwrap_or(default)
    };
    crate::mail::Limits {
        max_mime_depth: count("max_mime_depth", d.max_mime_depth, MAX_MIME_DEPTH),
        max_mime_parts: count("max_mime_parts", d.max_mime_parts, u32::MAX.into()),
        max_header_fields: count("max_header_fields", d.max_header_fields, u32::MAX.into()),
        max_recipients: count("max_recipients", d.max_recipients, u32::MAX.into()),
        max_references: count("max_references", d.max_references, u32::MAX.into()),
        max_body_text_bytes: count("max_body_text_bytes", d.max_body_text_bytes, u32::MAX.into()),
    }
}

fn read_intake_section(root: &Section, p: &mut Problems) -> IntakeConfig {
    let s = root.table("intake", INTAKE_KEYS, p);
    let acknowledge = s.choice("acknowledge", AckPolicy::parse, "authenticated, all, none", p);
    IntakeConfig {
        ack_interval_secs: s.count("ack_interval_secs", 3600, TOML_MAX, p),
        acknowledge: acknowledge.ok().flatten().unwrap_or(AckPolicy::Authenticated),
        ack_max_per_hour: s.count("ack_max_per_hour", 60, TOML_MAX, p),
    }
}

fn read_smtp(s: &Section, base: &Path, p: &mut Problems) -> Option<SmtpConfig> {
    let host = s.required_string("host", p);
    if host.as_deref().is_some_and(|h| h.trim().is_empty()) {
        p.add(&s.key("host"), "must not be empty");
    }
    let tls = s.choice("tls", TlsMode::parse, "none, starttls, tls", p);
    let tls = tls.ok().flatten().unwrap_or(TlsMode::StartTls);
    let port = s.count(
        "port",
        u64::from(tls.default_port()),
        u64::from(u16::MAX),
        p,
    );
    let username = s.string("username", p);
    let password_file = s.path("password_file", base, p);
    let password = password_file
        .as_deref()
        .and_then(|f| read_password(s, f, p));
    if username.is_some() != s.has("password_file") {
        let (needs, other) = if username.is_some() {
            ("password_file", "username")
        } else {
            ("username", "password_file")
        };
        p.add(
            &s.key(needs),
            format!("missing (required when {other} is set)"),
        );
    }
    Some(SmtpConfig {
        host: host?,
        port: u16::try_from(port).unwrap_or(tls.default_port()),
        tls,
        username,
        password_file,
        password,
        timeout_secs: s.count("timeout_secs", 30, TOML_MAX, p),
        pool_size: u32::try_from(s.count("pool_size", 4, u64::from(u32::MAX), p)).unwrap_or(4),
    })
}

/// The SMTP password: the file's text without its final line break.
fn read_password(s: &Section, file: &Path, p: &mut Problems) -> Option<String> {
    let key = s.key("password_file");
    match std::fs::read_to_string(file) {
        Err(e) => p.add(&key, format!("cannot read {}: {e}", file.display())),
        Ok(text) => {
            let password = text.trim_end_matches(['\r', '\n']);
            if !password.is_empty() {
                return Some(password.to_string());
            }
            p.add(&key, format!("{} is empty", file.display()));
        }
    }
    None
}

fn read_retry(s: &Section, p: &mut Problems) -> RetryConfig {
    let initial_secs = s.count("initial_secs", 60, TOML_MAX, p);
    let max_secs = s.count("max_secs", 21_600, TOML_MAX, p);
    if initial_secs > max_secs {
        p.add(
            &s.key("initial_secs"),
            format!(
                "{initial_secs} is larger than {} ({max_secs})",
                s.key("max_secs")
            ),
        );
    }
    RetryConfig {
        initial_secs,
        max_secs,
        give_up_secs: s.count("give_up_secs", 432_000, TOML_MAX, p),
    }
}

fn read_outbound(root: &Section, base: &Path, p: &mut Problems) -> OutboundConfig {
    let s = root.table("outbound", OUTBOUND_KEYS, p);
    let transport = s.choice("transport", TransportKind::parse, "smtp, file, sendmail", p);
    let smtp_section = s.table("smtp", SMTP_KEYS, p);
    let smtp_present = smtp_section.table.is_some();
    let smtp = smtp_section
        .table
        .and_then(|_| read_smtp(&smtp_section, base, p));
    let file_dir = s.path("file_dir", base, p);
    let transport = transport.map(|t| {
        t.unwrap_or(if file_dir.is_some() && !smtp_present {
            TransportKind::File
        } else {
            TransportKind::Smtp
        })
    });
    match transport {
        Ok(TransportKind::Smtp) if !smtp_present && !smtp_section.broken => p.add(
            &smtp_section.path,
            "missing section [outbound.smtp] (required by the smtp transport, the default \
             unless outbound.file_dir is set)",
        ),
        Ok(TransportKind::File) if file_dir.is_none() && !s.has("file_dir") => p.add(
            &s.key("file_dir"),
            "missing (required when outbound.transport is \"file\")",
        ),
        _ => {}
    }
    OutboundConfig {
        transport: transport.ok().unwrap_or(TransportKind::Smtp),
        max_attachment_bytes: s.count("max_attachment_bytes", 10 * MIB, TOML_MAX, p),
        file_dir,
        smtp,
        sendmail_path: s
            .path("sendmail_path", base, p)
            .unwrap_or_else(|| DEFAULT_SENDMAIL.into()),
        retry: read_retry(&s.table("retry", RETRY_KEYS, p), p),
        concurrency: usize::try_from(s.count("concurrency", 8, u64::from(u32::MAX), p))
            .unwrap_or(8),
        claim_lease_secs: s.count("claim_lease_secs", 60, 86_400, p),
    }
}

fn read_log(root: &Section, p: &mut Problems) -> LogConfig {
    let s = root.table("log", LOG_KEYS, p);
    let format = s.choice("format", LogFormat::parse, "text, json", p);
    let level = s.string("level", p).unwrap_or_else(|| "info".to_string());
    if level.trim().is_empty() {
        p.add(&s.key("level"), "must not be empty");
    } else if let Err(e) = tracing_subscriber::EnvFilter::try_new(&level) {
        p.add(
            &s.key("level"),
            format!("{level:?} is not a tracing filter: {e}"),
        );
    }
    LogConfig {
        format: format.ok().flatten().unwrap_or(LogFormat::Text),
        level,
    }
}

fn read_http(root: &Section, p: &mut Problems) -> HttpConfig {
    let s = root.table("http", HTTP_KEYS, p);
    let listen = s.string("listen", p).and_then(|v| match v.parse::<std::net::SocketAddr>() {
        // SPEC §10: the endpoint is for the local host only.
        Ok(a) if a.ip().is_loopback() => Some(a),
        Ok(_) => {
            p.add(&s.key("listen"), format!("{v:?} is not a loopback address (use 127.0.0.1:PORT or [::1]:PORT)"));
            None
        }
        Err(e) => {
            p.add(&s.key("listen"), format!("{v:?} is not an address:port: {e}"));
            None
        }
    });
    HttpConfig { listen }
}

fn read_digest(root: &Section, p: &mut Problems) -> DigestConfig {
    let s = root.table("digest", DIGEST_KEYS, p);
    DigestConfig { hour_utc: s.hour("hour_utc", p) }
}

fn read_coordination(root: &Section, p: &mut Problems) -> CoordinationConfig {
    let s = root.table("coordination", COORDINATION_KEYS, p);
    let reminder_days = match s.get("reminder_days") {
        None => vec![7, 14],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Value::Integer(d) if (1..=365).contains(d) => Some(*d as u32),
                v => {
                    p.add(&format!("{}[{i}]", s.key("reminder_days")), expected("a number of days from 1 to 365", v));
                    None
                }
            })
            .collect(),
        Some(v) => {
            p.add(&s.key("reminder_days"), expected("an array of days", v));
            vec![7, 14]
        }
    };
    let decline_text = s.string("decline_text", p).unwrap_or_else(|| DEFAULT_DECLINE_TEXT.to_string());
    if decline_text.trim().is_empty() {
        p.add(&s.key("decline_text"), "must not be empty");
    }
    let late_joiner_history = match s.get("late_joiner_history") {
        None => true,
        Some(Value::Boolean(b)) => *b,
        Some(v) => {
            p.add(&s.key("late_joiner_history"), expected("true or false", v));
            true
        }
    };
    CoordinationConfig {
        reminder_days,
        summary_hour_utc: s.hour("summary_hour_utc", p),
        info_interval_secs: s.count("info_interval_secs", 3600, TOML_MAX, p),
        decline_text,
        late_joiner_history,
    }
}

fn read_pgp(root: &Section, base: &Path, p: &mut Problems) -> PgpConfig {
    let s = root.table("pgp", PGP_KEYS, p);
    let key_file = s.path("key_file", base, p).unwrap_or_else(|| base.join(DEFAULT_KEY_FILE));
    let old_key_files: Vec<PathBuf> = s.strings("old_key_files", p).unwrap_or_default().iter().map(|f| base.join(f)).collect();
    let keys = if key_file.exists() {
        read_gateway_keys(&s, &key_file, &old_key_files, p)
    } else {
        if !old_key_files.is_empty() {
            p.add(&s.key("key_file"), format!("{} does not exist, but old_key_files are set", key_file.display()));
        }
        None
    };
    PgpConfig { key_file, old_key_files, keys }
}

/// A secret key file: readable, owner-only permissions, an unprotected OpenPGP secret key.
fn read_key_file(key: &str, path: &Path, p: &mut Problems) -> Option<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            if m.permissions().mode() & 0o077 != 0 {
                p.add(key, format!("{} must be readable by its owner only (chmod 600)", path.display()));
                return None;
            }
        }
    }
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            p.add(key, format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

fn read_gateway_keys(
    s: &Section,
    key_file: &Path,
    old_files: &[PathBuf],
    p: &mut Problems,
) -> Option<std::sync::Arc<crate::pgp::keyring::GatewayKeys>> {
    let current = read_key_file(&s.key("key_file"), key_file, p);
    let mut old = Vec::new();
    for (i, f) in old_files.iter().enumerate() {
        old.extend(read_key_file(&format!("{}[{i}]", s.key("old_key_files")), f, p));
    }
    let now = chrono::Utc::now().timestamp_millis();
    match crate::pgp::keyring::GatewayKeys::load(&current?, &old, now) {
        Ok(k) => Some(std::sync::Arc::new(k)),
        Err(e) => {
            p.add(&s.key("key_file"), e.to_string());
            None
        }
    }
}

/// Whether plaintext IMAP may be used with `host`: `localhost` or a loopback address.
fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// RFC 3501 §9: a flag keyword is an `atom`: CHARs other than atom-specials
/// (`(`, `)`, `{`, SP, CTL, `%`, `*`, `"`, `\`, `]`); a leading `\` would be a system flag.
fn is_imap_keyword(s: &str) -> bool {
    const SPECIALS: &[u8] = b"(){ %*\"\\]";
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !SPECIALS.contains(&b))
}

/// The text of a secret file (password or OAuth 2.0 token) without its final line break.
/// Used at load time and again by each IMAP connection.
pub fn read_secret_line(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let line = text.trim_end_matches(['\r', '\n']);
    if line.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(line.to_string())
}

fn read_imap(root: &Section, base: &Path, p: &mut Problems) -> Option<ImapConfig> {
    let s = root.table("imap", IMAP_KEYS, p);
    s.table?;
    let host = s.required_string("host", p).unwrap_or_default();
    let tls = s.choice("tls", TlsMode::parse, "tls, starttls, none", p);
    let tls = tls.ok().flatten().unwrap_or(TlsMode::Tls);
    if s.has("host") && host.trim().is_empty() {
        p.add(&s.key("host"), "must not be empty");
    } else if tls == TlsMode::None && !host.is_empty() && !is_loopback_host(&host) {
        p.add(
            &s.key("tls"),
            format!("\"none\" (plaintext) is allowed only with a loopback host (localhost, 127.0.0.1, ::1), not {host:?}"),
        );
    }
    let port = s.count(
        "port",
        ImapConfig::default_port(tls).into(),
        u16::MAX.into(),
        p,
    );
    let ca_file = s.path("ca_file", base, p);
    if let Some(f) = &ca_file {
        match std::fs::read_to_string(f) {
            Err(e) => p.add(
                &s.key("ca_file"),
                format!("cannot read {}: {e}", f.display()),
            ),
            Ok(t) if !t.contains("-----BEGIN CERTIFICATE-----") => p.add(
                &s.key("ca_file"),
                format!("{} holds no PEM certificate", f.display()),
            ),
            Ok(_) => {}
        }
    }
    let username = s.required_string("username", p).unwrap_or_default();
    let (auth, secret_file) = read_imap_auth(&s, base, p);
    let acknowledge = s.choice("acknowledge", AckMode::parse, "move, keyword", p);
    let acknowledge = acknowledge.ok().flatten().unwrap_or(AckMode::Move);
    let keyword = s
        .string("keyword", p)
        .unwrap_or_else(|| "$CasegateProcessed".to_string());
    if !is_imap_keyword(&keyword) {
        p.add(
            &s.key("keyword"),
            format!("{keyword:?} is not an IMAP keyword (an atom such as $CasegateProcessed)"),
        );
    }
    let backlog = s.choice("backlog", Backlog::parse, "refuse, process, skip", p);
    let mailboxes = read_imap_mailboxes(&s, acknowledge, p);
    let t = read_imap_timing(&s, p);
    Some(ImapConfig {
        host,
        port: u16::try_from(port).unwrap_or(ImapConfig::default_port(tls)),
        tls,
        ca_file,
        username,
        auth,
        secret_file,
        backlog: backlog.ok().flatten().unwrap_or(Backlog::Refuse),
        acknowledge,
        keyword,
        batch_size: t.batch_size,
        idle: t.idle,
        idle_renew_secs: t.idle_renew_secs,
        poll_interval_secs: t.poll_interval_secs,
        full_check_secs: t.full_check_secs,
        timeout_secs: t.timeout_secs,
        reconnect_max_secs: t.reconnect_max_secs,
        lease_secs: t.lease_secs,
        mailboxes,
    })
}

/// The counts and intervals of `[imap]`.
struct ImapTiming {
    batch_size: u32,
    idle: bool,
    idle_renew_secs: u64,
    poll_interval_secs: u64,
    full_check_secs: u64,
    timeout_secs: u64,
    reconnect_max_secs: u64,
    lease_secs: u64,
}

fn read_imap_timing(s: &Section, p: &mut Problems) -> ImapTiming {
    let idle = match s.get("idle") {
        None => true,
        Some(Value::Boolean(b)) => *b,
        Some(v) => {
            p.add(&s.key("idle"), expected("a boolean", v));
            true
        }
    };
    ImapTiming {
        batch_size: u32::try_from(s.count("batch_size", 100, 1000, p)).unwrap_or(100),
        idle,
        idle_renew_secs: s.count("idle_renew_secs", 1500, IMAP_IDLE_MAX_SECS, p),
        poll_interval_secs: s.count("poll_interval_secs", 30, TOML_MAX, p),
        full_check_secs: s.count("full_check_secs", 300, TOML_MAX, p),
        timeout_secs: s.count("timeout_secs", 60, TOML_MAX, p),
        reconnect_max_secs: s.count("reconnect_max_secs", 300, TOML_MAX, p),
        lease_secs: s.count("lease_secs", 60, TOML_MAX, p),
    }
}

/// `auth` and the secret file it needs: `password_file` for login and plain,
/// `oauth2_token_file` for xoauth2.
fn read_imap_auth(s: &Section, base: &Path, p: &mut Problems) -> (ImapAuth, PathBuf) {
    let auth = s.choice("auth", ImapAuth::parse, "login, plain, xoauth2", p);
    let auth = auth.ok().flatten().unwrap_or(ImapAuth::Login);
    let (wanted, other) = match auth {
        ImapAuth::XOAuth2 => ("oauth2_token_file", "password_file"),
        ImapAuth::Login | ImapAuth::Plain => ("password_file", "oauth2_token_file"),
    };
    if s.has(other) {
        p.add(
            &s.key(other),
            format!("not used with auth = \"{}\"; set {wanted}", auth.as_str()),
        );
    }
    if !s.has(wanted) {
        p.add(
            &s.key(wanted),
            format!("missing (required by auth = \"{}\")", auth.as_str()),
        );
        return (auth, PathBuf::new());
    }
    let Some(path) = s.path(wanted, base, p) else {
        return (auth, PathBuf::new());
    };
    if let Err(message) = read_secret_line(&path) {
        p.add(&s.key(wanted), message);
    }
    (auth, path)
}

/// `[[imap.mailbox]]`; absent means one mailbox, INBOX, with the default folders.
fn read_imap_mailboxes(s: &Section, ack: AckMode, p: &mut Problems) -> Vec<ImapMailbox> {
    let key = s.key("mailbox");
    let items = match s.get("mailbox") {
        None => return vec![imap_mailbox("INBOX".into(), None, None)],
        Some(Value::Array(items)) if items.is_empty() => {
            p.add(&key, "must name at least one mailbox");
            return Vec::new();
        }
        Some(Value::Array(items)) => items,
        Some(v) => {
            p.add(&key, expected("an array of tables ([[imap.mailbox]])", v));
            return Vec::new();
        }
    };
    let mut out: Vec<ImapMailbox> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{key}[{i}]");
        let Value::Table(t) = item else {
            p.add(&path, expected("a table", item));
            continue;
        };
        report_unknown(&path, t, IMAP_MAILBOX_KEYS, p);
        let m = Section {
            path,
            table: Some(t),
            broken: false,
        };
        let Some(mailbox) = read_imap_mailbox(&m, ack, p) else {
            continue;
        };
        if out.iter().any(|o| o.name == mailbox.name) {
            p.add(
                &m.key("name"),
                format!("mailbox {:?} is listed twice", mailbox.name),
            );
        }
        out.push(mailbox);
    }
    out
}

fn imap_mailbox(
    name: String,
    processed: Option<String>,
    quarantine: Option<String>,
) -> ImapMailbox {
    ImapMailbox {
        name,
        processed: processed.unwrap_or_else(|| "Processed".to_string()),
        quarantine: quarantine.unwrap_or_else(|| "Quarantine".to_string()),
    }
}

fn read_imap_mailbox(m: &Section, ack: AckMode, p: &mut Problems) -> Option<ImapMailbox> {
    let folder = |name: &str, p: &mut Problems| {
        let v = m.string(name, p)?;
        if v.trim().is_empty() || v.chars().any(char::is_control) {
            p.add(
                &m.key(name),
                "must be a non-empty mailbox name without control characters",
            );
            return None;
        }
        Some(v)
    };
    let name = folder("name", p);
    if !m.has("name") {
        m.missing("name", p);
    }
    let mailbox = imap_mailbox(name?, folder("processed", p), folder("quarantine", p));
    if ack == AckMode::Move {
        for (key, value) in [
            ("processed", &mailbox.processed),
            ("quarantine", &mailbox.quarantine),
        ] {
            if *value == mailbox.name {
                p.add(
                    &m.key(key),
                    format!("must differ from the polled mailbox {value:?}"),
                );
            }
        }
    }
    Some(mailbox)
}

/// A TOML syntax error as one `(file)` problem with its line and column.
fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigErrors {
    let message = e.message().trim();
    let Some(start) = e.span().map(|r| r.start.min(text.len())) else {
        return ConfigErrors::one(FILE_KEY, format!("TOML syntax: {message}"));
    };
    let before = text.get(..start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    ConfigErrors::one(
        FILE_KEY,
        format!("TOML syntax at line {line}, column {column}: {message}"),
    )
}

impl Config {
    /// Reads, parses and validates the file, and reads the secret files it names. Relative
    /// paths are resolved against the file's directory. Every problem is reported at once.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::one(FILE_KEY, format!("cannot read {}: {e}", path.display()))
        })?;
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = absolute.parent().unwrap_or(Path::new("."));
        Config::from_toml_str(&text, base, path)
    }

    /// Parses and validates `text` as if read from `source`; relative paths are resolved
    /// against `base_dir`; the secret files are read.
    pub fn from_toml_str(
        text: &str,
        base_dir: &Path,
        source: &Path,
    ) -> Result<Config, ConfigErrors> {
        let table: Table = toml::from_str(text).map_err(|e| syntax_error(text, &e))?;
        let mut p = Problems::default();
        let root = Section::root(&table, &mut p);
        let config = Config {
            source: source.to_path_buf(),
            gateway: read_gateway(&root, base_dir, &mut p),
            database: read_database(&root, base_dir, &mut p),
            posting: read_posting(&root, &mut p),
            inbound: read_inbound(&root, base_dir, &mut p),
            intake: read_intake_section(&root, &mut p),
            outbound: read_outbound(&root, base_dir, &mut p),
            log: read_log(&root, &mut p),
            pgp: read_pgp(&root, base_dir, &mut p),
            imap: read_imap(&root, base_dir, &mut p),
            http: read_http(&root, &mut p),
            digest: read_digest(&root, &mut p),
            coordination: read_coordination(&root, &mut p),
        };
        if p.0.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(p.0))
        }
    }

    /// The gateway's addresses.
    pub fn address_book(&self) -> AddressBook {
        AddressBook {
            domain: self.gateway.domain.clone(),
            local_part: self.gateway.local_part.clone(),
            intake: self.gateway.intake.clone(),
            case_prefix: self.gateway.case_prefix.clone(),
        }
    }

    /// The sqlite file path when `database.url` is a sqlite file URL (not `:memory:`).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let (path, query) = split_sqlite_url(&self.database.url).ok()?;
        let in_memory = path == ":memory:" || query.split(['?', '&']).any(|q| q == "mode=memory");
        (!in_memory).then(|| PathBuf::from(path))
    }
}

/// What `check-config` checks on the file system beyond loading (SPEC §10): secret files
/// (HMAC secret, SMTP and IMAP passwords or tokens, gateway keys) readable by their owner
/// only, and the outbox folder and the database creatable and writable. Every problem
/// names its key.
pub fn check_files(cfg: &Config) -> ConfigErrors {
    let mut p = Problems::default();
    let mut secrets: Vec<(String, &Path)> = vec![("gateway.secret_file".into(), cfg.gateway.secret_file.as_path())];
    if let Some(f) = cfg.outbound.smtp.as_ref().and_then(|s| s.password_file.as_deref()) {
        secrets.push(("outbound.smtp.password_file".into(), f));
    }
    if let Some(imap) = &cfg.imap {
        let key = if imap.auth == ImapAuth::XOAuth2 { "imap.oauth2_token_file" } else { "imap.password_file" };
        secrets.push((key.into(), imap.secret_file.as_path()));
    }
    if cfg.pgp.key_file.exists() {
        secrets.push(("pgp.key_file".into(), cfg.pgp.key_file.as_path()));
    }
    for (i, f) in cfg.pgp.old_key_files.iter().enumerate() {
        secrets.push((format!("pgp.old_key_files[{i}]"), f.as_path()));
    }
    for (key, path) in secrets {
        if let Some(message) = shared_secret(path) {
            p.add(&key, message);
        }
    }
    if let Some(dir) = &cfg.outbound.file_dir {
        if let Err(e) = writable_dir(dir) {
            p.add("outbound.file_dir", format!("{} cannot be created or written: {e}", dir.display()));
        }
    }
    if let Some(db) = cfg.sqlite_path() {
        if let Err(e) = writable_file(&db) {
            p.add("database.url", format!("{} cannot be created or written: {e}", db.display()));
        }
    }
    ConfigErrors(p.0)
}

/// Why a secret file is not private, if it is not.
fn shared_secret(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            return Some(format!(
                "{} is readable by group or others (mode {:o}); it must be readable by its owner only (chmod 600)",
                path.display(),
                mode & 0o777
            ));
        }
    }
    None
}

/// Creates the directory if needed and writes (then removes) a probe file in it.
fn writable_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".casegate-check-{}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
    std::fs::remove_file(&probe)
}

/// An existing file opens for writing; a new one could be created in its directory.
fn writable_file(file: &Path) -> std::io::Result<()> {
    if file.exists() {
        return std::fs::OpenOptions::new().write(true).open(file).map(drop);
    }
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("no directory {}", parent.display())));
    }
    let probe = parent.join(format!(".casegate-check-{}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
    std::fs::remove_file(&probe)
}

/// The configuration written by [`write_init`]. Paths are relative to the file's directory,
/// so the directory can be moved as a whole.
fn init_config_text(domain: &str, database_url: &str) -> String {
    format!(
        "# casegate configuration written by `casegate init`.\n\
         # Every key is described in config/casegate.example.toml.\n\
         # Relative paths are resolved against the directory of this file.\n\
         \n\
         [gateway]\n\
         domain = \"{domain}\"\n\
         secret_file = \"secret.key\"\n\
         \n\
         [database]\n\
         url = \"{database_url}\"\n\
         \n\
         [inbound]\n\
         maildir = \"maildir\"\n\
         \n\
         [outbound]\n\
         transport = \"file\"\n\
         file_dir = \"outbox\"\n"
    )
}

/// Sets a path's permission bits (owner-only modes, whatever the umask).
fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use anyhow::Context;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    Ok(())
}

/// Writes the secret as hex, readable by the owner only. An existing secret file is kept:
/// reply addresses already issued under it stay valid.
fn write_secret(path: &Path, secret: &[u8; 32]) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        other => other.with_context(|| format!("cannot create {}", path.display()))?,
    };
    file.write_all(format!("{}\n", hex::encode(secret)).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `casegate init DIR --domain D`: creates DIR, DIR/outbox and the Maildir DIR/maildir (with
/// `new`, `cur` and `tmp`), writes DIR/secret.key (the 32 bytes in hex, mode 0600; an
/// existing one is kept) and DIR/casegate.toml (file transport into DIR/outbox, database
/// `sqlite://casegate.db` in DIR, or `database_url`). Refuses to overwrite an existing
/// casegate.toml. Returns the path of the config file; the caller creates the database.
pub fn write_init(dir: &Path, domain: &str, database_url: Option<&str>, random_secret: [u8; 32]) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let domain = domain.to_ascii_lowercase();
    anyhow::ensure!(
        is_domain(&domain),
        "{domain:?} is not a mail domain (like example.org)"
    );
    let database_url = database_url.unwrap_or(DEFAULT_DATABASE_URL);
    if let Err(e) = resolve_sqlite_url(database_url, dir) {
        anyhow::bail!("--database-url: {e}");
    }
    let config_path = dir.join("casegate.toml");
    anyhow::ensure!(
        !config_path.exists(),
        "{} already exists; refusing to overwrite it",
        config_path.display()
    );
    for sub in ["outbox", "maildir/new", "maildir/cur", "maildir/tmp"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
    }
    // Private whatever the umask: the directory holds every raw mail and rendered message.
    for sub in ["", "outbox", "maildir", "maildir/new", "maildir/cur", "maildir/tmp"] {
        set_mode(&dir.join(sub), 0o700)?;
    }
    write_secret(&dir.join("secret.key"), &random_secret)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&config_path)
        .with_context(|| format!("cannot create {}", config_path.display()))?;
    std::io::Write::write_all(&mut file, init_config_text(&domain, database_url).as_bytes())
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    Ok(config_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    /// A directory with a valid `secret.key`.
    fn dir_with_secret() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("secret.key"), format!("  {SECRET}\n")).expect("write");
        dir
    }

    const MINIMAL: &str = "[gateway]\ndomain = \"Example.ORG\"\nsecret_file = \"secret.key\"\n\
                           [outbound]\nfile_dir = \"out\"\n";

    fn parse(text: &str, dir: &Path) -> Result<Config, ConfigErrors> {
        Config::from_toml_str(text, dir, &dir.join("casegate.toml"))
    }

    /// The errors of `text`, which must not load.
    fn errors(text: &str) -> Vec<ConfigError> {
        let dir = dir_with_secret();
        match parse(text, dir.path()) {
            Ok(_) => panic!("loaded although invalid:\n{text}"),
            Err(e) => e.0,
        }
    }

    /// The one error of `text` at `key`; panics listing all errors otherwise.
    fn error_at(text: &str, key: &str) -> String {
        let all = errors(text);
        let at: Vec<&ConfigError> = all.iter().filter(|e| e.key == key).collect();
        assert_eq!(at.len(), 1, "expected one error at {key}, got {all:?}");
        at[0].message.clone()
    }

    fn minimal_with(extra: &str) -> String {
        format!("{MINIMAL}{extra}")
    }

    #[test]
    fn defaults_of_a_minimal_config() {
        let dir = dir_with_secret();
        let c = parse(MINIMAL, dir.path()).expect("valid");
        let g = &c.gateway;
        assert_eq!(g.name, "casegate");
        assert_eq!(g.domain, "example.org");
        assert_eq!(g.local_part, "cases");
        assert_eq!(g.intake, vec!["security@example.org".to_string()]);
        assert_eq!(g.case_prefix, "VU#");
        assert_eq!(g.secret, SECRET.as_bytes(), "trimmed file content");
        assert_eq!(g.secret_file, dir.path().join("secret.key"));
        assert_eq!(
            c.database.url,
            format!("sqlite://{}/casegate.db", dir.path().display())
        );
        assert_eq!(c.posting.min_assurance, Assurance::Dmarc);
        assert!(c.posting.trusted_authserv_ids.is_empty());
        assert_eq!(c.inbound.max_message_bytes, 25 * 1024 * 1024);
        assert_eq!(c.inbound.maildir, None);
        assert_eq!(c.inbound.poll_interval_ms, 1000);
        assert_eq!(c.intake.ack_interval_secs, 3600);
        let o = &c.outbound;
        assert_eq!(
            o.transport,
            TransportKind::File,
            "file_dir without [outbound.smtp]"
        );
        assert_eq!(o.file_dir, Some(dir.path().join("out")));
        assert_eq!(o.max_attachment_bytes, 10 * 1024 * 1024);
        assert_eq!(o.sendmail_path, PathBuf::from("/usr/sbin/sendmail"));
        assert_eq!(o.concurrency, 8);
        assert_eq!(o.claim_lease_secs, 60);
        assert!(o.smtp.is_none());
        assert_eq!(
            (o.retry.initial_secs, o.retry.max_secs, o.retry.give_up_secs),
            (60, 21_600, 432_000)
        );
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(c.log.level, "info");
    }

    #[test]
    fn smtp_is_the_default_transport_with_smtp_defaults() {
        let dir = dir_with_secret();
        let text = minimal_with("[outbound.smtp]\nhost = \"relay.example.org\"\n");
        let c = parse(&text, dir.path()).expect("valid");
        assert_eq!(
            c.outbound.transport,
            TransportKind::Smtp,
            "[outbound.smtp] wins over file_dir"
        );
        let smtp = c.outbound.smtp.expect("smtp");
        assert_eq!(smtp.host, "relay.example.org");
        assert_eq!((smtp.tls, smtp.port), (TlsMode::StartTls, 587));
        assert_eq!((smtp.timeout_secs, smtp.pool_size), (30, 4));
        assert_eq!((smtp.username, smtp.password), (None, None));
    }

    #[test]
    fn smtp_port_follows_the_tls_mode() {
        let dir = dir_with_secret();
        for (tls, port) in [("none", 25), ("starttls", 587), ("tls", 465)] {
            let text = minimal_with(&format!(
                "[outbound.smtp]\nhost = \"h.example\"\ntls = \"{tls}\"\n"
            ));
            let smtp = parse(&text, dir.path())
                .expect("valid")
                .outbound
                .smtp
                .expect("smtp");
            assert_eq!(smtp.port, port, "{tls}");
        }
    }

    #[test]
    fn address_book_and_lowercasing() {
        let dir = dir_with_secret();
        let text = "[gateway]\ndomain = \"CERT.Example.Org\"\nsecret_file = \"secret.key\"\n\
                    local_part = \"Cases\"\nintake = [\"Security@CERT.example.org\", \"vuln@Other.example\"]\n\
                    case_prefix = \"CASE-\"\n[posting]\ntrusted_authserv_ids = [\"MX.Example.Org\"]\n\
                    [outbound]\ntransport = \"sendmail\"\n";
        let c = parse(text, dir.path()).expect("valid");
        let book = c.address_book();
        assert_eq!(book.domain, "cert.example.org");
        assert_eq!(book.local_part, "cases");
        assert_eq!(
            book.intake,
            vec!["security@cert.example.org", "vuln@other.example"]
        );
        assert_eq!(book.case_prefix, "CASE-");
        assert_eq!(c.posting.trusted_authserv_ids, vec!["mx.example.org"]);
        assert_eq!(c.outbound.transport, TransportKind::Sendmail);
    }

    #[test]
    fn unknown_keys_and_sections() {
        let text = minimal_with("colour = \"red\"\n[surprise]\nx = 1\n");
        assert!(error_at(&text, "outbound.colour").starts_with("unknown key"));
        let msg = error_at(&text, "surprise");
        assert!(
            msg.starts_with("unknown key") && msg.contains("section"),
            "{msg}"
        );
        let msg = error_at("stray = 1\n", "stray");
        assert!(msg.starts_with("unknown key"), "{msg}");
    }

    #[test]
    fn inline_secrets_point_to_the_file_key() {
        let text =
            "[gateway]\ndomain = \"example.org\"\nsecret_file = \"secret.key\"\nsecret = \"abc\"\n\
                    [outbound.smtp]\nhost = \"h.example\"\npassword = \"hunter2\"\n";
        let msg = error_at(text, "gateway.secret");
        assert!(
            msg.starts_with("unknown key") && msg.contains("`secret_file`"),
            "{msg}"
        );
        let msg = error_at(text, "outbound.smtp.password");
        assert!(
            msg.starts_with("unknown key") && msg.contains("`password_file`"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_types_name_expected_and_found() {
        let text = minimal_with("concurrency = \"8\"\nsendmail_path = 5\n[log]\nformat = true\n");
        assert_eq!(
            error_at(&text, "outbound.concurrency"),
            "expected an integer, found string"
        );
        assert_eq!(
            error_at(&text, "outbound.sendmail_path"),
            "expected a string, found integer"
        );
        assert_eq!(
            error_at(&text, "log.format"),
            "expected a string, found boolean"
        );
        let text =
            "[gateway]\ndomain = 3\nsecret_file = \"secret.key\"\nintake = [\"a@b.example\", 7]\n\
                    [outbound]\nfile_dir = \"o\"\nretry = 1\n";
        assert_eq!(
            error_at(text, "gateway.domain"),
            "expected a string, found integer"
        );
        assert_eq!(
            error_at(text, "gateway.intake[1]"),
            "expected a string, found integer"
        );
        assert_eq!(
            error_at(text, "outbound.retry"),
            "expected a table, found integer"
        );
    }

    #[test]
    fn a_section_of_the_wrong_type_is_one_error() {
        let all = errors("gateway = \"example.org\"\n[outbound]\nfile_dir = \"o\"\n");
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].key, "gateway");
        assert_eq!(all[0].message, "expected a table, found string");
    }

    #[test]
    fn bad_enum_values_list_the_choices() {
        let text = minimal_with(
            "transport = \"pigeon\"\n[outbound.smtp]\nhost = \"h.example\"\ntls = \"ssl\"\n\
             [posting]\nmin_assurance = \"high\"\n[log]\nformat = \"xml\"\n",
        );
        let msg = error_at(&text, "outbound.transport");
        assert!(
            msg.contains("\"pigeon\"") && msg.contains("smtp, file, sendmail"),
            "{msg}"
        );
        assert!(error_at(&text, "outbound.smtp.tls").contains("none, starttls, tls"));
        let msg = error_at(&text, "posting.min_assurance");
        assert!(
            msg.contains("none, address, dmarc, reply-key, signed"),
            "{msg}"
        );
        assert!(error_at(&text, "log.format").contains("text, json"));
    }

    #[test]
    fn bad_domain_intake_and_local_part() {
        for bad in [
            "localhost",
            "exa mple.org",
            "-x.example",
            "example..org",
            "10.0.0.1",
            "",
        ] {
            let text = format!("[gateway]\ndomain = \"{bad}\"\nsecret_file = \"secret.key\"\n");
            assert!(
                error_at(&text, "gateway.domain").contains("not a mail domain"),
                "{bad}"
            );
        }
        let text = "[gateway]\ndomain = \"example.org\"\nsecret_file = \"secret.key\"\n\
                    intake = [\"security@example.org\", \"nobody\", \"a@b@c\", \"cases+x@example.org\"]\n\
                    local_part = \"ca+ses\"\n[outbound]\nfile_dir = \"o\"\n";
        assert!(error_at(text, "gateway.intake[1]").contains("not a mail address"));
        assert!(error_at(text, "gateway.intake[2]").contains("not a mail address"));
        assert!(error_at(text, "gateway.local_part").contains("without `+`"));
        assert_eq!(
            errors(text).len(),
            3,
            "intake[3] is fine for local part ca+ses"
        );
        let own = "[gateway]\ndomain = \"example.org\"\nsecret_file = \"secret.key\"\n\
                   intake = [\"cases+x@example.org\"]\n[outbound]\nfile_dir = \"o\"\n";
        assert!(error_at(own, "gateway.intake[0]").contains("case address"));
    }

    #[test]
    fn case_prefix_rules() {
        let dir = dir_with_secret();
        for good in ["VU#", "CASE-", "VU", "x"] {
            let text = minimal_with("").replace(
                "[outbound]",
                &format!("case_prefix = \"{good}\"\n[outbound]"),
            );
            assert!(parse(&text, dir.path()).is_ok(), "{good}");
        }
        for bad in ["", "#", "VU##", "V#U", "VU 1", "VU2#", "VU#-", "ÄU#"] {
            let text = minimal_with("").replace(
                "[outbound]",
                &format!("case_prefix = \"{bad}\"\n[outbound]"),
            );
            assert!(
                error_at(&text, "gateway.case_prefix").contains("letters"),
                "{bad}"
            );
        }
    }

    #[test]
    fn zero_sizes_and_intervals_are_refused() {
        let text = minimal_with(
            "max_attachment_bytes = 0\nconcurrency = 0\n[outbound.retry]\ngive_up_secs = 0\n\
             [inbound]\nmax_message_bytes = 0\npoll_interval_ms = 0\n[intake]\nack_interval_secs = 0\n",
        );
        for key in [
            "outbound.max_attachment_bytes",
            "outbound.concurrency",
            "outbound.retry.give_up_secs",
            "inbound.max_message_bytes",
            "inbound.poll_interval_ms",
            "intake.ack_interval_secs",
        ] {
            assert_eq!(error_at(&text, key), "must be greater than zero", "{key}");
        }
        assert_eq!(errors(&text).len(), 6);
        let text =
            minimal_with("[outbound.smtp]\nhost = \"h.example\"\nport = 70000\npool_size = -1\n");
        assert!(error_at(&text, "outbound.smtp.port").contains("between 1 and 65535"));
        assert!(error_at(&text, "outbound.smtp.pool_size").contains("between 1 and"));
    }

    #[test]
    fn retry_initial_above_max() {
        let text = minimal_with("[outbound.retry]\ninitial_secs = 600\nmax_secs = 60\n");
        let msg = error_at(&text, "outbound.retry.initial_secs");
        assert!(msg.contains("outbound.retry.max_secs"), "{msg}");
        assert_eq!(errors(&text).len(), 1);
    }

    #[test]
    fn missing_required_keys() {
        let all = errors("");
        let keys: Vec<&str> = all.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["gateway.domain", "gateway.secret_file", "outbound.smtp"],
            "{all:?}"
        );
        assert_eq!(all[0].message, "missing (required)");
        let text = minimal_with("[outbound.smtp]\nport = 25\n");
        assert_eq!(error_at(&text, "outbound.smtp.host"), "missing (required)");
    }

    #[test]
    fn transport_needs_its_settings() {
        let base = "[gateway]\ndomain = \"example.org\"\nsecret_file = \"secret.key\"\n";
        let msg = error_at(
            &format!("{base}[outbound]\ntransport = \"smtp\"\n"),
            "outbound.smtp",
        );
        assert!(msg.contains("[outbound.smtp]"), "{msg}");
        let msg = error_at(
            &format!("{base}[outbound]\ntransport = \"file\"\n"),
            "outbound.file_dir",
        );
        assert!(msg.contains("required"), "{msg}");
    }

    #[test]
    fn secret_file_problems() {
        let dir = dir_with_secret();
        std::fs::write(dir.path().join("short.key"), "  0123456789abcde \n").expect("write");
        let text = MINIMAL.replace("secret.key", "short.key");
        let err = parse(&text, dir.path()).expect_err("short secret");
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].key, "gateway.secret_file");
        assert!(
            err.0[0].message.contains("15 bytes"),
            "{}",
            err.0[0].message
        );
        let text = MINIMAL.replace("secret.key", "absent.key");
        let err = parse(&text, dir.path()).expect_err("missing secret");
        assert_eq!(err.0[0].key, "gateway.secret_file");
        assert!(
            err.0[0].message.contains("cannot read"),
            "{}",
            err.0[0].message
        );
    }

    #[test]
    fn password_file_is_read_or_reported() {
        let dir = dir_with_secret();
        std::fs::write(dir.path().join("pw"), "s3cret pass\n").expect("write");
        let smtp =
            "[outbound.smtp]\nhost = \"h.example\"\nusername = \"u\"\npassword_file = \"pw\"\n";
        let c = parse(&minimal_with(smtp), dir.path()).expect("valid");
        let smtp_config = c.outbound.smtp.expect("smtp");
        assert_eq!(smtp_config.password.as_deref(), Some("s3cret pass"));
        assert_eq!(smtp_config.password_file, Some(dir.path().join("pw")));
        let missing = minimal_with(&smtp.replace("\"pw\"", "\"nope\""));
        assert!(error_at(&missing, "outbound.smtp.password_file").contains("cannot read"));
        let no_user =
            minimal_with("[outbound.smtp]\nhost = \"h.example\"\npassword_file = \"pw\"\n");
        assert!(
            error_at(&no_user, "outbound.smtp.username").contains("required when password_file")
        );
    }

    #[test]
    fn syntax_error_is_one_file_error_with_position() {
        let all = errors("[gateway]\ndomain = \"example.org\"\nname = = 3\n");
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].key, "(file)");
        assert!(
            all[0].message.contains("line 3, column"),
            "{}",
            all[0].message
        );
    }

    #[test]
    fn http_listen_is_loopback_and_digest_hour_is_an_hour() {
        let dir = dir_with_secret();
        let c = parse(&minimal_with("[http]\nlisten = \"127.0.0.1:9187\"\n[digest]\nhour_utc = 0\n"), dir.path()).expect("valid");
        assert_eq!(c.http.listen, Some("127.0.0.1:9187".parse().unwrap()));
        assert_eq!(c.digest.hour_utc, 0);
        let c = parse(&minimal_with(""), dir.path()).expect("valid");
        assert_eq!((c.http.listen, c.digest.hour_utc), (None, 7));
        assert!(error_at(&minimal_with("[http]\nlisten = \"0.0.0.0:9187\"\n"), "http.listen").contains("loopback"));
        assert!(error_at(&minimal_with("[http]\nlisten = \"nowhere\"\n"), "http.listen").contains("address:port"));
        assert!(error_at(&minimal_with("[digest]\nhour_utc = 24\n"), "digest.hour_utc").contains("0 to 23"));
    }

    #[test]
    fn coordination_defaults_and_every_problem_named() {
        let dir = dir_with_secret();
        let c = parse(MINIMAL, dir.path()).expect("valid").coordination;
        assert_eq!((c.reminder_days.as_slice(), c.summary_hour_utc, c.info_interval_secs, c.late_joiner_history), (&[7, 14][..], 7, 3600, true));
        assert_eq!(c.decline_text, DEFAULT_DECLINE_TEXT);
        let text = minimal_with("[coordination]\nreminder_days = [3, 10, 30]\nsummary_hour_utc = 6\ninfo_interval_secs = 60\ndecline_text = \"No.\"\nlate_joiner_history = false\n");
        let c = parse(&text, dir.path()).expect("valid").coordination;
        assert_eq!((c.reminder_days.as_slice(), c.summary_hour_utc, c.info_interval_secs, c.decline_text.as_str(), c.late_joiner_history), (&[3, 10, 30][..], 6, 60, "No.", false));
        let bad = minimal_with("[coordination]\nreminder_days = [7, 0, \"x\"]\nsummary_hour_utc = 25\ninfo_interval_secs = 0\ndecline_text = \" \"\nlate_joiner_history = \"yes\"\nremind = 1\n");
        let keys: Vec<String> = errors(&bad).into_iter().map(|e| e.key).collect();
        for key in ["coordination.reminder_days[1]", "coordination.reminder_days[2]", "coordination.summary_hour_utc", "coordination.info_interval_secs", "coordination.decline_text", "coordination.late_joiner_history", "coordination.remind"] {
            assert!(keys.iter().any(|k| k == key), "{key} not named: {keys:?}");
        }
        assert!(error_at(&minimal_with("[coordination]\nreminder_days = 7\n"), "coordination.reminder_days").contains("array"));
    }

    #[test]
    fn several_problems_are_reported_at_once() {
        let text = "[gateway]\ndomain = \"not a domain\"\nsecret_file = \"secret.key\"\n\
                    [outbound]\nfile_dir = \"o\"\nconcurency = 4\n[log]\nformat = \"yaml\"\n";
        let all = errors(text);
        let keys: Vec<&str> = all.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["gateway.domain", "outbound.concurency", "log.format"]
        );
        let shown = ConfigErrors(all).to_string();
        assert_eq!(shown.lines().count(), 3);
        assert!(
            shown
                .lines()
                .next()
                .is_some_and(|l| l.starts_with("gateway.domain: ")),
            "{shown}"
        );
    }

    #[test]
    fn paths_resolve_against_the_base_directory() {
        let dir = dir_with_secret();
        let d = dir.path();
        let text = minimal_with(
            "sendmail_path = \"bin/sendmail\"\n[inbound]\nmaildir = \"/var/mail/cg\"\n\
             [database]\nurl = \"sqlite://data/cg.db?mode=rwc\"\n",
        );
        let c = parse(&text, d).expect("valid");
        assert_eq!(c.outbound.sendmail_path, d.join("bin/sendmail"));
        assert_eq!(c.inbound.maildir, Some(PathBuf::from("/var/mail/cg")));
        assert_eq!(
            c.database.url,
            format!("sqlite://{}/data/cg.db?mode=rwc", d.display())
        );
        assert_eq!(c.sqlite_path(), Some(d.join("data/cg.db")));
        let memory_file = format!("sqlite://{}/file.db?mode=memory", d.display());
        for (url, resolved, path) in [
            (
                "sqlite:///srv/cg.db",
                "sqlite:///srv/cg.db",
                Some(PathBuf::from("/srv/cg.db")),
            ),
            ("sqlite::memory:", "sqlite::memory:", None),
            ("sqlite://file.db?mode=memory", memory_file.as_str(), None),
        ] {
            let text = minimal_with(&format!("[database]\nurl = \"{url}\"\n"));
            let c = parse(&text, d).expect("valid");
            assert_eq!(c.database.url, resolved, "{url}");
            assert_eq!(c.sqlite_path(), path, "{url}");
        }
        let text = minimal_with("[database]\nurl = \"postgres://db/cg\"\n");
        let c = parse(&text, d).expect("a postgres URL is valid");
        assert_eq!((c.database.url.as_str(), c.sqlite_path()), ("postgres://db/cg", None));
        let text = minimal_with("[database]\nurl = \"mysql://db/cg\"\n");
        assert!(error_at(&text, "database.url").contains("not a sqlite: or postgres:// URL"));
    }

    #[test]
    fn load_resolves_against_the_file_directory() {
        let dir = dir_with_secret();
        let path = dir.path().join("casegate.toml");
        std::fs::write(&path, MINIMAL).expect("write");
        let c = Config::load(&path).expect("valid");
        assert_eq!(c.source, path);
        assert_eq!(c.outbound.file_dir, Some(dir.path().join("out")));
        let err = Config::load(&dir.path().join("absent.toml")).expect_err("no file");
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].key, "(file)");
    }

    #[test]
    fn log_level_must_be_a_filter() {
        assert!(error_at(&minimal_with("[log]\nlevel = \"=[\"\n"), "log.level").contains("filter"));
        assert!(error_at(&minimal_with("[log]\nlevel = \"\"\n"), "log.level").contains("empty"));
    }

    fn example_text() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/casegate.example.toml");
        std::fs::read_to_string(path).expect("example config")
    }

    #[test]
    fn the_example_config_is_valid() {
        let dir = dir_with_secret();
        std::fs::write(dir.path().join("smtp-password"), "pw\n").expect("write");
        std::fs::write(dir.path().join("imap-password"), "pw\n").expect("write");
        std::fs::write(dir.path().join("imap-ca.pem"), TEST_PEM).expect("write");
        let path = dir.path().join("casegate.toml");
        std::fs::write(&path, example_text()).expect("write");
        let c = Config::load(&path).unwrap_or_else(|e| panic!("example invalid:\n{e}"));
        assert_eq!(c.gateway.domain, "example.org");
        assert_eq!(c.outbound.transport, TransportKind::Smtp);
        assert_eq!(
            c.outbound.smtp.and_then(|s| s.password).as_deref(),
            Some("pw")
        );
    }

    #[test]
    fn the_example_config_documents_every_key() {
        let text = example_text();
        let table: Table = toml::from_str(&text).expect("toml");
        let sections: [(&str, &[&str]); 12] = [
            ("http", HTTP_KEYS),
            ("digest", DIGEST_KEYS),
            ("coordination", COORDINATION_KEYS),
            ("gateway", GATEWAY_KEYS),
            ("database", DATABASE_KEYS),
            ("posting", POSTING_KEYS),
            ("inbound", INBOUND_KEYS),
            ("intake", INTAKE_KEYS),
            ("outbound", OUTBOUND_KEYS),
            ("outbound.smtp", SMTP_KEYS),
            ("outbound.retry", RETRY_KEYS),
            ("log", LOG_KEYS),
        ];
        for (path, keys) in sections {
            let mut t = &table;
            for part in path.split('.') {
                t = t
                    .get(part)
                    .and_then(Value::as_table)
                    .unwrap_or_else(|| panic!("[{path}]"));
            }
            for key in keys {
                assert!(t.contains_key(*key), "{path}.{key} not in the example");
            }
        }
        // Each key line has a comment line directly above it.
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains(" = ") && !line.starts_with('#') {
                assert!(
                    i > 0 && lines[i - 1].starts_with('#'),
                    "no comment above {line:?}"
                );
            }
        }
    }

    #[test]
    fn write_init_then_load() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("gw");
        let path = write_init(&dir, "Example.ORG", None, [7u8; 32]).expect("init");
        assert_eq!(path, dir.join("casegate.toml"));
        let c = Config::load(&path).unwrap_or_else(|e| panic!("init config invalid:\n{e}"));
        assert_eq!(c.gateway.domain, "example.org");
        assert_eq!(c.gateway.secret, hex::encode([7u8; 32]).as_bytes());
        assert_eq!(c.outbound.transport, TransportKind::File);
        assert_eq!(c.outbound.file_dir, Some(dir.join("outbox")));
        assert_eq!(c.inbound.maildir, Some(dir.join("maildir")));
        assert_eq!(c.sqlite_path(), Some(dir.join("casegate.db")));
        for sub in ["outbox", "maildir/new", "maildir/cur", "maildir/tmp"] {
            assert!(dir.join(sub).is_dir(), "{sub}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("secret.key"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = write_init(&dir, "example.org", None, [8u8; 32]).expect_err("refuses to overwrite");
        assert!(again.to_string().contains("already exists"), "{again}");
        let kept = Config::load(&path).expect("still valid");
        assert_eq!(kept.gateway.secret, hex::encode([7u8; 32]).as_bytes());
    }

    #[test]
    fn write_init_refuses_a_bad_domain() {
        let root = tempfile::tempdir().expect("tempdir");
        let err = write_init(root.path(), "not a domain", None, [0u8; 32]).expect_err("bad domain");
        assert!(err.to_string().contains("not a mail domain"));
        assert!(!root.path().join("casegate.toml").exists());
    }

    const TEST_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    /// MINIMAL plus an `[imap]` section with `imap` lines, in a directory holding
    /// `imap-password`.
    fn parse_imap(imap: &str) -> Result<Config, ConfigErrors> {
        let dir = dir_with_secret();
        std::fs::write(dir.path().join("imap-password"), "s3cret\n").expect("write");
        std::fs::write(dir.path().join("token"), "ya29.token\n").expect("write");
        std::fs::write(dir.path().join("ca.pem"), TEST_PEM).expect("write");
        parse(&minimal_with(&format!("[imap]\n{imap}")), dir.path())
    }

    fn imap_errors(imap: &str) -> Vec<ConfigError> {
        match parse_imap(imap) {
            Ok(_) => panic!("loaded although invalid:\n{imap}"),
            Err(e) => e.0,
        }
    }

    fn imap_error_at(imap: &str, key: &str) -> String {
        let all = imap_errors(imap);
        let at: Vec<&ConfigError> = all.iter().filter(|e| e.key == key).collect();
        assert_eq!(at.len(), 1, "expected one error at {key}, got {all:?}");
        at[0].message.clone()
    }

    const IMAP_MINIMAL: &str =
        "host = \"imap.example.org\"\nusername = \"gw\"\npassword_file = \"imap-password\"\n";

    #[test]
    fn imap_defaults() {
        let c = parse_imap(IMAP_MINIMAL).expect("valid");
        let i = c.imap.expect("imap");
        assert_eq!(
            (i.host.as_str(), i.port, i.tls),
            ("imap.example.org", 993, TlsMode::Tls)
        );
        assert_eq!(
            (i.auth, i.backlog, i.acknowledge),
            (ImapAuth::Login, Backlog::Refuse, AckMode::Move)
        );
        assert!(i.secret_file.ends_with("imap-password"));
        assert_eq!(i.keyword, "$CasegateProcessed");
        assert_eq!((i.batch_size, i.idle, i.idle_renew_secs), (100, true, 1500));
        assert_eq!(
            (i.poll_interval_secs, i.full_check_secs, i.timeout_secs),
            (30, 300, 60)
        );
        assert_eq!((i.reconnect_max_secs, i.lease_secs), (300, 60));
        assert_eq!(i.mailboxes, vec![imap_mailbox("INBOX".into(), None, None)]);
        assert_eq!(i.mailboxes[0].processed, "Processed");
        assert_eq!(i.mailboxes[0].quarantine, "Quarantine");
        assert_eq!(i.account(), "imap://gw@imap.example.org:993");
        assert!(parse_imap("").is_err(), "host and username are required");
        assert!(parse(MINIMAL, dir_with_secret().path())
            .expect("valid")
            .imap
            .is_none());
    }

    #[test]
    fn imap_ports_follow_the_tls_mode() {
        for (tls, port) in [("tls", 993), ("starttls", 143), ("none", 143)] {
            let text = format!(
                "{}tls = \"{tls}\"\n",
                IMAP_MINIMAL.replace("imap.example.org", "127.0.0.1")
            );
            let i = parse_imap(&text).expect("valid").imap.expect("imap");
            assert_eq!(i.port, port, "{tls}");
        }
    }

    #[test]
    fn imap_plaintext_only_on_loopback() {
        for host in ["localhost", "127.0.0.1", "127.3.4.5", "::1", "[::1]"] {
            let text = format!("host = \"{host}\"\nusername = \"gw\"\npassword_file = \"imap-password\"\ntls = \"none\"\n");
            assert!(parse_imap(&text).is_ok(), "{host}");
        }
        for host in ["imap.example.org", "10.0.0.1", "localhost.example.org"] {
            let text = format!("host = \"{host}\"\nusername = \"gw\"\npassword_file = \"imap-password\"\ntls = \"none\"\n");
            assert!(
                imap_error_at(&text, "imap.tls").contains("loopback"),
                "{host}"
            );
        }
    }

    #[test]
    fn imap_auth_needs_its_secret_file() {
        let xoauth = "host = \"h.example\"\nusername = \"gw@h.example\"\nauth = \"xoauth2\"\noauth2_token_file = \"token\"\n";
        let i = parse_imap(xoauth).expect("valid").imap.expect("imap");
        assert_eq!(i.auth, ImapAuth::XOAuth2);
        assert!(i.secret_file.ends_with("token"));
        let msg = imap_error_at(
            &format!("{xoauth}password_file = \"imap-password\"\n"),
            "imap.password_file",
        );
        assert!(msg.contains("not used with auth = \"xoauth2\""), "{msg}");
        let msg = imap_error_at(
            "host = \"h.example\"\nusername = \"gw\"\nauth = \"xoauth2\"\n",
            "imap.oauth2_token_file",
        );
        assert!(msg.contains("required by auth = \"xoauth2\""), "{msg}");
        let msg = imap_error_at(
            "host = \"h.example\"\nusername = \"gw\"\nauth = \"plain\"\n",
            "imap.password_file",
        );
        assert!(msg.contains("required by auth = \"plain\""), "{msg}");
        let missing = IMAP_MINIMAL.replace("imap-password", "absent");
        assert!(imap_error_at(&missing, "imap.password_file").contains("cannot read"));
        let inline = format!("{IMAP_MINIMAL}password = \"hunter2\"\n");
        assert!(imap_error_at(&inline, "imap.password").contains("`password_file`"));
        assert!(
            imap_error_at(&format!("{IMAP_MINIMAL}auth = \"cram\"\n"), "imap.auth")
                .contains("login, plain, xoauth2")
        );
    }

    #[test]
    fn imap_choices_counts_and_keyword() {
        let text = format!(
            "{IMAP_MINIMAL}backlog = \"later\"\nacknowledge = \"flag\"\nkeyword = \"\\\\Seen\"\n\
             batch_size = 5000\nidle_renew_secs = 1800\nidle = \"yes\"\nlease_secs = 0\nca_file = \"absent.pem\"\n"
        );
        let all = imap_errors(&text);
        let keys: Vec<&str> = all.iter().map(|e| e.key.as_str()).collect();
        for key in [
            "imap.backlog",
            "imap.acknowledge",
            "imap.keyword",
            "imap.batch_size",
            "imap.idle_renew_secs",
            "imap.idle",
            "imap.lease_secs",
            "imap.ca_file",
        ] {
            assert!(keys.contains(&key), "{key} not in {all:?}");
        }
        assert_eq!(all.len(), 8, "{all:?}");
        let ok = format!(
            "{IMAP_MINIMAL}backlog = \"skip\"\nacknowledge = \"keyword\"\nkeyword = \"$Done\"\nidle = false\nca_file = \"ca.pem\"\n"
        );
        let i = parse_imap(&ok).expect("valid").imap.expect("imap");
        assert_eq!(
            (i.backlog, i.acknowledge, i.keyword.as_str(), i.idle),
            (Backlog::Skip, AckMode::Keyword, "$Done", false)
        );
        assert!(i.ca_file.is_some_and(|f| f.ends_with("ca.pem")));
    }

    #[test]
    fn imap_mailboxes() {
        let text = format!(
            "{IMAP_MINIMAL}[[imap.mailbox]]\nname = \"INBOX\"\n[[imap.mailbox]]\nname = \"Vendor reports\"\n\
             processed = \"Vendor reports/Done\"\nquarantine = \"Held\"\n"
        );
        let i = parse_imap(&text).expect("valid").imap.expect("imap");
        assert_eq!(i.mailboxes.len(), 2);
        assert_eq!(
            i.mailboxes[1],
            imap_mailbox(
                "Vendor reports".into(),
                Some("Vendor reports/Done".into()),
                Some("Held".into())
            )
        );
        let bad = format!(
            "{IMAP_MINIMAL}[[imap.mailbox]]\nname = \"INBOX\"\nprocessed = \"INBOX\"\ncolour = 1\n\
             [[imap.mailbox]]\nname = \"INBOX\"\n[[imap.mailbox]]\nprocessed = \"P\"\n[[imap.mailbox]]\nname = \"\"\n"
        );
        let all = imap_errors(&bad);
        let keys: Vec<&str> = all.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "imap.mailbox[0].colour",
                "imap.mailbox[0].processed",
                "imap.mailbox[1].name",
                "imap.mailbox[2].name",
                "imap.mailbox[3].name"
            ],
            "{all:?}"
        );
        assert!(all[2].message.contains("listed twice"));
        assert_eq!(all[3].message, "missing (required)");
        let keyword_mode = format!("{IMAP_MINIMAL}acknowledge = \"keyword\"\n[[imap.mailbox]]\nname = \"INBOX\"\nprocessed = \"INBOX\"\n");
        assert!(
            parse_imap(&keyword_mode).is_ok(),
            "folders are unused in keyword mode"
        );
        assert!(
            imap_error_at(&format!("{IMAP_MINIMAL}mailbox = []\n"), "imap.mailbox")
                .contains("at least one")
        );
        assert!(imap_error_at(
            &format!("{IMAP_MINIMAL}mailbox = \"INBOX\"\n"),
            "imap.mailbox"
        )
        .contains("array of tables"));
    }

    #[test]
    fn imap_problems_are_reported_with_the_others() {
        let dir = dir_with_secret();
        let text = "[gateway]\ndomain = \"bad domain\"\nsecret_file = \"secret.key\"\n[outbound]\nfile_dir = \"o\"\n\
                    [imap]\nhost = \"h.example\"\ntls = \"none\"\n";
        let keys: Vec<String> = parse(text, dir.path())
            .expect_err("invalid")
            .0
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            keys,
            [
                "gateway.domain",
                "imap.tls",
                "imap.username",
                "imap.password_file"
            ]
        );
    }

    #[test]
    fn the_example_config_documents_every_imap_key() {
        let text = example_text();
        for key in IMAP_KEYS
            .iter()
            .chain(IMAP_MAILBOX_KEYS)
            .filter(|k| **k != "mailbox")
        {
            let written = text
                .lines()
                .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = ")));
            assert!(written, "imap key {key} not in the example");
        }
        assert!(text.contains("[[imap.mailbox]]"));
    }

    #[test]
    fn the_readme_imap_examples_are_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(path).expect("README");
        let blocks: Vec<&str> = readme
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .filter(|b| b.contains("[imap]"))
            .collect();
        assert_eq!(blocks.len(), 3, "Dovecot, Gmail and Microsoft 365");
        for block in blocks {
            let dir = dir_with_secret();
            for file in ["imap-password", "gmail-token", "m365-token"] {
                std::fs::write(dir.path().join(file), "secret\n").expect("write");
            }
            let c =
                parse(&minimal_with(block), dir.path()).unwrap_or_else(|e| panic!("{block}\n{e}"));
            assert!(
                c.imap
                    .is_some_and(|i| i.tls == TlsMode::Tls && i.port == 993),
                "{block}"
            );
        }
    }
}

#[cfg(test)]
mod pgp_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const BASE: &str = "[gateway]\ndomain = \"cert.example\"\nsecret_file = \"secret.key\"\n[outbound]\nfile_dir = \"out\"\n";

    fn dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("secret.key"), "0123456789abcdef0123456789abcdef").expect("secret");
        d
    }

    fn write_key(path: &Path, mode: u32) {
        let k = crate::pgp::keyring::generate("<cases@cert.example>", 1_767_225_600_000, None).expect("generate");
        std::fs::write(path, crate::pgp::keyring::armored_secret(&k).expect("armor")).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn load(d: &Path, text: &str) -> Result<Config, ConfigErrors> {
        Config::from_toml_str(text, d, &d.join("casegate.toml"))
    }

    #[test]
    fn without_a_key_file_the_gateway_has_no_keys() {
        let d = dir();
        let c = load(d.path(), BASE).expect("valid");
        assert_eq!(c.pgp.key_file, d.path().join("gateway-key.asc"));
        assert!(c.pgp.keys.is_none() && c.pgp.old_key_files.is_empty());
    }

    #[test]
    fn keys_are_loaded_with_rollover_and_must_be_private() {
        let d = dir();
        write_key(&d.path().join("k1.asc"), 0o600);
        write_key(&d.path().join("k0.asc"), 0o600);
        let text = format!("{BASE}[pgp]\nkey_file = \"k1.asc\"\nold_key_files = [\"k0.asc\"]\n");
        let keys = load(d.path(), &text).expect("valid").pgp.keys.expect("keys");
        assert_eq!(keys.fingerprints().len(), 2);
        std::fs::set_permissions(d.path().join("k0.asc"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let errs = load(d.path(), &text).expect_err("world-readable key").0;
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].key, "pgp.old_key_files[0]");
        assert!(errs[0].message.contains("chmod 600"), "{}", errs[0].message);
    }

    #[test]
    fn inline_keys_and_public_certs_are_refused() {
        let d = dir();
        let errs = load(d.path(), &format!("{BASE}[pgp]\nkey = \"xyz\"\n")).expect_err("inline").0;
        assert!(errs[0].message.contains("never written inline"), "{errs:?}");
        let k = crate::pgp::keyring::generate("<cases@cert.example>", 1_767_225_600_000, None).expect("generate");
        let path = d.path().join("gateway-key.asc");
        std::fs::write(&path, crate::pgp::keyring::armored(&k).expect("armor")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let errs = load(d.path(), BASE).expect_err("public only").0;
        assert_eq!(errs[0].key, "pgp.key_file");
    }

    #[test]
    fn the_example_config_documents_the_pgp_keys() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/casegate.example.toml");
        let text = std::fs::read_to_string(path).expect("example config");
        let table: Table = toml::from_str(&text).expect("toml");
        let pgp = table.get("pgp").and_then(Value::as_table).expect("[pgp]");
        for key in PGP_KEYS {
            assert!(pgp.contains_key(*key), "pgp.{key} not in the example");
        }
    }
}
