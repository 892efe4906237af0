//! Durable before acknowledged (SPEC §3 stage 8), for each source: the commit that decided a
//! mail is made durable before the source hears of it — exit 0 to the MTA, the rename of a
//! Maildir file to `cur/`, the IMAP MOVE. A power loss cannot be simulated here, so the
//! debug build records the order of events (`CASEGATE_ACK_LOG`: commit, durable, ack) and
//! these tests check it on real processes: `deliver`, and `serve` reading a Maildir and a
//! real Dovecot.

mod dovecot;
mod imap_world;
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Check the recorded events: every mail acknowledged was committed before, and a
/// `durable` barrier came between its commit and its acknowledgement. Returns the
/// acknowledged references.
fn check_order(log: &Path, source: &str) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| panic!("no acknowledgement log {} ({e}): nothing recorded the order", log.display()));
    let lines: Vec<&str> = text.lines().collect();
    let mut acked = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let Some(r) = line.strip_prefix(&format!("ack {source} ")) else { continue };
        let commit = lines[..at]
            .iter()
            .rposition(|l| *l == format!("commit {source} {r}"))
            .unwrap_or_else(|| panic!("{r} acknowledged (line {}) but never committed before:\n{text}", at + 1));
        assert!(
            lines[commit + 1..at].contains(&"durable"),
            "{r}: committed at line {} and acknowledged at line {} with no durability barrier in between:\n{text}",
            commit + 1,
            at + 1
        );
        acked.push(r.to_string());
    }
    acked
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deliver_exits_0_only_after_a_durable_commit() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let log = g.dir.path().join("ack.log");
    let mut files = Vec::new();
    for i in 0..4 {
        let f = g.dir.path().join(format!("mail-{i}.eml"));
        std::fs::write(&f, if i % 2 == 0 { support::report(i) } else { support::reply(i) }).unwrap();
        let status = Command::new(support::binary())
            .env("CASEGATE_ACK_LOG", &log)
            .arg("--config")
            .arg(&g.cfg.source)
            .arg("deliver")
            .arg(&f)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0));
        files.push(f.display().to_string());
    }
    assert_eq!(check_order(&log, "file"), files, "every delivery acknowledged once, in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn maildir_files_move_to_cur_only_after_a_durable_commit() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let g = support::gateway(&world).await;
    let md = g.dir.path().join("maildir");
    casegate::ingest::maildir::ensure(&md).unwrap();
    let mut names = Vec::new();
    for i in 0..6 {
        let name = format!("17000000{i:02}.M1P1.host");
        std::fs::write(md.join("new").join(&name), support::report(i)).unwrap();
        names.push(name);
    }
    let text = std::fs::read_to_string(&g.cfg.source).unwrap();
    let text = text.replace("[outbound]", "[inbound]\nmaildir = \"maildir\"\npoll_interval_ms = 100\n[outbound]");
    std::fs::write(&g.cfg.source, text).unwrap();
    let log = g.dir.path().join("ack.log");
    let mut serve =
        dovecot::Serve::start_with_env(&support::binary(), &g.cfg.source, &g.dir.path().join("serve.log"), &[("CASEGATE_ACK_LOG", log.to_str().unwrap())]);
    let cur = md.join("cur");
    wait_until("maildir drained", Duration::from_secs(60), || std::fs::read_dir(&cur).map(|d| d.count()).unwrap_or(0) == 6);
    assert_eq!(serve.terminate(), Some(0), "{}", serve.log_text());
    let mut acked = check_order(&log, "maildir");
    acked.sort();
    assert_eq!(acked, names, "every file acknowledged once");
}

#[tokio::test(flavor = "multi_thread")]
async fn imap_moves_only_after_a_durable_commit() {
    let s = imap_world::Setup::new().await;
    let mut c = s.dovecot.client().await;
    for i in 0..7 {
        let mail = match i % 3 {
            0 => imap_world::report(i),
            1 => imap_world::reply(i),
            _ => imap_world::stranger(i),
        };
        dovecot::append(&mut c, "INBOX", &mail).await;
    }
    let _ = c.logout().await;
    let config = s.configure("backlog = \"process\"\nbatch_size = 3\n");
    let log = s.gw.dir.path().join("ack.log");
    let mut serve = s.serve_with_env(&config, &[("CASEGATE_ACK_LOG", log.to_str().unwrap())]);
    s.wait_processed(7, &serve).await;
    s.wait_folders((0, 5, 2)).await;
    assert_eq!(serve.terminate(), Some(0), "{}", serve.log_text());
    let acked = check_order(&log, "imap");
    assert_eq!(acked.len(), 7, "every mail acknowledged once: {acked:?}");
    assert!(acked.iter().all(|r| r.starts_with("INBOX/")), "{acked:?}");
}
