//! Coordinator actions that write posts or notifications outside the inbound pipeline:
//! `post`, `quarantine release`, `case notify`. Each runs in one transaction.

use crate::compose::Composer;
use crate::mail;
use crate::model::*;
use crate::pgp::open::{routing_inbound, OpenCtx};
use crate::pgp::Protection;
use crate::view::{Arrival, VendorContact};
use crate::store::posts::{self, NewPost, OutboxSlot, PostResult};
use crate::store::world::WorldQuery;
use crate::store::{self, now_ms, Store, StoreError};

pub type Result<T> = std::result::Result<T, StoreError>;

/// Load the world around one thread, plus the given addresses.
async fn world_of(store: &Store, thread: ThreadId, emails: Vec<String>) -> Result<World> {
    store.world(&WorldQuery { thread_ids: vec![thread], emails, ..Default::default() }).await
}

/// A coordinator writes into a thread from the CLI (`casegate post`).
pub async fn post(
    store: &Store,
    composer: &Composer,
    thread: ThreadId,
    author_email: &str,
    body: &str,
    attachments: &[Attachment],
    pinned: bool,
) -> Result<PostResult> {
    let world = world_of(store, thread, vec![author_email.to_ascii_lowercase()]).await?;
    let author = world
        .contact_by_email(author_email)
        .ok_or_else(|| StoreError::NotFound(format!("no contact {author_email}")))?;
    let t = world.thread(thread).ok_or_else(|| StoreError::NotFound(format!("no thread {thread}")))?;
    if !crate::audience::may_read(&world, t, author.id) {
        return Err(StoreError::Invalid(format!("{author_email} may not write in this thread")));
    }
    if pinned && !world.is_coordinator(author) {
        return Err(StoreError::Invalid("only coordinators pin posts".into()));
    }
    let np = NewPost {
        thread: t,
        author: Some(author.id),
        source: PostSource::Cli,
        body,
        attachments,
        inbound: None,
        inbound_message_id: None,
        // Written at the gateway by its operator: no mail identity is involved.
        assurance: Assurance::Address,
        pinned,
        direct: &[],
        arrival: Arrival::Plain,
    };
    let mut tx = store.pool.begin().await?;
    let r = posts::insert_post(&mut tx, composer, &world, &np).await?;
    tx.commit().await?;
    Ok(r)
}

/// Release a quarantined mail into a thread chosen by a coordinator: it is posted as if it
/// had been routed there, with the From contact (if known) as author.
pub async fn release(store: &Store, composer: &Composer, item: i64, thread: ThreadId) -> Result<PostResult> {
    let q = store.quarantine_item(item).await?;
    let raw = store.inbound_raw(q.inbound_id).await?;
    let inb = mail::parse::parse(&raw).map_err(|e| StoreError::Invalid(format!("cannot parse the held mail: {e}")))?;
    let (inb, protection) = opened(store, composer, &raw, inb).await?;
    let from = inb.from.as_ref().map(mail::Mailbox::key).unwrap_or_default();
    let direct = inb.direct_recipients();
    let mut emails = direct.clone();
    emails.push(from.clone());
    let world = world_of(store, thread, emails).await?;
    let t = world.thread(thread).ok_or_else(|| StoreError::NotFound(format!("no thread {thread}")))?;
    let author = world.contact_by_email(&from).map(|c| c.id);
    let np = NewPost {
        thread: t,
        author,
        source: PostSource::Email,
        body: &inb.text,
        attachments: &inb.attachments,
        inbound: Some(q.inbound_id),
        inbound_message_id: inb.message_id.as_deref(),
        assurance: if author.is_some() { Assurance::Address } else { Assurance::None },
        pinned: false,
        direct: &direct,
        arrival: Arrival::of(Some(&protection)),
    };
    let mut tx = store.pool.begin().await?;
    store::quarantine::resolve(&mut tx, item, "released", &format!("into thread {thread}")).await?;
    let r = posts::insert_post(&mut tx, composer, &world, &np).await?;
    store::keys::store_protection(&mut tx, q.inbound_id, Some(r.post_id), &protection).await?;
    sqlx::query("UPDATE inbound_messages SET action = 'post', reason = 'released-by-coordinator', thread_id = $1 WHERE id = $2")
        .bind(thread)
        .bind(q.inbound_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r)
}

/// A held mail opened as the pipeline opens it (SPEC §5): decrypted content and protected
/// headers, unless the protection was refused, in which case nothing is decrypted.
async fn opened(store: &Store, composer: &Composer, raw: &[u8], inb: mail::Inbound) -> Result<(mail::Inbound, Protection)> {
    store.refresh_keyring(&composer.pgp).await?;
    let keyring = composer.pgp.keyring();
    let from = inb.from.as_ref().map(mail::Mailbox::key);
    let ctx = OpenCtx { gateway: composer.pgp.gateway.as_deref(), keyring: &keyring, from: from.as_deref(), now_ms: now_ms() };
    let o = crate::pgp::open::open(raw, &ctx);
    let inb = if o.protection.refusal.is_none() { routing_inbound(&inb, &o) } else { inb };
    Ok((inb, o.protection))
}

/// Target public date: initial contact + 45 days, moved off weekends (SPEC §8).
pub fn default_public_date(initial_contact_ms: i64) -> i64 {
    use chrono::{Datelike, Duration, Weekday};
    let mut d = chrono::DateTime::from_timestamp_millis(initial_contact_ms).unwrap_or_default() + Duration::days(45);
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d += Duration::days(1);
    }
    d.timestamp_millis()
}

/// The initial-contact mail to every notify-enabled contact of a vendor organization of a
/// case (`casegate case notify`). Returns the addresses queued.
pub async fn notify_vendor(store: &Store, composer: &Composer, case_public_id: &str, org_name: &str) -> Result<Vec<String>> {
    let world = store.world(&WorldQuery { case_public_ids: vec![case_public_id.to_string()], ..Default::default() }).await?;
    let case = world.case_by_public_id(case_public_id).ok_or_else(|| StoreError::NotFound(format!("no case {case_public_id}")))?;
    let org = world
        .orgs
        .iter()
        .find(|o| o.name.eq_ignore_ascii_case(org_name))
        .filter(|o| case.participants.iter().any(|p| p.org == Some(o.id)))
        .ok_or_else(|| StoreError::NotFound(format!("{org_name} is not a participant of {case_public_id}")))?;
    let now = now_ms();
    let (initial, public) = store.case_dates(case.id).await?;
    let public_at = public.unwrap_or_else(|| default_public_date(initial.unwrap_or(now)));
    let thread = world.thread(case.discussion).ok_or_else(|| StoreError::NotFound("discussion thread".into()))?;
    let mut tx = store.pool.begin().await?;
    store::keys::refresh(&mut tx, &composer.pgp).await?;
    let fingerprint = composer.pgp.gateway.as_ref().map(|g| g.fingerprint().to_spaced_hex());
    let mut queued = Vec::new();
    let contacts = world.contacts.iter().filter(|c| c.org == Some(org.id) && c.notify != NotifyMode::None);
    for c in contacts {
        let message_id = posts::new_message_id(&composer.book().domain);
        let slot = OutboxSlot { kind: OutboxKind::VendorNotification, post: None, report: None, thread: Some(thread.id), contact: Some(c.id), rcpt: &c.email, message_id: &message_id };
        let id = posts::reserve_outbox(&mut tx, &slot, now).await?;
        let ids = crate::compose::Ids { message_id: &message_id, outbox_id: id, earlier: &[] };
        let v = VendorContact { case, org: org.id, public_date_ms: public_at, fingerprint: fingerprint.as_deref() };
        let Some((kind, rendered)) = composer.render_vendor_notification(&world, v, c, &ids, now) else {
            posts::discard_outbox(&mut tx, id).await?;
            continue;
        };
        posts::fill_outbox(&mut tx, id, kind, &rendered).await?;
        store::inbound::index_message_id(&mut tx, &message_id, thread.id, Some(c.id), Some(id)).await?;
        queued.push(c.email.clone());
    }
    store::history::record(&mut tx, "vendor-notified", Some(case.id), Some(thread.id), None, &org.name).await?;
    tx.commit().await?;
    store.mark_notified(case.id, org.id, now).await?;
    if public.is_none() {
        store.set_public_date(case.id, public_at).await?;
    }
    Ok(queued)
}
