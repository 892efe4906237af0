//! Golden routing tests: every `tests/fixtures/NN-name.eml` is delivered, in name order,
//! into one gateway seeded from `tests/fixtures/world.toml`, and its outcome is compared
//! with `NN-name.toml`. All mismatches are reported together.

mod support;

use casegate::store::Store;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    description: String,
    action: String,
    reason: String,
    thread: Option<String>,
    assurance: Option<String>,
    recipients: Option<Vec<String>>,
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    v.sort();
    v
}

/// Replace `{{reply:THREAD:EMAIL}}`, `{{reply-tampered:THREAD:EMAIL}}` and
/// `{{reply-unknown-thread:EMAIL}}` with gateway addresses.
async fn substitute(raw: &str, g: &support::Gateway) -> String {
    let re = regex::Regex::new(r"\{\{(reply|reply-tampered|reply-unknown-thread):([^}]*)\}\}").unwrap();
    let mut out = String::new();
    let mut last = 0;
    for cap in re.captures_iter(raw) {
        let m = cap.get(0).unwrap();
        out.push_str(&raw[last..m.start()]);
        out.push_str(&template(&cap[1], &cap[2], &g.store, &g.pipeline).await);
        last = m.end();
    }
    out.push_str(&raw[last..]);
    out
}

async fn template(kind: &str, args: &str, store: &Store, p: &casegate::pipeline::Pipeline) -> String {
    let (thread, email) = match kind {
        "reply-unknown-thread" => (None, args),
        _ => {
            let (t, e) = args.rsplit_once(':').unwrap_or_else(|| panic!("template {kind}:{args}"));
            (Some(store.thread_by_name(t).await.unwrap_or_else(|e| panic!("template thread {t}: {e}"))), e)
        }
    };
    let contact = store.contact_by_email(email).await.unwrap_or_else(|e| panic!("template contact {email}: {e}")).id;
    let addr = p.composer.reply_address(thread.unwrap_or(987_654_321), contact);
    if kind != "reply-tampered" {
        return addr;
    }
    // Alter one character of the key (inside the MAC part, near the end of the local part).
    let (local, domain) = addr.split_once('@').unwrap();
    let mut chars: Vec<char> = local.chars().collect();
    let i = chars.len() - 3;
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    format!("{}@{domain}", chars.into_iter().collect::<String>())
}

fn compare(name: &str, exp: &Expect, o: &casegate::pipeline::Outcome, problems: &mut Vec<String>) {
    let mut check = |what: &str, want: &str, got: &str| {
        if want != got {
            problems.push(format!("{name} ({}): {what}: expected {want:?}, got {got:?} [{}]", exp.description, o.reason_detail));
        }
    };
    check("action", &exp.action, &o.decision);
    check("reason", &exp.reason, &o.reason);
    if exp.thread.is_some() || o.decision == "post" {
        check("thread", exp.thread.as_deref().unwrap_or("-"), o.thread.as_deref().unwrap_or("-"));
    }
    if let Some(a) = &exp.assurance {
        check("assurance", a, o.assurance.map(|a| a.as_str()).unwrap_or("-"));
    }
    if let Some(r) = &exp.recipients {
        let mut want = r.clone();
        want.sort();
        check("recipients", &want.join(","), &o.recipients.join(","));
    }
}

#[tokio::test]
async fn golden_fixtures_route_as_expected() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let world = support::load_world_desc(&root.join("world.toml"));
    let g = support::gateway(&world).await;
    let files = fixtures();
    assert!(files.len() >= 40, "expected at least 40 fixtures, found {}", files.len());
    let mut problems = Vec::new();
    for eml in &files {
        let name = eml.file_name().unwrap().to_string_lossy().into_owned();
        let exp_path = eml.with_extension("toml");
        let exp: Expect = toml::from_str(&std::fs::read_to_string(&exp_path).unwrap_or_else(|e| panic!("{name}: no expectation: {e}")))
            .unwrap_or_else(|e| panic!("{}: {e}", exp_path.display()));
        let raw = std::fs::read(eml).unwrap();
        let raw = match String::from_utf8(raw.clone()) {
            Ok(s) if s.contains("{{") => substitute(&s, &g).await.into_bytes(),
            _ => raw,
        };
        match g.pipeline.ingest(&raw, "fixture", &name).await {
            Ok(o) => compare(&name, &exp, &o, &mut problems),
            Err(e) => problems.push(format!("{name}: pipeline error {e}")),
        }
    }
    assert!(problems.is_empty(), "{} of {} fixtures misrouted:\n{}", problems.len(), files.len(), problems.join("\n"));
}

/// `route explain` gives the decision that ingesting then makes, and writes nothing.
#[tokio::test]
async fn explain_agrees_with_ingest_and_writes_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let world = support::load_world_desc(&root.join("world.toml"));
    let g = support::gateway(&world).await;
    let mut checked = 0;
    for eml in fixtures() {
        let raw = std::fs::read(&eml).unwrap();
        if String::from_utf8_lossy(&raw).contains("{{") {
            continue;
        }
        let before = g.store.count_inbound().await.unwrap();
        let a = g.pipeline.explain(&raw).await.unwrap();
        assert_eq!(g.store.count_inbound().await.unwrap(), before, "explain wrote an inbound row");
        let o = g.pipeline.ingest(&raw, "fixture", "x").await.unwrap();
        assert_eq!(a.decision.reason.code(), o.reason, "{}", eml.display());
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures checked");
}
