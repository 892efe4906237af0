//! `casegate deliver` exit statuses for an MTA (sysexits.h): anything that is not the mail's
//! fault — a bad configuration, a missing secret, a read-only, full, locked or unreachable
//! database — exits 75 (EX_TEMPFAIL), so the MTA keeps the mail and offers it again;
//! once the problem is fixed the same mail is accepted (exit 0). The real binary runs
//! against real file systems: the read-only and full-disk cases mount a small tmpfs of
//! their own, which needs root.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const EX_TEMPFAIL: i32 = 75;

const GATEWAY: &str = r#"
domain = "cert.example"
intake = ["security@cert.example"]
"#;

fn mail(tag: &str, body_lines: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Reporter <r@reporters.example>\r\nTo: security@cert.example\r\nSubject: Report {tag}\r\n\
         Message-ID: <{tag}@reporters.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n"
    );
    for i in 0..body_lines {
        m.push_str(&format!("{i:06} finding details finding details finding details finding details\r\n"));
    }
    m.into_bytes()
}

/// Run `casegate [args] deliver FILE` (with `--config config` when given) to completion.
fn deliver(config: Option<&Path>, extra: &[&str], file: &Path) -> Output {
    let mut cmd = Command::new(support::binary());
    cmd.env_remove("CASEGATE_CONFIG");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .arg("deliver")
        .args(extra)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn casegate deliver");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("deliver did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: deliver exited {:?}, expected {code}; stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A gateway configuration and an initialized database in `dir`; the config path. SQLite
/// on every engine run: these tests break the database file and its file system.
async fn gateway_in(dir: &Path, extra_config: &str) -> PathBuf {
    let gw: support::GatewayDesc = toml::from_str(GATEWAY).unwrap();
    let cfg = support::config_on(dir, &gw, "sqlite://casegate.db");
    let store = casegate::store::Store::open(&cfg.database.url).await.unwrap();
    store.pool.close().await;
    if !extra_config.is_empty() {
        let text = std::fs::read_to_string(&cfg.source).unwrap();
        std::fs::write(&cfg.source, text.replace("[database]\n", &format!("[database]\n{extra_config}"))).unwrap();
    }
    cfg.source.clone()
}

fn write_mail(dir: &Path, tag: &str, lines: usize) -> PathBuf {
    let f = dir.join(format!("{tag}.eml"));
    std::fs::write(&f, mail(tag, lines)).unwrap();
    f
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        assert!(
            running_as_root(),
            "this test mounts a tmpfs of its own (a small or read-only file system for the database), \
             which needs root: run the tests as root"
        );
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount (Debian package mount)");
        assert!(status.success(), "mount -t tmpfs failed ({status}): the test needs CAP_SYS_ADMIN to mount a file system");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, opts: &str) {
        let status = Command::new("mount").args(["-o", &format!("remount,{opts}")]).arg(self.path()).status().unwrap();
        assert!(status.success(), "mount -o remount,{opts} failed ({status})");
    }

    fn available_kib(&self) -> u64 {
        let out = Command::new("df").args(["-k", "--output=avail"]).arg(self.path()).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().parse().unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

async fn posts(config: &Path) -> i64 {
    let cfg = casegate::config::Config::load(config).unwrap();
    let store = casegate::store::Store::open(&cfg.database.url).await.unwrap();
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM posts").fetch_one(&store.pool).await.unwrap();
    store.pool.close().await;
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_problems_ask_the_mta_to_retry() {
    let tmp = tempfile::tempdir().unwrap();
    let config = gateway_in(tmp.path(), "").await;
    let file = write_mail(tmp.path(), "config", 3);
    let good = std::fs::read_to_string(&config).unwrap();

    std::fs::write(&config, good.replace("[database]\n", "[database]\nbogus_key = 1\n")).unwrap();
    let out = deliver(Some(&config), &[], &file);
    assert_exit(&out, EX_TEMPFAIL, "unknown config key");
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.bogus_key"), "the key is named");

    std::fs::write(&config, &good).unwrap();
    std::fs::rename(tmp.path().join("secret.key"), tmp.path().join("secret.moved")).unwrap();
    let out = deliver(Some(&config), &[], &file);
    assert_exit(&out, EX_TEMPFAIL, "missing secret file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("gateway.secret_file"), "the key is named");
    std::fs::rename(tmp.path().join("secret.moved"), tmp.path().join("secret.key")).unwrap();

    assert_exit(&deliver(None, &[], &file), EX_TEMPFAIL, "no configuration at all");
    let out = deliver(Some(&config), &["--no-such-flag"], &file);
    assert_exit(&out, EX_TEMPFAIL, "a bad flag in the MTA's command line");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"), "the flag is named");

    assert_exit(&deliver(Some(&config), &[], &file), 0, "fixed configuration");
    assert_eq!(posts(&config).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_database_asks_the_mta_to_retry() {
    let tmp = tempfile::tempdir().unwrap();
    let config = gateway_in(tmp.path(), "").await;
    let file = write_mail(tmp.path(), "unreachable", 3);
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, good.replace("sqlite://casegate.db", "sqlite://missing-dir/casegate.db")).unwrap();
    assert_exit(&deliver(Some(&config), &[], &file), EX_TEMPFAIL, "database directory missing");
    std::fs::write(&config, good).unwrap();
    assert_exit(&deliver(Some(&config), &[], &file), 0, "database back");
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_database_asks_the_mta_to_retry() {
    let fs = Tmpfs::mount("16m");
    let config = gateway_in(fs.path(), "").await;
    let tmp = tempfile::tempdir().unwrap();
    let file = write_mail(tmp.path(), "readonly", 3);
    // A delivery before: it leaves the WAL and its index behind, as every `deliver` does.
    let first = write_mail(tmp.path(), "before-readonly", 3);
    assert_exit(&deliver(Some(&config), &[], &first), 0, "writable file system");
    fs.remount("ro");
    assert_exit(&deliver(Some(&config), &[], &file), EX_TEMPFAIL, "database on a read-only file system");
    fs.remount("rw");
    assert_exit(&deliver(Some(&config), &[], &file), 0, "file system writable again");
    assert_eq!(posts(&config).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn full_disk_asks_the_mta_to_retry() {
    let fs = Tmpfs::mount("16m");
    let config = gateway_in(fs.path(), "").await;
    let tmp = tempfile::tempdir().unwrap();
    // About 1.3 MB of mail, with 64 KiB left on the file system.
    let file = write_mail(tmp.path(), "full", 16_000);
    let filler = fs.path().join("filler");
    let keep = fs.available_kib().saturating_sub(64);
    std::fs::write(&filler, vec![0u8; usize::try_from(keep * 1024).unwrap()]).unwrap();
    assert_exit(&deliver(Some(&config), &[], &file), EX_TEMPFAIL, "database on a full file system");
    std::fs::remove_file(&filler).unwrap();
    assert_exit(&deliver(Some(&config), &[], &file), 0, "space freed");
    assert_eq!(posts(&config).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn locked_database_asks_the_mta_to_retry() {
    use sqlx::Connection;
    let tmp = tempfile::tempdir().unwrap();
    let config = gateway_in(tmp.path(), "busy_timeout_ms = 200\n").await;
    let file = write_mail(tmp.path(), "locked", 3);
    let url = format!("sqlite://{}", tmp.path().join("casegate.db").display());
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut holder).await.unwrap();
    sqlx::query("INSERT INTO history (at, kind, detail) VALUES (0, 'test-lock', 'held')").execute(&mut holder).await.unwrap();
    let out = deliver(Some(&config), &[], &file);
    assert_exit(&out, EX_TEMPFAIL, "database locked by another connection");
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    assert_exit(&deliver(Some(&config), &[], &file), 0, "lock released");
    assert_eq!(posts(&config).await, 1);
}
