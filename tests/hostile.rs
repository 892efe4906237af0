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

/// Runs the binary under `umask` (a shell sets it, as a service manager or login would).
fn under_umask(umask: &str, config: Option<&Path>, args: &[&str], stdin: Option<&Path>) -> Output {
    let mut script = format!("umask {umask}; exec \"$0\"");
    if let Some(cfg) = config {
        script += &format!(" --config '{}'", cfg.display());
    }
    for a in args {
        script += &format!(" '{a}'");
    }
    if let Some(f) = stdin {
        script += &format!(" < '{}'", f.display());
    }
    let o = Command::new("sh").arg("-c").arg(script).arg(support::binary()).env_remove("CASEGATE_CONFIG").output().expect("sh");
    assert!(o.status.success(), "{args:?} under umask {umask}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// Every file and directory below `dir` with permission bits for group or others.
fn exposed(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let bad = if meta.is_dir() { mode & 0o027 != 0 } else { mode & 0o077 != 0 };
        if bad {
            out.push(format!("{} {:o}", p.display(), mode));
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out.sort();
    out
}

#[test]
fn files_casegate_creates_are_private_whatever_the_umask() {
    for umask in ["000", "022"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("gw");
        under_umask(umask, None, &["init", dir.to_str().unwrap(), "--domain", "cert.example"], None);
        let cfg = dir.join("casegate.toml");
        let mail = fixture("01-new-report-plain.eml");
        under_umask(umask, Some(&cfg), &["deliver"], Some(&mail));
        under_umask(umask, Some(&cfg), &["outbox", "send"], None);
        assert!(std::fs::read_dir(dir.join("outbox")).unwrap().count() > 0, "the acknowledgement was written");
        assert_eq!(exposed(&dir), Vec::<String>::new(), "readable by others after init, deliver and send under umask {umask}");
    }
}

#[test]
fn check_config_refuses_shared_secrets_and_unwritable_paths_naming_the_key() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, cfg) = gateway();
    let dir = cfg.parent().unwrap();
    ok(Some(&cfg), &["check-config"]);
    std::fs::set_permissions(dir.join("secret.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap()
        .replace("file_dir = \"outbox\"", "file_dir = \"secret.key/outbox\"")
        .replace("url = \"sqlite://casegate.db\"", "url = \"sqlite://no-such-dir/casegate.db\"");
    std::fs::write(&cfg, text).unwrap();
    let o = casegate(Some(&cfg), &["check-config"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for key in ["gateway.secret_file", "outbound.file_dir", "database.url"] {
        assert!(err.contains(key), "{key} not named: {err}");
    }
    assert!(err.contains("chmod 600"), "{err}");
}
