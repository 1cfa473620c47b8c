//! Checks shared by the fuzz targets: what a successful parse or build promises.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ipvlan_hook::network::{self, Driver, Mode, Network, NetworkSpec};
use ipvlan_hook::oci::Annotations;

/// A private scratch directory for targets that go through the real file loaders, made once
/// per fuzzing process (on tmpfs when there is one: every input is written there).
pub fn scratch_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        // libFuzzer ends the process without running destructors: remove what earlier runs
        // (whose pid is gone) left, instead.
        if let Ok(entries) = std::fs::read_dir(&base) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("ipvlan-hook-fuzz-")
                    && !Path::new("/proc").join(pid).exists()
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(format!("ipvlan-hook-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("networks")).expect("scratch dir");
        dir
    })
}

/// What `Annotations::parse` promises when it accepts: every value is checked.
pub fn check_annotations(a: &Annotations) {
    if let Some(n) = &a.network {
        assert!(network::validate_name(n).is_ok(), "network {n:?}");
        assert!(!n.contains(['/', '\0']) && n != "." && n != "..");
    }
    for name in [a.parent.as_deref(), a.ifname.as_deref()]
        .into_iter()
        .flatten()
    {
        assert!(network::validate_ifname(name).is_ok(), "ifname {name:?}");
        assert!(!name.is_empty() && name.len() <= 15, "ifname {name:?}");
        assert!(
            !name
                .bytes()
                .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace())
        );
        assert!(name != "." && name != "..");
    }
    if let Some((addr, prefix)) = a.ipv4 {
        assert!(addr.is_ipv4(), "ipv4 {addr}");
        assert!(prefix.is_none_or(|p| p <= 32), "ipv4 prefix {prefix:?}");
    }
    if let Some((addr, prefix)) = a.ipv6 {
        assert!(addr.is_ipv6(), "ipv6 {addr}");
        assert!(prefix.is_none_or(|p| p <= 128), "ipv6 prefix {prefix:?}");
    }
    assert!(a.gateway.is_none_or(|g| g.is_ipv4()));
    assert!(a.gateway6.is_none_or(|g| g.is_ipv6()));
    assert!(a.mtu.is_none_or(|m| (68..=65535).contains(&m)));
    let ifname = a.ifname();
    assert!(network::validate_ifname(ifname).is_ok());
    if let Some(list) = &a.networks {
        // The list form stands alone and every entry is checked.
        assert!(a.network.is_none() && a.parent.is_none() && a.ifname.is_none());
        assert!((1..=32).contains(&list.len()), "{} networks", list.len());
        for r in list {
            assert!(r.validate().is_ok(), "{r:?}");
            assert!(r.ipv4.is_none_or(|ip| ip.is_ipv4()) && r.ipv6.is_none_or(|ip| ip.is_ipv6()));
            assert!(r.mac.is_none_or(|m| m.0[0] & 1 == 0 && m.0 != [0; 6]), "{r:?}");
        }
        let (networks, ifnames) = a.interfaces();
        assert_eq!((networks.len(), ifnames.len()), (list.len(), list.len()));
    }
}

/// The annotation-only network the hook builds from annotations (hook.rs, resolve_network),
/// without the policy and the other networks: build must refuse or return a valid network.
pub fn build_annotation_network(a: &Annotations) {
    if let Some(parent) = &a.parent
        && let Ok(spec) = a.adhoc_spec(parent)
    {
        check_build(spec);
    }
}

/// `NetworkSpec::build`: an error, or a network that keeps every promise of a defined one.
pub fn check_build(spec: NetworkSpec) -> Option<Network> {
    let asked = spec.clone();
    let (net, _warnings) = spec.build("fuzz".into()).ok()?;
    check_built_network(&net, &asked);
    Some(net)
}

fn host_bits_zero(s: ipnetwork::IpNetwork) -> bool {
    s.ip() == s.network()
}

/// What every accepted network satisfies: built by `network create` or loaded from a file.
pub fn check_network(net: &Network) {
    assert!(network::validate_name(&net.name).is_ok(), "{net:?}");
    assert_eq!(net.version, network::VERSION);
    if !net.parent.is_empty() {
        assert!(network::validate_ifname(&net.parent).is_ok(), "{net:?}");
        assert_ne!(net.parent, "lo");
    }
    if net.driver == Driver::Macvlan {
        assert_eq!(net.mode, Mode::L2, "{net:?}");
    }
    assert!(!net.subnets.is_empty());
    if let Some(a) = net.announce {
        // Never one of the kernel's own tables, always our protocol number.
        assert!(![0, 253, 254, 255].contains(&a.table), "{net:?}");
        assert_eq!(a.protocol, network::announce::PROTOCOL, "{net:?}");
    }
    let v6 = net.subnets.iter().any(|s| s.subnet.is_ipv6());
    if let Some(mtu) = net.mtu {
        assert!(mtu <= 65535 && mtu >= if v6 { 1280 } else { 68 }, "{net:?}");
    }
    for (i, s) in net.subnets.iter().enumerate() {
        assert!(host_bits_zero(s.subnet), "{net:?}");
        let max = if s.subnet.is_ipv4() { 30 } else { 126 };
        assert!(s.subnet.prefix() <= max, "{net:?}");
        for o in &net.subnets[i + 1..] {
            assert!(!network::overlaps(s.subnet, o.subnet), "{net:?}");
        }
        if let Some(gw) = s.gateway {
            assert!(s.subnet.contains(gw), "{net:?}");
            assert!(!network::reserved(s.subnet, gw), "{net:?}");
        }
        if let Some(r) = s.ip_range {
            assert_eq!(r.is_ipv4(), s.subnet.is_ipv4(), "{net:?}");
            assert!(host_bits_zero(r), "{net:?}");
            assert!(r.prefix() >= s.subnet.prefix(), "{net:?}");
            assert!(s.subnet.contains(r.network()), "{net:?}");
        }
    }
}

/// What a network made by `network create` (NetworkSpec::build) satisfies on top.
pub fn check_built_network(net: &Network, asked: &NetworkSpec) {
    check_network(net);
    let l3 = net.driver == Driver::Ipvlan && net.mode != Mode::L2;
    for s in &net.subnets {
        // A gateway exactly where containers route through one.
        assert_eq!(s.gateway.is_some(), !l3 && !net.internal, "{net:?}");
    }
    // Everything asked for is there, nothing else.
    assert_eq!(net.subnets.len(), asked.subnets.len());
    for gw in &asked.gateways {
        if !l3 && !net.internal {
            assert!(
                net.subnets.iter().any(|s| s.gateway == Some(*gw)),
                "{net:?}"
            );
        }
    }
    for r in &asked.ip_ranges {
        assert!(
            net.subnets.iter().any(|s| s.ip_range == Some(*r)),
            "{net:?}"
        );
    }
}
