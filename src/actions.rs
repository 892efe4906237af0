//! Coordinator actions that write posts or notifications outside the inbound pipeline:
//! `post`, `quarantine release`, `case notify`. Each decides its rows first (audience,
//! content, Message-IDs) and stores them in one transaction; the outbox worker renders them.

use crate::audience;
use crate::compose::Composer;
use crate::delivery::{self, Content, NewDelivery, Payload, PostPlan};
use crate::mail;
use crate::model::*;
use crate::pgp::open::{routing_inbound, OpenCtx};
use crate::pgp::Protection;
use crate::store::posts::{self, NewPost, PostResult};
use crate::store::world::WorldQuery;
use crate::store::{now_ms, Store, StoreError};
use crate::view::{self, Item, PostItem, VendorContact};

pub type Result<T> = std::result::Result<T, StoreError>;

/// Load the world around one thread, plus the given addresses.
async fn world_of(store: &Store, thread: ThreadId, emails: Vec<String>) -> Result<World> {
    store.world(&WorldQuery { thread_ids: vec![thread], emails, ..Default::default() }).await
}

/// The deliveries of a new post (SPEC §6.1, §6.4, §6.5), decided by the view with the
/// keyring as it is now; each notification gets its own Message-ID.
pub(crate) fn plan_post(composer: &Composer, world: &World, post: &PostItem) -> PostPlan {
    let now = now_ms();
    let domain = &composer.book().domain;
    delivery::plan_post(world, post, |c| composer.facts(c, None, now), || posts::new_message_id(domain))
}

/// A post as the view sees it, created now.
fn post_item<'a>(thread: &'a ThreadSnap, np: &NewPost<'a>, arrival: view::Arrival) -> PostItem<'a> {
    PostItem {
        thread,
        author: view::Author::of(np.author, np.source),
        body: np.body,
        attachments: np.attachments,
        created_at_ms: now_ms(),
        pinned: np.pinned,
        direct: np.direct,
        arrival,
    }
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
    if !audience::may_read(&world, t, author.id) {
        return Err(StoreError::Invalid(format!("{author_email} may not write in this thread")));
    }
    if pinned && !world.is_coordinator(author) {
        return Err(StoreError::Invalid("only coordinators pin posts".into()));
    }
    store.refresh_keyring(&composer.pgp).await?;
    let np = NewPost {
        thread: t.id,
        case: audience::case_of_thread(&world, t).map(|c| c.id),
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
    };
    let plan = plan_post(composer, &world, &post_item(t, &np, view::Arrival::Plain));
    store.store_post(&np, &plan).await
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
        thread: t.id,
        case: audience::case_of_thread(&world, t).map(|c| c.id),
        author,
        source: PostSource::Email,
        body: &inb.text,
        attachments: &inb.attachments,
        inbound: Some(q.inbound_id),
        inbound_message_id: inb.message_id.as_deref(),
        assurance: if author.is_some() { Assurance::Address } else { Assurance::None },
        pinned: false,
        direct: &direct,
    };
    let plan = plan_post(composer, &world, &post_item(t, &np, view::Arrival::of(Some(&protection))));
    store.release_quarantined(item, &np, &plan, &protection).await
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
    store.refresh_keyring(&composer.pgp).await?;
    let (initial, public) = store.case_dates(case.id).await?;
    let public_at = public.unwrap_or_else(|| default_public_date(initial.unwrap_or(now)));
    let item = Item::VendorContact(VendorContact { case, org: org.id, public_date_ms: public_at, fingerprint: None });
    let deliveries: Vec<NewDelivery> = world
        .contacts
        .iter()
        .filter_map(|c| Some((c, Content::of(view::form(&world, &item, c.id, &composer.facts(c.id, None, now)))?)))
        .map(|(c, content)| NewDelivery {
            kind: OutboxKind::VendorNotification,
            contact: c.id,
            rcpt: c.email.clone(),
            message_id: posts::new_message_id(&composer.book().domain),
            content,
            payload: Payload::Vendor { org: org.id, public_at },
        })
        .collect();
    let n = crate::store::cases::VendorNotified { case: case.id, org: org.id, org_name: &org.name, thread: case.discussion, public_at, now };
    store.record_vendor_notification(&n, &deliveries).await?;
    Ok(deliveries.into_iter().map(|d| d.rcpt).collect())
}
