//! The only module that speaks rtnetlink. A small synchronous facade over the async crate, on a
//! current-thread tokio runtime: the rest of the program stays plain blocking code, and every
//! netlink call of the project is here, where a crate upgrade has to touch it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVlan, IpVlanFlags, IpVlanMode, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::packet_route::route::RouteScope;
use rtnetlink::{
    Handle, LinkDummy, LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVlan,
    RouteMessageBuilder,
};
use tokio::runtime::Runtime;

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::network::{Driver, Flag, Mode};

/// A netlink route socket bound to one network namespace.
pub struct Rtnl {
    rt: Rc<Runtime>,
    handle: Handle,
}

/// What we need to know about a link, decoded from the kernel's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `ipvlan`, `macvlan`, `vlan`, `dummy`, `veth`…; None for physical devices.
    pub kind: Option<String>,
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
}

/// The slave link the hook creates for a container.
#[derive(Debug, Clone, Copy)]
pub struct SlaveSpec {
    pub driver: Driver,
    pub mode: Mode,
    pub flag: Flag,
    pub mtu: Option<u32>,
}

impl Rtnl {
    /// A socket in the namespace of the calling thread (the host, for the hook).
    pub fn host() -> Result<Rtnl> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::from(e).context("cannot start the netlink runtime"))?;
        let rt = Rc::new(rt);
        let handle = connect(&rt)?;
        Ok(Rtnl { rt, handle })
    }

    /// A socket opened inside `ns` (on a thread that entered it), used from this thread. The
    /// kernel binds a netlink socket to the namespace it was created in.
    pub fn in_netns(&self, ns: &Netns) -> Result<Rtnl> {
        let rt_handle = self.rt.handle().clone();
        let (conn, handle) = ns.run(move || {
            let _guard = rt_handle.enter();
            let (conn, handle, _) = rtnetlink::new_connection()
                .map_err(|e| Error::from(e).context("cannot open a netlink socket"))?;
            Ok((conn, handle))
        })?;
        self.rt.spawn(conn);
        Ok(Rtnl {
            rt: self.rt.clone(),
            handle,
        })
    }

    pub fn link(&self, name: &str) -> Result<Option<Link>> {
        let req = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        self.first_link(req)
    }

    pub fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        let req = self.handle.link().get().match_index(index).execute();
        self.first_link(req)
    }

    fn first_link(
        &self,
        mut stream: impl futures_util::Stream<Item = Result<LinkMessage, rtnetlink::Error>> + Unpin,
    ) -> Result<Option<Link>> {
        match self.rt.block_on(stream.try_next()) {
            Ok(msg) => Ok(msg.map(|m| decode_link(&m))),
            Err(e) => match errno_of(&e) {
                Some(libc::ENODEV) => Ok(None),
                _ => Err(nl_error(e)),
            },
        }
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
        let msg = slave_message(name, parent.index, spec, target.raw_fd());
        self.rt
            .block_on(self.handle.link().add(msg).execute())
            .map_err(|e| kind_error(e, spec.driver.kernel_kind()))
    }

    /// An 802.1q sub-interface `name` with `vid` on `base`, brought up.
    pub fn add_vlan(&self, name: &str, base: u32, vid: u16) -> Result<()> {
        let msg = LinkVlan::new(name, base, vid).up().build();
        self.rt
            .block_on(self.handle.link().add(msg).execute())
            .map_err(|e| kind_error(e, "vlan"))
    }

    /// A dummy link, brought up: the parent of a network isolated on this host.
    pub fn add_dummy(&self, name: &str) -> Result<()> {
        let msg = LinkDummy::new(name).up().build();
        self.rt
            .block_on(self.handle.link().add(msg).execute())
            .map_err(|e| kind_error(e, "dummy"))
    }

    /// Ask the kernel for an ipvlan link without a lower device: it refuses with EINVAL when
    /// the driver is there (before looking further, so nothing is logged) and with EOPNOTSUPP
    /// when it is not. Nothing is created either way.
    pub fn ipvlan_supported(&self) -> Result<bool> {
        let msg = LinkMessageBuilder::<LinkIpVlan>::new("ipvlan-probe")
            .mode(IpVlanMode::L2)
            .build();
        match self.rt.block_on(self.handle.link().add(msg).execute()) {
            Err(e) if errno_of(&e) == Some(libc::EOPNOTSUPP) => Ok(false),
            Err(e) if errno_of(&e) == Some(libc::EINVAL) => Ok(true),
            Err(e) => Err(nl_error(e).context("cannot probe the kernel for ipvlan support")),
            Ok(()) => Err(Error::msg(
                "the kernel created an ipvlan link without a parent: unexpected; delete link ipvlan-probe",
            )),
        }
    }

    /// Give a link its final name and the alias that says whose it is, in one request.
    pub fn rename(&self, index: u32, name: &str, alias: &str) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .name(name.to_string())
            .alias(alias)
            .build();
        self.rt
            .block_on(self.handle.link().set(msg).execute())
            .map_err(nl_error)
    }

    pub fn set_up(&self, index: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.rt
            .block_on(self.handle.link().set(msg).execute())
            .map_err(nl_error)
    }

    /// Delete a link; one that is already gone is not an error.
    pub fn del_link(&self, index: u32) -> Result<()> {
        match self.rt.block_on(self.handle.link().del(index).execute()) {
            Err(e) if errno_of(&e) == Some(libc::ENODEV) => Ok(()),
            r => r.map_err(nl_error),
        }
    }

    /// Add an address. IPv6 addresses skip duplicate address detection (`nodad`): they are
    /// usable at once, as Docker's are, and IPAM already guarantees uniqueness.
    pub fn add_address(&self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<()> {
        let mut req = self.handle.address().add(index, addr, prefix_len);
        if addr.is_ipv6() {
            let msg = req.message_mut();
            msg.header.flags |= AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        self.rt.block_on(req.execute()).map_err(nl_error)
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
        self.rt
            .block_on(self.handle.route().add(msg).execute())
            .map_err(nl_error)
    }
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
        match self.rt.block_on(self.handle.link().add(msg).execute()) {
            Err(e) if errno_of(&e) == Some(libc::EOPNOTSUPP) => Ok(false),
            Err(e) if errno_of(&e) == Some(refused) => Ok(true),
            Err(e) => {
                Err(nl_error(e).context(format!("cannot probe the kernel for {what} support")))
            }
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

fn connect(rt: &Runtime) -> Result<Handle> {
    let _guard = rt.enter();
    let (conn, handle, _) = rtnetlink::new_connection()
        .map_err(|e| Error::from(e).context("cannot open a netlink socket"))?;
    rt.spawn(conn);
    Ok(handle)
}

/// The netlink message that creates a container's slave (separate for unit tests).
fn slave_message(name: &str, parent: u32, spec: SlaveSpec, netns_fd: i32) -> LinkMessage {
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
            b.setns_by_fd(netns_fd)
        }
        Driver::Macvlan => {
            let mode = match spec.flag {
                Flag::Bridge => MacVlanMode::Bridge,
                Flag::Private => MacVlanMode::Private,
                Flag::Vepa => MacVlanMode::Vepa,
            };
            return with_mtu(
                LinkMacVlan::new(name, parent, mode).setns_by_fd(netns_fd),
                spec.mtu,
            )
            .build();
        }
    };
    with_mtu(msg, spec.mtu).build()
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
    };
    for attr in &m.attributes {
        match attr {
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

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::IpVlan => "ipvlan".into(),
        InfoKind::MacVlan => "macvlan".into(),
        InfoKind::Vlan => "vlan".into(),
        InfoKind::Dummy => "dummy".into(),
        InfoKind::Veth => "veth".into(),
        other => other.to_string(),
    }
}

fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => Some(-msg.raw_code()),
        _ => None,
    }
}

fn nl_error(e: rtnetlink::Error) -> Error {
    match e {
        rtnetlink::Error::NetlinkError(msg) => {
            Error::with_errno(msg.to_io().to_string(), -msg.raw_code())
        }
        other => Error::msg(other.to_string()),
    }
}

/// Link creation: a kernel without the driver answers EOPNOTSUPP ("Unknown device type").
fn kind_error(e: rtnetlink::Error, kind: &str) -> Error {
    if errno_of(&e) == Some(libc::EOPNOTSUPP) {
        let (config, module) = match kind {
            "ipvlan" => ("CONFIG_IPVLAN", "ipvlan"),
            "macvlan" => ("CONFIG_MACVLAN", "macvlan"),
            "vlan" => ("CONFIG_VLAN_8021Q", "8021q"),
            _ => ("CONFIG_DUMMY", "dummy"),
        };
        let what = if kind == "vlan" { "802.1q VLAN" } else { kind };
        return Error::with_errno(
            format!(
                "kernel lacks {what} support ({config}): load the {module} module (modprobe {module})"
            ),
            libc::EOPNOTSUPP,
        );
    }
    nl_error(e)
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
        };
        let msg = slave_message("tmp0", 7, spec, 42);
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
        };
        let msg = slave_message("tmp0", 3, spec, 5);
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
        };
        let link = decode_link(&slave_message("tmp0", 3, spec, 5));
        assert_eq!(
            (link.kind.as_deref(), link.macvlan_flag),
            (Some("macvlan"), Some(Flag::Vepa))
        );
    }

    #[test]
    fn missing_driver_error_names_the_module() {
        let mut msg = rtnetlink::packet_core::ErrorMessage::default();
        msg.code = std::num::NonZeroI32::new(-libc::EOPNOTSUPP);
        let e = kind_error(rtnetlink::Error::NetlinkError(msg), "ipvlan");
        assert_eq!(
            e.to_string(),
            "kernel lacks ipvlan support (CONFIG_IPVLAN): load the ipvlan module (modprobe ipvlan)"
        );
        assert_eq!(e.errno(), Some(libc::EOPNOTSUPP));
    }
}
