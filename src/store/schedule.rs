//! What the scheduler reads and records (SPEC §8): the runs done per (job, item), vendors
//! that may need a reminder, and the facts of the coordinators' notes. The scheduler
//! (`schedule`) decides; the deliveries are written here with the run that caused them,
//! in one transaction, so a job runs once per due item even across restarts.

use super::Conn;
use super::{history, posts, Result, Store};
use crate::delivery::Planned;
use crate::model::*;
use crate::workflow::{BouncingLine, CaseLine, DeadLine, HeldLine, VendorLine, DAY_MS};

/// A vendor organization notified in an open case that has neither replied (a post by one
/// of its contacts in the case since) nor given a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silent {
    pub case: CaseId,
    pub org: OrgId,
    pub notified_at: i64,
}

/// Messages a job decided, and the run that caused them.
#[derive(Debug, Clone)]
pub struct JobRun<'a> {
    pub job: &'a str,
    /// The due item: `VU#123456/org 4/day 7`, a date, an outbox id.
    pub items: Vec<String>,
    pub case: Option<CaseId>,
    /// Where replies go (the private thread of a reminder); `None` for coordinator notes.
    pub thread: Option<ThreadId>,
    pub planned: &'a Planned,
    /// The instant the job ran for (the scheduler's clock), recorded with the run.
    pub now: i64,
}

/// Record the runs of `r` and store its deliveries, unless every item ran already (then
/// nothing is written and `false` returned).
pub(crate) async fn record_run(conn: &mut Conn, r: &JobRun<'_>) -> Result<bool> {
    let mut fresh = false;
    for item in &r.items {
        let done = sqlx::query("INSERT INTO schedule_runs (job, item, ran_at) VALUES ($1, $2, $3) ON CONFLICT (job, item) DO NOTHING")
            .bind(r.job)
            .bind(item)
            .bind(r.now)
            .execute(&mut *conn)
            .await?;
        fresh |= done.rows_affected() > 0;
    }
    if !fresh {
        return Ok(false);
    }
    let target = posts::Target {
        post: None,
        report: None,
        thread: r.thread,
    };
    // Due at once for the outbox worker, whatever instant the job ran for (`--now`).
    posts::insert_deliveries(conn, target, &r.planned.deliveries, super::now_ms()).await?;
    posts::record_skipped(conn, r.case, r.thread, &r.planned.bouncing, r.job).await?;
    if !r.planned.deliveries.is_empty() {
        let detail = format!(
            "{} ({} message(s))",
            r.items.join(", "),
            r.planned.deliveries.len()
        );
        history::record(conn, r.job, r.case, r.thread, None, &detail).await?;
    }
    Ok(true)
}

impl Store {
    /// Whether `job` ran for `item`.
    pub async fn has_run(&self, job: &str, item: &str) -> Result<bool> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM schedule_runs WHERE job = $1 AND item = $2")
                .bind(job)
                .bind(item)
                .fetch_one(&self.pool)
                .await?;
        Ok(n > 0)
    }

    /// Whether `job` ran for any item.
    pub async fn ever_ran(&self, job: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schedule_runs WHERE job = $1")
            .bind(job)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// [`record_run`] in its own transaction.
    pub async fn record_run(&self, r: &JobRun<'_>) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let fresh = record_run(&mut tx, r).await?;
        tx.commit().await?;
        Ok(fresh)
    }

    /// Every vendor organization that may need a reminder (SPEC §8).
    pub async fn silent_vendors(&self) -> Result<Vec<Silent>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT p.case_id, p.org_id, p.notified_at FROM participants p JOIN cases c ON c.id = p.case_id
              WHERE p.role = 'vendor' AND p.org_id IS NOT NULL AND p.notified_at IS NOT NULL AND c.state = 'open'
                AND NOT EXISTS (SELECT 1 FROM vendor_status s WHERE s.case_id = p.case_id AND s.org_id = p.org_id)
                AND NOT EXISTS (SELECT 1 FROM posts po JOIN threads t ON t.id = po.thread_id JOIN contacts k ON k.id = po.author_id
                                 WHERE t.case_id = p.case_id AND k.org_id = p.org_id AND po.created_at >= p.notified_at)
              ORDER BY p.case_id, p.org_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(case, org, notified_at)| Silent {
                case,
                org,
                notified_at,
            })
            .collect())
    }

    /// Open cases with a public date.
    pub async fn dated_open_cases(&self) -> Result<Vec<CaseLine>> {
        let rows: Vec<(String, String, i64, Option<i64>)> =
            sqlx::query_as("SELECT public_id, title, CAST(embargoed AS INTEGER), public_at FROM cases WHERE state = 'open' AND public_at IS NOT NULL ORDER BY public_at, id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(case, title, embargoed, public_at)| CaseLine {
                case,
                title,
                embargoed: embargoed != 0,
                public_at,
            })
            .collect())
    }

    /// Vendor organizations of open cases without a status.
    pub async fn vendors_without_status(&self) -> Result<Vec<VendorLine>> {
        let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT c.public_id, o.name, p.notified_at FROM participants p JOIN cases c ON c.id = p.case_id JOIN orgs o ON o.id = p.org_id
              WHERE p.role = 'vendor' AND c.state = 'open'
                AND NOT EXISTS (SELECT 1 FROM vendor_status s WHERE s.case_id = p.case_id AND s.org_id = p.org_id AND s.status IS NOT NULL)
              ORDER BY c.public_id, o.name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(case, org, notified_at)| VendorLine {
                case,
                org,
                notified_at,
            })
            .collect())
    }

    /// Quarantine items held since before `now` minus a day.
    pub async fn held_over_a_day(&self, now: i64) -> Result<Vec<HeldLine>> {
        let rows: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT id, reason_detail, created_at FROM quarantine WHERE state = 'held' AND created_at < $1 ORDER BY id")
                .bind(now - DAY_MS)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, reason, since)| HeldLine { id, reason, since })
            .collect())
    }

    /// Outbox items given up, with their case.
    pub async fn dead_items(&self) -> Result<Vec<DeadLine>> {
        self.dead_where("").await
    }

    /// Outbox items given up that `job` has not run for (the item is the outbox id).
    pub async fn dead_items_without(&self, job: &str) -> Result<Vec<DeadLine>> {
        self.dead_where(job).await
    }

    async fn dead_where(&self, job: &str) -> Result<Vec<DeadLine>> {
        let rows: Vec<(i64, String, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT o.id, o.rcpt, o.kind, c.public_id, o.last_reply FROM outbox o
               LEFT JOIN threads t ON t.id = o.thread_id LEFT JOIN cases c ON c.id = t.case_id
              WHERE o.state = 'dead'
                AND NOT EXISTS (SELECT 1 FROM schedule_runs r WHERE r.job = $1 AND r.item = CAST(o.id AS TEXT))
              ORDER BY o.id",
        )
        .bind(job)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, rcpt, kind, case, reply)| DeadLine {
                id,
                rcpt,
                kind,
                case,
                reply: reply.unwrap_or_default(),
            })
            .collect())
    }

    /// Contacts marked bouncing.
    pub async fn bouncing_contacts(&self) -> Result<Vec<BouncingLine>> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT email, bouncing_since FROM contacts WHERE bouncing = TRUE ORDER BY email",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(email, since)| BouncingLine {
                email,
                since: since.unwrap_or_default(),
            })
            .collect())
    }
}
