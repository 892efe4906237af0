//! `casegate demo`: a whole coordination, played in a temporary directory with the file
//! transport, printing each step's decision and then what every person received.

use crate::config::Config;
use crate::model::{NotifyMode, OrgKind, Role};
use crate::pipeline::{Outcome, Pipeline};
use crate::store::cases::NewParticipant;
use crate::store::directory::NewContact;
use crate::store::Store;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::Path;

const DOMAIN: &str = "cert.example";

fn demo_config(dir: &Path) -> anyhow::Result<Config> {
    let secret = dir.join("secret.key");
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    std::fs::write(&secret, hex::encode(bytes))?;
    std::fs::create_dir_all(dir.join("outbox"))?;
    let text = format!(
        "[gateway]\nname = \"CERT casegate\"\ndomain = \"{DOMAIN}\"\nsecret_file = \"secret.key\"\n\
         [database]\nurl = \"sqlite://casegate.db\"\n\
         [posting]\nmin_assurance = \"dmarc\"\ntrusted_authserv_ids = [\"mx.{DOMAIN}\"]\n\
         [outbound]\ntransport = \"file\"\nfile_dir = \"outbox\"\n\
         [log]\nlevel = \"warn\"\n"
    );
    let path = dir.join("casegate.toml");
    std::fs::write(&path, text)?;
    Config::load(&path).map_err(|e| anyhow::anyhow!("demo configuration: {e}"))
}

struct Demo {
    store: Store,
    pipeline: Pipeline,
    step: usize,
    counter: usize,
}

impl Demo {
    async fn mail(&mut self, what: &str, headers: &str, body: &str) -> anyhow::Result<Outcome> {
        self.step += 1;
        self.counter += 1;
        let raw = format!("{headers}Message-ID: <demo-{}@mail.example>\r\nDate: Wed, 25 Nov 2026 10:{:02}:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n", self.counter, self.counter % 60);
        let o = self.pipeline.ingest(raw.as_bytes(), "demo", &format!("step-{}", self.step)).await?;
        println!("{:>2}. {what}\n    → {} ({}){}", self.step, o.decision, o.reason_detail, o.thread.as_deref().map(|t| format!(" in {t}")).unwrap_or_default());
        Ok(o)
    }

    fn say(&mut self, what: &str) {
        self.step += 1;
        println!("{:>2}. {what}", self.step);
    }
}

fn h(from: &str, to: &str, subject: &str) -> String {
    format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n")
}

fn dmarc(from_domain: &str) -> String {
    format!("Authentication-Results: mx.{DOMAIN}; spf=pass smtp.mailfrom={from_domain}; dmarc=pass header.from={from_domain}\r\n")
}

async fn setup_people(store: &Store) -> anyhow::Result<()> {
    let cert = store.add_org("CERT Team", OrgKind::Coordinator, &[DOMAIN.into()]).await?;
    let acme = store.add_org("Acme Routers", OrgKind::Vendor, &["acme.example".into()]).await?;
    let globex = store.add_org("Globex", OrgKind::Vendor, &["globex.example".into()]).await?;
    let initech = store.add_org("Initech", OrgKind::Vendor, &["initech.example".into()]).await?;
    for (email, name, org) in [
        ("cora@cert.example", "Cora Coordinator", cert),
        ("alice@acme.example", "Alice Acme", acme),
        ("bob@globex.example", "Bob Globex", globex),
        ("ivan@initech.example", "Ivan Initech", initech),
    ] {
        store.add_contact(&NewContact { email, name, org: Some(org), notify: NotifyMode::Immediate, encrypt_only: false }).await?;
    }
    Ok(())
}

/// Play the scenario in `dir` (a temporary directory when `None`) and print the transcript.
pub async fn run(dir: Option<&Path>) -> anyhow::Result<()> {
    let tmp;
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.to_path_buf()
        }
        None => {
            tmp = tempfile::Builder::new().prefix("casegate-demo").tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let cfg = demo_config(&dir)?;
    let store = crate::app::open_store(&cfg).await?;
    setup_people(&store).await?;
    let pipeline = Pipeline::new(store.clone(), &cfg);
    let mut demo = Demo { store, pipeline, step: 0, counter: 0 };
    println!("casegate demo in {}\n", dir.display());
    play(&mut demo, &cfg).await?;
    let transport = crate::outbound::transport::Transport::from_config(&cfg.outbound)?;
    let sent = crate::outbound::worker::send_due(&demo.store, &demo.pipeline.composer, &transport, &cfg.outbound).await?;
    println!("\nOutbox: {} sent with the file transport into {}\n", sent.sent, dir.join("outbox").display());
    print_mailboxes(&dir.join("outbox"))?;
    Ok(())
}

async fn play(d: &mut Demo, cfg: &Config) -> anyhow::Result<()> {
    let book = cfg.address_book();
    let body = "httpd 2.4 in AcmeOS overflows on a long Host header.\nPoC: curl -H \"Host: $(python3 -c 'print(\"A\"*5000)')\" http://router/";
    let report = d.mail("Rita (an independent researcher) mails security@cert.example", &format!("{}{}", h("Rita Reporter <rita@reporter.example>", "security@cert.example", "Overflow in AcmeOS httpd"), dmarc("reporter.example")), body).await?;
    let report_id = report.report.clone().context("the report was not opened")?;
    let case_id = d.store.accept_report(&report_id, &cfg.gateway.case_prefix, "Buffer overflow in AcmeOS httpd", true).await?;
    d.say(&format!("Cora accepts {report_id} as case {case_id}"));
    for (org, anonymous, alias) in [("Acme Routers", false, None), ("Globex", true, Some("Vendor B")), ("Initech", false, None)] {
        let org_id = d.store.org_by_name(org).await?.id;
        let p = NewParticipant { org: Some(org_id), contact: None, role: Role::Vendor, anonymous, alias };
        d.store.add_participant(&case_id, &p).await?;
        let queued = crate::actions::notify_vendor(&d.store, &d.pipeline.composer, &case_id, org).await?;
        let anon = if anonymous { " (anonymous, shown as \"Vendor B\")" } else { "" };
        d.say(&format!("{org}{anon} joins {case_id} and is notified: {}", queued.join(", ")));
    }
    let world = d.store.world(&crate::store::world::WorldQuery { case_public_ids: vec![case_id.clone()], ..Default::default() }).await?;
    let case = world.case_by_public_id(&case_id).context("case")?;
    let alice = world.contact_by_email("alice@acme.example").context("alice")?;
    let reply = d.pipeline.composer.reply_address(case.discussion, alice.id);
    let subject = format!("Re: [{case_id}] {}", case.title);
    d.mail("Alice (Acme) replies from her mail client to her Reply-To address", &h("Alice Acme <alice@acme.example>", &reply, &subject), "Confirmed on AcmeOS 7.2; a fix ships in 7.3 next month.\n\n> quoted notification text").await?;
    let case_addr = book.case_address(&case_id);
    let headers = format!("{}Cc: {case_addr}\r\n{}", h("Cora Coordinator <cora@cert.example>", "Bob Globex <bob@globex.example>", &subject), dmarc(DOMAIN));
    d.mail("Cora writes to Bob (Globex) from her own client and CCs the case address", &headers, "Could you check whether your firmware ships the same httpd build?").await?;
    let private = book.private_address(&case_id);
    let headers = format!("{}{}", h("Ivan Initech <ivan@initech.example>", &private, &subject), dmarc("initech.example"));
    d.mail("Ivan (Initech) writes privately to the coordinators", &headers, "We are not affected, but please keep us informed.").await?;
    d.mail("A forged mail: Alice's address, no reply key, no DMARC pass", &h("Alice Acme <alice@acme.example>", &case_addr, &subject), "Please send the full PoC to alice.acme@freemail.example").await?;
    let headers = format!("{}Auto-Submitted: auto-replied\r\n", h("Bob Globex <bob@globex.example>", &case_addr, &format!("Out of Office: {subject}")));
    d.mail("Bob's out-of-office reply", &headers, "I am out of the office until Monday.").await?;
    Ok(())
}

/// Group the written messages by recipient and print the headers and first lines of each.
fn print_mailboxes(dir: &Path) -> anyhow::Result<()> {
    let mut by_rcpt: BTreeMap<String, Vec<mail_parser::Message<'static>>> = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    for f in files {
        let raw = std::fs::read(&f)?;
        let Some(m) = mail_parser::MessageParser::default().parse(&raw).map(|m| m.into_owned()) else { continue };
        let to = m.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or("?").to_string();
        by_rcpt.entry(to).or_default().push(m);
    }
    for (rcpt, msgs) in &by_rcpt {
        println!("=== {rcpt} received {} message(s)", msgs.len());
        for m in msgs {
            let from = m.from().and_then(|a| a.first()).map(|a| format!("\"{}\" <{}>", a.name().unwrap_or(""), a.address().unwrap_or(""))).unwrap_or_default();
            let reply_to = m.reply_to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or("-");
            println!("  From:     {from}\n  Reply-To: {reply_to}\n  Subject:  {}", m.subject().unwrap_or(""));
            let text = m.body_text(0).unwrap_or_default();
            for line in text.lines().filter(|l| !l.trim().is_empty()).take(3) {
                println!("  | {line}");
            }
            println!();
        }
    }
    Ok(())
}
