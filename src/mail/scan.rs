//! A cheap look at the header block before the mail is parsed: only what stage 1 needs to
//! store the raw bytes (SPEC §3: the raw bytes are stored before anything else happens).
//! Bounded work on any input: at most [`HEADER_SCAN_LIMIT`] bytes are looked at.

/// How much of the mail the scan reads at most.
pub(crate) const HEADER_SCAN_LIMIT: usize = 256 * 1024;

/// The Message-ID (without angle brackets) of the first `Message-ID` header, unfolded
/// (RFC 5322 §2.2.3), or `None` when there is no usable one.
pub fn message_id(raw: &[u8]) -> Option<String> {
    let head = header_block(raw);
    let text = String::from_utf8_lossy(head);
    let mut current: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some(v) = current.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some(v) = current.take() {
            return msg_id(&v);
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim_end().eq_ignore_ascii_case("message-id") {
                current = Some(value.trim().to_string());
            }
        }
    }
    current.and_then(|v| msg_id(&v))
}

/// The header block: up to the first empty line, within the scan limit.
fn header_block(raw: &[u8]) -> &[u8] {
    let raw = &raw[..raw.len().min(HEADER_SCAN_LIMIT)];
    let mut start = 0;
    for (i, b) in raw.iter().enumerate() {
        if *b == b'\n' {
            let line = &raw[start..i];
            if line.is_empty() || line == b"\r" {
                return &raw[..start];
            }
            start = i + 1;
        }
    }
    raw
}

/// RFC 5322 §3.6.4 `msg-id`: the first `<...>`; a bare token is accepted as written.
fn msg_id(value: &str) -> Option<String> {
    let id = match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split_whitespace().next().unwrap_or_default(),
    };
    let id = id.trim();
    (!id.is_empty() && id.len() <= 998).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_folded_and_differently_cased_headers() {
        assert_eq!(message_id(b"Subject: x\r\nMessage-ID: <a@b.example>\r\n\r\n"), Some("a@b.example".into()));
        assert_eq!(message_id(b"message-id:\r\n <folded@b.example>\r\nTo: x\r\n\r\n"), Some("folded@b.example".into()));
        assert_eq!(message_id(b"Message-Id: bare@b.example\n\nbody"), Some("bare@b.example".into()));
    }

    #[test]
    fn ignores_the_body_and_empty_values() {
        assert_eq!(message_id(b"Subject: x\r\n\r\nMessage-ID: <body@b.example>\r\n"), None);
        assert_eq!(message_id(b"Message-ID: <>\r\n\r\n"), None);
        assert_eq!(message_id(b""), None);
        assert_eq!(message_id(&[0xff; 10]), None);
    }

    #[test]
    fn agrees_with_the_parser() {
        let raw = b"From: a@b.example\r\nMessage-ID:\r\n\t<x.1@b.example> (comment)\r\n\r\nhi\r\n";
        let parsed = crate::mail::parse::parse(raw).expect("parses");
        assert_eq!(message_id(raw), parsed.message_id);
    }
}
