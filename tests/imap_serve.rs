//! `casegate serve` against a real Dovecot: mail APPENDed before and while it runs is
//! routed and moved to Processed (quarantined mail to Quarantine), IDLE picks new mail up
//! without a poll, the backlog guard holds a full mailbox on first contact, a UIDVALIDITY
//! change posts nothing twice, a Dovecot restart mid-run loses and duplicates nothing, the
//! keyword mode leaves mail in place, and a lease held elsewhere is waited for.

mod dovecot;
mod imap_world;
mod support;

use dovecot::{append, count, wait_until};
use imap_world::{reply, report, stranger, Setup};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn appended_mail_is_routed_and_moved_by_polling() {
    let s = Setup::new().await;
    let config = s.configure("backlog = \"process\"\nidle = false\npoll_interval_secs = 1\n");
    let mut c = s.dovecot.client().await;
    for raw in [report(1), reply(1), stranger(1)] {
        append(&mut c, "INBOX", &raw).await;
    }
    let mut serve = s.serve(&config);
    s.wait_folders((0, 2, 1)).await;
    assert_eq!(s.processed().await, 3);
    // Mail arriving while serve runs.
    append(&mut c, "INBOX", &reply(2)).await;
    append(&mut c, "INBOX", &stranger(2)).await;
    s.wait_folders((0, 3, 2)).await;
    let case_posts = s
        .scalar(
            "SELECT COUNT(*) FROM posts p JOIN threads t ON t.id = p.thread_id JOIN cases c ON c.id = t.case_id \
             WHERE c.public_id = 'VU#424242' AND t.kind = 'discussion'",
        )
        .await;
    assert_eq!(case_posts, 2, "both replies appear in the case");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM quarantine").await, 2);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM reports").await, 1);
    let refs = s.scalar("SELECT COUNT(*) FROM inbound_messages WHERE source = 'imap' AND source_ref LIKE 'INBOX/%/%'").await;
    assert_eq!(refs, 5, "source coordinates mailbox/uidvalidity/uid");
    assert_eq!(
        serve.terminate(),
        Some(0),
        "serve exits 0 on SIGTERM:\n{}",
        serve.log_text()
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM imap_leases").await,
        0,
        "the lease is released"
    );
    let _ = c.logout().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_commits_new_mail_without_waiting_for_a_poll() {
    let s = Setup::new().await;
    // Polls and full checks an hour apart: only IDLE can bring the mail in quickly.
    let config = s.configure("poll_interval_secs = 3600\nfull_check_secs = 3600\n");
    let mut serve = s.serve(&config);
    wait_until("serve idling", Duration::from_secs(30), || async {
        serve.log_text().contains("connected")
    })
    .await;
    assert!(
        serve.log_text().contains("idle=true"),
        "{}",
        serve.log_text()
    );
    let mut c = s.dovecot.client().await;
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let start = Instant::now();
        append(&mut c, "INBOX", &reply(10 + i)).await;
        let want = i as i64 + 1;
        wait_until("the mail committed", Duration::from_secs(20), || async {
            s.processed().await == want
        })
        .await;
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "IDLE took {:?}",
            start.elapsed()
        );
    }
    s.wait_folders((0, 3, 0)).await;
    assert_eq!(
        serve.terminate(),
        Some(0),
        "SIGTERM ends IDLE and exits 0:\n{}",
        serve.log_text()
    );
    let _ = c.logout().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backlog_guard_refuses_then_skip_leaves_old_mail_alone() {
    let s = Setup::new().await;
    let mut c = s.dovecot.client().await;
    append(&mut c, "INBOX", &report(1)).await;
    append(&mut c, "INBOX", &report(2)).await;
    // Default backlog = "refuse".
    let config = s.configure("poll_interval_secs = 1\n");
    let mut serve = s.serve(&config);
    wait_until("the refusal logged", Duration::from_secs(30), || async {
        serve.log_text().contains("backlog guard")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = serve.log_text();
    assert!(
        log.contains("holding 2 message(s)")
            && log.contains("imap.backlog = \"refuse\" processes none"),
        "{log}"
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM inbound_messages").await,
        0,
        "nothing processed"
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM imap_checkpoints").await,
        0,
        "still a first contact"
    );
    assert_eq!(s.folders().await, (2, 0, 0));
    let check = std::process::Command::new(support::binary())
        .arg("--config")
        .arg(&config)
        .args(["imap", "check"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(
        out.contains("2 waiting") && out.contains("\"refuse\" holds them"),
        "{out}"
    );
    assert_eq!(serve.terminate(), Some(0));

    let config = s.configure("backlog = \"skip\"\npoll_interval_secs = 1\n");
    let mut serve = s.serve(&config);
    wait_until("first contact", Duration::from_secs(30), || async {
        serve.log_text().contains("first contact")
    })
    .await;
    append(&mut c, "INBOX", &report(3)).await;
    s.wait_folders((2, 1, 0)).await;
    assert_eq!(s.processed().await, 1, "only the new mail");
    let subject: String = sqlx::query_scalar("SELECT subject FROM reports")
        .fetch_one(&s.gw.store.pool)
        .await
        .unwrap();
    assert_eq!(subject, "Report 3");
    assert_eq!(serve.terminate(), Some(0));
    let _ = c.logout().await;
}

/// Delete `mailbox` and create it again with the same mail (a new UIDVALIDITY, the same
/// bytes): the (old, new) UIDVALIDITY.
async fn recreate(c: &mut dovecot::Client, mailbox: &str, mails: &[Vec<u8>]) -> (u32, u32) {
    let (_, old) = count(c, mailbox).await;
    c.select("INBOX").await.unwrap();
    // The running serve still has the mailbox selected, and Dovecot may leave its folder
    // behind for that session (CREATE then says ALREADYEXISTS): delete and try again.
    for attempt in 0.. {
        let _ = c.delete(mailbox).await;
        // Dovecot's UIDVALIDITY is a timestamp: a new second gives a new one.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        match c.create(mailbox).await {
            Ok(()) => break,
            Err(e) if attempt < 5 && format!("{e:?}").contains("ALREADYEXISTS") => continue,
            Err(e) => panic!("CREATE {mailbox}: {e:?}"),
        }
    }
    for m in mails {
        append(c, mailbox, m).await;
    }
    (old, count(c, mailbox).await.1)
}

#[tokio::test(flavor = "multi_thread")]
async fn uidvalidity_change_posts_nothing_twice() {
    let s = Setup::new().await;
    let mut c = s.dovecot.client().await;
    c.create("Cases").await.unwrap();
    let mails: Vec<Vec<u8>> = (0..6)
        .map(|i| if i % 2 == 0 { reply(i) } else { report(i) })
        .collect();
    for m in &mails {
        append(&mut c, "Cases", m).await;
    }
    let config = s.configure(
        "backlog = \"process\"\npoll_interval_secs = 1\nfull_check_secs = 2\n\
         [[imap.mailbox]]\nname = \"Cases\"\nprocessed = \"Cases done\"\nquarantine = \"Cases held\"\n",
    );
    let mut serve = s.serve(&config);
    wait_until("6 processed", Duration::from_secs(60), || async {
        s.processed().await == 6
    })
    .await;
    wait_until("Cases emptied", Duration::from_secs(30), || async {
        let mut c = s.dovecot.client().await;
        count(&mut c, "Cases").await.0 == 0
    })
    .await;
    let (posts, outbox) = (
        s.scalar("SELECT COUNT(*) FROM posts").await,
        s.scalar("SELECT COUNT(*) FROM outbox").await,
    );
    let (old_validity, new_validity) = recreate(&mut c, "Cases", &mails).await;
    assert_ne!(
        old_validity, new_validity,
        "the recreated mailbox has a new UIDVALIDITY"
    );
    wait_until(
        "the re-scan moved everything",
        Duration::from_secs(60),
        || async {
            let mut c = s.dovecot.client().await;
            count(&mut c, "Cases").await.0 == 0 && count(&mut c, "Cases done").await.0 == 12
        },
    )
    .await;
    assert!(
        serve.log_text().contains("UIDVALIDITY changed"),
        "{}",
        serve.log_text()
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM posts").await,
        posts,
        "no post twice"
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM outbox").await,
        outbox,
        "no notification twice"
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM inbound_messages").await,
        6,
        "the same bytes are stored once"
    );
    let cp: i64 = s
        .scalar("SELECT uidvalidity FROM imap_checkpoints WHERE mailbox = 'Cases'")
        .await;
    assert_eq!(cp, i64::from(new_validity));
    assert_eq!(serve.terminate(), Some(0));
    let _ = c.logout().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dovecot_restart_mid_run_loses_and_duplicates_nothing() {
    let mut s = Setup::new().await;
    const N: usize = 300;
    let mut c = s.dovecot.client().await;
    for i in 0..N {
        append(
            &mut c,
            "INBOX",
            &if i % 4 == 0 { report(i) } else { reply(i) },
        )
        .await;
    }
    let _ = c.logout().await;
    let config = s.configure(
        "backlog = \"process\"\nbatch_size = 20\npoll_interval_secs = 1\ntimeout_secs = 5\n",
    );
    let mut serve = s.serve(&config);
    wait_until("some mail processed", Duration::from_secs(60), || async {
        s.processed().await >= 20
    })
    .await;
    s.dovecot.restart();
    let done_at_restart = s.processed().await;
    s.wait_processed(N as i64, &serve).await;
    s.wait_folders((0, N as u32, 0)).await;
    assert!(
        done_at_restart < N as i64,
        "the restart came mid-run ({done_at_restart} done)"
    );
    assert!(
        serve.log_text().contains("reconnecting"),
        "{}",
        serve.log_text()
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM inbound_messages").await,
        N as i64
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM posts").await,
        s.scalar("SELECT COUNT(DISTINCT inbound_id) FROM posts")
            .await
    );
    assert_eq!(serve.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn keyword_mode_leaves_mail_in_place_and_never_takes_it_twice() {
    let s = Setup::new().await;
    let mut c = s.dovecot.client().await;
    let config =
        s.configure("acknowledge = \"keyword\"\nkeyword = \"$Casegate\"\npoll_interval_secs = 1\n");
    let mut serve = s.serve(&config);
    wait_until("connected", Duration::from_secs(30), || async {
        serve.log_text().contains("connected")
    })
    .await;
    for i in 0..3 {
        append(&mut c, "INBOX", &reply(i)).await;
    }
    wait_until("3 processed", Duration::from_secs(30), || async {
        s.processed().await == 3
    })
    .await;
    wait_until("keywords set", Duration::from_secs(30), || async {
        let mut c = s.dovecot.client().await;
        c.select("INBOX").await.unwrap();
        c.uid_search("KEYWORD $Casegate").await.unwrap().len() == 3
    })
    .await;
    assert_eq!(serve.terminate(), Some(0));
    let mut serve = s.serve(&config);
    append(&mut c, "INBOX", &reply(9)).await;
    wait_until("the new one processed", Duration::from_secs(30), || async {
        s.processed().await == 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        s.folders().await,
        (4, 0, 0),
        "nothing moved, no folder created"
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM history WHERE kind = 'duplicate-delivery'")
            .await,
        0,
        "nothing fetched twice"
    );
    assert_eq!(serve.terminate(), Some(0));
    let _ = c.logout().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_held_elsewhere_is_waited_for_until_it_expires() {
    let s = Setup::new().await;
    let config = s.configure("poll_interval_secs = 1\nlease_secs = 3\n");
    let account = format!("imap://{}@127.0.0.1:{}", dovecot::USER, s.dovecot.port);
    let until = casegate::store::now_ms() + 3000;
    s.gw.store
        .imap_claim_lease(
            &account,
            "INBOX",
            "other-host/boot/1/0",
            until - 3000,
            3000,
            None,
        )
        .await
        .unwrap();
    let mut c = s.dovecot.client().await;
    append(&mut c, "INBOX", &reply(1)).await;
    let mut serve = s.serve(&config);
    // An empty first contact would start at once; the mail is there, so set "process".
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM inbound_messages").await,
        0,
        "the other holder's lease is respected"
    );
    assert!(
        serve.log_text().contains("polled by another instance"),
        "{}",
        serve.log_text()
    );
    assert_eq!(serve.terminate(), Some(0));
    let config = s.configure("backlog = \"process\"\npoll_interval_secs = 1\nlease_secs = 3\n");
    let mut serve = s.serve(&config);
    wait_until(
        "taken over after expiry",
        Duration::from_secs(30),
        || async { s.processed().await == 1 },
    )
    .await;
    assert!(
        casegate::store::now_ms() >= until,
        "not before the lease expired"
    );
    assert_eq!(serve.terminate(), Some(0));
    let _ = c.logout().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn several_mailboxes_are_polled_at_once_with_their_own_folders() {
    let s = Setup::new().await;
    let mut c = s.dovecot.client().await;
    c.create("Vendors").await.unwrap();
    let config = s.configure(
        "backlog = \"process\"\npoll_interval_secs = 1\n\
         [[imap.mailbox]]\nname = \"INBOX\"\n\
         [[imap.mailbox]]\nname = \"Vendors\"\nprocessed = \"Vendors done\"\nquarantine = \"Vendors held\"\n",
    );
    append(&mut c, "INBOX", &report(1)).await;
    append(&mut c, "Vendors", &reply(1)).await;
    append(&mut c, "Vendors", &stranger(1)).await;
    let mut serve = s.serve(&config);
    s.wait_processed(3, &serve).await;
    s.wait_folders((0, 1, 0)).await;
    wait_until("Vendors acknowledged", Duration::from_secs(30), || async {
        let mut c = s.dovecot.client().await;
        (
            count(&mut c, "Vendors").await.0,
            count(&mut c, "Vendors done").await.0,
            count(&mut c, "Vendors held").await.0,
        ) == (0, 1, 1)
    })
    .await;
    let mailboxes = s.scalar("SELECT COUNT(*) FROM imap_checkpoints").await;
    assert_eq!(mailboxes, 2, "a checkpoint per mailbox");
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM inbound_messages WHERE source_ref LIKE 'Vendors/%'")
            .await,
        2
    );
    assert_eq!(serve.terminate(), Some(0));
    let _ = c.logout().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_is_reissued_and_still_brings_mail_in() {
    let s = Setup::new().await;
    let config =
        s.configure("idle_renew_secs = 1\npoll_interval_secs = 3600\nfull_check_secs = 3600\n");
    let mut serve = s.serve_with_env(
        &config,
        &[("CASEGATE_LOG", "casegate::ingest::imap=debug,info")],
    );
    wait_until("IDLE re-issued twice", Duration::from_secs(30), || async {
        serve.log_text().matches("IDLE ended woke=Timeout").count() >= 2
    })
    .await;
    let mut c = s.dovecot.client().await;
    append(&mut c, "INBOX", &reply(1)).await;
    wait_until("the mail committed", Duration::from_secs(10), || async {
        s.processed().await == 1
    })
    .await;
    assert!(
        serve.log_text().contains("IDLE ended woke=Changed"),
        "{}",
        serve.log_text()
    );
    assert_eq!(serve.terminate(), Some(0));
    let _ = c.logout().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_network_cut_mid_fetch_times_out_reconnects_and_duplicates_nothing() {
    let s = Setup::new().await;
    const N: usize = 200;
    let mut c = s.dovecot.client().await;
    for i in 0..N {
        append(
            &mut c,
            "INBOX",
            &if i % 4 == 0 { report(i) } else { reply(i) },
        )
        .await;
    }
    let relay = dovecot::Relay::start(s.dovecot.port);
    let section = s
        .dovecot
        .imap_section("backlog = \"process\"\nbatch_size = 20\ntimeout_secs = 2\n");
    let config = s.configure_raw(&section.replace(
        &format!("port = {}", s.dovecot.port),
        &format!("port = {}", relay.port),
    ));
    let mut serve = s.serve(&config);
    wait_until("some mail processed", Duration::from_secs(60), || async {
        s.processed().await >= 20
    })
    .await;
    relay.stall();
    let at_cut = s.processed().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        serve.log_text().contains("timed out after 2 s"),
        "{}",
        serve.log_text()
    );
    relay.resume();
    s.wait_processed(N as i64, &serve).await;
    s.wait_folders((0, N as u32, 0)).await;
    assert!(at_cut < N as i64, "cut mid-run ({at_cut} done)");
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM inbound_messages").await,
        N as i64
    );
    let posts = s.scalar("SELECT COUNT(*) FROM posts").await;
    assert_eq!(
        posts,
        s.scalar("SELECT COUNT(DISTINCT inbound_id) FROM posts")
            .await
    );
    assert_eq!(posts, N as i64);
    assert_eq!(serve.terminate(), Some(0));
    let _ = c.logout().await;
}
