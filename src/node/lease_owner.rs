//! Who holds a delivery's lease, said so that a restarted process can recognise its own
//! earlier incarnation's leases.
//!
//! On SQLite one node owns the store, so at start every lease still held is a dead process's
//! (`SqliteStore::take_back_leases`). On PostgreSQL several replicas share the store and a
//! lease may be a live replica's; only leases this machine can show are dead are taken back
//! (`PgStore::take_back_leases`) — the others expire on their own (`retry.lease`) and any
//! replica claims them then. An owner is `<node>@<host>:<pid>:<boot>`: a lease of this host
//! is dead when its process no longer exists, or when it names this process's pid with another
//! boot token (a container restarted with the same pid).

use std::sync::OnceLock;

/// This process's lease owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOwner {
    host: String,
    pid: u32,
    boot: String,
    text: String,
}

impl LeaseOwner {
    /// The owner for this process of node `node`.
    pub fn of_this_process(node: &str) -> LeaseOwner {
        static BOOT: OnceLock<String> = OnceLock::new();
        let boot = BOOT
            .get_or_init(|| format!("{:016x}", fastrand::u64(..)))
            .clone();
        let host = hostname();
        let pid = std::process::id();
        LeaseOwner {
            text: format!("{node}@{host}:{pid}:{boot}"),
            host,
            pid,
            boot,
        }
    }

    /// The text stored in `deliveries.lease_owner`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `other` (a stored lease owner) is a process of this host that is gone. Owners
    /// of other hosts, of an older form, or of a live process are never dead here.
    pub fn is_dead_here(&self, other: &str) -> bool {
        let Some((_, rest)) = other.rsplit_once('@') else {
            return false;
        };
        let mut parts = rest.rsplitn(3, ':');
        let (Some(boot), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            return false;
        };
        if host != self.host {
            return false;
        }
        if pid == self.pid {
            return boot != self.boot;
        }
        !process_exists(pid)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Whether a process `pid` exists on this host (`/proc/<pid>`; where there is no `/proc`,
/// every process is taken to exist, so nothing is taken back).
fn process_exists(pid: u32) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_processes_of_this_host_are_dead() {
        let me = LeaseOwner::of_this_process("gialai");
        assert!(!me.is_dead_here(me.as_str()));
        // The same pid with another boot token: an earlier incarnation.
        let earlier = format!("gialai@{}:{}:0000000000000000", me.host, me.pid);
        assert_eq!(me.is_dead_here(&earlier), me.boot != "0000000000000000");
        // A pid that cannot exist (above pid_max) on this host: dead.
        assert!(me.is_dead_here(&format!("gialai@{}:4294967295:ab", me.host)));
        // Another host, or the old `<node>:<pid>` form: never.
        assert!(!me.is_dead_here("gialai@elsewhere:4294967295:ab"));
        assert!(!me.is_dead_here("gialai:12345"));
        // A live process of this host (pid 1 exists wherever /proc does).
        assert!(!me.is_dead_here(&format!("gialai@{}:1:ab", me.host)));
    }
}
