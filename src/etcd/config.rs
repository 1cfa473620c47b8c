//! `CONFIG_DIR/etcd.json`: how this host reaches the etcd cluster that keeps the leases of
//! `--ipam etcd` networks, and which host it is there.
//!
//! ```json
//! {"version": 1,
//!  "endpoints": ["https://10.0.0.1:2379", "https://10.0.0.2:2379"],
//!  "ca": "etcd/ca.pem", "cert": "etcd/client.pem", "key": "etcd/client-key.pem",
//!  "prefix": "/ipvlan-hook",
//!  "host": "node7"}
//! ```
//!
//! Relative file names are relative to CONFIG_DIR. `https` endpoints need `ca`; `cert` and
//! `key` (a client certificate, for etcd's `--client-cert-auth`) go together. `prefix`
//! defaults to `/ipvlan-hook`; `host` defaults to `/etc/machine-id`, else the hostname, and
//! must differ between hosts (`gc` on a host judges the leases recorded under its id).
//! `timeout_ms` (default 2500) bounds each request to etcd, all endpoints included, while no
//! member answers; members that answer without a leader (an election) are waited for longer
//! (the client's election budget).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::bail;
use crate::error::{Context, Result};
use crate::fsutil::check_name;

pub const FILE: &str = crate::dirs::ETCD;
const VERSION: u32 = 1;
const DEFAULT_PREFIX: &str = "/ipvlan-hook";
const DEFAULT_TIMEOUT_MS: u64 = 2500;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    endpoints: Vec<String>,
    #[serde(default)]
    ca: Option<PathBuf>,
    #[serde(default)]
    cert: Option<PathBuf>,
    #[serde(default)]
    key: Option<PathBuf>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// The checked contents of `etcd.json`, with paths made absolute and the host id resolved.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// The file it came from, for error messages.
    pub path: PathBuf,
    /// `http(s)://HOST:PORT`, without a trailing slash.
    pub endpoints: Vec<String>,
    pub ca: Option<PathBuf>,
    /// Client certificate and key.
    pub client: Option<(PathBuf, PathBuf)>,
    /// Key prefix, starting with '/' and without a trailing one.
    pub prefix: String,
    pub host: String,
    /// Bound of one request, all endpoints tried included.
    pub timeout: Duration,
}

impl EtcdConfig {
    pub fn path(config_dir: &Path) -> PathBuf {
        crate::dirs::etcd(config_dir)
    }

    /// Is there a config file at all (`gc` and `lease ls` look at etcd only then)?
    pub fn exists(config_dir: &Path) -> bool {
        Self::path(config_dir).exists()
    }

    pub fn load(config_dir: &Path) -> Result<EtcdConfig> {
        let path = Self::path(config_dir);
        let text = match fs_err::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} does not exist: networks with --ipam etcd need it (endpoints, TLS files, prefix; see ipvlan-hook(5), ETCD FILE, and docs/etcd.md)",
                path.display()
            ),
            Err(e) => return Err(e.into()),
        };
        Self::parse(&text, config_dir, &path)
            .with_context(|| format!("invalid {} (fix it)", path.display()))
    }

    fn parse(text: &str, config_dir: &Path, path: &Path) -> Result<EtcdConfig> {
        let file: File = serde_json::from_str(text)?;
        if file.version != VERSION {
            bail!(
                "version {}, this build reads version {VERSION}: upgrade ipvlan-hook",
                file.version
            );
        }
        if file.endpoints.is_empty() {
            bail!(
                "\"endpoints\" is empty: list etcd's client URLs, e.g. \"https://10.0.0.1:2379\""
            );
        }
        let mut endpoints = Vec::new();
        let mut https = false;
        for e in &file.endpoints {
            let url = e.trim_end_matches('/');
            let rest = if let Some(r) = url.strip_prefix("https://") {
                https = true;
                r
            } else if let Some(r) = url.strip_prefix("http://") {
                r
            } else {
                bail!("endpoint {e:?} is not an http:// or https:// URL");
            };
            if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
                bail!("endpoint {e:?} must be SCHEME://HOST:PORT, without a path");
            }
            endpoints.push(url.to_string());
        }
        let abs = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                config_dir.join(p)
            }
        };
        let ca = file.ca.as_ref().map(abs);
        if https && ca.is_none() {
            bail!(
                "https endpoints need \"ca\": the CA certificate (PEM) that signed etcd's server certificate"
            );
        }
        let client = match (&file.cert, &file.key) {
            (Some(c), Some(k)) => Some((abs(c), abs(k))),
            (None, None) => None,
            _ => bail!("\"cert\" and \"key\" go together: the client certificate and its key"),
        };
        let prefix = file.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_string());
        let trimmed = prefix.trim_end_matches('/');
        if !prefix.starts_with('/') || trimmed.is_empty() || prefix.contains('\0') {
            bail!(
                "\"prefix\" {prefix:?} must start with '/' and name something, e.g. \"/ipvlan-hook\""
            );
        }
        let host = match file.host {
            Some(h) => h,
            None => default_host_id()?,
        };
        check_name("host id", &host)?;
        let timeout_ms = file.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(100..=60_000).contains(&timeout_ms) {
            bail!("\"timeout_ms\" {timeout_ms} is out of range: use 100 to 60000");
        }
        Ok(EtcdConfig {
            path: path.to_path_buf(),
            endpoints,
            ca,
            client,
            prefix: trimmed.to_string(),
            host,
            timeout: Duration::from_millis(timeout_ms),
        })
    }
}

/// `/etc/machine-id` (unique per installation, unless an image was cloned without resetting
/// it), else the kernel's hostname.
fn default_host_id() -> Result<String> {
    for path in ["/etc/machine-id", "/proc/sys/kernel/hostname"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            let id = text.trim();
            if !id.is_empty() {
                return Ok(id.to_string());
            }
        }
    }
    bail!(
        "cannot tell this host's id: /etc/machine-id and the hostname are empty; set \"host\" in {FILE}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EtcdConfig> {
        EtcdConfig::parse(
            text,
            Path::new("/etc/ipvh"),
            Path::new("/etc/ipvh/etcd.json"),
        )
    }

    fn err(text: &str) -> String {
        parse(text).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn full_file() {
        let c = parse(
            r#"{"version":1,"endpoints":["https://10.0.0.1:2379/","https://[fd00::1]:2379"],
                "ca":"etcd/ca.pem","cert":"/pki/c.pem","key":"/pki/k.pem","prefix":"/x/y/","host":"n1","timeout_ms":900}"#,
        )
        .expect("valid");
        assert_eq!(
            c.endpoints,
            ["https://10.0.0.1:2379", "https://[fd00::1]:2379"]
        );
        assert_eq!(c.ca.as_deref(), Some(Path::new("/etc/ipvh/etcd/ca.pem")));
        assert_eq!(c.client, Some(("/pki/c.pem".into(), "/pki/k.pem".into())));
        assert_eq!(c.prefix, "/x/y");
        assert_eq!(c.host, "n1");
        assert_eq!(c.timeout, Duration::from_millis(900));
    }

    #[test]
    fn defaults() {
        let c = parse(r#"{"version":1,"endpoints":["http://127.0.0.1:2379"]}"#).expect("valid");
        assert_eq!(c.prefix, "/ipvlan-hook");
        assert!(!c.host.is_empty());
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert!(c.ca.is_none() && c.client.is_none());
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        assert!(err(r#"{"version":2,"endpoints":["http://a:1"]}"#).contains("version 2"));
        assert!(err(r#"{"version":1,"endpoints":[]}"#).contains("empty"));
        assert!(err(r#"{"version":1,"endpoints":["a:1"]}"#).contains("not an http"));
        assert!(err(r#"{"version":1,"endpoints":["http://a:1/v3"]}"#).contains("without a path"));
        assert!(err(r#"{"version":1,"endpoints":["https://a:1"]}"#).contains("need \"ca\""));
        assert!(
            err(r#"{"version":1,"endpoints":["http://a:1"],"cert":"c"}"#).contains("go together")
        );
        assert!(err(r#"{"version":1,"endpoints":["http://a:1"],"prefix":"x"}"#).contains("prefix"));
        assert!(
            err(r#"{"version":1,"endpoints":["http://a:1"],"host":"a/b"}"#).contains("host id")
        );
        assert!(
            err(r#"{"version":1,"endpoints":["http://a:1"],"colour":1}"#)
                .contains("unknown field `colour`")
        );
    }
}
