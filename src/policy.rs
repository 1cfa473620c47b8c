//! The host's policy (`CONFIG_DIR/policy.json`): what container annotations alone may ask for.
//! Secure by default: without a policy file, only networks an operator defined are used.

use std::path::Path;

use ipnetwork::IpNetwork;
use serde::Deserialize;

use crate::bail;
use crate::error::{Context, Error, Result};

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: u32,
    /// Allow annotation-only networks (parent and addresses straight from annotations).
    #[serde(default)]
    pub allow_annotation_networks: bool,
    /// If not empty, annotation-only networks may only use these parents.
    #[serde(default)]
    pub allowed_parents: Vec<String>,
    /// If not empty, annotation-only addresses must lie in one of these.
    #[serde(default)]
    pub allowed_subnets: Vec<IpNetwork>,
}

impl Policy {
    pub fn load(config_dir: &Path) -> Result<Policy> {
        let path = config_dir.join("policy.json");
        match fs_err::read_to_string(&path) {
            Ok(text) => {
                let p: Policy = serde_json::from_str(&text)
                    .map_err(|e| Error::msg(e.to_string()))
                    .with_context(|| format!("invalid policy file {}", path.display()))?;
                if p.version != 1 {
                    bail!(
                        "policy file {} has version {}, this build reads version 1",
                        path.display(),
                        p.version
                    );
                }
                Ok(p)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Policy::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// May a container's annotations alone attach it to `parent` with `subnets`?
    pub fn check_annotation_network(&self, parent: &str, subnets: &[IpNetwork]) -> Result<()> {
        if !self.allow_annotation_networks {
            bail!(
                "annotation-only networks are refused by policy (allow_annotation_networks is false in policy.json): set ipvlan.network to a network defined with 'ipvlan-hook network create'"
            );
        }
        if !self.allowed_parents.is_empty() && !self.allowed_parents.iter().any(|p| p == parent) {
            bail!("parent {parent} is not in allowed_parents of the policy file");
        }
        for s in subnets {
            if !self.allowed_subnets.is_empty()
                && !self
                    .allowed_subnets
                    .iter()
                    .any(|a| a.contains(s.network()) && a.prefix() <= s.prefix())
            {
                bail!("subnet {s} is not inside allowed_subnets of the policy file");
            }
        }
        Ok(())
    }
}
