//! Reading what rendering stored deliveries needs: the world around them, the posts they
//! name (with their attachments and whether they arrived encrypted), and each recipient's
//! earlier Message-IDs in the thread (In-Reply-To/References, SPEC §6.2).

use super::world::{load_world, WorldQuery};
use super::{Result, Store};
use crate::delivery::{Decided, Payload};
use crate::model::*;
use crate::outgoing::{RenderCtx, StoredPost};
use crate::view::Arrival;
use super::Conn;
use sqlx::AssertSqlSafe;
use std::collections::{BTreeSet, HashMap};

/// How many earlier Message-IDs a notification names in References.
const EARLIER: i64 = 20;

impl Store {
    /// Everything rendering `items` reads, in one snapshot.
    pub async fn render_context(&self, items: &[Decided], now_ms: i64) -> Result<RenderCtx> {
        let mut conn = self.pool.acquire().await?;
        let post_ids: BTreeSet<PostId> = items.iter().flat_map(named_posts).collect();
        let posts = load_posts(&mut conn, &post_ids).await?;
        let mut q = WorldQuery::default();
        q.thread_ids.extend(items.iter().filter_map(|i| i.thread));
        q.thread_ids.extend(posts.values().map(|p| p.thread));
        q.thread_ids.sort_unstable();
        q.thread_ids.dedup();
        q.emails.extend(items.iter().map(|i| i.rcpt.clone()));
        let world = load_world(&mut conn, &q).await?;
        let mut cases = HashMap::new();
        for case in items.iter().filter_map(|i| case_named(i, &world)) {
            if let std::collections::hash_map::Entry::Vacant(e) = cases.entry(case) {
                e.insert(super::status::case_record(&mut conn, case).await?);
            }
        }
        let mut earlier = HashMap::new();
        for i in items {
            if let (Some(thread), Some(contact)) = (i.thread, i.contact) {
                earlier.insert(i.id, earlier_message_ids(&mut conn, thread, contact, i.id).await?);
            }
        }
        Ok(RenderCtx { world, posts, earlier, cases, now_ms })
    }
}

/// The case whose dates and statuses an item shows: a summary's, a reminder's.
fn case_named(i: &Decided, world: &World) -> Option<CaseId> {
    match &i.payload {
        Payload::Summary { case, .. } => Some(*case),
        Payload::Reminder { .. } => i.thread.and_then(|t| world.thread(t)).and_then(|t| t.case),
        _ => None,
    }
}

/// The posts an item names: its own, or a digest's.
fn named_posts(i: &Decided) -> Vec<PostId> {
    match &i.payload {
        Payload::Digest { posts } | Payload::Summary { posts, .. } => posts.clone(),
        _ => i.post.into_iter().collect(),
    }
}

type PostRow = (i64, i64, Option<i64>, String, String, i64, Option<String>);

async fn load_posts(conn: &mut Conn, ids: &BTreeSet<PostId>) -> Result<HashMap<PostId, StoredPost>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let marks = super::placeholders(ids.len());
    let sql = format!("SELECT id, thread_id, author_id, source, body, created_at, protection FROM posts WHERE id IN ({marks})");
    // Only numbered placeholders are formatted in; the ids are bound.
    let q = ids.iter().fold(sqlx::query_as(AssertSqlSafe(sql)), |q, id| q.bind(*id));
    let rows: Vec<PostRow> = q.fetch_all(&mut *conn).await?;
    for (id, thread, author, source, body, created_at, protection) in rows {
        let source = PostSource::parse(&source).unwrap_or(PostSource::Email);
        let arrival = Arrival::of_record(protection.as_deref());
        out.insert(id, StoredPost { id, thread, author, source, body, attachments: Vec::new(), created_at, arrival });
    }
    let sql = format!("SELECT post_id, filename, content_type, bytes FROM attachments WHERE post_id IN ({marks}) ORDER BY id");
    let q = ids.iter().fold(sqlx::query_as(AssertSqlSafe(sql)), |q, id| q.bind(*id));
    let rows: Vec<(i64, String, String, Vec<u8>)> = q.fetch_all(&mut *conn).await?;
    for (post, filename, content_type, bytes) in rows {
        if let Some(p) = out.get_mut(&post) {
            p.attachments.push(Attachment { filename, content_type, bytes });
        }
    }
    Ok(out)
}

/// Message-IDs `contact` was sent in `thread` before outbox item `before`, oldest first.
async fn earlier_message_ids(conn: &mut Conn, thread: ThreadId, contact: ContactId, before: OutboxId) -> Result<Vec<String>> {
    let mut ids: Vec<String> = sqlx::query_scalar(
        "SELECT message_id FROM message_index WHERE thread_id = $1 AND contact_id = $2 AND outbox_id < $3
         ORDER BY created_at DESC, outbox_id DESC LIMIT $4",
    )
    .bind(thread)
    .bind(contact)
    .bind(before)
    .bind(EARLIER)
    .fetch_all(&mut *conn)
    .await?;
    ids.reverse();
    Ok(ids)
}
