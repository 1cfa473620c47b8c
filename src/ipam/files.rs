//! The default lease store: plain files, one per leased address, like CNI host-local, but
//! written so that a SIGKILL at any instant leaves no torn file and no address handed out
//! twice, and with a per-container index so release never scans every lease.
//!
//! ```text
//! STATE_DIR/networks/NET/lock             flock'ed for every read-modify-write of NET (0600)
//! STATE_DIR/networks/NET/leases/ADDR      one JSON Lease (ADDR = the address as Rust prints it:
//!                                         10.1.0.7, fd00::7); its existence is what makes ADDR taken
//! STATE_DIR/networks/NET/containers/ID    {"version":1,"addresses":[...]}: the addresses
//!                                         container ID holds on NET, all interfaces
//! STATE_DIR/networks/NET/cursor-SUBNET    last address handed out from pool SUBNET ('/' -> '_',
//!                                         e.g. cursor-10.1.0.0_24); overwritten in place
//! STATE_DIR/trash/                        networks being removed (renamed here, then deleted)
//! ```
//!
//! Writes go to a temp file `.tmp-PID-N` in the target's directory, which is then `link()`ed
//! to its name for a new lease (EEXIST instead of a silent overwrite) or `rename()`d over it for
//! an update. The index is written before the lease file appears, and a lease file is deleted
//! before its index entry: no lease is ever unreachable from its container's index. Readers
//! ignore dot files; `gc` removes leftover temp files and rebuilds indexes from the lease files.
//! Directories are 0755 and files 0644: leases are not secret.
//!
//! Nothing is fsynced, on purpose. A killed process (SIGKILL, OOM, a runtime's hook timeout)
//! cannot tear a file: link and rename are atomic in the page cache. Only a power cut or kernel
//! crash can leave a file empty or stale, and it also kills every container: all leases from
//! before a reboot are stale anyway (the owner's boot id says so), and `gc` removes lease files
//! that cannot be read and date from before this boot. fsync would cost milliseconds on every
//! container start to protect nothing that survives a reboot.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use fs_err as fs;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::leases;
use super::store::{Lease, LeaseEntry, LeaseStore, NetworkLeases, Slot, Taken};
use crate::bail;
use crate::error::{Context, Error, Result};
use crate::fsutil::{TEMP_PREFIX, check_name, lock_file, make_dir, unique_name, write_temp};

const INDEX_VERSION: u32 = 1;

/// Leases as files under a state directory (see the module documentation for the layout).
pub struct LeaseFiles {
    root: PathBuf,
}

impl LeaseFiles {
    /// Nothing is touched until first use; directories are created on demand.
    pub fn new(state_dir: &Path) -> LeaseFiles {
        LeaseFiles {
            root: state_dir.to_path_buf(),
        }
    }

    fn networks_dir(&self) -> PathBuf {
        self.root.join("networks")
    }

    fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }
}

impl LeaseStore for LeaseFiles {
    fn lock(&self, network: &str) -> Result<Box<dyn NetworkLeases + '_>> {
        check_name("network name", network)?;
        let dir = self.networks_dir().join(network);
        let lock_path = dir.join("lock");
        // `remove_network` renames the directory away while holding the lock: whoever was
        // waiting then holds a lock on a file nobody else will open, and must start over.
        for _ in 0..100 {
            make_dir(&dir.join("leases"))?;
            make_dir(&dir.join("containers"))?;
            let file = match lock_file(&lock_path) {
                Ok(f) => f,
                Err(e) if e.errno() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            let held = file
                .metadata()
                .with_context(|| format!("cannot stat {}", lock_path.display()))?;
            match std::fs::metadata(&lock_path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Box::new(Locked {
                        network: network.to_string(),
                        dir,
                        _lock: file,
                    }));
                }
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(
                        Error::from(e).context(format!("cannot stat {}", lock_path.display()))
                    );
                }
            }
        }
        bail!(
            "cannot lock network {network}: {} keeps being removed while waiting for its lock",
            lock_path.display()
        )
    }

    fn networks(&self) -> Result<Vec<String>> {
        let dir = self.networks_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            if let Some(name) = entry
                .file_name()
                .to_str()
                .filter(|n| check_name("network name", n).is_ok())
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn remove_network(&self, network: &str) -> Result<()> {
        check_name("network name", network)?;
        let dir = self.networks_dir().join(network);
        if !exists(&dir)? {
            return Ok(());
        }
        let trash = self.trash_dir();
        make_dir(&trash)?;
        // Renamed away under the lock, so the network vanishes at once and in one piece, even
        // if we are killed while deleting the files.
        let target = trash.join(unique_name());
        {
            let _guard = self.lock(network)?;
            fs::rename(&dir, &target)?;
        }
        // Also what an earlier, killed removal left behind.
        for entry in fs::read_dir(&trash)? {
            let path = entry?.path();
            match std::fs::remove_dir_all(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    return Err(Error::from(e).context(format!("cannot remove {}", path.display())));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// One network, locked until this is dropped (closing the file releases the flock).
struct Locked {
    network: String,
    dir: PathBuf,
    _lock: std::fs::File,
}

/// What a container index file holds.
#[derive(Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    #[serde(default)]
    addresses: Vec<IpAddr>,
}

enum Index {
    Missing,
    Unreadable,
    Addresses(Vec<IpAddr>),
}

/// A lease file's name: its address, or the file's path when the name is not one.
type LeaseName = std::result::Result<IpAddr, PathBuf>;

impl Locked {
    /// What the lease file names say, without reading the files, one at a time (a listing of
    /// 60,000 leases is never held twice): the address of each, or the path of one whose name
    /// is not an address as ipvlan-hook writes it.
    fn lease_names(&self) -> Result<impl Iterator<Item = Result<LeaseName>>> {
        Ok(fs::read_dir(self.leases_dir())?.filter_map(|entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e.into())),
            };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                return None;
            }
            Some(Ok(match name.parse::<IpAddr>() {
                Ok(addr) if addr.to_string() == name => Ok(addr),
                _ => Err(entry.path()),
            }))
        }))
    }

    fn leases_dir(&self) -> PathBuf {
        self.dir.join("leases")
    }

    fn containers_dir(&self) -> PathBuf {
        self.dir.join("containers")
    }

    fn lease_path(&self, addr: IpAddr) -> PathBuf {
        self.leases_dir().join(addr.to_string())
    }

    fn cursor_path(&self, pool: &IpNetwork) -> PathBuf {
        self.dir.join(leases::cursor_name(pool))
    }

    /// A file that exists but cannot be read or parsed is Corrupt, never Free.
    fn read_slot(&self, addr: IpAddr) -> Result<Slot> {
        let path = self.lease_path(addr);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Slot::Free),
            Err(e) => {
                return Ok(Slot::Corrupt {
                    path,
                    reason: format!("cannot read it: {e}"),
                });
            }
        };
        Ok(match leases::decode(&bytes, &self.network, addr) {
            Ok(lease) => Slot::Leased(lease),
            Err(reason) => Slot::Corrupt { path, reason },
        })
    }

    fn load_index(&self, container: &str) -> Result<Index> {
        let text = match std::fs::read_to_string(self.containers_dir().join(container)) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Index::Missing),
            Err(_) => return Ok(Index::Unreadable),
        };
        Ok(match serde_json::from_str::<IndexFile>(&text) {
            Ok(f) if f.version == INDEX_VERSION => Index::Addresses(f.addresses),
            _ => Index::Unreadable,
        })
    }

    /// The addresses indexed for `container`. An unreadable index is rebuilt from the lease
    /// files: slow, but release must never miss a lease.
    fn read_index(&self, container: &str) -> Result<Vec<IpAddr>> {
        Ok(match self.load_index(container)? {
            Index::Missing => Vec::new(),
            Index::Addresses(addrs) => addrs,
            Index::Unreadable => self
                .list()?
                .into_iter()
                .filter_map(|e| match e {
                    LeaseEntry::Lease(l) if l.container == container => Some(l.address),
                    _ => None,
                })
                .collect(),
        })
    }

    /// Replace the index (or delete it when empty).
    fn write_index(&self, container: &str, addrs: &[IpAddr]) -> Result<()> {
        let dir = self.containers_dir();
        let path = dir.join(container);
        if addrs.is_empty() {
            return match fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            };
        }
        let mut addresses = addrs.to_vec();
        addresses.sort();
        addresses.dedup();
        let json = leases::encode(&IndexFile {
            version: INDEX_VERSION,
            addresses,
        })?;
        let tmp = write_temp(&dir, &json, false)?;
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(())
    }

    fn index_without(&self, container: &str, addr: IpAddr) -> Result<()> {
        let mut addrs = self.read_index(container)?;
        addrs.retain(|a| *a != addr);
        self.write_index(container, &addrs)
    }

    /// The lease file part of `create`, after the index names the address.
    fn link_lease(&self, lease: &Lease) -> Result<bool> {
        let dir = self.leases_dir();
        let path = self.lease_path(lease.address);
        let tmp = write_temp(&dir, &leases::encode(lease)?, false)?;
        let linked = fs::hard_link(&tmp, &path);
        // The temp name is ours either way; a leftover is harmless (gc removes it).
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

impl NetworkLeases for Locked {
    fn is_free(&self, addr: IpAddr) -> Result<bool> {
        exists(&self.lease_path(addr)).map(|taken| !taken)
    }

    fn get(&self, addr: IpAddr) -> Result<Slot> {
        self.read_slot(addr)
    }

    fn create(&mut self, lease: &Lease) -> Result<bool> {
        leases::check_writable(lease, &self.network)?;
        if !self.is_free(lease.address)? {
            return Ok(false);
        }
        // Index first: a kill between the two leaves an index entry without a lease (ignored,
        // tidied by gc), never a lease no index leads to.
        let mut addrs = self.read_index(&lease.container)?;
        let indexed = addrs.contains(&lease.address);
        if !indexed {
            addrs.push(lease.address);
            self.write_index(&lease.container, &addrs)?;
        }
        let created = self.link_lease(lease);
        if !matches!(created, Ok(true)) && !indexed {
            // Best effort: an entry without a lease of this container is ignored by every
            // reader and dropped by the next remove or gc.
            let _ = self.index_without(&lease.container, lease.address);
        }
        created
    }

    fn replace(&mut self, lease: &Lease) -> Result<()> {
        match self.read_slot(lease.address)? {
            Slot::Leased(cur) if cur.container == lease.container && cur.ifname == lease.ifname => {
            }
            _ => bail!(
                "cannot update the lease of {} on network {}: it is no longer held by container {} ({})",
                lease.address,
                self.network,
                lease.container,
                lease.ifname
            ),
        }
        let dir = self.leases_dir();
        let tmp = write_temp(&dir, &leases::encode(lease)?, false)?;
        if let Err(e) = fs::rename(&tmp, self.lease_path(lease.address)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(())
    }

    fn remove(&mut self, lease: &Lease) -> Result<()> {
        check_name("container id", &lease.container)?;
        if let Slot::Leased(cur) = self.read_slot(lease.address)?
            && cur.container == lease.container
            && cur.ifname == lease.ifname
        {
            match fs::remove_file(self.lease_path(lease.address)) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        // Entries without a lease file are debris of a killed create: drop them too, so the
        // index goes away with the last lease.
        let mut addrs = self.read_index(&lease.container)?;
        addrs.retain(|a| *a != lease.address);
        let mut kept = Vec::with_capacity(addrs.len());
        for a in addrs {
            if !self.is_free(a)? {
                kept.push(a);
            }
        }
        self.write_index(&lease.container, &kept)
    }

    fn of_container(&self, container: &str) -> Result<Vec<Lease>> {
        check_name("container id", container)?;
        let mut leases = Vec::new();
        for addr in self.read_index(container)? {
            if let Slot::Leased(l) = self.read_slot(addr)?
                && l.container == container
            {
                leases.push(l);
            }
        }
        Ok(leases)
    }

    fn list(&self) -> Result<Vec<LeaseEntry>> {
        let mut out = Vec::new();
        for name in self.lease_names()? {
            match name? {
                Ok(addr) => match self.read_slot(addr)? {
                    Slot::Leased(l) => out.push(LeaseEntry::Lease(l)),
                    Slot::Corrupt { path, reason } => {
                        out.push(LeaseEntry::Corrupt { path, reason })
                    }
                    Slot::Free => {}
                },
                Err(path) => out.push(LeaseEntry::Corrupt {
                    path,
                    reason: "the file name is not an IP address as ipvlan-hook writes it"
                        .to_string(),
                }),
            }
        }
        Ok(out)
    }

    fn taken(&self) -> Result<Taken> {
        // Names that are not addresses block nothing here: `create` still finds their files.
        self.lease_names()?
            .filter_map(|name| name.map(Result::ok).transpose())
            .collect()
    }

    fn cursor(&self, pool: &IpNetwork) -> Option<IpAddr> {
        leases::read_cursor(&self.cursor_path(pool))
    }

    fn set_cursor(&mut self, pool: &IpNetwork, last: IpAddr) {
        leases::write_cursor(&self.cursor_path(pool), last);
    }

    fn tidy(&mut self) -> Result<()> {
        // We hold the lock, so every temp file here belongs to a writer that was killed.
        for dir in [self.dir.clone(), self.leases_dir(), self.containers_dir()] {
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    match fs::remove_file(entry.path()) {
                        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
                        _ => {}
                    }
                }
            }
        }
        // Unreadable lease files from before this boot: torn by the power cut or crash that
        // ended that boot, and their owners died with it.
        let boot = super::owner::boot_time();
        for entry in self.list()? {
            if let LeaseEntry::Corrupt { path, reason } = entry
                && let Some(boot) = boot
                && fs::metadata(&path)?.mtime() < boot as i64
            {
                crate::warn(&format!(
                    "removing unreadable lease file {} from before this boot ({reason})",
                    path.display()
                ));
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
        }
        // Rebuild every index from the lease files, the source of truth.
        let mut wanted: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for entry in self.list()? {
            if let LeaseEntry::Lease(l) = entry
                && check_name("container id", &l.container).is_ok()
            {
                wanted.entry(l.container).or_default().push(l.address);
            }
        }
        for entry in fs::read_dir(self.containers_dir())? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || check_name("container id", &name).is_err() {
                continue;
            }
            let mut want = wanted.remove(&name).unwrap_or_default();
            want.sort();
            if !matches!(self.load_index(&name)?, Index::Addresses(have) if have == want) {
                self.write_index(&name, &want)?;
            }
        }
        for (container, addrs) in wanted {
            self.write_index(&container, &addrs)?;
        }
        Ok(())
    }
}

fn exists(path: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::from(e).context(format!("cannot stat {}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::LEASE_VERSION;
    use super::super::tests::test_dir::TestDir;
    use super::*;
    use crate::ipam::Owner;

    fn lease(container: &str, addr: &str) -> Lease {
        Lease {
            version: LEASE_VERSION,
            network: "net".into(),
            container: container.into(),
            ifname: "eth0".into(),
            address: addr.parse().expect("test address"),
            prefix_len: 24,
            created: 1,
            owner: Owner::default(),
        }
    }

    #[test]
    fn create_is_exclusive_and_indexed() {
        let dir = TestDir::new();
        let store = LeaseFiles::new(dir.path());
        let mut net = store.lock("net").expect("lock");
        assert!(net.create(&lease("a", "10.0.0.2")).expect("create"));
        assert!(!net.create(&lease("b", "10.0.0.2")).expect("create taken"));
        assert!(net.of_container("b").expect("b").is_empty());
        assert!(
            !dir.path().join("networks/net/containers/b").exists(),
            "undone index of b"
        );
        assert_eq!(net.of_container("a").expect("a"), [lease("a", "10.0.0.2")]);
        let index =
            std::fs::read_to_string(dir.path().join("networks/net/containers/a")).expect("index");
        assert_eq!(index, r#"{"version":1,"addresses":["10.0.0.2"]}"#);
        let mode = |p: &str| {
            std::fs::metadata(dir.path().join(p))
                .map(|m| m.mode() & 0o777)
                .expect("mode")
        };
        assert_eq!(
            mode("networks/net/leases/10.0.0.2") & 0o022,
            0,
            "no group/other write"
        );
        assert_eq!(
            mode("networks/net/lock"),
            0o600,
            "only root may hold the lock"
        );
        net.remove(&lease("a", "10.0.0.2")).expect("remove");
        assert!(
            net.is_free("10.0.0.2".parse().expect("addr"))
                .expect("stat")
        );
        assert!(
            !dir.path().join("networks/net/containers/a").exists(),
            "index gone with the last lease"
        );
        net.remove(&lease("a", "10.0.0.2"))
            .expect("remove again is fine");
    }

    #[test]
    fn remove_leaves_other_containers_lease_alone() {
        let dir = TestDir::new();
        let store = LeaseFiles::new(dir.path());
        let mut net = store.lock("net").expect("lock");
        assert!(net.create(&lease("a", "10.0.0.2")).expect("create"));
        net.remove(&lease("b", "10.0.0.2"))
            .expect("remove of a lease b does not hold");
        assert_eq!(net.of_container("a").expect("a").len(), 1);
    }

    #[test]
    fn unreadable_index_is_rebuilt_from_the_leases() {
        let dir = TestDir::new();
        let store = LeaseFiles::new(dir.path());
        let mut net = store.lock("net").expect("lock");
        assert!(net.create(&lease("a", "10.0.0.2")).expect("create"));
        assert!(net.create(&lease("a", "10.0.0.3")).expect("create"));
        std::fs::write(dir.path().join("networks/net/containers/a"), "{torn").expect("tear index");
        assert_eq!(net.of_container("a").expect("a").len(), 2);
        net.tidy().expect("tidy");
        let index =
            std::fs::read_to_string(dir.path().join("networks/net/containers/a")).expect("index");
        assert_eq!(
            index,
            r#"{"version":1,"addresses":["10.0.0.2","10.0.0.3"]}"#
        );
    }

    #[test]
    fn tidy_removes_temp_files_and_stale_index_entries() {
        let dir = TestDir::new();
        let store = LeaseFiles::new(dir.path());
        let mut net = store.lock("net").expect("lock");
        assert!(net.create(&lease("a", "10.0.0.2")).expect("create"));
        let leases = dir.path().join("networks/net/leases");
        std::fs::write(leases.join(".tmp-1-1"), "{\"vers").expect("temp");
        // A create killed between index and lease file.
        std::fs::write(
            dir.path().join("networks/net/containers/b"),
            r#"{"version":1,"addresses":["10.0.0.9"]}"#,
        )
        .expect("stale index");
        assert_eq!(net.list().expect("list").len(), 1, "temp file ignored");
        assert!(net.of_container("b").expect("b").is_empty());
        net.tidy().expect("tidy");
        assert!(!leases.join(".tmp-1-1").exists());
        assert!(!dir.path().join("networks/net/containers/b").exists());
        assert!(dir.path().join("networks/net/containers/a").exists());
    }

    #[test]
    fn bad_records_are_corrupt_not_free() {
        let dir = TestDir::new();
        let store = LeaseFiles::new(dir.path());
        let net = store.lock("net").expect("lock");
        let leases = dir.path().join("networks/net/leases");
        let mut future = lease("a", "10.0.0.3");
        future.version = 2;
        let cases = [
            (
                "10.0.0.2",
                "{\"version\":1,\"netw".to_string(),
                "not valid JSON",
            ),
            (
                "10.0.0.3",
                String::from_utf8(leases::encode(&future).expect("json")).expect("utf8"),
                "lease version 2",
            ),
            (
                "10.0.0.4",
                String::from_utf8(leases::encode(&lease("a", "10.0.0.5")).expect("json"))
                    .expect("utf8"),
                "records address",
            ),
            ("10.0.0.6", r#"{"version":1}"#.to_string(), "not a lease"),
        ];
        for (name, text, reason) in &cases {
            std::fs::write(leases.join(name), text).expect("write bad lease");
            let addr: IpAddr = name.parse().expect("addr");
            assert!(!net.is_free(addr).expect("stat"));
            match net.get(addr).expect("get") {
                Slot::Corrupt { reason: why, .. } => assert!(why.contains(reason), "{name}: {why}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        std::fs::write(leases.join("not-an-ip"), "x").expect("write");
        let corrupt = net
            .list()
            .expect("list")
            .into_iter()
            .filter(|e| matches!(e, LeaseEntry::Corrupt { .. }))
            .count();
        assert_eq!(corrupt, cases.len() + 1);
    }

    #[test]
    fn remove_network_drops_its_state_and_unblocks_waiters() {
        let dir = TestDir::new();
        let store = LeaseFiles::new(dir.path());
        {
            let mut net = store.lock("net").expect("lock");
            assert!(net.create(&lease("a", "10.0.0.2")).expect("create"));
        }
        let waiter = std::thread::scope(|s| {
            let guard = store.lock("net").expect("lock");
            let other = LeaseFiles::new(dir.path());
            let t = s.spawn(move || {
                let mut net = other.lock("net").expect("lock after removal");
                net.create(&lease("b", "10.0.0.2"))
                    .expect("create on the fresh network")
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(guard);
            store.remove_network("net").expect("remove");
            t.join().expect("waiter thread")
        });
        // Either the waiter ran first (its lease was removed with the network) or after (fresh).
        let left = store.lock("net").expect("lock").list().expect("list");
        assert!(left.is_empty() || (waiter && left.len() == 1), "{left:?}");
        store.remove_network("net").expect("remove");
        assert_eq!(store.networks().expect("networks"), Vec::<String>::new());
        store
            .remove_network("net")
            .expect("removing nothing is fine");
        assert_eq!(
            std::fs::read_dir(dir.path().join("trash"))
                .expect("trash")
                .count(),
            0
        );
    }

    #[test]
    fn unsafe_names_never_reach_the_filesystem() {
        let dir = TestDir::new();
        let store = LeaseFiles::new(&dir.path().join("state"));
        for bad in ["..", "a/b", ""] {
            assert!(store.lock(bad).is_err());
            assert!(store.remove_network(bad).is_err());
        }
        assert!(!dir.path().join("state").exists());
        let mut net = store.lock("net").expect("lock");
        assert!(net.of_container("../x").is_err());
        assert!(net.create(&lease("../x", "10.0.0.2")).is_err());
        assert!(
            net.is_free("10.0.0.2".parse().expect("addr"))
                .expect("stat")
        );
    }
}
