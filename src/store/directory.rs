//! Organizations and contacts.

use super::{now_ms, Result, Store, StoreError};
use crate::model::{ContactId, ContactSnap, NotifyMode, OrgId, OrgKind, OrgSnap};
use super::world::select_in;
use super::Conn;
use sqlx::AssertSqlSafe;

type ContactRow = (i64, String, String, Option<i64>, String, i64, i64);

fn contact_from_row(r: ContactRow) -> ContactSnap {
    ContactSnap {
        id: r.0,
        email: r.1,
        name: r.2,
        org: r.3,
        notify: NotifyMode::parse(&r.4).unwrap_or(NotifyMode::Immediate),
        encrypt_only: r.5 != 0,
        bouncing: r.6 != 0,
    }
}

pub(crate) const CONTACT_COLS: &str = "id, email, name, org_id, notify, CAST(encrypt_only AS INTEGER), CAST(bouncing AS INTEGER)";

/// A new contact's fields.
#[derive(Debug, Clone)]
pub struct NewContact<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub org: Option<OrgId>,
    pub notify: NotifyMode,
    pub encrypt_only: bool,
}

impl Store {
    pub async fn add_org(&self, name: &str, kind: OrgKind, domains: &[String]) -> Result<OrgId> {
        let mut tx = self.begin_write().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM orgs WHERE lower(name) = lower($1)")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::Invalid(format!("organization {name:?} exists already")));
        }
        let id: i64 = sqlx::query_scalar("INSERT INTO orgs (name, kind, created_at) VALUES ($1, $2, $3) RETURNING id")
            .bind(name)
            .bind(kind.as_str())
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        for d in domains {
            sqlx::query("INSERT INTO org_domains (org_id, domain) VALUES ($1, $2)")
                .bind(id)
                .bind(d.trim().to_ascii_lowercase())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn list_orgs(&self) -> Result<Vec<OrgSnap>> {
        let mut conn = self.pool.acquire().await?;
        orgs_where(&mut conn, "1 = 1", None).await
    }

    pub async fn org_by_name(&self, name: &str) -> Result<OrgSnap> {
        let mut conn = self.pool.acquire().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM orgs WHERE lower(name) = lower($1)")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
        let id = id.ok_or_else(|| StoreError::NotFound(format!("no organization named {name:?}")))?;
        let mut v = orgs_where(&mut conn, "id = $1", Some(id)).await?;
        v.pop().ok_or_else(|| StoreError::NotFound(format!("no organization named {name:?}")))
    }

    pub async fn add_contact(&self, c: &NewContact<'_>) -> Result<ContactId> {
        let mut conn = self.pool.acquire().await?;
        let email = c.email.trim().to_ascii_lowercase();
        if !email.contains('@') {
            return Err(StoreError::Invalid(format!("{email:?} is not a mail address")));
        }
        if contact_by_email(&mut conn, &email).await?.is_some() {
            return Err(StoreError::Invalid(format!("contact {email} exists already")));
        }
        insert_contact(&mut conn, c).await
    }

    pub async fn list_contacts(&self) -> Result<Vec<ContactSnap>> {
        let rows: Vec<ContactRow> = sqlx::query_as(AssertSqlSafe(format!("SELECT {CONTACT_COLS} FROM contacts ORDER BY id")))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(contact_from_row).collect())
    }

    pub async fn contact_by_email(&self, email: &str) -> Result<ContactSnap> {
        let mut conn = self.pool.acquire().await?;
        contact_by_email(&mut conn, email)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no contact {email}")))
    }
}

pub(crate) async fn insert_contact(conn: &mut Conn, c: &NewContact<'_>) -> Result<ContactId> {
    let id = sqlx::query_scalar(
        "INSERT INTO contacts (email, name, org_id, notify, encrypt_only, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(c.email.trim().to_ascii_lowercase())
    .bind(c.name)
    .bind(c.org)
    .bind(c.notify.as_str())
    .bind(c.encrypt_only)
    .bind(now_ms())
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

pub(crate) async fn contact_by_email(conn: &mut Conn, email: &str) -> Result<Option<ContactSnap>> {
    let row: Option<ContactRow> = sqlx::query_as(AssertSqlSafe(format!("SELECT {CONTACT_COLS} FROM contacts WHERE email = $1")))
        .bind(email.trim().to_ascii_lowercase())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(contact_from_row))
}

/// Organizations matching a WHERE clause with one optional i64 parameter, with domains.
pub(crate) async fn orgs_where(conn: &mut Conn, clause: &str, arg: Option<i64>) -> Result<Vec<OrgSnap>> {
    let sql = format!("SELECT id, name, kind FROM orgs WHERE {clause} ORDER BY id");
    let rows: Vec<OrgRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(arg).fetch_all(&mut *conn).await?;
    with_domains(conn, rows).await
}

type OrgRow = (i64, String, String);

/// Contacts whose `column` (a column name of ours, never input) is one of `values`.
pub(crate) async fn contacts_in<T>(conn: &mut Conn, column: &'static str, values: &[T]) -> Result<Vec<ContactSnap>>
where
    T: for<'q> sqlx::Encode<'q, super::Db> + sqlx::Type<super::Db> + Clone + Send + 'static,
{
    let head = format!("SELECT {CONTACT_COLS} FROM contacts WHERE {column} IN");
    let rows: Vec<ContactRow> = select_in(conn, &head, "ORDER BY id", values).await?;
    Ok(rows.into_iter().map(contact_from_row).collect())
}

/// The organizations with these ids, with their domains, in id order: two statements.
pub(crate) async fn orgs_in(conn: &mut Conn, ids: &[i64]) -> Result<Vec<OrgSnap>> {
    let mut rows: Vec<OrgRow> = select_in(conn, "SELECT id, name, kind FROM orgs WHERE id IN", "", ids).await?;
    rows.sort();
    with_domains(conn, rows).await
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn with_domains(conn: &mut Conn, rows: Vec<OrgRow>) -> Result<Vec<OrgSnap>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let mut domains: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    for (org, domain) in select_in::<(i64, String), _>(conn, "SELECT org_id, domain FROM org_domains WHERE org_id IN", "", &ids).await? {
        domains.entry(org).or_default().push(domain);
    }
    Ok(rows
        .into_iter()
        .map(|(id, name, kind)| OrgSnap {
            id,
            name,
            kind: OrgKind::parse(&kind).unwrap_or(OrgKind::Vendor),
            domains: domains.remove(&id).map(sorted).unwrap_or_default(),
        })
        .collect())
}
