//! `lease ls` and `gc`.

use super::{Format, print_json, print_table};
use crate::cli::Dirs;
use crate::error::Result;
use crate::ipam::{self, LeaseEntry, LeaseFiles};

#[derive(clap::Subcommand, Debug)]
pub enum LeaseCmd {
    /// List leases, of one network or all.
    Ls {
        network: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

pub fn run(cmd: LeaseCmd, dirs: &Dirs) -> Result<()> {
    let LeaseCmd::Ls { network, format } = cmd;
    let store = LeaseFiles::new(&dirs.state);
    let entries = ipam::leases(&store, network.as_deref())?;
    let mut leases = Vec::new();
    for entry in entries {
        match entry {
            LeaseEntry::Lease(l) => leases.push(l),
            LeaseEntry::Corrupt { path, reason } => crate::warn(&format!(
                "unreadable lease file {} ({reason}): its address stays reserved; inspect and remove it by hand",
                path.display()
            )),
        }
    }
    match format {
        Format::Json => print_json(&leases),
        Format::Table => {
            let rows: Vec<Vec<String>> = leases
                .iter()
                .map(|l| {
                    let state = if l.owner.is_alive() { "live" } else { "stale" };
                    vec![
                        l.network.clone(),
                        l.container.clone(),
                        l.ifname.clone(),
                        format!("{}/{}", l.address, l.prefix_len),
                        state.into(),
                    ]
                })
                .collect();
            print_table(
                &["NETWORK", "CONTAINER", "IFNAME", "ADDRESS", "STATE"],
                &rows,
            );
            Ok(())
        }
    }
}

pub fn gc(dry_run: bool, dirs: &Dirs) -> Result<()> {
    let store = LeaseFiles::new(&dirs.state);
    let verb = if dry_run { "would release" } else { "released" };
    for l in ipam::gc(&store, dry_run)? {
        println!(
            "{verb} {} on network {} (container {}, {})",
            l.address, l.network, l.container, l.ifname
        );
    }
    Ok(())
}
