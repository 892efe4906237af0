//! Composition of outbound mail: the single entry point through which every caller
//! renders anything. For each item and recipient it asks [`view::view`] what they
//! receive, adds the per-recipient addressing (reply keys, VERP keys, threading headers),
//! has `render` format it and `pgp::seal` seal it (SPEC §5.3, §6.2). Pure: ids
//! (Message-IDs, outbox ids) are given by the caller.

use crate::audience::Delivery;
use crate::mail::AddressBook;
use crate::model::*;
use crate::pgp::{seal, PgpError, PgpState};
use crate::render::{self, Addressing, Gateway, Rendered};
use crate::replykey;
use crate::view::{self, Content, Ctx, Facts, Item, PostItem, Queued, Seal, VendorContact, View};
use std::sync::Arc;

/// The parts of the configuration composition needs.
#[derive(Debug, Clone)]
pub struct Composer {
    pub gateway: Gateway,
    pub secret: Vec<u8>,
    pub max_attachment_bytes: u64,
    /// The gateway key and the contacts' certificates (SPEC §5.3).
    pub pgp: Arc<PgpState>,
}

/// A post as it is fanned out.
pub type PostDraft<'a> = PostItem<'a>;

/// Per-recipient ids chosen by the caller.
#[derive(Debug, Clone)]
pub struct Ids<'a> {
    pub message_id: &'a str,
    pub outbox_id: OutboxId,
    /// Message-IDs this recipient got earlier in the thread, oldest first.
    pub earlier: &'a [String],
}

impl Composer {
    /// The composer of the gateway `cfg` describes.
    pub fn from_config(cfg: &crate::config::Config) -> Composer {
        Composer {
            gateway: Gateway { name: cfg.gateway.name.clone(), book: cfg.address_book() },
            secret: cfg.gateway.secret.clone(),
            max_attachment_bytes: cfg.outbound.max_attachment_bytes,
            pgp: Arc::new(PgpState::new(cfg.pgp.keys.clone())),
        }
    }

    pub fn book(&self) -> &AddressBook {
        &self.gateway.book
    }

    /// What the view needs of the configuration.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            gateway_name: &self.gateway.name,
            book: &self.gateway.book,
            max_attachment_bytes: self.max_attachment_bytes,
        }
    }

    /// `cases+r-<key>@domain` for (thread, contact).
    pub fn reply_address(&self, thread: ThreadId, contact: ContactId) -> String {
        self.book().tagged(&format!("r-{}", replykey::reply_key(&self.secret, thread, contact)))
    }

    /// `cases+b-<key>@domain` for one outbox item.
    pub fn bounce_address(&self, outbox: OutboxId) -> String {
        self.book().tagged(&format!("b-{}", replykey::bounce_key(&self.secret, outbox)))
    }

    /// The thread where `contact` writes privately to the coordinators from within `thread`'s
    /// case: their organization's private thread, or a reporter's report thread.
    pub fn private_channel(&self, world: &World, thread: &ThreadSnap, contact: &ContactSnap) -> Option<ThreadId> {
        if thread.kind != ThreadKind::Discussion {
            return None;
        }
        let case = thread.case.and_then(|c| world.case(c))?;
        crate::audience::private_channel(world, case, contact)
    }

    /// `contact`'s private channel in `case` (their organization's private thread, or a
    /// reporter's report thread).
    pub fn private_channel_of(&self, world: &World, case: &CaseSnap, contact: &ContactSnap) -> Option<ThreadId> {
        crate::audience::private_channel(world, case, contact)
    }

    /// Addressing of a note to a coordinator: no thread; a reply goes to the gateway's bare
    /// address, where it is held in quarantine.
    pub fn coordinator_addressing(&self, contact: &ContactSnap, message_id: &str, outbox: OutboxId) -> Addressing {
        Addressing {
            to_name: contact.name.clone(),
            to: contact.email.clone(),
            reply_to: self.book().gateway_address(),
            private_reply_to: None,
            message_id: message_id.to_string(),
            in_reply_to: None,
            references: Vec::new(),
            bounce: self.bounce_address(outbox),
        }
    }

    /// Addressing of one message to `contact` in `thread`.
    pub fn addressing(&self, world: &World, thread: &ThreadSnap, contact: &ContactSnap, ids: &Ids) -> Addressing {
        let private = self.private_channel(world, thread, contact).map(|t| self.reply_address(t, contact.id));
        Addressing {
            to_name: contact.name.clone(),
            to: contact.email.clone(),
            reply_to: self.reply_address(thread.id, contact.id),
            private_reply_to: private,
            message_id: ids.message_id.to_string(),
            in_reply_to: ids.earlier.last().cloned(),
            references: ids.earlier.iter().rev().take(20).rev().cloned().collect(),
            bounce: self.bounce_address(ids.outbox_id),
        }
    }

    /// One delivery of a post: the notification, or the content-free notice. `None` when
    /// the view gives the recipient nothing now.
    pub fn render_delivery(&self, world: &World, post: &PostItem, d: &Delivery, ids: &Ids, now_ms: i64) -> Option<(OutboxKind, Rendered)> {
        let contact = world.contact(d.contact)?;
        let to = self.addressing(world, post.thread, contact, ids);
        self.render(world, &Item::Post(post), contact, &to, None, now_ms)
    }

    /// The digest of `posts` for `who`, replying into `home` (SPEC §8).
    pub fn render_digest(&self, world: &World, who: &ContactSnap, home: &ThreadSnap, posts: &[PostItem], ids: &Ids, now_ms: i64) -> Option<(OutboxKind, Rendered)> {
        let to = self.addressing(world, home, who, ids);
        self.render(world, &Item::Digest { home, posts }, who, &to, None, now_ms)
    }

    /// The initial contact of `contact`'s organization in `v.case` (SPEC §8).
    pub fn render_vendor_notification(&self, world: &World, v: VendorContact, contact: &ContactSnap, ids: &Ids, now_ms: i64) -> Option<(OutboxKind, Rendered)> {
        let thread = world.thread(v.case.discussion)?;
        let to = self.addressing(world, thread, contact, ids);
        self.render(world, &Item::VendorContact(v), contact, &to, None, now_ms)
    }

    /// The acknowledgement of `report` to its reporter (SPEC §8); `to` carries the
    /// threading to the report mail.
    pub fn render_acknowledgement(&self, world: &World, report: &ReportSnap, to: &Addressing, now_ms: i64) -> Option<(OutboxKind, Rendered)> {
        let reporter = world.contact(report.reporter)?;
        self.render(world, &Item::Acknowledgement { report }, reporter, to, None, now_ms)
    }

    /// What the view decides `contact` gets of `item` now, formatted for `to` and sealed;
    /// `queued` is what was decided when the item was queued. `None`: nothing. Content
    /// whose encryption fails is decided again as such, which gives the notice: never
    /// plaintext.
    pub fn render(&self, world: &World, item: &Item, contact: &ContactSnap, to: &Addressing, queued: Option<Queued>, now_ms: i64) -> Option<(OutboxKind, Rendered)> {
        let facts = self.facts(contact.id, queued, now_ms);
        let content = match view::view(world, item, contact.id, &facts, &self.ctx()) {
            View::Nothing(_) => return None,
            View::Notice(n) => return Some((OutboxKind::Notice, self.signed(render::notice(&self.gateway, &n, to, now_ms), now_ms))),
            View::Content(c) => c,
        };
        if let Ok(sealed) = self.seal_content(&content, contact.id, to, now_ms) {
            return Some(sealed);
        }
        let failed = Facts { sealing_failed: true, ..facts };
        match view::view(world, item, contact.id, &failed, &self.ctx()) {
            View::Notice(n) => Some((OutboxKind::Notice, self.signed(render::notice(&self.gateway, &n, to, now_ms), now_ms))),
            View::Content(c) if c.seal == Seal::Sign => self.seal_content(&c, contact.id, to, now_ms).ok(),
            _ => None,
        }
    }

    /// What the view needs to know about `contact` now: their certificates (SPEC §5.4,
    /// §6.4), and what was decided when the item was queued.
    pub fn facts(&self, contact: ContactId, queued: Option<Queued>, now_ms: i64) -> Facts {
        let keys = self.pgp.keyring();
        Facts {
            usable_cert: keys.recipient_cert(contact, now_ms).is_some(),
            confirmed_cert: keys.has_confirmed_cert(contact),
            sealing_failed: false,
            queued,
        }
    }

    fn seal_content(&self, c: &Content, contact: ContactId, to: &Addressing, now_ms: i64) -> Result<(OutboxKind, Rendered), PgpError> {
        let (kind, r) = render::content(&self.gateway, c, to, now_ms);
        let sealed = match c.seal {
            Seal::Encrypt => self.encrypt(contact, &c.token, r, now_ms)?,
            Seal::Sign => self.signed(r, now_ms),
        };
        Ok((kind, sealed))
    }

    fn encrypt(&self, contact: ContactId, token: &str, r: Rendered, now_ms: i64) -> Result<Rendered, PgpError> {
        let cert = self.pgp.keyring().recipient_cert(contact, now_ms).ok_or(PgpError::NoEncryptionKey)?;
        self.seal_with(Some(&cert), token, r, now_ms)
    }

    /// Signed by the gateway key when there is one; unsigned when signing fails (the
    /// message may go in plaintext either way).
    fn signed(&self, mut r: Rendered, now_ms: i64) -> Rendered {
        if let Some(g) = self.pgp.gateway.as_deref() {
            if let Ok(signed) = seal::sign(&r.bytes, g, now_ms) {
                r.bytes = signed;
            }
        }
        r
    }

    /// Seals a rendered message for `contact`: encrypted to their usable certificate, else
    /// signed by the gateway key (SPEC §5.3).
    pub fn seal(&self, contact: ContactId, token: &str, r: Rendered, now_ms: i64) -> Result<Rendered, PgpError> {
        let cert = self.pgp.keyring().recipient_cert(contact, now_ms);
        self.seal_with(cert.as_deref(), token, r, now_ms)
    }

    /// RFC 3156: encrypted (and signed when the gateway has a key) to `cert`; without a
    /// certificate signed when the gateway has a key; else unchanged.
    fn seal_with(&self, cert: Option<&sequoia_openpgp::Cert>, token: &str, mut r: Rendered, now_ms: i64) -> Result<Rendered, PgpError> {
        let gateway = self.pgp.gateway.as_deref();
        r.bytes = match (cert, gateway) {
            (Some(c), _) => seal::encrypt(&r.bytes, token, &self.gateway.name, &self.book().gateway_address(), c, gateway, now_ms)?,
            (None, Some(g)) => seal::sign(&r.bytes, g, now_ms)?,
            (None, None) => r.bytes,
        };
        Ok(r)
    }
}

/// A readable name of a thread for listings: `discussion:VU#123456`,
/// `private:VU#123456:Acme`, `report:VRF#..`.
pub fn thread_name(world: &World, thread: &ThreadSnap) -> String {
    let case = thread.case.and_then(|c| world.case(c)).map(|c| c.public_id.clone()).unwrap_or_default();
    match thread.kind {
        ThreadKind::Discussion => format!("discussion:{case}"),
        ThreadKind::Private => {
            let org = thread.org.and_then(|o| world.org(o)).map(|o| o.name.clone()).unwrap_or_default();
            format!("private:{case}:{org}")
        }
        ThreadKind::Report => {
            let r = thread.report.and_then(|r| world.report(r)).map(|r| r.public_id.clone()).unwrap_or_default();
            format!("report:{r}")
        }
    }
}
