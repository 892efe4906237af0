//! Stage 8 writes: posts with their attachments, their deliveries (outbox items) and digest
//! entries, reports with their acknowledgement, quarantine items and bounces. The caller
//! decides every row (audience, content, Message-IDs); here they are only written, with
//! multi-row statements, inside the caller's transaction.

use super::{history, inbound::index_message_id, now_ms, Result};
use crate::delivery::{content_str, NewDelivery, Payload, PostPlan};
use crate::model::*;
use rand::RngCore;
use super::Conn;
use super::value_rows;
use sqlx::AssertSqlSafe;

/// Rows per multi-row statement (SQLite allows 32,766 bound values).
const CHUNK: usize = 500;

/// A post to store.
#[derive(Debug, Clone)]
pub struct NewPost<'a> {
    pub thread: ThreadId,
    /// The thread's case, for the history row.
    pub case: Option<CaseId>,
    pub author: Option<ContactId>,
    pub source: PostSource,
    pub body: &'a str,
    pub attachments: &'a [Attachment],
    pub inbound: Option<i64>,
    pub inbound_message_id: Option<&'a str>,
    pub assurance: Assurance,
    pub pinned: bool,
    /// Lowercase To/Cc of the inbound mail: they have it already (§6.5).
    pub direct: &'a [String],
}

/// What storing a post did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PostResult {
    pub post_id: PostId,
    /// (outbox id, recipient address, kind) of each message queued.
    pub outbox: Vec<(OutboxId, String, String)>,
    /// Recipients who get the post in their daily digest.
    pub digest: Vec<String>,
    /// Readers skipped because they were direct recipients of the mail.
    pub direct: Vec<ContactId>,
}

/// A fresh Message-ID (without angle brackets) at the gateway's domain.
pub fn new_message_id(domain: &str) -> String {
    let mut b = [0u8; 15];
    rand::thread_rng().fill_bytes(&mut b);
    format!("{}@{}", data_encoding::BASE32_NOPAD.encode(&b).to_ascii_lowercase(), domain)
}

pub(crate) async fn insert_post(conn: &mut Conn, p: &NewPost<'_>, fan: &PostPlan) -> Result<PostResult> {
    let now = now_ms();
    let direct_json = serde_json::to_string(p.direct).unwrap_or_else(|_| "[]".into());
    let post_id: i64 = sqlx::query_scalar(
        "INSERT INTO posts (thread_id, author_id, source, body, inbound_id, assurance, pinned, direct_recipients, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(p.thread)
    .bind(p.author)
    .bind(p.source.as_str())
    .bind(p.body)
    .bind(p.inbound)
    .bind(p.assurance.as_str())
    .bind(p.pinned)
    .bind(&direct_json)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    insert_attachments(conn, post_id, p.attachments).await?;
    if let Some(mid) = p.inbound_message_id {
        index_message_id(conn, mid, p.thread, None, None).await?;
    }
    let target = Target { post: Some(post_id), report: None, thread: Some(p.thread) };
    let outbox = insert_deliveries(conn, target, &fan.deliveries, now).await?;
    insert_digest_entries(conn, post_id, &fan.digest, now).await?;
    record_skipped(conn, p.case, Some(p.thread), &fan.bouncing, &format!("post {post_id}")).await?;
    let detail = format!("post {post_id}: {} queued, {} digest", outbox.len(), fan.digest.len());
    history::record(conn, "post", p.case, Some(p.thread), p.inbound, &detail).await?;
    let digest = fan.digest.iter().map(|(_, e)| e.clone()).collect();
    Ok(PostResult { post_id, outbox, digest, direct: fan.direct.clone() })
}

async fn insert_attachments(conn: &mut Conn, post: PostId, attachments: &[Attachment]) -> Result<()> {
    for chunk in attachments.chunks(CHUNK) {
        let sql = format!("INSERT INTO attachments (post_id, filename, content_type, size, sha256, bytes) VALUES {}", value_rows(chunk.len(), 6));
        // Only numbered placeholders are formatted in; the values are bound.
        let q = chunk.iter().fold(sqlx::query(AssertSqlSafe(sql)), |q, a| {
            q.bind(post).bind(&a.filename).bind(&a.content_type).bind(a.bytes.len() as i64).bind(a.sha256_hex()).bind(&a.bytes)
        });
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_digest_entries(conn: &mut Conn, post: PostId, digest: &[(ContactId, String)], now: i64) -> Result<()> {
    for chunk in digest.chunks(CHUNK) {
        let sql = format!("INSERT INTO digest_queue (contact_id, post_id, created_at) VALUES {}", value_rows(chunk.len(), 3));
        let q = chunk.iter().fold(sqlx::query(AssertSqlSafe(sql)), |q, (contact, _)| q.bind(*contact).bind(post).bind(now));
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// SPEC §7.5: a history event for the recipients a message was not queued for because
/// their address bounces.
pub(crate) async fn record_skipped(conn: &mut Conn, case: Option<CaseId>, thread: Option<ThreadId>, bouncing: &[String], what: &str) -> Result<()> {
    for rcpt in bouncing {
        history::record(conn, "delivery-skipped", case, thread, None, &format!("{what} not sent to {rcpt}: the address is bouncing")).await?;
    }
    Ok(())
}

/// What the deliveries of one statement belong to.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Target {
    pub post: Option<PostId>,
    pub report: Option<ReportId>,
    pub thread: Option<ThreadId>,
}

/// Store decided deliveries (pending, rendered when sent) and index their Message-IDs under
/// the thread for In-Reply-To/References. Returns (outbox id, recipient, kind) in order.
pub(crate) async fn insert_deliveries(conn: &mut Conn, t: Target, ds: &[NewDelivery], now: i64) -> Result<Vec<(OutboxId, String, String)>> {
    let mut out = Vec::with_capacity(ds.len());
    for chunk in ds.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO outbox (kind, post_id, report_id, thread_id, contact_id, rcpt, envelope_from, message_id, bytes,
                                 content, payload, next_attempt_at, created_at, updated_at) VALUES {} RETURNING id, message_id",
            value_rows(chunk.len(), 14)
        );
        let q = chunk.iter().fold(sqlx::query_as(AssertSqlSafe(sql)), |q, d| {
            q.bind(d.kind.as_str()).bind(t.post).bind(t.report).bind(t.thread).bind(d.contact)
                .bind(&d.rcpt).bind("").bind(&d.message_id).bind(Vec::<u8>::new())
                .bind(content_str(d.content)).bind(d.payload.to_column()).bind(now).bind(now).bind(now)
        });
        let rows: Vec<(i64, String)> = q.fetch_all(&mut *conn).await?;
        // RETURNING gives no order guarantee: pair the ids by Message-ID.
        let ids: std::collections::HashMap<String, i64> = rows.into_iter().map(|(id, m)| (m, id)).collect();
        for d in chunk {
            let id = ids.get(&d.message_id).copied().unwrap_or_default();
            out.push((id, d.rcpt.clone(), d.kind.as_str().to_string()));
        }
        if let Some(thread) = t.thread {
            index_deliveries(conn, thread, chunk, &ids, now).await?;
        }
    }
    Ok(out)
}

async fn index_deliveries(conn: &mut Conn, thread: ThreadId, ds: &[NewDelivery], ids: &std::collections::HashMap<String, i64>, now: i64) -> Result<()> {
    let sql = format!(
        "INSERT INTO message_index (message_id, thread_id, contact_id, outbox_id, created_at) VALUES {} ON CONFLICT (message_id) DO NOTHING",
        value_rows(ds.len(), 5)
    );
    let q = ds.iter().fold(sqlx::query(AssertSqlSafe(sql)), |q, d| {
        q.bind(&d.message_id).bind(thread).bind(d.contact).bind(ids.get(&d.message_id).copied()).bind(now)
    });
    q.execute(&mut *conn).await?;
    Ok(())
}

/// A new report from a mail to an intake address.
#[derive(Debug, Clone)]
pub struct NewReport<'a> {
    pub from: &'a str,
    pub from_name: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub attachments: &'a [Attachment],
    pub inbound: i64,
    pub inbound_message_id: Option<&'a str>,
    pub assurance: Assurance,
    /// Certificates the reporter offered (stored unconfirmed before the acknowledgement,
    /// which is encrypted to them, SPEC §8).
    pub candidates: &'a [crate::pgp::open::Candidate],
}

/// The acknowledgement a new report gets, if the rate limits allow (SPEC §8, RFC 3834).
#[derive(Debug, Clone)]
pub struct AckPlan {
    /// The bare address it goes to.
    pub rcpt: String,
    pub message_id: String,
    /// None if one went to `rcpt` at or after this time.
    pub sender_since: i64,
    /// None if `global_max` or more went to anyone at or after `global_since`.
    pub global_since: i64,
    pub global_max: i64,
}

/// What opening a report did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportResult {
    pub report: String,
    pub thread: ThreadId,
    pub post: PostResult,
    /// The acknowledgement's outbox id; `None` when not sent or rate-limited.
    pub acknowledgement: Option<OutboxId>,
}

pub(crate) async fn open_report(conn: &mut Conn, r: &NewReport<'_>, fan: &PostPlan, ack: Option<&AckPlan>) -> Result<ReportResult> {
    let now = now_ms();
    let reporter = reporter_contact(conn, r).await?;
    let public_id = super::cases::unused_report_id(conn, now).await?;
    let subject = if r.subject.trim().is_empty() { "(no subject)" } else { r.subject.trim() };
    let report_id: i64 = sqlx::query_scalar(
        "INSERT INTO reports (public_id, reporter_id, subject, assurance, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&public_id)
    .bind(reporter)
    .bind(subject)
    .bind(r.assurance.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let thread: i64 = sqlx::query_scalar("INSERT INTO threads (kind, report_id, created_at) VALUES ('report', $1, $2) RETURNING id")
        .bind(report_id)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
    history::record(conn, "report-opened", None, Some(thread), Some(r.inbound), &public_id).await?;
    super::keys::store_candidates(conn, reporter, r.candidates, r.inbound).await?;
    let np = NewPost { thread, case: None, author: Some(reporter), source: PostSource::Email, body: r.body, attachments: r.attachments, inbound: Some(r.inbound), inbound_message_id: r.inbound_message_id, assurance: r.assurance, pinned: false, direct: &[] };
    let post = insert_post(conn, &np, fan).await?;
    let acknowledgement = match ack {
        Some(plan) => acknowledge(conn, plan, reporter, Target { post: None, report: Some(report_id), thread: Some(thread) }, r.inbound_message_id, now).await?,
        None => None,
    };
    Ok(ReportResult { report: public_id, thread, post, acknowledgement })
}

/// The reporter's contact, created (without an organization) for an unknown sender.
async fn reporter_contact(conn: &mut Conn, r: &NewReport<'_>) -> Result<ContactId> {
    if let Some(c) = super::directory::contact_by_email(conn, r.from).await? {
        return Ok(c.id);
    }
    let name = if r.from_name.trim().is_empty() { r.from } else { r.from_name.trim() };
    let nc = super::directory::NewContact { email: r.from, name, org: None, notify: NotifyMode::Immediate, encrypt_only: false };
    super::directory::insert_contact(conn, &nc).await
}

/// SPEC §8: the acknowledgement, unless one went to this address recently or too many went
/// out altogether (a forged From must not turn the gateway into a mail cannon).
async fn acknowledge(conn: &mut Conn, plan: &AckPlan, reporter: ContactId, t: Target, in_reply_to: Option<&str>, now: i64) -> Result<Option<OutboxId>> {
    let (to_sender, to_all): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN rcpt = $1 AND created_at >= $2 THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN created_at >= $3 THEN 1 ELSE 0 END), 0) AS BIGINT)
           FROM outbox WHERE kind = 'acknowledgement' AND created_at >= $4",
    )
    .bind(&plan.rcpt)
    .bind(plan.sender_since)
    .bind(plan.global_since)
    .bind(plan.global_since.min(plan.sender_since))
    .fetch_one(&mut *conn)
    .await?;
    if to_sender > 0 || to_all >= plan.global_max {
        return Ok(None);
    }
    let d = NewDelivery {
        kind: OutboxKind::Acknowledgement,
        contact: reporter,
        rcpt: plan.rcpt.clone(),
        message_id: plan.message_id.clone(),
        content: crate::delivery::Content::Full,
        payload: Payload::Ack { in_reply_to: in_reply_to.map(str::to_string) },
    };
    let ids = insert_deliveries(conn, t, std::slice::from_ref(&d), now).await?;
    Ok(ids.first().map(|(id, _, _)| *id))
}

impl super::Store {
    /// A post written at the gateway (`casegate post`) and its deliveries, in one transaction.
    pub async fn store_post(&self, p: &NewPost<'_>, plan: &PostPlan) -> Result<PostResult> {
        let mut tx = self.begin_write().await?;
        let r = insert_post(&mut tx, p, plan).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// A quarantined mail released into a thread: the item resolved, the post and its
    /// deliveries, the mail's protection and its new decision, in one transaction.
    pub async fn release_quarantined(&self, item: i64, p: &NewPost<'_>, plan: &PostPlan, protection: &crate::pgp::Protection) -> Result<PostResult> {
        let mut tx = self.begin_write().await?;
        let inbound = super::quarantine::resolve(&mut tx, item, "released", &format!("into thread {}", p.thread)).await?;
        let r = insert_post(&mut tx, p, plan).await?;
        super::keys::store_protection(&mut tx, inbound, Some(r.post_id), protection).await?;
        sqlx::query("UPDATE inbound_messages SET action = 'post', reason = 'released-by-coordinator', thread_id = $1 WHERE id = $2")
            .bind(p.thread)
            .bind(inbound)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r)
    }
}

pub(crate) async fn insert_quarantine(conn: &mut Conn, inbound: i64, reason: &Reason, candidate: Option<ThreadId>) -> Result<i64> {
    let id = sqlx::query_scalar(
        "INSERT INTO quarantine (inbound_id, reason, reason_detail, candidate_thread, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(inbound)
    .bind(reason.code())
    .bind(reason.to_string())
    .bind(candidate)
    .bind(now_ms())
    .fetch_one(&mut *conn)
    .await?;
    history::record(conn, "quarantined", None, candidate, Some(inbound), &reason.to_string()).await?;
    Ok(id)
}

/// SPEC §7.5: a DSN to a VERP address marks that item failed; three permanent failures in a
/// row mark the contact address bouncing.
pub(crate) async fn record_bounce(conn: &mut Conn, inbound: i64, outbox: Option<OutboxId>, summary: &str) -> Result<()> {
    let Some(id) = outbox else {
        return history::record(conn, "bounce-unmatched", None, None, Some(inbound), summary).await;
    };
    let row: Option<(String, Option<i64>)> = sqlx::query_as("SELECT rcpt, thread_id FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some((rcpt, thread)) = row else {
        return history::record(conn, "bounce-unmatched", None, None, Some(inbound), summary).await;
    };
    sqlx::query("UPDATE outbox SET state = 'failed', last_reply = $1, updated_at = $2 WHERE id = $3")
        .bind(summary)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let case: Option<i64> = match thread {
        Some(t) => sqlx::query_scalar("SELECT case_id FROM threads WHERE id = $1").bind(t).fetch_optional(&mut *conn).await?.flatten(),
        None => None,
    };
    history::record(conn, "bounce", case, thread, Some(inbound), &format!("outbox {id} to {rcpt}: {summary}")).await?;
    super::bouncing::permanent_failure(conn, id, now_ms()).await?;
    Ok(())
}
