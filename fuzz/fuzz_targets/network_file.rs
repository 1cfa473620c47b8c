//! Network definition files (`CONFIG_DIR/networks/NAME.json`, hand-editable): arbitrary bytes
//! through the real loader (`NetworkStore::load`, which checks values as `network create`
//! does), checked against a direct serde parse and the promises of a valid network, then a
//! serde round trip, then the definition rebuilt as a `NetworkSpec` (as `network create` would
//! have made it) through `NetworkSpec::build`. Errors are fine; panics and broken promises are
//! bugs.

#![no_main]

#[path = "common.rs"]
mod common;

use ipvlan_hook::network::store::NetworkStore;
use ipvlan_hook::network::{self, Network, NetworkSpec};
use libfuzzer_sys::fuzz_target;

fn load_from_file(name: &str, bytes: &[u8]) -> ipvlan_hook::error::Result<Network> {
    let dir = common::scratch_dir();
    let path = dir.join("networks").join(format!("{name}.json"));
    std::fs::write(&path, bytes).expect("write scratch network file");
    let loaded = NetworkStore::new(dir).load(name);
    std::fs::remove_file(&path).expect("remove scratch network file");
    loaded
}

/// What `network create` would have been given to make `net`.
#[allow(clippy::needless_update)]
fn spec_of(net: &Network) -> NetworkSpec {
    NetworkSpec {
        name: net.name.clone(),
        driver: net.driver,
        mode: net.mode,
        flag: net.flag,
        parent: (!net.parent.is_empty()).then(|| net.parent.clone()),
        internal: net.internal,
        mtu: net.mtu,
        subnets: net.subnets.iter().map(|s| s.subnet).collect(),
        gateways: net.subnets.iter().filter_map(|s| s.gateway).collect(),
        ip_ranges: net.subnets.iter().filter_map(|s| s.ip_range).collect(),
        host_access: net.host_access.as_ref().map(|h| h.addresses.clone()),
        // Fields added later keep their defaults until this target learns them.
        ..Default::default()
    }
}

/// Could `network create` have written `net`? It builds the spec, then decides the parent link
/// (whether the network owns it) and the lease store.
fn made_by_create(net: &Network) -> bool {
    !net.parent.is_empty()
        && spec_of(net).build(net.id.clone()).is_ok_and(|(built, _)| {
            let written = Network {
                parent_owned: net.parent_owned,
                ipam: net.ipam,
                ..built
            };
            written == *net
        })
}

fuzz_target!(|data: &[u8]| {
    let direct = serde_json::from_slice::<Network>(data);
    // The loader insists that the file name and "name" agree: name the file after the network
    // when that is a valid name, so the fuzzer gets past that check.
    let name = match &direct {
        Ok(n) if network::validate_name(&n.name).is_ok() => n.name.clone(),
        _ => "fuzz".to_string(),
    };
    let loaded = load_from_file(&name, data);
    match (&direct, &loaded) {
        (Ok(d), Ok(l)) => {
            assert_eq!(d, l, "loader and serde disagree");
            assert_eq!(l.version, network::VERSION);
            assert_eq!(l.name, name);
            assert!(!l.parent.is_empty());
            common::check_network(l);
        }
        // The loader checks values as `network create` does: it never refuses what that makes.
        (Ok(d), Err(e)) => assert!(
            d.version != network::VERSION || d.name != name || !made_by_create(d),
            "loader refused a valid file: {e}: {d:?}"
        ),
        (Err(_), Ok(l)) => panic!("loader accepted what serde refuses: {l:?}"),
        (Err(_), Err(e)) => assert!(!e.to_string().is_empty()),
    }
    let Ok(net) = direct else { return };

    // What is written is read back as the same network (`network create` writes pretty JSON).
    let pretty = serde_json::to_vec_pretty(&net).expect("serialize");
    let again: Network = serde_json::from_slice(&pretty).expect("re-read what was written");
    assert_eq!(again, net);

    // Rebuilt through `network create`'s validation: refused, or a network that keeps every
    // promise and is a fixed point of build.
    if let Some(built) = common::check_build(spec_of(&net)) {
        let (rebuilt, _) = spec_of(&built)
            .build(built.id.clone())
            .expect("a built network builds again");
        assert_eq!(rebuilt, built, "build is not idempotent");
        // (An empty parent is the dummy `network create` has yet to make: not a file.)
        if network::validate_name(&built.name).is_ok() && !built.parent.is_empty() {
            let bytes = serde_json::to_vec_pretty(&built).expect("serialize");
            let loaded = load_from_file(&built.name, &bytes).expect("load a built network");
            assert_eq!(loaded, built);
        }
    }
});
