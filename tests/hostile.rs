//! Hostile and malformed mail through the real binary: damaged content is held and shown,
//! limits hold, files are private.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn casegate(config: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(support::binary());
    if let Some(cfg) = config {
        c.arg("--config").arg(cfg);
    }
    c.args(args).env_remove("CASEGATE_CONFIG").stdin(Stdio::null()).output().expect("run casegate")
}

fn ok(config: Option<&Path>, args: &[&str]) -> String {
    let o = casegate(config, args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "casegate {args:?} failed: {}\n{out}", String::from_utf8_lossy(&o.stderr));
    out
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// `casegate init` into a fresh directory; returns (tempdir, config path).
fn gateway() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gw");
    ok(None, &["init", dir.to_str().unwrap(), "--domain", "cert.example"]);
    let cfg = dir.join("casegate.toml");
    (tmp, cfg)
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn damaged_content_is_held_shown_by_explain_and_released_knowingly() {
    let (_tmp, cfg) = gateway();
    let c = Some(cfg.as_path());
    let mail = fixture("09-new-report-bad-base64.eml");
    let mail = mail.to_str().unwrap();
    let x = json(&ok(c, &["route", "explain", mail, "--json"]));
    assert_eq!((x["decision"].as_str(), x["reason"].as_str()), (Some("quarantine"), Some("malformed")), "{x}");
    let damaged = x["evidence"]["damaged"].as_array().expect("damaged list");
    assert!(damaged.iter().any(|d| d.as_str().unwrap().contains("invalid or truncated base64")), "{x}");
    assert!(x["evidence"]["warnings"].as_array().is_some_and(|w| !w.is_empty()), "{x}");
    let text = ok(c, &["route", "explain", mail]);
    assert!(text.contains("damaged: part") && text.contains("base64"), "{text}");

    let o = json(&ok(c, &["deliver", mail, "--json"]));
    assert_eq!(o["reason"], "malformed", "{o}");
    assert!(o["reason_detail"].as_str().unwrap().contains("base64"), "{o}");
    let held = json(&ok(c, &["quarantine", "list", "--json"]));
    let id = held[0]["id"].as_i64().expect("held item").to_string();
    ok(c, &["case", "create", "--id", "VU#123456", "--title", "Telnet backdoor"]);
    let out = ok(c, &["quarantine", "release", &id, "--to", "VU#123456"]);
    assert!(out.contains("released"), "{out}");
}
