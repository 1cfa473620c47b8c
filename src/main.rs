//! The `ipvlan-hook` binary. Its `main` is the C one: runtimes start this process at every
//! container start and stop, and std's own start-up (looking up the main thread's stack in
//! /proc/self/maps, an alternate signal stack to report stack overflows) cost a hook with
//! nothing to do a tenth of its time (docs/benchmark-notes.md). What of it a hook needs is
//! `prepare`. Arguments still come from std, which reads them from glibc at load time. A test
//! build (`cargo test --all-targets` builds one of every binary) keeps the harness's `main`.
#![cfg_attr(not(test), no_main)]
#![cfg(not(test))]

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::stat::Mode;

#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    prepare();
    std::process::exit(ipvlan_hook::cli::main(std::env::args_os()));
}

/// What std's start-up does that a hook relies on. Descriptors 0-2 open (on /dev/null if a
/// runtime closed one), so no file the hook opens becomes its stdout or stderr. SIGPIPE ignored,
/// so a runtime that stopped reading the hook's output makes a write fail instead of killing the
/// hook half-way through a setup, before its rollback.
fn prepare() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads the descriptor's flags; a closed one fails with EBADF.
        let closed =
            unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 && Errno::last() == Errno::EBADF;
        // The lowest free number: `fd` itself, as the ones below it are open.
        if closed
            && open("/dev/null", OFlag::O_RDWR, Mode::empty())
                .map(std::os::fd::IntoRawFd::into_raw_fd)
                != Ok(fd)
        {
            std::process::abort();
        }
    }
    // SAFETY: no other thread exists, and ignoring a signal runs no handler code.
    if unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.is_err() {
        std::process::abort();
    }
}
