//! The lease record and the interface IPAM needs from a place that keeps leases.
//!
//! The interface is two small traits: [`LeaseStore`] hands out one network at a time, locked,
//! as a [`NetworkLeases`] guard; the guard reads and changes that network's leases and unlocks
//! when dropped. Taking an address is a single operation, [`NetworkLeases::create`], "create
//! this lease only if the address is free": with files that is `link()` (fails with EEXIST),
//! with a key-value store it is a compare-and-swap, so the allocator never needs the lock to be
//! the only thing that prevents a double allocation.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::owner::Owner;
use crate::error::Result;

/// The only lease format this build writes and reads; any other version counts as corrupt
/// (and so as occupied): an older binary must not hand out what a newer one leased.
pub const LEASE_VERSION: u32 = 1;

/// One address held by one container interface on one network.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Lease {
    pub version: u32,
    pub network: String,
    /// Container id.
    pub container: String,
    /// Interface in the container, e.g. eth0.
    pub ifname: String,
    pub address: IpAddr,
    /// Prefix length of the subnet the address came from.
    pub prefix_len: u8,
    /// Unix seconds.
    pub created: u64,
    #[serde(default)]
    pub owner: Owner,
}

/// One line of `lease ls`: a lease, or a stored record that cannot be read as one (edited by
/// hand, disk trouble, a newer version). Such a record keeps its address occupied; only an
/// operator removes it.
#[derive(Clone, Debug, PartialEq)]
pub enum LeaseEntry {
    Lease(Lease),
    Corrupt { path: PathBuf, reason: String },
}

/// What currently occupies an address.
#[derive(Clone, Debug, PartialEq)]
pub enum Slot {
    Free,
    Leased(Lease),
    Corrupt { path: PathBuf, reason: String },
}

/// Where leases live. Implementations check network names and container ids with
/// [`crate::fsutil::check_name`] before using them.
pub trait LeaseStore {
    /// Lock `network` (creating its state on first use) until the guard is dropped. Every
    /// read-modify-write of a network happens under this lock.
    fn lock(&self, network: &str) -> Result<Box<dyn NetworkLeases + '_>>;
    /// Networks that have state, sorted.
    fn networks(&self) -> Result<Vec<String>>;
    /// Drop all state of `network`; nothing there is an error.
    fn remove_network(&self, network: &str) -> Result<()>;
}

/// One locked network's leases.
pub trait NetworkLeases {
    /// Cheap existence check for the allocator's scan: anything stored there, readable or not,
    /// makes the address taken.
    fn is_free(&self, addr: IpAddr) -> Result<bool>;
    fn get(&self, addr: IpAddr) -> Result<Slot>;
    /// Store a new lease only if its address is free, as one operation. Ok(false): taken.
    fn create(&mut self, lease: &Lease) -> Result<bool>;
    /// Overwrite the container's own lease at the same address (e.g. a new owner pid).
    fn replace(&mut self, lease: &Lease) -> Result<()>;
    /// Delete the lease if it is still this container's; done already is success.
    fn remove(&mut self, lease: &Lease) -> Result<()>;
    /// The container's leases on this network, without scanning the others.
    fn of_container(&self, container: &str) -> Result<Vec<Lease>>;
    fn list(&self) -> Result<Vec<LeaseEntry>>;
    /// Every stored address, from one listing: what the allocator switches to when its scan
    /// meets a long run of taken addresses. A hint: `create` still has the last word.
    fn taken(&self) -> Result<Taken> {
        Ok(self
            .list()?
            .into_iter()
            .filter_map(|e| match e {
                LeaseEntry::Lease(l) => Some(l.address),
                LeaseEntry::Corrupt { .. } => None,
            })
            .collect())
    }
    /// Last address handed out from `pool`, for round-robin. Losing it only costs round-robin.
    fn cursor(&self, pool: &IpNetwork) -> Option<IpAddr>;
    /// Best effort, for the same reason: a failure here must not fail an allocation.
    fn set_cursor(&mut self, pool: &IpNetwork, last: IpAddr);
    /// Clear away what a killed writer can leave behind (gc only).
    fn tidy(&mut self) -> Result<()>;
}

/// Stored addresses, sorted, each family in its own integers: the allocator's set for its
/// lookups, small enough for a whole network (60,000 IPv4 addresses are 240 KB). With a
/// `HashSet<IpAddr>`, a setup with the cursor lost at 60,000 leases peaked at 7.1 MiB; with
/// this, 2.2 MiB (docs/benchmark-notes.md).
pub struct Taken {
    v4: Vec<u32>,
    v6: Vec<u128>,
}

impl FromIterator<IpAddr> for Taken {
    fn from_iter<I: IntoIterator<Item = IpAddr>>(iter: I) -> Taken {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for addr in iter {
            match addr {
                IpAddr::V4(a) => v4.push(u32::from(a)),
                IpAddr::V6(a) => v6.push(u128::from(a)),
            }
        }
        v4.sort_unstable();
        v6.sort_unstable();
        Taken { v4, v6 }
    }
}

impl Taken {
    pub fn contains(&self, addr: &IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.v4.binary_search(&u32::from(*a)).is_ok(),
            IpAddr::V6(a) => self.v6.binary_search(&u128::from(*a)).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_holds_both_families() {
        let addrs = ["10.0.0.9", "fd00::2", "10.0.0.2", "10.0.0.2", "fd00::1"];
        let taken: Taken = addrs.iter().map(|a| a.parse::<IpAddr>().unwrap()).collect();
        for a in addrs {
            assert!(taken.contains(&a.parse().unwrap()), "{a}");
        }
        for a in ["10.0.0.3", "fd00::3", "::ffff:10.0.0.2", "0.0.0.0"] {
            assert!(!taken.contains(&a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn lease_tolerates_missing_owner_and_unknown_fields() {
        let text = r#"{"version":1,"network":"n","container":"c","ifname":"eth0","address":"10.0.0.2",
                       "prefix_len":24,"created":5,"future":true}"#;
        let lease: Lease = serde_json::from_str(text).expect("lease without owner");
        assert_eq!(lease.owner, Owner::default());
        let json = serde_json::to_string(&lease).expect("serialize");
        assert!(json.contains(r#""owner":{}"#), "{json}");
    }
}
