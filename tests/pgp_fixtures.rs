//! Checked-in mail shaped like Thunderbird, K-9 Mail, Enigmail and Exchange send it
//! (`tests/fixtures/pgp/`, made by `generate.sh` with GnuPG from the test keys there): each
//! opens, verifies and routes by its protected headers, or is flagged and not merged.

mod support;

use casegate::pgp::{Coverage, Protection, SigStatus};
use std::path::Path;

const WORLD: &str = r#"
[gateway]
domain = "cert.example"
intake = ["security@cert.example"]

[[org]]
name = "CERT"
kind = "coordinator"
domains = ["cert.example"]
[[org]]
name = "Acme"
kind = "vendor"
domains = ["acme.example"]
[[org]]
name = "Globex"
kind = "vendor"

[[contact]]
email = "cora@cert.example"
name = "Cora"
org = "CERT"
[[contact]]
email = "alice@acme.example"
name = "Alice Example"
org = "Acme"
[[contact]]
email = "bob@globex.example"
name = "Bob"
org = "Globex"

[[case]]
id = "VU#111111"
title = "Overflow in widgetd"
min_assurance = "signed"
participants = [{ org = "Acme", role = "vendor" }, { org = "Globex", role = "vendor" }]
"#;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pgp")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn gateway() -> support::Gateway {
    let desc: support::WorldDesc = toml::from_str(WORLD).expect("world");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("gateway-key.asc");
    std::fs::write(&key, fixture("gateway-secret.asc")).expect("key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let cfg = support::config(dir.path(), &desc.gateway);
    let store = casegate::store::Store::open(&cfg.database.url)
        .await
        .expect("store");
    support::seed(&store, &cfg.gateway.case_prefix, &desc).await;
    let certs = casegate::pgp::keyring::parse_certs(&fixture("alice.asc")).expect("alice");
    store
        .import_keys("alice@acme.example", &certs)
        .await
        .expect("import");
    let pipeline = casegate::pipeline::Pipeline::new(store.clone(), &cfg);
    support::Gateway {
        dir,
        cfg,
        store,
        pipeline,
    }
}

struct Expect {
    file: &'static str,
    decision: &'static str,
    reason: &'static str,
    assurance: Option<&'static str>,
    /// The post's text starts with this.
    body: Option<&'static str>,
    check: fn(&Protection),
}

fn signed_and_protected(p: &Protection) {
    assert!(
        p.encrypted && p.signature == SigStatus::Good && p.coverage == Coverage::Full,
        "{p:?}"
    );
    assert!(p.protected_headers, "{p:?}");
}

fn repaired(p: &Protection) {
    assert_eq!(p.repaired.as_deref(), Some("exchange"), "{p:?}");
    assert!(p.encrypted && p.signature == SigStatus::Good, "{p:?}");
}

fn flagged(p: &Protection) {
    assert!(
        !p.encrypted && p.notes.iter().any(|n| n.contains("not decrypted")),
        "{p:?}"
    );
}

const EXPECTED: &[Expect] = &[
    Expect {
        file: "thunderbird.eml",
        decision: "post",
        reason: "case-address",
        assurance: Some("signed"),
        body: Some("Thunderbird: we reproduced the overflow"),
        check: signed_and_protected,
    },
    Expect {
        file: "k9.eml",
        decision: "post",
        reason: "case-address",
        assurance: Some("signed"),
        body: Some("K-9: patch attached to the tracker, ✓ tested on ARM."),
        check: signed_and_protected,
    },
    Expect {
        file: "enigmail.eml",
        decision: "post",
        reason: "case-address",
        assurance: Some("signed"),
        body: Some("Enigmail: affected versions are 2.0 to 2.1."),
        check: signed_and_protected,
    },
    Expect {
        file: "exchange.eml",
        decision: "post",
        reason: "case-address",
        assurance: Some("signed"),
        body: Some("Exchange: the mail went through Exchange"),
        check: repaired,
    },
    Expect {
        file: "exchange-extra.eml",
        decision: "quarantine",
        reason: "below-assurance",
        assurance: None,
        body: None,
        check: flagged,
    },
];

#[tokio::test(flavor = "multi_thread")]
async fn client_shaped_fixtures_open_and_route() {
    let gw = gateway().await;
    let mut problems = Vec::new();
    for e in EXPECTED {
        let o = gw
            .pipeline
            .ingest(&fixture(e.file), "test", e.file)
            .await
            .expect("ingest");
        if (
            o.decision.as_str(),
            o.reason.as_str(),
            o.assurance.map(|a| a.as_str()),
        ) != (e.decision, e.reason, e.assurance)
        {
            problems.push(format!(
                "{}: {} {} {:?} ({})",
                e.file, o.decision, o.reason, o.assurance, o.reason_detail
            ));
            continue;
        }
        let json: String =
            sqlx::query_scalar("SELECT protection FROM inbound_messages WHERE id = $1")
                .bind(o.inbound_id)
                .fetch_one(&gw.store.pool)
                .await
                .expect("protection");
        (e.check)(&serde_json::from_str(&json).expect("json"));
        if let (Some(want), Some(post)) = (e.body, o.post_id) {
            let body: String = sqlx::query_scalar("SELECT body FROM posts WHERE id = $1")
                .bind(post)
                .fetch_one(&gw.store.pool)
                .await
                .expect("body");
            if !body.starts_with(want) {
                problems.push(format!("{}: body {body:?}", e.file));
            }
            if body.contains("Subject:") {
                problems.push(format!(
                    "{}: a legacy-display part reached the post: {body:?}",
                    e.file
                ));
            }
            if o.thread.as_deref() != Some("discussion:VU#111111") {
                problems.push(format!("{}: thread {:?}", e.file, o.thread));
            }
        }
    }
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM posts")
        .fetch_all(&gw.store.pool)
        .await
        .expect("posts");
    assert!(
        !bodies
            .iter()
            .any(|b| b.contains("still opens") && b.contains("attacker")),
        "parts merged"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
