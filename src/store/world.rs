//! Loading a [`World`] snapshot: the cases, reports, threads, organizations and contacts
//! one mail or one post concerns, for the pure core to read.

use super::directory::{contacts_where, orgs_where};
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
    for t in &q.thread_ids {
        let row: Option<(Option<i64>, Option<i64>)> =
            sqlx::query_as("SELECT case_id, report_id FROM threads WHERE id = $1").bind(t).fetch_optional(&mut *conn).await?;
        if let Some((c, r)) = row {
            case_ids.extend(c);
            report_ids.extend(r);
        }
    }
    for p in &q.case_public_ids {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM cases WHERE upper(public_id) = upper($1)")
            .bind(p)
            .fetch_optional(&mut *conn)
            .await?;
        case_ids.extend(id);
    }
    for p in &q.report_public_ids {
        let row: Option<(i64, Option<i64>)> = sqlx::query_as("SELECT id, case_id FROM reports WHERE upper(public_id) = upper($1)")
            .bind(p)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some((r, c)) = row {
            report_ids.insert(r);
            case_ids.extend(c);
        }
    }
    for c in &case_ids {
        let rs: Vec<i64> = sqlx::query_scalar("SELECT id FROM reports WHERE case_id = $1").bind(c).fetch_all(&mut *conn).await?;
        report_ids.extend(rs);
    }
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
    let mut rows: Vec<ThreadRow> = Vec::new();
    const COLS: &str = "SELECT id, kind, case_id, org_id, report_id FROM threads";
    for c in cases {
        rows.extend(
            sqlx::query_as::<_, ThreadRow>(sqlx::AssertSqlSafe(format!("{COLS} WHERE case_id = $1"))).bind(c).fetch_all(&mut *conn).await?,
        );
    }
    for r in reports {
        rows.extend(
            sqlx::query_as::<_, ThreadRow>(sqlx::AssertSqlSafe(format!("{COLS} WHERE report_id = $1"))).bind(r).fetch_all(&mut *conn).await?,
        );
    }
    for t in extra {
        rows.extend(
            sqlx::query_as::<_, ThreadRow>(sqlx::AssertSqlSafe(format!("{COLS} WHERE id = $1"))).bind(t).fetch_optional(&mut *conn).await?,
        );
    }
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
    let mut contacts = Vec::new();
    for org in &org_ids {
        contacts.extend(contacts_where(conn, "org_id = $1", Some(*org)).await?);
    }
    for id in &contact_ids {
        contacts.extend(contacts_where(conn, "id = $1", Some(*id)).await?);
    }
    for e in &q.emails {
        if let Some(c) = super::directory::contact_by_email(conn, e).await? {
            contacts.push(c);
        }
    }
    contacts.sort_by_key(|c| c.id);
    contacts.dedup_by_key(|c| c.id);
    org_ids.extend(contacts.iter().filter_map(|c| c.org));
    for org in &org_ids {
        world.orgs.extend(orgs_where(conn, "id = $1", Some(*org)).await?);
    }
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
