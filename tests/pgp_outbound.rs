//! Outbound OpenPGP (SPEC §5.3, §6.4): every message casegate sends to a recipient with a
//! usable certificate is decrypted and its signature verified by GnuPG and by sq from that
//! recipient's keyring, body bytes equal to the post; recipients without one get signed
//! plaintext outside an embargo and only the notice inside; expired and revoked keys never
//! receive plaintext; the acknowledgement of a report is encrypted to a key it carries.

mod gpg;
mod support;

use gpg::{GpgHome, KeyKind};
use mail_parser::{MessageParser, MimeHeaders};

const WORLD: &str = r#"
[gateway]
domain = "cert.example"
intake = ["security@cert.example"]
trusted_authserv_ids = ["mx.cert.example"]
min_assurance = "address"

[[org]]
name = "CERT"
kind = "coordinator"
domains = ["cert.example"]
[[org]]
name = "Acme"
kind = "vendor"
[[org]]
name = "Globex"
kind = "vendor"
[[org]]
name = "Initech"
kind = "vendor"
[[org]]
name = "Oldco"
kind = "vendor"
[[org]]
name = "Revco"
kind = "vendor"

[[contact]]
email = "cora@cert.example"
name = "Cora"
org = "CERT"
[[contact]]
email = "alice@acme.example"
name = "Alice"
org = "Acme"
[[contact]]
email = "bob@globex.example"
name = "Bob"
org = "Globex"
[[contact]]
email = "carl@initech.example"
name = "Carl"
org = "Initech"
[[contact]]
email = "olga@oldco.example"
name = "Olga"
org = "Oldco"
[[contact]]
email = "rita@revco.example"
name = "Rita"
org = "Revco"

[[case]]
id = "VU#333333"
title = "Secret title of an open case"
participants = [{ org = "Acme", role = "vendor" }, { org = "Globex", role = "vendor" }, { org = "Initech", role = "vendor" }, { org = "Oldco", role = "vendor" }, { org = "Revco", role = "vendor" }]

[[case]]
id = "VU#444444"
title = "Secret title under embargo"
embargoed = true
participants = [{ org = "Acme", role = "vendor" }, { org = "Globex", role = "vendor" }, { org = "Initech", role = "vendor" }, { org = "Oldco", role = "vendor" }, { org = "Revco", role = "vendor" }]
"#;

/// Everyone's GnuPG home (each holds its own secret key and the gateway's certificate).
struct People {
    alice: GpgHome,
    bob: GpgHome,
    carl: GpgHome,
    olga: GpgHome,
    rita: GpgHome,
}

struct World {
    gw: support::Gateway,
    people: People,
    gateway_cert: Vec<u8>,
    gateway_fpr: String,
}

async fn world() -> World {
    let desc: support::WorldDesc = toml::from_str(WORLD).expect("world");
    let dir = tempfile::tempdir().expect("tempdir");
    gpg::write_gateway_key(dir.path(), "cert.example");
    let cfg = support::config(dir.path(), &desc.gateway);
    let store = casegate::store::Store::open(&cfg.database.url)
        .await
        .expect("store");
    support::seed(&store, &cfg.gateway.case_prefix, &desc).await;
    let pipeline = casegate::pipeline::Pipeline::new(store.clone(), &cfg);
    let keys = cfg.pgp.keys.as_ref().expect("gateway key");
    let gateway_cert = keys.armored_public().expect("armor").into_bytes();
    let gateway_fpr = keys.fingerprint().to_hex();
    let person = |name: &str, email: &str, kind, creation: Option<&str>, expire: Option<&str>| {
        let h = GpgHome::new();
        h.gen_key(name, email, kind, creation, expire);
        h.import(&gateway_cert);
        h
    };
    let people = People {
        alice: person("Alice", "alice@acme.example", KeyKind::Rsa3072, None, None),
        bob: person("Bob", "bob@globex.example", KeyKind::Ed25519, None, None),
        carl: person("Carl", "carl@initech.example", KeyKind::Ed25519, None, None),
        olga: person(
            "Olga",
            "olga@oldco.example",
            KeyKind::Ed25519,
            Some("20200101T000000"),
            Some("20210101T000000"),
        ),
        rita: person("Rita", "rita@revco.example", KeyKind::Ed25519, None, None),
    };
    let rita_fpr = people.rita.fingerprint("rita@revco.example");
    people.rita.revoke(&rita_fpr);
    let w = World {
        gw: support::Gateway {
            dir,
            cfg,
            store,
            pipeline,
        },
        people,
        gateway_cert,
        gateway_fpr,
    };
    for (who, home) in [
        ("alice@acme.example", &w.people.alice),
        ("bob@globex.example", &w.people.bob),
        ("olga@oldco.example", &w.people.olga),
        ("rita@revco.example", &w.people.rita),
    ] {
        let certs = casegate::pgp::keyring::parse_certs(&home.export(who)).expect("certs");
        w.gw.store.import_keys(who, &certs).await.expect("import");
    }
    w
}

/// A post body with bytes that tend not to survive: trailing spaces, a `From ` line, a
/// lone dot, non-ASCII text, a long line, a `-- ` line, tabs.
fn tricky_body() -> String {
    format!(
        "PoC output:   \n$ ./poc --target 10.0.0.1\nFrom here on it crashes.\n.\nGrüße, naïve café — ✓\n\tindented\n-- \nnot a signature\n{}\n",
        "A".repeat(300)
    )
}

/// Posts as the coordinator; returns (recipient, kind, bytes) of every outbox item.
async fn post(w: &World, case: &str, body: &str) -> Vec<(String, String, Vec<u8>)> {
    let thread =
        w.gw.store
            .thread_by_name(&format!("discussion:{case}"))
            .await
            .expect("thread");
    casegate::actions::post(
        &w.gw.store,
        &w.gw.pipeline.composer,
        thread,
        "cora@cert.example",
        body,
        &[],
        false,
    )
    .await
    .expect("post");
    support::send(&w.gw).await;
    sqlx::query_as("SELECT rcpt, kind, bytes FROM outbox ORDER BY id")
        .fetch_all(&w.gw.store.pool)
        .await
        .expect("outbox")
}

fn item<'a>(items: &'a [(String, String, Vec<u8>)], rcpt: &str) -> &'a (String, String, Vec<u8>) {
    items
        .iter()
        .find(|i| i.0 == rcpt)
        .unwrap_or_else(|| panic!("nothing for {rcpt}"))
}

/// The text of the first text/plain part of a MIME entity, decoded, CRLF made LF.
fn text_of(entity: &[u8]) -> String {
    let m = MessageParser::default()
        .parse(entity)
        .expect("entity parses");
    m.body_text(0).expect("text").replace("\r\n", "\n")
}

/// The decoded text part exactly as the recipient reads it: it starts with the post body
/// byte for byte, then the footer after its own `-- ` line.
fn assert_body(entity: &[u8], body: &str) {
    let text = text_of(entity);
    assert!(
        text.starts_with(body),
        "body changed:\n{text:?}\nwanted prefix\n{body:?}"
    );
    assert!(
        text[body.len()..].contains("This thread"),
        "footer: {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_mail_opens_with_gpg_and_sq_and_carries_the_post_exactly() {
    let w = world().await;
    let body = tricky_body();
    let items = post(&w, "VU#333333", &body).await;
    for (who, home) in [
        ("alice@acme.example", &w.people.alice),
        ("bob@globex.example", &w.people.bob),
    ] {
        let (_, kind, bytes) = item(&items, who);
        assert_eq!(kind, "notification");
        let outer = MessageParser::default().parse(bytes).expect("outer");
        assert_eq!(
            outer.subject(),
            Some("[VU#333333] ..."),
            "only the token outside"
        );
        assert_eq!(
            outer.content_type().map(|c| c.subtype()),
            Some(Some("encrypted"))
        );
        let raw = String::from_utf8_lossy(bytes);
        assert!(
            !raw.contains("Secret title")
                && !raw.contains("PoC output")
                && !raw.contains("Cora via"),
            "{raw}"
        );
        let armored = gpg::encrypted_part(bytes);
        // Exactly one recipient in the packets: this one.
        let packets =
            String::from_utf8_lossy(&home.gpg(&["--list-packets"], &armored)).into_owned();
        assert_eq!(
            packets.matches(":pubkey enc packet:").count(),
            1,
            "{packets}"
        );
        let (plain, status) = home.decrypt(&armored);
        assert!(status.contains("DECRYPTION_OKAY"), "{status}");
        assert!(
            status.contains(&format!("VALIDSIG {}", w.gateway_fpr))
                || status.contains(&w.gateway_fpr),
            "gateway signature: {status}"
        );
        assert!(status.contains("GOODSIG"), "{status}");
        assert_body(&plain, &body);
        let inner = MessageParser::default().parse(&plain).expect("inner");
        assert_eq!(
            inner.subject(),
            Some("[VU#333333] Secret title of an open case"),
            "protected Subject inside"
        );
        assert!(inner.header_raw("HP-Outer").is_some());
        let (sq_plain, sq_err) =
            gpg::sq_decrypt(&home.export_secret(who), &w.gateway_cert, &armored);
        assert_eq!(sq_plain, plain, "sq and gpg agree");
        assert!(
            sq_err.contains("Good signature") || sq_err.contains("good signature"),
            "{sq_err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recipient_without_a_key_gets_signed_plaintext_outside_embargo_and_the_notice_inside() {
    let w = world().await;
    let body = tricky_body();
    let items = post(&w, "VU#333333", &body).await;
    let (_, kind, bytes) = item(&items, "carl@initech.example");
    assert_eq!(kind, "notification");
    let (signed, sig) = gpg::signed_parts(bytes);
    let (ok, status) = w.people.carl.verify_detached(&sig, &signed);
    assert!(ok && status.contains("GOODSIG"), "{status}");
    let (ok, err) = gpg::sq_verify_detached(&w.gateway_cert, &sig, &signed);
    assert!(ok, "sq verify: {err}");
    assert_body(&signed, &body);
    // The LF-only copy a mail store might make still verifies once made canonical.
    let lf = String::from_utf8_lossy(&signed).replace("\r\n", "\n");
    assert!(
        w.people
            .carl
            .verify_detached(&sig, &gpg::crlf(lf.as_bytes()))
            .0
    );

    sqlx::query("DELETE FROM outbox")
        .execute(&w.gw.store.pool)
        .await
        .expect("clear");
    let items = post(
        &w,
        "VU#444444",
        "Embargoed details nobody may read in clear.\n",
    )
    .await;
    let (_, kind, bytes) = item(&items, "carl@initech.example");
    assert_eq!(kind, "notice");
    let raw = String::from_utf8_lossy(bytes);
    assert!(
        !raw.contains("Embargoed details") && !raw.contains("Secret title"),
        "{raw}"
    );
    let (signed, sig) = gpg::signed_parts(bytes);
    assert!(
        w.people.carl.verify_detached(&sig, &signed).0,
        "the notice is signed too"
    );
    assert!(text_of(&signed).contains("send us your OpenPGP key"));
    let (_, kind, bytes) = item(&items, "bob@globex.example");
    assert_eq!(kind, "notification");
    let (plain, _) = w.people.bob.decrypt(&gpg::encrypted_part(bytes));
    assert!(text_of(&plain).starts_with("Embargoed details nobody may read in clear."));
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_revoked_and_encrypt_only_recipients_never_get_plaintext() {
    let w = world().await;
    sqlx::query("UPDATE contacts SET encrypt_only = TRUE WHERE email = 'carl@initech.example'")
        .execute(&w.gw.store.pool)
        .await
        .expect("encrypt-only");
    for case in ["VU#333333", "VU#444444"] {
        sqlx::query("DELETE FROM outbox")
            .execute(&w.gw.store.pool)
            .await
            .expect("clear");
        let items = post(&w, case, "Body that must stay encrypted.\n").await;
        for who in [
            "olga@oldco.example",
            "rita@revco.example",
            "carl@initech.example",
        ] {
            let (_, kind, bytes) = item(&items, who);
            assert_eq!(kind, "notice", "{case}: {who}");
            let raw = String::from_utf8_lossy(bytes);
            assert!(
                !raw.contains("must stay encrypted") && !raw.contains("Secret title"),
                "{case}: {who}: {raw}"
            );
            assert!(
                !raw.contains("BEGIN PGP MESSAGE"),
                "nothing is encrypted to an unusable key"
            );
        }
    }
    let listed: Vec<(String, String)> =
        w.gw.store
            .list_keys(casegate::store::now_ms())
            .await
            .expect("list")
            .into_iter()
            .map(|k| (k.contact, k.state))
            .collect();
    assert!(
        listed.contains(&("olga@oldco.example".into(), "expired".into())),
        "{listed:?}"
    );
    assert!(
        listed.contains(&("rita@revco.example".into(), "revoked".into())),
        "{listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_with_its_key_attached_gets_an_encrypted_acknowledgement() {
    let w = world().await;
    let reporter = GpgHome::new();
    reporter.gen_key("Rex", "rex@reporter.example", KeyKind::Ed25519, None, None);
    reporter.import(&w.gateway_cert);
    let key = String::from_utf8(reporter.export("rex@reporter.example")).expect("armor");
    // An encrypted report whose payload carries the reporter's key (Thunderbird's "attach
    // my public key").
    let entity = format!(
        "Content-Type: multipart/mixed; boundary=\"rep-b\"; protected-headers=\"v1\"\r\nSubject: Overflow in widgetd\r\n\r\n\
         --rep-b\r\nContent-Type: text/plain\r\n\r\nThe report. My key is attached.\r\n\
         --rep-b\r\nContent-Type: application/pgp-keys; name=\"key.asc\"\r\nContent-Disposition: attachment; filename=\"key.asc\"\r\n\r\n{}\r\n--rep-b--\r\n",
        key.replace('\n', "\r\n")
    );
    let armored = reporter.encrypt_sign(
        "rex@reporter.example",
        "cases@cert.example",
        entity.as_bytes(),
    );
    let head = gpg::headers(&[
        ("From", "Rex <rex@reporter.example>"),
        ("To", "security@cert.example"),
        ("Subject", "..."),
        ("Message-ID", "<report@reporter.example>"),
        // The reporter's provider passes DMARC at our MX: the acknowledgement may go to them.
        ("Authentication-Results", "mx.cert.example; dmarc=pass header.from=reporter.example"),
    ]);
    let mail = gpg::pgp_mime_encrypted(&head, &armored);
    let o =
        w.gw.pipeline
            .ingest(&mail, "test", "r")
            .await
            .expect("ingest");
    assert_eq!(o.decision, "open-report", "{o:?}");
    let subject: String = sqlx::query_scalar("SELECT subject FROM reports")
        .fetch_one(&w.gw.store.pool)
        .await
        .expect("report");
    assert_eq!(
        subject, "Overflow in widgetd",
        "the protected Subject names the report"
    );
    support::send(&w.gw).await;
    let ack: Vec<u8> =
        sqlx::query_scalar("SELECT bytes FROM outbox WHERE kind = 'acknowledgement'")
            .fetch_one(&w.gw.store.pool)
            .await
            .expect("ack");
    let (plain, status) = reporter.decrypt(&gpg::encrypted_part(&ack));
    assert!(status.contains("GOODSIG"), "{status}");
    assert!(text_of(&plain).contains("filed as VRF#"));
    let confirmed: i64 =
        sqlx::query_scalar("SELECT CAST(confirmed AS INTEGER) FROM certs WHERE source = 'attachment'")
            .fetch_one(&w.gw.store.pool)
            .await
            .expect("candidate");
    let confirmed = confirmed != 0;
    assert!(
        !confirmed,
        "an attached key is a candidate until a coordinator confirms it"
    );
}

/// SPEC §6.6: the digest is encrypted per §6.4 like every other message.
#[tokio::test(flavor = "multi_thread")]
async fn digests_are_encrypted_to_a_key_and_a_notice_without_one_under_embargo() {
    let w = world().await;
    sqlx::query("UPDATE contacts SET notify = 'digest' WHERE email IN ('bob@globex.example', 'carl@initech.example')")
        .execute(&w.gw.store.pool)
        .await
        .expect("digest mode");
    post(&w, "VU#444444", "Digest body under embargo.\n").await;
    sqlx::query("DELETE FROM outbox")
        .execute(&w.gw.store.pool)
        .await
        .expect("clear");
    casegate::digest::send_digests(&w.gw.store, &w.gw.pipeline.composer)
        .await
        .expect("digests");
    support::send(&w.gw).await;
    let items: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT rcpt, kind, bytes FROM outbox ORDER BY id")
            .fetch_all(&w.gw.store.pool)
            .await
            .expect("outbox");
    let (_, kind, bytes) = item(&items, "bob@globex.example");
    assert_eq!(kind, "digest");
    let (plain, status) = w.people.bob.decrypt(&gpg::encrypted_part(bytes));
    assert!(
        status.contains("GOODSIG") && text_of(&plain).contains("Digest body under embargo."),
        "{status}"
    );
    let (_, kind, bytes) = item(&items, "carl@initech.example");
    assert_eq!(kind, "notice");
    assert!(!String::from_utf8_lossy(bytes).contains("Digest body"));
}
