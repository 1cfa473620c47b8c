//! Host access (`network create --host-access`): by kernel design a parent link and its own
//! ipvlan or macvlan slaves never talk to each other, so the host gets a slave of its own on
//! the parent (the "shim"), of the network's driver, mode and flag, holding one reserved address
//! per family as /32 and /128 (no second connected route for the subnet), with routes to the
//! containers through it whose source is that address: one per container, or one for the
//! network's `--ip-range`.
//!
//! The link is named `ha-NAME` when the network's name fits in an interface name (at most 12
//! characters), `ha-` and the first 12 characters of the network id otherwise; the name is
//! recorded in the network file. Its alias marks it as ours, as container links are marked.
//! IPAM (commands/network.rs) reserves the addresses; this module makes the link, keeps it and
//! its routes, and removes it.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::{Context, Errors, Result};
use crate::link::{Driver, Flag, LinkKind};
use crate::netlink::{Link, Route, Rtnl, SlaveSpec};
use crate::netns::write_sysctl;
use crate::network::{Network, validate_ifname};

/// What the network file records: the link and the addresses reserved for it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostAccess {
    /// The link's name.
    pub name: String,
    /// One per family of the network's subnets.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

/// Protocol number of the routes to containers through the link (`ip route show proto 73`):
/// not one a routing daemon claims (iproute2's rt_protos, FRR 186-198, kube-router 17).
pub const ROUTE_PROTOCOL: u8 = 73;

const PREFIX: &str = "ha-";

/// The link name a new network gets (see the module comment).
pub fn link_name(network: &str, id: &str) -> String {
    if PREFIX.len() + network.len() <= 15 {
        format!("{PREFIX}{network}")
    } else {
        format!("{PREFIX}{}", &id[..id.len().min(12)])
    }
}

/// Holder of the reserved addresses in IPAM: contains spaces, which no container id can.
pub fn holder(network: &str) -> String {
    format!("host access {network}")
}

/// The alias that marks the link as ours.
fn alias(network: &str) -> String {
    format!("ipvlan-hook host access for network {network}")
}

/// The checks of `network create --host-access[=ADDR[,ADDR6]]` and of a network file's
/// `host_access`. `flag` names the setting as the user wrote it.
pub(super) fn check(net: &Network, ha: &HostAccess, flag: &str) -> Result<()> {
    if net.internal {
        bail!(
            "{flag} cannot be used on internal network {}: an internal network keeps its containers to themselves; drop one of the two",
            net.name
        );
    }
    if net.flag == Flag::Private {
        bail!(
            "{flag} cannot work on network {}: flag private forbids traffic between the slaves of a parent, and the host's link is one; use --flag bridge",
            net.name
        );
    }
    validate_ifname(&ha.name).with_context(|| format!("{flag} link name"))?;
    for (i, addr) in ha.addresses.iter().enumerate() {
        let Some(s) = net.subnet_of(*addr) else {
            bail!(
                "{flag} {addr} lies outside every subnet of network {}: choose an address inside one",
                net.name
            );
        };
        if super::reserved(s.subnet, *addr) || s.gateway == Some(*addr) {
            bail!(
                "{flag} {addr} is the network, broadcast or gateway address of {}: choose another",
                s.subnet
            );
        }
        if let Some(other) = ha.addresses[..i]
            .iter()
            .find(|o| o.is_ipv4() == addr.is_ipv4())
        {
            bail!(
                "{flag} gives two addresses of one family ({other}, {addr}): give at most one IPv4 and one IPv6 address"
            );
        }
    }
    Ok(())
}

/// The host's link of a network, as made or found.
#[derive(Debug, Clone)]
pub struct Shim {
    pub index: u32,
    pub name: String,
    pub addresses: Vec<IpAddr>,
}

/// Make the link of `net` on `parent`, or complete one that is there: every step may already
/// be done (a re-run, or another hook making it at the same moment), so a missing link after a
/// reboot is made again by whichever setup comes first. Refuses a parent whose slaves in this
/// namespace run another ipvlan mode: a new slave would switch them all to its own. A link this
/// call created is deleted again if a later step fails.
pub fn make(rtnl: &Rtnl, net: &Network, parent: &Link) -> Result<Option<Shim>> {
    let Some(ha) = &net.host_access else {
        return Ok(None);
    };
    let (link, created) = match find(rtnl, net, ha)? {
        Some(link) => (link, false),
        None => create(rtnl, net, ha, parent)?,
    };
    let shim = Shim {
        index: link.index,
        name: ha.name.clone(),
        addresses: ha.addresses.clone(),
    };
    match configure(rtnl, net, &link, &shim) {
        Ok(()) => Ok(Some(shim)),
        Err(e) if created => match rtnl.del_link(link.index) {
            Ok(()) => Err(e),
            Err(e2) => Err(e.context(format!(
                "rollback: cannot delete {}: {e2}; delete it with 'ip link del {}'",
                ha.name, ha.name
            ))),
        },
        Err(e) => Err(e),
    }
}

/// The network's link for a setup: as it is when it is there and up (one request), made or
/// completed otherwise.
pub fn ensure(rtnl: &Rtnl, net: &Network, parent: &Link) -> Result<Option<Shim>> {
    match current(rtnl, net)? {
        Some(shim) => Ok(Some(shim)),
        None => make(rtnl, net, parent),
    }
}

/// The network's link as it is now, without repairing anything.
fn current(rtnl: &Rtnl, net: &Network) -> Result<Option<Shim>> {
    let Some(ha) = &net.host_access else {
        return Ok(None);
    };
    Ok(find(rtnl, net, ha)?.filter(|l| l.up).map(|l| Shim {
        index: l.index,
        name: ha.name.clone(),
        addresses: ha.addresses.clone(),
    }))
}

/// The link named in `ha` if it is ours; an error if something else has the name.
fn find(rtnl: &Rtnl, net: &Network, ha: &HostAccess) -> Result<Option<Link>> {
    let Some(link) = rtnl.link(&ha.name)? else {
        return Ok(None);
    };
    if is_ours(&link, net) {
        return Ok(Some(link));
    }
    bail!(
        "interface {} exists but is not the host-access link of network {}: remove it ('ip link del {}'), or recreate the network under another name",
        ha.name,
        net.name,
        ha.name
    )
}

/// Ours: our alias, or (a create killed between making the link and marking it) the right
/// kind with no alias at all.
fn is_ours(link: &Link, net: &Network) -> bool {
    link.kind == Some(LinkKind::from(net.driver))
        && match &link.alias {
            Some(a) => *a == alias(&net.name),
            None => true,
        }
}

/// Create the link; true when this call made it (false: another setup did at the same moment,
/// and its rollback is not ours to do).
fn create(rtnl: &Rtnl, net: &Network, ha: &HostAccess, parent: &Link) -> Result<(Link, bool)> {
    check_parent_mode(rtnl, net, parent)?;
    let spec = SlaveSpec {
        driver: net.driver,
        mode: net.mode,
        flag: net.flag,
        mtu: net.mtu,
        mac: None,
    };
    let made = match rtnl.add_local_slave(&ha.name, parent, spec) {
        Err(e) if e.errno() == Some(libc::EEXIST) => false,
        r => {
            r.with_context(|| {
                format!(
                    "cannot create host-access link {} ({} on parent {}) of network {}",
                    ha.name, net.driver, net.parent, net.name
                )
            })?;
            true
        }
    };
    match find(rtnl, net, ha)? {
        Some(link) => Ok((link, made)),
        None => bail!(
            "host-access link {} of network {} vanished right after it was created",
            ha.name,
            net.name
        ),
    }
}

/// Mark, check, address and raise the link, and route the network's ranges through it.
fn configure(rtnl: &Rtnl, net: &Network, link: &Link, shim: &Shim) -> Result<()> {
    let name = &shim.name;
    let ours = alias(&net.name);
    if link.alias.as_deref() != Some(&ours) {
        rtnl.set_alias(link.index, &ours)
            .with_context(|| format!("cannot mark {name} as ipvlan-hook's"))?;
    }
    check_mode(net, link)?;
    sysctls(name, net.has_family(true))
        .with_context(|| format!("cannot set the sysctls of host-access link {name}"))?;
    for addr in &shim.addresses {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        match rtnl.add_address(link.index, *addr, len) {
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            r => r.with_context(|| format!("cannot add {addr}/{len} to {name}"))?,
        }
    }
    rtnl.set_up(link.index)
        .with_context(|| format!("cannot bring {name} up"))?;
    for route in range_routes(net, shim) {
        rtnl.replace_route(&route)
            .with_context(|| format!("cannot add route {} dev {name}", route.dst))?;
    }
    Ok(())
}

/// The mode and flag the kernel reports for the link are the network's: read back, since the
/// mode is the parent's (the newest slave's) and a kernel may ignore a flag it does not know.
fn check_mode(net: &Network, link: &Link) -> Result<()> {
    let word = |v: Option<String>| v.unwrap_or_else(|| "?".into());
    let (got, want) = match net.driver {
        Driver::Ipvlan => (
            format!(
                "ipvlan mode {} flag {}",
                word(link.ipvlan_mode.map(|m| m.to_string())),
                word(link.ipvlan_flag.map(|f| f.to_string()))
            ),
            format!("ipvlan mode {} flag {}", net.mode, net.flag),
        ),
        Driver::Macvlan => (
            format!(
                "macvlan mode {}",
                word(link.macvlan_flag.map(|f| f.to_string()))
            ),
            format!("macvlan mode {}", net.flag),
        ),
    };
    if got != want {
        bail!(
            "host-access link {} of network {} reads back as {got}, not {want}: the kernel did not take the network's settings; check parent {} ('ip -d link') and recreate the network",
            link.name,
            net.name,
            net.parent
        );
    }
    Ok(())
}

/// The kernel keeps one ipvlan mode per parent and sets it from each new slave: a link in
/// another mode would silently switch every slave there. Slaves in this namespace are seen;
/// those moved into containers are not (the network definitions cover ours).
fn check_parent_mode(rtnl: &Rtnl, net: &Network, parent: &Link) -> Result<()> {
    if net.driver != Driver::Ipvlan {
        return Ok(());
    }
    for link in rtnl.links()? {
        if link.lower != Some(parent.index) || link.kind != Some(LinkKind::Ipvlan) {
            continue;
        }
        if (link.ipvlan_mode, link.ipvlan_flag) != (Some(net.mode), Some(net.flag)) {
            let mode = link.ipvlan_mode.map_or("?".into(), |m| m.to_string());
            let flag = link.ipvlan_flag.map_or("?".into(), |f| f.to_string());
            bail!(
                "parent {} already has ipvlan slave {} in mode {mode} flag {flag}: the kernel keeps one mode per parent and a new slave would switch {} to mode {} flag {}; create the network with --mode {mode} --flag {flag}, or use another parent",
                parent.name,
                link.name,
                link.name,
                net.mode,
                net.flag,
            );
        }
    }
    Ok(())
}

/// Only the link's own settings. No router advertisements or SLAAC (a LAN router must not
/// give the host a second default route or address through it); without an IPv6 subnet no
/// IPv6 at all. Loose reverse-path filtering: the effective value is the larger of `all` and
/// the link's, so 2 here keeps strict mode elsewhere from dropping what containers (or
/// neighbours learning the link's address) send to it.
fn sysctls(name: &str, has_v6: bool) -> Result<()> {
    write_sysctl(&format!("net/ipv4/conf/{name}/rp_filter"), "2")?;
    let v6 = |key: &str, value: &str| match write_sysctl(
        &format!("net/ipv6/conf/{name}/{key}"),
        value,
    ) {
        // A kernel booted with ipv6.disable=1 has no such file: nothing to turn off.
        Err(e) if e.errno() == Some(libc::ENOENT) && !has_v6 => Ok(()),
        r => r,
    };
    if has_v6 {
        v6("accept_ra", "0")?;
        v6("autoconf", "0")
    } else {
        v6("disable_ipv6", "1")
    }
}

/// Delete the network's link, if it is there and ours.
pub fn remove(rtnl: &Rtnl, net: &Network) -> Result<()> {
    let Some(ha) = &net.host_access else {
        return Ok(());
    };
    match rtnl.link(&ha.name)? {
        Some(link) if is_ours(&link, net) => rtnl.del_link(link.index).with_context(|| {
            format!(
                "cannot delete host-access link {} of network {}",
                ha.name, net.name
            )
        }),
        Some(_) => {
            crate::warn(&format!(
                "not deleting {}: it is not the host-access link of network {}",
                ha.name, net.name
            ));
            Ok(())
        }
        None => Ok(()),
    }
}

/// One route per `--ip-range` of a family the link has an address of.
fn range_routes(net: &Network, shim: &Shim) -> Vec<Route> {
    net.subnets
        .iter()
        .filter_map(|s| s.ip_range)
        .filter_map(|range| route(shim, range))
        .collect()
}

fn route(shim: &Shim, dst: IpNetwork) -> Option<Route> {
    let src = shim
        .addresses
        .iter()
        .find(|a| a.is_ipv4() == dst.is_ipv4())?;
    Some(Route {
        dst,
        oif: shim.index,
        src: Some(*src),
        table: None,
        protocol: ROUTE_PROTOCOL,
    })
}

/// The route to a container's address, unless a range route covers it.
fn container_route(net: &Network, shim: &Shim, addr: IpAddr) -> Option<Route> {
    let in_range = net
        .subnets
        .iter()
        .filter_map(|s| s.ip_range)
        .any(|r| r.contains(addr));
    if in_range {
        return None;
    }
    let host = IpNetwork::new(addr, if addr.is_ipv4() { 32 } else { 128 }).ok()?;
    route(shim, host)
}

/// Route a container's addresses through the link (setup; a re-run replaces them).
pub fn add_routes(rtnl: &Rtnl, net: &Network, shim: &Shim, addrs: &[IpAddr]) -> Result<()> {
    for addr in addrs {
        if let Some(r) = container_route(net, shim, *addr) {
            rtnl.replace_route(&r).with_context(|| {
                format!(
                    "cannot add route {addr} dev {} (host access of network {}; 'ipvlan-hook gc' repairs the link)",
                    shim.name, net.name
                )
            })?;
        }
    }
    Ok(())
}

/// Take a container's routes away again (teardown, rollback); a missing link or route is
/// done already. Keeps going past errors.
pub fn remove_routes(rtnl: &Rtnl, net: &Network, addrs: &[IpAddr]) -> Result<()> {
    let Some(shim) = link(rtnl, net)? else {
        return Ok(());
    };
    let mut errors = Errors::default();
    for r in addrs.iter().filter_map(|a| container_route(net, &shim, *a)) {
        if let Err(e) = rtnl.del_route(&r) {
            errors.push(e.context(format!(
                "cannot delete route {} dev {} (host access of network {})",
                r.dst, shim.name, net.name
            )));
        }
    }
    errors.finish()
}

/// The network's link, up or not; None when it is missing or the network has no host access.
pub fn link(rtnl: &Rtnl, net: &Network) -> Result<Option<Shim>> {
    let Some(ha) = &net.host_access else {
        return Ok(None);
    };
    Ok(find(rtnl, net, ha)?.map(|l| Shim {
        index: l.index,
        name: ha.name.clone(),
        addresses: ha.addresses.clone(),
    }))
}

/// Add the routes of `addrs` that are missing (`gc`); returns the addresses routed anew.
pub fn repair_routes(
    rtnl: &Rtnl,
    net: &Network,
    shim: &Shim,
    addrs: &[IpAddr],
) -> Result<Vec<IpAddr>> {
    let mut added = Vec::new();
    for addr in addrs {
        let Some(r) = container_route(net, shim, *addr) else {
            continue;
        };
        match rtnl.add_route(&r) {
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            Ok(()) => added.push(*addr),
            Err(e) => {
                return Err(e.context(format!(
                    "cannot add route {addr} dev {} (host access of network {})",
                    shim.name, net.name
                )));
            }
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::NetworkSpec;

    fn net(args: impl FnOnce(&mut NetworkSpec)) -> Result<Network> {
        let mut spec = NetworkSpec {
            name: "n1".into(),
            parent: Some("eth0".into()),
            subnets: vec![
                "10.1.0.0/24".parse().unwrap(),
                "fd00:1::/64".parse().unwrap(),
            ],
            host_access: Some(Vec::new()),
            ..Default::default()
        };
        args(&mut spec);
        spec.build("0123456789abcdef".repeat(4)).map(|(n, _)| n)
    }

    fn err(args: impl FnOnce(&mut NetworkSpec)) -> String {
        net(args).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn link_names_fit_ifnamsiz() {
        assert_eq!(link_name("lan", "ab"), "ha-lan");
        assert_eq!(link_name("twelve_chars", "x"), "ha-twelve_chars");
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(link_name("thirteen_char", &id), "ha-0123456789ab");
        for name in ["a", "twelve_chars", "a-much-longer-network-name"] {
            validate_ifname(&link_name(name, &id)).unwrap();
        }
    }

    #[test]
    fn holder_is_no_container_id() {
        // Container ids are printable ASCII without spaces (oci.rs, validate_container_id).
        assert!(holder("n1").contains(' '));
    }

    #[test]
    fn create_records_the_link_and_the_given_addresses() {
        let n = net(|s| s.host_access = Some(vec!["10.1.0.200".parse().unwrap()])).unwrap();
        let ha = n.host_access.unwrap();
        assert_eq!(ha.name, "ha-n1");
        assert_eq!(ha.addresses, vec!["10.1.0.200".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        assert!(err(|s| s.internal = true).contains("cannot be used on internal network n1"));
        assert!(err(|s| s.flag = Flag::Private).contains("flag private forbids"));
        let addrs = |a: &[&str]| Some(a.iter().map(|a| a.parse().unwrap()).collect());
        assert!(
            err(|s| s.host_access = addrs(&["10.2.0.5"]))
                .contains("--host-access 10.2.0.5 lies outside every subnet of network n1")
        );
        assert!(err(|s| s.host_access = addrs(&["10.1.0.1"])).contains("gateway address"));
        assert!(err(|s| s.host_access = addrs(&["10.1.0.255"])).contains("broadcast"));
        assert!(
            err(|s| s.host_access = addrs(&["10.1.0.7", "10.1.0.8"]))
                .contains("two addresses of one family")
        );
        net(|s| s.host_access = addrs(&["10.1.0.7", "fd00:1::7"])).unwrap();
    }

    #[test]
    fn routes_cover_containers_outside_the_range() {
        let n = net(|s| s.ip_ranges = vec!["10.1.0.128/25".parse().unwrap()]).unwrap();
        let shim = Shim {
            index: 9,
            name: "ha-n1".into(),
            addresses: vec![
                "10.1.0.127".parse().unwrap(),
                "fd00:1::ffff".parse().unwrap(),
            ],
        };
        let ranges = range_routes(&n, &shim);
        assert_eq!(ranges.len(), 1);
        assert_eq!(ranges[0].dst.to_string(), "10.1.0.128/25");
        assert_eq!(ranges[0].src, Some("10.1.0.127".parse().unwrap()));
        assert!(container_route(&n, &shim, "10.1.0.130".parse().unwrap()).is_none());
        let r = container_route(&n, &shim, "10.1.0.5".parse().unwrap()).unwrap();
        assert_eq!((r.dst.to_string().as_str(), r.oif), ("10.1.0.5/32", 9));
        let r6 = container_route(&n, &shim, "fd00:1::5".parse().unwrap()).unwrap();
        assert_eq!(r6.dst.to_string(), "fd00:1::5/128");
        assert_eq!(r6.src, Some("fd00:1::ffff".parse().unwrap()));
        assert_eq!(r6.protocol, ROUTE_PROTOCOL);
    }
}
