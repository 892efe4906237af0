//! Wire forms the IMAP source writes: mailbox names in modified UTF-7 and compact UID sets.
//! Pure functions.

use data_encoding::BASE64_NOPAD;

/// A mailbox name as sent on the wire (RFC 3501 §5.1.3, modified UTF-7): printable ASCII
/// stands for itself, `&` becomes `&-`, and every run of other characters is UTF-16BE in
/// modified BASE64 between `&` and `-`.
pub fn encode_mailbox(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if run.is_empty() {
            return;
        }
        let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        // RFC 3501 §5.1.3: modified BASE64, with "," in place of "/" and no padding.
        out.push_str(&BASE64_NOPAD.encode(&bytes).replace('/', ","));
        out.push('-');
        run.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A UID set (RFC 3501 §9 `sequence-set`) for `uids`, with consecutive UIDs as ranges:
/// `[1, 2, 3, 7, 9, 10]` → `1:3,7,9:10`. Order and duplicates in the input do not matter.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end.saturating_add(1) {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn modified_utf7_examples() {
        // RFC 3501 §5.1.3's example.
        assert_eq!(
            encode_mailbox("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(encode_mailbox("INBOX"), "INBOX");
        assert_eq!(encode_mailbox("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(encode_mailbox("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode_mailbox("[Gmail]/All Mail"), "[Gmail]/All Mail");
        assert_eq!(encode_mailbox("😀"), "&2D3eAA-", "a surrogate pair");
        assert_eq!(encode_mailbox(""), "");
    }

    #[test]
    fn uid_sets() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[10, 9, 9, 1]), "1,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(
            uid_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    proptest! {
        #[test]
        fn uid_set_names_exactly_its_uids(uids in proptest::collection::vec(1u32..200, 0..60)) {
            let set = uid_set(&uids);
            let mut named = Vec::new();
            for part in set.split(',').filter(|p| !p.is_empty()) {
                let (a, b) = part.split_once(':').unwrap_or((part, part));
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                prop_assert!(a <= b);
                named.extend(a..=b);
            }
            let mut want = uids.clone();
            want.sort_unstable();
            want.dedup();
            prop_assert_eq!(named, want);
        }

        #[test]
        fn encoded_names_are_printable_ascii(name in "\\PC{0,30}") {
            let e = encode_mailbox(&name);
            prop_assert!(e.bytes().all(|b| (0x20..0x7f).contains(&b)));
            if name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'&') {
                prop_assert_eq!(e, name);
            }
        }
    }
}
