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
            dir: config_dir.join("networks"),
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
        let json = serde_json::to_vec_pretty(net).map_err(|e| Error::msg(e.to_string()))?;
        match fsutil::write_atomic(&self.path(&net.name), &json, false) {
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                bail!("network {} already exists", net.name)
            }
            r => r,
        }
    }

    /// Rewrite an existing definition.
    pub fn replace(&self, net: &Network) -> Result<()> {
        let json = serde_json::to_vec_pretty(net).map_err(|e| Error::msg(e.to_string()))?;
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

fn parse(path: &Path, text: &str, name: &str) -> Result<Network> {
    let net: Network = serde_json::from_str(text)
        .map_err(|e| Error::msg(e.to_string()))
        .with_context(|| format!("invalid network file {} (fix or remove it)", path.display()))?;
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
    Ok(net)
}
