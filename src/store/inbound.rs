//! Inbound messages: stage 1 (raw bytes stored first), duplicate lookups, Message-ID index.

use super::{now_ms, Result, Store};
use crate::model::{Decision, ThreadId};
use sha2::{Digest, Sha256};
use sqlx::SqliteConnection as Conn;

/// What stage 1 found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// New bytes, stored under this id.
    Fresh(i64),
    /// The same bytes were stored before but never processed (a crash in between): process
    /// that row again.
    Resume(i64),
    /// The same bytes were processed already (a re-delivery after a crash before the source
    /// was acknowledged): nothing more to do.
    Done(i64),
}

impl Stored {
    pub fn id(self) -> i64 {
        match self {
            Stored::Fresh(i) | Stored::Resume(i) | Stored::Done(i) => i,
        }
    }
}

pub fn sha256_hex(raw: &[u8]) -> String {
    hex::encode(Sha256::digest(raw))
}

/// One row of `quarantine list` / an inbound message summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InboundRow {
    pub id: i64,
    pub message_id: Option<String>,
    pub source: String,
    pub source_ref: String,
    pub received_at: i64,
    pub state: String,
    pub action: Option<String>,
    pub reason: Option<String>,
    pub reason_detail: Option<String>,
    pub thread_id: Option<i64>,
}

impl Store {
    /// Stage 1: store the raw bytes before anything else and commit.
    pub async fn store_raw(&self, raw: &[u8], message_id: Option<&str>, source: &str, source_ref: &str) -> Result<Stored> {
        let sha = sha256_hex(raw);
        let mut tx = self.begin_write().await?;
        let prior: Option<(i64, String)> =
            sqlx::query_as("SELECT id, state FROM inbound_messages WHERE sha256 = $1 ORDER BY id LIMIT 1")
                .bind(&sha)
                .fetch_optional(&mut *tx)
                .await?;
        let stored = match prior {
            Some((id, state)) if state == "processed" => Stored::Done(id),
            Some((id, _)) => Stored::Resume(id),
            None => Stored::Fresh(
                sqlx::query_scalar(
                    "INSERT INTO inbound_messages (raw, size, sha256, message_id, source, source_ref, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(raw)
                .bind(raw.len() as i64)
                .bind(&sha)
                .bind(message_id)
                .bind(source)
                .bind(source_ref)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?,
            ),
        };
        tx.commit().await?;
        Ok(stored)
    }

    /// Whether another processed inbound message has this Message-ID (stage 2).
    pub async fn seen_message_id(&self, message_id: &str, except: i64) -> Result<bool> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM inbound_messages WHERE message_id = $1 AND state = 'processed' AND id <> $2 LIMIT 1",
        )
        .bind(message_id)
        .bind(except)
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.is_some())
    }

    /// Whether another processed inbound message has these exact bytes (stage 2, for mail
    /// without a Message-ID).
    pub async fn seen_sha256(&self, raw: &[u8], except: i64) -> Result<bool> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM inbound_messages WHERE sha256 = $1 AND state = 'processed' AND id <> $2 LIMIT 1",
        )
        .bind(sha256_hex(raw))
        .bind(except)
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.is_some())
    }

    /// The thread a Message-ID belongs to (one we sent, or a posted inbound mail).
    pub async fn thread_of_message_id(&self, message_id: &str) -> Result<Option<ThreadId>> {
        Ok(sqlx::query_scalar("SELECT thread_id FROM message_index WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The raw bytes of an inbound message.
    pub async fn inbound_raw(&self, id: i64) -> Result<Vec<u8>> {
        Ok(sqlx::query_scalar("SELECT raw FROM inbound_messages WHERE id = $1").bind(id).fetch_one(&self.pool).await?)
    }

    /// Inbound messages never processed (stored, then a crash): re-run them at start-up.
    pub async fn unprocessed_inbound(&self) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar("SELECT id FROM inbound_messages WHERE state = 'received' ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn inbound_row(&self, id: i64) -> Result<InboundRow> {
        let r: (i64, Option<String>, String, String, i64, String, Option<String>, Option<String>, Option<String>, Option<i64>) =
            sqlx::query_as(
                "SELECT id, message_id, source, source_ref, received_at, state, action, reason, reason_detail, thread_id
                 FROM inbound_messages WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(InboundRow {
            id: r.0,
            message_id: r.1,
            source: r.2,
            source_ref: r.3,
            received_at: r.4,
            state: r.5,
            action: r.6,
            reason: r.7,
            reason_detail: r.8,
            thread_id: r.9,
        })
    }

    /// Count inbound rows by state (for tests and metrics).
    pub async fn count_inbound(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM inbound_messages").fetch_one(&self.pool).await?)
    }
}

/// Stage 8: mark the inbound message processed with its decision.
pub(crate) async fn mark_processed(conn: &mut Conn, id: i64, d: &Decision, thread: Option<ThreadId>) -> Result<()> {
    sqlx::query(
        "UPDATE inbound_messages SET state = 'processed', action = $1, reason = $2, reason_detail = $3,
         thread_id = $4, processed_at = $5 WHERE id = $6",
    )
    .bind(d.action.code())
    .bind(d.reason.code())
    .bind(d.reason.to_string())
    .bind(thread)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Index a Message-ID under a thread; an id indexed already keeps its first thread.
pub(crate) async fn index_message_id(
    conn: &mut Conn,
    message_id: &str,
    thread: ThreadId,
    contact: Option<i64>,
    outbox: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO message_index (message_id, thread_id, contact_id, outbox_id, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(message_id)
    .bind(thread)
    .bind(contact)
    .bind(outbox)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
