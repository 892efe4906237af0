//! The command line as a newcomer uses it: `init`, then the CLI alone is enough to create a
//! case with vendors and route a mail from `deliver` into it, with the notifications
//! written by the file transport. Also: usage and config errors name the flag or key, and
//! `demo` plays its scenario.

mod support;

use std::path::Path;
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

fn deliver(config: &Path, mail: &str) -> serde_json::Value {
    let file = config.parent().unwrap().join("in.eml");
    std::fs::write(&file, mail).unwrap();
    let out = ok(Some(config), &["deliver", file.to_str().unwrap(), "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The header value of `name` in a rendered message.
fn header(raw: &str, name: &str) -> String {
    let m = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
    match name {
        "Reply-To" => m.reply_to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or("").to_string(),
        "To" => m.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or("").to_string(),
        "Subject" => m.subject().unwrap_or("").to_string(),
        _ => panic!("{name}"),
    }
}

fn outbox_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect()
}

#[test]
fn init_then_the_cli_alone_routes_a_vendor_reply() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gw");
    ok(None, &["init", dir.to_str().unwrap(), "--domain", "example.org"]);
    let cfg = dir.join("casegate.toml");
    let c = Some(cfg.as_path());
    ok(c, &["check-config"]);
    ok(c, &["org", "add", "Coordination Center", "--kind", "coordinator", "--domain", "example.org"]);
    ok(c, &["org", "add", "Acme", "--kind", "vendor", "--domain", "acme.example"]);
    ok(c, &["org", "add", "Globex", "--kind", "vendor", "--domain", "globex.example"]);
    ok(c, &["contact", "add", "cora@example.org", "--name", "Cora", "--org", "Coordination Center"]);
    ok(c, &["contact", "add", "alice@acme.example", "--name", "Alice", "--org", "Acme"]);
    ok(c, &["contact", "add", "bob@globex.example", "--name", "Bob Globex", "--org", "Globex"]);
    assert_eq!(ok(c, &["case", "create", "--id", "VU#123456", "--title", "Overflow in httpd"]).trim(), "VU#123456");
    ok(c, &["case", "add-participant", "VU#123456", "--org", "Acme"]);
    ok(c, &["case", "add-participant", "VU#123456", "--org", "Globex", "--anonymous", "--alias", "Vendor B"]);
    ok(c, &["case", "notify", "VU#123456", "--org", "Acme"]);
    ok(c, &["outbox", "send"]);
    let sent = outbox_files(&dir.join("outbox"));
    assert_eq!(sent.len(), 1, "one initial-contact mail to alice");
    let reply_to = header(&sent[0], "Reply-To");
    assert!(reply_to.starts_with("cases+r-") && reply_to.ends_with("@example.org"), "{reply_to}");

    let mail = format!(
        "From: Alice <alice@acme.example>\r\nTo: {reply_to}\r\nSubject: Re: [VU#123456] Overflow in httpd\r\n\
         Message-ID: <a1@acme.example>\r\n\r\nWe are affected; fix in 2.0.1.\r\n"
    );
    let o = deliver(&cfg, &mail);
    assert_eq!(o["decision"], "post", "{o}");
    assert_eq!(o["reason"], "reply-key");
    assert_eq!(o["thread"], "discussion:VU#123456");
    assert_eq!(o["recipients"], serde_json::json!(["bob@globex.example", "cora@example.org"]));
    ok(c, &["outbox", "send"]);
    let sent = outbox_files(&dir.join("outbox"));
    assert_eq!(sent.len(), 3);
    let to_bob = sent.iter().find(|m| header(m, "To") == "bob@globex.example").expect("bob got the post");
    assert!(to_bob.contains("We are affected"));
    assert!(to_bob.contains("Alice via"), "the author is named to other participants: {to_bob}");

    let listed: serde_json::Value = serde_json::from_str(&ok(c, &["outbox", "list", "--json"])).unwrap();
    assert!(listed.as_array().unwrap().iter().all(|i| i["state"] == "sent"), "{listed}");
    let cases: serde_json::Value = serde_json::from_str(&ok(c, &["case", "list", "--json"])).unwrap();
    assert_eq!(cases[0]["id"], "VU#123456");

    // The same mail again changes nothing.
    let again = deliver(&cfg, &mail);
    assert_eq!(again["reason"], "duplicate");
}

#[test]
fn route_explain_json_has_stable_fields_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gw");
    ok(None, &["init", dir.to_str().unwrap(), "--domain", "example.org"]);
    let cfg = dir.join("casegate.toml");
    let file = dir.join("m.eml");
    std::fs::write(&file, "From: Someone <x@elsewhere.example>\r\nTo: security@example.org\r\nSubject: a bug\r\nMessage-ID: <e1@x>\r\n\r\nhello\r\n").unwrap();
    let out = ok(Some(&cfg), &["route", "explain", file.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["decision", "reason", "thread", "case", "sender", "assurance", "recipients"] {
        assert!(v.get(key).is_some(), "route explain --json lacks {key}: {v}");
    }
    assert_eq!(v["decision"], "open-report");
    assert_eq!(v["sender"], "x@elsewhere.example");
    let reports = ok(Some(&cfg), &["report", "list", "--json"]);
    assert_eq!(reports.trim(), "[]", "explain must not open a report");
    let text = ok(Some(&cfg), &["route", "explain", file.to_str().unwrap()]);
    assert!(text.contains("decision:   open-report"), "{text}");
}

#[test]
fn bad_flags_and_bad_config_are_named() {
    let o = casegate(None, &["case", "create", "--titel", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--titel"));

    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "[gateway]\ndomain = 5\nsecret_file = \"missing.key\"\ncolour = \"blue\"\n[posting]\nmin_assurance = \"maybe\"\n").unwrap();
    let o = casegate(Some(&cfg), &["check-config"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    for key in ["gateway.domain", "gateway.secret_file", "gateway.colour", "posting.min_assurance"] {
        assert!(err.contains(key), "check-config does not name {key}:\n{err}");
    }

    let dir = tmp.path().join("gw");
    ok(None, &["init", dir.to_str().unwrap(), "--domain", "example.org"]);
    let good = dir.join("casegate.toml");
    let o = casegate(Some(&good), &["org", "add", "X", "--kind", "vendorr"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--kind"));
}

#[test]
fn demo_plays_the_whole_coordination() {
    let o = casegate(None, &["demo"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "demo failed: {}\n{out}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("→ open-report (new-report)"), "{out}");
    assert!(out.contains("→ post (reply-key) in discussion:VU#"), "{out}");
    assert!(out.contains("→ post (case-address) in discussion:VU#"), "{out}");
    assert!(out.contains("→ post (private-address) in private:VU#"), "{out}");
    assert!(out.contains("→ quarantine (below-assurance"), "{out}");
    assert!(out.contains("→ ignore (auto-reply"), "{out}");
    // Per-recipient sections: the anonymous vendor is never named to the others.
    let section = |who: &str| -> String {
        let start = out.find(&format!("=== {who}")).unwrap_or_else(|| panic!("no section for {who}:\n{out}"));
        let rest = &out[start + 4..];
        rest[..rest.find("=== ").unwrap_or(rest.len())].to_string()
    };
    for outsider in ["alice@acme.example", "ivan@initech.example"] {
        let s = section(outsider);
        assert!(!s.contains("Globex") && !s.contains("bob@"), "{outsider} learns who Vendor B is:\n{s}");
    }
    assert!(section("rita@reporter.example").contains("[VRF#"), "the reporter got an acknowledgement");
    assert!(!section("alice@acme.example").contains("not affected"), "a private message reached another vendor");
    let boxes = &out[out.find("=== ").unwrap()..];
    assert!(!boxes.contains("freemail"), "the forged mail's content was sent to someone");
    assert!(!boxes.contains("out of the office"), "the out-of-office reply was posted");
}

#[test]
fn coordinator_workflow_report_accept_quarantine_release_and_post() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gw");
    ok(None, &["init", dir.to_str().unwrap(), "--domain", "example.org"]);
    let cfg = dir.join("casegate.toml");
    let c = Some(cfg.as_path());
    ok(c, &["org", "add", "CC", "--kind", "coordinator", "--domain", "example.org"]);
    ok(c, &["org", "add", "Acme", "--kind", "vendor"]);
    ok(c, &["contact", "add", "cora@example.org", "--org", "CC"]);
    ok(c, &["contact", "add", "alice@acme.example", "--org", "Acme"]);

    let o = deliver(&cfg, "From: Rita <rita@r.example>\r\nTo: security@example.org\r\nSubject: bug\r\nMessage-ID: <r1@r.example>\r\n\r\nthe bug\r\n");
    assert_eq!(o["decision"], "open-report");
    let report = o["report"].as_str().unwrap().to_string();
    assert!(report.starts_with("VRF#"), "{report}");
    let listed: serde_json::Value = serde_json::from_str(&ok(c, &["report", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["id"], report.as_str());
    assert_eq!(listed[0]["state"], "new");
    let case = ok(c, &["report", "accept", &report, "--title", "The bug"]).trim().to_string();
    assert!(case.starts_with("VU#") && case.len() == 9, "{case}");
    ok(c, &["case", "add-participant", &case, "--org", "Acme"]);
    let shown: serde_json::Value = serde_json::from_str(&ok(c, &["case", "show", &case, "--json"])).unwrap();
    let roles: Vec<&str> = shown["participants"].as_array().unwrap().iter().map(|p| p["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["reporter", "vendor"]);

    // Alice writes to the case address without any authentication: held.
    let digits = &case[3..];
    let held = deliver(&cfg, &format!("From: alice@acme.example\r\nTo: cases+vu{digits}@example.org\r\nSubject: hi\r\nMessage-ID: <q1@acme.example>\r\n\r\nplease post\r\n"));
    assert_eq!(held["decision"], "quarantine");
    assert_eq!(held["reason"], "below-assurance");
    let q: serde_json::Value = serde_json::from_str(&ok(c, &["quarantine", "list", "--json"])).unwrap();
    let qid = q[0]["id"].as_i64().unwrap().to_string();
    assert!(ok(c, &["quarantine", "show", &qid]).contains("please post"));
    let out = ok(c, &["quarantine", "release", &qid, "--to", &case]);
    assert!(out.contains("2 message(s) queued"), "reporter and coordinator get the released post: {out}");
    assert_eq!(ok(c, &["quarantine", "list", "--json"]).trim(), "[]");
    let o = casegate(c, &["quarantine", "release", &qid, "--to", &case]);
    assert_eq!(o.status.code(), Some(1), "a released item cannot be released again");

    // A coordinator post from the CLI into the vendor's private thread.
    let out = ok(c, &["post", "--thread", &format!("private:{case}:Acme"), "--from", "cora@example.org", "--text", "private note"]);
    assert!(out.contains("1 message(s) queued"), "{out}");
    ok(c, &["outbox", "send"]);
    let sent = outbox_files(&dir.join("outbox"));
    let private: Vec<_> = sent.iter().filter(|m| m.contains("private note")).collect();
    assert_eq!(private.len(), 1);
    assert_eq!(header(private[0], "To"), "alice@acme.example");

    let o2 = deliver(&cfg, "From: Rita <rita@r.example>\r\nTo: security@example.org\r\nSubject: second\r\nMessage-ID: <r2@r.example>\r\n\r\nx\r\n");
    let second = o2["report"].as_str().unwrap();
    ok(c, &["report", "decline", second]);
    let o = casegate(c, &["report", "accept", second, "--title", "x"]);
    assert_eq!(o.status.code(), Some(1), "a declined report cannot be accepted");
}

/// `init --database-url` writes the URL it is given and creates the schema there
/// (PostgreSQL when CASEGATE_TEST_DATABASE_URL names a server, else an SQLite file
/// elsewhere); `migrate` then finds it up to date; a URL of another kind names the flag.
#[test]
fn init_uses_the_database_url_it_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let url = match std::env::var(support::TEST_DATABASE_ENV) {
        Ok(server) if !server.is_empty() => support::new_postgres_database(&server),
        _ => format!("sqlite://{}/elsewhere.db", tmp.path().display()),
    };
    let dir = tmp.path().join("gw");
    ok(None, &["init", dir.to_str().unwrap(), "--domain", "example.org", "--database-url", &url]);
    let cfg = dir.join("casegate.toml");
    assert!(std::fs::read_to_string(&cfg).unwrap().contains(&format!("url = \"{url}\"")));
    assert!(!dir.join("casegate.db").exists(), "no default database beside the given one");
    assert!(ok(Some(&cfg), &["migrate"]).contains("is up to date"));
    ok(Some(&cfg), &["org", "add", "Acme", "--kind", "vendor"]);
    let bad = casegate(None, &["init", tmp.path().join("gw2").to_str().unwrap(), "--domain", "example.org", "--database-url", "mysql://x/y"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--database-url"), "{}", String::from_utf8_lossy(&bad.stderr));
}
