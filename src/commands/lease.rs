//! `lease ls` and `lease drain`.

use serde::Serialize;

use super::{Format, print_json, print_table};
use crate::dirs::Dirs;
use crate::error::Result;
use crate::ipam::select as stores;
use crate::ipam::{self, Lease, LeaseEntry, LeaseFiles};
use crate::network::host_access;

#[derive(clap::Subcommand, Debug)]
pub enum LeaseCmd {
    /// List leases, of one network or all (etcd networks: of every host): a row per
    /// attachment in the table, an object per address in JSON.
    Ls {
        network: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Release every lease a host holds in etcd: for a host that is gone for good.
    Drain {
        /// The host's id (etcd.json's "host"; the HOST column of 'lease ls').
        #[arg(long)]
        host: String,
        /// Only list what would be released.
        #[arg(long)]
        dry_run: bool,
    },
}

/// One lease as `lease ls --format json` prints it: etcd leases also name their host.
#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    lease: &'a Lease,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
}

pub fn run(cmd: LeaseCmd, dirs: &Dirs) -> Result<()> {
    match cmd {
        LeaseCmd::Ls { network, format } => ls(network.as_deref(), format, dirs),
        LeaseCmd::Drain { host, dry_run } => {
            let verb = if dry_run { "would release" } else { "released" };
            for l in stores::drain(dirs, &host, dry_run)? {
                println!(
                    "{verb} {} on network {} (container {}, {}, host {host})",
                    l.address, l.network, l.container, l.ifname
                );
            }
            Ok(())
        }
    }
}

fn ls(network: Option<&str>, format: Format, dirs: &Dirs) -> Result<()> {
    let store = LeaseFiles::new(&dirs.state);
    let unreadable = |path: &std::path::Path, reason: &str| {
        crate::warn(&format!(
            "unreadable lease file {} ({reason}): its address stays reserved; inspect and remove it by hand",
            path.display()
        ))
    };
    // (lease, host for etcd leases, judged here: files or this host's etcd leases)
    let mut leases: Vec<(Lease, Option<String>, bool)> = Vec::new();
    for entry in ipam::leases(&store, network)? {
        match entry {
            LeaseEntry::Lease(l) => leases.push((l, None, true)),
            LeaseEntry::Corrupt { path, reason } => unreadable(&path, &reason),
        }
    }
    // etcd trouble does not hide the lease files; it is reported after them.
    let etcd_error = match stores::etcd_leases(dirs, network) {
        Ok(Some((me, entries))) => {
            for (host, entry) in entries {
                match entry {
                    LeaseEntry::Lease(l) => {
                        let mine = host.as_deref() == Some(me.as_str());
                        leases.push((l, host, mine));
                    }
                    LeaseEntry::Corrupt { path, reason } => unreadable(&path, &reason),
                }
            }
            None
        }
        Ok(None) => None,
        Err(e) => Some(e.context("etcd leases")),
    };
    let with_hosts = leases.iter().any(|(_, h, _)| h.is_some());
    match format {
        Format::Json => {
            let rows: Vec<Row> = leases
                .iter()
                .map(|(lease, host, _)| Row {
                    lease,
                    host: host.as_deref(),
                })
                .collect();
            print_json(&rows)?;
        }
        Format::Table => {
            // One row per attachment (network, container, interface): a dual-stack interface
            // holds two leases.
            let mut rows: Vec<Vec<String>> = Vec::new();
            let mut row_of = std::collections::HashMap::new();
            for (l, host, judged) in &leases {
                // Another host's pids mean nothing here.
                let reserved = l.container == host_access::holder(&l.network);
                let state = match (judged, l.owner.is_alive()) {
                    (false, _) => "remote",
                    (true, _) if reserved => "reserved",
                    (true, true) => "live",
                    (true, false) => "stale",
                };
                let address = format!("{}/{}", l.address, l.prefix_len);
                let key = (&l.network, &l.container, &l.ifname, host, state);
                if let Some(&i) = row_of.get(&key) {
                    let row: &mut Vec<String> = &mut rows[i];
                    row[3] = format!("{},{address}", row[3]);
                    continue;
                }
                row_of.insert(key, rows.len());
                let mut row = vec![
                    l.network.clone(),
                    l.container.clone(),
                    l.ifname.clone(),
                    address,
                    state.into(),
                ];
                if with_hosts {
                    row.push(host.clone().unwrap_or_else(|| "-".into()));
                }
                rows.push(row);
            }
            let mut header = vec!["NETWORK", "CONTAINER", "IFNAME", "ADDRESSES", "STATE"];
            if with_hosts {
                header.push("HOST");
            }
            print_table(&header, &rows);
        }
    }
    etcd_error.map_or(Ok(()), Err)
}
