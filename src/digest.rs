//! Daily digests (SPEC §8): contacts with notify mode `digest` get one message per case
//! (or report) with the posts queued for them. The scheduler (`schedule`) queues them daily
//! at `digest.hour_utc`; `casegate digest send` at once. Visibility is checked when the digest is
//! decided (a post the contact may no longer read is dropped) and again when it is rendered.

use crate::audience;
use crate::compose::Composer;
use crate::delivery::{Content, NewDelivery, Payload};
use crate::model::*;
use crate::store::digest::{DigestMessage, QueuedPost};
use crate::store::posts;
use crate::store::world::WorldQuery;
use crate::store::{now_ms, Store, StoreError};
use crate::view::{self, Arrival, Author, Item, PostItem};
use std::collections::BTreeMap;

/// What one run queued.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DigestSummary {
    pub messages: u64,
    pub posts: u64,
    pub dropped: u64,
}

/// Queue a digest message for every contact with queued posts.
pub async fn send_digests(store: &Store, composer: &Composer) -> Result<DigestSummary, StoreError> {
    let mut by_contact: BTreeMap<ContactId, Vec<QueuedPost>> = BTreeMap::new();
    for q in store.queued_digest_posts().await? {
        by_contact.entry(q.contact).or_default().push(q);
    }
    let mut summary = DigestSummary::default();
    for (contact, queued) in by_contact {
        queue_for_contact(store, composer, contact, &queued, &mut summary).await?;
    }
    Ok(summary)
}

/// The thread a digest group replies to: the case discussion, or the report thread.
fn home(world: &World, t: &ThreadSnap) -> ThreadId {
    match audience::case_of_thread(world, t) {
        Some(c) if t.kind != ThreadKind::Report => c.discussion,
        _ => t.id,
    }
}

/// One contact's digests: the posts grouped by the thread a reply goes to, each group one
/// delivery (rendered by the outbox worker), the posts marked as digested.
async fn queue_for_contact(store: &Store, composer: &Composer, contact: ContactId, queued: &[QueuedPost], summary: &mut DigestSummary) -> Result<(), StoreError> {
    let mut q = WorldQuery { thread_ids: queued.iter().map(|p| p.thread).collect(), contact_ids: vec![contact], ..Default::default() };
    q.thread_ids.sort_unstable();
    q.thread_ids.dedup();
    let world = store.world(&q).await?;
    let Some(who) = world.contact(contact) else { return Ok(()) };
    let mut groups: BTreeMap<ThreadId, Vec<&QueuedPost>> = BTreeMap::new();
    let mut dropped = Vec::new();
    for p in queued {
        match world.thread(p.thread).filter(|t| audience::may_read(&world, t, contact)) {
            Some(t) => groups.entry(home(&world, t)).or_default().push(p),
            None => dropped.push(p.post),
        }
    }
    let now = now_ms();
    store.refresh_keyring(&composer.pgp).await?;
    let facts = composer.facts(contact, None, now);
    let mut messages = Vec::new();
    for (home, posts) in groups {
        // SPEC §6.4, §6.6: the view decides between the digest and the notice (checked
        // again when rendered); what the posts say does not enter that decision.
        let items: Vec<PostItem> = posts.iter().filter_map(|p| world.thread(p.thread).map(|t| form_only(t, p.arrival))).collect();
        let item = world.thread(home).map(|h| Item::Digest { home: h, posts: &items });
        let ids: Vec<PostId> = posts.iter().map(|p| p.post).collect();
        let Some(content) = item.and_then(|i| Content::of(view::form(&world, &i, contact, &facts))) else {
            dropped.extend(ids);
            continue;
        };
        let delivery = NewDelivery {
            kind: OutboxKind::Digest,
            contact,
            rcpt: who.email.clone(),
            message_id: posts::new_message_id(&composer.book().domain),
            content,
            payload: Payload::Digest { posts: ids },
        };
        messages.push(DigestMessage { home, delivery });
    }
    store.record_digests(contact, &messages, &dropped, now).await?;
    summary.dropped += dropped.len() as u64;
    summary.messages += messages.len() as u64;
    summary.posts += messages.iter().map(|m| match &m.delivery.payload { Payload::Digest { posts } => posts.len() as u64, _ => 0 }).sum::<u64>();
    Ok(())
}

/// A queued post as the view's decision of a digest's form needs it: where it was written
/// and how it arrived.
fn form_only(thread: &ThreadSnap, arrival: Arrival) -> PostItem<'_> {
    PostItem { thread, author: Author::Unknown, body: "", attachments: &[], created_at_ms: 0, pinned: false, direct: &[], arrival }
}
