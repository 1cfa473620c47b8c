//! Network namespaces: opening one by path (checked to really be a netns), creating an anonymous
//! one, and running code inside one. Every process that enters a namespace is single-threaded
//! while it does (the hook; the launcher, which forwards signals from its main thread; doctor):
//! the calling thread enters, does the work that must happen inside, and returns before
//! anything else runs, or the process aborts (STYLE.md rule 2).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns, unshare};

use crate::error::{Context, Error, Result};

/// The calling thread's network namespace.
const CURRENT: &str = "/proc/thread-self/ns/net";

/// NSFS_MAGIC from linux/magic.h: the filesystem of /proc/PID/ns/* and their bind mounts.
const NSFS_MAGIC: i64 = 0x6e73_6673;

#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    /// Where it came from, for messages.
    path: PathBuf,
}

impl Netns {
    /// Open a network namespace file (`/proc/PID/ns/net` or a bind mount under /run/netns).
    pub fn open(path: &Path) -> Result<Netns> {
        let file = fs_err::File::open(path).context("cannot open network namespace")?;
        let file: File = file.into();
        let stat = nix::sys::statfs::fstatfs(&file)
            .with_context(|| format!("cannot stat network namespace {}", path.display()))?;
        if stat.filesystem_type().0 as i64 != NSFS_MAGIC {
            crate::bail!(
                "{} is not a namespace file (expected /proc/PID/ns/net or a netns bind mount)",
                path.display()
            );
        }
        // Any namespace type lives on nsfs; only a network namespace is accepted by
        // setns(CLONE_NEWNET), which is checked where we first enter it.
        Ok(Netns {
            fd: file.into(),
            path: path.to_owned(),
        })
    }

    /// Hold this namespace against other ipvlan-hook processes until the guard drops: an
    /// exclusive flock on the namespace file, which every open of it shares. A setup holds it
    /// from before its first link exists until every link carries its container's tag, so a
    /// second setup in the same netns (a pod's containers) never takes the first one's new,
    /// still untagged link for the leftover of a setup cut short.
    pub fn lock(&self) -> Result<Held<'_>> {
        flock(self, libc::LOCK_EX)
            .with_context(|| format!("cannot lock network namespace {}", self.path.display()))?;
        Ok(Held(self))
    }

    /// The network namespace of the calling thread.
    pub fn current() -> Result<Netns> {
        Netns::open(Path::new(CURRENT))
    }

    /// A fresh, empty network namespace, alive as long as the returned handle (or a process
    /// inside it) holds it. The calling thread is back in its own namespace on return.
    pub fn create() -> Result<Netns> {
        let home = Home::here()?;
        unshare(CloneFlags::CLONE_NEWNET).context("cannot create a network namespace")?;
        let ns = Netns::current();
        drop(home);
        Ok(Netns {
            path: PathBuf::from("(new netns)"),
            ..ns?
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Inode of the namespace: identifies it for as long as it lives.
    pub fn inode(&self) -> Result<u64> {
        let st = nix::sys::stat::fstat(&self.fd)
            .with_context(|| format!("cannot stat network namespace {}", self.path.display()))?;
        Ok(st.st_ino)
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Run `f` inside this namespace on the calling thread, then return the thread to the
    /// namespace it came from, also when `f` fails or panics; if that return fails, the process
    /// aborts: nothing may run in the wrong namespace. Only for single-threaded callers.
    pub fn run<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let home = Home::here()?;
        enter(self.fd.as_fd())
            .with_context(|| format!("cannot enter network namespace {}", self.path.display()))?;
        let result = f();
        drop(home);
        result
    }
}

/// A namespace held by `Netns::lock`, let go when dropped (the lock would otherwise last as
/// long as the namespace's descriptor).
pub struct Held<'a>(&'a Netns);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let _ = flock(self.0, libc::LOCK_UN);
    }
}

fn flock(ns: &Netns, op: libc::c_int) -> nix::Result<()> {
    // SAFETY: flock on a descriptor this Netns owns; it touches no memory.
    nix::errno::Errno::result(unsafe { libc::flock(ns.fd.as_raw_fd(), op) }).map(drop)
}

/// The namespace the calling thread was in before it entered another: dropping it returns
/// there, or aborts the process.
struct Home(OwnedFd);

impl Home {
    fn here() -> Result<Home> {
        let file =
            fs_err::File::open(CURRENT).context("cannot open the current network namespace")?;
        Ok(Home(File::from(file).into()))
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if let Err(e) = enter(self.0.as_fd()) {
            crate::log_line(&format!(
                "ipvlan-hook: cannot return to the original network namespace ({e}): aborting\n"
            ));
            std::process::abort();
        }
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn enter(fd: BorrowedFd) -> nix::Result<()> {
    setns(fd, CloneFlags::CLONE_NEWNET)
}

/// Entering namespaces and configuring links needs CAP_SYS_ADMIN and CAP_NET_ADMIN: say so
/// up front instead of failing half-way with EPERM.
pub fn check_privileges(what: &str) -> Result<()> {
    use caps::{CapSet, Capability, has_cap};
    for cap in [Capability::CAP_SYS_ADMIN, Capability::CAP_NET_ADMIN] {
        if !has_cap(None, CapSet::Effective, cap).unwrap_or(false) {
            crate::bail!("{what} needs {cap} (run it as root)");
        }
    }
    Ok(())
}

/// Write a sysctl of the calling thread's network namespace (call it inside `Netns::run`).
/// `key` is slash-separated (`net/ipv6/conf/eth0/disable_ipv6`): interface names may hold dots.
pub fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(key);
    fs_err::write(&path, value).map_err(Error::from)
}
