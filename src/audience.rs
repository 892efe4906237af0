//! Who may read a thread, and who is notified of a new post (SPEC §6.1, §6.3, §6.5).
//!
//! Pure: takes a [`World`] snapshot and returns values.

use crate::model::{ContactId, ContactSnap, ThreadKind, ThreadSnap, World};

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
