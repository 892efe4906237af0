//! Periodic work of `serve` (SPEC §5.4): key-expiry warnings are given by the running
//! daemon, not by the ingest of mail.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn serve_warns_of_keys_about_to_expire() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    g.store.import_keys("alice@acme.example", &[support::expiring_cert("alice@acme.example")]).await.unwrap();
    let mut child = Command::new(support::binary())
        .arg("--config")
        .arg(&g.cfg.source)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let warned = loop {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM history WHERE kind = 'key-expiring'").fetch_one(&g.store.pool).await.unwrap();
        if n > 0 || start.elapsed() > Duration::from_secs(30) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
    assert_eq!(warned, 1, "serve gave no expiry warning within 30 s");
    let marked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM certs WHERE expiry_warned_at IS NOT NULL").fetch_one(&g.store.pool).await.unwrap();
    assert_eq!(marked, 1);
}

/// SPEC §7.2: an outbox item given up is told to the coordinators at once, once; nobody
/// else gets the note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_given_up_are_told_to_the_coordinators_once() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let o = g.pipeline.ingest(&support::reply(1), "test", "r1").await.unwrap();
    assert_eq!(o.decision, "post", "{o:?}");
    let now = casegate::store::now_ms();
    let claimed = g.store.claim_due_outbox(now, 10, 60_000, "test-holder").await.unwrap();
    let to_aaron = claimed.iter().find(|i| i.rcpt == "aaron@acme.example").expect("aaron's notification");
    g.store.mark_outbox_dead(to_aaron.id, "451 4.4.1 connection timed out", now).await.unwrap();
    let run = casegate::schedule::run_due(&g.store, &g.pipeline.composer, &g.cfg, now).await.unwrap();
    assert_eq!(run.dead_notices, 1, "{run:?}");
    let again = casegate::schedule::run_due(&g.store, &g.pipeline.composer, &g.cfg, now + 30_000).await.unwrap();
    assert_eq!(again.dead_notices, 0, "told once");
    let notes: Vec<(String, i64)> = sqlx::query_as("SELECT rcpt, id FROM outbox WHERE kind = 'dead-notice'").fetch_all(&g.store.pool).await.unwrap();
    assert_eq!(notes.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(), ["cora@cert.example"], "coordinators only");
    support::send(&g).await;
    let bytes: Vec<u8> = sqlx::query_scalar("SELECT bytes FROM outbox WHERE id = $1").bind(notes[0].1).fetch_one(&g.store.pool).await.unwrap();
    let m = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(m.subject(), Some("[Coordinators] Outbox items given up"));
    let text = m.body_text(0).unwrap();
    assert!(text.contains(&format!("outbox item {} (notification in VU#424242) to aaron@acme.example: 451 4.4.1 connection timed out", to_aaron.id)), "{text}");
}

/// SPEC §8: the coordinators' daily summary once a day at its hour; a new gateway starts
/// with the day of its first run, and a day missed while it was down is sent late, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_summary_runs_once_a_day_from_the_first_start() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let day = 86_400_000;
    // 2030-01-07 08:00 UTC: after the default hour (07:00).
    let first = 1_894_003_200_000;
    let run = |now| casegate::schedule::run_due(&g.store, &g.pipeline.composer, &g.cfg, now);
    assert_eq!(run(first).await.unwrap().coordinator_summaries, 0, "the day the gateway started");
    assert_eq!(run(first + day - 3 * 3_600_000).await.unwrap().coordinator_summaries, 0, "before the hour the next day");
    assert_eq!(run(first + day).await.unwrap().coordinator_summaries, 1, "Acme has no status: one to cora");
    assert_eq!(run(first + day + 60_000).await.unwrap().coordinator_summaries, 0, "once a day");
    assert_eq!(run(first + 3 * day + 5 * 3_600_000).await.unwrap().coordinator_summaries, 1, "the day missed is sent late");
    let rcpts: Vec<String> = sqlx::query_scalar("SELECT rcpt FROM outbox WHERE kind = 'coordinator-summary'").fetch_all(&g.store.pool).await.unwrap();
    assert_eq!(rcpts, ["cora@cert.example", "cora@cert.example"]);
}
