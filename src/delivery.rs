//! What the gateway will send (SPEC §7.1): one decision per (item, recipient), stored as an
//! outbox item in the same transaction as the post or action that causes it, and rendered
//! and sealed by the outbox worker when it sends (docs/architecture.md, "Deliveries").
//!
//! Pure: ids and Message-IDs are given by the caller.

use crate::audience;
use crate::model::*;
use crate::view::{self, Facts, Form, Item, Mode, PostItem, Queued, Skip};
use crate::workflow::CoordinatorNote;
use serde::{Deserialize, Serialize};

/// Kind-specific facts fixed when the item is decided; rendering reads the rest (the post,
/// the case, the people) as they are when it is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Payload {
    #[default]
    None,
    /// A digest: the posts it carries, oldest first.
    Digest { posts: Vec<PostId> },
    /// The initial contact of a vendor organization and the public date it announces.
    Vendor { org: OrgId, public_at: i64 },
    /// The acknowledgement of a report: the report mail it answers (for threading).
    Ack { in_reply_to: Option<String> },
    /// A case summary (SPEC §8 `-info`), or a late joiner's with the discussion posts so
    /// far (SPEC §6.6), oldest first.
    Summary { case: CaseId, posts: Vec<PostId> },
    /// A reminder to a vendor organization, `day` days after its initial contact.
    Reminder { org: OrgId, day: u32 },
    /// A note for the coordinators, with its facts as they were when it was decided.
    Coordinators(CoordinatorNote),
}

impl Payload {
    /// The stored form: `None` for no payload, else JSON.
    pub fn to_column(&self) -> Option<String> {
        match self {
            Payload::None => None,
            other => serde_json::to_string(other).ok(),
        }
    }
    /// Reads the stored form; anything unreadable is `None` (the renderer then withholds).
    pub fn from_column(column: Option<&str>) -> Payload {
        column.and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default()
    }
}

/// What a recipient was decided to get when the item was queued ([`view::form`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Full,
    /// The content-free notice.
    Notice,
}

impl Content {
    /// The stored form of a decision; `None` for nothing to send.
    pub fn of(form: Form) -> Option<Content> {
        match form {
            Form::Nothing(_) => None,
            Form::Notice(_) => Some(Content::Notice),
            Form::Content(_) => Some(Content::Full),
        }
    }
    /// What the view is told when the item is rendered.
    pub fn queued(self) -> Queued {
        match self {
            Content::Full => Queued::Content,
            Content::Notice => Queued::Notice,
        }
    }
}

/// The stored spelling of a content decision.
pub fn content_str(c: Content) -> &'static str {
    match c {
        Content::Full => "full",
        Content::Notice => "notice",
    }
}

/// Reads a stored content decision; anything but `full` is the notice (fail closed).
pub fn content_from(s: &str) -> Content {
    if s == "full" {
        Content::Full
    } else {
        Content::Notice
    }
}

/// One decided delivery, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub kind: OutboxKind,
    pub contact: ContactId,
    pub rcpt: String,
    /// Without angle brackets.
    pub message_id: String,
    pub content: Content,
    pub payload: Payload,
}

/// A stored delivery, as the worker renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub id: OutboxId,
    pub kind: OutboxKind,
    pub contact: Option<ContactId>,
    pub rcpt: String,
    pub thread: Option<ThreadId>,
    pub post: Option<PostId>,
    pub report: Option<ReportId>,
    pub content: Content,
    pub payload: Payload,
    pub message_id: String,
    pub created_at: i64,
}

/// What a new post will send (SPEC §6.1): a delivery for every immediate reader, a digest
/// entry for every digest reader, and the readers who had the mail already (§6.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostPlan {
    pub deliveries: Vec<NewDelivery>,
    /// (contact, address) of the readers who get the post in their daily digest.
    pub digest: Vec<(ContactId, String)>,
    pub direct: Vec<ContactId>,
    /// Readers skipped because their address bounces (SPEC §7.5), recorded in the history.
    pub bouncing: Vec<String>,
}

/// Decides a post's deliveries from its audience and what [`view::form`] says each reader
/// gets (`facts` of each recipient now); `message_id` gives each notification its own
/// Message-ID.
pub fn plan_post(world: &World, post: &PostItem, facts: impl Fn(ContactId) -> Facts, mut message_id: impl FnMut() -> String) -> PostPlan {
    let fan = audience::fan_out(world, post);
    let mut plan = PostPlan { direct: fan.direct, ..Default::default() };
    for d in fan.deliveries {
        if d.mode == Mode::Digest {
            plan.digest.push((d.contact, d.email));
            continue;
        }
        let form = view::form(world, &Item::Post(post), d.contact, &facts(d.contact));
        if form == Form::Nothing(Skip::Bouncing) {
            plan.bouncing.push(d.email);
            continue;
        }
        let Some(content) = Content::of(form) else { continue };
        plan.deliveries.push(NewDelivery {
            kind: OutboxKind::Notification,
            contact: d.contact,
            rcpt: d.email,
            message_id: message_id(),
            content,
            payload: Payload::None,
        });
    }
    plan
}

/// Deliveries of one item other than a post: one per candidate that [`view::form`] gives
/// something, each with its own Message-ID and `payload`; and the candidates skipped
/// because their address bounces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    pub deliveries: Vec<NewDelivery>,
    pub bouncing: Vec<String>,
}

pub fn plan_item<'w>(
    world: &'w World,
    item: &Item,
    kind: OutboxKind,
    candidates: impl IntoIterator<Item = &'w ContactSnap>,
    facts: impl Fn(ContactId) -> Facts,
    mut message_id: impl FnMut() -> String,
    payload: &Payload,
) -> Planned {
    let mut out = Planned::default();
    for c in candidates {
        match view::form(world, item, c.id, &facts(c.id)) {
            Form::Nothing(Skip::Bouncing) => out.bouncing.push(c.email.clone()),
            form => {
                let Some(content) = Content::of(form) else { continue };
                out.deliveries.push(NewDelivery { kind, contact: c.id, rcpt: c.email.clone(), message_id: message_id(), content, payload: payload.clone() });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_unreadable_ones_are_none() {
        let note = CoordinatorNote::Dead { items: vec![crate::workflow::DeadLine { id: 1, rcpt: "a@b".into(), kind: "notification".into(), case: None, reply: "451".into() }] };
        let daily = CoordinatorNote::Daily(crate::workflow::Daily { date: "2026-03-16".into(), ..Default::default() });
        for p in [Payload::None, Payload::Digest { posts: vec![3, 1] }, Payload::Vendor { org: 7, public_at: 9 }, Payload::Ack { in_reply_to: Some("a@b".into()) }, Payload::Summary { case: 2, posts: vec![5] }, Payload::Reminder { org: 3, day: 14 }, Payload::Coordinators(note), Payload::Coordinators(daily)] {
            assert_eq!(Payload::from_column(p.to_column().as_deref()), p);
        }
        assert_eq!(Payload::from_column(Some("{not json")), Payload::None);
    }

    #[test]
    fn an_unknown_content_decision_is_the_notice() {
        assert_eq!(content_from("full"), Content::Full);
        assert_eq!(content_from("notice"), Content::Notice);
        assert_eq!(content_from("FULL "), Content::Notice);
    }
}
