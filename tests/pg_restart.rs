//! PostgreSQL restarted while mail is ingested: the store's connections break, the failures
//! are transient (the source offers the mail again), the pool reconnects and ingest goes
//! on; nothing is lost and nothing is stored twice. Runs on a cluster of its own (Debian
//! package postgresql), started and stopped by this test.

mod support;

use casegate::pipeline::Pipeline;
use casegate::store::Store;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A throwaway cluster: initdb and pg_ctl as the `postgres` user when running as root.
struct Cluster {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
}

fn pg_bin() -> PathBuf {
    let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).filter(|b| b.join("initdb").exists()).collect())
        .unwrap_or_default();
    bins.sort();
    bins.pop().expect("PostgreSQL server binaries missing: install the Debian package postgresql")
}

fn as_owner(bin: &Path, tool: &str) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

fn run(mut c: Command, what: &str) {
    let o = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(o.status.success(), "{what}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let bin = pg_bin();
        if unsafe { libc::geteuid() } == 0 {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:").arg(dir.path());
                    c
                },
                "chown",
            );
        }
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut c = as_owner(&bin, "initdb");
        c.arg("-D").arg(&data).args(["-U", "casegate", "--auth=trust", "-E", "UTF8"]);
        run(c, "initdb");
        let cluster = Cluster { _dir: dir, data, bin, port };
        cluster.pg_ctl("start");
        cluster
    }

    fn pg_ctl(&self, action: &str) {
        let mut c = as_owner(&self.bin, "pg_ctl");
        c.arg("-D").arg(&self.data).args(["-w", "-m", "fast", "-l"]).arg(self.data.parent().unwrap().join("log"));
        c.arg("-o").arg(format!("-c listen_addresses=127.0.0.1 -p {} -k {}", self.port, self.data.parent().unwrap().display()));
        c.arg(action);
        run(c, &format!("pg_ctl {action}"));
    }

    fn url(&self) -> String {
        format!("postgres://casegate@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut c = as_owner(&self.bin, "pg_ctl");
        c.arg("-D").arg(&self.data).args(["-m", "immediate", "stop"]);
        let _ = c.output();
    }
}

/// Ingest `raw`, offering it again after transient failures as a source does.
async fn ingest_until_done(p: &Pipeline, raw: &[u8], source_ref: &str) -> (casegate::pipeline::Outcome, usize) {
    for retries in 0..200 {
        match p.ingest(raw, "test", source_ref).await {
            Ok(o) => return (o, retries),
            Err(e) if e.is_transient() => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(e) => panic!("mail {source_ref}: a failure that is not transient: {e}"),
        }
    }
    panic!("mail {source_ref}: the database never came back");
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_goes_on_after_postgresql_restarts_and_nothing_is_lost() {
    let cluster = Cluster::start();
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = support::config_on(dir.path(), &world.gateway, &cluster.url());
    let store = Store::open(&cfg.database.url).await.unwrap();
    support::seed(&store, &cfg.gateway.case_prefix, &world).await;
    let p = Pipeline::new(store.clone(), &cfg);
    const N: usize = 30;
    let mut retried = 0;
    for i in 0..N {
        if i == 10 || i == 20 {
            cluster.pg_ctl("restart");
        }
        let (o, retries) = ingest_until_done(&p, &support::reply(i), &i.to_string()).await;
        assert_eq!(o.decision, "post", "mail {i}: {o:?}");
        retried += retries;
    }
    let count = |sql: &'static str| {
        let s = store.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&s.pool).await.unwrap() }
    };
    assert_eq!(count("SELECT COUNT(*) FROM inbound_messages").await, N as i64, "each mail stored once");
    assert_eq!(count("SELECT COUNT(DISTINCT inbound_id) FROM posts").await, N as i64, "each mail posted");
    assert_eq!(count("SELECT COUNT(*) FROM posts WHERE inbound_id IS NOT NULL").await, N as i64, "none posted twice");
    eprintln!("{retried} offers were refused as transient across two restarts");
}
