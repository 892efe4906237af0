//! The whole route-explain path on an in-memory world, without a database: parse, machine
//! mail, DMARC verdict, gateway addresses and reply keys, threading, subject tokens,
//! `route::decide`, and the audience of a post.
#![no_main]

use casegate::audience::fan_out;
use casegate::view::{Arrival, Author, PostItem};
use casegate::mail::tokens::{classify_address, subject_tokens, GatewayAddress};
use casegate::mail::{auth_results, machine, parse, AddressBook, Limits};
use casegate::model::*;
use casegate::route::{self, Evidence, Policy, ReplyKeyEvidence, ThreadingVia};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn book() -> AddressBook {
    AddressBook {
        domain: "cert.example".into(),
        local_part: "cases".into(),
        intake: vec!["security@cert.example".into()],
        case_prefix: "VU#".into(),
    }
}

/// The golden fixtures' world in memory: a coordinator, two vendors (one anonymous), a
/// lone reporter, an open case with private threads, a closed case and a report.
fn world() -> World {
    let org = |id, name: &str, kind, domain: &str| OrgSnap { id, name: name.into(), kind, domains: vec![domain.into()] };
    let contact = |id, email: &str, org| ContactSnap { id, email: email.into(), name: email.into(), org, notify: NotifyMode::Immediate, encrypt_only: false, bouncing: false };
    let vendor = |o, anonymous| ParticipantSnap { org: Some(o), contact: None, role: Role::Vendor, anonymous, alias: if anonymous { "Vendor B".into() } else { String::new() } };
    let thread = |id, kind, case, org, report| ThreadSnap { id, kind, case, org, report };
    let case = |id, public_id: &str, state, discussion, private_threads| CaseSnap {
        id,
        public_id: String::from(public_id),
        title: "Buffer overflow in AcmeOS httpd".into(),
        state,
        embargoed: false,
        min_assurance: None,
        discussion,
        private_threads,
        participants: vec![vendor(2, false), vendor(3, true)],
    };
    World {
        orgs: vec![org(1, "CERT Team", OrgKind::Coordinator, "cert.example"), org(2, "Acme Routers", OrgKind::Vendor, "acme.example"), org(3, "Globex", OrgKind::Vendor, "globex.example")],
        contacts: vec![contact(1, "cora@cert.example", Some(1)), contact(2, "alice@acme.example", Some(2)), contact(3, "bob@globex.example", Some(3)), contact(4, "rita@reporter.example", None)],
        cases: vec![case(10, "VU#111111", CaseState::Open, 100, vec![(2, 101), (3, 102)]), case(11, "VU#333333", CaseState::Closed, 110, vec![])],
        reports: vec![ReportSnap { id: 20, public_id: "VRF#26-11-BCDFG".into(), reporter: 4, state: ReportState::New, case: None, thread: 200, subject: "Overflow".into() }],
        threads: vec![
            thread(100, ThreadKind::Discussion, Some(10), None, None),
            thread(101, ThreadKind::Private, Some(10), Some(2), None),
            thread(102, ThreadKind::Private, Some(10), Some(3), None),
            thread(110, ThreadKind::Discussion, Some(11), None, None),
            thread(200, ThreadKind::Report, None, None, Some(20)),
        ],
    }
}

/// Message-IDs the gateway "sent", and their threads.
fn thread_of(message_id: &str) -> Option<ThreadId> {
    match message_id {
        "n1.alice@cert.example" => Some(100),
        "n2.bob@cert.example" => Some(102),
        "n4.rita@cert.example" => Some(200),
        _ => None,
    }
}

fn address_signal(addr: &str, book: &AddressBook, ev: &mut Evidence) {
    match classify_address(addr, book) {
        Some(GatewayAddress::Intake) => ev.to_intake = true,
        Some(GatewayAddress::Case { public_id }) => ev.case_addresses.push(public_id),
        Some(GatewayAddress::CasePrivate { public_id }) => ev.private_addresses.push(public_id),
        Some(GatewayAddress::CaseInfo { public_id }) => ev.info_addresses.push(public_id),
        Some(GatewayAddress::Reply { key }) => ev.reply_keys.push(match casegate::replykey::parse_reply_key(SECRET, &key) {
            Ok((thread, contact)) => ReplyKeyEvidence::Valid { thread, contact },
            Err(_) => ReplyKeyEvidence::Invalid,
        }),
        Some(GatewayAddress::Bounce { key }) => ev.bounce_outbox = casegate::replykey::parse_bounce_key(SECRET, &key).ok(),
        _ => {}
    }
}

fuzz_target!(|raw: &[u8]| {
    let book = book();
    let world = world();
    let mut ev = Evidence::empty(raw.len() as u64, 25 << 20);
    let inb = match parse::parse_with(raw, &Limits::default()) {
        Ok(i) => i,
        Err(e) => {
            ev.parse_error = Some(e.to_string());
            let d = route::decide(&ev, &world, &Policy { min_assurance: Assurance::Dmarc });
            assert_eq!(d.reason.code(), "unparseable");
            return;
        }
    };
    if inb.from.is_none() {
        ev.parse_error = Some("no From address".into());
    }
    ev.damaged = inb.damaged.clone();
    ev.from = inb.from.as_ref().map(|f| f.key());
    ev.direct_recipients = inb.direct_recipients();
    ev.machine = machine::classify(&inb, &book);
    ev.dmarc = auth_results::dmarc_result(&inb, &["mx.cert.example".to_string()]);
    for addr in inb.recipient_addresses() {
        address_signal(&addr, &book, &mut ev);
    }
    ev.threading = inb.in_reply_to.iter().find_map(|m| thread_of(m)).map(|t| (t, ThreadingVia::InReplyTo))
        .or_else(|| inb.references.iter().rev().find_map(|m| thread_of(m)).map(|t| (t, ThreadingVia::References)));
    ev.subject_tokens = subject_tokens(&inb.subject, &book);
    // SPEC §8: a status block at the top of the text (as the pipeline gathers it).
    ev.status = casegate::status::parse(&inb.text);
    ev.attachments = inb.attachments.len();
    let d = route::decide(&ev, &world, &Policy { min_assurance: Assurance::Dmarc });
    let _ = route::assurance(&ev, &world, None);
    let _ = d.reason.to_string();
    if let Action::Post { thread, .. } = d.action {
        let t = world.thread(thread).expect("a post goes to a known thread");
        let author = ev.from.as_deref().and_then(|f| world.contact_by_email(f)).map(|c| c.id);
        assert!(author.is_some(), "only known contacts post");
        let post = PostItem {
            thread: t,
            author: author.map_or(Author::Unknown, Author::Contact),
            body: &inb.text,
            attachments: &inb.attachments,
            created_at_ms: 1_795_000_000_000,
            pinned: false,
            direct: &ev.direct_recipients,
            arrival: Arrival::Plain,
        };
        let fan = fan_out(&world, &post);
        assert!(fan.deliveries.iter().all(|x| Some(x.contact) != author), "the author never gets a copy");
    }
});
