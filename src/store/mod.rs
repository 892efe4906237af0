//! Storage: the only place with SQL. SQLite (one file, WAL) is the embedded default;
//! PostgreSQL (`postgres://...`) serves several instances of one gateway (SPEC §9).
//!
//! One code path for both engines through sqlx's `Any` driver: queries use `$1`-style
//! placeholders and portable types (i64, text, blob). Booleans are read as integers
//! (`CAST(col AS INTEGER)`: the `Any` driver reads neither an SQLite BOOLEAN column nor an
//! integer as `bool`) and written as `bool`. Where the SQL must differ (transaction start,
//! claims, scalar min) both statements stand side by side in the one function, chosen by
//! [`Engine`].

pub mod bouncing;
pub mod cases;
pub mod copy;
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

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, Executor, Pool};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::str::FromStr;
use std::time::Duration;

/// The database interface: one for both engines.
pub type Db = Any;
pub type DbPool = Pool<Db>;
pub type Tx<'a> = sqlx::Transaction<'a, Db>;
/// A connection (or a transaction, through `&mut *tx`).
pub type Conn = sqlx::AnyConnection;

/// The database engine behind a URL or a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine a database URL names (`sqlite:` or `postgres://` / `postgresql://`).
    pub fn of_url(url: &str) -> Option<Engine> {
        if url.starts_with("sqlite:") {
            Some(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Engine::Postgres)
        } else {
            None
        }
    }

    /// The engine of an open connection.
    pub fn of(conn: &Conn) -> Engine {
        if conn.backend_name() == "PostgreSQL" {
            Engine::Postgres
        } else {
            Engine::Sqlite
        }
    }
}

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

/// PostgreSQL SQLSTATE codes (<https://www.postgresql.org/docs/15/errcodes-appendix.html>)
/// after which a retry may succeed: the connection failed (class 08), a serialization
/// failure or deadlock (40001, 40P01), the server is short of resources (class 53), shut
/// down, restarting or not yet accepting connections (57P01, 57P02, 57P03), a lock could not
/// be had (55P03), or the server is a read-only standby right now (25006).
fn pg_code_is_transient(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || ["40001", "40P01", "57P01", "57P02", "57P03", "55P03", "25006"].contains(&code)
}

/// The unique indexes that keep ingest exactly-once (SPEC §3 stage 8). On PostgreSQL two
/// transactions can both pass the duplicate check; the index then refuses the second, and
/// offering that mail again finds it a duplicate: so the refusal is transient.
const EXACTLY_ONCE_INDEXES: [&str; 2] = ["posts_one_per_inbound", "inbound_one_effect_per_message_id"];
const PG_UNIQUE_VIOLATION: &str = "23505";

/// Whether retrying after `e` may succeed: classified by the engine's result code, never by
/// the message text; the I/O, pool and worker failures of sqlx itself count as transient.
fn sql_is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() => {
            let code = db.code().unwrap_or_default();
            pg_code_is_transient(&code)
                || (code == PG_UNIQUE_VIOLATION && db.constraint().is_some_and(|c| EXACTLY_ONCE_INDEXES.contains(&c)))
        }
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

/// `$1, $2, …, $n`. sqlx's query builder writes `?` for the `Any` driver, which PostgreSQL
/// refuses; numbered placeholders run on both engines.
pub(crate) fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `($1, $2), ($3, $4)`: `rows` tuples of `cols` numbered placeholders (for `VALUES`).
pub(crate) fn value_rows(rows: usize, cols: usize) -> String {
    let row = |r: usize| (1..=cols).map(|c| format!("${}", r * cols + c)).collect::<Vec<_>>().join(", ");
    (0..rows).map(|r| format!("({})", row(r))).collect::<Vec<_>>().join(", ")
}

/// A handle on the database.
#[derive(Clone, Debug)]
pub struct Store {
    pub pool: DbPool,
    pub engine: Engine,
    /// The SQLite database file (none in memory and on PostgreSQL).
    file: Option<PathBuf>,
    /// One writer at a time in this process: writers queue here in order instead of
    /// polling the database's lock (SQLite's busy handler sleeps 1 ms to 100 ms a time).
    writer: Writer,
}

/// This process's writer turn.
#[derive(Debug, Clone, Default)]
struct Writer(Arc<tokio::sync::Mutex<()>>);

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
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.tx
    }
}

/// Milliseconds since the Unix epoch. The shell reads the clock; the core is given `now`.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The key of the PostgreSQL advisory lock that serializes write transactions
/// ([`Store::begin_write`]); any constant unlikely to be used by another application.
const PG_WRITE_LOCK: i64 = 0x6361_7365_6761_7465; // "casegate"

impl Store {
    /// Open (creating if missing) and migrate the database at `url`
    /// (`sqlite://path/to/file.db`, `sqlite::memory:` or `postgres://user@host/db`).
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, &StoreOptions::default()).await
    }

    /// [`Store::open`] with connection options from the configuration.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Store> {
        let store = Store::connect(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Open without migrating (`db copy` reads a source as it is).
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        match Engine::of_url(url) {
            Some(Engine::Sqlite) => Store::connect_sqlite(url, options).await,
            Some(Engine::Postgres) => {
                let opts = AnyConnectOptions::from_str(url)?;
                let pool = AnyPoolOptions::new().max_connections(8).acquire_timeout(options.busy_timeout).connect_with(opts).await?;
                Ok(Store { pool, engine: Engine::Postgres, file: None, writer: Writer::default() })
            }
            None => Err(StoreError::Invalid(format!("{url:?}: not a sqlite: or postgres:// URL"))),
        }
    }

    /// SQLite through the `Any` driver: the URL creates a missing file (`mode=rwc`), and each
    /// connection sets WAL, `synchronous=NORMAL`, foreign keys and the busy timeout.
    async fn connect_sqlite(url: &str, options: &StoreOptions) -> Result<Store> {
        let native = SqliteConnectOptions::from_str(url)?;
        let memory = url.contains(":memory:");
        let file = (!memory).then(|| native.get_filename().to_path_buf());
        let url = if memory || url.contains("mode=") {
            url.to_string()
        } else {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        };
        let busy_ms = options.busy_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(if memory { 1 } else { 4 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout = {busy_ms}"))).await?;
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
            .connect_with(AnyConnectOptions::from_str(&url)?)
            .await?;
        Ok(Store { pool, engine: Engine::Sqlite, file, writer: Writer::default() })
    }

    /// A write transaction that waits for every other writer first, on both engines, so
    /// that a transaction reading before it writes sees the last commit of the others:
    /// SQLite takes its write lock at once (`BEGIN IMMEDIATE`, waiting up to the busy
    /// timeout); PostgreSQL takes one transaction-scoped advisory lock that every write
    /// transaction of every instance takes (docs/decisions.md).
    /// Within this process, writers first queue on one lock (in order, no polling).
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let turn = Arc::clone(&self.writer.0).lock_owned().await;
        let tx = match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_WRITE_LOCK).execute(&mut *tx).await?;
                tx
            }
        };
        Ok(WriteTx { tx, _turn: turn })
    }

    /// Make every commit so far durable, before a source is acknowledged (SPEC §3 stage 8).
    ///
    /// PostgreSQL: a commit returns once its WAL record is flushed (`synchronous_commit`
    /// on, the default), so there is nothing more to do. SQLite: commits run with
    /// `synchronous=NORMAL` in WAL mode: they are in the WAL file but maybe
    /// not yet on disk, and a power loss could undo them. This syncs the WAL file, then the
    /// database file and their directory (a WAL file may be new). The WAL holds commits in
    /// order, so one sync after a batch covers every commit of the batch, and those of other
    /// connections and processes before it; a WAL that is gone or was restarted was first
    /// checkpointed into the database file, which SQLite synced then and this syncs again.
    /// Why this and not `synchronous=FULL` on every commit: docs/decisions.md.
    pub async fn make_durable(&self) -> Result<()> {
        let Some(db) = self.file.clone() else { return Ok(()) };
        tokio::task::spawn_blocking(move || sync_database_files(&db))
            .await
            .map_err(|e| StoreError::Durability(std::io::Error::other(e)))?
            .map_err(StoreError::Durability)
    }

    /// Run the migrations of the engine (`migrations/sqlite` or `migrations/postgres`, the
    /// same numbers and meaning) that have not run yet.
    pub async fn migrate(&self) -> Result<()> {
        match self.engine {
            Engine::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Engine::Postgres => sqlx::migrate!("migrations/postgres").run(&self.pool).await?,
        }
        Ok(())
    }
}

/// fsync the WAL file (when there is one), the database file and their directory.
fn sync_database_files(db: &Path) -> std::io::Result<()> {
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
    fn numbered_placeholders_for_lists_and_rows() {
        assert_eq!(placeholders(3), "$1, $2, $3");
        assert_eq!(value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
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
        let ro = Store::connect(&format!("{url}?mode=ro"), &StoreOptions::default()).await.unwrap();
        let refused = sqlx::query("INSERT INTO t VALUES ('y')").execute(&ro.pool).await.unwrap_err();
        assert!(StoreError::from(refused).is_transient());
        assert!(!StoreError::NotFound("x".into()).is_transient());
    }
}
