//! Token extraction: subject tokens, the gateway's own addresses, reply and bounce keys,
//! and RFC 5322 address lists.
#![no_main]

use casegate::mail::tokens::{classify_address, subject_tokens, GatewayAddress, SubjectToken};
use casegate::mail::AddressBook;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let book = AddressBook {
        domain: "cert.example".into(),
        local_part: "cases".into(),
        intake: vec!["security@cert.example".into()],
        case_prefix: "VU#".into(),
    };
    let text = String::from_utf8_lossy(data);
    for t in subject_tokens(&text, &book) {
        match t {
            SubjectToken::Case { public_id } => assert!(public_id.starts_with("VU#") && public_id.len() == 9),
            SubjectToken::Report { public_id } => assert!(public_id.starts_with("VRF#") && public_id.len() == 15),
        }
    }
    match classify_address(&text, &book) {
        Some(GatewayAddress::Reply { key }) => {
            let _ = casegate::replykey::parse_reply_key(SECRET, &key);
        }
        Some(GatewayAddress::Bounce { key }) => {
            let _ = casegate::replykey::parse_bounce_key(SECRET, &key);
        }
        _ => {}
    }
    let decode = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for m in casegate::mail::address::address_list(data, &decode) {
        let (local, domain) = m.address.rsplit_once('@').expect("an address has an @");
        assert!(!local.is_empty() && !domain.is_empty(), "{m:?}");
        assert!(!m.address.contains(['\r', '\n']), "{m:?}");
    }
});
