//! What a CNI runtime hands the plugin: the environment (SPEC.md section 2, "Parameters") and
//! the network configuration on stdin (sections 1 and 3), with the conventions for static
//! addresses and MACs (CONVENTIONS.md: `runtimeConfig`, `args.cni`, `CNI_ARGS`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::result::{CniError, code};
use crate::dirs::{self, Dirs};
use crate::link::Mac;

/// The plugin's type name: the file name runtimes look it up by.
pub const TYPE: &str = "ipvlan-hook";

/// The protocol's environment variables.
pub struct Env {
    pub command: String,
    pub container: Option<String>,
    pub netns: Option<String>,
    pub ifname: Option<String>,
    pub args: Option<String>,
}

impl Env {
    pub fn read() -> Env {
        // An empty variable counts as unset: runtimes pass "" for what they do not have.
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Env {
            command: var("CNI_COMMAND").unwrap_or_default(),
            container: var("CNI_CONTAINERID"),
            netns: var("CNI_NETNS"),
            ifname: var("CNI_IFNAME"),
            args: var("CNI_ARGS"),
        }
    }

    /// `CNI_CONTAINERID`, checked as the spec defines it (alphanumeric first, then
    /// alphanumerics, `_`, `.`, `-`): it becomes part of lease file names.
    pub fn container(&self) -> Result<&str, CniError> {
        let id = required("CNI_CONTAINERID", self.container.as_deref())?;
        let mut chars = id.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            && id.len() <= 255;
        if !ok {
            return Err(CniError::new(
                code::INVALID_ENV,
                "invalid CNI_CONTAINERID",
                format!(
                    "CNI_CONTAINERID={id:?}: it must start with a letter or digit and hold only letters, digits, '_', '.' and '-'"
                ),
            ));
        }
        Ok(id)
    }

    pub fn ifname(&self) -> Result<&str, CniError> {
        let name = required("CNI_IFNAME", self.ifname.as_deref())?;
        crate::network::validate_ifname(name)
            .map_err(|e| CniError::new(code::INVALID_ENV, "invalid CNI_IFNAME", e.to_string()))?;
        Ok(name)
    }

    pub fn netns(&self) -> Result<&str, CniError> {
        required("CNI_NETNS", self.netns.as_deref())
    }

    /// `CNI_ARGS` (`K=V;K=V`): the keys we read, `IP` and `MAC`. Others are an error unless
    /// `IgnoreUnknown` is set, as the reference plugins do.
    pub fn cni_args(&self) -> Result<CniArgs, CniError> {
        let bad = |details: String| CniError::new(code::INVALID_ENV, "invalid CNI_ARGS", details);
        let mut args = CniArgs::default();
        let mut unknown = Vec::new();
        let mut ignore_unknown = false;
        for pair in self.args.as_deref().unwrap_or_default().split(';') {
            if pair.is_empty() {
                continue;
            }
            let Some((key, value)) = pair.split_once('=') else {
                return Err(bad(format!("CNI_ARGS entry {pair:?} is not KEY=VALUE")));
            };
            match key {
                "IgnoreUnknown" => {
                    ignore_unknown = matches!(value.to_ascii_lowercase().as_str(), "1" | "true")
                }
                "IP" => args.ips = value.split(',').map(str::to_string).collect(),
                "MAC" => args.mac = Some(value.to_string()),
                _ => unknown.push(key.to_string()),
            }
        }
        if !unknown.is_empty() && !ignore_unknown {
            return Err(bad(format!(
                "CNI_ARGS has unknown keys {}: this plugin reads IP and MAC (set IgnoreUnknown=1 to pass others)",
                unknown.join(", ")
            )));
        }
        Ok(args)
    }
}

fn required<'a>(name: &str, value: Option<&'a str>) -> Result<&'a str, CniError> {
    value.ok_or_else(|| {
        CniError::new(
            code::INVALID_ENV,
            format!("{name} is not set"),
            format!("the runtime must set {name} for this command"),
        )
    })
}

/// What `CNI_ARGS` says.
#[derive(Default)]
pub struct CniArgs {
    pub ips: Vec<String>,
    pub mac: Option<String>,
}

/// The network configuration on stdin. Keys we do not know are other plugins' or the
/// runtime's: ignored, as the spec lets plugins do.
#[derive(Deserialize, Default)]
pub struct NetConf {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    #[serde(default)]
    pub name: String,
    /// `type`, `network`, `config_dir`, `state_dir` at the top.
    #[serde(flatten)]
    pub ours: Section,
    pub ipam: Option<Section>,
    #[serde(rename = "runtimeConfig", default)]
    pub runtime_config: Conventions,
    #[serde(default)]
    pub args: Option<ArgsKey>,
    #[serde(rename = "prevResult")]
    pub prev_result: Option<Value>,
    /// GC's list of attachments still valid: libcni's key, and the one spec-v1.1.0 wrote.
    #[serde(rename = "cni.dev/valid-attachments")]
    pub valid_attachments: Option<Vec<ValidAttachment>>,
    #[serde(rename = "cni.dev/attachments")]
    pub attachments: Option<Vec<ValidAttachment>>,
}

/// Our keys, at the top (main plugin) or under `ipam` (IPAM plugin).
#[derive(Deserialize, Default, Clone)]
pub struct Section {
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    pub network: Option<String>,
    pub config_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

/// `runtimeConfig` and `args.cni`: the capability arguments we use.
#[derive(Deserialize, Default)]
pub struct Conventions {
    #[serde(default)]
    pub ips: Vec<String>,
    pub mac: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ArgsKey {
    #[serde(default)]
    pub cni: Conventions,
}

#[derive(Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ValidAttachment {
    #[serde(rename = "containerID")]
    pub container: String,
    pub ifname: String,
}

/// Which role the configuration gives us.
pub enum Role {
    /// `{"type": "ipvlan-hook", "network": NAME}`: we make the interface.
    Plugin,
    /// `"ipam": {"type": "ipvlan-hook", "network": NAME}` under another plugin: we lease.
    Ipam,
}

impl NetConf {
    /// Decode stdin; an undecodable configuration is code 6, an unsupported version code 1.
    pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
        let conf: NetConf = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                code::DECODE,
                "cannot decode the network configuration",
                format!("stdin: {e}"),
            )
        })?;
        if !super::result::supports(&conf.cni_version) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                "incompatible CNI version",
                format!(
                    "cniVersion {:?} is not one this plugin supports ({})",
                    conf.cni_version,
                    super::result::SUPPORTED.join(", ")
                ),
            ));
        }
        Ok(conf)
    }

    pub fn role(&self) -> Role {
        match &self.ipam {
            Some(ipam) if ipam.plugin_type == TYPE && self.ours.plugin_type != TYPE => Role::Ipam,
            _ => Role::Plugin,
        }
    }

    /// Our section of the configuration, checked: it names a network.
    pub fn section(&self) -> Result<&Section, CniError> {
        let (section, at) = match self.role() {
            Role::Plugin => {
                if let Some(ipam) = &self.ipam {
                    return Err(CniError::new(
                        code::UNSUPPORTED_FIELD,
                        "unsupported field ipam",
                        format!(
                            "ipam (type {:?}): the {TYPE} plugin leases from its network's own store; remove the ipam key",
                            ipam.plugin_type
                        ),
                    ));
                }
                (&self.ours, "")
            }
            Role::Ipam => (self.ipam.as_ref().unwrap_or(&self.ours), "ipam."),
        };
        match section.network.as_deref() {
            Some(name) if !name.is_empty() => Ok(section),
            _ => Err(CniError::new(
                code::INVALID_CONFIG,
                format!("{at}network is missing"),
                format!(
                    "the configuration must name a network defined with 'ipvlan-hook network create': \"{at}network\": \"NAME\""
                ),
            )),
        }
    }

    /// The static addresses asked for: `runtimeConfig.ips`, `args.cni.ips`, `CNI_ARGS` `IP=`,
    /// each `ADDR` or `ADDR/PREFIX`; at most one per family.
    pub fn static_ips(&self, args: &CniArgs) -> Result<Vec<(IpAddr, Option<u8>)>, CniError> {
        let cni_args = self.args.as_ref().map(|a| &a.cni.ips);
        let given: BTreeSet<&String> = self
            .runtime_config
            .ips
            .iter()
            .chain(cni_args.into_iter().flatten())
            .chain(&args.ips)
            .collect();
        let mut ips: Vec<(IpAddr, Option<u8>)> = Vec::new();
        for text in given {
            let (addr, prefix) = match text.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (text.as_str(), None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| invalid_ip(text))?;
            let prefix = match prefix.map(str::parse::<u8>) {
                Some(Ok(p)) => Some(p),
                Some(Err(_)) => return Err(invalid_ip(text)),
                None => None,
            };
            if let Some((other, _)) = ips.iter().find(|(a, _)| a.is_ipv6() == addr.is_ipv6()) {
                if *other == addr {
                    continue;
                }
                return Err(CniError::new(
                    code::INVALID_CONFIG,
                    "more than one static address of a family",
                    format!(
                        "static addresses {other} and {addr}: an interface gets one address per family"
                    ),
                ));
            }
            ips.push((addr, prefix));
        }
        Ok(ips)
    }

    /// The MAC asked for: `runtimeConfig.mac`, `args.cni.mac` or `CNI_ARGS` `MAC=`, in that
    /// order of precedence.
    pub fn mac(&self, args: &CniArgs) -> Result<Option<Mac>, CniError> {
        let Some(text) = self
            .runtime_config
            .mac
            .as_ref()
            .or(self.args.as_ref().and_then(|a| a.cni.mac.as_ref()))
            .or(args.mac.as_ref())
        else {
            return Ok(None);
        };
        text.parse::<Mac>().map(Some).map_err(|e| {
            CniError::new(
                code::INVALID_CONFIG,
                "invalid MAC address",
                format!("mac {e}"),
            )
        })
    }
}

impl Section {
    /// The network's name (`section` checked it is there).
    pub fn network(&self) -> &str {
        self.network.as_deref().unwrap_or_default()
    }

    /// `config_dir` and `state_dir` when given, else as for the commands (environment, then
    /// the defaults).
    pub fn dirs(&self) -> Dirs {
        let pick = |key: &Option<PathBuf>, env: &str, default: &str| {
            key.clone()
                .or_else(|| dirs::from_env(env, default))
                .unwrap_or_else(|| PathBuf::from(default))
        };
        Dirs {
            config: pick(&self.config_dir, dirs::CONFIG_ENV, dirs::DEFAULT_CONFIG),
            state: pick(&self.state_dir, dirs::STATE_ENV, dirs::DEFAULT_STATE),
        }
    }
}

fn invalid_ip(text: &str) -> CniError {
    CniError::new(
        code::INVALID_CONFIG,
        "invalid static address",
        format!("static address {text:?}: expected ADDR or ADDR/PREFIX"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(args: &str) -> Env {
        Env {
            command: "ADD".into(),
            container: None,
            netns: None,
            ifname: None,
            args: Some(args.into()),
        }
    }

    #[test]
    fn cni_args_unknown_keys_need_ignore_unknown() {
        let a = env("IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.0.0.5")
            .cni_args()
            .expect("ignored");
        assert_eq!(a.ips, ["10.0.0.5"]);
        let e = env("K8S_POD_NAME=x").cni_args().err().expect("refused");
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(e.details.contains("K8S_POD_NAME"), "{}", e.details);
        assert!(env("IP").cni_args().is_err());
    }

    #[test]
    fn static_ips_from_every_source_one_per_family() {
        let conf: NetConf = serde_json::from_str(
            r#"{"cniVersion":"1.0.0","runtimeConfig":{"ips":["10.0.0.5/24"]},
                "args":{"cni":{"ips":["fd00::5"]}}}"#,
        )
        .expect("conf");
        let ips = conf.static_ips(&CniArgs::default()).expect("two families");
        assert_eq!(ips.len(), 2);
        let clash = CniArgs {
            ips: vec!["10.0.0.6".into()],
            mac: None,
        };
        assert_eq!(
            conf.static_ips(&clash).err().map(|e| e.code),
            Some(code::INVALID_CONFIG)
        );
        let bad = CniArgs {
            ips: vec!["10.0.0.300".into()],
            mac: None,
        };
        assert!(conf.static_ips(&bad).is_err());
    }

    #[test]
    fn role_and_section() {
        let ipam: NetConf = serde_json::from_str(
            r#"{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"ipvlan-hook","network":"n"}}"#,
        )
        .expect("conf");
        assert!(matches!(ipam.role(), Role::Ipam));
        assert_eq!(ipam.section().expect("section").network(), "n");
        let plugin: NetConf =
            serde_json::from_str(r#"{"cniVersion":"1.0.0","type":"ipvlan-hook"}"#).expect("conf");
        assert_eq!(
            plugin.section().err().map(|e| e.code),
            Some(code::INVALID_CONFIG)
        );
    }
}
