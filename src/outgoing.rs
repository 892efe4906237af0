//! Rendering one stored delivery ([`Decided`]) for its recipient, as the outbox worker does
//! when it sends: the post, digest, initial contact or acknowledgement the decision names,
//! as [`crate::view::view`] says the recipient may see it now, sealed for them (SPEC §5.3,
//! §6, §8). What was decided when it was queued goes in as a fact: a notice stays one.
//!
//! Pure: the shell loads a [`RenderCtx`] (the world around the items, the posts they name,
//! the recipient's earlier Message-IDs) and calls [`render`].

use crate::compose::{Composer, Ids};
use crate::delivery::{Decided, Payload};
use crate::model::*;
use crate::render::Rendered;
use crate::store::status::CaseRecord;
use crate::view::{Arrival, Author, CaseFacts, Item, PostItem, VendorContact};
use std::collections::HashMap;

/// A stored post, as rendering needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPost {
    pub id: PostId,
    pub thread: ThreadId,
    pub author: Option<ContactId>,
    pub source: PostSource,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub created_at: i64,
    /// How its content arrived (an unreadable protection record counts as encrypted).
    pub arrival: Arrival,
}

impl StoredPost {
    /// The post as the view sees it. Who gets it was decided when it was queued, so
    /// pinning and the direct recipients play no part any more.
    fn item<'a>(&'a self, thread: &'a ThreadSnap) -> PostItem<'a> {
        PostItem {
            thread,
            author: Author::of(self.author, self.source),
            body: &self.body,
            attachments: &self.attachments,
            created_at_ms: self.created_at,
            pinned: false,
            direct: &[],
            arrival: self.arrival,
        }
    }
}

/// What rendering one batch of deliveries reads.
#[derive(Debug, Default)]
pub struct RenderCtx {
    pub world: World,
    pub posts: HashMap<PostId, StoredPost>,
    /// Message-IDs each delivery's recipient got earlier in its thread, oldest first.
    pub earlier: HashMap<OutboxId, Vec<String>>,
    /// The dates and vendor statuses of the cases that summaries and reminders name.
    pub cases: HashMap<CaseId, CaseRecord>,
    /// The initial-contact public date and first-contact facts are in the payload; the
    /// case a vendor notification belongs to comes from its thread.
    pub now_ms: i64,
}

impl RenderCtx {
    fn facts(&self, case: CaseId) -> Option<CaseFacts<'_>> {
        let case = self.world.case(case)?;
        let record = self.cases.get(&case.id)?;
        Some(CaseFacts { case, public_date_ms: record.public_at, statuses: &record.statuses })
    }

    fn post_items<'a>(&'a self, ids: &[PostId]) -> Vec<PostItem<'a>> {
        ids.iter().filter_map(|p| self.posts.get(p)).filter_map(|p| self.world.thread(p.thread).map(|t| p.item(t))).collect()
    }
}

/// Why an item the view gives nothing is not sent, for its history row.
pub fn dropped_because(item: &Decided, ctx: &RenderCtx) -> &'static str {
    match item.contact.and_then(|c| ctx.world.contact(c)) {
        Some(c) if c.bouncing => "not sent: the recipient's address is bouncing (SPEC §7.5)",
        _ => "not sent: the recipient may no longer read what it names, or it is gone",
    }
}

/// Renders `item` for its recipient: its kind as sent (a notice when the content is
/// withheld) and the sealed message. `None` when the recipient may no longer read it (they
/// left the case) or what it names is gone: the item is dropped, never sent elsewhere.
pub fn render(c: &Composer, item: &Decided, ctx: &RenderCtx) -> Option<(OutboxKind, Rendered)> {
    let w = &ctx.world;
    let contact = item.contact.and_then(|id| w.contact(id))?;
    let queued = Some(item.content.queued());
    if let Payload::Coordinators(note) = &item.payload {
        // For the coordinators alone: no thread, replies are not routed.
        let to = c.coordinator_addressing(contact, &item.message_id, item.id);
        return c.render(w, &Item::Coordinators(note), contact, &to, queued, ctx.now_ms);
    }
    let thread = item.thread.and_then(|t| w.thread(t))?;
    let earlier = ctx.earlier.get(&item.id).map(Vec::as_slice).unwrap_or_default();
    let ids = Ids { message_id: &item.message_id, outbox_id: item.id, earlier };
    let mut to = c.addressing(w, thread, contact, &ids);
    match (item.kind, &item.payload) {
        (OutboxKind::Digest, Payload::Digest { posts }) => {
            let items = ctx.post_items(posts);
            c.render(w, &Item::Digest { home: thread, posts: &items }, contact, &to, queued, ctx.now_ms)
        }
        (OutboxKind::VendorNotification, Payload::Vendor { org, public_at }) => {
            let case = thread.case.and_then(|k| w.case(k))?;
            let fingerprint = c.pgp.gateway.as_ref().map(|g| g.fingerprint().to_spaced_hex());
            let v = VendorContact { case, org: *org, public_date_ms: *public_at, fingerprint: fingerprint.as_deref() };
            c.render(w, &Item::VendorContact(v), contact, &to, queued, ctx.now_ms)
        }
        (OutboxKind::Acknowledgement, Payload::Ack { in_reply_to }) => {
            let report = thread.report.and_then(|r| w.report(r))?;
            // RFC 3834 §3.1.5: it answers the report mail; a bare address, no display name.
            to.to_name = String::new();
            to.private_reply_to = None;
            to.in_reply_to = in_reply_to.clone();
            to.references = in_reply_to.iter().cloned().collect();
            c.render(w, &Item::Acknowledgement { report }, contact, &to, queued, ctx.now_ms)
        }
        (OutboxKind::CaseSummary | OutboxKind::Joined, Payload::Summary { case, posts }) => {
            let facts = ctx.facts(*case)?;
            let items = ctx.post_items(posts);
            let joined = item.kind == OutboxKind::Joined;
            if joined {
                to.private_reply_to = c.private_channel_of(w, facts.case, contact).map(|t| c.reply_address(t, contact.id));
            }
            c.render(w, &Item::Summary { facts, posts: &items, joined }, contact, &to, queued, ctx.now_ms)
        }
        (OutboxKind::Reminder, Payload::Reminder { org, day }) => {
            let facts = ctx.facts(thread.case?)?;
            c.render(w, &Item::Reminder { facts, org: *org, day: *day }, contact, &to, queued, ctx.now_ms)
        }
        (OutboxKind::Notification | OutboxKind::Notice, _) => {
            let post = item.post.and_then(|p| ctx.posts.get(&p)).filter(|p| p.thread == thread.id)?;
            c.render(w, &Item::Post(&post.item(thread)), contact, &to, queued, ctx.now_ms)
        }
        _ => None,
    }
}
