//! Raw mail bytes → [`Inbound`]: headers decoded and unfolded, addresses, threading ids,
//! the readable text and byte-exact attachments.
//!
//! MIME structure is read by `mail-parser`; this module adds what the pipeline needs on top:
//! recovery of malformed parts (missing boundary, truncated part, bad base64 or
//! quoted-printable), each recorded as a human-readable entry in [`Inbound::warnings`];
//! byte-exact attachment bytes; HTML converted to text (never rendered, nothing fetched); text
//! normalized to LF line ends. Only input with no header at all is an error.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    Header, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

use super::{Inbound, Limits, Mailbox};
use crate::model::Attachment;

/// Why raw bytes are not a mail at all.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("no header block: {0}")]
    NoHeaders(String),
}

/// Parses a raw mail with the default [`Limits`]. Never panics; malformed MIME yields
/// warnings, not errors.
pub fn parse(raw: &[u8]) -> Result<Inbound, ParseError> {
    parse_with(raw, &Limits::default())
}

/// Parses a raw mail. A mail past a structural limit keeps its headers and addresses but
/// not its body, and names the limit in [`Inbound::damaged`].
pub fn parse_with(raw: &[u8], limits: &Limits) -> Result<Inbound, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let raw = skip_mbox_separator(raw);
    // Past a structural limit only the headers are parsed: no structure is built for
    // every one of many parts.
    let excess = structure_excess(raw, limits);
    let parser = parser();
    let message = match excess {
        Some(_) => parser.parse_headers(raw),
        None => parser.parse(raw),
    }
    .ok_or_else(|| no_headers(raw))?;
    let root = message.parts.first().ok_or_else(|| no_headers(raw))?;
    if !root
        .headers
        .iter()
        .any(|h| is_field_name(&raw_header_name(raw, h)))
    {
        return Err(no_headers(raw));
    }
    let mut inbound = Inbound {
        headers: collect_headers(raw, root, limits.max_header_fields),
        ..Inbound::default()
    };
    read_envelope(&mut inbound);
    read_threading(&mut inbound, raw, root, limits.max_references);
    let recipients = read_addresses(&mut inbound, raw, root, limits.max_recipients);
    read_content_type(&mut inbound, root);
    if let Some(excess) = excess.or_else(|| over_limits(&message, recipients, limits)) {
        // Held as malformed: the addresses past the limit are not needed, nor kept.
        inbound.to.truncate(limits.max_recipients);
        inbound
            .cc
            .truncate(limits.max_recipients.saturating_sub(inbound.to.len()));
        inbound.damaged.push(excess.clone());
        inbound.warnings.push(excess);
        return Ok(inbound);
    }
    read_body(&mut inbound, raw, &message);
    body_text_as_attachment(&mut inbound, limits.max_body_text_bytes);
    Ok(inbound)
}

/// The MIME parser: it parses the MIME headers it needs for the body (Content-Type,
/// Content-Disposition, Content-Transfer-Encoding …) and keeps every other header raw.
/// Headers are decoded here (addresses by our own RFC 5322 parser, only the newest
/// References), so that a header of 100,000 addresses or ids is not parsed into as many
/// values first.
fn parser() -> MessageParser {
    MessageParser::new().with_mime_headers()
}

/// MIME parts and nesting counted on the raw bytes, before parsing: a walk over borrowed
/// slices (the OpenPGP layer's entity splitter) that stops descending past the depth
/// limit.
fn structure_excess(raw: &[u8], limits: &Limits) -> Option<String> {
    use crate::pgp::mime::Entity;
    let (mut parts, mut deepest) = (0usize, 0usize);
    let mut stack = vec![(raw, 1usize)];
    while let Some((bytes, depth)) = stack.pop() {
        parts += 1;
        deepest = deepest.max(depth);
        if depth > limits.max_mime_depth {
            continue;
        }
        let e = Entity::parse(bytes);
        if e.content_type().media == "message/rfc822" {
            stack.push((e.body, depth + 1));
        } else {
            stack.extend(e.children().into_iter().map(|c| (c, depth + 1)));
        }
    }
    if deepest > limits.max_mime_depth {
        return Some(format!(
            "MIME nesting deeper than {} levels",
            limits.max_mime_depth
        ));
    }
    (parts > limits.max_mime_parts)
        .then(|| format!("{parts} MIME parts, limit {}", limits.max_mime_parts))
}

/// The first structural limit the mail exceeds, named.
fn over_limits(message: &Message<'_>, recipients: usize, limits: &Limits) -> Option<String> {
    let fields = message.parts.first().map_or(0, |p| p.headers.len());
    if fields > limits.max_header_fields {
        return Some(format!(
            "{fields} header fields, limit {}",
            limits.max_header_fields
        ));
    }
    if recipients > limits.max_recipients {
        return Some(format!(
            "{recipients} To/Cc addresses, limit {}",
            limits.max_recipients
        ));
    }
    let (parts, depth) = mime_extent(message, limits.max_mime_depth);
    if depth > limits.max_mime_depth {
        return Some(format!(
            "MIME nesting deeper than {} levels",
            limits.max_mime_depth
        ));
    }
    if parts > limits.max_mime_parts {
        return Some(format!(
            "{parts} MIME parts, limit {}",
            limits.max_mime_parts
        ));
    }
    None
}

/// The number of MIME parts (attached messages' parts included) and the nesting depth,
/// walked without recursion; the walk stops below `max_depth + 1`.
fn mime_extent(message: &Message<'_>, max_depth: usize) -> (usize, usize) {
    let (mut parts, mut deepest) = (0usize, 0usize);
    let mut stack: Vec<(&Message<'_>, u32, usize)> = vec![(message, 0, 1)];
    while let Some((m, id, depth)) = stack.pop() {
        let Some(part) = m.parts.get(id as usize) else {
            continue;
        };
        parts += 1;
        deepest = deepest.max(depth);
        if depth > max_depth {
            continue;
        }
        match &part.body {
            PartType::Multipart(children) => {
                stack.extend(children.iter().map(|&c| (m, c, depth + 1)));
            }
            PartType::Message(inner) => stack.push((inner, 0, depth + 1)),
            _ => {}
        }
    }
    (parts, deepest)
}

/// A body text that is too long to send to every reader, or that is not text (NUL
/// bytes, control characters), becomes the attachment `body.txt`; the text says so.
fn body_text_as_attachment(inbound: &mut Inbound, max_bytes: usize) {
    let why = if inbound.text.len() > max_bytes {
        format!("it is longer than {max_bytes} bytes")
    } else if !looks_like_text(&inbound.text) {
        "it is not text (it holds NUL or other control characters)".to_string()
    } else {
        return;
    };
    let bytes = std::mem::take(&mut inbound.text).into_bytes();
    inbound.text = format!(
        "[The message body ({} bytes) is attached as body.txt: {why}.]",
        bytes.len()
    );
    let attachment = Attachment {
        filename: "body.txt".to_string(),
        content_type: "text/plain".to_string(),
        bytes,
    };
    inbound.attachments.insert(0, attachment);
}

/// No NUL, and at most one control character (other than tab, line ends and form feed)
/// in a hundred.
fn looks_like_text(text: &str) -> bool {
    let mut controls = 0usize;
    for c in text.chars() {
        match c {
            '\0' => return false,
            '\t' | '\n' | '\r' | '\u{c}' => {}
            c if c.is_control() => controls += 1,
            _ => {}
        }
    }
    controls * 100 <= text.len()
}

/// RFC 4155 §2: a mailbox-format separator line (`From sender date`) may precede the
/// headers when the mail comes from an MTA pipe; it is not a header field.
fn skip_mbox_separator(raw: &[u8]) -> &[u8] {
    if !raw.starts_with(b"From ") {
        return raw;
    }
    match raw.iter().position(|&b| b == b'\n') {
        Some(end) => &raw[end + 1..],
        None => raw,
    }
}

fn no_headers(raw: &[u8]) -> ParseError {
    let line = raw
        .split(|&b| b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace));
    let line = String::from_utf8_lossy(line.unwrap_or_default());
    let shown: String = line.trim().chars().take(60).collect();
    ParseError::NoHeaders(format!("first line is not a header field: {shown:?}"))
}

/// RFC 5322 §3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126.
fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

// ---------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------

fn slice(raw: &[u8], start: u32, end: u32) -> &[u8] {
    raw.get(start as usize..end as usize).unwrap_or_default()
}

/// The longest header value kept (the rest is cut: threading ids and addresses are read
/// from the raw bytes, a header this long is hostile anyway).
const MAX_HEADER_VALUE: u32 = 64 * 1024;

/// The first `max` header fields (more make the mail malformed; the rest are not read),
/// each value at most [`MAX_HEADER_VALUE`] bytes before decoding.
fn collect_headers(raw: &[u8], root: &MessagePart<'_>, max: usize) -> Vec<(String, String)> {
    root.headers
        .iter()
        .take(max)
        .map(|h| {
            let end = h
                .offset_end
                .min(h.offset_start.saturating_add(MAX_HEADER_VALUE));
            (
                raw_header_name(raw, h),
                decode_header_value(slice(raw, h.offset_start, end)),
            )
        })
        .collect()
}

/// The field name as written in the mail (the parser's canonical spelling otherwise).
fn raw_header_name(raw: &[u8], header: &Header<'_>) -> String {
    let bytes = slice(raw, header.offset_field, header.offset_start);
    let bytes = bytes.strip_suffix(b":").unwrap_or(bytes);
    let name = String::from_utf8_lossy(bytes).trim().to_string();
    if name.is_empty() {
        header.name.as_str().to_string()
    } else {
        name
    }
}

/// RFC 5322 §2.2.3 unfolding and RFC 2047 decoding (any charset), then runs of
/// whitespace collapsed to one space.
fn decode_header_value(bytes: &[u8]) -> String {
    let mut owned;
    let bytes = if bytes.ends_with(b"\n") {
        bytes
    } else {
        owned = bytes.to_vec();
        owned.push(b'\n');
        &owned
    };
    match MessageStream::new(bytes).parse_unstructured() {
        HeaderValue::Text(text) => collapse_whitespace(&text),
        _ => String::new(),
    }
}

pub(crate) fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn first_value<'a>(inbound: &'a Inbound, name: &'a str) -> Option<&'a str> {
    inbound.header_values(name).next()
}

/// Message-ID, In-Reply-To, References, Subject, Return-Path, Delivered-To.
fn read_envelope(inbound: &mut Inbound) {
    inbound.message_id =
        first_value(inbound, "Message-ID").and_then(|v| message_ids(v).into_iter().next());
    inbound.subject = first_value(inbound, "Subject")
        .unwrap_or_default()
        .to_string();
    inbound.return_path = first_value(inbound, "Return-Path").and_then(return_path);
    let delivered: Vec<String> = inbound
        .headers
        .iter()
        .filter(|(n, _)| {
            n.eq_ignore_ascii_case("Delivered-To") || n.eq_ignore_ascii_case("X-Original-To")
        })
        .filter_map(|(_, v)| bare_address(v))
        .filter(|a| !a.is_empty())
        .collect();
    inbound.delivered_to = delivered;
}

/// In-Reply-To and References (RFC 5322 §3.6.4) from the raw header values: the first
/// `max` In-Reply-To ids, and the newest `max` References ids (References lists the
/// thread oldest first). Ids beyond are never held.
fn read_threading(inbound: &mut Inbound, raw: &[u8], root: &MessagePart<'_>, max: usize) {
    let values = |name: HeaderName<'static>| {
        root.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| String::from_utf8_lossy(slice(raw, h.offset_start, h.offset_end)).into_owned())
    };
    inbound.in_reply_to = values(HeaderName::InReplyTo)
        .flat_map(|v| message_ids(&v))
        .take(max)
        .collect();
    let mut newest = std::collections::VecDeque::with_capacity(max.min(1024));
    for value in values(HeaderName::References) {
        for_each_message_id(&value, |id| {
            if newest.len() == max {
                newest.pop_front();
            }
            if max > 0 {
                newest.push_back(id);
            }
        });
    }
    inbound.references = newest.into();
}

/// Calls `f` with each msg-id of `value`, as [`message_ids`] finds them, one at a time.
fn for_each_message_id(value: &str, mut f: impl FnMut(String)) {
    let bracketed = value
        .split('<')
        .skip(1)
        .filter_map(|s| s.split_once('>'))
        .map(|(id, _)| id.split_whitespace().collect::<String>())
        .filter(|id| !id.is_empty());
    let mut any = false;
    for id in bracketed {
        any = true;
        f(id);
    }
    if !any {
        message_ids(value).into_iter().for_each(f);
    }
}

/// RFC 5322 §3.6.4 msg-id values without angle brackets; ids written without brackets
/// (obsolete or broken clients) are accepted when they contain `@`.
fn message_ids(value: &str) -> Vec<String> {
    let bracketed: Vec<String> = value
        .split('<')
        .skip(1)
        .filter_map(|s| s.split_once('>'))
        .map(|(id, _)| id.split_whitespace().collect::<String>())
        .filter(|id| !id.is_empty())
        .collect();
    if !bracketed.is_empty() {
        return bracketed;
    }
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| t.contains('@'))
        .map(str::to_string)
        .collect()
}

/// An address written as `<a@b>`, `a@b` or `a@b (comment)`.
fn bare_address(value: &str) -> Option<String> {
    let value = value.trim();
    if let Some((_, rest)) = value.split_once('<') {
        return rest
            .split_once('>')
            .map(|(inner, _)| inner.trim().to_string());
    }
    value.split_whitespace().next().map(str::to_string)
}

/// RFC 5321 §4.4: `Return-Path: <>` is the null reverse-path, kept as `Some("")`.
fn return_path(value: &str) -> Option<String> {
    bare_address(value)
}

// ---------------------------------------------------------------------------------------
// Addresses and content type
// ---------------------------------------------------------------------------------------

/// From, To and Cc; To and Cc keep at most `max_recipients + 1` mailboxes. Returns how
/// many To and Cc mailboxes the mail names.
fn read_addresses(
    inbound: &mut Inbound,
    raw: &[u8],
    root: &MessagePart<'_>,
    max_recipients: usize,
) -> usize {
    let from_headers: Vec<&Header<'_>> = root
        .headers
        .iter()
        .filter(|h| h.name == HeaderName::From)
        .collect();
    if from_headers.len() > 1 {
        // RFC 5322 §3.6: From occurs exactly once.
        inbound.warnings.push(format!(
            "{} From headers; the first one is used",
            from_headers.len()
        ));
    }
    if let Some(header) = from_headers.first() {
        inbound.from = mailboxes(raw, header, 1).0.into_iter().next();
        if inbound.from.is_none() {
            inbound
                .warnings
                .push("From header has no usable address".to_string());
        }
    }
    let mut seen = 0usize;
    for header in &root.headers {
        let budget = max_recipients
            .saturating_add(1)
            .saturating_sub(inbound.to.len() + inbound.cc.len());
        let list = match header.name {
            HeaderName::To => &mut inbound.to,
            HeaderName::Cc => &mut inbound.cc,
            _ => continue,
        };
        let (found, count) = mailboxes(raw, header, budget);
        list.extend(found);
        seen += count;
    }
    seen
}

/// Every mailbox of an address header, group members included, read from the raw value
/// (RFC 5322 §3.4; quoted local parts of §3.4.1 included).
fn mailboxes(raw: &[u8], header: &Header<'_>, max: usize) -> (Vec<Mailbox>, usize) {
    let value = slice(raw, header.offset_start, header.offset_end);
    let decode = |phrase: &str| decode_header_value(phrase.as_bytes());
    super::address::address_list_upto(value, &decode, max)
}

/// Lowercase `type/subtype` of a part; RFC 2045 §5.2: text/plain when absent or invalid.
fn mime_type(part: &MessagePart<'_>) -> Option<String> {
    let ct = part.content_type()?;
    let subtype = ct.subtype()?;
    Some(format!("{}/{}", ct.ctype(), subtype).to_ascii_lowercase())
}

fn read_content_type(inbound: &mut Inbound, root: &MessagePart<'_>) {
    inbound.content_type = match (root.content_type(), mime_type(root)) {
        (_, Some(t)) => t,
        (None, None) => "text/plain".to_string(),
        (Some(ct), None) => {
            inbound.warnings.push(format!(
                "Content-Type {:?} has no subtype; read as text/plain",
                ct.ctype()
            ));
            "text/plain".to_string()
        }
    };
    if inbound.content_type == "multipart/report" {
        // RFC 6522 §3: the report-type parameter names the kind of report.
        inbound.report_type = root
            .content_type()
            .and_then(|ct| ct.attribute("report-type"))
            .map(|t| t.trim().to_ascii_lowercase());
    }
}

// ---------------------------------------------------------------------------------------
// Body: text, HTML and attachments
// ---------------------------------------------------------------------------------------

fn read_body(inbound: &mut Inbound, raw: &[u8], message: &Message<'_>) {
    let mut notes = Notes::default();
    match repair_root_boundary(raw, message, &mut notes) {
        Some(repaired_raw) => match parser().parse(&repaired_raw) {
            Some(repaired) => read_parts(inbound, &repaired_raw, &repaired, &mut notes),
            None => read_parts(inbound, raw, message, &mut notes),
        },
        None => read_parts(inbound, raw, message, &mut notes),
    }
    inbound.warnings.append(&mut notes.all);
    inbound.damaged.append(&mut notes.damaged);
}

/// Warnings found while reading the body: every one, and those that mean content was
/// lost or cut (the mail is then held as `malformed`, see docs/routing.md).
#[derive(Debug, Default)]
struct Notes {
    all: Vec<String>,
    damaged: Vec<String>,
}

impl Notes {
    /// A cosmetic problem: the content is whole (an unknown charset label, a repair).
    fn push(&mut self, warning: String) {
        self.all.push(warning);
    }
    /// Content damage: bytes were lost, cut or could not be separated.
    fn damage(&mut self, warning: String) {
        self.damaged.push(warning.clone());
        self.all.push(warning);
    }
}

/// The parts that make up the readable body and the attachments, in MIME order.
fn read_parts(inbound: &mut Inbound, raw: &[u8], message: &Message<'_>, notes: &mut Notes) {
    note_structure_problems(notes, raw, message);
    let body_ids = body_part_ids(message);
    let (texts, mut htmls) = body_texts(raw, message, &body_ids, notes);
    inbound.text = join_texts(texts);
    if inbound.text.is_empty() && htmls.is_empty() {
        // An empty plain alternative next to a real HTML one: read the HTML instead.
        htmls = html_parts(message, &message.html_body);
        inbound.text = join_texts(htmls.iter().map(|h| html_to_text(h)).collect());
    }
    for (n, html) in htmls.into_iter().enumerate() {
        let filename = match n {
            0 => "body.html".to_string(),
            n => format!("body-{}.html", n + 1),
        };
        let bytes = html.into_bytes();
        let content_type = "text/html".to_string();
        inbound.attachments.push(Attachment {
            filename,
            content_type,
            bytes,
        });
    }
    let attachment_ids = message
        .attachments
        .iter()
        .filter(|id| !body_ids.contains(id));
    for (index, &id) in attachment_ids.enumerate() {
        if let Some(part) = message.parts.get(id as usize) {
            let attachment = attachment(raw, id, index + 1, part, notes);
            inbound.attachments.push(attachment);
        }
    }
}

/// The texts of the body parts (HTML converted), and the HTML sources.
fn body_texts(
    raw: &[u8],
    message: &Message<'_>,
    ids: &[u32],
    warnings: &mut Notes,
) -> (Vec<String>, Vec<String>) {
    let mut texts = Vec::new();
    let mut htmls = Vec::new();
    for &id in ids {
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        match &part.body {
            PartType::Html(html) => {
                texts.push(html_to_text(html));
                htmls.push(html.to_string());
            }
            PartType::Text(_) | PartType::Binary(_) => {
                texts.push(part_text(raw, id, part, warnings))
            }
            _ => {}
        }
    }
    (texts, htmls)
}

fn html_parts(message: &Message<'_>, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .filter_map(|&id| match &message.parts.get(id as usize)?.body {
            PartType::Html(html) if !html.trim().is_empty() => Some(html.to_string()),
            _ => None,
        })
        .collect()
}

/// Parts read as body text: the parser's text body (text/plain, or HTML where no plain
/// alternative exists), plus text/plain parts it set aside because their transfer
/// encoding was broken, plus multiparts whose boundary was never found.
fn body_part_ids(message: &Message<'_>) -> Vec<u32> {
    let mut ids: Vec<u32> = message
        .text_body
        .iter()
        .copied()
        .filter(|&id| message.parts.get(id as usize).is_some_and(is_body_text))
        .collect();
    ids.extend(message.attachments.iter().copied().filter(|&id| {
        message
            .parts
            .get(id as usize)
            .is_some_and(|p| is_broken_inline_text(p) || is_broken_multipart(p))
    }));
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn is_body_text(part: &MessagePart<'_>) -> bool {
    match &part.body {
        PartType::Html(_) => true,
        PartType::Text(_) => mime_type(part).is_none_or(|t| t == "text/plain"),
        _ => false,
    }
}

fn is_attachment_disposition(part: &MessagePart<'_>) -> bool {
    part.content_disposition()
        .is_some_and(|d| d.is_attachment())
        || part.attachment_name().is_some()
}

fn is_broken_inline_text(part: &MessagePart<'_>) -> bool {
    part.is_encoding_problem
        && matches!(part.body, PartType::Text(_))
        && mime_type(part).is_none_or(|t| t == "text/plain")
        && !is_attachment_disposition(part)
}

/// A part declared multipart whose boundary could not be found: the parser kept it whole.
fn is_broken_multipart(part: &MessagePart<'_>) -> bool {
    part.content_type()
        .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        && !matches!(part.body, PartType::Multipart(_))
}

/// Warnings for multiparts without a boundary or without their closing delimiter.
fn note_structure_problems(notes: &mut Notes, raw: &[u8], message: &Message<'_>) {
    for (id, part) in message.parts.iter().enumerate() {
        let kind = mime_type(part).unwrap_or_else(|| "multipart".to_string());
        if is_quoted_printable(part) && qp_truncated(slice(raw, part.offset_body, part.offset_end))
        {
            notes.damage(format!(
                "part {id}: quoted-printable escape cut off at the end, the part may be truncated"
            ));
        }
        if is_broken_multipart(part) {
            notes.damage(format!(
                "part {id} ({kind}): boundary not found; its content is kept as text"
            ));
            continue;
        }
        let Some(boundary) = multipart_boundary(part) else {
            continue;
        };
        // RFC 2046 §5.1.1: the body ends with the close-delimiter `--boundary--`.
        let close = [b"--".as_slice(), boundary.as_bytes(), b"--"].concat();
        let rest = raw.get(part.offset_body as usize..).unwrap_or_default();
        if !contains(rest, &close) {
            notes.damage(format!(
                "part {id} ({kind}): closing boundary missing, the message may be truncated"
            ));
        }
    }
}

fn multipart_boundary<'a>(part: &'a MessagePart<'_>) -> Option<&'a str> {
    if !matches!(part.body, PartType::Multipart(_)) {
        return None;
    }
    part.content_type()?.attribute("boundary")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// When the top-level multipart has no usable boundary, guesses it from the first
/// delimiter-looking line of the body (RFC 2046 §5.1.1: `--` boundary, 1 to 70
/// characters) and returns a message rebuilt with that boundary, for a second parse.
fn repair_root_boundary(
    raw: &[u8],
    message: &Message<'_>,
    warnings: &mut Notes,
) -> Option<Vec<u8>> {
    let root = message.parts.first()?;
    if !is_broken_multipart(root) {
        return None;
    }
    let ct = root.content_type()?;
    let body = raw.get(root.offset_body as usize..)?;
    let boundary = body
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .find_map(|line| line.strip_prefix(b"--"))
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .filter(|b| (1..=70).contains(&b.len()) && !b.contains('"') && !b.ends_with("--"))?;
    let subtype = ct.subtype().unwrap_or("mixed");
    warnings.push(format!(
        "multipart/{subtype} boundary not usable; guessed {boundary:?} from the body"
    ));
    let mut rebuilt =
        format!("Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\r\n\r\n").into_bytes();
    rebuilt.extend_from_slice(body);
    Some(rebuilt)
}

/// The body texts normalized in place and joined by a blank line; a single text is moved,
/// not copied (body texts can be megabytes long).
fn join_texts(texts: Vec<String>) -> String {
    let mut texts: Vec<String> = texts
        .into_iter()
        .map(normalize_owned)
        .filter(|t| !t.is_empty())
        .collect();
    match texts.len() {
        0 => String::new(),
        1 => texts.pop().unwrap_or_default(),
        _ => texts.join("\n\n"),
    }
}

/// LF line ends (CR LF and lone CR become LF, in place), no leading blank lines, no
/// trailing space; the string's buffer is reused.
fn normalize_owned(text: String) -> String {
    if !text.contains('\r') && !text.starts_with('\n') && text.trim_end().len() == text.len() {
        return text;
    }
    let mut bytes = text.into_bytes();
    let mut w = 0;
    let mut r = 0;
    while r < bytes.len() {
        let b = bytes[r];
        r += 1;
        if b == b'\r' {
            bytes[w] = b'\n';
            if bytes.get(r) == Some(&b'\n') {
                r += 1;
            }
        } else {
            bytes[w] = b;
        }
        w += 1;
    }
    bytes.truncate(w);
    // Only ASCII CR bytes were replaced by ASCII LF: still UTF-8.
    let text = String::from_utf8(bytes).unwrap_or_default();
    let end = text.trim_end().len();
    let start = end - text[..end].trim_start_matches('\n').len();
    let mut text = text;
    text.truncate(end);
    text.drain(..start);
    text
}

/// HTML → text. Nothing is fetched: the converter only reads the given markup.
fn html_to_text(html: &str) -> String {
    html2text::config::plain()
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), 80)
        .unwrap_or_else(|_| mail_parser::decoders::html::html_to_text(html))
}

/// The text of a body part; a part whose transfer encoding was broken is decoded
/// leniently from the raw bytes, and the charset applied.
fn part_text(raw: &[u8], id: u32, part: &MessagePart<'_>, warnings: &mut Notes) -> String {
    let charset = part.content_type().and_then(|ct| ct.attribute("charset"));
    if let Some(name) =
        charset.filter(|c| charset_decoder(c.as_bytes()).is_none() && !is_utf8_label(c))
    {
        warnings.push(format!(
            "part {id}: unknown charset {name:?}, read as UTF-8"
        ));
    }
    let text = match &part.body {
        PartType::Text(text) if !part.is_encoding_problem => text.to_string(),
        _ => decode_charset(&transfer_decoded(raw, id, part, warnings), charset),
    };
    if text.contains('\u{FFFD}') {
        let label = charset.unwrap_or("none");
        warnings.push(format!(
            "part {id}: some bytes are not valid in charset {label:?}"
        ));
    }
    text
}

fn is_utf8_label(label: &str) -> bool {
    let l: String = label
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    l == "utf8" || l == "unicode11utf8" || l == "unicode20utf8" || l == "xunicode20utf8"
}

fn decode_charset(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.and_then(|c| charset_decoder(c.as_bytes())) {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The part's content with its Content-Transfer-Encoding undone (RFC 2045 §6), read
/// from the raw bytes so that text attachments stay byte-exact.
fn transfer_decoded(raw: &[u8], id: u32, part: &MessagePart<'_>, warnings: &mut Notes) -> Vec<u8> {
    let body = slice(raw, part.offset_body, part.offset_end);
    let encoding = part
        .content_transfer_encoding()
        .map(|e| e.trim().to_ascii_lowercase());
    let (bytes, clean, name) = match encoding.as_deref() {
        Some("base64") => {
            let (bytes, clean) = base64_lenient(body);
            (bytes, clean, "base64")
        }
        Some("quoted-printable") => {
            // RFC 2045 §6.7 note 1: a stray `=` is kept as written, nothing is lost (a
            // cut-off escape is found by `note_structure_problems`).
            let (bytes, clean) = quoted_printable_lenient(body);
            if !clean {
                warnings.push(format!(
                    "part {id}: stray `=` in quoted-printable kept as written"
                ));
            }
            (bytes, true, "quoted-printable")
        }
        _ => (body.to_vec(), true, ""),
    };
    let text = format!("part {id}: invalid or truncated {name}; decoded what could be read");
    if !clean {
        warnings.damage(text);
    } else if part.is_encoding_problem && !name.is_empty() {
        warnings.push(text);
    }
    bytes
}

/// RFC 2045 §6.8: characters outside the base64 alphabet are ignored; decoding ends at
/// the first `=` pad. Returns the bytes and whether the input was well formed.
fn base64_lenient(input: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let (mut acc, mut bits, mut count, mut clean) = (0u32, 0u32, 0usize, true);
    for &b in input {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => {
                clean = false;
                continue;
            }
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        count += 1;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing character carries fewer than 8 bits: the input was cut short.
    if count % 4 == 1 {
        clean = false;
    }
    (out, clean)
}

fn is_quoted_printable(part: &MessagePart<'_>) -> bool {
    part.content_transfer_encoding()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("quoted-printable"))
}

/// A quoted-printable body whose last escape is cut short (`=` and one hex digit).
fn qp_truncated(body: &[u8]) -> bool {
    match body.trim_ascii_end() {
        [.., b'=', h] => h.is_ascii_hexdigit(),
        _ => false,
    }
}

/// RFC 2045 §6.7: `=XX` hex octets, `=` at line end is a soft line break, trailing
/// whitespace on a line is transport padding. An `=` not followed by two hex digits is
/// kept literally (§6.7 note 1). Returns the bytes and whether the input was well formed.
fn quoted_printable_lenient(input: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(input.len());
    let mut clean = true;
    for line in input.split_inclusive(|&b| b == b'\n') {
        let (content, eol) = split_line_end(line);
        let content = trim_trailing_ws(content);
        let (content, soft) = match content.strip_suffix(b"=") {
            Some(c) => (c, true),
            None => (content, false),
        };
        clean &= decode_qp_line(content, &mut out);
        if !soft {
            out.extend_from_slice(eol);
        }
    }
    (out, clean)
}

fn split_line_end(line: &[u8]) -> (&[u8], &[u8]) {
    if let Some(c) = line.strip_suffix(b"\r\n") {
        (c, b"\r\n")
    } else if let Some(c) = line.strip_suffix(b"\n") {
        (c, b"\n")
    } else {
        (line, b"")
    }
}

fn trim_trailing_ws(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn decode_qp_line(content: &[u8], out: &mut Vec<u8>) -> bool {
    let mut clean = true;
    let mut i = 0;
    while i < content.len() {
        let b = content[i];
        let hex = content
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'=', Some(octet)) => {
                out.push(octet);
                i += 3;
            }
            (b'=', None) => {
                clean = false;
                out.push(b);
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    clean
}

/// One attachment: byte-exact content, type, and a file name that is safe to show.
fn attachment(
    raw: &[u8],
    id: u32,
    index: usize,
    part: &MessagePart<'_>,
    warnings: &mut Notes,
) -> Attachment {
    let content_type = attachment_type(part);
    let bytes = match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) if !part.is_encoding_problem => b.to_vec(),
        _ => transfer_decoded(raw, id, part, warnings),
    };
    let filename = attachment_filename(part, &content_type, index);
    Attachment {
        filename,
        content_type,
        bytes,
    }
}

fn attachment_type(part: &MessagePart<'_>) -> String {
    match (&part.body, mime_type(part)) {
        (PartType::Message(_), None) => "message/rfc822".to_string(),
        (_, Some(t)) => t,
        (_, None) => "text/plain".to_string(),
    }
}

fn is_message_type(content_type: &str) -> bool {
    content_type == "message/rfc822" || content_type == "message/global"
}

/// The declared name (RFC 2231 and RFC 2047 forms decoded by the parser), reduced to a
/// base name; `attachment-N.ext` when there is none. Attached messages end in `.eml`.
fn attachment_filename(part: &MessagePart<'_>, content_type: &str, index: usize) -> String {
    let is_message = is_message_type(content_type) || matches!(part.body, PartType::Message(_));
    let name = part
        .attachment_name()
        .map(sanitize_filename)
        .filter(|n| !n.is_empty());
    match name {
        Some(name) if is_message && !name.to_ascii_lowercase().ends_with(".eml") => {
            format!("{name}.eml")
        }
        Some(name) => name,
        None if is_message => format!("attachment-{index}.eml"),
        None => format!("attachment-{index}.{}", extension_for(content_type)),
    }
}

/// Keeps the last path component, drops control characters and leading dots.
fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    collapse_whitespace(&cleaned)
        .trim_start_matches('.')
        .to_string()
}

fn extension_for(content_type: &str) -> &'static str {
    match content_type {
        "text/plain" | "message/delivery-status" | "text/rfc822-headers" => "txt",
        "text/html" => "html",
        "text/csv" => "csv",
        "text/calendar" => "ics",
        "text/x-diff" | "text/x-patch" => "patch",
        "text/xml" | "application/xml" => "xml",
        "application/json" => "json",
        "application/pdf" => "pdf",
        "application/zip" => "zip",
        "application/gzip" | "application/x-gzip" => "gz",
        "application/pgp-signature" | "application/pgp-keys" => "asc",
        "application/pgp-encrypted" => "pgp",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "message/rfc822" | "message/global" => "eml",
        _ => "bin",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Test mails are written with LF; real ones travel with CRLF.
    fn crlf(s: &str) -> Vec<u8> {
        s.replace('\n', "\r\n").into_bytes()
    }

    fn parsed(s: &str) -> Inbound {
        parse(&crlf(s)).expect("parses")
    }

    fn has_warning(inbound: &Inbound, needle: &str) -> bool {
        inbound.warnings.iter().any(|w| w.contains(needle))
    }

    const THUNDERBIRD: &str = "Return-Path: <alice@vendor.example>
Delivered-To: cases+vu123456@example.org
X-Original-To: cases+vu123456@example.org
Received: from mail.vendor.example (mail.vendor.example [192.0.2.10])
\tby mx.example.org (Postfix) with ESMTPS id 1A2B3C4D5E
\tfor <cases+vu123456@example.org>; Tue, 10 Mar 2026 09:00:00 +0000 (UTC)
Authentication-Results: mx.example.org;
\tdkim=pass (2048-bit key) header.d=vendor.example;
\tdmarc=pass (p=reject dis=none) header.from=vendor.example
Message-ID: <5f0e6c1a-1234-4c2b-9d7e-0a1b2c3d4e5f@vendor.example>
Date: Tue, 10 Mar 2026 10:00:00 +0100
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Subject: =?UTF-8?Q?Re=3A_=5BVU=23123456=5D?=
 =?UTF-8?Q?_Buffer_overflow_in_parser_=E2=80=93_status?=
Content-Language: en-US
To: Coordination Team <cases+vu123456@example.org>
Cc: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@vendor.example>,
 bob@vendor.example
References: <n0@example.org>
 <n1@example.org>
In-Reply-To: <n1@example.org>
From: Alice Vendor <alice@vendor.example>
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 8bit

Hello,

we confirm the issue in versions 2.x \u{2013} a fix is scheduled.

On 10.03.26 09:00, Coordination Team wrote:
> Please confirm.
";

    const OUTLOOK_ALTERNATIVE: &str = "From: =?iso-8859-1?Q?Ren=E9_Dupr=E9?= <rene@vendor.example>
To: \"cases@example.org\" <cases+r-k7q2m3x4a5b6c7d8@example.org>
Subject: =?iso-8859-1?Q?AW:_[VU#123456]_Pr=FCfung_abgeschlossen?=
Thread-Topic: [VU#123456] Pruefung
Date: Tue, 10 Mar 2026 10:05:00 +0000
Message-ID: <AM0PR01MB1234ABCD@AM0PR01MB1234.eurprd01.prod.outlook.com>
In-Reply-To: <n1@example.org>
References: <n0@example.org> <n1@example.org>
Content-Language: de-DE
X-MS-Has-Attach:
Content-Type: multipart/alternative;
\tboundary=\"_000_AM0PR01MB1234ABCD_\"
MIME-Version: 1.0

--_000_AM0PR01MB1234ABCD_
Content-Type: text/plain; charset=\"iso-8859-1\"
Content-Transfer-Encoding: quoted-printable

Die Pr=FCfung ist abgeschlossen.=20
Gr=FC=DFe

--_000_AM0PR01MB1234ABCD_
Content-Type: text/html; charset=\"iso-8859-1\"
Content-Transfer-Encoding: quoted-printable

<html><body><p>Die Pr=FCfung ist abgeschlossen.</p></body></html>

--_000_AM0PR01MB1234ABCD_--
";

    const PDF_BYTES: &[u8] = b"%PDF-1.4\n%\xc7\xec\x8f\xa2\n1 0 obj\n<<>>\nendobj\n";

    const GMAIL_PDF: &str = "MIME-Version: 1.0
Date: Tue, 10 Mar 2026 11:00:00 +0100
Message-ID: <CAF=abc+def@mail.gmail.com>
Subject: =?ISO-8859-1?Q?R=E9sum=E9_for_VU#123456?=
From: =?UTF-8?B?UmVuw6k=?= <rene@gmail.example>
To: security@example.org
Content-Type: multipart/mixed; boundary=\"000000000000aaaa\"

--000000000000aaaa
Content-Type: multipart/alternative; boundary=\"000000000000bbbb\"

--000000000000bbbb
Content-Type: text/plain; charset=\"UTF-8\"
Content-Transfer-Encoding: quoted-printable

Please find the r=C3=A9sum=C3=A9 attached.

--000000000000bbbb
Content-Type: text/html; charset=\"UTF-8\"
Content-Transfer-Encoding: quoted-printable

<div dir=3D\"ltr\">Please find the r=C3=A9sum=C3=A9 attached.</div>

--000000000000bbbb--
--000000000000aaaa
Content-Type: application/pdf; name=\"=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?=\"
Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf
Content-Transfer-Encoding: base64
X-Attachment-Id: f_abc

JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iago=
--000000000000aaaa--
";

    const HTML_ONLY: &str = "From: Web Form <noreply@vendor.example>
To: security@example.org
Subject: Vulnerability report
Message-ID: <form-1@vendor.example>
MIME-Version: 1.0
Content-Type: text/html; charset=windows-1252
Content-Transfer-Encoding: quoted-printable

<html><head><style>p {color: red}</style></head><body>
<p>=93Smart=94 quotes =96 caf=E9</p>
<img src=3D\"http://tracker.invalid/pixel.png\" alt=3D\"\">
<p>Second paragraph</p>
</body></html>
";

    const POSTFIX_DSN: &str = "Return-Path: <>
Delivered-To: cases+b-abcdef234@example.org
Received: by mx.example.org (Postfix)
\tid 4B2C31234; Tue, 10 Mar 2026 10:00:01 +0000 (UTC)
Date: Tue, 10 Mar 2026 10:00:01 +0000 (UTC)
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: cases+b-abcdef234@example.org
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary=\"4B2C31234.1741600801/mx.example.org\"
Content-Transfer-Encoding: 8bit
Message-Id: <20260310100001.4B2C31234@mx.example.org>

This is a MIME-encapsulated message.

--4B2C31234.1741600801/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

<alice@vendor.example>: host mail.vendor.example[192.0.2.1] said: 550 5.1.1
    <alice@vendor.example>: Recipient address rejected: User unknown

--4B2C31234.1741600801/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Arrival-Date: Tue, 10 Mar 2026 10:00:00 +0000 (UTC)

Final-Recipient: rfc822; alice@vendor.example
Action: failed
Status: 5.1.1

--4B2C31234.1741600801/mx.example.org
Content-Description: Undelivered Message
Content-Type: message/rfc822
Content-Transfer-Encoding: 8bit

Return-Path: <cases+b-abcdef234@example.org>
From: cases@example.org
To: alice@vendor.example
Subject: [VU#123456] New post
Message-ID: <n1@example.org>
X-Casegate-Loop: example.org

Hello Alice.

--4B2C31234.1741600801/mx.example.org--
";

    /// An Exchange out-of-office reply (also used by the machine-mail tests).
    pub(crate) const EXCHANGE_OOO: &str = "From: Alice Vendor <alice@vendor.example>
To: \"cases@example.org\" <cases+r-k7q2m3x4a5b6c7d8@example.org>
Subject: Automatic reply: [VU#123456] Buffer overflow in parser
Thread-Topic: [VU#123456] Buffer overflow in parser
Date: Tue, 10 Mar 2026 10:05:00 +0000
Message-ID: <abc123@EXCH01.vendor.example>
In-Reply-To: <n1@example.org>
References: <n1@example.org>
Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
Content-Type: multipart/alternative;
\tboundary=\"_000_abc123EXCH01vendorexample_\"
MIME-Version: 1.0

--_000_abc123EXCH01vendorexample_
Content-Type: text/plain; charset=\"us-ascii\"

I am out of the office until March 20.

--_000_abc123EXCH01vendorexample_
Content-Type: text/html; charset=\"us-ascii\"

<html><body><p>I am out of the office until March 20.</p></body></html>

--_000_abc123EXCH01vendorexample_--
";

    #[test]
    fn thunderbird_reply_fills_every_field() {
        let m = parsed(THUNDERBIRD);
        assert_eq!(
            m.message_id.as_deref(),
            Some("5f0e6c1a-1234-4c2b-9d7e-0a1b2c3d4e5f@vendor.example")
        );
        assert_eq!(
            m.subject,
            "Re: [VU#123456] Buffer overflow in parser \u{2013} status"
        );
        let from = m.from.clone().expect("from");
        assert_eq!(from.address, "alice@vendor.example");
        assert_eq!(from.name.as_deref(), Some("Alice Vendor"));
        assert_eq!(m.to.len(), 1);
        assert_eq!(m.to[0].address, "cases+vu123456@example.org");
        assert_eq!(m.to[0].name.as_deref(), Some("Coordination Team"));
        let cc: Vec<_> =
            m.cc.iter()
                .map(|c| (c.name.as_deref(), c.address.as_str()))
                .collect();
        assert_eq!(
            cc,
            [
                (Some("Jörg Müller"), "joerg@vendor.example"),
                (None, "bob@vendor.example")
            ]
        );
        assert_eq!(
            m.delivered_to,
            ["cases+vu123456@example.org", "cases+vu123456@example.org"]
        );
        assert_eq!(m.return_path.as_deref(), Some("alice@vendor.example"));
        assert_eq!(m.in_reply_to, ["n1@example.org"]);
        assert_eq!(m.references, ["n0@example.org", "n1@example.org"]);
        assert_eq!(m.content_type, "text/plain");
        assert_eq!(m.report_type, None);
        assert_eq!(
            m.text,
            "Hello,\n\nwe confirm the issue in versions 2.x \u{2013} a fix is scheduled.\n\n\
             On 10.03.26 09:00, Coordination Team wrote:\n> Please confirm."
        );
        assert!(m.attachments.is_empty());
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn headers_keep_order_and_spelling_and_are_unfolded() {
        let m = parsed(THUNDERBIRD);
        let names: Vec<&str> = m.headers.iter().map(|(n, _)| n.as_str()).take(5).collect();
        assert_eq!(
            names,
            [
                "Return-Path",
                "Delivered-To",
                "X-Original-To",
                "Received",
                "Authentication-Results"
            ]
        );
        assert_eq!(
            m.header_values("authentication-results").next(),
            Some(
                "mx.example.org; dkim=pass (2048-bit key) header.d=vendor.example; \
             dmarc=pass (p=reject dis=none) header.from=vendor.example"
            )
        );
        let raw = crlf("X-Weird:   a\n\tb    c\ncontent-type: text/plain\nSubject:\n  folded\n   subject\n\nbody\n");
        let m = parse(&raw).expect("parses");
        assert_eq!(
            m.headers,
            [
                ("X-Weird".to_string(), "a b c".to_string()),
                ("content-type".to_string(), "text/plain".to_string()),
                ("Subject".to_string(), "folded subject".to_string()),
            ]
        );
        assert_eq!(m.subject, "folded subject");
    }

    #[test]
    fn outlook_alternative_uses_the_plain_part_in_latin1() {
        let m = parsed(OUTLOOK_ALTERNATIVE);
        assert_eq!(m.subject, "AW: [VU#123456] Prüfung abgeschlossen");
        assert_eq!(
            m.from.as_ref().and_then(|f| f.name.as_deref()),
            Some("René Dupré")
        );
        assert_eq!(m.to[0].address, "cases+r-k7q2m3x4a5b6c7d8@example.org");
        assert_eq!(m.content_type, "multipart/alternative");
        assert_eq!(m.text, "Die Prüfung ist abgeschlossen. \nGrüße");
        assert!(
            m.attachments.is_empty(),
            "HTML alternative is not an attachment"
        );
        assert_eq!(m.references, ["n0@example.org", "n1@example.org"]);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn gmail_pdf_attachment_is_byte_exact_with_rfc2231_name() {
        let m = parsed(GMAIL_PDF);
        assert_eq!(m.subject, "Résumé for VU#123456");
        assert_eq!(
            m.from.as_ref().and_then(|f| f.name.as_deref()),
            Some("René")
        );
        assert_eq!(m.message_id.as_deref(), Some("CAF=abc+def@mail.gmail.com"));
        assert_eq!(m.text, "Please find the résumé attached.");
        assert_eq!(m.attachments.len(), 1);
        let pdf = &m.attachments[0];
        assert_eq!(pdf.filename, "résumé.pdf");
        assert_eq!(pdf.content_type, "application/pdf");
        assert_eq!(pdf.bytes, PDF_BYTES);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn html_only_mail_is_converted_and_kept_as_body_html() {
        let m = parsed(HTML_ONLY);
        assert!(
            m.text
                .contains("\u{201c}Smart\u{201d} quotes \u{2013} café"),
            "{}",
            m.text
        );
        assert!(m.text.contains("Second paragraph"));
        assert!(
            !m.text.contains("<p>") && !m.text.contains("color: red"),
            "{}",
            m.text
        );
        assert!(!m.text.contains('\r'));
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].filename, "body.html");
        assert_eq!(m.attachments[0].content_type, "text/html");
        let html = String::from_utf8(m.attachments[0].bytes.clone()).expect("utf-8");
        assert!(html.contains("\u{201c}Smart\u{201d}") && html.contains("tracker.invalid"));
    }

    #[test]
    fn empty_plain_alternative_falls_back_to_html() {
        let m = parsed(
            "From: a@b.example
Subject: x
Content-Type: multipart/alternative; boundary=b1

--b1
Content-Type: text/plain; charset=utf-8

\u{20}
--b1
Content-Type: text/html; charset=utf-8

<p>The real content</p>
--b1--
",
        );
        assert_eq!(m.text, "The real content");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].filename, "body.html");
    }

    #[test]
    fn postfix_dsn_keeps_report_type_and_the_returned_message() {
        let m = parsed(POSTFIX_DSN);
        assert_eq!(m.content_type, "multipart/report");
        assert_eq!(m.report_type.as_deref(), Some("delivery-status"));
        assert_eq!(m.return_path.as_deref(), Some(""));
        assert_eq!(
            m.from.as_ref().map(|f| f.address.as_str()),
            Some("MAILER-DAEMON@mx.example.org")
        );
        assert_eq!(m.delivered_to, ["cases+b-abcdef234@example.org"]);
        assert!(m
            .text
            .starts_with("This is the mail system at host mx.example.org."));
        let names: Vec<&str> = m.attachments.iter().map(|a| a.filename.as_str()).collect();
        assert_eq!(names, ["attachment-1.txt", "attachment-2.eml"]);
        assert_eq!(m.attachments[0].content_type, "message/delivery-status");
        assert!(m.attachments[0]
            .bytes
            .starts_with(b"Reporting-MTA: dns; mx.example.org\r\n"));
        let returned = &m.attachments[1];
        assert_eq!(returned.content_type, "message/rfc822");
        let expected = crlf(
            "Return-Path: <cases+b-abcdef234@example.org>
From: cases@example.org
To: alice@vendor.example
Subject: [VU#123456] New post
Message-ID: <n1@example.org>
X-Casegate-Loop: example.org

Hello Alice.
",
        );
        assert_eq!(
            String::from_utf8_lossy(&returned.bytes),
            String::from_utf8_lossy(&expected)
        );
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn exchange_out_of_office_is_parsed_like_any_mail() {
        let m = parsed(EXCHANGE_OOO);
        assert_eq!(
            m.subject,
            "Automatic reply: [VU#123456] Buffer overflow in parser"
        );
        assert_eq!(
            m.header_values("Auto-Submitted").collect::<Vec<_>>(),
            ["auto-generated"]
        );
        assert_eq!(m.text, "I am out of the office until March 20.");
        assert_eq!(m.in_reply_to, ["n1@example.org"]);
    }

    #[test]
    fn group_members_are_recipients() {
        let m = parsed(
            "From: a@vendor.example
To: undisclosed-recipients:;
Cc: Team: x@vendor.example, \"Y\" <y@vendor.example>;, z@other.example
Subject: groups

body
",
        );
        assert!(m.to.is_empty());
        let cc: Vec<&str> = m.cc.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(
            cc,
            ["x@vendor.example", "y@vendor.example", "z@other.example"]
        );
    }

    #[test]
    fn charsets_and_transfer_encodings_are_decoded() {
        let m = parsed(
            "From: a@b.example
Subject: =?KOI8-R?B?8NLJ18XU?=
Content-Type: text/plain; charset=koi8-r
Content-Transfer-Encoding: base64

8NLJ18XULCDNydIhCvzUzyDUxdPULgo=
",
        );
        assert_eq!(m.subject, "Привет");
        assert_eq!(m.text, "Привет, мир!\nЭто тест.");
        let m = parsed(
            "From: a@b.example
Subject: =?windows-1252?Q?=93quoted=94?=
Content-Type: text/plain; charset=windows-1252
Content-Transfer-Encoding: quoted-printable

caf=E9 =80 soft=
 break
",
        );
        assert_eq!(m.subject, "\u{201c}quoted\u{201d}");
        assert_eq!(m.text, "café € soft break");
    }

    #[test]
    fn shift_jis_is_decoded_or_reported() {
        let m = parsed(
            "From: a@b.example
Subject: jp
Content-Type: text/plain; charset=shift_jis
Content-Transfer-Encoding: base64

k/qWe4zqgsyDZYNMg1iDZw==
",
        );
        let decoded = m.text == "日本語のテキスト";
        let reported = has_warning(&m, "shift_jis");
        assert!(
            decoded != reported,
            "text {:?} warnings {:?}",
            m.text,
            m.warnings
        );
    }

    #[test]
    fn attached_messages_end_in_eml_and_are_raw() {
        let m = parsed(
            "From: a@b.example
Subject: fwd
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: text/plain

see attached
--b1
Content-Type: message/rfc822
Content-Transfer-Encoding: base64

RnJvbTogYUBiLmV4YW1wbGUNClN1YmplY3Q6IGlubmVyDQoNCmlubmVyIGJvZHkNCg==
--b1
Content-Type: message/rfc822; name=\"Original message\"
Content-Disposition: attachment; filename=\"Original message\"

From: c@d.example
Subject: second

second body
--b1--
",
        );
        assert_eq!(m.text, "see attached");
        assert_eq!(m.attachments.len(), 2);
        assert_eq!(m.attachments[0].filename, "attachment-1.eml");
        assert_eq!(
            m.attachments[0].bytes,
            b"From: a@b.example\r\nSubject: inner\r\n\r\ninner body\r\n"
        );
        assert_eq!(m.attachments[1].filename, "Original message.eml");
        assert_eq!(
            m.attachments[1].bytes,
            crlf("From: c@d.example\nSubject: second\n\nsecond body")
        );
    }

    #[test]
    fn attachment_names_are_decoded_defaulted_and_made_safe() {
        let m = parsed(
            "From: a@b.example
Subject: files
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: text/plain

body
--b1
Content-Type: application/octet-stream; name=\"=?UTF-8?B?w6nDqS5iaW4=?=\"

zz
--b1
Content-Type: image/png
Content-Transfer-Encoding: base64

iVBORw0=
--b1
Content-Type: application/octet-stream
Content-Disposition: attachment;
 filename*0*=utf-8''long%20na;
 filename*1*=me.bin

data
--b1
Content-Type: application/x-unknown
Content-Disposition: attachment; filename=\"../../etc/passwd\"

root
--b1
Content-Type: text/plain; charset=iso-8859-1
Content-Disposition: attachment; filename=notes.txt
Content-Transfer-Encoding: quoted-printable

caf=E9=
 ok
--b1--
",
        );
        let names: Vec<&str> = m.attachments.iter().map(|a| a.filename.as_str()).collect();
        assert_eq!(
            names,
            [
                "éé.bin",
                "attachment-2.png",
                "long name.bin",
                "passwd",
                "notes.txt"
            ]
        );
        assert_eq!(m.attachments[1].bytes, b"\x89PNG\r");
        assert_eq!(m.attachments[1].content_type, "image/png");
        // A text attachment keeps its original charset bytes.
        assert_eq!(m.attachments[4].bytes, b"caf\xe9 ok");
        assert_eq!(m.attachments[4].content_type, "text/plain");
        assert_eq!(m.text, "body");
    }

    #[test]
    fn missing_boundary_is_guessed_with_a_warning() {
        let m = parsed(
            "From: a@b.example
Subject: x
Content-Type: multipart/mixed

--XX
Content-Type: text/plain

hello
--XX
Content-Type: application/pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iago=
--XX--
",
        );
        assert_eq!(m.text, "hello");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].bytes, PDF_BYTES);
        assert!(has_warning(&m, "guessed \"XX\""), "{:?}", m.warnings);
    }

    #[test]
    fn unusable_boundary_keeps_the_body_as_text() {
        let m = parsed(
            "From: a@b.example
Subject: x
Content-Type: multipart/mixed

no delimiter lines at all
",
        );
        assert_eq!(m.text, "no delimiter lines at all");
        assert!(m.attachments.is_empty());
        assert!(has_warning(&m, "boundary not found"), "{:?}", m.warnings);
    }

    #[test]
    fn truncated_message_keeps_what_can_be_read() {
        let raw = b"From: a@b.example\nSubject: x\nContent-Type: multipart/mixed; boundary=XX\n\n\
--XX\nContent-Type: text/plain\n\nhello\n--XX\nContent-Type: application/pdf\n\
Content-Transfer-Encoding: base64\n\nJVBERi0xLjQKJcfs\nj6IKMSAwIG9i";
        let m = parse(raw).expect("parses");
        assert_eq!(m.text, "hello");
        assert_eq!(m.attachments.len(), 1);
        assert!(PDF_BYTES.starts_with(&m.attachments[0].bytes[..]));
        assert!(
            m.attachments[0].bytes.len() >= 12,
            "{:?}",
            m.attachments[0].bytes
        );
        assert!(
            has_warning(&m, "closing boundary missing"),
            "{:?}",
            m.warnings
        );
        assert!(has_warning(&m, "base64"), "{:?}", m.warnings);
    }

    #[test]
    fn bad_base64_in_the_text_is_recovered() {
        let m = parsed(
            "From: a@b.example
Subject: x
Content-Type: multipart/mixed; boundary=XX

--XX
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

aGVsbG8g!d29y
bGQ=
--XX--
",
        );
        assert_eq!(m.text, "hello world");
        assert!(m.attachments.is_empty(), "{:?}", m.attachments);
        assert!(has_warning(&m, "base64"), "{:?}", m.warnings);
    }

    #[test]
    fn damage_is_told_apart_from_cosmetic_problems() {
        let truncated =
            b"From: a@b.example\nSubject: x\nContent-Type: multipart/mixed; boundary=XX\n\n\
--XX\nContent-Type: text/plain\n\nhello\n--XX\nContent-Type: application/pdf\n\
Content-Transfer-Encoding: base64\n\nJVBERi0xLjQKJcfs\nj6IKMSAwIG9i";
        let m = parse(truncated).expect("parses");
        assert!(
            m.damaged
                .iter()
                .any(|d| d.contains("closing boundary missing")),
            "{:?}",
            m.damaged
        );
        let cosmetic = parsed(
            "From: a@b.example\nSubject: x\nContent-Type: text/plain; charset=x-unknown-label\n\
Content-Transfer-Encoding: quoted-printable\n\n1 + 1 =3D 2, and 50=% off\n",
        );
        assert!(
            !cosmetic.warnings.is_empty(),
            "unknown charset and a stray = are noted"
        );
        assert!(cosmetic.damaged.is_empty(), "{:?}", cosmetic.damaged);
        let cut_qp = parsed("From: a@b.example\nSubject: x\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E\n");
        assert!(!cut_qp.damaged.is_empty(), "{:?}", cut_qp.warnings);
    }

    #[test]
    fn mime_depth_parts_headers_and_recipients_are_limited() {
        let limits = Limits {
            max_mime_depth: 3,
            max_mime_parts: 4,
            max_header_fields: 5,
            max_recipients: 2,
            ..Limits::default()
        };
        let nest = |depth: usize| {
            let mut m = String::from(
                "From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n",
            );
            for i in 1..depth {
                m += &format!(
                    "--b{}\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n",
                    i - 1
                );
            }
            m += &format!("--b{}\r\n\r\ndeep\r\n--b{}--\r\n", depth - 1, depth - 1);
            for i in (0..depth - 1).rev() {
                m += &format!("--b{i}--\r\n");
            }
            m
        };
        assert!(parse_with(nest(2).as_bytes(), &limits)
            .unwrap()
            .damaged
            .is_empty());
        let deep = parse_with(nest(4).as_bytes(), &limits).unwrap();
        assert_eq!(deep.damaged, ["MIME nesting deeper than 3 levels"]);
        assert_eq!(deep.from.map(|f| f.address).as_deref(), Some("a@b.example"));
        let parts: String = (0..5).map(|i| format!("--p\r\n\r\npart {i}\r\n")).collect();
        let many = format!("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n{parts}--p--\r\n");
        assert_eq!(
            parse_with(many.as_bytes(), &limits).unwrap().damaged,
            ["6 MIME parts, limit 4"]
        );
        let headers =
            "From: a@b.example\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\nX-E: 5\r\n\r\nbody\r\n";
        assert_eq!(
            parse_with(headers.as_bytes(), &limits).unwrap().damaged,
            ["6 header fields, limit 5"]
        );
        let cc =
            "From: a@b.example\r\nTo: x@y.example\r\nCc: p@q.example, r@s.example\r\n\r\nbody\r\n";
        assert_eq!(
            parse_with(cc.as_bytes(), &limits).unwrap().damaged,
            ["3 To/Cc addresses, limit 2"]
        );
    }

    #[test]
    fn only_the_newest_references_are_kept() {
        let ids: String = (0..150).map(|i| format!(" <r{i}@x.example>")).collect();
        let m = parsed(&format!("From: a@b.example\nReferences:{ids}\n\nbody\n"));
        assert_eq!(m.references.len(), 100);
        assert_eq!(
            m.references.first().map(String::as_str),
            Some("r50@x.example")
        );
        assert_eq!(
            m.references.last().map(String::as_str),
            Some("r149@x.example")
        );
    }

    #[test]
    fn a_huge_or_binary_body_becomes_an_attachment() {
        let limits = Limits {
            max_body_text_bytes: 10,
            ..Limits::default()
        };
        let m = parse_with(
            b"From: a@b.example\r\n\r\nthis text is longer than ten bytes\r\n",
            &limits,
        )
        .unwrap();
        assert_eq!(m.attachments[0].filename, "body.txt");
        assert_eq!(
            m.attachments[0].bytes,
            b"this text is longer than ten bytes"
        );
        assert!(
            m.text.contains("attached as body.txt") && m.text.contains("longer than 10 bytes"),
            "{}",
            m.text
        );
        let nul = parsed("From: a@b.example\nContent-Transfer-Encoding: base64\n\nAAAAAAAAAAAA\n");
        assert_eq!(nul.attachments[0].bytes, vec![0u8; 9]);
        assert!(nul.text.contains("not text"), "{}", nul.text);
        assert!(nul.damaged.is_empty());
    }

    #[test]
    fn only_mails_without_headers_are_errors() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b" \r\n\t\n"), Err(ParseError::Empty));
        assert!(matches!(
            parse(b"hello world\nthis is not a mail\n"),
            Err(ParseError::NoHeaders(_))
        ));
        assert!(matches!(
            parse(b"\r\n\r\nbody only\r\n"),
            Err(ParseError::NoHeaders(_))
        ));
        let m = parse(b"Subject: only a header").expect("a header is enough");
        assert_eq!(m.subject, "only a header");
        assert_eq!(m.text, "");
        assert_eq!(m.from, None);
    }

    #[test]
    fn mbox_separator_line_is_skipped() {
        let m = parse(b"From alice@vendor.example Tue Mar 10 10:00:00 2026\nFrom: alice@vendor.example\nSubject: s\n\nbody\n")
            .expect("parses");
        assert_eq!(m.headers[0].0, "From");
        assert_eq!(
            m.from.map(|f| f.address),
            Some("alice@vendor.example".to_string())
        );
    }

    #[test]
    fn line_ends_do_not_change_the_text() {
        let lf = parse(THUNDERBIRD.as_bytes()).expect("lf");
        let crlf = parse(&crlf(THUNDERBIRD)).expect("crlf");
        assert_eq!(lf.text, crlf.text);
        assert_eq!(lf.subject, crlf.subject);
        assert!(!crlf.text.contains('\r'));
        let mixed = parse(b"Subject: s\r\n\r\na\rb\r\nc\n").expect("mixed");
        assert_eq!(mixed.text, "a\nb\nc");
    }

    #[test]
    fn odd_from_and_return_path_values() {
        let m = parsed("From: first@a.example\nFrom: second@b.example\nSubject: two\n\nx\n");
        assert_eq!(
            m.from.map(|f| f.address),
            Some("first@a.example".to_string())
        );
        assert!(has_warning(
            &parsed("From: a@b.example\nFrom: c@d.example\n\nx\n"),
            "2 From headers"
        ));
        let m = parsed("From: just some words\nSubject: s\n\nx\n");
        assert_eq!(m.from, None);
        assert!(has_warning(&m, "no usable address"));
        assert_eq!(parsed("Subject: s\n\nx\n").return_path, None);
        assert_eq!(
            parsed("Return-Path: < >\nSubject: s\n\nx\n")
                .return_path
                .as_deref(),
            Some("")
        );
        assert_eq!(
            parsed("Return-Path: bare@x.example\n\nx\n")
                .return_path
                .as_deref(),
            Some("bare@x.example")
        );
    }

    #[test]
    fn message_ids_with_and_without_brackets() {
        assert_eq!(message_ids("<a@b> <c@d>"), ["a@b", "c@d"]);
        assert_eq!(message_ids("Your message of Monday <x@y>"), ["x@y"]);
        assert_eq!(message_ids("plain@id.example"), ["plain@id.example"]);
        assert_eq!(message_ids("<broken\n @id>"), ["broken@id"]);
        assert!(message_ids("no ids here").is_empty());
        let m = parsed("Message-ID: unbracketed@host.example\nIn-Reply-To: <p@q> (comment)\n\nx\n");
        assert_eq!(m.message_id.as_deref(), Some("unbracketed@host.example"));
        assert_eq!(m.in_reply_to, ["p@q"]);
    }

    #[test]
    fn content_type_defaults_follow_rfc_2045() {
        assert_eq!(parsed("Subject: s\n\nx\n").content_type, "text/plain");
        let m = parsed("Subject: s\nContent-Type: TEXT\n\nx\n");
        assert_eq!(m.content_type, "text/plain");
        assert!(has_warning(&m, "no subtype"));
        assert_eq!(
            parsed("Subject: s\nContent-Type: Text/HTML\n\n<b>x</b>\n").content_type,
            "text/html"
        );
    }

    #[test]
    fn lenient_decoders() {
        assert_eq!(base64_lenient(b"aGVsbG8="), (b"hello".to_vec(), true));
        assert_eq!(base64_lenient(b"aGVs\r\nbG8"), (b"hello".to_vec(), true));
        assert_eq!(base64_lenient(b"aGV*sbG8="), (b"hello".to_vec(), false));
        assert_eq!(base64_lenient(b"aGVsbG8gd"), (b"hello ".to_vec(), false));
        assert_eq!(
            quoted_printable_lenient(b"a=3Db=\r\nc  \r\nd"),
            (b"a=bc\r\nd".to_vec(), true)
        );
        assert_eq!(
            quoted_printable_lenient(b"50=%\n=e9"),
            (b"50=%\n\xe9".to_vec(), false)
        );
        assert_eq!(quoted_printable_lenient(b"end="), (b"end".to_vec(), true));
    }

    #[test]
    fn filenames_are_reduced_to_a_base_name() {
        assert_eq!(
            sanitize_filename("C:\\Users\\x\\report.docx"),
            "report.docx"
        );
        assert_eq!(sanitize_filename("../.hidden"), "hidden");
        assert_eq!(sanitize_filename("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(sanitize_filename(".."), "");
    }

    #[test]
    fn deeply_nested_html_does_not_break_conversion() {
        let html = format!("{}deep{}", "<div>".repeat(2000), "</div>".repeat(2000));
        assert!(html_to_text(&html).contains("deep"));
        assert!(html_to_text("<table><tr><td>a</td><td>b").contains('a'));
    }

    /// Real-shaped mails for mutation.
    fn samples() -> Vec<Vec<u8>> {
        [
            THUNDERBIRD,
            OUTLOOK_ALTERNATIVE,
            GMAIL_PDF,
            HTML_ONLY,
            POSTFIX_DSN,
            EXCHANGE_OOO,
        ]
        .iter()
        .map(|s| crlf(s))
        .collect()
    }

    const FRAGMENTS: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"--",
        b"=?",
        b"?=",
        b"=?UTF-8?B?",
        b"=?x?Q?=",
        b"=",
        b";",
        b":",
        b"\"",
        b"<",
        b">",
        b"\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=",
        b"Content-Transfer-Encoding: base64\r\n",
        b"\x00",
        b"\xff\xfe",
        b"\t",
        b"(",
        b")",
        b"\\",
        b"*0*=",
        b"%",
        b"message/rfc822",
    ];

    #[derive(Debug, Clone)]
    enum Mutation {
        Delete { at: usize, len: usize },
        Insert { at: usize, fragment: usize },
        Byte { at: usize, byte: u8 },
        Truncate { at: usize },
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
            (any::<usize>(), 0..FRAGMENTS.len())
                .prop_map(|(at, fragment)| Mutation::Insert { at, fragment }),
            (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Byte { at, byte }),
            any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        ]
    }

    fn apply(mut raw: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
        for m in mutations {
            let n = raw.len().max(1);
            match *m {
                Mutation::Delete { at, len } => {
                    let at = at % n;
                    let end = (at + len).min(raw.len());
                    if at < end {
                        raw.drain(at..end);
                    }
                }
                Mutation::Insert { at, fragment } => {
                    let at = (at % n).min(raw.len());
                    raw.splice(at..at, FRAGMENTS[fragment].iter().copied());
                }
                Mutation::Byte { at, byte } => {
                    if let Some(b) = raw.get_mut(at % n) {
                        *b = byte;
                    }
                }
                Mutation::Truncate { at } => raw.truncate(at % n),
            }
        }
        raw
    }

    fn check_invariants(raw: &[u8]) {
        match parse(raw) {
            Ok(m) => {
                assert!(!m.text.contains('\r'));
                assert!(!m.subject.contains(['\r', '\n']));
                assert!(m.headers.iter().all(|(_, v)| !v.contains(['\r', '\n'])));
                assert!(m.attachments.iter().all(|a| !a.filename.is_empty()));
            }
            Err(ParseError::Empty) => assert!(raw.iter().all(u8::is_ascii_whitespace)),
            Err(ParseError::NoHeaders(_)) => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_on_arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
            check_invariants(&raw);
        }

        #[test]
        fn never_panics_on_mutated_mails(
            sample in 0usize..6,
            mutations in proptest::collection::vec(mutation(), 1..12),
        ) {
            let raw = apply(samples()[sample].clone(), &mutations);
            check_invariants(&raw);
        }

        #[test]
        fn never_panics_on_header_like_text(raw in "([A-Za-z-]{1,12}: [ -~\t]{0,40}\r?\n( [ -~]{0,20}\r?\n)?){0,6}(\r?\n[ -~\r\n]{0,200})?") {
            check_invariants(raw.as_bytes());
        }

        #[test]
        fn html_conversion_never_panics(html in "(<[a-z/!]{0,8}[ a-z=\"]{0,10}>|[ -~]{0,10}|&[a-z#0-9]{0,6};?){0,40}") {
            let _ = html_to_text(&html);
        }
    }
}
