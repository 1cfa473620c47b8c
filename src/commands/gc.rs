//! `gc`: release the leases of containers that are gone.

use crate::dirs::Dirs;
use crate::error::{Errors, Result};
use crate::ipam::{self, Lease, LeaseFiles, select};

/// Lease files, then (with etcd.json) this host's leases in etcd: each store is collected even
/// when the other fails.
pub fn run(dry_run: bool, dirs: &Dirs) -> Result<()> {
    let verb = if dry_run { "would release" } else { "released" };
    let print = |leases: Vec<Lease>| {
        for l in leases {
            println!(
                "{verb} {} on network {} (container {}, {})",
                l.address, l.network, l.container, l.ifname
            );
        }
    };
    let mut errors = Errors::default();
    match ipam::gc(&LeaseFiles::new(&dirs.state), dry_run) {
        Ok(leases) => print(leases),
        Err(e) => errors.push(e),
    }
    match select::etcd_host_view(dirs).and_then(|store| match store {
        Some(store) => ipam::gc(&*store, dry_run),
        None => Ok(Vec::new()),
    }) {
        Ok(leases) => print(leases),
        Err(e) => errors.push(e.context("gc of etcd leases")),
    }
    errors.finish()
}
