//! Quarantine items (SPEC §1, §3): held mail, released into a thread or rejected.

use super::{now_ms, Result, Store, StoreError};
use serde::Serialize;

/// One quarantine item with its mail's summary.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineRow {
    pub id: i64,
    pub inbound_id: i64,
    pub message_id: Option<String>,
    pub reason: String,
    pub reason_detail: String,
    pub candidate_thread: Option<i64>,
    pub state: String,
    pub created_at: i64,
    pub resolution: Option<String>,
}

type Row = (i64, i64, Option<String>, String, String, Option<i64>, String, i64, Option<String>);

const SELECT: &str = "SELECT q.id, q.inbound_id, m.message_id, q.reason, q.reason_detail, q.candidate_thread, q.state,
        q.created_at, q.resolution FROM quarantine q JOIN inbound_messages m ON m.id = q.inbound_id";

fn from_row(r: Row) -> QuarantineRow {
    QuarantineRow {
        id: r.0,
        inbound_id: r.1,
        message_id: r.2,
        reason: r.3,
        reason_detail: r.4,
        candidate_thread: r.5,
        state: r.6,
        created_at: r.7,
        resolution: r.8,
    }
}

impl Store {
    /// Items, held ones only unless `all`.
    pub async fn list_quarantine(&self, all: bool) -> Result<Vec<QuarantineRow>> {
        let filter = if all { "" } else { " WHERE q.state = 'held'" };
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT}{filter} ORDER BY q.id")))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    pub async fn quarantine_item(&self, id: i64) -> Result<QuarantineRow> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE q.id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(from_row).ok_or_else(|| StoreError::NotFound(format!("no quarantine item {id}")))
    }

    /// Reject a held item: it stays stored, it is never posted.
    pub async fn reject_quarantine(&self, id: i64, note: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        resolve(&mut tx, id, "rejected", note).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Mark a held item resolved; fails when it is not held.
pub(crate) async fn resolve(conn: &mut super::Conn, id: i64, state: &str, note: &str) -> Result<i64> {
    let inbound: Option<i64> = sqlx::query_scalar(
        "UPDATE quarantine SET state = $1, resolution = $2, resolved_at = $3 WHERE id = $4 AND state = 'held' RETURNING inbound_id",
    )
    .bind(state)
    .bind(note)
    .bind(now_ms())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let inbound = inbound.ok_or_else(|| StoreError::NotFound(format!("no held quarantine item {id}")))?;
    super::history::record(conn, &format!("quarantine-{state}"), None, None, Some(inbound), note).await?;
    Ok(inbound)
}
