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
