//! The whole OpenPGP scenario through the command line, as a coordinator team runs it:
//! `keys generate`, `keys export`, `keys import`, an encrypted report over `deliver` with
//! an encrypted acknowledgement, an embargoed case demanding `signed`, vendor notification,
//! an encrypted and signed vendor reply, and fan-out where the vendor with a key gets the
//! post encrypted and the vendor without one gets only the notice.

mod gpg;
mod support;

use gpg::{GpgHome, KeyKind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn casegate(cfg: &Path, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(support::binary())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env_remove("CASEGATE_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run casegate");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(cfg: &Path, args: &[&str]) -> String {
    let (success, out, err) = casegate(cfg, args);
    assert!(success, "casegate {args:?} failed: {err}\n{out}");
    out
}

fn deliver(cfg: &Path, name: &str, mail: &[u8]) -> serde_json::Value {
    let file = cfg.parent().expect("dir").join(name);
    std::fs::write(&file, mail).expect("write mail");
    let out = ok(cfg, &["deliver", file.to_str().expect("path"), "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Sends the outbox through the file transport and returns what arrived since `seen`,
/// as (To address, bytes).
fn send(cfg: &Path, dir: &Path, seen: &mut Vec<PathBuf>) -> Vec<(String, Vec<u8>)> {
    ok(cfg, &["outbox", "send"]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("outbox"))
        .expect("outbox")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        if seen.contains(&f) {
            continue;
        }
        let bytes = std::fs::read(&f).expect("read");
        let to = mail_parser::MessageParser::default()
            .parse(&bytes)
            .and_then(|m| {
                m.to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .map(str::to_string)
            })
            .expect("To");
        out.push((to, bytes));
        seen.push(f);
    }
    out
}

fn text_of(entity: &[u8]) -> String {
    let m = mail_parser::MessageParser::default()
        .parse(entity)
        .expect("parses");
    m.body_text(0)
        .map(|t| t.replace("\r\n", "\n"))
        .unwrap_or_default()
}

/// The gateway's directory and what the steps share.
struct Scenario {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    cfg: PathBuf,
    seen: Vec<PathBuf>,
    gateway_cert: Vec<u8>,
    fingerprint: String,
    alice: GpgHome,
}

impl Scenario {
    fn ok(&self, args: &[&str]) -> String {
        ok(&self.cfg, args)
    }

    fn send(&mut self) -> Vec<(String, Vec<u8>)> {
        send(&self.cfg, &self.dir, &mut self.seen)
    }
}

/// The organizations and their contacts.
fn directory(c: &Path) {
    for org in [
        ["CERT", "coordinator", "cert.example"],
        ["Acme", "vendor", "acme.example"],
        ["Globex", "vendor", "globex.example"],
    ] {
        ok(
            c,
            &["org", "add", org[0], "--kind", org[1], "--domain", org[2]],
        );
    }
    for person in [
        ["cora@cert.example", "Cora", "CERT"],
        ["alice@acme.example", "Alice", "Acme"],
        ["bob@globex.example", "Bob", "Globex"],
    ] {
        ok(
            c,
            &[
                "contact", "add", person[0], "--name", person[1], "--org", person[2],
            ],
        );
    }
}

/// `init`, the team's key (generated, exported for the web page, listed), the directory,
/// and Acme's published key imported; Globex has none.
fn setup() -> Scenario {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("gw");
    let init = Command::new(support::binary())
        .args([
            "init",
            dir.to_str().expect("path"),
            "--domain",
            "cert.example",
        ])
        .output()
        .expect("init");
    assert!(init.status.success());
    let cfg = dir.join("casegate.toml");
    // Our MX's Authentication-Results are trusted (DMARC evidence for reporters).
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, format!("{text}\n[posting]\ntrusted_authserv_ids = [\"mx.cert.example\"]\n")).expect("config");
    let c = cfg.as_path();
    assert!(ok(c, &["keys", "generate", "--name", "CERT Coordination"]).contains("wrote"));
    let gateway_cert = ok(c, &["keys", "export"]).into_bytes();
    assert!(gateway_cert.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    let (again, _, err) = casegate(c, &["keys", "generate"]);
    assert!(!again && err.contains("already exists"), "{err}");
    directory(c);
    let alice = GpgHome::new();
    alice.gen_key("Alice", "alice@acme.example", KeyKind::Ed25519, None, None);
    alice.import(&gateway_cert);
    let file = dir.join("alice.asc");
    std::fs::write(&file, alice.export("alice@acme.example")).expect("write");
    let imported = ok(
        c,
        &[
            "keys",
            "import",
            file.to_str().expect("path"),
            "--contact",
            "alice@acme.example",
        ],
    );
    assert!(imported.contains("(usable)"), "{imported}");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(c, &["keys", "list", "--json"])).expect("json");
    assert_eq!(listed["gateway"][0]["role"], "current");
    assert_eq!(listed["certificates"][0]["contact"], "alice@acme.example");
    assert_eq!(listed["certificates"][0]["confirmed"], true);
    let fingerprint = listed["gateway"][0]["fingerprint"]
        .as_str()
        .expect("fpr")
        .to_string();
    Scenario {
        _tmp: tmp,
        dir,
        cfg,
        seen: Vec::new(),
        gateway_cert,
        fingerprint,
        alice,
    }
}

/// An encrypted report with the reporter's key inside: an encrypted acknowledgement, and
/// the coordinator (no key) gets the notice: encrypted in, encrypted out.
fn encrypted_report(s: &mut Scenario) {
    let rex = GpgHome::new();
    rex.gen_key("Rex", "rex@reporter.example", KeyKind::Rsa3072, None, None);
    rex.import(&s.gateway_cert);
    let key = String::from_utf8(rex.export("rex@reporter.example"))
        .expect("armor")
        .replace('\n', "\r\n");
    let report = format!(
        "Content-Type: multipart/mixed; boundary=\"r\"; protected-headers=\"v1\"\r\nSubject: Overflow in widgetd\r\n\r\n\
         --r\r\nContent-Type: text/plain\r\n\r\nwidgetd 2.1 overflows on long headers.\r\n\
         --r\r\nContent-Type: application/pgp-keys\r\nContent-Disposition: attachment; filename=\"rex.asc\"\r\n\r\n{key}\r\n--r--\r\n"
    );
    let head = gpg::headers(&[
        ("From", "Rex <rex@reporter.example>"),
        ("To", "security@cert.example"),
        ("Subject", "..."),
        ("Message-ID", "<r1@reporter.example>"),
        ("Authentication-Results", "mx.cert.example; dmarc=pass header.from=reporter.example"),
    ]);
    let armored = rex.encrypt_sign(
        "rex@reporter.example",
        "cases@cert.example",
        report.as_bytes(),
    );
    let o = deliver(
        &s.cfg,
        "report.eml",
        &gpg::pgp_mime_encrypted(&head, &armored),
    );
    assert_eq!(o["decision"], "open-report", "{o}");
    let sent = s.send();
    let (_, ack) = sent
        .iter()
        .find(|(to, _)| to == "rex@reporter.example")
        .expect("acknowledgement");
    let (plain, status) = rex.decrypt(&gpg::encrypted_part(ack));
    assert!(
        status.contains("GOODSIG") && text_of(&plain).contains("filed as VRF#"),
        "{status}"
    );
    candidate_key(s, &rex.fingerprint("rex@reporter.example"));
    let (_, to_cora) = sent
        .iter()
        .find(|(to, _)| to == "cora@cert.example")
        .expect("coordinator copy");
    let raw = String::from_utf8_lossy(to_cora);
    assert!(
        !raw.contains("widgetd 2.1 overflows") && raw.contains("New post waiting"),
        "{raw}"
    );
}

/// The key attached to the report is a candidate until a coordinator confirms it; the
/// key commands name bad input; no key expires soon.
fn candidate_key(s: &Scenario, rex_fpr: &str) {
    let listed: serde_json::Value =
        serde_json::from_str(&s.ok(&["keys", "list", "--json"])).expect("json");
    let entry = |l: &serde_json::Value| {
        l["certificates"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["fingerprint"] == rex_fpr).cloned())
    };
    assert_eq!(
        entry(&listed).map(|e| (e["confirmed"].clone(), e["source"].clone())),
        Some((false.into(), "attachment".into()))
    );
    s.ok(&[
        "keys",
        "confirm",
        rex_fpr,
        "--contact",
        "rex@reporter.example",
    ]);
    let listed: serde_json::Value =
        serde_json::from_str(&s.ok(&["keys", "list", "--json"])).expect("json");
    assert_eq!(
        entry(&listed).map(|e| e["confirmed"].clone()),
        Some(true.into())
    );
    let (removed, _, err) = casegate(
        &s.cfg,
        &["keys", "remove", "0000000000000000000000000000000000000000"],
    );
    assert!(!removed && err.contains("FINGERPRINT"), "{err}");
    assert!(s.ok(&["keys", "check"]).contains("no new expiry warnings"));
}

/// An embargoed case demanding signed mail; the initial contact reaches Acme encrypted
/// (naming the gateway key) and Globex as the notice.
fn embargoed_case(s: &mut Scenario) {
    s.ok(&[
        "case",
        "create",
        "--id",
        "VU#555555",
        "--title",
        "Overflow in widgetd",
        "--embargoed",
        "--min-assurance",
        "signed",
    ]);
    for org in ["Acme", "Globex"] {
        s.ok(&["case", "add-participant", "VU#555555", "--org", org]);
        s.ok(&["case", "notify", "VU#555555", "--org", org]);
    }
    let sent = s.send();
    let (_, to_alice) = sent
        .iter()
        .find(|(to, _)| to == "alice@acme.example")
        .expect("alice notified");
    let (plain, _) = s.alice.decrypt(&gpg::encrypted_part(to_alice));
    assert!(
        text_of(&plain).contains("Overflow in widgetd"),
        "the initial contact, encrypted"
    );
    assert!(
        text_of(&plain).replace(' ', "").contains(&s.fingerprint),
        "names the gateway key"
    );
    let (_, to_bob) = sent
        .iter()
        .find(|(to, _)| to == "bob@globex.example")
        .expect("bob notified");
    assert!(
        !String::from_utf8_lossy(to_bob).contains("Overflow in widgetd"),
        "Globex: the notice only"
    );
}

/// Alice answers encrypted and signed (route explain agrees first); unsigned mail is held.
fn signed_reply(s: &mut Scenario) {
    let inner = "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\nSubject: Re: [VU#555555] Overflow in widgetd\r\nFrom: alice@acme.example\r\n\r\nConfirmed; fix in 2.1.1.\r\n";
    let head = gpg::headers(&[
        ("From", "Alice <alice@acme.example>"),
        ("To", "cases+vu555555@cert.example"),
        ("Subject", "..."),
        ("Message-ID", "<a1@acme.example>"),
    ]);
    let reply = gpg::pgp_mime_encrypted(
        &head,
        &s.alice
            .encrypt_sign("alice@acme.example", "cases@cert.example", inner.as_bytes()),
    );
    let file = s.dir.join("reply.eml");
    std::fs::write(&file, &reply).expect("write");
    let explained: serde_json::Value =
        serde_json::from_str(&s.ok(&["route", "explain", file.to_str().expect("path"), "--json"]))
            .expect("json");
    assert_eq!(explained["assurance"], "signed", "{explained}");
    assert_eq!(explained["evidence"]["protection"]["signature"], "good");
    let o = deliver(&s.cfg, "reply.eml", &reply);
    assert_eq!(
        (o["decision"].as_str(), o["assurance"].as_str()),
        (Some("post"), Some("signed")),
        "{o}"
    );
    let unsigned = "From: Alice <alice@acme.example>\r\nTo: cases+vu555555@cert.example\r\nSubject: Re: [VU#555555] x\r\nMessage-ID: <a2@acme.example>\r\n\r\nUnsigned.\r\n";
    assert_eq!(
        deliver(&s.cfg, "unsigned.eml", unsigned.as_bytes())["reason"],
        "below-assurance"
    );
}

/// A coordinator's post: Acme (key) gets it encrypted, Globex (none) only notices.
fn fan_out(s: &mut Scenario) {
    s.ok(&[
        "post",
        "--thread",
        "VU#555555",
        "--from",
        "cora@cert.example",
        "--text",
        "Public date moved to 2027-01-15.\n",
    ]);
    let sent = s.send();
    let for_alice: Vec<_> = sent
        .iter()
        .filter(|(to, _)| to == "alice@acme.example")
        .collect();
    assert_eq!(for_alice.len(), 1);
    let (plain, status) = s.alice.decrypt(&gpg::encrypted_part(&for_alice[0].1));
    assert!(status.contains("GOODSIG"), "{status}");
    assert!(text_of(&plain).starts_with("Public date moved to 2027-01-15.\n"));
    let for_bob: Vec<_> = sent
        .iter()
        .filter(|(to, _)| to == "bob@globex.example")
        .collect();
    assert_eq!(for_bob.len(), 2, "the reply and the post, each as a notice");
    for (_, bytes) in for_bob {
        let raw = String::from_utf8_lossy(bytes);
        assert!(
            !raw.contains("2027-01-15")
                && !raw.contains("2.1.1")
                && !raw.contains("Overflow in widgetd"),
            "{raw}"
        );
        assert!(raw.contains("New post waiting"));
    }
}

#[test]
fn encrypted_coordination_over_deliver() {
    let mut s = setup();
    encrypted_report(&mut s);
    embargoed_case(&mut s);
    signed_reply(&mut s);
    fan_out(&mut s);
}
