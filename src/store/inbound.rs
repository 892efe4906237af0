//! Inbound messages: stage 1 (raw bytes stored first), duplicate lookups, Message-ID index.

use super::{now_ms, Result, Store, StoreError};
use crate::model::{Decision, ThreadId};
use sha2::{Digest, Sha256};
use super::Conn;

/// What stage 1 found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// New bytes, stored under this id; this is the first attempt.
    Fresh(i64),
    /// The same bytes were stored before but never processed (a crash or a failure in
    /// between): process that row again. `failures` counts the attempts that ended without
    /// a decision (a panic, a process that died while holding it).
    Resume { id: i64, failures: i64 },
    /// The same bytes were processed already (a re-delivery after a crash before the source
    /// was acknowledged): nothing more to do.
    Done(i64),
    /// The same bytes are being processed right now by another attempt that is alive: wait
    /// for its decision.
    Busy(i64),
}

impl Stored {
    pub fn id(self) -> i64 {
        match self {
            Stored::Fresh(i) | Stored::Resume { id: i, .. } | Stored::Done(i) | Stored::Busy(i) => i,
        }
    }
    /// How many earlier attempts on this mail ended without a decision.
    pub fn failures(self) -> i64 {
        match self {
            Stored::Resume { failures, .. } => failures,
            _ => 0,
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
    /// Stage 1: store the raw bytes before anything else and commit. An attempt to process
    /// them starts, held by `attempt.holder` until `attempt.until`, unless another live
    /// attempt holds them ([`Stored::Busy`]). A previous holder whose work ended without a
    /// decision counts as a failed attempt.
    pub async fn store_raw(&self, raw: &[u8], message_id: Option<&str>, source: &str, source_ref: &str, attempt: &Attempt<'_>) -> Result<Stored> {
        let sha = sha256_hex(raw);
        let mut tx = self.begin_write().await?;
        let prior: Option<(i64, String, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT id, state, attempt_holder, attempt_until FROM inbound_messages WHERE sha256 = $1 ORDER BY id LIMIT 1",
        )
        .bind(&sha)
        .fetch_optional(&mut *tx)
        .await?;
        let stored = match prior {
            Some((id, state, _, _)) if state == "processed" => Stored::Done(id),
            Some((id, _, Some(holder), Some(until))) if until > attempt.now && !(attempt.holder_is_dead)(&holder) => Stored::Busy(id),
            Some((id, _, holder, _)) => {
                let failed = holder.map(|_| "the attempt ended without a decision (its process died)");
                Stored::Resume { id, failures: start_attempt(&mut tx, id, attempt, failed).await? }
            }
            None => Stored::Fresh(insert_raw(&mut tx, raw, &sha, message_id, source, source_ref, attempt).await?),
        };
        tx.commit().await?;
        Ok(stored)
    }

    /// A processing attempt failed (a panic); `error` is kept for the quarantine reason.
    /// Starts the next attempt and returns the failures so far (`None`: the mail was
    /// processed meanwhile).
    pub async fn retry_attempt(&self, id: i64, error: &str, attempt: &Attempt<'_>) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let failures = start_attempt(&mut tx, id, attempt, Some(error)).await;
        tx.commit().await?;
        match failures {
            Ok(f) => Ok(Some(f)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the stored mail has been processed (by whichever attempt).
    pub async fn is_processed(&self, id: i64) -> Result<bool> {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM inbound_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(state.as_deref() == Some("processed"))
    }

    /// An attempt ended for a reason that is not the mail's (a busy or unreachable
    /// database): the hold is released and nothing is counted.
    pub async fn release_attempt(&self, id: i64, holder: &str) -> Result<()> {
        sqlx::query(
            "UPDATE inbound_messages SET attempt_holder = NULL, attempt_until = NULL
              WHERE id = $1 AND state = 'received' AND attempt_holder = $2",
        )
        .bind(id)
        .bind(holder)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The failure recorded by the last attempt that did not finish.
    pub async fn last_error(&self, id: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT last_error FROM inbound_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .flatten())
    }

    /// Whether another processed inbound message is the same mail (stage 2), outside a
    /// transaction: for `route explain` and the early look of ingest. The decisive check
    /// runs inside the write transaction ([`duplicate_of`]).
    pub async fn is_duplicate(&self, message_id: Option<&str>, raw: &[u8], except: i64) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        Ok(duplicate_of(&mut conn, message_id, &sha256_hex(raw), except).await?.is_some())
    }

    /// The thread a Message-ID belongs to (one we sent, or a posted inbound mail).
    pub async fn thread_of_message_id(&self, message_id: &str) -> Result<Option<ThreadId>> {
        Ok(sqlx::query_scalar("SELECT thread_id FROM message_index WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The threads of those of `message_ids` we know (sent or posted), in one query.
    pub async fn threads_of_message_ids(&self, message_ids: &[&str]) -> Result<Vec<(String, ThreadId)>> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=message_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT message_id, thread_id FROM message_index WHERE message_id IN ({})", marks.join(", "));
        // Only numbered placeholders are formatted in; the ids are bound.
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for m in message_ids {
            q = q.bind(*m);
        }
        Ok(q.fetch_all(&self.pool).await?)
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

/// Who starts a processing attempt, when, and for how long it holds the stored mail.
pub struct Attempt<'a> {
    pub holder: &'a str,
    pub now: i64,
    pub until: i64,
    /// Whether another holder is certainly gone (its attempt ended with its process).
    pub holder_is_dead: &'a (dyn Fn(&str) -> bool + Sync),
}

async fn insert_raw(conn: &mut Conn, raw: &[u8], sha: &str, message_id: Option<&str>, source: &str, source_ref: &str, a: &Attempt<'_>) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO inbound_messages (raw, size, sha256, message_id, source, source_ref, received_at, attempt_holder, attempt_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(raw)
    .bind(raw.len() as i64)
    .bind(sha)
    .bind(message_id)
    .bind(source)
    .bind(source_ref)
    .bind(a.now)
    .bind(a.holder)
    .bind(a.until)
    .fetch_one(&mut *conn)
    .await?)
}

/// Makes `a` the holder of a stored mail still `received`. `failed`: the previous attempt
/// ended without a decision, for this reason (kept unless a more precise one is recorded);
/// it is counted. Returns the failures so far; `NotFound` when the mail is processed.
async fn start_attempt(conn: &mut Conn, id: i64, a: &Attempt<'_>, failed: Option<&str>) -> Result<i64> {
    sqlx::query_scalar(
        "UPDATE inbound_messages SET attempts = attempts + $1, attempt_holder = $2, attempt_until = $3,
                last_error = CASE WHEN $1 = 1 THEN COALESCE($4, last_error) ELSE last_error END
          WHERE id = $5 AND state = 'received' RETURNING attempts",
    )
    .bind(i64::from(failed.is_some()))
    .bind(a.holder)
    .bind(a.until)
    .bind(failed)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("inbound message {id} is processed")))
}

/// SPEC §3 stage 2, the one rule: the mail is a duplicate when another processed inbound
/// message has the same Message-ID, or, for mail without one, the same bytes.
pub(crate) async fn duplicate_of(conn: &mut Conn, message_id: Option<&str>, sha256: &str, except: i64) -> Result<Option<i64>> {
    let sql = match message_id {
        Some(_) => "SELECT id FROM inbound_messages WHERE message_id = $1 AND state = 'processed' AND id <> $2 ORDER BY id LIMIT 1",
        None => "SELECT id FROM inbound_messages WHERE sha256 = $1 AND state = 'processed' AND id <> $2 ORDER BY id LIMIT 1",
    };
    Ok(sqlx::query_scalar(sql).bind(message_id.unwrap_or(sha256)).bind(except).fetch_optional(&mut *conn).await?)
}

/// Stage 8, first statement of the transaction: take the mail from `received` to
/// `processed`. `false` means another process finished it first: the caller rolls back.
/// (The row stays locked by this transaction until it commits.)
pub(crate) async fn claim(conn: &mut Conn, id: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE inbound_messages SET state = 'processed', processed_at = $1 WHERE id = $2 AND state = 'received'")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Stage 8: record the decision of a claimed inbound message.
pub(crate) async fn record_decision(conn: &mut Conn, id: i64, d: &Decision, thread: Option<ThreadId>) -> Result<()> {
    sqlx::query("UPDATE inbound_messages SET action = $1, reason = $2, reason_detail = $3, thread_id = $4 WHERE id = $5")
        .bind(d.action.code())
        .bind(d.reason.code())
        .bind(d.reason.to_string())
        .bind(thread)
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
