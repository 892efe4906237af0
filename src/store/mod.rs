//! Storage: the only place with SQL. SQLite (one file, WAL) is the embedded default.
//!
//! Queries use `$1`-style placeholders and portable types (i64, text, blob, bool) so the
//! same statements run on PostgreSQL once that backend is added (SPEC §9).

pub mod bouncing;
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
pub mod schedule;
pub mod status;
pub mod world;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};
use std::path::Path;
use std::sync::Arc;
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
    #[error("cannot make the database durable: {0}")]
    Durability(std::io::Error),
}

/// SQLite primary result codes (<https://www.sqlite.org/rescode.html>) after which a retry
/// may succeed: another connection holds a lock, the disk is full, the file system is
/// read-only, failing or the file cannot be opened right now. Extended codes carry the
/// primary code in their low byte (`SQLITE_IOERR_WRITE` = 778 = 10 | 3 << 8).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_READONLY: i32 = 8;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
const TRANSIENT_SQLITE_CODES: [i32; 6] =
    [SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN];

/// Whether an SQLite result code (primary or extended, as sqlx reports it) is transient.
pub(crate) fn sqlite_code_is_transient(code: i32) -> bool {
    TRANSIENT_SQLITE_CODES.contains(&(code & 0xff))
}

/// Whether retrying after `e` may succeed: classified by the SQLite result code, never by
/// the message text; the I/O, pool and worker failures of sqlx itself count as transient.
fn sql_is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(sqlite_code_is_transient),
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

impl StoreError {
    /// Whether retrying later may succeed (a locked, full, read-only or unreachable database).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Sql(e) => sql_is_transient(e),
            StoreError::Durability(_) => true,
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e))
            | StoreError::Migrate(sqlx::migrate::MigrateError::ExecuteMigration(e, _)) => sql_is_transient(e),
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Connection options (`[database]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a statement waits for another connection's lock (SQLITE_BUSY after it).
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { busy_timeout: Duration::from_secs(30) }
    }
}

/// A handle on the database.
#[derive(Clone, Debug)]
pub struct Store {
    pub pool: DbPool,
    /// One writer at a time in this process: writers queue here in order instead of
    /// polling SQLite's lock with its busy handler's sleeps (1 ms to 100 ms each).
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction and this process's writer turn, held until it ends.
#[derive(Debug)]
pub struct WriteTx {
    tx: Tx<'static>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &sqlx::SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.tx
    }
}

/// Milliseconds since the Unix epoch. The shell reads the clock; the core is given `now`.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Open (creating if missing) and migrate the database at `url`
    /// (`sqlite://path/to/file.db` or `sqlite::memory:`).
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, &StoreOptions::default()).await
    }

    /// [`Store::open`] with connection options from the configuration.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Store> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new().max_connections(max).connect_with(opts).await?;
        let store = Store::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A write transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`), so a
    /// transaction that reads before it writes waits for another writer (busy timeout)
    /// instead of failing when that writer commits first.
    pub fn from_pool(pool: DbPool) -> Store {
        Store { pool, writer: Arc::new(tokio::sync::Mutex::new(())) }
    }

    /// A write transaction (`BEGIN IMMEDIATE`: the write lock from the start), after this
    /// process's earlier writers.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let turn = Arc::clone(&self.writer).lock_owned().await;
        Ok(WriteTx { tx: self.pool.begin_with("BEGIN IMMEDIATE").await?, _turn: turn })
    }

    /// Make every commit so far durable, before a source is acknowledged (SPEC §3 stage 8).
    ///
    /// Commits run with `synchronous=NORMAL` in WAL mode: they are in the WAL file but maybe
    /// not yet on disk, and a power loss could undo them. This syncs the WAL file, then the
    /// database file and their directory (a WAL file may be new). The WAL holds commits in
    /// order, so one sync after a batch covers every commit of the batch, and those of other
    /// connections and processes before it; a WAL that is gone or was restarted was first
    /// checkpointed into the database file, which SQLite synced then and this syncs again.
    /// Why this and not `synchronous=FULL` on every commit: docs/decisions.md.
    pub async fn make_durable(&self) -> Result<()> {
        let db = self.pool.connect_options().get_filename().to_path_buf();
        tokio::task::spawn_blocking(move || sync_database_files(&db))
            .await
            .map_err(|e| StoreError::Durability(std::io::Error::other(e)))?
            .map_err(StoreError::Durability)
    }

    /// Run the migrations in `migrations/sqlite` that have not run yet.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }
}

/// fsync the WAL file (when there is one), the database file and their directory. An
/// in-memory database (sqlx names it `file:sqlx-in-memory-…`) has nothing to sync.
fn sync_database_files(db: &Path) -> std::io::Result<()> {
    if db.to_string_lossy().starts_with("file:") && !db.exists() {
        return Ok(());
    }
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    match std::fs::File::open(&wal) {
        Ok(f) => f.sync_all()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::File::open(db)?.sync_all()?;
    let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn make_durable_syncs_file_databases_and_passes_over_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let s = Store::open(&format!("sqlite://{}", path.display())).await.unwrap();
        sqlx::query("INSERT INTO history (at, kind) VALUES (1, 'x')").execute(&s.pool).await.unwrap();
        assert!(dir.path().join("d.db-wal").exists(), "WAL mode keeps the commit in the WAL file");
        s.make_durable().await.unwrap();
        let m = Store::open("sqlite::memory:").await.unwrap();
        m.make_durable().await.unwrap();
        std::fs::remove_file(&path).unwrap();
        let gone = s.make_durable().await.unwrap_err();
        assert!(matches!(gone, StoreError::Durability(_)) && gone.is_transient(), "{gone}");
    }

    #[test]
    fn transient_codes_include_the_extended_ones() {
        for code in [5, 6, 8, 10, 13, 14, 261, 517, 264, 778, 1034, 3338, 270] {
            assert!(sqlite_code_is_transient(code), "{code}");
        }
        for code in [1, 11, 19, 2067, 787, 20, 0] {
            assert!(!sqlite_code_is_transient(code), "{code}");
        }
    }

    /// The classification reads the result code: a constraint whose message says "locked"
    /// is not transient, a write refused by a read-only connection is.
    #[tokio::test]
    async fn errors_are_classified_by_result_code_not_text() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let s = Store::open(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (state TEXT CONSTRAINT database_is_locked_busy CHECK (state <> 'x'))")
            .execute(&s.pool)
            .await
            .unwrap();
        let check = sqlx::query("INSERT INTO t VALUES ('x')").execute(&s.pool).await.unwrap_err();
        assert!(check.to_string().contains("locked"), "{check}");
        assert!(!StoreError::from(check).is_transient());
        let ro = Store::from_pool(SqlitePoolOptions::new().connect(&format!("{url}?mode=ro")).await.unwrap());
        let refused = sqlx::query("INSERT INTO t VALUES ('y')").execute(&ro.pool).await.unwrap_err();
        assert!(StoreError::from(refused).is_transient());
        assert!(!StoreError::NotFound("x".into()).is_transient());
    }
}
