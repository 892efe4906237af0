//! Rendering a notification with hostile text from mail: display names, subjects (case
//! titles), body and file names with CR/LF, NUL, bidi controls and encoded-word tricks.
//! The rendered message must parse, with exactly one From, To, Reply-To and Subject, no
//! header injected, and the attachment name kept on one line.
#![no_main]

use casegate::mail::address::shown_name;
use casegate::mail::AddressBook;
use casegate::model::ThreadKind;
use casegate::render::{notification::notification, Addressing, Gateway};
use casegate::view::{FileView, PostContent, ThreadView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut f = text.split('\u{1}');
    let mut next = || f.next().unwrap_or_default().to_string();
    let (author, title, body, filename, to_name, org) = (next(), next(), next(), next(), next(), next());
    // Display names reach the renderer from mail through the address parser, which makes
    // them safe to show (`shown_name`); the renderer's own quoting of `"` in a display name
    // is an open finding (docs/fuzzing.md, F1).
    let (author, to_name) = (shown_name(&author), shown_name(&to_name));
    let gw = Gateway {
        name: "CERT Coordination".into(),
        book: AddressBook { domain: "cert.example".into(), local_part: "cases".into(), intake: vec!["security@cert.example".into()], case_prefix: "VU#".into() },
    };
    let post = PostContent {
        thread: ThreadView { token: "VU#111111".into(), title, kind: ThreadKind::Private, org_label: Some(org) },
        author,
        text: body.into(),
        files: vec![
            FileView::Forward { name: filename.clone(), content_type: "application/octet-stream", bytes: b"PoC"[..].into() },
            FileView::Listed { name: filename, size: 1 << 30, sha256: "0".repeat(64) },
        ],
        created_at_ms: 1_795_000_000_000,
    };
    let to = Addressing {
        to_name,
        to: "bob@globex.example".into(),
        reply_to: "cases+r-aaaa@cert.example".into(),
        private_reply_to: Some("cases+r-bbbb@cert.example".into()),
        message_id: "n1@cert.example".into(),
        in_reply_to: None,
        references: vec![],
        bounce: "cases+b-cccc@cert.example".into(),
    };
    let r = notification(&gw, &post, &to, 1_795_000_000_000);
    let m = casegate::mail::parse::parse(&r.bytes).expect("a rendered message parses");
    for name in ["From", "To", "Reply-To", "Subject", "Message-ID"] {
        assert_eq!(m.header_values(name).count(), 1, "{name} in {:?}", String::from_utf8_lossy(&r.bytes));
    }
    for name in ["Bcc", "Cc", "Sender", "Content-Disposition"] {
        assert_eq!(m.header_values(name).count(), 0, "{name} injected: {:?}", String::from_utf8_lossy(&r.bytes));
    }
    assert_eq!(m.to.len(), 1);
    assert_eq!(m.to[0].address, "bob@globex.example");
    assert_eq!(m.from.as_ref().map(|f| f.address.as_str()), Some("cases@cert.example"), "{:?}", String::from_utf8_lossy(&r.bytes));
    assert!(m.attachments.iter().all(|a| !a.filename.contains(['\r', '\n'])));
});
