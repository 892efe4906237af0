//! `casegate db copy`: move a gateway from one database to another (SQLite to PostgreSQL or
//! back), every table with its ids, checked by row counts and checksums per table.

use super::{Conn, Engine, Result, Store, StoreError};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// Every table, parents before children (foreign keys hold at each insert).
const TABLES: [&str; 24] = [
    "orgs", "org_domains", "contacts", "cases", "threads", "participants", "reports", "inbound_messages",
    "posts", "attachments", "message_index", "quarantine", "outbox", "vendor_status", "digest_queue",
    "history", "imap_checkpoints", "imap_leases", "certs", "keyring_state", "pgp_ciphertexts", "inbound_chunks",
    "vendor_status_history", "schedule_runs",
];

/// `keyring_state` holds one row from its migration on every database, empty or not.
const SEEDED: &str = "keyring_state";

/// One table as copied: its rows and their checksum (order-independent: the sum of each
/// row's SHA-256 prefix, so both engines agree whatever order they return rows in).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCopy {
    pub table: &'static str,
    pub rows: i64,
    pub checksum: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Bool,
    Bytes,
    Text,
}

impl Kind {
    /// The kind of a declared column type (SQLite) or data type (PostgreSQL).
    fn of(declared: &str) -> Kind {
        let t = declared.to_ascii_uppercase();
        if t.contains("BOOL") {
            Kind::Bool
        } else if t.contains("INT") {
            Kind::Int
        } else if t.contains("BLOB") || t.contains("BYTEA") {
            Kind::Bytes
        } else {
            Kind::Text
        }
    }
}

/// One value, engine-neutral.
#[derive(Debug, Clone)]
enum Value {
    Int(Option<i64>),
    Bool(Option<bool>),
    Bytes(Option<Vec<u8>>),
    Text(Option<String>),
}

impl Value {
    fn hash_into(&self, h: &mut Sha256) {
        let part = match self {
            Value::Int(v) => v.map(|i| format!("i{i}")),
            Value::Bool(v) => v.map(|b| format!("i{}", i64::from(b))),
            Value::Text(v) => v.as_ref().map(|s| format!("t{}:{s}", s.len())),
            Value::Bytes(v) => v.as_ref().map(|b| format!("b{}:{}", b.len(), hex::encode(b))),
        };
        h.update(part.unwrap_or_else(|| "n".into()).as_bytes());
        h.update(b"\x1f");
    }
}

/// The columns of `table` and their kinds, in order.
async fn columns(conn: &mut Conn, table: &str) -> Result<Vec<(String, Kind)>> {
    let rows: Vec<(String, String)> = match Engine::of(conn) {
        Engine::Sqlite => sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid").bind(table).fetch_all(&mut *conn).await?,
        Engine::Postgres => {
            sqlx::query_as(
                "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT) FROM information_schema.columns
                  WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    Ok(rows.into_iter().map(|(n, t)| (n, Kind::of(&t))).collect())
}

fn decode(row: &AnyRow, i: usize, kind: Kind) -> Result<Value> {
    Ok(match kind {
        Kind::Int => Value::Int(row.try_get(i)?),
        Kind::Bool => Value::Bool(row.try_get::<Option<i64>, _>(i)?.map(|v| v != 0)),
        Kind::Bytes => Value::Bytes(row.try_get(i)?),
        Kind::Text => Value::Text(row.try_get(i)?),
    })
}

/// Every row of `table` (booleans read as integers).
async fn read_rows(conn: &mut Conn, table: &str, cols: &[(String, Kind)]) -> Result<Vec<Vec<Value>>> {
    let list: Vec<String> =
        cols.iter().map(|(n, k)| if *k == Kind::Bool { format!("CAST({n} AS INTEGER)") } else { n.clone() }).collect();
    // Table and column names come from TABLES and the schema, never from input.
    let rows = sqlx::query(AssertSqlSafe(format!("SELECT {} FROM {table}", list.join(", ")))).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| cols.iter().enumerate().map(|(i, (_, k))| decode(r, i, *k)).collect()).collect()
}

fn summarize(table: &'static str, rows: &[Vec<Value>]) -> TableCopy {
    let sum = rows.iter().fold(0u64, |acc, row| {
        let mut h = Sha256::new();
        row.iter().for_each(|v| v.hash_into(&mut h));
        let d = h.finalize();
        acc.wrapping_add(u64::from_be_bytes(d[..8].try_into().unwrap_or_default()))
    });
    TableCopy { table, rows: rows.len() as i64, checksum: format!("{sum:016x}") }
}

async fn insert_rows(conn: &mut Conn, table: &str, cols: &[(String, Kind)], rows: Vec<Vec<Value>>) -> Result<()> {
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    let sql = format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), super::placeholders(cols.len()));
    for row in rows {
        let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
        for v in row {
            q = match v {
                Value::Int(x) => q.bind(x),
                Value::Bool(x) => q.bind(x),
                Value::Bytes(x) => q.bind(x),
                Value::Text(x) => q.bind(x),
            };
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The counts and checksums of every table.
async fn survey(conn: &mut Conn) -> Result<Vec<TableCopy>> {
    let mut out = Vec::new();
    for table in TABLES {
        let cols = columns(conn, table).await?;
        out.push(summarize(table, &read_rows(conn, table, &cols).await?));
    }
    Ok(out)
}

impl Store {
    /// Copy every table of this gateway into `to`, which must be empty (both migrated to
    /// the same schema), ids kept; PostgreSQL identity sequences continue after the
    /// highest id. Checked afterwards: each table's row count and checksum must match.
    pub async fn copy_to(&self, to: &Store) -> Result<Vec<TableCopy>> {
        let mut src = self.pool.acquire().await?;
        let mut tx = to.begin_write().await?;
        for table in TABLES.iter().filter(|t| **t != SEEDED) {
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).fetch_one(&mut *tx).await?;
            if n > 0 {
                return Err(StoreError::Invalid(format!("the target database is not empty: {table} has {n} rows")));
            }
        }
        sqlx::query("DELETE FROM keyring_state").execute(&mut *tx).await?;
        let mut copied = Vec::new();
        for table in TABLES {
            let cols = columns(&mut src, table).await?;
            let rows = read_rows(&mut src, table, &cols).await?;
            copied.push(summarize(table, &rows));
            insert_rows(&mut tx, table, &cols, rows).await?;
            if to.engine == Engine::Postgres && cols.iter().any(|(n, _)| n == "id") && table != SEEDED {
                let sql = format!("SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}");
                sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
            }
        }
        let arrived = survey(&mut tx).await?;
        if let Some((a, b)) = copied.iter().zip(&arrived).find(|(a, b)| a != b) {
            return Err(StoreError::Invalid(format!(
                "{}: {} rows (checksum {}) copied but {} rows (checksum {}) arrived; nothing was kept",
                a.table, a.rows, a.checksum, b.rows, b.checksum
            )));
        }
        tx.commit().await?;
        Ok(copied)
    }
}
