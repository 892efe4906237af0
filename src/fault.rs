//! Fault injection for tests, compiled into debug builds only: a mail whose header block
//! carries `X-Casegate-Fault: <kind>` makes the pipeline's parse stage fail in that way, so
//! that tests can show what a poison mail does to ingest. Release builds contain none of it.

/// The header that asks for a fault.
pub(crate) const FAULT_HEADER: &str = "X-Casegate-Fault";

/// Fail as the mail asks: `panic` panics, `abort` ends the process at once (what a stack
/// overflow or an out-of-memory kill does), `slow` takes two seconds. Anything else, or no
/// header, does nothing.
pub(crate) fn inject(raw: &[u8]) {
    match requested(raw).as_deref() {
        Some("panic") => panic!("injected fault: panic while parsing"),
        Some("abort") => std::process::abort(),
        Some("slow") => std::thread::sleep(std::time::Duration::from_secs(2)),
        _ => {}
    }
}

/// The value of the first fault header in the header block, lowercase.
pub(crate) fn requested(raw: &[u8]) -> Option<String> {
    let head_end = find(raw, b"\r\n\r\n").or_else(|| find(raw, b"\n\n")).unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_end]);
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case(FAULT_HEADER).then(|| value.trim().to_ascii_lowercase())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_header_block_asks() {
        assert_eq!(requested(b"Subject: x\r\nX-Casegate-Fault: Panic\r\n\r\nbody"), Some("panic".into()));
        assert_eq!(requested(b"Subject: x\r\n\r\nX-Casegate-Fault: panic\r\n"), None);
        inject(b"Subject: harmless\r\n\r\n");
    }
}
