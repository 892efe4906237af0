//! Exactly once under concurrency (SPEC §3 stage 2, "never post twice"): an MTA may run
//! several `casegate deliver` processes for one mail at the same moment — the same bytes
//! offered twice, or one copy per local recipient that differ only in `Delivered-To` (a
//! mail addressed to a reply key that CCs the case address). Whatever the interleaving,
//! the mail is posted once and fanned out once. Each scenario runs 20 times in a row, 20
//! real processes at a time.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const RUNS: usize = 20;
const PROCESSES: usize = 20;

/// The vendor reply of run `run`, as delivered to `delivered_to`.
fn reply(run: usize, tag: &str, delivered_to: &str, reply_key: &str) -> Vec<u8> {
    format!(
        "Delivered-To: {delivered_to}\r\n\
         From: Alice <alice@acme.example>\r\nTo: {reply_key}\r\nCc: cases+vu424242@cert.example\r\n\
         Subject: Re: [VU#424242] update {tag} {run}\r\n\
         Authentication-Results: mx.cert.example; dmarc=pass header.from=acme.example\r\n\
         Message-ID: <{tag}-{run}@acme.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n\
         Concurrent update {tag} {run}.\r\n"
    )
    .into_bytes()
}

/// Start one `deliver` per file at once; every exit status.
fn deliver_all(config: &Path, files: &[PathBuf]) -> Vec<Option<i32>> {
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new(support::binary())
                .arg("--config")
                .arg(config)
                .arg("deliver")
                .arg(f)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn casegate deliver")
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait for deliver");
            if out.status.code() != Some(0) {
                eprintln!("deliver: {}", String::from_utf8_lossy(&out.stderr));
            }
            out.status.code()
        })
        .collect()
}

/// Posts made from inbound mail with this Message-ID, and the outbox items of those posts
/// (total, distinct recipients).
async fn posted(store: &casegate::store::Store, message_id: &str) -> (i64, i64, i64) {
    let pool = &store.pool;
    let posts: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM posts p JOIN inbound_messages i ON i.id = p.inbound_id WHERE i.message_id = $1",
    )
    .bind(message_id)
    .fetch_one(pool)
    .await
    .unwrap();
    let (items, rcpts): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT o.rcpt) FROM outbox o JOIN posts p ON p.id = o.post_id
           JOIN inbound_messages i ON i.id = p.inbound_id WHERE i.message_id = $1",
    )
    .bind(message_id)
    .fetch_one(pool)
    .await
    .unwrap();
    (posts, items, rcpts)
}

/// Run the scenario `tag` RUNS times: PROCESSES deliveries at once of the copies `copies`
/// makes for a run (used round-robin); each run must post once and queue one message for
/// each of the two other readers (cora and aaron).
async fn exactly_once(tag: &str, copies: impl Fn(usize, &str) -> Vec<Vec<u8>>) {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let thread = g.store.thread_by_name("VU#424242").await.unwrap();
    let alice = g.store.contact_by_email("alice@acme.example").await.unwrap().id;
    let key = format!("cases+r-{}@cert.example", casegate::replykey::reply_key(&g.cfg.gateway.secret, thread, alice));
    let mut failures = Vec::new();
    for run in 0..RUNS {
        let variants = copies(run, &key);
        let files: Vec<PathBuf> = (0..PROCESSES)
            .map(|i| {
                let f = g.dir.path().join(format!("{tag}-{run}-{i}.eml"));
                std::fs::write(&f, &variants[i % variants.len()]).unwrap();
                f
            })
            .collect();
        let codes = deliver_all(&g.cfg.source, &files);
        assert!(codes.iter().all(|c| *c == Some(0)), "run {run}: every deliver exits 0, got {codes:?}");
        let got = posted(&g.store, &format!("{tag}-{run}@acme.example")).await;
        if got != (1, 2, 2) {
            failures.push(format!("run {run}: {} posts, {} outbox items for {} recipients", got.0, got.1, got.2));
        }
    }
    assert!(
        failures.is_empty(),
        "{tag}: expected one post and one notification each for cora and aaron in every run; {} of {RUNS} runs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deliveries_of_the_same_bytes_post_once() {
    exactly_once("same", |run, key| vec![reply(run, "same", "cases+vu424242@cert.example", key)]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_copies_differing_in_delivered_to_post_once() {
    exactly_once("split", |run, key| {
        vec![reply(run, "split", key, key), reply(run, "split", "cases+vu424242@cert.example", key)]
    })
    .await;
}
