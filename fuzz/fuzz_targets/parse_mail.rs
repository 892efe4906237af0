//! Mail parsing (pipeline stage 2) and the OpenPGP shape and ciphertext walk that run on
//! the same raw bytes: never a panic, and the parsed mail keeps its invariants.
#![no_main]

use casegate::mail::parse::{parse_with, ParseError};
use casegate::mail::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    match parse_with(raw, &Limits::default()) {
        Ok(m) => {
            assert!(!m.text.contains('\r'));
            assert!(!m.subject.contains(['\r', '\n']));
            assert!(m.headers.iter().all(|(_, v)| !v.contains(['\r', '\n'])));
            assert!(m.attachments.iter().all(|a| !a.filename.is_empty()));
            assert!(m.damaged.iter().all(|d| m.warnings.contains(d) || d.contains("limit") || d.contains("deeper")));
            assert!(m.references.len() <= Limits::default().max_references);
            if let Some(from) = &m.from {
                assert!(from.address.contains('@') && !from.address.contains(['\r', '\n']));
            }
        }
        Err(ParseError::Empty) => assert!(raw.iter().all(u8::is_ascii_whitespace)),
        Err(ParseError::NoHeaders(_)) => {}
    }
    let _ = casegate::pgp::mime::shape(raw);
    let _ = casegate::pgp::open::ciphertext_hashes(raw);
});
