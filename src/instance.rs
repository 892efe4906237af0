//! Who this process is, for rows that one process holds for a while (mailbox leases,
//! outbox claims, the processing of one stored mail), and whether a holder is certainly
//! gone so that its rows can be taken over at once.

/// `host/boot/pid/random`: where the holder runs and which process it is.
pub(crate) fn holder_id(random: u64) -> String {
    static MACHINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let machine = MACHINE.get_or_init(|| format!("{}/{}", hostname(), boot_id()));
    format!("{machine}/{}/{random:016x}", std::process::id())
}

fn first_line(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().next()?.trim().replace('/', "-");
    (!line.is_empty()).then_some(line)
}

fn hostname() -> String {
    first_line("/proc/sys/kernel/hostname")
        .or_else(|| first_line("/etc/hostname"))
        .unwrap_or_else(|| "unknown-host".into())
}

fn boot_id() -> String {
    first_line("/proc/sys/kernel/random/boot_id").unwrap_or_else(|| "unknown-boot".into())
}

/// Whether process `pid` of this machine exists; `true` when that cannot be told.
pub(crate) fn process_alive(pid: u32) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `holder` is certainly dead: it ran on this machine since this boot (same host and
/// boot id as `me`), is not `me`, and its process no longer exists. Anything else — another
/// machine, an unparsable id, an unknown boot — is presumed alive until its lease expires.
pub(crate) fn holder_is_dead(holder: &str, me: &str, alive: impl Fn(u32) -> bool) -> bool {
    let parts: Vec<&str> = holder.split('/').collect();
    let mine: Vec<&str> = me.split('/').collect();
    let (4, 4) = (parts.len(), mine.len()) else {
        return false;
    };
    let Ok(pid) = parts[2].parse::<u32>() else {
        return false;
    };
    let same_machine =
        parts[0] == mine[0] && parts[1] == mine[1] && !parts[1].starts_with("unknown");
    holder != me && same_machine && pid != std::process::id() && !alive(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_ids_name_host_boot_and_process() {
        let id = holder_id(0xabc);
        let parts: Vec<&str> = id.split('/').collect();
        assert_eq!(parts.len(), 4, "{id}");
        assert_eq!(parts[2], std::process::id().to_string());
        assert_eq!(parts[3], "0000000000000abc");
    }

    #[test]
    fn only_a_gone_process_of_this_machine_is_dead() {
        let me = "hostA/boot1/100/aaaa";
        let gone = |_| false;
        let alive = |_| true;
        assert!(holder_is_dead("hostA/boot1/4242/bbbb", me, gone));
        assert!(
            !holder_is_dead("hostA/boot1/4242/bbbb", me, alive),
            "still running"
        );
        assert!(
            !holder_is_dead("hostB/boot1/4242/bbbb", me, gone),
            "another machine"
        );
        assert!(
            !holder_is_dead("hostA/boot0/4242/bbbb", me, gone),
            "before a reboot: pid may be reused"
        );
        assert!(!holder_is_dead(me, me, gone), "itself");
        assert!(!holder_is_dead("garbage", me, gone));
        assert!(!holder_is_dead("hostA/boot1/x/bbbb", me, gone));
        assert!(!holder_is_dead(
            "hostA/unknown-boot/4242/b",
            "hostA/unknown-boot/1/a",
            gone
        ));
        let own_pid = format!("hostA/boot1/{}/cccc", std::process::id());
        assert!(
            !holder_is_dead(&own_pid, me, gone),
            "another mailbox task of this process"
        );
    }

    #[test]
    fn this_process_is_alive() {
        assert!(process_alive(std::process::id()));
    }
}
