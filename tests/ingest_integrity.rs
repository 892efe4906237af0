//! Ingest integrity (SPEC §3): the raw bytes are stored before anything can fail, a poison
//! mail is quarantined after a bounded number of attempts instead of stopping ingest, the
//! same mail offered concurrently is posted once, and `route explain` writes nothing.
//!
//! The poison mails use the debug-build fault hook (`X-Casegate-Fault: panic|abort`).

mod support;

use casegate::store::Store;
use std::process::{Command, Stdio};

async fn count(store: &Store, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&store.pool).await.unwrap()
}

fn poison(kind: &str, i: usize) -> Vec<u8> {
    format!(
        "From: Alice <alice@acme.example>\r\nTo: cases+vu424242@cert.example\r\nSubject: Re: [VU#424242] poison {i}\r\n\
         Authentication-Results: mx.cert.example; dmarc=pass header.from=acme.example\r\n\
         X-Casegate-Fault: {kind}\r\nMessage-ID: <poison-{i}@acme.example>\r\n\r\nThis mail breaks the parser.\r\n"
    )
    .into_bytes()
}

/// A panic while parsing leaves the raw bytes stored (SPEC §3 stage 1 comes first), and
/// the mail ends in quarantine as `processing-error` with the panic message.
#[tokio::test(flavor = "multi_thread")]
async fn raw_bytes_are_stored_before_a_parse_that_panics() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let raw = poison("panic", 1);
    let p = g.pipeline.clone();
    let r = tokio::spawn(async move { p.ingest(&raw, "test", "poison-1").await }).await;
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM inbound_messages").await, 1, "the raw bytes were not stored before the parse");
    let o = r.expect("the panic escaped the pipeline").expect("ingest");
    assert_eq!((o.decision.as_str(), o.reason.as_str()), ("quarantine", "processing-error"));
    assert!(o.reason_detail.contains("injected fault"), "{}", o.reason_detail);
    let stored: Vec<u8> = sqlx::query_scalar("SELECT raw FROM inbound_messages").fetch_one(&g.store.pool).await.unwrap();
    assert_eq!(stored, poison("panic", 1));
}

/// One poison mail does not stop the mails after it.
#[tokio::test(flavor = "multi_thread")]
async fn a_poison_mail_is_held_and_the_next_mails_are_posted() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let mails = [support::reply(1), poison("panic", 2), support::reply(3)];
    let mut decisions = Vec::new();
    for (i, m) in mails.iter().enumerate() {
        let p = g.pipeline.clone();
        let m = m.clone();
        let r = tokio::spawn(async move { p.ingest(&m, "test", &i.to_string()).await }).await;
        let o = r.expect("the panic escaped the pipeline").expect("ingest");
        decisions.push(format!("{}/{}", o.decision, o.reason));
    }
    assert_eq!(decisions, ["post/case-address", "quarantine/processing-error", "post/case-address"]);
    let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM inbound_messages WHERE message_id = 'poison-2@acme.example'")
        .fetch_one(&g.store.pool)
        .await
        .unwrap();
    assert!(attempts >= 1, "attempts are counted per stored mail");
}

fn deliver(config: &std::path::Path, file: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(support::binary())
        .arg("--config")
        .arg(config)
        .arg("deliver")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("spawn casegate");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A mail that kills the process (what a stack overflow or an out-of-memory kill does) is
/// retried by the MTA; after the attempt limit it is quarantined without being parsed
/// again, and `deliver` exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn a_mail_that_kills_the_process_is_quarantined_after_its_attempts() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let file = g.dir.path().join("abort.eml");
    std::fs::write(&file, poison("abort", 1)).unwrap();
    let mut crashes = 0;
    let last = loop {
        let (code, stdout) = deliver(&g.cfg.source, &file);
        if code.is_some() {
            break (code, stdout);
        }
        crashes += 1;
        assert!(crashes <= 5, "still crashing after {crashes} deliveries: the mail is never held");
    };
    assert_eq!(last.0, Some(0), "{}", last.1);
    assert!(last.1.contains("quarantine") && last.1.contains("processing-error"), "{}", last.1);
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM inbound_messages").await, 1);
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM quarantine WHERE reason = 'processing-error'").await, 1);
}

/// An attempt abandoned half-way (its future dropped: a timeout, a shutdown) does not
/// block the mail: the next offer takes it over at once instead of waiting for the hold
/// to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_attempt_does_not_hold_the_mail() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let raw = poison("slow", 5);
    let cut = tokio::time::timeout(std::time::Duration::from_millis(300), g.pipeline.ingest(&raw, "test", "first")).await;
    assert!(cut.is_err(), "the first attempt was not cut short");
    let start = std::time::Instant::now();
    let o = g.pipeline.ingest(&raw, "test", "second").await.expect("the second offer is processed");
    assert_eq!(o.decision, "post");
    assert!(start.elapsed() < std::time::Duration::from_secs(20), "waited for the abandoned attempt's hold");
}

/// The same bytes offered ten times at once (ten MTA deliveries, an IMAP re-fetch racing a
/// Maildir scan) make one post and one fan-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ingests_of_the_same_bytes_post_once() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let raw = support::reply(7);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (p, raw) = (g.pipeline.clone(), raw.clone());
        set.spawn(async move { p.ingest(&raw, "test", &format!("copy-{i}")).await.map(|o| o.decision) });
    }
    let mut decisions = Vec::new();
    while let Some(r) = set.join_next().await {
        decisions.push(r.unwrap().unwrap());
    }
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM posts").await, 1, "decisions: {decisions:?}");
    let queued = count(&g.store, "SELECT COUNT(*) FROM outbox").await;
    assert_eq!(queued, 2, "one fan-out (coordinator and colleague): {decisions:?}");
}

/// An MTA delivering one mail per recipient makes copies that differ only in Delivered-To
/// (here one copy to a reply key, one to the case address): one post, one fan-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_differing_in_delivered_to_post_once() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let base = String::from_utf8(support::reply(8)).unwrap();
    for round in 0..5 {
        let base = base.replace("reply-8@", &format!("reply-8-{round}@"));
        let a = format!("Delivered-To: cases+vu424242@cert.example\r\n{base}");
        let b = format!("Delivered-To: security@cert.example\r\n{base}");
        let (pa, pb) = (g.pipeline.clone(), g.pipeline.clone());
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { pa.ingest(a.as_bytes(), "test", "a").await.map(|o| o.decision) }),
            tokio::spawn(async move { pb.ingest(b.as_bytes(), "test", "b").await.map(|o| o.decision) })
        );
        let mut got = vec![ra.unwrap().unwrap(), rb.unwrap().unwrap()];
        got.sort();
        assert_eq!(got, ["ignore", "post"], "round {round}");
    }
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM posts").await, 5);
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM outbox").await, 10);
}

/// `route explain` is a dry run: it writes nothing, not even key-expiry warnings; and
/// ingesting mail does not run the periodic key-expiry scan (that belongs to `serve`).
#[tokio::test(flavor = "multi_thread")]
async fn explain_and_ingest_write_no_key_expiry_warnings() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    g.store.import_keys("alice@acme.example", &[support::expiring_cert("alice@acme.example")]).await.unwrap();
    let history = count(&g.store, "SELECT COUNT(*) FROM history").await;
    g.pipeline.explain(&support::reply(1)).await.unwrap();
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM history").await, history, "explain wrote history rows");
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM certs WHERE expiry_warned_at IS NOT NULL").await, 0, "explain warned");
    g.pipeline.ingest(&support::reply(2), "test", "2").await.unwrap();
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM certs WHERE expiry_warned_at IS NOT NULL").await, 0, "ingest ran the expiry scan");
    let warned = count(&g.store, "SELECT COUNT(*) FROM history WHERE kind = 'key-expiring'").await;
    assert_eq!(warned, 0);
}

/// Two instances store two copies of one mail (same Message-ID, other bytes) and process
/// them at once. On PostgreSQL both transactions can pass the duplicate check; the unique
/// index `inbound_one_effect_per_message_id` then refuses the second effect. That refusal
/// must ask for the mail again (a transient error, nothing counted against the mail), and
/// offered again it is a duplicate: never a second post, never quarantined. On SQLite the
/// write lock orders the two transactions, so the second sees the first and is a duplicate
/// at once.
#[tokio::test(flavor = "multi_thread")]
async fn an_effect_refused_by_the_one_effect_index_is_offered_again_then_a_duplicate() {
    use casegate::store::Engine;
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let raw = support::reply(7);
    let mut other = b"Received: from mx2.cert.example\r\n".to_vec();
    other.extend_from_slice(&raw);
    // The other instance's transaction: its copy processed and posted, not yet committed.
    let mut theirs = g.store.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO inbound_messages (raw, size, sha256, message_id, source, source_ref, received_at, state, action, processed_at)
         VALUES ($1, $2, $3, 'reply-7@acme.example', 'imap', 'other-instance', 0, 'processed', 'post', 0)",
    )
    .bind(&other)
    .bind(other.len() as i64)
    .bind(casegate::store::inbound::sha256_hex(&other))
    .execute(&mut *theirs)
    .await
    .unwrap();
    let p = g.pipeline.clone();
    let mine = tokio::spawn(async move { p.ingest(&support::reply(7), "maildir", "this-instance").await });
    wait_until_blocked(&g.store).await;
    theirs.commit().await.unwrap();
    let first = mine.await.unwrap();
    match g.store.engine {
        Engine::Postgres => {
            let e = first.expect_err("the index refused the second effect: the mail must be offered again");
            assert!(e.is_transient(), "a refusal by the one-effect index must be transient (offer the mail again): {e}");
            let again = g.pipeline.ingest(&raw, "maildir", "this-instance").await.expect("offered again");
            assert_eq!((again.decision.as_str(), again.reason.as_str()), ("ignore", "duplicate"), "{again:?}");
        }
        Engine::Sqlite => {
            let o = first.expect("ordered by the write lock");
            assert_eq!((o.decision.as_str(), o.reason.as_str()), ("ignore", "duplicate"), "{o:?}");
        }
    }
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM posts WHERE inbound_id IS NOT NULL").await, 0, "posted by neither copy here");
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM quarantine").await, 0, "never quarantined");
    assert_eq!(count(&g.store, "SELECT COUNT(*) FROM inbound_messages WHERE state = 'processed'").await, 2);
}

/// Until the ingest in flight waits for the other transaction: on PostgreSQL a lock wait
/// shows in `pg_locks`; SQLite gives no view of a busy wait, so a short pause lets the
/// ingest reach its `BEGIN IMMEDIATE`.
async fn wait_until_blocked(store: &Store) {
    if store.engine == casegate::store::Engine::Sqlite {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        return;
    }
    for _ in 0..400 {
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_locks WHERE NOT granted").fetch_one(&store.pool).await.unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the ingest never waited for the other instance's transaction");
}
