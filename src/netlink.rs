//! The only module that speaks rtnetlink: a small synchronous facade, every netlink call of the
//! project in one place, where a crate upgrade has to touch it. Messages come from rtnetlink's
//! builders and its `packet_route` types; they travel over a plain blocking socket, one request
//! and its acknowledgement at a time. The hook is a short-lived process that sends a handful of
//! requests in sequence: the async runtime this facade used to sit on only added start-up time
//! and memory (docs/benchmark-notes.md).

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload,
};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVlan, IpVlanFlags, IpVlanMode, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use rtnetlink::{
    AddressMessageBuilder, LinkDummy, LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkUnspec,
    LinkVlan, RouteMessageBuilder,
};

use crate::error::{Error, Result};
use crate::link::{Driver, Flag, LinkKind, Mac, Mode};
use crate::netns::Netns;

/// A netlink route socket bound to one network namespace: the one it was opened in.
pub struct Rtnl {
    socket: Socket,
    seq: Cell<u32>,
}

/// What we need to know about a link, decoded from the kernel's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// None for physical devices.
    pub kind: Option<LinkKind>,
    /// Index of the lower device (`IFLA_LINK`), for VLANs and slaves.
    pub lower: Option<u32>,
    pub mtu: Option<u32>,
    /// `IFLA_IFALIAS`: the hook tags its links with the container id they belong to.
    pub alias: Option<String>,
    pub up: bool,
    pub loopback: bool,
    pub ipvlan_mode: Option<Mode>,
    pub ipvlan_flag: Option<Flag>,
    pub macvlan_flag: Option<Flag>,
    pub vlan_id: Option<u16>,
    /// `IFLA_ADDRESS`, as `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
}

/// The slave link the hook creates for a container.
#[derive(Debug, Clone, Copy)]
pub struct SlaveSpec {
    pub driver: Driver,
    pub mode: Mode,
    pub flag: Flag,
    pub mtu: Option<u32>,
    /// macvlan only: ipvlan slaves share the parent's address.
    pub mac: Option<Mac>,
}

/// A route straight out of a link, without a gateway: a container's host route through the
/// host-access link, the route for a network's range, an announcement in a table of its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route {
    pub dst: IpNetwork,
    /// The link the route leaves by.
    pub oif: u32,
    /// Preferred source address of traffic the host sends along it.
    pub src: Option<IpAddr>,
    /// Routing table; None is the main table.
    pub table: Option<u32>,
    /// The protocol number that marks the route as ours (`ip route show proto N`).
    pub protocol: u8,
}

/// Receive buffer: one answer to one request (a link message is 1-2 KiB without VF details).
const RECV_BUF: usize = 32 * 1024;

impl Rtnl {
    /// A socket in the network namespace of the calling thread (the host, for the hook; inside
    /// `Netns::run`, that namespace). The kernel binds a netlink socket to the namespace it was
    /// created in, whichever thread uses it later.
    pub fn current() -> Result<Rtnl> {
        let socket = Socket::new(NETLINK_ROUTE)
            .and_then(|s| s.connect(&SocketAddr::new(0, 0)).map(|()| s))
            .map_err(|e| Error::from(e).context("cannot open a netlink socket"))?;
        Ok(Rtnl {
            socket,
            seq: Cell::new(0),
        })
    }

    /// A socket opened inside `ns`, to be used from this thread.
    pub fn in_netns(ns: &Netns) -> Result<Rtnl> {
        ns.run(Rtnl::current)
    }

    /// Send one request and wait for the kernel's acknowledgement; returns the message the
    /// kernel answered with before it, if any (the link a GETLINK asked for).
    fn request(&self, msg: RouteNetlinkMessage, flags: u16) -> Result<Option<RouteNetlinkMessage>> {
        let mut answers = Vec::new();
        self.exchange(msg, flags, &mut answers)?;
        Ok(answers.pop())
    }

    /// Send one request and collect every message the kernel answers with until its
    /// acknowledgement, or the end of a dump (`NLM_F_DUMP`).
    fn exchange(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
        answers: &mut Vec<RouteNetlinkMessage>,
    ) -> Result<()> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        req.header.sequence_number = seq;
        req.finalize();
        let mut buf = vec![0; req.buffer_len()];
        req.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(|e| Error::from(e).context("cannot send a netlink request"))?;

        let mut rx: Vec<u8> = Vec::with_capacity(RECV_BUF);
        loop {
            rx.clear();
            // MSG_TRUNC: the datagram's real length, so a truncated answer is seen as such.
            let len = self
                .socket
                .recv(&mut rx, libc::MSG_TRUNC)
                .map_err(|e| Error::from(e).context("cannot read the kernel's netlink answer"))?;
            if len > rx.len() {
                crate::bail!("netlink answer of {len} bytes does not fit in {RECV_BUF} bytes");
            }
            let mut rest = &rx[..];
            while !rest.is_empty() {
                let msg =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest).map_err(|e| {
                        Error::msg(format!("cannot decode the kernel's netlink answer: {e}"))
                    })?;
                // Messages are padded to 4 bytes; the last one may end the datagram unpadded.
                let size = (msg.header.length as usize).next_multiple_of(4).max(16);
                rest = rest.get(size..).unwrap_or_default();
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(()),
                            Some(code) => Err(errno_error(-code.get())),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::InnerMessage(m) => answers.push(m),
                    _ => {}
                }
            }
        }
    }

    /// Ask for a link; one that does not exist is `None`.
    fn get_link(&self, msg: LinkMessage) -> Result<Option<Link>> {
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(Some(RouteNetlinkMessage::NewLink(m))) => Ok(Some(decode_link(&m))),
            Ok(_) => Ok(None),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn new_link(&self, msg: LinkMessage) -> Result<()> {
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    fn set_link(&self, msg: LinkMessage) -> Result<()> {
        self.request(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
    }

    pub fn link(&self, name: &str) -> Result<Option<Link>> {
        self.get_link(LinkUnspec::new_with_name(name).build())
    }

    /// Every link of this namespace.
    pub fn links(&self) -> Result<Vec<Link>> {
        let mut answers = Vec::new();
        let msg = RouteNetlinkMessage::GetLink(LinkMessage::default());
        self.exchange(msg, NLM_F_DUMP, &mut answers)?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(decode_link(l)),
                _ => None,
            })
            .collect())
    }

    /// Create the container's slave of `parent`, under `name`, directly inside `target`:
    /// it never exists in the host namespace, where `name` may be taken.
    pub fn add_slave(
        &self,
        name: &str,
        parent: &Link,
        spec: SlaveSpec,
        target: &Netns,
    ) -> Result<()> {
        let msg = slave_message(name, parent.index, spec, Some(target.raw_fd()));
        self.new_link(msg)
            .map_err(|e| kind_error(e, spec.driver.into()))
    }

    /// Create a slave of `parent` in this socket's own namespace (the host's link to its
    /// containers, network/host_access.rs).
    pub fn add_local_slave(&self, name: &str, parent: &Link, spec: SlaveSpec) -> Result<()> {
        self.new_link(slave_message(name, parent.index, spec, None))
            .map_err(|e| kind_error(e, spec.driver.into()))
    }

    /// An 802.1q sub-interface `name` with `vid` on `base`, brought up.
    pub fn add_vlan(&self, name: &str, base: u32, vid: u16) -> Result<()> {
        self.new_link(LinkVlan::new(name, base, vid).up().build())
            .map_err(|e| kind_error(e, LinkKind::Vlan))
    }

    /// A dummy link, brought up: the parent of a network isolated on this host.
    pub fn add_dummy(&self, name: &str) -> Result<()> {
        self.new_link(LinkDummy::new(name).up().build())
            .map_err(|e| kind_error(e, LinkKind::Dummy))
    }

    /// Ask the kernel for an ipvlan link without a lower device: it refuses with EINVAL when
    /// the driver is there (before looking further, so nothing is logged) and with EOPNOTSUPP
    /// when it is not. Nothing is created either way.
    pub fn ipvlan_supported(&self) -> Result<bool> {
        let msg = LinkMessageBuilder::<LinkIpVlan>::new("ipvlan-probe")
            .mode(IpVlanMode::L2)
            .build();
        match self.new_link(msg) {
            Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => Ok(false),
            Err(e) if e.errno() == Some(libc::EINVAL) => Ok(true),
            Err(e) => Err(e.context("cannot probe the kernel for ipvlan support")),
            Ok(()) => Err(Error::msg(
                "the kernel created an ipvlan link without a parent: unexpected; delete link ipvlan-probe",
            )),
        }
    }

    /// Refuse, with the message that says what to load, when this kernel cannot create links
    /// of `driver` (macvlan is checked by creating the link itself).
    pub fn require(&self, driver: Driver) -> Result<()> {
        if driver == Driver::Ipvlan && !self.ipvlan_supported()? {
            return Err(kind_error(errno_error(libc::EOPNOTSUPP), LinkKind::Ipvlan));
        }
        Ok(())
    }

    /// Give a link its final name and the alias that says whose it is, in one request.
    pub fn rename(&self, index: u32, name: &str, alias: &str) -> Result<()> {
        self.set_link(
            LinkUnspec::new_with_index(index)
                .name(name.to_string())
                .alias(alias)
                .build(),
        )
    }

    /// Set the alias that says whose a link is, without a name: Debian 12's kernel (6.1)
    /// refuses to rename a link that is up even to its own name (EBUSY; seen in the VM run).
    pub fn set_alias(&self, index: u32, alias: &str) -> Result<()> {
        self.set_link(LinkUnspec::new_with_index(index).alias(alias).build())
    }

    pub fn set_up(&self, index: u32) -> Result<()> {
        self.set_link(LinkUnspec::new_with_index(index).up().build())
    }

    /// Bring a container's new link up and tag it with the container id (the kernel ignores
    /// an alias at creation), in one request.
    pub fn set_up_tagged(&self, index: u32, alias: &str) -> Result<()> {
        self.set_link(LinkUnspec::new_with_index(index).up().alias(alias).build())
    }

    /// Delete a link; one that is already gone is not an error.
    pub fn del_link(&self, index: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).build();
        match self.request(RouteNetlinkMessage::DelLink(msg), 0) {
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Add an address. IPv6 addresses skip duplicate address detection (`nodad`): they are
    /// usable at once, as Docker's are, and IPAM already guarantees uniqueness.
    pub fn add_address(&self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<()> {
        let msg = match addr {
            IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(index)
                .address(a, prefix_len)
                .build(),
            IpAddr::V6(a) => {
                let mut msg = AddressMessageBuilder::<Ipv6Addr>::new()
                    .index(index)
                    .address(a, prefix_len)
                    .build();
                msg.header.flags |= AddressHeaderFlags::Nodad;
                msg.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
                msg
            }
        };
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// The addresses on link `index`, with their prefix lengths.
    pub fn addresses(&self, index: u32) -> Result<Vec<(IpAddr, u8)>> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        let mut answer = Vec::new();
        self.exchange(
            RouteNetlinkMessage::GetAddress(msg),
            NLM_F_DUMP,
            &mut answer,
        )?;
        Ok(answer
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    a.attributes.iter().find_map(|attr| match attr {
                        AddressAttribute::Address(ip) => Some((*ip, a.header.prefix_len)),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Default route of one family: via `gateway`, or straight out of the device (L3 modes).
    pub fn add_default_route(&self, index: u32, v6: bool, gateway: Option<IpAddr>) -> Result<()> {
        let msg = match (v6, gateway) {
            (false, Some(IpAddr::V4(gw))) => RouteMessageBuilder::<Ipv4Addr>::new()
                .output_interface(index)
                .gateway(gw)
                .build(),
            (true, Some(IpAddr::V6(gw))) => RouteMessageBuilder::<Ipv6Addr>::new()
                .output_interface(index)
                .gateway(gw)
                .build(),
            (false, _) => RouteMessageBuilder::<Ipv4Addr>::new()
                .output_interface(index)
                .scope(RouteScope::Link)
                .build(),
            (true, _) => RouteMessageBuilder::<Ipv6Addr>::new()
                .output_interface(index)
                .build(),
        };
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Add `route`; one to the same destination in the same table already there is EEXIST.
    pub fn add_route(&self, route: &Route) -> Result<()> {
        self.new_route(route, NLM_F_EXCL)
    }

    /// Add `route`, or make the route to its destination in its table this one.
    pub fn replace_route(&self, route: &Route) -> Result<()> {
        self.new_route(route, NLM_F_REPLACE)
    }

    fn new_route(&self, route: &Route, flag: u16) -> Result<()> {
        let msg = RouteNetlinkMessage::NewRoute(route_message(route));
        self.request(msg, NLM_F_CREATE | flag).map(drop)
    }

    /// Delete `route` (matched by destination, table, link and protocol: never a route that
    /// is not ours); one that is already gone is not an error.
    pub fn del_route(&self, route: &Route) -> Result<()> {
        let msg = route_message(route);
        match self.request(RouteNetlinkMessage::DelRoute(msg), 0) {
            Err(e) if matches!(e.errno(), Some(libc::ESRCH | libc::ENOENT | libc::ENODEV)) => {
                Ok(())
            }
            r => r.map(drop),
        }
    }
}

/// The message for `route`. Scope link, as `ip route add PREFIX dev LINK` makes it: the
/// destination is on the link, no gateway.
fn route_message(route: &Route) -> RouteMessage {
    let mut msg = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(route.dst.network(), route.dst.prefix())
        .expect("an IpNetwork's prefix fits its family")
        .output_interface(route.oif)
        .protocol(RouteProtocol::from(route.protocol))
        .scope(RouteScope::Link);
    if let Some(src) = route.src.filter(|s| s.is_ipv4() == route.dst.is_ipv4()) {
        msg = msg
            .pref_source(src)
            .expect("same family as the destination");
    }
    if let Some(table) = route.table {
        msg = msg.table_id(table);
    }
    msg.build()
}

/// A route found in a table, as far as the tables' owners need to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRoute {
    pub destination: IpAddr,
    pub prefix_len: u8,
    pub protocol: u8,
}

impl Rtnl {
    /// Every IPv4 and IPv6 route of routing table `table`, whoever made it.
    pub fn table_routes(&self, table: u32) -> Result<Vec<TableRoute>> {
        let mut routes = Vec::new();
        // One dump per family: an unspecified one would bring multicast and MPLS routes too.
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut msg = RouteMessage::default();
            msg.header.address_family = family;
            let mut answers = Vec::new();
            self.exchange(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP, &mut answers)
                .map_err(|e| e.context(format!("cannot list the routes of table {table}")))?;
            routes.extend(answers.iter().filter_map(|m| {
                match m {
                    RouteNetlinkMessage::NewRoute(r) => decode_route(r)
                        .filter(|(t, _)| *t == table)
                        .map(|(_, route)| route),
                    _ => None,
                }
            }));
        }
        Ok(routes)
    }
}

/// The table (RTA_TABLE, or the header's 8 bits) and route; None for a family other than
/// IPv4 and IPv6, which the dumps above do not ask for.
fn decode_route(m: &RouteMessage) -> Option<(u32, TableRoute)> {
    let mut table = u32::from(m.header.table);
    let mut destination = None;
    for attr in &m.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => {
                destination = Some(IpAddr::V4(*a))
            }
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => {
                destination = Some(IpAddr::V6(*a))
            }
            _ => {}
        }
    }
    // A default route carries no destination attribute.
    let destination = match (destination, m.header.address_family) {
        (Some(d), _) => d,
        (None, AddressFamily::Inet) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (None, AddressFamily::Inet6) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        (None, _) => return None,
    };
    Some((
        table,
        TableRoute {
            destination,
            prefix_len: m.header.destination_prefix_length,
            protocol: m.header.protocol.into(),
        },
    ))
}

/// Kernel feature probes for `doctor`, like `ipvlan_supported`: each sends a link request the
/// driver refuses for its content (nothing is created, nothing is logged); a kernel without
/// the driver refuses it as an unknown device type (EOPNOTSUPP).
impl Rtnl {
    /// An 802.1q VLAN without a lower device: EINVAL ("link not specified") from the 8021q
    /// driver.
    pub fn vlan_supported(&self) -> Result<bool> {
        let msg = LinkMessageBuilder::<LinkVlan>::new(PROBE_LINK)
            .id(1)
            .build();
        self.probe("802.1q VLAN", msg, libc::EINVAL)
    }

    /// A dummy link with a multicast MAC address: EADDRNOTAVAIL from the dummy driver.
    pub fn dummy_supported(&self) -> Result<bool> {
        let msg = LinkMessageBuilder::<LinkDummy>::new(PROBE_LINK)
            .address(vec![0x01, 0x00, 0x5e, 0x00, 0x00, 0x01])
            .build();
        self.probe("dummy", msg, libc::EADDRNOTAVAIL)
    }

    fn probe(&self, what: &str, msg: LinkMessage, refused: i32) -> Result<bool> {
        match self.new_link(msg) {
            Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => Ok(false),
            Err(e) if e.errno() == Some(refused) => Ok(true),
            Err(e) => Err(e.context(format!("cannot probe the kernel for {what} support"))),
            Ok(()) => {
                // A kernel that accepted the request after all: the driver is there; take the
                // link away again.
                if let Some(link) = self.link(PROBE_LINK)? {
                    self.del_link(link.index)?;
                }
                Ok(true)
            }
        }
    }
}

/// Name of the links the probes ask for (and the kernel refuses).
const PROBE_LINK: &str = "ipvh-probe";

/// The netlink message that creates a container's slave (separate for unit tests).
fn slave_message(name: &str, parent: u32, spec: SlaveSpec, netns_fd: Option<i32>) -> LinkMessage {
    let msg = match spec.driver {
        Driver::Ipvlan => {
            let mode = match spec.mode {
                Mode::L2 => IpVlanMode::L2,
                Mode::L3 => IpVlanMode::L3,
                Mode::L3s => IpVlanMode::L3S,
            };
            let b = LinkIpVlan::new(name, parent, mode);
            // Bridge is the kernel default: no flag attribute, which also keeps kernels
            // older than 4.15 (no IFLA_IPVLAN_FLAGS) working.
            let b = match spec.flag {
                Flag::Bridge => b,
                Flag::Private => b.flag(IpVlanFlags::Private),
                Flag::Vepa => b.flag(IpVlanFlags::Vepa),
            };
            in_netns(b, netns_fd)
        }
        Driver::Macvlan => {
            let mode = match spec.flag {
                Flag::Bridge => MacVlanMode::Bridge,
                Flag::Private => MacVlanMode::Private,
                Flag::Vepa => MacVlanMode::Vepa,
            };
            let b = with_mtu(
                in_netns(LinkMacVlan::new(name, parent, mode), netns_fd),
                spec.mtu,
            );
            return match spec.mac {
                Some(m) => b.address(m.0.to_vec()),
                None => b,
            }
            .build();
        }
    };
    with_mtu(msg, spec.mtu).build()
}

fn in_netns<T>(b: LinkMessageBuilder<T>, netns_fd: Option<i32>) -> LinkMessageBuilder<T> {
    match netns_fd {
        Some(fd) => b.setns_by_fd(fd),
        None => b,
    }
}

fn with_mtu<T>(b: LinkMessageBuilder<T>, mtu: Option<u32>) -> LinkMessageBuilder<T> {
    match mtu {
        Some(m) => b.mtu(m),
        None => b,
    }
}

fn decode_link(m: &LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        kind: None,
        lower: None,
        mtu: None,
        alias: None,
        up: m.header.flags.contains(LinkFlags::Up),
        loopback: m.header.flags.contains(LinkFlags::Loopback),
        ipvlan_mode: None,
        ipvlan_flag: None,
        macvlan_flag: None,
        vlan_id: None,
        mac: None,
    };
    for attr in &m.attributes {
        match attr {
            LinkAttribute::Address(a) if a.len() == 6 => {
                link.mac = Some(
                    a.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                )
            }
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Mtu(v) => link.mtu = Some(*v),
            LinkAttribute::IfAlias(a) => link.alias = Some(a.clone()),
            LinkAttribute::Link(i) => link.lower = Some(*i),
            LinkAttribute::LinkInfo(infos) => decode_info(infos, &mut link),
            _ => {}
        }
    }
    link
}

fn decode_info(infos: &[LinkInfo], link: &mut Link) {
    for info in infos {
        match info {
            LinkInfo::Kind(k) => link.kind = Some(kind_name(k)),
            LinkInfo::Data(InfoData::IpVlan(data)) => {
                // A kernel that reports no flags attribute runs the default: bridge.
                link.ipvlan_flag = Some(Flag::Bridge);
                for d in data {
                    match d {
                        InfoIpVlan::Mode(IpVlanMode::L2) => link.ipvlan_mode = Some(Mode::L2),
                        InfoIpVlan::Mode(IpVlanMode::L3) => link.ipvlan_mode = Some(Mode::L3),
                        InfoIpVlan::Mode(IpVlanMode::L3S) => link.ipvlan_mode = Some(Mode::L3s),
                        InfoIpVlan::Flags(f) if f.contains(IpVlanFlags::Private) => {
                            link.ipvlan_flag = Some(Flag::Private)
                        }
                        InfoIpVlan::Flags(f) if f.contains(IpVlanFlags::Vepa) => {
                            link.ipvlan_flag = Some(Flag::Vepa)
                        }
                        _ => {}
                    }
                }
            }
            LinkInfo::Data(InfoData::MacVlan(data)) => {
                for d in data {
                    link.macvlan_flag = match d {
                        InfoMacVlan::Mode(MacVlanMode::Bridge) => Some(Flag::Bridge),
                        InfoMacVlan::Mode(MacVlanMode::Private) => Some(Flag::Private),
                        InfoMacVlan::Mode(MacVlanMode::Vepa) => Some(Flag::Vepa),
                        _ => continue,
                    };
                }
            }
            LinkInfo::Data(InfoData::Vlan(data)) => {
                for d in data {
                    if let InfoVlan::Id(id) = d {
                        link.vlan_id = Some(*id);
                    }
                }
            }
            _ => {}
        }
    }
}

fn kind_name(k: &InfoKind) -> LinkKind {
    match k {
        InfoKind::IpVlan => LinkKind::Ipvlan,
        InfoKind::MacVlan => LinkKind::Macvlan,
        InfoKind::Vlan => LinkKind::Vlan,
        InfoKind::Dummy => LinkKind::Dummy,
        InfoKind::Veth => LinkKind::Veth,
        other => LinkKind::Other(other.to_string()),
    }
}

/// A kernel error as the OS reports it ("File exists (os error 17)"), errno kept for callers
/// that treat some as success.
fn errno_error(errno: i32) -> Error {
    Error::with_errno(std::io::Error::from_raw_os_error(errno).to_string(), errno)
}

/// Link creation: a kernel without the driver answers EOPNOTSUPP ("Unknown device type").
fn kind_error(e: Error, kind: LinkKind) -> Error {
    if e.errno() == Some(libc::EOPNOTSUPP) {
        return Error::with_errno(kind.unsupported(), libc::EOPNOTSUPP);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipvlan_data(msg: &LinkMessage) -> Vec<InfoIpVlan> {
        msg.attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                    LinkInfo::Data(InfoData::IpVlan(d)) => Some(d.clone()),
                    _ => None,
                }),
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn ipvlan_message_carries_mode_flag_parent_netns_and_name() {
        let spec = SlaveSpec {
            driver: Driver::Ipvlan,
            mode: Mode::L3s,
            flag: Flag::Private,
            mtu: Some(1400),
            mac: None,
        };
        let msg = slave_message("tmp0", 7, spec, Some(42));
        assert!(
            msg.attributes
                .contains(&LinkAttribute::IfName("tmp0".into()))
        );
        assert!(msg.attributes.contains(&LinkAttribute::Link(7)));
        assert!(msg.attributes.contains(&LinkAttribute::NetNsFd(42)));
        assert!(msg.attributes.contains(&LinkAttribute::Mtu(1400)));
        let data = ipvlan_data(&msg);
        assert!(data.contains(&InfoIpVlan::Mode(IpVlanMode::L3S)));
        assert!(data.contains(&InfoIpVlan::Flags(IpVlanFlags::Private)));
        // Decoding our own message gives back what we asked for.
        let link = decode_link(&msg);
        assert_eq!(
            (link.ipvlan_mode, link.ipvlan_flag, link.lower),
            (Some(Mode::L3s), Some(Flag::Private), Some(7))
        );
    }

    #[test]
    fn bridge_flag_sends_no_flag_attribute() {
        let spec = SlaveSpec {
            driver: Driver::Ipvlan,
            mode: Mode::L2,
            flag: Flag::Bridge,
            mtu: None,
            mac: None,
        };
        let msg = slave_message("tmp0", 3, spec, Some(5));
        assert_eq!(ipvlan_data(&msg), vec![InfoIpVlan::Mode(IpVlanMode::L2)]);
        assert!(
            !msg.attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::Mtu(_)))
        );
    }

    #[test]
    fn macvlan_message_maps_flag_to_mode() {
        let spec = SlaveSpec {
            driver: Driver::Macvlan,
            mode: Mode::L2,
            flag: Flag::Vepa,
            mtu: None,
            mac: Some(Mac([2, 0x42, 0, 0, 0, 7])),
        };
        let msg = slave_message("tmp0", 3, spec, Some(5));
        assert!(
            msg.attributes
                .contains(&LinkAttribute::Address(vec![2, 0x42, 0, 0, 0, 7]))
        );
        let link = decode_link(&msg);
        assert_eq!(
            (link.kind, link.macvlan_flag, link.mac.as_deref()),
            (
                Some(LinkKind::Macvlan),
                Some(Flag::Vepa),
                Some("02:42:00:00:00:07")
            )
        );
    }

    #[test]
    fn missing_driver_error_names_the_module() {
        let e = kind_error(errno_error(libc::EOPNOTSUPP), LinkKind::Ipvlan);
        assert_eq!(e.to_string(), LinkKind::Ipvlan.unsupported());
        assert_eq!(e.errno(), Some(libc::EOPNOTSUPP));
    }
}
