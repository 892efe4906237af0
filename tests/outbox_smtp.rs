//! The outbox worker against a real SMTP server (Postfix's `smtp-sink` on a loopback port):
//! delivery of the exact bytes over reused connections, transient failures retried with
//! backoff, permanent failures recorded at once, giving up, and no double sends.

mod smtp_sink;

use casegate::config::{OutboundConfig, RetryConfig, SmtpConfig, TlsMode, TransportKind};
use casegate::outbound::{send_due, SendSummary, Transport};
use casegate::store::{now_ms, Store};
use smtp_sink::{as_dumped, free_port, CountingRelay, SmtpSink};

const DAY_MS: i64 = 24 * 3600 * 1000;

fn cfg(port: u16, concurrency: usize) -> OutboundConfig {
    OutboundConfig {
        transport: TransportKind::Smtp,
        max_attachment_bytes: 10 << 20,
        file_dir: None,
        smtp: Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            username: None,
            password_file: None,
            password: None,
            timeout_secs: 10,
            pool_size: 4,
        }),
        sendmail_path: "/usr/sbin/sendmail".into(),
        retry: RetryConfig {
            initial_secs: 60,
            max_secs: 21_600,
            give_up_secs: 432_000,
        },
        concurrency,
    }
}

/// The composer of a gateway at gw.example; the items here carry their bytes already.
fn composer() -> std::sync::Arc<casegate::compose::Composer> {
    let book = casegate::mail::AddressBook { domain: "gw.example".into(), local_part: "cases".into(), intake: vec![], case_prefix: "VU#".into() };
    std::sync::Arc::new(casegate::compose::Composer {
        gateway: casegate::render::Gateway { name: "GW".into(), book },
        secret: vec![7; 32],
        max_attachment_bytes: 10 << 20,
        pgp: std::sync::Arc::new(casegate::pgp::PgpState::new(None)),
    })
}

async fn store(tmp: &tempfile::TempDir) -> Store {
    let store = Store::open(&format!("sqlite://{}/t.db", tmp.path().display()))
        .await
        .unwrap();
    sqlx::query("INSERT INTO cases (id, public_id, title, created_at) VALUES (5, 'VU#5', 't', 0)")
        .execute(&store.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO threads (id, kind, case_id, created_at) VALUES (9, 'discussion', 5, 0)",
    )
    .execute(&store.pool)
    .await
    .unwrap();
    store
}

/// One queued message.
struct Queued {
    id: i64,
    rcpt: String,
    message_id: String,
    bytes: Vec<u8>,
}

/// The rendered bytes of message `i`: 8-bit text, and a line starting with a dot that the
/// SMTP client must dot-stuff (RFC 5321 §4.5.2) and the server un-stuff.
fn rendered(i: usize, message_id: &str, rcpt: &str) -> Vec<u8> {
    format!(
        "From: \"Ann via casegate\" <cases@gw.example>\r\nTo: {rcpt}\r\n\
         Subject: [VU#5] note {i}\r\nMessage-ID: {message_id}\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\nGrüße {i}\r\n.\r\n..two dots\r\nend\r\n"
    )
    .into_bytes()
}

/// Queue `n` items due now, created `age_ms` ago.
async fn queue(store: &Store, n: usize, age_ms: i64) -> Vec<Queued> {
    let now = now_ms();
    let mut out = Vec::new();
    for i in 0..n {
        let rcpt = format!("vendor{i}@x.example");
        let message_id = format!("<n{i}.{}@gw.example>", now);
        let bytes = rendered(i, &message_id, &rcpt);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (kind, post_id, thread_id, rcpt, envelope_from, message_id, bytes,
                                 next_attempt_at, created_at, updated_at)
             VALUES ('notification', 1, 9, $1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(&rcpt)
        .bind(format!("bounce+{i}@gw.example"))
        .bind(&message_id)
        .bind(&bytes)
        .bind(now)
        .bind(now - age_ms)
        .fetch_one(&store.pool)
        .await
        .unwrap();
        out.push(Queued {
            id,
            rcpt,
            message_id,
            bytes,
        });
    }
    out
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    last_reply: Option<String>,
}

async fn row(store: &Store, id: i64) -> Row {
    sqlx::query_as("SELECT state, attempts, next_attempt_at, last_reply FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

/// (kind, case_id, detail) of the item's history rows.
async fn history(store: &Store, id: i64) -> Vec<(String, Option<i64>, String)> {
    sqlx::query_as("SELECT kind, case_id, detail FROM history WHERE outbox_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(&store.pool)
        .await
        .unwrap()
}

fn summary(sent: u64, retried: u64, failed: u64, dead: u64) -> SendSummary {
    SendSummary {
        sent,
        retried,
        failed,
        dead,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_exact_bytes_over_reused_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp).await;
    let sink = SmtpSink::start(&[]);
    let relay = CountingRelay::start(sink.port).await;
    let cfg = cfg(relay.port, 4);
    let transport = Transport::from_config(&cfg).unwrap();
    let items = queue(&store, 20, 0).await;

    assert_eq!(
        send_due(&store, &composer(), &transport, &cfg).await.unwrap(),
        summary(20, 0, 0, 0)
    );

    let got = sink.wait_for(20);
    assert_eq!(got.len(), 20);
    for (i, q) in items.iter().enumerate() {
        let m = got
            .iter()
            .find(|m| m.rcpt_to == vec![format!("<{}>", q.rcpt)])
            .unwrap();
        // RFC 6152: 8-bit content is announced on MAIL FROM.
        assert_eq!(
            m.mail_from,
            format!("<bounce+{i}@gw.example> BODY=8BITMIME")
        );
        assert_eq!(
            m.data,
            as_dumped(&q.bytes),
            "bytes of item {i} changed in transit"
        );
        let needle = format!("Message-ID: {}", q.message_id);
        assert!(String::from_utf8_lossy(&m.data).contains(&needle));
        let r = row(&store, q.id).await;
        assert_eq!((r.state.as_str(), r.attempts), ("sent", 1));
        assert!(
            r.last_reply.as_deref().unwrap_or("").starts_with("250 "),
            "{r:?}"
        );
        assert_eq!(history(&store, q.id).await.len(), 1);
    }
    // Four senders at a time over pooled connections: far fewer connections than messages.
    let conns = relay.count();
    assert!(
        (1..=8).contains(&conns),
        "{conns} connections for 20 messages"
    );
    assert_eq!(store.outbox_depth().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_reply_retries_later_then_delivers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp).await;
    let items = queue(&store, 3, 0).await;
    let busy = SmtpSink::start(&["-r", "RCPT"]);
    let busy_cfg = cfg(busy.port, 8);
    let before = now_ms();

    let s = send_due(&store, &composer(),
        &Transport::from_config(&busy_cfg).unwrap(),
        &busy_cfg,
    )
    .await;
    assert_eq!(s.unwrap(), summary(0, 3, 0, 0));
    for q in &items {
        let r = row(&store, q.id).await;
        assert_eq!((r.state.as_str(), r.attempts), ("pending", 1));
        // 1 min plus up to 25 % jitter.
        assert!(r.next_attempt_at >= before + 60_000, "{r:?}");
        assert!(r.next_attempt_at <= now_ms() + 75_000, "{r:?}");
        assert!(
            r.last_reply.as_deref().unwrap_or("").starts_with("450 "),
            "{r:?}"
        );
        let h = history(&store, q.id).await;
        assert_eq!(
            (h.len(), h[0].0.as_str(), h[0].1),
            (1, "send-retry", Some(5))
        );
    }
    assert!(busy.messages().is_empty());

    let good = SmtpSink::start(&[]);
    let good_cfg = cfg(good.port, 8);
    let transport = Transport::from_config(&good_cfg).unwrap();
    // Not due yet: nothing is sent.
    assert_eq!(
        send_due(&store, &composer(), &transport, &good_cfg).await.unwrap(),
        summary(0, 0, 0, 0)
    );
    sqlx::query("UPDATE outbox SET next_attempt_at = next_attempt_at - 120000")
        .execute(&store.pool)
        .await
        .unwrap();
    assert_eq!(
        send_due(&store, &composer(), &transport, &good_cfg).await.unwrap(),
        summary(3, 0, 0, 0)
    );
    assert_eq!(good.wait_for(3).len(), 3);
    for q in &items {
        let r = row(&store, q.id).await;
        assert_eq!((r.state.as_str(), r.attempts), ("sent", 2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp).await;
    let items = queue(&store, 2, 0).await;
    let cfg = cfg(free_port(), 8);

    let s = send_due(&store, &composer(), &Transport::from_config(&cfg).unwrap(), &cfg)
        .await
        .unwrap();
    assert_eq!(s, summary(0, 2, 0, 0));
    let r = row(&store, items[0].id).await;
    assert_eq!((r.state.as_str(), r.attempts), ("pending", 1));
    assert!(r.next_attempt_at > now_ms(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_reply_fails_at_once_with_history() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp).await;
    let items = queue(&store, 2, 0).await;
    let reply = "550 5.1.1 <vendor0@x.example>: Recipient address rejected: User unknown";
    let sink = SmtpSink::start(&["-B", reply, "-f", "RCPT"]);
    let cfg = cfg(sink.port, 8);

    let s = send_due(&store, &composer(), &Transport::from_config(&cfg).unwrap(), &cfg)
        .await
        .unwrap();
    assert_eq!(s, summary(0, 0, 2, 0));
    let r = row(&store, items[0].id).await;
    assert_eq!((r.state.as_str(), r.attempts), ("failed", 1));
    assert!(
        r.last_reply.as_deref().unwrap_or("").starts_with("550 "),
        "{r:?}"
    );
    assert!(
        r.last_reply
            .as_deref()
            .unwrap_or("")
            .contains("User unknown"),
        "{r:?}"
    );
    let h = history(&store, items[0].id).await;
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].0.as_str(), h[0].1), ("send-failed", Some(5)));
    assert_eq!(Some(h[0].2.as_str()), r.last_reply.as_deref());
    assert!(sink.messages().is_empty());
    // Failed is final: a later pass leaves it alone.
    let again = send_due(&store, &composer(), &Transport::from_config(&cfg).unwrap(), &cfg)
        .await
        .unwrap();
    assert_eq!(again, summary(0, 0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failure_after_five_days_is_dead() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp).await;
    let old = queue(&store, 1, 6 * DAY_MS).await;
    let young = queue(&store, 1, DAY_MS).await;
    let sink = SmtpSink::start(&["-r", "MAIL"]);
    let cfg = cfg(sink.port, 8);

    let s = send_due(&store, &composer(), &Transport::from_config(&cfg).unwrap(), &cfg)
        .await
        .unwrap();
    assert_eq!(s, summary(0, 1, 0, 1));
    assert_eq!(row(&store, old[0].id).await.state, "dead");
    assert_eq!(row(&store, young[0].id).await.state, "pending");
    let h = history(&store, old[0].id).await;
    assert_eq!((h[0].0.as_str(), h[0].1), ("send-dead", Some(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_run_sends_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp).await;
    let items = queue(&store, 12, 0).await;
    let sink = SmtpSink::start(&[]);
    let cfg = cfg(sink.port, 3);
    let transport = Transport::from_config(&cfg).unwrap();

    assert_eq!(
        send_due(&store, &composer(), &transport, &cfg).await.unwrap(),
        summary(12, 0, 0, 0)
    );
    assert_eq!(
        send_due(&store, &composer(), &transport, &cfg).await.unwrap(),
        summary(0, 0, 0, 0)
    );

    sink.wait_for(12);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let got = sink.messages();
    assert_eq!(got.len(), 12);
    for q in &items {
        let needle = format!("Message-ID: {}\n", q.message_id);
        let copies = got
            .iter()
            .filter(|m| String::from_utf8_lossy(&m.data).contains(&needle));
        assert_eq!(copies.count(), 1, "{} delivered once", q.message_id);
    }
}
