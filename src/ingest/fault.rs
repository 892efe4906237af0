//! Fault injection for the supervision tests, in debug builds only: a mail with the header
//! `X-Casegate-Fault: task-panic` makes the source task that reads it (a Maildir scan, an
//! IMAP mailbox) panic once per process, before the mail reaches the pipeline. The
//! restarted task then takes the mail like any other. Release builds do nothing.

/// The header value that makes a source task panic.
pub const TASK_PANIC: &str = "task-panic";

/// Whether the header section of `raw` has `X-Casegate-Fault: <value>`.
pub fn has_fault(raw: &[u8], value: &str) -> bool {
    let head = raw
        .split(|b| *b == b'\n')
        .take_while(|l| !l.iter().all(|b| b.is_ascii_whitespace()));
    head.filter_map(|l| std::str::from_utf8(l).ok())
        .filter_map(|l| l.split_once(':'))
        .any(|(name, v)| {
            name.eq_ignore_ascii_case("X-Casegate-Fault") && v.trim().eq_ignore_ascii_case(value)
        })
}

/// Panic (once per process) when `raw` asks for [`TASK_PANIC`].
#[cfg(debug_assertions)]
pub fn source_task(raw: &[u8]) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static FIRED: AtomicBool = AtomicBool::new(false);
    if has_fault(raw, TASK_PANIC) && !FIRED.swap(true, Ordering::SeqCst) {
        panic!("fault injection: X-Casegate-Fault: {TASK_PANIC}");
    }
}

#[cfg(not(debug_assertions))]
pub fn source_task(_raw: &[u8]) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_header_is_found_only_in_the_header_section() {
        assert!(has_fault(
            b"From: a@b\r\nx-casegate-fault:  Task-Panic \r\n\r\nbody\r\n",
            TASK_PANIC
        ));
        assert!(!has_fault(
            b"From: a@b\r\n\r\nX-Casegate-Fault: task-panic\r\n",
            TASK_PANIC
        ));
        assert!(!has_fault(b"X-Casegate-Fault: panic\r\n\r\n", TASK_PANIC));
    }
}
