//! `casegate bench pgp` (SPEC §11): OpenPGP throughput on this machine, in a temporary
//! gateway (SQLite, its own keys, Postfix's `smtp-sink` on a loopback port).
//!
//! - inbound: N encrypted and signed PGP/MIME mails through the whole pipeline into
//!   committed posts (mails/s), for Cv25519/Ed25519 and for RSA-3072, with the share of the
//!   time spent opening (decrypt and verify);
//! - fan-out: one post to M recipients, each with their own Cv25519 key, signed and
//!   encrypted per recipient, committed to the outbox and accepted by the SMTP server; the
//!   time split into rendering, cryptography, storage and SMTP.

use crate::audience;
use crate::compose::{Composer, Ids};
use crate::config::Config;
use crate::model::*;
use crate::pgp::keyring::{self, GatewayKeys, Suite};
use crate::pgp::{open, seal, PgpState};
use crate::pipeline::Pipeline;
use crate::render::Rendered;
use crate::view::{Arrival, Author, PostItem};
use crate::store::cases::{NewCase, NewParticipant};
use crate::store::directory::NewContact;
use crate::store::world::WorldQuery;
use crate::store::{now_ms, Store};
use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct BenchPgpArgs {
    /// Encrypted mails ingested per key suite.
    #[arg(long, default_value_t = 10_000)]
    pub mails: usize,
    /// Recipients of the fan-out post, each with their own key.
    #[arg(long, default_value_t = 1_000)]
    pub recipients: usize,
    /// cv25519, rsa3072 or both.
    #[arg(long, default_value = "both")]
    pub suite: String,
    /// Mails ingested concurrently (the Maildir and IMAP sources ingest one at a time).
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// The SMTP server accepting the fan-out (Postfix's smtp-sink).
    #[arg(long, default_value = "/usr/sbin/smtp-sink")]
    pub smtp_sink: PathBuf,
}

const DOMAIN: &str = "bench.example";
const SENDER: &str = "sender@acme.example";
const COORDINATOR: &str = "cora@cert.example";

/// `casegate bench pgp`: needs no configuration, it builds its own temporary gateway.
pub async fn run(args: &BenchPgpArgs) -> anyhow::Result<()> {
    let suites: Vec<Suite> = match args.suite.as_str() {
        "cv25519" => vec![Suite::Cv25519],
        "rsa3072" => vec![Suite::Rsa3072],
        "both" => vec![Suite::Cv25519, Suite::Rsa3072],
        other => bail!("--suite: invalid value {other:?}; expected cv25519, rsa3072 or both"),
    };
    println!("{}", machine());
    let mut sink = SmtpSink::start(&args.smtp_sink)?;
    for suite in suites {
        let dir = tempfile::tempdir()?;
        let b = Bench::setup(dir.path(), suite, sink.port, args).await?;
        b.inbound(args).await?;
        if suite == Suite::Cv25519 {
            b.fan_out().await?;
        }
    }
    sink.stop();
    Ok(())
}

/// Date, host, CPU, cores and build, for the figures.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let build = if cfg!(debug_assertions) {
        "debug build (use --release for figures)"
    } else {
        "release build"
    };
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    format!("casegate bench pgp — {date} — {host}: {cpu}, {cores} cores, {build}")
}

/// A running `smtp-sink`, stopped by its pid.
struct SmtpSink {
    port: u16,
    child: Option<Child>,
}

impl SmtpSink {
    fn start(program: &Path) -> anyhow::Result<SmtpSink> {
        if !program.exists() {
            bail!(
                "{} is missing: install the Debian package `postfix`",
                program.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(program);
        if std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false)
        {
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .arg(format!("127.0.0.1:{port}"))
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("smtp-sink did not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(SmtpSink {
            port,
            child: Some(child),
        })
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A gateway seeded for the benchmark.
struct Bench {
    suite: Suite,
    cfg: Config,
    store: Store,
    pipeline: Pipeline,
    sender: GatewayKeys,
    recipients: usize,
}

fn config_text(port: u16) -> String {
    format!(
        "[gateway]\nname = \"CERT\"\ndomain = \"{DOMAIN}\"\nsecret_file = \"secret.key\"\n\
         [database]\nurl = \"sqlite://bench.db\"\n[posting]\nmin_assurance = \"address\"\n\
         [outbound]\ntransport = \"smtp\"\nconcurrency = 16\n\
         [outbound.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\npool_size = 8\n[log]\nlevel = \"error\"\n"
    )
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

impl Bench {
    async fn setup(
        dir: &Path,
        suite: Suite,
        port: u16,
        args: &BenchPgpArgs,
    ) -> anyhow::Result<Bench> {
        let now = now_ms();
        write_private(&dir.join("secret.key"), hex::encode([7u8; 32]).as_bytes())?;
        let gateway = keyring::generate_with(&format!("CERT <cases@{DOMAIN}>"), now, None, suite)?;
        write_private(
            &dir.join("gateway-key.asc"),
            keyring::armored_secret(&gateway)?.as_bytes(),
        )?;
        std::fs::write(dir.join("casegate.toml"), config_text(port))?;
        let cfg = Config::load(&dir.join("casegate.toml"))
            .map_err(|e| anyhow::anyhow!("bench configuration: {e}"))?;
        let store = Store::open(&cfg.database.url).await?;
        let sender_tsk = keyring::generate_with(&format!("Sender <{SENDER}>"), now, None, suite)?;
        let sender = GatewayKeys::load(keyring::armored_secret(&sender_tsk)?.as_bytes(), &[], now)?;
        seed(&store, &sender_tsk, args.recipients).await?;
        let pipeline = Pipeline::new(store.clone(), &cfg);
        Ok(Bench {
            suite,
            cfg,
            store,
            pipeline,
            sender,
            recipients: args.recipients,
        })
    }
}

/// CERT with its coordinator (with a key), Acme with the sender (a confirmed key), and
/// Many with the fan-out recipients (a key each); VU#111111 demands signed mail from Acme;
/// VU#222222 is Many's case; VU#333333 takes Acme's plain mail (the baseline).
async fn seed(
    store: &Store,
    sender: &sequoia_openpgp::Cert,
    recipients: usize,
) -> anyhow::Result<()> {
    let cert = store.add_org("CERT", OrgKind::Coordinator, &[]).await?;
    let acme = store.add_org("Acme", OrgKind::Vendor, &[]).await?;
    let many = store.add_org("Many", OrgKind::Vendor, &[]).await?;
    let cora = keyring::generate(&format!("Cora <{COORDINATOR}>"), now_ms(), None)?;
    add_keyed_contact(store, COORDINATOR, cert, &cora).await?;
    add_keyed_contact(store, SENDER, acme, sender).await?;
    for i in 0..recipients {
        let email = format!("r{i:05}@many.example");
        let c = keyring::generate(&format!("<{email}>"), now_ms(), None)?;
        add_keyed_contact(store, &email, many, &c).await?;
    }
    for (id, org, min) in [
        ("VU#111111", acme, Some(Assurance::Signed)),
        ("VU#222222", many, None),
        ("VU#333333", acme, None),
    ] {
        let title = format!("Bench case {id}");
        let case = NewCase {
            public_id: Some(id),
            title: &title,
            embargoed: false,
            min_assurance: min,
        };
        store.create_case("VU#", &case).await?;
        let p = NewParticipant {
            org: Some(org),
            contact: None,
            role: Role::Vendor,
            anonymous: false,
            alias: None,
        };
        store.add_participant(id, &p).await?;
    }
    Ok(())
}

/// A contact of `org` with `cert` imported (confirmed).
async fn add_keyed_contact(
    store: &Store,
    email: &str,
    org: OrgId,
    cert: &sequoia_openpgp::Cert,
) -> anyhow::Result<()> {
    let c = NewContact {
        email,
        name: email,
        org: Some(org),
        notify: NotifyMode::Immediate,
        encrypt_only: false,
    };
    store.add_contact(&c).await?;
    store
        .import_keys(email, &[cert.clone().strip_secret_key_material()])
        .await?;
    Ok(())
}

/// Mail number `i` from the sender: to VU#111111 (to be sealed) or VU#333333 (plain).
fn plain_mail(i: usize, sealed: bool) -> String {
    let (case, tag) = if sealed {
        ("111111", "bench")
    } else {
        ("333333", "plain")
    };
    format!(
        "From: Sender <{SENDER}>\r\nTo: cases+vu{case}@{DOMAIN}\r\nSubject: Re: [VU#{case}] finding {i}\r\n\
         Message-ID: <{tag}-{i}@acme.example>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\nFinding {i}: the parser overflows at offset {i}.\r\n"
    )
}

impl Bench {
    /// N mails as a sender's client makes them: PGP/MIME, signed and encrypted to the
    /// gateway (made with the gateway's own sealing code, the sender's key as signer); or
    /// the same mails in plaintext, for the baseline.
    fn mails(&self, n: usize, sealed: bool) -> anyhow::Result<Vec<Vec<u8>>> {
        let keys = self.cfg.pgp.keys.as_ref().context("gateway key")?;
        let gateway = keys.public_cert();
        let now = now_ms();
        (0..n)
            .map(|i| {
                let plain = plain_mail(i, sealed);
                if !sealed {
                    return Ok(plain.into_bytes());
                }
                let sender = Some(&self.sender);
                let sealed = seal::encrypt(
                    plain.as_bytes(),
                    "VU#111111",
                    "Sender",
                    SENDER,
                    &gateway,
                    sender,
                    now,
                )?;
                Ok(sealed)
            })
            .collect()
    }

    async fn inbound(&self, args: &BenchPgpArgs) -> anyhow::Result<()> {
        let label = match self.suite {
            Suite::Cv25519 => "Cv25519-encrypted, Ed25519-signed PGP/MIME",
            Suite::Rsa3072 => "RSA-3072-encrypted, RSA-3072-signed PGP/MIME",
        };
        let t = Instant::now();
        let mails = Arc::new(self.mails(args.mails, true)?);
        let made = t.elapsed().as_secs_f64();
        let open_ms = self.open_only(&mails).await?;
        let workers = args.concurrency.max(1);
        let (elapsed, posted) = self
            .ingest_all(mails.clone(), workers, Assurance::Signed)
            .await?;
        report_inbound(label, &mails, posted, elapsed, workers)?;
        println!("  of which opening (decrypt and verify) {open_ms:.2} ms/mail; mails made in {made:.1} s");
        if self.suite == Suite::Cv25519 {
            let plain = Arc::new(self.mails(args.mails, false)?);
            let (elapsed, posted) = self
                .ingest_all(plain.clone(), workers, Assurance::Address)
                .await?;
            report_inbound(
                "baseline: the same mails in plaintext",
                &plain,
                posted,
                elapsed,
                workers,
            )?;
        }
        Ok(())
    }

    /// Milliseconds per mail spent in `pgp::open` alone (decrypt and verify), one thread.
    async fn open_only(&self, mails: &[Vec<u8>]) -> anyhow::Result<f64> {
        let state = &self.pipeline.composer.pgp;
        self.store.refresh_keyring(state).await?;
        let keyring = state.keyring();
        let sample = &mails[..mails.len().min(1000)];
        let ctx = open::OpenCtx {
            gateway: state.gateway.as_deref(),
            keyring: &keyring,
            from: Some(SENDER),
            now_ms: now_ms(),
        };
        let t = Instant::now();
        for m in sample {
            let o = open::open(m, &ctx);
            if o.protection.authenticated().is_none() {
                bail!(
                    "a bench mail did not open as signed: {}",
                    o.protection.summary()
                );
            }
        }
        Ok(t.elapsed().as_secs_f64() * 1000.0 / sample.len().max(1) as f64)
    }

    async fn ingest_all(
        &self,
        mails: Arc<Vec<Vec<u8>>>,
        workers: usize,
        assurance: Assurance,
    ) -> anyhow::Result<(Duration, usize)> {
        let next = Arc::new(AtomicUsize::new(0));
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (p, mails, next) = (self.pipeline.clone(), mails.clone(), next.clone());
            tasks.spawn(async move {
                let mut posted = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(m) = mails.get(i) else { break };
                    // A source offers a mail again after a transient error (a busy database).
                    let o = loop {
                        match p.ingest(m, "bench", &i.to_string()).await {
                            Err(e) if e.is_transient() => tokio::task::yield_now().await,
                            other => break other?,
                        }
                    };
                    posted += usize::from(o.decision == "post" && o.assurance == Some(assurance));
                }
                Ok::<usize, anyhow::Error>(posted)
            });
        }
        let mut posted = 0;
        while let Some(r) = tasks.join_next().await {
            posted += r??;
        }
        Ok((t.elapsed(), posted))
    }
}

/// One line of inbound figures; every mail must have been posted.
fn report_inbound(
    label: &str,
    mails: &[Vec<u8>],
    posted: usize,
    elapsed: Duration,
    workers: usize,
) -> anyhow::Result<()> {
    if posted != mails.len() {
        bail!(
            "{label}: only {posted} of {} mails were posted",
            mails.len()
        );
    }
    let secs = elapsed.as_secs_f64();
    println!(
        "inbound, {label}, {} mails, {workers} at a time: {:.0} mails/s ({secs:.2} s, {:.2} ms/mail)",
        mails.len(),
        mails.len() as f64 / secs,
        secs * 1000.0 / mails.len() as f64
    );
    Ok(())
}

impl Bench {
    /// One post to every recipient: rendering and cryptography timed alone, then the
    /// whole post (render, seal, commit), then SMTP.
    async fn fan_out(&self) -> anyhow::Result<()> {
        self.store.purge_outbox().await?;
        let thread = self.store.thread_by_name("discussion:VU#222222").await?;
        let body =
            "The fix is public on 2027-01-15; patched builds are attached to the advisory.\n"
                .repeat(8);
        let (render_s, crypto_s) = self.render_and_seal_alone(thread, &body).await?;
        let t = Instant::now();
        let composer = &self.pipeline.composer;
        let r = crate::actions::post(
            &self.store,
            composer,
            thread,
            COORDINATOR,
            &body,
            &[],
            false,
        )
        .await?;
        let post_s = t.elapsed().as_secs_f64();
        let transport = crate::outbound::Transport::from_config(&self.cfg.outbound)?;
        let t = Instant::now();
        let sent = crate::outbound::send_due(&self.store, &self.pipeline.composer, &transport, &self.cfg.outbound).await?;
        let smtp_s = t.elapsed().as_secs_f64();
        let encrypted = self
            .store
            .outbox_messages()
            .await?
            .iter()
            .filter(|(_, _, b)| b.windows(19).any(|w| w == b"multipart/encrypted"))
            .count();
        let raw_s = self.smtp_alone(&transport).await?;
        transport.shutdown().await;
        let n = self.recipients;
        if sent.sent as usize != n || encrypted != n || r.outbox.len() != n {
            bail!(
                "fan-out: {} queued, {encrypted} encrypted, {} sent of {n}",
                r.outbox.len(),
                sent.sent
            );
        }
        let worker_rest = (smtp_s - render_s - crypto_s - raw_s).max(0.0);
        println!(
            "fan-out, one post to {n} recipients with their own Cv25519 keys: {:.2} s end to end\n  \
             post (audience decided, post and {n} deliveries committed) {post_s:.2} s\n  \
             outbox worker (render, sign and encrypt, send to smtp-sink) {smtp_s:.2} s: rendering alone {render_s:.2} s, \
             signing and encryption alone {crypto_s:.2} s, the messages over the transport alone (16 at a time) {raw_s:.2} s, \
             claiming, loading and bookkeeping {worker_rest:.2} s",
            post_s + smtp_s
        );
        Ok(())
    }

    /// The outbox's messages sent again over the transport alone, without the worker's
    /// claiming and bookkeeping: how much of the SMTP stage is SMTP.
    async fn smtp_alone(&self, transport: &crate::outbound::Transport) -> anyhow::Result<f64> {
        let items = Arc::new(self.store.outbox_messages().await?);
        let next = Arc::new(AtomicUsize::new(0));
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (items, next, transport) = (items.clone(), next.clone(), transport.clone());
            tasks.spawn(async move {
                while let Some((rcpt, from, bytes)) =
                    items.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    let env = crate::outbound::Envelope {
                        from: from.clone(),
                        to: rcpt.clone(),
                    };
                    transport.send(&env, bytes).await?;
                }
                Ok::<(), crate::outbound::SendError>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        Ok(t.elapsed().as_secs_f64())
    }

    /// The rendering and the sealing of the same deliveries, each timed alone.
    async fn render_and_seal_alone(
        &self,
        thread: ThreadId,
        body: &str,
    ) -> anyhow::Result<(f64, f64)> {
        let q = WorldQuery {
            thread_ids: vec![thread],
            emails: vec![COORDINATOR.into()],
            ..Default::default()
        };
        let world = self.store.world(&q).await?;
        let t = world.thread(thread).context("thread")?;
        let author = world.contact_by_email(COORDINATOR).map(|c| c.id);
        let draft = PostItem {
            thread: t,
            author: author.map_or(Author::Unknown, Author::Contact),
            body,
            attachments: &[],
            created_at_ms: now_ms(),
            pinned: false,
            direct: &[],
            arrival: Arrival::Plain,
        };
        let start = Instant::now();
        let rendered = self.render_plain(&world, &draft);
        let render_s = start.elapsed().as_secs_f64();
        let pgp = &self.pipeline.composer.pgp;
        self.store.refresh_keyring(pgp).await?;
        let start = Instant::now();
        for (contact, r) in rendered {
            self.pipeline
                .composer
                .seal(contact, "VU#222222", r, now_ms())?;
        }
        Ok((render_s, start.elapsed().as_secs_f64()))
    }

    /// Every delivery of the post rendered without keys (no sealing).
    fn render_plain(&self, world: &World, draft: &PostItem) -> Vec<(ContactId, Rendered)> {
        let fan = audience::fan_out(world, draft);
        let plain = Composer {
            pgp: Arc::new(PgpState::new(None)),
            ..(*self.pipeline.composer).clone()
        };
        let mut rendered = Vec::with_capacity(fan.deliveries.len());
        for (i, d) in fan.deliveries.iter().enumerate() {
            let mid = format!("bench-{i}@{DOMAIN}");
            let ids = Ids {
                message_id: &mid,
                outbox_id: i as i64,
                earlier: &[],
            };
            let r = plain.render_delivery(world, draft, d, &ids, now_ms());
            rendered.extend(r.map(|(_, r)| (d.contact, r)));
        }
        rendered
    }
}
