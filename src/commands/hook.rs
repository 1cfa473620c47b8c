//! `ipvlan-hook hook createRuntime|prestart|poststop`: the OCI hook. The stage comes from argv
//! (runtimes disagree on the state's `status`); everything else from the state on stdin.

use std::io::Read;

use crate::attach::{self, Attachment, AttachmentRequest, Release};
use crate::bail;
use crate::dirs::Dirs;
use crate::error::{Context, Result};
use crate::ipam::{LeaseStore, Owner};
use crate::netlink::Rtnl;
use crate::netns::Netns;
use crate::network::Network;
use crate::network::store::NetworkStore;
use crate::oci::{Annotations, State, netns_path};
use crate::policy::Policy;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    #[value(name = "createRuntime")]
    CreateRuntime,
    /// Synonym of createRuntime for runtimes that lack it.
    #[value(name = "prestart")]
    Prestart,
    #[value(name = "poststop")]
    Poststop,
}

pub fn run(stage: Stage, dirs: &Dirs, stdin: impl Read) -> Result<()> {
    let state = State::read(stdin)?;
    let Some(ann) = Annotations::parse(state.annotations())
        .with_context(|| format!("container {}", state.id()))?
    else {
        return Ok(());
    };
    crate::netns::check_privileges("the ipvlan hook")?;
    match stage {
        Stage::CreateRuntime | Stage::Prestart => create(&state, &ann, dirs),
        Stage::Poststop => poststop(&state, &ann, dirs),
    }
}

fn create(state: &State, ann: &Annotations, dirs: &Dirs) -> Result<()> {
    let id = state.id();
    let (requests, networks) = resolve(ann, dirs).with_context(|| format!("container {id}"))?;
    let precreated = state.precreated_netns()?;
    let path = netns_path(state, precreated.as_deref())?;
    let netns = Netns::open(&path).with_context(|| format!("container {id}"))?;
    let mut owner = match state.live_pid() {
        Some(pid) => {
            Owner::of_pid(pid).with_context(|| format!("container {id}: its process is gone"))?
        }
        None => Owner::this_boot(),
    };
    if precreated.is_some() {
        owner.netns = Some(path.clone());
        owner.netns_inode = Some(netns.inode()?);
    }
    let rtnl = Rtnl::current()?;
    let stores = crate::ipam::select::for_networks(&networks, dirs)?;
    let atts = Attachment::zip(&requests, &networks, &stores);
    let leases = attach::setup(&rtnl, id, &owner, &atts, &netns)?;
    for (att, held) in atts.iter().zip(&leases) {
        attach::report(id, att, held);
    }
    Ok(())
}

fn poststop(state: &State, ann: &Annotations, dirs: &Dirs) -> Result<()> {
    let (mut names, ifnames) = ann.interfaces();
    // The networks the container was set up on, while they are defined (each read once): their
    // stores (lease files, etcd), host-access routes and announcement tables. A network removed
    // meanwhile took its link and routes with it.
    names.sort_unstable();
    names.dedup();
    let store = NetworkStore::new(&dirs.config);
    let networks: Vec<Network> = names.iter().filter_map(|n| store.load(n).ok()).collect();
    let networks: Vec<&Network> = networks.iter().collect();
    let stores = crate::ipam::select::for_teardown(&networks, dirs)?;
    let stores: Vec<&dyn LeaseStore> = stores.iter().map(|s| &**s).collect();
    // The links only need deleting where the netns outlives the container; a runtime-made
    // netns took them with it.
    let precreated = state.precreated_netns().unwrap_or_else(|e| {
        crate::warn(&format!("container {}: {e}", state.id()));
        None
    });
    let netns = precreated.as_deref().and_then(|p| Netns::open(p).ok());
    let released = attach::teardown(
        &stores,
        state.id(),
        &ifnames,
        netns.as_ref(),
        Release::All,
        &networks,
    )?;
    for l in released {
        crate::info(&format!(
            "container {}: released {} on network {}",
            state.id(),
            l.address,
            l.network
        ));
    }
    Ok(())
}

/// The attachments the annotations ask for, each with its network: the `ipvlan.networks`
/// list, or the one network of `ipvlan.network` (or an annotation-only one).
fn resolve(ann: &Annotations, dirs: &Dirs) -> Result<(Vec<AttachmentRequest>, Vec<Network>)> {
    let Some(list) = &ann.networks else {
        let net = resolve_network(ann, dirs)?;
        let mut want = AttachmentRequest::new(&net.name, ann.ifname());
        want.ipv4 = ann.ipv4.map(|(a, _)| a);
        want.ipv6 = ann.ipv6.map(|(a, _)| a);
        want.mtu = ann.mtu;
        return Ok((vec![want], vec![net]));
    };
    let store = NetworkStore::new(&dirs.config);
    let policy = Policy::load(&dirs.config)?;
    let mut networks: Vec<Network> = Vec::with_capacity(list.len());
    for (i, want) in list.iter().enumerate() {
        // The same network twice is two interfaces on it: read its file once.
        let net = match list[..i].iter().position(|w| w.network == want.network) {
            Some(j) => networks[j].clone(),
            None => {
                policy.check_network(&want.network)?;
                store.load(&want.network)?
            }
        };
        networks.push(net);
    }
    Ok((list.clone(), networks))
}

/// A defined network (`ipvlan.network`), whose settings annotations may repeat but not
/// contradict; or, where the policy allows, an annotation-only network.
fn resolve_network(ann: &Annotations, dirs: &Dirs) -> Result<Network> {
    let networks = NetworkStore::new(&dirs.config);
    let policy = Policy::load(&dirs.config)?;
    if let Some(name) = &ann.network {
        policy.check_network(name)?;
        let net = networks.load(name)?;
        check_agrees("ipvlan.parent", ann.parent.as_ref(), &net.parent, name)?;
        check_agrees("ipvlan.mode", ann.mode.as_ref(), &net.mode, name)?;
        check_agrees("ipvlan.flag", ann.flag.as_ref(), &net.flag, name)?;
        for (key, given) in [("ipvlan.ipv4", ann.ipv4), ("ipvlan.ipv6", ann.ipv6)] {
            if let Some((addr, prefix)) = given {
                net.check_static(key, addr, prefix)?;
            }
        }
        if ann.gateway.is_some() || ann.gateway6.is_some() {
            bail!(
                "ipvlan.gateway and ipvlan.gateway6 are for annotation-only networks: network {name} defines its gateways"
            );
        }
        return Ok(net);
    }
    let Some(parent) = &ann.parent else {
        bail!(
            "annotations name no network: set ipvlan.network=NAME (see 'ipvlan-hook network ls'), or ipvlan.parent and ipvlan.ipv4/ipv6 for an annotation-only network"
        );
    };
    let spec = ann.adhoc_spec(parent)?;
    policy.check_annotation_network(parent, &spec.subnets)?;
    let (net, warnings) = spec.build(String::new())?;
    warnings.iter().for_each(|w| crate::warn(w));
    net.check_shares_parent_with_all(&networks.list()?)?;
    Ok(net)
}

fn check_agrees<T: PartialEq + std::fmt::Display>(
    key: &str,
    given: Option<&T>,
    defined: &T,
    net: &str,
) -> Result<()> {
    match given {
        Some(g) if g != defined => bail!(
            "annotation {key}={g} contradicts network {net}, which has {defined}: drop the annotation or use another network"
        ),
        _ => Ok(()),
    }
}
