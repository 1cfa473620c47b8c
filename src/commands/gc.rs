//! `gc`: release the leases of containers that are gone, and put the host-access links and
//! their routes back in line with the leases.

use crate::dirs::Dirs;
use crate::error::{Context, Errors, Result};
use crate::ipam::{self, Lease, LeaseEntry, LeaseFiles, Reservation, select};
use crate::netlink::Rtnl;
use crate::network::store::NetworkStore;
use crate::network::{Network, host_access, parent};

/// Lease files, then (with etcd.json) this host's leases in etcd: each store is collected even
/// when the other fails. Then host access, unless `dry_run`.
pub fn run(dry_run: bool, dirs: &Dirs) -> Result<()> {
    let verb = if dry_run { "would release" } else { "released" };
    let mut released = Vec::new();
    let mut print = |leases: Vec<Lease>| {
        for l in &leases {
            println!(
                "{verb} {} on network {} (container {}, {})",
                l.address, l.network, l.container, l.ifname
            );
        }
        released.extend(leases);
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
    if !dry_run {
        match NetworkStore::new(&dirs.config).list() {
            Ok(nets) => {
                for net in nets.iter().filter(|n| n.host_access.is_some()) {
                    if let Err(e) = repair(net, &released, dirs) {
                        errors.push(e.context(format!("host access of network {}", net.name)));
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    errors.finish()
}

/// The link of `net` made again if missing (and its reservation, if the state was lost), the
/// routes of released leases deleted, the missing routes of the others added.
fn repair(net: &Network, released: &[Lease], dirs: &Dirs) -> Result<()> {
    let Some(ha) = &net.host_access else {
        return Ok(());
    };
    let store = select::for_network(net, dirs)?;
    let holder = host_access::holder(&net.name);
    ipam::reserve(
        &*store,
        &Reservation {
            network: &net.name,
            holder: &holder,
            ifname: &ha.name,
            pools: &ipam::pools(net),
            wanted: &ha.addresses,
        },
    )
    .context("cannot keep its addresses reserved")?;
    let rtnl = Rtnl::current()?;
    let parent = parent::ensure(&rtnl, net)?;
    let Some(shim) = host_access::make(&rtnl, net, &parent)? else {
        return Ok(());
    };
    let gone: Vec<_> = released
        .iter()
        .filter(|l| l.network == net.name)
        .map(|l| l.address)
        .collect();
    host_access::remove_routes(&rtnl, net, &gone)?;
    let held: Vec<_> = ipam::leases(&*store, Some(&net.name))?
        .into_iter()
        .filter_map(|e| match e {
            LeaseEntry::Lease(l) if l.container != holder => Some(l.address),
            _ => None,
        })
        .collect();
    for addr in host_access::repair_routes(&rtnl, net, &shim, &held)? {
        println!(
            "routed {addr} through {} again (host access of network {})",
            shim.name, net.name
        );
    }
    Ok(())
}
