//! MIME as OpenPGP needs it: raw entities split byte-exactly (the signed bytes of
//! RFC 3156 §5 are the original bytes of a part), Content-Type parameters, transfer
//! decoding, and the shapes a protected mail can have: PGP/MIME encrypted or signed,
//! Exchange-mangled PGP/MIME, inline and cleartext-signed blocks, a signed part inside an
//! unsigned wrapper, and encrypted parts below the root (the EFAIL direct-exfiltration
//! shape).
//!
//! Pure: bytes in, borrowed slices and values out.

/// One header field, unfolded (RFC 5322 §2.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// A MIME entity: its header fields and its body, both borrowed from the raw bytes.
#[derive(Debug, Clone)]
pub struct Entity<'a> {
    /// The header block as written, without the empty line that ends it.
    pub header: &'a [u8],
    pub body: &'a [u8],
    pub fields: Vec<Field>,
}

/// A Content-Type value: lowercase `type/subtype` and its parameters (names lowercase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    pub media: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn param_is(&self, name: &str, value: &str) -> bool {
        self.param(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
    }
}

impl<'a> Entity<'a> {
    /// Splits at the first empty line (CRLF CRLF or LF LF). RFC 4155 §2: a leading
    /// `From ` separator line of an mbox is not part of the header.
    pub fn parse(raw: &'a [u8]) -> Entity<'a> {
        let raw = skip_mbox_line(raw);
        let (header, body) = split_header(raw);
        Entity {
            header,
            body,
            fields: fields(header),
        }
    }

    /// The first value of a header field, case-insensitive name.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    }

    /// RFC 2045 §5.2: text/plain when absent.
    pub fn content_type(&self) -> ContentType {
        self.field("Content-Type")
            .map(parse_content_type)
            .unwrap_or_else(|| ContentType {
                media: "text/plain".into(),
                params: Vec::new(),
            })
    }

    /// The children of a multipart entity, each as raw bytes (RFC 2046 §5.1.1).
    pub fn children(&self) -> Vec<&'a [u8]> {
        match self.content_type().param("boundary") {
            Some(b) if self.content_type().media.starts_with("multipart/") => {
                split_multipart(self.body, b)
            }
            _ => Vec::new(),
        }
    }

    /// The body with its Content-Transfer-Encoding undone (RFC 2045 §6).
    pub fn decoded_body(&self) -> Vec<u8> {
        let cte = self
            .field("Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .trim()
            .to_ascii_lowercase();
        match cte.as_str() {
            "base64" => decode_base64(self.body),
            "quoted-printable" => decode_qp(self.body),
            _ => self.body.to_vec(),
        }
    }
}

fn skip_mbox_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        if let Some(i) = raw.iter().position(|b| *b == b'\n') {
            return &raw[i + 1..];
        }
    }
    raw
}

/// The header block and the body; without an empty line everything is header.
fn split_header(raw: &[u8]) -> (&[u8], &[u8]) {
    if raw.starts_with(b"\r\n") {
        return (&raw[..0], &raw[2..]);
    }
    if raw.starts_with(b"\n") {
        return (&raw[..0], &raw[1..]);
    }
    let mut i = 0;
    while let Some(off) = raw[i..].iter().position(|b| *b == b'\n') {
        let nl = i + off;
        let rest = &raw[nl + 1..];
        if rest.starts_with(b"\r\n") {
            return (&raw[..nl + 1], &rest[2..]);
        }
        if rest.starts_with(b"\n") {
            return (&raw[..nl + 1], &rest[1..]);
        }
        i = nl + 1;
    }
    (raw, &raw[raw.len()..])
}

/// RFC 5322 §2.2.3: continuation lines begin with whitespace; unfolding removes the line
/// breaks. Lines without a colon are skipped.
fn fields(header: &[u8]) -> Vec<Field> {
    let text = String::from_utf8_lossy(header);
    let mut out: Vec<Field> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            if !name.is_empty() && !name.contains(' ') {
                out.push(Field {
                    name: name.to_string(),
                    value: value.trim().to_string(),
                });
            }
        }
    }
    out
}

/// RFC 2045 §5.1: `type/subtype *(";" parameter)`, values as tokens or quoted strings.
pub fn parse_content_type(value: &str) -> ContentType {
    let mut pieces = split_params(value).into_iter();
    let media = pieces
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let params = pieces
        .filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            Some((n.trim().to_ascii_lowercase(), unquote(v.trim())))
        })
        .collect();
    let media = if media.contains('/') {
        media
    } else {
        "text/plain".into()
    };
    ContentType { media, params }
}

/// Splits at `;` outside quoted strings.
fn split_params(value: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// RFC 5322 §3.2.4: a quoted string without its quotes and escapes.
fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(c);
    }
    out
}

/// RFC 2046 §5.1.1: the body parts between `--boundary` lines. A part's content starts after
/// its delimiter line and ends before the line break that precedes the next delimiter
/// (that CRLF belongs to the delimiter). Parts before a missing close delimiter are kept.
pub fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() {
        let end = body[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |i| pos + i);
        let line = &body[pos..end];
        let next = (end + 1).min(body.len());
        if let Some(close) = delimiter(line, boundary) {
            if let Some(s) = start {
                out.push(&body[s..line_break_start(body, pos).max(s)]);
            }
            if close {
                return out;
            }
            start = Some(next);
        }
        pos = end + 1;
    }
    if let Some(s) = start.filter(|s| *s < body.len()) {
        out.push(&body[s..]);
    }
    out
}

/// `Some(false)` for `--boundary`, `Some(true)` for `--boundary--`, with trailing
/// whitespace allowed (RFC 2046 §5.1.1 transport padding).
fn delimiter(line: &[u8], boundary: &str) -> Option<bool> {
    let rest = line
        .strip_prefix(b"--")?
        .strip_prefix(boundary.as_bytes())?;
    let rest = rest.trim_ascii_end();
    match rest {
        b"" => Some(false),
        b"--" => Some(true),
        _ => None,
    }
}

/// Where the line break before position `line_start` begins (CRLF or LF).
fn line_break_start(body: &[u8], line_start: usize) -> usize {
    if line_start >= 2 && &body[line_start - 2..line_start] == b"\r\n" {
        line_start - 2
    } else if line_start >= 1 && body[line_start - 1] == b'\n' {
        line_start - 1
    } else {
        line_start
    }
}

/// RFC 3156 §5: the signed data is in canonical form, every line ending in CRLF. A copy
/// whose CRLFs became bare LFs in transit verifies again after this.
pub fn canonical_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// RFC 2045 §6.8: base64; characters outside the alphabet (line breaks, padding) are
/// ignored, and so are non-zero trailing bits.
pub fn decode_base64(data: &[u8]) -> Vec<u8> {
    static LENIENT: std::sync::OnceLock<data_encoding::Encoding> = std::sync::OnceLock::new();
    let enc = LENIENT.get_or_init(|| {
        let mut spec = data_encoding::BASE64_NOPAD.specification();
        spec.check_trailing_bits = false;
        spec.encoding()
            .unwrap_or_else(|_| data_encoding::BASE64_NOPAD.clone())
    });
    let mut clean: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
        .collect();
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    enc.decode(&clean).unwrap_or_default()
}

/// RFC 2045 §6.7: quoted-printable; soft line breaks removed, bad escapes kept as written.
pub fn decode_qp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b != b'=' {
            out.push(b);
            i += 1;
            continue;
        }
        let rest = &data[i + 1..];
        if rest.starts_with(b"\r\n") {
            i += 3;
        } else if rest.starts_with(b"\n") {
            i += 2;
        } else if let Some(v) = rest
            .get(..2)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

/// The armor header lines of RFC 9580 §6.2.
pub const BEGIN_MESSAGE: &str = "-----BEGIN PGP MESSAGE-----";
pub const END_MESSAGE: &str = "-----END PGP MESSAGE-----";
pub const BEGIN_SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
pub const END_SIGNATURE: &str = "-----END PGP SIGNATURE-----";

/// Where a text holds OpenPGP armor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InlineText {
    /// No armor at all.
    None,
    /// The whole text (surrounding whitespace aside) is one armored message.
    Message,
    /// The whole text is one cleartext-signed block (RFC 9580 §7).
    Cleartext,
    /// A cleartext-signed block with text before or after it: the block alone.
    PartialCleartext { block: String },
    /// Armor inside other text, or quoted (`> -----BEGIN PGP MESSAGE-----`): never opened.
    Embedded,
}

/// Classifies a text body for inline OpenPGP (SPEC §5.1: only when the armored block is
/// the entire body).
pub fn inline_text(text: &str) -> InlineText {
    let t = text.trim();
    let begins = t.matches(BEGIN_MESSAGE).count() + t.matches(BEGIN_SIGNED).count();
    if begins == 0 {
        return InlineText::None;
    }
    if begins == 1 && t.starts_with(BEGIN_MESSAGE) && t.ends_with(END_MESSAGE) {
        return InlineText::Message;
    }
    if begins == 1 && t.starts_with(BEGIN_SIGNED) && t.ends_with(END_SIGNATURE) {
        return InlineText::Cleartext;
    }
    match cleartext_block(t) {
        Some(block) if begins == 1 && !is_quoted_armor(t) => InlineText::PartialCleartext { block },
        _ => InlineText::Embedded,
    }
}

/// The first cleartext-signed block that starts at the beginning of a line.
fn cleartext_block(t: &str) -> Option<String> {
    let start = t
        .match_indices(BEGIN_SIGNED)
        .map(|(i, _)| i)
        .find(|i| *i == 0 || t[..*i].ends_with('\n'))?;
    let end = t[start..].find(END_SIGNATURE)? + start + END_SIGNATURE.len();
    Some(t[start..end].to_string())
}

/// Armor headers that appear only after a quote marker.
fn is_quoted_armor(t: &str) -> bool {
    t.lines().any(|l| {
        let trimmed = l.trim_start();
        trimmed.starts_with('>')
            && (trimmed.contains(BEGIN_MESSAGE) || trimmed.contains(BEGIN_SIGNED))
    })
}

/// The shape of a mail (or of a decrypted payload) as far as OpenPGP is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape<'a> {
    /// Nothing to open.
    Plain,
    /// RFC 3156 §4: `multipart/encrypted`, or the Exchange-mangled form of it.
    Encrypted { data: Vec<u8>, repaired: bool },
    /// RFC 3156 §5: `multipart/signed`; `signed` is the first part's raw bytes.
    Signed {
        signed: &'a [u8],
        signature: Vec<u8>,
    },
    /// A `multipart/signed` below an unsigned root (a list footer added, a forward).
    PartiallySigned {
        path: String,
        signed: &'a [u8],
        signature: Vec<u8>,
    },
    /// A text/plain root that is one armored message.
    InlineEncrypted { armored: Vec<u8> },
    /// A text/plain root that is one cleartext-signed block.
    Cleartext { block: Vec<u8> },
    /// A cleartext-signed block with text around it.
    PartialCleartext { block: Vec<u8> },
    /// Encrypted parts below the root (RFC 3156 shapes inside multipart/mixed, the EFAIL
    /// direct-exfiltration shape): never decrypted.
    NestedEncrypted { paths: Vec<String> },
    /// Armor quoted or embedded in other text: never opened.
    EmbeddedArmor,
    /// Declared PGP/MIME whose structure is broken.
    Malformed { why: String },
}

/// Deepest MIME nesting looked into (the parser's `inbound.max_mime_depth` is at most
/// this); deeper structure is not opened.
pub const MAX_DEPTH: usize = 32;

/// Classifies the root of `raw` (a whole mail or a decrypted MIME entity).
pub fn shape(raw: &[u8]) -> Shape<'_> {
    shape_at(raw, 0)
}

fn shape_at(raw: &[u8], depth: usize) -> Shape<'_> {
    if depth > MAX_DEPTH {
        return Malformed {
            why: format!("MIME nesting deeper than {MAX_DEPTH} levels"),
        };
    }
    let e = Entity::parse(raw);
    let ct = e.content_type();
    match ct.media.as_str() {
        "multipart/encrypted" if ct.param_is("protocol", "application/pgp-encrypted") => {
            encrypted(&e.children())
        }
        "multipart/signed" if ct.param_is("protocol", "application/pgp-signature") => {
            signed(&e.children())
        }
        m if m.starts_with("multipart/") => mixed(&e, depth),
        "text/plain" => inline(&e),
        _ => Plain,
    }
}

use Shape::*;

/// RFC 3156 §4: exactly two parts, `application/pgp-encrypted` with `Version: 1`, then
/// the `application/octet-stream` ciphertext.
fn encrypted<'a>(children: &[&'a [u8]]) -> Shape<'a> {
    let [control, data] = children else {
        return Malformed {
            why: format!("multipart/encrypted with {} parts, need 2", children.len()),
        };
    };
    let control = Entity::parse(control);
    if control.content_type().media != "application/pgp-encrypted" {
        return Malformed {
            why: "first part of multipart/encrypted is not application/pgp-encrypted".into(),
        };
    }
    let data = Entity::parse(data).decoded_body();
    Encrypted {
        data,
        repaired: false,
    }
}

/// RFC 3156 §5: exactly two parts, the signed entity and `application/pgp-signature`.
fn signed<'a>(children: &[&'a [u8]]) -> Shape<'a> {
    let [first, sig] = children else {
        return Malformed {
            why: format!("multipart/signed with {} parts, need 2", children.len()),
        };
    };
    let sig = Entity::parse(sig);
    if sig.content_type().media != "application/pgp-signature" {
        return Malformed {
            why: "second part of multipart/signed is not application/pgp-signature".into(),
        };
    }
    Signed {
        signed: first,
        signature: sig.decoded_body(),
    }
}

/// A multipart root that is not PGP/MIME: an Exchange-mangled encrypted mail, a signed
/// part inside an unsigned wrapper, encrypted parts below the root, or plain.
fn mixed<'a>(e: &Entity<'a>, depth: usize) -> Shape<'a> {
    let children = e.children();
    if let Some(data) = exchange_mangled(&children) {
        return Encrypted {
            data,
            repaired: true,
        };
    }
    let mut encrypted_paths = Vec::new();
    let mut signed_part = None;
    for (i, child) in children.iter().enumerate() {
        let path = (i + 1).to_string();
        match shape_at(child, depth + 1) {
            Malformed { why } if why.starts_with("MIME nesting") => return Malformed { why },
            Signed { signed, signature } if signed_part.is_none() => {
                signed_part = Some((path, signed, signature))
            }
            PartiallySigned {
                path: inner,
                signed,
                signature,
            } if signed_part.is_none() => {
                signed_part = Some((format!("{path}.{inner}"), signed, signature))
            }
            Encrypted { .. } | InlineEncrypted { .. } => encrypted_paths.push(path),
            NestedEncrypted { paths } => {
                encrypted_paths.extend(paths.into_iter().map(|p| format!("{path}.{p}")))
            }
            _ if is_encrypted_leaf(child) => encrypted_paths.push(path),
            _ => {}
        }
    }
    if !encrypted_paths.is_empty() {
        return NestedEncrypted {
            paths: encrypted_paths,
        };
    }
    match signed_part {
        Some((path, signed, signature)) => PartiallySigned {
            path,
            signed,
            signature,
        },
        None => Plain,
    }
}

/// A bare `application/pgp-encrypted` or armored `application/octet-stream` part.
fn is_encrypted_leaf(raw: &[u8]) -> bool {
    let e = Entity::parse(raw);
    let media = e.content_type().media;
    media == "application/pgp-encrypted"
        || (media == "application/octet-stream"
            && contains(&e.decoded_body(), BEGIN_MESSAGE.as_bytes()))
}

/// Exchange turns `multipart/encrypted` into `multipart/mixed` of an optional empty
/// text part, the `application/pgp-encrypted` control part and the ciphertext. Only that
/// exact shape is repaired; anything more is never merged.
fn exchange_mangled(children: &[&[u8]]) -> Option<Vec<u8>> {
    let parts: Vec<Entity> = children.iter().map(|c| Entity::parse(c)).collect();
    let rest: &[Entity] = match parts.as_slice() {
        [first, rest @ ..] if rest.len() == 2 && is_empty_text(first) => rest,
        all if all.len() == 2 => all,
        _ => return None,
    };
    let control = &rest[0];
    let data = &rest[1];
    let version = String::from_utf8_lossy(&control.decoded_body()).contains("Version: 1");
    let ok = control.content_type().media == "application/pgp-encrypted"
        && version
        && data.content_type().media == "application/octet-stream";
    let bytes = data.decoded_body();
    (ok && contains(&bytes, BEGIN_MESSAGE.as_bytes())).then_some(bytes)
}

fn is_empty_text(e: &Entity) -> bool {
    e.content_type().media == "text/plain" && e.decoded_body().iter().all(u8::is_ascii_whitespace)
}

/// A text/plain root: inline armor when it is the whole body.
fn inline<'a>(e: &Entity<'a>) -> Shape<'a> {
    let body = e.decoded_body();
    let text = String::from_utf8_lossy(&body);
    match inline_text(&text) {
        InlineText::None => Plain,
        InlineText::Message => InlineEncrypted {
            armored: text.trim().as_bytes().to_vec(),
        },
        InlineText::Cleartext => Cleartext {
            block: text.trim().as_bytes().to_vec(),
        },
        InlineText::PartialCleartext { block } => PartialCleartext {
            block: block.into_bytes(),
        },
        InlineText::Embedded => EmbeddedArmor,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Rebuilds a multipart entity without the children at `drop` (0-based), keeping the
/// header and every other child byte for byte.
pub fn without_children(raw: &[u8], drop: &[usize]) -> Vec<u8> {
    let e = Entity::parse(raw);
    let ct = e.content_type();
    let Some(boundary) = ct.param("boundary") else {
        return raw.to_vec();
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(e.header);
    out.extend_from_slice(b"\r\n");
    for (_, child) in e
        .children()
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
    {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        out.extend_from_slice(child);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &str = "From: a@b.example\r\nContent-Type: multipart/signed; micalg=pgp-sha256;\r\n protocol=\"application/pgp-signature\"; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: application/pgp-signature\r\n\r\nSIG\r\n--XX--\r\n";

    #[test]
    fn signed_part_is_the_raw_bytes_without_the_delimiter_crlf() {
        match shape(SIGNED.as_bytes()) {
            Signed { signed, signature } => {
                assert_eq!(signed, b"Content-Type: text/plain\r\n\r\nhello");
                assert_eq!(signature, b"SIG");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lf_only_copies_split_the_same_way() {
        let lf = SIGNED.replace("\r\n", "\n");
        match shape(lf.as_bytes()) {
            Signed { signed, .. } => assert_eq!(
                canonical_crlf(signed),
                b"Content-Type: text/plain\r\n\r\nhello"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_signed_part_in_a_wrapper_is_partial() {
        let wrapped = format!(
            "Content-Type: multipart/mixed; boundary=\"W\"\r\n\r\n--W\r\n{}\r\n--W\r\nContent-Type: text/plain\r\n\r\nlist footer\r\n--W--\r\n",
            &SIGNED["From: a@b.example\r\n".len()..]
        );
        assert!(
            matches!(shape(wrapped.as_bytes()), PartiallySigned { ref path, .. } if path == "1")
        );
    }

    #[test]
    fn inline_armor_counts_only_as_the_whole_body() {
        let block = format!("{BEGIN_MESSAGE}\n\nabc\n{END_MESSAGE}");
        assert_eq!(inline_text(&format!("\n{block}\n\n")), InlineText::Message);
        assert_eq!(
            inline_text(&format!("see below\n{block}")),
            InlineText::Embedded
        );
        let quoted = block
            .lines()
            .map(|l| format!("> {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            inline_text(&format!("I agree.\n\n{quoted}")),
            InlineText::Embedded
        );
        let clear = format!(
            "{BEGIN_SIGNED}\nHash: SHA256\n\nhi\n-----BEGIN PGP SIGNATURE-----\nx\n{END_SIGNATURE}"
        );
        assert_eq!(inline_text(&clear), InlineText::Cleartext);
        assert!(matches!(
            inline_text(&format!("before\n{clear}\nafter")),
            InlineText::PartialCleartext { .. }
        ));
    }

    #[test]
    fn exchange_mangled_encryption_is_repaired_only_in_its_exact_shape() {
        let parts = "--M\r\nContent-Type: text/plain\r\n\r\n\r\n--M\r\nContent-Type: application/pgp-encrypted\r\nContent-Disposition: attachment\r\n\r\nVersion: 1\r\n--M\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nLS0tLS1CRUdJTiBQR1AgTUVTU0FHRS0tLS0tCgp4Ci0tLS0tRU5EIFBHUCBNRVNTQUdFLS0tLS0K\r\n";
        let mail = format!("Content-Type: multipart/mixed; boundary=M\r\n\r\n{parts}--M--\r\n");
        assert!(
            matches!(shape(mail.as_bytes()), Encrypted { repaired: true, ref data } if data.starts_with(b"-----BEGIN PGP MESSAGE-----"))
        );
        let extra = format!("Content-Type: multipart/mixed; boundary=M\r\n\r\n{parts}--M\r\nContent-Type: text/html\r\n\r\n<img src=x>\r\n--M--\r\n");
        assert!(matches!(shape(extra.as_bytes()), NestedEncrypted { .. }));
    }

    #[test]
    fn encoded_bodies_decode() {
        assert_eq!(decode_qp(b"a=3Db=\r\nc=ZZ"), b"a=bc=ZZ");
        assert_eq!(decode_base64(b"aGVs\r\nbG8="), b"hello");
        let ct = parse_content_type("Multipart/Signed; boundary=\"a;b\\\"c\"; protocol=x");
        assert_eq!(
            (
                ct.media.as_str(),
                ct.param("boundary"),
                ct.param("PROTOCOL")
            ),
            ("multipart/signed", Some("a;b\"c"), Some("x"))
        );
    }

    #[test]
    fn dropping_a_child_keeps_the_others_byte_for_byte() {
        let raw = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: x\r\n--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n--B--\r\n";
        let out = without_children(raw, &[0]);
        let e = Entity::parse(&out);
        assert_eq!(
            e.children(),
            vec![&b"Content-Type: text/plain\r\n\r\nbody"[..]]
        );
    }
}
