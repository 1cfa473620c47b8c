//! ipvlan-hook: attach containers to ipvlan (or macvlan) networks the way Docker's ipvlan
//! driver does, from an OCI runtime hook or as a launcher for plain commands.
//!
//! Layout, imports flowing downward only (tests/layout.rs checks it): `cli` parses and
//! dispatches to `commands` (one file per front door or verb: hook, run, network, lease, gc,
//! doctor). `oci` reads the OCI state and annotations; `attach` is the setup/teardown
//! transaction every door ends in. Below it: `network` (definitions, network files, parent
//! links), `ipam` (allocator, lease stores, owners), `etcd` (client and `etcd.json`),
//! `netlink` (every rtnetlink message), `netns`, and the leaves `link` (link vocabulary),
//! `policy`, `dirs`, `fsutil`, `error`.

mod attach;
pub mod cli;
pub mod commands;
mod dirs;
pub mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod fsutil;
pub mod ipam;
mod link;
mod netlink;
mod netns;
pub mod network;
pub mod oci;
pub mod policy;

/// Progress for operators, on stderr: runtimes may discard a hook's stdout.
pub fn info(msg: &str) {
    log_line(&format!("ipvlan-hook: {msg}\n"));
}

pub fn warn(msg: &str) {
    log_line(&format!("ipvlan-hook: warning: {msg}\n"));
}

/// One write per line (eprintln! makes several): lines of hooks running at once on the same
/// log do not interleave.
pub fn log_line(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// 64 hex digits from the kernel's random pool, like Docker's network ids.
pub fn random_id() -> String {
    let mut buf = [0u8; 32];
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        // Uniqueness, not secrecy, is what matters here.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        buf[..16].copy_from_slice(&seed.to_le_bytes());
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
