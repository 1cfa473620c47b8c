//! Link-time layout of the binaries (issue 17). The functions a hook runs at every container
//! start and stop (build/hot-symbols.txt, written by build/hot-symbols.sh) go first in .text,
//! together: the kernel maps a binary's pages 64 KiB at a time around each page fault, so code
//! scattered over the whole binary made a setup fault in 44 such windows and hold 3.4 MiB
//! resident; packed, it holds 1.6 MiB and faults a fifth less (docs/benchmark-notes.md).
//!
//! Only lld reads a symbol ordering file: rustc links x86_64-unknown-linux-gnu with its own lld
//! from 1.90 on, unless told otherwise. Names missing from the build (another rustc, features
//! or version) are skipped silently; tests/package.sh fails when the list is stale.

use std::env;
use std::process::Command;

fn main() {
    let list = concat!(env!("CARGO_MANIFEST_DIR"), "/build/hot-symbols.txt");
    println!("cargo:rerun-if-changed={list}");
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu")
        && rustc_minor().is_some_and(|m| m >= 90)
        && !other_linker()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={list}");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// The minor version of the rustc building this crate (1.MINOR.PATCH).
fn rustc_minor() -> Option<u32> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let version = String::from_utf8(out.stdout).ok()?;
    version
        .split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

/// Flags that may take rustc's lld away (`-C linker-features`, `-C link-arg=-fuse-ld=...`,
/// `-C link-self-contained`).
fn other_linker() -> bool {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    ["linker-features", "fuse-ld", "link-self-contained"]
        .iter()
        .any(|f| flags.contains(f))
}
