//! `ipvlan-run` (= `ipvlan-hook run`): a fresh network namespace on a network, a command inside
//! it, and everything torn down when the command ends, however it ends.

use std::net::IpAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

use ipnetwork::IpNetwork;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::unistd::Pid;

use crate::attach::{self, Attachment};
use crate::bail;
use crate::dirs::Dirs;
use crate::error::{Context, Error, Result};
use crate::ipam::{LeaseFiles, Owner, Request};
use crate::netlink::Rtnl;
use crate::netns::Netns;
use crate::network::store::NetworkStore;
use crate::network::{Driver, Flag, Mode, Network, NetworkSpec, parent};

/// What `run` was asked for.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A network defined with `network create`.
    #[arg(long, conflicts_with_all = ["parent", "subnet", "gateway", "driver", "mode", "flag", "internal"])]
    pub network: Option<String>,
    /// Parent link of a network given by flags; none = an isolated network on a dummy link.
    #[arg(long)]
    pub parent: Option<String>,
    /// Subnet of a network given by flags (repeat for IPv4 and IPv6).
    #[arg(long)]
    pub subnet: Vec<IpNetwork>,
    /// Gateway of a network given by flags (L2; default: first address of each subnet).
    #[arg(long)]
    pub gateway: Vec<IpAddr>,
    #[arg(long, value_enum)]
    pub driver: Option<Driver>,
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    #[arg(long, value_enum)]
    pub flag: Option<Flag>,
    /// No default route.
    #[arg(long)]
    pub internal: bool,
    /// Static IPv4 address.
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// Static IPv6 address.
    #[arg(long)]
    pub ip6: Option<IpAddr>,
    /// Interface name inside the namespace.
    #[arg(long, default_value = "eth0")]
    pub ifname: String,
    /// MTU of the interface (default: the parent's).
    #[arg(long)]
    pub mtu: Option<u32>,
    /// Lease owner id, shown by `lease ls` (default: run-PID).
    #[arg(long)]
    pub name: Option<String>,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    pub command: Vec<String>,
}

const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Run the command; returns the exit status to exit with (the command's, or 128+signal).
pub fn run(args: RunArgs, dirs: &Dirs) -> Result<i32> {
    crate::netns::check_privileges("ipvlan-run")?;
    let id = args
        .name
        .clone()
        .unwrap_or_else(|| format!("run-{}", std::process::id()));
    crate::oci::validate_container_id(&id)?;
    crate::network::validate_ifname(&args.ifname)?;
    let (network, adhoc) = resolve(&args, dirs)?;
    // Signals wait until the command runs, then go to it: setup and teardown are not cut short.
    let mut signals = SigSet::empty();
    FORWARDED.iter().for_each(|s| signals.add(*s));
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None).context("cannot block signals")?;

    let rtnl = Rtnl::current()?;
    if adhoc && network.parent_owned.is_some() {
        parent::ensure(&rtnl, &network)?;
    }
    let result = attach_and_run(&args, &id, &network, &rtnl, dirs, signals);
    // A network made for this run alone (isolated, on its own dummy) leaves nothing behind.
    if adhoc && network.parent_owned.is_some() {
        let store = LeaseFiles::new(&dirs.state);
        let cleanup = parent::remove_owned(&rtnl, &network)
            .and(crate::ipam::remove_network(&store, &network.name));
        if let Err(e) = cleanup {
            crate::warn(&e.to_string());
        }
    }
    result
}

fn attach_and_run(
    args: &RunArgs,
    id: &str,
    network: &Network,
    rtnl: &Rtnl,
    dirs: &Dirs,
    signals: SigSet,
) -> Result<i32> {
    let netns = Netns::create()?;
    let ns = Rtnl::in_netns(&netns)?;
    if let Some(lo) = ns.link("lo")? {
        ns.set_up(lo.index)
            .context("cannot bring lo up in the new netns")?;
    }
    let store = crate::ipam::select::for_network(network, dirs)?;
    let att = Attachment {
        network,
        request: Request {
            static_v4: args.ip,
            static_v6: args.ip6,
            ..Request::new(
                network,
                id,
                &args.ifname,
                Owner::of_pid(std::process::id())?,
            )
        },
        mtu: args.mtu,
        mac: None,
    };
    attach::setup(rtnl, &*store, &att, &netns)?;
    let status = spawn_and_wait(&args.command, &netns, signals);
    // A command may leave processes holding the netns: take the link out explicitly.
    let torn = attach::teardown(&*store, id, &args.ifname, Some(&netns), Some(network));
    let status = status?;
    torn?;
    Ok(status)
}

fn spawn_and_wait(command: &[String], netns: &Netns, signals: SigSet) -> Result<i32> {
    let fd = netns.raw_fd();
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    // SAFETY: only async-signal-safe calls between fork and exec (setns, sigprocmask).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let empty: libc::sigset_t = std::mem::zeroed();
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::from(e).context(format!("cannot run {}", command[0])))?;
    let pid = Pid::from_raw(child.id() as i32);
    std::thread::spawn(move || {
        while let Ok(sig) = signals.wait() {
            let _ = kill(pid, sig);
        }
    });
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for {}", command[0]))?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// A defined network, or one given by flags (not persisted; a dummy parent it needs is made for
/// this run and deleted after it).
fn resolve(args: &RunArgs, dirs: &Dirs) -> Result<(Network, bool)> {
    let networks = NetworkStore::new(&dirs.config);
    if let Some(name) = &args.network {
        return Ok((networks.load(name)?, false));
    }
    if args.subnet.is_empty() {
        bail!("give --network NAME, or --subnet CIDR (with --parent IFACE to use a host link)");
    }
    let id = crate::random_id();
    // Runs on one host link share its leases (so they never collide), as the hook's
    // annotation-only networks do; an isolated run has a network of its own.
    let name = match &args.parent {
        Some(p) => format!("adhoc-{p}"),
        None => format!("run-{}", &id[..12]),
    };
    let spec = NetworkSpec {
        name,
        driver: args.driver.unwrap_or_default(),
        mode: args.mode.unwrap_or_default(),
        flag: args.flag.unwrap_or_default(),
        parent: args.parent.clone(),
        internal: args.internal,
        mtu: None,
        subnets: args.subnet.clone(),
        gateways: args.gateway.clone(),
        ip_ranges: Vec::new(),
        announce: None,
        host_access: None,
    };
    let (mut net, warnings) = spec.build(id)?;
    warnings.iter().for_each(|w| crate::warn(w));
    let rtnl = Rtnl::current()?;
    parent::plan(&rtnl, &mut net)?;
    if net.parent_owned == Some(crate::network::OwnedParent::Vlan) {
        bail!(
            "parent {} does not exist: ipvlan-run does not create VLAN links; define a network with 'ipvlan-hook network create --parent {}' instead",
            net.parent,
            net.parent
        );
    }
    rtnl.require(net.driver)?;
    net.check_shares_parent_with_all(&networks.list()?)?;
    Ok((net, true))
}
