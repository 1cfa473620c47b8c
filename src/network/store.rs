//! Network definitions on disk: `CONFIG_DIR/networks/NAME.json`, one versioned, hand-editable
//! JSON file per network.

use std::path::{Path, PathBuf};

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::network::{Network, VERSION, validate_name};

pub struct NetworkStore {
    dir: PathBuf,
}

impl NetworkStore {
    pub fn new(config_dir: &Path) -> NetworkStore {
        NetworkStore {
            dir: crate::dirs::networks(config_dir),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.path(name).exists()
    }

    pub fn load(&self, name: &str) -> Result<Network> {
        validate_name(name)?;
        let path = self.path(name);
        let text = match fs_err::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "network {name} is not defined ({} does not exist): create it with 'ipvlan-hook network create {name} --subnet CIDR ...'",
                path.display()
            ),
            Err(e) => return Err(e.into()),
        };
        parse(&path, &text, name)
    }

    /// Every defined network, sorted by name.
    pub fn list(&self) -> Result<Vec<Network>> {
        let entries = match fs_err::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut nets = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let text = fs_err::read_to_string(&path)?;
            nets.push(parse(&path, &text, name)?);
        }
        nets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nets)
    }

    /// Write a new definition; refuses to overwrite one.
    pub fn create(&self, net: &Network) -> Result<()> {
        fs_err::create_dir_all(&self.dir)?;
        let json = serde_json::to_vec_pretty(net)?;
        match fsutil::write_atomic(&self.path(&net.name), &json, false) {
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                bail!("network {} already exists", net.name)
            }
            r => r,
        }
    }

    /// Rewrite an existing definition.
    pub fn replace(&self, net: &Network) -> Result<()> {
        let json = serde_json::to_vec_pretty(net)?;
        fsutil::write_atomic(&self.path(&net.name), &json, true)
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        fs_err::remove_file(self.path(name))?;
        Ok(())
    }

    /// Serialises `network create` and `network rm`, whose checks span all networks.
    pub fn lock(&self) -> Result<std::fs::File> {
        fs_err::create_dir_all(&self.dir)?;
        fsutil::lock_file(&self.dir.join(".lock"))
    }
}

/// A network file's content, checked as `network create` checks what it writes: a hand-edited
/// file is refused with the file, the value and how to fix it.
fn parse(path: &Path, text: &str, name: &str) -> Result<Network> {
    let invalid = || {
        format!(
            "invalid network file {} (fix it, or remove it and run 'ipvlan-hook network create' again)",
            path.display()
        )
    };
    let net: Network = serde_json::from_str(text).with_context(invalid)?;
    if net.version != VERSION {
        bail!(
            "network file {} has version {}, this build reads version {VERSION}: upgrade ipvlan-hook",
            path.display(),
            net.version
        );
    }
    if net.name != name {
        bail!(
            "network file {} names network {:?}: the file name and \"name\" must agree",
            path.display(),
            net.name
        );
    }
    if net.parent.is_empty() {
        return Err(Error::msg(
            "parent is empty: name the parent link (an isolated network's is its dummy link, di-ID)",
        ))
        .with_context(invalid);
    }
    net.validate().with_context(invalid)?;
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(json: &str) -> Result<Network> {
        parse(Path::new("/etc/ipvlan-hook/networks/n.json"), json, "n")
    }

    fn file(parent: &str, extra: &str, subnet: &str) -> String {
        format!(
            r#"{{"version":1,"name":"n","id":"x","parent":"{parent}",{extra}"subnets":[{subnet}]}}"#
        )
    }

    #[test]
    fn a_valid_file_loads() {
        let net = load(&file(
            "eth0",
            r#""mtu":1500,"#,
            r#"{"subnet":"10.1.0.0/24","gateway":"10.1.0.1","ip_range":"10.1.0.128/25"}"#,
        ))
        .expect("valid file");
        assert_eq!(net.parent, "eth0");
    }

    #[test]
    fn hand_edited_values_are_refused_with_the_file_and_the_fix() {
        let cases = [
            (
                file("lo", "", r#"{"subnet":"10.1.0.0/24"}"#),
                "loopback interface lo is not a valid parent",
            ),
            (
                file("", "", r#"{"subnet":"10.1.0.0/24"}"#),
                "parent is empty",
            ),
            (
                file("a/b", "", r#"{"subnet":"10.1.0.0/24"}"#),
                "parent a/b: invalid interface name",
            ),
            (
                file("eth0", r#""mtu":0,"#, r#"{"subnet":"10.1.0.0/24"}"#),
                "mtu 0 is out of range: use 68 to 65535",
            ),
            (
                file("eth0", r#""mtu":1000,"#, r#"{"subnet":"fd00::/64"}"#),
                "mtu 1000 is out of range: use 1280 to 65535",
            ),
            (
                file("eth0", "", r#"{"subnet":"10.1.0.7/32"}"#),
                "subnet 10.1.0.7/32 is too small to allocate from: use a /30 or larger",
            ),
            (
                file("eth0", "", r#"{"subnet":"10.1.0.5/24"}"#),
                "subnet 10.1.0.5/24 has host bits set: did you mean 10.1.0.0/24?",
            ),
            (
                file(
                    "eth0",
                    "",
                    r#"{"subnet":"10.0.0.0/8"},{"subnet":"10.1.0.0/16"}"#,
                ),
                "subnet 10.1.0.0/16 overlaps subnet 10.0.0.0/8",
            ),
            (
                file(
                    "eth0",
                    "",
                    r#"{"subnet":"10.1.0.0/24","gateway":"10.2.0.1"}"#,
                ),
                "gateway 10.2.0.1 lies outside its subnet 10.1.0.0/24",
            ),
            (
                file(
                    "eth0",
                    "",
                    r#"{"subnet":"10.1.0.0/24","gateway":"10.1.0.255"}"#,
                ),
                "gateway 10.1.0.255 is the network or broadcast address of 10.1.0.0/24",
            ),
            (
                file(
                    "eth0",
                    "",
                    r#"{"subnet":"10.1.0.0/24","ip_range":"10.1.1.0/25"}"#,
                ),
                "ip_range 10.1.1.0/25 lies outside its subnet 10.1.0.0/24",
            ),
            (
                file(
                    "eth0",
                    "",
                    r#"{"subnet":"10.1.0.0/24","ip_range":"10.1.0.0/16"}"#,
                ),
                "ip_range 10.1.0.0/16 is larger than its subnet 10.1.0.0/24",
            ),
            (
                file(
                    "eth0",
                    r#""driver":"macvlan","mode":"l3","#,
                    r#"{"subnet":"10.1.0.0/24"}"#,
                ),
                "mode l3 is an ipvlan mode; macvlan networks take flag bridge|private|vepa",
            ),
            (file("eth0", "", ""), "network n needs at least one subnet"),
        ];
        for (json, want) in cases {
            let msg = load(&json).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                msg.starts_with(
                    "invalid network file /etc/ipvlan-hook/networks/n.json (fix it, or remove it and run 'ipvlan-hook network create' again): "
                ) && msg.contains(want),
                "{json}: {msg}"
            );
        }
    }
}
