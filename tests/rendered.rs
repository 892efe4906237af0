//! Golden rendered mail: every kind of message the gateway sends, for a fixed world, to one
//! recipient inside and one outside an anonymous vendor, compared byte for byte with
//! `tests/golden/rendered/*.eml` (unsealed: the gateway has no key here).
//!
//! To review a change in what recipients get, and accept it:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test --test rendered && git diff tests/golden/rendered
//! ```

use casegate::audience::fan_out;
use casegate::compose::{Composer, Ids};
use casegate::mail::AddressBook;
use casegate::model::*;
use casegate::pgp::PgpState;
use casegate::render::Gateway;
use casegate::status::{StatusSnap, VendorStatus};
use casegate::view::{Arrival, Author, CaseFacts, Item, PostItem, VendorContact};
use casegate::workflow::{BouncingLine, CaseLine, CoordinatorNote, Daily, DeadLine, HeldLine, VendorLine};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// 2026-03-02 09:30:00 UTC.
const NOW: i64 = 1_772_443_800_000;

const CORA: ContactId = 10;
const ALICE: ContactId = 20;
const BOB: ContactId = 30;
const CARLA: ContactId = 31;
const DAN: ContactId = 32;
const RITA: ContactId = 40;

fn composer() -> Composer {
    Composer {
        gateway: Gateway {
            name: "CERT Coordination".into(),
            book: AddressBook {
                domain: "cert.example".into(),
                local_part: "cases".into(),
                intake: vec!["security@cert.example".into()],
                case_prefix: "VU#".into(),
            },
        },
        secret: b"golden rendered mail, not a secret".to_vec(),
        max_attachment_bytes: 64,
        pgp: Arc::new(PgpState::new(None)),
    }
}

fn contact(
    id: ContactId,
    name: &str,
    email: &str,
    org: Option<OrgId>,
    notify: NotifyMode,
) -> ContactSnap {
    ContactSnap {
        id,
        email: email.into(),
        name: name.into(),
        org,
        notify,
        encrypt_only: false,
        bouncing: false,
    }
}

/// CERT Team (Cora); Acme Routers (Alice, digest); Globex Corp., anonymous as "Vendor B"
/// (Bob, Carla, Dan at security@, digest); Rita, the reporter. VU#111111 names Globex in
/// its title.
fn world() -> World {
    let org = |id, name: &str, kind, domain: &str| OrgSnap {
        id,
        name: name.into(),
        kind,
        domains: vec![domain.into()],
    };
    let participant = |org, contact, role, alias: &str| ParticipantSnap {
        org,
        contact,
        role,
        anonymous: !alias.is_empty(),
        alias: alias.into(),
    };
    let thread = |id, kind, case, org, report| ThreadSnap {
        id,
        kind,
        case,
        org,
        report,
    };
    World {
        orgs: vec![
            org(1, "CERT Team", OrgKind::Coordinator, "cert.example"),
            org(2, "Acme Routers", OrgKind::Vendor, "acme.example"),
            org(3, "Globex Corp.", OrgKind::Vendor, "globex.example"),
        ],
        contacts: vec![
            contact(
                CORA,
                "Cora Coordinator",
                "cora@cert.example",
                Some(1),
                NotifyMode::Immediate,
            ),
            contact(
                ALICE,
                "Alice Acme",
                "alice@acme.example",
                Some(2),
                NotifyMode::Digest,
            ),
            contact(
                BOB,
                "Bob Smith",
                "bob.smith@globex.example",
                Some(3),
                NotifyMode::Immediate,
            ),
            contact(
                CARLA,
                "Carla Diaz",
                "carla.diaz@globex.example",
                Some(3),
                NotifyMode::Immediate,
            ),
            contact(
                DAN,
                "Dan Ortiz",
                "security@globex.example",
                Some(3),
                NotifyMode::Digest,
            ),
            contact(
                RITA,
                "Rita Reporter",
                "rita@reporter.example",
                None,
                NotifyMode::Immediate,
            ),
        ],
        cases: vec![CaseSnap {
            id: 1,
            public_id: "VU#111111".into(),
            title: "Buffer overflow in Globex firmware".into(),
            state: CaseState::Open,
            embargoed: false,
            min_assurance: None,
            discussion: 100,
            private_threads: vec![(2, 101), (3, 102)],
            participants: vec![
                participant(Some(2), None, Role::Vendor, ""),
                participant(Some(3), None, Role::Vendor, "Vendor B"),
                participant(None, Some(RITA), Role::Reporter, ""),
            ],
        }],
        reports: vec![ReportSnap {
            id: 1,
            public_id: "VRF#26-03-BCDFG".into(),
            reporter: RITA,
            state: ReportState::Accepted,
            case: Some(1),
            thread: 200,
            subject: "Overflow in a router web server".into(),
        }],
        threads: vec![
            thread(100, ThreadKind::Discussion, Some(1), None, None),
            thread(101, ThreadKind::Private, Some(1), Some(2), None),
            thread(102, ThreadKind::Private, Some(1), Some(3), None),
            thread(200, ThreadKind::Report, None, None, Some(1)),
        ],
    }
}

const BODY: &str = "We are affected; the fix ships in 4.2.\n\
                    \n\
                    Bob\u{a0}Smith, Globex PSIRT (bob.smith@globex.example)\n\
                    Set a Content-Security-Policy header meanwhile.\n\
                    \n\
                    > To write privately to the coordinators, mail cases+r-aebqcaumbxgqpyhvtnabnja@cert.example\n";

fn attachments() -> Vec<Attachment> {
    let file = |name: &str, ct: &str, bytes: &[u8]| Attachment {
        filename: name.into(),
        content_type: ct.into(),
        bytes: bytes.to_vec(),
    };
    vec![
        file(
            "body.html",
            "text/html",
            b"<p>We are affected.</p><p>Bob Smith | Globex Corp.</p>",
        ),
        file(
            "globex_crash.txt",
            "text/plain",
            b"SIGSEGV in httpd at 0x41414141\n",
        ),
        file("core.dump", "application/octet-stream", &[0x7f; 100]),
    ]
}

fn ids(message_id: &str) -> Ids<'_> {
    Ids {
        message_id,
        outbox_id: 7,
        earlier: &[],
    }
}

fn post<'a>(
    w: &'a World,
    thread: ThreadId,
    author: ContactId,
    body: &'a str,
    files: &'a [Attachment],
) -> PostItem<'a> {
    PostItem {
        thread: w.thread(thread).expect("thread"),
        author: Author::Contact(author),
        body,
        attachments: files,
        created_at_ms: NOW - 3_600_000,
        pinned: false,
        direct: &[],
        arrival: Arrival::Plain,
    }
}

/// The notification of the anonymous vendor's post, to a colleague and to the reporter.
fn notifications(c: &Composer, out: &mut Vec<(String, Vec<u8>)>) {
    let w = world();
    let files = attachments();
    let p = post(&w, 100, BOB, BODY, &files);
    let fan = fan_out(&w, &p);
    for (name, who) in [
        ("notification-inside", CARLA),
        ("notification-outside", RITA),
    ] {
        let d = fan
            .deliveries
            .iter()
            .find(|d| d.contact == who)
            .expect("a recipient");
        let r = c
            .render_delivery(&w, &p, d, &ids(&format!("{name}@cert.example")), NOW)
            .expect("rendered");
        out.push((name.into(), r.1.bytes));
    }
}

/// Digests of the same post and one in the private thread.
fn digests(c: &Composer, out: &mut Vec<(String, Vec<u8>)>) {
    let w = world();
    let files = attachments();
    let posts = [
        post(&w, 100, BOB, BODY, &files),
        post(
            &w,
            101,
            CORA,
            "Alice, can you confirm the Globex build is affected too?\n",
            &[],
        ),
        post(&w, 102, CORA, "Dan, Carla: thank you.\n", &[]),
    ];
    let home = w.thread(100).expect("discussion");
    for (name, who) in [("digest-inside", DAN), ("digest-outside", ALICE)] {
        let to = w.contact(who).expect("contact");
        let r = c
            .render_digest(
                &w,
                to,
                home,
                &posts,
                &ids(&format!("{name}@cert.example")),
                NOW,
            )
            .expect("rendered");
        out.push((name.into(), r.1.bytes));
    }
}

/// The initial contact, in clear and (embargoed, no key) as the notice.
fn vendor_contacts(c: &Composer, out: &mut Vec<(String, Vec<u8>)>) {
    let mut w = world();
    for embargoed in [false, true] {
        w.cases[0].embargoed = embargoed;
        for (org, who, side) in [(3, BOB, "inside"), (2, ALICE, "outside")] {
            let v = VendorContact {
                case: &w.cases[0],
                org,
                public_date_ms: NOW + 45 * 86_400_000,
                fingerprint: Some("0123 4567 89AB CDEF 0123  4567 89AB CDEF 0123 4567"),
            };
            let name = if embargoed {
                format!("notice-{side}")
            } else {
                format!("vendor-notification-{side}")
            };
            let to = w.contact(who).expect("contact");
            let r = c
                .render_vendor_notification(&w, v, to, &ids(&format!("{name}@cert.example")), NOW)
                .expect("rendered");
            out.push((name, r.1.bytes));
        }
    }
}

fn acknowledgement(c: &Composer, out: &mut Vec<(String, Vec<u8>)>) {
    let w = world();
    let report = &w.reports[0];
    let to = casegate::render::Addressing {
        to_name: "Rita Reporter".into(),
        to: "rita@reporter.example".into(),
        reply_to: c.reply_address(200, RITA),
        private_reply_to: None,
        message_id: "acknowledgement@cert.example".into(),
        in_reply_to: Some("report-1@reporter.example".into()),
        references: vec!["report-1@reporter.example".into()],
        bounce: c.bounce_address(7),
    };
    let r = c
        .render_acknowledgement(&w, report, &to, NOW)
        .expect("rendered");
    out.push(("acknowledgement".into(), r.1.bytes));
}

/// Globex (anonymous) shared its status and a statement naming itself; Acme did not share.
fn statuses() -> Vec<StatusSnap> {
    vec![
        StatusSnap {
            org: 2,
            status: Some(VendorStatus::NotAffected),
            statement: "Acme Routers builds httpd without the module.".into(),
            references: vec![],
            share: false,
            encrypted: false,
            updated_at: NOW - 86_400_000,
        },
        StatusSnap {
            org: 3,
            status: Some(VendorStatus::Affected),
            statement: "Globex Corp. ships the fix in firmware 4.2.\nAsk Bob Smith (bob.smith@globex.example) for details.".into(),
            references: vec!["https://psirt.globex.example/2026-03".into()],
            share: true,
            encrypted: false,
            updated_at: NOW - 3_600_000,
        },
    ]
}

fn render_item(c: &Composer, w: &World, item: &Item, who: ContactId, thread: ThreadId, name: &str) -> Vec<u8> {
    let to = w.contact(who).expect("contact");
    let id = format!("{name}@cert.example");
    let addressing = c.addressing(w, w.thread(thread).expect("thread"), to, &ids(&id));
    c.render(w, item, to, &addressing, None, NOW).expect("rendered").1.bytes
}

/// The case summary (`-info`) in each one's private thread, and the late joiner's summary
/// with the discussion so far.
fn summaries(c: &Composer, out: &mut Vec<(String, Vec<u8>)>) {
    let w = world();
    let st = statuses();
    let facts = CaseFacts { case: &w.cases[0], public_date_ms: Some(NOW + 30 * 86_400_000), statuses: &st };
    let info = Item::Summary { facts, posts: &[], joined: false };
    for (name, who, thread) in [("summary-inside", BOB, 102), ("summary-outside", ALICE, 101)] {
        out.push((name.into(), render_item(c, &w, &info, who, thread, name)));
    }
    let files = attachments();
    let posts = [post(&w, 100, BOB, BODY, &files), post(&w, 100, CORA, "Thanks, Vendor B. Alice, is Acme Routers affected?\n", &[])];
    let joined = Item::Summary { facts, posts: &posts, joined: true };
    for (name, who) in [("joined-inside", CARLA), ("joined-outside", RITA)] {
        out.push((name.into(), render_item(c, &w, &joined, who, 100, name)));
    }
}

/// The day-14 reminder, to the anonymous vendor and to one the title does not name.
fn reminders(c: &Composer, out: &mut Vec<(String, Vec<u8>)>) {
    let w = world();
    let facts = CaseFacts { case: &w.cases[0], public_date_ms: Some(NOW + 31 * 86_400_000), statuses: &[] };
    for (name, org, who, thread) in [("reminder-inside", 3, BOB, 102), ("reminder-outside", 2, ALICE, 101)] {
        let item = Item::Reminder { facts, org, day: 14 };
        out.push((name.into(), render_item(c, &w, &item, who, thread, name)));
    }
}

/// What the coordinators alone are told.
fn coordinator_notes(c: &Composer, out: &mut Vec<(String, Vec<u8>)>) {
    let w = world();
    let dead = DeadLine { id: 41, rcpt: "dan@initech.example".into(), kind: "notification".into(), case: Some("VU#111111".into()), reply: "451 4.4.1 connection timed out".into() };
    let bouncing = BouncingLine { email: "old@acme.example".into(), since: NOW - 7_200_000 };
    let daily = Daily {
        date: "2026-03-02".into(),
        due: vec![CaseLine { case: "VU#111111".into(), title: "Buffer overflow in Globex firmware".into(), embargoed: false, public_at: Some(NOW + 5 * 86_400_000) }],
        past: vec![CaseLine { case: "VU#222222".into(), title: "Embargoed title".into(), embargoed: true, public_at: Some(NOW - 86_400_000) }],
        without_status: vec![VendorLine { case: "VU#111111".into(), org: "Globex Corp.".into(), notified_at: Some(NOW - 9 * 86_400_000) }],
        quarantine: vec![HeldLine { id: 12, reason: "below-assurance: sender assurance address, policy needs dmarc".into(), since: NOW - 2 * 86_400_000 }],
        dead: vec![dead.clone()],
        bouncing: vec![bouncing.clone()],
        expiring: vec![],
    };
    let notes = [
        ("coordinator-summary", CoordinatorNote::Daily(daily)),
        ("dead-notice", CoordinatorNote::Dead { items: vec![dead] }),
        ("bouncing-notice", CoordinatorNote::Bouncing { contacts: vec![bouncing] }),
    ];
    let cora = w.contact(CORA).expect("cora");
    for (name, note) in &notes {
        let to = c.coordinator_addressing(cora, &format!("{name}@cert.example"), 7);
        let r = c.render(&w, &Item::Coordinators(note), cora, &to, None, NOW).expect("rendered");
        out.push((name.to_string(), r.1.bytes));
    }
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/rendered")
}

/// The first line where `want` and `got` differ, for the failure message.
fn first_difference(want: &[u8], got: &[u8]) -> String {
    let (w, g) = (String::from_utf8_lossy(want), String::from_utf8_lossy(got));
    let line = w
        .lines()
        .zip(g.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| w.lines().count().min(g.lines().count()));
    format!(
        "line {}:\n  golden: {:?}\n  now:    {:?}",
        line + 1,
        w.lines().nth(line).unwrap_or("<end>"),
        g.lines().nth(line).unwrap_or("<end>")
    )
}

#[test]
fn rendered_mail_matches_the_golden_files() {
    let c = composer();
    let mut out = Vec::new();
    notifications(&c, &mut out);
    digests(&c, &mut out);
    vendor_contacts(&c, &mut out);
    acknowledgement(&c, &mut out);
    summaries(&c, &mut out);
    reminders(&c, &mut out);
    coordinator_notes(&c, &mut out);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut problems = Vec::new();
    std::fs::create_dir_all(dir()).expect("golden directory");
    for (name, bytes) in &out {
        let path = dir().join(format!("{name}.eml"));
        if update {
            std::fs::write(&path, bytes).expect("write golden file");
            continue;
        }
        match std::fs::read(&path) {
            Ok(want) if &want == bytes => {}
            Ok(want) => problems.push(format!(
                "{name}.eml differs, {}",
                first_difference(&want, bytes)
            )),
            Err(e) => problems.push(format!("{name}.eml: {e}")),
        }
    }
    for entry in std::fs::read_dir(dir())
        .expect("golden directory")
        .flatten()
    {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !out.iter().any(|(n, _)| format!("{n}.eml") == file) {
            if update {
                std::fs::remove_file(entry.path()).expect("remove stale golden file");
            } else {
                problems.push(format!("{file} is no longer rendered"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\nTo review and accept: UPDATE_GOLDEN=1 cargo test --test rendered && git diff tests/golden/rendered",
        problems.join("\n")
    );
}

/// The golden files themselves keep the promise: what the outsider got names nobody
/// hidden, and carries no one else's reply address.
#[test]
fn golden_files_to_outsiders_name_nobody_hidden() {
    for entry in std::fs::read_dir(dir())
        .expect("golden directory")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.contains("outside") {
            continue;
        }
        let text =
            String::from_utf8_lossy(&std::fs::read(entry.path()).expect("read")).to_lowercase();
        for secret in [
            "globex",
            "bob",
            "carla",
            "dan",
            "smith",
            "aebqcaumbxgqpyhvtnabnja",
        ] {
            assert!(!text.contains(secret), "{secret} in {name}");
        }
    }
}
