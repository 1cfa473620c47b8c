//! `ipvlan-run` (= `ipvlan-hook run`): a fresh network namespace on a network, a command inside
//! it, and everything torn down when the command ends, however it ends.

use std::net::IpAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

use ipnetwork::IpNetwork;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::unistd::Pid;

use crate::attach::{self, Attachment, AttachmentRequest, Release};
use crate::bail;
use crate::dirs::Dirs;
use crate::error::{Context, Error, Result};
use crate::ipam::{LeaseFiles, LeaseStore, Owner};
use crate::netlink::Rtnl;
use crate::netns::Netns;
use crate::network::store::NetworkStore;
use crate::network::{Driver, Flag, Mode, Network, NetworkSpec, parent};

/// What `run` was asked for.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A network defined with `network create`, with this interface's settings (podman's
    /// syntax); repeat for several interfaces, named eth0, eth1, ... unless given.
    #[arg(
        long,
        visible_alias = "net",
        value_name = "NAME[:ip=A,ip6=B,interface_name=IF,mac=M,gw_priority=N]",
        conflicts_with_all = ["parent", "subnet", "gateway", "driver", "mode", "flag", "internal"]
    )]
    pub network: Vec<String>,
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
    /// Static IPv4 address (with one network).
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// Static IPv6 address (with one network).
    #[arg(long)]
    pub ip6: Option<IpAddr>,
    /// Interface name inside the namespace (with one network) [default: eth0].
    #[arg(long)]
    pub ifname: Option<String>,
    /// MTU of the interface (with one network; default: the parent's).
    #[arg(long)]
    pub mtu: Option<u32>,
    /// Lease owner id, shown by `lease ls` (default: run-PID).
    #[arg(long)]
    pub name: Option<String>,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    pub command: Vec<String>,
}

/// The signals forwarded to the command, and SIGCHLD, which says it ended.
const WAITED: [Signal; 5] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGCHLD,
];

/// Run the command; returns the exit status to exit with (the command's, or 128+signal).
pub fn run(args: RunArgs, dirs: &Dirs) -> Result<i32> {
    crate::netns::check_privileges("ipvlan-run")?;
    let id = args
        .name
        .clone()
        .unwrap_or_else(|| format!("run-{}", std::process::id()));
    crate::oci::validate_container_id(&id)?;
    let mut requests = requests(&args)?;
    let (networks, adhoc) = resolve(&args, &requests, dirs)?;
    if adhoc {
        requests[0].network = networks[0].name.clone();
        requests[0].validate()?;
    }
    // Signals wait until the command runs, then go to it: setup and teardown are not cut short.
    // SIGCHLD is blocked with them: spawn_and_wait waits for all of them at once.
    let mut signals = SigSet::empty();
    WAITED.iter().for_each(|s| signals.add(*s));
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None).context("cannot block signals")?;

    let rtnl = Rtnl::current()?;
    // A network made for this run alone (isolated, on its own dummy) leaves nothing behind.
    let own_dummy = adhoc
        .then(|| &networks[0])
        .filter(|n| n.parent_owned.is_some());
    if let Some(net) = own_dummy {
        parent::ensure(&rtnl, net)?;
    }
    let result = attach_and_run(
        &args.command,
        &id,
        &requests,
        &networks,
        &rtnl,
        dirs,
        signals,
    );
    if let Some(net) = own_dummy {
        let store = LeaseFiles::new(&dirs.state);
        let cleanup =
            parent::remove_owned(&rtnl, net).and(crate::ipam::remove_network(&store, &net.name));
        if let Err(e) = cleanup {
            crate::warn(&e.to_string());
        }
    }
    result
}

/// The interfaces asked for: one per `--network`, or the one of a network given by flags.
fn requests(args: &RunArgs) -> Result<Vec<AttachmentRequest>> {
    let single =
        args.ip.is_some() || args.ip6.is_some() || args.ifname.is_some() || args.mtu.is_some();
    if args.network.len() > 1 && single {
        bail!(
            "--ip, --ip6, --ifname and --mtu are for one network: with several, give each its own (--network NAME:ip=A,ip6=B,interface_name=IF)"
        );
    }
    let mut reqs = Vec::with_capacity(args.network.len().max(1));
    for (i, spec) in args.network.iter().enumerate() {
        reqs.push(parse_network(spec, &format!("eth{i}"))?);
    }
    if reqs.is_empty() {
        // The network given by flags, named once resolve() has made it.
        reqs.push(AttachmentRequest::new("", "eth0"));
    }
    if let [only] = &mut reqs[..] {
        if let Some(ifname) = &args.ifname {
            only.ifname = ifname.clone();
        }
        for ip in [args.ip, args.ip6].into_iter().flatten() {
            only.add_ip(ip)?;
        }
        only.mtu = args.mtu.or(only.mtu);
    }
    Ok(reqs)
}

/// `NAME[:ip=A,ip6=B,interface_name=IF,mac=M,gw_priority=N]`, podman's `--network` syntax.
fn parse_network(spec: &str, default_ifname: &str) -> Result<AttachmentRequest> {
    let (name, opts) = spec.split_once(':').unwrap_or((spec, ""));
    let mut req = AttachmentRequest::new(name, default_ifname);
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        let bad = |what: &str| Error::msg(format!("--network {spec}: {opt}: {what}"));
        let (key, value) = opt
            .split_once('=')
            .ok_or_else(|| bad("use KEY=VALUE (ip, ip6, interface_name, mac, gw_priority)"))?;
        match key {
            "ip" | "ip6" => {
                let ip: IpAddr = value.parse().map_err(|_| bad("not an address"))?;
                if ip.is_ipv6() != (key == "ip6") {
                    return Err(bad("ip takes an IPv4 address, ip6 an IPv6 one"));
                }
                req.add_ip(ip)?;
            }
            "interface_name" => req.ifname = value.to_string(),
            "mac" => req.mac = Some(value.parse().map_err(|e: String| bad(&e))?),
            "gw_priority" => {
                req.gw_priority = value.parse().map_err(|_| bad("use a whole number"))?
            }
            _ => {
                return Err(bad(
                    "unknown key; use ip, ip6, interface_name, mac or gw_priority",
                ));
            }
        }
    }
    Ok(req)
}

fn attach_and_run(
    command: &[String],
    id: &str,
    requests: &[AttachmentRequest],
    networks: &[Network],
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
    let stores = crate::ipam::select::for_networks(networks, dirs)?;
    let atts = Attachment::zip(requests, networks, &stores);
    attach::setup(rtnl, id, &Owner::of_pid(std::process::id())?, &atts, &netns)?;
    let status = spawn_and_wait(command, &netns, signals);
    // A command may leave processes holding the netns: take the links out explicitly.
    let ifnames: Vec<&str> = requests.iter().map(|r| r.ifname.as_str()).collect();
    let stores: Vec<&dyn LeaseStore> = stores.iter().map(|s| &**s).collect();
    let nets: Vec<&Network> = networks.iter().collect();
    let torn = attach::teardown(&stores, id, &ifnames, Some(&netns), Release::All, &nets);
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
    // Forward signals from this thread until SIGCHLD says the command ended: no second
    // thread, so teardown enters the netns on this one, as the hook does (netns.rs).
    let pid = Pid::from_raw(child.id() as i32);
    let status = loop {
        match signals.wait().context("cannot wait for signals")? {
            Signal::SIGCHLD => {
                if let Some(status) = child
                    .try_wait()
                    .with_context(|| format!("cannot wait for {}", command[0]))?
                {
                    break status;
                }
            }
            sig => {
                let _ = kill(pid, sig);
            }
        }
    };
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// The networks of `requests`, defined ones; or the one given by flags (not persisted; a
/// dummy parent it needs is made for this run and deleted after it).
fn resolve(
    args: &RunArgs,
    requests: &[AttachmentRequest],
    dirs: &Dirs,
) -> Result<(Vec<Network>, bool)> {
    let networks = NetworkStore::new(&dirs.config);
    if !args.network.is_empty() {
        let mut nets: Vec<Network> = Vec::with_capacity(requests.len());
        for (i, r) in requests.iter().enumerate() {
            r.validate()?;
            let net = match requests[..i].iter().position(|o| o.network == r.network) {
                Some(j) => nets[j].clone(),
                None => networks.load(&r.network)?,
            };
            nets.push(net);
        }
        return Ok((nets, false));
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
        aux_addresses: Vec::new(),
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
    Ok((vec![net], true))
}
