//! Who may read a thread, who is notified of a new post, who sees behind an anonymous
//! participant's alias (SPEC §6.1, §6.3, §6.5). What each recipient receives is decided by
//! [`crate::view`].
//!
//! Pure: takes a [`World`] snapshot and returns values.

use crate::model::{
    CaseSnap, ContactId, ContactSnap, ParticipantSnap, Role, ThreadId, ThreadKind, ThreadSnap,
    World,
};
use crate::view::{self, Mode, PostItem, Skip};
use serde::Serialize;

/// Every contact who may read `thread` (SPEC §6.1), sorted by contact id.
pub fn readers(world: &World, thread: &ThreadSnap) -> Vec<ContactId> {
    let mut out: Vec<ContactId> = world
        .contacts
        .iter()
        .filter(|c| reads(world, thread, c))
        .map(|c| c.id)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether `contact` may read (and so post into) `thread`.
pub fn may_read(world: &World, thread: &ThreadSnap, contact: ContactId) -> bool {
    world
        .contact(contact)
        .is_some_and(|c| reads(world, thread, c))
}

/// SPEC §6.1: coordinators read every thread; a case discussion is read by every contact
/// of every participating organization and every lone participant; a private thread by
/// the contacts of its organization; a report thread by its reporter.
fn reads(world: &World, thread: &ThreadSnap, c: &ContactSnap) -> bool {
    if world.is_coordinator(c) {
        return true;
    }
    match thread.kind {
        ThreadKind::Discussion => thread
            .case
            .and_then(|id| world.case(id))
            .is_some_and(|case| {
                case.participants
                    .iter()
                    .any(|p| p.contact == Some(c.id) || (p.org.is_some() && p.org == c.org))
            }),
        ThreadKind::Private => thread.org.is_some() && thread.org == c.org,
        ThreadKind::Report => thread
            .report
            .and_then(|r| world.report(r))
            .is_some_and(|r| r.reporter == c.id),
    }
}

/// The contacts of an organization.
pub fn contacts_of_org(world: &World, org: i64) -> impl Iterator<Item = &ContactSnap> {
    world.contacts.iter().filter(move |c| c.org == Some(org))
}

/// One recipient of a post, now or in their digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub contact: ContactId,
    pub email: String,
    pub mode: Mode,
}

/// The audience of one post.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct FanOut {
    pub deliveries: Vec<Delivery>,
    /// Readers not sent a copy because they were in a coordinator's To/Cc (SPEC §6.5).
    pub direct: Vec<ContactId>,
}

/// The readers of a post's thread who get it, now or in their digest, as
/// [`view::reach_post`] decides; what each of them sees is [`view::view`]'s to decide.
/// In contact id order.
pub fn fan_out(world: &World, post: &PostItem) -> FanOut {
    let mut out = FanOut::default();
    let mut readers: Vec<&ContactSnap> = world
        .contacts
        .iter()
        .filter(|c| reads(world, post.thread, c))
        .collect();
    readers.sort_by_key(|c| c.id);
    readers.dedup_by_key(|c| c.id);
    for c in readers {
        match view::reach_post(world, post, c) {
            Ok(mode) => out.deliveries.push(Delivery {
                contact: c.id,
                email: c.email.clone(),
                mode,
            }),
            Err(Skip::Direct) => out.direct.push(c.id),
            Err(_) => {}
        }
    }
    out
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

/// Where `contact` writes privately to the coordinators about `case`: their organization's
/// private thread, or for a reporter their report thread. `None` for a coordinator (who
/// reads every thread) and for anyone without one.
pub fn private_channel(world: &World, case: &CaseSnap, contact: &ContactSnap) -> Option<ThreadId> {
    if world.is_coordinator(contact) {
        return None;
    }
    contact
        .org
        .and_then(|o| case.private_thread_of(o))
        .or_else(|| {
            world
                .reports
                .iter()
                .find(|r| r.case == Some(case.id) && r.reporter == contact.id)
                .map(|r| r.thread)
        })
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
pub(crate) fn anonymous_participant_of<'c>(
    case: &'c CaseSnap,
    contact: &ContactSnap,
) -> Option<&'c ParticipantSnap> {
    case.participants.iter().find(|p| {
        p.anonymous && (p.contact == Some(contact.id) || (p.org.is_some() && p.org == contact.org))
    })
}

/// Whether `viewer` sees the real identity behind participant `p`: coordinators, the
/// participant's own organization, and a lone participant itself.
pub(crate) fn sees_behind_alias(world: &World, p: &ParticipantSnap, viewer: ContactId) -> bool {
    let Some(v) = world.contact(viewer) else {
        return false;
    };
    world.is_coordinator(v) || p.contact == Some(viewer) || (p.org.is_some() && p.org == v.org)
}

/// The alias of an anonymous participant; a role-based one when none was set.
pub(crate) fn alias_of(p: &ParticipantSnap) -> String {
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
pub(crate) mod tests {
    use super::*;
    use crate::model::{CaseState, NotifyMode, OrgKind, OrgSnap};
    use crate::view::{Arrival, Author};

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
            bouncing: false,
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
    pub(crate) fn world() -> World {
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

    pub(crate) fn post<'a>(
        thread: &'a ThreadSnap,
        author: Option<ContactId>,
        pinned: bool,
        direct: &'a [String],
    ) -> PostItem<'a> {
        PostItem {
            thread,
            author: author.map_or(Author::System, Author::Contact),
            body: "body",
            attachments: &[],
            created_at_ms: 0,
            pinned,
            direct,
            arrival: Arrival::Plain,
        }
    }

    fn recipients(f: &FanOut) -> Vec<ContactId> {
        f.deliveries.iter().map(|d| d.contact).collect()
    }

    #[test]
    fn discussion_reaches_every_reader_but_author_and_muted() {
        let w = world();
        let f = fan_out(&w, &post(&w.threads[0], Some(20), false, &[]));
        assert_eq!(recipients(&f), vec![10, 21, 30, 40]);
        let bea = &f.deliveries[2];
        assert_eq!(bea.mode, Mode::Digest);
        assert!(f.direct.is_empty());
    }

    #[test]
    fn only_a_coordinators_direct_recipients_are_skipped() {
        let w = world();
        let direct = vec![
            "BEA@bolt.example".to_string(),
            "rita@mail.example".to_string(),
        ];
        let by_vendor = fan_out(&w, &post(&w.threads[0], Some(20), false, &direct));
        assert_eq!(recipients(&by_vendor), vec![10, 21, 30, 40]);
        assert!(by_vendor.direct.is_empty());
        let by_coordinator = fan_out(&w, &post(&w.threads[0], Some(10), false, &direct));
        assert_eq!(recipients(&by_coordinator), vec![20, 21]);
        assert_eq!(by_coordinator.direct, vec![30, 40]);
    }

    #[test]
    fn pinned_posts_ignore_digest() {
        let w = world();
        let f = fan_out(&w, &post(&w.threads[0], Some(10), true, &[]));
        assert!(f.deliveries.iter().all(|d| d.mode == Mode::Now));
        assert!(!recipients(&f).contains(&31));
    }

    #[test]
    fn private_thread_reaches_its_organization_and_coordinators() {
        let w = world();
        let f = fan_out(&w, &post(&w.threads[1], None, false, &[]));
        assert_eq!(recipients(&f), vec![10, 20, 21]);
        assert_eq!(readers(&w, &w.threads[1]), vec![10, 20, 21]);
        assert!(may_read(&w, &w.threads[0], 40) && !may_read(&w, &w.threads[1], 40));
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
