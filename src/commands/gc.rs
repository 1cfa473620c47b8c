//! `gc`: release the leases of containers that are gone, then put the announcement tables back
//! in line with the leases left.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::dirs::Dirs;
use crate::error::{Context, Error, Errors, Result};
use crate::ipam::{self, Lease, LeaseEntry, LeaseFiles, select};
use crate::netlink::Rtnl;
use crate::network::announce::{self, Announce, Drift};
use crate::network::store::NetworkStore;

/// Lease files, then (with etcd.json) this host's leases in etcd: each store is collected even
/// when the other fails. Then the announcement tables.
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
    match tables(dirs) {
        Ok(tables) => {
            for (announce, leased) in tables {
                match leased.and_then(|l| {
                    let rtnl = Rtnl::current()?;
                    announce::reconcile(&rtnl, &announce, &l, dry_run)
                }) {
                    Ok(drift) => print_drift(&announce, &drift, dry_run),
                    Err(e) => errors.push(e.context(format!("gc of table {}", announce.table))),
                }
            }
        }
        Err(e) => errors.push(e),
    }
    errors.finish()
}

fn print_drift(announce: &Announce, drift: &Drift, dry_run: bool) {
    let (add, remove) = if dry_run {
        ("would add", "would remove")
    } else {
        ("added", "removed")
    };
    for a in &drift.missing {
        println!("{add} route {a} to table {}", announce.table);
    }
    for a in &drift.stale {
        println!("{remove} stale route {a} from table {}", announce.table);
    }
}

/// Addresses leased on this host by live containers, with the index of their network's
/// parent.
pub type Leased = BTreeMap<IpAddr, u32>;

/// Every announcement table of the defined networks, with what it should hold: the addresses
/// leased by live containers on the networks announcing into it (or why that is unknown).
pub fn tables(dirs: &Dirs) -> Result<Vec<(Announce, Result<Leased>)>> {
    let mut tables: BTreeMap<u32, (Announce, Result<Leased>)> = BTreeMap::new();
    let rtnl = Rtnl::current()?;
    for net in NetworkStore::new(&dirs.config).list()? {
        let Some(a) = net.announce else {
            continue;
        };
        let leased = select::for_network(&net, dirs)
            .and_then(|store| ipam::leases(&*store, Some(&net.name)))
            .and_then(|entries| {
                let live: Vec<IpAddr> = entries
                    .into_iter()
                    .filter_map(|e| match e {
                        LeaseEntry::Lease(l) if l.owner.is_alive() => Some(l.address),
                        _ => None,
                    })
                    .collect();
                if live.is_empty() {
                    return Ok(Vec::new());
                }
                let parent = rtnl.link(&net.parent)?.ok_or_else(|| {
                    Error::msg(format!(
                        "parent {} is missing, so its containers' routes cannot be added: create it, or remove the network",
                        net.parent
                    ))
                })?;
                Ok(live.into_iter().map(|a| (a, parent.index)).collect())
            })
            .with_context(|| format!("network {}", net.name));
        let entry = tables
            .entry(a.table)
            .or_insert_with(|| (a, Ok(Leased::new())));
        match (&mut entry.1, leased) {
            (Ok(all), Ok(these)) => all.extend(these),
            (slot @ Ok(_), Err(e)) => *slot = Err(e),
            (Err(_), _) => {}
        }
    }
    Ok(tables.into_values().collect())
}
