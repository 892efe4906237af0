//! OpenPGP opening (pipeline stage 4) of arbitrary mail with a real gateway key: never a
//! panic, never plaintext with a refusal, decompression bounded.
#![no_main]

use casegate::pgp::keyring::{armored_secret, generate, GatewayKeys, Keyring};
use casegate::pgp::open::{open_guarded, routing_inbound, Guard, OpenCtx};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const NOW_MS: i64 = 1_795_000_000_000;

fn gateway() -> &'static GatewayKeys {
    static KEYS: OnceLock<GatewayKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let cert = generate("Gateway <cases@cert.example>", NOW_MS - 86_400_000, None).expect("key");
        let armored = armored_secret(&cert).expect("armor");
        GatewayKeys::load(armored.as_bytes(), &[], NOW_MS).expect("load")
    })
}

fuzz_target!(|raw: &[u8]| {
    let keyring = Keyring::empty(0);
    let ctx = OpenCtx { gateway: Some(gateway()), keyring: &keyring, from: Some("alice@acme.example"), now_ms: NOW_MS };
    let guard = Guard { refused_ciphertexts: Vec::new(), max_plaintext_bytes: 1 << 20 };
    let o = open_guarded(raw, &ctx, &guard);
    if o.protection.refusal.is_some() {
        assert!(o.payload.is_none() && o.text.is_none(), "plaintext released with a refusal");
    }
    if let Some(p) = &o.payload {
        assert!(p.len() <= (1 << 20) * 2, "payload past the limit");
    }
    if let Ok(outer) = casegate::mail::parse::parse(raw) {
        let _ = routing_inbound(&outer, &o);
    }
});
