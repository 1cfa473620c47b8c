//! `network connect` and `network disconnect`: the front door for network namespaces no OCI
//! runtime manages (a `/run/netns/NAME` from `ip netns add`, an LXC or systemd-nspawn
//! container, a shell in `unshare -n`). The id plays the container id's part: it names the
//! leases and tags the links.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::attach::{self, Attachment, AttachmentRequest, Release};
use crate::bail;
use crate::dirs::Dirs;
use crate::error::{Context, Result};
use crate::ipam::{self, LeaseEntry, LeaseStore, Owner, select};
use crate::link::Mac;
use crate::netlink::Rtnl;
use crate::netns::Netns;
use crate::network::store::NetworkStore;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["pid", "netns"])))]
pub struct ConnectArgs {
    pub network: String,
    /// The network namespace of this process (LXC, systemd-nspawn, `unshare -n`).
    #[arg(long)]
    pub pid: Option<u32>,
    /// A network namespace file: /run/netns/NAME, or just NAME for one made by `ip netns add`.
    #[arg(long)]
    pub netns: Option<PathBuf>,
    /// Who holds the leases and links, as a container id does (shown by `lease ls`).
    #[arg(long)]
    pub id: String,
    #[arg(long, default_value = "eth0")]
    pub ifname: String,
    /// Static IPv4 address.
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// Static IPv6 address.
    #[arg(long)]
    pub ip6: Option<IpAddr>,
    /// MAC address (macvlan networks only).
    #[arg(long)]
    pub mac: Option<Mac>,
    /// MTU of the interface (default: the network's, else the parent's).
    #[arg(long)]
    pub mtu: Option<u32>,
}

#[derive(clap::Args, Debug)]
pub struct DisconnectArgs {
    pub network: String,
    #[arg(long)]
    pub id: String,
    /// Only this interface (default: every interface of the id on the network).
    #[arg(long)]
    pub ifname: Option<String>,
}

pub fn connect(args: ConnectArgs, dirs: &Dirs) -> Result<()> {
    crate::netns::check_privileges("network connect")?;
    let id = &args.id;
    crate::oci::validate_container_id(id)?;
    let mut want = AttachmentRequest::new(&args.network, &args.ifname);
    for ip in [args.ip, args.ip6].into_iter().flatten() {
        want.add_ip(ip)?;
    }
    want.mac = args.mac;
    want.mtu = args.mtu;
    want.validate()?;
    let network = NetworkStore::new(&dirs.config).load(&args.network)?;
    let (path, owner) = match (args.pid, args.netns) {
        (Some(pid), _) => (
            PathBuf::from(format!("/proc/{pid}/ns/net")),
            Owner::of_pid(pid).with_context(|| format!("--pid {pid}"))?,
        ),
        (None, Some(p)) => (named_netns(p), Owner::this_boot()),
        (None, None) => bail!("network connect needs --netns PATH or --pid PID"),
    };
    let netns = Netns::open(&path)?;
    // A connected netns lives as long as its file (or its process): gc judges it by both.
    let owner = Owner {
        netns: owner.pid.is_none().then(|| path.clone()),
        netns_inode: owner.pid.is_none().then(|| netns.inode()).transpose()?,
        ..owner
    };
    let store = select::for_network(&network, dirs)?;
    refuse_a_live_holder(&*store, id, &args.ifname)?;
    let rtnl = Rtnl::current()?;
    let att = Attachment {
        network: &network,
        store: &*store,
        want: &want,
    };
    let leases = attach::setup(&rtnl, id, &owner, &[att], &netns)?;
    let addrs: Vec<String> = leases
        .concat()
        .iter()
        .map(|l| format!("{}/{}", l.address, l.prefix_len))
        .collect();
    println!(
        "{id}: {} {} on network {} in {}",
        args.ifname,
        addrs.join(" "),
        network.name,
        path.display()
    );
    Ok(())
}

/// `ip netns add NAME` makes /run/netns/NAME: a bare name means that file.
fn named_netns(p: PathBuf) -> PathBuf {
    if p.components().count() == 1 && !p.starts_with(".") {
        PathBuf::from("/run/netns").join(p)
    } else {
        p
    }
}

/// Connecting an id's interface twice would give one netns two holders of one name; a holder
/// that is gone (its netns or process) is replaced, as after a restart.
fn refuse_a_live_holder(store: &dyn LeaseStore, id: &str, ifname: &str) -> Result<()> {
    for entry in ipam::leases(store, None)? {
        if let LeaseEntry::Lease(l) = entry
            && l.container == id
            && l.ifname == ifname
            && l.owner.is_alive()
        {
            let holder = match (&l.owner.netns, l.owner.pid) {
                (Some(ns), _) => format!("netns {}", ns.display()),
                (None, Some(pid)) => format!("the netns of pid {pid}"),
                (None, None) => "an unknown netns".to_string(),
            };
            bail!(
                "{id} is already connected as {ifname} to network {} with {} ({holder}): disconnect it first ('ipvlan-hook network disconnect {} --id {id} --ifname {ifname}') or choose another --ifname",
                l.network,
                l.address,
                l.network
            );
        }
    }
    Ok(())
}

/// Take the id's interfaces off the network: the links in the netns its leases recorded (if
/// that netns is still there), and the leases. Whatever is already gone counts as done.
pub fn disconnect(args: DisconnectArgs, dirs: &Dirs) -> Result<()> {
    crate::netns::check_privileges("network disconnect")?;
    let id = &args.id;
    crate::oci::validate_container_id(id)?;
    crate::network::validate_name(&args.network)?;
    // The network, while it is defined: its store, host-access routes and announcement table.
    let defined = NetworkStore::new(&dirs.config).load(&args.network).ok();
    let networks: Vec<&crate::network::Network> = defined.iter().collect();
    let stores = select::for_teardown(&networks, dirs)?;
    let mut errors = crate::error::Errors::default();
    for store in &stores {
        let held: Vec<ipam::Lease> = ipam::leases(&**store, Some(&args.network))?
            .into_iter()
            .filter_map(|e| match e {
                LeaseEntry::Lease(l)
                    if l.container == *id
                        && args.ifname.as_ref().is_none_or(|i| *i == l.ifname) =>
                {
                    Some(l)
                }
                _ => None,
            })
            .collect();
        let mut ifnames: Vec<&str> = held.iter().map(|l| l.ifname.as_str()).collect();
        ifnames.sort_unstable();
        ifnames.dedup();
        // Each recorded netns, if it is still the same one: the links live there.
        let netns = held.iter().find_map(|l| {
            let path = l.owner.netns.clone().or_else(|| {
                l.owner
                    .pid
                    .map(|p| PathBuf::from(format!("/proc/{p}/ns/net")))
            })?;
            let ns = Netns::open(&path).ok()?;
            (l.owner.is_alive()).then_some(ns)
        });
        let release = Release::Interfaces {
            network: &args.network,
        };
        match attach::teardown(
            &[&**store],
            id,
            &ifnames,
            netns.as_ref(),
            release,
            &networks,
        ) {
            Ok(released) => {
                for l in released {
                    println!(
                        "{id}: released {} ({}) on network {}",
                        l.address, l.ifname, l.network
                    );
                }
            }
            Err(e) => errors.push(e),
        }
    }
    errors.finish()
}
