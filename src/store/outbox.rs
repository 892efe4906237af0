//! The outbox (SPEC §7): claiming due items for sending, recording each outcome with a
//! history row, and listing or re-queueing items for operators.
//!
//! States: `pending` → `sending` (claimed under a lease, by an instance) → `sent` |
//! `pending` (retry) | `failed` (permanent) | `dead` (gave up). The holder renews its
//! claims while it sends; a claim whose lease ran out can be claimed again, and the claims
//! of a holder that is certainly gone are put back at once ([`Store::reclaim_outbox`]), so
//! delivery is at-least-once with a stable Message-ID (§7.3).

use super::{Engine, Result, Store, StoreError};
use crate::delivery::{content_from, Decided, Payload};
use crate::model::{OutboxKind, OutboxState};
use crate::render::Rendered;
use serde::Serialize;

/// A claimed item: everything a transport needs, plus what the history row needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxItem {
    pub id: i64,
    pub kind: String,
    pub rcpt: String,
    pub envelope_from: String,
    pub message_id: String,
    pub bytes: Vec<u8>,
    pub attempts: i64,
    pub created_at: i64,
    pub thread_id: Option<i64>,
    pub post_id: Option<i64>,
    pub report_id: Option<i64>,
    pub contact_id: Option<i64>,
    /// The content decision: `full` or `notice`.
    pub content: String,
    pub payload: Option<String>,
}

impl OutboxItem {
    /// Whether the item still has to be rendered (stored as a decision, not as bytes).
    pub fn needs_rendering(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The stored decision, for rendering; `None` for an unknown kind.
    pub fn decided(&self) -> Option<Decided> {
        Some(Decided {
            id: self.id,
            kind: OutboxKind::parse(&self.kind)?,
            contact: self.contact_id,
            rcpt: self.rcpt.clone(),
            thread: self.thread_id,
            post: self.post_id,
            report: self.report_id,
            content: content_from(&self.content),
            payload: Payload::from_column(self.payload.as_deref()),
            message_id: self.message_id.clone(),
            created_at: self.created_at,
        })
    }
}

/// One item as `outbox list` shows it (without the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub rcpt: String,
    pub message_id: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_reply: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub thread_id: Option<i64>,
    pub post_id: Option<i64>,
}

/// History kinds written by the outbox.
pub const HISTORY_SENT: &str = "sent";
pub const HISTORY_RETRY: &str = "send-retry";
pub const HISTORY_FAILED: &str = "send-failed";
pub const HISTORY_DEAD: &str = "send-dead";
pub const HISTORY_REQUEUED: &str = "send-requeued";
pub const HISTORY_RECLAIMED: &str = "send-reclaimed";
pub const HISTORY_DROPPED: &str = "send-dropped";

/// The claim statement of each engine. SQLite serializes writers, so one statement gives
/// two processes disjoint sets. PostgreSQL: rows another instance is claiming right now are
/// locked by its statement and passed over (`FOR UPDATE SKIP LOCKED`), so instances neither
/// wait for each other nor claim the same item (SPEC §9).
const CLAIM_SQL_SQLITE: &str =
    "UPDATE outbox SET state = 'sending', claimed_until = $1 + $3, claimed_by = $4, updated_at = $1
     WHERE id IN (
         SELECT id FROM outbox
          WHERE (state = 'pending' AND next_attempt_at <= $1)
             OR (state = 'sending' AND claimed_until < $1)
          ORDER BY next_attempt_at, id
          LIMIT $2)
     RETURNING id, kind, rcpt, envelope_from, message_id, bytes, attempts, created_at,
               thread_id, post_id, report_id, contact_id, content, payload";
const CLAIM_SQL_POSTGRES: &str =
    "UPDATE outbox SET state = 'sending', claimed_until = $1 + $3, claimed_by = $4, updated_at = $1
     WHERE id IN (
         SELECT id FROM outbox
          WHERE (state = 'pending' AND next_attempt_at <= $1)
             OR (state = 'sending' AND claimed_until < $1)
          ORDER BY next_attempt_at, id
          LIMIT $2
          FOR UPDATE SKIP LOCKED)
     RETURNING id, kind, rcpt, envelope_from, message_id, bytes, attempts, created_at,
               thread_id, post_id, report_id, contact_id, content, payload";

/// The history row of an outbox state change; the case comes from the item's thread.
const HISTORY_SQL: &str =
    "INSERT INTO history (at, kind, case_id, thread_id, post_id, outbox_id, detail)
     SELECT $1, $2, t.case_id, o.thread_id, o.post_id, o.id, $3
       FROM outbox o LEFT JOIN threads t ON t.id = o.thread_id
      WHERE o.id = $4";

impl Store {
    /// Atomically move up to `limit` due items (pending and due, or sending with an expired
    /// lease) to `sending`, claimed by `holder` until `now + lease_ms`, and return them by id.
    ///
    /// One statement, so one write transaction: two processes calling this at once get
    /// disjoint sets (see the claim statements).
    pub async fn claim_due_outbox(
        &self,
        now_ms: i64,
        limit: i64,
        lease_ms: i64,
        holder: &str,
    ) -> Result<Vec<OutboxItem>> {
        let sql = match self.engine {
            Engine::Sqlite => CLAIM_SQL_SQLITE,
            Engine::Postgres => CLAIM_SQL_POSTGRES,
        };
        let mut items: Vec<OutboxItem> = sqlx::query_as(sql)
            .bind(now_ms)
            .bind(limit)
            .bind(lease_ms)
            .bind(holder)
            .fetch_all(&self.pool)
            .await?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    /// Extend every claim `holder` has until `now + lease_ms` (it is still sending them);
    /// how many.
    pub async fn renew_outbox_claims(
        &self,
        holder: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE outbox SET claimed_until = $1 + $2 WHERE state = 'sending' AND claimed_by = $3",
        )
        .bind(now_ms)
        .bind(lease_ms)
        .bind(holder)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The holders of the items being sent now.
    pub async fn outbox_claim_holders(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT DISTINCT claimed_by FROM outbox WHERE state = 'sending' AND claimed_by IS NOT NULL")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Put the items `holder` claimed back to `pending`, due at once and ahead of later mail
    /// (they keep their due time), with a history row each: its process is gone, so nothing
    /// is sending them. They may have reached the
    /// server just before (a duplicate, with the same Message-ID: SPEC §7.3). How many.
    pub async fn reclaim_outbox(&self, holder: &str, now_ms: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO history (at, kind, case_id, thread_id, post_id, outbox_id, detail)
             SELECT $1, $2, t.case_id, o.thread_id, o.post_id, o.id, $3
               FROM outbox o LEFT JOIN threads t ON t.id = o.thread_id
              WHERE o.state = 'sending' AND o.claimed_by = $4",
        )
        .bind(now_ms)
        .bind(HISTORY_RECLAIMED)
        .bind(format!("claimed by {holder}, which is gone; sending again"))
        .bind(holder)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "UPDATE outbox SET state = 'pending', claimed_until = NULL, claimed_by = NULL,
                    next_attempt_at = CASE WHEN next_attempt_at < $1 THEN next_attempt_at ELSE $1 END, updated_at = $1
              WHERE state = 'sending' AND claimed_by = $2",
        )
        .bind(now_ms)
        .bind(holder)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// The message was accepted. Recorded from any state but `sent`: the bytes went out
    /// even if the lease ran out meanwhile and the item was claimed or re-queued again.
    pub async fn mark_outbox_sent(&self, id: i64, reply: &str, now_ms: i64) -> Result<()> {
        let sql = "UPDATE outbox SET state = 'sent', claimed_until = NULL, claimed_by = NULL, last_reply = $1,
                          attempts = attempts + 1, updated_at = $2
                    WHERE id = $3 AND state <> 'sent'";
        self.transition(id, sql, (reply, now_ms, None), HISTORY_SENT)
            .await
    }

    /// Keep the bytes rendered for claimed items before they are sent (a resend after a
    /// crash sends the same bytes, SPEC §7.3) and the kind each goes out as (a withheld
    /// notification as a `notice`). One transaction for the batch.
    pub async fn store_rendered(&self, rendered: &[(i64, OutboxKind, &Rendered)]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for (id, kind, r) in rendered {
            sqlx::query("UPDATE outbox SET kind = $1, envelope_from = $2, bytes = $3 WHERE id = $4 AND state = 'sending'")
                .bind(kind.as_str())
                .bind(&r.envelope_from)
                .bind(&r.bytes)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A claimed item that must not be sent any more (its recipient may no longer read
    /// what it names, or what it names is gone): `failed`, with the reason in the history.
    pub async fn mark_outbox_dropped(&self, id: i64, why: &str, now_ms: i64) -> Result<()> {
        let sql = "UPDATE outbox SET state = 'failed', claimed_until = NULL, claimed_by = NULL, last_reply = $1,
                          updated_at = $2
                    WHERE id = $3 AND state = 'sending'";
        self.transition(id, sql, (why, now_ms, None), HISTORY_DROPPED)
            .await
    }

    /// A transient failure: back to `pending`, due at `next_attempt_ms`, one more attempt.
    pub async fn mark_outbox_retry(
        &self,
        id: i64,
        reply: &str,
        next_attempt_ms: i64,
        now_ms: i64,
    ) -> Result<()> {
        let sql = "UPDATE outbox SET state = 'pending', claimed_until = NULL, claimed_by = NULL, last_reply = $1,
                          attempts = attempts + 1, updated_at = $2, next_attempt_at = $4
                    WHERE id = $3 AND state = 'sending'";
        self.transition(
            id,
            sql,
            (reply, now_ms, Some(next_attempt_ms)),
            HISTORY_RETRY,
        )
        .await
    }

    /// A permanent failure: `failed` at once, recorded in the case history.
    pub async fn mark_outbox_failed(&self, id: i64, reply: &str, now_ms: i64) -> Result<()> {
        let sql = "UPDATE outbox SET state = 'failed', claimed_until = NULL, claimed_by = NULL, last_reply = $1,
                          attempts = attempts + 1, updated_at = $2
                    WHERE id = $3 AND state = 'sending'";
        self.transition(id, sql, (reply, now_ms, None), HISTORY_FAILED)
            .await?;
        // SPEC §7.5: counts towards marking the recipient bouncing.
        self.note_permanent_failure(id, now_ms).await?;
        Ok(())
    }

    /// Transient failures for too long: `dead`, recorded in the case history.
    pub async fn mark_outbox_dead(&self, id: i64, reply: &str, now_ms: i64) -> Result<()> {
        let sql = "UPDATE outbox SET state = 'dead', claimed_until = NULL, claimed_by = NULL, last_reply = $1,
                          attempts = attempts + 1, updated_at = $2
                    WHERE id = $3 AND state = 'sending'";
        self.transition(id, sql, (reply, now_ms, None), HISTORY_DEAD)
            .await
    }

    /// Run one state-changing `UPDATE` (binding `$1` reply, `$2` now, `$3` id and `$4` when
    /// given) and, when it changed the row, write the history row in the same transaction.
    /// An item no longer in the expected state is left alone without error.
    async fn transition(
        &self,
        id: i64,
        update_sql: &'static str,
        (reply, now_ms, extra): (&str, i64, Option<i64>),
        history_kind: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let mut update = sqlx::query(update_sql).bind(reply).bind(now_ms).bind(id);
        if let Some(v) = extra {
            update = update.bind(v);
        }
        let changed = update.execute(&mut *tx).await?.rows_affected();
        if changed > 0 {
            sqlx::query(HISTORY_SQL)
                .bind(now_ms)
                .bind(history_kind)
                .bind(reply)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Items, newest first, optionally only those in `state`.
    pub async fn list_outbox(&self, state: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>> {
        let state = match state {
            Some(s) => Some(OutboxState::parse(s).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "unknown outbox state {s:?} (one of {})",
                    OutboxState::choices()
                ))
            })?),
            None => None,
        };
        let rows = sqlx::query_as(
            "SELECT id, kind, rcpt, message_id, state, attempts, next_attempt_at, last_reply,
                    created_at, updated_at, thread_id, post_id
               FROM outbox WHERE $1 IS NULL OR state = $1
              ORDER BY id DESC LIMIT $2",
        )
        .bind(state.map(OutboxState::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Make a `failed`, `dead` or `pending` item pending and due now. `Ok(false)` when no
    /// such item exists; an error for a `sent` item or one being sent.
    pub async fn retry_outbox(&self, id: i64, now_ms: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE outbox SET state = 'pending', next_attempt_at = $1, claimed_until = NULL, claimed_by = NULL,
                    updated_at = $1
              WHERE id = $2 AND state IN ('failed', 'dead', 'pending')",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM outbox WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            return match state {
                None => Ok(false),
                Some(s) => Err(StoreError::Invalid(format!("outbox item {id} is {s}"))),
            };
        }
        sqlx::query(HISTORY_SQL)
            .bind(now_ms)
            .bind(HISTORY_REQUEUED)
            .bind("re-queued by an operator")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Queue a message rendered elsewhere, due now (for tests of the sending side).
    #[cfg(test)]
    pub(crate) async fn queue_rendered(&self, rcpt: &str, envelope_from: &str, message_id: &str, bytes: &[u8]) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO outbox (kind, rcpt, envelope_from, message_id, bytes, next_attempt_at, created_at, updated_at)
             VALUES ('notice', $1, $2, $3, $4, 0, 0, 0) RETURNING id",
        )
        .bind(rcpt)
        .bind(envelope_from)
        .bind(message_id)
        .bind(bytes)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Every item's (recipient, envelope sender, bytes) as rendered so far.
    pub async fn outbox_messages(&self) -> Result<Vec<(String, String, Vec<u8>)>> {
        Ok(sqlx::query_as("SELECT rcpt, envelope_from, bytes FROM outbox ORDER BY id").fetch_all(&self.pool).await?)
    }

    /// Remove every outbox item (`casegate bench`, which measures on its own database).
    pub(crate) async fn purge_outbox(&self) -> Result<()> {
        sqlx::query("DELETE FROM outbox").execute(&self.pool).await?;
        Ok(())
    }

    /// Items still to be delivered: `pending` plus `sending`.
    pub async fn outbox_depth(&self) -> Result<i64> {
        let n =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')")
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        Store::open(&url).await.unwrap()
    }

    /// A case with a discussion thread; returns the thread id.
    async fn thread(s: &Store) -> i64 {
        sqlx::query(
            "INSERT INTO cases (id, public_id, title, created_at) VALUES (7, 'VU#1', 't', 0)",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO threads (id, kind, case_id, created_at) VALUES (3, 'discussion', 7, 0)",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        3
    }

    async fn item(s: &Store, thread: Option<i64>, due: i64) -> i64 {
        sqlx::query_scalar(
            "INSERT INTO outbox (kind, thread_id, post_id, rcpt, envelope_from, message_id, bytes,
                                 next_attempt_at, created_at, updated_at)
             VALUES ('notification', $1, 11, 'a@x.example', 'b@gw.example', '<m@gw>', $2, $3, 0, 0)
             RETURNING id",
        )
        .bind(thread)
        .bind(b"bytes".to_vec())
        .bind(due)
        .fetch_one(&s.pool)
        .await
        .unwrap()
    }

    async fn history(s: &Store, id: i64) -> Vec<(String, Option<i64>, Option<i64>, String)> {
        sqlx::query_as(
            "SELECT kind, case_id, thread_id, detail FROM history WHERE outbox_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&s.pool)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn claims_only_due_items_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let a = item(&s, None, 100).await;
        let _later = item(&s, None, 500).await;
        let claimed = s.claim_due_outbox(200, 10, 1000, "h1").await.unwrap();
        assert_eq!(claimed.iter().map(|i| i.id).collect::<Vec<_>>(), vec![a]);
        assert_eq!(claimed[0].bytes, b"bytes");
        assert_eq!(claimed[0].post_id, Some(11));
        assert!(s
            .claim_due_outbox(300, 10, 1000, "h1")
            .await
            .unwrap()
            .is_empty());
        assert_eq!(s.outbox_depth().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn expired_lease_is_claimed_again() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let a = item(&s, None, 0).await;
        assert_eq!(
            s.claim_due_outbox(10, 10, 1000, "h1").await.unwrap().len(),
            1
        );
        assert!(s
            .claim_due_outbox(1010, 10, 1000, "h1")
            .await
            .unwrap()
            .is_empty());
        let again = s.claim_due_outbox(1011, 10, 1000, "h1").await.unwrap();
        assert_eq!(again.iter().map(|i| i.id).collect::<Vec<_>>(), vec![a]);
    }

    #[tokio::test]
    async fn concurrent_claims_are_disjoint() {
        let dir = tempfile::tempdir().unwrap();
        let s1 = store(&dir).await;
        let s2 = store(&dir).await;
        for _ in 0..40 {
            item(&s1, None, 0).await;
        }
        let claim = |s: Store| async move {
            let mut got = Vec::new();
            loop {
                let batch = s.claim_due_outbox(10, 3, 60_000, "h1").await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|i| i.id));
            }
        };
        let (h1, h2) = (tokio::spawn(claim(s1)), tokio::spawn(claim(s2)));
        let (mut a, b) = (h1.await.unwrap(), h2.await.unwrap());
        let total = a.len() + b.len();
        a.extend(b);
        a.sort();
        a.dedup();
        assert_eq!((total, a.len()), (40, 40));
    }

    #[tokio::test]
    async fn outcomes_write_history_with_the_case() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let t = thread(&s).await;
        let a = item(&s, Some(t), 0).await;
        s.claim_due_outbox(10, 10, 1000, "h1").await.unwrap();
        s.mark_outbox_retry(a, "451 try later", 5000, 20)
            .await
            .unwrap();
        let row = &s.list_outbox(None, 10).await.unwrap()[0];
        assert_eq!(
            (row.state.as_str(), row.attempts, row.next_attempt_at),
            ("pending", 1, 5000)
        );
        assert_eq!(row.last_reply.as_deref(), Some("451 try later"));
        s.claim_due_outbox(5000, 10, 1000, "h1").await.unwrap();
        s.mark_outbox_failed(a, "550 no such user", 5001)
            .await
            .unwrap();
        let h = history(&s, a).await;
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[0],
            (
                "send-retry".into(),
                Some(7),
                Some(t),
                "451 try later".into()
            )
        );
        assert_eq!(
            h[1],
            (
                "send-failed".into(),
                Some(7),
                Some(t),
                "550 no such user".into()
            )
        );
        let failed = s.list_outbox(Some("failed"), 10).await.unwrap();
        assert_eq!((failed.len(), failed[0].attempts), (1, 2));
        assert_eq!(s.outbox_depth().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn late_outcomes_do_not_undo_a_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let a = item(&s, None, 0).await;
        s.claim_due_outbox(10, 10, 1000, "h1").await.unwrap();
        s.mark_outbox_sent(a, "250 ok", 20).await.unwrap();
        s.mark_outbox_sent(a, "250 ok", 21).await.unwrap();
        s.mark_outbox_dead(a, "451 late", 22).await.unwrap();
        let row = &s.list_outbox(None, 10).await.unwrap()[0];
        assert_eq!((row.state.as_str(), row.attempts), ("sent", 1));
        let kinds: Vec<String> = history(&s, a).await.into_iter().map(|h| h.0).collect();
        assert_eq!(kinds, vec!["sent"]);
    }

    #[tokio::test]
    async fn retry_requeues_failed_and_refuses_sent() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let a = item(&s, None, 0).await;
        let b = item(&s, None, 0).await;
        s.claim_due_outbox(10, 10, 1000, "h1").await.unwrap();
        s.mark_outbox_dead(a, "451 gave up", 20).await.unwrap();
        s.mark_outbox_sent(b, "250 ok", 20).await.unwrap();
        assert!(s.retry_outbox(a, 30).await.unwrap());
        assert!(!s.retry_outbox(999, 30).await.unwrap());
        assert!(matches!(
            s.retry_outbox(b, 30).await,
            Err(StoreError::Invalid(_))
        ));
        let due = s.claim_due_outbox(30, 10, 1000, "h1").await.unwrap();
        assert_eq!(due.iter().map(|i| i.id).collect::<Vec<_>>(), vec![a]);
        let kinds: Vec<String> = history(&s, a).await.into_iter().map(|h| h.0).collect();
        assert_eq!(kinds, vec!["send-dead", "send-requeued"]);
    }

    #[tokio::test]
    async fn claims_name_their_holder_and_are_renewed_and_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let t = thread(&s).await;
        let (a, b) = (item(&s, Some(t), 0).await, item(&s, None, 0).await);
        assert_eq!(
            s.claim_due_outbox(10, 1, 1000, "h1").await.unwrap()[0].id,
            a
        );
        assert_eq!(
            s.claim_due_outbox(10, 1, 1000, "h2").await.unwrap()[0].id,
            b
        );
        let mut holders = s.outbox_claim_holders().await.unwrap();
        holders.sort();
        assert_eq!(holders, vec!["h1", "h2"]);
        assert_eq!(s.renew_outbox_claims("h1", 900, 1000).await.unwrap(), 1);
        let expired = s.claim_due_outbox(1500, 10, 1000, "h3").await.unwrap();
        assert_eq!(
            expired.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![b],
            "h2's lease ran out, h1 renewed its claim"
        );
        assert_eq!(s.reclaim_outbox("h1", 1600).await.unwrap(), 1);
        let again = s.claim_due_outbox(1600, 10, 1000, "h3").await.unwrap();
        assert_eq!(
            again.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
            vec![(a, 0)],
            "due at once, not an attempt"
        );
        assert_eq!(
            s.reclaim_outbox("h1", 1700).await.unwrap(),
            0,
            "h3 holds it now"
        );
        s.mark_outbox_sent(a, "250 ok", 1800).await.unwrap();
        assert_eq!(
            s.outbox_claim_holders().await.unwrap(),
            vec!["h3"],
            "b is still being sent"
        );
        let kinds: Vec<(String, String)> = history(&s, a)
            .await
            .into_iter()
            .map(|h| (h.0, h.3))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (
                    "send-reclaimed".into(),
                    "claimed by h1, which is gone; sending again".into()
                ),
                ("sent".into(), "250 ok".into())
            ]
        );
    }

    #[tokio::test]
    async fn list_rejects_unknown_state() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        assert!(matches!(
            s.list_outbox(Some("bogus"), 10).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(s.list_outbox(Some("PENDING"), 10).await.unwrap().is_empty());
    }
}
