//! A cheap look at the header block before the mail is parsed: only what stage 1 needs to
//! store the raw bytes (SPEC §3: the raw bytes are stored before anything else happens).
//! Bounded work on any input: at most [`HEADER_SCAN_LIMIT`] bytes are looked at.

/// How much of the mail the scan reads at most.
pub(crate) const HEADER_SCAN_LIMIT: usize = 256 * 1024;

/// The Message-ID (without angle brackets) of the first `Message-ID` header, unfolded
/// (RFC 5322 §2.2.3), or `None` when there is no usable one.
pub fn message_id(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header_block(raw));
    let value = headers(&text).find(|(name, _)| name.eq_ignore_ascii_case("message-id"))?.1;
    msg_id(&value)
}

/// What decides whether two mails of one batch may be processed at the same time: the
/// ids a mail has or refers to (Message-ID, In-Reply-To, References) and its From
/// address. Two mails sharing a key are processed in arrival order: a reply after the
/// mail it answers, a sender's second mail after the first. `barrier` is set for what
/// the scan cannot see into (an encrypted mail's protected headers, RFC 3156 §4;
/// no From): such a mail is processed alone.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct OrderingKeys {
    pub keys: Vec<String>,
    pub barrier: bool,
}

impl OrderingKeys {
    pub(crate) fn conflicts(&self, other: &OrderingKeys) -> bool {
        self.barrier || other.barrier || self.keys.iter().any(|k| other.keys.contains(k))
    }
}

/// At most this many ids of one mail's References take part (the newest).
const ORDERING_REFERENCES: usize = 64;

pub(crate) fn ordering_keys(raw: &[u8]) -> OrderingKeys {
    let text = String::from_utf8_lossy(header_block(raw));
    let mut out = OrderingKeys::default();
    let mut from = false;
    for (name, value) in headers(&text) {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "message-id" | "in-reply-to" | "references" => {
                let ids: Vec<&str> = value.split('<').skip(1).filter_map(|v| v.split('>').next()).collect();
                let newest = ids.len().saturating_sub(ORDERING_REFERENCES);
                out.keys.extend(ids[newest..].iter().map(|id| format!("id:{}", id.trim())));
            }
            "from" => {
                from = true;
                let addr = match (value.rfind('<'), value.rfind('>')) {
                    (Some(a), Some(b)) if a < b => &value[a + 1..b],
                    _ => value.as_str(),
                };
                out.keys.push(format!("from:{}", addr.trim().to_ascii_lowercase()));
            }
            "content-type" => out.barrier |= value.to_ascii_lowercase().contains("multipart/encrypted"),
            _ => {}
        }
    }
    out.barrier |= !from;
    out
}

/// The header fields of a header block, unfolded (RFC 5322 §2.2.3), in order.
fn headers(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).peekable();
    std::iter::from_fn(move || loop {
        let line = lines.next()?;
        let Some((name, value)) = line.split_once(':') else { continue };
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let mut value = value.trim().to_string();
        while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(next.trim());
        }
        return Some((name.trim_end().to_string(), value));
    })
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
    fn ordering_keys_tie_replies_to_what_they_answer_and_mails_to_their_sender() {
        let first = ordering_keys(b"From: Ann <ann@a.example>\r\nMessage-ID: <m1@a.example>\r\n\r\nhi");
        let reply = ordering_keys(b"From: bob@b.example\r\nIn-Reply-To: <m1@a.example>\r\n\r\nre");
        let other = ordering_keys(b"From: carol@c.example\r\nReferences: <x@c.example>\r\n <y@c.example>\r\n\r\n");
        let again = ordering_keys(b"from: ANN@a.example\r\nMessage-ID: <m2@a.example>\r\n\r\nhi");
        assert!(first.conflicts(&reply) && reply.conflicts(&first));
        assert!(first.conflicts(&again), "one sender's mails stay in order");
        assert!(!first.conflicts(&other) && !reply.conflicts(&other));
        assert!(other.keys.contains(&"id:y@c.example".to_string()), "folded References are read");
        let sealed = ordering_keys(b"From: d@d.example\r\nContent-Type: multipart/encrypted;\r\n protocol=x\r\n\r\n");
        assert!(sealed.barrier && sealed.conflicts(&other));
        assert!(ordering_keys(b"Subject: no sender\r\n\r\n").barrier);
    }

    #[test]
    fn agrees_with_the_parser() {
        let raw = b"From: a@b.example\r\nMessage-ID:\r\n\t<x.1@b.example> (comment)\r\n\r\nhi\r\n";
        let parsed = crate::mail::parse::parse(raw).expect("parses");
        assert_eq!(message_id(raw), parsed.message_id);
    }
}
