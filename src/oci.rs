//! What the runtime hands the hook: the OCI state on stdin, the bundle's config.json, and the
//! `ipvlan.*` annotations. The state and the namespaces are oci-spec's types, read leniently
//! where runtimes disagree (crun says "created" at createRuntime and sends pid 0 at poststop,
//! runc and podman omit pid, extra keys appear), strictly where a mistake would misconfigure a
//! container (unknown `ipvlan.*` keys, bad values).

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use oci_spec::runtime::{ContainerState, LinuxNamespace, LinuxNamespaceType};
use serde::Deserialize;

use crate::attach::AttachmentRequest;
use crate::bail;
use crate::error::{Context, Error, Result};
use crate::link::Mac;
use crate::network::{Flag, Mode, NetworkSpec, validate_ifname, validate_name};

/// Far more than any real state (a few hundred bytes); a bound against a hostile stdin.
const MAX_STATE_BYTES: u64 = 1 << 20;

/// The OCI state on the hook's stdin, with a container id checked to be one safe path
/// component. Its `status` is not exposed: the stage comes from argv.
#[derive(Debug)]
pub struct State(oci_spec::runtime::State);

impl State {
    pub fn read(input: impl Read) -> Result<State> {
        let mut buf = Vec::new();
        input
            .take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut buf)
            .context("cannot read the OCI state from stdin")?;
        if buf.len() as u64 > MAX_STATE_BYTES {
            bail!(
                "OCI state on stdin is larger than {MAX_STATE_BYTES} bytes: is the hook wired to the right stage?"
            );
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            bail!(
                "no OCI state on stdin: the hook must be run by an OCI runtime (runc, crun, podman), which writes the container state to its stdin"
            );
        }
        let state = parse_state(&buf).context("invalid OCI state JSON on stdin")?;
        // oci-spec reads a missing id as an empty one.
        if state.id().is_empty() {
            bail!("invalid OCI state JSON on stdin: missing field `id` (or an empty one)");
        }
        validate_container_id(state.id())?;
        Ok(State(state))
    }

    pub fn id(&self) -> &str {
        self.0.id()
    }

    /// The pid as sent, which may be absent, 0 or negative.
    pub fn pid(&self) -> Option<i32> {
        *self.0.pid()
    }

    pub fn annotations(&self) -> Option<&HashMap<String, String>> {
        self.0.annotations().as_ref()
    }

    /// The container's init pid; runtimes send none (runc, podman) or 0 (crun) at poststop.
    pub fn live_pid(&self) -> Option<u32> {
        self.pid()
            .filter(|p| *p > 0)
            .and_then(|p| u32::try_from(p).ok())
    }

    /// The network namespace path the engine created beforehand (`linux.namespaces[]` of type
    /// network with a path), which outlives the container: the state JSON does not carry it.
    pub fn precreated_netns(&self) -> Result<Option<PathBuf>> {
        // oci-spec reads a missing bundle as an empty path, which must not mean the cwd.
        let bundle = self.0.bundle();
        if bundle.as_os_str().is_empty() {
            return Ok(None);
        }
        let config = bundle.join("config.json");
        let text = match fs_err::read(&config) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            r => r.context("cannot read the bundle config")?,
        };
        let spec: BundleConfig = serde_json::from_slice(&text)
            .with_context(|| format!("invalid bundle config {}", config.display()))?;
        let path = spec
            .linux
            .and_then(|l| {
                l.namespaces
                    .into_iter()
                    .find(|ns| ns.typ() == LinuxNamespaceType::Network)
            })
            .and_then(|ns| ns.path().clone());
        Ok(path)
    }
}

/// oci-spec knows the four statuses of the runtime spec; crun also sends "starting" (at
/// startContainer). The hook ignores the status, so a state whose only fault is its status is
/// read again without it: a second parse on that rare path, none on the usual one.
fn parse_state(buf: &[u8]) -> serde_json::Result<oci_spec::runtime::State> {
    let first = match serde_json::from_slice(buf) {
        Ok(state) => return Ok(state),
        Err(e) => e,
    };
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice(buf) else {
        return Err(first);
    };
    let unknown_status = fields.get("status").is_some_and(|s| {
        s.is_string() && serde_json::from_value::<ContainerState>(s.clone()).is_err()
    });
    if !unknown_status {
        return Err(first);
    }
    fields.remove("status");
    serde_json::from_value(serde_json::Value::Object(fields))
}

/// The one part of config.json the hook needs. Read as just that, not as a whole runtime spec:
/// this runs on every container start, and a full spec parser was most of the binary's code.
#[derive(Deserialize)]
struct BundleConfig {
    #[serde(default)]
    linux: Option<BundleLinux>,
}

#[derive(Deserialize)]
struct BundleLinux {
    #[serde(default)]
    namespaces: Vec<LinuxNamespace>,
}

/// Container ids name lease index files: one safe path component, nothing more.
pub fn validate_container_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id != "."
        && id != ".."
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if !ok {
        bail!(
            "invalid container id {id:?}: use up to 255 printable characters without '/', not starting with '.'"
        );
    }
    Ok(())
}

/// The `ipvlan.*` annotations of a container, checked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Annotations {
    pub network: Option<String>,
    /// Address and, for annotation-only networks, its prefix length.
    pub ipv4: Option<(IpAddr, Option<u8>)>,
    pub ipv6: Option<(IpAddr, Option<u8>)>,
    pub gateway: Option<IpAddr>,
    pub gateway6: Option<IpAddr>,
    pub parent: Option<String>,
    pub mode: Option<Mode>,
    pub flag: Option<Flag>,
    pub ifname: Option<String>,
    pub mtu: Option<u32>,
    /// `ipvlan.networks`: several networks, each with its own settings.
    pub networks: Option<Vec<AttachmentRequest>>,
}

/// More interfaces than any container needs; a bound against a hostile annotation.
const MAX_NETWORKS: usize = 32;

const KEYS: &[&str] = &[
    "ipvlan.network",
    "ipvlan.networks",
    "ipvlan.ipv4",
    "ipvlan.ipv6",
    "ipvlan.gateway",
    "ipvlan.gateway6",
    "ipvlan.parent",
    "ipvlan.mode",
    "ipvlan.flag",
    "ipvlan.ifname",
    "ipvlan.mtu",
];

impl Annotations {
    /// None when the container carries no `ipvlan.*` annotation: not ours to touch.
    pub fn parse(map: Option<&HashMap<String, String>>) -> Result<Option<Annotations>> {
        // In key order, so that of several bad annotations the same one is named every time.
        let mut ours: Vec<(&String, &String)> = map
            .into_iter()
            .flatten()
            .filter(|(key, _)| key.starts_with("ipvlan."))
            .collect();
        if ours.is_empty() {
            return Ok(None);
        }
        ours.sort_unstable();
        let keys: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
        let mut a = Annotations::default();
        for (key, value) in ours {
            let field = &key["ipvlan.".len()..];
            let v = value.trim();
            let bad = |what: &str| Error::msg(format!("annotation {key}={value:?}: {what}"));
            match field {
                "network" => {
                    validate_name(v).map_err(|e| e.context(format!("annotation {key}")))?;
                    a.network = Some(v.to_string());
                }
                "networks" => {
                    a.networks = Some(
                        parse_networks(v).map_err(|e| e.context(format!("annotation {key}")))?,
                    )
                }
                "ipv4" | "ipv6" => {
                    let parsed = parse_addr(v)
                        .ok_or_else(|| bad("not an address (use ADDR or ADDR/PREFIX)"))?;
                    if parsed.0.is_ipv6() != (field == "ipv6") {
                        return Err(bad(&format!(
                            "not an {} address",
                            if field == "ipv6" { "IPv6" } else { "IPv4" }
                        )));
                    }
                    *(if field == "ipv4" {
                        &mut a.ipv4
                    } else {
                        &mut a.ipv6
                    }) = Some(parsed);
                }
                "gateway" | "gateway6" => {
                    let gw: IpAddr = v.parse().map_err(|_| bad("not an address"))?;
                    if gw.is_ipv6() != (field == "gateway6") {
                        return Err(bad(
                            "wrong address family (ipvlan.gateway is IPv4, ipvlan.gateway6 IPv6)",
                        ));
                    }
                    *(if field == "gateway" {
                        &mut a.gateway
                    } else {
                        &mut a.gateway6
                    }) = Some(gw);
                }
                "parent" => {
                    validate_ifname(v).map_err(|e| e.context(format!("annotation {key}")))?;
                    a.parent = Some(v.to_string());
                }
                "mode" => {
                    a.mode = Some(
                        clap::ValueEnum::from_str(v, true).map_err(|_| bad("use l2, l3 or l3s"))?,
                    )
                }
                "flag" => {
                    a.flag = Some(
                        clap::ValueEnum::from_str(v, true)
                            .map_err(|_| bad("use bridge, private or vepa"))?,
                    )
                }
                "ifname" => {
                    validate_ifname(v).map_err(|e| e.context(format!("annotation {key}")))?;
                    a.ifname = Some(v.to_string());
                }
                "mtu" => {
                    a.mtu = Some(
                        v.parse()
                            .ok()
                            .filter(|m| (68..=65535).contains(m))
                            .ok_or_else(|| bad("use a number from 68 to 65535"))?,
                    )
                }
                _ => bail!(
                    "unknown annotation {key}: known ones are {}",
                    KEYS.join(", ")
                ),
            }
        }
        if a.networks.is_some()
            && let Some(key) = keys.iter().find(|k| **k != "ipvlan.networks")
        {
            bail!(
                "annotation {key} with ipvlan.networks: the list carries each network's settings (name, interface, ips, mac, mtu, gw-priority); drop {key}"
            );
        }
        Ok(Some(a))
    }

    pub fn ifname(&self) -> &str {
        self.ifname.as_deref().unwrap_or("eth0")
    }

    /// The networks named and the interfaces asked for, without loading anything: what
    /// poststop tears down.
    pub fn interfaces(&self) -> (Vec<&str>, Vec<&str>) {
        match &self.networks {
            Some(list) => list
                .iter()
                .map(|r| (r.network.as_str(), r.ifname.as_str()))
                .unzip(),
            None => (
                self.network.as_deref().into_iter().collect(),
                vec![self.ifname()],
            ),
        }
    }

    /// The annotation-only network these annotations ask for on `parent`: one subnet per
    /// `ADDR/PREFIX` address. Still to be checked against the policy, and built.
    pub fn adhoc_spec(&self, parent: &str) -> Result<NetworkSpec> {
        let mut subnets = Vec::new();
        for (key, given) in [("ipvlan.ipv4", self.ipv4), ("ipvlan.ipv6", self.ipv6)] {
            if let Some((addr, prefix)) = given {
                let Some(prefix) = prefix else {
                    bail!(
                        "{key}={addr}: an annotation-only network needs ADDR/PREFIX (e.g. {addr}/24)"
                    );
                };
                // parse_addr checked the prefix against the family.
                let net = IpNetwork::new(addr, prefix).map_err(|e| Error::msg(e.to_string()))?;
                subnets.push(IpNetwork::new(net.network(), prefix).expect("prefix checked"));
            }
        }
        if subnets.is_empty() {
            bail!(
                "annotation-only network on {parent} needs ipvlan.ipv4 and/or ipvlan.ipv6 as ADDR/PREFIX"
            );
        }
        Ok(NetworkSpec {
            name: format!("adhoc-{parent}"),
            mode: self.mode.unwrap_or_default(),
            flag: self.flag.unwrap_or_default(),
            parent: Some(parent.to_string()),
            subnets,
            gateways: [self.gateway, self.gateway6]
                .into_iter()
                .flatten()
                .collect(),
            ..Default::default()
        })
    }
}

/// One entry of the JSON form of `ipvlan.networks`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkEntry {
    name: String,
    #[serde(default)]
    interface: Option<String>,
    #[serde(default)]
    ips: Vec<IpAddr>,
    #[serde(default)]
    mac: Option<String>,
    #[serde(default, rename = "gw-priority")]
    gw_priority: i32,
    #[serde(default)]
    mtu: Option<u32>,
}

/// `ipvlan.networks`: Multus' short form `a,b@lan1` (`@IFNAME` optional) or a JSON list of
/// `{"name", "interface", "ips", "mac", "gw-priority", "mtu"}`. Interfaces not named are eth0,
/// eth1, ... by position.
fn parse_networks(v: &str) -> Result<Vec<AttachmentRequest>> {
    let default_if = |i: usize| format!("eth{i}");
    let reqs: Vec<AttachmentRequest> = if v.starts_with('[') {
        let entries: Vec<NetworkEntry> = serde_json::from_str(v).map_err(|e| {
            Error::msg(format!(
                "invalid JSON list: {e} (e.g. [{{\"name\":\"a\",\"interface\":\"eth0\",\"ips\":[\"10.0.0.5\"]}}])"
            ))
        })?;
        let mut reqs = Vec::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            let mut r = AttachmentRequest::new(&e.name, &e.interface.unwrap_or(default_if(i)));
            for ip in e.ips {
                r.add_ip(ip)?;
            }
            r.mac = e
                .mac
                .map(|m| m.parse::<Mac>())
                .transpose()
                .map_err(|e| Error::msg(format!("network {}: {e}", r.network)))?;
            r.gw_priority = e.gw_priority;
            r.mtu = e.mtu;
            reqs.push(r);
        }
        reqs
    } else {
        v.split(',')
            .enumerate()
            .map(|(i, entry)| {
                let entry = entry.trim();
                match entry.split_once('@') {
                    Some((net, ifname)) => AttachmentRequest::new(net, ifname),
                    None => AttachmentRequest::new(entry, &default_if(i)),
                }
            })
            .collect()
    };
    if reqs.is_empty() || reqs.len() > MAX_NETWORKS {
        bail!("give 1 to {MAX_NETWORKS} networks");
    }
    for r in &reqs {
        r.validate()?;
    }
    Ok(reqs)
}

/// `ADDR` or `ADDR/PREFIX`.
fn parse_addr(v: &str) -> Option<(IpAddr, Option<u8>)> {
    match v.split_once('/') {
        None => Some((v.parse().ok()?, None)),
        Some((a, p)) => {
            let addr: IpAddr = a.parse().ok()?;
            let prefix: u8 = p.parse().ok()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            (prefix <= max).then_some((addr, Some(prefix)))
        }
    }
}

/// Where the hook finds the container's network namespace.
pub fn netns_path(state: &State, precreated: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = precreated {
        return Ok(p.to_owned());
    }
    match state.live_pid() {
        Some(pid) => Ok(PathBuf::from(format!("/proc/{pid}/ns/net"))),
        None => bail!(
            "container {}: the OCI state has no pid and the bundle names no network namespace: run the hook at createRuntime (or prestart)",
            state.id()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNC_CREATE: &str = r#"{"ociVersion":"1.0.2-dev","id":"rcp-runc-all","status":"creating","pid":26468,"bundle":"/tmp/b","annotations":{"ipvlan.network":"demo","org.example/foo":"bar"}}"#;
    const CRUN_POSTSTOP: &str = r#"{"ociVersion":"1.0","id":"rcp-crun-all","pid":0,"root":"/tmp/rootfs","bundle":"/tmp/b","status":"stopped","annotations":{"ipvlan.network":"demo"}}"#;
    const CRUN_CREATE: &str = r#"{"ociVersion":"1.0","id":"rcp-crun-all","pid":27067,"root":"/tmp/rootfs","bundle":"/tmp/b","status":"created","annotations":{"ipvlan.network":"demo","org.example/foo":"bar"}}"#;
    const CRUN_START_CONTAINER: &str = r#"{"ociVersion":"1.0","id":"rcp-crun-all","pid":0,"root":"/tmp/rootfs","bundle":"/","status":"starting","annotations":{"ipvlan.network":"demo"}}"#;
    const PODMAN_POSTSTOP: &str = r#"{"ociVersion":"1.0.2-dev","id":"3595fff6","status":"stopped","bundle":"/tmp/b","annotations":{"io.podman.annotations.autoremove":"TRUE","ipvlan.network":"demo"}}"#;

    #[test]
    fn precreated_netns_comes_from_the_bundle_config() {
        let bundle = std::env::temp_dir().join(format!("ipvh-oci-test-{}", std::process::id()));
        std::fs::create_dir_all(&bundle).unwrap();
        let json = serde_json::json!({"id": "c", "bundle": bundle}).to_string();
        let state = State::read(json.as_bytes()).unwrap();
        let config = bundle.join("config.json");
        let check = |json: &str| {
            std::fs::write(&config, json).unwrap();
            state.precreated_netns()
        };
        let podman = r#"{"ociVersion":"1.0.2","process":{"args":["sh"]},"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/run/netns/netns-1"},{"type":"mount"}],"uidMappings":[]}}"#;
        assert_eq!(
            check(podman).unwrap(),
            Some(PathBuf::from("/run/netns/netns-1"))
        );
        let runc = r#"{"linux":{"namespaces":[{"type":"network"},{"type":"pid"}]}}"#;
        assert_eq!(check(runc).unwrap(), None);
        assert_eq!(check(r#"{"ociVersion":"1.0.2"}"#).unwrap(), None);
        let err = check(r#"{"linux":{"namespaces":[{"path":"/x"}]}}"#).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "invalid bundle config {}: missing field `type`",
                config.display()
            )),
            "{err}"
        );
        std::fs::remove_dir_all(&bundle).unwrap();
        // No bundle is no config.json, not the one in the hook's cwd.
        let no_bundle = State::read(r#"{"id":"c"}"#.as_bytes()).unwrap();
        assert_eq!(no_bundle.precreated_netns().unwrap(), None);
    }

    #[test]
    fn states_as_runtimes_send_them() {
        let s = State::read(RUNC_CREATE.as_bytes()).unwrap();
        assert_eq!((s.id(), s.live_pid()), ("rcp-runc-all", Some(26468)));
        let a = Annotations::parse(s.annotations()).unwrap().unwrap();
        assert_eq!(a.network.as_deref(), Some("demo"));
        assert_eq!(a.ifname(), "eth0");
        assert_eq!(
            State::read(CRUN_POSTSTOP.as_bytes()).unwrap().live_pid(),
            None
        );
        assert_eq!(
            State::read(PODMAN_POSTSTOP.as_bytes()).unwrap().live_pid(),
            None
        );
        let s = State::read(CRUN_CREATE.as_bytes()).unwrap();
        assert_eq!((s.id(), s.live_pid()), ("rcp-crun-all", Some(27067)));
        // A status oci-spec does not know is no reason to refuse: the stage comes from argv.
        let s = State::read(CRUN_START_CONTAINER.as_bytes()).unwrap();
        assert_eq!((s.id(), s.pid()), ("rcp-crun-all", Some(0)));
        // A status that is not even a string is still refused.
        let e = State::read(r#"{"id":"c","status":5}"#.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("invalid OCI state JSON"), "{e}");
    }

    #[test]
    fn no_ipvlan_annotation_means_not_ours() {
        let s = State::read(r#"{"id":"c","pid":5,"annotations":{"a":"b"}}"#.as_bytes()).unwrap();
        assert_eq!(Annotations::parse(s.annotations()).unwrap(), None);
        let s = State::read(r#"{"id":"c","pid":5}"#.as_bytes()).unwrap();
        assert_eq!(Annotations::parse(s.annotations()).unwrap(), None);
    }

    #[test]
    fn bad_states_are_refused_clearly() {
        for (input, want) in [
            ("", "no OCI state on stdin"),
            ("{\"id\":", "invalid OCI state JSON"),
            ("{\"pid\":5}", "missing field `id`"),
            ("{\"id\":5}", "invalid type"),
            ("{\"id\":\"../etc\"}", "invalid container id"),
            ("{\"id\":\"a/b\"}", "invalid container id"),
            ("{\"id\":\"c\",\"pid\":\"x\"}", "invalid type"),
        ] {
            let e = State::read(input.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{input:?}: {e}");
        }
        let huge = vec![b' '; (MAX_STATE_BYTES + 10) as usize];
        assert!(
            State::read(&huge[..])
                .unwrap_err()
                .to_string()
                .contains("larger than")
        );
    }

    fn ann(pairs: &[(&str, &str)]) -> Result<Option<Annotations>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Annotations::parse(Some(&map))
    }

    #[test]
    fn several_networks_in_both_forms() {
        let short = ann(&[("ipvlan.networks", " web , db@lan1,web")])
            .unwrap()
            .unwrap();
        let got: Vec<(&str, &str)> = short
            .networks
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| (r.network.as_str(), r.ifname.as_str()))
            .collect();
        assert_eq!(got, [("web", "eth0"), ("db", "lan1"), ("web", "eth2")]);
        let json = r#"[{"name":"web","ips":["10.0.0.5","fd00::5"],"gw-priority":10},
                      {"name":"db","interface":"lan1","mac":"02:42:ac:11:00:02","mtu":1400}]"#;
        let a = ann(&[("ipvlan.networks", json)]).unwrap().unwrap();
        let n = a.networks.unwrap();
        assert_eq!(n[0].ifname, "eth0");
        assert_eq!(
            (n[0].ipv4, n[0].ipv6),
            (
                Some("10.0.0.5".parse().unwrap()),
                Some("fd00::5".parse().unwrap())
            )
        );
        assert_eq!(n[0].gw_priority, 10);
        assert_eq!((n[1].ifname.as_str(), n[1].mtu), ("lan1", Some(1400)));
        assert_eq!(n[1].mac.unwrap().to_string(), "02:42:ac:11:00:02");
    }

    #[test]
    fn annotation_values_are_checked() {
        let a = ann(&[
            ("ipvlan.ipv4", "10.1.0.7/24"),
            ("ipvlan.ipv6", "fd00::7"),
            ("ipvlan.mode", "L3S"),
            ("ipvlan.mtu", "1400"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.ipv4, Some(("10.1.0.7".parse().unwrap(), Some(24))));
        assert_eq!(a.ipv6, Some(("fd00::7".parse().unwrap(), None)));
        assert_eq!((a.mode, a.mtu), (Some(Mode::L3s), Some(1400)));
        for (pairs, want) in [
            (vec![("ipvlan.ipv4", "10.1.0.300")], "not an address"),
            (vec![("ipvlan.ipv4", "fd00::1")], "not an IPv4 address"),
            (vec![("ipvlan.ipv4", "10.0.0.1/33")], "not an address"),
            (vec![("ipvlan.mode", "l4")], "use l2, l3 or l3s"),
            (vec![("ipvlan.flag", "open")], "use bridge, private or vepa"),
            (vec![("ipvlan.ifname", "a/b")], "invalid interface name"),
            (vec![("ipvlan.mtu", "10")], "68 to 65535"),
            (
                vec![("ipvlan.netwrok", "x")],
                "unknown annotation ipvlan.netwrok",
            ),
            (vec![("ipvlan.network", "../x")], "invalid network name"),
            (vec![("ipvlan.gateway", "fd00::1")], "wrong address family"),
            (
                vec![("ipvlan.networks", "a,,b")],
                "invalid network name \"\"",
            ),
            (
                vec![("ipvlan.networks", "a@x/y")],
                "network a: invalid interface name",
            ),
            (vec![("ipvlan.networks", "[]")], "give 1 to 32 networks"),
            (
                vec![("ipvlan.networks", "[{\"name\":\"a\",\"colour\":1}]")],
                "unknown field `colour`",
            ),
            (
                vec![(
                    "ipvlan.networks",
                    r#"[{"name":"a","ips":["10.0.0.5","10.0.0.6"]}]"#,
                )],
                "two IPv4 addresses (10.0.0.5 and 10.0.0.6) for eth0 on network a",
            ),
            (
                vec![(
                    "ipvlan.networks",
                    r#"[{"name":"a","mac":"01:00:5e:00:00:01"}]"#,
                )],
                "multicast",
            ),
            (
                vec![("ipvlan.networks", r#"[{"name":"a","mtu":20}]"#)],
                "MTU 20 for eth0",
            ),
            (
                vec![("ipvlan.networks", "a,b"), ("ipvlan.ifname", "x")],
                "annotation ipvlan.ifname with ipvlan.networks",
            ),
        ] {
            let e = ann(&pairs).unwrap_err().to_string();
            assert!(e.contains(want), "{pairs:?}: {e}");
        }
    }
}
