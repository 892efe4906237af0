//! Shared test setup: a gateway configuration in a temporary directory, and a world of
//! organizations, contacts, cases and reports described in TOML.
#![allow(dead_code)]

use casegate::config::Config;
use casegate::model::*;
use casegate::pipeline::Pipeline;
use casegate::store::cases::{NewCase, NewParticipant};
use casegate::store::directory::NewContact;
use casegate::store::Store;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const SECRET: &str = "2b7e151628aed2a6abf7158809cf4f3c2b7e151628aed2a6abf7158809cf4f3c";

/// The environment variable naming a PostgreSQL server for the storage tests
/// (`postgres://user@127.0.0.1:PORT/postgres`): each test then gets a new database of its
/// own there instead of an SQLite file (scripts/test.sh sets it for its second run).
pub const TEST_DATABASE_ENV: &str = "CASEGATE_TEST_DATABASE_URL";

/// The database URL of a test whose files are in `dir`: `sqlite://casegate.db` (relative to
/// the configuration in `dir`), or a new database on the server of [`TEST_DATABASE_ENV`].
pub fn database_url() -> String {
    match std::env::var(TEST_DATABASE_ENV) {
        Ok(server) if !server.is_empty() => new_postgres_database(&server),
        _ => "sqlite://casegate.db".to_string(),
    }
}

/// Creates a database with a fresh name on `server` and returns its URL. On its own thread
/// and runtime, so that sync and async tests alike can call it.
pub fn new_postgres_database(server: &str) -> String {
    use sqlx::{Connection, Executor};
    let name = format!("cg_{}_{}", std::process::id(), rand_suffix());
    let server = server.to_string();
    let created = name.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&server)
                .await
                .unwrap_or_else(|e| panic!("{TEST_DATABASE_ENV}={server}: {e} (Debian package postgresql)"));
            c.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {created}"))).await.unwrap();
        })
    })
    .join()
    .unwrap();
    let (base, query) = match std::env::var(TEST_DATABASE_ENV).unwrap().split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (std::env::var(TEST_DATABASE_ENV).unwrap(), String::new()),
    };
    let host = base.rsplit_once('/').map_or(base.as_str(), |(h, _)| h);
    format!("{host}/{name}{query}")
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{nanos}_{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Write a config for `domain` into `dir` (file transport into dir/outbox, the database of
/// [`database_url`]) and load it.
pub fn config(dir: &Path, gateway: &GatewayDesc) -> Config {
    config_on(dir, gateway, &database_url())
}

/// [`config`] on the database at `url` (tests of the SQLite file itself name it).
pub fn config_on(dir: &Path, gateway: &GatewayDesc, url: &str) -> Config {
    std::fs::write(dir.join("secret.key"), SECRET).unwrap();
    std::fs::create_dir_all(dir.join("outbox")).unwrap();
    let intake: Vec<String> = gateway.intake.iter().map(|i| format!("\"{i}\"")).collect();
    let trusted: Vec<String> = gateway.trusted_authserv_ids.iter().map(|i| format!("\"{i}\"")).collect();
    let text = format!(
        "[gateway]\ndomain = \"{}\"\nintake = [{}]\nsecret_file = \"secret.key\"\n\
         [database]\nurl = \"{}\"\n\
         [posting]\nmin_assurance = \"{}\"\ntrusted_authserv_ids = [{}]\n\
         [outbound]\ntransport = \"file\"\nfile_dir = \"outbox\"\n[log]\nlevel = \"warn\"\n",
        gateway.domain,
        intake.join(", "),
        url,
        gateway.min_assurance,
        trusted.join(", ")
    );
    let path = dir.join("casegate.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap_or_else(|e| panic!("test config: {e}"))
}

#[derive(Debug, Deserialize)]
pub struct WorldDesc {
    pub gateway: GatewayDesc,
    #[serde(default)]
    pub org: Vec<OrgDesc>,
    #[serde(default)]
    pub contact: Vec<ContactDesc>,
    #[serde(default)]
    pub case: Vec<CaseDesc>,
    #[serde(default)]
    pub report: Vec<ReportDesc>,
    #[serde(default)]
    pub sent: Vec<SentDesc>,
}

#[derive(Debug, Deserialize)]
pub struct GatewayDesc {
    pub domain: String,
    pub intake: Vec<String>,
    #[serde(default)]
    pub trusted_authserv_ids: Vec<String>,
    #[serde(default = "dmarc")]
    pub min_assurance: String,
}

fn dmarc() -> String {
    "dmarc".into()
}

#[derive(Debug, Deserialize)]
pub struct OrgDesc {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub domains: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct ContactDesc {
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub org: Option<String>,
    #[serde(default)]
    pub notify: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CaseDesc {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub embargoed: bool,
    #[serde(default)]
    pub min_assurance: Option<String>,
    #[serde(default)]
    pub participants: Vec<ParticipantDesc>,
}

#[derive(Debug, Deserialize)]
pub struct ParticipantDesc {
    pub org: Option<String>,
    pub contact: Option<String>,
    pub role: String,
    #[serde(default)]
    pub anonymous: bool,
    pub alias: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ReportDesc {
    pub id: String,
    pub reporter: String,
    pub subject: String,
}

#[derive(Debug, Deserialize)]
pub struct SentDesc {
    pub message_id: String,
    pub thread: String,
    pub contact: String,
}

pub fn load_world_desc(path: &Path) -> WorldDesc {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Create everything the description names.
pub async fn seed(store: &Store, prefix: &str, w: &WorldDesc) {
    for o in &w.org {
        store.add_org(&o.name, OrgKind::parse(&o.kind).expect("org kind"), &o.domains).await.unwrap();
    }
    for c in &w.contact {
        let org = match &c.org {
            Some(o) => Some(store.org_by_name(o).await.unwrap().id),
            None => None,
        };
        let notify = c.notify.as_deref().map(|n| NotifyMode::parse(n).expect("notify")).unwrap_or(NotifyMode::Immediate);
        let name = if c.name.is_empty() { c.email.as_str() } else { c.name.as_str() };
        store.add_contact(&NewContact { email: &c.email, name, org, notify, encrypt_only: false }).await.unwrap();
    }
    for c in &w.case {
        let min = c.min_assurance.as_deref().map(|m| Assurance::parse(m).expect("assurance"));
        let nc = NewCase { public_id: Some(&c.id), title: &c.title, embargoed: c.embargoed, min_assurance: min };
        store.create_case(prefix, &nc).await.unwrap();
        for p in &c.participants {
            let org = match &p.org {
                Some(o) => Some(store.org_by_name(o).await.unwrap().id),
                None => None,
            };
            let contact = match &p.contact {
                Some(e) => Some(store.contact_by_email(e).await.unwrap().id),
                None => None,
            };
            let np = NewParticipant { org, contact, role: Role::parse(&p.role).expect("role"), anonymous: p.anonymous, alias: p.alias.as_deref() };
            store.add_participant(&c.id, &np).await.unwrap();
        }
        if let Some(s) = &c.state {
            store.set_case_state(&c.id, CaseState::parse(s).expect("state")).await.unwrap();
        }
    }
    for r in &w.report {
        seed_report(store, r).await;
    }
    for s in &w.sent {
        let thread = store.thread_by_name(&s.thread).await.unwrap();
        let contact = store.contact_by_email(&s.contact).await.unwrap().id;
        sqlx::query("INSERT INTO message_index (message_id, thread_id, contact_id, created_at) VALUES ($1, $2, $3, 0)")
            .bind(&s.message_id)
            .bind(thread)
            .bind(contact)
            .execute(&store.pool)
            .await
            .unwrap();
    }
}

async fn seed_report(store: &Store, r: &ReportDesc) {
    let reporter = store.contact_by_email(&r.reporter).await.unwrap().id;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO reports (public_id, reporter_id, subject, assurance, created_at) VALUES ($1, $2, $3, 'address', 0) RETURNING id",
    )
    .bind(&r.id)
    .bind(reporter)
    .bind(&r.subject)
    .fetch_one(&store.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO threads (kind, report_id, created_at) VALUES ('report', $1, 0)")
        .bind(id)
        .execute(&store.pool)
        .await
        .unwrap();
}

/// A gateway on a seeded world in a fresh temporary directory.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub cfg: Config,
    pub store: Store,
    pub pipeline: Pipeline,
}

pub async fn gateway(world: &WorldDesc) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &world.gateway);
    let store = Store::open(&cfg.database.url).await.unwrap();
    seed(&store, &cfg.gateway.case_prefix, world).await;
    let pipeline = Pipeline::new(store.clone(), &cfg);
    Gateway { dir, cfg, store, pipeline }
}

/// The built `casegate` binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_casegate"))
}

/// A coordinator team and one vendor organization (two contacts) in case VU#424242, with
/// a trusted MX for DMARC: used by the crash tests of every source.
pub const ONE_VENDOR_WORLD: &str = r#"
[gateway]
domain = "cert.example"
intake = ["security@cert.example"]
trusted_authserv_ids = ["mx.cert.example"]
[[org]]
name = "CERT Team"
kind = "coordinator"
domains = ["cert.example"]
[[org]]
name = "Acme"
kind = "vendor"
domains = ["acme.example"]
[[contact]]
email = "cora@cert.example"
org = "CERT Team"
[[contact]]
email = "alice@acme.example"
org = "Acme"
[[contact]]
email = "aaron@acme.example"
org = "Acme"
[[case]]
id = "VU#424242"
title = "Test case"
participants = [ { org = "Acme", role = "vendor" } ]
"#;

/// A new report to the intake address (DMARC pass from the trusted MX: acknowledged).
pub fn report(i: usize) -> Vec<u8> {
    format!(
        "From: Reporter {i} <r{i}@reporters.example>\r\nTo: security@cert.example\r\nSubject: Report {i}\r\n\
         Authentication-Results: mx.cert.example; dmarc=pass header.from=reporters.example\r\n\
         Message-ID: <report-{i}@reporters.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nFinding {i}.\r\n"
    )
    .into_bytes()
}

/// A vendor reply into the case discussion (DMARC pass from the trusted MX).
pub fn reply(i: usize) -> Vec<u8> {
    format!(
        "From: Alice <alice@acme.example>\r\nTo: cases+vu424242@cert.example\r\nSubject: Re: [VU#424242] update {i}\r\n\
         Authentication-Results: mx.cert.example; dmarc=pass header.from=acme.example\r\n\
         Message-ID: <reply-{i}@acme.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nUpdate {i}.\r\n"
    )
    .into_bytes()
}

/// A certificate of `email` that expires in a week (within the 14-day warning period).
pub fn expiring_cert(email: &str) -> sequoia_openpgp::Cert {
    use sequoia_openpgp::cert::CertBuilder;
    let (cert, _) = CertBuilder::general_purpose(Some(format!("<{email}>")))
        .set_validity_period(std::time::Duration::from_secs(7 * 86_400))
        .generate()
        .expect("generate a certificate");
    cert
}

/// Render and send everything due, as the outbox worker does (the test gateways use the
/// file transport): afterwards every sent item's bytes are in the outbox table.
pub async fn send(g: &Gateway) -> casegate::outbound::SendSummary {
    let t = casegate::outbound::Transport::from_config(&g.cfg.outbound).expect("transport");
    casegate::outbound::send_due(&g.store, &g.pipeline.composer, &t, &g.cfg.outbound).await.expect("outbox pass")
}
