//! Pure mail handling: parse raw bytes into an [`Inbound`], find case tokens and gateway
//! addresses, classify machine mail, read Authentication-Results.
//!
//! No I/O here: every function takes bytes or values and returns values.

pub mod address;
pub mod auth_results;
pub mod machine;
pub mod parse;
pub mod scan;
pub mod tokens;

use crate::model::Attachment;

/// Limits on the shape of one mail (SPEC §3: bad input never costs unbounded time or
/// memory). A mail past a structural limit is held as `malformed` with the limit named;
/// References beyond `max_references` are dropped (the newest are kept); a body text over
/// `max_body_text_bytes`, or one that is not text, is kept as the attachment `body.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest MIME nesting (multiparts and attached messages). Default 32.
    pub max_mime_depth: usize,
    /// Most MIME parts in all. Default 5000.
    pub max_mime_parts: usize,
    /// Most header fields at the top level. Default 1000.
    pub max_header_fields: usize,
    /// Most To and Cc addresses together. Default 1000.
    pub max_recipients: usize,
    /// How many References ids are read (the newest). Default 100.
    pub max_references: usize,
    /// Largest body text posted as text. Default 1 MiB.
    pub max_body_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_mime_depth: 32,
            max_mime_parts: 5000,
            max_header_fields: 1000,
            max_recipients: 1000,
            max_references: 100,
            max_body_text_bytes: 1024 * 1024,
        }
    }
}

/// One mailbox from an address header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    /// The address as written (`local@domain`), without angle brackets.
    pub address: String,
}

impl Mailbox {
    /// Lowercase address, for comparisons (addresses are matched case-insensitively).
    pub fn key(&self) -> String {
        self.address.to_ascii_lowercase()
    }
    /// Lowercase domain part, empty when there is none.
    pub fn domain(&self) -> String {
        self.address.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default()
    }
}

/// A parsed inbound mail: everything the later stages need, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inbound {
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// The first From mailbox.
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    /// Every `Delivered-To` and `X-Original-To` address.
    pub delivered_to: Vec<String>,
    /// `Return-Path`: `Some("")` for the null return path `<>`.
    pub return_path: Option<String>,
    /// Decoded (RFC 2047) and unfolded (RFC 5322) Subject; empty when absent.
    pub subject: String,
    /// Message-IDs from In-Reply-To, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// Message-IDs from References, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// Every header in order: (name as written, unfolded decoded value).
    pub headers: Vec<(String, String)>,
    /// Top-level `type/subtype`, lowercase.
    pub content_type: String,
    /// The `report-type` parameter of a multipart/report, lowercase.
    pub report_type: Option<String>,
    /// The readable body: text/plain parts joined; HTML converted to text when no plain
    /// part exists. HTML is never rendered or fetched.
    pub text: String,
    /// Attachments, byte-exact; an HTML body is also kept here as `body.html`.
    pub attachments: Vec<Attachment>,
    /// Problems found while parsing that did not prevent it (malformed MIME, bad charset).
    pub warnings: Vec<String>,
    /// The warnings that mean content was lost, cut or could not be separated (broken
    /// transfer encoding, a missing boundary), and limits the mail exceeds: such a mail is
    /// held as `malformed` (docs/routing.md).
    pub damaged: Vec<String>,
}

impl Inbound {
    /// All values of a header, case-insensitive name.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Every recipient address in To, Cc and Delivered-To/X-Original-To, lowercase.
    pub fn recipient_addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = self.to.iter().chain(self.cc.iter()).map(Mailbox::key).collect();
        out.extend(self.delivered_to.iter().map(|a| a.to_ascii_lowercase()));
        out.sort();
        out.dedup();
        out
    }
    /// To and Cc only, lowercase (the people who got the mail directly).
    pub fn direct_recipients(&self) -> Vec<String> {
        let mut out: Vec<String> = self.to.iter().chain(self.cc.iter()).map(Mailbox::key).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The gateway's addresses (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressBook {
    /// Lowercase domain, e.g. `example.org`.
    pub domain: String,
    /// Local part of case addresses, default `cases`.
    pub local_part: String,
    /// Lowercase intake addresses, default `security@<domain>`.
    pub intake: Vec<String>,
    /// Case id prefix, default `VU#`.
    pub case_prefix: String,
}

impl AddressBook {
    /// The letters of the case prefix, lowercase, as used in addresses (`VU#` → `vu`).
    pub fn prefix_letters(&self) -> String {
        self.case_prefix
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    }
    /// `cases@domain`, the From of every outbound message.
    pub fn gateway_address(&self) -> String {
        format!("{}@{}", self.local_part, self.domain)
    }
    /// `cases+<tag>@domain`.
    pub fn tagged(&self, tag: &str) -> String {
        format!("{}+{}@{}", self.local_part, tag, self.domain)
    }
    /// Digits of a case id: `VU#123456` → `123456`.
    pub fn case_digits<'a>(&self, public_id: &'a str) -> &'a str {
        public_id.trim_start_matches(|c: char| !c.is_ascii_digit())
    }
    /// The discussion address of a case: `cases+vu123456@domain`.
    pub fn case_address(&self, public_id: &str) -> String {
        self.tagged(&format!("{}{}", self.prefix_letters(), self.case_digits(public_id)))
    }
    /// The private address of a case: `cases+vu123456-private@domain`.
    pub fn private_address(&self, public_id: &str) -> String {
        self.tagged(&format!("{}{}-private", self.prefix_letters(), self.case_digits(public_id)))
    }
    /// The public id of a case from its digits.
    pub fn case_public_id(&self, digits: &str) -> String {
        format!("{}{}", self.case_prefix, digits)
    }
}
