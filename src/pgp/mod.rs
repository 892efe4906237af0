//! OpenPGP (SPEC §5): opening inbound protection, sealing outbound mail, and keys.
//!
//! - [`mime`]: PGP/MIME shapes in raw bytes (RFC 3156), Exchange repair, partial
//!   signatures, inline and cleartext blocks, the EFAIL shapes;
//! - [`open`]: decrypt and verify a mail into a [`Protection`] and the payload that is
//!   routed and posted (pipeline stage 4);
//! - [`seal`]: sign and encrypt one rendered message for one recipient (RFC 3156 §6.2,
//!   protected headers of RFC 9788), or sign it alone (RFC 3156 §5);
//! - [`keyring`]: the gateway keys, the parsed and cached certificates of contacts.
//!
//! Pure: the shell loads keys and certificates and passes the time. The one exception is
//! randomness inside the cryptographic library (session keys, nonces, key generation),
//! which OpenPGP requires and which never reaches a decision.

pub mod keyring;
pub mod mime;
pub mod open;
pub mod seal;

use crate::model::{ContactId, Reason};
use keyring::{CertCache, GatewayKeys, Keyring};
use sequoia_openpgp::policy::StandardPolicy;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};

/// Errors of the OpenPGP layer (bad keys, failed crypto operations). Decisions about
/// inbound mail are not errors: they are [`Refusal`]s inside a [`Protection`].
#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("no usable encryption key in the recipient's certificate")]
    NoEncryptionKey,
    #[error("OpenPGP: {0}")]
    Crypto(String),
}

/// RFC 9580 and the StandardPolicy: MD5 and SHA-1 data signatures, weak keys and
/// algorithms are rejected.
pub(crate) static POLICY: StandardPolicy<'static> = StandardPolicy::new();

/// The caller's time as the library wants it.
pub(crate) fn system_time(now_ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(now_ms.max(0) as u64)
}

/// How the mail was protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    #[default]
    None,
    /// RFC 3156 §4 (also after an Exchange repair).
    PgpMimeEncrypted,
    /// RFC 3156 §5.
    PgpMimeSigned,
    /// An armored `BEGIN PGP MESSAGE` block as the whole body, encrypted.
    InlineEncrypted,
    /// An armored `BEGIN PGP MESSAGE` block as the whole body, signed only.
    InlineSigned,
    /// RFC 9580 §7 cleartext signature framework.
    Cleartext,
}

/// The outcome of signature verification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SigStatus {
    /// No signature.
    #[default]
    None,
    /// A good signature by a known certificate.
    Good,
    /// A signature that does not verify, by a bad key, or not meant for the gateway.
    Bad,
    /// Signed by a certificate the gateway does not have.
    UnknownKey,
}

/// How much of the mail the signature covers (SPEC §5.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Coverage {
    #[default]
    None,
    /// The root of the mail, or of its decrypted payload.
    Full,
    /// Only some parts (`signed_parts`): partially signed.
    Partial,
}

/// Why protection was refused: the mail is quarantined and no plaintext is released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Refusal {
    /// RFC 9580 §5.7: Symmetrically Encrypted Data without integrity protection.
    Sed,
    /// RFC 9580 §5.13.1: a missing or bad Modification Detection Code.
    Mdc { detail: String },
    /// RFC 9580 §9.5: an MD5 or SHA-1 (or RIPEMD-160) data signature.
    WeakHash { algo: String },
    /// Not encrypted to a gateway key.
    Undecryptable { detail: String },
    /// OpenPGP data that does not parse.
    Malformed { detail: String },
    /// SPEC §5.2: a ciphertext of this mail came before from another sender or in another
    /// thread; nothing was decrypted.
    Replayed,
    /// The decrypted (or decompressed) data grew past the limit: nothing is released.
    TooLarge { limit: usize },
}

impl Refusal {
    /// The routing reason for this refusal.
    pub fn reason(&self) -> Reason {
        match self {
            Refusal::Undecryptable { detail } => Reason::PgpUndecryptable {
                detail: detail.clone(),
            },
            Refusal::Replayed => Reason::CiphertextReplayed,
            other => Reason::PgpRefused {
                why: other.to_string(),
            },
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Sed => f.write_str("SED packet without integrity protection"),
            Refusal::Mdc { detail } => write!(f, "missing or bad MDC ({detail})"),
            Refusal::WeakHash { algo } => write!(f, "{algo} data signature"),
            Refusal::Undecryptable { detail } => f.write_str(detail),
            Refusal::Malformed { detail } => write!(f, "malformed OpenPGP data ({detail})"),
            Refusal::Replayed => f.write_str("ciphertext seen before from another sender or thread"),
            Refusal::TooLarge { limit } => write!(
                f,
                "decrypted data larger than {limit} bytes (compressed data expanding without bound)"
            ),
        }
    }
}

/// The OpenPGP evidence of one mail, stored with its post and its inbound message and
/// shown by `route explain` (SPEC §5.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    pub form: Form,
    /// The mail carried encrypted content that was opened.
    pub encrypted: bool,
    /// The gateway key (primary fingerprint) that decrypted it.
    pub decrypted_with: Option<String>,
    pub signature: SigStatus,
    pub signature_detail: Option<String>,
    pub coverage: Coverage,
    /// MIME part paths (`1`, `2.1`) or `cleartext-block` covered by the signature.
    pub signed_parts: Vec<String>,
    /// Primary fingerprint of the signing certificate.
    pub signer: Option<String>,
    /// Fingerprint of the key that made the signature.
    pub signer_key: Option<String>,
    /// Addresses in the signing certificate's user IDs.
    pub signer_user_ids: Vec<String>,
    /// The contact the signature authenticates: a good signature over the whole root by a
    /// certificate confirmed for the From contact (SPEC §5.2).
    pub signer_contact: Option<ContactId>,
    /// Subject, threading and tokens came from protected headers (RFC 9788).
    pub protected_headers: bool,
    /// `exchange` when Exchange-mangled PGP/MIME was repaired.
    pub repaired: Option<String>,
    pub refusal: Option<Refusal>,
    /// SHA-256 of the encrypted data packet, for the replay rule.
    pub ciphertext_sha256: Option<String>,
    /// SHA-256 of the encrypted data packet of every OpenPGP message in the mail, wherever
    /// it sits (the root's included), for the replay rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ciphertexts: Vec<String>,
    /// What else was noticed (parts not opened, shapes flagged).
    pub notes: Vec<String>,
}

impl Protection {
    /// The contact whose identity the signature proves, if any.
    pub fn authenticated(&self) -> Option<ContactId> {
        let full = self.coverage == Coverage::Full
            && self.signature == SigStatus::Good
            && self.refusal.is_none();
        self.signer_contact.filter(|_| full)
    }

    /// Whether there is anything to record.
    pub fn is_empty(&self) -> bool {
        *self == Protection::default()
    }

    /// One line for logs and listings.
    pub fn summary(&self) -> String {
        if let Some(r) = &self.refusal {
            return format!("refused: {r}");
        }
        let mut parts = vec![serde_plain(&self.form)];
        if self.encrypted {
            parts.push("decrypted".into());
        }
        if self.signature != SigStatus::None {
            parts.push(format!(
                "signature {} ({} coverage)",
                serde_plain(&self.signature),
                serde_plain(&self.coverage)
            ));
        }
        if let Some(s) = &self.signer {
            parts.push(format!("signer {s}"));
        }
        if self.signer_contact.is_some() {
            parts.push("bound to sender".into());
        }
        if self.protected_headers {
            parts.push("protected headers".into());
        }
        parts.extend(self.notes.iter().cloned());
        parts.join(", ")
    }
}

/// A unit enum's serde name.
fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The keys the gateway works with: its own (optional until generated), the contacts'
/// certificates as a snapshot that the shell replaces when the store changes, and the
/// parse cache.
pub struct PgpState {
    pub gateway: Option<Arc<GatewayKeys>>,
    keyring: RwLock<Arc<Keyring>>,
    pub cache: CertCache,
}

impl std::fmt::Debug for PgpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgpState")
            .field("gateway", &self.gateway)
            .field("generation", &self.keyring().generation)
            .finish()
    }
}

impl PgpState {
    pub fn new(gateway: Option<Arc<GatewayKeys>>) -> PgpState {
        PgpState {
            gateway,
            keyring: RwLock::new(Arc::new(Keyring::empty(-1))),
            cache: CertCache::default(),
        }
    }

    /// The current keyring snapshot.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.keyring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_keyring(&self, k: Keyring) {
        *self.keyring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(k);
    }
}
