//! Cases, participants, reports and threads.

use super::posts::PostResult;
use super::{now_ms, Result, Store, StoreError};
use crate::coordination::{Joined, SystemPost};
use crate::model::*;
use rand::Rng;
use super::Conn;

/// Options of a new case.
#[derive(Debug, Clone, Default)]
pub struct NewCase<'a> {
    /// Explicit id (`VU#123456`); a random one is drawn when `None`.
    pub public_id: Option<&'a str>,
    pub title: &'a str,
    pub embargoed: bool,
    pub min_assurance: Option<Assurance>,
}

/// A participant to add.
#[derive(Debug, Clone)]
pub struct NewParticipant<'a> {
    pub org: Option<OrgId>,
    pub contact: Option<ContactId>,
    pub role: Role,
    pub anonymous: bool,
    pub alias: Option<&'a str>,
}

/// One row of `case list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseRow {
    pub id: String,
    pub title: String,
    pub state: String,
    pub embargoed: bool,
    pub created_at: i64,
    pub public_at: Option<i64>,
}

/// One row of `report list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportRow {
    pub id: String,
    pub reporter: String,
    pub subject: String,
    pub state: String,
    pub case: Option<String>,
    pub assurance: String,
    pub created_at: i64,
}

/// Draw a case id: prefix + 6 random digits (SPEC §1).
pub fn random_case_id(prefix: &str) -> String {
    format!("{prefix}{:06}", rand::thread_rng().gen_range(0..1_000_000))
}

/// Draw a report id: `VRF#YY-MM-` + 5 random uppercase consonants (SPEC §1).
pub fn random_report_id(now_ms: i64) -> String {
    const CONSONANTS: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let when = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let mut rng = rand::thread_rng();
    let letters: String = (0..5).map(|_| CONSONANTS[rng.gen_range(0..CONSONANTS.len())] as char).collect();
    format!("VRF#{}-{letters}", when.format("%y-%m"))
}

impl Store {
    /// Create a case and its discussion thread. Returns the public id.
    pub async fn create_case(&self, prefix: &str, c: &NewCase<'_>) -> Result<String> {
        let mut tx = self.begin_write().await?;
        let id = insert_case(&mut tx, prefix, c).await?;
        tx.commit().await?;
        Ok(id.1)
    }

    pub async fn list_cases(&self) -> Result<Vec<CaseRow>> {
        let rows: Vec<(String, String, String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT public_id, title, state, CAST(embargoed AS INTEGER), created_at, public_at FROM cases ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| CaseRow { id: r.0, title: r.1, state: r.2, embargoed: r.3 != 0, created_at: r.4, public_at: r.5 })
            .collect())
    }

    /// Add a participant; an organization also gets its private thread in the case.
    pub async fn add_participant(&self, case_public_id: &str, p: &NewParticipant<'_>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let case = case_id_by_public(&mut tx, case_public_id).await?;
        insert_participant(&mut tx, case, p).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_case_state(&self, case_public_id: &str, state: CaseState) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let case = case_id_by_public(&mut conn, case_public_id).await?;
        sqlx::query("UPDATE cases SET state = $1 WHERE id = $2").bind(state.as_str()).bind(case).execute(&mut *conn).await?;
        super::history::record(&mut conn, "case-state", Some(case), None, None, state.as_str()).await
    }

    pub async fn list_reports(&self) -> Result<Vec<ReportRow>> {
        let rows: Vec<(String, String, String, String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT r.public_id, c.email, r.subject, r.state, k.public_id, r.assurance, r.created_at
             FROM reports r JOIN contacts c ON c.id = r.reporter_id LEFT JOIN cases k ON k.id = r.case_id
             ORDER BY r.created_at, r.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ReportRow {
                id: r.0,
                reporter: r.1,
                subject: r.2,
                state: r.3,
                case: r.4,
                assurance: r.5,
                created_at: r.6,
            })
            .collect())
    }

    /// Accept a report: create the case, link the report, make the reporter a participant
    /// (unless `reporter_participates` is false). Returns the case's public id.
    pub async fn accept_report(
        &self,
        report_public_id: &str,
        prefix: &str,
        title: &str,
        reporter_participates: bool,
    ) -> Result<String> {
        let mut tx = self.begin_write().await?;
        let (report, reporter, state): (i64, i64, String) =
            sqlx::query_as("SELECT id, reporter_id, state FROM reports WHERE public_id = $1")
                .bind(report_public_id.to_ascii_uppercase())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("no report {report_public_id}")))?;
        if state != "new" {
            return Err(StoreError::Invalid(format!("report {report_public_id} is {state}, not new")));
        }
        let (case, public_id) = insert_case(&mut tx, prefix, &NewCase { title, ..Default::default() }).await?;
        sqlx::query("UPDATE reports SET state = 'accepted', case_id = $1 WHERE id = $2")
            .bind(case)
            .bind(report)
            .execute(&mut *tx)
            .await?;
        if reporter_participates {
            let p = NewParticipant { org: None, contact: Some(reporter), role: Role::Reporter, anonymous: false, alias: None };
            insert_participant(&mut tx, case, &p).await?;
        }
        super::history::record(&mut tx, "report-accepted", Some(case), None, None, report_public_id).await?;
        tx.commit().await?;
        Ok(public_id)
    }

    /// Resolve a thread name: `discussion:VU#123456` (or just `VU#123456`),
    /// `private:VU#123456:<org name>`, `report:VRF#..` (or just `VRF#..`).
    pub async fn thread_by_name(&self, name: &str) -> Result<ThreadId> {
        let mut conn = self.pool.acquire().await?;
        thread_by_name(&mut conn, name).await
    }

    /// The case's initial-contact and public dates, when set.
    pub async fn case_dates(&self, case: CaseId) -> Result<(Option<i64>, Option<i64>)> {
        Ok(sqlx::query_as("SELECT initial_contact_at, public_at FROM cases WHERE id = $1")
            .bind(case)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The initial contact of a vendor organization: its deliveries, the history row, the
    /// first-contact dates (kept on re-notification) and the public date when none is set,
    /// in one transaction.
    pub async fn record_vendor_notification(&self, n: &VendorNotified<'_>, deliveries: &[crate::delivery::NewDelivery]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let target = super::posts::Target { post: None, report: None, thread: Some(n.thread) };
        super::posts::insert_deliveries(&mut tx, target, deliveries, n.now).await?;
        super::history::record(&mut tx, "vendor-notified", Some(n.case), Some(n.thread), None, n.org_name).await?;
        sqlx::query("UPDATE participants SET notified_at = COALESCE(notified_at, $1) WHERE case_id = $2 AND org_id = $3")
            .bind(n.now)
            .bind(n.case)
            .bind(n.org)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE cases SET initial_contact_at = COALESCE(initial_contact_at, $1), public_at = COALESCE(public_at, $2) WHERE id = $3")
            .bind(n.now)
            .bind(n.public_at)
            .bind(n.case)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

}

impl Store {
    /// SPEC §8 "Dates": the new public date, its history row and the announcement, in one
    /// transaction.
    pub async fn set_public_date(&self, case: CaseId, at: i64, detail: &str, post: &SystemPost) -> Result<PostResult> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE cases SET public_at = $1 WHERE id = $2").bind(at).bind(case).execute(&mut *tx).await?;
        super::history::record(&mut tx, "public-date", Some(case), None, None, detail).await?;
        let r = super::posts::insert_post(&mut tx, &post.new_post(), &post.plan).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// A new case state, with its announcement when there is one, in one transaction.
    pub async fn set_case_state_with(&self, case: CaseId, state: CaseState, post: Option<&SystemPost>) -> Result<Option<PostResult>> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE cases SET state = $1 WHERE id = $2").bind(state.as_str()).bind(case).execute(&mut *tx).await?;
        super::history::record(&mut tx, "case-state", Some(case), None, None, state.as_str()).await?;
        let r = match post {
            Some(p) => Some(super::posts::insert_post(&mut tx, &p.new_post(), &p.plan).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(r)
    }

    /// A declined report and the notice to its reporter, in one transaction.
    pub async fn decline_report_with(&self, report: ReportId, public_id: &str, post: &SystemPost) -> Result<PostResult> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE reports SET state = 'declined' WHERE id = $1 AND state = 'new'").bind(report).execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("no new report {public_id}")));
        }
        super::history::record(&mut tx, "report-declined", None, Some(post.thread), None, public_id).await?;
        let r = super::posts::insert_post(&mut tx, &post.new_post(), &post.plan).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// A participant, and the late joiner's messages decided for it (SPEC §6.6), in one
    /// transaction.
    pub async fn add_participant_with(&self, case_public_id: &str, p: &NewParticipant<'_>, late: Option<&Joined>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let case = case_id_by_public(&mut tx, case_public_id).await?;
        insert_participant(&mut tx, case, p).await?;
        insert_joined(&mut tx, case, late).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `report accept --into`: the report linked to an existing case, the reporter added
    /// (when given) with the late joiner's messages, in one transaction.
    pub async fn accept_report_into(&self, report_public_id: &str, into: &str, reporter: Option<&NewParticipant<'_>>, late: Option<&Joined>) -> Result<String> {
        let mut tx = self.begin_write().await?;
        let case = case_id_by_public(&mut tx, into).await?;
        let n = sqlx::query("UPDATE reports SET state = 'accepted', case_id = $1 WHERE upper(public_id) = upper($2) AND state = 'new'")
            .bind(case)
            .bind(report_public_id.trim())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::Invalid(format!("report {report_public_id} is not new, or does not exist")));
        }
        if let Some(p) = reporter {
            insert_participant(&mut tx, case, p).await?;
            insert_joined(&mut tx, case, late).await?;
        }
        super::history::record(&mut tx, "report-accepted", Some(case), None, None, report_public_id).await?;
        let public_id: String = sqlx::query_scalar("SELECT public_id FROM cases WHERE id = $1").bind(case).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(public_id)
    }

    /// The reporter of a report.
    pub async fn report_reporter(&self, report_public_id: &str) -> Result<ContactId> {
        sqlx::query_scalar("SELECT reporter_id FROM reports WHERE upper(public_id) = upper($1)")
            .bind(report_public_id.trim())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no report {report_public_id}")))
    }

    /// Whether a lone contact participates in a case.
    pub async fn is_participant(&self, case_public_id: &str, contact: ContactId) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        let case = case_id_by_public(&mut conn, case_public_id).await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM participants WHERE case_id = $1 AND contact_id = $2").bind(case).bind(contact).fetch_one(&mut *conn).await?;
        Ok(n > 0)
    }

    /// The contacts of an organization.
    pub async fn org_contact_ids(&self, org: OrgId) -> Result<Vec<ContactId>> {
        Ok(sqlx::query_scalar("SELECT id FROM contacts WHERE org_id = $1 ORDER BY id").bind(org).fetch_all(&self.pool).await?)
    }

    /// The posts of a thread, oldest first, with how each arrived.
    pub async fn thread_posts(&self, thread: ThreadId) -> Result<Vec<(PostId, crate::view::Arrival)>> {
        let rows: Vec<(i64, Option<String>)> =
            sqlx::query_as("SELECT id, protection FROM posts WHERE thread_id = $1 ORDER BY created_at, id").bind(thread).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(id, p)| (id, crate::view::Arrival::of_record(p.as_deref()))).collect())
    }
}

/// The late joiner's deliveries (replying into the discussion) and their skipped contacts.
async fn insert_joined(conn: &mut Conn, case: CaseId, late: Option<&Joined>) -> Result<()> {
    let Some(l) = late else { return Ok(()) };
    let target = super::posts::Target { post: None, report: None, thread: Some(l.discussion) };
    super::posts::insert_deliveries(conn, target, &l.planned.deliveries, now_ms()).await?;
    super::posts::record_skipped(conn, Some(case), Some(l.discussion), &l.planned.bouncing, "the case summary for a new participant").await?;
    if !l.planned.deliveries.is_empty() {
        super::history::record(conn, "late-joiner", Some(case), Some(l.discussion), None, &format!("{} message(s)", l.planned.deliveries.len())).await?;
    }
    Ok(())
}

/// An initial contact being recorded.
#[derive(Debug, Clone)]
pub struct VendorNotified<'a> {
    pub case: CaseId,
    pub org: OrgId,
    pub org_name: &'a str,
    /// The case discussion, where replies go.
    pub thread: ThreadId,
    pub public_at: i64,
    pub now: i64,
}

async fn insert_case(conn: &mut Conn, prefix: &str, c: &NewCase<'_>) -> Result<(CaseId, String)> {
    let public_id = match c.public_id {
        Some(id) => normalize_case_id(prefix, id)?,
        None => unused_case_id(conn, prefix).await?,
    };
    let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM cases WHERE public_id = $1")
        .bind(&public_id)
        .fetch_optional(&mut *conn)
        .await?;
    if taken.is_some() {
        return Err(StoreError::Invalid(format!("case {public_id} exists already")));
    }
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO cases (public_id, title, embargoed, min_assurance, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&public_id)
    .bind(c.title)
    .bind(c.embargoed)
    .bind(c.min_assurance.map(|a| a.as_str()))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO threads (kind, case_id, created_at) VALUES ('discussion', $1, $2)")
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    super::history::record(conn, "case-created", Some(id), None, None, &public_id).await?;
    Ok((id, public_id))
}

/// `vu#123456`, `VU-123456`, `123456` → `VU#123456`.
pub fn normalize_case_id(prefix: &str, id: &str) -> Result<String> {
    let digits: String = id.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() != 6 {
        return Err(StoreError::Invalid(format!("case id {id:?} must be {prefix} followed by 6 digits")));
    }
    Ok(format!("{prefix}{digits}"))
}

async fn unused_case_id(conn: &mut Conn, prefix: &str) -> Result<String> {
    unused_id(conn, "cases", || random_case_id(prefix)).await
}

/// Draw a report id not used yet.
pub(crate) async fn unused_report_id(conn: &mut Conn, now: i64) -> Result<String> {
    unused_id(conn, "reports", || random_report_id(now)).await
}

/// Draw public ids until one is not in `table` (collision check, SPEC §1).
async fn unused_id(conn: &mut Conn, table: &'static str, draw: impl Fn() -> String) -> Result<String> {
    let sql = format!("SELECT id FROM {table} WHERE public_id = $1");
    for _ in 0..1000 {
        let id = draw();
        let taken: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(&id).fetch_optional(&mut *conn).await?;
        if taken.is_none() {
            return Ok(id);
        }
    }
    Err(StoreError::Invalid(format!("no free id in {table} after 1000 draws")))
}

pub(crate) async fn case_id_by_public(conn: &mut Conn, public_id: &str) -> Result<CaseId> {
    sqlx::query_scalar("SELECT id FROM cases WHERE upper(public_id) = upper($1)")
        .bind(public_id.trim())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no case {public_id}")))
}

async fn insert_participant(conn: &mut Conn, case: CaseId, p: &NewParticipant<'_>) -> Result<()> {
    let dup: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM participants WHERE case_id = $1 AND (org_id = $2 OR contact_id = $3)",
    )
    .bind(case)
    .bind(p.org)
    .bind(p.contact)
    .fetch_optional(&mut *conn)
    .await?;
    if dup.is_some() {
        return Err(StoreError::Invalid("already a participant of this case".into()));
    }
    let alias = match p.alias {
        Some(a) if !a.trim().is_empty() => a.trim().to_string(),
        _ => default_alias(conn, case, p.role).await?,
    };
    let now = now_ms();
    sqlx::query(
        "INSERT INTO participants (case_id, org_id, contact_id, role, anonymous, alias, added_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(case)
    .bind(p.org)
    .bind(p.contact)
    .bind(p.role.as_str())
    .bind(p.anonymous)
    .bind(&alias)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if let Some(org) = p.org {
        sqlx::query("INSERT INTO threads (kind, case_id, org_id, created_at) VALUES ('private', $1, $2, $3)")
            .bind(case)
            .bind(org)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    super::history::record(conn, "participant-added", Some(case), None, None, &alias).await
}

/// "Vendor A", "Vendor B", … by order of addition; "Reporter", "Coordinator".
async fn default_alias(conn: &mut Conn, case: CaseId, role: Role) -> Result<String> {
    if role != Role::Vendor {
        let word = if role == Role::Reporter { "Reporter" } else { "Coordinator" };
        return Ok(word.to_string());
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM participants WHERE case_id = $1 AND role = 'vendor'")
        .bind(case)
        .fetch_one(&mut *conn)
        .await?;
    let letter = (b'A' + (n % 26) as u8) as char;
    let suffix = if n >= 26 { format!("{}", n / 26 + 1) } else { String::new() };
    Ok(format!("Vendor {letter}{suffix}"))
}

pub(crate) async fn thread_by_name(conn: &mut Conn, name: &str) -> Result<ThreadId> {
    let name = name.trim();
    let (kind, rest) = name.split_once(':').unwrap_or_else(|| {
        if name.to_ascii_uppercase().starts_with("VRF#") { ("report", name) } else { ("discussion", name) }
    });
    let not_found = || StoreError::NotFound(format!("no thread {name:?}"));
    let id: Option<i64> = match kind {
        "discussion" => sqlx::query_scalar(
            "SELECT t.id FROM threads t JOIN cases c ON c.id = t.case_id WHERE t.kind = 'discussion' AND upper(c.public_id) = upper($1)",
        )
        .bind(rest)
        .fetch_optional(&mut *conn)
        .await?,
        "private" => {
            let (case, org) = rest.split_once(':').ok_or_else(not_found)?;
            sqlx::query_scalar(
                "SELECT t.id FROM threads t JOIN cases c ON c.id = t.case_id JOIN orgs o ON o.id = t.org_id
                 WHERE t.kind = 'private' AND upper(c.public_id) = upper($1) AND lower(o.name) = lower($2)",
            )
            .bind(case)
            .bind(org)
            .fetch_optional(&mut *conn)
            .await?
        }
        "report" => sqlx::query_scalar(
            "SELECT t.id FROM threads t JOIN reports r ON r.id = t.report_id WHERE t.kind = 'report' AND upper(r.public_id) = upper($1)",
        )
        .bind(rest)
        .fetch_optional(&mut *conn)
        .await?,
        _ => None,
    };
    id.ok_or_else(not_found)
}
