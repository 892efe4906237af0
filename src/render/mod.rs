//! Outbound messages as bytes: one message per recipient (SPEC §6.2), built with
//! mail-builder, CRLF line endings, deterministic for the same inputs.
//!
//! - [`notification()`]: a new post in a thread (§6.2, §6.3);
//! - [`acknowledgement()`]: the answer to a new report (§8, RFC 3834);
//! - [`embargo_notice()`]: the content-free notice of an embargoed post (§6.4);
//! - [`vendor_notification()`]: the initial contact of a vendor organization (§8).
//!
//! Pure: identifiers and the time are parameters. The MIME boundary is derived from the
//! Message-ID and the content, so rendering the same item twice gives the same bytes.

pub mod ack;
pub mod digest;
pub mod notice;
pub mod notification;
pub mod vendor;

pub use ack::acknowledgement;
pub use digest::{digest, DigestEntry};
pub use notice::embargo_notice;
pub use notification::notification;
pub use vendor::{vendor_notification, VendorNotice};

use crate::mail::AddressBook;
use crate::model::{Attachment, ThreadKind};
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

/// The thread a notification belongs to, as the recipient may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadView {
    /// `VU#123456` or `VRF#26-11-BCDFG`.
    pub token: String,
    pub title: String,
    pub kind: ThreadKind,
    /// A private thread's organization, shown only to its members and coordinators.
    pub org_name: Option<String>,
}

/// A post as one recipient gets it (see `audience::AuthorView`).
#[derive(Debug, Clone, Copy)]
pub struct PostView<'a> {
    pub author_display: &'a str,
    pub body: &'a str,
    pub attachments: &'a [Attachment],
    pub created_at_ms: i64,
    /// Strings replaced by `author_display` in the body, subject and attachment names.
    pub redactions: &'a [String],
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
/// from a hash over the Message-ID and every part's content, so no part contains it.
pub(crate) fn boundary(message_id: &str, text: &str, attachments: &[&Attachment]) -> String {
    let mut h = Sha256::new();
    h.update(message_id.as_bytes());
    h.update(text.as_bytes());
    for a in attachments {
        h.update(a.filename.as_bytes());
        h.update(&a.bytes);
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

/// Header-safe phrase text: control characters (CR, LF, TAB, …) become spaces and runs of
/// whitespace collapse, so no value can start a new header line.
pub(crate) fn phrase(s: &str) -> String {
    let spaced: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
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

/// Replaces every redaction string, case-insensitively, by `display` (SPEC §6.3).
/// Strings of four characters or more are replaced wherever they occur; shorter ones
/// (an organization called "HP") only as whole words, so that "php" in a proof of concept
/// survives.
pub fn redact(text: &str, redactions: &[String], display: &str) -> String {
    let mut needles: Vec<&str> = redactions
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .collect();
    if needles.is_empty() {
        return text.to_string();
    }
    // Longest first: the alternation is leftmost-first, so a name wins over its parts.
    needles.sort_by_key(|n| std::cmp::Reverse(n.chars().count()));
    let pattern = needles
        .iter()
        .map(|n| regex::escape(n))
        .collect::<Vec<_>>()
        .join("|");
    match regex::RegexBuilder::new(&pattern)
        .case_insensitive(true)
        .size_limit(1 << 26)
        .build()
    {
        Ok(re) => replace_matches(text, &re, display),
        Err(_) => replace_ascii_folded(text, &needles, display),
    }
}

/// Replaces the matches of `re` that satisfy [`word_ok`]; a rejected match is searched
/// again from its next character so that an overlapping needle is still found.
fn replace_matches(text: &str, re: &regex::Regex, display: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut last, mut pos) = (0, 0);
    while let Some(m) = re.find_at(text, pos) {
        if word_ok(text, m.start(), m.end()) {
            out.push_str(&text[last..m.start()]);
            out.push_str(display);
            last = m.end();
            pos = m.end();
        } else {
            pos = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
        }
        if pos > text.len() {
            break;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// Whether a match may be replaced: long matches always, short ones only when not flanked
/// by letters or digits.
fn word_ok(text: &str, start: usize, end: usize) -> bool {
    if text[start..end].chars().count() >= 4 {
        return true;
    }
    let before = text[..start]
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric);
    let after = text[end..]
        .chars()
        .next()
        .is_some_and(char::is_alphanumeric);
    !before && !after
}

/// Fallback when the pattern is too large to compile: ASCII case folding, one needle at a
/// time, longest first.
fn replace_ascii_folded(text: &str, needles: &[&str], display: &str) -> String {
    let mut out = text.to_string();
    for needle in needles {
        let lower_needle = needle.to_ascii_lowercase();
        let mut result = String::with_capacity(out.len());
        let lower = out.to_ascii_lowercase();
        let mut last = 0;
        for (i, _) in lower.match_indices(&lower_needle) {
            if i >= last && word_ok(&out, i, i + lower_needle.len()) {
                result.push_str(&out[last..i]);
                result.push_str(display);
                last = i + lower_needle.len();
            }
        }
        result.push_str(&out[last..]);
        out = result;
    }
    out
}

/// A MIME part for a forwarded attachment: its media type (parameters other than charset
/// dropped), its file name (mail-builder encodes it), and its bytes unchanged.
pub(crate) fn attachment_part(a: &Attachment, filename: &str) -> MimePart<'static> {
    let (media, charset) = media_type(&a.content_type);
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
    let mut encoded = Vec::with_capacity(a.bytes.len() / 3 * 4 + a.bytes.len() / 38 + 8);
    // io::Write for Vec<u8> never fails.
    let _ = mail_builder::encoders::base64::base64_encode_mime(&a.bytes, &mut encoded, false);
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
