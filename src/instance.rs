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

/// Holders of this process whose work is in progress. A holder id of this process that is
/// not here belongs to work that ended without releasing its rows (a panic, a cancelled
/// future): it is as dead as a holder whose process is gone.
static ACTIVE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Marks `holder` as working in this process until dropped.
#[derive(Debug)]
pub(crate) struct Active(String);

impl Active {
    pub(crate) fn register(holder: &str) -> Active {
        ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).push(holder.to_string());
        Active(holder.to_string())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = active.iter().position(|h| *h == self.0) {
            active.swap_remove(i);
        }
    }
}

/// Whether the work of `holder` has certainly ended: its process on this machine is gone,
/// or it is of this process and no longer [`Active`]. Holders on other machines are
/// presumed alive until their hold expires.
pub(crate) fn work_ended(holder: &str, me: &str) -> bool {
    if holder_is_dead(holder, me, process_alive) {
        return true;
    }
    let own = holder.split('/').nth(2) == Some(std::process::id().to_string().as_str()) && same_machine(holder, me);
    own && !ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|h| h == holder)
}

fn same_machine(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    a.len() == 4 && b.len() == 4 && a[0] == b[0] && a[1] == b[1] && !a[1].starts_with("unknown")
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
    fn work_of_this_process_ends_when_it_is_no_longer_active() {
        let me = holder_id(1);
        let other = holder_id(2);
        assert!(work_ended(&other, &me), "never registered: ended");
        let active = Active::register(&other);
        assert!(!work_ended(&other, &me), "in progress");
        drop(active);
        assert!(work_ended(&other, &me), "dropped (finished, panicked or cancelled)");
        assert!(!work_ended("elsewhere/boot/1/aa", &me), "another machine: until the hold expires");
    }

    #[test]
    fn this_process_is_alive() {
        assert!(process_alive(std::process::id()));
    }
}
