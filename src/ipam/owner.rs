//! Who holds a lease, recorded so that `gc` can later tell whether that container still
//! exists. Poststop may never run (reboot, crashed engine, SIGKILLed hook): without this, such
//! leases leak until the network runs dry, host-local's best-known complaint.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::{Error, Result};

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Owner {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Field 22 of /proc/PID/stat (starttime): a reused pid has another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// Pre-created netns path (bind mount) when the engine made one; it outlives restarts of
    /// the container's process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    /// Inode of that netns, so an unmounted path or a recreated namespace does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_inode: Option<u64>,
    /// /proc/sys/kernel/random/boot_id when the lease was taken: no container outlives a
    /// reboot, and after one pids and start times repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The CNI network (its configuration's `name`) whose runtime made the attachment: that
    /// runtime's GC judges the lease by its list of valid attachments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<String>,
}

impl Owner {
    /// The process `pid` as it is now (pid and start time).
    pub fn of_pid(pid: u32) -> Result<Owner> {
        if pid == 0 {
            bail!("pid 0 is not a process: cannot record the owner of a lease");
        }
        Ok(Owner {
            pid: Some(pid),
            pid_start: Some(start_time(pid)?),
            ..Owner::this_boot()
        })
    }

    /// No process yet, but this boot: what every owner starts from.
    pub fn this_boot() -> Owner {
        Owner {
            boot_id: boot_id().map(str::to_string),
            ..Owner::default()
        }
    }

    /// Could the owner still exist? True if the process with the same start time lives, or the
    /// netns is still mounted (same inode), or nothing was recorded (no evidence: such a lease
    /// is never reclaimed). Anything unclear (permission denied, odd /proc) also counts as
    /// alive: reclaiming a live container's address is far worse than keeping a dead one's.
    pub fn is_alive(&self) -> bool {
        if let (Some(then), Some(now)) = (&self.boot_id, boot_id())
            && then != now
        {
            return false;
        }
        let mut evidence = false;
        if let Some(pid) = self.pid.filter(|p| *p != 0) {
            evidence = true;
            match start_time(pid) {
                Ok(start) if self.pid_start.is_none_or(|s| s == start) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.errno(), Some(libc::ENOENT | libc::ESRCH)) => {}
                Err(_) => return true,
            }
        }
        if let Some(netns) = &self.netns {
            evidence = true;
            match std::fs::metadata(netns) {
                Ok(m) if self.netns_inode.is_none_or(|i| i == m.ino()) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(_) => return true,
            }
        }
        !evidence
    }
}

/// /proc/sys/kernel/random/boot_id: None where /proc does not tell (then nothing is judged by
/// boot).
pub fn boot_id() -> Option<&'static str> {
    static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        Some(id.trim().to_string())
    })
    .as_deref()
}

/// Seconds since the epoch at which this boot started (`btime` of /proc/stat). Apart from
/// `boot_id` because only gc needs it, and /proc/stat is slow to read on a host with many CPUs.
pub fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Field 22 (starttime) of /proc/PID/stat. The command name (field 2) may contain spaces and
/// parentheses, so the fields are counted from the last ')'.
fn start_time(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| match e.raw_os_error() {
        Some(errno) => Error::with_errno(format!("cannot read {path}: {e}"), errno),
        None => Error::msg(format!("cannot read {path}: {e}")),
    })?;
    let after_comm = text.rfind(')').map(|i| &text[i + 1..]).unwrap_or_default();
    // after_comm starts with field 3 (state); starttime is field 22.
    match after_comm
        .split_whitespace()
        .nth(22 - 3)
        .map(str::parse::<u64>)
    {
        Some(Ok(start)) => Ok(start),
        _ => bail!(
            "cannot parse the start time (field 22) in {path}: {:?}",
            text.trim_end()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn own_process_is_alive() {
        let me = Owner::of_pid(std::process::id()).expect("own /proc/PID/stat");
        assert!(me.pid_start.is_some());
        assert!(me.is_alive());
    }

    #[test]
    fn exited_process_is_dead() {
        let mut child = Command::new("true").spawn().expect("spawn true");
        // Recorded before the wait: until reaped, /proc keeps the zombie's stat.
        let owner = Owner::of_pid(child.id()).expect("child's /proc/PID/stat");
        child.wait().expect("wait for true");
        assert!(!owner.is_alive());
    }

    #[test]
    fn reused_pid_is_dead() {
        let me = Owner::of_pid(std::process::id()).expect("own stat");
        let other = Owner {
            pid_start: me.pid_start.map(|s| s + 1),
            ..me
        };
        assert!(!other.is_alive());
    }

    #[test]
    fn owner_from_another_boot_is_dead_even_if_its_pid_lives() {
        let me = Owner::of_pid(std::process::id()).expect("own stat");
        assert!(me.boot_id.is_some());
        let before_reboot = Owner {
            boot_id: Some("00000000-0000-0000-0000-000000000000".into()),
            ..me
        };
        assert!(!before_reboot.is_alive());
    }

    #[test]
    fn no_evidence_is_never_reclaimed() {
        assert!(Owner::default().is_alive());
        assert!(
            Owner {
                pid: Some(0),
                ..Owner::default()
            }
            .is_alive()
        );
    }

    #[test]
    fn netns_path_and_inode() {
        let path = std::env::temp_dir();
        let ino = std::fs::metadata(&path).map(|m| m.ino()).expect("temp dir");
        let held = Owner {
            netns: Some(path.clone()),
            netns_inode: Some(ino),
            ..Owner::default()
        };
        assert!(held.is_alive());
        let replaced = Owner {
            netns: Some(path),
            netns_inode: Some(ino + 1),
            ..Owner::default()
        };
        assert!(!replaced.is_alive());
        let gone = Owner {
            netns: Some("/nonexistent/ipvlan-hook/netns".into()),
            ..Owner::default()
        };
        assert!(!gone.is_alive());
        // A dead process with a still-mounted netns is alive (pre-created netns survives restarts).
        let mut child = Command::new("true").spawn().expect("spawn true");
        let mut owner = Owner::of_pid(child.id()).expect("child's stat");
        child.wait().expect("wait for true");
        owner.netns = Some(std::env::temp_dir());
        assert!(owner.is_alive());
    }

    #[test]
    fn missing_process_error_names_the_file() {
        let err = Owner::of_pid(u32::MAX)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(&format!("/proc/{}/stat", u32::MAX)), "{err}");
        assert!(Owner::of_pid(0).is_err());
    }
}
