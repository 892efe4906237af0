//! The key store (SPEC §5.4): contacts' certificates, the keyring generation that tells
//! running processes to reload, the OpenPGP evidence of inbound mail and posts, the
//! ciphertexts seen (for the replay rule), and expiry warnings.

use super::Conn;
use super::{history, now_ms, Result, Store, StoreError};
use crate::model::{ContactId, ThreadId};
use crate::pgp::keyring::{self, cert_state, CertRecord, CertState, Expiring, KeySource, Keyring};
use crate::pgp::{PgpState, Protection};
use sequoia_openpgp::Cert;
use tracing::warn;

/// Days before the last usable certificate of a contact expires that coordinators are
/// warned (SPEC §5.4).
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// One stored certificate as listed by `casegate keys list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyRow {
    pub id: i64,
    pub contact: String,
    pub fingerprint: String,
    pub confirmed: bool,
    pub source: String,
    pub user_ids: Vec<String>,
    /// `usable`, `expired`, `revoked`, `no-encryption-key` or `invalid`.
    pub state: String,
    /// When it stops being usable, milliseconds since the epoch.
    pub usable_until_ms: Option<i64>,
}

/// What storing a certificate did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    Updated,
}

async fn generation(conn: &mut Conn) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT generation FROM keyring_state WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(0),
    )
}

async fn bump(conn: &mut Conn) -> Result<()> {
    sqlx::query("UPDATE keyring_state SET generation = generation + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A `certs` row joined with its contact's address.
type CertRow = (i64, i64, String, String, i64, String, Vec<u8>);

async fn records(conn: &mut Conn) -> Result<Vec<CertRecord>> {
    let rows: Vec<CertRow> = sqlx::query_as(
        "SELECT k.id, k.contact_id, c.email, k.fingerprint, CAST(k.confirmed AS INTEGER), k.source, k.bytes
         FROM certs k JOIN contacts c ON c.id = k.contact_id ORDER BY k.confirmed DESC, k.id DESC",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, contact, email, fingerprint, confirmed, source, bytes)| CertRecord {
                id,
                contact,
                email,
                fingerprint,
                confirmed: confirmed != 0,
                source: KeySource::parse(&source).unwrap_or(KeySource::Attachment),
                bytes,
            },
        )
        .collect())
}

/// Rebuilds the keyring of `state` when the stored generation changed. Cheap when nothing
/// changed (one small query); certificates are parsed once per process.
pub async fn refresh(conn: &mut Conn, state: &PgpState) -> Result<()> {
    let g = generation(conn).await?;
    if state.keyring().generation == g {
        return Ok(());
    }
    let (k, problems) = Keyring::build(g, records(conn).await?, &state.cache);
    for p in problems {
        warn!(problem = %p, "stored certificate skipped");
    }
    state.set_keyring(k);
    Ok(())
}

/// Stores a certificate for a contact (public parts only). An existing one is merged with
/// the new copy (new user IDs, subkeys, expiry extensions); `confirmed` only ever turns on.
pub async fn store_cert(
    conn: &mut Conn,
    contact: ContactId,
    cert: &Cert,
    confirmed: bool,
    source: KeySource,
) -> Result<Stored> {
    let now = now_ms();
    let fpr = cert.fingerprint().to_hex();
    let existing: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT id, bytes FROM certs WHERE contact_id = $1 AND fingerprint = $2")
            .bind(contact)
            .bind(&fpr)
            .fetch_optional(&mut *conn)
            .await?;
    let public = cert.clone().strip_secret_key_material();
    let merged = match &existing {
        Some((_, old)) => keyring::parse_certs(old)
            .ok()
            .and_then(|mut v| v.pop())
            .and_then(|old| old.merge_public(public.clone()).ok())
            .unwrap_or(public),
        None => public,
    };
    let bytes = keyring::to_bytes(&merged).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let uids = keyring::emails(&merged, now).join(",");
    let outcome = match existing {
        Some((id, _)) => {
            sqlx::query("UPDATE certs SET bytes = $1, user_ids = $2, confirmed = (confirmed OR $3), updated_at = $4, expiry_warned_at = NULL WHERE id = $5")
                .bind(&bytes)
                .bind(&uids)
                .bind(confirmed)
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            Stored::Updated
        }
        None => {
            sqlx::query(
                "INSERT INTO certs (contact_id, fingerprint, confirmed, source, bytes, user_ids, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(contact)
            .bind(&fpr)
            .bind(confirmed)
            .bind(source.as_str())
            .bind(&bytes)
            .bind(&uids)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Stored::New
        }
    };
    bump(conn).await?;
    Ok(outcome)
}

/// The certificates offered by a sender (SPEC §5.4): stored unconfirmed for that contact,
/// with a history row for the coordinators.
pub async fn store_candidates(
    conn: &mut Conn,
    contact: ContactId,
    candidates: &[crate::pgp::open::Candidate],
    inbound: i64,
) -> Result<()> {
    for c in candidates {
        if store_cert(conn, contact, &c.cert, false, c.source).await? == Stored::New {
            let detail = format!(
                "candidate key {} from {} (unconfirmed)",
                c.cert.fingerprint(),
                c.source.as_str()
            );
            history::record(conn, "key-candidate", None, None, Some(inbound), &detail).await?;
        }
    }
    Ok(())
}

/// Records an opened ciphertext with the thread and sender it came in.
pub async fn record_ciphertext(
    conn: &mut Conn,
    sha256: &str,
    thread: Option<ThreadId>,
    sender: &str,
    inbound: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO pgp_ciphertexts (sha256, thread_id, sender, inbound_id, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(sha256)
        .bind(thread)
        .bind(sender)
        .bind(inbound)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Stores the OpenPGP evidence of an inbound message and of the post made from it.
pub async fn store_protection(
    conn: &mut Conn,
    inbound: i64,
    post: Option<i64>,
    p: &Protection,
) -> Result<()> {
    if p.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_string(p).map_err(|e| StoreError::Invalid(e.to_string()))?;
    sqlx::query("UPDATE inbound_messages SET protection = $1 WHERE id = $2")
        .bind(&json)
        .bind(inbound)
        .execute(&mut *conn)
        .await?;
    if let Some(post) = post {
        sqlx::query("UPDATE posts SET protection = $1 WHERE id = $2")
            .bind(&json)
            .bind(post)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// SPEC §5.4: coordinators are warned once (log and history) when a contact's last usable
/// certificate expires within 14 days. Returns the warnings given now.
pub async fn warn_expiring(conn: &mut Conn, state: &PgpState, now: i64) -> Result<Vec<Expiring>> {
    refresh(conn, state).await?;
    let mut given = Vec::new();
    for e in state
        .keyring()
        .expiring(now, EXPIRY_WARNING_DAYS * 86_400_000)
    {
        let done = sqlx::query("UPDATE certs SET expiry_warned_at = $1 WHERE contact_id = $2 AND fingerprint = $3 AND expiry_warned_at IS NULL")
            .bind(now)
            .bind(e.contact)
            .bind(&e.fingerprint)
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() == 0 {
            continue;
        }
        let when = chrono::DateTime::from_timestamp_millis(e.expires_at_ms)
            .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        let detail = format!(
            "the only usable key of {} ({}) expires {when}",
            e.email, e.fingerprint
        );
        warn!(contact = %e.email, fingerprint = %e.fingerprint, expires = %when, "OpenPGP key expires soon");
        history::record(conn, "key-expiring", None, None, None, &detail).await?;
        given.push(e);
    }
    Ok(given)
}

impl Store {
    /// Every stored certificate with its state at `now`.
    pub async fn list_keys(&self, now: i64) -> Result<Vec<KeyRow>> {
        let mut conn = self.pool.acquire().await?;
        let recs = records(&mut conn).await?;
        let mut out: Vec<KeyRow> = recs
            .into_iter()
            .map(|r| {
                let parsed = keyring::parse_certs(&r.bytes)
                    .ok()
                    .and_then(|mut v| v.pop());
                let state =
                    parsed
                        .as_ref()
                        .map(|c| cert_state(c, now))
                        .unwrap_or(CertState::Invalid {
                            why: "does not parse".into(),
                        });
                let until = match state {
                    CertState::Usable { until_ms } => until_ms,
                    _ => None,
                };
                KeyRow {
                    id: r.id,
                    contact: r.email,
                    fingerprint: r.fingerprint,
                    confirmed: r.confirmed,
                    source: r.source.as_str().into(),
                    user_ids: parsed.map(|c| keyring::emails(&c, now)).unwrap_or_default(),
                    state: state.as_str().into(),
                    usable_until_ms: until,
                }
            })
            .collect();
        out.sort_by(|a, b| a.contact.cmp(&b.contact).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `casegate keys import`: every certificate of the file, confirmed for the contact.
    pub async fn import_keys(
        &self,
        contact_email: &str,
        certs: &[Cert],
    ) -> Result<Vec<(String, Stored)>> {
        let contact = self.contact_by_email(contact_email).await?;
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        for c in certs {
            let s = store_cert(&mut tx, contact.id, c, true, KeySource::Import).await?;
            history::record(
                &mut tx,
                "key-imported",
                None,
                None,
                None,
                &format!("{} for {}", c.fingerprint(), contact.email),
            )
            .await?;
            out.push((c.fingerprint().to_hex(), s));
        }
        tx.commit().await?;
        Ok(out)
    }

    /// `casegate keys confirm` / `keys remove`: the certificates with this fingerprint (of
    /// one contact when given). Returns how many rows changed.
    pub async fn confirm_key(&self, fingerprint: &str, contact: Option<&str>) -> Result<u64> {
        const SQL: &str = "UPDATE certs SET confirmed = TRUE, updated_at = $3
            WHERE fingerprint = $1 AND ($2 IS NULL OR contact_id = (SELECT id FROM contacts WHERE email = $2))";
        self.change_key(SQL, Some(now_ms()), "key-confirmed", fingerprint, contact)
            .await
    }

    pub async fn remove_key(&self, fingerprint: &str, contact: Option<&str>) -> Result<u64> {
        const SQL: &str = "DELETE FROM certs
            WHERE fingerprint = $1 AND ($2 IS NULL OR contact_id = (SELECT id FROM contacts WHERE email = $2))";
        self.change_key(SQL, None, "key-removed", fingerprint, contact)
            .await
    }

    async fn change_key(
        &self,
        sql: &'static str,
        time: Option<i64>,
        event: &str,
        fingerprint: &str,
        contact: Option<&str>,
    ) -> Result<u64> {
        let fpr: String = fingerprint
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let contact = contact.map(str::to_ascii_lowercase);
        let mut tx = self.begin_write().await?;
        let mut q = sqlx::query(sql).bind(&fpr).bind(&contact);
        if let Some(t) = time {
            q = q.bind(t);
        }
        let n = q.execute(&mut *tx).await?.rows_affected();
        if n > 0 {
            bump(&mut tx).await?;
            let whose = contact.map(|c| format!(" for {c}")).unwrap_or_default();
            history::record(&mut tx, event, None, None, None, &format!("{fpr}{whose}")).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Threads and senders a ciphertext came in before.
    pub async fn seen_ciphertext(
        &self,
        sha256: &str,
        except_inbound: i64,
    ) -> Result<Vec<(Option<ThreadId>, String)>> {
        Ok(sqlx::query_as(
            "SELECT thread_id, sender FROM pgp_ciphertexts WHERE sha256 = $1 AND inbound_id <> $2",
        )
        .bind(sha256)
        .bind(except_inbound)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The keyring of `state`, reloaded when the store changed.
    pub async fn refresh_keyring(&self, state: &PgpState) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        refresh(&mut conn, state).await
    }

    /// Gives the expiry warnings that are due (see [`warn_expiring`]).
    pub async fn warn_expiring_keys(&self, state: &PgpState, now: i64) -> Result<Vec<Expiring>> {
        let mut conn = self.pool.acquire().await?;
        warn_expiring(&mut conn, state, now).await
    }

    /// The OpenPGP evidence stored with a post.
    pub async fn post_protection(&self, post: i64) -> Result<Option<Protection>> {
        let json: Option<Option<String>> =
            sqlx::query_scalar("SELECT protection FROM posts WHERE id = $1")
                .bind(post)
                .fetch_optional(&self.pool)
                .await?;
        Ok(json.flatten().and_then(|j| serde_json::from_str(&j).ok()))
    }
}
