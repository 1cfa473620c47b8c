//! `network create|rm|ls|inspect`.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::{Format, print_json, print_table};
use crate::bail;
use crate::dirs::Dirs;
use crate::error::{Context, Error, Errors, Result};
use crate::ipam::{self, LeaseEntry, LeaseStore, Reservation};
use crate::netlink::Rtnl;
use crate::network::store::NetworkStore;
use crate::network::{Driver, Flag, Ipam, Mode, Network, NetworkSpec, host_access, parent};

#[derive(clap::Subcommand, Debug)]
pub enum NetworkCmd {
    /// Define a network (and create its VLAN or dummy parent link when needed).
    #[command(after_help = "Examples:
  ipvlan-hook network create db_net --parent eth0 --subnet 192.168.1.0/24
  ipvlan-hook network create vlan20 --parent eth0.20 --subnet 192.168.20.0/24 --gateway 192.168.20.1
  ipvlan-hook network create l3net --parent eth0 --mode l3 --subnet 10.1.100.0/24 --subnet 10.1.101.0/24
  ipvlan-hook network create isolated --subnet 192.168.1.0/24     # dummy parent, no default route
  ipvlan-hook network create lan --parent eth0 --subnet 192.168.1.0/24 --ip-range 192.168.1.128/25 --host-access")]
    Create(CreateArgs),
    /// Remove networks (and the parent links they created).
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
        /// Remove even if containers still hold leases on it.
        #[arg(long, short)]
        force: bool,
    },
    /// List networks.
    Ls {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show networks as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    pub name: String,
    #[arg(long, short = 'd', value_enum, default_value = "ipvlan")]
    pub driver: Driver,
    /// Parent link; a missing IFACE.VID is created as an 802.1q sub-interface; none = dummy.
    #[arg(long, short = 'o')]
    pub parent: Option<String>,
    #[arg(long, value_enum, default_value = "l2")]
    pub mode: Mode,
    /// ipvlan flag (for macvlan: the macvlan mode).
    #[arg(long, value_enum, default_value = "bridge")]
    pub flag: Flag,
    /// Subnet in CIDR form; repeat for several (IPv4 and/or IPv6).
    #[arg(long)]
    pub subnet: Vec<IpNetwork>,
    /// Gateway of the subnet it lies in (L2; default: the first address).
    #[arg(long)]
    pub gateway: Vec<IpAddr>,
    /// Range for dynamic addresses within the subnet it lies in.
    #[arg(long)]
    pub ip_range: Vec<IpNetwork>,
    /// No default route in containers.
    #[arg(long)]
    pub internal: bool,
    #[arg(long)]
    pub mtu: Option<u32>,
    /// Where leases live: this host's lease files, or etcd, shared by the hosts of a layer 2
    /// segment (needs CONFIG_DIR/etcd.json; define the network identically on every host).
    #[arg(long, value_enum, default_value = "files")]
    pub ipam: Ipam,
    /// Let this host reach the containers: a link of the network's driver, mode and flag on the
    /// parent (ha-NAME), holding ADDR and ADDR6 (default: the highest free address of each
    /// family's subnet outside --ip-range), with routes to the containers through it.
    #[arg(
        long,
        value_name = "ADDR[,ADDR6]",
        num_args = 0..=1,
        require_equals = true,
        value_delimiter = ','
    )]
    pub host_access: Option<Vec<IpAddr>>,
}

pub fn run(cmd: NetworkCmd, dirs: &Dirs) -> Result<()> {
    let networks = NetworkStore::new(&dirs.config);
    match cmd {
        NetworkCmd::Create(args) => create(args, &networks, dirs),
        NetworkCmd::Rm { names, force } => {
            let mut errors = Errors::default();
            for name in names {
                match remove(&name, force, &networks, dirs) {
                    Ok(()) => println!("{name}"),
                    Err(e) => errors.push(e),
                }
            }
            errors.finish()
        }
        NetworkCmd::Ls {
            format: Format::Json,
        } => print_json(&networks.list()?),
        NetworkCmd::Ls {
            format: Format::Table,
        } => {
            let rows: Vec<Vec<String>> = networks
                .list()?
                .into_iter()
                .map(|n| {
                    let subnets: Vec<String> =
                        n.subnets.iter().map(|s| s.subnet.to_string()).collect();
                    vec![
                        n.name,
                        n.driver.to_string(),
                        n.mode.to_string(),
                        n.flag.to_string(),
                        n.parent,
                        subnets.join(","),
                    ]
                })
                .collect();
            print_table(
                &["NAME", "DRIVER", "MODE", "FLAG", "PARENT", "SUBNETS"],
                &rows,
            );
            Ok(())
        }
        NetworkCmd::Inspect { names } => {
            let nets = names
                .iter()
                .map(|n| networks.load(n))
                .collect::<Result<Vec<_>>>()?;
            print_json(&nets)
        }
    }
}

/// The network `network create` asks for (the fuzz target network_create builds it too).
impl From<CreateArgs> for NetworkSpec {
    fn from(args: CreateArgs) -> NetworkSpec {
        NetworkSpec {
            name: args.name,
            driver: args.driver,
            mode: args.mode,
            flag: args.flag,
            parent: args.parent,
            internal: args.internal,
            mtu: args.mtu,
            subnets: args.subnet,
            gateways: args.gateway,
            ip_ranges: args.ip_range,
            host_access: args.host_access,
        }
    }
}

fn create(args: CreateArgs, networks: &NetworkStore, dirs: &Dirs) -> Result<()> {
    let ipam = args.ipam;
    let (mut net, warnings) = NetworkSpec::from(args).build(crate::random_id())?;
    net.ipam = ipam;
    let _lock = networks.lock()?;
    if networks.exists(&net.name) {
        bail!("network {} already exists", net.name);
    }
    let rtnl = Rtnl::current()?;
    parent::plan(&rtnl, &mut net)?;
    net.check_shares_parent_with_all(&networks.list()?)?;
    // Input errors first; then whether this kernel can do it at all.
    rtnl.require(net.driver)?;
    // An etcd network's address plan must agree with the other hosts' (fails closed).
    crate::ipam::select::register(&net, dirs)?;
    let parent = parent::ensure(&rtnl, &net)?;
    // From here on, leave nothing behind: what was made goes again on failure. The cause
    // comes first.
    let made = add_host_access(&rtnl, &mut net, &parent, dirs).and_then(|()| networks.create(&net));
    if let Err(e) = made {
        let mut cleanup = Errors::default();
        if let Err(e2) = remove_host_access(&rtnl, &net, dirs) {
            cleanup.push(e2.context(format!(
                "rollback: cannot remove the host access made for network {}",
                net.name
            )));
        }
        if let Err(e2) = parent::remove_owned(&rtnl, &net) {
            cleanup.push(e2.context(format!(
                "rollback: cannot remove the parent {} made for network {}",
                net.parent, net.name
            )));
        }
        return Err(match cleanup.finish() {
            Ok(()) => e,
            Err(e2) => Error::join(e, vec![e2]),
        });
    }
    warnings.iter().for_each(|w| crate::warn(w));
    println!("{}", net.name);
    Ok(())
}

/// Reserve the host-access addresses (recorded in `net`) and make the link.
fn add_host_access(
    rtnl: &Rtnl,
    net: &mut Network,
    parent: &crate::netlink::Link,
    dirs: &Dirs,
) -> Result<()> {
    let Some(ha) = &net.host_access else {
        return Ok(());
    };
    let store = crate::ipam::select::for_network(net, dirs)?;
    let holder = host_access::holder(&net.name);
    let pools = ipam::pools(net);
    let leases = ipam::reserve(
        &*store,
        &Reservation {
            network: &net.name,
            holder: &holder,
            ifname: &ha.name,
            pools: &pools,
            wanted: &ha.addresses,
        },
    )
    .with_context(|| format!("--host-access of network {}", net.name))?;
    let addresses = leases.iter().map(|l| l.address).collect();
    if let Some(ha) = &mut net.host_access {
        ha.addresses = addresses;
    }
    host_access::make(rtnl, net, parent)?;
    Ok(())
}

/// Undo `add_host_access`: delete the link and release its addresses; each is tried.
fn remove_host_access(rtnl: &Rtnl, net: &Network, dirs: &Dirs) -> Result<()> {
    if net.host_access.is_none() {
        return Ok(());
    }
    let link = host_access::remove(rtnl, net);
    let released = crate::ipam::select::for_network(net, dirs)
        .and_then(|store| ipam::release(&*store, &host_access::holder(&net.name)).map(drop));
    link.and(released)
}

fn remove(name: &str, force: bool, networks: &NetworkStore, dirs: &Dirs) -> Result<()> {
    let _lock = networks.lock()?;
    let mut net = networks.load(name)?;
    // With --force, an etcd network goes even while etcd cannot be reached: its leases here
    // stay in etcd, and gc releases them once their containers are gone and etcd is back.
    let etcd = net.ipam == Ipam::Etcd;
    let tolerate = |e: Error| -> Result<()> {
        if !(force && etcd) {
            return Err(e);
        }
        crate::warn(&format!(
            "network {name}: {e}; removed anyway (--force): 'ipvlan-hook gc' releases this host's leases once etcd is back"
        ));
        Ok(())
    };
    let store: Option<Box<dyn LeaseStore>> = match crate::ipam::select::for_network(&net, dirs) {
        Ok(store) => Some(store),
        Err(e) => tolerate(e).map(|()| None)?,
    };
    let leases = match store.as_deref().map(|s| ipam::leases(s, Some(name))) {
        Some(Err(e)) => tolerate(e).map(|()| Vec::new())?,
        found => found.and_then(Result::ok).unwrap_or_default(),
    };
    // The host-access addresses are the network's own: they go with it.
    let reserved = host_access::holder(name);
    let holders: Vec<String> = leases
        .into_iter()
        .filter_map(|e| match e {
            LeaseEntry::Lease(l) if l.owner.is_alive() && l.container != reserved => {
                Some(format!("{} ({})", l.container, l.address))
            }
            _ => None,
        })
        .collect();
    if !holders.is_empty() && !force {
        bail!(
            "network {name} still has leases of running containers: {}; stop them first or use --force",
            holders.join(", ")
        );
    }
    let rtnl = Rtnl::current()?;
    host_access::remove(&rtnl, &net)?;
    // A parent we created but another network now also uses is handed over, not deleted.
    let heir = networks
        .list()?
        .into_iter()
        .find(|o| o.name != name && o.parent == net.parent);
    match heir {
        Some(mut other) if net.parent_owned.is_some() => {
            other.parent_owned = net.parent_owned.take();
            networks.replace(&other)?;
        }
        _ => {
            parent::remove_owned(&rtnl, &net).with_context(|| format!("network {name}"))?;
        }
    }
    if let Some(Err(e)) = store.as_deref().map(|s| ipam::remove_network(s, name)) {
        tolerate(e)?;
    }
    networks.remove(name)
}
