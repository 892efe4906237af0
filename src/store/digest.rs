//! The digest queue: posts waiting for a contact's daily digest (notify mode `digest`).

use super::{Result, Store};
use crate::model::{Attachment, ContactId, PostId, PostSource, ThreadId};
use sqlx::SqliteConnection as Conn;

/// A queued post, with what the digest shows of it.
#[derive(Debug, Clone)]
pub struct QueuedPost {
    pub contact: ContactId,
    pub post: PostId,
    pub thread: ThreadId,
    pub author: Option<ContactId>,
    pub source: PostSource,
    pub body: String,
    pub created_at: i64,
    pub attachments: Vec<Attachment>,
    /// The post's protection record (JSON), if any.
    pub protection: Option<String>,
}

impl Store {
    /// Every post queued for a digest and not sent yet, by contact, oldest first.
    pub async fn queued_digest_posts(&self) -> Result<Vec<QueuedPost>> {
        type Row = (i64, i64, i64, Option<i64>, String, i64, String, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT q.contact_id, p.id, p.thread_id, p.author_id, p.body, p.created_at, p.source, p.protection
             FROM digest_queue q JOIN posts p ON p.id = q.post_id
             WHERE q.sent_at IS NULL ORDER BY q.contact_id, p.created_at, p.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut conn = self.pool.acquire().await?;
        for r in rows {
            let attachments = attachments_of(&mut conn, r.1).await?;
            let source = PostSource::parse(&r.6).unwrap_or(PostSource::Email);
            out.push(QueuedPost { contact: r.0, post: r.1, thread: r.2, author: r.3, source, body: r.4, created_at: r.5, attachments, protection: r.7 });
        }
        Ok(out)
    }
}

/// The attachments of a post, byte-exact.
pub(crate) async fn attachments_of(conn: &mut Conn, post: PostId) -> Result<Vec<Attachment>> {
    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT filename, content_type, bytes FROM attachments WHERE post_id = $1 ORDER BY id")
            .bind(post)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(|(filename, content_type, bytes)| Attachment { filename, content_type, bytes }).collect())
}

/// Mark queued posts as delivered in a digest (or dropped because the contact may no longer
/// read them).
pub(crate) async fn mark_sent(conn: &mut Conn, contact: ContactId, posts: &[PostId], now: i64) -> Result<()> {
    for p in posts {
        sqlx::query("UPDATE digest_queue SET sent_at = $1 WHERE contact_id = $2 AND post_id = $3")
            .bind(now)
            .bind(contact)
            .bind(p)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
