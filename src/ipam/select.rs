//! Which lease store holds a network's leases: this host's lease files (the default), or etcd
//! for networks created with `--ipam etcd` (cargo feature "etcd", configured by
//! `CONFIG_DIR/etcd.json`, see `etcd::config`). Everything that picks a store goes through here,
//! so a build without the feature refuses etcd networks with one clear message, and lease-file
//! networks never wait for etcd.

use crate::dirs::Dirs;
use crate::error::Result;
use crate::ipam::{Lease, LeaseEntry, LeaseFiles, LeaseStore};
use crate::network::{Ipam, Network};

/// The store for a hook or launcher run on `net`.
pub fn for_network(net: &Network, dirs: &Dirs) -> Result<Box<dyn LeaseStore>> {
    match net.ipam {
        Ipam::Files => Ok(Box::new(LeaseFiles::new(&dirs.state))),
        Ipam::Etcd => etcd::for_network(net, dirs),
    }
}

/// The one store of a network known by name (CNI DEL and GC): the network's while it is
/// defined (`net`), lease files when it is not (or no longer).
pub fn for_poststop(net: Option<&Network>, dirs: &Dirs) -> Result<Box<dyn LeaseStore>> {
    match net {
        Some(net) => for_network(net, dirs),
        None => Ok(Box::new(LeaseFiles::new(&dirs.state))),
    }
}

/// The store of each of `networks`, in order (lease files are one store: a cheap handle).
pub fn for_networks(networks: &[Network], dirs: &Dirs) -> Result<Vec<Box<dyn LeaseStore>>> {
    networks.iter().map(|n| for_network(n, dirs)).collect()
}

/// The stores that may hold a container's leases on networks it knew by name (poststop and
/// disconnect), given those of them still defined: this host's lease files, and the store of
/// each defined network that keeps its leases in etcd. A network no longer defined has its
/// leases in the files, if anywhere.
pub fn for_teardown(defined: &[&Network], dirs: &Dirs) -> Result<Vec<Box<dyn LeaseStore>>> {
    let mut stores: Vec<Box<dyn LeaseStore>> = vec![Box::new(LeaseFiles::new(&dirs.state))];
    for net in defined.iter().filter(|n| n.ipam == Ipam::Etcd) {
        stores.push(for_network(net, dirs)?);
    }
    Ok(stores)
}

/// `network create --ipam etcd`: record the network's address plan in etcd, or check it
/// against the one another host recorded. Fails when etcd cannot be reached.
pub fn register(net: &Network, dirs: &Dirs) -> Result<()> {
    match net.ipam {
        Ipam::Files => Ok(()),
        Ipam::Etcd => etcd::register(net, dirs),
    }
}

/// This host's view of etcd for `gc` and `network rm`: None without `etcd.json`.
pub fn etcd_host_view(dirs: &Dirs) -> Result<Option<Box<dyn LeaseStore>>> {
    etcd::host_view(dirs)
}

/// Every lease in etcd with the host holding it, and this host's id, for `lease ls`: None
/// without `etcd.json`.
pub type ClusterLeases = (String, Vec<(Option<String>, LeaseEntry)>);

pub fn etcd_leases(dirs: &Dirs, network: Option<&str>) -> Result<Option<ClusterLeases>> {
    etcd::leases(dirs, network)
}

/// `lease drain --host HOST`.
pub fn drain(dirs: &Dirs, host: &str, dry_run: bool) -> Result<Vec<Lease>> {
    etcd::drain(dirs, host, dry_run)
}

#[cfg(feature = "etcd")]
mod etcd {
    use super::*;
    use crate::etcd::config::EtcdConfig;
    use crate::ipam::{EtcdStore, pools};

    pub fn for_network(net: &Network, dirs: &Dirs) -> Result<Box<dyn LeaseStore>> {
        let cfg = EtcdConfig::load(&dirs.config)?;
        Ok(Box::new(EtcdStore::for_network(
            &cfg,
            &dirs.state,
            &net.name,
            &pools(net),
        )?))
    }

    pub fn register(net: &Network, dirs: &Dirs) -> Result<()> {
        let cfg = EtcdConfig::load(&dirs.config)?;
        EtcdStore::new(&cfg, &dirs.state)?.register_plan(&net.name, &pools(net))
    }

    pub fn host_view(dirs: &Dirs) -> Result<Option<Box<dyn LeaseStore>>> {
        if !EtcdConfig::exists(&dirs.config) {
            return Ok(None);
        }
        let cfg = EtcdConfig::load(&dirs.config)?;
        Ok(Some(Box::new(EtcdStore::new(&cfg, &dirs.state)?)))
    }

    pub fn leases(dirs: &Dirs, network: Option<&str>) -> Result<Option<ClusterLeases>> {
        if !EtcdConfig::exists(&dirs.config) {
            return Ok(None);
        }
        let cfg = EtcdConfig::load(&dirs.config)?;
        let store = EtcdStore::new(&cfg, &dirs.state)?;
        Ok(Some((cfg.host.clone(), store.all_leases(network)?)))
    }

    pub fn drain(dirs: &Dirs, host: &str, dry_run: bool) -> Result<Vec<Lease>> {
        let cfg = EtcdConfig::load(&dirs.config)?;
        EtcdStore::new(&cfg, &dirs.state)?.drain(host, dry_run)
    }
}

#[cfg(not(feature = "etcd"))]
mod etcd {
    use super::*;
    use crate::bail;

    const NO_ETCD: &str = "this ipvlan-hook was built without etcd support: install a build made with 'cargo build --release --features etcd' (the packages are)";

    pub fn for_network(net: &Network, _: &Dirs) -> Result<Box<dyn LeaseStore>> {
        bail!(
            "network {} keeps its leases in etcd (\"ipam\": \"etcd\"), but {NO_ETCD}",
            net.name
        )
    }

    pub fn register(net: &Network, dirs: &Dirs) -> Result<()> {
        for_network(net, dirs).map(drop)
    }

    pub fn host_view(_: &Dirs) -> Result<Option<Box<dyn LeaseStore>>> {
        Ok(None)
    }

    pub fn leases(_: &Dirs, _: Option<&str>) -> Result<Option<ClusterLeases>> {
        Ok(None)
    }

    pub fn drain(_: &Dirs, _: &str, _: bool) -> Result<Vec<Lease>> {
        bail!("lease drain is for etcd networks, but {NO_ETCD}")
    }
}
