//! Sealing of one rendered message for one recipient (SPEC §5.3, §6.4).
//!
//! - [`encrypt`]: RFC 3156 §6.2 combined signing and encryption. The cryptographic payload
//!   is the rendered MIME entity with the protected headers of RFC 9788 (`hp="cipher"`,
//!   and `protected-headers="v1"` for clients that know only the earlier draft) and an
//!   `HP-Outer` field for each header shown outside. Outside stays what transport and
//!   threading need; the Subject is the token and `...`, the From the gateway alone.
//!   Encrypted to the recipient's usable encryption subkeys only, signed by the gateway key
//!   with the recipient as intended recipient (RFC 9580 §5.2.3.36).
//! - [`sign`]: RFC 3156 §5 `multipart/signed` with a detached signature over the rendered
//!   entity (protected headers with `hp="clear"`).
//!
//! Pure apart from the randomness of the cryptographic library (session keys).

use super::keyring::GatewayKeys;
use super::mime::canonical_crlf;
use super::{system_time, PgpError, POLICY};
use openpgp::armor;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::types::HashAlgorithm;
use openpgp::Cert;
use sequoia_openpgp as openpgp;
use sha2::{Digest, Sha256};
use std::io::Write;

/// Header fields that are part of the message's meaning and go inside (RFC 9788 §2).
const PROTECTED: &[&str] = &[
    "from",
    "to",
    "cc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
];

/// One header field as written (folding kept), with its name.
struct RawField {
    name: String,
    /// The whole field, ending in CRLF.
    text: String,
}

impl RawField {
    fn is(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.name.eq_ignore_ascii_case(n))
    }
    fn is_mime(&self) -> bool {
        let n = self.name.to_ascii_lowercase();
        n.starts_with("content-") || n == "mime-version"
    }
    /// `Name: value` on one line (RFC 5322 §2.2.3 unfolding).
    fn unfolded(&self) -> String {
        self.text
            .trim_end_matches(['\r', '\n'])
            .replace("\r\n", "")
            .replace('\n', "")
    }
}

/// A rendered message split into its header fields and its body.
struct Rendered<'a> {
    fields: Vec<RawField>,
    body: &'a [u8],
}

fn split(message: &[u8]) -> Rendered<'_> {
    let sep = message.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match sep {
        Some(i) => (&message[..i + 2], &message[i + 4..]),
        None => (message, &message[message.len()..]),
    };
    let mut fields: Vec<RawField> = Vec::new();
    for line in String::from_utf8_lossy(head).split_inclusive("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.text.push_str(line);
            }
            continue;
        }
        let name = line.split(':').next().unwrap_or_default().to_string();
        fields.push(RawField {
            name,
            text: line.to_string(),
        });
    }
    Rendered { fields, body }
}

/// The payload entity: the MIME fields (Content-Type extended by `extra` parameters), the
/// protected fields, optional `HP-Outer` fields, then the body.
fn payload(r: &Rendered, extra: &str, outer: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.body.len() + 2048);
    for f in r
        .fields
        .iter()
        .filter(|f| f.is_mime() && !f.is(&["mime-version"]))
    {
        if f.is(&["content-type"]) {
            out.extend_from_slice(f.text.trim_end_matches(['\r', '\n']).as_bytes());
            out.extend_from_slice(extra.as_bytes());
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(f.text.as_bytes());
        }
    }
    for f in r.fields.iter().filter(|f| f.is(PROTECTED)) {
        out.extend_from_slice(f.text.as_bytes());
    }
    for o in outer {
        // RFC 9788 §2.2.1: HP-Outer records each header field as it appears outside.
        out.extend_from_slice(format!("HP-Outer: {o}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(r.body);
    out
}

/// A header phrase: quoted when ASCII, RFC 2047 encoded-word otherwise.
fn display_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.is_ascii() {
        format!("\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!(
            "=?utf-8?B?{}?=",
            data_encoding::BASE64.encode(clean.as_bytes())
        )
    }
}

/// RFC 3156 §6.2: signed (when the gateway has a key) and encrypted PGP/MIME for one
/// recipient. `token` is the thread token for the outer Subject; `gateway_name` and
/// `gateway_address` make the outer From.
pub fn encrypt(
    message: &[u8],
    token: &str,
    gateway_name: &str,
    gateway_address: &str,
    recipient: &Cert,
    gateway: Option<&GatewayKeys>,
    now_ms: i64,
) -> Result<Vec<u8>, PgpError> {
    let r = split(message);
    let outer_from = format!("From: {} <{gateway_address}>", display_name(gateway_name));
    let token: String = token.chars().filter(|c| !c.is_control()).collect();
    let outer_subject = format!("Subject: [{token}] ...");
    let mut outer_fields: Vec<String> = vec![outer_from.clone(), outer_subject.clone()];
    outer_fields.extend(
        r.fields
            .iter()
            .filter(|f| f.is(PROTECTED) && !f.is(&["from", "subject"]))
            .map(RawField::unfolded),
    );
    let inner = payload(
        &r,
        "; protected-headers=\"v1\"; hp=\"cipher\"",
        &outer_fields,
    );
    let armored = encrypt_bytes(&inner, recipient, gateway, now_ms)?;
    let boundary = format!("=_cge{}", &hex::encode(Sha256::digest(&armored))[..40]);
    let mut out = Vec::with_capacity(armored.len() + 2048);
    out.extend_from_slice(format!("{outer_from}\r\n{outer_subject}\r\n").as_bytes());
    for f in r
        .fields
        .iter()
        .filter(|f| !f.is_mime() && !f.is(&["from", "subject"]))
    {
        out.extend_from_slice(f.text.as_bytes());
    }
    out.extend_from_slice(
        format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n boundary=\"{boundary}\"\r\n\r\n\
             This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n\
             --{boundary}\r\nContent-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n\
             --{boundary}\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\nContent-Description: OpenPGP encrypted message\r\n\
             Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&armored);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(out)
}

fn crypto(e: openpgp::anyhow::Error) -> PgpError {
    PgpError::Crypto(e.to_string())
}

/// The armored OpenPGP message: literal data, signed by the gateway when it can sign,
/// encrypted to every usable transport-encryption subkey of `recipient` and to nobody else.
fn encrypt_bytes(
    data: &[u8],
    recipient: &Cert,
    gateway: Option<&GatewayKeys>,
    now_ms: i64,
) -> Result<Vec<u8>, PgpError> {
    let t = system_time(now_ms);
    let vc = recipient.with_policy(&POLICY, t).map_err(crypto)?;
    let keys: Vec<Recipient> = vc
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .map(Recipient::from)
        .collect();
    if keys.is_empty() {
        return Err(PgpError::NoEncryptionKey);
    }
    let mut sink = Vec::with_capacity(data.len() * 4 / 3 + 1024);
    {
        let message = Message::new(&mut sink);
        let message = Armorer::new(message)
            .kind(armor::Kind::Message)
            .build()
            .map_err(crypto)?;
        let message = Encryptor::for_recipients(message, keys)
            .build()
            .map_err(crypto)?;
        let message = match gateway.and_then(GatewayKeys::signer) {
            Some(pair) => Signer::new(message, pair)
                .map_err(crypto)?
                .add_intended_recipient(recipient)
                .hash_algo(HashAlgorithm::SHA256)
                .map_err(crypto)?
                .creation_time(t)
                .build()
                .map_err(crypto)?,
            None => message,
        };
        let mut w = LiteralWriter::new(message).build().map_err(crypto)?;
        w.write_all(data)
            .map_err(|e| PgpError::Crypto(e.to_string()))?;
        w.finalize().map_err(crypto)?;
    }
    Ok(canonical_crlf(&sink))
}

/// RFC 3156 §5: `multipart/signed` with a detached SHA-256 signature (`micalg=pgp-sha256`)
/// over the rendered entity, which carries protected headers with `hp="clear"`.
pub fn sign(message: &[u8], gateway: &GatewayKeys, now_ms: i64) -> Result<Vec<u8>, PgpError> {
    let pair = gateway
        .signer()
        .ok_or_else(|| PgpError::InvalidKey("the gateway key cannot sign now".into()))?;
    let r = split(message);
    let entity = payload(&r, "; protected-headers=\"v1\"; hp=\"clear\"", &[]);
    let mut sig = Vec::with_capacity(1024);
    {
        let message = Message::new(&mut sig);
        let message = Armorer::new(message)
            .kind(armor::Kind::Signature)
            .build()
            .map_err(crypto)?;
        let mut signer = Signer::new(message, pair)
            .map_err(crypto)?
            .detached()
            .hash_algo(HashAlgorithm::SHA256)
            .map_err(crypto)?
            .creation_time(system_time(now_ms))
            .build()
            .map_err(crypto)?;
        signer
            .write_all(&entity)
            .map_err(|e| PgpError::Crypto(e.to_string()))?;
        signer.finalize().map_err(crypto)?;
    }
    let boundary = format!("=_cgs{}", &hex::encode(Sha256::digest(&entity))[..40]);
    let mut out = Vec::with_capacity(entity.len() + sig.len() + 2048);
    for f in r.fields.iter().filter(|f| !f.is_mime()) {
        out.extend_from_slice(f.text.as_bytes());
    }
    out.extend_from_slice(
        format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/signed; micalg=pgp-sha256;\r\n protocol=\"application/pgp-signature\"; boundary=\"{boundary}\"\r\n\r\n\
             This is an OpenPGP/MIME signed message (RFC 3156).\r\n--{boundary}\r\n"
        )
        .as_bytes(),
    );
    // RFC 3156 §5: the signed part, then the signature part, each after a delimiter whose
    // preceding CRLF is not part of the signed data.
    out.extend_from_slice(&entity);
    out.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\
             Content-Description: OpenPGP digital signature\r\nContent-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&canonical_crlf(&sig));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(out)
}
