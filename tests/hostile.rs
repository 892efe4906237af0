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
        under_umask(umask, Some(&cfg), &["org", "add", "CERT", "--kind", "coordinator", "--domain", "cert.example"], None);
        under_umask(umask, Some(&cfg), &["contact", "add", "cora@cert.example", "--name", "Cora", "--org", "CERT"], None);
        let mail = fixture("01-new-report-plain.eml");
        under_umask(umask, Some(&cfg), &["deliver"], Some(&mail));
        under_umask(umask, Some(&cfg), &["outbox", "send"], None);
        assert!(std::fs::read_dir(dir.join("outbox")).unwrap().count() > 0, "the coordinator's copy was written");
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

#[test]
fn a_mail_over_the_size_limit_is_stored_in_chunks_from_stdin_and_held() {
    let (_tmp, cfg) = gateway();
    let text = std::fs::read_to_string(&cfg).unwrap().replace("[inbound]\n", "[inbound]\nmax_message_bytes = 1048576\n");
    std::fs::write(&cfg, text).unwrap();
    let mut mail = b"From: a@b.example\r\nTo: security@cert.example\r\nSubject: big\r\nMessage-ID: <big@b.example>\r\n\r\n".to_vec();
    let line = [b'x'; 998];
    while mail.len() < 5 * 1024 * 1024 + 17 {
        mail.extend_from_slice(&line);
        mail.extend_from_slice(b"\r\n");
    }
    let mut child = Command::new(support::binary())
        .args(["--config", cfg.to_str().unwrap(), "deliver", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = mail.clone();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = json(&String::from_utf8_lossy(&o.stdout));
    assert_eq!((out["decision"].as_str(), out["reason"].as_str()), (Some("quarantine"), Some("oversize")), "{out}");
    assert!(out["reason_detail"].as_str().unwrap().contains(&format!("{} bytes", mail.len())), "{out}");
    let db = cfg.parent().unwrap().join("casegate.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (size, sha, raw_len, chunks, stored): (i64, String, i64, i64, Vec<u8>) = rt.block_on(async {
        let store = casegate::store::Store::open(&format!("sqlite://{}", db.display())).await.unwrap();
        let row: (i64, String, i64) = sqlx::query_as("SELECT size, sha256, length(raw) FROM inbound_messages").fetch_one(&store.pool).await.unwrap();
        let parts: Vec<Vec<u8>> = sqlx::query_scalar("SELECT bytes FROM inbound_chunks ORDER BY seq").fetch_all(&store.pool).await.unwrap();
        (row.0, row.1, row.2, parts.len() as i64, parts.concat())
    });
    assert_eq!(size as usize, mail.len());
    assert_eq!(sha, casegate::store::inbound::sha256_hex(&mail));
    assert_eq!(raw_len, 1024 * 1024, "only the first chunk is kept inline");
    assert_eq!(chunks, 6);
    assert!(stored == mail, "the chunks hold the mail byte for byte");
}

#[test]
fn a_hostile_display_name_cannot_break_the_headers_of_what_we_send() {
    let (_tmp, cfg) = gateway();
    let c = Some(cfg.as_path());
    ok(c, &["org", "add", "CERT", "--kind", "coordinator", "--domain", "cert.example"]);
    ok(c, &["contact", "add", "cora@cert.example", "--name", "Cora", "--org", "CERT"]);
    let mail = cfg.parent().unwrap().join("in.eml");
    std::fs::write(
        &mail,
        "From: \"Eve\\\" <ceo@cert.example>, \\\"\u{202e}\" <eve@evil.example>\r\nTo: security@cert.example\r\n\
         Subject: a report\r\nMessage-ID: <hostile-name@evil.example>\r\n\r\nSee attached.\r\n",
    )
    .unwrap();
    ok(c, &["deliver", mail.to_str().unwrap()]);
    ok(c, &["outbox", "send"]);
    let outbox = cfg.parent().unwrap().join("outbox");
    let mut to_cora = None;
    for f in std::fs::read_dir(&outbox).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        let m = casegate::mail::parse::parse(&bytes).unwrap();
        if m.to.first().is_some_and(|t| t.address == "cora@cert.example") {
            to_cora = Some((m, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    let (m, raw) = to_cora.expect("the coordinator got the new report");
    assert_eq!(m.header_values("From").count(), 1, "{raw}");
    assert_eq!(m.from.as_ref().map(|f| f.address.as_str()), Some("cases@cert.example"), "{raw}");
    assert!(m.from.as_ref().and_then(|f| f.name.as_deref()).is_some_and(|n| !n.contains(['\u{202e}', '"'])), "{raw}");
    assert!(!raw.contains("<ceo@cert.example>"), "the forged address is not in any header: {raw}");
}

/// Inputs the fuzz targets found (tests/fixtures/fuzz/TARGET-name), each with what it must
/// give now.
#[test]
fn fuzz_findings_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    // F1: a whole mail as an author's display name: quotes inside broke the rendered From.
    let raw = std::fs::read(dir.join("render-quote-in-display-name")).unwrap();
    let name = casegate::mail::address::shown_name(&String::from_utf8_lossy(&raw));
    assert!(!name.contains(['"', '\\', '\r', '\n', '\0']), "{name:?}");
}
