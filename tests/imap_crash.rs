//! Exactly-once effect of the IMAP source across crashes (SPEC §3 stage 8, §9), on a real
//! Dovecot: `casegate serve` killed with SIGKILL at random moments over 1,000 mails, and two
//! `serve` processes sharing one database and one mailbox, the lease holder killed.

mod dovecot;
mod imap_world;
mod support;

use dovecot::{append, Serve};
use imap_world::{reply, report, stranger, Setup};
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const N: usize = 1000;

/// Mail `i`: every tenth quarantined, every fourth a new report, the rest case replies.
fn mail(i: usize) -> Vec<u8> {
    match i {
        _ if i % 10 == 0 => stranger(i),
        _ if i % 4 == 1 => report(i),
        _ => reply(i),
    }
}
const QUARANTINED: u32 = (N / 10) as u32;

async fn fill(s: &Setup) {
    let mut c = s.dovecot.client().await;
    for i in 0..N {
        append(&mut c, "INBOX", &mail(i)).await;
    }
    let _ = c.logout().await;
}

/// Wait until at least `n` mails are processed (polling fast, to kill near that point).
async fn wait_at_least(s: &Setup, n: i64, serve: &Serve) {
    let start = Instant::now();
    while s.processed().await < n {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{n} not reached:\n{}",
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every mail stored once, processed, in the right folder once; no post, quarantine item or
/// notification twice.
async fn assert_exactly_once(s: &Setup) {
    s.wait_folders((0, N as u32 - QUARANTINED, QUARANTINED))
        .await;
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM inbound_messages").await,
        N as i64,
        "each mail stored once"
    );
    assert_eq!(
        s.scalar("SELECT COUNT(DISTINCT message_id) FROM inbound_messages")
            .await,
        N as i64
    );
    assert_eq!(s.processed().await, N as i64, "each mail processed");
    let posts = s.scalar("SELECT COUNT(*) FROM posts").await;
    assert_eq!(
        posts,
        s.scalar("SELECT COUNT(DISTINCT inbound_id) FROM posts")
            .await,
        "no mail posted twice"
    );
    assert_eq!(
        posts,
        (N as u32 - QUARANTINED) as i64,
        "every report and reply posted"
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM quarantine").await,
        QUARANTINED as i64
    );
    let dup_outbox = s
        .scalar(
            "SELECT COUNT(*) FROM (SELECT kind, post_id, report_id, rcpt FROM outbox \
             GROUP BY kind, post_id, report_id, rcpt HAVING COUNT(*) > 1) x",
        )
        .await;
    assert_eq!(
        dup_outbox, 0,
        "no notification or acknowledgement queued twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_killed_at_random_moments_takes_every_mail_exactly_once() {
    let s = Setup::new().await;
    fill(&s).await;
    let config = s.configure("backlog = \"process\"\nbatch_size = 50\npoll_interval_secs = 1\n");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1de);
    // Kill points spread over the run: after a random share of the mail, plus a random delay.
    let mut targets: Vec<i64> = (0..12).map(|_| rng.gen_range(1..N as i64 - 50)).collect();
    targets.sort_unstable();
    let mut kills = 0;
    for target in targets {
        let mut serve = s.serve(&config);
        wait_at_least(&s, target, &serve).await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..40))).await;
        serve.kill9();
        kills += 1;
    }
    let before_last = s.processed().await;
    assert!(
        before_last < N as i64,
        "the kills came while mail was waiting ({before_last} done)"
    );
    let mut serve = s.serve(&config);
    s.wait_processed(N as i64, &serve).await;
    assert_exactly_once(&s).await;
    assert!(kills >= 10);
    assert_eq!(serve.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_serves_share_one_mailbox_and_the_survivor_takes_over() {
    let s = Setup::new().await;
    fill(&s).await;
    let config = s.configure(
        "backlog = \"process\"\nbatch_size = 50\npoll_interval_secs = 1\nlease_secs = 3\n",
    );
    let mut a = s.serve(&config);
    let mut b = s.serve(&config);
    wait_at_least(&s, 300, &a).await;
    let holder: String = sqlx::query_scalar("SELECT holder FROM imap_leases")
        .fetch_one(&s.gw.store.pool)
        .await
        .unwrap();
    let holder_pid: u32 = holder
        .split('/')
        .nth(2)
        .and_then(|p| p.parse().ok())
        .expect("pid in the holder id");
    let (holder, waiter) = if holder_pid == a.pid() {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert_eq!(holder.pid(), holder_pid, "the lease names one of the two");
    assert!(
        waiter.log_text().contains("polled by another instance"),
        "{}",
        waiter.log_text()
    );
    assert!(
        !waiter.log_text().contains("polling this mailbox"),
        "only one polls:\n{}",
        waiter.log_text()
    );
    holder.kill9();
    let done_at_kill = s.processed().await;
    s.wait_processed(N as i64, waiter).await;
    assert!(
        done_at_kill < N as i64,
        "killed mid-run ({done_at_kill} done)"
    );
    assert!(
        waiter.log_text().contains("polling this mailbox"),
        "{}",
        waiter.log_text()
    );
    assert_exactly_once(&s).await;
    assert_eq!(waiter.terminate(), Some(0));
}
