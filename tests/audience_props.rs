//! Properties of the fan-out and of the rendered notifications over generated worlds
//! (SPEC §6.1–§6.5): nobody gets a thread they may not read, the author gets no copy,
//! nobody's name or address leaks to another recipient, anonymous authors stay anonymous
//! to outsiders, `none` never receives, direct recipients are skipped.

use casegate::audience::{fan_out, readers, Content, Delivery, DeliveryMode, PostFacts};
use casegate::mail::AddressBook;
use casegate::model::*;
use casegate::render::{self, Addressing, Gateway, PostView, ThreadView};
use mail_parser::{MessageParser, MimeHeaders};
use proptest::prelude::*;
use std::collections::HashSet;

const CASE: CaseId = 1;
const DISCUSSION: ThreadId = 100;
const REPORT_THREAD: ThreadId = 200;
const MAX_ATTACHMENT: u64 = 100;

#[derive(Debug, Clone)]
struct ContactSpec {
    notify: NotifyMode,
    encrypt_only: bool,
    has_key: bool,
}

#[derive(Debug, Clone)]
struct VendorSpec {
    contacts: Vec<ContactSpec>,
    anonymous: bool,
}

#[derive(Debug, Clone)]
struct PostSpec {
    thread: usize,
    author: Option<usize>,
    pinned: bool,
    direct: Vec<usize>,
    /// Which of the author's identifying strings the body mentions (bit set).
    mentions: u8,
    /// (size, file name mentions the author's organization).
    attachments: Vec<(usize, bool)>,
}

#[derive(Debug, Clone)]
struct Spec {
    tokens: Vec<String>,
    coordinators: Vec<ContactSpec>,
    vendors: Vec<VendorSpec>,
    reporter: ContactSpec,
    reporter_anonymous: bool,
    reporter_has_org: bool,
    outsider: ContactSpec,
    embargoed: bool,
    report_accepted: bool,
    posts: Vec<PostSpec>,
}

fn contact_spec() -> impl Strategy<Value = ContactSpec> {
    let notify = prop_oneof![
        Just(NotifyMode::Immediate),
        Just(NotifyMode::Digest),
        Just(NotifyMode::None)
    ];
    (notify, prop::bool::weighted(0.2), any::<bool>()).prop_map(
        |(notify, encrypt_only, has_key)| ContactSpec {
            notify,
            encrypt_only,
            has_key,
        },
    )
}

fn vendor_spec() -> impl Strategy<Value = VendorSpec> {
    (prop::collection::vec(contact_spec(), 1..=3), any::<bool>()).prop_map(
        |(contacts, anonymous)| VendorSpec {
            contacts,
            anonymous,
        },
    )
}

fn post_spec() -> impl Strategy<Value = PostSpec> {
    (
        0usize..16,
        prop::option::weighted(0.9, 0usize..64),
        prop::bool::weighted(0.2),
        prop::collection::vec(0usize..64, 0..4),
        any::<u8>(),
        prop::collection::vec((0usize..200, any::<bool>()), 0..3),
    )
        .prop_map(
            |(thread, author, pinned, direct, mentions, attachments)| PostSpec {
                thread,
                author,
                pinned,
                direct,
                mentions,
                attachments,
            },
        )
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::hash_set("[a-z]{9}", 80),
        prop::collection::vec(contact_spec(), 1..=3),
        prop::collection::vec(vendor_spec(), 1..=5),
        (contact_spec(), any::<bool>(), any::<bool>(), contact_spec()),
        (any::<bool>(), any::<bool>()),
        prop::collection::vec(post_spec(), 1..=4),
    )
        .prop_map(
            |(tokens, coordinators, vendors, reporter, flags, posts)| Spec {
                tokens: tokens.into_iter().collect(),
                coordinators,
                vendors,
                reporter: reporter.0,
                reporter_anonymous: reporter.1,
                reporter_has_org: reporter.2,
                outsider: reporter.3,
                embargoed: flags.0,
                report_accepted: flags.1,
                posts,
            },
        )
}

/// Hands out the distinct generated tokens one by one.
struct Tokens<'a> {
    all: &'a [String],
    next: usize,
}

impl Tokens<'_> {
    fn take(&mut self) -> String {
        let t = self.all[self.next % self.all.len()].clone();
        self.next += 1;
        t
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// The generated world plus what the test needs to know about it.
struct Fixture {
    world: World,
    keys: HashSet<ContactId>,
    title: String,
    reporter: ContactId,
}

fn add_org(world: &mut World, tokens: &mut Tokens, id: OrgId, kind: OrgKind) -> String {
    let domain = format!("{}.example", tokens.take());
    world.orgs.push(OrgSnap {
        id,
        name: capitalized(&tokens.take()),
        kind,
        domains: vec![domain.clone()],
    });
    domain
}

fn add_contact(
    f: &mut Fixture,
    tokens: &mut Tokens,
    org: Option<OrgId>,
    domain: &str,
    spec: &ContactSpec,
) -> ContactId {
    let id = 10 + f.world.contacts.len() as ContactId;
    let (first, last) = (tokens.take(), tokens.take());
    f.world.contacts.push(ContactSnap {
        id,
        email: format!("{first}.{last}@{domain}"),
        name: format!("{} {}", capitalized(&first), capitalized(&last)),
        org,
        notify: spec.notify,
        encrypt_only: spec.encrypt_only,
    });
    if spec.has_key {
        f.keys.insert(id);
    }
    id
}

fn build(spec: &Spec) -> Fixture {
    let mut tokens = Tokens {
        all: &spec.tokens,
        next: 0,
    };
    let title = format!("Flaw in {}", tokens.take());
    let mut f = Fixture {
        world: World::default(),
        keys: HashSet::new(),
        title,
        reporter: 0,
    };
    let coord_domain = add_org(&mut f.world, &mut tokens, 1, OrgKind::Coordinator);
    for c in &spec.coordinators {
        add_contact(&mut f, &mut tokens, Some(1), &coord_domain, c);
    }
    let (mut participants, private_threads) = add_vendors(spec, &mut f, &mut tokens);
    add_reporters(spec, &mut f, &mut tokens, &mut participants);
    f.world.cases.push(CaseSnap {
        id: CASE,
        public_id: "VU#123456".into(),
        title: f.title.clone(),
        state: CaseState::Open,
        embargoed: spec.embargoed,
        min_assurance: None,
        discussion: DISCUSSION,
        private_threads,
        participants,
    });
    let discussion = ThreadSnap {
        id: DISCUSSION,
        kind: ThreadKind::Discussion,
        case: Some(CASE),
        org: None,
        report: None,
    };
    f.world.threads.push(discussion);
    let report = ThreadSnap {
        id: REPORT_THREAD,
        kind: ThreadKind::Report,
        case: None,
        org: None,
        report: Some(1),
    };
    f.world.threads.push(report);
    f
}

/// Vendor organizations, their contacts, participants ("Vendor A", …) and private threads.
fn add_vendors(
    spec: &Spec,
    f: &mut Fixture,
    tokens: &mut Tokens,
) -> (Vec<ParticipantSnap>, Vec<(OrgId, ThreadId)>) {
    let mut participants = Vec::new();
    let mut private_threads = Vec::new();
    for (i, v) in spec.vendors.iter().enumerate() {
        let org = 2 + i as OrgId;
        let domain = add_org(&mut f.world, tokens, org, OrgKind::Vendor);
        for c in &v.contacts {
            add_contact(f, tokens, Some(org), &domain, c);
        }
        let alias = format!("Vendor {}", (b'A' + i as u8) as char);
        participants.push(ParticipantSnap {
            org: Some(org),
            contact: None,
            role: Role::Vendor,
            anonymous: v.anonymous,
            alias,
        });
        let thread = 101 + i as ThreadId;
        private_threads.push((org, thread));
        f.world.threads.push(ThreadSnap {
            id: thread,
            kind: ThreadKind::Private,
            case: Some(CASE),
            org: Some(org),
            report: None,
        });
    }
    (participants, private_threads)
}

/// The lone reporter (a participant, maybe anonymous, maybe with a reporter organization)
/// and an outsider reporter who is no participant.
fn add_reporters(
    spec: &Spec,
    f: &mut Fixture,
    tokens: &mut Tokens,
    participants: &mut Vec<ParticipantSnap>,
) {
    let reporter_org = 50;
    let domain = if spec.reporter_has_org {
        add_org(&mut f.world, tokens, reporter_org, OrgKind::Reporter)
    } else {
        format!("{}.example", tokens.take())
    };
    let org = spec.reporter_has_org.then_some(reporter_org);
    f.reporter = add_contact(f, tokens, org, &domain, &spec.reporter);
    participants.push(ParticipantSnap {
        org: None,
        contact: Some(f.reporter),
        role: Role::Reporter,
        anonymous: spec.reporter_anonymous,
        alias: "Reporter".into(),
    });
    let outsider_domain = format!("{}.example", tokens.take());
    add_contact(f, tokens, None, &outsider_domain, &spec.outsider);
    f.world.reports.push(ReportSnap {
        id: 1,
        public_id: "VRF#26-11-BCDFG".into(),
        reporter: f.reporter,
        state: if spec.report_accepted {
            ReportState::Accepted
        } else {
            ReportState::New
        },
        case: spec.report_accepted.then_some(CASE),
        thread: REPORT_THREAD,
        subject: "report".into(),
    });
}

fn gateway() -> Gateway {
    Gateway {
        name: "CERT Coordination".into(),
        book: AddressBook {
            domain: "cert.example".into(),
            local_part: "cases".into(),
            intake: vec!["security@cert.example".into()],
            case_prefix: "VU#".into(),
        },
    }
}

/// Who may read `thread`, computed from the SPEC §6.1 table without `audience::readers`.
fn allowed(world: &World, thread: &ThreadSnap, c: &ContactSnap, reporter: ContactId) -> bool {
    if world.is_coordinator(c) {
        return true;
    }
    match thread.kind {
        ThreadKind::Private => c.org.is_some() && c.org == thread.org,
        ThreadKind::Report => c.id == reporter,
        ThreadKind::Discussion => world.cases[0]
            .participants
            .iter()
            .any(|p| p.contact == Some(c.id) || (p.org.is_some() && p.org == c.org)),
    }
}

/// Every identifying string of the author an outsider must not see (SPEC §6.3).
fn author_secrets(world: &World, author: &ContactSnap) -> Vec<String> {
    let mut out = vec![
        author.name.to_ascii_lowercase(),
        author.email.to_ascii_lowercase(),
    ];
    if let Some(org) = author.org.and_then(|o| world.org(o)) {
        out.push(org.name.to_ascii_lowercase());
        out.extend(org.domains.iter().map(|d| d.to_ascii_lowercase()));
    }
    out
}

/// Whether the author is hidden behind an alias from `recipient`.
fn hidden_from(world: &World, author: &ContactSnap, recipient: &ContactSnap) -> bool {
    let anonymous = world.cases[0].participants.iter().any(|p| {
        p.anonymous && (p.contact == Some(author.id) || (p.org.is_some() && p.org == author.org))
    });
    let lone = author.org.is_none()
        || world.cases[0]
            .participants
            .iter()
            .any(|p| p.contact == Some(author.id));
    let same_org = !lone && author.org == recipient.org;
    anonymous && !world.is_coordinator(author) && !world.is_coordinator(recipient) && !same_org
}

fn body_for(world: &World, author: Option<&ContactSnap>, mentions: u8) -> String {
    let mut body =
        String::from("Here is what we found.\n> $ ./poc --run\n> [+] crashed at 0x41414141\n");
    if let Some(a) = author {
        let org = a.org.and_then(|o| world.org(o));
        let local = a.email.split('@').next().unwrap_or_default();
        let pieces = [
            format!("Regards, {}", a.name),
            format!("Mail me at {}", a.email.to_ascii_uppercase()),
            format!("We at {} confirm.", org.map_or("", |o| o.name.as_str())),
            format!(
                "See https://{}/advisory",
                org.and_then(|o| o.domains.first())
                    .map_or("", |d| d.as_str())
            ),
            format!("({local})"),
        ];
        for (i, p) in pieces.iter().enumerate() {
            if mentions & (1 << i) != 0 {
                body.push_str(p);
                body.push('\n');
            }
        }
    }
    body.push_str(&"long line ".repeat(20));
    body
}

fn attachments_for(
    world: &World,
    author: Option<&ContactSnap>,
    spec: &PostSpec,
) -> Vec<Attachment> {
    let org_name = author
        .and_then(|a| a.org)
        .and_then(|o| world.org(o))
        .map(|o| o.name.clone());
    spec.attachments
        .iter()
        .enumerate()
        .map(|(i, (size, named))| Attachment {
            filename: match (&org_name, named) {
                (Some(org), true) => format!("{org}-crash-{i}.txt"),
                _ => format!("trace-{i}.txt"),
            },
            content_type: "text/plain".into(),
            bytes: b"0123456789".iter().cycle().take(*size).copied().collect(),
        })
        .collect()
}

fn addressing(d: &Delivery, n: usize, to_name: &str) -> Addressing {
    Addressing {
        to_name: to_name.to_string(),
        to: d.email.clone(),
        reply_to: format!("cases+r-{n}@cert.example"),
        private_reply_to: Some(format!("cases+r-{}@cert.example", n + 1000)),
        message_id: format!("n{n}.{}@cert.example", d.contact),
        in_reply_to: None,
        references: vec![],
        bounce: format!("cases+b-{n}@cert.example"),
    }
}

fn thread_view(world: &World, thread: &ThreadSnap, title: &str) -> ThreadView {
    let token = if thread.kind == ThreadKind::Report {
        "VRF#26-11-BCDFG"
    } else {
        "VU#123456"
    };
    ThreadView {
        token: token.into(),
        title: title.into(),
        kind: thread.kind,
        org_name: thread
            .org
            .and_then(|o| world.org(o))
            .map(|o| o.name.clone()),
    }
}

/// The texts a reader sees after decoding: subject, From name, body, attachment names.
fn decoded_texts(bytes: &[u8]) -> Vec<String> {
    let Some(m) = MessageParser::default().parse(bytes) else {
        return vec![];
    };
    let mut out = vec![m.subject().unwrap_or_default().to_string()];
    out.extend(
        m.from()
            .and_then(|a| a.first())
            .and_then(|a| a.name())
            .map(str::to_string),
    );
    out.extend(m.body_text(0).map(|t| t.into_owned()));
    out.extend(
        m.attachments()
            .filter_map(|a| a.attachment_name())
            .map(str::to_string),
    );
    out.into_iter().map(|t| t.to_ascii_lowercase()).collect()
}

fn contains(haystacks: &[String], raw: &str, needle: &str) -> bool {
    raw.contains(needle) || haystacks.iter().any(|h| h.contains(needle))
}

fn check_post(f: &Fixture, spec: &Spec, post: &PostSpec, n: usize) -> Result<(), TestCaseError> {
    let w = &f.world;
    let thread = &w.threads[post.thread % w.threads.len()];
    let rs = readers(w, thread);
    let author = post.author.map(|i| rs[i % rs.len()]);
    let all: Vec<&ContactSnap> = w.contacts.iter().collect();
    let direct: Vec<String> = post
        .direct
        .iter()
        .map(|i| all[i % all.len()].email.clone())
        .collect();
    let keys = |c: ContactId| f.keys.contains(&c);
    let facts = PostFacts {
        thread,
        author,
        pinned: post.pinned,
        direct_recipients: &direct,
        has_usable_key: &keys,
    };
    let out = fan_out(w, &facts);
    check_audience(f, spec, post, thread, author, &direct, &out)?;
    let author_c = author.and_then(|a| w.contact(a));
    let body = body_for(w, author_c, post.mentions);
    let attachments = attachments_for(w, author_c, post);
    let view = thread_view(w, thread, &f.title);
    for (i, d) in out.deliveries.iter().enumerate() {
        let recipient = w
            .contact(d.contact)
            .ok_or_else(|| TestCaseError::fail("unknown recipient"))?;
        let to = addressing(d, n * 100 + i, &recipient.name);
        let rendered = match d.content {
            Content::Full => {
                let pv = PostView {
                    author_display: &d.view.display,
                    body: &body,
                    attachments: &attachments,
                    created_at_ms: 0,
                    redactions: &d.view.redactions,
                };
                render::notification(
                    &gateway(),
                    &view,
                    &pv,
                    &to,
                    MAX_ATTACHMENT,
                    1_767_225_600_000,
                )
            }
            Content::Notice => {
                render::embargo_notice(&gateway(), "VU#123456", &to, 1_767_225_600_000)
            }
        };
        check_message(f, &out, d, recipient, author_c, &rendered.bytes)?;
    }
    Ok(())
}

fn check_audience(
    f: &Fixture,
    spec: &Spec,
    post: &PostSpec,
    thread: &ThreadSnap,
    author: Option<ContactId>,
    direct: &[String],
    out: &casegate::audience::FanOut,
) -> Result<(), TestCaseError> {
    let w = &f.world;
    let rs = readers(w, thread);
    let embargoed = spec.embargoed && (thread.case.is_some() || spec.report_accepted);
    for d in &out.deliveries {
        let c = w
            .contact(d.contact)
            .ok_or_else(|| TestCaseError::fail("unknown contact"))?;
        // (1) only readers, checked against `readers` and against the SPEC table.
        prop_assert!(rs.contains(&d.contact), "{} is no reader", c.email);
        prop_assert!(
            allowed(w, thread, c, f.reporter),
            "{} may not read {:?}",
            c.email,
            thread.kind
        );
        // (2) the author gets no copy.
        prop_assert!(Some(d.contact) != author, "author got a copy");
        // (5) notify none never receives.
        prop_assert!(c.notify != NotifyMode::None);
        // (6) direct recipients are skipped.
        prop_assert!(
            !direct.contains(&c.email),
            "direct recipient {} got a copy",
            c.email
        );
        let mode = if c.notify == NotifyMode::Digest && !post.pinned {
            DeliveryMode::Digest
        } else {
            DeliveryMode::Immediate
        };
        prop_assert_eq!(d.mode, mode);
        let notice = (embargoed || c.encrypt_only) && !f.keys.contains(&c.id);
        prop_assert_eq!(d.content == Content::Notice, notice);
    }
    // Completeness: every other reader is the author, a direct recipient, or muted.
    for id in &rs {
        let Some(c) = w.contact(*id) else { continue };
        let delivered = out.deliveries.iter().any(|d| d.contact == *id);
        let is_direct = direct.contains(&c.email) && Some(*id) != author;
        prop_assert_eq!(out.direct.contains(id), is_direct);
        let expected = Some(*id) != author && !is_direct && c.notify != NotifyMode::None;
        prop_assert_eq!(delivered, expected, "reader {}", c.email);
    }
    Ok(())
}

fn check_message(
    f: &Fixture,
    out: &casegate::audience::FanOut,
    d: &Delivery,
    recipient: &ContactSnap,
    author: Option<&ContactSnap>,
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    let w = &f.world;
    let raw = String::from_utf8_lossy(bytes).to_ascii_lowercase();
    let decoded = decoded_texts(bytes);
    prop_assert!(!decoded.is_empty(), "unparseable message");
    // (3) no other recipient's (or direct recipient's) address or name.
    let others = out
        .deliveries
        .iter()
        .map(|o| o.contact)
        .chain(out.direct.iter().copied());
    for other in others.filter(|o| *o != d.contact) {
        let Some(o) = w.contact(other) else { continue };
        for secret in [o.email.to_ascii_lowercase(), o.name.to_ascii_lowercase()] {
            prop_assert!(
                !contains(&decoded, &raw, &secret),
                "{} leaked to {}",
                secret,
                recipient.email
            );
        }
    }
    // (4) an anonymous author stays anonymous to outsiders.
    if let Some(a) = author.filter(|a| hidden_from(w, a, recipient)) {
        for secret in author_secrets(w, a) {
            prop_assert!(
                !contains(&decoded, &raw, &secret),
                "author's {} leaked to {}",
                secret,
                recipient.email
            );
        }
    }
    // SPEC §6.4: a notice has no title and no author.
    if d.content == Content::Notice {
        prop_assert!(!contains(&decoded, &raw, &f.title.to_ascii_lowercase()));
        if let Some(a) = author {
            prop_assert!(!contains(&decoded, &raw, &a.name.to_ascii_lowercase()));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn fan_out_and_rendering_respect_visibility(spec in spec()) {
        let f = build(&spec);
        for (n, post) in spec.posts.iter().enumerate() {
            check_post(&f, &spec, post, n)?;
        }
    }
}

/// The body mentions of the anonymous author really are exercised: a fixed world where
/// they would leak without redaction.
#[test]
fn redaction_is_exercised() {
    let spec = fixed_spec();
    let f = build(&spec);
    let w = &f.world;
    let author = w
        .contacts
        .iter()
        .find(|c| c.org == Some(2))
        .expect("vendor A contact");
    let outsider = w
        .contacts
        .iter()
        .find(|c| c.org == Some(3))
        .expect("vendor B contact");
    let body = body_for(w, Some(author), 0xff);
    for secret in author_secrets(w, author) {
        assert!(
            body.to_ascii_lowercase().contains(&secret),
            "body lacks {secret}"
        );
    }
    let view = casegate::audience::author_view(
        w,
        &w.threads[w.threads.len() - 2],
        Some(author.id),
        outsider.id,
    );
    assert_eq!(view.display, "Vendor A");
    let d = Delivery {
        contact: outsider.id,
        email: outsider.email.clone(),
        mode: DeliveryMode::Immediate,
        content: Content::Full,
        view,
    };
    let tv = thread_view(w, &w.threads[w.threads.len() - 2], &f.title);
    let pv = PostView {
        author_display: &d.view.display,
        body: &body,
        attachments: &[],
        created_at_ms: 0,
        redactions: &d.view.redactions,
    };
    let r = render::notification(
        &gateway(),
        &tv,
        &pv,
        &addressing(&d, 1, &outsider.name),
        MAX_ATTACHMENT,
        0,
    );
    let raw = String::from_utf8_lossy(&r.bytes).to_ascii_lowercase();
    for secret in author_secrets(w, author) {
        assert!(!raw.contains(&secret), "{secret} leaked");
    }
    assert!(raw.contains("vendor a"));
}

/// Vendor A (anonymous) and vendor B, one contact each, fixed tokens.
fn fixed_spec() -> Spec {
    let one = ContactSpec {
        notify: NotifyMode::Immediate,
        encrypt_only: false,
        has_key: false,
    };
    let vendor = |anonymous| VendorSpec {
        contacts: vec![one.clone()],
        anonymous,
    };
    Spec {
        tokens: (0..80).map(|i| format!("tok{i:03}abcd")).collect(),
        coordinators: vec![one.clone()],
        vendors: vec![vendor(true), vendor(false)],
        reporter: one.clone(),
        reporter_anonymous: false,
        reporter_has_org: false,
        outsider: one.clone(),
        embargoed: false,
        report_accepted: false,
        posts: vec![],
    }
}
