//! The casegate side of the IMAP tests: a seeded gateway whose config points at a test
//! Dovecot, mail of each kind (report, case reply, quarantined), and helpers that run
//! `casegate serve` and watch the database and the folders.

#![allow(dead_code)]

use crate::dovecot::{count, Dovecot, Serve};
use crate::support;
use std::path::Path;
use std::time::{Duration, Instant};

pub use crate::support::{reply, report, ONE_VENDOR_WORLD as WORLD};

/// A stranger writing into the case: quarantined (not a participant).
pub fn stranger(i: usize) -> Vec<u8> {
    format!(
        "From: Mallory <mallory@evil.example>\r\nTo: cases+vu424242@cert.example\r\nSubject: Re: [VU#424242] hi {i}\r\n\
         Message-ID: <stranger-{i}@evil.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nLet me in.\r\n"
    )
    .into_bytes()
}

pub struct Setup {
    pub dovecot: Dovecot,
    pub gw: support::Gateway,
}

impl Setup {
    pub async fn new() -> Setup {
        let dovecot = Dovecot::start();
        let world: support::WorldDesc = toml::from_str(WORLD).unwrap();
        let gw = support::gateway(&world).await;
        Setup { dovecot, gw }
    }

    /// Rewrite the casegate config with the test Dovecot's `[imap]` section plus
    /// `imap_extra` (and info logs).
    pub fn configure(&self, imap_extra: &str) -> std::path::PathBuf {
        self.configure_raw(&self.dovecot.imap_section(imap_extra))
    }

    /// Rewrite the casegate config with `imap` as its `[imap]` section (and info logs).
    pub fn configure_raw(&self, imap: &str) -> std::path::PathBuf {
        let path = self.gw.cfg.source.clone();
        let base = std::fs::read_to_string(&path).unwrap();
        let base = base
            .split("[imap]")
            .next()
            .unwrap()
            .replace("level = \"warn\"", "level = \"info\"");
        std::fs::write(&path, format!("{base}{imap}")).unwrap();
        path
    }

    /// `casegate --config CONFIG ARGS…`: exit code, stdout, stderr.
    pub fn casegate(&self, config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
        let out = std::process::Command::new(support::binary())
            .env("NO_COLOR", "1")
            .arg("--config")
            .arg(config)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Start `casegate serve`, logging to a file of its own.
    pub fn serve(&self, config: &Path) -> Serve {
        self.serve_with_env(config, &[])
    }

    /// The same with extra environment variables.
    pub fn serve_with_env(&self, config: &Path, env: &[(&str, &str)]) -> Serve {
        let dir = self.gw.dir.path();
        let runs = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("serve-"))
            })
            .count();
        Serve::start_with_env(
            &support::binary(),
            config,
            &dir.join(format!("serve-{runs}.log")),
            env,
        )
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&self.gw.store.pool)
            .await
            .unwrap()
    }

    pub async fn processed(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM inbound_messages WHERE state = 'processed'")
            .await
    }

    /// Wait until `n` mails are processed; the serve log is shown on failure.
    pub async fn wait_processed(&self, n: i64, serve: &Serve) {
        let start = Instant::now();
        while self.processed().await != n {
            if start.elapsed() > Duration::from_secs(120) {
                panic!(
                    "{} of {n} processed after 120 s:\n{}",
                    self.processed().await,
                    serve.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn folders(&self) -> (u32, u32, u32) {
        let mut c = self.dovecot.client().await;
        let inbox = count(&mut c, "INBOX").await.0;
        let processed = count(&mut c, "Processed").await.0;
        let quarantine = count(&mut c, "Quarantine").await.0;
        let _ = c.logout().await;
        (inbox, processed, quarantine)
    }

    pub async fn wait_folders(&self, want: (u32, u32, u32)) {
        let start = Instant::now();
        loop {
            let got = self.folders().await;
            if got == want {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "folders (INBOX, Processed, Quarantine) {got:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
