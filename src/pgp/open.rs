//! Pipeline stage 4 (SPEC §3, §5.1, §5.2): decrypt and verify one mail into a
//! [`Protection`] and the payload that is routed and posted instead of the outer body.
//!
//! Rules kept here:
//! - only the root of the mail (or of its decrypted payload) is opened; encrypted parts
//!   below the root are never decrypted (EFAIL direct exfiltration), armor quoted or
//!   embedded in other text is never opened ("Re: What's up Johnny");
//! - SED packets, missing or bad MDCs and MD5/SHA-1 data signatures are refused before
//!   any plaintext is released;
//! - a signature counts for identity only over the whole root, by a certificate confirmed
//!   for the From contact, with no intended-recipient subpacket naming someone else;
//! - protected headers (RFC 9788 `hp=`, `protected-headers="v1"`) replace the outer
//!   Subject and threading headers; a legacy-display part is dropped.

use super::keyring::{self, GatewayKeys, Keyring};
use super::mime::{self, Entity, Shape};
use super::{system_time, Coverage, Form, Protection, Refusal, SigStatus, POLICY};
use crate::mail::{self, Inbound};
use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::*;
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::types::{HashAlgorithm, SymmetricAlgorithm};
use openpgp::{Cert, Fingerprint, KeyHandle};
use sequoia_openpgp as openpgp;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::sync::{Arc, Mutex};

/// What opening needs: the gateway keys, the certificates, the From address and the time.
#[derive(Clone, Copy)]
pub struct OpenCtx<'a> {
    pub gateway: Option<&'a GatewayKeys>,
    pub keyring: &'a Keyring,
    /// Lowercase outer From address.
    pub from: Option<&'a str>,
    pub now_ms: i64,
}

/// What the decrypting and verifying helpers need beyond [`OpenCtx`].
#[derive(Clone, Copy)]
struct Ctx<'a> {
    base: OpenCtx<'a>,
    max_plaintext: usize,
}

impl<'a> std::ops::Deref for Ctx<'a> {
    type Target = OpenCtx<'a>;
    fn deref(&self) -> &OpenCtx<'a> {
        &self.base
    }
}

/// The result of opening one mail.
#[derive(Debug, Clone, Default)]
pub struct Opened {
    pub protection: Protection,
    /// The MIME entity that replaces the mail's content (decrypted payload, or the signed
    /// entity of a multipart/signed root).
    pub payload: Option<Vec<u8>>,
    /// Text that replaces the body (decrypted inline message, verified cleartext).
    pub text: Option<String>,
}

/// What opening must refuse, decided by the shell before anything is decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// Ciphertext hashes (see [`ciphertext_hashes`]) seen before from another sender or in
    /// another thread (SPEC §5.2): a mail holding one is refused without decrypting.
    pub refused_ciphertexts: Vec<String>,
    /// Most bytes a decrypted or verified message may expand to (compressed data is
    /// decompressed only this far).
    pub max_plaintext_bytes: usize,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            refused_ciphertexts: Vec::new(),
            max_plaintext_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Opens the OpenPGP protection of a raw mail with the default [`Guard`].
pub fn open(raw: &[u8], ctx: &OpenCtx) -> Opened {
    open_guarded(raw, ctx, &Guard::default())
}

/// Opens the OpenPGP protection of a raw mail. Never fails: problems are notes or a
/// refusal in the returned [`Protection`].
pub fn open_guarded(raw: &[u8], ctx: &OpenCtx, guard: &Guard) -> Opened {
    let mut o = Opened::default();
    let hashes = ciphertext_hashes(raw);
    if hashes.iter().any(|h| guard.refused_ciphertexts.contains(h)) {
        // SPEC §5.2 ("Re: What's up Johnny"): refused before any decryption.
        o.protection.refusal = Some(Refusal::Replayed);
        o.protection.ciphertexts = hashes;
        return o;
    }
    o.protection.ciphertexts = hashes;
    let ctx = &Ctx {
        base: *ctx,
        max_plaintext: guard.max_plaintext_bytes,
    };
    match mime::shape(raw) {
        Shape::Plain => {}
        Shape::Malformed { why } => o
            .protection
            .notes
            .push(format!("PGP/MIME structure not opened: {why}")),
        Shape::Encrypted { data, repaired } => {
            o.protection.form = Form::PgpMimeEncrypted;
            if repaired {
                o.protection.repaired = Some("exchange".into());
            }
            open_encrypted_entity(&data, ctx, &mut o);
        }
        Shape::Signed { signed, signature } => open_signed_root(signed, &signature, ctx, &mut o),
        Shape::PartiallySigned {
            path,
            signed,
            signature,
        } => {
            o.protection.form = Form::PgpMimeSigned;
            let v = verify_detached(&mime::canonical_crlf(signed), &signature, ctx);
            apply_signatures(&mut o.protection, v, Coverage::Partial, vec![path]);
        }
        Shape::InlineEncrypted { armored } => open_inline(&armored, ctx, &mut o),
        Shape::Cleartext { block } => open_cleartext(&block, Coverage::Full, ctx, &mut o),
        Shape::PartialCleartext { block } => open_cleartext(&block, Coverage::Partial, ctx, &mut o),
        Shape::NestedEncrypted { paths } => o.protection.notes.push(format!(
            "encrypted part(s) {} below the root not decrypted (EFAIL direct-exfiltration shape)",
            paths.join(", ")
        )),
        Shape::EmbeddedArmor => o
            .protection
            .notes
            .push("quoted or embedded OpenPGP armor not opened".into()),
    }
    bind_signer(&mut o, ctx);
    if o.protection.refusal.is_some() {
        o.payload = None;
        o.text = None;
    }
    o
}

/// RFC 3156 §4 / §6: decrypt the PGP/MIME payload, then look inside it for a nested
/// multipart/signed (§6.1) and for protected headers.
fn open_encrypted_entity(data: &[u8], ctx: &Ctx, o: &mut Opened) {
    let d = match decrypt(data, ctx, &mut o.protection) {
        Some(d) => d,
        None => return,
    };
    let combined = !d.signatures.is_empty();
    apply_signatures(
        &mut o.protection,
        Ok(d.signatures),
        Coverage::Full,
        vec!["encrypted payload".into()],
    );
    let payload = drop_legacy_display(&d.plaintext);
    if !combined {
        if let Shape::Signed { signed, signature } = mime::shape(&payload) {
            // RFC 3156 §6.1: signed, then encrypted.
            let v = verify_detached(&mime::canonical_crlf(signed), &signature, ctx);
            apply_signatures(&mut o.protection, v, Coverage::Full, vec!["1".into()]);
            o.protection.protected_headers =
                has_protected_headers(&payload) || has_protected_headers(signed);
            let inner = drop_legacy_display(signed);
            o.payload = Some(protected_entity(&payload, inner));
            return;
        }
        if let Shape::PartiallySigned {
            path,
            signed,
            signature,
        } = mime::shape(&payload)
        {
            let v = verify_detached(&mime::canonical_crlf(signed), &signature, ctx);
            apply_signatures(&mut o.protection, v, Coverage::Partial, vec![path]);
        }
    }
    o.protection.protected_headers = has_protected_headers(&payload);
    o.payload = Some(payload);
}

/// RFC 3156 §5: a multipart/signed root; the signed bytes are the raw first part with bare
/// LF made CRLF, nothing re-encoded.
fn open_signed_root(signed: &[u8], signature: &[u8], ctx: &Ctx, o: &mut Opened) {
    o.protection.form = Form::PgpMimeSigned;
    let v = verify_detached(&mime::canonical_crlf(signed), signature, ctx);
    apply_signatures(&mut o.protection, v, Coverage::Full, vec!["1".into()]);
    let good = o.protection.signature == SigStatus::Good;
    // RFC 9788 §2.1.1 hp="clear": protected headers of a signed-only message count only
    // when the signature holds.
    o.protection.protected_headers = good && has_protected_headers(signed);
    o.payload = Some(if o.protection.protected_headers {
        drop_legacy_display(signed)
    } else {
        strip_protected_flag(signed)
    });
}

/// An armored message as the whole text/plain body: encrypted (and maybe signed), or
/// signed only.
fn open_inline(armored: &[u8], ctx: &Ctx, o: &mut Opened) {
    match scan(armored) {
        Scan::Encrypted { .. } | Scan::Refused(_) => {
            o.protection.form = Form::InlineEncrypted;
            let Some(d) = decrypt(armored, ctx, &mut o.protection) else {
                return;
            };
            apply_signatures(
                &mut o.protection,
                Ok(d.signatures),
                Coverage::Full,
                vec!["inline message".into()],
            );
            o.text = Some(String::from_utf8_lossy(&d.plaintext).into_owned());
        }
        Scan::Signed => {
            o.protection.form = Form::InlineSigned;
            match verify_inline(armored, ctx) {
                Ok((text, v)) => {
                    apply_signatures(
                        &mut o.protection,
                        Ok(v),
                        Coverage::Full,
                        vec!["inline message".into()],
                    );
                    o.text = Some(text);
                }
                Err(refusal) => o.protection.refusal = Some(refusal),
            }
        }
        Scan::Malformed(detail) => o.protection.refusal = Some(Refusal::Malformed { detail }),
    }
}

/// RFC 9580 §7: a cleartext-signed block; as the whole body its text replaces the body,
/// with text around it only the block is signed.
fn open_cleartext(block: &[u8], coverage: Coverage, ctx: &Ctx, o: &mut Opened) {
    o.protection.form = Form::Cleartext;
    match verify_inline(block, ctx) {
        Ok((text, v)) => {
            apply_signatures(
                &mut o.protection,
                Ok(v),
                coverage,
                vec!["cleartext-block".into()],
            );
            if coverage == Coverage::Full {
                o.text = Some(text);
            }
        }
        Err(refusal) => o.protection.refusal = Some(refusal),
    }
}

/// SPEC §5.2: the signer is the sender only for a good signature over the whole root, by a
/// certificate confirmed for the From contact, and when protected headers do not name a
/// different From.
fn bind_signer(o: &mut Opened, ctx: &Ctx) {
    let p = &mut o.protection;
    if p.signature != SigStatus::Good || p.coverage != Coverage::Full {
        return;
    }
    let (Some(from), Some(signer)) = (ctx.from, p.signer.as_deref()) else {
        return;
    };
    let Ok(fpr) = signer.parse::<Fingerprint>() else {
        return;
    };
    if let Some(inner) = o.payload.as_deref().and_then(protected_from) {
        if !inner.eq_ignore_ascii_case(from) {
            p.notes.push(format!(
                "protected From {inner} differs from the outer From"
            ));
            return;
        }
    }
    p.signer_contact = ctx.keyring.bound_contact(&fpr, from);
    if p.signer_contact.is_none() {
        p.notes
            .push("signer is not a certificate confirmed for the From contact".into());
    }
}

/// The From address among a payload's protected headers.
fn protected_from(payload: &[u8]) -> Option<String> {
    if !has_protected_headers(payload) {
        return None;
    }
    let inb = mail::parse::parse(payload).ok()?;
    inb.from.map(|m| m.key())
}

// ---------------------------------------------------------------------------------------
// Ciphertexts wherever they sit
// ---------------------------------------------------------------------------------------

/// The SHA-256 of the encrypted data packet of every OpenPGP message in the mail,
/// wherever it sits: the root, a part below it (a forwarded encrypted part, the EFAIL
/// shape), an attached message, an armored block in a text part. Quoted armor (`> `) is
/// not a message. Nothing is decrypted; the MIME walk is bounded in depth.
pub fn ciphertext_hashes(raw: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stack = vec![(raw, 0usize)];
    while let Some((entity, depth)) = stack.pop() {
        let e = Entity::parse(entity);
        let media = e.content_type().media;
        let children = e.children();
        if depth < mime::MAX_DEPTH && (!children.is_empty() || media == "message/rfc822") {
            match children.is_empty() {
                true => stack.push((e.body, depth + 1)),
                false => stack.extend(children.into_iter().map(|c| (c, depth + 1))),
            }
            continue;
        }
        for sha in leaf_ciphertexts(&e, &media) {
            if !out.contains(&sha) {
                out.push(sha);
            }
        }
    }
    out
}

/// Hashes of the OpenPGP messages in one leaf part: armored blocks that start a line, or
/// the whole body of a binary `application/octet-stream` / `pgp-encrypted` part.
fn leaf_ciphertexts(e: &Entity, media: &str) -> Vec<String> {
    let may_hold = matches!(
        media,
        "text/plain" | "application/octet-stream" | "application/pgp-encrypted" | "application/pgp"
    );
    if !may_hold {
        return Vec::new();
    }
    let cte = e
        .field("Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let encoded = matches!(cte.as_str(), "base64" | "quoted-printable");
    // Unencoded bodies are read in place; most are not OpenPGP at all.
    if !encoded && media == "text/plain" && find(e.body, mime::BEGIN_MESSAGE.as_bytes()).is_none() {
        return Vec::new();
    }
    let body: std::borrow::Cow<[u8]> = match encoded {
        true => e.decoded_body().into(),
        false => e.body.into(),
    };
    let blocks = armored_blocks(&body);
    let data: Vec<&[u8]> = match (blocks.is_empty(), media) {
        (false, _) => blocks,
        (true, "application/octet-stream" | "application/pgp-encrypted") if starts_encrypted_message(&body) => vec![&body[..]],
        _ => Vec::new(),
    };
    data.into_iter()
        .filter_map(|d| match scan(d) {
            Scan::Encrypted { sha256 } if !sha256.is_empty() => Some(sha256),
            _ => None,
        })
        .collect()
}

/// RFC 9580 §6.2: `BEGIN PGP MESSAGE` ... `END PGP MESSAGE` blocks whose armor header
/// starts a line.
fn armored_blocks(body: &[u8]) -> Vec<&[u8]> {
    let (begin, end) = (mime::BEGIN_MESSAGE.as_bytes(), mime::END_MESSAGE.as_bytes());
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = find(&body[from..], begin).map(|i| i + from) {
        let at_line_start = i == 0 || body[i - 1] == b'\n';
        let Some(j) = find(&body[i..], end).map(|j| i + j + end.len()) else {
            break;
        };
        if at_line_start {
            out.push(&body[i..j]);
        }
        from = i + begin.len();
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------------------

/// What the top-level packets of an OpenPGP message are.
enum Scan {
    Encrypted { sha256: String },
    Signed,
    Refused(Refusal),
    Malformed(String),
}

/// Reads the top-level packets without decrypting. RFC 9580 §5.7: a SED packet is refused
/// outright; the hash of the encrypted data packet identifies the ciphertext for the
/// replay rule whatever armor or PKESKs surround it.
/// Whether binary data can be an encrypted OpenPGP message: its first packet header
/// (RFC 9580 §4.2, either format) names a packet that may open one (session keys, marker,
/// padding, encrypted data). Most attachments fail at the first byte and are not parsed.
fn starts_encrypted_message(data: &[u8]) -> bool {
    let Some(&first) = data.first() else { return false };
    if first & 0x80 == 0 {
        return false;
    }
    let tag = match first & 0x40 {
        0 => (first >> 2) & 0x0f,
        _ => first & 0x3f,
    };
    // PKESK 1, SKESK 3, SED 9, Marker 10, SEIP 18, AED 20, Padding 21.
    matches!(tag, 1 | 3 | 9 | 10 | 18 | 20 | 21)
}

fn scan(data: &[u8]) -> Scan {
    let mut ppr = match PacketParser::from_bytes(data) {
        Ok(p) => p,
        Err(e) => return Scan::Malformed(e.to_string()),
    };
    while let PacketParserResult::Some(mut pp) = ppr {
        use openpgp::packet::Tag;
        match pp.packet.tag() {
            Tag::PKESK | Tag::SKESK | Tag::Marker | Tag::Padding => {}
            Tag::SED => return Scan::Refused(Refusal::Sed),
            Tag::SEIP | Tag::AED => {
                let sha256 = pp
                    .buffer_unread_content()
                    .map(|b| hex::encode(Sha256::digest(b)))
                    .unwrap_or_default();
                return Scan::Encrypted { sha256 };
            }
            Tag::OnePassSig | Tag::Signature | Tag::Literal | Tag::CompressedData => {
                return Scan::Signed
            }
            other => return Scan::Malformed(format!("unexpected {other} packet")),
        }
        ppr = match pp.next() {
            Ok((_, next)) => next,
            Err(e) => return Scan::Malformed(e.to_string()),
        };
    }
    Scan::Malformed("no encrypted data packet".into())
}

/// Decrypted plaintext and the signatures found inside.
struct Decrypted {
    plaintext: Vec<u8>,
    signatures: Vec<SigResult>,
}

/// Decrypts with the gateway keys. On refusal, records it and returns `None`; the
/// plaintext never leaves this function unless the MDC and every check passed.
fn decrypt(data: &[u8], ctx: &Ctx, p: &mut Protection) -> Option<Decrypted> {
    p.encrypted = true;
    match scan(data) {
        Scan::Encrypted { sha256 } => p.ciphertext_sha256 = Some(sha256),
        Scan::Refused(r) => return refuse(p, r),
        Scan::Malformed(detail) => return refuse(p, Refusal::Malformed { detail }),
        Scan::Signed => {
            return refuse(
                p,
                Refusal::Malformed {
                    detail: "not an encrypted message".into(),
                },
            )
        }
    }
    if ctx.gateway.is_none() {
        return refuse(
            p,
            Refusal::Undecryptable {
                detail: "encrypted, and no gateway key is configured".into(),
            },
        );
    }
    let (result, state, signatures) = decrypt_with(data, ctx);
    match result {
        Ok(plaintext) if state.weak_hash.is_none() => {
            p.decrypted_with = state.decrypted_with.map(|f| f.to_hex());
            Some(Decrypted {
                plaintext,
                signatures,
            })
        }
        Ok(_) => refuse(p, failure(None, state)),
        Err(e) => refuse(p, failure(Some(&e), state)),
    }
}

/// Why decryption stopped.
fn failure(e: Option<&openpgp::anyhow::Error>, state: HelperState) -> Refusal {
    if let Some(algo) = state.weak_hash {
        return Refusal::WeakHash { algo };
    }
    if state.decrypted_with.is_some() {
        return e.map(classify_error).unwrap_or(Refusal::Malformed {
            detail: "decryption stopped".into(),
        });
    }
    // RFC 9580 §5.13.1: the library rejects a session key that is ours when the data
    // lacks its MDC or was altered: tampering, not a stranger's mail.
    if state.session_key_rejected {
        return Refusal::Mdc {
            detail: "a gateway key opened the session key, but the data does not decrypt with it"
                .into(),
        };
    }
    let to = if state.recipients.is_empty() {
        "hidden recipients".to_string()
    } else {
        state.recipients.join(", ")
    };
    Refusal::Undecryptable {
        detail: format!("not encrypted to a gateway key (encrypted to {to})"),
    }
}

fn refuse<T>(p: &mut Protection, r: Refusal) -> Option<T> {
    p.refusal = Some(r);
    None
}

/// Runs the decryptor to the end; the plaintext is returned only when it completed. The
/// helper's findings come back even when the library stopped with an error.
fn decrypt_with(data: &[u8], ctx: &Ctx) -> (openpgp::Result<Vec<u8>>, HelperState, Vec<SigResult>) {
    let builder = match DecryptorBuilder::from_bytes(data) {
        Ok(b) => b,
        Err(e) => return (Err(e), HelperState::default(), Vec::new()),
    };
    let helper = Helper::new(ctx, ctx.gateway);
    let shared = helper.shared.clone();
    match builder.with_policy(&POLICY, Some(system_time(ctx.now_ms)), helper) {
        Err(e) => {
            let state = shared.lock().map(|s| s.clone()).unwrap_or_default();
            (Err(e), state, Vec::new())
        }
        Ok(mut dec) => {
            let mut out = Vec::new();
            let read = read_capped(&mut dec, ctx.max_plaintext, &mut out);
            let h = dec.into_helper();
            let state = h.state();
            (
                read.map(|_| out).map_err(openpgp::anyhow::Error::from),
                state,
                h.sigs,
            )
        }
    }
}

/// Reads at most `max` bytes: compressed data (RFC 9580 §5.6) is decompressed only as far
/// as it is read, so a small message cannot expand without bound. More is an error.
fn read_capped(r: &mut impl Read, max: usize, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let n = r.take(max as u64 + 1).read_to_end(out)?;
    if n > max {
        out.clear();
        out.shrink_to_fit();
        return Err(std::io::Error::other(TooLarge(max)));
    }
    Ok(n)
}

/// The error [`read_capped`] gives past its limit.
#[derive(Debug)]
struct TooLarge(usize);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.0)
    }
}

impl std::error::Error for TooLarge {}

/// RFC 9580 §5.13.1: tampering shows as a manipulated message.
fn classify_error(e: &openpgp::anyhow::Error) -> Refusal {
    let too_large = e.chain().find_map(|c| {
        c.downcast_ref::<std::io::Error>()?
            .get_ref()?
            .downcast_ref::<TooLarge>()
    });
    if let Some(TooLarge(limit)) = too_large {
        return Refusal::TooLarge { limit: *limit };
    }
    let manipulated = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<openpgp::Error>(),
            Some(openpgp::Error::ManipulatedMessage)
        )
    }) || e.to_string().to_ascii_lowercase().contains("manipulated");
    if manipulated {
        Refusal::Mdc {
            detail: e.to_string(),
        }
    } else {
        Refusal::Malformed {
            detail: e.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------

/// One verified (or failed) signature, owned.
#[derive(Debug, Clone)]
struct SigResult {
    status: SigStatus,
    detail: String,
    signer: Option<Fingerprint>,
    signer_key: Option<Fingerprint>,
    user_ids: Vec<String>,
}

/// Feeds certificates and keys to the library and records what it reports.
struct Helper<'a> {
    keyring: Option<&'a Keyring>,
    gateway: Option<&'a GatewayKeys>,
    gateway_fprs: Vec<Fingerprint>,
    now_ms: i64,
    decrypted_with: Option<Fingerprint>,
    session_key_rejected: bool,
    recipients: Vec<String>,
    sigs: Vec<SigResult>,
    weak_hash: Option<String>,
    /// What the helper learned, readable by the caller even when the library consumed the
    /// helper and stopped with an error.
    shared: Arc<Mutex<HelperState>>,
}

/// The part of a helper's state that survives a failed builder.
#[derive(Debug, Clone, Default)]
struct HelperState {
    decrypted_with: Option<Fingerprint>,
    /// A gateway key opened a session key that did not decrypt the data.
    session_key_rejected: bool,
    recipients: Vec<String>,
    weak_hash: Option<String>,
}

impl std::fmt::Display for HelperState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.weak_hash {
            Some(a) => write!(f, "{a} data signature refused"),
            None => f.write_str("message refused"),
        }
    }
}

impl std::error::Error for HelperState {}

impl<'a> Helper<'a> {
    fn new(ctx: &OpenCtx<'a>, gateway: Option<&'a GatewayKeys>) -> Helper<'a> {
        Helper {
            keyring: Some(ctx.keyring),
            gateway,
            gateway_fprs: ctx
                .gateway
                .map(GatewayKeys::fingerprints)
                .unwrap_or_default(),
            now_ms: ctx.now_ms,
            decrypted_with: None,
            session_key_rejected: false,
            recipients: Vec::new(),
            sigs: Vec::new(),
            weak_hash: None,
            shared: Arc::default(),
        }
    }

    /// Makes the findings so far visible to the caller.
    fn publish(&self) {
        if let Ok(mut s) = self.shared.lock() {
            *s = self.state();
        }
    }

    fn state(&self) -> HelperState {
        HelperState {
            decrypted_with: self.decrypted_with.clone(),
            session_key_rejected: self.session_key_rejected,
            recipients: self.recipients.clone(),
            weak_hash: self.weak_hash.clone(),
        }
    }

    fn record(&mut self, result: &VerificationResult) {
        let r = match result {
            Ok(good) => self.good(good),
            Err(e) => failed(e),
        };
        self.sigs.push(r);
    }

    /// RFC 9580 §5.2.3.36: a signature naming intended recipients none of which is the
    /// gateway was meant for someone else (surreptitious forwarding): not good.
    fn good(&self, g: &GoodChecksum) -> SigResult {
        let cert = g.ka.cert();
        let intended: Vec<&Fingerprint> = g.sig.intended_recipients().collect();
        let for_us = intended.is_empty() || intended.iter().any(|f| self.gateway_fprs.contains(f));
        SigResult {
            status: if for_us {
                SigStatus::Good
            } else {
                SigStatus::Bad
            },
            detail: if for_us {
                "good signature".into()
            } else {
                "not an intended recipient: signed for someone else".into()
            },
            signer: Some(cert.fingerprint()),
            signer_key: Some(g.ka.key().fingerprint()),
            user_ids: keyring::emails(cert, self.now_ms),
        }
    }

    /// RFC 9580 §9.5 and SPEC §5.2: MD5, SHA-1 and RIPEMD-160 data signatures refuse the
    /// whole message.
    fn check_hashes(&mut self, structure: &MessageStructure) {
        for layer in structure.iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    let algo = match r {
                        Ok(g) => Some(g.sig.hash_algo()),
                        Err(e) => error_sig(e).map(|s| s.hash_algo()),
                    };
                    if let Some(
                        a @ (HashAlgorithm::MD5 | HashAlgorithm::SHA1 | HashAlgorithm::RipeMD),
                    ) = algo
                    {
                        self.weak_hash = Some(a.to_string());
                    }
                }
            }
        }
    }
}

fn error_sig<'s>(e: &VerificationError<'s>) -> Option<&'s openpgp::packet::Signature> {
    match e {
        VerificationError::MissingKey { sig }
        | VerificationError::UnboundKey { sig, .. }
        | VerificationError::BadKey { sig, .. }
        | VerificationError::BadSignature { sig, .. }
        | VerificationError::MalformedSignature { sig, .. } => Some(sig),
        _ => None,
    }
}

fn failed(e: &VerificationError) -> SigResult {
    let (status, signer) = match e {
        VerificationError::MissingKey { .. } => (SigStatus::UnknownKey, None),
        VerificationError::UnboundKey { cert, .. } => (SigStatus::Bad, Some(cert.fingerprint())),
        VerificationError::BadKey { ka, .. } | VerificationError::BadSignature { ka, .. } => {
            (SigStatus::Bad, Some(ka.cert().fingerprint()))
        }
        _ => (SigStatus::Bad, None),
    };
    SigResult {
        status,
        detail: e.to_string(),
        signer,
        signer_key: None,
        user_ids: Vec::new(),
    }
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        let mut out: Vec<Cert> = self
            .keyring
            .map(|k| k.certs_for(ids))
            .unwrap_or_default()
            .iter()
            .map(|c| (**c).clone())
            .collect();
        if let Some(g) = self.gateway {
            out.extend(g.public_certs().into_iter().filter(|c| {
                c.keys()
                    .any(|k| ids.iter().any(|h| h.aliases(k.key().key_handle())))
            }));
        }
        Ok(out)
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        self.check_hashes(&structure);
        if self.weak_hash.is_some() {
            self.publish();
            return Err(self.state().into());
        }
        for layer in structure.iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    self.record(r);
                }
            }
        }
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        self.recipients = pkesks
            .iter()
            .map(|p| {
                p.recipient()
                    .map(|h| h.to_hex())
                    .unwrap_or_else(|| "wildcard".into())
            })
            .collect();
        let Some(gateway) = self.gateway else {
            return Err(self.state().into());
        };
        for pkesk in pkesks {
            for key in gateway.decryption_keys() {
                // RFC 9580 §5.1: a wildcard (hidden) recipient is tried with every key.
                let matches = pkesk
                    .recipient()
                    .is_none_or(|r| r.aliases(KeyHandle::from(key.keyid.clone())));
                if !matches {
                    continue;
                }
                let mut pair = key.pair.clone();
                if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo) {
                    if decrypt(algo, &sk) {
                        self.decrypted_with = Some(key.cert.clone());
                        self.publish();
                        let cert = gateway
                            .public_certs()
                            .into_iter()
                            .find(|c| c.fingerprint() == key.cert);
                        return Ok(cert);
                    }
                    self.session_key_rejected = true;
                }
            }
        }
        self.publish();
        Err(self.state().into())
    }
}

/// RFC 3156 §5: verify a detached signature over the canonical signed bytes.
fn verify_detached(data: &[u8], signature: &[u8], ctx: &Ctx) -> Result<Vec<SigResult>, Refusal> {
    let builder =
        DetachedVerifierBuilder::from_bytes(signature).map_err(|e| Refusal::Malformed {
            detail: e.to_string(),
        })?;
    let helper = Helper::new(ctx, ctx.gateway);
    let shared = helper.shared.clone();
    let mut v = builder
        .with_policy(&POLICY, Some(system_time(ctx.now_ms)), helper)
        .map_err(|e| weak_or_malformed(&e, &shared))?;
    let result = v.verify_bytes(data);
    let h = v.into_helper();
    if let Some(algo) = h.weak_hash {
        return Err(Refusal::WeakHash { algo });
    }
    match result {
        Ok(()) => Ok(h.sigs),
        Err(e) => Ok(vec![bad(e.to_string())]),
    }
}

fn bad(detail: String) -> SigResult {
    SigResult {
        status: SigStatus::Bad,
        detail,
        signer: None,
        signer_key: None,
        user_ids: Vec::new(),
    }
}

/// An inline signed message or a cleartext-signed block: the signed text and the results.
fn verify_inline(data: &[u8], ctx: &Ctx) -> Result<(String, Vec<SigResult>), Refusal> {
    let helper = Helper::new(ctx, ctx.gateway);
    let shared = helper.shared.clone();
    let builder = VerifierBuilder::from_bytes(data).map_err(|e| Refusal::Malformed {
        detail: e.to_string(),
    })?;
    let mut v = builder
        .with_policy(&POLICY, Some(system_time(ctx.now_ms)), helper)
        .map_err(|e| weak_or_malformed(&e, &shared))?;
    let mut text = Vec::new();
    let read = read_capped(&mut v, ctx.max_plaintext, &mut text);
    let h = v.into_helper();
    if let Some(algo) = h.weak_hash {
        return Err(Refusal::WeakHash { algo });
    }
    let sigs = match read {
        Ok(_) => h.sigs,
        Err(e) => match e.get_ref().and_then(|r| r.downcast_ref::<TooLarge>()) {
            Some(TooLarge(limit)) => return Err(Refusal::TooLarge { limit: *limit }),
            None => vec![bad(e.to_string())],
        },
    };
    Ok((String::from_utf8_lossy(&text).replace("\r\n", "\n"), sigs))
}

fn weak_or_malformed(e: &openpgp::anyhow::Error, shared: &Mutex<HelperState>) -> Refusal {
    match shared.lock().ok().and_then(|s| s.weak_hash.clone()) {
        Some(algo) => Refusal::WeakHash { algo },
        None => Refusal::Malformed {
            detail: e.to_string(),
        },
    }
}

/// Records the best signature (good over bad over unknown key) and its coverage.
fn apply_signatures(
    p: &mut Protection,
    results: Result<Vec<SigResult>, Refusal>,
    coverage: Coverage,
    parts: Vec<String>,
) {
    let results = match results {
        Ok(r) => r,
        Err(refusal) => {
            p.refusal = Some(refusal);
            return;
        }
    };
    let rank = |s: &SigResult| match s.status {
        SigStatus::Good => 3,
        SigStatus::Bad => 2,
        SigStatus::UnknownKey => 1,
        SigStatus::None => 0,
    };
    let Some(best) = results.iter().max_by_key(|s| rank(s)) else {
        return;
    };
    if rank(best) < rank_of(p.signature) {
        return;
    }
    p.signature = best.status;
    p.signature_detail = Some(best.detail.clone());
    p.coverage = coverage;
    p.signed_parts = parts;
    p.signer = best.signer.as_ref().map(Fingerprint::to_hex);
    p.signer_key = best.signer_key.as_ref().map(Fingerprint::to_hex);
    p.signer_user_ids = best.user_ids.clone();
}

fn rank_of(s: SigStatus) -> u8 {
    match s {
        SigStatus::Good => 3,
        SigStatus::Bad => 2,
        SigStatus::UnknownKey => 1,
        SigStatus::None => 0,
    }
}

// ---------------------------------------------------------------------------------------
// Protected headers
// ---------------------------------------------------------------------------------------

/// RFC 9788 §2.1.1 (`hp=`) or the earlier `protected-headers="v1"`.
pub fn has_protected_headers(entity: &[u8]) -> bool {
    let ct = Entity::parse(entity).content_type();
    ct.param("hp").is_some()
        || ct
            .param("protected-headers")
            .is_some_and(|v| v.eq_ignore_ascii_case("v1"))
}

/// RFC 9788 §4.5.3 (and Enigmail's `text/rfc822-headers` part): a legacy-display part at
/// the start of the payload repeats the headers for old clients; it is not body text.
fn drop_legacy_display(entity: &[u8]) -> Vec<u8> {
    let e = Entity::parse(entity);
    let children = e.children();
    let Some(first) = children.first() else {
        return entity.to_vec();
    };
    let ct = Entity::parse(first).content_type();
    let legacy = ct.param("hp-legacy-display").is_some()
        || (ct.media == "text/rfc822-headers" && ct.param("protected-headers").is_some());
    if legacy {
        mime::without_children(entity, &[0])
    } else {
        entity.to_vec()
    }
}

/// A signed entity's body under the payload's header block, so that protected headers on
/// either level are read (RFC 3156 §6.1 nesting).
fn protected_entity(payload: &[u8], signed: Vec<u8>) -> Vec<u8> {
    if has_protected_headers(&signed) || !has_protected_headers(payload) {
        return signed;
    }
    let outer = Entity::parse(payload);
    let inner = Entity::parse(&signed);
    let mut out = Vec::with_capacity(signed.len() + outer.header.len());
    for line in String::from_utf8_lossy(outer.header).split_inclusive('\n') {
        if !line.to_ascii_lowercase().starts_with("content-") {
            out.extend_from_slice(line.as_bytes());
        }
    }
    out.extend_from_slice(inner.header);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(inner.body);
    out
}

/// Headers inside an unverified signed entity are ignored: only the MIME headers stay.
fn strip_protected_flag(entity: &[u8]) -> Vec<u8> {
    let e = Entity::parse(entity);
    let mut out = Vec::with_capacity(entity.len());
    for line in String::from_utf8_lossy(e.header).split_inclusive('\n') {
        let lower = line.to_ascii_lowercase();
        let continuation = line.starts_with([' ', '\t']);
        if continuation || lower.starts_with("content-") || lower.starts_with("mime-version") {
            out.extend_from_slice(line.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(e.body);
    out
}

/// The mail as routed and posted: the outer headers (addresses, Message-ID, machine
/// markers) with the opened content, and with Subject and threading from protected
/// headers when present (SPEC §2, §5.2).
pub fn routing_inbound(outer: &Inbound, opened: &Opened) -> Inbound {
    let mut inb = outer.clone();
    if let Some(payload) = &opened.payload {
        match mail::parse::parse(payload) {
            Ok(inner) => {
                inb.text = inner.text;
                inb.attachments = inner.attachments;
                inb.content_type = inner.content_type;
                inb.warnings.extend(inner.warnings);
                inb.damaged.extend(inner.damaged);
                if opened.protection.protected_headers {
                    if !inner.subject.trim().is_empty() {
                        inb.subject = inner.subject;
                    }
                    if !inner.in_reply_to.is_empty() {
                        inb.in_reply_to = inner.in_reply_to;
                    }
                    if !inner.references.is_empty() {
                        inb.references = inner.references;
                    }
                }
            }
            Err(e) => {
                // A payload without a header block is text (RFC 2045 §5.2 default).
                inb.warnings.push(format!(
                    "decrypted payload is not a MIME entity ({e}); read as text"
                ));
                inb.text = text_body(&String::from_utf8_lossy(payload));
                inb.attachments.clear();
            }
        }
    } else if let Some(text) = &opened.text {
        inb.text = text_body(text);
    }
    inb
}

/// Decrypted or verified text as a body: LF line ends, no blank lines around it.
fn text_body(text: &str) -> String {
    let mut body = text
        .replace("\r\n", "\n")
        .trim_start_matches('\n')
        .trim_end()
        .to_string();
    if !body.is_empty() {
        body.push('\n');
    }
    body
}

// ---------------------------------------------------------------------------------------
// Candidate keys
// ---------------------------------------------------------------------------------------

/// A certificate offered by the sender, stored unconfirmed (SPEC §5.4).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub cert: Cert,
    pub source: keyring::KeySource,
}

/// Certificates the sender offers: `application/pgp-keys` attachments and one Autocrypt
/// header (Autocrypt Level 1 §2.1) whose `addr` is the From address. Only certificates
/// with a user ID for the From address are kept.
pub fn candidate_keys(inb: &Inbound, from: &str, now_ms: i64) -> Vec<Candidate> {
    let mut out = Vec::new();
    let offered = |c: &Cert| {
        keyring::emails(c, now_ms)
            .iter()
            .any(|e| e.eq_ignore_ascii_case(from))
    };
    for a in &inb.attachments {
        let is_key = a
            .content_type
            .to_ascii_lowercase()
            .starts_with("application/pgp-keys")
            || (a.filename.to_ascii_lowercase().ends_with(".asc")
                && a.bytes.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        if !is_key {
            continue;
        }
        for cert in keyring::parse_certs(&a.bytes).unwrap_or_default() {
            if offered(&cert) {
                out.push(Candidate {
                    cert,
                    source: keyring::KeySource::Attachment,
                });
            }
        }
    }
    if let Some(cert) = autocrypt_cert(inb, from).filter(|c| offered(c)) {
        out.push(Candidate {
            cert,
            source: keyring::KeySource::Autocrypt,
        });
    }
    out
}

/// Autocrypt Level 1 §2.3: exactly one valid `Autocrypt:` header; `addr` must equal From;
/// an unknown attribute not starting with `_` makes it invalid; two or more headers are all
/// ignored.
fn autocrypt_cert(inb: &Inbound, from: &str) -> Option<Cert> {
    let headers: Vec<&str> = inb.header_values("Autocrypt").collect();
    let [header] = headers.as_slice() else {
        return None;
    };
    let mut addr = None;
    let mut keydata = None;
    for attr in header.split(';') {
        let (name, value) = attr.split_once('=')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "addr" => addr = Some(value.trim().to_ascii_lowercase()),
            "keydata" => keydata = Some(value.trim().to_string()),
            "prefer-encrypt" => {}
            n if n.starts_with('_') => {}
            _ => return None,
        }
    }
    if !addr?.eq_ignore_ascii_case(from) {
        return None;
    }
    let bytes = mime::decode_base64(keydata?.as_bytes());
    let certs = keyring::parse_certs(&bytes).ok()?;
    let [cert] = certs.as_slice() else {
        return None;
    };
    Some(cert.clone())
}

#[cfg(test)]
mod first_packet_tests {
    use super::starts_encrypted_message;

    #[test]
    fn only_packets_that_open_an_encrypted_message_are_parsed() {
        assert!(starts_encrypted_message(&[0xc1, 0x0c]), "new-format PKESK");
        assert!(starts_encrypted_message(&[0x84, 0x0c]), "old-format PKESK");
        assert!(starts_encrypted_message(&[0xd2, 0x10]), "new-format SEIP");
        assert!(starts_encrypted_message(&[0x8c, 0x0d]), "old-format SKESK");
        assert!(!starts_encrypted_message(b"%PDF-1.7"), "a PDF");
        assert!(!starts_encrypted_message(&[0x89, b'P', b'N', b'G']), "a PNG: old-format tag 2, a signature");
        assert!(!starts_encrypted_message(&[0xc2, 0x00]), "new-format signature");
        assert!(!starts_encrypted_message(&[]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgp::keyring::{
        armored_secret, generate, to_bytes, CertCache, CertRecord, KeySource,
    };
    use crate::pgp::seal;

    const NOW: i64 = 1_767_225_600_000;
    const RENDERED: &str = "From: \"Alice via CERT\" <cases@cert.example>\r\nTo: <vera@vendor.example>\r\nReply-To: <cases+r-abc@cert.example>\r\nSubject: [VU#123456] Heap overflow in widgetd\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <n1@cert.example>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\nThe post.\r\n";

    struct Fixture {
        gateway: GatewayKeys,
        vendor: GatewayKeys,
        keyring: Keyring,
    }

    /// The gateway's key, a vendor's key, and the vendor's keyring holding the gateway's
    /// certificate confirmed for contact 1 (cases@cert.example).
    fn fixture() -> Fixture {
        let g = generate("<cases@cert.example>", NOW, None).expect("gateway");
        let v = generate("<vera@vendor.example>", NOW, None).expect("vendor");
        let load = |c| {
            GatewayKeys::load(armored_secret(c).expect("armor").as_bytes(), &[], NOW).expect("load")
        };
        let public = g.clone().strip_secret_key_material();
        let rec = CertRecord {
            id: 1,
            contact: 1,
            email: "cases@cert.example".into(),
            fingerprint: public.fingerprint().to_hex(),
            confirmed: true,
            source: KeySource::Import,
            bytes: to_bytes(&public).expect("bytes"),
        };
        let (keyring, _) = Keyring::build(1, vec![rec], &CertCache::default());
        Fixture {
            gateway: load(&g),
            vendor: load(&v),
            keyring,
        }
    }

    fn ctx<'a>(f: &'a Fixture, from: &'a str) -> OpenCtx<'a> {
        OpenCtx {
            gateway: Some(&f.vendor),
            keyring: &f.keyring,
            from: Some(from),
            now_ms: NOW,
        }
    }

    /// The rendered post of the fixtures, encrypted to `cert` and signed by `signer`.
    fn sealed_to(cert: &Cert, signer: Option<&GatewayKeys>) -> Vec<u8> {
        seal::encrypt(RENDERED.as_bytes(), "VU#123456", "CERT", "cases@cert.example", cert, signer, NOW).expect("seal")
    }

    #[test]
    fn sealed_mail_opens_with_protected_headers_and_a_bound_signer() {
        let f = fixture();
        let sealed = sealed_to(&f.vendor.public_cert(), Some(&f.gateway));
        let text = String::from_utf8_lossy(&sealed);
        assert!(
            text.contains("Subject: [VU#123456] ...") && !text.contains("Heap overflow"),
            "{text}"
        );
        let o = open(&sealed, &ctx(&f, "cases@cert.example"));
        let p = &o.protection;
        assert_eq!(
            (p.form, p.encrypted, p.signature, p.coverage),
            (
                Form::PgpMimeEncrypted,
                true,
                SigStatus::Good,
                Coverage::Full
            ),
            "{p:?}"
        );
        assert!(p.protected_headers);
        assert_eq!(p.authenticated(), Some(1));
        let outer = mail::parse::parse(&sealed).expect("parse");
        let inb = routing_inbound(&outer, &o);
        assert_eq!(inb.subject, "[VU#123456] Heap overflow in widgetd");
        assert_eq!(inb.text.trim_end(), "The post.");
        let other = open(&sealed, &ctx(&f, "mallory@evil.example"));
        assert_eq!(
            other.protection.authenticated(),
            None,
            "signer bound to another address"
        );
    }

    #[test]
    fn ciphertexts_are_found_wherever_they_sit_and_a_refused_one_is_not_decrypted() {
        let f = fixture();
        let sealed = sealed_to(&f.vendor.public_cert(), Some(&f.gateway));
        let root = ciphertext_hashes(&sealed);
        assert_eq!(root.len(), 1, "{root:?}");
        let entity = String::from_utf8_lossy(&sealed);
        let entity = &entity[entity.find("Content-Type:").expect("entity")..];
        let forwarded = format!(
            "From: b@x.example\r\nContent-Type: multipart/mixed; boundary=W\r\n\r\n--W\r\nContent-Type: text/plain\r\n\r\nsee\r\n--W\r\n{entity}\r\n--W--\r\n"
        );
        assert_eq!(
            ciphertext_hashes(forwarded.as_bytes()),
            root,
            "below the root"
        );
        let (begin, end) = (
            entity.find(mime::BEGIN_MESSAGE).unwrap(),
            entity.find(mime::END_MESSAGE).unwrap(),
        );
        let armored = entity[begin..end + mime::END_MESSAGE.len()].to_string();
        let quoted: String = armored.lines().map(|l| format!("> {l}\r\n")).collect();
        let reply = format!("From: b@x.example\r\n\r\nAgreed.\r\n{quoted}");
        assert!(
            ciphertext_hashes(reply.as_bytes()).is_empty(),
            "quoted armor is not a message"
        );
        let inline = format!("From: b@x.example\r\n\r\n{armored}\r\n");
        assert_eq!(ciphertext_hashes(inline.as_bytes()), root, "inline");
        let guard = Guard {
            refused_ciphertexts: root.clone(),
            ..Guard::default()
        };
        let o = open_guarded(&sealed, &ctx(&f, "cases@cert.example"), &guard);
        assert_eq!(o.protection.refusal, Some(Refusal::Replayed));
        assert_eq!(
            (o.protection.decrypted_with.as_deref(), o.payload.as_deref()),
            (None, None)
        );
        let small = Guard {
            max_plaintext_bytes: 16,
            ..Guard::default()
        };
        let o = open_guarded(&sealed, &ctx(&f, "cases@cert.example"), &small);
        assert_eq!(
            o.protection.refusal,
            Some(Refusal::TooLarge { limit: 16 }),
            "{:?}",
            o.protection
        );
        assert!(o.payload.is_none());
    }

    #[test]
    fn signed_mail_verifies_and_a_changed_byte_fails() {
        let f = fixture();
        let signed = seal::sign(RENDERED.as_bytes(), &f.gateway, NOW).expect("sign");
        let o = open(&signed, &ctx(&f, "cases@cert.example"));
        assert_eq!(
            (
                o.protection.form,
                o.protection.signature,
                o.protection.coverage
            ),
            (Form::PgpMimeSigned, SigStatus::Good, Coverage::Full)
        );
        let lf = String::from_utf8_lossy(&signed).replace("\r\n", "\n");
        assert_eq!(
            open(lf.as_bytes(), &ctx(&f, "cases@cert.example"))
                .protection
                .signature,
            SigStatus::Good
        );
        let changed = lf.replacen("The post.", "The p0st.", 1);
        assert_eq!(
            open(changed.as_bytes(), &ctx(&f, "cases@cert.example"))
                .protection
                .signature,
            SigStatus::Bad
        );
    }

    #[test]
    fn mail_for_another_key_is_undecryptable() {
        let f = fixture();
        let sealed = sealed_to(&f.gateway.public_cert(), None);
        let o = open(&sealed, &ctx(&f, "cases@cert.example"));
        assert!(
            matches!(o.protection.refusal, Some(Refusal::Undecryptable { .. })),
            "{:?}",
            o.protection
        );
        assert!(o.payload.is_none() && o.text.is_none());
    }
}
