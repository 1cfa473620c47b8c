//! The host's policy (`CONFIG_DIR/policy.json`): what container annotations alone may ask for.
//! Secure by default: without a policy file, only networks an operator defined are used.

use std::path::Path;

use ipnetwork::IpNetwork;
use serde::Deserialize;

use crate::bail;
use crate::error::{Context, Result};

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
    /// If not empty, containers may only ask for these defined networks.
    #[serde(default)]
    pub allowed_networks: Vec<String>,
}

impl Policy {
    pub fn load(config_dir: &Path) -> Result<Policy> {
        let path = crate::dirs::policy(config_dir);
        match fs_err::read_to_string(&path) {
            Ok(text) => {
                let p: Policy = serde_json::from_str(&text)
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

    /// May a container ask for the defined network `name`?
    pub fn check_network(&self, name: &str) -> Result<()> {
        if !self.allowed_networks.is_empty() && !self.allowed_networks.iter().any(|n| n == name) {
            bail!("network {name} is not in allowed_networks of the policy file");
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Policy {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn secure_by_default() {
        let p = Policy::default();
        p.check_network("any").unwrap();
        let e = p
            .check_annotation_network("eth0", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("refused by policy"), "{e}");
    }

    #[test]
    fn every_rule_names_itself_when_it_refuses() {
        let p = policy(
            r#"{"version":1,"allow_annotation_networks":true,"allowed_parents":["eth0"],
                "allowed_subnets":["10.20.0.0/16"],"allowed_networks":["db"]}"#,
        );
        p.check_network("db").unwrap();
        assert!(
            p.check_network("web")
                .unwrap_err()
                .to_string()
                .contains("allowed_networks")
        );
        let inside: IpNetwork = "10.20.3.0/24".parse().unwrap();
        let outside: IpNetwork = "10.21.0.0/24".parse().unwrap();
        let wider: IpNetwork = "10.0.0.0/8".parse().unwrap();
        p.check_annotation_network("eth0", &[inside]).unwrap();
        assert!(
            p.check_annotation_network("eth1", &[inside])
                .unwrap_err()
                .to_string()
                .contains("allowed_parents")
        );
        for s in [outside, wider] {
            assert!(
                p.check_annotation_network("eth0", &[s])
                    .unwrap_err()
                    .to_string()
                    .contains("allowed_subnets")
            );
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<Policy>(r#"{"version":1,"allow_all":true}"#).is_err());
    }
}
