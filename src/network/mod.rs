//! Network definitions: what `network create` records and the hook attaches containers to.
//! Docker's ipvlan driver semantics; everything here is pure validation, so bad input is
//! refused before anything touches the kernel or the disk.

pub mod announce;
pub mod host_access;
pub mod opts;
pub mod parent;
pub mod store;

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::Result;
pub use crate::link::{Driver, Flag, Mode};
use announce::Announce;
pub use host_access::HostAccess;

/// Version of the network file format written by this build.
pub const VERSION: u32 = 1;

/// Where a network's leases live: this host's lease files, or etcd, shared by every host on
/// the network's layer 2 segment (feature "etcd"; see `stores`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Ipam {
    #[default]
    Files,
    Etcd,
}

impl Ipam {
    pub fn is_files(&self) -> bool {
        *self == Ipam::Files
    }
}

/// A parent link the network created itself, and so deletes on `network rm` and re-creates
/// when it has gone missing (after a reboot).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OwnedParent {
    /// 802.1q sub-interface `BASE.VID`.
    Vlan,
    /// Dummy link `di-<id prefix>`: a network isolated on this host.
    Dummy,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub subnet: IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNetwork>,
    /// Docker's `--aux-address NAME=IP`: addresses of the subnet never handed out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub version: u32,
    pub name: String,
    pub id: String,
    #[serde(default)]
    pub driver: Driver,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub flag: Flag,
    pub parent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_owned: Option<OwnedParent>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    pub subnets: Vec<Subnet>,
    /// Left out of the file for lease files, so such files stay as they were.
    #[serde(default, skip_serializing_if = "Ipam::is_files")]
    pub ipam: Ipam,
    /// Container routes for a BGP speaker (`--announce`); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce: Option<Announce>,
    /// The host's own link to the containers (`--host-access`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_access: Option<HostAccess>,
}

/// What a user asked for (`network create` flags, `run` flags or annotations), before
/// defaults are filled in and the parent is resolved.
#[derive(Clone, Debug, Default)]
pub struct NetworkSpec {
    pub name: String,
    pub driver: Driver,
    pub mode: Mode,
    pub flag: Flag,
    pub parent: Option<String>,
    pub internal: bool,
    pub mtu: Option<u32>,
    pub subnets: Vec<IpNetwork>,
    pub gateways: Vec<IpAddr>,
    pub ip_ranges: Vec<IpNetwork>,
    pub aux_addresses: Vec<(String, IpAddr)>,
    /// Routing table of `--announce`.
    pub announce: Option<u32>,
    /// `--host-access[=ADDR[,ADDR6]]`: None without it; the addresses given, if any.
    pub host_access: Option<Vec<IpAddr>>,
}

impl Network {
    /// L3 and L3S route without a next hop, like Docker: `default dev IFNAME`.
    pub fn routes_via_gateway(&self) -> bool {
        self.driver == Driver::Macvlan || self.mode == Mode::L2
    }

    pub fn has_family(&self, v6: bool) -> bool {
        self.subnets.iter().any(|s| s.subnet.is_ipv6() == v6)
    }

    /// The subnet an address belongs to.
    pub fn subnet_of(&self, addr: IpAddr) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.subnet.contains(addr))
    }

    /// A static address a container asked for (`key` says how), as `ADDR` or `ADDR/PREFIX`:
    /// it must lie in a subnet, with that subnet's prefix.
    pub fn check_static(&self, key: &str, addr: IpAddr, prefix: Option<u8>) -> Result<()> {
        let name = &self.name;
        let Some(s) = self.subnet_of(addr) else {
            bail!("{key}={addr} lies outside every subnet of network {name}");
        };
        if let Some(p) = prefix.filter(|p| *p != s.subnet.prefix()) {
            bail!("{key}={addr}/{p}: network {name} has subnet {}", s.subnet);
        }
        Ok(())
    }

    /// The default route a container address gets: None for none (an internal network, an L2
    /// subnet without gateway), else its next hop (None: straight out of the device, L3).
    pub fn default_route(&self, addr: IpAddr) -> Option<Option<IpAddr>> {
        if self.internal {
            return None;
        }
        if !self.routes_via_gateway() {
            return Some(None);
        }
        self.subnet_of(addr).and_then(|s| s.gateway).map(Some)
    }

    /// `check_shares_parent_with` each of `others` (every defined network, for a new one).
    pub fn check_shares_parent_with_all<'a>(
        &self,
        others: impl IntoIterator<Item = &'a Network>,
    ) -> Result<()> {
        others
            .into_iter()
            .try_for_each(|other| self.check_shares_parent_with(other))
    }

    /// Check that `other` can share this network's parent: the kernel keeps one ipvlan mode
    /// and flag per parent, and cannot mix macvlan and ipvlan slaves on one parent.
    pub fn check_shares_parent_with(&self, other: &Network) -> Result<()> {
        if self.parent != other.parent {
            return Ok(());
        }
        if self.driver != other.driver {
            bail!(
                "parent {} already carries {} network {}: the kernel cannot mix macvlan and ipvlan on one parent; use another parent (e.g. a VLAN sub-interface {}.VID)",
                self.parent,
                other.driver,
                other.name,
                base_name(&self.parent)
            );
        }
        if self.driver == Driver::Ipvlan && (self.mode, self.flag) != (other.mode, other.flag) {
            bail!(
                "parent {} already carries ipvlan network {} in mode {} flag {}: the kernel shares one ipvlan mode per parent; use --mode {} --flag {} or another parent",
                self.parent,
                other.name,
                other.mode,
                other.flag,
                other.mode,
                other.flag
            );
        }
        for s in &self.subnets {
            for o in &other.subnets {
                if overlaps(s.subnet, o.subnet) {
                    bail!(
                        "subnet {} overlaps subnet {} of network {} on the same parent {}",
                        s.subnet,
                        o.subnet,
                        other.name,
                        self.parent
                    );
                }
            }
        }
        Ok(())
    }
}

impl NetworkSpec {
    /// Validate and fill in Docker's defaults. Returns the network (parent still as named,
    /// `parent` empty when a dummy is to be made) and warnings for the user.
    pub fn build(self, id: String) -> Result<(Network, Vec<String>)> {
        let mut warnings = Vec::new();
        let mut subnets: Vec<Subnet> = self
            .subnets
            .iter()
            .map(|net| Subnet {
                subnet: *net,
                gateway: None,
                ip_range: None,
                aux_addresses: BTreeMap::new(),
            })
            .collect();
        for gw in &self.gateways {
            let s = find_subnet(&mut subnets, *gw, "--gateway")?;
            if s.gateway.replace(*gw).is_some() {
                bail!("two gateways given for subnet {}", s.subnet);
            }
        }
        for range in &self.ip_ranges {
            let s = find_subnet(&mut subnets, range.ip(), "--ip-range")?;
            if s.ip_range.replace(*range).is_some() {
                bail!("two --ip-range values given for subnet {}", s.subnet);
            }
        }
        for (name, addr) in &self.aux_addresses {
            let s = find_subnet(&mut subnets, *addr, "--aux-address")?;
            s.aux_addresses.insert(name.clone(), *addr);
        }
        let mut net = Network {
            version: VERSION,
            name: self.name,
            id,
            driver: self.driver,
            mode: self.mode,
            flag: self.flag,
            parent: self.parent.unwrap_or_default(),
            parent_owned: None,
            internal: self.internal,
            mtu: self.mtu,
            subnets,
            ipam: Ipam::Files,
            announce: self.announce.map(Announce::new),
            host_access: None,
        };
        net.host_access = self.host_access.map(|addresses| HostAccess {
            name: host_access::link_name(&net.name, &net.id),
            addresses,
        });
        net.check(Naming::Flags)?;
        // No parent means a dummy parent: containers of the network reach each other and
        // nothing else; they still get the gateway route unless --internal.
        let l3 = net.driver == Driver::Ipvlan && net.mode != Mode::L2;
        if l3 && !self.gateways.is_empty() {
            warnings.push(format!(
                "--gateway ignored: ipvlan {} mode routes without a gateway (default dev IFNAME)",
                net.mode
            ));
        } else if net.internal && !self.gateways.is_empty() {
            warnings.push("--gateway ignored: internal networks get no default route".into());
        }
        for s in &mut net.subnets {
            if l3 || net.internal {
                s.gateway = None;
            } else if s.gateway.is_none() {
                s.gateway = Some(first_host(s.subnet));
            }
        }
        // Again with the default gateways in place: an aux address or the host's address must
        // not be one.
        net.check(Naming::Flags)?;
        if let Some(ha) = &net.host_access {
            host_access::check(&net, ha, "--host-access")?;
        }
        if net.host_access.is_some() && net.flag == Flag::Vepa {
            warnings.push(
                "--host-access with flag vepa: the host reaches its containers only if the switch port reflects traffic back (hairpin)"
                    .into(),
            );
        }
        Ok((net, warnings))
    }
}

/// How a validation error names a setting: as the `network create` flag (`--ip-range`) or as
/// the key of the network file (`ip_range`), whichever the user wrote.
#[derive(Clone, Copy)]
enum Naming {
    Flags,
    Keys,
}

impl Naming {
    fn of(self, key: &str) -> String {
        match self {
            Naming::Flags => format!("--{}", key.replace('_', "-")),
            Naming::Keys => key.to_string(),
        }
    }
}

impl Network {
    /// What `network create` checks, checked again on a network read from its file (which may
    /// have been edited by hand); errors name the file's keys.
    pub fn validate(&self) -> Result<()> {
        self.check(Naming::Keys)
    }

    /// Every value check of `NetworkSpec::build`. An empty parent passes: it stands for the
    /// dummy parent `network create` makes.
    fn check(&self, naming: Naming) -> Result<()> {
        validate_name(&self.name)?;
        let p = &self.parent;
        if !p.is_empty() {
            validate_ifname(p).map_err(|e| e.context(format!("{} {p}", naming.of("parent"))))?;
            if p == "lo" {
                bail!(
                    "loopback interface lo is not a valid parent: name an Ethernet link or a VLAN sub-interface such as eth0.10 (an isolated network is made by 'network create' without --parent)"
                );
            }
        }
        if self.driver == Driver::Macvlan && self.mode != Mode::L2 {
            bail!(
                "{} {} is an ipvlan mode; macvlan networks take {} bridge|private|vepa",
                naming.of("mode"),
                self.mode,
                naming.of("flag")
            );
        }
        if let Some(a) = &self.announce {
            a.check(match naming {
                Naming::Flags => "--announce",
                Naming::Keys => "announce.table",
            })?;
        }
        if let Some(mtu) = self.mtu {
            let min = if self.has_family(true) { 1280 } else { 68 };
            if !(min..=65535).contains(&mtu) {
                bail!(
                    "{} {mtu} is out of range: use {min} to 65535",
                    naming.of("mtu")
                );
            }
        }
        let subnet = naming.of("subnet");
        if self.subnets.is_empty() {
            bail!(
                "network {} needs at least one {subnet} (e.g. {subnet} 192.168.1.0/24)",
                self.name
            );
        }
        for (i, s) in self.subnets.iter().enumerate() {
            let net = s.subnet;
            if net.network() != net.ip() {
                bail!(
                    "{subnet} {net} has host bits set: did you mean {}/{}?",
                    net.network(),
                    net.prefix()
                );
            }
            let max = if net.is_ipv4() { 30 } else { 126 };
            if net.prefix() > max {
                bail!("{subnet} {net} is too small to allocate from: use a /{max} or larger");
            }
            if let Some(o) = self.subnets[..i].iter().find(|o| overlaps(o.subnet, net)) {
                bail!("{subnet} {net} overlaps {subnet} {}", o.subnet);
            }
            if let Some(gw) = s.gateway {
                let gateway = naming.of("gateway");
                if !net.contains(gw) {
                    bail!(
                        "{gateway} {gw} lies outside its subnet {net}: choose an address inside it"
                    );
                }
                if reserved(net, gw) {
                    bail!(
                        "{gateway} {gw} is the network or broadcast address of {net}: choose a host address"
                    );
                }
            }
            for (name, aux) in &s.aux_addresses {
                let what = format!("{} {name}={aux}", naming.of("aux_address"));
                if !net.contains(*aux) {
                    bail!("{what} lies outside its subnet {net}");
                }
                if reserved(net, *aux) {
                    bail!(
                        "{what} is the network or broadcast address of {net}: choose a host address"
                    );
                }
                if s.gateway == Some(*aux) {
                    bail!(
                        "{what} is the gateway of {net}: the gateway is never handed out anyway; drop the --aux-address or choose another address"
                    );
                }
            }
            if let Some(range) = s.ip_range {
                let ip_range = naming.of("ip_range");
                if !net.contains(range.ip()) {
                    bail!("{ip_range} {range} lies outside its subnet {net}");
                }
                if range.prefix() < net.prefix() {
                    bail!("{ip_range} {range} is larger than its subnet {net}");
                }
                if range.network() != range.ip() {
                    bail!(
                        "{ip_range} {range} has host bits set: did you mean {}/{}?",
                        range.network(),
                        range.prefix()
                    );
                }
            }
        }
        if let Some(ha) = &self.host_access {
            host_access::check(self, ha, &naming.of("host_access"))?;
        }
        Ok(())
    }
}

fn find_subnet<'a>(subnets: &'a mut [Subnet], addr: IpAddr, what: &str) -> Result<&'a mut Subnet> {
    match subnets.iter_mut().find(|s| s.subnet.contains(addr)) {
        Some(s) => Ok(s),
        None => bail!("{what} {addr} lies outside every --subnet of the network"),
    }
}

pub fn overlaps(a: IpNetwork, b: IpNetwork) -> bool {
    a.is_ipv4() == b.is_ipv4() && (a.contains(b.network()) || b.contains(a.network()))
}

/// The network address, and for IPv4 the broadcast: never a host's.
pub fn reserved(subnet: IpNetwork, addr: IpAddr) -> bool {
    addr == subnet.network() || (subnet.is_ipv4() && addr == subnet.broadcast())
}

/// First usable address: Docker's default gateway.
pub fn first_host(subnet: IpNetwork) -> IpAddr {
    match subnet.network() {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 1).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) + 1).into()),
    }
}

/// `eth0` of `eth0.10`.
pub fn base_name(parent: &str) -> &str {
    parent.rsplit_once('.').map_or(parent, |(b, _)| b)
}

/// Network names become file names and lease directories.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        bail!(
            "invalid network name {name:?}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        );
    }
    Ok(())
}

/// What the kernel accepts as an interface name (dev_valid_name).
pub fn validate_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if !ok {
        bail!(
            "invalid interface name {name:?}: use 1-15 characters without '/', ':' or whitespace"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(subnets: &[&str]) -> NetworkSpec {
        NetworkSpec {
            name: "n1".into(),
            parent: Some("eth0".into()),
            subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
            ..Default::default()
        }
    }

    fn err(s: NetworkSpec) -> String {
        s.build("id".into()).unwrap_err().to_string()
    }

    #[test]
    fn l2_defaults_to_first_host_gateway_per_subnet() {
        let (n, w) = spec(&["192.168.1.0/24", "fd00:1::/64"])
            .build("id".into())
            .unwrap();
        assert!(w.is_empty());
        assert_eq!(n.subnets[0].gateway, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(n.subnets[1].gateway, Some("fd00:1::1".parse().unwrap()));
        assert!(!n.internal);
    }

    #[test]
    fn l3_ignores_gateway_with_warning() {
        let mut s = spec(&["10.1.100.0/24"]);
        s.mode = Mode::L3;
        s.gateways = vec!["10.1.100.254".parse().unwrap()];
        let (n, w) = s.build("id".into()).unwrap();
        assert_eq!(n.subnets[0].gateway, None);
        assert!(w[0].contains("ignored"), "{w:?}");
        assert!(!n.routes_via_gateway());
    }

    #[test]
    fn no_parent_keeps_the_gateway_and_internal_drops_it() {
        let mut s = spec(&["192.168.1.0/24"]);
        s.parent = None;
        let (n, _) = s.clone().build("id".into()).unwrap();
        assert!(!n.internal);
        assert_eq!(n.subnets[0].gateway, Some("192.168.1.1".parse().unwrap()));
        s.internal = true;
        let (n, _) = s.build("id".into()).unwrap();
        assert!(n.internal);
        assert_eq!(n.subnets[0].gateway, None);
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        assert!(err(spec(&["10.1.0.5/24"])).contains("host bits set: did you mean 10.1.0.0/24"));
        assert!(err(spec(&["10.1.0.0/31"])).contains("too small"));
        assert!(err(spec(&[])).contains("at least one --subnet"));
        assert!(err(spec(&["10.0.0.0/8", "10.1.0.0/16"])).contains("overlaps"));
        let mut s = spec(&["10.1.0.0/24"]);
        s.gateways = vec!["10.2.0.1".parse().unwrap()];
        assert!(err(s).contains("--gateway 10.2.0.1 lies outside"));
        let mut s = spec(&["10.1.0.0/24"]);
        s.gateways = vec!["10.1.0.255".parse().unwrap()];
        assert!(err(s).contains("broadcast"));
        let mut s = spec(&["10.1.0.0/24"]);
        s.ip_ranges = vec!["10.2.0.0/25".parse().unwrap()];
        assert!(err(s).contains("--ip-range 10.2.0.0 lies outside"));
        let mut s = spec(&["10.1.0.0/24"]);
        s.parent = Some("lo".into());
        assert!(err(s).contains("loopback"));
        let mut s = spec(&["10.1.0.0/24"]);
        s.name = "../x".into();
        assert!(err(s).contains("invalid network name"));
        let mut s = spec(&["10.1.0.0/24"]);
        s.mtu = Some(40);
        assert!(err(s).contains("--mtu 40 is out of range"));
        let mut s = spec(&["10.1.0.0/24"]);
        s.driver = Driver::Macvlan;
        s.mode = Mode::L3;
        assert!(err(s).contains("ipvlan mode"));
        let aux = |a: &str| {
            let mut s = spec(&["10.1.0.0/24"]);
            s.aux_addresses = vec![("router".into(), a.parse().unwrap())];
            s
        };
        assert!(err(aux("10.2.0.5")).contains("--aux-address 10.2.0.5 lies outside every"));
        // The default gateway counts: it is only known after the defaults are filled in.
        assert!(err(aux("10.1.0.1")).contains("--aux-address router=10.1.0.1 is the gateway"));
        assert!(err(aux("10.1.0.255")).contains("broadcast"));
        let (n, _) = aux("10.1.0.9").build("id".into()).unwrap();
        assert_eq!(
            n.subnets[0].aux_addresses["router"],
            "10.1.0.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn parent_sharing_rules() {
        let (a, _) = spec(&["10.1.0.0/24"]).build("a".into()).unwrap();
        let mut s = spec(&["10.2.0.0/24"]);
        s.name = "b".into();
        let (b, _) = s.clone().build("b".into()).unwrap();
        a.check_shares_parent_with(&b).unwrap();
        s.mode = Mode::L3;
        let (b3, _) = s.clone().build("b".into()).unwrap();
        assert!(
            a.check_shares_parent_with(&b3)
                .unwrap_err()
                .to_string()
                .contains("one ipvlan mode per parent")
        );
        s.mode = Mode::L2;
        s.driver = Driver::Macvlan;
        let (m, _) = s.build("b".into()).unwrap();
        assert!(
            a.check_shares_parent_with(&m)
                .unwrap_err()
                .to_string()
                .contains("cannot mix macvlan and ipvlan")
        );
        a.check_shares_parent_with_all([&b]).unwrap();
        assert!(
            a.check_shares_parent_with_all([&b, &m])
                .unwrap_err()
                .to_string()
                .contains("cannot mix macvlan and ipvlan")
        );
        let (o, _) = spec(&["10.1.0.128/25"]).build("o".into()).unwrap();
        assert!(
            a.check_shares_parent_with(&o)
                .unwrap_err()
                .to_string()
                .contains("overlaps")
        );
    }

    #[test]
    fn network_file_rejects_unknown_fields_and_defaults_missing_ones() {
        let j = r#"{"version":1,"name":"n","id":"x","parent":"eth0","subnets":[{"subnet":"10.0.0.0/24"}]}"#;
        let n: Network = serde_json::from_str(j).unwrap();
        assert_eq!(
            (n.driver, n.mode, n.flag),
            (Driver::Ipvlan, Mode::L2, Flag::Bridge)
        );
        let bad = j.replace("\"id\"", "\"colour\":1,\"id\"");
        let e = serde_json::from_str::<Network>(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn ifnames() {
        for ok in ["eth0", "eth0.10", "a", "123456789012345"] {
            validate_ifname(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "1234567890123456", "a:1"] {
            assert!(validate_ifname(bad).is_err(), "{bad}");
        }
    }
}
