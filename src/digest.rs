//! Daily digests (SPEC §8): contacts with notify mode `digest` get one message per case
//! (or report) with the posts queued for them, each rendered as they may see it. Visibility
//! is checked again at sending time: a post the contact may no longer read is dropped.

use crate::audience;
use crate::compose::{Composer, Ids};
use crate::model::*;
use crate::store::digest::{self, QueuedPost};
use crate::view::{Arrival, Author, PostItem};
use crate::store::posts::{self, OutboxSlot};
use crate::store::world::WorldQuery;
use crate::store::{self, now_ms, Store, StoreError};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What one run sent.
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
        send_for_contact(store, composer, contact, &queued, &mut summary).await?;
    }
    Ok(summary)
}

/// The thread a digest group replies to: the case discussion, or the report thread.
fn home(world: &World, t: &ThreadSnap) -> Option<ThreadId> {
    match audience::case_of_thread(world, t) {
        Some(c) if t.kind != ThreadKind::Report => Some(c.discussion),
        _ => Some(t.id),
    }
}

async fn send_for_contact(
    store: &Store,
    composer: &Composer,
    contact: ContactId,
    queued: &[QueuedPost],
    summary: &mut DigestSummary,
) -> Result<(), StoreError> {
    let mut q = WorldQuery { thread_ids: queued.iter().map(|p| p.thread).collect(), ..Default::default() };
    q.thread_ids.dedup();
    let email: Option<String> = sqlx::query_scalar("SELECT email FROM contacts WHERE id = $1").bind(contact).fetch_optional(&store.pool).await?;
    q.emails.extend(email);
    let world = store.world(&q).await?;
    let Some(who) = world.contact(contact).cloned() else { return Ok(()) };
    let mut groups: BTreeMap<ThreadId, Vec<&QueuedPost>> = BTreeMap::new();
    let mut dropped = Vec::new();
    for p in queued {
        match world.thread(p.thread).filter(|t| audience::may_read(&world, t, contact)).and_then(|t| home(&world, t)) {
            Some(h) => groups.entry(h).or_default().push(p),
            None => dropped.push(p.post),
        }
    }
    let mut tx = store.pool.begin().await?;
    let now = now_ms();
    digest::mark_sent(&mut tx, contact, &dropped, now).await?;
    summary.dropped += dropped.len() as u64;
    for (home_id, posts) in groups {
        let Some(home_thread) = world.thread(home_id) else { continue };
        queue_digest(&mut tx, composer, &world, &who, home_thread, &posts, now).await?;
        let ids: Vec<PostId> = posts.iter().map(|p| p.post).collect();
        digest::mark_sent(&mut tx, contact, &ids, now).await?;
        summary.messages += 1;
        summary.posts += ids.len() as u64;
    }
    tx.commit().await?;
    Ok(())
}

async fn queue_digest(
    tx: &mut store::Tx<'_>,
    composer: &Composer,
    world: &World,
    who: &ContactSnap,
    home: &ThreadSnap,
    posts: &[&QueuedPost],
    now: i64,
) -> Result<(), StoreError> {
    let message_id = posts::new_message_id(&composer.book().domain);
    let slot = OutboxSlot { kind: OutboxKind::Digest, post: None, report: None, thread: Some(home.id), contact: Some(who.id), rcpt: &who.email, message_id: &message_id };
    let id = posts::reserve_outbox(tx, &slot, now).await?;
    let ids = Ids { message_id: &message_id, outbox_id: id, earlier: &[] };
    // SPEC §6.4, §6.6: what the contact may receive is the view's to decide, with the
    // keys as they are now.
    store::keys::refresh(tx, &composer.pgp).await?;
    let items: Vec<PostItem> = posts
        .iter()
        .filter_map(|p| {
            let thread = world.thread(p.thread)?;
            let author = Author::of(p.author, p.source);
            let arrival = Arrival::of_record(p.protection.as_deref());
            Some(PostItem { thread, author, body: &p.body, attachments: &p.attachments, created_at_ms: p.created_at, pinned: false, direct: &[], arrival })
        })
        .collect();
    let Some((kind, rendered)) = composer.render_digest(world, who, home, &items, &ids, now) else {
        posts::discard_outbox(tx, id).await?;
        return Ok(());
    };
    posts::fill_outbox(tx, id, kind, &rendered).await?;
    store::inbound::index_message_id(tx, &message_id, home.id, Some(who.id), Some(id)).await?;
    Ok(())
}

/// Milliseconds from `now_ms` to the next `hour_utc`:00 UTC.
pub fn until_next_hour(now_ms: i64, hour_utc: u32) -> i64 {
    const DAY: i64 = 86_400_000;
    let since_midnight = now_ms.rem_euclid(DAY);
    let target = i64::from(hour_utc.min(23)) * 3_600_000;
    let wait = (target - since_midnight).rem_euclid(DAY);
    if wait == 0 { DAY } else { wait }
}

/// Long-lived task: send the digests every day at `hour_utc`, wake the outbox worker.
pub async fn run(store: Store, composer: std::sync::Arc<Composer>, hour_utc: u32, wake: std::sync::Arc<tokio::sync::Notify>, shutdown: CancellationToken) {
    loop {
        let wait = Duration::from_millis(until_next_hour(now_ms(), hour_utc) as u64);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match send_digests(&store, &composer).await {
            Ok(s) => {
                tracing::info!(messages = s.messages, posts = s.posts, dropped = s.dropped, "digests queued");
                wake.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "digests failed; retrying tomorrow"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::until_next_hour;

    #[test]
    fn next_hour_is_later_today_or_tomorrow() {
        let h = 3_600_000;
        assert_eq!(until_next_hour(5 * h, 7), 2 * h);
        assert_eq!(until_next_hour(8 * h, 7), 23 * h);
        assert_eq!(until_next_hour(7 * h, 7), 24 * h);
        assert_eq!(until_next_hour(86_400_000 * 3 + 6 * h + 30 * 60_000, 7), 30 * 60_000);
    }
}
