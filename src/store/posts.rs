//! Stage 8 writes: posts with their attachments, fan-out into the outbox, reports with
//! their acknowledgement, quarantine items and bounces. Every function here runs inside the
//! caller's transaction.

use super::{history, inbound::index_message_id, now_ms, Result};
use crate::audience::{self, DeliveryMode, PostFacts};
use crate::compose::{Composer, Ids, PostDraft};
use crate::model::*;
use crate::render::{self, Addressing};
use rand::RngCore;
use sqlx::SqliteConnection as Conn;

/// A post to store and fan out.
#[derive(Debug, Clone)]
pub struct NewPost<'a> {
    pub thread: &'a ThreadSnap,
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

pub(crate) async fn insert_post(conn: &mut Conn, composer: &Composer, world: &World, p: &NewPost<'_>) -> Result<PostResult> {
    let now = now_ms();
    let direct_json = serde_json::to_string(p.direct).unwrap_or_else(|_| "[]".into());
    let post_id: i64 = sqlx::query_scalar(
        "INSERT INTO posts (thread_id, author_id, source, body, inbound_id, assurance, pinned, direct_recipients, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(p.thread.id)
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
    for a in p.attachments {
        insert_attachment(conn, post_id, a).await?;
    }
    if let Some(mid) = p.inbound_message_id {
        index_message_id(conn, mid, p.thread.id, None, None).await?;
    }
    // SPEC §6.4: who has a usable certificate decides between content and the notice.
    // (Read after the first write: the transaction already holds SQLite's write lock.)
    super::keys::refresh(conn, &composer.pgp).await?;
    let keyring = composer.pgp.keyring();
    let usable = |c: ContactId| keyring.has_usable_key(c, now);
    let facts = PostFacts { thread: p.thread, author: p.author, pinned: p.pinned, direct_recipients: p.direct, has_usable_key: &usable };
    let fan = audience::fan_out(world, &facts);
    let draft = PostDraft { thread: p.thread, author: p.author, body: p.body, attachments: p.attachments, created_at_ms: now };
    let mut result = PostResult { post_id, direct: fan.direct.clone(), ..Default::default() };
    for d in &fan.deliveries {
        if d.mode == DeliveryMode::Digest {
            sqlx::query("INSERT INTO digest_queue (contact_id, post_id, created_at) VALUES ($1, $2, $3)")
                .bind(d.contact)
                .bind(post_id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            result.digest.push(d.email.clone());
            continue;
        }
        let queued = queue_delivery(conn, composer, world, &draft, d, post_id, now).await?;
        result.outbox.extend(queued);
    }
    let case = p.thread.case;
    let detail = format!("post {post_id}: {} queued, {} digest", result.outbox.len(), result.digest.len());
    history::record(conn, "post", case, Some(p.thread.id), p.inbound, &detail).await?;
    Ok(result)
}

async fn insert_attachment(conn: &mut Conn, post: PostId, a: &Attachment) -> Result<()> {
    sqlx::query(
        "INSERT INTO attachments (post_id, filename, content_type, size, sha256, bytes) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(post)
    .bind(&a.filename)
    .bind(&a.content_type)
    .bind(a.bytes.len() as i64)
    .bind(a.sha256_hex())
    .bind(&a.bytes)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn queue_delivery(
    conn: &mut Conn,
    composer: &Composer,
    world: &World,
    draft: &PostDraft<'_>,
    d: &audience::Delivery,
    post: PostId,
    now: i64,
) -> Result<Option<(OutboxId, String, String)>> {
    let earlier = earlier_message_ids(conn, draft.thread.id, d.contact).await?;
    let message_id = new_message_id(&composer.book().domain);
    let slot = OutboxSlot { kind: OutboxKind::Notification, post: Some(post), report: None, thread: Some(draft.thread.id), contact: Some(d.contact), rcpt: &d.email, message_id: &message_id };
    let id = reserve_outbox(conn, &slot, now).await?;
    let ids = Ids { message_id: &message_id, outbox_id: id, earlier: &earlier };
    let Some((kind, rendered)) = composer.render_delivery(world, draft, d, &ids, now) else {
        sqlx::query("DELETE FROM outbox WHERE id = $1").bind(id).execute(&mut *conn).await?;
        return Ok(None);
    };
    fill_outbox(conn, id, kind, &rendered).await?;
    index_message_id(conn, &message_id, draft.thread.id, Some(d.contact), Some(id)).await?;
    Ok(Some((id, d.email.clone(), kind.as_str().to_string())))
}

/// Message-IDs a contact was sent in a thread, oldest first (for In-Reply-To/References).
async fn earlier_message_ids(conn: &mut Conn, thread: ThreadId, contact: ContactId) -> Result<Vec<String>> {
    let mut ids: Vec<String> = sqlx::query_scalar(
        "SELECT message_id FROM message_index WHERE thread_id = $1 AND contact_id = $2 ORDER BY created_at DESC, outbox_id DESC LIMIT 20",
    )
    .bind(thread)
    .bind(contact)
    .fetch_all(&mut *conn)
    .await?;
    ids.reverse();
    Ok(ids)
}

/// The fixed facts of an outbox row, before its bytes are rendered.
pub(crate) struct OutboxSlot<'a> {
    pub kind: OutboxKind,
    pub post: Option<PostId>,
    pub report: Option<ReportId>,
    pub thread: Option<ThreadId>,
    pub contact: Option<ContactId>,
    pub rcpt: &'a str,
    pub message_id: &'a str,
}

/// Insert an outbox row without its bytes, to learn its id (the VERP key binds it).
pub(crate) async fn reserve_outbox(conn: &mut Conn, s: &OutboxSlot<'_>, now: i64) -> Result<OutboxId> {
    Ok(sqlx::query_scalar(
        "INSERT INTO outbox (kind, post_id, report_id, thread_id, contact_id, rcpt, envelope_from, message_id, bytes,
                             next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, $9, $9) RETURNING id",
    )
    .bind(s.kind.as_str())
    .bind(s.post)
    .bind(s.report)
    .bind(s.thread)
    .bind(s.contact)
    .bind(s.rcpt)
    .bind(s.message_id)
    .bind(Vec::<u8>::new())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?)
}

pub(crate) async fn fill_outbox(conn: &mut Conn, id: OutboxId, kind: OutboxKind, r: &render::Rendered) -> Result<()> {
    sqlx::query("UPDATE outbox SET kind = $1, envelope_from = $2, bytes = $3 WHERE id = $4")
        .bind(kind.as_str())
        .bind(&r.envelope_from)
        .bind(&r.bytes)
        .bind(id)
        .execute(&mut *conn)
        .await?;
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
    pub ack_interval_ms: i64,
    /// False when the mail must get no automatic answer (RFC 3834 §2: list mail).
    pub acknowledge: bool,
    /// Certificates the reporter offered (stored unconfirmed before the acknowledgement,
    /// which is encrypted to them, SPEC §8).
    pub candidates: &'a [crate::pgp::open::Candidate],
}

/// What opening a report did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportResult {
    pub report: String,
    pub thread: ThreadId,
    pub post: PostResult,
    /// The acknowledgement's outbox id; `None` when rate-limited.
    pub acknowledgement: Option<OutboxId>,
}

pub(crate) async fn open_report(conn: &mut Conn, composer: &Composer, world: &World, r: &NewReport<'_>) -> Result<ReportResult> {
    let now = now_ms();
    let reporter = match super::directory::contact_by_email(conn, r.from).await? {
        Some(c) => c,
        None => {
            let name = if r.from_name.trim().is_empty() { r.from } else { r.from_name.trim() };
            let nc = super::directory::NewContact { email: r.from, name, org: None, notify: NotifyMode::Immediate, encrypt_only: false };
            let id = super::directory::insert_contact(conn, &nc).await?;
            ContactSnap { id, email: r.from.to_ascii_lowercase(), name: name.to_string(), org: None, notify: NotifyMode::Immediate, encrypt_only: false }
        }
    };
    let public_id = super::cases::unused_report_id(conn, now).await?;
    let subject = if r.subject.trim().is_empty() { "(no subject)" } else { r.subject.trim() };
    let report_id: i64 = sqlx::query_scalar(
        "INSERT INTO reports (public_id, reporter_id, subject, assurance, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&public_id)
    .bind(reporter.id)
    .bind(subject)
    .bind(r.assurance.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let thread_id: i64 = sqlx::query_scalar("INSERT INTO threads (kind, report_id, created_at) VALUES ('report', $1, $2) RETURNING id")
        .bind(report_id)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
    let thread = ThreadSnap { id: thread_id, kind: ThreadKind::Report, case: None, org: None, report: Some(report_id) };
    let mut world = world.clone();
    world.reports.push(ReportSnap { id: report_id, public_id: public_id.clone(), reporter: reporter.id, state: ReportState::New, case: None, thread: thread_id, subject: subject.to_string() });
    world.threads.push(thread.clone());
    if world.contact(reporter.id).is_none() {
        world.contacts.push(reporter.clone());
    }
    history::record(conn, "report-opened", None, Some(thread_id), Some(r.inbound), &public_id).await?;
    super::keys::store_candidates(conn, reporter.id, r.candidates, r.inbound).await?;
    let np = NewPost { thread: &thread, author: Some(reporter.id), source: PostSource::Email, body: r.body, attachments: r.attachments, inbound: Some(r.inbound), inbound_message_id: r.inbound_message_id, assurance: r.assurance, pinned: false, direct: &[] };
    let post = insert_post(conn, composer, &world, &np).await?;
    let acknowledgement = match r.acknowledge {
        true => acknowledge(conn, composer, &reporter, &public_id, thread_id, r, now).await?,
        false => None,
    };
    Ok(ReportResult { report: public_id, thread: thread_id, post, acknowledgement })
}

/// SPEC §8: one acknowledgement, at most one per sender per interval; never quotes the report.
async fn acknowledge(
    conn: &mut Conn,
    composer: &Composer,
    reporter: &ContactSnap,
    public_id: &str,
    thread: ThreadId,
    r: &NewReport<'_>,
    now: i64,
) -> Result<Option<OutboxId>> {
    let recent: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM outbox WHERE rcpt = $1 AND kind = 'acknowledgement' AND created_at > $2 LIMIT 1",
    )
    .bind(&reporter.email)
    .bind(now - r.ack_interval_ms)
    .fetch_optional(&mut *conn)
    .await?;
    if recent.is_some() {
        return Ok(None);
    }
    let message_id = new_message_id(&composer.book().domain);
    let slot = OutboxSlot { kind: OutboxKind::Acknowledgement, post: None, report: None, thread: Some(thread), contact: Some(reporter.id), rcpt: &reporter.email, message_id: &message_id };
    let id = reserve_outbox(conn, &slot, now).await?;
    let to = Addressing {
        to_name: reporter.name.clone(),
        to: reporter.email.clone(),
        reply_to: composer.reply_address(thread, reporter.id),
        private_reply_to: None,
        message_id: message_id.clone(),
        in_reply_to: r.inbound_message_id.map(str::to_string),
        references: r.inbound_message_id.map(|m| vec![m.to_string()]).unwrap_or_default(),
        bounce: composer.bounce_address(id),
    };
    let plain = render::acknowledgement(&composer.gateway, public_id, &to, now);
    // SPEC §8: encrypted when the reporter's key is known (also one offered in the report).
    super::keys::refresh(conn, &composer.pgp).await?;
    let rendered = composer.seal(reporter.id, public_id, plain.clone(), now).unwrap_or(plain);
    fill_outbox(conn, id, OutboxKind::Acknowledgement, &rendered).await?;
    index_message_id(conn, &message_id, thread, Some(reporter.id), Some(id)).await?;
    Ok(Some(id))
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
    let last: Vec<String> = sqlx::query_scalar(
        "SELECT state FROM outbox WHERE rcpt = $1 AND state IN ('sent', 'failed') ORDER BY updated_at DESC, id DESC LIMIT 3",
    )
    .bind(&rcpt)
    .fetch_all(&mut *conn)
    .await?;
    if last.len() == 3 && last.iter().all(|s| s == "failed") {
        sqlx::query("UPDATE contacts SET bouncing = TRUE WHERE email = $1").bind(&rcpt).execute(&mut *conn).await?;
        history::record(conn, "contact-bouncing", case, None, Some(inbound), &rcpt).await?;
    }
    Ok(())
}
