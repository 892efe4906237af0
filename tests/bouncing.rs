//! Bouncing contacts (SPEC §7.2, §7.5): three permanent failures in a row (DSN bounces to
//! the VERP address, or 5xx answers of the SMTP server) mark the contact bouncing; later
//! messages skip a bouncing contact with a history event; the coordinators are told once,
//! by mail; a coordinator clears the mark.

mod smtp_sink;
mod support;

use casegate::config::{SmtpConfig, TlsMode, TransportKind};
use smtp_sink::SmtpSink;

const WORLD: &str = r#"
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
name = "Alice Acme"
org = "Acme"
[[contact]]
email = "aaron@acme.example"
name = "Aaron Acme"
org = "Acme"
[[case]]
id = "VU#515151"
title = "Bouncing case"
participants = [ { org = "Acme", role = "vendor" } ]
"#;

/// Cora writes into the case discussion from the command line; the outbox ids queued for
/// each recipient.
async fn post(g: &support::Gateway, text: &str) -> Vec<(i64, String)> {
    let thread = g.store.thread_by_name("VU#515151").await.unwrap();
    let r = casegate::actions::post(&g.store, &g.pipeline.composer, thread, "cora@cert.example", text, &[], false).await.unwrap();
    r.outbox.into_iter().map(|(id, rcpt, _)| (id, rcpt)).collect()
}

/// A Postfix DSN for the message sent as outbox item `id` (to its VERP address).
async fn dsn(g: &support::Gateway, id: i64, n: usize) -> Vec<u8> {
    let verp: String = sqlx::query_scalar("SELECT envelope_from FROM outbox WHERE id = $1").bind(id).fetch_one(&g.store.pool).await.unwrap();
    assert!(verp.starts_with("cases+b-"), "item {id} was not rendered: {verp:?}");
    format!(
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.acme.example (Mail Delivery System)\r\nTo: {verp}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nMessage-Id: <dsn-{n}@mx.acme.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\n<alice@acme.example>: 550 5.1.1 User unknown\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.example\r\n\r\n\
         Final-Recipient: rfc822; alice@acme.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n"
    )
    .into_bytes()
}

async fn bouncing(g: &support::Gateway, email: &str) -> bool {
    let flag: i64 = sqlx::query_scalar("SELECT CAST(bouncing AS INTEGER) FROM contacts WHERE email = $1").bind(email).fetch_one(&g.store.pool).await.unwrap();
    flag != 0
}

async fn history(g: &support::Gateway, kind: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT detail FROM history WHERE kind = $1 ORDER BY id").bind(kind).fetch_all(&g.store.pool).await.unwrap()
}

fn to_alice(queued: &[(i64, String)]) -> Option<i64> {
    queued.iter().find(|(_, r)| r == "alice@acme.example").map(|(id, _)| *id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_bounces_in_a_row_make_a_contact_bouncing_and_later_mail_skips_it() {
    let world: support::WorldDesc = toml::from_str(WORLD).unwrap();
    let g = support::gateway(&world).await;
    let mut waiting = None;
    for n in 0..3 {
        let queued = post(&g, &format!("Update {n}.")).await;
        let id = to_alice(&queued).expect("alice is sent the post");
        support::send(&g).await;
        assert!(!bouncing(&g, "alice@acme.example").await, "bouncing after {n} bounces");
        if n == 2 {
            // Queued before she is marked, rendered after.
            waiting = to_alice(&post(&g, "Queued before the third bounce.").await);
        }
        let o = g.pipeline.ingest(&dsn(&g, id, n).await, "test", "dsn").await.unwrap();
        assert_eq!(o.decision, "bounce", "{o:?}");
    }
    assert!(bouncing(&g, "alice@acme.example").await, "three bounces in a row did not mark alice bouncing");
    assert!(!bouncing(&g, "aaron@acme.example").await);
    let queued = post(&g, "Update 3.").await;
    assert_eq!(to_alice(&queued), None, "a post still queued a message to the bouncing alice@acme.example");
    assert!(queued.iter().any(|(_, r)| r == "aaron@acme.example"), "her colleague still gets it");
    let skipped = history(&g, "delivery-skipped").await;
    assert!(skipped.iter().any(|d| d.contains("alice@acme.example") && d.contains("bouncing")), "no history event for the skipped contact: {skipped:?}");
    support::send(&g).await;
    let (state, reply): (String, String) = sqlx::query_as("SELECT state, last_reply FROM outbox WHERE id = $1").bind(waiting.unwrap()).fetch_one(&g.store.pool).await.unwrap();
    assert_eq!(state, "failed", "a message queued before the mark is not sent");
    assert!(reply.contains("bouncing"), "{reply}");
    let dropped = history(&g, "send-dropped").await;
    assert!(dropped.iter().any(|d| d.contains("bouncing")), "{dropped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinators_are_told_once_and_a_coordinator_clears_the_mark() {
    let world: support::WorldDesc = toml::from_str(WORLD).unwrap();
    let g = support::gateway(&world).await;
    for n in 0..3 {
        let id = to_alice(&post(&g, &format!("Update {n}.")).await).unwrap();
        support::send(&g).await;
        g.pipeline.ingest(&dsn(&g, id, n).await, "test", "dsn").await.unwrap();
    }
    assert!(bouncing(&g, "alice@acme.example").await);
    let now = casegate::store::now_ms();
    let run = casegate::schedule::run_due(&g.store, &g.pipeline.composer, &g.cfg, now).await.unwrap();
    assert_eq!(run.bouncing_notices, 1, "{run:?}");
    let again = casegate::schedule::run_due(&g.store, &g.pipeline.composer, &g.cfg, now + 60_000).await.unwrap();
    assert_eq!(again.bouncing_notices, 0, "told once");
    support::send(&g).await;
    let notices: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT rcpt, bytes FROM outbox WHERE kind = 'bouncing-notice'").fetch_all(&g.store.pool).await.unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].0, "cora@cert.example", "coordinators only");
    let m = mail_parser::MessageParser::default().parse(&notices[0].1).unwrap();
    assert_eq!(m.subject(), Some("[Coordinators] Contacts bouncing"));
    assert!(m.body_text(0).unwrap().contains("alice@acme.example"));
    g.store.clear_bouncing("alice@acme.example", casegate::store::now_ms()).await.unwrap();
    assert!(!bouncing(&g, "alice@acme.example").await);
    assert!(to_alice(&post(&g, "Back.").await).is_some(), "mail goes to her again");
}

fn smtp(g: &support::Gateway, sink: &SmtpSink) -> casegate::config::OutboundConfig {
    let mut out = g.cfg.outbound.clone();
    out.transport = TransportKind::Smtp;
    out.smtp = Some(SmtpConfig { host: "127.0.0.1".into(), port: sink.port, tls: TlsMode::None, username: None, password_file: None, password: None, timeout_secs: 10, pool_size: 2 });
    out
}

/// Acme with alice alone: every post by the coordinator goes to her only.
const LONE_WORLD: &str = r#"
[gateway]
domain = "cert.example"
intake = ["security@cert.example"]
[[org]]
name = "CERT Team"
kind = "coordinator"
[[org]]
name = "Acme"
kind = "vendor"
[[contact]]
email = "cora@cert.example"
org = "CERT Team"
[[contact]]
email = "alice@acme.example"
org = "Acme"
[[case]]
id = "VU#515151"
title = "Bouncing case"
participants = [ { org = "Acme", role = "vendor" } ]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_permanent_smtp_failures_make_a_contact_bouncing() {
    let world: support::WorldDesc = toml::from_str(LONE_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let sink = SmtpSink::start(&["-B", "550 5.1.1 <alice@acme.example>: Recipient address rejected: User unknown", "-f", "RCPT"]);
    let cfg = smtp(&g, &sink);
    let transport = casegate::outbound::Transport::from_config(&cfg).unwrap();
    for n in 0..3 {
        assert!(to_alice(&post(&g, &format!("Update {n}.")).await).is_some());
        let s = casegate::outbound::send_due(&g.store, &g.pipeline.composer, &transport, &cfg).await.unwrap();
        assert_eq!(s.failed, 1, "{s:?}");
    }
    assert!(bouncing(&g, "alice@acme.example").await, "three permanent SMTP failures did not mark alice bouncing");
    assert_eq!(to_alice(&post(&g, "Update 3.").await), None, "a post still queued a message to the bouncing alice@acme.example");
}
