//! The counters behind `/metrics` (SPEC §10), read from the database at scrape time.

use super::Store;

/// Counts behind `/metrics`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// (action, reason) → count of processed inbound mail.
    pub decisions: Vec<(String, String, i64)>,
    pub inbound_total: i64,
    pub quarantine_held: i64,
    /// outbox state → count.
    pub outbox: Vec<(String, i64)>,
}

impl Store {
    /// Read the counters.
    pub async fn metrics(&self) -> super::Result<Snapshot> {
        let decisions: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT COALESCE(action, 'pending'), COALESCE(reason, 'pending'), COUNT(*) FROM inbound_messages
             GROUP BY action, reason ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?;
        let inbound_total = decisions.iter().map(|d| d.2).sum();
        let quarantine_held = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine WHERE state = 'held'").fetch_one(&self.pool).await?;
        let outbox = sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state").fetch_all(&self.pool).await?;
        Ok(Snapshot { decisions, inbound_total, quarantine_held, outbox })
    }
}

