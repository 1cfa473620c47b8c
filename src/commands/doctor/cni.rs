//! The CNI rows of `doctor`: the configurations that name ipvlan-hook (as plugin or IPAM) and
//! whether their networks work, then the plugin itself where runtimes look for it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{Checks, Status};
use crate::commands::cni::{self, TYPE};
use crate::dirs::Dirs;
use crate::network::store::NetworkStore;
use crate::policy::Policy;

/// Where CNI runtimes look for plugins (Debian's package, then upstream's default).
pub const PLUGIN_DIRS: [&str; 2] = ["/usr/lib/cni", "/opt/cni/bin"];
/// Where they read network configurations.
pub const CONF_DIRS: [&str; 1] = ["/etc/cni/net.d"];

pub(super) fn checks(
    out: &mut Checks,
    plugin_dirs: &[PathBuf],
    conf_dirs: &[PathBuf],
    dirs: &Dirs,
) {
    let mut users = 0;
    for dir in conf_dirs {
        let mut files: Vec<PathBuf> = match fs_err::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("conf" | "conflist" | "json")
                    )
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.fail(format!("cni conf {}", dir.display()), e);
                continue;
            }
        };
        files.sort();
        for file in files {
            users += conf_file(out, &file, dirs);
        }
    }
    plugin(out, plugin_dirs, users);
}

/// The rows of one configuration file; how many of its entries name us.
fn conf_file(out: &mut Checks, file: &Path, dirs: &Dirs) -> usize {
    let check = format!("cni conf {}", file.display());
    let text = match fs_err::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            out.fail(check, e);
            return 0;
        }
    };
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        // Not ours to judge unless it names us.
        Err(e) if text.contains(TYPE) => {
            out.fail(check, format!("not valid JSON: {e}"));
            return 0;
        }
        Err(_) => return 0,
    };
    // A conflist has "plugins"; a single .conf is the plugin entry itself.
    let entries: Vec<&Value> = match v["plugins"].as_array() {
        Some(list) => list.iter().collect(),
        None => vec![&v],
    };
    let mut users = 0;
    for entry in entries {
        let Some(usage) = cni::usage(entry) else {
            continue;
        };
        users += 1;
        let version = v["cniVersion"].as_str().unwrap_or_default();
        let (status, detail) = match usage {
            Err(e) => (Status::Fail, e),
            Ok(_) if !cni::supports(version) => (
                Status::Fail,
                format!("cniVersion {version:?} is not one ipvlan-hook supports (0.3.0 to 1.1.0)"),
            ),
            Ok(u) => judge(&u, dirs),
        };
        out.add(check.clone(), status, detail);
    }
    users
}

/// Does the network an entry names exist (and may it be used) in the directories it gives?
fn judge(u: &cni::Usage, dirs: &Dirs) -> (Status, String) {
    let network = &u.network;
    let loaded = Policy::load(&u.dirs.config)
        .and_then(|p| p.check_network(network))
        .and_then(|()| NetworkStore::new(&u.dirs.config).load(network));
    if let Err(e) = loaded {
        return (
            Status::Fail,
            format!("{} for network {network}: {e}", u.role),
        );
    }
    let mut detail = format!("{} for network {network}", u.role);
    let mut status = Status::Pass;
    for (key, theirs, ours) in [
        ("config_dir", &u.dirs.config, &dirs.config),
        ("state_dir", &u.dirs.state, &dirs.state),
    ] {
        if theirs != ours {
            status = Status::Warn;
            detail.push_str(&format!(
                "; its {key} is {}, this check's {}",
                theirs.display(),
                ours.display()
            ));
        }
    }
    (status, detail)
}

/// The plugin where runtimes look: it must answer VERSION. Missing is a failure only when a
/// configuration names it.
fn plugin(out: &mut Checks, plugin_dirs: &[PathBuf], users: usize) {
    let Some(path) = plugin_dirs
        .iter()
        .map(|d| d.join(TYPE))
        .find(|p| p.exists())
    else {
        let where_ = plugin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ");
        let hint = format!(
            "no {TYPE} in {where_}: install the package, or link {}/{TYPE} to the ipvlan-hook binary",
            PLUGIN_DIRS[0]
        );
        return match users {
            0 => out.warn("cni plugin", format!("{hint}; CNI runtimes cannot use it")),
            n => out.fail(
                "cni plugin",
                format!("{hint}: {n} CNI configuration entries name it"),
            ),
        };
    };
    match version(&path) {
        Ok(versions) => out.pass(
            format!("cni plugin {}", path.display()),
            format!("answers VERSION: {versions}"),
        ),
        Err(e) => out.fail(format!("cni plugin {}", path.display()), e),
    }
}

/// Run `path` as a runtime runs VERSION; the versions it lists.
fn version(path: &Path) -> Result<String, String> {
    let mut child = Command::new(path)
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(br#"{"cniVersion":"1.0.0"}"#);
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let answer: Value = serde_json::from_slice(&output.stdout).map_err(|_| {
        format!(
            "its VERSION answer is not JSON: {:?}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    match answer["supportedVersions"].as_array() {
        Some(list) if output.status.success() => Ok(list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ")),
        _ => Err(format!("VERSION failed: {answer}")),
    }
}
