//! Authentication-Results parsing (RFC 8601) and the DMARC verdict read from a stack of
//! such headers.
#![no_main]

use casegate::mail::auth_results::{dmarc_result, parse};
use casegate::mail::{Inbound, Mailbox};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(r) = parse(&text) {
        assert!(!r.authserv_id.is_empty());
        assert!(r.results.iter().all(|m| !m.method.is_empty() && !m.method.contains('.')));
    }
    let inbound = Inbound {
        from: Some(Mailbox { name: None, address: "alice@vendor.example".into() }),
        headers: text.split('\n').map(|v| ("Authentication-Results".to_string(), v.to_string())).collect(),
        ..Inbound::default()
    };
    let _ = dmarc_result(&inbound, &["mx.example.org".to_string()]);
});
