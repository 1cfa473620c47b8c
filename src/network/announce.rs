//! The announcement table (`network create --announce`): each container address of such a
//! network is a /32 or /128 route in a routing table of its own, tagged with our protocol
//! number, out of the network's parent. A BGP speaker (BIRD, FRR) learns the table and
//! announces it; the kernel table is the state, so a speaker that restarts reads it back.
//! No `ip rule` points at the table: it never changes how this host forwards.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::{Context, Errors, Result};
use crate::netlink::{Route, Rtnl};
use crate::network::{Network, overlaps};

/// Our routes' protocol number (`proto ipvlan-hook`, registered by the packages in
/// /etc/iproute2/rt_protos.d/ipvlan-hook.conf). No routing daemon claims it: not the kernel's
/// 0-4, zebra 11, BIRD 12, dhcp 16, kube-router 17, keepalived 18, babel 42, Calico 80, Open/R
/// 99, FRR's daemons 186-198.
pub const PROTOCOL: u8 = 158;
/// The name iproute2 shows for it.
pub const PROTOCOL_NAME: &str = "ipvlan-hook";
/// The table when `--announce` names none: below 253 so FRR's `ip import-table` (1-252) can
/// read it, above Calico's default routeTableRange (1-250).
pub const DEFAULT_TABLE: u32 = 251;

/// Where a network's container routes go, as its file records it (`network inspect`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Announce {
    pub table: u32,
    pub protocol: u8,
}

impl Announce {
    pub fn new(table: u32) -> Announce {
        Announce {
            table,
            protocol: PROTOCOL,
        }
    }

    /// Refuse the tables the kernel keeps for itself; `what` names the setting as the user
    /// wrote it (`--announce`, `announce.table`).
    pub fn check(&self, what: &str) -> Result<()> {
        let reserved = match self.table {
            0 => Some("unspec (0)"),
            253 => Some("default (253)"),
            254 => Some("main (254)"),
            255 => Some("local (255)"),
            _ => None,
        };
        if let Some(name) = reserved {
            bail!(
                "{what}={}: table {name} is the kernel's own and routes there change this host's forwarding; use a table of its own, e.g. --announce={DEFAULT_TABLE}",
                self.table
            );
        }
        if self.protocol != PROTOCOL {
            bail!(
                "{what}: protocol {} is not ipvlan-hook's ({PROTOCOL}): set it back to {PROTOCOL}",
                self.protocol
            );
        }
        Ok(())
    }

    /// The route of `address` out of link `oif`; 0 matches any link, for deleting a route
    /// whose link may be gone.
    fn route(&self, address: IpAddr, oif: u32) -> Route {
        Route {
            dst: IpNetwork::from(address),
            oif,
            src: None,
            table: Some(self.table),
            protocol: self.protocol,
        }
    }
}

/// Refuse a table that holds routes of another protocol: someone else uses it, and a speaker
/// learning it would announce their routes too.
pub fn check_table_free(rtnl: &Rtnl, table: u32) -> Result<()> {
    let others: Vec<String> = rtnl
        .table_routes(table)?
        .into_iter()
        .filter(|r| r.protocol != PROTOCOL)
        .map(|r| format!("{}/{} proto {}", r.destination, r.prefix_len, r.protocol))
        .collect();
    if let Some(first) = others.first() {
        bail!(
            "--announce={table}: routing table {table} already holds {} route(s) of other protocols ({first}{}): pick an unused table (see 'ip route show table all')",
            others.len(),
            if others.len() > 1 { ", ..." } else { "" }
        );
    }
    Ok(())
}

/// Two networks announcing into one table must not share an address: their routes would
/// replace each other's.
pub fn check_shares_table_with(net: &Network, other: &Network) -> Result<()> {
    let (Some(a), Some(b)) = (&net.announce, &other.announce) else {
        return Ok(());
    };
    if a.table != b.table {
        return Ok(());
    }
    for s in &net.subnets {
        if let Some(o) = other.subnets.iter().find(|o| overlaps(s.subnet, o.subnet)) {
            bail!(
                "subnet {} overlaps subnet {} of network {}, which announces into the same table {}: use another table (--announce=TABLE)",
                s.subnet,
                o.subnet,
                other.name,
                a.table
            );
        }
    }
    Ok(())
}

/// `network rm`: withdraw every route of the network (those of the table inside its subnets).
pub fn remove_network(rtnl: &Rtnl, announce: &Announce, net: &Network) -> Result<()> {
    let mine: Vec<IpAddr> = announced(rtnl, announce)?
        .into_iter()
        .filter(|a| net.subnet_of(*a).is_some())
        .collect();
    remove(rtnl, announce, &mine)
}

/// Put the routes of `addresses` into the table, out of link `dev` (the network's parent).
/// Stops at the first failure; the caller's rollback removes what was added.
pub fn add(rtnl: &Rtnl, announce: &Announce, dev: u32, addresses: &[IpAddr]) -> Result<()> {
    for &a in addresses {
        rtnl.replace_route(&announce.route(a, dev))
            .with_context(|| format!("cannot add route {a} to table {}", announce.table))?;
    }
    Ok(())
}

/// Take the routes of `addresses` out of the table; every one is tried, every error reported.
pub fn remove(rtnl: &Rtnl, announce: &Announce, addresses: &[IpAddr]) -> Result<()> {
    let mut errors = Errors::default();
    for &a in addresses {
        if let Err(e) = rtnl.del_route(&announce.route(a, 0)) {
            errors.push(e.context(format!(
                "cannot delete route {a} from table {}",
                announce.table
            )));
        }
    }
    errors.finish()
}

/// The table's routes of our protocol (the addresses), to compare with the leases.
pub fn announced(rtnl: &Rtnl, announce: &Announce) -> Result<BTreeSet<IpAddr>> {
    Ok(rtnl
        .table_routes(announce.table)?
        .into_iter()
        .filter(|r| r.protocol == announce.protocol && r.prefix_len == full_len(r.destination))
        .map(|r| r.destination)
        .collect())
}

fn full_len(a: IpAddr) -> u8 {
    if a.is_ipv4() { 32 } else { 128 }
}

/// Bring `announce`'s table in line with `leased` (each leased address with the index of its
/// network's parent): add what is missing, remove stale routes of our protocol. With `dry_run`
/// only say what differs.
pub fn reconcile(
    rtnl: &Rtnl,
    announce: &Announce,
    leased: &BTreeMap<IpAddr, u32>,
    dry_run: bool,
) -> Result<Drift> {
    let drift = Drift::between(
        &leased.keys().copied().collect(),
        &announced(rtnl, announce)?,
    );
    if !dry_run {
        // Every repair is tried, whichever fails.
        let mut errors = Errors::default();
        for a in &drift.missing {
            if let Err(e) = add(rtnl, announce, leased[a], &[*a]) {
                errors.push(e);
            }
        }
        if let Err(e) = remove(rtnl, announce, &drift.stale) {
            errors.push(e);
        }
        errors.finish()?;
    }
    Ok(drift)
}

/// How a table differs from the leases of the networks announcing into it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// Leased, not in the table.
    pub missing: Vec<IpAddr>,
    /// In the table, not leased: a teardown that did not finish, a network removed by hand.
    pub stale: Vec<IpAddr>,
}

impl Drift {
    pub fn between(leased: &BTreeSet<IpAddr>, announced: &BTreeSet<IpAddr>) -> Drift {
        Drift {
            missing: leased.difference(announced).copied().collect(),
            stale: announced.difference(leased).copied().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.stale.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_tables_are_refused_with_the_way_out() {
        for t in [0, 253, 254, 255] {
            let e = Announce::new(t)
                .check("--announce")
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("--announce={t}")), "{e}");
            assert!(e.contains("--announce=251"), "{e}");
        }
        for t in [1, 100, DEFAULT_TABLE, 252, 256, 100_000] {
            Announce::new(t).check("--announce").unwrap();
        }
        let mut other = Announce::new(100);
        other.protocol = 12;
        let e = other.check("announce").unwrap_err().to_string();
        assert!(e.contains("protocol 12"), "{e}");
    }

    #[test]
    fn protocol_is_claimed_by_no_routing_daemon() {
        // The numbers the issue names, and those /etc/iproute2/rt_protos lists.
        let taken = [
            0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 42, 80, 99,
        ];
        assert!(!taken.contains(&PROTOCOL) && !(186..=198).contains(&PROTOCOL));
    }

    #[test]
    fn packages_register_the_protocol_name() {
        let shipped = include_str!("../../packaging/iproute2/ipvlan-hook.conf");
        let number = PROTOCOL.to_string();
        assert!(
            shipped
                .lines()
                .any(|l| l.split_whitespace().eq([number.as_str(), PROTOCOL_NAME])),
            "packaging/iproute2/ipvlan-hook.conf does not name {PROTOCOL} {PROTOCOL_NAME}"
        );
    }

    #[test]
    fn drift_names_missing_and_stale_addresses() {
        let ips = |v: &[&str]| -> Vec<IpAddr> { v.iter().map(|a| a.parse().unwrap()).collect() };
        let set = |v: &[&str]| -> BTreeSet<IpAddr> { ips(v).into_iter().collect() };
        let d = Drift::between(
            &set(&["10.0.0.2", "10.0.0.3", "fd00::2"]),
            &set(&["10.0.0.3", "10.0.0.9"]),
        );
        assert_eq!(d.missing, ips(&["10.0.0.2", "fd00::2"]));
        assert_eq!(d.stale, ips(&["10.0.0.9"]));
        assert!(Drift::between(&set(&["10.0.0.3"]), &set(&["10.0.0.3"])).is_empty());
    }
}
