//! Confidentiality over generated worlds (SPEC §6.1–§6.6, §8): [`view::view`] and every
//! renderer (notification, digest, vendor notification, acknowledgement, notice, case
//! summary, late joiner's summary with the discussion so far, reminder, coordinators'
//! notes), driven as `compose` drives them, over 10,000 generated worlds per run.
//!
//! The worlds have short, overlapping, non-ASCII and oddly spaced names, anonymous vendors
//! and reporters, titles that name participants, posts by coordinators, colleagues and
//! outsiders quoting anyone in any spelling, HTML parts, attachments named after people,
//! and quoted reply addresses. The oracle is written from the SPEC, not from the code: it
//! knows every generated identity, decodes each recipient's message (headers, text and
//! HTML parts, attachment names) and checks that
//! - who gets what (nothing, the notice, the content) follows §6.1, §6.4 and §6.5;
//! - a vendor's status and statement reach the other participants only when shared, and a
//!   coordinators' note nobody but the coordinators (an embargoed title only encrypted);
//! - no identity of an anonymous participant hidden from the recipient shows, in any
//!   spelling (letters and digits after NFKC and lowercasing; shorter than four as words);
//! - no reply address but the recipient's own shows;
//! - no display name, subject or file name carries a format character, and nobody but a
//!   coordinator is shown under a coordinators' name;
//! - generic words survive ("Content-Security-Policy");
//! - the bytes an outsider gets are the same in a twin world where the hidden participant
//!   is someone else (nothing, not even the MIME boundary, depends on who it is).

use casegate::audience::fan_out;
use casegate::mail::AddressBook;
use casegate::model::*;
use casegate::render::{self, Addressing, Gateway};
use casegate::status::{StatusSnap, VendorStatus};
use casegate::view::{
    self, Arrival, Author, CaseFacts, Ctx, Facts, Item, Mode, PostItem, Queued, VendorContact,
    View,
};
use casegate::workflow::{CaseLine, CoordinatorNote, Daily, VendorLine};
use mail_parser::{MessageParser, MimeHeaders};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use unicode_normalization::UnicodeNormalization;

/// Worlds per run (SPEC §6.3 is the product's first promise: test it hard).
const WORLDS: u32 = 10_000;
const CASE: CaseId = 1;
const DISCUSSION: ThreadId = 100;
const REPORT_THREAD: ThreadId = 200;
const MAX_ATTACHMENT: u64 = 64;
const NOW: i64 = 1_767_225_600_000;
const COORDINATOR_ORG: &str = "CERT Team";
const GATEWAY: &str = "CERT Coordination";

// ---------------------------------------------------------------------------------------
// Names: syllables that ordinary English (the filler text and the templates) never
// spells, so that an identity shows in a message only where it was put.
// ---------------------------------------------------------------------------------------

const SYLLABLES: &[&str] = &[
    "qa", "qo", "qi", "za", "zo", "zu", "xa", "xe", "xi", "ja", "jo", "ju", "ka", "ko", "ky", "zé",
    "kå", "qü", "жа", "зо", "李", "明",
];
/// The twin world's syllables, one for one.
const TWINS: &[&str] = &[
    "qe", "qy", "zi", "ze", "zy", "xo", "xu", "xy", "je", "ji", "jy", "ke", "ki", "ku", "kae",
    "zè", "kø", "qö", "жо", "зу", "王", "芳",
];
/// ASCII spelling of a syllable for addresses and domains (with a rare letter too).
fn ascii(s: &str) -> String {
    let map = [
        ("é", "e"),
        ("è", "e"),
        ("å", "a"),
        ("ø", "o"),
        ("ü", "u"),
        ("ö", "o"),
        ("жа", "zha"),
        ("жо", "zho"),
        ("зо", "zo"),
        ("зу", "zu"),
        ("李", "lqi"),
        ("明", "mqing"),
        ("王", "wqang"),
        ("芳", "fqang"),
    ];
    map.iter()
        .fold(s.to_string(), |acc, (from, to)| acc.replace(from, to))
}
const GENERIC_LOCALS: &[&str] = &["security", "psirt", "info", "support"];
const LEGAL: &[&str] = &[
    " Corp.", " Inc.", ", Ltd", " GmbH", " LLC", " AG", " S.A.", " Co.",
];
const RESERVED: &[&str] = &[GATEWAY, "Coordinators", COORDINATOR_ORG];
const CANARY: &str = "Set a Content-Security-Policy header; security, info and support pages stay.";

// ---------------------------------------------------------------------------------------
// The generated specification
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Name(Vec<Vec<usize>>);

#[derive(Debug, Clone, Copy)]
enum Shape {
    Plain,
    DoubleSpace,
    Nbsp,
    Bidi,
    /// Named like the gateway or the coordinators (only for non-anonymous contacts).
    Reserved(usize),
}

#[derive(Debug, Clone, Copy)]
enum Local {
    First,
    FirstLast,
    Generic(usize),
}

#[derive(Debug, Clone)]
struct ContactSpec {
    name: Name,
    shape: Shape,
    local: Local,
    notify: NotifyMode,
    encrypt_only: bool,
    keys: Keys,
}

#[derive(Debug, Clone)]
struct OrgSpec {
    name: Name,
    legal: Option<usize>,
    contacts: Vec<ContactSpec>,
    anonymous: bool,
}

#[derive(Debug, Clone, Copy)]
enum What {
    Name,
    Email,
    Local,
    OrgFull,
    OrgBase,
    Domain,
    Subdomain,
}

#[derive(Debug, Clone, Copy)]
enum Style {
    Space,
    Double,
    Nbsp,
    Tab,
    Newline,
    Underscore,
    Dash,
    Joined,
    Dot,
    Upper,
    Fullwidth,
}

#[derive(Debug, Clone, Copy)]
struct Mention {
    who: usize,
    what: What,
    style: Style,
}

#[derive(Debug, Clone)]
struct FileSpec {
    mention: Option<Mention>,
    big: bool,
    html: bool,
}

#[derive(Debug, Clone)]
struct PostSpec {
    thread: usize,
    author: Option<usize>,
    system: bool,
    pinned: bool,
    direct: Vec<usize>,
    arrival: u8,
    mentions: Vec<(usize, Mention)>,
    files: Vec<FileSpec>,
    html: Option<Mention>,
    reply_quotes: Vec<usize>,
}

/// A vendor's status: given or not, shared or not, a statement naming anyone.
#[derive(Debug, Clone)]
struct StatusSpec {
    given: bool,
    share: bool,
    encrypted: bool,
    mentions: Vec<(usize, Mention)>,
    reference: Option<Mention>,
}

#[derive(Debug, Clone)]
struct Spec {
    statuses: Vec<StatusSpec>,
    coordinators: Vec<ContactSpec>,
    vendors: Vec<OrgSpec>,
    reporter: ContactSpec,
    reporter_org: Option<Name>,
    reporter_anonymous: bool,
    embargoed: bool,
    report_accepted: bool,
    title: Vec<Mention>,
    posts: Vec<PostSpec>,
}

fn name() -> impl Strategy<Value = Name> {
    let word = prop::collection::vec(0..SYLLABLES.len(), 1..=3);
    prop::collection::vec(word, 1..=2).prop_map(Name)
}

/// A recipient's certificates when an item is queued, and when it is rendered and sealed.
#[derive(Debug, Clone, Copy, Default)]
struct Keys {
    plan: Facts,
    send: Facts,
}

fn facts(sealing: f64) -> impl Strategy<Value = Facts> {
    (
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.2),
        prop::bool::weighted(sealing),
    )
        .prop_map(|(usable_cert, confirmed_cert, sealing_failed)| Facts {
            usable_cert,
            confirmed_cert,
            sealing_failed,
            queued: None,
        })
}

/// Mostly the same certificates at both times; sometimes a key added, expired or failing.
fn keys() -> impl Strategy<Value = Keys> {
    (facts(0.0), prop::option::weighted(0.3, facts(0.1))).prop_map(|(plan, later)| Keys {
        plan,
        send: later.unwrap_or(plan),
    })
}

fn contact() -> impl Strategy<Value = ContactSpec> {
    let shape = prop_oneof![
        4 => Just(Shape::Plain),
        1 => Just(Shape::DoubleSpace),
        1 => Just(Shape::Nbsp),
        1 => Just(Shape::Bidi),
        1 => (0..RESERVED.len()).prop_map(Shape::Reserved),
    ];
    let local = prop_oneof![
        1 => Just(Local::First),
        2 => Just(Local::FirstLast),
        1 => (0..GENERIC_LOCALS.len()).prop_map(Local::Generic),
    ];
    let notify = prop_oneof![
        4 => Just(NotifyMode::Immediate),
        1 => Just(NotifyMode::Digest),
        1 => Just(NotifyMode::None)
    ];
    (
        name(),
        shape,
        local,
        notify,
        prop::bool::weighted(0.15),
        keys(),
    )
        .prop_map(
            |(name, shape, local, notify, encrypt_only, keys)| ContactSpec {
                name,
                shape,
                local,
                notify,
                encrypt_only,
                keys,
            },
        )
}

fn org() -> impl Strategy<Value = OrgSpec> {
    let legal = prop::option::weighted(0.5, 0..LEGAL.len());
    (
        name(),
        legal,
        prop::collection::vec(contact(), 1..=2),
        prop::bool::weighted(0.6),
    )
        .prop_map(|(name, legal, contacts, anonymous)| OrgSpec {
            name,
            legal,
            contacts,
            anonymous,
        })
}

fn mention() -> impl Strategy<Value = Mention> {
    use What::*;
    let what = prop_oneof![
        Just(Name),
        Just(Email),
        Just(Local),
        Just(OrgFull),
        Just(OrgBase),
        Just(Domain),
        Just(Subdomain)
    ];
    use Style::*;
    let style = prop_oneof![
        Just(Space),
        Just(Double),
        Just(Nbsp),
        Just(Tab),
        Just(Newline),
        Just(Underscore),
        Just(Dash),
        Just(Joined),
        Just(Dot),
        Just(Upper),
        Just(Fullwidth)
    ];
    (0usize..64, what, style).prop_map(|(who, what, style)| Mention { who, what, style })
}

fn file() -> impl Strategy<Value = FileSpec> {
    (
        prop::option::weighted(0.7, mention()),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(mention, big, html)| FileSpec { mention, big, html })
}

fn post() -> impl Strategy<Value = PostSpec> {
    (
        (
            0usize..16,
            prop::option::weighted(0.85, 0usize..64),
            any::<bool>(),
            prop::bool::weighted(0.15),
        ),
        (prop::collection::vec(0usize..64, 0..4), 0u8..10),
        prop::collection::vec((0usize..5, mention()), 0..5),
        prop::collection::vec(file(), 0..3),
        prop::option::weighted(0.3, mention()),
        prop::collection::vec(0usize..4, 0..3),
    )
        .prop_map(
            |(
                (thread, author, system, pinned),
                (direct, arrival),
                mentions,
                files,
                html,
                reply_quotes,
            )| PostSpec {
                thread,
                author,
                system,
                pinned,
                direct,
                arrival,
                mentions,
                files,
                html,
                reply_quotes,
            },
        )
}

fn status_spec() -> impl Strategy<Value = StatusSpec> {
    (
        prop::bool::weighted(0.7),
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::collection::vec((0usize..5, mention()), 0..3),
        prop::option::weighted(0.3, mention()),
    )
        .prop_map(|(given, share, encrypted, mentions, reference)| StatusSpec {
            given,
            share,
            encrypted,
            mentions,
            reference,
        })
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec(status_spec(), 3),
        prop::collection::vec(contact(), 1..=2),
        prop::collection::vec(org(), 1..=3),
        (
            contact(),
            prop::option::weighted(0.3, name()),
            prop::bool::weighted(0.5),
        ),
        (prop::bool::weighted(0.2), any::<bool>()),
        prop::collection::vec(mention(), 0..3),
        prop::collection::vec(post(), 1..=3),
    )
        .prop_map(
            |(statuses, coordinators, vendors, reporter, flags, title, posts)| Spec {
                statuses,
                coordinators,
                vendors,
                reporter: reporter.0,
                reporter_org: reporter.1,
                reporter_anonymous: reporter.2,
                embargoed: flags.0,
                report_accepted: flags.1,
                title,
                posts,
            },
        )
}

// ---------------------------------------------------------------------------------------
// Building the world (or its twin, where one participant's identities are spelled with
// the twin syllables)
// ---------------------------------------------------------------------------------------

/// One world built from a spec: the snapshot and what the oracle knows about it.
struct Fixture {
    world: World,
    /// Per contact id: its key facts.
    keys: Vec<(ContactId, Keys)>,
    /// Per contact id: names that do not identify anyone (reserved-like names).
    plain_names: BTreeSet<ContactId>,
    /// Org id → its name without legal form.
    org_base: Vec<(OrgId, String)>,
    reporter: ContactId,
    title: String,
    posts: Vec<PostData>,
    /// The given statuses, one per vendor at most; the marker of each statement.
    statuses: Vec<(StatusSnap, String)>,
    /// Identity skeletons by participant (org, contact), filled by [`secrets`].
    secrets: std::cell::RefCell<Vec<(ParticipantKey, Vec<String>)>>,
}

/// A participant by (organization, lone contact).
type ParticipantKey = (Option<OrgId>, Option<ContactId>);

struct PostData {
    thread: ThreadId,
    author: Author,
    pinned: bool,
    direct: Vec<String>,
    arrival: Arrival,
    body: String,
    attachments: Vec<Attachment>,
    marker: String,
}

/// Which entities are spelled with the twin syllables.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Twin {
    None,
    Org(OrgId),
    Contact(ContactId),
}

struct Builder<'s> {
    spec: &'s Spec,
    twin: Twin,
    /// The lone reporter's contact id.
    reporter: ContactId,
    f: Fixture,
}

const REPORTER_ORG: OrgId = 50;

fn word(w: &[usize], twin: bool, capital: bool) -> String {
    let table = if twin { TWINS } else { SYLLABLES };
    let s: String = w.iter().map(|i| table[*i]).collect();
    if !capital {
        return s;
    }
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn words(n: &Name, twin: bool) -> Vec<String> {
    n.0.iter().map(|w| word(w, twin, true)).collect()
}

fn ascii_words(n: &Name, twin: bool) -> Vec<String> {
    n.0.iter().map(|w| ascii(&word(w, twin, false))).collect()
}

impl<'s> Builder<'s> {
    /// A lone reporter's own organization is renamed with them.
    fn twin_org(&self, org: OrgId) -> bool {
        self.twin == Twin::Org(org)
            || (org == REPORTER_ORG && self.twin == Twin::Contact(self.reporter))
    }

    fn add_org(&mut self, id: OrgId, name: &Name, legal: Option<usize>, kind: OrgKind) -> String {
        let twin = self.twin_org(id);
        let base = words(name, twin).join(" ");
        let full = format!("{base}{}", legal.map_or("", |l| LEGAL[l]));
        let domain = format!("{}.test", ascii_words(name, twin).join("-"));
        let domains = vec![domain.clone()];
        self.f.world.orgs.push(OrgSnap {
            id,
            name: full,
            kind,
            domains,
        });
        self.f.org_base.push((id, base));
        domain
    }

    fn add_contact(
        &mut self,
        org: Option<OrgId>,
        domain: &str,
        c: &ContactSpec,
        may_be_reserved: bool,
    ) -> ContactId {
        let id = 10 + self.f.world.contacts.len() as ContactId;
        let twin = self.twin == Twin::Contact(id)
            || org.is_some_and(|o| o != REPORTER_ORG && self.twin_org(o));
        let parts = words(&c.name, twin);
        let plain = parts.join(" ");
        let name = match c.shape {
            Shape::Plain => plain,
            Shape::DoubleSpace => parts.join("  "),
            Shape::Nbsp => parts.join("\u{a0}"),
            Shape::Bidi => format!("\u{202e}{plain}\u{2066}"),
            Shape::Reserved(i) if may_be_reserved => {
                self.f.plain_names.insert(id);
                RESERVED[i].to_string()
            }
            Shape::Reserved(_) => plain,
        };
        let a = ascii_words(&c.name, twin);
        let mut local = match c.local {
            Local::First => a[0].clone(),
            Local::FirstLast => a.join("."),
            Local::Generic(g) => GENERIC_LOCALS[g].to_string(),
        };
        if self
            .f
            .world
            .contacts
            .iter()
            .any(|o| o.email == format!("{local}@{domain}"))
        {
            local = format!("{local}{id}");
        }
        let email = format!("{local}@{domain}");
        self.f.world.contacts.push(ContactSnap {
            id,
            email,
            name,
            org,
            notify: c.notify,
            encrypt_only: c.encrypt_only,
            bouncing: false,
        });
        self.f.keys.push((id, c.keys));
        id
    }
}

fn build(spec: &Spec, twin: Twin) -> Fixture {
    let f = Fixture {
        world: World::default(),
        keys: vec![],
        plain_names: BTreeSet::new(),
        org_base: vec![],
        reporter: 0,
        title: String::new(),
        posts: vec![],
        statuses: vec![],
        secrets: Default::default(),
    };
    let reporter = 10
        + (spec.coordinators.len() + spec.vendors.iter().map(|v| v.contacts.len()).sum::<usize>())
            as ContactId;
    let mut b = Builder {
        spec,
        twin,
        reporter,
        f,
    };
    b.f.world.orgs.push(OrgSnap {
        id: 1,
        name: COORDINATOR_ORG.into(),
        kind: OrgKind::Coordinator,
        domains: vec!["cert.example".into()],
    });
    b.f.org_base.push((1, COORDINATOR_ORG.into()));
    for c in &spec.coordinators {
        b.add_contact(Some(1), "cert.example", c, false);
    }
    let mut participants = Vec::new();
    let mut private_threads = Vec::new();
    for (i, v) in spec.vendors.iter().enumerate() {
        let org = 2 + i as OrgId;
        let domain = b.add_org(org, &v.name, v.legal, OrgKind::Vendor);
        for c in &v.contacts {
            b.add_contact(Some(org), &domain, c, !v.anonymous);
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
        b.f.world.threads.push(ThreadSnap {
            id: thread,
            kind: ThreadKind::Private,
            case: Some(CASE),
            org: Some(org),
            report: None,
        });
    }
    add_reporter(&mut b, &mut participants);
    finish_world(&mut b, participants, private_threads);
    b.f.title = text_of_mentions(&b.f, "Flaw in ", &spec.title);
    b.f.world.cases[0].title = b.f.title.clone();
    for (n, p) in spec.posts.iter().enumerate() {
        let data = post_data(&b.f, p, n);
        b.f.posts.push(data);
    }
    for (i, _) in spec.vendors.iter().enumerate() {
        let st = &spec.statuses[i];
        if st.given {
            let data = status_data(&b.f, 2 + i as OrgId, st);
            b.f.statuses.push(data);
        }
    }
    b.f
}

/// A vendor's status with a statement that names anyone (in the twin world too).
fn status_data(f: &Fixture, org: OrgId, st: &StatusSpec) -> (StatusSnap, String) {
    let marker = format!("Statement{org}here");
    let mut statement = format!("{marker}\nA fix ships in the next release.\n");
    for (ctx, m) in &st.mentions {
        statement.push_str(&CONTEXTS[ctx % CONTEXTS.len()].replace("{}", &mentioned(f, m)));
        statement.push('\n');
    }
    let references = st.reference.iter().map(|m| format!("https://advisories.test/{}", mentioned(f, m))).collect();
    let snap = StatusSnap {
        org,
        status: Some(VendorStatus::Affected),
        statement,
        references,
        share: st.share,
        encrypted: st.encrypted,
        updated_at: NOW,
    };
    (snap, marker)
}

fn add_reporter(b: &mut Builder, participants: &mut Vec<ParticipantSnap>) {
    let spec = b.spec;
    let domain = match &spec.reporter_org {
        Some(n) => b.add_org(REPORTER_ORG, n, None, OrgKind::Reporter),
        None => {
            let twin = b.twin == Twin::Contact(b.reporter);
            format!(
                "{}-lab.test",
                ascii_words(&spec.reporter.name, twin).join("-")
            )
        }
    };
    let org = spec.reporter_org.as_ref().map(|_| REPORTER_ORG);
    b.f.reporter = b.add_contact(org, &domain, &spec.reporter, !spec.reporter_anonymous);
    assert_eq!(b.f.reporter, b.reporter);
    participants.push(ParticipantSnap {
        org: None,
        contact: Some(b.f.reporter),
        role: Role::Reporter,
        anonymous: spec.reporter_anonymous,
        alias: "Reporter".into(),
    });
}

fn finish_world(
    b: &mut Builder,
    participants: Vec<ParticipantSnap>,
    private_threads: Vec<(OrgId, ThreadId)>,
) {
    let spec = b.spec;
    b.f.world.cases.push(CaseSnap {
        id: CASE,
        public_id: "VU#123456".into(),
        title: String::new(),
        state: CaseState::Open,
        embargoed: spec.embargoed,
        min_assurance: None,
        discussion: DISCUSSION,
        private_threads,
        participants,
    });
    b.f.world.threads.push(ThreadSnap {
        id: DISCUSSION,
        kind: ThreadKind::Discussion,
        case: Some(CASE),
        org: None,
        report: None,
    });
    b.f.world.threads.push(ThreadSnap {
        id: REPORT_THREAD,
        kind: ThreadKind::Report,
        case: None,
        org: None,
        report: Some(1),
    });
    b.f.world.reports.push(ReportSnap {
        id: 1,
        public_id: "VRF#26-11-BCDFG".into(),
        reporter: b.f.reporter,
        state: if spec.report_accepted {
            ReportState::Accepted
        } else {
            ReportState::New
        },
        case: spec.report_accepted.then_some(CASE),
        thread: REPORT_THREAD,
        subject: "Report".into(),
    });
}

/// One spelling of what a mention names.
fn mentioned(f: &Fixture, m: &Mention) -> String {
    let w = &f.world;
    let c = &w.contacts[m.who % w.contacts.len()];
    let org = c.org.and_then(|o| w.org(o));
    let (local, domain) = c.email.split_once('@').unwrap_or((&c.email, ""));
    let base = |o: &OrgSnap| {
        f.org_base
            .iter()
            .find(|(id, _)| *id == o.id)
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    };
    let raw = match m.what {
        What::Name => c.name.clone(),
        What::Email => c.email.clone(),
        What::Local => local.to_string(),
        What::OrgFull => org.map_or(c.name.clone(), |o| o.name.clone()),
        What::OrgBase => org.map_or(c.name.clone(), base),
        What::Domain => domain.to_string(),
        What::Subdomain => format!("ci.build.{domain}"),
    };
    styled(&raw, m.style)
}

fn styled(raw: &str, style: Style) -> String {
    let parts: Vec<&str> = raw.split(' ').filter(|p| !p.is_empty()).collect();
    match style {
        Style::Space => parts.join(" "),
        Style::Double => parts.join("  "),
        Style::Nbsp => parts.join("\u{a0}"),
        Style::Tab => parts.join("\t"),
        Style::Newline => parts.join("\n"),
        Style::Underscore => parts.join("_"),
        Style::Dash => parts.join("-"),
        Style::Joined => parts.concat(),
        Style::Dot => parts.join("."),
        Style::Upper => raw.to_uppercase(),
        Style::Fullwidth => raw
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() {
                    char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
                } else {
                    c
                }
            })
            .collect(),
    }
}

fn text_of_mentions(f: &Fixture, prefix: &str, ms: &[Mention]) -> String {
    let named: Vec<String> = ms.iter().map(|m| mentioned(f, m)).collect();
    format!("{prefix}{}", named.join(" and "))
}

const CONTEXTS: &[&str] = &[
    "Regards, {}",
    "From: {}",
    "> {} wrote:",
    "Credit to {} for the report.",
    "cc {}",
];
const REPLY_QUOTES: &[&str] = &[
    "> To write privately to the coordinators, mail cases+r-quoted{n}x@cert.example",
    "> Reply-To: <CASES+R-QUOTED{n}X@CERT.EXAMPLE>",
    "see mailto:cases+b-quoted{n}y@cert.example",
    "<a href=\"mailto:cases%2Br-quoted{n}z%40cert.example\">",
];

fn post_data(f: &Fixture, p: &PostSpec, n: usize) -> PostData {
    let w = &f.world;
    let thread = &w.threads[p.thread % w.threads.len()];
    let readers = expected_readers(f, thread);
    let author = match p.author {
        Some(i) if !readers.is_empty() => Author::Contact(readers[i % readers.len()]),
        _ if p.system => Author::System,
        _ => Author::Unknown,
    };
    let direct = p
        .direct
        .iter()
        .map(|i| w.contacts[i % w.contacts.len()].email.to_uppercase())
        .collect();
    let arrival = match p.arrival {
        0 => Arrival::Encrypted,
        1 => Arrival::Unreadable,
        _ => Arrival::Plain,
    };
    let marker = format!("Posting{n}here");
    let mut body = format!("{marker}\nWe reproduced the issue on the latest build.\n{CANARY}\n");
    for (ctx, m) in &p.mentions {
        body.push_str(&CONTEXTS[ctx % CONTEXTS.len()].replace("{}", &mentioned(f, m)));
        body.push('\n');
    }
    for q in &p.reply_quotes {
        body.push_str(&REPLY_QUOTES[*q].replace("{n}", &n.to_string()));
        body.push('\n');
    }
    let attachments = attachments(f, p, n);
    PostData {
        thread: thread.id,
        author,
        pinned: p.pinned,
        direct,
        arrival,
        body,
        attachments,
        marker,
    }
}

fn attachments(f: &Fixture, p: &PostSpec, n: usize) -> Vec<Attachment> {
    let mut out: Vec<Attachment> = p
        .files
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let stem = s.mention.map_or_else(
                || format!("trace{i}"),
                |m| format!("{}-crash{i}", mentioned(f, &m)),
            );
            let (name, ct) = if s.html {
                (format!("{stem}.html"), "text/html")
            } else {
                (format!("{stem}.txt"), "text/plain")
            };
            let size = if s.big {
                MAX_ATTACHMENT as usize + 10
            } else {
                10
            };
            Attachment {
                filename: name,
                content_type: ct.into(),
                bytes: b"0123456789".iter().cycle().take(size).copied().collect(),
            }
        })
        .collect();
    if let Some(m) = &p.html {
        let quote = REPLY_QUOTES[3].replace("{n}", &n.to_string());
        let html = format!(
            "<html><body><p>Regards, {}</p><p>{quote}mail</a></p></body></html>",
            mentioned(f, m)
        );
        out.insert(
            0,
            Attachment {
                filename: "body.html".into(),
                content_type: "text/html".into(),
                bytes: html.into_bytes(),
            },
        );
    }
    out
}

// ---------------------------------------------------------------------------------------
// The oracle: SPEC §6 written out again, independently of `audience` and `view`
// ---------------------------------------------------------------------------------------

fn is_coordinator(w: &World, c: &ContactSnap) -> bool {
    c.org
        .and_then(|o| w.org(o))
        .is_some_and(|o| o.kind == OrgKind::Coordinator)
}

/// SPEC §6.1: who may read a thread.
fn expected_readers(f: &Fixture, t: &ThreadSnap) -> Vec<ContactId> {
    let w = &f.world;
    let case = &w.cases[0];
    w.contacts
        .iter()
        .filter(|c| {
            is_coordinator(w, c)
                || match t.kind {
                    ThreadKind::Private => c.org.is_some() && c.org == t.org,
                    ThreadKind::Report => c.id == f.reporter,
                    ThreadKind::Discussion => case
                        .participants
                        .iter()
                        .any(|p| p.contact == Some(c.id) || (p.org.is_some() && p.org == c.org)),
                }
        })
        .map(|c| c.id)
        .collect()
}

/// SPEC §6.1, §6.5: who gets a post now, who in their digest.
fn expected_fan_out(f: &Fixture, p: &PostData) -> (Vec<(ContactId, Mode)>, Vec<ContactId>) {
    let w = &f.world;
    let t = w.thread(p.thread).expect("thread");
    let by_coordinator = matches!(p.author, Author::Contact(a) if w.contact(a).is_some_and(|a| is_coordinator(w, a)));
    let (mut get, mut direct) = (vec![], vec![]);
    for id in expected_readers(f, t) {
        let c = w.contact(id).expect("reader");
        if p.author == Author::Contact(id) {
            continue;
        }
        if by_coordinator && p.direct.iter().any(|d| d.eq_ignore_ascii_case(&c.email)) {
            direct.push(id);
            continue;
        }
        match c.notify {
            NotifyMode::None => {}
            NotifyMode::Digest if !p.pinned => get.push((id, Mode::Digest)),
            _ => get.push((id, Mode::Now)),
        }
    }
    (get, direct)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Nothing,
    Notice,
    Content,
}

/// SPEC §6.4 and docs/decisions.md: content that must travel encrypted reaches a recipient
/// without a usable key as the notice; a failed encryption never falls back to plaintext.
/// Decided when queued with the keys then, and again when sent with the keys then: a
/// notice stays a notice.
fn expected_form(r: &ContactSnap, k: &Keys, embargo: bool, arrived_encrypted: bool) -> Form {
    let once = |k: &Facts| {
        let needs = embargo || arrived_encrypted || r.encrypt_only || k.confirmed_cert;
        if k.sealing_failed || (needs && !k.usable_cert) {
            Form::Notice
        } else {
            Form::Content
        }
    };
    match once(&k.plan) {
        Form::Content => once(&k.send),
        other => other,
    }
}

fn keys_of(f: &Fixture, c: ContactId) -> Keys {
    f.keys
        .iter()
        .find(|(id, _)| *id == c)
        .map(|(_, k)| *k)
        .unwrap_or_default()
}

/// Whether a thread belongs to the case: its own threads, and the report thread once the
/// report became the case.
fn in_case(f: &Fixture, t: &ThreadSnap) -> bool {
    t.case.is_some() || (t.kind == ThreadKind::Report && f.world.reports[0].case.is_some())
}

fn embargoed(f: &Fixture, t: &ThreadSnap) -> bool {
    in_case(f, t) && f.world.cases[0].embargoed
}

/// The anonymous participants whose identities `r` may not see in what they get about the
/// case (SPEC §6.3); a thread outside the case (a report not accepted) has none.
fn hidden_from<'w>(w: &'w World, r: &ContactSnap, in_case: bool) -> Vec<&'w ParticipantSnap> {
    if is_coordinator(w, r) || !in_case {
        return vec![];
    }
    w.cases[0]
        .participants
        .iter()
        .filter(|p| p.anonymous && p.contact != Some(r.id) && !(p.org.is_some() && p.org == r.org))
        .collect()
}

/// What identifies a participant: every contact's name, address and (non-generic) local
/// part, the organization's name with and without legal form, its domain; for a lone
/// participant their own domain and organization.
fn identities(f: &Fixture, p: &ParticipantSnap) -> Vec<String> {
    let w = &f.world;
    let mut out = vec![];
    let person = |c: &ContactSnap, out: &mut Vec<String>| {
        if !f.plain_names.contains(&c.id) {
            out.push(c.name.clone());
        }
        out.push(c.email.clone());
        let (local, domain) = c.email.split_once('@').unwrap_or_default();
        if !GENERIC_LOCALS.iter().any(|g| local.starts_with(g)) {
            out.push(local.to_string());
        }
        out.push(domain.to_string());
    };
    let org = |o: &OrgSnap, out: &mut Vec<String>| {
        out.push(o.name.clone());
        out.extend(
            f.org_base
                .iter()
                .filter(|(id, _)| *id == o.id)
                .map(|(_, b)| b.clone()),
        );
        out.extend(o.domains.iter().cloned());
    };
    if let Some(o) = p.org.and_then(|o| w.org(o)) {
        for c in w.contacts.iter().filter(|c| c.org == Some(o.id)) {
            person(c, &mut out);
        }
        org(o, &mut out);
    }
    if let Some(c) = p.contact.and_then(|c| w.contact(c)) {
        person(c, &mut out);
        if let Some(o) = c.org.and_then(|o| w.org(o)) {
            org(o, &mut out);
        }
    }
    out
}

/// The skeletons of a participant's identities, computed once per world.
fn secrets<'f>(f: &'f Fixture, p: &ParticipantSnap) -> std::cell::Ref<'f, Vec<String>> {
    let key = (p.org, p.contact);
    if !f.secrets.borrow().iter().any(|(k, _)| *k == key) {
        let skeletons = identities(f, p).iter().map(|i| seen(i).skeleton).collect();
        f.secrets.borrow_mut().push((key, skeletons));
    }
    std::cell::Ref::map(f.secrets.borrow(), |all| {
        &all.iter().find(|(k, _)| *k == key).expect("computed").1
    })
}

/// A reply or bounce address of the gateway, in any spelling a mail client or a web
/// form produces.
static REPLY_ADDRESS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)cases(?:\+|%2b|&#43;|&#x2b;|&plus;)([rb]-[a-z0-9]+)(?:@|%40|&#64;|&#x40;|&commat;)cert\.example").expect("regex")
});

/// Text as a reader recognises it: NFKC, lowercase, letters and digits, and where its
/// words start.
struct Seen {
    skeleton: String,
    /// Byte offsets in `skeleton` where a word starts, and its length at the end.
    bounds: Vec<usize>,
}

fn seen(text: &str) -> Seen {
    let normal: std::borrow::Cow<str> = match unicode_normalization::is_nfkc_quick(text.chars()) {
        unicode_normalization::IsNormalized::Yes => text.into(),
        _ => text.nfkc().collect::<String>().into(),
    };
    let mut s = Seen {
        skeleton: String::with_capacity(normal.len()),
        bounds: vec![],
    };
    let mut gap = true;
    for c in normal.chars().flat_map(char::to_lowercase) {
        if !c.is_alphanumeric() {
            gap = true;
            continue;
        }
        if gap {
            s.bounds.push(s.skeleton.len());
            gap = false;
        }
        s.skeleton.push(c);
    }
    s.bounds.push(s.skeleton.len());
    s
}

fn cjk(s: &str) -> bool {
    s.chars()
        .any(|c| matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x9FFF | 0xF900..=0xFAFF))
}

/// Whether an identity (its skeleton) shows in `text`: anywhere when four characters or
/// longer (or written in a script without spaces), else as a whole word or run of whole
/// words.
fn shows_skeleton(text: &Seen, id: &str) -> bool {
    if id.is_empty() {
        return false;
    }
    if id.chars().count() >= 4 || cjk(id) {
        return text.skeleton.contains(id);
    }
    text.bounds.iter().any(|&b| {
        text.skeleton[b..].starts_with(id) && text.bounds.binary_search(&(b + id.len())).is_ok()
    })
}

/// Every text a recipient reads in a message: subject, From name, body parts (text and
/// HTML), attachment names — with attachment contents (forwarded as they are) left out.
struct Decoded {
    subject: String,
    from: String,
    texts: Vec<String>,
    names: Vec<String>,
}

fn decode(bytes: &[u8]) -> Result<Decoded, TestCaseError> {
    let m = MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| TestCaseError::fail("unparseable message"))?;
    let mut d = Decoded {
        subject: m.subject().unwrap_or_default().to_string(),
        from: m
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.name())
            .unwrap_or_default()
            .to_string(),
        texts: vec![],
        names: vec![],
    };
    for part in &m.parts {
        let html = part
            .content_type()
            .is_some_and(|c| c.subtype() == Some("html"));
        match part.attachment_name() {
            Some(n) => {
                d.names.push(n.to_string());
                if html {
                    d.texts.extend(part.text_contents().map(str::to_string));
                }
            }
            None => d.texts.extend(part.text_contents().map(str::to_string)),
        }
    }
    Ok(d)
}

impl Decoded {
    fn all(&self) -> impl Iterator<Item = &String> {
        [&self.subject, &self.from]
            .into_iter()
            .chain(&self.texts)
            .chain(&self.names)
    }
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

fn gateway() -> Gateway {
    Gateway {
        name: GATEWAY.into(),
        book: AddressBook {
            domain: "cert.example".into(),
            local_part: "cases".into(),
            intake: vec!["security@cert.example".into()],
            case_prefix: "VU#".into(),
        },
    }
}

fn addressing(r: &ContactSnap, item: &str) -> Addressing {
    Addressing {
        to_name: r.name.clone(),
        to: r.email.clone(),
        reply_to: format!("cases+r-own{}a@cert.example", r.id),
        private_reply_to: Some(format!("cases+r-own{}b@cert.example", r.id)),
        message_id: format!("{item}.{}@cert.example", r.id),
        in_reply_to: None,
        references: vec![],
        bounce: format!("cases+b-own{}@cert.example", r.id),
    }
}

/// The view of `item` for `r`, rendered as `compose` renders it (unsealed).
fn deliver(
    gw: &Gateway,
    w: &World,
    item: &Item,
    r: &ContactSnap,
    keys: &Keys,
    id: &str,
) -> (Form, Option<Vec<u8>>) {
    let ctx = Ctx {
        gateway_name: &gw.name,
        book: &gw.book,
        max_attachment_bytes: MAX_ATTACHMENT,
    };
    // Queued (SPEC §7.1): the decision is stored; rendered and sealed when sent.
    let queued = match view::form(w, item, r.id, &keys.plan) {
        view::Form::Nothing(_) => return (Form::Nothing, None),
        view::Form::Notice(_) => Queued::Notice,
        view::Form::Content(_) => Queued::Content,
    };
    let facts = Facts {
        queued: Some(queued),
        ..keys.send
    };
    let to = addressing(r, id);
    match view::view(w, item, r.id, &facts, &ctx) {
        View::Nothing(_) => (Form::Nothing, None),
        View::Notice(n) => (Form::Notice, Some(render::notice(gw, &n, &to, NOW).bytes)),
        View::Content(c) => (
            Form::Content,
            Some(render::content(gw, &c, &to, NOW).1.bytes),
        ),
    }
}

/// What every message must satisfy, whatever it is.
fn check_message(
    f: &Fixture,
    r: &ContactSnap,
    m: &Message,
    author: Option<Author>,
) -> Result<Decoded, TestCaseError> {
    let bytes = &m.bytes;
    let w = &f.world;
    let d = decode(bytes)?;
    let hidden = hidden_from(w, r, m.in_case);
    if !hidden.is_empty() {
        WITH_HIDDEN.fetch_add(1, Relaxed);
    }
    // Paragraph by paragraph: two names the renderer puts on either side of a blank line
    // (a digest entry's end and the next one's author) do not spell a third.
    let paragraphs: Vec<String> = if hidden.is_empty() {
        vec![]
    } else {
        d.all()
            .flat_map(|t| {
                t.replace("\r\n", "\n")
                    .split("\n\n")
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let views: Vec<(&String, Seen)> = paragraphs.iter().map(|t| (t, seen(t))).collect();
    for p in hidden {
        for id in secrets(f, p).iter() {
            for (text, s) in &views {
                prop_assert!(
                    !shows_skeleton(s, id),
                    "{:?} of {} reached {}:\n{}",
                    id,
                    p.alias,
                    r.email,
                    text
                );
            }
        }
    }
    let re = &*REPLY_ADDRESS;
    let own = [format!("r-own{}a", r.id), format!("r-own{}b", r.id)];
    for t in d.all() {
        for cap in re.captures_iter(t) {
            prop_assert!(
                own.contains(&cap[1].to_lowercase()),
                "{} got someone's reply address: {}",
                r.email,
                &cap[0]
            );
        }
    }
    for t in [&d.subject, &d.from].into_iter().chain(&d.names) {
        prop_assert!(
            !t.chars().any(format_char),
            "format character in {t:?} to {}",
            r.email
        );
    }
    // Nobody but a coordinator (not an unknown sender either) under a reserved name.
    let impostor = match author {
        Some(Author::Contact(a)) => w
            .contact(a)
            .filter(|a| !is_coordinator(w, a))
            .map(|a| a.email.clone()),
        Some(Author::Unknown) => Some("an unknown sender".to_string()),
        _ => None,
    };
    if let Some(who) = impostor {
        let from = seen(&d.from);
        for name in RESERVED {
            prop_assert!(
                !from.skeleton.starts_with(&seen(name).skeleton),
                "{} shown as {:?}",
                who,
                d.from
            );
        }
    }
    Ok(d)
}

fn format_char(c: char) -> bool {
    matches!(c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0x061C | 0xFEFF | 0x00AD)
}

fn body_text(d: &Decoded) -> String {
    d.texts.first().cloned().unwrap_or_default()
}

fn check_content(d: &Decoded, markers: &[&str], absent: &[&str]) -> Result<(), TestCaseError> {
    let text = body_text(d);
    prop_assert!(
        text.contains(CANARY),
        "generic words did not survive:\n{text}"
    );
    let s = seen(&text).skeleton;
    for m in markers {
        prop_assert!(s.contains(&m.to_lowercase()), "{m} missing:\n{text}");
    }
    for m in absent {
        prop_assert!(
            !s.contains(&m.to_lowercase()),
            "{m} may not be read here:\n{text}"
        );
    }
    Ok(())
}

fn check_notice(f: &Fixture, d: &Decoded) -> Result<(), TestCaseError> {
    let all: Vec<&String> = d.all().collect();
    let title = seen(&f.title).skeleton;
    for t in all {
        let s = seen(t).skeleton;
        prop_assert!(
            !s.contains("posting") && !s.contains("flawin") && !s.contains(&title),
            "the notice carries content: {t}"
        );
    }
    Ok(())
}

fn post_item<'a>(f: &'a Fixture, p: &'a PostData) -> PostItem<'a> {
    PostItem {
        thread: f.world.thread(p.thread).expect("thread"),
        author: p.author,
        body: &p.body,
        attachments: &p.attachments,
        created_at_ms: 0,
        pinned: p.pinned,
        direct: &p.direct,
        arrival: p.arrival,
    }
}

/// Every post: the fan-out, then each recipient's message.
fn check_posts(f: &Fixture, out: &mut Vec<Message>) -> Result<(), TestCaseError> {
    let gw = gateway();
    let w = &f.world;
    for (n, p) in f.posts.iter().enumerate() {
        let item = post_item(f, p);
        let fan = fan_out(w, &item);
        let got: Vec<(ContactId, Mode)> =
            fan.deliveries.iter().map(|d| (d.contact, d.mode)).collect();
        let (want, direct) = expected_fan_out(f, p);
        prop_assert_eq!(&got, &want, "fan-out of post {}", n);
        prop_assert_eq!(&fan.direct, &direct, "direct recipients of post {}", n);
        let t = w.thread(p.thread).expect("thread");
        for r in &w.contacts {
            let k = keys_of(f, r.id);
            let form = match want.iter().find(|(c, _)| *c == r.id) {
                Some((_, Mode::Now)) => {
                    expected_form(r, &k, embargoed(f, t), p.arrival != Arrival::Plain)
                }
                _ => Form::Nothing,
            };
            let id = format!("p{n}");
            let (got, bytes) = deliver(&gw, w, &Item::Post(&item), r, &k, &id);
            prop_assert_eq!(got, form, "post {} to {}", n, r.email);
            if let Some(bytes) = bytes {
                let m = Message {
                    key: id,
                    rcpt: r.id,
                    in_case: in_case(f, t),
                    bytes,
                };
                let shown_author = (form == Form::Content).then_some(p.author);
                let d = check_message(f, r, &m, shown_author)?;
                match form {
                    Form::Content => check_content(&d, &[&p.marker], &[])?,
                    _ => check_notice(f, &d)?,
                }
                out.push(m);
            }
        }
    }
    Ok(())
}

/// The digest of every post for every reader of the case discussion.
fn check_digests(f: &Fixture, out: &mut Vec<Message>) -> Result<(), TestCaseError> {
    let gw = gateway();
    let w = &f.world;
    let home = w.thread(DISCUSSION).expect("discussion");
    let items: Vec<PostItem> = f.posts.iter().map(|p| post_item(f, p)).collect();
    let item = Item::Digest {
        home,
        posts: &items,
    };
    for r in &w.contacts {
        let k = keys_of(f, r.id);
        let readable: Vec<&PostData> = f
            .posts
            .iter()
            .filter(|p| expected_readers(f, w.thread(p.thread).expect("t")).contains(&r.id))
            .collect();
        let form = if readable.is_empty() || !expected_readers(f, home).contains(&r.id) {
            Form::Nothing
        } else {
            let embargo = readable
                .iter()
                .any(|p| embargoed(f, w.thread(p.thread).expect("t")))
                || embargoed(f, home);
            expected_form(
                r,
                &k,
                embargo,
                readable.iter().any(|p| p.arrival != Arrival::Plain),
            )
        };
        let (got, bytes) = deliver(&gw, w, &item, r, &k, "digest");
        prop_assert_eq!(got, form, "digest to {}", r.email);
        let Some(bytes) = bytes else { continue };
        let m = Message {
            key: "digest".into(),
            rcpt: r.id,
            in_case: true,
            bytes,
        };
        let d = check_message(f, r, &m, None)?;
        if form == Form::Content {
            let present: Vec<&str> = readable.iter().map(|p| p.marker.as_str()).collect();
            let absent: Vec<&str> = f
                .posts
                .iter()
                .filter(|p| !readable.iter().any(|q| std::ptr::eq(*q, *p)))
                .map(|p| p.marker.as_str())
                .collect();
            check_content(&d, &present, &absent)?;
        } else {
            check_notice(f, &d)?;
        }
        out.push(m);
    }
    Ok(())
}

/// The initial contact of every vendor organization, and the acknowledgement of the report.
fn check_vendor_and_ack(f: &Fixture, out: &mut Vec<Message>) -> Result<(), TestCaseError> {
    let gw = gateway();
    let w = &f.world;
    let case = &w.cases[0];
    for o in w.orgs.iter().filter(|o| o.kind == OrgKind::Vendor) {
        let item = Item::VendorContact(VendorContact {
            case,
            org: o.id,
            public_date_ms: NOW,
            fingerprint: None,
        });
        for r in &w.contacts {
            let k = keys_of(f, r.id);
            let form = if r.org == Some(o.id) && r.notify != NotifyMode::None {
                expected_form(r, &k, case.embargoed, false)
            } else {
                Form::Nothing
            };
            let id = format!("v{}", o.id);
            let (got, bytes) = deliver(&gw, w, &item, r, &k, &id);
            prop_assert_eq!(got, form, "initial contact of org {} to {}", o.id, r.email);
            if let Some(bytes) = bytes {
                let m = Message {
                    key: id.clone(),
                    rcpt: r.id,
                    in_case: true,
                    bytes,
                };
                let d = check_message(f, r, &m, None)?;
                if form == Form::Notice {
                    check_notice(f, &d)?;
                }
                out.push(m);
            }
        }
    }
    let report = &w.reports[0];
    for r in &w.contacts {
        let k = keys_of(f, r.id);
        let (got, bytes) = deliver(&gw, w, &Item::Acknowledgement { report }, r, &k, "ack");
        let want = if r.id == f.reporter {
            Form::Content
        } else {
            Form::Nothing
        };
        prop_assert_eq!(got, want, "acknowledgement to {}", r.email);
        if let Some(bytes) = bytes {
            let m = Message {
                key: "ack".into(),
                rcpt: r.id,
                in_case: report.case.is_some(),
                bytes,
            };
            check_message(f, r, &m, None)?;
        }
    }
    Ok(())
}

fn statuses_of(f: &Fixture) -> Vec<StatusSnap> {
    f.statuses.iter().map(|(s, _)| s.clone()).collect()
}

/// SPEC §8: the statuses `r` may see: shared ones, their own organization's, every one for
/// a coordinator.
fn visible_statuses<'f>(f: &'f Fixture, r: &ContactSnap) -> Vec<&'f (StatusSnap, String)> {
    let coordinator = is_coordinator(&f.world, r);
    f.statuses
        .iter()
        .filter(|(s, _)| s.share || coordinator || r.org == Some(s.org))
        .collect()
}

/// The posts `r` may read.
fn readable_posts<'f>(f: &'f Fixture, r: &ContactSnap) -> Vec<&'f PostData> {
    let w = &f.world;
    f.posts
        .iter()
        .filter(|p| expected_readers(f, w.thread(p.thread).expect("t")).contains(&r.id))
        .collect()
}

/// Markers of what `r` may see must be there, of anything else must not.
fn check_markers(d: &Decoded, present: &[&str], absent: &[&str]) -> Result<(), TestCaseError> {
    let text = body_text(d);
    let s = seen(&text).skeleton;
    for m in present {
        prop_assert!(s.contains(&m.to_lowercase()), "{m} missing:\n{text}");
    }
    for m in absent {
        prop_assert!(!s.contains(&m.to_lowercase()), "{m} may not be read here:\n{text}");
    }
    Ok(())
}

/// The case summary (`-info`) and the late joiner's summary with the discussion so far.
fn check_summaries(f: &Fixture, out: &mut Vec<Message>) -> Result<(), TestCaseError> {
    let gw = gateway();
    let w = &f.world;
    let statuses = statuses_of(f);
    let discussion = w.thread(DISCUSSION).expect("discussion");
    let readers = expected_readers(f, discussion);
    let items: Vec<PostItem> = f.posts.iter().map(|p| post_item(f, p)).collect();
    let facts = CaseFacts { case: &w.cases[0], public_date_ms: Some(NOW), statuses: &statuses };
    for (key, joined) in [("summary", false), ("joined", true)] {
        let posts: &[PostItem] = if joined { &items } else { &[] };
        let item = Item::Summary { facts, posts, joined };
        for r in &w.contacts {
            let k = keys_of(f, r.id);
            let visible = visible_statuses(f, r);
            let readable = if joined { readable_posts(f, r) } else { vec![] };
            let reaches = readers.contains(&r.id) && !(joined && r.notify == NotifyMode::None);
            let encrypted = visible.iter().any(|(s, _)| s.encrypted) || readable.iter().any(|p| p.arrival != Arrival::Plain);
            let form = if reaches { expected_form(r, &k, w.cases[0].embargoed, encrypted) } else { Form::Nothing };
            let (got, bytes) = deliver(&gw, w, &item, r, &k, key);
            prop_assert_eq!(got, form, "{} to {}", key, r.email);
            let Some(bytes) = bytes else { continue };
            let m = Message { key: key.into(), rcpt: r.id, in_case: true, bytes };
            let d = check_message(f, r, &m, None)?;
            if form == Form::Content {
                let mut present: Vec<&str> = visible.iter().map(|(_, m)| m.as_str()).collect();
                let mut absent: Vec<&str> = f.statuses.iter().filter(|s| !visible.iter().any(|v| std::ptr::eq(*v, *s))).map(|(_, m)| m.as_str()).collect();
                present.extend(readable.iter().map(|p| p.marker.as_str()));
                absent.extend(f.posts.iter().filter(|p| !readable.iter().any(|q| std::ptr::eq(*q, *p))).map(|p| p.marker.as_str()));
                check_markers(&d, &present, &absent)?;
            } else {
                check_notice(f, &d)?;
            }
            out.push(m);
        }
    }
    Ok(())
}

/// A reminder to each vendor organization.
fn check_reminders(f: &Fixture, out: &mut Vec<Message>) -> Result<(), TestCaseError> {
    let gw = gateway();
    let w = &f.world;
    let facts = CaseFacts { case: &w.cases[0], public_date_ms: Some(NOW), statuses: &[] };
    for o in w.orgs.iter().filter(|o| o.kind == OrgKind::Vendor) {
        let item = Item::Reminder { facts, org: o.id, day: 7 };
        let key = format!("r{}", o.id);
        for r in &w.contacts {
            let k = keys_of(f, r.id);
            let form = if r.org == Some(o.id) && r.notify != NotifyMode::None { expected_form(r, &k, w.cases[0].embargoed, false) } else { Form::Nothing };
            let (got, bytes) = deliver(&gw, w, &item, r, &k, &key);
            prop_assert_eq!(got, form, "reminder of org {} to {}", o.id, r.email);
            let Some(bytes) = bytes else { continue };
            let m = Message { key: key.clone(), rcpt: r.id, in_case: true, bytes };
            let d = check_message(f, r, &m, None)?;
            if form == Form::Notice {
                check_notice(f, &d)?;
            }
            out.push(m);
        }
    }
    Ok(())
}

/// The coordinators' daily summary names the case by its title and every vendor by name:
/// nobody else gets it, and an embargoed title goes only encrypted.
fn coordinators_note(f: &Fixture) -> CoordinatorNote {
    let w = &f.world;
    let case = &w.cases[0];
    let line = CaseLine { case: case.public_id.clone(), title: f.title.clone(), embargoed: case.embargoed, public_at: Some(NOW) };
    let without_status = w.orgs.iter().filter(|o| o.kind == OrgKind::Vendor).map(|o| VendorLine { case: case.public_id.clone(), org: o.name.clone(), notified_at: Some(NOW) }).collect();
    CoordinatorNote::Daily(Daily { date: "2026-01-01".into(), due: vec![line], without_status, ..Daily::default() })
}

fn check_coordinator_notes(f: &Fixture, out: &mut Vec<Message>) -> Result<(), TestCaseError> {
    let gw = gateway();
    let w = &f.world;
    let note = coordinators_note(f);
    let item = Item::Coordinators(&note);
    for r in &w.contacts {
        let k = keys_of(f, r.id);
        let form = if is_coordinator(w, r) && r.notify != NotifyMode::None { expected_form(r, &k, false, false) } else { Form::Nothing };
        let (got, bytes) = deliver(&gw, w, &item, r, &k, "coord");
        prop_assert_eq!(got, form, "coordinators' note to {}", r.email);
        let Some(bytes) = bytes else { continue };
        let m = Message { key: "coord".into(), rcpt: r.id, in_case: true, bytes };
        let d = check_message(f, r, &m, None)?;
        let encrypted = k.send.usable_cert && !k.send.sealing_failed;
        if w.cases[0].embargoed && !encrypted {
            check_notice(f, &d)?;
        }
        out.push(m);
    }
    Ok(())
}

/// One rendered message: which item, to whom, whether the item is about the case.
struct Message {
    key: String,
    rcpt: ContactId,
    in_case: bool,
    bytes: Vec<u8>,
}

/// Everything one world renders, checked.
fn check_world(f: &Fixture) -> Result<Vec<Message>, TestCaseError> {
    let mut out = vec![];
    check_posts(f, &mut out)?;
    check_digests(f, &mut out)?;
    check_vendor_and_ack(f, &mut out)?;
    check_summaries(f, &mut out)?;
    check_reminders(f, &mut out)?;
    check_coordinator_notes(f, &mut out)?;
    Ok(out)
}

/// The first anonymous participant, as the twin world renames it.
fn twin_of(f: &Fixture) -> Option<(Twin, &ParticipantSnap)> {
    let p = f.world.cases[0].participants.iter().find(|p| p.anonymous)?;
    let t = match (p.org, p.contact) {
        (Some(o), _) => Twin::Org(o),
        (None, Some(c)) => Twin::Contact(c),
        _ => return None,
    };
    Some((t, p))
}

/// Whether any identity of `p` (in either world) overlaps another identity or a fixed
/// text, or can be spelled across one: then who `p` is changes what others see (their
/// strings are redacted where they happen to spell `p`), and the twins differ for a
/// reason that is no leak.
fn overlaps(f: &Fixture, twin: &Fixture, p: &ParticipantSnap) -> bool {
    let w = &f.world;
    let own_org = p
        .org
        .or_else(|| p.contact.and_then(|c| w.contact(c)).and_then(|c| c.org));
    let mine: Vec<Seen> = identities(f, p)
        .iter()
        .chain(&identities(twin, p))
        .map(|m| seen(m))
        .collect();
    let mut others: Vec<String> = [
        "Vendor A",
        "Vendor B",
        "Vendor C",
        "Reporter",
        GATEWAY,
        COORDINATOR_ORG,
    ]
    .map(String::from)
    .to_vec();
    for c in w
        .contacts
        .iter()
        .filter(|c| Some(c.id) != p.contact && (c.org.is_none() || c.org != own_org))
    {
        let (local, domain) = c.email.split_once('@').unwrap_or_default();
        others.extend([
            c.name.clone(),
            c.email.clone(),
            local.to_string(),
            domain.to_string(),
        ]);
    }
    for o in w.orgs.iter().filter(|o| Some(o.id) != own_org) {
        others.push(o.name.clone());
        others.extend(o.domains.iter().cloned());
    }
    others.extend(
        f.org_base
            .iter()
            .filter(|(id, _)| Some(*id) != own_org)
            .map(|(_, b)| b.clone()),
    );
    let others: Vec<Seen> = others.iter().map(|o| seen(o)).collect();
    mine.iter().any(|m| {
        others.iter().any(|o| {
            shows_skeleton(o, &m.skeleton)
                || shows_skeleton(m, &o.skeleton)
                || joins(&m.skeleton, &o.skeleton)
        })
    })
}

/// Whether `hidden` can be spelled by `other` next to something else: a proper prefix of
/// it ends `other`, or a proper suffix of it starts `other` ("Xa" + "Жа" = "Xaжа").
fn joins(hidden: &str, other: &str) -> bool {
    hidden
        .char_indices()
        .skip(1)
        .any(|(i, _)| other.ends_with(&hidden[..i]) || other.starts_with(&hidden[i..]))
}

/// One message of a world again, by item key and recipient.
fn render_again(f: &Fixture, key: &str, rcpt: ContactId) -> Option<Vec<u8>> {
    let gw = gateway();
    let w = &f.world;
    let r = w.contact(rcpt)?;
    let k = keys_of(f, rcpt);
    let posts: Vec<PostItem> = f.posts.iter().map(|p| post_item(f, p)).collect();
    let statuses = statuses_of(f);
    let facts = CaseFacts { case: &w.cases[0], public_date_ms: Some(NOW), statuses: &statuses };
    let note = coordinators_note(f);
    let item = match key {
        "digest" => Item::Digest {
            home: w.thread(DISCUSSION)?,
            posts: &posts,
        },
        "summary" => Item::Summary { facts, posts: &[], joined: false },
        "joined" => Item::Summary { facts, posts: &posts, joined: true },
        "coord" => Item::Coordinators(&note),
        k if k.starts_with('r') => Item::Reminder {
            facts: CaseFacts { statuses: &[], ..facts },
            org: k[1..].parse().ok()?,
            day: 7,
        },
        k if k.starts_with('p') => Item::Post(posts.get(k[1..].parse::<usize>().ok()?)?),
        k => Item::VendorContact(VendorContact {
            case: &w.cases[0],
            org: k[1..].parse().ok()?,
            public_date_ms: NOW,
            fingerprint: None,
        }),
    };
    deliver(&gw, w, &item, r, &k, key).1
}

/// SPEC §6.3: an outsider's bytes do not depend on who the hidden participant is.
fn check_twin(spec: &Spec, f: &Fixture, ours: &[Message]) -> Result<(), TestCaseError> {
    let Some((t, p)) = twin_of(f) else {
        return Ok(());
    };
    let twin = build(spec, t);
    if overlaps(f, &twin, p) {
        return Ok(());
    }
    for m in ours {
        let r = f.world.contact(m.rcpt).expect("recipient");
        if !hidden_from(&f.world, r, m.in_case).contains(&p) {
            continue;
        }
        let other = render_again(&twin, &m.key, m.rcpt);
        TWINS_COMPARED.fetch_add(1, Relaxed);
        let other = other.as_ref();
        prop_assert!(
            other == Some(&m.bytes),
            "{} gets different bytes when {} is someone else ({}):\n{}\n---- in the twin world:\n{}",
            r.email,
            p.alias,
            m.key,
            String::from_utf8_lossy(&m.bytes),
            other.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
        );
    }
    Ok(())
}

/// [`WORLDS`], or `PROPTEST_CASES` when set (to explore longer, or to iterate quickly).
fn worlds() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WORLDS)
}

/// What the run checked, for the summary line.
static MESSAGES: AtomicU64 = AtomicU64::new(0);
static WITH_HIDDEN: AtomicU64 = AtomicU64::new(0);
static TWINS_COMPARED: AtomicU64 = AtomicU64::new(0);

fn one_world(spec: Spec) -> Result<(), TestCaseError> {
    let f = build(&spec, Twin::None);
    let messages = check_world(&f)?;
    MESSAGES.fetch_add(messages.len() as u64, Relaxed);
    check_twin(&spec, &f, &messages)
}

/// The worlds are shared out over the machine's cores; each share is a proptest run that
/// shrinks a failure to a minimal world and reports it.
#[test]
fn every_recipient_gets_only_what_they_may_see() {
    use proptest::test_runner::{Config, RngAlgorithm, TestRunner};
    let total = worlds();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4) as u32;
    let failures: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..threads)
            .map(|i| {
                s.spawn(move || {
                    let cases = total / threads + u32::from(i < total % threads);
                    let config = Config {
                        cases,
                        max_shrink_iters: 2000,
                        rng_algorithm: RngAlgorithm::XorShift,
                        failure_persistence: None,
                        ..Config::default()
                    };
                    TestRunner::new(config)
                        .run(&spec(), one_world)
                        .err()
                        .map(|e| e.to_string())
                })
            })
            .collect();
        runs.into_iter()
            .filter_map(|r| r.join().expect("a share of the worlds panicked"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!(
        "{total} worlds: {} messages checked, {} of them to someone from whom a participant is hidden, {} compared with a twin world",
        MESSAGES.load(Relaxed),
        WITH_HIDDEN.load(Relaxed),
        TWINS_COMPARED.load(Relaxed)
    );
}
