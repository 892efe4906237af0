//! Reply and bounce keys (SPEC §2): `cases+r-<key>@domain` binds (thread, contact);
//! `cases+b-<key>@domain` binds one outbox item (VERP).
//!
//! `<key>` is lowercase base32 (RFC 4648 §6, no padding) of the ids — each as a length byte
//! and its big-endian bytes without leading zeros, so small ids make short keys — followed
//! by a truncated HMAC-SHA256 (RFC 2104) over a purpose label and those bytes. The label
//! keeps a bounce key from being accepted as a reply key and the other way round.

use crate::model::{ContactId, OutboxId, ThreadId};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the HMAC kept: 80 bits, beyond guessing by mail.
const MAC_LEN: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not base32")]
    Encoding,
    #[error("wrong length")]
    Length,
    #[error("bad signature")]
    Signature,
}

fn mac(secret: &[u8], label: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length (RFC 2104 §2), so this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(label);
    m.update(payload);
    m
}

/// Each id as a length byte (1–8) followed by its big-endian bytes without leading zeros.
fn pack(ids: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 9);
    for id in ids {
        let be = id.to_be_bytes();
        let skip = be.iter().take(7).take_while(|b| **b == 0).count();
        out.push((8 - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
    out
}

fn unpack<const N: usize>(mut bytes: &[u8]) -> Option<[i64; N]> {
    let mut out = [0i64; N];
    for slot in out.iter_mut() {
        let (&len, rest) = bytes.split_first()?;
        let len = usize::from(len);
        if !(1..=8).contains(&len) || rest.len() < len {
            return None;
        }
        let mut be = [0u8; 8];
        be[8 - len..].copy_from_slice(&rest[..len]);
        *slot = i64::from_be_bytes(be);
        bytes = &rest[len..];
    }
    bytes.is_empty().then_some(out)
}

fn encode(secret: &[u8], label: &[u8], ids: &[i64]) -> String {
    let mut bytes = pack(ids);
    let tag = mac(secret, label, &bytes).finalize().into_bytes();
    bytes.extend_from_slice(&tag[..MAC_LEN]);
    data_encoding::BASE32_NOPAD.encode(&bytes).to_ascii_lowercase()
}

fn decode<const N: usize>(secret: &[u8], label: &[u8], key: &str) -> Result<[i64; N], KeyError> {
    let upper = key.trim().to_ascii_uppercase();
    let bytes = data_encoding::BASE32_NOPAD.decode(upper.as_bytes()).map_err(|_| KeyError::Encoding)?;
    if bytes.len() < N * 2 + MAC_LEN || bytes.len() > N * 9 + MAC_LEN {
        return Err(KeyError::Length);
    }
    let (payload, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    // Constant-time comparison of the truncated tag, before the payload is interpreted.
    mac(secret, label, payload).verify_truncated_left(tag).map_err(|_| KeyError::Signature)?;
    unpack::<N>(payload).ok_or(KeyError::Length)
}

/// The key of the reply address of `contact` for `thread`.
pub fn reply_key(secret: &[u8], thread: ThreadId, contact: ContactId) -> String {
    encode(secret, b"casegate-reply\0", &[thread, contact])
}

/// Verify a reply key and return (thread, contact).
pub fn parse_reply_key(secret: &[u8], key: &str) -> Result<(ThreadId, ContactId), KeyError> {
    let [thread, contact] = decode::<2>(secret, b"casegate-reply\0", key)?;
    Ok((thread, contact))
}

/// The key of the VERP return path of one outbox item.
pub fn bounce_key(secret: &[u8], outbox: OutboxId) -> String {
    encode(secret, b"casegate-bounce\0", &[outbox])
}

/// Verify a bounce key and return the outbox item id.
pub fn parse_bounce_key(secret: &[u8], key: &str) -> Result<OutboxId, KeyError> {
    let [id] = decode::<1>(secret, b"casegate-bounce\0", key)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn reply_key_round_trips_and_fits_a_local_part() {
        let k = reply_key(S, 42, 7);
        assert_eq!(parse_reply_key(S, &k), Ok((42, 7)));
        assert_eq!(parse_reply_key(S, &k.to_ascii_uppercase()), Ok((42, 7)));
        assert!(k.len() + "cases+r-".len() <= 64, "RFC 5321 §4.5.3.1.1 local part limit");
        assert!(k.len() <= 24, "small ids make short keys: {k}");
        let big = reply_key(S, i64::MAX, i64::MIN);
        assert!(big.len() + "cases+r-".len() <= 64, "{big}");
        assert!(k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    #[test]
    fn tampered_wrong_secret_and_cross_purpose_keys_fail() {
        let k = reply_key(S, 42, 7);
        let mut t: Vec<char> = k.chars().collect();
        t[3] = if t[3] == 'a' { 'b' } else { 'a' };
        let t: String = t.into_iter().collect();
        assert_eq!(parse_reply_key(S, &t), Err(KeyError::Signature));
        assert_eq!(parse_reply_key(b"another secret of some length", &k), Err(KeyError::Signature));
        let b = bounce_key(S, 42);
        assert!(parse_reply_key(S, &b).is_err());
        assert_eq!(parse_bounce_key(S, &b), Ok(42));
        assert_eq!(parse_reply_key(S, "not base32!"), Err(KeyError::Encoding));
        assert_eq!(parse_reply_key(S, "aaaa"), Err(KeyError::Length));
    }

    proptest! {
        #[test]
        fn any_ids_round_trip(t in any::<i64>(), c in any::<i64>()) {
            prop_assert_eq!(parse_reply_key(S, &reply_key(S, t, c)), Ok((t, c)));
        }
        #[test]
        fn garbage_never_panics(s in ".{0,80}") {
            let _ = parse_reply_key(S, &s);
            let _ = parse_bounce_key(S, &s);
        }
    }
}
