//! IPAM: which container interface holds which address on which network.
//!
//! `allocator` is pure address arithmetic (ranges, reserved addresses, round-robin order);
//! `store` defines the lease record and the small store interface; `files` is the default
//! store (one file per address, layout documented there) and `etcd` the cluster-wide one, both
//! built on `leases` (the record's encoding, the cursor); `select` picks a network's store;
//! `owner` records who holds a lease so `gc` can reclaim leases of containers that are gone.
//! This module glues them: every
//! check-and-write runs under the network's lock, and taking an address is a single
//! create-if-free operation of the store.
//!
//! Semantics, chosen to match Docker where it has an opinion:
//! - one lease per (container, interface, family) per network; `allocate` is idempotent and
//!   returns the leases already held, moved to a new static address if that was requested;
//! - static addresses must lie in a subnet (ip_range only limits dynamic allocation) and must
//!   not be the network address, the IPv4 broadcast or a gateway;
//! - dynamic allocation takes the first pool of the family with room, round-robin from the
//!   last address handed out, so a released address is not reused at once unless asked for;
//! - a failed allocation leaves nothing half-allocated behind.

mod allocator;
#[cfg(feature = "etcd")]
mod etcd;
mod files;
mod leases;
mod owner;
pub(crate) mod select;
mod store;

use std::net::IpAddr;

use crate::fsutil::check_name;
use crate::network::Network;
pub use allocator::Pool;
use allocator::{Family, subnets_text};
#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;
pub use files::LeaseFiles;
pub use owner::Owner;
pub use store::{LEASE_VERSION, Lease, LeaseEntry, LeaseStore, NetworkLeases, Slot, Taken};

use crate::bail;
use crate::error::{Error, Errors, Result};

/// What a container interface needs from a network.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub network: &'a str,
    pub container: &'a str,
    pub ifname: &'a str,
    pub pools: Vec<Pool>,
    /// Which families to lease (`Request::new` sets them from the network's subnets).
    pub want_v4: bool,
    pub want_v6: bool,
    pub static_v4: Option<IpAddr>,
    pub static_v6: Option<IpAddr>,
    pub owner: Owner,
}

impl<'a> Request<'a> {
    /// A dynamic address of every family `net` has, for interface `ifname` of `container`.
    pub fn new(net: &'a Network, container: &'a str, ifname: &'a str, owner: Owner) -> Self {
        Request {
            network: &net.name,
            container,
            ifname,
            pools: pools(net),
            want_v4: net.has_family(false),
            want_v6: net.has_family(true),
            static_v4: None,
            static_v6: None,
            owner,
        }
    }

    /// The families asked for, each static address with the pool it lies in: checked once,
    /// before anything is locked, and passed down from there.
    fn asks(&self) -> Result<Vec<Ask<'_>>> {
        let mut asks = Vec::new();
        for (family, want, wanted) in [
            (Family::V4, self.want_v4, self.static_v4),
            (Family::V6, self.want_v6, self.static_v6),
        ] {
            let wanted = match wanted {
                Some(addr) if Family::of(addr) != family => bail!(
                    "requested {family} address {addr} for container {} is not an {family} address",
                    self.container
                ),
                Some(addr) => Some((
                    addr,
                    allocator::static_pool(self.network, &self.pools, addr)?,
                )),
                None => None,
            };
            if want || wanted.is_some() {
                asks.push(Ask { family, wanted });
            }
        }
        Ok(asks)
    }
}

/// One family a request leases: any free address, or the static one and its pool.
struct Ask<'p> {
    family: Family,
    wanted: Option<(IpAddr, &'p Pool)>,
}

/// The address pools of a network, as IPAM sees them.
pub(crate) fn pools(net: &Network) -> Vec<Pool> {
    net.subnets
        .iter()
        .map(|s| Pool {
            subnet: s.subnet,
            gateway: s.gateway,
            ip_range: s.ip_range,
            aux: s.aux_addresses.values().copied().collect(),
        })
        .collect()
}

/// Lease one address per requested family for `req.container`/`req.ifname`, or return the ones
/// it already holds (recording the new owner, e.g. after an engine restart). A family that is
/// no longer requested is released.
pub fn allocate(store: &dyn LeaseStore, req: &Request) -> Result<Vec<Lease>> {
    check_name("container id", req.container)?;
    let asks = req.asks()?;
    let mut net = store.lock(req.network)?;
    let mut undo = Undo::default();
    match take_all(&mut *net, req, &asks, &mut undo) {
        Ok(leases) => Ok(leases),
        Err(err) => {
            let mut errors = Vec::new();
            for lease in &undo.created {
                if let Err(e) = net.remove(lease) {
                    errors.push(e.context(format!(
                        "rollback: cannot release {} on network {}",
                        lease.address, lease.network
                    )));
                }
            }
            for old in &undo.refreshed {
                if let Err(e) = net.replace(old) {
                    errors.push(e.context(format!(
                        "rollback: cannot restore the owner of {} on network {}",
                        old.address, old.network
                    )));
                }
            }
            Err(Error::join(err, errors))
        }
    }
}

/// What a failed `take_all` undoes: the leases it created, and the previous records of the
/// leases it kept but gave a new owner.
#[derive(Default)]
struct Undo {
    created: Vec<Lease>,
    refreshed: Vec<Lease>,
}

/// The body of `allocate`; every change it makes is recorded in `undo`, so the caller can
/// revert them when a later step fails.
fn take_all(
    net: &mut dyn NetworkLeases,
    req: &Request,
    asks: &[Ask],
    undo: &mut Undo,
) -> Result<Vec<Lease>> {
    let mut held: Vec<Lease> = net
        .of_container(req.container)?
        .into_iter()
        .filter(|l| l.ifname == req.ifname)
        .collect();
    // Kept leases get their new owner first: the old one is dead after a restart under the
    // same id, and a full family below collects the leases of dead owners.
    let mut slots = Vec::new();
    for ask in asks {
        // Kept: the requested static address, or without one any address still valid; with
        // the pool it lies in.
        let keep = held
            .iter()
            .enumerate()
            .filter(|(_, l)| Family::of(l.address) == ask.family)
            .find_map(|(i, l)| match ask.wanted {
                Some((addr, pool)) => (l.address == addr).then_some((i, pool)),
                None => allocator::static_pool(req.network, &req.pools, l.address)
                    .ok()
                    .map(|pool| (i, pool)),
            });
        let kept = match keep {
            Some((i, pool)) => Some(refresh(net, req, held.remove(i), pool, undo)?),
            None => None,
        };
        slots.push((ask, kept));
    }
    let mut result = Vec::new();
    for (ask, kept) in slots {
        let lease = match kept {
            Some(lease) => lease,
            None => {
                let lease = take(net, req, ask)?;
                undo.created.push(lease.clone());
                lease
            }
        };
        result.push(lease);
    }
    // What no family kept is obsolete, and goes only once everything new is in place: a
    // failure above keeps it.
    for lease in &held {
        net.remove(lease)?;
    }
    Ok(result)
}

/// A kept lease with the request's owner and its pool's current prefix, stored if that
/// changed anything.
fn refresh(
    net: &mut dyn NetworkLeases,
    req: &Request,
    old: Lease,
    pool: &Pool,
    undo: &mut Undo,
) -> Result<Lease> {
    let mut lease = old.clone();
    lease.owner = req.owner.clone();
    lease.prefix_len = pool.subnet.prefix();
    if lease != old {
        net.replace(&lease)?;
        undo.refreshed.push(old);
    }
    Ok(lease)
}

/// Candidates checked one by one before `take` lists the stored addresses instead.
const LIST_AFTER: usize = 32;

/// Lease the static address asked for, or the next free one of the family.
fn take(net: &mut dyn NetworkLeases, req: &Request, ask: &Ask) -> Result<Lease> {
    let family = ask.family;
    let lease = |address: IpAddr, prefix_len: u8| Lease {
        version: LEASE_VERSION,
        network: req.network.to_string(),
        container: req.container.to_string(),
        ifname: req.ifname.to_string(),
        address,
        prefix_len,
        created: now(),
        owner: req.owner.clone(),
    };
    if let Some((addr, pool)) = ask.wanted {
        let new = lease(addr, pool.subnet.prefix());
        if matches!(net.get(addr)?, Slot::Free) && net.create(&new)? {
            // Static addresses taken in order (a scripted fill) keep the cursor in step, so the
            // next dynamic allocation does not have to step over all of them.
            if allocator::candidates(pool, net.cursor(&pool.subnet)).next() == Some(addr) {
                net.set_cursor(&pool.subnet, addr);
            }
            return Ok(new);
        }
        return Err(taken(req.network, addr, net.get(addr)?));
    }
    if !req.pools.iter().any(|p| p.family() == family) {
        bail!(
            "network {} has no {family} subnet to allocate an address from",
            req.network
        );
    }
    // A full network first collects the leases of containers that are gone (a crash, a
    // reboot), so they can never starve it; only then does it give up.
    let mut collected = false;
    loop {
        for pool in req.pools.iter().filter(|p| p.family() == family) {
            let mut listed: Option<Taken> = None;
            for (i, addr) in allocator::candidates(pool, net.cursor(&pool.subnet)).enumerate() {
                // The cheap check first: with thousands of leases, most candidates are taken.
                // After a run of taken ones (a lost cursor, a nearly full range), one listing
                // of the stored addresses beats a lookup per candidate (a setup with the cursor
                // lost at 60,000 leases: 71 ms against 209 ms, bench/run.sh).
                if i == LIST_AFTER {
                    listed = Some(net.taken()?);
                }
                let free = match &listed {
                    Some(taken) => !taken.contains(&addr),
                    None => net.is_free(addr)?,
                };
                if !free {
                    continue;
                }
                let new = lease(addr, pool.subnet.prefix());
                if net.create(&new)? {
                    net.set_cursor(&pool.subnet, addr);
                    return Ok(new);
                }
            }
        }
        if collected || collect_dead(net, false)?.is_empty() {
            break;
        }
        collected = true;
    }
    bail!(
        "no free {family} address left on network {} (subnets {}): release leases ('ipvlan-hook gc') or add a subnet",
        req.network,
        subnets_text(&req.pools, family)
    )
}

/// Addresses a network keeps for itself, one per family: its host-access link's
/// (network/host_access.rs). They are leases of `holder`, an id no container can have, with no
/// owner, so gc never collects them and dynamic allocation steps over them.
#[derive(Clone, Debug)]
pub struct Reservation<'a> {
    pub network: &'a str,
    pub holder: &'a str,
    /// The link that carries them, for `lease ls`.
    pub ifname: &'a str,
    pub pools: &'a [Pool],
    /// Addresses asked for; families without one get the highest free address of their first
    /// subnet outside its ip_range (`allocator::reserve_candidates`).
    pub wanted: &'a [IpAddr],
}

/// Reserve the addresses of `r`, or return those `r.holder` holds already.
pub fn reserve(store: &dyn LeaseStore, r: &Reservation) -> Result<Vec<Lease>> {
    check_name("reservation holder", r.holder)?;
    for addr in r.wanted {
        allocator::static_pool(r.network, r.pools, *addr)?;
    }
    let mut net = store.lock(r.network)?;
    let held = net.of_container(r.holder)?;
    let mut created: Vec<Lease> = Vec::new();
    let mut result = Vec::new();
    for family in [Family::V4, Family::V6] {
        if !r.pools.iter().any(|p| p.family() == family) {
            continue;
        }
        let wanted = r.wanted.iter().find(|a| Family::of(**a) == family);
        let kept = held
            .iter()
            .find(|l| Family::of(l.address) == family && wanted.is_none_or(|w| *w == l.address));
        if let Some(lease) = kept {
            result.push(lease.clone());
            continue;
        }
        match reserve_one(&mut *net, r, family, wanted.copied()) {
            Ok(lease) => {
                created.push(lease.clone());
                result.push(lease);
            }
            Err(err) => {
                let mut errors = Vec::new();
                for lease in &created {
                    if let Err(e) = net.remove(lease) {
                        errors.push(e.context(format!(
                            "rollback: cannot release {} on network {}",
                            lease.address, r.network
                        )));
                    }
                }
                return Err(Error::join(err, errors));
            }
        }
    }
    Ok(result)
}

fn reserve_one(
    net: &mut dyn NetworkLeases,
    r: &Reservation,
    family: Family,
    wanted: Option<IpAddr>,
) -> Result<Lease> {
    let lease = |address: IpAddr, pool: &Pool| Lease {
        version: LEASE_VERSION,
        network: r.network.to_string(),
        container: r.holder.to_string(),
        ifname: r.ifname.to_string(),
        address,
        prefix_len: pool.subnet.prefix(),
        created: now(),
        owner: Owner::default(),
    };
    if let Some(addr) = wanted {
        let new = lease(addr, allocator::static_pool(r.network, r.pools, addr)?);
        if net.create(&new)? {
            return Ok(new);
        }
        return Err(taken(r.network, addr, net.get(addr)?));
    }
    for pool in r.pools.iter().filter(|p| p.family() == family) {
        for addr in allocator::reserve_candidates(pool) {
            let new = lease(addr, pool);
            if net.is_free(addr)? && net.create(&new)? {
                return Ok(new);
            }
        }
    }
    bail!(
        "no free {family} address left on network {} (subnets {}) to reserve for {}",
        r.network,
        subnets_text(r.pools, family),
        r.holder
    )
}

/// Why a requested static address cannot be had.
fn taken(network: &str, addr: IpAddr, slot: Slot) -> Error {
    Error::msg(match slot {
        Slot::Leased(l) => format!(
            "{addr} is leased to container {} on network {network} (release it with 'ipvlan-hook gc' if that container is gone)",
            l.container
        ),
        Slot::Corrupt { path, reason } => format!(
            "{addr} on network {network} is blocked by the unreadable lease file {} ({reason}): delete that file if no container uses {addr}",
            path.display()
        ),
        Slot::Free => format!(
            "{addr} on network {network} was taken by another allocation at the same moment: try again"
        ),
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Release every lease of `container` on every network. Idempotent; keeps going past errors
/// and reports them all. Reads one index per network, never the lease files of others.
pub fn release(store: &dyn LeaseStore, container: &str) -> Result<Vec<Lease>> {
    release_where(store, container, None, |_| true)
}

/// `release`, of one interface of the container on one network only (`network disconnect`,
/// a CNI DEL, or the rollback of one attachment among several).
pub fn release_interface(
    store: &dyn LeaseStore,
    container: &str,
    network: &str,
    ifname: &str,
) -> Result<Vec<Lease>> {
    check_name("network name", network)?;
    release_where(store, container, Some(network), |l| l.ifname == ifname)
}

/// The leases of `container` that `wanted` picks, on `network` or on every network.
fn release_where(
    store: &dyn LeaseStore,
    container: &str,
    network: Option<&str>,
    wanted: impl Fn(&Lease) -> bool,
) -> Result<Vec<Lease>> {
    check_name("container id", container)?;
    let mut released = Vec::new();
    let mut errors = Errors::default();
    let networks = match network {
        Some(network) => vec![network.to_string()],
        None => store.networks()?,
    };
    for network in networks {
        let leases = store
            .lock(&network)
            .and_then(|net| Ok((net.of_container(container)?, net)));
        let (leases, mut net) = match leases {
            Ok(found) => found,
            Err(e) => {
                errors.push(e.context(format!(
                    "cannot look up the leases of container {container} on network {network}"
                )));
                continue;
            }
        };
        let picked = leases.into_iter().filter(|l| wanted(l));
        remove_each(&mut *net, &network, picked, &mut released, &mut errors);
    }
    errors.finish().map(|()| released)
}

/// Remove `leases` from the locked network, going on past failures: what went into `released`,
/// what failed into `errors`.
fn remove_each(
    net: &mut dyn NetworkLeases,
    network: &str,
    leases: impl IntoIterator<Item = Lease>,
    released: &mut Vec<Lease>,
    errors: &mut Errors,
) {
    for lease in leases {
        match net.remove(&lease) {
            Ok(()) => released.push(lease),
            Err(e) => errors.push(e.context(format!(
                "cannot release {} on network {network}",
                lease.address
            ))),
        }
    }
}

/// Release the leases of `network` that `stale` picks (a runtime's GC names the attachments
/// still valid). Keeps going past errors and reports them all.
pub fn release_matching(
    store: &dyn LeaseStore,
    network: &str,
    stale: impl Fn(&Lease) -> bool,
) -> Result<Vec<Lease>> {
    check_name("network name", network)?;
    let mut net = store.lock(network)?;
    let mut released = Vec::new();
    let mut errors = Errors::default();
    let picked: Vec<Lease> = net
        .list()?
        .into_iter()
        .filter_map(|entry| match entry {
            LeaseEntry::Lease(lease) if stale(&lease) => Some(lease),
            _ => None,
        })
        .collect();
    remove_each(&mut *net, network, picked, &mut released, &mut errors);
    errors.finish().map(|()| released)
}

/// All leases, or those of one network, for `lease ls`; unreadable records are listed too
/// (after the leases), since they keep their address blocked.
pub fn leases(store: &dyn LeaseStore, network: Option<&str>) -> Result<Vec<LeaseEntry>> {
    if let Some(name) = network {
        check_name("network name", name)?;
    }
    let mut networks = store.networks()?;
    networks.retain(|n| network.is_none_or(|name| n == name));
    let mut entries = Vec::new();
    for name in networks {
        entries.extend(store.lock(&name)?.list()?);
    }
    entries.sort_by_cached_key(|e| match e {
        LeaseEntry::Lease(l) => (0, l.network.clone(), Some(l.address), None),
        LeaseEntry::Corrupt { path, .. } => (1, String::new(), None, Some(path.clone())),
    });
    Ok(entries)
}

/// Find leases whose owner is gone and, unless `dry_run`, release them (and clear away debris
/// of killed writers). Unreadable lease files are reported on stderr but never deleted: whether
/// the address is really free is for an operator to decide.
pub fn gc(store: &dyn LeaseStore, dry_run: bool) -> Result<Vec<Lease>> {
    let mut dead = Vec::new();
    let mut errors = Errors::default();
    for network in store.networks()? {
        if let Err(e) = gc_network(store, &network, dry_run, &mut dead) {
            errors.push(e.context(format!("gc of network {network}")));
        }
    }
    dead.sort_by(|a, b| (&a.network, a.address).cmp(&(&b.network, b.address)));
    errors.finish().map(|()| dead)
}

fn gc_network(
    store: &dyn LeaseStore,
    network: &str,
    dry_run: bool,
    dead: &mut Vec<Lease>,
) -> Result<()> {
    let mut net = store.lock(network)?;
    if !dry_run {
        net.tidy()?;
    }
    dead.extend(collect_dead(&mut *net, dry_run)?);
    Ok(())
}

/// The leases of `net` whose owner is gone, released unless `dry_run`. Unreadable records are
/// reported, never released: they keep their address reserved until an operator (or, for files
/// from before this boot, `tidy`) removes them.
fn collect_dead(net: &mut dyn NetworkLeases, dry_run: bool) -> Result<Vec<Lease>> {
    let mut dead = Vec::new();
    for entry in net.list()? {
        match entry {
            LeaseEntry::Lease(lease) if !lease.owner.is_alive() => {
                if !dry_run {
                    net.remove(&lease)?;
                }
                dead.push(lease);
            }
            LeaseEntry::Lease(_) => {}
            LeaseEntry::Corrupt { path, reason } => crate::warn(&format!(
                "unreadable lease file {} ({reason}): it keeps its address reserved; delete it by hand once no container uses that address",
                path.display()
            )),
        }
    }
    Ok(dead)
}

/// Drop all lease state of `network` (`network rm --force`). Nothing there is success.
pub fn remove_network(store: &dyn LeaseStore, network: &str) -> Result<()> {
    store.remove_network(network)
}

#[cfg(test)]
mod tests;
