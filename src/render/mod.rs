//! Outbound messages as bytes: one message per recipient (SPEC §6.2), built with
//! mail-builder, CRLF line endings, deterministic for the same inputs.
//!
//! The renderers only format what [`crate::view::view`] decided a recipient receives; none
//! of them redacts, withholds or decides visibility.
//!
//! - [`notification()`]: a new post in a thread (§6.2, §6.3);
//! - [`digest()`]: the daily digest (§8);
//! - [`acknowledgement()`]: the answer to a new report (§8, RFC 3834);
//! - [`embargo_notice()`]: the content-free notice (§6.4);
//! - [`vendor_notification()`]: the initial contact of a vendor organization (§8);
//! - [`summary()`]: the case summary, and the late joiner's summary with the discussion so
//!   far (§6.6, §8);
//! - [`reminder()`]: a reminder to a silent vendor (§8);
//! - [`coordinators()`]: the coordinators' notes (daily summary, dead items, bouncing
//!   contacts).
//!
//! Pure: identifiers and the time are parameters. The MIME boundary is derived from the
//! Message-ID and the parts as the recipient gets them, so rendering the same item twice
//! gives the same bytes, and nothing the recipient may not see changes them.

pub mod ack;
pub mod coordinators;
pub mod digest;
pub mod notice;
pub mod notification;
pub mod reminder;
pub mod summary;
pub mod vendor;

pub use ack::acknowledgement;
pub use coordinators::coordinators;
pub use digest::digest;
pub use notice::embargo_notice;
pub use notification::notification;
pub use reminder::reminder;
pub use summary::summary;
pub use vendor::{format_public_date, vendor_notification};

use crate::mail::AddressBook;
use crate::model::OutboxKind;
use crate::redact::clean_line;
use crate::view::{Body, Content, Notice};
use crate::workflow::CoordinatorNote;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use sha2::{Digest, Sha256};

/// Our loop marker (SPEC §3 stage 3): inbound mail carrying it is our own and is dropped.
/// Its value is the gateway domain.
pub const LOOP_HEADER: &str = "X-Casegate-Loop";

/// The gateway as it presents itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// Display name, e.g. "CERT Coordination".
    pub name: String,
    pub book: AddressBook,
}

/// Per-recipient addressing, computed by the caller (ids are given: the core takes no
/// randomness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressing {
    pub to_name: String,
    pub to: String,
    /// The recipient's reply address for the thread.
    pub reply_to: String,
    /// The recipient's reply address for their private thread with the coordinators.
    pub private_reply_to: Option<String>,
    /// Without angle brackets.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// Envelope sender (VERP bounce address).
    pub bounce: String,
}

/// A message ready for the outbox: envelope and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Without angle brackets.
    pub message_id: String,
    /// Envelope sender (the VERP bounce address).
    pub envelope_from: String,
    pub rcpt: String,
    /// The whole message, CRLF line endings.
    pub bytes: Vec<u8>,
}

/// What differs between the kinds of message in the header block.
pub(crate) struct Head {
    pub from_display: String,
    pub subject: String,
    /// RFC 3834 §5: `auto-generated` or `auto-replied`.
    pub auto_submitted: &'static str,
    /// The thread token whose List-Id the message carries.
    pub list_token: String,
}

/// The header block shared by every message we send, in a stable order.
pub(crate) fn message(
    gw: &Gateway,
    to: &Addressing,
    head: Head,
    now_ms: i64,
) -> MessageBuilder<'static> {
    let from = Address::new_address(
        Some(phrase(&head.from_display)),
        address(&gw.book.gateway_address()),
    );
    let recipient = address(&to.to);
    let to_name = phrase(&to.to_name);
    let to_header = Address::new_address((!to_name.is_empty()).then_some(to_name), recipient);
    let mut b = MessageBuilder::new()
        .from(from)
        .to(to_header)
        .reply_to(Address::new_address(None::<String>, address(&to.reply_to)))
        .subject(phrase(&head.subject))
        // RFC 5322 §3.3: the origination date, from the caller's clock.
        .date(Date::new(now_ms.div_euclid(1000)))
        .message_id(msg_id(&to.message_id));
    let parent = to
        .in_reply_to
        .as_deref()
        .map(msg_id)
        .filter(|id| !id.is_empty());
    let mut refs: Vec<String> = to
        .references
        .iter()
        .map(|r| msg_id(r))
        .filter(|r| !r.is_empty())
        .collect();
    if refs.is_empty() {
        // RFC 5322 §3.6.4: References holds at least the parent's Message-ID.
        refs.extend(parent.clone());
    }
    if let Some(parent) = parent {
        b = b.in_reply_to(parent);
    }
    if !refs.is_empty() {
        b = b.references(MessageId::from(refs));
    }
    b.header("Auto-Submitted", Raw::new(head.auto_submitted))
        // Ask Exchange not to send out-of-office and similar replies to us.
        .header("X-Auto-Response-Suppress", Raw::new("All"))
        .header("List-Id", Raw::new(list_id(&gw.book, &head.list_token)))
        .header(LOOP_HEADER, Raw::new(address(&gw.book.domain)))
}

/// Writes the message and pairs it with its envelope.
pub(crate) fn finish(builder: MessageBuilder<'_>, to: &Addressing) -> Rendered {
    let mut bytes = Vec::new();
    // io::Write for Vec<u8> never fails, so the only error source is absent.
    let _ = builder.write_to(&mut bytes);
    Rendered {
        message_id: msg_id(&to.message_id),
        envelope_from: address(&to.bounce),
        rcpt: address(&to.to),
        bytes,
    }
}

/// A text/plain UTF-8 part; mail-builder picks 7bit, quoted-printable or base64 and writes
/// CRLF line endings.
pub(crate) fn text_part(text: &str) -> MimePart<'static> {
    MimePart::new("text/plain", BodyPart::Text(body_text(text).into()))
}

/// A single-part text message.
pub(crate) fn text_message(
    builder: MessageBuilder<'static>,
    text: &str,
) -> MessageBuilder<'static> {
    builder.body(text_part(text))
}

/// RFC 2046 §5.1.1: a boundary that cannot occur in the encapsulated parts. It is derived
/// from a hash over the Message-ID and every part as the recipient gets it (SPEC §6.3:
/// nothing in a message is a function of what its recipient may not see).
pub(crate) fn boundary(message_id: &str, text: &str, files: &[(&str, &[u8])]) -> String {
    let mut h = Sha256::new();
    h.update(message_id.as_bytes());
    h.update(text.as_bytes());
    for (name, bytes) in files {
        h.update(name.as_bytes());
        h.update(bytes);
    }
    format!("=_cg{}", &hex::encode(h.finalize())[..40])
}

/// The body text with line endings that SMTP can carry: CRLF and lone CR become LF (which
/// mail-builder writes as CRLF), NUL becomes U+FFFD (RFC 5322 §2.3 forbids it).
pub(crate) fn body_text(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\0', "\u{FFFD}")
}

/// Header-safe phrase text: control characters (CR, LF, TAB, …) become spaces, runs of
/// whitespace collapse (no value can start a new header line) and format characters
/// (bidi overrides, zero-width characters) go.
pub(crate) fn phrase(s: &str) -> String {
    clean_line(s)
}

/// An address as it may appear inside `<...>`: no whitespace, controls or angle brackets.
pub(crate) fn address(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !c.is_whitespace() && !matches!(c, '<' | '>' | '"' | ','))
        .collect()
}

/// A Message-ID without angle brackets, whitespace or controls.
pub(crate) fn msg_id(s: &str) -> String {
    address(s.trim().trim_start_matches('<').trim_end_matches('>'))
}

/// RFC 2919 §2: `List-Id: "VU#123456" <vu123456.cases.example.org>`; the list-label is the
/// token's letters, digits and hyphens, lowercase.
pub(crate) fn list_id(book: &AddressBook, token: &str) -> String {
    let label: String = token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>()
        .to_ascii_lowercase();
    let local: String = book
        .local_part
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let shown: String = phrase(token)
        .chars()
        .filter(|c| !matches!(c, '"' | '\\'))
        .collect();
    format!(
        "\"{shown}\" <{label}.{}.{}>",
        local.to_ascii_lowercase(),
        address(&book.domain)
    )
}

/// `[VU#123456] <title>` (RFC 5322 §3.6.5).
pub(crate) fn subject(token: &str, rest: &str) -> String {
    format!("[{}] {}", phrase(token), phrase(rest))
}

/// The message of one decided content (SPEC §6.2), by kind.
pub fn content(gw: &Gateway, c: &Content, to: &Addressing, now_ms: i64) -> (OutboxKind, Rendered) {
    match &c.body {
        Body::Post(p) => (OutboxKind::Notification, notification(gw, p, to, now_ms)),
        Body::Digest(d) => (OutboxKind::Digest, digest(gw, d, to, now_ms)),
        Body::VendorContact(v) => (
            OutboxKind::VendorNotification,
            vendor_notification(gw, v, to, now_ms),
        ),
        Body::Acknowledgement => (
            OutboxKind::Acknowledgement,
            acknowledgement(gw, &c.token, to, now_ms),
        ),
        Body::Summary(s) if s.joined => (OutboxKind::Joined, summary(gw, s, to, now_ms)),
        Body::Summary(s) => (OutboxKind::CaseSummary, summary(gw, s, to, now_ms)),
        Body::Reminder(r) => (OutboxKind::Reminder, reminder(gw, r, to, now_ms)),
        Body::Coordinators(n) => {
            let kind = match n.note {
                CoordinatorNote::Daily(_) => OutboxKind::CoordinatorSummary,
                CoordinatorNote::Dead { .. } => OutboxKind::DeadNotice,
                CoordinatorNote::Bouncing { .. } => OutboxKind::BouncingNotice,
            };
            (kind, coordinators(gw, n, to, now_ms))
        }
    }
}

/// The content-free notice (SPEC §6.4).
pub fn notice(gw: &Gateway, n: &Notice, to: &Addressing, now_ms: i64) -> Rendered {
    embargo_notice(gw, &n.token, to, now_ms)
}

/// A MIME part for a forwarded attachment: its media type (parameters other than charset
/// dropped), its file name (mail-builder encodes it), and its bytes unchanged.
pub(crate) fn attachment_part(
    content_type: &str,
    filename: &str,
    bytes: &[u8],
) -> MimePart<'static> {
    let (media, charset) = media_type(content_type);
    let mut ct = ContentType::new(media);
    if let Some(cs) = charset {
        ct = ct.attribute("charset", cs);
    }
    let name = phrase(filename);
    let name = if name.is_empty() {
        "attachment".to_string()
    } else {
        name
    };
    // RFC 2045 §6.8: base64 for every attachment keeps it byte-exact (bare CR, bare LF and
    // NUL in text files included), which mail-builder's 7bit choice for text would not.
    let mut encoded = Vec::with_capacity(bytes.len() / 3 * 4 + bytes.len() / 38 + 8);
    // io::Write for Vec<u8> never fails.
    let _ = mail_builder::encoders::base64::base64_encode_mime(bytes, &mut encoded, false);
    MimePart::new(ct, BodyPart::Binary(encoded.into()))
        .attachment(name)
        .transfer_encoding("base64")
}

/// RFC 2045 §5.1: `type/subtype` as a lowercase token pair, and a valid charset parameter.
/// Anything unparseable is `application/octet-stream`.
fn media_type(raw: &str) -> (String, Option<String>) {
    let mut parts = raw.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    let valid = media
        .split_once('/')
        .is_some_and(|(t, s)| token(t) && token(s));
    let charset = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|v| token(v));
    if valid {
        (media, charset)
    } else {
        ("application/octet-stream".to_string(), None)
    }
}
