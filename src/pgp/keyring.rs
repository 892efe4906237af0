//! Keys (SPEC §5.4): the gateway's own secret keys, the certificates of contacts as one
//! parsed, indexed [`Keyring`], and a [`CertCache`] so that every certificate is parsed
//! once per process however often the keyring is rebuilt.
//!
//! Usability follows RFC 9580 and the StandardPolicy: a certificate is usable for a
//! recipient when it is valid, alive and not revoked at the given time and has an alive,
//! unrevoked, transport-encryption-capable subkey (RFC 9580 §5.2.3.29 key flags).

use super::{system_time, PgpError, POLICY};
use crate::model::ContactId;
use openpgp::cert::prelude::*;
use openpgp::crypto::KeyPair;
use openpgp::parse::Parse;
use openpgp::policy::Policy;
use openpgp::serialize::{Serialize, SerializeInto};
use openpgp::types::{KeyFlags, RevocationStatus};
use openpgp::{Cert, Fingerprint, KeyHandle, KeyID};
use sequoia_openpgp as openpgp;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A secret key the gateway decrypts with.
#[derive(Clone)]
pub(crate) struct DecryptionKey {
    pub keyid: KeyID,
    /// The primary fingerprint of the certificate the key belongs to.
    pub cert: Fingerprint,
    pub pair: KeyPair,
}

/// The gateway's keys: the current one signs and decrypts; older ones (key rollover)
/// only decrypt.
#[derive(Clone)]
pub struct GatewayKeys {
    /// Secret certificates, the current one first.
    tsks: Vec<Cert>,
    signer: Option<KeyPair>,
    decryption: Vec<DecryptionKey>,
}

impl std::fmt::Debug for GatewayKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fprs: Vec<String> = self.tsks.iter().map(|c| c.fingerprint().to_hex()).collect();
        f.debug_struct("GatewayKeys")
            .field("fingerprints", &fprs)
            .finish_non_exhaustive()
    }
}

impl GatewayKeys {
    /// Parses the current key and the older ones (armored or binary transferable secret
    /// keys, not passphrase-protected: the file's permissions protect them).
    pub fn load(current: &[u8], older: &[Vec<u8>], now_ms: i64) -> Result<GatewayKeys, PgpError> {
        let mut tsks = vec![parse_tsk(current)?];
        for bytes in older {
            tsks.push(parse_tsk(bytes)?);
        }
        let t = system_time(now_ms);
        let signer = tsks[0]
            .keys()
            .unencrypted_secret()
            .with_policy(&POLICY, t)
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .next()
            .and_then(|ka| ka.key().clone().into_keypair().ok());
        let mut decryption = Vec::new();
        for tsk in &tsks {
            decryption.extend(decryption_keys(tsk, t));
        }
        if decryption.is_empty() {
            return Err(PgpError::InvalidKey(
                "no usable secret decryption key (a passphrase-protected key is not accepted)"
                    .into(),
            ));
        }
        Ok(GatewayKeys {
            tsks,
            signer,
            decryption,
        })
    }

    /// The current key's primary fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.tsks[0].fingerprint()
    }

    /// Every configured key's primary fingerprint, the current one first.
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        self.tsks.iter().map(Cert::fingerprint).collect()
    }

    /// The current public certificate, for publishing.
    pub fn public_cert(&self) -> Cert {
        self.tsks[0].clone().strip_secret_key_material()
    }

    /// Every configured public certificate (to verify our own signatures).
    pub fn public_certs(&self) -> Vec<Cert> {
        self.tsks
            .iter()
            .map(|c| c.clone().strip_secret_key_material())
            .collect()
    }

    /// The current public certificate, ASCII-armored (RFC 9580 §6.2).
    pub fn armored_public(&self) -> Result<String, PgpError> {
        armored(&self.public_cert())
    }

    /// The signing key pair, when the current key can sign now.
    pub fn signer(&self) -> Option<KeyPair> {
        self.signer.clone()
    }

    pub(crate) fn decryption_keys(&self) -> &[DecryptionKey] {
        &self.decryption
    }
}

fn parse_tsk(bytes: &[u8]) -> Result<Cert, PgpError> {
    let cert = Cert::from_bytes(bytes)
        .map_err(|e| PgpError::InvalidKey(format!("not an OpenPGP key: {e}")))?;
    if !cert.is_tsk() {
        return Err(PgpError::InvalidKey(format!(
            "{} holds no secret key material",
            cert.fingerprint()
        )));
    }
    Ok(cert)
}

/// Every unencrypted secret subkey bound for encryption under the policy, expired ones
/// included (mail encrypted before the expiry must still open).
fn decryption_keys(tsk: &Cert, t: std::time::SystemTime) -> Vec<DecryptionKey> {
    tsk.keys()
        .unencrypted_secret()
        .with_policy(&POLICY, t)
        .supported()
        .key_flags(
            KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
        )
        .filter_map(|ka| {
            let pair = ka.key().clone().into_keypair().ok()?;
            Some(DecryptionKey {
                keyid: ka.key().keyid(),
                cert: tsk.fingerprint(),
                pair,
            })
        })
        .collect()
}

/// The armored public form of a certificate.
pub fn armored(cert: &Cert) -> Result<String, PgpError> {
    let bytes = cert
        .armored()
        .to_vec()
        .map_err(|e| PgpError::Crypto(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| PgpError::Crypto(e.to_string()))
}

/// The armored secret form (for the gateway key file).
pub fn armored_secret(cert: &Cert) -> Result<String, PgpError> {
    let bytes = cert
        .as_tsk()
        .armored()
        .to_vec()
        .map_err(|e| PgpError::Crypto(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| PgpError::Crypto(e.to_string()))
}

/// Public-key algorithms for [`generate_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// Ed25519 signing, Cv25519 encryption.
    Cv25519,
    /// RSA-3072 for both.
    Rsa3072,
}

/// A new gateway key (SPEC §5): v4, an Ed25519 primary key that certifies and signs and a
/// Cv25519 subkey for encryption, so that GnuPG 2.2 and later can use it. The
/// cryptographic library draws the key material from the operating system.
pub fn generate(user_id: &str, now_ms: i64, valid_days: Option<u64>) -> Result<Cert, PgpError> {
    generate_with(user_id, now_ms, valid_days, Suite::Cv25519)
}

/// A new v4 key of the given suite: a primary key that certifies and signs and one
/// encryption subkey.
pub fn generate_with(
    user_id: &str,
    now_ms: i64,
    valid_days: Option<u64>,
    suite: Suite,
) -> Result<Cert, PgpError> {
    let validity = valid_days.map(|d| std::time::Duration::from_secs(d.saturating_mul(86_400)));
    let cs = match suite {
        Suite::Cv25519 => CipherSuite::Cv25519,
        Suite::Rsa3072 => CipherSuite::RSA3k,
    };
    let builder = CertBuilder::new()
        .set_profile(openpgp::Profile::RFC4880)
        .map_err(|e| PgpError::Crypto(e.to_string()))?
        .set_cipher_suite(cs)
        .set_creation_time(system_time(now_ms))
        .set_validity_period(validity)
        .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
        .add_userid(user_id)
        .add_subkey(
            KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
            None,
            None,
        );
    let (cert, _revocation) = builder
        .generate()
        .map_err(|e| PgpError::Crypto(e.to_string()))?;
    Ok(cert)
}

/// Parses every certificate in `bytes` (armored or binary, one or several), public parts
/// only.
pub fn parse_certs(bytes: &[u8]) -> Result<Vec<Cert>, PgpError> {
    let parser = CertParser::from_bytes(bytes).map_err(|e| PgpError::InvalidKey(e.to_string()))?;
    let mut out = Vec::new();
    for cert in parser {
        let cert = cert.map_err(|e| PgpError::InvalidKey(e.to_string()))?;
        out.push(cert.strip_secret_key_material());
    }
    if out.is_empty() {
        return Err(PgpError::InvalidKey("no OpenPGP certificate found".into()));
    }
    Ok(out)
}

/// The binary serialization of a certificate's public parts (what the key store keeps).
pub fn to_bytes(cert: &Cert) -> Result<Vec<u8>, PgpError> {
    let mut out = Vec::new();
    cert.serialize(&mut out)
        .map_err(|e| PgpError::Crypto(e.to_string()))?;
    Ok(out)
}

/// The addresses in a certificate's user IDs, lowercase (self-signed ones under the policy).
pub fn emails(cert: &Cert, now_ms: i64) -> Vec<String> {
    let Ok(vc) = cert.with_policy(&POLICY, system_time(now_ms)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = vc
        .userids()
        .filter_map(|u| {
            u.userid()
                .email()
                .ok()
                .flatten()
                .map(str::to_ascii_lowercase)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether a certificate can be used to encrypt to its holder at a given time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum CertState {
    /// Usable; `until_ms` is when it stops being usable (expiry), if ever.
    Usable {
        until_ms: Option<i64>,
    },
    Expired,
    Revoked,
    NoEncryptionKey,
    Invalid {
        why: String,
    },
}

impl CertState {
    pub fn as_str(&self) -> &'static str {
        match self {
            CertState::Usable { .. } => "usable",
            CertState::Expired => "expired",
            CertState::Revoked => "revoked",
            CertState::NoEncryptionKey => "no-encryption-key",
            CertState::Invalid { .. } => "invalid",
        }
    }
}

/// RFC 9580 §5.2.3.29/§5.2.3.23: valid, alive, unrevoked, with an alive, unrevoked
/// transport-encryption subkey.
pub fn cert_state(cert: &Cert, now_ms: i64) -> CertState {
    let vc = match cert.with_policy(&POLICY, system_time(now_ms)) {
        Ok(vc) => vc,
        Err(e) => return CertState::Invalid { why: e.to_string() },
    };
    if matches!(vc.revocation_status(), RevocationStatus::Revoked(_)) {
        return CertState::Revoked;
    }
    let primary_alive = vc.alive().is_ok();
    let keys: Vec<_> = vc
        .keys()
        .supported()
        .revoked(false)
        .for_transport_encryption()
        .collect();
    if keys.is_empty() {
        return CertState::NoEncryptionKey;
    }
    let alive: Vec<_> = keys.iter().filter(|k| k.alive().is_ok()).collect();
    if !primary_alive || alive.is_empty() {
        return CertState::Expired;
    }
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    };
    let primary_until = vc.primary_key().key_expiration_time().map(ms);
    // The latest of the subkeys: encryption stays possible until the last one expires.
    let subkeys_until = if alive.iter().any(|k| k.key_expiration_time().is_none()) {
        None
    } else {
        alive
            .iter()
            .filter_map(|k| k.key_expiration_time().map(ms))
            .max()
    };
    let until = match (primary_until, subkeys_until) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    CertState::Usable { until_ms: until }
}

/// Parsed certificates by the SHA-256 of their bytes: each is parsed once per process.
#[derive(Default)]
pub struct CertCache {
    map: Mutex<HashMap<[u8; 32], Arc<Cert>>>,
}

impl std::fmt::Debug for CertCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.map.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("CertCache").field("certs", &n).finish()
    }
}

impl CertCache {
    pub fn parse(&self, bytes: &[u8]) -> Result<Arc<Cert>, PgpError> {
        let key: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(c) = self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(c.clone());
        }
        let cert =
            Arc::new(Cert::from_bytes(bytes).map_err(|e| PgpError::InvalidKey(e.to_string()))?);
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, cert.clone());
        Ok(cert)
    }
}

/// Where a stored certificate came from (SPEC §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    /// `casegate keys import` by a coordinator: confirmed.
    Import,
    /// An `application/pgp-keys` attachment: a candidate.
    Attachment,
    /// An `Autocrypt:` header (Autocrypt Level 1): a candidate.
    Autocrypt,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Import => "import",
            KeySource::Attachment => "attachment",
            KeySource::Autocrypt => "autocrypt",
        }
    }
    pub fn parse(s: &str) -> Option<KeySource> {
        match s {
            "import" => Some(KeySource::Import),
            "attachment" => Some(KeySource::Attachment),
            "autocrypt" => Some(KeySource::Autocrypt),
            _ => None,
        }
    }
}

/// One stored certificate, as loaded by the shell.
#[derive(Debug, Clone)]
pub struct CertRecord {
    pub id: i64,
    pub contact: ContactId,
    /// The contact's lowercase address.
    pub email: String,
    pub fingerprint: String,
    /// Confirmed by a coordinator; candidates only encrypt and never authenticate.
    pub confirmed: bool,
    pub source: KeySource,
    pub bytes: Vec<u8>,
}

/// A stored certificate, parsed.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub contact: ContactId,
    pub email: String,
    pub confirmed: bool,
    pub source: KeySource,
    pub cert: Arc<Cert>,
}

/// Every stored certificate, parsed and indexed by key ID and by contact. A snapshot: the
/// shell rebuilds it when the store's generation changes.
#[derive(Debug, Default)]
pub struct Keyring {
    /// The store's key generation this snapshot was built from.
    pub generation: i64,
    entries: Vec<Entry>,
    by_keyid: HashMap<KeyID, Vec<usize>>,
    by_contact: HashMap<ContactId, Vec<usize>>,
}

/// A contact whose last usable certificate expires soon.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Expiring {
    pub contact: ContactId,
    pub email: String,
    pub fingerprint: String,
    pub expires_at_ms: i64,
}

impl Keyring {
    /// A keyring with no certificates, for a generation that was never loaded.
    pub fn empty(generation: i64) -> Keyring {
        Keyring {
            generation,
            ..Default::default()
        }
    }

    /// Builds the keyring; records that do not parse are skipped and returned as problems.
    pub fn build(
        generation: i64,
        records: Vec<CertRecord>,
        cache: &CertCache,
    ) -> (Keyring, Vec<String>) {
        let mut k = Keyring {
            generation,
            ..Default::default()
        };
        let mut problems = Vec::new();
        for r in records {
            let cert = match cache.parse(&r.bytes) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("certificate {} of {}: {e}", r.fingerprint, r.email));
                    continue;
                }
            };
            let i = k.entries.len();
            for key in cert.keys() {
                k.by_keyid.entry(key.key().keyid()).or_default().push(i);
            }
            k.by_contact.entry(r.contact).or_default().push(i);
            k.entries.push(Entry {
                id: r.id,
                contact: r.contact,
                email: r.email,
                confirmed: r.confirmed,
                source: r.source,
                cert,
            });
        }
        (k, problems)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Certificates holding any of the keys (for signature verification).
    pub fn certs_for(&self, handles: &[KeyHandle]) -> Vec<Arc<Cert>> {
        let mut idx: Vec<usize> = handles
            .iter()
            .filter_map(|h| self.by_keyid.get(&KeyID::from(h)))
            .flatten()
            .copied()
            .collect();
        idx.sort_unstable();
        idx.dedup();
        let mut out: Vec<Arc<Cert>> = Vec::new();
        for i in idx {
            let c = &self.entries[i].cert;
            if !out.iter().any(|o| o.fingerprint() == c.fingerprint()) {
                out.push(c.clone());
            }
        }
        out
    }

    /// SPEC §5.2: the contact a signing certificate authenticates — one it is registered
    /// to and confirmed for, whose address is `from`.
    pub fn bound_contact(&self, primary: &Fingerprint, from: &str) -> Option<ContactId> {
        self.entries
            .iter()
            .find(|e| {
                e.confirmed
                    && e.cert.fingerprint() == *primary
                    && e.email.eq_ignore_ascii_case(from.trim())
            })
            .map(|e| e.contact)
    }

    fn of_contact(&self, contact: ContactId) -> impl Iterator<Item = &Entry> {
        self.by_contact
            .get(&contact)
            .into_iter()
            .flatten()
            .map(|i| &self.entries[*i])
    }

    /// The certificate to encrypt to for `contact`: a usable confirmed one, else a usable
    /// candidate (SPEC §5.4: candidates encrypt replies, never authenticate).
    pub fn recipient_cert(&self, contact: ContactId, now_ms: i64) -> Option<Arc<Cert>> {
        let usable = |e: &&Entry| matches!(cert_state(&e.cert, now_ms), CertState::Usable { .. });
        let confirmed = self
            .of_contact(contact)
            .filter(|e| e.confirmed)
            .find(usable);
        confirmed
            .or_else(|| {
                self.of_contact(contact)
                    .filter(|e| !e.confirmed)
                    .find(usable)
            })
            .map(|e| e.cert.clone())
    }

    pub fn has_usable_key(&self, contact: ContactId, now_ms: i64) -> bool {
        self.recipient_cert(contact, now_ms).is_some()
    }

    /// Whether a coordinator confirmed any certificate for the contact, usable or not: such
    /// a contact expects encrypted mail and never gets content in plaintext.
    pub fn has_confirmed_cert(&self, contact: ContactId) -> bool {
        self.of_contact(contact).any(|e| e.confirmed)
    }

    /// SPEC §5.4: contacts whose last usable certificate stops being usable within
    /// `within_ms` of `now_ms`.
    pub fn expiring(&self, now_ms: i64, within_ms: i64) -> Vec<Expiring> {
        let mut out = Vec::new();
        for (contact, idx) in &self.by_contact {
            let usable: Vec<(Option<i64>, &Entry)> = idx
                .iter()
                .map(|i| &self.entries[*i])
                .filter_map(|e| match cert_state(&e.cert, now_ms) {
                    CertState::Usable { until_ms } => Some((until_ms, e)),
                    _ => None,
                })
                .collect();
            // A certificate that never expires keeps the contact reachable.
            if usable.iter().any(|(u, _)| u.is_none()) {
                continue;
            }
            let last = usable
                .iter()
                .filter_map(|(u, e)| u.map(|u| (u, *e)))
                .max_by_key(|(u, _)| *u);
            if let Some((until, e)) = last.filter(|(u, _)| u - now_ms <= within_ms) {
                out.push(Expiring {
                    contact: *contact,
                    email: e.email.clone(),
                    fingerprint: e.cert.fingerprint().to_hex(),
                    expires_at_ms: until,
                });
            }
        }
        out.sort_by(|a, b| {
            a.expires_at_ms
                .cmp(&b.expires_at_ms)
                .then(a.contact.cmp(&b.contact))
        });
        out
    }
}

/// The policy in force, for callers that need it as a trait object.
pub fn policy() -> &'static dyn Policy {
    &POLICY
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01

    fn record(
        id: i64,
        contact: ContactId,
        email: &str,
        cert: &Cert,
        confirmed: bool,
    ) -> CertRecord {
        CertRecord {
            id,
            contact,
            email: email.into(),
            fingerprint: cert.fingerprint().to_hex(),
            confirmed,
            source: KeySource::Import,
            bytes: to_bytes(cert).expect("bytes"),
        }
    }

    #[test]
    fn generated_gateway_key_signs_and_decrypts() {
        let tsk = generate("casegate <cases@cert.example>", NOW, Some(365)).expect("generate");
        let bytes = armored_secret(&tsk).expect("armor");
        let keys = GatewayKeys::load(bytes.as_bytes(), &[], NOW).expect("load");
        assert!(keys.signer().is_some());
        assert_eq!(keys.decryption_keys().len(), 1);
        assert!(!keys.public_cert().is_tsk());
        assert_eq!(emails(&keys.public_cert(), NOW), vec!["cases@cert.example"]);
        assert!(
            GatewayKeys::load(armored(&tsk).expect("armor").as_bytes(), &[], NOW).is_err(),
            "a public cert is no key"
        );
    }

    #[test]
    fn confirmed_keys_win_and_candidates_only_encrypt() {
        let a = generate("<a@x.example>", NOW, None).expect("a");
        let b = generate("<a@x.example>", NOW, None).expect("b");
        let cache = CertCache::default();
        let (k, problems) = Keyring::build(
            1,
            vec![
                record(1, 7, "a@x.example", &a, false),
                record(2, 7, "a@x.example", &b, true),
            ],
            &cache,
        );
        assert!(problems.is_empty());
        assert_eq!(
            k.recipient_cert(7, NOW).map(|c| c.fingerprint()),
            Some(b.fingerprint())
        );
        assert_eq!(k.bound_contact(&b.fingerprint(), "A@x.example"), Some(7));
        assert_eq!(
            k.bound_contact(&a.fingerprint(), "a@x.example"),
            None,
            "a candidate never authenticates"
        );
        assert_eq!(k.bound_contact(&b.fingerprint(), "other@x.example"), None);
        let handles = vec![KeyHandle::from(
            a.keys().nth(1).expect("subkey").key().keyid(),
        )];
        assert_eq!(k.certs_for(&handles).len(), 1);
    }

    #[test]
    fn expired_and_revoked_certs_are_not_usable_and_expiry_is_announced() {
        let short = generate("<s@x.example>", NOW, Some(10)).expect("short");
        assert!(matches!(
            cert_state(&short, NOW),
            CertState::Usable { until_ms: Some(_) }
        ));
        assert_eq!(
            cert_state(&short, NOW + 11 * 86_400_000),
            CertState::Expired
        );
        let cache = CertCache::default();
        let (k, _) = Keyring::build(1, vec![record(1, 9, "s@x.example", &short, true)], &cache);
        assert_eq!(k.expiring(NOW, 14 * 86_400_000).len(), 1);
        assert!(k.expiring(NOW, 5 * 86_400_000).is_empty());
        assert!(!k.has_usable_key(9, NOW + 11 * 86_400_000));
        assert!(k.has_confirmed_cert(9));
    }
}
