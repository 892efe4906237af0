//! Configuration: TOML → [`Config`]. Unknown keys are errors; `validate` reports every
//! problem at once with its key path (SPEC §10); secrets are read from files.

use crate::model::Assurance;
use std::path::PathBuf;

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
}

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
}

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// At most one acknowledgement per sender in this many seconds. Default 3600.
    pub ack_interval_secs: u64,
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
