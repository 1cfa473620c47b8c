//! A full disk and a read-only state dir, for real: the state dir is a small tmpfs (256 KiB),
//! filled up, then remounted read-only. For the lease-file store, and (feature "etcd") for the
//! etcd store's local state (its lock and cursor files). Run by tests/all.sh: the lease-file
//! case in `cargo test --all-targets`, the etcd one in `cargo test --features etcd --test
//! full_disk`.
//!
//! What is checked: a setup that cannot write fails with one line naming the path, leaves no
//! link and no lease (no temp file either); teardown of containers set up before still works
//! on a full disk (removing needs no space), and on a read-only dir fails in one line naming
//! the path, keeping the lease; once space is back, or the dir is writable again, everything
//! works without manual repair (the same teardown completes, the state dir holds what it held).

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A tmpfs of `size` mounted on `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount");
        assert!(out.status.success(), "mount tmpfs: {}", text(&out.stderr));
        Tmpfs(dir.to_path_buf())
    }

    /// Fill it up: a file that takes every free block.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 4096];
        use std::io::Write;
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        filler
    }

    fn remount(&self, mode: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .output()
            .expect("remount");
        assert!(
            out.status.success(),
            "remount {mode}: {}",
            text(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Every file under `dir` (names relative to it), temp files included.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn no_temp_files(dir: &Path, when: &str) {
    let temps: Vec<String> = files(dir)
        .into_iter()
        .filter(|f| f.rsplit('/').next().is_some_and(|n| n.starts_with(".tmp-")))
        .collect();
    assert!(temps.is_empty(), "{when}: temp files left: {temps:?}");
}

/// A refused setup: one line on stderr, naming a file under `state` and what went wrong;
/// no link in the container.
fn assert_refused_cleanly(out: &std::process::Output, ctr: &Ns, state: &Path, why: &str) {
    assert!(!out.status.success(), "the setup succeeded");
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&state.display().to_string()),
        "names no path in the state dir: {err}"
    );
    assert!(err.contains(why), "{err}");
    assert!(
        !ctr.sh("ip -o link").contains("eth0"),
        "the refused setup left a link"
    );
}

/// The lease-file store on a 256 KiB tmpfs: full, then read-only.
#[test]
fn lease_files_on_a_full_or_read_only_state_dir() {
    if !host_only("lease_files_on_a_full_or_read_only_state_dir") {
        return;
    }
    let host = Host::with_network("full", &["--subnet", "10.84.0.0/24"]);
    let disk = Tmpfs::mount(&host.state, "256k");
    let a = Ns::new();
    assert_ok("setup of a", &host.create("a", &a, ON_NET));
    assert_ok("teardown of a", &host.poststop("a", ON_NET));
    let baseline = files(&host.state);
    let a = Ns::new();
    assert_ok("setup of a", &host.create("a", &a, ON_NET));

    let filler = disk.fill();
    let b = Ns::new();
    let out = host.create("b", &b, ON_NET);
    assert_refused_cleanly(&out, &b, &host.state, "No space left on device");
    eprintln!("full disk, lease files: {}", text(&out.stderr).trim());
    let held = leases(&host);
    assert_eq!(held.len(), 1, "only a's lease: {held:?}");
    assert_eq!(held[0].0, "a");
    no_temp_files(&host.state, "after the refused setup");
    // Teardown of a container set up before: removing its lease needs no space.
    drop(a);
    assert_ok("teardown of a on a full disk", &host.poststop("a", ON_NET));
    assert_eq!(host.lease_count(), 0);

    std::fs::remove_file(filler).expect("free the space");
    let out = host.create("b", &b, ON_NET);
    assert_ok("setup of b once space is back", &out);
    assert!(address(&b).is_some());
    assert_ok("gc", &host.hook(&["gc"]));

    // Read-only: the setup is refused; the teardown of b cannot record the release and says
    // so in one line; once writable again, the same teardown completes.
    disk.remount("ro");
    let c = Ns::new();
    let out = host.create("c", &c, ON_NET);
    assert_refused_cleanly(&out, &c, &host.state, "Read-only file system");
    eprintln!(
        "read-only state dir, lease files: {}",
        text(&out.stderr).trim()
    );
    drop(b);
    let out = host.poststop("b", ON_NET);
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "a release on a read-only dir cannot have happened"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(&host.state.display().to_string()), "{err}");
    disk.remount("rw");
    assert_ok("teardown of b once writable", &host.poststop("b", ON_NET));
    assert_eq!(host.lease_count(), 0);
    assert_ok("setup of c once writable", &host.create("c", &c, ON_NET));
    assert_ok("teardown of c", &host.poststop("c", ON_NET));
    no_temp_files(&host.state, "at the end");
    assert_eq!(files(&host.state), baseline, "files in the state dir");
}

/// The etcd store's local state (STATE_DIR/etcd: lock and cursor) on a 256 KiB tmpfs. The
/// leases are in etcd: a full disk costs only the cursor (best effort), so setups and
/// teardowns go on; read-only refuses a setup before any lease is taken, and a teardown until
/// the dir is writable again.
#[cfg(feature = "etcd")]
#[test]
fn etcd_store_local_state_on_a_full_or_read_only_state_dir() {
    use common::etcd::*;
    let mut etcd = Etcd::start();
    let host = etcd_host(&mut etcd, "fe", "10.85.0.0/24");
    let disk = Tmpfs::mount(&host.state, "256k");
    let a = Ns::new();
    assert_ok("setup of a", &host.create("a", &a, ON_NET));

    let filler = disk.fill();
    // The lock file exists, and the cursor is best effort: nothing to write, so it works.
    let b = Ns::new();
    assert_ok("setup of b on a full disk", &host.create("b", &b, ON_NET));
    assert!(address(&b).is_some());
    no_temp_files(&host.state, "full disk");
    drop(a);
    assert_ok("teardown of a on a full disk", &host.poststop("a", ON_NET));
    std::fs::remove_file(filler).expect("free the space");
    let held = leases(&host);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, "b");

    disk.remount("ro");
    let c = Ns::new();
    let out = host.create("c", &c, ON_NET);
    assert_refused_cleanly(&out, &c, &host.state, "Read-only file system");
    eprintln!(
        "read-only state dir, etcd store: {}",
        text(&out.stderr).trim()
    );
    assert_eq!(
        host.lease_count(),
        1,
        "the refused setup left a lease in etcd"
    );
    // The teardown needs the lock file, opened for writing: it fails in one line naming it,
    // the lease stays in etcd, and the same teardown completes once the dir is writable.
    drop(b);
    let out = host.poststop("b", ON_NET);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(&host.state.display().to_string()), "{err}");
    assert_eq!(host.lease_count(), 1);
    disk.remount("rw");
    assert_ok("teardown of b once writable", &host.poststop("b", ON_NET));
    assert_eq!(host.lease_count(), 0);
    assert_ok("setup of c once writable", &host.create("c", &c, ON_NET));
    assert_ok("teardown of c", &host.poststop("c", ON_NET));
    no_temp_files(&host.state, "at the end");
}
