//! The append-only history (SPEC §1): every ingest, decision, post, status change, send
//! and bounce.

use super::{now_ms, Result, Store};
use super::Conn;

/// One history event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryRow {
    pub at: i64,
    pub kind: String,
    pub thread_id: Option<i64>,
    pub inbound_id: Option<i64>,
    pub post_id: Option<i64>,
    pub outbox_id: Option<i64>,
    pub detail: String,
}

/// Append an event.
pub(crate) async fn record(
    conn: &mut Conn,
    kind: &str,
    case: Option<i64>,
    thread: Option<i64>,
    inbound: Option<i64>,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO history (at, kind, case_id, thread_id, inbound_id, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now_ms())
    .bind(kind)
    .bind(case)
    .bind(thread)
    .bind(inbound)
    .bind(detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// The history of a case, oldest first.
    pub async fn case_history(&self, case: i64) -> Result<Vec<HistoryRow>> {
        let rows: Vec<(i64, String, Option<i64>, Option<i64>, Option<i64>, Option<i64>, String)> = sqlx::query_as(
            "SELECT at, kind, thread_id, inbound_id, post_id, outbox_id, detail FROM history WHERE case_id = $1 ORDER BY id",
        )
        .bind(case)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| HistoryRow { at: r.0, kind: r.1, thread_id: r.2, inbound_id: r.3, post_id: r.4, outbox_id: r.5, detail: r.6 })
            .collect())
    }
}
