//! Pipeline behaviour beyond routing: oversize mail is held with its bytes kept, one
//! acknowledgement per sender per interval, bounces to a VERP address fail their item.

mod support;

const WORLD: &str = r#"
[gateway]
domain = "cert.example"
intake = ["security@cert.example"]
trusted_authserv_ids = ["mx.cert.example"]
[[org]]
name = "CERT Team"
kind = "coordinator"
domains = ["cert.example"]
[[contact]]
email = "cora@cert.example"
org = "CERT Team"
"#;

fn report(i: u32, from: &str) -> String {
    let domain = from.rsplit_once('@').map(|(_, d)| d.trim_end_matches('>')).unwrap_or_default();
    format!(
        "From: {from}\r\nTo: security@cert.example\r\nSubject: report {i}\r\nMessage-ID: <p{i}@example.net>\r\n\
         Authentication-Results: mx.cert.example; dmarc=pass header.from={domain}\r\n\r\nbody {i}\r\n"
    )
}

/// A report whose From nobody vouches for (no trusted DMARC pass, no signature).
fn forged_report(i: u32, from: &str) -> String {
    format!("From: {from}\r\nTo: security@cert.example\r\nSubject: report {i}\r\nMessage-ID: <f{i}@example.net>\r\n\r\nbody {i}\r\n")
}

async fn acks(g: &support::Gateway) -> Vec<(String, Vec<u8>)> {
    support::send(g).await;
    sqlx::query_as("SELECT rcpt, bytes FROM outbox WHERE kind = 'acknowledgement' ORDER BY id").fetch_all(&g.store.pool).await.unwrap()
}

/// Backscatter (RFC 3834 §2): a forged From on a new report must not make the gateway mail
/// a third party. Reports are opened, but only authenticated senders outside the gateway's
/// own domain are acknowledged, to the bare address (no display name text), within a
/// global limit.
#[tokio::test]
async fn acknowledgements_do_not_become_backscatter() {
    let world: support::WorldDesc = toml::from_str(WORLD).unwrap();
    let mut g = support::gateway(&world).await;
    g.cfg.intake.ack_max_per_hour = 3;
    let p = casegate::pipeline::Pipeline::new(g.store.clone(), &g.cfg);
    let forged = forged_report(1, "\"Win a prize at https://spam.example\" <victim@elsewhere.example>");
    assert_eq!(p.ingest(forged.as_bytes(), "t", "1").await.unwrap().decision, "open-report");
    assert_eq!(p.ingest(report(2, "security@cert.example").as_bytes(), "t", "2").await.unwrap().decision, "open-report");
    assert_eq!(p.ingest(report(3, "someone@mx.cert.example").as_bytes(), "t", "3").await.unwrap().decision, "open-report");
    assert!(acks(&g).await.is_empty(), "an unauthenticated or own-domain sender was acknowledged");
    let named = report(4, "\"Buy now at spam.example\" <r4@example.net>");
    assert_eq!(p.ingest(named.as_bytes(), "t", "4").await.unwrap().decision, "open-report");
    let sent = acks(&g).await;
    assert_eq!(sent.len(), 1);
    let text = String::from_utf8_lossy(&sent[0].1).into_owned();
    let to = text.lines().find(|l| l.starts_with("To:")).unwrap_or_default().to_string();
    assert_eq!(to.trim(), "To: <r4@example.net>", "the acknowledgement goes to the bare address");
    assert!(!text.contains("spam.example") && !text.contains("Buy now"), "{text}");
    for i in 5..10 {
        p.ingest(report(i, &format!("r{i}@example.net")).as_bytes(), "t", &i.to_string()).await.unwrap();
    }
    assert_eq!(acks(&g).await.len(), 3, "the global limit (3 per hour here) holds whatever the sender");
}

#[tokio::test]
async fn oversize_mail_is_quarantined_and_kept() {
    let world: support::WorldDesc = toml::from_str(WORLD).unwrap();
    let mut g = support::gateway(&world).await;
    g.cfg.inbound.max_message_bytes = 200;
    let p = casegate::pipeline::Pipeline::new(g.store.clone(), &g.cfg);
    let big = format!("{}{}\r\n", report(1, "r@example.net"), "x".repeat(500));
    let o = p.ingest(big.as_bytes(), "test", "big").await.unwrap();
    assert_eq!((o.decision.as_str(), o.reason.as_str()), ("quarantine", "oversize"));
    let q = g.store.quarantine_item(o.quarantine_id.unwrap()).await.unwrap();
    assert!(q.reason_detail.contains("limit 200"), "{}", q.reason_detail);
    assert_eq!(g.store.inbound_raw(q.inbound_id).await.unwrap(), big.as_bytes(), "raw bytes kept");
}

#[tokio::test]
async fn one_acknowledgement_per_sender_per_interval() {
    let world: support::WorldDesc = toml::from_str(WORLD).unwrap();
    let g = support::gateway(&world).await;
    let a = g.pipeline.ingest(report(1, "r@example.net").as_bytes(), "t", "1").await.unwrap();
    let b = g.pipeline.ingest(report(2, "r@example.net").as_bytes(), "t", "2").await.unwrap();
    let c = g.pipeline.ingest(report(3, "other@example.net").as_bytes(), "t", "3").await.unwrap();
    assert!(a.recipients.contains(&"r@example.net".to_string()));
    assert!(!b.recipients.contains(&"r@example.net".to_string()), "second report within the hour: no second acknowledgement");
    assert_ne!(a.report, b.report, "both reports are opened");
    assert!(c.recipients.contains(&"other@example.net".to_string()));
    let acks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement'").fetch_one(&g.store.pool).await.unwrap();
    assert_eq!(acks, 2);
    support::send(&g).await;
    let ack: Vec<u8> = sqlx::query_scalar("SELECT bytes FROM outbox WHERE kind = 'acknowledgement' ORDER BY id LIMIT 1").fetch_one(&g.store.pool).await.unwrap();
    let text = String::from_utf8_lossy(&ack);
    assert!(text.contains("Auto-Submitted: auto-replied"));
    assert!(!text.contains("body 1"), "the acknowledgement never quotes the report");
}

#[tokio::test]
async fn a_bounce_to_a_verp_address_fails_that_item() {
    let world: support::WorldDesc = toml::from_str(WORLD).unwrap();
    let g = support::gateway(&world).await;
    g.pipeline.ingest(report(1, "r@example.net").as_bytes(), "t", "1").await.unwrap();
    support::send(&g).await;
    let (id, verp): (i64, String) = sqlx::query_as("SELECT id, envelope_from FROM outbox WHERE kind = 'acknowledgement'")
        .fetch_one(&g.store.pool)
        .await
        .unwrap();
    assert!(verp.starts_with("cases+b-"), "{verp}");
    let dsn = format!(
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nTo: {verp}\r\nReturn-Path: <>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example.net>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\n<r@example.net>: host said: 550 5.1.1 no such user\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; r@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n--b--\r\n"
    );
    let o = g.pipeline.ingest(dsn.as_bytes(), "t", "dsn").await.unwrap();
    assert_eq!((o.decision.as_str(), o.reason.as_str()), ("bounce", "delivery-status"));
    let (state, reply): (String, Option<String>) = sqlx::query_as("SELECT state, last_reply FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(&g.store.pool)
        .await
        .unwrap();
    assert_eq!(state, "failed");
    assert!(reply.unwrap_or_default().contains("no such user"));
    let forged = dsn.replace(&verp, &verp.replace("cases+b-", "cases+b-x"));
    let forged = forged.replace("dsn1@", "dsn2@");
    let o = g.pipeline.ingest(forged.as_bytes(), "t", "dsn2").await.unwrap();
    assert_eq!(o.decision, "bounce", "recorded, but binds no item");
}
