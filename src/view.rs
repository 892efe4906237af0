//! What one recipient receives of one outgoing item (SPEC §6.2–§6.5, §8): nothing, a
//! content-free notice, or the content as this recipient may see it. [`view`] is the one
//! function that decides; `render` only formats what it returns and `compose` seals it.
//!
//! Pure: a world snapshot, the item, the recipient and the facts about them (their keys,
//! what was decided when the item was queued) go in; a value comes out.
//!
//! | rule | function |
//! |---|---|
//! | nothing, the notice, or the content sealed how (what is stored when an item is queued) | [`form`] |
//! | who gets a post at all, and when (readers, author, §6.5 Cc, notify mode) | [`reach_post`] |
//! | who gets the other kinds | `reach` |
//! | content or notice (embargo, arrived encrypted, encrypt-only, key) | `withheld` |
//! | who is hidden behind an alias, and by which strings | `redactor`, `identities` |
//! | reply addresses removed, format characters stripped, redaction applied | `Shown` |
//! | attachments: names, forwarded or listed, HTML parts | `file_view` |
//! | the author as shown, reserved names | `author_shown` |
//! | whose status and statement a recipient sees (SPEC §8) | `coordination::status_visible` |
//!
//! The kinds of the coordination workflow (the case summary, the late joiner's summary
//! and discussion so far, reminders, the coordinators' notes) are built in
//! [`coordination`], from the same `Shown` and the same decisions.

mod coordination;

use crate::audience::{
    alias_of, anonymous_participant_of, case_of_thread, contacts_of_org, may_read,
    sees_behind_alias,
};
use crate::mail::AddressBook;
use crate::model::*;
use crate::pgp::Protection;
use crate::redact::{self, clean_line, Identity, Redactor};
use crate::status::StatusSnap;
use crate::workflow::CoordinatorNote;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// How a post by the system (no author contact) is signed. Reserved: no other author is
/// ever shown under it.
pub const SYSTEM_AUTHOR: &str = "Coordinators";
/// How the author of a post is shown when they are not a known contact (a released
/// quarantined mail from an unknown sender).
pub const UNKNOWN_SENDER: &str = "Unknown sender";

/// What the view needs of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The gateway's display name; reserved like [`SYSTEM_AUTHOR`].
    pub gateway_name: &'a str,
    pub book: &'a AddressBook,
    /// Attachments larger than this are listed instead of forwarded (SPEC §6.2).
    pub max_attachment_bytes: u64,
}

/// Who wrote a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Author {
    /// The gateway itself, for the coordinators.
    System,
    Contact(ContactId),
    /// Not a known contact.
    Unknown,
}

impl Author {
    /// The author of a stored post: its contact; without one, the system for a system
    /// post and an unknown sender otherwise.
    pub fn of(contact: Option<ContactId>, source: PostSource) -> Author {
        match (contact, source) {
            (Some(id), _) => Author::Contact(id),
            (None, PostSource::System) => Author::System,
            (None, _) => Author::Unknown,
        }
    }
}

/// How a post's content arrived (SPEC §5, §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Arrival {
    #[default]
    Plain,
    Encrypted,
    /// A protection record that cannot be read: treated as encrypted.
    Unreadable,
}

impl Arrival {
    /// From the OpenPGP evidence of the inbound mail.
    pub fn of(protection: Option<&Protection>) -> Arrival {
        match protection {
            Some(p) if p.encrypted => Arrival::Encrypted,
            _ => Arrival::Plain,
        }
    }

    /// From a stored protection record (JSON); `None` when the post has none.
    pub fn of_record(json: Option<&str>) -> Arrival {
        match json.map(serde_json::from_str::<Protection>) {
            None => Arrival::Plain,
            Some(Ok(p)) => Arrival::of(Some(&p)),
            Some(Err(_)) => Arrival::Unreadable,
        }
    }
}

/// A post as it is fanned out.
#[derive(Debug, Clone)]
pub struct PostItem<'a> {
    pub thread: &'a ThreadSnap,
    pub author: Author,
    pub body: &'a str,
    pub attachments: &'a [Attachment],
    pub created_at_ms: i64,
    /// Pinned by a coordinator: sent at once to `digest` contacts too (SPEC §6.1).
    pub pinned: bool,
    /// Lowercase To and Cc addresses of the inbound mail (SPEC §6.5).
    pub direct: &'a [String],
    pub arrival: Arrival,
}

/// The initial contact of a vendor organization (SPEC §8).
#[derive(Debug, Clone, Copy)]
pub struct VendorContact<'a> {
    pub case: &'a CaseSnap,
    pub org: OrgId,
    /// The target public date (ms since the epoch, UTC).
    pub public_date_ms: i64,
    pub fingerprint: Option<&'a str>,
}

/// What is known of a case beyond its snapshot: its public date and the vendors' statuses
/// (SPEC §1, §8).
#[derive(Debug, Clone, Copy)]
pub struct CaseFacts<'a> {
    pub case: &'a CaseSnap,
    pub public_date_ms: Option<i64>,
    pub statuses: &'a [StatusSnap],
}

/// One outgoing item. Status confirmations, syntax help, date announcements, publication
/// and decline notices are system posts in their threads ([`Item::Post`]); the other kinds
/// of the coordination workflow are variants here, decided by the same [`view`].
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// The notification of a new post (pipeline, `post`, quarantine release).
    Post(&'a PostItem<'a>),
    /// The daily digest: posts queued for the recipient, replying into `home`.
    Digest {
        home: &'a ThreadSnap,
        posts: &'a [PostItem<'a>],
    },
    VendorContact(VendorContact<'a>),
    /// The answer to a new report (SPEC §8, RFC 3834).
    Acknowledgement {
        report: &'a ReportSnap,
    },
    /// The case summary (SPEC §8 `-info`), or for a participant who joined after the
    /// discussion started (`joined`, SPEC §6.6) the summary and the discussion so far.
    Summary {
        facts: CaseFacts<'a>,
        posts: &'a [PostItem<'a>],
        joined: bool,
    },
    /// A reminder to a vendor organization that has neither replied nor given a status
    /// `day` days after the initial contact (SPEC §8).
    Reminder {
        facts: CaseFacts<'a>,
        org: OrgId,
        day: u32,
    },
    /// For the coordinators only: the daily summary, outbox items given up, bouncing
    /// contacts.
    Coordinators(&'a CoordinatorNote),
}

/// What is known about the recipient now: their OpenPGP certificates, and what was decided
/// when the item was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// A certificate the message can be encrypted to.
    pub usable_cert: bool,
    /// A coordinator confirmed a certificate for them, usable or not.
    pub confirmed_cert: bool,
    /// Encrypting this item to them failed.
    pub sealing_failed: bool,
    /// The item was decided when it was queued and is rendered when sent (SPEC §7.1).
    pub queued: Option<Queued>,
}

/// The decision stored with a queued item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Queued {
    Content,
    Notice,
}

/// What a recipient gets of an item, before the content is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Form {
    Nothing(Skip),
    Notice(Withheld),
    Content(Seal),
}

/// When a reader gets a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mode {
    Now,
    /// In the daily digest.
    Digest,
}

/// Why a recipient gets nothing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Skip {
    UnknownRecipient,
    NotAReader,
    /// The item is not for them (another organization, another reporter).
    NotAddressed,
    Author,
    /// SPEC §6.5: a direct recipient of a coordinator's mail.
    Direct,
    /// Notify mode `none`.
    Muted,
    /// Queued for their digest.
    InDigest,
    /// SPEC §7.5: their address bounces; nothing is sent until a coordinator clears it.
    Bouncing,
}

/// Why a recipient gets the content-free notice instead of the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Withheld {
    /// It was queued as the notice.
    Queued,
    Embargo,
    ArrivedEncrypted,
    EncryptOnly,
    /// Their confirmed certificate expired or was revoked.
    KeyNotUsable,
    SealingFailed,
}

/// How the content is sealed (SPEC §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Seal {
    Encrypt,
    /// Signed by the gateway key when there is one; plaintext is allowed.
    Sign,
}

/// What one recipient receives of one item.
#[derive(Debug, Clone)]
pub enum View<'a> {
    Nothing(Skip),
    Notice(Notice),
    Content(Content<'a>),
}

/// The content-free notice: "a new post is waiting in VU#…" (SPEC §6.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub token: String,
    pub why: Withheld,
}

#[derive(Debug, Clone)]
pub struct Content<'a> {
    /// `VU#123456` or `VRF#..`: the outer Subject of an encrypted message.
    pub token: String,
    pub seal: Seal,
    pub body: Body<'a>,
}

#[derive(Debug, Clone)]
pub enum Body<'a> {
    Post(PostContent<'a>),
    Digest(DigestContent<'a>),
    VendorContact(VendorContent),
    Acknowledgement,
    Summary(SummaryContent<'a>),
    Reminder(ReminderContent),
    Coordinators(CoordinatorContent),
}

pub use coordination::{CoordinatorContent, ReminderContent, StatusView, SummaryContent};

/// A thread as the recipient may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadView {
    pub token: String,
    pub title: String,
    pub kind: ThreadKind,
    /// A private thread's organization, for its members and the coordinators.
    pub org_label: Option<String>,
}

/// A post as the recipient may see it.
#[derive(Debug, Clone)]
pub struct PostContent<'a> {
    pub thread: ThreadView,
    /// The author's name or alias.
    pub author: String,
    pub text: Cow<'a, str>,
    pub files: Vec<FileView<'a>>,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct DigestContent<'a> {
    pub home: ThreadView,
    /// Oldest first; attachments are listed, never forwarded.
    pub entries: Vec<PostContent<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorContent {
    pub thread: ThreadView,
    /// The recipient's own organization.
    pub org_name: String,
    pub public_date_ms: i64,
    pub fingerprint: Option<String>,
}

/// An attachment as the recipient gets it.
#[derive(Debug, Clone)]
pub enum FileView<'a> {
    Forward {
        name: String,
        content_type: &'a str,
        bytes: Cow<'a, [u8]>,
    },
    /// Too large to forward (or in a digest): listed with size and SHA-256.
    Listed {
        name: String,
        size: u64,
        sha256: String,
    },
    /// An HTML part not forwarded to this recipient: it cannot be redacted safely.
    Withheld { name: String },
}

/// What `recipient` receives of `item`: [`form`], and for the content, the content as
/// they may see it.
pub fn view<'a>(
    world: &World,
    item: &Item<'a>,
    recipient: ContactId,
    facts: &Facts,
    ctx: &Ctx,
) -> View<'a> {
    let token = token_of(world, item);
    let seal = match form(world, item, recipient, facts) {
        Form::Nothing(skip) => return View::Nothing(skip),
        Form::Notice(why) => return View::Notice(Notice { token, why }),
        Form::Content(seal) => seal,
    };
    let Some(r) = world.contact(recipient) else {
        return View::Nothing(Skip::UnknownRecipient);
    };
    let shown = Shown::new(world, case_of_item(world, item), r, ctx);
    let body = match *item {
        Item::Post(p) => Body::Post(post_content(world, p, r, &shown, true)),
        Item::Digest { home, posts } => Body::Digest(DigestContent {
            home: thread_view(world, home, r, &shown),
            entries: readable(world, posts, r)
                .map(|p| post_content(world, p, r, &shown, false))
                .collect(),
        }),
        Item::VendorContact(v) => Body::VendorContact(vendor_content(world, &v, &shown)),
        Item::Acknowledgement { .. } => Body::Acknowledgement,
        Item::Summary {
            facts,
            posts,
            joined,
        } => Body::Summary(coordination::summary(
            world, &facts, posts, joined, r, &shown,
        )),
        Item::Reminder { facts, org, day } => {
            Body::Reminder(coordination::reminder(world, &facts, org, day, &shown))
        }
        Item::Coordinators(note) => {
            Body::Coordinators(coordination::coordinators(note, seal == Seal::Encrypt))
        }
    };
    View::Content(Content { token, seal, body })
}

/// Whether `recipient` gets `item` at all, the notice, or the content sealed how: the
/// decision [`view`] builds on, also taken alone when an item is queued (SPEC §7.1).
pub fn form(world: &World, item: &Item, recipient: ContactId, facts: &Facts) -> Form {
    let Some(r) = world.contact(recipient) else {
        return Form::Nothing(Skip::UnknownRecipient);
    };
    if let Err(skip) = reach(world, item, r, facts.queued.is_some()) {
        return Form::Nothing(skip);
    }
    if r.bouncing {
        return Form::Nothing(Skip::Bouncing);
    }
    if let Some(why) = withheld(world, item, r, facts) {
        return Form::Notice(why);
    }
    // SPEC §6.4: a recipient with a usable certificate always gets it encrypted.
    if facts.usable_cert && !facts.sealing_failed {
        Form::Content(Seal::Encrypt)
    } else {
        Form::Content(Seal::Sign)
    }
}

/// SPEC §6.1, §6.5: whether and when a contact gets a post: readers of its thread but the
/// author; a coordinator's direct recipients have it already (anyone else's Cc silences
/// nobody); notify `none` never, `digest` in the digest unless the post is pinned.
pub fn reach_post(world: &World, p: &PostItem, r: &ContactSnap) -> Result<Mode, Skip> {
    if !may_read(world, p.thread, r.id) {
        return Err(Skip::NotAReader);
    }
    if p.author == Author::Contact(r.id) {
        return Err(Skip::Author);
    }
    let coordinator = match p.author {
        Author::Contact(a) => world.contact(a).is_some_and(|a| world.is_coordinator(a)),
        Author::System | Author::Unknown => false,
    };
    let direct = p
        .direct
        .iter()
        .any(|a| a.trim().eq_ignore_ascii_case(&r.email));
    if coordinator && direct {
        return Err(Skip::Direct);
    }
    match r.notify {
        NotifyMode::None => Err(Skip::Muted),
        NotifyMode::Digest if !p.pinned => Ok(Mode::Digest),
        _ => Ok(Mode::Now),
    }
}

/// Who gets an item now. For a post's notification queued earlier, who gets it was
/// decided then; only whether they may still read it is checked again.
fn reach(world: &World, item: &Item, r: &ContactSnap, queued: bool) -> Result<(), Skip> {
    match item {
        Item::Post(p) if queued => may_read(world, p.thread, r.id)
            .then_some(())
            .ok_or(Skip::NotAReader),
        Item::Post(p) => match reach_post(world, p, r)? {
            Mode::Now => Ok(()),
            Mode::Digest => Err(Skip::InDigest),
        },
        // Visibility is checked again when the digest is built.
        Item::Digest { home, posts } => {
            let any = readable(world, posts, r).next().is_some();
            (may_read(world, home, r.id) && any)
                .then_some(())
                .ok_or(Skip::NotAReader)
        }
        Item::VendorContact(v) => {
            let participant = v.case.participants.iter().any(|p| p.org == Some(v.org));
            if r.org != Some(v.org) || !participant {
                Err(Skip::NotAddressed)
            } else if r.notify == NotifyMode::None {
                Err(Skip::Muted)
            } else {
                Ok(())
            }
        }
        Item::Acknowledgement { report } => (report.reporter == r.id)
            .then_some(())
            .ok_or(Skip::NotAddressed),
        Item::Summary { facts, joined, .. } => {
            let discussion = world.thread(facts.case.discussion);
            if !discussion.is_some_and(|t| may_read(world, t, r.id)) {
                Err(Skip::NotAReader)
            } else if *joined && r.notify == NotifyMode::None {
                Err(Skip::Muted)
            } else {
                Ok(())
            }
        }
        Item::Reminder { facts, org, .. } => {
            let vendor = facts
                .case
                .participants
                .iter()
                .any(|p| p.org == Some(*org) && p.role == Role::Vendor);
            if r.org != Some(*org) || !vendor {
                Err(Skip::NotAddressed)
            } else if r.notify == NotifyMode::None {
                Err(Skip::Muted)
            } else {
                Ok(())
            }
        }
        // Coordinator-only: nobody else can be sent one.
        Item::Coordinators(_) if !world.is_coordinator(r) => Err(Skip::NotAddressed),
        Item::Coordinators(_) if r.notify == NotifyMode::None => Err(Skip::Muted),
        Item::Coordinators(_) => Ok(()),
    }
}

/// SPEC §6.4 and docs/decisions.md: content that must travel encrypted (an embargoed case,
/// content that arrived encrypted, an `encrypt-only` contact, a contact whose confirmed
/// certificate stopped working) goes to a recipient without a usable certificate as the
/// content-free notice. Fails closed: an unreadable protection record counts as
/// encrypted, content whose encryption failed is never sent in plaintext, and an item
/// queued as the notice stays one. The acknowledgement of a report carries no content
/// (SPEC §8).
fn withheld(world: &World, item: &Item, r: &ContactSnap, facts: &Facts) -> Option<Withheld> {
    if let Item::Acknowledgement { .. } = item {
        return None;
    }
    if facts.sealing_failed {
        return Some(Withheld::SealingFailed);
    }
    if facts.queued == Some(Queued::Notice) {
        return Some(Withheld::Queued);
    }
    if facts.usable_cert {
        return None;
    }
    let arrived_encrypted = match item {
        Item::Post(p) => p.arrival != Arrival::Plain,
        Item::Digest { posts, .. } => {
            readable(world, posts, r).any(|p| p.arrival != Arrival::Plain)
        }
        // What the recipient would be shown of the statuses, and of the discussion.
        Item::Summary { facts, posts, .. } => {
            readable(world, posts, r).any(|p| p.arrival != Arrival::Plain)
                || coordination::visible_statuses(world, &facts, r).any(|s| s.encrypted)
        }
        Item::VendorContact(_)
        | Item::Acknowledgement { .. }
        | Item::Reminder { .. }
        | Item::Coordinators(_) => false,
    };
    if embargoed(world, item, r) {
        Some(Withheld::Embargo)
    } else if arrived_encrypted {
        Some(Withheld::ArrivedEncrypted)
    } else if r.encrypt_only {
        Some(Withheld::EncryptOnly)
    } else if facts.confirmed_cert {
        Some(Withheld::KeyNotUsable)
    } else {
        None
    }
}

fn embargoed(world: &World, item: &Item, r: &ContactSnap) -> bool {
    let of = |t: &ThreadSnap| case_of_thread(world, t).is_some_and(|c| c.embargoed);
    match item {
        Item::Post(p) => of(p.thread),
        Item::Digest { home, posts } => of(home) || readable(world, posts, r).any(|p| of(p.thread)),
        Item::VendorContact(v) => v.case.embargoed,
        Item::Summary { facts, .. } | Item::Reminder { facts, .. } => facts.case.embargoed,
        // Titles of embargoed cases are left out of what is not encrypted (`coordination`).
        Item::Acknowledgement { .. } | Item::Coordinators(_) => false,
    }
}

/// The posts of a digest that `r` may read: nothing about the others (not even that they
/// arrived encrypted) changes what `r` gets.
fn readable<'p, 'a>(
    world: &'p World,
    posts: &'p [PostItem<'a>],
    r: &'p ContactSnap,
) -> impl Iterator<Item = &'p PostItem<'a>> {
    posts.iter().filter(|p| may_read(world, p.thread, r.id))
}

/// The case or report token an item is about.
fn token_of(world: &World, item: &Item) -> String {
    let raw = match item {
        Item::Post(p) => thread_token_title(world, p.thread).0,
        Item::Digest { home, .. } => thread_token_title(world, home).0,
        Item::VendorContact(v) => v.case.public_id.clone(),
        Item::Acknowledgement { report } => report.public_id.clone(),
        Item::Summary { facts, .. } | Item::Reminder { facts, .. } => facts.case.public_id.clone(),
        Item::Coordinators(_) => SYSTEM_AUTHOR.to_string(),
    };
    clean_line(&raw)
}

/// The case whose anonymity rules apply to an item.
fn case_of_item<'w>(world: &'w World, item: &Item) -> Option<&'w CaseSnap> {
    match item {
        Item::Post(p) => case_of_thread(world, p.thread),
        Item::Digest { home, .. } => case_of_thread(world, home),
        Item::VendorContact(v) => world.case(v.case.id),
        Item::Acknowledgement { report } => report.case.and_then(|c| world.case(c)),
        Item::Summary { facts, .. } | Item::Reminder { facts, .. } => world.case(facts.case.id),
        // Read by coordinators only, from whom nobody is hidden.
        Item::Coordinators(_) => None,
    }
}

/// The token and title of a thread: its case's, or its report's.
fn thread_token_title(world: &World, thread: &ThreadSnap) -> (String, String) {
    let case = thread.case.and_then(|c| world.case(c));
    let report = thread.report.and_then(|r| world.report(r));
    match (case, report) {
        (Some(c), _) => (c.public_id.clone(), c.title.clone()),
        (None, Some(r)) => (r.public_id.clone(), r.subject.clone()),
        (None, None) => (String::new(), String::new()),
    }
}

/// Every string one recipient is shown passes through here.
struct Shown<'c> {
    redactor: Redactor,
    ctx: &'c Ctx<'c>,
}

impl<'c> Shown<'c> {
    fn new(world: &World, case: Option<&CaseSnap>, r: &ContactSnap, ctx: &'c Ctx<'c>) -> Self {
        Shown {
            redactor: redactor(world, case, r),
            ctx,
        }
    }

    /// Whether nobody is hidden from this recipient.
    fn sees_all(&self) -> bool {
        self.redactor.is_empty()
    }

    /// A display name, title or file name: one clean line (defect-proof against bidi
    /// tricks), no gateway reply address, redacted.
    fn line(&self, s: &str) -> String {
        let s = clean_line(s);
        let s = self.without_addresses(&s);
        self.redactor.apply(&s).into_owned()
    }

    /// Text as written (PoC output survives): reply addresses removed, redacted.
    fn text<'t>(&self, s: &'t str) -> Cow<'t, str> {
        match self.without_addresses(s) {
            Cow::Borrowed(b) => self.redactor.apply(b),
            Cow::Owned(o) => Cow::Owned(self.redactor.apply(&o).into_owned()),
        }
    }

    /// SPEC §4: reply addresses are secrets; no post passes one on.
    fn without_addresses<'t>(&self, s: &'t str) -> Cow<'t, str> {
        let book = self.ctx.book;
        redact::remove_gateway_addresses(s, &book.local_part, &book.domain)
    }
}

/// SPEC §6.3: every anonymous participant of the case that `r` may not see behind, by
/// every string that identifies it, whoever wrote what is shown.
fn redactor(world: &World, case: Option<&CaseSnap>, r: &ContactSnap) -> Redactor {
    let mut red = Redactor::default();
    for p in case.iter().flat_map(|c| &c.participants) {
        if p.anonymous && !sees_behind_alias(world, p, r.id) {
            red.add(&alias_of(p), identities(world, p));
        }
    }
    red
}

/// The strings that identify a participant. An organization: every contact's name and
/// address (local parts unless generic), its name with and without legal form, its
/// domains with their sub-domains. A lone participant: their name and address, their own
/// domain, and the organization they belong to unless it is a coordinator organization.
fn identities(world: &World, p: &ParticipantSnap) -> Vec<Identity> {
    let mut out = Vec::new();
    let person = |c: &ContactSnap, out: &mut Vec<Identity>| {
        out.extend(redact::name_identities(&c.name));
        out.extend(redact::address_identities(&c.email));
    };
    let org = |o: &OrgSnap, out: &mut Vec<Identity>| {
        out.extend(redact::org_identities(&o.name));
        out.extend(o.domains.iter().map(|d| Identity::domain(d)));
    };
    if let Some(o) = p.org.and_then(|o| world.org(o)) {
        contacts_of_org(world, o.id).for_each(|c| person(c, &mut out));
        org(o, &mut out);
    }
    if let Some(c) = p.contact.and_then(|c| world.contact(c)) {
        person(c, &mut out);
        let own = c.org.and_then(|o| world.org(o));
        if let Some(o) = own.filter(|o| o.kind != OrgKind::Coordinator) {
            org(o, &mut out);
        }
    }
    out
}

/// The names nobody but the coordinators is shown under: the gateway's, the system
/// author's, the coordinator organizations'.
fn reserved_names(world: &World, ctx: &Ctx) -> Redactor {
    let mut names = vec![
        Identity::plain(ctx.gateway_name),
        Identity::plain(SYSTEM_AUTHOR),
    ];
    for o in world.orgs.iter().filter(|o| o.kind == OrgKind::Coordinator) {
        names.extend(redact::org_identities(&o.name));
    }
    let mut r = Redactor::default();
    r.add("", names);
    r
}

/// How the author of a post appears to `r` (SPEC §6.2, §6.3): an anonymous participant's
/// contact by alias to outsiders; anyone else by name (or address), never under a reserved
/// name unless a coordinator.
fn author_shown(
    world: &World,
    author: Author,
    thread: &ThreadSnap,
    r: &ContactSnap,
    shown: &Shown,
) -> String {
    let a = match author {
        Author::System => return SYSTEM_AUTHOR.to_string(),
        Author::Unknown => return UNKNOWN_SENDER.to_string(),
        Author::Contact(id) => match world.contact(id) {
            Some(a) => a,
            None => return UNKNOWN_SENDER.to_string(),
        },
    };
    let hidden = case_of_thread(world, thread)
        .and_then(|c| anonymous_participant_of(c, a))
        .filter(|p| !sees_behind_alias(world, p, r.id));
    if let Some(p) = hidden {
        return alias_of(p);
    }
    let name = clean_line(&a.name);
    let reserved = !world.is_coordinator(a) && reserved_names(world, shown.ctx).matches(&name);
    let name = if name.is_empty() || reserved {
        clean_line(&a.email)
    } else {
        name
    };
    shown.line(&name)
}

/// Token, title and kind of a thread as `r` may see it.
fn thread_view(world: &World, thread: &ThreadSnap, r: &ContactSnap, shown: &Shown) -> ThreadView {
    let (token, title) = thread_token_title(world, thread);
    let own = thread.org.is_some() && (r.org == thread.org || world.is_coordinator(r));
    let org_label = thread
        .org
        .filter(|_| own)
        .and_then(|o| world.org(o))
        .map(|o| shown.line(&o.name))
        .filter(|o| !o.is_empty());
    ThreadView {
        token: clean_line(&token),
        title: shown.line(&title),
        kind: thread.kind,
        org_label,
    }
}

fn post_content<'a>(
    world: &World,
    p: &PostItem<'a>,
    r: &ContactSnap,
    shown: &Shown,
    forward: bool,
) -> PostContent<'a> {
    PostContent {
        thread: thread_view(world, p.thread, r, shown),
        author: author_shown(world, p.author, p.thread, r, shown),
        text: shown.text(p.body),
        files: p
            .attachments
            .iter()
            .map(|a| file_view(a, shown, forward))
            .collect(),
        created_at_ms: p.created_at_ms,
    }
}

/// SPEC §6.2, §6.3: an attachment as the recipient gets it. The name is cleaned and
/// redacted; the contents go as they are (deliberately not redacted), except an HTML part:
/// to a recipient from whom anyone is hidden it is not forwarded (the text part carries
/// its content, redacted), to others it goes with the gateway's reply addresses removed.
/// Forwarded up to the size limit; larger ones (and all in a digest) are listed.
fn file_view<'a>(a: &'a Attachment, shown: &Shown, forward: bool) -> FileView<'a> {
    let name = shown.line(&a.filename);
    let bytes = if is_html(a) {
        if !shown.sees_all() {
            return FileView::Withheld { name };
        }
        let book = shown.ctx.book;
        redact::remove_gateway_addresses_bytes(&a.bytes, &book.local_part, &book.domain)
    } else {
        Cow::Borrowed(a.bytes.as_slice())
    };
    if forward && bytes.len() as u64 <= shown.ctx.max_attachment_bytes {
        return FileView::Forward {
            name,
            content_type: &a.content_type,
            bytes,
        };
    }
    FileView::Listed {
        name,
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
    }
}

/// An HTML body part (`body.html`) or an HTML file.
fn is_html(a: &Attachment) -> bool {
    let media = a.content_type.split(';').next().unwrap_or_default().trim();
    let name = a.filename.trim().to_ascii_lowercase();
    media.eq_ignore_ascii_case("text/html")
        || media.eq_ignore_ascii_case("application/xhtml+xml")
        || [".html", ".htm", ".xhtml"]
            .iter()
            .any(|e| name.ends_with(e))
}

fn vendor_content(world: &World, v: &VendorContact, shown: &Shown) -> VendorContent {
    let org_name = world
        .org(v.org)
        .map(|o| shown.line(&o.name))
        .unwrap_or_default();
    VendorContent {
        thread: ThreadView {
            token: clean_line(&v.case.public_id),
            title: shown.line(&v.case.title),
            kind: ThreadKind::Discussion,
            org_label: None,
        },
        org_name,
        public_date_ms: v.public_date_ms,
        fingerprint: v.fingerprint.map(clean_line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::tests::{post, world};

    fn book() -> AddressBook {
        AddressBook {
            domain: "cert.example".into(),
            local_part: "cases".into(),
            intake: vec!["security@cert.example".into()],
            case_prefix: "VU#".into(),
        }
    }

    fn ctx(book: &AddressBook) -> Ctx<'_> {
        Ctx {
            gateway_name: "CERT Coordination",
            book,
            max_attachment_bytes: 100,
        }
    }

    fn see<'a>(w: &World, item: &Item<'a>, r: ContactId, keys: Facts) -> View<'a> {
        view(w, item, r, &keys, &ctx(&book()))
    }

    fn post_of<'a>(v: &'a View) -> &'a PostContent<'a> {
        match v {
            View::Content(Content {
                body: Body::Post(p),
                ..
            }) => p,
            other => panic!("not a post: {other:?}"),
        }
    }

    fn withheld(v: &View) -> Option<Withheld> {
        match v {
            View::Notice(n) => Some(n.why),
            _ => None,
        }
    }

    #[test]
    fn redaction_depends_on_the_reader_not_the_author() {
        let w = world();
        let body = "Ann  Acme (ann.smith@acme.example) of Acme said so; bob@acme.example too.";
        let p = PostItem {
            body,
            ..post(&w.threads[0], Some(10), false, &[])
        };
        let item = Item::Post(&p);
        let rita = see(&w, &item, 40, Facts::default());
        assert_eq!(
            post_of(&rita).text,
            "Vendor A (Vendor A) of Vendor A said so; Vendor A too."
        );
        assert_eq!(post_of(&rita).author, "Cora Coord");
        let colleague = see(&w, &item, 21, Facts::default());
        assert_eq!(post_of(&colleague).text, body);
        assert!(matches!(
            see(&w, &item, 10, Facts::default()),
            View::Nothing(Skip::Author)
        ));
        assert!(matches!(
            see(&w, &item, 30, Facts::default()),
            View::Nothing(Skip::InDigest)
        ));
        assert!(matches!(
            see(&w, &item, 31, Facts::default()),
            View::Nothing(Skip::Muted)
        ));
    }

    #[test]
    fn anonymous_authors_are_their_alias_to_outsiders_only() {
        let w = world();
        let t = &w.threads[0];
        let shown = |author, r| {
            let p = post(t, Some(author), true, &[]);
            post_of(&see(&w, &Item::Post(&p), r, Facts::default()))
                .author
                .clone()
        };
        assert_eq!(shown(20, 30), "Vendor A");
        assert_eq!(shown(20, 21), "Ann Acme");
        assert_eq!(shown(20, 10), "Ann Acme");
        assert_eq!(shown(21, 40), "Vendor A");
        assert_eq!(shown(21, 10), "bob@acme.example");
        assert_eq!(shown(30, 40), "Bea Bolt");
    }

    #[test]
    fn reserved_names_belong_to_the_gateway_and_the_coordinators() {
        let mut w = world();
        let p = post(&w.threads[0], Some(30), true, &[]);
        let shown = |w: &World| {
            post_of(&see(w, &Item::Post(&p), 40, Facts::default()))
                .author
                .clone()
        };
        for name in [
            "CERT",
            "Coordinators",
            "cert coordination",
            "Bea \u{202e}Coordinators",
        ] {
            w.contacts[3].name = name.into();
            assert_eq!(shown(&w), "bea@bolt.example", "{name:?}");
        }
        w.contacts[3].name = "Bea\u{202e} Bolt\u{200f}".into();
        assert_eq!(shown(&w), "Bea Bolt");
        w.contacts[0].name = "CERT Coordinators".into();
        let by_coordinator = post(&w.threads[0], Some(10), true, &[]);
        let v = see(&w, &Item::Post(&by_coordinator), 40, Facts::default());
        assert_eq!(post_of(&v).author, "CERT Coordinators");
        let unknown = PostItem {
            author: Author::Unknown,
            ..post(&w.threads[0], None, true, &[])
        };
        let v = see(&w, &Item::Post(&unknown), 40, Facts::default());
        assert_eq!(post_of(&v).author, UNKNOWN_SENDER);
        let system = post(&w.threads[0], None, true, &[]);
        let v = see(&w, &Item::Post(&system), 40, Facts::default());
        assert_eq!(post_of(&v).author, SYSTEM_AUTHOR);
    }

    #[test]
    fn content_or_notice_fails_closed() {
        let mut w = world();
        let plain = post(&w.threads[0], Some(10), true, &[]);
        let no_key = Facts::default();
        let usable = Facts {
            usable_cert: true,
            ..no_key
        };
        assert_eq!(withheld(&see(&w, &Item::Post(&plain), 40, no_key)), None);
        let arrived = |arrival| PostItem {
            arrival,
            ..plain.clone()
        };
        for a in [Arrival::Encrypted, Arrival::Unreadable] {
            let p = arrived(a);
            let v = see(&w, &Item::Post(&p), 40, no_key);
            assert_eq!(withheld(&v), Some(Withheld::ArrivedEncrypted));
            let v = see(&w, &Item::Post(&p), 40, usable);
            assert!(matches!(
                v,
                View::Content(Content {
                    seal: Seal::Encrypt,
                    ..
                })
            ));
        }
        let broken = Facts {
            confirmed_cert: true,
            ..no_key
        };
        let v = see(&w, &Item::Post(&plain), 40, broken);
        assert_eq!(withheld(&v), Some(Withheld::KeyNotUsable));
        let failed = Facts {
            sealing_failed: true,
            ..usable
        };
        let v = see(&w, &Item::Post(&plain), 40, failed);
        assert_eq!(withheld(&v), Some(Withheld::SealingFailed));
        w.contacts[5].encrypt_only = true;
        let v = see(&w, &Item::Post(&plain), 40, no_key);
        assert_eq!(withheld(&v), Some(Withheld::EncryptOnly));
        w.cases[0].embargoed = true;
        let v = see(&w, &Item::Post(&plain), 20, no_key);
        assert_eq!(
            v.clone_notice(),
            Some(Notice {
                token: "VU#123456".into(),
                why: Withheld::Embargo
            })
        );
    }

    #[test]
    fn unreadable_protection_records_count_as_encrypted() {
        assert_eq!(Arrival::of_record(None), Arrival::Plain);
        assert_eq!(Arrival::of_record(Some("{not json")), Arrival::Unreadable);
        assert_eq!(Arrival::of_record(Some("null")), Arrival::Unreadable);
        let p = Protection {
            encrypted: true,
            ..Protection::default()
        };
        let json = serde_json::to_string(&p).expect("json");
        assert_eq!(Arrival::of_record(Some(&json)), Arrival::Encrypted);
        let json = serde_json::to_string(&Protection::default()).expect("json");
        assert_eq!(Arrival::of_record(Some(&json)), Arrival::Plain);
    }

    fn attachment(name: &str, content_type: &str, bytes: &[u8]) -> Attachment {
        Attachment {
            filename: name.into(),
            content_type: content_type.into(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn html_parts_reach_only_readers_from_whom_nobody_is_hidden() {
        let w = world();
        let files = vec![
            attachment(
                "body.html",
                "text/html",
                b"<p>Ann Acme, mailto:cases+r-abc@cert.example</p>",
            ),
            attachment("acme-crash.txt", "text/plain", b"Ann Acme"),
            attachment("core", "application/octet-stream", &[0; 200]),
        ];
        let p = PostItem {
            attachments: &files,
            ..post(&w.threads[0], Some(10), true, &[])
        };
        let outsider = see(&w, &Item::Post(&p), 40, Facts::default());
        let f = &post_of(&outsider).files;
        assert!(matches!(&f[0], FileView::Withheld { name } if name == "body.html"));
        assert!(matches!(&f[1], FileView::Forward { name, bytes, .. }
            if name == "Vendor A-crash.txt" && &bytes[..] == b"Ann Acme"));
        assert!(matches!(&f[2], FileView::Listed { size: 200, .. }));
        let insider = see(&w, &Item::Post(&p), 21, Facts::default());
        match &post_of(&insider).files[0] {
            FileView::Forward { bytes, .. } => assert_eq!(
                &bytes[..],
                b"<p>Ann Acme, mailto:[reply address removed]</p>"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn digests_list_only_what_the_reader_may_read() {
        let w = world();
        let files = vec![attachment("a.txt", "text/plain", b"x")];
        let public = PostItem {
            attachments: &files,
            ..post(&w.threads[0], Some(20), false, &[])
        };
        let private = post(&w.threads[1], Some(10), false, &[]);
        let posts = vec![public, private];
        let item = Item::Digest {
            home: &w.threads[0],
            posts: &posts,
        };
        match see(&w, &item, 30, Facts::default()) {
            View::Content(Content {
                body: Body::Digest(d),
                ..
            }) => {
                assert_eq!(d.entries.len(), 1);
                assert_eq!(d.entries[0].author, "Vendor A");
                assert!(matches!(d.entries[0].files[0], FileView::Listed { .. }));
            }
            other => panic!("{other:?}"),
        }
        let only_private = Item::Digest {
            home: &w.threads[0],
            posts: &posts[1..],
        };
        assert!(matches!(
            see(&w, &only_private, 30, Facts::default()),
            View::Nothing(Skip::NotAReader)
        ));
    }

    #[test]
    fn vendor_contact_reaches_its_organization_with_the_title_as_they_may_see_it() {
        let mut w = world();
        w.cases[0].title = "Overflow in ACME CORP firmware".into();
        let case = w.cases[0].clone();
        let item = Item::VendorContact(VendorContact {
            case: &case,
            org: 3,
            public_date_ms: 0,
            fingerprint: None,
        });
        match see(&w, &item, 30, Facts::default()) {
            View::Content(Content {
                body: Body::VendorContact(v),
                ..
            }) => {
                assert_eq!(v.thread.title, "Overflow in Vendor A firmware");
                assert_eq!(v.org_name, "Bolt");
            }
            other => panic!("{other:?}"),
        }
        let v = see(&w, &item, 31, Facts::default());
        assert!(matches!(v, View::Nothing(Skip::Muted)));
        let v = see(&w, &item, 20, Facts::default());
        assert!(matches!(v, View::Nothing(Skip::NotAddressed)));
    }

    #[test]
    fn acknowledgements_go_to_the_reporter_even_when_encryption_fails() {
        let w = world();
        let report = ReportSnap {
            id: 1,
            public_id: "VRF#26-11-BCDFG".into(),
            reporter: 40,
            state: ReportState::New,
            case: None,
            thread: 200,
            subject: "s".into(),
        };
        let item = Item::Acknowledgement { report: &report };
        let failed = Facts {
            usable_cert: true,
            confirmed_cert: true,
            sealing_failed: true,
            queued: Some(Queued::Notice),
        };
        let v = see(&w, &item, 40, failed);
        assert!(matches!(
            v,
            View::Content(Content {
                seal: Seal::Sign,
                body: Body::Acknowledgement,
                ..
            })
        ));
        assert!(matches!(
            see(&w, &item, 30, Facts::default()),
            View::Nothing(Skip::NotAddressed)
        ));
    }

    fn statuses() -> Vec<StatusSnap> {
        use crate::status::VendorStatus;
        let s = |org, status, statement: &str, share| StatusSnap {
            org,
            status: Some(status),
            statement: statement.into(),
            references: vec![],
            share,
            encrypted: false,
            updated_at: 0,
        };
        vec![
            s(
                2,
                VendorStatus::Affected,
                "Acme Corp ships 4.2; ask ann.smith@acme.example.",
                true,
            ),
            s(
                3,
                VendorStatus::NotAffected,
                "Bolt is not affected; secret reason.",
                false,
            ),
        ]
    }

    fn summary_of<'a>(v: &'a View) -> &'a SummaryContent<'a> {
        match v {
            View::Content(Content {
                body: Body::Summary(s),
                ..
            }) => s,
            other => panic!("not a summary: {other:?}"),
        }
    }

    #[test]
    fn each_participant_sees_shared_statuses_and_its_own() {
        let w = world();
        let st = statuses();
        let facts = CaseFacts {
            case: &w.cases[0],
            public_date_ms: Some(5),
            statuses: &st,
        };
        let item = Item::Summary {
            facts,
            posts: &[],
            joined: false,
        };
        let rita = see(&w, &item, 40, Facts::default());
        let s = summary_of(&rita);
        assert_eq!(s.statuses.len(), 1, "{:?}", s.statuses);
        assert_eq!(s.statuses[0].who, "Vendor A");
        assert_eq!(s.statuses[0].statement, "Vendor A ships 4.2; ask Vendor A.");
        assert!(s.participants.iter().any(|(_, l)| l == "Vendor A"));
        assert_eq!(s.own, None);
        let bea = see(&w, &item, 30, Facts::default());
        let s = summary_of(&bea);
        let own: Vec<_> = s.statuses.iter().filter(|v| v.own).collect();
        assert_eq!(own.len(), 1);
        assert_eq!(own[0].statement, "Bolt is not affected; secret reason.");
        assert_eq!(s.own.as_deref(), Some("Bolt"));
        let cora = see(&w, &item, 10, Facts::default());
        assert_eq!(summary_of(&cora).statuses.len(), 2);
        let stranger = ContactSnap {
            id: 99,
            email: "x@else.example".into(),
            name: "X".into(),
            org: None,
            notify: NotifyMode::Immediate,
            encrypt_only: false,
            bouncing: false,
        };
        let mut w2 = w.clone();
        w2.contacts.push(stranger);
        let item2 = Item::Summary {
            facts: CaseFacts {
                case: &w2.cases[0],
                ..facts
            },
            posts: &[],
            joined: false,
        };
        assert!(matches!(
            see(&w2, &item2, 99, Facts::default()),
            View::Nothing(Skip::NotAReader)
        ));
    }

    #[test]
    fn a_statement_that_arrived_encrypted_leaves_only_encrypted() {
        let w = world();
        let mut st = statuses();
        st[0].encrypted = true;
        let facts = CaseFacts {
            case: &w.cases[0],
            public_date_ms: None,
            statuses: &st,
        };
        let item = Item::Summary {
            facts,
            posts: &[],
            joined: false,
        };
        assert_eq!(
            withheld(&see(&w, &item, 40, Facts::default())),
            Some(Withheld::ArrivedEncrypted)
        );
        let mut unshared = st.clone();
        unshared[0].share = false;
        let facts = CaseFacts {
            statuses: &unshared,
            ..facts
        };
        let item = Item::Summary {
            facts,
            posts: &[],
            joined: false,
        };
        assert_eq!(
            withheld(&see(&w, &item, 40, Facts::default())),
            None,
            "what the reader may not see changes nothing"
        );
    }

    #[test]
    fn the_late_joiner_gets_the_discussion_as_it_may_see_it() {
        let w = world();
        let posts = vec![
            PostItem {
                body: "Ann Acme found it.",
                ..post(&w.threads[0], Some(20), false, &[])
            },
            post(&w.threads[1], Some(10), false, &[]),
        ];
        let item = Item::Summary {
            facts: CaseFacts {
                case: &w.cases[0],
                public_date_ms: None,
                statuses: &[],
            },
            posts: &posts,
            joined: true,
        };
        let v = see(&w, &item, 40, Facts::default());
        let s = summary_of(&v);
        assert_eq!(
            s.entries.len(),
            1,
            "the private thread is not the reporter's"
        );
        assert_eq!(s.entries[0].text, "Vendor A found it.");
        assert_eq!(s.entries[0].author, "Vendor A");
        assert!(matches!(
            see(&w, &item, 31, Facts::default()),
            View::Nothing(Skip::Muted)
        ));
    }

    #[test]
    fn reminders_reach_only_the_silent_vendor() {
        let w = world();
        let item = Item::Reminder {
            facts: CaseFacts {
                case: &w.cases[0],
                public_date_ms: None,
                statuses: &[],
            },
            org: 3,
            day: 7,
        };
        assert!(matches!(
            see(&w, &item, 30, Facts::default()),
            View::Content(_)
        ));
        for other in [10, 20, 40] {
            assert!(
                matches!(
                    see(&w, &item, other, Facts::default()),
                    View::Nothing(Skip::NotAddressed)
                ),
                "{other}"
            );
        }
    }

    #[test]
    fn coordinator_notes_reach_coordinators_only() {
        use crate::workflow::{CaseLine, Daily};
        let w = world();
        let daily = CoordinatorNote::Daily(Daily {
            date: "2026-03-16".into(),
            due: vec![CaseLine {
                case: "VU#123456".into(),
                title: "Secret title".into(),
                embargoed: true,
                public_at: None,
            }],
            ..Default::default()
        });
        let item = Item::Coordinators(&daily);
        for other in [20, 21, 30, 40] {
            assert!(
                matches!(
                    see(&w, &item, other, Facts::default()),
                    View::Nothing(Skip::NotAddressed)
                ),
                "{other}"
            );
        }
        let title = |v: View| match v {
            View::Content(Content {
                body:
                    Body::Coordinators(CoordinatorContent {
                        note: CoordinatorNote::Daily(d),
                    }),
                ..
            }) => d.due[0].title.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(title(see(&w, &item, 10, Facts::default())), "");
        let key = Facts {
            usable_cert: true,
            ..Facts::default()
        };
        assert_eq!(title(see(&w, &item, 10, key)), "Secret title");
    }

    #[test]
    fn a_bouncing_contact_is_sent_nothing() {
        let mut w = world();
        w.contacts[1].bouncing = true;
        let p = post(&w.threads[0], Some(10), false, &[]);
        assert!(matches!(
            see(&w, &Item::Post(&p), 20, Facts::default()),
            View::Nothing(Skip::Bouncing)
        ));
        assert!(matches!(
            see(&w, &Item::Post(&p), 21, Facts::default()),
            View::Content(_)
        ));
    }

    impl View<'_> {
        fn clone_notice(&self) -> Option<Notice> {
            match self {
                View::Notice(n) => Some(n.clone()),
                _ => None,
            }
        }
    }
}
