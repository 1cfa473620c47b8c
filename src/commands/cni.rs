//! The CNI door: the same executable run by a CNI runtime (`CNI_COMMAND` set, no arguments).
//! ADD, DEL, CHECK, GC, STATUS and VERSION (spec 1.1.0, results down to 0.3.0), in two roles:
//! the main plugin, `{"type": "ipvlan-hook", "network": NAME}`, which makes the interface
//! through the same `attach` transaction as the hook; and the IPAM plugin under another main
//! plugin, `"ipam": {"type": "ipvlan-hook", "network": NAME}`, which only leases. Either way
//! a lease records the container id, the interface and the netns (path and inode), so `gc`
//! judges it like a pre-created netns, and the CNI network's name, so the runtime's GC can.
//! stdout carries exactly one JSON object (a result or an error) or nothing; logs go to stderr.

mod config;
mod result;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use crate::attach::{self, Attachment, AttachmentRequest, Release};
use crate::dirs::Dirs;
use crate::ipam::{self, Lease, Owner, select};
use crate::netlink::Rtnl;
use crate::netns::Netns;
use crate::network::store::NetworkStore;
use crate::network::{Driver, Network};
use crate::policy::Policy;
pub use config::TYPE;
use config::{Env, NetConf, Role, Section};
pub use result::supports;
use result::{CniError, CniResult, Interface, IpConfig, Route, code};

/// What a plugin entry of a CNI configuration asks of us, for `doctor`.
pub struct Usage {
    /// "plugin", or "IPAM under TYPE".
    pub role: String,
    pub network: String,
    pub dirs: Dirs,
}

/// The use `plugin` (one entry of a conflist's `plugins`) makes of us: None when it names us
/// neither as its type nor as its IPAM; an error when it names us but cannot work.
pub fn usage(plugin: &Value) -> Option<Result<Usage, String>> {
    if plugin["type"] != TYPE && plugin["ipam"]["type"] != TYPE {
        return None;
    }
    let conf: NetConf = match serde_json::from_value(plugin.clone()) {
        Ok(conf) => conf,
        Err(e) => return Some(Err(format!("cannot decode the plugin entry: {e}"))),
    };
    Some(match conf.section() {
        Ok(section) => Ok(Usage {
            role: match conf.role() {
                Role::Plugin => "plugin".into(),
                Role::Ipam => format!("IPAM under {}", conf.ours.plugin_type),
            },
            network: section.network().to_string(),
            dirs: section.dirs(),
        }),
        Err(e) => Err(e.details),
    })
}

/// Run the verb `CNI_COMMAND` names; the exit status.
pub fn main() -> i32 {
    let env = Env::read();
    let mut stdin = Vec::new();
    let outcome = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => run(&env, &stdin),
        Err(e) => Err(CniError::new(
            code::IO,
            "cannot read the network configuration",
            format!("stdin: {e}"),
        )),
    };
    match outcome {
        Ok(out) => {
            if let Some(value) = out {
                print(&value);
            }
            0
        }
        Err(e) => {
            crate::log_line(&format!(
                "ipvlan-hook: CNI {}: {}: {}\n",
                env.command, e.msg, e.details
            ));
            print(&e.encode(&reply_version(&stdin)));
            1
        }
    }
}

/// One write of one object: a runtime parses stdout whole.
fn print(value: &Value) {
    let mut out = value.to_string();
    out.push('\n');
    let _ = std::io::stdout().write_all(out.as_bytes());
}

/// The version an error is written in: the configuration's when we speak it.
fn reply_version(stdin: &[u8]) -> String {
    let asked = serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string));
    match asked {
        Some(v) if supports(&v) => v,
        _ => newest().to_string(),
    }
}

fn newest() -> &'static str {
    result::SUPPORTED[result::SUPPORTED.len() - 1]
}

fn run(env: &Env, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    if env.command == "VERSION" {
        return version(stdin).map(Some);
    }
    let conf = NetConf::parse(stdin)?;
    let since = |v: &str| {
        if result::older(&conf.cni_version, v) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("{} needs cniVersion {v} or later", env.command),
                format!(
                    "the configuration has cniVersion {}: {} came with {v}",
                    conf.cni_version, env.command
                ),
            ));
        }
        Ok(())
    };
    match env.command.as_str() {
        "ADD" => add(&conf, env).map(Some),
        "DEL" => del(&conf, env).map(|()| None),
        "CHECK" => {
            since("0.4.0")?;
            check(&conf, env).map(|()| None)
        }
        "GC" => {
            since("1.1.0")?;
            gc(&conf).map(|()| None)
        }
        "STATUS" => {
            since("1.1.0")?;
            status(&conf).map(|()| None)
        }
        other => Err(CniError::new(
            code::INVALID_ENV,
            "invalid CNI_COMMAND",
            format!("CNI_COMMAND={other:?}: expected ADD, DEL, CHECK, GC, STATUS or VERSION"),
        )),
    }
}

/// VERSION looks at nothing but stdin's `cniVersion` (runtimes pass dummy variables).
fn version(stdin: &[u8]) -> Result<Value, CniError> {
    let asked = if stdin.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: Value = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(code::DECODE, "cannot decode stdin", format!("stdin: {e}"))
        })?;
        v.get("cniVersion")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(result::version_info(asked.as_deref().unwrap_or(newest())))
}

/// The network the configuration names, as the hook would load it (policy included).
fn load_network(section: &Section, dirs: &Dirs) -> Result<Network, CniError> {
    let name = section.network();
    let invalid = |e: crate::error::Error| {
        CniError::new(
            code::INVALID_CONFIG,
            format!("network {name} cannot be used"),
            e.to_string(),
        )
    };
    Policy::load(&dirs.config)
        .and_then(|p| p.check_network(name))
        .map_err(invalid)?;
    NetworkStore::new(&dirs.config).load(name).map_err(invalid)
}

/// The static addresses, checked against the network: (IPv4, IPv6).
fn statics(
    net: &Network,
    conf: &NetConf,
    env: &Env,
) -> Result<(Option<IpAddr>, Option<IpAddr>), CniError> {
    let mut out = (None, None);
    for (addr, prefix) in conf.static_ips(&env.cni_args()?)? {
        net.check_static("static address", addr, prefix)
            .map_err(|e| {
                CniError::new(
                    code::INVALID_CONFIG,
                    "invalid static address",
                    e.to_string(),
                )
            })?;
        match addr {
            IpAddr::V4(_) => out.0 = Some(addr),
            IpAddr::V6(_) => out.1 = Some(addr),
        }
    }
    Ok(out)
}

/// Who holds a lease made through CNI: the attachment's netns, path and inode (the runtime
/// removes it when the container is gone), and the CNI network, for the runtime's GC.
fn owner(conf: &NetConf, netns: &Netns) -> Result<Owner, CniError> {
    Ok(Owner {
        netns: Some(netns.path().to_owned()),
        netns_inode: Some(netns.inode()?),
        cni: Some(conf.name.clone()),
        ..Owner::this_boot()
    })
}

fn open_netns(path: &str) -> Result<Netns, CniError> {
    Netns::open(Path::new(path)).map_err(|e| {
        CniError::new(
            code::FAILED,
            "cannot open CNI_NETNS",
            format!("CNI_NETNS={path}: {e}"),
        )
    })
}

/// What ADD and CHECK work on: the attachment the environment names, on the network the
/// configuration names.
struct Target<'a> {
    dirs: Dirs,
    container: &'a str,
    ifname: &'a str,
    ns_path: &'a str,
    net: Network,
}

fn target<'a>(conf: &NetConf, env: &'a Env) -> Result<Target<'a>, CniError> {
    let section = conf.section()?;
    let dirs = section.dirs();
    Ok(Target {
        container: env.container()?,
        ifname: env.ifname()?,
        ns_path: env.netns()?,
        net: load_network(section, &dirs)?,
        dirs,
    })
}

fn add(conf: &NetConf, env: &Env) -> Result<Value, CniError> {
    let Target {
        dirs,
        container,
        ifname,
        ns_path,
        net,
    } = target(conf, env)?;
    let (static_v4, static_v6) = statics(&net, conf, env)?;
    let mut prev = match &conf.prev_result {
        Some(p) => CniResult::from_prev(p)
            .map_err(|e| CniError::new(code::DECODE, "invalid prevResult", e))?,
        None => CniResult::default(),
    };
    let role = conf.role();
    let mac = match role {
        Role::Plugin => conf.mac(&env.cni_args()?)?,
        // The main plugin sets the MAC; ours is only the address.
        Role::Ipam => None,
    };
    if mac.is_some() && net.driver != Driver::Macvlan {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            "mac is for macvlan networks",
            format!(
                "network {} is {}: its links share the parent's hardware address; drop the mac",
                net.name, net.driver
            ),
        ));
    }
    let netns = open_netns(ns_path)?;
    let owner = owner(conf, &netns)?;
    let want = AttachmentRequest {
        ipv4: static_v4,
        ipv6: static_v6,
        mac,
        ..AttachmentRequest::new(&net.name, ifname)
    };
    let store = select::for_network(&net, &dirs)?;
    let att = Attachment {
        network: &net,
        store: &*store,
        want: &want,
    };
    match role {
        Role::Ipam => {
            let leases = attach::allocate(container, &owner, &att)?;
            attach::report(container, &att, &leases);
            // An IPAM result is ours alone, without interfaces (SPEC.md section 5).
            let (ips, routes) = addressing(&net, &leases, None);
            prev = CniResult {
                ips,
                routes,
                ..CniResult::default()
            };
        }
        Role::Plugin => {
            crate::netns::check_privileges("the ipvlan-hook CNI plugin")?;
            let in_ns = Rtnl::in_netns(&netns)?;
            if in_ns.link(ifname)?.is_some() {
                return Err(CniError::new(
                    code::FAILED,
                    format!("interface {ifname} already exists"),
                    format!(
                        "interface {ifname} already exists in netns {ns_path}: choose another CNI_IFNAME"
                    ),
                ));
            }
            let leases = attach::setup(
                &Rtnl::current()?,
                container,
                &owner,
                std::slice::from_ref(&att),
                &netns,
            )?
            .concat();
            let link = match in_ns.link(ifname) {
                Ok(Some(link)) => link,
                failed => {
                    let why = failed
                        .err()
                        .map_or("it is gone".to_string(), |e| e.to_string());
                    let undone = attach::teardown(
                        &[&*store],
                        container,
                        &[ifname],
                        Some(&netns),
                        Release::Interfaces { network: &net.name },
                        &[&net],
                    );
                    return Err(CniError::new(
                        code::FAILED,
                        format!("cannot read back {ifname}"),
                        format!(
                            "interface {ifname} in netns {ns_path}: {why}{}",
                            undone
                                .err()
                                .map(|e| format!("; rollback: {e}"))
                                .unwrap_or_default()
                        ),
                    ));
                }
            };
            attach::report(container, &att, &leases);
            let index = prev.interfaces.len();
            prev.interfaces.push(Interface {
                name: ifname.to_string(),
                mac: link.mac,
                sandbox: Some(ns_path.to_string()),
                ..Interface::default()
            });
            let (ips, routes) = addressing(&net, &leases, Some(index));
            prev.ips.extend(ips);
            prev.routes.extend(routes);
        }
    }
    Ok(prev.encode(&conf.cni_version))
}

/// The result's addresses and routes for `leases` (on interface `index` of the result).
fn addressing(
    net: &Network,
    leases: &[Lease],
    index: Option<usize>,
) -> (Vec<IpConfig>, Vec<Route>) {
    let mut ips = Vec::new();
    let mut routes = Vec::new();
    for l in leases {
        let Ok(address) = ipnetwork::IpNetwork::new(l.address, l.prefix_len) else {
            continue;
        };
        ips.push(IpConfig {
            address,
            gateway: net.subnet_of(l.address).and_then(|s| s.gateway),
            interface: index,
        });
        if let Some(gw) = net.default_route(l.address) {
            let any = if l.address.is_ipv6() {
                "::/0"
            } else {
                "0.0.0.0/0"
            };
            routes.push(Route {
                dst: any.parse().expect("a valid CIDR literal"),
                gw,
                extra: Default::default(),
            });
        }
    }
    (ips, routes)
}

/// The network the configuration names, while it is defined: DEL and GC go on without it (its
/// leases are then in lease files; a removed network took its link and routes with it).
fn defined(section: &Section, dirs: &Dirs) -> Option<Network> {
    NetworkStore::new(&dirs.config).load(section.network()).ok()
}

/// DEL: undo ADD; whatever is gone already (netns, link, lease, the network itself) is
/// success, and so is a repeated DEL.
fn del(conf: &NetConf, env: &Env) -> Result<(), CniError> {
    let section = conf.section()?;
    let dirs = section.dirs();
    let container = env.container()?;
    let ifname = env.ifname()?;
    let network = defined(section, &dirs);
    let store = select::for_poststop(network.as_ref(), &dirs)?;
    let netns = match conf.role() {
        Role::Plugin => env
            .netns
            .as_deref()
            .map(Path::new)
            .filter(|p| p.exists())
            .and_then(|p| Netns::open(p).ok()),
        // The main plugin deletes its own link.
        Role::Ipam => None,
    };
    if netns.is_some() {
        crate::netns::check_privileges("the ipvlan-hook CNI plugin")?;
    }
    // Host routes are the main plugin's: under another plugin, none were made.
    let routed = network
        .as_ref()
        .filter(|_| matches!(conf.role(), Role::Plugin));
    let release = Release::Interfaces {
        network: section.network(),
    };
    let torn = attach::teardown(
        &[&*store],
        container,
        &[ifname],
        netns.as_ref(),
        release,
        routed.as_slice(),
    )?;
    for l in torn {
        crate::info(&format!(
            "container {container}: released {} on network {} (CNI)",
            l.address, l.network
        ));
    }
    Ok(())
}

/// CHECK: what `prevResult` says of this attachment still holds: our link (main plugin) with
/// its addresses, and the leases behind them. Routes are left alone: later plugins in the
/// chain may change them.
fn check(conf: &NetConf, env: &Env) -> Result<(), CniError> {
    let Target {
        dirs,
        container,
        ifname,
        ns_path,
        net,
    } = target(conf, env)?;
    let Some(prev) = &conf.prev_result else {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            "prevResult is missing",
            "CHECK compares with the ADD result the runtime passes as prevResult",
        ));
    };
    let prev = CniResult::from_prev(prev)
        .map_err(|e| CniError::new(code::DECODE, "invalid prevResult", e))?;
    let failed = |what: String| CniError::new(code::FAILED, "check failed", what);
    let mut expected: Vec<&IpConfig> = prev
        .ips
        .iter()
        .filter(|ip| net.subnet_of(ip.address.ip()).is_some())
        .collect();
    if let Role::Plugin = conf.role() {
        let Some(index) = prev
            .interfaces
            .iter()
            .position(|i| i.name == ifname && i.sandbox.as_deref() == Some(ns_path))
        else {
            return Err(failed(format!(
                "prevResult lists no interface {ifname} in netns {ns_path}"
            )));
        };
        expected.retain(|ip| ip.interface == Some(index));
        let netns = open_netns(ns_path)?;
        let in_ns = Rtnl::in_netns(&netns)?;
        let Some(link) = in_ns.link(ifname)? else {
            return Err(failed(format!(
                "interface {ifname} is missing from netns {ns_path}"
            )));
        };
        if link.kind != Some(net.driver.into()) || link.alias.as_deref() != Some(container) {
            return Err(failed(format!(
                "interface {ifname} in netns {ns_path} is not the {} link made for container {container}",
                net.driver
            )));
        }
        if !link.up {
            return Err(failed(format!(
                "interface {ifname} in netns {ns_path} is down"
            )));
        }
        let want_mac = prev.interfaces[index].mac.as_deref();
        if want_mac.is_some() && want_mac.map(str::to_ascii_lowercase) != link.mac {
            return Err(failed(format!(
                "interface {ifname} in netns {ns_path} has MAC {}, prevResult says {}",
                link.mac.unwrap_or_default(),
                want_mac.unwrap_or_default()
            )));
        }
        let present = in_ns.addresses(link.index)?;
        for ip in &expected {
            if !present.contains(&(ip.address.ip(), ip.address.prefix())) {
                return Err(failed(format!(
                    "interface {ifname} in netns {ns_path} lacks {}",
                    ip.address
                )));
            }
        }
    }
    let store = select::for_network(&net, &dirs)?;
    let leased: BTreeSet<IpAddr> = store
        .lock(&net.name)?
        .of_container(container)?
        .into_iter()
        .filter(|l| l.ifname == ifname)
        .map(|l| l.address)
        .collect();
    let wanted: BTreeSet<IpAddr> = expected.iter().map(|ip| ip.address.ip()).collect();
    if leased != wanted {
        return Err(failed(format!(
            "container {container} interface {ifname} holds leases {} on network {}, prevResult says {}",
            list(&leased),
            net.name,
            list(&wanted)
        )));
    }
    Ok(())
}

fn list(addrs: &BTreeSet<IpAddr>) -> String {
    if addrs.is_empty() {
        return "none".into();
    }
    addrs
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// GC: release the leases this CNI network made for attachments the runtime no longer lists.
/// Leases of the hook, the launcher or another CNI network on the same network are not its to
/// judge (`ipvlan-hook gc` does, by their owners).
fn gc(conf: &NetConf) -> Result<(), CniError> {
    let section = conf.section()?;
    let dirs = section.dirs();
    if conf.valid_attachments.is_none() && conf.attachments.is_none() {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            "cni.dev/valid-attachments is missing",
            "GC needs the list of attachments still valid (cni.dev/valid-attachments or cni.dev/attachments)",
        ));
    }
    let valid: BTreeSet<(&str, &str)> = conf
        .valid_attachments
        .iter()
        .chain(&conf.attachments)
        .flatten()
        .map(|a| (a.container.as_str(), a.ifname.as_str()))
        .collect();
    let network = defined(section, &dirs);
    let store = select::for_poststop(network.as_ref(), &dirs)?;
    let released = ipam::release_matching(&*store, section.network(), |l| {
        l.owner.cni.as_deref() == Some(conf.name.as_str())
            && !valid.contains(&(l.container.as_str(), l.ifname.as_str()))
    })?;
    if let (Some(net), Role::Plugin) = (&network, conf.role()) {
        attach::remove_routes(net, &released)?;
    }
    for l in released {
        crate::info(&format!(
            "CNI GC of {}: released {} of container {} interface {} on network {}",
            conf.name, l.address, l.container, l.ifname, l.network
        ));
    }
    Ok(())
}

/// STATUS: can ADD be served? The network is defined and allowed, its lease store answers, and
/// (main plugin) the kernel has the driver and the parent is there or ours to make.
fn status(conf: &NetConf) -> Result<(), CniError> {
    let unavailable =
        |details: String| CniError::new(code::NOT_AVAILABLE, "cannot serve ADD", details);
    let section = conf.section()?;
    let dirs = section.dirs();
    let net = load_network(section, &dirs).map_err(|e| unavailable(e.details))?;
    let store = select::for_network(&net, &dirs).map_err(|e| unavailable(e.to_string()))?;
    // A read, not only the lock: an etcd store locks on this host and reads from etcd.
    store
        .lock(&net.name)
        .and_then(|leases| leases.taken())
        .map_err(|e| unavailable(format!("the lease store of network {}: {e}", net.name)))?;
    if let Role::Plugin = conf.role() {
        let rtnl = Rtnl::current()?;
        rtnl.require(net.driver)
            .map_err(|e| unavailable(e.to_string()))?;
        if net.parent_owned.is_none() && rtnl.link(&net.parent)?.is_none() {
            return Err(unavailable(format!(
                "parent {} of network {} is gone: create it again or recreate the network on another parent",
                net.parent, net.name
            )));
        }
    }
    Ok(())
}
