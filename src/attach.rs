//! Attaching a container's network namespace to its networks, and detaching it: the flow every
//! front door ends in. Setup is one transaction for all of a container's attachments: once an
//! address is leased, any failure deletes every link made and releases every lease taken
//! (crun and podman never call poststop after a failed createRuntime). Teardown never stops
//! early: it does every step and reports every error.
//!
//! The netns is held (`Netns::lock`) for the whole setup. Per attachment, in order: parent
//! link, leases, the slave made straight into the netns under its final name (a temporary one
//! only where that name is taken there); then one visit to the netns for all of them (socket,
//! indexes, replacing what a temporary name stood in for, sysctls); then per attachment:
//! addresses, up with the container id as alias; last the default routes of the winners.

use std::net::IpAddr;

use crate::error::{Context, Error, Errors, Result};
use crate::ipam::{self, Lease, LeaseStore, Owner, Request};
use crate::link::{Driver, LinkKind, Mac};
use crate::netlink::{Link, Rtnl, SlaveSpec};
use crate::netns::{Netns, write_sysctl};
use crate::network::{Network, announce, host_access, parent};

/// What a front door asks for one interface of a container, its network named but not yet
/// loaded: from annotations, `ipvlan-run --network`, `network connect`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttachmentRequest {
    pub network: String,
    pub ifname: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    /// Overrides the network's MTU (default: the parent's).
    pub mtu: Option<u32>,
    /// macvlan only: ipvlan slaves share the parent's MAC address.
    pub mac: Option<Mac>,
    /// Each family's default route comes from the attachment with the highest priority
    /// having that family, the first listed on a tie.
    pub gw_priority: i32,
}

impl AttachmentRequest {
    /// A request for `network` on `ifname`, nothing else asked for yet.
    pub fn new(network: &str, ifname: &str) -> AttachmentRequest {
        AttachmentRequest {
            network: network.to_string(),
            ifname: ifname.to_string(),
            ..Default::default()
        }
    }

    /// Record a static address in the slot of its family; each family takes one.
    pub fn add_ip(&mut self, ip: IpAddr) -> Result<()> {
        let slot = if ip.is_ipv6() {
            &mut self.ipv6
        } else {
            &mut self.ipv4
        };
        if let Some(old) = slot.replace(ip) {
            crate::bail!(
                "two {} addresses ({old} and {ip}) for {} on network {}: an interface gets one per family",
                if ip.is_ipv6() { "IPv6" } else { "IPv4" },
                self.ifname,
                self.network
            );
        }
        Ok(())
    }

    /// The values every door checks the same way: names and the MTU's range.
    pub fn validate(&self) -> Result<()> {
        crate::network::validate_name(&self.network)?;
        crate::network::validate_ifname(&self.ifname)
            .map_err(|e| e.context(format!("network {}", self.network)))?;
        if let Some(mtu) = self.mtu
            && !(68..=65535).contains(&mtu)
        {
            crate::bail!(
                "MTU {mtu} for {} on network {}: use a number from 68 to 65535",
                self.ifname,
                self.network
            );
        }
        Ok(())
    }
}

/// A request with its network loaded and the store of that network's leases.
pub struct Attachment<'a> {
    pub network: &'a Network,
    pub store: &'a dyn LeaseStore,
    pub want: &'a AttachmentRequest,
}

impl<'a> Attachment<'a> {
    /// The attachments of `requests`, each with its network and lease store (same order).
    pub fn zip(
        requests: &'a [AttachmentRequest],
        networks: &'a [Network],
        stores: &'a [Box<dyn LeaseStore>],
    ) -> Vec<Attachment<'a>> {
        requests
            .iter()
            .zip(networks)
            .zip(stores)
            .map(|((want, network), store)| Attachment {
                network,
                store: &**store,
                want,
            })
            .collect()
    }
}

/// Set up every attachment of `container` in `netns`, or none: the leases of each, in order.
pub fn setup(
    rtnl: &Rtnl,
    container: &str,
    owner: &Owner,
    atts: &[Attachment],
    netns: &Netns,
) -> Result<Vec<Vec<Lease>>> {
    check(atts)?;
    let _held = netns.lock()?;
    transaction(rtnl, container, owner, atts, netns)
}

/// Refusals that need no kernel and no store: before anything is made.
fn check(atts: &[Attachment]) -> Result<()> {
    for (i, a) in atts.iter().enumerate() {
        if let Some(other) = atts[..i].iter().find(|o| o.want.ifname == a.want.ifname) {
            crate::bail!(
                "interface {} is asked for twice (networks {} and {}): give each attachment an interface name of its own",
                a.want.ifname,
                other.network.name,
                a.network.name
            );
        }
        for ip in [a.want.ipv4, a.want.ipv6].into_iter().flatten() {
            if a.network.subnet_of(ip).is_none() {
                crate::bail!(
                    "{ip} for {} lies outside every subnet of network {}: choose an address inside one of them (see 'ipvlan-hook network inspect {}')",
                    a.want.ifname,
                    a.network.name,
                    a.network.name
                );
            }
        }
        if let (Some(mac), Driver::Ipvlan) = (a.want.mac, a.network.driver) {
            crate::bail!(
                "MAC address {mac} for {} on network {}: ipvlan interfaces share their parent's MAC address; a MAC address is for macvlan networks",
                a.want.ifname,
                a.network.name
            );
        }
    }
    Ok(())
}

fn transaction(
    rtnl: &Rtnl,
    container: &str,
    owner: &Owner,
    atts: &[Attachment],
    netns: &Netns,
) -> Result<Vec<Vec<Lease>>> {
    let ns_path = netns.path().display().to_string();
    let mut leases = Vec::with_capacity(atts.len());
    let mut shims = Vec::with_capacity(atts.len());
    let mut made = Vec::with_capacity(atts.len());
    let prepared = prepare(
        rtnl,
        container,
        owner,
        atts,
        netns,
        &mut shims,
        &mut leases,
        &mut made,
    );
    // The one visit to the netns (on this thread, netns.rs), whatever came of the links: the
    // rollback needs its socket and their indexes. It opens the socket for every later
    // request, finds each new link and, when they are all made, gives those under a temporary
    // name their own and writes the sysctls only a writer inside the netns can set.
    let visited = netns.run(|| {
        let ns = Rtnl::current()?;
        let mut indexes = Vec::with_capacity(made.len());
        for name in &made {
            indexes.push(ns.link(name)?.map(|l| l.index));
        }
        let named = match &prepared {
            Ok(()) => name_links(&ns, container, atts, &shims, &made, &indexes, &ns_path),
            Err(_) => Ok(Vec::new()),
        };
        Ok((ns, indexes, named))
    });
    let (err, found) = match (prepared, visited) {
        (Ok(()), Ok((ns, indexes, named))) => {
            // Host access, then the announcement: peers learn a route once the container
            // answers.
            let done = named
                .and_then(|named| configure_all(&ns, container, atts, &named, &leases, &ns_path))
                .and_then(|()| add_host_routes(rtnl, atts, &shims, &leases))
                .and_then(|()| announce_all(rtnl, atts, &shims, &leases));
            match done {
                Ok(()) => return Ok(leases),
                Err(e) => (e, Some((ns, indexes))),
            }
        }
        (Err(e), Ok((ns, indexes, _))) => (e, Some((ns, indexes))),
        (Ok(()), Err(e)) | (Err(e), Err(_)) => (e, None),
    };
    let mut errors = Vec::new();
    for ((att, shim), held) in atts.iter().zip(&shims).zip(&leases) {
        let addrs: Vec<IpAddr> = held.iter().map(|l| l.address).collect();
        if let Err(e) = unannounce_addrs(rtnl, att.network, &addrs) {
            errors.push(e.context("rollback"));
        }
        if shim.0.is_some()
            && let Err(e) = host_access::remove_routes(rtnl, att.network, &addrs)
        {
            errors.push(e.context("rollback"));
        }
    }
    match found {
        Some((ns, indexes)) => {
            for (name, index) in made.iter().zip(indexes) {
                if let Some(index) = index
                    && let Err(e) = ns.del_link(index)
                {
                    errors.push(e.context(format!(
                        "rollback: cannot delete the new link {name} in netns {ns_path}"
                    )));
                }
            }
        }
        None if !made.is_empty() => errors.push(Error::msg(format!(
            "rollback: links {} stay in netns {ns_path}, which could not be entered: delete them with 'ip link del'",
            made.join(", ")
        ))),
        None => {}
    }
    for a in &atts[..leases.len()] {
        if let Err(e) = ipam::release_interface(a.store, container, &a.network.name, &a.want.ifname)
        {
            errors.push(e.context(format!(
                "rollback: cannot release the leases of {} of container {container} on network {}",
                a.want.ifname, a.network.name
            )));
        }
    }
    Err(Error::join(err, errors))
}

/// Last step of a setup, once the container answers at its addresses: their routes for the
/// network's BGP speaker, out of the parent (`--announce`).
fn announce_addrs(rtnl: &Rtnl, net: &Network, parent: u32, addrs: &[IpAddr]) -> Result<()> {
    let Some(a) = &net.announce else {
        return Ok(());
    };
    announce::add(rtnl, a, parent, addrs).with_context(|| format!("network {}", net.name))
}

/// Withdraw `addrs` from the network's announcement table, if it has one.
fn unannounce_addrs(rtnl: &Rtnl, net: &Network, addrs: &[IpAddr]) -> Result<()> {
    let Some(a) = &net.announce else {
        return Ok(());
    };
    announce::remove(rtnl, a, addrs).with_context(|| format!("network {}", net.name))
}

/// Per attachment, what the host side of it needs later: the host's link to the network (with
/// host access) and the parent's index (announcement routes leave through it).
type Attached = (Option<host_access::Shim>, u32);

/// For each attachment in order: its parent (and the host's link to the network, with host
/// access), its leases, its slave in the netns under its final name, or under a temporary one
/// when a link there has that name already (the visit then sees whether that link may be
/// replaced). `shims`, `leases` and `made` (the names the links were made under) grow as they
/// are taken, for the rollback.
#[allow(clippy::too_many_arguments)]
fn prepare(
    rtnl: &Rtnl,
    container: &str,
    owner: &Owner,
    atts: &[Attachment],
    netns: &Netns,
    shims: &mut Vec<Attached>,
    leases: &mut Vec<Vec<Lease>>,
    made: &mut Vec<String>,
) -> Result<()> {
    let ns_path = netns.path().display();
    for (i, att) in atts.iter().enumerate() {
        let net = att.network;
        let parent = parent::ensure(rtnl, net)?;
        let shim = host_access::ensure(rtnl, net, &parent)?;
        // A failed allocation gives back what it took itself.
        let held = allocate(container, owner, att)?;
        shims.push((shim, parent.index));
        leases.push(held);
        let spec = SlaveSpec {
            driver: net.driver,
            mode: net.mode,
            flag: net.flag,
            mtu: att.want.mtu.or(net.mtu),
            mac: att.want.mac,
        };
        let create = |name: &str| {
            rtnl.add_slave(name, &parent, spec, netns).with_context(|| {
                format!(
                    "cannot create {} link on parent {} in netns {ns_path}",
                    net.driver, net.parent
                )
            })
        };
        let name = match create(&att.want.ifname) {
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                let tmp = temp_name(i);
                create(&tmp)?;
                tmp
            }
            r => r.map(|()| att.want.ifname.clone())?,
        };
        made.push(name);
    }
    Ok(())
}

/// The host's routes to the new addresses, for the attachments whose network has host access.
fn add_host_routes(
    rtnl: &Rtnl,
    atts: &[Attachment],
    shims: &[Attached],
    leases: &[Vec<Lease>],
) -> Result<()> {
    for ((att, (shim, _)), held) in atts.iter().zip(shims).zip(leases) {
        if let Some(shim) = shim {
            let addrs: Vec<IpAddr> = held.iter().map(|l| l.address).collect();
            host_access::add_routes(rtnl, att.network, shim, &addrs)?;
        }
    }
    Ok(())
}

/// The announcement routes of every attachment whose network has `--announce`.
fn announce_all(
    rtnl: &Rtnl,
    atts: &[Attachment],
    shims: &[Attached],
    leases: &[Vec<Lease>],
) -> Result<()> {
    for ((att, (_, parent)), held) in atts.iter().zip(shims).zip(leases) {
        let addrs: Vec<IpAddr> = held.iter().map(|l| l.address).collect();
        announce_addrs(rtnl, att.network, *parent, &addrs)?;
    }
    Ok(())
}

/// Tell the operator (stderr) what an attachment of `container` got.
pub fn report(container: &str, att: &Attachment, leases: &[Lease]) {
    let addrs: Vec<String> = leases
        .iter()
        .map(|l| format!("{}/{}", l.address, l.prefix_len))
        .collect();
    crate::info(&format!(
        "container {container}: {} {} on network {} ({})",
        att.want.ifname,
        addrs.join(" "),
        att.network.name,
        att.network.parent
    ));
}

/// Lease the attachment's addresses, without a link: all an IPAM plugin does.
pub fn allocate(container: &str, owner: &Owner, att: &Attachment) -> Result<Vec<Lease>> {
    let net = att.network;
    let ifname = &att.want.ifname;
    let request = Request {
        static_v4: att.want.ipv4,
        static_v6: att.want.ipv6,
        ..Request::new(net, container, ifname, owner.clone())
    };
    ipam::allocate(att.store, &request)
        .with_context(|| format!("container {container}, {ifname} on network {}", net.name))
}

/// Address every new link and raise it tagged with the container id, then give each family
/// its one default route. `indexes`: the links' in the netns, in the order of `atts`.
fn configure_all(
    ns: &Rtnl,
    container: &str,
    atts: &[Attachment],
    indexes: &[u32],
    leases: &[Vec<Lease>],
    ns_path: &str,
) -> Result<()> {
    for ((att, &index), held) in atts.iter().zip(indexes).zip(leases) {
        let ifname = att.want.ifname.as_str();
        for l in held {
            add_address(ns, index, l, &att.network.parent).with_context(|| {
                format!(
                    "cannot add {}/{} to {ifname} in netns {ns_path}",
                    l.address, l.prefix_len
                )
            })?;
        }
        // The tag that marks the link as ours (the kernel ignores it at creation): a setup cut
        // short before it leaves an untagged link, which `replace` knows for a leftover.
        ns.set_up_tagged(index, container)
            .with_context(|| format!("cannot bring {ifname} up in netns {ns_path}"))?;
    }
    for v6 in [false, true] {
        let Some((i, gateway)) = default_route(atts, leases, v6) else {
            continue;
        };
        let ifname = &atts[i].want.ifname;
        let via = gateway.map_or_else(|| format!("dev {ifname}"), |g| format!("via {g}"));
        match ns.add_default_route(indexes[i], v6, gateway) {
            // Another interface of a shared netns (a pod) routes already: keep its route
            // rather than fail the container (moby#48576).
            Err(e) if e.errno() == Some(libc::EEXIST) => crate::warn(&format!(
                "container {container}: netns {ns_path} already has a default route; not adding default {via}"
            )),
            r => r.with_context(|| format!("cannot add default route {via} in netns {ns_path}"))?,
        }
    }
    Ok(())
}

/// The attachment that gives a family its default route, and the next hop (None: straight
/// out of the device, as ipvlan L3 modes route): the highest `gw_priority` among those that
/// can route that family, the first on a tie. Internal networks never route; an L2 lease
/// routes through its subnet's gateway.
fn default_route(
    atts: &[Attachment],
    leases: &[Vec<Lease>],
    v6: bool,
) -> Option<(usize, Option<IpAddr>)> {
    let mut best: Option<(usize, Option<IpAddr>)> = None;
    for (i, (att, held)) in atts.iter().zip(leases).enumerate() {
        let net = att.network;
        let Some(lease) = held.iter().find(|l| l.address.is_ipv6() == v6) else {
            continue;
        };
        if net.internal {
            continue;
        }
        let gateway = if net.routes_via_gateway() {
            match net.subnet_of(lease.address).and_then(|s| s.gateway) {
                Some(gw) => Some(gw),
                None => continue,
            }
        } else {
            None
        };
        if best.is_none_or(|(b, _)| att.want.gw_priority > atts[b].want.gw_priority) {
            best = Some((i, gateway));
        }
    }
    best
}

/// Inside the netns, once every link is made: give each link made under a temporary name its
/// own (`replace`), then write each link's sysctls. The links' indexes, in the order of `atts`;
/// `indexes` are those found for the names in `made`.
fn name_links(
    ns: &Rtnl,
    container: &str,
    atts: &[Attachment],
    shims: &[Attached],
    made: &[String],
    indexes: &[Option<u32>],
    ns_path: &str,
) -> Result<Vec<u32>> {
    let mut named = Vec::with_capacity(atts.len());
    for (((att, (_, parent)), name), index) in atts.iter().zip(shims).zip(made).zip(indexes) {
        let ifname = att.want.ifname.as_str();
        let Some(index) = *index else {
            crate::bail!("new link {name} for {ifname} is missing from netns {ns_path}");
        };
        // Made under another name: the final one was taken.
        if name != ifname {
            replace(ns, index, container, att, *parent, ns_path)
                .with_context(|| format!("cannot rename {name} to {ifname} in netns {ns_path}"))?;
        }
        link_sysctls(ifname, att.network.has_family(true))
            .with_context(|| format!("interface {ifname} in netns {ns_path}"))?;
        named.push(index);
    }
    Ok(named)
}

/// The interface name was taken in the netns: replace the link there if it is this container's
/// own (an engine restarted, createRuntime ran twice) or the untagged leftover of a setup cut
/// short (a slave of the network's kind on the same parent, which the tag had not reached yet),
/// then give the new link `index` the name, tagged with the container id. Anything else there
/// is not ours to touch: in a shared netns (a pod) it may be another container's interface.
fn replace(
    ns: &Rtnl,
    index: u32,
    container: &str,
    att: &Attachment,
    parent: u32,
    ns_path: &str,
) -> Result<()> {
    let ifname = att.want.ifname.as_str();
    // None: gone in between, the name is free now.
    if let Some(old) = ns.link(ifname)? {
        let leftover = old.alias.is_none()
            && old.kind == Some(att.network.driver.into())
            && old.lower == Some(parent);
        if !leftover && !is_ours(&old, container) {
            let owner = match (&old.kind, &old.alias) {
                (Some(k), Some(a)) if k.is_slave() => format!("it belongs to container {a}"),
                _ => "ipvlan-hook did not create it".to_string(),
            };
            crate::bail!(
                "interface {ifname} already exists in netns {ns_path} ({owner}): give this container's interface another name"
            );
        }
        ns.del_link(old.index)
            .with_context(|| format!("cannot replace the old {ifname} in netns {ns_path}"))?;
    }
    ns.rename(index, ifname, container)
}

/// Did the hook create `link` for `container`?
fn is_ours(link: &Link, container: &str) -> bool {
    link.kind.as_ref().is_some_and(LinkKind::is_slave) && link.alias.as_deref() == Some(container)
}

/// Add a leased address. The kernel refuses an address another ipvlan slave of the same parent
/// still holds (EADDRINUSE); right after a container stops, that is a netns the kernel is still
/// tearing down in the background. The lease says the address is ours, so wait for it briefly
/// instead of failing the way Docker's documented "address already in use" bug does.
fn add_address(ns: &Rtnl, index: u32, lease: &Lease, parent: &str) -> Result<()> {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);
    let start = std::time::Instant::now();
    loop {
        match ns.add_address(index, lease.address, lease.prefix_len) {
            Err(e) if e.errno() == Some(libc::EADDRINUSE) && start.elapsed() < PATIENCE => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) if e.errno() == Some(libc::EADDRINUSE) => {
                return Err(e.context(format!(
                    "another link on parent {parent} still holds {} although its lease is ours: find it with 'ip -all netns exec ip -o addr' and remove it",
                    lease.address
                )));
            }
            r => return r,
        }
    }
}

/// Per-interface sysctls, written from inside the netns. Without an IPv6 subnet, IPv6 is off on
/// the interface (Docker's fix for CVE-2024-32473: no link-local or SLAAC address leaks out).
/// With one, no SLAAC either: the addresses are the leased ones. Gratuitous ARP / unsolicited
/// NA on link-up refresh the neighbours' caches when an address moves to a new container. No
/// duplicate address detection: written before the link goes up, this keeps the link-local
/// address from starting `tentative` (the leased ones are `nodad` already).
fn link_sysctls(ifname: &str, has_v6: bool) -> Result<()> {
    write_sysctl(&format!("net/ipv4/conf/{ifname}/arp_notify"), "1")?;
    let v6 = |key: &str, value: &str| match write_sysctl(
        &format!("net/ipv6/conf/{ifname}/{key}"),
        value,
    ) {
        // A kernel booted with ipv6.disable=1 has no such file: nothing to turn off.
        Err(e) if e.errno() == Some(libc::ENOENT) && !has_v6 => Ok(()),
        r => r,
    };
    if has_v6 {
        v6("autoconf", "0")?;
        v6("accept_dad", "0")?;
        v6("ndisc_notify", "1")
    } else {
        v6("disable_ipv6", "1")
    }
}

/// Random enough to never collide with another hook creating a link at the same instant (in a
/// shared netns); `i` tells a container's attachments apart.
fn temp_name(i: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seed = nanos ^ std::process::id().rotate_left(16);
    format!("ipvh{:08x}", seed.wrapping_add(i as u32))
}

/// Which leases a teardown releases.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Release<'a> {
    /// Every lease of the container (poststop, the launcher's end).
    All,
    /// Only those of the interfaces torn down, on this network (`network disconnect`).
    Interfaces { network: &'a str },
}

/// Undo `setup`: delete the container's links `ifnames` where its netns outlives it
/// (pre-created netns, the launcher's netns held by a leftover process, a connected netns),
/// release its leases in every store given and, on those of `networks`, delete the host's
/// routes to them (host access) and withdraw their announcement. Missing netns, link, lease or
/// route count as done; a route left behind by a teardown cut short is `gc`'s.
pub fn teardown(
    stores: &[&dyn LeaseStore],
    container: &str,
    ifnames: &[&str],
    netns: Option<&Netns>,
    release: Release,
    networks: &[&Network],
) -> Result<Vec<Lease>> {
    let mut errors = Errors::default();
    if let Some(ns) = netns
        && let Err(e) = delete_slaves(container, ifnames, ns)
    {
        errors.push(e);
    }
    let mut released = Vec::new();
    for store in stores {
        let freed = match release {
            Release::All => ipam::release(*store, container),
            Release::Interfaces { network } => ifnames
                .iter()
                .map(|i| ipam::release_interface(*store, container, network, i))
                .collect::<Result<Vec<_>>>()
                .map(|v| v.concat()),
        };
        match freed {
            Ok(leases) => released.extend(leases),
            Err(e) => errors.push(e.context(format!(
                "cannot release the leases of container {container}"
            ))),
        }
    }
    for net in networks {
        if let Err(e) = remove_routes(net, &released) {
            errors.push(e.context(format!("container {container}")));
        }
    }
    errors.finish().map(|()| released)
}

/// Take the routes to `released` (of `net`) away: withdraw their announcement first (peers
/// stop sending before the host's route goes), then the host-access routes. A route left
/// behind by a teardown cut short is `gc`'s.
pub fn remove_routes(net: &Network, released: &[Lease]) -> Result<()> {
    if net.host_access.is_none() && net.announce.is_none() {
        return Ok(());
    }
    let addrs: Vec<IpAddr> = released
        .iter()
        .filter(|l| l.network == net.name)
        .map(|l| l.address)
        .collect();
    let rtnl = Rtnl::current()?;
    let mut errors = Errors::default();
    if let Err(e) = unannounce_addrs(&rtnl, net, &addrs) {
        errors.push(e);
    }
    if net.host_access.is_some()
        && let Err(e) = host_access::remove_routes(&rtnl, net, &addrs)
    {
        errors.push(e);
    }
    errors.finish()
}

fn delete_slaves(container: &str, ifnames: &[&str], netns: &Netns) -> Result<()> {
    let ns = Rtnl::in_netns(netns)?;
    let path = netns.path().display();
    let mut errors = Errors::default();
    for ifname in ifnames {
        let deleted = match ns.link(ifname) {
            // Never a link someone else put there, nor another container's in a shared netns.
            Ok(Some(link)) if is_ours(&link, container) => ns.del_link(link.index),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = deleted {
            errors.push(e.context(format!("cannot delete {ifname} in netns {path}")));
        }
    }
    errors.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::LeaseFiles;
    use crate::network::NetworkSpec;

    fn net(name: &str, driver: Driver, subnet: &str) -> Network {
        let spec = NetworkSpec {
            name: name.into(),
            driver,
            parent: Some("eth0".into()),
            subnets: vec![subnet.parse().unwrap()],
            ..Default::default()
        };
        spec.build(name.into()).unwrap().0
    }

    fn lease(network: &str, addr: &str) -> Lease {
        Lease {
            version: crate::ipam::LEASE_VERSION,
            network: network.into(),
            container: "c".into(),
            ifname: "x".into(),
            address: addr.parse().unwrap(),
            prefix_len: 24,
            created: 0,
            owner: Owner::default(),
        }
    }

    #[test]
    fn refusals_before_anything_is_made() {
        let store = LeaseFiles::new(std::path::Path::new("/nonexistent"));
        let ip = net("ip", Driver::Ipvlan, "10.0.0.0/24");
        let mac = net("mac", Driver::Macvlan, "10.1.0.0/24");
        let mut a = AttachmentRequest::new("ip", "eth0");
        let mut b = AttachmentRequest::new("mac", "eth0");
        let atts = |a: &AttachmentRequest, b: &AttachmentRequest| {
            check(&[
                Attachment {
                    network: &ip,
                    store: &store,
                    want: a,
                },
                Attachment {
                    network: &mac,
                    store: &store,
                    want: b,
                },
            ])
            .map_err(|e| e.to_string())
        };
        let e = atts(&a, &b).unwrap_err();
        assert!(
            e.contains("interface eth0 is asked for twice (networks ip and mac)"),
            "{e}"
        );
        b.ifname = "eth1".into();
        b.mac = Some("02:00:00:00:00:01".parse().unwrap());
        atts(&a, &b).unwrap();
        a.mac = b.mac;
        let e = atts(&a, &b).unwrap_err();
        assert!(
            e.contains("ipvlan interfaces share their parent's MAC address"),
            "{e}"
        );
    }

    #[test]
    fn the_highest_priority_routes_each_family_the_first_on_a_tie() {
        let store = LeaseFiles::new(std::path::Path::new("/nonexistent"));
        let a = net("a", Driver::Macvlan, "10.0.0.0/24");
        let b = net("b", Driver::Macvlan, "10.1.0.0/24");
        let mut internal = net("i", Driver::Macvlan, "10.2.0.0/24");
        internal.internal = true;
        let mut wa = AttachmentRequest::new("a", "eth0");
        let mut wb = AttachmentRequest::new("b", "eth1");
        let mut wi = AttachmentRequest::new("i", "eth2");
        wi.gw_priority = 100;
        let leases = vec![
            vec![lease("a", "10.0.0.2")],
            vec![lease("b", "10.1.0.2")],
            vec![lease("i", "10.2.0.2")],
        ];
        let pick = |wa: &AttachmentRequest, wb: &AttachmentRequest, wi: &AttachmentRequest| {
            let atts = [
                Attachment {
                    network: &a,
                    store: &store,
                    want: wa,
                },
                Attachment {
                    network: &b,
                    store: &store,
                    want: wb,
                },
                Attachment {
                    network: &internal,
                    store: &store,
                    want: wi,
                },
            ];
            (
                default_route(&atts, &leases, false),
                default_route(&atts, &leases, true),
            )
        };
        // A tie: the first listed; internal networks never route, whatever their priority.
        assert_eq!(
            pick(&wa, &wb, &wi),
            (Some((0, Some("10.0.0.1".parse().unwrap()))), None)
        );
        wb.gw_priority = 1;
        assert_eq!(
            pick(&wa, &wb, &wi).0,
            Some((1, Some("10.1.0.1".parse().unwrap())))
        );
        wa.gw_priority = 2;
        assert_eq!(pick(&wa, &wb, &wi).0.map(|r| r.0), Some(0));
    }
}
