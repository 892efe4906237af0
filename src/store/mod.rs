//! Storage: the only place with SQL. SQLite (one file, WAL) is the embedded default.
//!
//! Queries use `$1`-style placeholders and portable types (i64, text, blob, bool) so the
//! same statements run on PostgreSQL once that backend is added (SPEC §9).

pub mod cases;
pub mod deliveries;
pub mod digest;
pub mod directory;
pub mod history;
pub mod imap;
pub mod inbound;
pub mod keys;
pub mod metrics;
pub mod posts;
pub mod quarantine;
pub mod outbox;
pub mod oversize;
pub mod world;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};
use std::str::FromStr;
use std::time::Duration;

/// The database backend in use.
pub type Db = Sqlite;
pub type DbPool = Pool<Db>;
pub type Tx<'a> = sqlx::Transaction<'a, Db>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether retrying later may succeed (a locked or unreachable database).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Sql(sqlx::Error::Database(e)) => {
                let m = e.message().to_ascii_lowercase();
                m.contains("locked") || m.contains("busy")
            }
            StoreError::Sql(sqlx::Error::Io(_))
            | StoreError::Sql(sqlx::Error::PoolTimedOut)
            | StoreError::Sql(sqlx::Error::PoolClosed) => true,
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle on the database.
#[derive(Clone, Debug)]
pub struct Store {
    pub pool: DbPool,
}

/// Milliseconds since the Unix epoch. The shell reads the clock; the core is given `now`.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Open (creating if missing) and migrate the database at `url`
    /// (`sqlite://path/to/file.db` or `sqlite::memory:`).
    pub async fn open(url: &str) -> Result<Store> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new().max_connections(max).connect_with(opts).await?;
        let store = Store { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// A write transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`), so a
    /// transaction that reads before it writes waits for another writer (busy timeout)
    /// instead of failing when that writer commits first.
    pub async fn begin_write(&self) -> Result<Tx<'static>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Run the migrations in `migrations/sqlite` that have not run yet.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }
}
