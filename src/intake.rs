//! Report intake (SPEC §8): whether, and to which address, a new report is acknowledged.
//! The acknowledgement is an automatic response (RFC 3834): anyone can forge the From of a
//! mail to the security address, so the gateway answers only senders it can trust to be
//! who they say, never its own domain, never mailing lists, and always to a bare address.
//!
//! Pure; the rate limits (per sender, global) are applied when the report is stored.

use crate::config::AckPolicy;
use crate::mail::{AddressBook, Inbound};

/// The bare, lowercase address that gets the acknowledgement of a report from `inb`, or
/// `None` when none is sent. `authenticated`: a trusted DMARC pass for the From domain, or
/// a good signature over the whole mail by a certificate with the From address — also for
/// a reporter the gateway does not know yet.
pub(crate) fn acknowledgement_to(inb: &Inbound, authenticated: bool, book: &AddressBook, policy: AckPolicy) -> Option<String> {
    let from = inb.from.as_ref()?.key();
    let (_, domain) = from.rsplit_once('@')?;
    if domain.is_empty() || is_ours(domain, book) || suppresses_responses(inb) {
        return None;
    }
    match policy {
        AckPolicy::None => None,
        AckPolicy::Authenticated if !authenticated => None,
        AckPolicy::Authenticated | AckPolicy::All => Some(from),
    }
}

/// The gateway's domain and its sub-domains: answering them would answer ourselves.
fn is_ours(domain: &str, book: &AddressBook) -> bool {
    let ours = book.domain.trim_end_matches('.');
    let domain = domain.trim_end_matches('.');
    domain.eq_ignore_ascii_case(ours) || domain.to_ascii_lowercase().ends_with(&format!(".{}", ours.to_ascii_lowercase()))
}

/// RFC 3834 §2: no automatic response to mail from a list (`List-Id`, `List-Post`,
/// `List-Unsubscribe`) or marked `Precedence: list|bulk|junk`.
fn suppresses_responses(inb: &Inbound) -> bool {
    let listed = ["List-Id", "List-Post", "List-Unsubscribe"].iter().any(|h| inb.header_values(h).next().is_some());
    let precedence = inb
        .header_values("Precedence")
        .any(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "list" | "bulk" | "junk"));
    listed || precedence
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::Mailbox;

    fn book() -> AddressBook {
        AddressBook { domain: "cert.example".into(), local_part: "cases".into(), intake: vec!["security@cert.example".into()], case_prefix: "VU#".into() }
    }

    fn from(addr: &str, name: Option<&str>) -> Inbound {
        Inbound { from: Some(Mailbox { name: name.map(str::to_string), address: addr.into() }), ..Default::default() }
    }

    #[test]
    fn only_trusted_senders_outside_our_domain_by_default() {
        let b = book();
        let p = AckPolicy::Authenticated;
        let r = from("Reporter@Example.NET", Some("Evil <x@victim.example>"));
        assert_eq!(acknowledgement_to(&r, true, &b, p), Some("reporter@example.net".into()));
        assert_eq!(acknowledgement_to(&r, true, &b, p), Some("reporter@example.net".into()));
        assert_eq!(acknowledgement_to(&r, false, &b, p), None, "unauthenticated From can be forged");
        assert_eq!(acknowledgement_to(&r, false, &b, AckPolicy::All), Some("reporter@example.net".into()));
        assert_eq!(acknowledgement_to(&r, true, &b, AckPolicy::None), None);
        for ours in ["cases@cert.example", "security@CERT.example", "x@mx.cert.example"] {
            assert_eq!(acknowledgement_to(&from(ours, None), true, &b, AckPolicy::All), None, "{ours}");
        }
        assert_eq!(acknowledgement_to(&from("x@notcert.example", None), true, &b, p), Some("x@notcert.example".into()));
    }

    #[test]
    fn lists_and_bulk_mail_get_no_answer() {
        let b = book();
        let mut r = from("r@example.net", None);
        r.headers.push(("Precedence".into(), "list".into()));
        assert_eq!(acknowledgement_to(&r, true, &b, AckPolicy::All), None);
        let mut r = from("r@example.net", None);
        r.headers.push(("List-Id".into(), "<vendors.lists.example>".into()));
        assert_eq!(acknowledgement_to(&r, true, &b, AckPolicy::All), None);
    }
}
