//! Vendor statuses (SPEC §1, §8): the current status of each vendor organization in a case,
//! every update as it was given (who, when, from which mail), and the case facts a summary
//! shows. Also the queueing of a requested case summary, rate-limited per contact.

use super::Conn;
use super::{history, Result, Store};
use crate::delivery::NewDelivery;
use crate::model::*;
use crate::status::{StatusSnap, VendorStatus};

type StatusRow = (i64, Option<String>, String, String, i64, i64, i64);

fn snap(r: StatusRow) -> StatusSnap {
    StatusSnap {
        org: r.0,
        status: r.1.as_deref().and_then(VendorStatus::from_stored),
        statement: r.2,
        references: serde_json::from_str(&r.3).unwrap_or_default(),
        share: r.4 != 0,
        encrypted: r.5 != 0,
        updated_at: r.6,
    }
}

/// The statuses of a case's vendor organizations, by organization id.
pub(crate) async fn statuses(conn: &mut Conn, case: CaseId) -> Result<Vec<StatusSnap>> {
    let rows: Vec<StatusRow> = sqlx::query_as(
        "SELECT org_id, status, statement, refs, CAST(share AS INTEGER), CAST(encrypted AS INTEGER), updated_at FROM vendor_status WHERE case_id = $1 ORDER BY org_id",
    )
    .bind(case)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(snap).collect())
}

/// A case's public date and its vendors' statuses, as a summary shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseRecord {
    pub public_at: Option<i64>,
    pub initial_contact_at: Option<i64>,
    pub statuses: Vec<StatusSnap>,
}

pub(crate) async fn case_record(conn: &mut Conn, case: CaseId) -> Result<CaseRecord> {
    let (initial_contact_at, public_at): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT initial_contact_at, public_at FROM cases WHERE id = $1")
            .bind(case)
            .fetch_one(&mut *conn)
            .await?;
    Ok(CaseRecord {
        public_at,
        initial_contact_at,
        statuses: statuses(conn, case).await?,
    })
}

/// One status update as it was given.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusEvent {
    pub org: String,
    pub status: Option<String>,
    pub statement: String,
    pub references: Vec<String>,
    pub share: bool,
    pub by: Option<String>,
    pub inbound_id: Option<i64>,
    pub at: i64,
}

/// A status update being recorded.
#[derive(Debug, Clone)]
pub(crate) struct NewStatus<'a> {
    pub case: CaseId,
    pub thread: ThreadId,
    pub snap: &'a StatusSnap,
    pub contact: Option<ContactId>,
    pub inbound: Option<i64>,
}

/// Store the new current status and its history row, and a history event.
pub(crate) async fn record(conn: &mut Conn, s: &NewStatus<'_>) -> Result<()> {
    let refs = serde_json::to_string(&s.snap.references).unwrap_or_else(|_| "[]".into());
    let status = s.snap.status.map(VendorStatus::as_str);
    sqlx::query(
        "INSERT INTO vendor_status (case_id, org_id, status, statement, refs, share, encrypted, contact_id, inbound_id, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (case_id, org_id) DO UPDATE SET status = excluded.status, statement = excluded.statement,
            refs = excluded.refs, share = excluded.share, encrypted = excluded.encrypted, contact_id = excluded.contact_id,
            inbound_id = excluded.inbound_id, updated_at = excluded.updated_at",
    )
    .bind(s.case)
    .bind(s.snap.org)
    .bind(status)
    .bind(&s.snap.statement)
    .bind(&refs)
    .bind(s.snap.share)
    .bind(s.snap.encrypted)
    .bind(s.contact)
    .bind(s.inbound)
    .bind(s.snap.updated_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO vendor_status_history (case_id, org_id, status, statement, refs, share, encrypted, contact_id, inbound_id, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(s.case)
    .bind(s.snap.org)
    .bind(status)
    .bind(&s.snap.statement)
    .bind(&refs)
    .bind(s.snap.share)
    .bind(s.snap.encrypted)
    .bind(s.contact)
    .bind(s.inbound)
    .bind(s.snap.updated_at)
    .execute(&mut *conn)
    .await?;
    let detail = format!(
        "org {}: {} (shared: {})",
        s.snap.org,
        status.unwrap_or("no status"),
        if s.snap.share { "yes" } else { "no" }
    );
    history::record(
        conn,
        "vendor-status",
        Some(s.case),
        Some(s.thread),
        s.inbound,
        &detail,
    )
    .await
}

/// SPEC §8: a requested case summary, unless one went to the same contact in the same
/// thread at or after `since` (then `None`, with a history event).
pub(crate) async fn queue_summary(
    conn: &mut Conn,
    d: &NewDelivery,
    thread: ThreadId,
    case: CaseId,
    since: i64,
    now: i64,
) -> Result<Option<OutboxId>> {
    let recent: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM history WHERE case_id = $1 AND kind = 'info-sent' AND thread_id = $2 AND detail = $3 AND at >= $4",
    )
    .bind(case)
    .bind(thread)
    .bind(&d.rcpt)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    if recent > 0 {
        history::record(
            conn,
            "info-rate-limited",
            Some(case),
            Some(thread),
            None,
            &d.rcpt,
        )
        .await?;
        return Ok(None);
    }
    let target = super::posts::Target {
        post: None,
        report: None,
        thread: Some(thread),
    };
    let ids = super::posts::insert_deliveries(conn, target, std::slice::from_ref(d), now).await?;
    history::record(conn, "info-sent", Some(case), Some(thread), None, &d.rcpt).await?;
    Ok(ids.first().map(|(id, _, _)| *id))
}

impl Store {
    /// A case's dates and vendor statuses.
    pub async fn case_record(&self, case: CaseId) -> Result<CaseRecord> {
        let mut conn = self.pool.acquire().await?;
        case_record(&mut conn, case).await
    }

    /// Every status update of a case, oldest first.
    pub async fn status_history(&self, case: CaseId) -> Result<Vec<StatusEvent>> {
        let rows: Vec<(String, Option<String>, String, String, i64, Option<String>, Option<i64>, i64)> = sqlx::query_as(
            "SELECT o.name, h.status, h.statement, h.refs, CAST(h.share AS INTEGER), c.email, h.inbound_id, h.at
               FROM vendor_status_history h JOIN orgs o ON o.id = h.org_id LEFT JOIN contacts c ON c.id = h.contact_id
              WHERE h.case_id = $1 ORDER BY h.id",
        )
        .bind(case)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StatusEvent {
                org: r.0,
                status: r.1,
                statement: r.2,
                references: serde_json::from_str(&r.3).unwrap_or_default(),
                share: r.4 != 0,
                by: r.5,
                inbound_id: r.6,
                at: r.7,
            })
            .collect())
    }
}
