//! Bouncing contacts (SPEC §7.2, §7.5): an outbox item that failed permanently (a 5xx
//! answer, or a DSN to its VERP address) counts against its recipient; three in a row mark
//! the contact bouncing. Nothing is sent to a bouncing contact (the view decides that from
//! `ContactSnap::bouncing`) until a coordinator clears the mark.

use super::Conn;
use super::{history, Result, Store, StoreError};
use crate::model::OutboxId;

/// How many permanent failures in a row make a contact bouncing (SPEC §7.5).
pub const IN_A_ROW: usize = 3;

/// Outbox item `outbox` failed permanently. The one rule: its recipient is bouncing when
/// the last [`IN_A_ROW`] outcomes of messages to them (sent, or failed permanently; items
/// dropped unsent do not count) since the mark was last cleared are all permanent
/// failures. Returns whether the contact became bouncing now.
pub(crate) async fn permanent_failure(conn: &mut Conn, outbox: OutboxId, now: i64) -> Result<bool> {
    let failed = sqlx::query(
        "UPDATE outbox SET permanent_failure = TRUE WHERE id = $1 AND state = 'failed'",
    )
    .bind(outbox)
    .execute(&mut *conn)
    .await?;
    if failed.rows_affected() == 0 {
        return Ok(false);
    }
    let rcpt: Option<String> = sqlx::query_scalar("SELECT rcpt FROM outbox WHERE id = $1")
        .bind(outbox)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(rcpt) = rcpt else { return Ok(false) };
    let contact: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT id, bounce_reset_at, CAST(bouncing AS INTEGER) FROM contacts WHERE email = $1",
    )
    .bind(rcpt.to_ascii_lowercase())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((contact, reset_at, 0)) = contact else {
        return Ok(false);
    };
    let last: Vec<i64> = sqlx::query_scalar(
        "SELECT CAST(permanent_failure AS INTEGER) FROM outbox
          WHERE rcpt = $1 AND (state = 'sent' OR permanent_failure) AND updated_at >= $2
          ORDER BY updated_at DESC, id DESC LIMIT $3",
    )
    .bind(&rcpt)
    .bind(reset_at)
    .bind(IN_A_ROW as i64)
    .fetch_all(&mut *conn)
    .await?;
    if last.len() < IN_A_ROW || !last.iter().all(|f| *f != 0) {
        return Ok(false);
    }
    let changed = sqlx::query("UPDATE contacts SET bouncing = TRUE, bouncing_since = $1 WHERE id = $2 AND bouncing = FALSE")
        .bind(now)
        .bind(contact)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if changed > 0 {
        history::record(
            conn,
            "contact-bouncing",
            None,
            None,
            None,
            &format!("{rcpt}: {IN_A_ROW} permanent failures in a row"),
        )
        .await?;
    }
    Ok(changed > 0)
}

impl Store {
    /// [`permanent_failure`] in its own transaction (after an SMTP 5xx).
    pub async fn note_permanent_failure(&self, outbox: OutboxId, now: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let became = permanent_failure(&mut tx, outbox, now).await?;
        tx.commit().await?;
        Ok(became)
    }

    /// A coordinator clears the mark: messages go to the address again, and only failures
    /// from now on count.
    pub async fn clear_bouncing(&self, email: &str, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let email = email.trim().to_ascii_lowercase();
        let changed = sqlx::query("UPDATE contacts SET bouncing = FALSE, bouncing_since = NULL, bounce_reset_at = $1 WHERE email = $2")
            .bind(now)
            .bind(&email)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound(format!("no contact {email}")));
        }
        history::record(
            &mut tx,
            "contact-bouncing-cleared",
            None,
            None,
            None,
            &email,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
