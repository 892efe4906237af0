//! Who may read a thread, and who is notified of a new post (SPEC §6.1, §6.3, §6.5).
//!
//! Pure: takes a [`World`] snapshot and returns values.

use crate::model::{
    CaseSnap, ContactId, ContactSnap, NotifyMode, ParticipantSnap, Role, ThreadKind, ThreadSnap,
    World,
};
use serde::Serialize;

/// Every contact who may read `thread`: coordinators always; in a case discussion every
/// contact of every participating organization and every lone participant; in a private
/// thread the contacts of its organization; in a report thread its reporter.
/// Sorted by contact id, without repeats.
pub fn readers(world: &World, thread: &ThreadSnap) -> Vec<ContactId> {
    let mut out: Vec<ContactId> = world.coordinators().map(|c| c.id).collect();
    match thread.kind {
        ThreadKind::Discussion => {
            if let Some(case) = thread.case.and_then(|id| world.case(id)) {
                for p in &case.participants {
                    out.extend(p.contact);
                    if let Some(org) = p.org {
                        out.extend(contacts_of_org(world, org).map(|c| c.id));
                    }
                }
            }
        }
        ThreadKind::Private => {
            if let Some(org) = thread.org {
                out.extend(contacts_of_org(world, org).map(|c| c.id));
            }
        }
        ThreadKind::Report => {
            if let Some(report) = thread.report.and_then(|id| world.report(id)) {
                out.push(report.reporter);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether `contact` may read (and so post into) `thread`.
pub fn may_read(world: &World, thread: &ThreadSnap, contact: ContactId) -> bool {
    readers(world, thread).binary_search(&contact).is_ok()
}

/// The contacts of an organization.
pub fn contacts_of_org(world: &World, org: i64) -> impl Iterator<Item = &ContactSnap> {
    world.contacts.iter().filter(move |c| c.org == Some(org))
}

/// How a recipient gets a post (SPEC §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeliveryMode {
    Immediate,
    /// In the daily digest.
    Digest,
}

/// What a recipient gets (SPEC §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Content {
    Full,
    /// The content-free embargo notice.
    Notice,
}

/// One recipient of a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub contact: ContactId,
    pub email: String,
    pub mode: DeliveryMode,
    pub content: Content,
    pub view: AuthorView,
}

/// How the author of a post appears to one recipient (SPEC §6.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorView {
    /// The name or alias shown to this recipient.
    pub display: String,
    /// Strings of an anonymous author (name, address, local part, organization name and
    /// domains) that must not appear in what this recipient gets; longest first.
    pub redactions: Vec<String>,
}

/// The audience of one post.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct FanOut {
    pub deliveries: Vec<Delivery>,
    /// Readers not sent a copy because they were in the inbound To/Cc (SPEC §6.5).
    pub direct: Vec<ContactId>,
}

/// What the fan-out needs to know about a new post.
pub struct PostFacts<'a> {
    pub thread: &'a ThreadSnap,
    /// `None` for a post by the system.
    pub author: Option<ContactId>,
    pub pinned: bool,
    /// Lowercase To and Cc addresses of the inbound mail.
    pub direct_recipients: &'a [String],
    /// Whether the contact has a usable OpenPGP certificate.
    pub has_usable_key: &'a (dyn Fn(ContactId) -> bool + Sync),
}

/// How a post by the system (no author contact) is signed.
pub const SYSTEM_AUTHOR: &str = "Coordinators";
/// How an author that is not in the snapshot is shown.
pub const UNKNOWN_AUTHOR: &str = "A participant";

/// One delivery per reader of the thread, except the author (SPEC §6.1), readers who were
/// direct recipients of the inbound mail (§6.5) and contacts with notify `none`.
pub fn fan_out(world: &World, facts: &PostFacts) -> FanOut {
    let embargoed = case_of_thread(world, facts.thread).is_some_and(|c| c.embargoed);
    let mut out = FanOut::default();
    for id in readers(world, facts.thread) {
        let Some(contact) = world.contact(id) else {
            continue;
        };
        // SPEC §6.1: the author never gets a copy.
        if Some(id) == facts.author {
            continue;
        }
        // SPEC §6.5: they already have it.
        if facts
            .direct_recipients
            .iter()
            .any(|a| a.trim().eq_ignore_ascii_case(&contact.email))
        {
            out.direct.push(id);
            continue;
        }
        if contact.notify == NotifyMode::None {
            continue;
        }
        out.deliveries.push(Delivery {
            contact: id,
            email: contact.email.clone(),
            mode: delivery_mode(contact, facts.pinned),
            content: content_for(contact, embargoed, facts.has_usable_key),
            view: author_view(world, facts.thread, facts.author, id),
        });
    }
    out
}

/// SPEC §6.1: `digest` contacts get the post in the digest, unless it is pinned.
fn delivery_mode(contact: &ContactSnap, pinned: bool) -> DeliveryMode {
    if contact.notify == NotifyMode::Digest && !pinned {
        DeliveryMode::Digest
    } else {
        DeliveryMode::Immediate
    }
}

/// SPEC §6.4: without a usable key, an embargoed case or an `encrypt-only` contact gets
/// the notice instead of the content.
fn content_for(
    contact: &ContactSnap,
    embargoed: bool,
    has_usable_key: &dyn Fn(ContactId) -> bool,
) -> Content {
    if (embargoed || contact.encrypt_only) && !has_usable_key(contact.id) {
        Content::Notice
    } else {
        Content::Full
    }
}

/// The case a thread belongs to: its own, or for a report thread the case its report
/// became.
pub fn case_of_thread<'w>(world: &'w World, thread: &ThreadSnap) -> Option<&'w CaseSnap> {
    let report_case = || {
        thread
            .report
            .and_then(|r| world.report(r))
            .and_then(|r| r.case)
    };
    thread
        .case
        .or_else(report_case)
        .and_then(|id| world.case(id))
}

/// How `author` appears to `recipient` in `thread` (SPEC §6.3): by name, except an
/// anonymous participant's contact seen from outside their organization by anyone but a
/// coordinator, who sees the participant's alias.
pub fn author_view(
    world: &World,
    thread: &ThreadSnap,
    author: Option<ContactId>,
    recipient: ContactId,
) -> AuthorView {
    let plain = |display: String| AuthorView {
        display,
        redactions: Vec::new(),
    };
    let Some(author_id) = author else {
        return plain(SYSTEM_AUTHOR.to_string());
    };
    let Some(a) = world.contact(author_id) else {
        return plain(UNKNOWN_AUTHOR.to_string());
    };
    if world.is_coordinator(a) {
        return plain(contact_display(a));
    }
    let hidden = case_of_thread(world, thread).and_then(|case| anonymous_participant_of(case, a));
    match hidden {
        Some(p) if !sees_behind_alias(world, p, recipient) => AuthorView {
            display: alias_of(p),
            redactions: redactions_for(world, a),
        },
        _ => plain(contact_display(a)),
    }
}

/// A contact's display name, or its address when the name is empty.
pub fn contact_display(c: &ContactSnap) -> String {
    let name = c.name.trim();
    if name.is_empty() {
        c.email.clone()
    } else {
        name.to_string()
    }
}

/// The anonymous participant `contact` belongs to: its organization's, or the contact
/// itself as a lone participant.
fn anonymous_participant_of<'c>(
    case: &'c CaseSnap,
    contact: &ContactSnap,
) -> Option<&'c ParticipantSnap> {
    case.participants.iter().find(|p| {
        p.anonymous && (p.contact == Some(contact.id) || (p.org.is_some() && p.org == contact.org))
    })
}

/// Whether `viewer` sees the real identity behind participant `p`: coordinators, the
/// participant's own organization, and a lone participant itself.
fn sees_behind_alias(world: &World, p: &ParticipantSnap, viewer: ContactId) -> bool {
    let Some(v) = world.contact(viewer) else {
        return false;
    };
    world.is_coordinator(v) || p.contact == Some(viewer) || (p.org.is_some() && p.org == v.org)
}

/// The alias of an anonymous participant; a role-based one when none was set.
fn alias_of(p: &ParticipantSnap) -> String {
    let alias = p.alias.trim();
    if !alias.is_empty() {
        return alias.to_string();
    }
    match p.role {
        Role::Vendor => "Anonymous vendor",
        Role::Reporter => "Anonymous reporter",
        Role::Coordinator => "Coordinator",
    }
    .to_string()
}

/// Every string that identifies `author`: name, address, local part (when longer than
/// three characters), and for a member of an organization the organization's name, its
/// domains and the domain of the address. Deduplicated case-insensitively, longest first.
fn redactions_for(world: &World, author: &ContactSnap) -> Vec<String> {
    let mut out = vec![author.name.clone(), author.email.clone()];
    let (local, domain) = author
        .email
        .rsplit_once('@')
        .unwrap_or((author.email.as_str(), ""));
    if local.chars().count() > 3 {
        out.push(local.to_string());
    }
    if let Some(org) = author.org.and_then(|o| world.org(o)) {
        out.push(org.name.clone());
        out.extend(org.domains.iter().cloned());
        out.push(domain.to_string());
    }
    let mut out: Vec<String> = out
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    out.sort_by(|a, b| {
        b.chars()
            .count()
            .cmp(&a.chars().count())
            .then_with(|| a.cmp(b))
    });
    let mut seen: Vec<String> = Vec::new();
    out.retain(|s| {
        let key = s.to_lowercase();
        let fresh = !seen.contains(&key);
        seen.push(key);
        fresh
    });
    out
}

/// How participant `p` of `case` is named to `viewer` (SPEC §6.3, §8 case summary): its
/// alias when anonymous and the viewer is neither a coordinator nor one of its own;
/// otherwise the organization's name, or the lone contact's name.
pub fn participant_label(world: &World, p: &ParticipantSnap, viewer: ContactId) -> String {
    if p.anonymous && !sees_behind_alias(world, p, viewer) {
        return alias_of(p);
    }
    let org = p
        .org
        .and_then(|o| world.org(o))
        .map(|o| o.name.trim().to_string());
    let lone = p
        .contact
        .and_then(|c| world.contact(c))
        .map(contact_display);
    org.or(lone)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| alias_of(p))
}

/// The participants of `case` as `viewer` may see them, in the case's order.
pub fn participant_labels(
    world: &World,
    case: &CaseSnap,
    viewer: ContactId,
) -> Vec<(Role, String)> {
    case.participants
        .iter()
        .map(|p| (p.role, participant_label(world, p, viewer)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CaseState, OrgKind, OrgSnap};

    fn org(id: i64, name: &str, kind: OrgKind, domain: &str) -> OrgSnap {
        OrgSnap {
            id,
            name: name.into(),
            kind,
            domains: vec![domain.into()],
        }
    }

    fn contact(
        id: i64,
        name: &str,
        email: &str,
        org: Option<i64>,
        notify: NotifyMode,
    ) -> ContactSnap {
        ContactSnap {
            id,
            email: email.into(),
            name: name.into(),
            org,
            notify,
            encrypt_only: false,
        }
    }

    fn participant(
        org: Option<i64>,
        contact: Option<i64>,
        role: Role,
        alias: &str,
    ) -> ParticipantSnap {
        ParticipantSnap {
            org,
            contact,
            role,
            anonymous: !alias.is_empty(),
            alias: alias.into(),
        }
    }

    /// Coordinator org 1 (contact 10), vendor Acme org 2 anonymous as "Vendor A" (contacts
    /// 20, 21), vendor Bolt org 3 (contact 30, digest; 31, none), lone reporter 40.
    fn world() -> World {
        World {
            orgs: vec![
                org(1, "CERT", OrgKind::Coordinator, "cert.example"),
                org(2, "Acme Corp", OrgKind::Vendor, "acme.example"),
                org(3, "Bolt", OrgKind::Vendor, "bolt.example"),
            ],
            contacts: contacts(),
            cases: vec![case()],
            reports: vec![],
            threads: vec![
                thread(100, ThreadKind::Discussion, None),
                thread(101, ThreadKind::Private, Some(2)),
            ],
        }
    }

    fn contacts() -> Vec<ContactSnap> {
        use NotifyMode::*;
        let rows = [
            (10, "Cora Coord", "cora@cert.example", Some(1), Immediate),
            (20, "Ann Acme", "ann.smith@acme.example", Some(2), Immediate),
            (21, "", "bob@acme.example", Some(2), Immediate),
            (30, "Bea Bolt", "bea@bolt.example", Some(3), Digest),
            (31, "Ben Bolt", "ben@bolt.example", Some(3), None),
            (
                40,
                "Rita Reporter",
                "rita@mail.example",
                Option::None,
                Immediate,
            ),
        ];
        rows.into_iter()
            .map(|(id, name, email, org, notify)| contact(id, name, email, org, notify))
            .collect()
    }

    fn case() -> CaseSnap {
        CaseSnap {
            id: 1,
            public_id: "VU#123456".into(),
            title: "t".into(),
            state: CaseState::Open,
            embargoed: false,
            min_assurance: None,
            discussion: 100,
            private_threads: vec![(2, 101), (3, 102)],
            participants: vec![
                participant(Some(2), None, Role::Vendor, "Vendor A"),
                participant(Some(3), None, Role::Vendor, ""),
                participant(None, Some(40), Role::Reporter, ""),
            ],
        }
    }

    fn thread(id: i64, kind: ThreadKind, org: Option<i64>) -> ThreadSnap {
        ThreadSnap {
            id,
            kind,
            case: Some(1),
            org,
            report: None,
        }
    }

    fn facts<'a>(
        thread: &'a ThreadSnap,
        author: Option<ContactId>,
        pinned: bool,
        direct: &'a [String],
    ) -> PostFacts<'a> {
        PostFacts {
            thread,
            author,
            pinned,
            direct_recipients: direct,
            has_usable_key: &|_| false,
        }
    }

    fn recipients(f: &FanOut) -> Vec<ContactId> {
        f.deliveries.iter().map(|d| d.contact).collect()
    }

    #[test]
    fn discussion_reaches_every_reader_but_author_direct_and_muted() {
        let w = world();
        let direct = vec!["CORA@cert.example".to_string()];
        let f = fan_out(&w, &facts(&w.threads[0], Some(20), false, &direct));
        assert_eq!(recipients(&f), vec![21, 30, 40]);
        assert_eq!(f.direct, vec![10]);
        let bea = &f.deliveries[1];
        assert_eq!(
            (bea.mode, bea.content),
            (DeliveryMode::Digest, Content::Full)
        );
    }

    #[test]
    fn pinned_posts_ignore_digest() {
        let w = world();
        let f = fan_out(&w, &facts(&w.threads[0], Some(10), true, &[]));
        assert!(f
            .deliveries
            .iter()
            .all(|d| d.mode == DeliveryMode::Immediate));
        assert!(!recipients(&f).contains(&31));
    }

    #[test]
    fn private_thread_reaches_its_organization_and_coordinators() {
        let w = world();
        let f = fan_out(&w, &facts(&w.threads[1], None, false, &[]));
        assert_eq!(recipients(&f), vec![10, 20, 21]);
        assert!(f.deliveries.iter().all(|d| d.view.display == SYSTEM_AUTHOR));
    }

    #[test]
    fn embargo_and_encrypt_only_without_key_get_the_notice() {
        let mut w = world();
        w.contacts[5].encrypt_only = true;
        let f = fan_out(&w, &facts(&w.threads[0], Some(10), false, &[]));
        let notice: Vec<_> = f
            .deliveries
            .iter()
            .filter(|d| d.content == Content::Notice)
            .map(|d| d.contact)
            .collect();
        assert_eq!(notice, vec![40]);
        w.cases[0].embargoed = true;
        let f = fan_out(&w, &facts(&w.threads[0], Some(10), false, &[]));
        assert!(f.deliveries.iter().all(|d| d.content == Content::Notice));
        let with_key = PostFacts {
            has_usable_key: &|c| c == 21,
            ..facts(&w.threads[0], Some(10), false, &[])
        };
        let f = fan_out(&w, &with_key);
        let full: Vec<_> = f
            .deliveries
            .iter()
            .filter(|d| d.content == Content::Full)
            .map(|d| d.contact)
            .collect();
        assert_eq!(full, vec![21]);
    }

    #[test]
    fn anonymous_author_is_an_alias_outside_their_organization() {
        let w = world();
        let t = &w.threads[0];
        let outside = author_view(&w, t, Some(20), 30);
        assert_eq!(outside.display, "Vendor A");
        assert_eq!(
            outside.redactions,
            vec![
                "ann.smith@acme.example",
                "acme.example",
                "Acme Corp",
                "ann.smith",
                "Ann Acme"
            ]
        );
        assert_eq!(author_view(&w, t, Some(20), 21).display, "Ann Acme");
        assert_eq!(author_view(&w, t, Some(20), 10).display, "Ann Acme");
        assert_eq!(author_view(&w, t, Some(21), 40).display, "Vendor A");
        assert_eq!(author_view(&w, t, Some(30), 40).display, "Bea Bolt");
        assert_eq!(author_view(&w, t, Some(10), 40).display, "Cora Coord");
        assert_eq!(author_view(&w, t, Some(999), 40).display, UNKNOWN_AUTHOR);
    }

    #[test]
    fn anonymous_lone_reporter_is_seen_only_by_coordinators() {
        let mut w = world();
        w.cases[0].participants[2] = participant(None, Some(40), Role::Reporter, "Reporter");
        let t = &w.threads[0];
        let v = author_view(&w, t, Some(40), 20);
        assert_eq!(v.display, "Reporter");
        assert_eq!(
            v.redactions,
            vec!["rita@mail.example", "Rita Reporter", "rita"]
        );
        assert_eq!(author_view(&w, t, Some(40), 10).display, "Rita Reporter");
    }

    #[test]
    fn participants_are_listed_by_alias_to_outsiders() {
        let w = world();
        let case = &w.cases[0];
        let names = |viewer| {
            participant_labels(&w, case, viewer)
                .into_iter()
                .map(|(_, n)| n)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(30), vec!["Vendor A", "Bolt", "Rita Reporter"]);
        assert_eq!(names(20), vec!["Acme Corp", "Bolt", "Rita Reporter"]);
        assert_eq!(names(10), vec!["Acme Corp", "Bolt", "Rita Reporter"]);
    }
}
