//! `casegate db copy`: a seeded gateway on SQLite copied into an empty database (PostgreSQL
//! when CASEGATE_TEST_DATABASE_URL names a server, else another SQLite file), every table
//! with its ids, counts and checksums checked; the copy works on; a non-empty target is
//! refused.

mod support;

use casegate::pipeline::Pipeline;
use casegate::store::Store;
use std::process::Command;

fn db_copy(from: &str, to: &str) -> std::process::Output {
    Command::new(support::binary()).args(["db", "copy", "--from", from, "--to", to]).output().expect("run casegate db copy")
}

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).fetch_one(&store.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn db_copy_moves_every_table_with_its_ids_and_refuses_a_non_empty_target() {
    let world: support::WorldDesc = toml::from_str(support::ONE_VENDOR_WORLD).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = support::config_on(dir.path(), &world.gateway, "sqlite://casegate.db");
    let source = Store::open(&cfg.database.url).await.unwrap();
    support::seed(&source, &cfg.gateway.case_prefix, &world).await;
    let pipeline = Pipeline::new(source.clone(), &cfg);
    for i in 0..5 {
        pipeline.ingest(&support::reply(i), "test", &i.to_string()).await.unwrap();
        pipeline.ingest(&support::report(i), "test", &format!("r{i}")).await.unwrap();
    }
    let tables = ["orgs", "contacts", "cases", "threads", "participants", "reports", "inbound_messages", "posts", "outbox", "history"];
    let mut before = Vec::new();
    for t in tables {
        before.push(count(&source, t).await);
    }
    source.pool.close().await;
    let target_url = match std::env::var(support::TEST_DATABASE_ENV) {
        Ok(server) if !server.is_empty() => support::new_postgres_database(&server),
        _ => format!("sqlite://{}/copy.db", dir.path().display()),
    };
    let o = db_copy(&cfg.database.url, &target_url);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "db copy failed: {}{out}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("counts and checksums match"), "{out}");
    let target = Store::open(&target_url).await.unwrap();
    for (t, n) in tables.iter().zip(&before) {
        assert_eq!(count(&target, t).await, *n, "{t}");
    }
    let source = Store::open(&cfg.database.url).await.unwrap();
    let ids = |s: Store| async move {
        let v: Vec<(i64, String)> = sqlx::query_as("SELECT id, sha256 FROM inbound_messages ORDER BY id").fetch_all(&s.pool).await.unwrap();
        v
    };
    assert_eq!(ids(source.clone()).await, ids(target.clone()).await, "ids kept");
    // The copy goes on where the source stopped: new rows get new ids.
    let next = Pipeline::new(target.clone(), &cfg).ingest(&support::reply(99), "test", "after").await.unwrap();
    assert!(next.inbound_id > *before.iter().nth(6).unwrap(), "{next:?}");
    assert_eq!(next.decision, "post");
    let again = db_copy(&cfg.database.url, &target_url);
    assert!(!again.status.success(), "a non-empty target must be refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{}", String::from_utf8_lossy(&again.stderr));
}
