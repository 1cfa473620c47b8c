//! `doctor`: is this host ready for ipvlan-hook? One row per check, PASS, WARN or FAIL, and what
//! to do about each failure. It changes nothing: the kernel probes run in a throwaway network
//! namespace and ask for links the drivers refuse. The CNI rows are in `doctor/cni.rs`.

mod cni;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

mod host_access;

use super::{Format, print_json, print_table};
use crate::bail;
use crate::dirs::Dirs;
use crate::error::{Context, Result};
use crate::link::LinkKind;
use crate::netlink::Rtnl;
use crate::netns::Netns;
use crate::network::store::NetworkStore;
use crate::network::{Driver, Network, OwnedParent, announce, parent};
use crate::policy::Policy;

/// Where podman and CRI-O read hooks.d files unless configured otherwise.
pub const HOOKS_DIRS: [&str; 2] = [
    "/usr/share/containers/oci/hooks.d",
    "/etc/containers/oci/hooks.d",
];

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// hooks.d directory to check, instead of where podman and CRI-O look (repeat for several).
    #[arg(long = "hooks-dir", value_name = "DIR", default_values = HOOKS_DIRS)]
    pub hooks_dirs: Vec<PathBuf>,
    /// Directory where CNI runtimes look for plugins, instead of the usual ones (repeat for
    /// several).
    #[arg(long = "cni-plugin-dir", value_name = "DIR", default_values = cni::PLUGIN_DIRS)]
    pub cni_plugin_dirs: Vec<PathBuf>,
    /// Directory of CNI network configurations to check, instead of /etc/cni/net.d (repeat for
    /// several).
    #[arg(long = "cni-conf-dir", value_name = "DIR", default_values = cni::CONF_DIRS)]
    pub cni_conf_dirs: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Worth knowing, but nothing is broken: does not fail the run.
    Warn,
    Fail,
}

#[derive(Serialize, Debug)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub detail: String,
}

/// Print the table (or JSON); an error, so exit status 1, when any check failed.
pub fn run(args: DoctorArgs, dirs: &Dirs) -> Result<i32> {
    let checks = checks(&args, dirs);
    match args.format {
        Format::Json => print_json(&checks)?,
        Format::Table => {
            let rows: Vec<Vec<String>> = checks
                .iter()
                .map(|c| {
                    let status = match c.status {
                        Status::Pass => "PASS",
                        Status::Warn => "WARN",
                        Status::Fail => "FAIL",
                    };
                    vec![c.check.clone(), status.into(), c.detail.clone()]
                })
                .collect();
            print_table(&["CHECK", "RESULT", "DETAIL"], &rows);
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        bail!("doctor: {failed} of {} checks failed", checks.len());
    }
    Ok(0)
}

/// Every check, in the order they are printed.
pub fn checks(args: &DoctorArgs, dirs: &Dirs) -> Vec<Check> {
    let mut out = Checks(Vec::new());
    match crate::netns::check_privileges("ipvlan-hook") {
        Ok(()) => out.pass("privileges", "CAP_SYS_ADMIN and CAP_NET_ADMIN"),
        Err(e) => out.fail("privileges", e),
    }
    kernel(&mut out);
    config_dir(&mut out, &dirs.config);
    policy(&mut out, &dirs.config);
    networks(&mut out, &dirs.config);
    announce_tables(&mut out, dirs);
    state_dir(&mut out, &dirs.state);
    hooks(&mut out, &args.hooks_dirs, dirs);
    cni::checks(&mut out, &args.cni_plugin_dirs, &args.cni_conf_dirs, dirs);
    out.0
}

struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, check: impl Into<String>, status: Status, detail: impl ToString) {
        self.0.push(Check {
            check: check.into(),
            status,
            detail: detail.to_string(),
        });
    }
    fn pass(&mut self, check: impl Into<String>, detail: impl ToString) {
        self.add(check, Status::Pass, detail);
    }
    fn warn(&mut self, check: impl Into<String>, detail: impl ToString) {
        self.add(check, Status::Warn, detail);
    }
    fn fail(&mut self, check: impl Into<String>, detail: impl ToString) {
        self.add(check, Status::Fail, detail);
    }
}

/// ipvlan, 802.1q and dummy links, each probed with a request its driver refuses. The probes
/// run in a namespace of their own that dies with them, so whatever a kernel makes of a
/// request, the host's links are not touched.
fn kernel(out: &mut Checks) {
    type Probe = fn(&Rtnl) -> Result<bool>;
    let features: [(&str, Probe, LinkKind); 3] = [
        ("ipvlan", Rtnl::ipvlan_supported, LinkKind::Ipvlan),
        ("802.1q VLAN", Rtnl::vlan_supported, LinkKind::Vlan),
        ("dummy", Rtnl::dummy_supported, LinkKind::Dummy),
    ];
    let scratch = Netns::create().and_then(|ns| {
        let rtnl = Rtnl::in_netns(&ns)?;
        Ok((ns, rtnl))
    });
    for (what, probe, kind) in features {
        let check = format!("kernel: {what}");
        match &scratch {
            Err(e) => out.fail(check, format!("cannot probe: {e}")),
            Ok((_ns, rtnl)) => match probe(rtnl) {
                Ok(true) => out.pass(check, "supported"),
                Ok(false) => out.fail(check, kind.unsupported()),
                Err(e) => out.fail(check, e),
            },
        }
    }
}

fn config_dir(out: &mut Checks, config: &Path) {
    let check = format!("config dir {}", config.display());
    match fs_err::read_dir(config) {
        Ok(_) => out.pass(check, "readable"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => out.warn(
            check,
            "missing: 'ipvlan-hook network create' makes it (packages install it with policy.json)",
        ),
        Err(e) => out.fail(check, e),
    }
}

fn policy(out: &mut Checks, config: &Path) {
    let path = crate::dirs::policy(config);
    let check = format!("policy {}", path.display());
    let any = |list: Vec<String>| {
        if list.is_empty() {
            "any".to_string()
        } else {
            list.join(",")
        }
    };
    match Policy::load(config) {
        Err(e) => out.fail(check, e),
        Ok(p) if !p.allow_annotation_networks => {
            let missing = if path.exists() { "" } else { " (no file)" };
            out.pass(check, format!("annotation-only networks refused{missing}"))
        }
        Ok(p) => out.pass(
            check,
            format!(
                "annotation-only networks allowed: parents {}, subnets {}",
                any(p.allowed_parents),
                any(p.allowed_subnets.iter().map(|s| s.to_string()).collect())
            ),
        ),
    }
}

/// Each definition parses, agrees with the others on its parent, and has its parent (or owns
/// it, and can make it again).
fn networks(out: &mut Checks, config: &Path) {
    let dir = crate::dirs::networks(config);
    let mut names: Vec<String> = match fs_err::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return out.fail("networks", e),
    };
    names.sort();
    if names.is_empty() {
        return out.warn(
            "networks",
            format!(
                "none defined in {}: ipvlan-hook network create NAME --parent IFACE --subnet CIDR",
                dir.display()
            ),
        );
    }
    let store = NetworkStore::new(config);
    let loaded: Vec<(String, Result<Network>)> = names
        .into_iter()
        .map(|name| {
            let net = store.load(&name);
            (name, net)
        })
        .collect();
    let nets: Vec<Network> = loaded
        .iter()
        .filter_map(|(_, n)| n.as_ref().ok().cloned())
        .collect();
    let rtnl = Rtnl::current();
    for (name, net) in &loaded {
        let check = format!("network {name}");
        let result = net.as_ref().map_err(|e| e.to_string()).and_then(|net| {
            let rtnl = rtnl.as_ref().map_err(|e| e.to_string());
            check_network(net, &nets, rtnl).map_err(|e| e.to_string())
        });
        match result {
            Ok((status, detail)) => out.add(check, status, detail),
            Err(e) => out.fail(check, e),
        }
        if let (Ok(net), Ok(rtnl)) = (net, &rtnl)
            && let Some(ha) = &net.host_access
        {
            host_access::check(out, net, ha, rtnl);
        }
    }
}

fn check_network(
    net: &Network,
    all: &[Network],
    rtnl: std::result::Result<&Rtnl, String>,
) -> Result<(Status, String)> {
    net.check_shares_parent_with_all(all.iter().filter(|o| o.name != net.name))?;
    let subnets: Vec<String> = net.subnets.iter().map(|s| s.subnet.to_string()).collect();
    let kind = match net.driver {
        Driver::Ipvlan => format!("ipvlan {} {}", net.mode, net.flag),
        Driver::Macvlan => format!("macvlan {}", net.flag),
    };
    let summary = format!("{kind} on {}, {}", net.parent, subnets.join(","));
    let rtnl = match rtnl {
        Ok(r) => r,
        Err(e) => return Ok((Status::Warn, format!("{summary}; parent not checked: {e}"))),
    };
    match (rtnl.link(&net.parent)?, net.parent_owned) {
        (Some(link), _) if link.loopback || link.kind.as_ref().is_some_and(LinkKind::is_slave) => {
            bail!(
                "parent {} is a {} link and cannot be a parent: recreate the network on another link",
                net.parent,
                link.kind.map_or("loopback".to_string(), |k| k.to_string())
            )
        }
        (Some(_), _) => Ok((Status::Pass, summary)),
        (None, None) => bail!(
            "parent interface {} not found: create it, or recreate the network",
            net.parent
        ),
        (None, Some(OwnedParent::Dummy)) => Ok((
            Status::Pass,
            format!(
                "{summary}; its dummy parent is missing and is made again when a container attaches"
            ),
        )),
        (None, Some(OwnedParent::Vlan)) => {
            let (base, vid) = parent::parse_vlan(&net.parent)?;
            if rtnl.link(base)?.is_none() {
                bail!(
                    "VLAN parent {} is missing and its base interface {base} not found: create {base}, or recreate the network",
                    net.parent
                );
            }
            Ok((
                Status::Pass,
                format!(
                    "{summary}; VLAN {vid} on {base} is missing and is made again when a container attaches"
                ),
            ))
        }
    }
}

/// Each announcement table against the leases: what `gc` would add or remove.
fn announce_tables(out: &mut Checks, dirs: &Dirs) {
    let tables = match super::gc::tables(dirs) {
        Ok(t) => t,
        Err(e) => return out.fail("announce tables", e),
    };
    for (announce, leased) in tables {
        let check = format!("announce table {}", announce.table);
        let drift = leased.and_then(|l| {
            let rtnl = Rtnl::current()?;
            Ok((l.len(), announce::reconcile(&rtnl, &announce, &l, true)?))
        });
        match drift {
            Err(e) => out.fail(check, e),
            Ok((n, d)) if d.is_empty() => out.pass(
                check,
                format!(
                    "{n} route(s) of proto {} ({}), as leased",
                    announce::PROTOCOL_NAME,
                    announce.protocol
                ),
            ),
            Ok((_, d)) => {
                let list = |v: &[std::net::IpAddr]| {
                    v.iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                out.warn(
                    check,
                    format!(
                        "missing routes [{}], stale routes [{}]: peers do not reach those containers, or still send to gone ones; run 'ipvlan-hook gc'",
                        list(&d.missing),
                        list(&d.stale)
                    ),
                )
            }
        }
    }
}

/// The state dir takes new files; where it does not exist yet, the directory it will be made in
/// does.
fn state_dir(out: &mut Checks, state: &Path) {
    let check = format!("state dir {}", state.display());
    let mut dir = state;
    while !dir.exists() {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir = p,
            _ => break,
        }
    }
    let probe = dir.join(format!(".ipvlan-hook-doctor-{}", std::process::id()));
    let written = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|_| fs_err::remove_file(&probe));
    match written {
        Ok(()) if dir == state => out.pass(check, "writable"),
        Ok(()) => out.pass(
            check,
            format!("missing: made on first use ({} is writable)", dir.display()),
        ),
        Err(e) => out.fail(check, format!("not writable: {e}")),
    }
}

/// The hooks.d files podman and CRI-O would run: valid, pointing at an executable, one stage
/// each, and together covering setup and poststop.
fn hooks(out: &mut Checks, hooks_dirs: &[PathBuf], dirs: &Dirs) {
    let mut stages: Vec<&'static str> = Vec::new();
    let mut found = 0;
    for dir in hooks_dirs {
        let mut files: Vec<PathBuf> = match fs_err::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("ipvlan-hook") && n.ends_with(".json"))
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.fail(format!("hooks.d {}", dir.display()), e);
                continue;
            }
        };
        files.sort();
        for file in files {
            found += 1;
            let check = format!("hooks.d {}", file.display());
            match check_hook_file(&file, dirs) {
                Ok((stage, status, detail)) => {
                    stages.push(stage);
                    out.add(check, status, detail);
                }
                Err(e) => out.fail(check, e),
            }
        }
    }
    let where_ = hooks_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ");
    if found == 0 {
        return out.warn(
            "hooks.d",
            format!(
                "no ipvlan-hook*.json in {where_}: podman and CRI-O will not run the hook; install the package, or copy hooks/ipvlan-hook-*.json to {}",
                HOOKS_DIRS[0]
            ),
        );
    }
    for (stage, why) in [
        (
            "createRuntime",
            "containers get no interface (createRuntime or prestart)",
        ),
        (
            "poststop",
            "leases of stopped containers are not released until 'ipvlan-hook gc'",
        ),
    ] {
        if !stages.contains(&stage) {
            out.fail(
                "hooks.d",
                format!(
                    "no working ipvlan-hook file for the {stage} stage in {where_}: {why}; install hooks/ipvlan-hook-{stage}.json"
                ),
            );
        }
    }
}

/// One hooks.d file: the stage class it covers (`createRuntime` for setup, `poststop`), its
/// status and a detail line.
fn check_hook_file(file: &Path, dirs: &Dirs) -> Result<(&'static str, Status, String)> {
    let text = fs_err::read_to_string(file)?;
    let v: Value = serde_json::from_str(&text).context("not valid JSON")?;
    if v["version"] != "1.0.0" {
        bail!(
            "\"version\" is {}, podman and CRI-O read \"1.0.0\"",
            v["version"]
        );
    }
    let hook = &v["hook"];
    let Some(path) = hook["path"].as_str() else {
        bail!("no \"hook\": {{\"path\": …}}");
    };
    let path = Path::new(path);
    if !path.is_absolute() {
        bail!(
            "hook path {} is not absolute: runtimes run hooks without PATH",
            path.display()
        );
    }
    match fs_err::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
        Ok(_) => bail!("hook path {} is not an executable file", path.display()),
        Err(_) => bail!(
            "hook path {} does not exist: install ipvlan-hook there, or point the file at it",
            path.display()
        ),
    }
    let args: Vec<&str> = hook["args"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let stage = match args.get(1..3) {
        Some(["hook", "createRuntime" | "prestart"]) => "createRuntime",
        Some(["hook", "poststop"]) => "poststop",
        _ => bail!(
            "\"args\" must start with [\"ipvlan-hook\", \"hook\", STAGE], STAGE createRuntime, prestart or poststop"
        ),
    };
    let listed: Vec<&str> = v["stages"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let fits = |s: &&str| match stage {
        "createRuntime" => matches!(*s, "createRuntime" | "prestart"),
        _ => *s == "poststop",
    };
    if listed.is_empty() || !listed.iter().all(fits) {
        bail!(
            "\"stages\" is {:?} but the hook runs stage {}: one stage per file",
            listed,
            args[2]
        );
    }
    let mut detail = format!("{} runs {}", listed.join(","), path.display());
    let mut status = Status::Pass;
    let env: Vec<&str> = hook["env"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (flag, var, ours) in [
        ("--config-dir", crate::dirs::CONFIG_ENV, &dirs.config),
        ("--state-dir", crate::dirs::STATE_ENV, &dirs.state),
    ] {
        let theirs = dir_setting(&args, &env, flag, var).unwrap_or_else(|| match flag {
            "--config-dir" => crate::dirs::DEFAULT_CONFIG.into(),
            _ => crate::dirs::DEFAULT_STATE.into(),
        });
        if Path::new(&theirs) != ours.as_path() {
            status = Status::Warn;
            detail.push_str(&format!(
                "; it uses {flag} {theirs}, this check {}: run 'ipvlan-hook {flag} {theirs} doctor'",
                ours.display()
            ));
        }
    }
    if file.starts_with(HOOKS_DIRS[1]) {
        detail.push_str(
            "; podman reads this directory only when hooks_dir in containers.conf lists it",
        );
    }
    Ok((stage, status, detail))
}

/// The directory a hook entry gives with `FLAG DIR`, `FLAG=DIR` or `VAR=DIR` in its env.
fn dir_setting(args: &[&str], env: &[&str], flag: &str, var: &str) -> Option<String> {
    for (i, a) in args.iter().enumerate() {
        if *a == flag {
            return args.get(i + 1).map(|s| s.to_string());
        }
        if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            return Some(v.to_string());
        }
    }
    env.iter()
        .find_map(|e| e.strip_prefix(var).and_then(|r| r.strip_prefix('=')))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::dir_setting;

    #[test]
    fn hook_dirs_from_args_or_env() {
        let args = [
            "ipvlan-hook",
            "hook",
            "poststop",
            "--config-dir",
            "/srv/etc",
        ];
        assert_eq!(
            dir_setting(&args, &[], "--config-dir", "IPVLAN_HOOK_CONFIG_DIR").as_deref(),
            Some("/srv/etc")
        );
        let args = ["ipvlan-hook", "hook", "poststop", "--state-dir=/srv/st"];
        assert_eq!(
            dir_setting(&args, &[], "--state-dir", "IPVLAN_HOOK_STATE_DIR").as_deref(),
            Some("/srv/st")
        );
        let env = ["IPVLAN_HOOK_STATE_DIR=/srv/env"];
        assert_eq!(
            dir_setting(&args[..3], &env, "--state-dir", "IPVLAN_HOOK_STATE_DIR").as_deref(),
            Some("/srv/env")
        );
        assert_eq!(
            dir_setting(&args[..3], &[], "--config-dir", "IPVLAN_HOOK_CONFIG_DIR"),
            None
        );
    }
}
