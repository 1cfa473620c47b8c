//! The two directories every command works in, their defaults, and the names of the files in
//! them. A leaf: the one place these facts are written.

use std::path::{Path, PathBuf};

/// Network definitions, the policy and `etcd.json`.
pub const DEFAULT_CONFIG: &str = "/etc/ipvlan-hook";
/// Leases, cursors and locks.
pub const DEFAULT_STATE: &str = "/var/lib/ipvlan-hook";
/// Environment variables that set them (the hook gets no command line from podman's hooks.d
/// file beyond its args, and the tests run hermetically with them).
pub const CONFIG_ENV: &str = "IPVLAN_HOOK_CONFIG_DIR";
pub const STATE_ENV: &str = "IPVLAN_HOOK_STATE_DIR";

/// `CONFIG_DIR/networks/NAME.json`.
pub const NETWORKS: &str = "networks";
/// `CONFIG_DIR/policy.json`.
pub const POLICY: &str = "policy.json";
/// `CONFIG_DIR/etcd.json`.
#[cfg(feature = "etcd")]
pub const ETCD: &str = "etcd.json";

/// The two directories, as the command line (or the environment) gave them.
pub struct Dirs {
    pub config: PathBuf,
    pub state: PathBuf,
}

/// The directory the variable `env` names, else `default`: the value `--config-dir` and
/// `--state-dir` default to. None when the variable is set but empty, which the command line
/// refuses; the CNI plugin, which has no command line, takes the default then.
pub fn from_env(env: &str, default: &str) -> Option<PathBuf> {
    match std::env::var_os(env) {
        Some(v) if v.is_empty() => None,
        v => Some(v.map_or_else(|| PathBuf::from(default), PathBuf::from)),
    }
}

pub fn networks(config: &Path) -> PathBuf {
    config.join(NETWORKS)
}

pub fn policy(config: &Path) -> PathBuf {
    config.join(POLICY)
}

#[cfg(feature = "etcd")]
pub fn etcd(config: &Path) -> PathBuf {
    config.join(ETCD)
}
