//! What a CNI plugin prints: results in the version the runtime asked for, the version
//! answer, and errors with the spec's codes (SPEC.md section 5).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The versions this plugin speaks, oldest first (VERSION lists them). 0.1.0 and 0.2.0 had
/// another result format, which no current runtime asks for.
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// Whether configurations of cniVersion `v` can run us.
pub fn supports(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

/// Spec error codes (SPEC.md "Error"); 100 and up are ours.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const INVALID_ENV: u32 = 4;
    pub const IO: u32 = 5;
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const NOT_AVAILABLE: u32 = 50;
    /// The operation failed (kernel, lease store, a CHECK that found a difference).
    pub const FAILED: u32 = 100;
}

/// An ADD result (also a `prevResult`), version-neutral: the 1.1.0 fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CniResult {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    #[serde(
        rename = "socketPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub socket_path: Option<String>,
    #[serde(rename = "pciID", default, skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct IpConfig {
    /// CIDR: the address and its subnet's prefix length.
    pub address: ipnetwork::IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`; IPAM results have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Route {
    pub dst: ipnetwork::IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// The 1.1.0 additions, kept when a `prevResult` carries them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Keys that appeared in 1.1.0, dropped for older versions.
const NEW_IN_1_1_INTERFACE: [&str; 3] = ["mtu", "socketPath", "pciID"];

impl CniResult {
    /// Read a `prevResult` of any supported version (0.3.x/0.4.0 `ips[].version` is implied by
    /// the address and ignored).
    pub fn from_prev(prev: &Value) -> Result<CniResult, String> {
        serde_json::from_value(prev.clone()).map_err(|e| format!("cannot decode prevResult: {e}"))
    }

    /// The result as `version` writes it.
    pub fn encode(&self, version: &str) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        let before = |than: &str| older(version, than);
        if let Some(ips) = v.get_mut("ips").and_then(Value::as_array_mut) {
            for (ip, cfg) in ips.iter_mut().zip(&self.ips) {
                if before("1.0.0") {
                    let family = if cfg.address.is_ipv6() { "6" } else { "4" };
                    ip["version"] = family.into();
                }
            }
        }
        if before("1.1.0") {
            for iface in array_mut(&mut v, "interfaces") {
                for key in NEW_IN_1_1_INTERFACE {
                    iface.as_object_mut().map(|o| o.remove(key));
                }
            }
            for route in array_mut(&mut v, "routes") {
                if let Some(o) = route.as_object_mut() {
                    o.retain(|k, _| k == "dst" || k == "gw");
                }
            }
        }
        let mut out = Map::new();
        out.insert("cniVersion".into(), version.into());
        if let Value::Object(fields) = v {
            out.extend(fields);
        }
        Value::Object(out)
    }
}

fn array_mut<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// `a` is an older version than `b` (both of the form X.Y.Z; anything else sorts first).
pub fn older(a: &str, b: &str) -> bool {
    parse(a) < parse(b)
}

fn parse(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(str::parse::<u32>);
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c)), None) => Some((a, b, c)),
        _ => None,
    }
}

/// The VERSION answer.
pub fn version_info(asked: &str) -> Value {
    serde_json::json!({ "cniVersion": asked, "supportedVersions": SUPPORTED })
}

/// A failure as the spec's error object, printed on stdout.
#[derive(Debug)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    pub fn encode(&self, version: &str) -> Value {
        serde_json::json!({
            "cniVersion": version,
            "code": self.code,
            "msg": self.msg,
            "details": self.details,
        })
    }
}

/// Errors from below the door: the operation failed.
impl From<crate::error::Error> for CniError {
    fn from(e: crate::error::Error) -> CniError {
        CniError::new(code::FAILED, "operation failed", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: Some("02:00:00:00:00:01".into()),
                mtu: Some(1500),
                sandbox: Some("/run/netns/x".into()),
                ..Interface::default()
            }],
            ips: vec![
                IpConfig {
                    address: "10.0.0.2/24".parse().expect("cidr"),
                    gateway: Some("10.0.0.1".parse().expect("ip")),
                    interface: Some(0),
                },
                IpConfig {
                    address: "fd00::2/64".parse().expect("cidr"),
                    gateway: None,
                    interface: Some(0),
                },
            ],
            routes: vec![Route {
                dst: "0.0.0.0/0".parse().expect("cidr"),
                gw: Some("10.0.0.1".parse().expect("ip")),
                extra: serde_json::from_str(r#"{"priority": 5}"#).expect("map"),
            }],
            dns: None,
        }
    }

    #[test]
    fn old_versions_carry_the_ip_version_and_lose_the_1_1_keys() {
        let r = sample();
        let v = r.encode("0.3.1");
        assert_eq!(v["cniVersion"], "0.3.1");
        assert_eq!(v["ips"][0]["version"], "4");
        assert_eq!(v["ips"][1]["version"], "6");
        assert_eq!(v["ips"][0]["interface"], 0);
        assert!(v["interfaces"][0].get("mtu").is_none());
        assert!(v["routes"][0].get("priority").is_none());
        let v = r.encode("1.0.0");
        assert!(v["ips"][0].get("version").is_none());
        assert!(v["interfaces"][0].get("mtu").is_none());
        let v = r.encode("1.1.0");
        assert_eq!(v["interfaces"][0]["mtu"], 1500);
        assert_eq!(v["routes"][0]["priority"], 5);
        assert!(v.get("dns").is_none());
    }

    #[test]
    fn a_prev_result_of_any_version_reads_back() {
        let r = sample();
        for version in SUPPORTED {
            let back = CniResult::from_prev(&r.encode(version)).expect("decode");
            assert_eq!(back.ips, r.ips, "{version}");
            assert_eq!(back.interfaces[0].name, "eth0");
        }
        assert!(CniResult::from_prev(&serde_json::json!({"ips": [{"address": "x"}]})).is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(older("0.4.0", "1.0.0"));
        assert!(older("0.3.1", "0.4.0"));
        assert!(older("0.10.0", "1.0.0"));
        assert!(!older("1.1.0", "1.0.0"));
        assert!(older("garbage", "0.1.0"));
    }
}
