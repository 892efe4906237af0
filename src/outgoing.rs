//! Rendering one stored delivery ([`Decided`]) for its recipient, as the outbox worker does
//! when it sends: the post, digest, initial contact or acknowledgement the decision names,
//! as the recipient may see it now, sealed for them (SPEC §5.3, §6, §8).
//!
//! Pure: the shell loads a [`RenderCtx`] (the world around the items, the posts they name,
//! the recipient's earlier Message-IDs) and calls [`render`].

use crate::audience::{self, Content, Delivery, DeliveryMode};
use crate::compose::{thread_view, Composer, Ids, PostDraft};
use crate::delivery::{Decided, Payload};
use crate::model::*;
use crate::render::{self, DigestEntry, PostView, Rendered, VendorNotice};
use std::collections::HashMap;

/// A stored post, as rendering needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPost {
    pub id: PostId,
    pub thread: ThreadId,
    pub author: Option<ContactId>,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub created_at: i64,
    /// The post arrived encrypted (or its protection record cannot be read): its content
    /// leaves only encrypted (SPEC §6.4 applied to §5.1).
    pub arrived_encrypted: bool,
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
    let contact = item.contact.and_then(|id| ctx.world.contact(id))?;
    let thread = item.thread.and_then(|t| ctx.world.thread(t))?;
    let earlier = ctx.earlier.get(&item.id).map(Vec::as_slice).unwrap_or_default();
    let ids = Ids { message_id: &item.message_id, outbox_id: item.id, earlier };
    match (item.kind, &item.payload) {
        (OutboxKind::Digest, Payload::Digest { posts }) => digest(c, ctx, (contact, item.content), thread, posts, &ids),
        (OutboxKind::VendorNotification, Payload::Vendor { org, public_at }) => vendor(c, ctx, contact, thread, (*org, *public_at), item.content, &ids),
        (OutboxKind::Acknowledgement, Payload::Ack { in_reply_to }) => ack(c, ctx, contact, thread, in_reply_to.as_deref(), &ids),
        (OutboxKind::Notification | OutboxKind::Notice, _) => notification(c, item, ctx, contact, thread, &ids),
        _ => None,
    }
}

/// A post's notification, or the notice (SPEC §6.2, §6.4).
fn notification(c: &Composer, item: &Decided, ctx: &RenderCtx, contact: &ContactSnap, thread: &ThreadSnap, ids: &Ids) -> Option<(OutboxKind, Rendered)> {
    let post = item.post.and_then(|p| ctx.posts.get(&p))?;
    if post.thread != thread.id || !audience::may_read(&ctx.world, thread, contact.id) {
        return None;
    }
    let content = if post.arrived_encrypted && !c.pgp.keyring().has_usable_key(contact.id, ctx.now_ms) { Content::Notice } else { item.content };
    let d = Delivery {
        contact: contact.id,
        email: item.rcpt.clone(),
        mode: DeliveryMode::Immediate,
        content,
        view: audience::author_view(&ctx.world, thread, post.author, contact.id),
    };
    let draft = PostDraft { thread, author: post.author, body: &post.body, attachments: &post.attachments, created_at_ms: post.created_at };
    c.render_delivery(&ctx.world, &draft, &d, ids, ctx.now_ms)
}

/// The daily digest of one contact for one case or report (SPEC §8): the posts they may
/// still read, or the notice when any of them may only travel encrypted and they have no
/// usable key (SPEC §6.4, §6.6).
fn digest(c: &Composer, ctx: &RenderCtx, (who, decided): (&ContactSnap, Content), home: &ThreadSnap, post_ids: &[PostId], ids: &Ids) -> Option<(OutboxKind, Rendered)> {
    let posts: Vec<&StoredPost> = post_ids
        .iter()
        .filter_map(|p| ctx.posts.get(p))
        .filter(|p| ctx.world.thread(p.thread).is_some_and(|t| audience::may_read(&ctx.world, t, who.id)))
        .collect();
    if posts.is_empty() {
        return None;
    }
    let now = ctx.now_ms;
    let to = c.addressing(&ctx.world, home, who, ids);
    let home_view = thread_view(&ctx.world, home, who);
    let embargoed = audience::case_of_thread(&ctx.world, home).is_some_and(|k| k.embargoed);
    let confidential = embargoed || posts.iter().any(|p| p.arrived_encrypted);
    if decided == Content::Notice || c.content_for(who, confidential, now) == Content::Notice {
        return Some(c.notice(who.id, &home_view.token, &to, now));
    }
    let views: Vec<_> = posts
        .iter()
        .filter_map(|p| ctx.world.thread(p.thread).map(|t| (thread_view(&ctx.world, t, who), audience::author_view(&ctx.world, t, p.author, who.id))))
        .collect();
    let entries: Vec<DigestEntry> = posts
        .iter()
        .zip(&views)
        .map(|(p, (tv, av))| DigestEntry {
            thread: tv,
            post: PostView { author_display: &av.display, body: &p.body, attachments: &p.attachments, created_at_ms: p.created_at, redactions: &av.redactions },
        })
        .collect();
    let rendered = render::digest(&c.gateway, &home_view, &entries, &to, now);
    Some(c.seal_or_notice(who.id, OutboxKind::Digest, rendered, &home_view.token, &to, now))
}

/// The initial contact of a vendor organization (SPEC §8): content only encrypted in an
/// embargo or to encrypt-only contacts, never in plaintext to a contact whose confirmed key
/// stopped being usable (SPEC §6.4).
fn vendor(c: &Composer, ctx: &RenderCtx, who: &ContactSnap, thread: &ThreadSnap, (org, public_at): (OrgId, i64), item_content: Content, ids: &Ids) -> Option<(OutboxKind, Rendered)> {
    let case = thread.case.and_then(|k| ctx.world.case(k))?;
    let org = ctx.world.org(org).filter(|o| who.org == Some(o.id))?;
    let now = ctx.now_ms;
    let to = c.addressing(&ctx.world, thread, who, ids);
    if item_content == Content::Notice || c.content_for(who, case.embargoed, now) == Content::Notice {
        return Some(c.notice(who.id, &case.public_id, &to, now));
    }
    let fingerprint = c.pgp.gateway.as_ref().map(|g| g.fingerprint().to_spaced_hex());
    let case_address = c.book().case_address(&case.public_id);
    let n = VendorNotice {
        case_public_id: &case.public_id,
        title: &case.title,
        public_date_ms: public_at,
        org_name: &org.name,
        gateway_fingerprint: fingerprint.as_deref(),
        case_address: &case_address,
    };
    let rendered = render::vendor_notification(&c.gateway, &n, &to, now);
    Some(c.seal_or_notice(who.id, OutboxKind::VendorNotification, rendered, &case.public_id, &to, now))
}

/// The acknowledgement of a report (SPEC §8, RFC 3834): encrypted when the reporter's key
/// is known; it never quotes the report.
fn ack(c: &Composer, ctx: &RenderCtx, who: &ContactSnap, thread: &ThreadSnap, in_reply_to: Option<&str>, ids: &Ids) -> Option<(OutboxKind, Rendered)> {
    let report = thread.report.and_then(|r| ctx.world.report(r)).filter(|r| r.reporter == who.id)?;
    let mut to = c.addressing(&ctx.world, thread, who, ids);
    // RFC 3834 §3.1.5: it answers the report mail; a bare address, no display name.
    to.to_name = String::new();
    to.private_reply_to = None;
    to.in_reply_to = in_reply_to.map(str::to_string);
    to.references = in_reply_to.map(|m| vec![m.to_string()]).unwrap_or_default();
    let plain = render::acknowledgement(&c.gateway, &report.public_id, &to, ctx.now_ms);
    let sealed = c.seal(who.id, &report.public_id, plain.clone(), ctx.now_ms).unwrap_or(plain);
    Some((OutboxKind::Acknowledgement, sealed))
}
