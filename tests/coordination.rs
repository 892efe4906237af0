//! A 45-day case run with the command line and mail alone (SPEC §6.6, §8), delivered to a
//! real SMTP server (Postfix's `smtp-sink`): a report accepted into a case, three vendors
//! notified (one anonymous, one with a key), a late joiner, reminders on days 7 and 14 to
//! the silent vendor, status and statements by mail (shared and not, malformed), the case
//! summary asked by each vendor, a new public date, publication, and a statement after it.
//!
//! Every message that reaches the server is checked: one recipient, the right one; the
//! vendor with a key gets it encrypted (and it decrypts), everyone else signed plaintext;
//! nobody outside the anonymous vendor and the coordinators reads its name.

mod gpg;
mod smtp_sink;
mod support;

use gpg::{GpgHome, KeyKind};
use mail_parser::{MessageParser, MimeHeaders};
use smtp_sink::SmtpSink;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DAY_MS: i64 = 86_400_000;

fn casegate(cfg: &Path, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(support::binary())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env_remove("CASEGATE_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run casegate");
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// One message as its recipient reads it: the text, decrypted when it came encrypted.
#[derive(Debug, Clone)]
struct Got {
    rcpt: String,
    subject: String,
    text: String,
    encrypted: bool,
}

/// The gateway, its SMTP server and the people mail is checked against.
struct World {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    cfg: PathBuf,
    sink: SmtpSink,
    seen: HashSet<String>,
    alice: GpgHome,
    case: String,
    files: usize,
}

/// Who may read the anonymous vendor's name: its own contact and the coordinators.
const INSIDERS: [&str; 2] = ["bob@globex.example", "cora@cert.example"];

impl World {
    fn ok(&self, args: &[&str]) -> String {
        let (success, out, err) = casegate(&self.cfg, args);
        assert!(success, "casegate {args:?} failed: {err}\n{out}");
        out
    }

    /// A mail from `from` through our MX (DMARC pass), as `deliver` gets it.
    fn mail(&mut self, from: &str, to: &str, subject: &str, body: &str) -> serde_json::Value {
        self.files += 1;
        let domain = from.split('@').nth(1).expect("domain");
        let mail = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <m{}@{domain}>\r\n\
             Authentication-Results: mx.cert.example; dmarc=pass header.from={domain}\r\n\
             Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n{}\r\n",
            self.files,
            body.replace('\n', "\r\n")
        );
        let file = self.dir.join(format!("mail{}.eml", self.files));
        std::fs::write(&file, mail).expect("write mail");
        let out = self.ok(&["deliver", file.to_str().expect("path"), "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn case_address(&self, suffix: &str) -> String {
        format!("cases+vu{}{suffix}@cert.example", self.case.trim_start_matches("VU#"))
    }

    /// Send what is due and return what reached the server since the last call, each
    /// message checked.
    fn send(&mut self) -> Vec<Got> {
        self.ok(&["outbox", "send"]);
        let mut out = Vec::new();
        for m in self.sink.messages() {
            let parsed = MessageParser::default().parse(&m.data).expect("message parses");
            let id = parsed.message_id().expect("Message-ID").to_string();
            if !self.seen.insert(id) {
                continue;
            }
            out.push(self.check(&m));
        }
        out.sort_by(|a, b| a.rcpt.cmp(&b.rcpt));
        out
    }

    /// SPEC §6.2–§6.4: one recipient; encrypted exactly for the one with a key; the
    /// anonymous vendor's identity only for its own and the coordinators.
    fn check(&self, m: &smtp_sink::SinkMessage) -> Got {
        assert_eq!(m.rcpt_to.len(), 1, "one recipient per message");
        let rcpt = m.rcpt_to[0].trim_matches(['<', '>']).to_string();
        let outer = MessageParser::default().parse(&m.data).expect("parses");
        let to: Vec<String> = outer.to().expect("To").iter().filter_map(|a| a.address()).map(str::to_string).collect();
        assert_eq!(to, vec![rcpt.clone()], "To names the recipient alone");
        assert!(outer.cc().is_none() && outer.bcc().is_none());
        let ct = outer.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default())).unwrap_or_default();
        let encrypted = ct == "multipart/encrypted";
        let (subject, text) = if encrypted {
            assert_eq!(rcpt, "alice@acme.example", "only alice has a key");
            let (plain, status) = self.alice.decrypt(&gpg::encrypted_part(&gpg::crlf(&m.data)));
            assert!(status.contains("GOODSIG"), "signed by the gateway: {status}");
            let inner = MessageParser::default().parse(&plain).expect("inner parses");
            let text = inner.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
            (inner.subject().unwrap_or_default().to_string(), text)
        } else {
            assert_ne!(rcpt, "alice@acme.example", "alice gets everything encrypted: {}", String::from_utf8_lossy(&m.data));
            assert_eq!(ct, "multipart/signed", "signed by the gateway");
            let (signed, signature) = gpg::signed_parts(&gpg::crlf(&m.data));
            let (good, status) = self.alice.verify_detached(&signature, &signed);
            assert!(good && status.contains("GOODSIG"), "the gateway's signature verifies: {status}");
            let text = outer.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
            (outer.subject().unwrap_or_default().to_string(), text)
        };
        if !INSIDERS.contains(&rcpt.as_str()) {
            let from = outer.from().and_then(|a| a.first()).and_then(|a| a.name()).unwrap_or_default();
            let head = String::from_utf8_lossy(&m.data[..m.data.windows(2).position(|w| w == b"\n\n").unwrap_or(m.data.len())]).to_lowercase();
            let shown = format!("{subject}\n{from}\n{text}").to_lowercase();
            assert!(!head.contains("globex") && !shown.contains("globex"), "Globex reached {rcpt}:\n{subject}\n{text}");
            assert!(!shown.split(|c: char| !c.is_alphanumeric()).any(|w| w == "bob"), "Bob reached {rcpt}:\n{subject}\n{text}");
        }
        Got { rcpt, subject, text: text.replace("\r\n", "\n"), encrypted }
    }

    fn case_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["case", "show", &self.case, "--json"])).expect("json")
    }

    /// `schedule run --now` at `days` after the initial contact.
    fn run_at(&self, initial: i64, days: i64) -> serde_json::Value {
        let at = chrono::DateTime::from_timestamp_millis(initial + days * DAY_MS + 3_600_000).expect("time").to_rfc3339();
        serde_json::from_str(&self.ok(&["schedule", "run", "--now", &at, "--json"])).expect("json")
    }
}

fn rcpts(got: &[Got]) -> Vec<&str> {
    got.iter().map(|g| g.rcpt.as_str()).collect()
}

fn only<'g>(got: &'g [Got], rcpt: &str) -> &'g Got {
    let mine: Vec<&Got> = got.iter().filter(|g| g.rcpt == rcpt).collect();
    assert_eq!(mine.len(), 1, "one message to {rcpt}: {got:#?}");
    mine[0]
}

fn setup() -> World {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("gw");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("secret.key"), support::SECRET).expect("secret");
    let sink = SmtpSink::start(&[]);
    let cfg = dir.join("casegate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[gateway]\ndomain = \"cert.example\"\nname = \"CERT Coordination\"\nsecret_file = \"secret.key\"\n\
             [database]\nurl = \"{}\"\n[posting]\ntrusted_authserv_ids = [\"mx.cert.example\"]\n\
             [outbound]\ntransport = \"smtp\"\n[outbound.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n[log]\nlevel = \"warn\"\n",
            support::database_url(),
            sink.port
        ),
    )
    .expect("config");
    let alice = GpgHome::new();
    alice.gen_key("Alice", "alice@acme.example", KeyKind::Ed25519, None, None);
    let w = World { _tmp: tmp, dir, cfg, sink, seen: HashSet::new(), alice, case: String::new(), files: 0 };
    w.ok(&["keys", "generate", "--name", "CERT Coordination"]);
    w.alice.import(w.ok(&["keys", "export"]).as_bytes());
    for [name, kind, domain] in [
        ["CERT Team", "coordinator", "cert.example"],
        ["Acme", "vendor", "acme.example"],
        ["Globex", "vendor", "globex.example"],
        ["Initech", "vendor", "initech.example"],
        ["Umbrella", "vendor", "umbrella.example"],
    ] {
        w.ok(&["org", "add", name, "--kind", kind, "--domain", domain]);
    }
    for [email, name, org] in [
        ["cora@cert.example", "Cora", "CERT Team"],
        ["alice@acme.example", "Alice", "Acme"],
        ["bob@globex.example", "Bob", "Globex"],
        ["ivan@initech.example", "Ivan", "Initech"],
        ["uma@umbrella.example", "Uma", "Umbrella"],
    ] {
        w.ok(&["contact", "add", email, "--name", name, "--org", org]);
    }
    let key = w.dir.join("alice.asc");
    std::fs::write(&key, w.alice.export("alice@acme.example")).expect("key");
    w.ok(&["keys", "import", key.to_str().expect("path"), "--contact", "alice@acme.example"]);
    w
}

/// Report → accepted into a case → three vendors notified (one anonymous, one with a key).
fn report_and_notify(w: &mut World) {
    let o = w.mail("rex@reporter.example", "security@cert.example", "Overflow in httpd", "The httpd of Globex and Acme overflows.");
    assert_eq!(o["decision"], "open-report", "{o}");
    let report = o["report"].as_str().expect("report id").to_string();
    let got = w.send();
    assert_eq!(rcpts(&got), ["cora@cert.example", "rex@reporter.example"], "the report to the coordinators, the acknowledgement");
    assert!(only(&got, "rex@reporter.example").subject.contains("Report received"));
    w.case = w.ok(&["case", "create", "--title", "Overflow in the httpd of Globex and Acme"]).trim().to_string();
    assert_eq!(w.ok(&["report", "accept", &report, "--into", &w.case.clone()]).trim(), w.case);
    let case = w.case.clone();
    w.ok(&["case", "add-participant", &case, "--org", "Acme"]);
    w.ok(&["case", "add-participant", &case, "--org", "Globex", "--anonymous", "--alias", "Vendor B"]);
    w.ok(&["case", "add-participant", &case, "--org", "Initech"]);
    for org in ["Acme", "Globex", "Initech"] {
        w.ok(&["case", "notify", &case, "--org", org]);
    }
    let got = w.send();
    assert_eq!(rcpts(&got), ["alice@acme.example", "bob@globex.example", "ivan@initech.example"]);
    assert!(only(&got, "alice@acme.example").encrypted);
    assert!(only(&got, "ivan@initech.example").subject.contains("Overflow in the httpd of Vendor B and Acme"), "{got:#?}");
    assert!(only(&got, "bob@globex.example").subject.contains("Globex"), "its own name");
}

/// The discussion starts; a vendor added after that gets the summary and what was said.
fn discussion_and_late_joiner(w: &mut World) {
    let case_addr = w.case_address("");
    let subject = format!("Re: [{}] Overflow", w.case);
    let o = w.mail("alice@acme.example", &case_addr, &subject, "We are looking into it.");
    assert_eq!(o["decision"], "post", "{o}");
    let o = w.mail("bob@globex.example", &case_addr, &subject, "Bob of Globex here: our firmware 4.1 is affected.");
    assert_eq!(o["decision"], "post", "{o}");
    let got = w.send();
    assert_eq!(rcpts(&got), ["alice@acme.example", "bob@globex.example", "cora@cert.example", "cora@cert.example", "ivan@initech.example", "ivan@initech.example", "rex@reporter.example", "rex@reporter.example"]);
    assert!(got.iter().any(|g| g.rcpt == "ivan@initech.example" && g.text.contains("Vendor B here: our firmware 4.1 is affected.")), "{got:#?}");
    let case = w.case.clone();
    let out = w.ok(&["case", "add-participant", &case, "--org", "Umbrella"]);
    assert!(out.contains("uma@umbrella.example"), "{out}");
    let got = w.send();
    let uma = only(&got, "uma@umbrella.example");
    assert_eq!(got.len(), 1);
    assert!(uma.subject.contains("Case summary and discussion so far"), "{}", uma.subject);
    assert!(uma.text.contains("We are looking into it.") && uma.text.contains("Vendor B here: our firmware 4.1 is affected."), "{}", uma.text);
    assert!(uma.text.contains("  - vendor: Vendor B"), "{}", uma.text);
}

/// Days 7 and 14: only the vendor that neither replied nor gave a status is reminded, once.
fn reminders(w: &mut World) -> i64 {
    let initial = w.case_json()["dates"]["initial_contact_at"].as_i64().expect("initial contact date");
    let before = w.run_at(initial, 6);
    assert_eq!(before["reminders"], 0, "{before}");
    w.send();
    let day7 = w.run_at(initial, 7);
    assert_eq!(day7["reminders"], 1, "{day7}");
    let got = w.send();
    let reminder = got.iter().find(|g| g.subject.contains("Reminder")).unwrap_or_else(|| panic!("a reminder: {got:#?}"));
    assert_eq!(reminder.rcpt, "ivan@initech.example");
    assert!(reminder.text.contains("7 days ago we told you"), "{}", reminder.text);
    assert!(got.iter().all(|g| g.rcpt == "ivan@initech.example" || g.rcpt == "cora@cert.example"), "{got:#?}");
    let summary = got.iter().find(|g| g.subject.contains("Daily summary")).expect("the coordinators' daily summary");
    assert_eq!(summary.rcpt, "cora@cert.example");
    assert!(summary.text.contains("Vendors without a status") && summary.text.contains("Globex"), "{}", summary.text);
    assert_eq!(w.run_at(initial, 7)["reminders"], 0, "once per due item");
    assert!(w.send().is_empty());
    assert_eq!(w.run_at(initial, 14)["reminders"], 1);
    let got = w.send();
    let reminder = got.iter().find(|g| g.subject.contains("Reminder")).expect("the day-14 reminder");
    assert_eq!(reminder.rcpt, "ivan@initech.example");
    assert!(reminder.text.contains("14 days ago"), "{}", reminder.text);
    initial
}

/// Statuses by mail: a shared statement, one not shared, one that cannot be read.
fn statuses(w: &mut World) {
    let case_addr = w.case_address("");
    let subject = format!("Re: [{}] Overflow", w.case);
    let o = w.mail("bob@globex.example", &case_addr, &subject, "Status: affected\nStatement: Globex ships firmware 4.2 with the fix.\nShare: yes\n");
    assert_eq!((o["decision"].as_str(), o["reason"].as_str()), (Some("status"), Some("status-update")), "{o}");
    let got = w.send();
    assert_eq!(rcpts(&got), ["bob@globex.example", "cora@cert.example"], "confirmed in the private thread only");
    assert!(only(&got, "bob@globex.example").text.contains("Shared: yes"), "{got:#?}");
    let o = w.mail("alice@acme.example", &case_addr, &subject, "Status: not affected\nStatement: Acme builds leave the module out.\n\nThanks for the report.");
    assert_eq!(o["decision"], "status", "{o}");
    let got = w.send();
    let to_alice: Vec<&Got> = got.iter().filter(|g| g.rcpt == "alice@acme.example").collect();
    assert_eq!(to_alice.len(), 1, "the confirmation (her own post is not sent back): {got:#?}");
    assert!(to_alice[0].text.contains("Shared: no") && to_alice[0].text.contains("Acme builds leave the module out."));
    for g in got.iter().filter(|g| g.rcpt != "alice@acme.example" && g.rcpt != "cora@cert.example") {
        assert!(!g.text.contains("leave the module out"), "the statement that is not shared reached {}", g.rcpt);
        assert!(g.text.contains("Thanks for the report."), "the rest is posted: {g:#?}");
    }
    let o = w.mail("ivan@initech.example", &w.case_address("-private"), &subject, "Status: perhaps\n\nWe need more time.");
    assert_eq!(o["reason"], "status-malformed", "{o}");
    let got = w.send();
    assert_eq!(rcpts(&got), ["cora@cert.example", "cora@cert.example", "ivan@initech.example"], "the mail and the help stay in the private thread");
    assert!(only(&got, "ivan@initech.example").text.contains("Status: affected | not affected | unknown | fixed"));
}

/// `-info` from each vendor: each sees the shared statement, its own, and nothing else.
fn case_summaries(w: &mut World) {
    let info = w.case_address("-info");
    for who in ["alice@acme.example", "bob@globex.example", "ivan@initech.example"] {
        let o = w.mail(who, &info, "summary please", "");
        assert_eq!(o["decision"], "info", "{o}");
    }
    let got = w.send();
    assert_eq!(rcpts(&got), ["alice@acme.example", "bob@globex.example", "ivan@initech.example"]);
    let alice = only(&got, "alice@acme.example");
    assert!(alice.encrypted);
    assert!(alice.text.contains("Acme (your organization; not shared") && alice.text.contains("Acme builds leave the module out."), "{}", alice.text);
    assert!(alice.text.contains("Vendor B: affected") && alice.text.contains("Vendor B ships firmware 4.2 with the fix."), "{}", alice.text);
    let bob = only(&got, "bob@globex.example");
    assert!(bob.text.contains("Globex (your organization; shared with the participants): affected"), "{}", bob.text);
    assert!(!bob.text.contains("leave the module out") && !bob.text.contains("  - Acme"), "Acme did not share: {}", bob.text);
    let ivan = only(&got, "ivan@initech.example");
    assert!(ivan.text.contains("Vendor B ships firmware 4.2") && !ivan.text.contains("leave the module out"), "{}", ivan.text);
    assert!(ivan.text.contains("Initech (your organization) has not given a status yet."), "{}", ivan.text);
    let again = w.mail("ivan@initech.example", &info, "summary again", "");
    assert_eq!(again["decision"], "info");
    assert!(w.send().is_empty(), "rate-limited");
}

const EVERYONE: [&str; 6] = ["alice@acme.example", "bob@globex.example", "cora@cert.example", "ivan@initech.example", "rex@reporter.example", "uma@umbrella.example"];

/// A new public date and publication are announced to every participant; statements are
/// still taken after publication.
fn dates_publication_and_late_statement(w: &mut World) {
    let case = w.case.clone();
    w.ok(&["case", "set-date", &case, "2026-05-04 14:00", "--reason", "Globex saw it exploited in the wild"]);
    let got = w.send();
    assert_eq!(rcpts(&got), EVERYONE);
    assert!(only(&got, "ivan@initech.example").text.contains("The public date of") && only(&got, "ivan@initech.example").text.contains("Monday 2026-05-04 14:00 UTC"));
    assert!(only(&got, "ivan@initech.example").text.contains("Vendor B saw it exploited"), "the reason is redacted like any post");
    let initial = w.case_json()["dates"]["initial_contact_at"].as_i64();
    w.ok(&["case", "notify", &case, "--org", "Initech"]);
    let got = w.send();
    assert!(only(&got, "ivan@initech.example").text.contains("Target public date: Monday 2026-05-04 14:00 UTC."), "re-notifying states the date as it is now");
    assert_eq!(w.case_json()["dates"]["initial_contact_at"].as_i64(), initial, "the first contact date is kept");
    w.ok(&["case", "set-state", &case, "published"]);
    let got = w.send();
    assert_eq!(rcpts(&got), EVERYONE);
    assert!(only(&got, "rex@reporter.example").text.contains("has been published"));
    let o = w.mail("ivan@initech.example", &w.case_address(""), "Re: statement", "Status: fixed\nStatement: Initech 2.1 has the fix.\nShare: yes");
    assert_eq!(o["decision"], "status", "{o}");
    let got = w.send();
    assert_eq!(rcpts(&got), ["cora@cert.example", "ivan@initech.example"]);
    let shown = w.case_json();
    assert_eq!(shown["case"]["state"], "published");
    let expected_public = support_time("2026-05-04T14:00:00Z");
    assert_eq!(shown["dates"]["public_at"].as_i64(), Some(expected_public));
    let statuses: BTreeSet<(String, String, bool)> = shown["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .map(|s| (s["org"].as_str().unwrap_or_default().to_string(), s["status"].as_str().unwrap_or("none").to_string(), s["share"].as_bool().unwrap_or_default()))
        .collect();
    let want: BTreeSet<(String, String, bool)> = [("Acme", "not_affected", false), ("Globex", "affected", true), ("Initech", "fixed", true), ("Umbrella", "none", false)]
        .into_iter()
        .map(|(o, s, b)| (o.to_string(), s.to_string(), b))
        .collect();
    assert_eq!(statuses, want);
    assert_eq!(shown["status_history"].as_array().map(Vec::len), Some(3), "every update with who and when");
}

fn support_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).expect("time").timestamp_millis()
}

#[test]
fn a_45_day_case_by_command_line_and_mail() {
    let mut w = setup();
    report_and_notify(&mut w);
    discussion_and_late_joiner(&mut w);
    let initial = reminders(&mut w);
    statuses(&mut w);
    case_summaries(&mut w);
    dates_publication_and_late_statement(&mut w);
    assert_eq!(w.run_at(initial, 21)["reminders"], 0, "a published case is not reminded");
}

/// `report decline` tells the reporter in the configured wording; later mail to the
/// report is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_report_is_told_to_its_reporter() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).expect("world");
    let g = support::gateway(&world).await;
    let o = g.pipeline.ingest(&support::report(1), "test", "r1").await.expect("ingest");
    let report = o.report.expect("a report");
    support::send(&g).await;
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(&g.store.pool).await.expect("count");
    let text = &g.cfg.coordination.decline_text;
    let p = casegate::coordination::decline_report(&g.store, &g.pipeline.composer, &report, text).await.expect("declined");
    let mut to: Vec<String> = p.outbox.iter().map(|o| o.1.clone()).collect();
    to.sort();
    assert_eq!(to, ["cora@cert.example", "r1@reporters.example"]);
    support::send(&g).await;
    let (bytes,): (Vec<u8>,) = sqlx::query_as("SELECT bytes FROM outbox WHERE rcpt = 'r1@reporters.example' AND id > $1").bind(before).fetch_one(&g.store.pool).await.expect("notice");
    let m = MessageParser::default().parse(&bytes).expect("parses");
    assert!(m.subject().unwrap_or_default().starts_with(&format!("[{report}]")), "{:?}", m.subject());
    assert!(m.body_text(0).expect("text").contains("we will not coordinate it as a case"), "the configured wording");
    let again = casegate::coordination::decline_report(&g.store, &g.pipeline.composer, &report, text).await;
    assert!(again.is_err(), "a report is declined once");
    let reply = format!(
        "From: Reporter 1 <r1@reporters.example>\r\nTo: security@cert.example\r\nSubject: Re: [{report}] Report 1\r\n\
         Authentication-Results: mx.cert.example; dmarc=pass header.from=reporters.example\r\nMessage-ID: <again@reporters.example>\r\n\r\nPlease reconsider.\r\n"
    );
    let o = g.pipeline.ingest(reply.as_bytes(), "test", "r2").await.expect("ingest");
    assert_eq!((o.decision.as_str(), o.reason.as_str()), ("quarantine", "report-declined"));
}
