//! The content of the coordination workflow's kinds (SPEC §6.6, §8), for a recipient the
//! parent module's `form` already chose: the case summary and the late joiner's summary
//! with the discussion so far, reminders, and the coordinators' notes. Every string goes
//! through the same `Shown` as a post.

use super::{
    post_content, readable, thread_view, CaseFacts, PostContent, PostItem, Shown, ThreadView,
};
use crate::audience::{participant_label, participant_labels};
use crate::model::*;
use crate::redact::clean_line;
use crate::status::{StatusSnap, VendorStatus};
use crate::workflow::{CaseLine, CoordinatorNote};

/// The case as one participant may see it (SPEC §8 "case summary").
#[derive(Debug, Clone)]
pub struct SummaryContent<'a> {
    /// The case discussion: token and title as the recipient may see them.
    pub thread: ThreadView,
    pub state: CaseState,
    pub public_date_ms: Option<i64>,
    /// Every participant, anonymous ones by alias unless the recipient sees behind it.
    pub participants: Vec<(Role, String)>,
    /// The statuses the recipient may see: shared ones, their own organization's, all for
    /// a coordinator.
    pub statuses: Vec<StatusView>,
    /// The recipient's own vendor organization in the case, as shown to them.
    pub own: Option<String>,
    /// The summary of a participant who joined after the discussion started (SPEC §6.6).
    pub joined: bool,
    /// The discussion so far, oldest first (only for `joined`); attachments listed.
    pub entries: Vec<PostContent<'a>>,
}

/// One vendor's status as the recipient may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusView {
    pub who: String,
    /// The recipient's own organization.
    pub own: bool,
    pub status: Option<VendorStatus>,
    pub statement: String,
    pub references: Vec<String>,
    pub shared: bool,
    pub updated_at: i64,
}

/// A reminder to a vendor organization (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderContent {
    pub thread: ThreadView,
    pub org_name: String,
    pub day: u32,
    pub public_date_ms: Option<i64>,
}

/// A note for the coordinators. Titles of embargoed cases are empty unless the message is
/// encrypted (SPEC §6.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorContent {
    pub note: CoordinatorNote,
}

/// SPEC §8: a vendor's status and statement are shown to the other participants only when
/// shared; its own organization and the coordinators always see them.
pub(super) fn status_visible(world: &World, s: &StatusSnap, r: &ContactSnap) -> bool {
    s.share || r.org == Some(s.org) || world.is_coordinator(r)
}

/// The statuses of the case's vendor participants that `r` may see.
pub(super) fn visible_statuses<'f>(
    world: &'f World,
    facts: &'f CaseFacts,
    r: &'f ContactSnap,
) -> impl Iterator<Item = &'f StatusSnap> + 'f {
    facts.statuses.iter().filter(move |s| {
        vendor_participant(facts.case, s.org).is_some() && status_visible(world, s, r)
    })
}

fn vendor_participant(case: &CaseSnap, org: OrgId) -> Option<&ParticipantSnap> {
    case.participants
        .iter()
        .find(|p| p.org == Some(org) && p.role == Role::Vendor)
}

pub(super) fn summary<'a>(
    world: &World,
    facts: &CaseFacts,
    posts: &[PostItem<'a>],
    joined: bool,
    r: &ContactSnap,
    shown: &Shown,
) -> SummaryContent<'a> {
    let discussion = world.thread(facts.case.discussion);
    let thread = match discussion {
        Some(t) => thread_view(world, t, r, shown),
        None => case_thread(facts.case, shown),
    };
    let statuses = visible_statuses(world, facts, r)
        .filter_map(|s| {
            let p = vendor_participant(facts.case, s.org)?;
            Some(StatusView {
                who: shown.line(&participant_label(world, p, r.id)),
                own: r.org == Some(s.org),
                status: s.status,
                statement: shown.text(&s.statement).into_owned(),
                references: s.references.iter().map(|u| shown.line(u)).collect(),
                shared: s.share,
                updated_at: s.updated_at,
            })
        })
        .collect();
    let own = r
        .org
        .and_then(|o| vendor_participant(facts.case, o))
        .map(|p| shown.line(&participant_label(world, p, r.id)));
    let entries = if joined {
        readable(world, posts, r)
            .map(|p| post_content(world, p, r, shown, false))
            .collect()
    } else {
        Vec::new()
    };
    SummaryContent {
        thread,
        state: facts.case.state,
        public_date_ms: facts.public_date_ms,
        participants: participant_labels(world, facts.case, r.id)
            .into_iter()
            .map(|(role, l)| (role, shown.line(&l)))
            .collect(),
        statuses,
        own,
        joined,
        entries,
    }
}

fn case_thread(case: &CaseSnap, shown: &Shown) -> ThreadView {
    ThreadView {
        token: clean_line(&case.public_id),
        title: shown.line(&case.title),
        kind: ThreadKind::Discussion,
        org_label: None,
    }
}

pub(super) fn reminder(
    world: &World,
    facts: &CaseFacts,
    org: OrgId,
    day: u32,
    shown: &Shown,
) -> ReminderContent {
    ReminderContent {
        thread: case_thread(facts.case, shown),
        org_name: world
            .org(org)
            .map(|o| shown.line(&o.name))
            .unwrap_or_default(),
        day,
        public_date_ms: facts.public_date_ms,
    }
}

/// The note as a coordinator gets it: clean one-line strings, and the titles of embargoed
/// cases only inside an encrypted message.
pub(super) fn coordinators(note: &CoordinatorNote, encrypted: bool) -> CoordinatorContent {
    let case = |c: &CaseLine| CaseLine {
        case: clean_line(&c.case),
        title: if c.embargoed && !encrypted {
            String::new()
        } else {
            clean_line(&c.title)
        },
        embargoed: c.embargoed,
        public_at: c.public_at,
    };
    let note = match note {
        CoordinatorNote::Daily(d) => {
            let mut d = d.clone();
            d.due = d.due.iter().map(case).collect();
            d.past = d.past.iter().map(case).collect();
            for v in &mut d.without_status {
                v.org = clean_line(&v.org);
            }
            for q in &mut d.quarantine {
                q.reason = clean_line(&q.reason);
            }
            for x in &mut d.dead {
                x.reply = clean_line(&x.reply);
            }
            CoordinatorNote::Daily(d)
        }
        CoordinatorNote::Dead { items } => CoordinatorNote::Dead {
            items: items
                .iter()
                .cloned()
                .map(|mut x| {
                    x.reply = clean_line(&x.reply);
                    x
                })
                .collect(),
        },
        other => other.clone(),
    };
    CoordinatorContent { note }
}
