//! Composition of outbound mail for one post: from a [`World`], the post and the audience
//! to one rendered message per recipient (SPEC §6.2). Pure: ids (Message-IDs, outbox ids)
//! are given by the caller.

use crate::audience::{AuthorView, Content, Delivery};
use crate::mail::AddressBook;
use crate::model::*;
use crate::pgp::{seal, PgpError, PgpState};
use crate::render::{self, Addressing, Gateway, PostView, Rendered, ThreadView};
use crate::replykey;
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
#[derive(Debug, Clone)]
pub struct PostDraft<'a> {
    pub thread: &'a ThreadSnap,
    pub author: Option<ContactId>,
    pub body: &'a str,
    pub attachments: &'a [Attachment],
    pub created_at_ms: i64,
}

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
        if thread.kind != ThreadKind::Discussion || world.is_coordinator(contact) {
            return None;
        }
        let case = thread.case.and_then(|c| world.case(c))?;
        contact.org.and_then(|o| case.private_thread_of(o)).or_else(|| {
            world.reports.iter().find(|r| r.case == Some(case.id) && r.reporter == contact.id).map(|r| r.thread)
        })
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

    /// Render one delivery of a post: the full notification, or the content-free notice,
    /// sealed for the recipient (SPEC §5.3, §6.4). A contact with a confirmed certificate
    /// that is no longer usable (expired, revoked) gets the notice: someone who asked for
    /// encrypted mail never gets content in plaintext.
    pub fn render_delivery(&self, world: &World, draft: &PostDraft, d: &Delivery, ids: &Ids, now_ms: i64) -> Option<(OutboxKind, Rendered)> {
        let contact = world.contact(d.contact)?;
        let to = self.addressing(world, draft.thread, contact, ids);
        let view = thread_view(world, draft.thread, contact);
        let keys = self.pgp.keyring();
        let cert = keys.recipient_cert(contact.id, now_ms);
        let withheld = cert.is_none() && keys.has_confirmed_cert(contact.id);
        if d.content == Content::Full && !withheld {
            let post = post_view(draft, &d.view);
            let r = render::notification(&self.gateway, &view, &post, &to, self.max_attachment_bytes, now_ms);
            // A failed encryption falls through to the notice, never to plaintext.
            if let Ok(sealed) = self.seal_with(cert.as_deref(), &view.token, r, now_ms) {
                return Some((OutboxKind::Notification, sealed));
            }
        }
        let notice = render::embargo_notice(&self.gateway, &view.token, &to, now_ms);
        Some((OutboxKind::Notice, self.seal_with(None, &view.token, notice.clone(), now_ms).unwrap_or(notice)))
    }

    /// The content-free notice for `contact` (SPEC §6.4), signed when the gateway has a key.
    pub fn notice(&self, contact: ContactId, token: &str, to: &Addressing, now_ms: i64) -> (OutboxKind, Rendered) {
        let notice = render::embargo_notice(&self.gateway, token, to, now_ms);
        (OutboxKind::Notice, self.seal(contact, token, notice.clone(), now_ms).unwrap_or(notice))
    }

    /// `rendered` sealed for `contact` as `kind`; a message that cannot be sealed becomes
    /// the notice, never plaintext.
    pub fn seal_or_notice(&self, contact: ContactId, kind: OutboxKind, rendered: Rendered, token: &str, to: &Addressing, now_ms: i64) -> (OutboxKind, Rendered) {
        match self.seal(contact, token, rendered, now_ms) {
            Ok(sealed) => (kind, sealed),
            Err(_) => self.notice(contact, token, to, now_ms),
        }
    }

    /// Seals a rendered message for `contact`: encrypted to their usable certificate, else
    /// signed by the gateway key (SPEC §5.3).
    pub fn seal(&self, contact: ContactId, token: &str, r: Rendered, now_ms: i64) -> Result<Rendered, PgpError> {
        let cert = self.pgp.keyring().recipient_cert(contact, now_ms);
        self.seal_with(cert.as_deref(), token, r, now_ms)
    }

    /// SPEC §6.4 for one recipient: the content, unless it may only travel encrypted
    /// (`confidential`: an embargo or content that arrived encrypted; or an encrypt-only
    /// contact) and they have no usable certificate, or their confirmed certificate stopped
    /// being usable (someone who asked for encrypted mail never gets plaintext).
    pub fn content_for(&self, contact: &ContactSnap, confidential: bool, now_ms: i64) -> Content {
        let usable = self.pgp.keyring().has_usable_key(contact.id, now_ms);
        if ((confidential || contact.encrypt_only) && !usable) || self.withholds_plaintext(contact.id, now_ms) {
            Content::Notice
        } else {
            Content::Full
        }
    }

    /// Whether `contact` may only get content encrypted and has no usable certificate now:
    /// a confirmed certificate that expired or was revoked.
    pub fn withholds_plaintext(&self, contact: ContactId, now_ms: i64) -> bool {
        let keys = self.pgp.keyring();
        !keys.has_usable_key(contact, now_ms) && keys.has_confirmed_cert(contact)
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

fn post_view<'a>(draft: &'a PostDraft, view: &'a AuthorView) -> PostView<'a> {
    PostView {
        author_display: &view.display,
        body: draft.body,
        attachments: draft.attachments,
        created_at_ms: draft.created_at_ms,
        redactions: &view.redactions,
    }
}

/// A copy of `world` in which every contact takes content only encrypted (SPEC §6.4):
/// the fan-out of a post that arrived encrypted, so that readers without a usable key get
/// the notice instead of plaintext.
pub fn confidential(world: &World) -> World {
    let mut w = world.clone();
    for c in &mut w.contacts {
        c.encrypt_only = true;
    }
    w
}

/// Token, title and kind of a thread as `recipient` may see them.
pub fn thread_view(world: &World, thread: &ThreadSnap, recipient: &ContactSnap) -> ThreadView {
    let case = thread.case.and_then(|c| world.case(c));
    let report = thread.report.and_then(|r| world.report(r));
    let (token, title) = match (case, report) {
        (Some(c), _) => (c.public_id.clone(), c.title.clone()),
        (None, Some(r)) => (r.public_id.clone(), r.subject.clone()),
        (None, None) => (String::new(), String::new()),
    };
    let own_org = thread.org.is_some() && (recipient.org == thread.org || world.is_coordinator(recipient));
    let org_name = thread.org.filter(|_| own_org).and_then(|o| world.org(o)).map(|o| o.name.clone());
    ThreadView { token, title, kind: thread.kind, org_name }
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
