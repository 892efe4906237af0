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
use crate::view::{Arrival, Author, Item, PostItem, VendorContact};
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
    /// The initial-contact public date and first-contact facts are in the payload; the
    /// case a vendor notification belongs to comes from its thread.
    pub now_ms: i64,
}

/// Renders `item` for its recipient: its kind as sent (a notice when the content is
/// withheld) and the sealed message. `None` when the recipient may no longer read it (they
/// left the case) or what it names is gone: the item is dropped, never sent elsewhere.
pub fn render(c: &Composer, item: &Decided, ctx: &RenderCtx) -> Option<(OutboxKind, Rendered)> {
    let w = &ctx.world;
    let contact = item.contact.and_then(|id| w.contact(id))?;
    let thread = item.thread.and_then(|t| w.thread(t))?;
    let earlier = ctx.earlier.get(&item.id).map(Vec::as_slice).unwrap_or_default();
    let ids = Ids { message_id: &item.message_id, outbox_id: item.id, earlier };
    let mut to = c.addressing(w, thread, contact, &ids);
    let queued = Some(item.content.queued());
    match (item.kind, &item.payload) {
        (OutboxKind::Digest, Payload::Digest { posts }) => {
            let posts: Vec<&StoredPost> = posts.iter().filter_map(|p| ctx.posts.get(p)).collect();
            let items: Vec<PostItem> = posts.iter().filter_map(|p| w.thread(p.thread).map(|t| p.item(t))).collect();
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
        (OutboxKind::Notification | OutboxKind::Notice, _) => {
            let post = item.post.and_then(|p| ctx.posts.get(&p)).filter(|p| p.thread == thread.id)?;
            c.render(w, &Item::Post(&post.item(thread)), contact, &to, queued, ctx.now_ms)
        }
        _ => None,
    }
}
