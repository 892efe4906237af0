//! Loading a [`World`] snapshot: the cases, reports, threads, organizations and contacts
//! one mail or one post concerns, for the pure core to read.

use super::directory::{contacts_in, orgs_in};
use super::Result;
use crate::model::*;
use super::Conn;
use std::collections::BTreeSet;

/// What to load. Everything connected is loaded too: a thread brings its case or report,
/// a case its participants, their contacts and private threads, and coordinators always.
#[derive(Debug, Clone, Default)]
pub struct WorldQuery {
    pub case_ids: Vec<CaseId>,
    pub case_public_ids: Vec<String>,
    pub report_public_ids: Vec<String>,
    pub thread_ids: Vec<ThreadId>,
    /// Contacts to include by address (the sender, the direct recipients).
    pub emails: Vec<String>,
    /// Contacts to include by id.
    pub contact_ids: Vec<ContactId>,
}

pub(crate) async fn load_world(conn: &mut Conn, q: &WorldQuery) -> Result<World> {
    let mut case_ids: BTreeSet<i64> = q.case_ids.iter().copied().collect();
    let mut report_ids = BTreeSet::new();
    let rows: Vec<(Option<i64>, Option<i64>)> =
        select_in(conn, "SELECT case_id, report_id FROM threads WHERE id IN", "", &q.thread_ids).await?;
    for (c, r) in rows {
        case_ids.extend(c);
        report_ids.extend(r);
    }
    let upper: Vec<String> = q.case_public_ids.iter().map(|p| p.to_ascii_uppercase()).collect();
    case_ids.extend(select_in::<(i64,), _>(conn, "SELECT id FROM cases WHERE upper(public_id) IN", "", &upper).await?.into_iter().map(|r| r.0));
    let upper: Vec<String> = q.report_public_ids.iter().map(|p| p.to_ascii_uppercase()).collect();
    for (r, c) in select_in::<(i64, Option<i64>), _>(conn, "SELECT id, case_id FROM reports WHERE upper(public_id) IN", "", &upper).await? {
        report_ids.insert(r);
        case_ids.extend(c);
    }
    let cases: Vec<i64> = case_ids.iter().copied().collect();
    report_ids.extend(select_in::<(i64,), _>(conn, "SELECT id FROM reports WHERE case_id IN", "", &cases).await?.into_iter().map(|r| r.0));
    let mut world = World::default();
    for c in &case_ids {
        world.cases.push(load_case(conn, *c).await?);
    }
    for r in &report_ids {
        world.reports.extend(load_report(conn, *r).await?);
    }
    load_threads(conn, &mut world, &case_ids, &report_ids, &q.thread_ids).await?;
    load_people(conn, &mut world, q).await?;
    Ok(world)
}

/// `head (…values…) tail`: one statement for a list of values, none for an empty list.
pub(crate) async fn select_in<R, T>(conn: &mut Conn, head: &str, tail: &str, values: &[T]) -> Result<Vec<R>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    T: for<'q> sqlx::Encode<'q, super::Db> + sqlx::Type<super::Db> + Clone + Send + 'static,
{
    let mut out = Vec::new();
    // SQLite binds at most 32,766 parameters in one statement.
    for chunk in values.chunks(10_000) {
        let list = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let sql = format!("{head} ({list}) {tail}");
        let mut query = sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(sql));
        for v in chunk {
            query = query.bind(v.clone());
        }
        out.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

async fn load_case(conn: &mut Conn, id: CaseId) -> Result<CaseSnap> {
    let (public_id, title, state, embargoed, min): (String, String, String, i64, Option<String>) = sqlx::query_as(
        "SELECT public_id, title, state, CAST(embargoed AS INTEGER), min_assurance FROM cases WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let threads: Vec<(i64, String, Option<i64>)> =
        sqlx::query_as("SELECT id, kind, org_id FROM threads WHERE case_id = $1 ORDER BY id").bind(id).fetch_all(&mut *conn).await?;
    let discussion = threads.iter().find(|t| t.1 == "discussion").map(|t| t.0).unwrap_or_default();
    let private_threads = threads.iter().filter(|t| t.1 == "private").filter_map(|t| t.2.map(|o| (o, t.0))).collect();
    let rows: Vec<(Option<i64>, Option<i64>, String, i64, String)> = sqlx::query_as(
        "SELECT org_id, contact_id, role, CAST(anonymous AS INTEGER), alias FROM participants WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let participants = rows
        .into_iter()
        .map(|r| ParticipantSnap {
            org: r.0,
            contact: r.1,
            role: Role::parse(&r.2).unwrap_or(Role::Vendor),
            anonymous: r.3 != 0,
            alias: r.4,
        })
        .collect();
    Ok(CaseSnap {
        id,
        public_id,
        title,
        state: CaseState::parse(&state).unwrap_or(CaseState::Open),
        embargoed: embargoed != 0,
        min_assurance: min.as_deref().and_then(Assurance::parse),
        discussion,
        private_threads,
        participants,
    })
}

async fn load_report(conn: &mut Conn, id: ReportId) -> Result<Option<ReportSnap>> {
    let row: Option<(String, i64, String, Option<i64>, String, Option<i64>)> = sqlx::query_as(
        "SELECT r.public_id, r.reporter_id, r.state, r.case_id, r.subject, t.id
         FROM reports r LEFT JOIN threads t ON t.report_id = r.id AND t.kind = 'report' WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| ReportSnap {
        id,
        public_id: r.0,
        reporter: r.1,
        state: ReportState::parse(&r.2).unwrap_or(ReportState::New),
        case: r.3,
        subject: r.4,
        thread: r.5.unwrap_or_default(),
    }))
}

type ThreadRow = (i64, String, Option<i64>, Option<i64>, Option<i64>);

async fn load_threads(
    conn: &mut Conn,
    world: &mut World,
    cases: &BTreeSet<i64>,
    reports: &BTreeSet<i64>,
    extra: &[ThreadId],
) -> Result<()> {
    const COLS: &str = "SELECT id, kind, case_id, org_id, report_id FROM threads WHERE";
    let cases: Vec<i64> = cases.iter().copied().collect();
    let reports: Vec<i64> = reports.iter().copied().collect();
    let mut rows: Vec<ThreadRow> = select_in(conn, &format!("{COLS} case_id IN"), "", &cases).await?;
    rows.extend(select_in::<ThreadRow, _>(conn, &format!("{COLS} report_id IN"), "", &reports).await?);
    rows.extend(select_in::<ThreadRow, _>(conn, &format!("{COLS} id IN"), "", extra).await?);
    rows.sort();
    rows.dedup();
    world.threads = rows
        .into_iter()
        .map(|r| ThreadSnap {
            id: r.0,
            kind: ThreadKind::parse(&r.1).unwrap_or(ThreadKind::Discussion),
            case: r.2,
            org: r.3,
            report: r.4,
        })
        .collect();
    Ok(())
}

/// Organizations and contacts: coordinators, participants, reporters and the given addresses.
async fn load_people(conn: &mut Conn, world: &mut World, q: &WorldQuery) -> Result<()> {
    let mut org_ids: BTreeSet<i64> = sqlx::query_scalar::<_, i64>("SELECT id FROM orgs WHERE kind = 'coordinator'")
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let mut contact_ids: BTreeSet<i64> = BTreeSet::new();
    for case in &world.cases {
        for p in &case.participants {
            org_ids.extend(p.org);
            contact_ids.extend(p.contact);
        }
    }
    contact_ids.extend(world.reports.iter().map(|r| r.reporter));
    contact_ids.extend(q.contact_ids.iter().copied());
    let orgs: Vec<i64> = org_ids.iter().copied().collect();
    let ids: Vec<i64> = contact_ids.iter().copied().collect();
    let emails: Vec<String> = q.emails.iter().map(|e| e.trim().to_ascii_lowercase()).collect();
    let mut contacts = contacts_in(conn, "org_id", &orgs).await?;
    contacts.extend(contacts_in(conn, "id", &ids).await?);
    contacts.extend(contacts_in(conn, "email", &emails).await?);
    contacts.sort_by_key(|c| c.id);
    contacts.dedup_by_key(|c| c.id);
    org_ids.extend(contacts.iter().filter_map(|c| c.org));
    let orgs: Vec<i64> = org_ids.iter().copied().collect();
    world.orgs = orgs_in(conn, &orgs).await?;
    world.contacts = contacts;
    Ok(())
}

impl super::Store {
    /// Load a world snapshot (outside any transaction).
    pub async fn world(&self, q: &WorldQuery) -> Result<World> {
        let mut conn = self.pool.acquire().await?;
        load_world(&mut conn, q).await
    }
}
