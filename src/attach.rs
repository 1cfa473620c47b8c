//! Attaching a container's network namespace to a network, and detaching it: the flow shared by
//! the hook and the launcher. Setup is a transaction: once an address is leased, any failure
//! deletes what was made and releases the lease (crun and podman never call poststop after a
//! failed createRuntime). Teardown never stops early: it does every step and reports every error.

use std::net::IpAddr;

use crate::error::{Context, Error, Errors, Result};
use crate::ipam::{self, Lease, LeaseStore, Request};
use crate::link::LinkKind;
use crate::netlink::{Link, Rtnl, SlaveSpec};
use crate::netns::{Netns, Visit, write_sysctl};
use crate::network::{Network, announce, host_access, parent};

/// One container interface to set up.
pub struct Attachment<'a> {
    pub network: &'a Network,
    /// Its container, interface name and addresses, as IPAM leases them.
    pub request: Request<'a>,
    /// Overrides the network's MTU (default: the parent's).
    pub mtu: Option<u32>,
    /// Hardware address of a macvlan link (default: the kernel's random one).
    pub mac: Option<[u8; 6]>,
}

pub fn setup(
    rtnl: &Rtnl,
    store: &dyn LeaseStore,
    att: &Attachment,
    netns: &Netns,
) -> Result<Vec<Lease>> {
    // The one visit to the netns (a thread, netns.rs) starts now and waits for the new link:
    // then it opens the socket for every later request, finds the link's index and writes the
    // sysctls, which only a writer inside the netns can set (they follow the link through its
    // rename).
    let ns_path = netns.path().display().to_string();
    let has_v6 = att.network.has_family(true);
    netns.run_later(
        |tmp: String| {
            let ns = Rtnl::current()?;
            let link = ns.link(&tmp)?.ok_or_else(|| {
                Error::msg(format!("new link {tmp} is missing from netns {ns_path}"))
            })?;
            Ok((ns, link.index, link_sysctls(&tmp, has_v6)))
        },
        |visit| transaction(rtnl, store, att, netns, visit),
    )
}

/// What the netns visit brings back: the socket there, the new link's index, the sysctls'
/// outcome.
type Visited = (Rtnl, u32, Result<()>);

fn transaction(
    rtnl: &Rtnl,
    store: &dyn LeaseStore,
    att: &Attachment,
    netns: &Netns,
    visit: Visit<String, Visited>,
) -> Result<Vec<Lease>> {
    let parent = parent::ensure(rtnl, att.network)?;
    let shim = host_access::ensure(rtnl, att.network, &parent)?;
    let leases = allocate(store, att)?;
    let addrs: Vec<IpAddr> = leases.iter().map(|l| l.address).collect();
    let mut made = None;
    // Host access, then the announcement: peers learn the route once the container answers.
    let made_all = make_link(rtnl, att, &parent, netns, visit, &leases, &mut made)
        .and_then(|()| {
            shim.as_ref().map_or(Ok(()), |shim| {
                host_access::add_routes(rtnl, att.network, shim, &addrs)
            })
        })
        .and_then(|()| announce_addrs(rtnl, att.network, parent.index, &addrs));
    let Err(err) = made_all else {
        return Ok(leases);
    };
    let mut errors = Vec::new();
    if let Err(e) = unannounce_addrs(rtnl, att.network, &addrs) {
        errors.push(e.context("rollback"));
    }
    if shim.is_some()
        && let Err(e) = host_access::remove_routes(rtnl, att.network, &addrs)
    {
        errors.push(e.context("rollback"));
    }
    if let Some((ns, index)) = made
        && let Err(e) = ns.del_link(index)
    {
        errors.push(e.context(format!(
            "rollback: cannot delete the new link in {}",
            netns.path().display()
        )));
    }
    let (container, ifname) = (att.request.container, att.request.ifname);
    if let Err(e) = ipam::release_interface(store, container, ifname) {
        errors.push(e.context(format!(
            "rollback: cannot release the leases of container {container} interface {ifname}"
        )));
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

/// Create the slave under a temporary name straight into the netns (the final name may exist
/// in the host), tag and rename it there, then address it (a move drops addresses), raise it,
/// and route (routes need it up). `made` gets the link, for the rollback, as soon as it is
/// known.
fn make_link(
    rtnl: &Rtnl,
    att: &Attachment,
    parent: &Link,
    netns: &Netns,
    visit: Visit<String, Visited>,
    leases: &[Lease],
    made: &mut Option<(Rtnl, u32)>,
) -> Result<()> {
    let net = att.network;
    let ns_path = netns.path().display().to_string();
    let tmp = temp_name();
    let spec = SlaveSpec {
        driver: net.driver,
        mode: net.mode,
        flag: net.flag,
        mtu: att.mtu.or(net.mtu),
        mac: att.mac,
    };
    rtnl.add_slave(&tmp, parent, spec, netns).with_context(|| {
        format!(
            "cannot create {} link on parent {} in netns {ns_path}",
            net.driver, net.parent
        )
    })?;
    let (ns, index, sysctls) = visit.run_with(tmp.clone())?;
    let ns = &made.insert((ns, index)).0;
    let ifname = att.request.ifname;
    sysctls.with_context(|| format!("interface {ifname} in netns {ns_path}"))?;
    rename(ns, index, att, &ns_path)
        .with_context(|| format!("cannot rename {tmp} to {ifname} in netns {ns_path}"))?;
    configure(ns, index, att, leases, &ns_path)
}

/// Tell the operator (stderr) what an attachment got.
pub fn report(att: &Attachment, leases: &[Lease]) {
    let addrs: Vec<String> = leases
        .iter()
        .map(|l| format!("{}/{}", l.address, l.prefix_len))
        .collect();
    crate::info(&format!(
        "container {}: {} {} on network {} ({})",
        att.request.container,
        att.request.ifname,
        addrs.join(" "),
        att.network.name,
        att.network.parent
    ));
}

/// Lease the attachment's addresses, without a link: all an IPAM plugin does.
pub fn allocate(store: &dyn LeaseStore, att: &Attachment) -> Result<Vec<Lease>> {
    ipam::allocate(store, &att.request)
        .with_context(|| format!("container {}", att.request.container))
}

/// Address, raise and route the new link.
fn configure(
    ns: &Rtnl,
    index: u32,
    att: &Attachment,
    leases: &[Lease],
    ns_path: &str,
) -> Result<()> {
    let net = att.network;
    let ifname = att.request.ifname;
    for l in leases {
        add_address(ns, index, l, &net.parent).with_context(|| {
            format!(
                "cannot add {}/{} to {ifname} in netns {ns_path}",
                l.address, l.prefix_len
            )
        })?;
    }
    ns.set_up(index)
        .with_context(|| format!("cannot bring {ifname} up in netns {ns_path}"))?;
    for l in leases {
        let v6 = l.address.is_ipv6();
        let Some(gateway) = net.default_route(l.address) else {
            continue;
        };
        let via = gateway.map_or_else(|| format!("dev {ifname}"), |g| format!("via {g}"));
        match ns.add_default_route(index, v6, gateway) {
            // Another interface of a shared netns (a pod) routes already: keep its route
            // rather than fail the container (moby#48576).
            Err(e) if e.errno() == Some(libc::EEXIST) => crate::warn(&format!(
                "container {}: netns {ns_path} already has a default route; not adding default {via}",
                att.request.container
            )),
            r => r.with_context(|| format!("cannot add default route {via} in netns {ns_path}"))?,
        }
    }
    Ok(())
}

/// Give the new link its final name, tagged with the container id. A link already named so is
/// replaced when it is this container's own (an engine restarted, createRuntime ran twice);
/// anything else there is not ours to touch: in a shared netns (a pod) it may be another
/// container's interface. Looking only when the name is taken saves a request per setup.
fn rename(ns: &Rtnl, index: u32, att: &Attachment, ns_path: &str) -> Result<()> {
    let ifname = att.request.ifname;
    match ns.rename(index, ifname, att.request.container) {
        Err(e) if e.errno() == Some(libc::EEXIST) => {}
        r => return r,
    }
    let Some(old) = ns.link(ifname)? else {
        // Gone in between: the name is free now.
        return ns.rename(index, ifname, att.request.container);
    };
    if !is_ours(&old, att.request.container) {
        let owner = match (&old.kind, &old.alias) {
            (Some(k), Some(a)) if k.is_slave() => format!("it belongs to container {a}"),
            _ => "ipvlan-hook did not create it".to_string(),
        };
        crate::bail!(
            "interface {ifname} already exists in netns {ns_path} ({owner}): give this container another name with ipvlan.ifname"
        );
    }
    ns.del_link(old.index)
        .with_context(|| format!("cannot replace the old {ifname} in netns {ns_path}"))?;
    ns.rename(index, ifname, att.request.container)
}

/// Did the hook create `link` for `container`?
fn is_ours(link: &crate::netlink::Link, container: &str) -> bool {
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
/// NA on link-up refresh the neighbours' caches when an address moves to a new container.
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
        v6("ndisc_notify", "1")
    } else {
        v6("disable_ipv6", "1")
    }
}

/// Random enough to never collide with another hook creating a link at the same instant.
fn temp_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("ipvh{:08x}", nanos ^ std::process::id().rotate_left(16))
}

/// Undo `setup`: delete the container's link where its netns outlives it (pre-created netns, or
/// the launcher's netns held by a leftover process), release the leases of that interface and, on `network` (when
/// known), delete the host's routes to them (host access) and withdraw their announcement.
/// Missing netns, link, lease or route count as done; a route left behind by a teardown cut
/// short is `gc`'s.
pub fn teardown(
    store: &dyn LeaseStore,
    container: &str,
    ifname: &str,
    netns: Option<&Netns>,
    network: Option<&Network>,
) -> Result<Vec<Lease>> {
    let mut errors = Errors::default();
    if let Some(ns) = netns
        && let Err(e) = delete_slave(container, ifname, ns)
    {
        errors.push(e);
    }
    let released = ipam::release_interface(store, container, ifname).unwrap_or_else(|e| {
        errors.push(e.context(format!(
            "cannot release the leases of container {container} interface {ifname}"
        )));
        Vec::new()
    });
    if let Some(net) = network
        && let Err(e) = remove_routes(net, &released)
    {
        errors.push(e.context(format!("container {container}")));
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

fn delete_slave(container: &str, ifname: &str, netns: &Netns) -> Result<()> {
    let ns = Rtnl::in_netns(netns)?;
    match ns.link(ifname)? {
        // Never a link someone else put there, nor another container's in a shared netns.
        Some(link) if is_ours(&link, container) => ns
            .del_link(link.index)
            .with_context(|| format!("cannot delete {ifname} in netns {}", netns.path().display())),
        _ => Ok(()),
    }
}
