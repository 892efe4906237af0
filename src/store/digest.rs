//! The digest queue: posts waiting for a contact's daily digest (notify mode `digest`).

use super::{Result, Store};
use crate::delivery::{NewDelivery, Payload};
use crate::model::{ContactId, PostId, ThreadId};
use crate::view::Arrival;
use super::Conn;

/// A queued post: who waits for it, and where it was written.
#[derive(Debug, Clone)]
pub struct QueuedPost {
    pub contact: ContactId,
    pub post: PostId,
    pub thread: ThreadId,
    /// How the post arrived (an unreadable protection record counts as encrypted).
    pub arrival: Arrival,
}

/// One digest message decided for a contact: the thread replies go to, and its delivery.
#[derive(Debug, Clone)]
pub struct DigestMessage {
    pub home: ThreadId,
    pub delivery: NewDelivery,
}

impl Store {
    /// Every post queued for a digest and not sent yet, by contact, oldest first.
    pub async fn queued_digest_posts(&self) -> Result<Vec<QueuedPost>> {
        let rows: Vec<(i64, i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT q.contact_id, p.id, p.thread_id, p.protection
             FROM digest_queue q JOIN posts p ON p.id = q.post_id
             WHERE q.sent_at IS NULL ORDER BY q.contact_id, p.created_at, p.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(contact, post, thread, protection)| QueuedPost {
                contact,
                post,
                thread,
                arrival: Arrival::of_record(protection.as_deref()),
            })
            .collect())
    }

    /// A contact's digests as decided: one delivery per message, and every post it carries
    /// (and every post dropped because the contact may no longer read it) marked digested,
    /// in one transaction.
    pub async fn record_digests(&self, contact: ContactId, messages: &[DigestMessage], dropped: &[PostId], now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for m in messages {
            let target = super::posts::Target { post: None, report: None, thread: Some(m.home) };
            super::posts::insert_deliveries(&mut tx, target, std::slice::from_ref(&m.delivery), now).await?;
            if let Payload::Digest { posts } = &m.delivery.payload {
                mark_sent(&mut tx, contact, posts, now).await?;
            }
        }
        mark_sent(&mut tx, contact, dropped, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Mark queued posts as delivered in a digest (or dropped because the contact may no longer
/// read them).
async fn mark_sent(conn: &mut Conn, contact: ContactId, posts: &[PostId], now: i64) -> Result<()> {
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
