//! What each recipient receives, end to end through the pipeline and the coordinator
//! actions (SPEC §6.2–§6.5): one regression test per way the confidentiality promise was
//! found broken. Every message a recipient gets is decoded (headers, text and HTML parts,
//! attachment names) and searched for what they may not see.

mod support;

use casegate::model::*;
use mail_parser::{MessageParser, MimeHeaders};
use unicode_normalization::UnicodeNormalization;

const WORLD: &str = r#"
[gateway]
domain = "cert.example"
intake = ["security@cert.example"]
trusted_authserv_ids = ["mx.cert.example"]
[[org]]
name = "CERT Team"
kind = "coordinator"
domains = ["cert.example"]
[[org]]
name = "Acme Routers"
kind = "vendor"
domains = ["acme.example"]
[[org]]
name = "Globex Corp."
kind = "vendor"
domains = ["globex.example"]
[[contact]]
email = "cora@cert.example"
name = "Cora Coordinator"
org = "CERT Team"
[[contact]]
email = "alice@acme.example"
name = "Alice Acme"
org = "Acme Routers"
[[contact]]
email = "bob.smith@globex.example"
name = "Bob Smith"
org = "Globex Corp."
[[contact]]
email = "carla.diaz@globex.example"
name = "Carla Diaz"
org = "Globex Corp."
[[contact]]
email = "security@globex.example"
name = "Globex PSIRT"
org = "Globex Corp."
[[contact]]
email = "rita@reporter.example"
name = "Rita Reporter"
[[contact]]
email = "zed@quinnsec.example"
name = "Zed Quinn"
[[case]]
id = "VU#111111"
title = "Buffer overflow in Globex firmware"
participants = [
  { org = "Acme Routers", role = "vendor" },
  { org = "Globex Corp.", role = "vendor", anonymous = true, alias = "Vendor B" },
  { contact = "rita@reporter.example", role = "reporter" },
]
[[case]]
id = "VU#222222"
title = "Path traversal in Acme web UI"
participants = [
  { org = "Acme Routers", role = "vendor" },
  { contact = "zed@quinnsec.example", role = "reporter", anonymous = true, alias = "Reporter" },
]
"#;

async fn gateway() -> support::Gateway {
    let world: support::WorldDesc = toml::from_str(WORLD).unwrap();
    support::gateway(&world).await
}

const DMARC_GLOBEX: &str =
    "Authentication-Results: mx.cert.example; dmarc=pass header.from=globex.example\r\n";

/// A plain mail into the case discussion of VU#111111.
fn mail(from: &str, domain: &str, id: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: cases+vu111111@cert.example\r\n{extra_headers}Subject: Re: [VU#111111] update\r\n\
         Authentication-Results: mx.cert.example; dmarc=pass header.from={domain}\r\n\
         Message-ID: <{id}@{domain}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A multipart mail: a text part and attachments `(file name, content)`.
fn mail_with_attachments(
    from: &str,
    domain: &str,
    id: &str,
    text: &str,
    files: &[(&str, &str)],
) -> Vec<u8> {
    let mut s = format!(
        "From: {from}\r\nTo: cases+vu111111@cert.example\r\nSubject: Re: [VU#111111] files\r\n\
         Authentication-Results: mx.cert.example; dmarc=pass header.from={domain}\r\n\
         Message-ID: <{id}@{domain}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n\
         --b0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n"
    );
    for (name, content) in files {
        // RFC 2231 §4: the file name percent-encoded in UTF-8.
        let encoded: String = name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        s.push_str(&format!(
            "--b0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename*=utf-8''{encoded}\r\n\r\n{content}\r\n"
        ));
    }
    s.push_str("--b0--\r\n");
    s.into_bytes()
}

/// Every message sent to `rcpt`, oldest first.
async fn messages_to(g: &support::Gateway, rcpt: &str) -> Vec<Vec<u8>> {
    // The outbox worker renders queued deliveries when it sends them.
    support::send(g).await;
    sqlx::query_scalar("SELECT bytes FROM outbox WHERE rcpt = $1 ORDER BY id")
        .bind(rcpt)
        .fetch_all(&g.store.pool)
        .await
        .unwrap()
}

/// Everything a reader of the message can see: the raw bytes, every decoded header value,
/// every text and HTML part, every attachment name.
fn seen(bytes: &[u8]) -> String {
    let m = MessageParser::default()
        .parse(bytes)
        .expect("the message parses");
    let mut out = String::from_utf8_lossy(bytes).into_owned();
    for part in &m.parts {
        for h in part.headers() {
            if let Some(t) = h.value().as_text() {
                out.push_str(&format!("\n{t}"));
            }
            for a in h
                .value()
                .as_address()
                .map(|a| a.iter().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                out.push_str(&format!(
                    "\n{} <{}>",
                    a.name().unwrap_or(""),
                    a.address().unwrap_or("")
                ));
            }
        }
        if let Some(t) = part.text_contents() {
            out.push_str(&format!("\n{t}"));
        }
        if let Some(n) = part.attachment_name() {
            out.push_str(&format!("\n{n}"));
        }
    }
    out
}

/// Lowercase letters and digits only, after Unicode NFKC: what a reader recognises
/// whatever the spacing, punctuation or width of the characters.
fn skeleton(s: &str) -> String {
    s.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Fails when any message to `rcpt` shows one of `secrets` in any spelling.
async fn assert_hidden(g: &support::Gateway, rcpt: &str, secrets: &[&str]) {
    let msgs = messages_to(g, rcpt).await;
    assert!(!msgs.is_empty(), "{rcpt} got nothing");
    for bytes in msgs {
        let s = skeleton(&seen(&bytes));
        for secret in secrets {
            assert!(
                !s.contains(&skeleton(secret)),
                "{secret:?} reached {rcpt}:\n{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

fn from_display(bytes: &[u8]) -> String {
    let m = MessageParser::default().parse(bytes).expect("parses");
    m.from()
        .and_then(|a| a.first())
        .and_then(|a| a.name())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn html_part_of_an_anonymous_vendor_does_not_reach_outsiders() {
    let g = gateway().await;
    let raw = format!(
        "From: Bob Smith <bob.smith@globex.example>\r\nTo: cases+vu111111@cert.example\r\nSubject: Re: [VU#111111] status\r\n\
         {DMARC_GLOBEX}Message-ID: <html1@globex.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWe are affected.\r\n\
         --alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>We are affected.</p>\
         <p>--<br>Bob Smith | Globex Corp. | <a href=\"mailto:bob.smith@globex.example\">mail</a></p>\r\n--alt--\r\n"
    );
    let o = g
        .pipeline
        .ingest(raw.as_bytes(), "test", "html")
        .await
        .unwrap();
    assert_eq!(o.decision, "post", "{o:?}");
    assert_hidden(
        &g,
        "alice@acme.example",
        &["Bob Smith", "Globex", "bob.smith@globex.example"],
    )
    .await;
}

#[tokio::test]
async fn reply_addresses_quoted_in_a_post_are_removed_before_fan_out() {
    let g = gateway().await;
    let alice = g
        .store
        .contact_by_email("alice@acme.example")
        .await
        .unwrap()
        .id;
    let private = g
        .store
        .thread_by_name("private:VU#111111:Acme Routers")
        .await
        .unwrap();
    let discussion = g
        .store
        .thread_by_name("discussion:VU#111111")
        .await
        .unwrap();
    let keys = [
        g.pipeline.composer.reply_address(private, alice),
        g.pipeline.composer.reply_address(discussion, alice),
    ];
    let body = format!(
        "Agreed.\n\nOn Monday the gateway wrote:\n> To write privately to the coordinators, mail {}\n> Reply to <{}>\n> mailto:{}\n",
        keys[0],
        keys[1].to_uppercase(),
        keys[0]
    );
    let o = g
        .pipeline
        .ingest(
            &mail(
                "Alice Acme <alice@acme.example>",
                "acme.example",
                "q1",
                "",
                &body,
            ),
            "test",
            "q",
        )
        .await
        .unwrap();
    assert_eq!(o.decision, "post", "{o:?}");
    for rcpt in [
        "cora@cert.example",
        "bob.smith@globex.example",
        "rita@reporter.example",
    ] {
        for bytes in messages_to(&g, rcpt).await {
            let text = String::from_utf8_lossy(&bytes).to_lowercase();
            for key in &keys {
                assert!(
                    !text.contains(&key.to_lowercase()),
                    "alice's reply address {key} reached {rcpt}:\n{text}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_coordinator_quoting_an_anonymous_vendor_is_redacted_for_outsiders() {
    let g = gateway().await;
    let body = "Forwarding the vendor's answer.\n\n---------- Forwarded message ----------\n\
                From: Bob Smith <bob.smith@globex.example>\nDate: Mon, 2 Mar 2026\n\n\
                > Globex Corp. will ship a fix in 4.2.\n";
    let raw = mail(
        "Cora Coordinator <cora@cert.example>",
        "cert.example",
        "c1",
        "",
        body,
    );
    let o = g.pipeline.ingest(&raw, "test", "c").await.unwrap();
    assert_eq!(o.decision, "post", "{o:?}");
    assert_hidden(
        &g,
        "alice@acme.example",
        &["Bob Smith", "Globex", "bob.smith@globex.example"],
    )
    .await;
    assert_hidden(&g, "rita@reporter.example", &["Bob Smith", "Globex"]).await;
    let colleague = messages_to(&g, "carla.diaz@globex.example").await;
    assert!(
        String::from_utf8_lossy(&colleague[0]).contains("Bob Smith"),
        "colleagues see their own names"
    );
}

#[tokio::test]
async fn redaction_matches_spacing_abbreviation_file_name_and_colleague_variants() {
    let g = gateway().await;
    let text = "Bob\u{a0}Smith and Bob  Smith here, for Globex (GLOBEX CORP).\n\
                Carla Diaz (carla.diaz@globex.example) built it on ci.build.globex.example.\n";
    let files = [
        ("bob_smith-notes.txt", "notes"),
        ("BobSmith.log", "log"),
        ("carla-diaz.txt", "x"),
    ];
    let raw = mail_with_attachments(
        "Bob Smith <bob.smith@globex.example>",
        "globex.example",
        "v1",
        text,
        &files,
    );
    let o = g.pipeline.ingest(&raw, "test", "v").await.unwrap();
    assert_eq!(o.decision, "post", "{o:?}");
    assert_hidden(
        &g,
        "alice@acme.example",
        &["Bob Smith", "Globex", "Carla Diaz", "globex.example"],
    )
    .await;
    // A lone anonymous reporter: their own domain and its sub-domains.
    let raw = "From: Zed Quinn <zed@quinnsec.example>\r\nTo: cases+vu222222@cert.example\r\nSubject: Re: [VU#222222] x\r\n\
         Authentication-Results: mx.cert.example; dmarc=pass header.from=quinnsec.example\r\nMessage-ID: <z1@quinnsec.example>\r\n\r\n\
         Reproduced on lab.quinnsec.example; see https://quinnsec.example/advisory.\r\n";
    let o = g
        .pipeline
        .ingest(raw.as_bytes(), "test", "z")
        .await
        .unwrap();
    assert_eq!(o.decision, "post", "{o:?}");
    assert_hidden(&g, "alice@acme.example", &["Zed Quinn", "quinnsec"]).await;
    let cora = messages_to(&g, "cora@cert.example").await;
    assert!(
        String::from_utf8_lossy(cora.last().unwrap()).contains("quinnsec"),
        "coordinators see the reporter"
    );
}

#[tokio::test]
async fn generic_local_parts_of_an_anonymous_vendor_are_not_redacted() {
    let g = gateway().await;
    let body = "Set a Content-Security-Policy header; security and info pages are fine. Mail security@globex.example.";
    let raw = mail(
        "Globex PSIRT <security@globex.example>",
        "globex.example",
        "g1",
        "",
        body,
    );
    let o = g.pipeline.ingest(&raw, "test", "g").await.unwrap();
    assert_eq!(o.decision, "post", "{o:?}");
    let msgs = messages_to(&g, "alice@acme.example").await;
    let text = MessageParser::default()
        .parse(&msgs[0])
        .unwrap()
        .body_text(0)
        .unwrap()
        .to_string();
    assert!(
        text.contains("Content-Security-Policy header; security and info pages"),
        "over-redacted:\n{text}"
    );
    assert!(!text.contains("globex"), "{text}");
}

/// Two worlds that differ only in who the anonymous vendor is: an outsider must get the same
/// bytes in both (nothing in the message, not even the MIME boundary, depends on it).
#[tokio::test]
async fn nothing_an_outsider_gets_depends_on_the_hidden_identity() {
    use casegate::audience::fan_out;
    use casegate::compose::Ids;
    use casegate::view::{Arrival, Author, PostItem};
    let g = gateway().await;
    let render = |org: &str, person: &str| {
        let w = boundary_world(org, person);
        let t = w.thread(100).unwrap().clone();
        let att = Attachment {
            filename: format!("{org}-crash.txt"),
            content_type: "text/plain".into(),
            bytes: b"trace".to_vec(),
        };
        let body = format!("{person} here, from {org}.");
        let post = PostItem {
            thread: &t,
            author: Author::Contact(3),
            body: &body,
            attachments: std::slice::from_ref(&att),
            created_at_ms: 0,
            pinned: false,
            direct: &[],
            arrival: Arrival::Plain,
        };
        let fan = fan_out(&w, &post);
        let d = fan
            .deliveries
            .iter()
            .find(|d| d.contact == 2)
            .expect("alice is a recipient")
            .clone();
        let ids = Ids {
            message_id: "fixed.1@cert.example",
            outbox_id: 1,
            earlier: &[],
        };
        g.pipeline
            .composer
            .render_delivery(&w, &post, &d, &ids, 1_767_225_600_000)
            .expect("rendered")
            .1
            .bytes
    };
    let a = render("Globex", "Bob Smith");
    let b = render("Hooli", "Gavin Belson");
    assert_eq!(
        String::from_utf8_lossy(&a),
        String::from_utf8_lossy(&b),
        "the outsider's message depends on the hidden identity"
    );
}

fn boundary_world(org: &str, person: &str) -> World {
    let lower = org.to_lowercase();
    let contact = |id, email: String, name: &str, org| ContactSnap {
        id,
        email,
        name: name.into(),
        org: Some(org),
        notify: NotifyMode::Immediate,
        encrypt_only: false,
        bouncing: false,
    };
    World {
        orgs: vec![
            OrgSnap {
                id: 1,
                name: "CERT Team".into(),
                kind: OrgKind::Coordinator,
                domains: vec!["cert.example".into()],
            },
            OrgSnap {
                id: 2,
                name: "Acme Routers".into(),
                kind: OrgKind::Vendor,
                domains: vec!["acme.example".into()],
            },
            OrgSnap {
                id: 3,
                name: org.into(),
                kind: OrgKind::Vendor,
                domains: vec![format!("{lower}.example")],
            },
        ],
        contacts: vec![
            contact(1, "cora@cert.example".into(), "Cora Coordinator", 1),
            contact(2, "alice@acme.example".into(), "Alice Acme", 2),
            contact(
                3,
                format!(
                    "{}@{lower}.example",
                    person.split(' ').next().unwrap().to_lowercase()
                ),
                person,
                3,
            ),
        ],
        cases: vec![CaseSnap {
            id: 1,
            public_id: "VU#111111".into(),
            title: "Buffer overflow".into(),
            state: CaseState::Open,
            embargoed: false,
            min_assurance: None,
            discussion: 100,
            private_threads: vec![(2, 101), (3, 102)],
            participants: vec![
                ParticipantSnap {
                    org: Some(2),
                    contact: None,
                    role: Role::Vendor,
                    anonymous: false,
                    alias: String::new(),
                },
                ParticipantSnap {
                    org: Some(3),
                    contact: None,
                    role: Role::Vendor,
                    anonymous: true,
                    alias: "Vendor B".into(),
                },
            ],
        }],
        reports: vec![],
        threads: vec![
            ThreadSnap {
                id: 100,
                kind: ThreadKind::Discussion,
                case: Some(1),
                org: None,
                report: None,
            },
            ThreadSnap {
                id: 101,
                kind: ThreadKind::Private,
                case: Some(1),
                org: Some(2),
                report: None,
            },
            ThreadSnap {
                id: 102,
                kind: ThreadKind::Private,
                case: Some(1),
                org: Some(3),
                report: None,
            },
        ],
    }
}

#[tokio::test]
async fn case_titles_naming_an_anonymous_vendor_are_redacted_for_outsiders() {
    let g = gateway().await;
    casegate::actions::notify_vendor(&g.store, &g.pipeline.composer, "VU#111111", "Acme Routers")
        .await
        .unwrap();
    let raw = mail(
        "Cora Coordinator <cora@cert.example>",
        "cert.example",
        "t1",
        "",
        "A status update.",
    );
    g.pipeline.ingest(&raw, "test", "t").await.unwrap();
    let msgs = messages_to(&g, "alice@acme.example").await;
    assert_eq!(msgs.len(), 2, "initial contact and notification");
    assert_hidden(&g, "alice@acme.example", &["Globex"]).await;
    let bob = messages_to(&g, "bob.smith@globex.example").await;
    assert!(
        String::from_utf8_lossy(&bob[0]).contains("Globex"),
        "the vendor itself sees the title"
    );
}

#[tokio::test]
async fn reserved_display_names_and_bidi_controls_never_reach_recipients() {
    let g = gateway().await;
    // An unknown sender, released by a coordinator: never shown as the coordinators.
    let raw = mail(
        "Mallory <mallory@evil.example>",
        "evil.example",
        "m1",
        "",
        "Please update your router.",
    );
    let o = g.pipeline.ingest(&raw, "test", "m").await.unwrap();
    assert_eq!(o.decision, "quarantine", "{o:?}");
    let discussion = g
        .store
        .thread_by_name("discussion:VU#111111")
        .await
        .unwrap();
    casegate::actions::release(
        &g.store,
        &g.pipeline.composer,
        o.quarantine_id.unwrap(),
        discussion,
    )
    .await
    .unwrap();
    let shown = from_display(&messages_to(&g, "alice@acme.example").await[0]);
    assert!(
        !skeleton(&shown).starts_with("coordinators"),
        "an unknown sender is shown as {shown:?}"
    );
    // A reporter who calls themself after the coordinators' organization.
    let report = "From: CERT Team <mallory@evil.example>\r\nTo: security@cert.example\r\nSubject: urgent\r\n\
                  Message-ID: <r1@evil.example>\r\n\r\nhello\r\n";
    g.pipeline
        .ingest(report.as_bytes(), "test", "r")
        .await
        .unwrap();
    let cora = messages_to(&g, "cora@cert.example").await;
    let shown = from_display(cora.last().unwrap());
    assert!(
        !skeleton(&shown).contains("certteam"),
        "a reporter is shown as {shown:?}"
    );
    // Bidi controls in a display name and an attachment name.
    let report = "From: \"Eve \u{202e}rotanidrooC\" <eve@evil.example>\r\nTo: security@cert.example\r\nSubject: =?utf-8?q?inv=E2=80=AEoice?=\r\n\
                  Message-ID: <r2@evil.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n";
    g.pipeline
        .ingest(report.as_bytes(), "test", "r2")
        .await
        .unwrap();
    let files = [("invoice\u{202e}txt.exe", "x")];
    let raw = mail_with_attachments(
        "Alice Acme <alice@acme.example>",
        "acme.example",
        "b1",
        "see file",
        &files,
    );
    g.pipeline.ingest(&raw, "test", "b").await.unwrap();
    for bytes in messages_to(&g, "cora@cert.example").await {
        let s = seen(&bytes);
        assert!(!s.contains('\u{202e}'), "a bidi control reached cora:\n{s}");
    }
}

#[tokio::test]
async fn copying_everyone_does_not_silence_a_non_coordinator_post() {
    let g = gateway().await;
    let cc = "Cc: alice@acme.example, cora@cert.example, rita@reporter.example\r\n";
    let raw = mail(
        "Bob Smith <bob.smith@globex.example>",
        "globex.example",
        "cc1",
        cc,
        "We are affected.",
    );
    let o = g.pipeline.ingest(&raw, "test", "cc").await.unwrap();
    assert_eq!(o.decision, "post", "{o:?}");
    for rcpt in [
        "alice@acme.example",
        "cora@cert.example",
        "rita@reporter.example",
    ] {
        assert!(
            o.recipients.contains(&rcpt.to_string()),
            "{rcpt} was not sent the post: {:?}",
            o.recipients
        );
    }
    // A coordinator's Cc still counts (SPEC §6.5).
    let raw = mail(
        "Cora Coordinator <cora@cert.example>",
        "cert.example",
        "cc2",
        "Cc: alice@acme.example\r\n",
        "Noted.",
    );
    let o = g.pipeline.ingest(&raw, "test", "cc2").await.unwrap();
    assert!(
        !o.recipients.contains(&"alice@acme.example".to_string()),
        "{:?}",
        o.recipients
    );
}
