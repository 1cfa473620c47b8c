//! Network namespaces: opening one by path (checked to really be a netns), creating an anonymous
//! one, and running code inside one. `setns` only ever happens on a dedicated, short-lived
//! thread, so no other code (and no async task) runs in a namespace it did not ask for.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use nix::sched::{CloneFlags, setns, unshare};

use crate::error::{Context, Error, Result};

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

    /// The network namespace of the calling thread.
    pub fn current() -> Result<Netns> {
        Netns::open(Path::new("/proc/thread-self/ns/net"))
    }

    /// A fresh, empty network namespace, alive as long as the returned handle (or a process
    /// inside it) holds it.
    pub fn create() -> Result<Netns> {
        on_thread(|| {
            unshare(CloneFlags::CLONE_NEWNET).context("cannot create a network namespace")?;
            let ns = Netns::current()?;
            Ok(Netns {
                path: PathBuf::from("(new netns)"),
                ..ns
            })
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

    /// Run `f` on a new thread that has entered this namespace. The thread ends with `f`, so
    /// nothing ever has to switch back.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        self.run_later(|()| f(), |visit| visit.run_with(()))
    }

    /// `run`, with the thread started now, ahead of need: `here` runs on the calling thread
    /// and may hand `f` its input through the `Visit` it gets (or drop it: `f` never runs).
    /// Under load this makes a visit cheaper: with 64 setups at once, a thread created when
    /// needed cost 1.8-2.1x the `ip -batch` floor, one started ahead 1.5-1.7x
    /// (docs/benchmark-notes.md), likely because a new thread waits longer for a CPU than a
    /// woken one.
    pub fn run_later<I: Send, T: Send, U>(
        &self,
        f: impl FnOnce(I) -> Result<T> + Send,
        here: impl FnOnce(Visit<I, T>) -> U,
    ) -> U {
        let fd = self.fd.as_fd();
        let (to_worker, inbox) = mpsc::sync_channel::<I>(1);
        let (to_caller, outbox) = mpsc::sync_channel::<Result<T>>(1);
        std::thread::scope(|s| {
            s.spawn(move || {
                let entered = enter(fd).with_context(|| {
                    format!("cannot enter network namespace {}", self.path.display())
                });
                if let Ok(input) = inbox.recv() {
                    let _ = to_caller.send(entered.and_then(|()| f(input)));
                }
            });
            here(Visit { to_worker, outbox })
        })
    }
}

/// The way into a namespace `Netns::run_later` prepared.
pub struct Visit<I, T> {
    to_worker: mpsc::SyncSender<I>,
    outbox: mpsc::Receiver<Result<T>>,
}

impl<I, T> Visit<I, T> {
    /// Hand the thread its input; wait for what it made of it.
    pub fn run_with(self, input: I) -> Result<T> {
        let worker_gone = || Error::msg("namespace worker thread panicked");
        self.to_worker.send(input).map_err(|_| worker_gone())?;
        self.outbox.recv().unwrap_or_else(|_| Err(worker_gone()))
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

fn on_thread<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|_| Err(Error::msg("namespace worker thread panicked")))
    })
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
