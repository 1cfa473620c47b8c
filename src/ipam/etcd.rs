//! The cluster-wide lease store (feature "etcd"): leases of `--ipam etcd` networks in etcd v3,
//! shared by every host on the network's layer 2 segment.
//!
//! ```text
//! PREFIX/v1/networks/NET                   the network's address plan: {"version":1,"subnets":[...]}
//!                                          (subnet, gateway, ip_range), written by the first host
//!                                          that creates or uses NET; every lease creation compares it
//! PREFIX/v1/leases/NET/ADDR                one lease: the Lease JSON of the file store plus "host"
//! PREFIX/v1/hosts/HOST/NET/CONTAINER/ADDR  index (empty value): what HOST's containers hold
//!
//! STATE_DIR/etcd/NET.lock                  local flock (0600), see below
//! STATE_DIR/etcd/NET.cursor-SUBNET         this host's round-robin cursor ('/' -> '_'), overwritten
//!                                          in place like the file store's; best effort
//! ```
//!
//! Correctness rests on etcd transactions alone, never on a lock:
//! - create: `if create_revision(lease) == 0 && value(plan) == ours then put lease, put index
//!   else get lease, get plan` — two hosts can never both win an address, and no address is
//!   handed out under a plan this host disagrees with;
//! - replace / remove: read the lease, check it is this host's container's, then
//!   `if mod_revision(lease) == read then put (or delete lease and index)`.
//!
//! Lease and index change in one transaction, so nothing in etcd is ever half-written and `tidy`
//! has nothing to do. The per-network lock is a local `flock`: it only keeps this host's own hooks
//! from racing each other for the same candidates. The round-robin cursor is local too (a
//! shared one would cost two more round trips per container and make every host race for the
//! same next address); a host's allocation may land on an address another host just took,
//! which the cheap existence check or, at worst, the transaction catches.
//!
//! Round trips: a setup makes three (index range, existence check, create transaction), a
//! teardown three (index range, lease read, delete transaction); the TLS connection is made
//! once per process.
//!
//! A store is one host's view: every address held by any host counts as taken (`is_free`,
//! `get`, `create`), but `of_container`, `list`, `replace` and `remove` see and touch only this
//! host's leases. So `ipam::gc` judges only leases whose owner process is on this host, and
//! container ids need only be unique per host. [`EtcdStore::drain`] takes another host's view
//! to release everything a host that is gone for good held.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::allocator::Pool;
use super::leases;
use super::store::{Lease, LeaseEntry, LeaseStore, NetworkLeases, Slot, Taken};
use crate::bail;
use crate::error::{Error, Errors, Result};
use crate::etcd::client::{Client, Compare, Kv, MAX_TXN_OPS, Op};
use crate::etcd::config::EtcdConfig;
use crate::fsutil::{check_name, lock_file, make_dir};

const PLAN_VERSION: u32 = 1;
/// Attempts of a read-check-write that lost a race (only this host's own hooks can race on
/// its leases, so this is plenty).
const CAS_ATTEMPTS: usize = 5;

/// Leases in etcd, seen from one host.
pub struct EtcdStore {
    /// Shared with the views `drain` makes of other hosts.
    client: Arc<Client>,
    /// `PREFIX/v1/`.
    root: String,
    host: String,
    /// STATE_DIR/etcd: local locks and cursors.
    local: PathBuf,
    /// The one network a hook, launcher run or `network rm` works on, and its address plan;
    /// None for the whole-host view of `gc`, `lease ls` and `drain` (which create nothing).
    scope: Option<(String, Vec<u8>)>,
}

/// A lease as stored in etcd: the file store's record plus the host that holds it.
#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    lease: Lease,
    host: String,
}

impl AsRef<Lease> for Record {
    fn as_ref(&self) -> &Lease {
        &self.lease
    }
}

/// The pools, as every host must define them.
#[derive(Serialize, Deserialize)]
struct Plan {
    version: u32,
    subnets: Vec<Pool>,
}

impl Plan {
    /// Canonical bytes: the same pools in any order give the same plan.
    fn encode(pools: &[Pool]) -> Vec<u8> {
        let mut subnets = pools.to_vec();
        // Aux addresses in address order: the same set gives the same bytes.
        subnets.iter_mut().for_each(|s| s.aux.sort());
        subnets.sort_by_key(|s| (s.subnet.is_ipv6(), s.subnet.ip(), s.subnet.prefix()));
        serde_json::to_vec(&Plan {
            version: PLAN_VERSION,
            subnets,
        })
        .unwrap_or_default()
    }

    /// "10.1.0.0/24 (gateway 10.1.0.1, range 10.1.0.128/25), fd00::/64", for messages.
    fn describe(bytes: &[u8]) -> String {
        let Ok(plan) = serde_json::from_slice::<Plan>(bytes) else {
            return format!("unreadable plan {:?}", String::from_utf8_lossy(bytes));
        };
        plan.subnets
            .iter()
            .map(|s| {
                let mut extra = Vec::new();
                if let Some(g) = s.gateway {
                    extra.push(format!("gateway {g}"));
                }
                if let Some(r) = s.ip_range {
                    extra.push(format!("range {r}"));
                }
                for a in &s.aux {
                    extra.push(format!("aux {a}"));
                }
                if extra.is_empty() {
                    s.subnet.to_string()
                } else {
                    format!("{} ({})", s.subnet, extra.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl EtcdStore {
    /// This host's view of every network (nothing can be created through it).
    pub fn new(cfg: &EtcdConfig, state_dir: &Path) -> Result<EtcdStore> {
        Ok(EtcdStore {
            client: Arc::new(Client::new(cfg)?),
            root: format!("{}/v1/", cfg.prefix),
            host: cfg.host.clone(),
            local: state_dir.join("etcd"),
            scope: None,
        })
    }

    /// The view a hook or launcher run needs: one network, whose leases are created under the
    /// address plan of `pools`.
    pub fn for_network(
        cfg: &EtcdConfig,
        state_dir: &Path,
        network: &str,
        pools: &[Pool],
    ) -> Result<EtcdStore> {
        check_name("network name", network)?;
        let mut store = EtcdStore::new(cfg, state_dir)?;
        store.scope = Some((network.to_string(), Plan::encode(pools)));
        Ok(store)
    }

    fn plan_key(&self, network: &str) -> String {
        format!("{}networks/{network}", self.root)
    }

    fn leases_prefix(&self, network: &str) -> String {
        format!("{}leases/{network}/", self.root)
    }

    fn lease_key(&self, network: &str, addr: IpAddr) -> String {
        format!("{}{addr}", self.leases_prefix(network))
    }

    fn host_prefix(&self) -> String {
        format!("{}hosts/{}/", self.root, self.host)
    }

    fn index_prefix(&self, network: &str, container: &str) -> String {
        format!("{}{network}/{container}/", self.host_prefix())
    }

    fn index_key(&self, lease: &Lease) -> String {
        format!(
            "{}{}",
            self.index_prefix(&lease.network, &lease.container),
            lease.address
        )
    }

    fn cursor_path(&self, network: &str, pool: &IpNetwork) -> PathBuf {
        self.local
            .join(format!("{network}.{}", leases::cursor_name(pool)))
    }

    /// Record the address plan of a network being created (`network create --ipam etcd`), or
    /// check that it agrees with the one another host recorded. Fails closed when etcd is
    /// unreachable, so no host defines a network the cluster has not seen.
    pub fn register_plan(&self, network: &str, pools: &[Pool]) -> Result<()> {
        check_name("network name", network)?;
        self.ensure_plan(network, &Plan::encode(pools))
    }

    fn ensure_plan(&self, network: &str, plan: &[u8]) -> Result<()> {
        let key = self.plan_key(network);
        for _ in 0..CAS_ATTEMPTS {
            let r = self.client.txn(
                &[Compare::Absent(key.as_bytes())],
                &[Op::Put(key.as_bytes(), plan)],
                &[Op::Get(key.as_bytes())],
            )?;
            if r.succeeded {
                return Ok(());
            }
            match r.gets.first().and_then(|g| g.first()) {
                Some(kv) if kv.value == plan => return Ok(()),
                Some(kv) => return Err(self.plan_mismatch(network, &kv.value, plan)),
                None => continue, // removed in between: try again
            }
        }
        bail!("cannot record the address plan of network {network} in etcd: it keeps changing")
    }

    fn plan_mismatch(&self, network: &str, stored: &[u8], ours: &[u8]) -> Error {
        Error::msg(format!(
            "network {network} is recorded in etcd ({}) with subnets {}, but this host defines it with {}: every host must define an etcd network identically (same --subnet, --gateway, --ip-range, --aux-address); fix this host's definition, or remove the network from every host to redefine it",
            self.plan_key(network),
            Plan::describe(stored),
            Plan::describe(ours)
        ))
    }

    /// Network and address of a key under `leases/`.
    fn split_lease_key<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str)> {
        key.strip_prefix(&self.root)?
            .strip_prefix("leases/")?
            .split_once('/')
    }

    fn entry(&self, kv: &Kv) -> (Option<String>, LeaseEntry) {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        let parsed = match self.split_lease_key(&key) {
            Some((net, addr)) => match addr.parse::<IpAddr>() {
                Ok(a) if a.to_string() == addr => leases::decode::<Record>(&kv.value, net, a),
                _ => Err("the key does not end in an IP address as ipvlan-hook writes it".into()),
            },
            None => Err("not a lease key".into()),
        };
        match parsed {
            Ok(rec) => (Some(rec.host), LeaseEntry::Lease(rec.lease)),
            Err(reason) => (
                None,
                LeaseEntry::Corrupt {
                    path: PathBuf::from(format!("etcd:{key}")),
                    reason,
                },
            ),
        }
    }

    /// Every lease in etcd, of every host, with the host that holds it (None for unreadable
    /// records), for `lease ls`.
    pub fn all_leases(&self, network: Option<&str>) -> Result<Vec<(Option<String>, LeaseEntry)>> {
        let prefix = match network {
            Some(n) => {
                check_name("network name", n)?;
                self.leases_prefix(n)
            }
            None => format!("{}leases/", self.root),
        };
        let kvs = self.client.list_prefix(prefix.as_bytes(), false)?;
        Ok(kvs.iter().map(|kv| self.entry(kv)).collect())
    }

    /// Release every lease `host` holds, on every network: for a host that is gone for good
    /// (its containers cannot run any more). `dry_run` only lists them.
    pub fn drain(&self, host: &str, dry_run: bool) -> Result<Vec<Lease>> {
        check_name("host id", host)?;
        if host == self.host {
            bail!(
                "{host} is this host: run 'ipvlan-hook gc' here to release the leases of containers that are gone; drain is for a host that is gone for good, run from another host"
            );
        }
        let view = EtcdStore {
            client: self.client.clone(),
            root: self.root.clone(),
            host: host.to_string(),
            local: self.local.clone(),
            scope: None,
        };
        let mut drained = Vec::new();
        let mut errors = Errors::default();
        for network in view.networks()? {
            let result = view.lock(&network).and_then(|mut net| {
                for entry in net.list()? {
                    if let LeaseEntry::Lease(lease) = entry {
                        if !dry_run {
                            net.remove(&lease)?;
                        }
                        drained.push(lease);
                    }
                }
                Ok(())
            });
            if let Err(e) = result {
                errors.push(e.context(format!("drain of host {host} on network {network}")));
            }
        }
        errors.finish().map(|()| drained)
    }

    /// The current record at `addr`, if it is this host's lease of `lease.container` on the
    /// same interface.
    fn own(&self, lease: &Lease) -> Result<Option<(Kv, Record)>> {
        let key = self.lease_key(&lease.network, lease.address);
        let Some(kv) = self.client.get(key.as_bytes())? else {
            return Ok(None);
        };
        Ok(
            match leases::decode::<Record>(&kv.value, &lease.network, lease.address) {
                Ok(rec)
                    if rec.host == self.host
                        && rec.lease.container == lease.container
                        && rec.lease.ifname == lease.ifname =>
                {
                    Some((kv, rec))
                }
                _ => None,
            },
        )
    }
}

impl LeaseStore for EtcdStore {
    fn lock(&self, network: &str) -> Result<Box<dyn NetworkLeases + '_>> {
        check_name("network name", network)?;
        make_dir(&self.local)?;
        let file = lock_file(&self.local.join(format!("{network}.lock")))?;
        let plan = match &self.scope {
            Some((n, plan)) if n == network => Some(plan.clone()),
            _ => None,
        };
        Ok(Box::new(EtcdNetwork {
            store: self,
            network: network.to_string(),
            plan,
            seen: RefCell::new(HashMap::new()),
            _lock: file,
        }))
    }

    /// The scoped network, or every network where this host holds a lease.
    fn networks(&self) -> Result<Vec<String>> {
        if let Some((n, _)) = &self.scope {
            return Ok(vec![n.clone()]);
        }
        let prefix = self.host_prefix();
        let mut names: Vec<String> = self
            .client
            .list_prefix(prefix.as_bytes(), true)?
            .iter()
            .filter_map(|kv| {
                let key = String::from_utf8_lossy(&kv.key);
                let net = key.strip_prefix(&prefix)?.split('/').next()?.to_string();
                check_name("network name", &net).ok().map(|()| net)
            })
            .collect();
        names.dedup();
        Ok(names)
    }

    /// Drop this host's leases of `network`; once no host holds any, its plan goes too (the
    /// next host to use the network records its own again).
    fn remove_network(&self, network: &str) -> Result<()> {
        check_name("network name", network)?;
        {
            let mut net = self.lock(network)?;
            for entry in net.list()? {
                if let LeaseEntry::Lease(lease) = entry {
                    net.remove(&lease)?;
                }
            }
        }
        let leases = self.leases_prefix(network);
        if self.client.count_prefix(leases.as_bytes())? == 0 {
            let plan = self.plan_key(network);
            if let Some(kv) = self.client.get(plan.as_bytes())? {
                self.client.txn(
                    &[Compare::ModRevision(plan.as_bytes(), kv.mod_revision)],
                    &[Op::Delete(plan.as_bytes())],
                    &[],
                )?;
            }
        }
        Ok(())
    }
}

/// One network, locked against this host's other hooks until dropped.
struct EtcdNetwork<'a> {
    store: &'a EtcdStore,
    network: String,
    /// The plan leases are created under (scoped stores only).
    plan: Option<Vec<u8>>,
    /// Revisions of the leases `of_container` read, so `remove` can go straight to its
    /// transaction (which still checks them).
    seen: RefCell<HashMap<IpAddr, (i64, Lease)>>,
    _lock: std::fs::File,
}

impl EtcdNetwork<'_> {
    fn client(&self) -> &Client {
        &self.store.client
    }

    fn key(&self, addr: IpAddr) -> String {
        self.store.lease_key(&self.network, addr)
    }

    /// The revision `of_container` saw `lease` at (used once: a transaction changes it).
    fn known_revision(&self, lease: &Lease) -> Option<i64> {
        let seen = self.seen.borrow_mut().remove(&lease.address);
        seen.filter(|(_, l)| l.container == lease.container && l.ifname == lease.ifname)
            .map(|(rev, _)| rev)
    }

    /// Apply `ops` if the record at `lease.address` is still this host's lease of the same
    /// container interface, as a transaction on the revision it was read at (read again when
    /// it changed in between). Ok(false): it is not ours (any more). `what` names the change
    /// for the error when it keeps changing.
    fn change_own(&self, lease: &Lease, ops: &[Op], what: &str) -> Result<bool> {
        let key = self.key(lease.address);
        let mut known = self.known_revision(lease);
        for _ in 0..CAS_ATTEMPTS {
            let rev = match known.take() {
                Some(rev) => rev,
                None => match self.store.own(lease)? {
                    Some((kv, _)) => kv.mod_revision,
                    None => return Ok(false),
                },
            };
            let r = self
                .client()
                .txn(&[Compare::ModRevision(key.as_bytes(), rev)], ops, &[])?;
            if r.succeeded {
                return Ok(true);
            }
        }
        bail!(
            "cannot {what} {} on network {}: it keeps changing; try again",
            lease.address,
            self.network
        )
    }
}

impl NetworkLeases for EtcdNetwork<'_> {
    fn is_free(&self, addr: IpAddr) -> Result<bool> {
        Ok(!self.client().exists(self.key(addr).as_bytes())?)
    }

    fn get(&self, addr: IpAddr) -> Result<Slot> {
        let key = self.key(addr);
        Ok(match self.client().get(key.as_bytes())? {
            None => Slot::Free,
            Some(kv) => match leases::decode::<Record>(&kv.value, &self.network, addr) {
                Ok(rec) => Slot::Leased(rec.lease),
                Err(reason) => Slot::Corrupt {
                    path: PathBuf::from(format!("etcd:{key}")),
                    reason,
                },
            },
        })
    }

    fn create(&mut self, lease: &Lease) -> Result<bool> {
        leases::check_writable(lease, &self.network)?;
        let Some(plan) = self.plan.clone() else {
            bail!(
                "internal error: a lease on network {} was to be created without its address plan",
                self.network
            );
        };
        let record = Record {
            lease: lease.clone(),
            host: self.store.host.clone(),
        };
        let value = leases::encode(&record)?;
        let key = self.key(lease.address);
        let index = self.store.index_key(lease);
        let plan_key = self.store.plan_key(&self.network);
        for _ in 0..CAS_ATTEMPTS {
            let r = self.client().txn(
                &[
                    Compare::Absent(key.as_bytes()),
                    Compare::Value(plan_key.as_bytes(), &plan),
                ],
                &[
                    Op::Put(key.as_bytes(), &value),
                    Op::Put(index.as_bytes(), b""),
                ],
                &[Op::Get(key.as_bytes()), Op::Get(plan_key.as_bytes())],
            )?;
            if r.succeeded {
                return Ok(true);
            }
            if let Some(kv) = r.gets.first().and_then(|g| g.first()) {
                // Our own record: an earlier attempt of this very call went through although
                // its answer was lost (a timeout, another endpoint tried).
                return Ok(kv.value == value);
            }
            match r.gets.get(1).and_then(|g| g.first()) {
                Some(kv) if kv.value != plan => {
                    return Err(self.store.plan_mismatch(&self.network, &kv.value, &plan));
                }
                // Equal now: it was recorded or changed in between; try again.
                Some(_) => {}
                // First use of the network since it was emptied (or defined on hosts by
                // copying files): record this host's plan, then try again.
                None => self.store.ensure_plan(&self.network, &plan)?,
            }
        }
        bail!(
            "cannot lease {} on network {}: etcd kept changing under the transaction; try again",
            lease.address,
            self.network
        )
    }

    fn replace(&mut self, lease: &Lease) -> Result<()> {
        leases::check_writable(lease, &self.network)?;
        let key = self.key(lease.address);
        let value = leases::encode(&Record {
            lease: lease.clone(),
            host: self.store.host.clone(),
        })?;
        if !self.change_own(
            lease,
            &[Op::Put(key.as_bytes(), &value)],
            "update the lease of",
        )? {
            bail!(
                "cannot update the lease of {} on network {}: it is no longer held by container {} ({}) of host {}",
                lease.address,
                self.network,
                lease.container,
                lease.ifname,
                self.store.host
            );
        }
        Ok(())
    }

    fn remove(&mut self, lease: &Lease) -> Result<()> {
        check_name("container id", &lease.container)?;
        let key = self.key(lease.address);
        let index = self.store.index_key(lease);
        // Not ours (any more): done already.
        self.change_own(
            lease,
            &[Op::Delete(key.as_bytes()), Op::Delete(index.as_bytes())],
            "release",
        )
        .map(drop)
    }

    fn of_container(&self, container: &str) -> Result<Vec<Lease>> {
        check_name("container id", container)?;
        let prefix = self.store.index_prefix(&self.network, container);
        let addrs: Vec<IpAddr> = self
            .client()
            .list_prefix(prefix.as_bytes(), true)?
            .iter()
            .filter_map(|kv| {
                String::from_utf8_lossy(&kv.key)
                    .strip_prefix(&prefix)
                    .and_then(|a| a.parse().ok())
            })
            .collect();
        let mut leases = Vec::new();
        for chunk in addrs.chunks(MAX_TXN_OPS) {
            let keys: Vec<String> = chunk.iter().map(|a| self.key(*a)).collect();
            let gets: Vec<Op> = keys.iter().map(|k| Op::Get(k.as_bytes())).collect();
            let r = self.client().txn(&[], &gets, &[])?;
            for (addr, found) in chunk.iter().zip(r.gets) {
                if let Some(kv) = found.first()
                    && let Ok(rec) = leases::decode::<Record>(&kv.value, &self.network, *addr)
                    && rec.host == self.store.host
                    && rec.lease.container == container
                {
                    self.seen
                        .borrow_mut()
                        .insert(*addr, (kv.mod_revision, rec.lease.clone()));
                    leases.push(rec.lease);
                }
            }
        }
        Ok(leases)
    }

    /// This host's leases, and the unreadable records (which keep their addresses blocked for
    /// every host).
    fn list(&self) -> Result<Vec<LeaseEntry>> {
        let prefix = self.store.leases_prefix(&self.network);
        let kvs = self.client().list_prefix(prefix.as_bytes(), false)?;
        Ok(kvs
            .iter()
            .map(|kv| self.store.entry(kv))
            .filter(|(host, entry)| match entry {
                LeaseEntry::Lease(_) => host.as_deref() == Some(self.store.host.as_str()),
                LeaseEntry::Corrupt { .. } => true,
            })
            .map(|(_, entry)| entry)
            .collect())
    }

    /// Every host's leases (`list` keeps this host's): one keys-only range read.
    fn taken(&self) -> Result<Taken> {
        let prefix = self.store.leases_prefix(&self.network);
        let kvs = self.client().list_prefix(prefix.as_bytes(), true)?;
        Ok(kvs
            .iter()
            .filter_map(|kv| {
                let key = std::str::from_utf8(&kv.key).ok()?;
                key.strip_prefix(prefix.as_str())?.parse().ok()
            })
            .collect())
    }

    fn cursor(&self, pool: &IpNetwork) -> Option<IpAddr> {
        leases::read_cursor(&self.store.cursor_path(&self.network, pool))
    }

    fn set_cursor(&mut self, pool: &IpNetwork, last: IpAddr) {
        leases::write_cursor(&self.store.cursor_path(&self.network, pool), last);
    }

    /// Nothing to clear: lease and index change in one transaction, so nothing in etcd is ever
    /// half-written, and the local cursor is overwritten in place.
    fn tidy(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::LEASE_VERSION;
    use super::*;

    fn pool(subnet: &str, gw: Option<&str>) -> Pool {
        Pool {
            subnet: subnet.parse().expect("subnet"),
            ip_range: None,
            gateway: gw.map(|g| g.parse().expect("gateway")),
            aux: Vec::new(),
        }
    }

    #[test]
    fn plan_is_canonical_and_readable() {
        let a = Plan::encode(&[
            pool("fd00::/64", None),
            pool("10.2.0.0/24", Some("10.2.0.1")),
            pool("10.1.0.0/24", None),
        ]);
        let b = Plan::encode(&[
            pool("10.1.0.0/24", None),
            pool("fd00::/64", None),
            pool("10.2.0.0/24", Some("10.2.0.1")),
        ]);
        assert_eq!(a, b);
        assert_eq!(
            Plan::describe(&a),
            "10.1.0.0/24, 10.2.0.0/24 (gateway 10.2.0.1), fd00::/64"
        );
        assert_eq!(
            String::from_utf8(Plan::encode(&[pool("10.1.0.0/24", Some("10.1.0.1"))]))
                .expect("utf8"),
            r#"{"version":1,"subnets":[{"subnet":"10.1.0.0/24","gateway":"10.1.0.1"}]}"#
        );
        // Aux addresses are part of the plan, in address order whatever their names.
        let with_aux = |aux: &[&str]| {
            let mut p = pool("10.1.0.0/24", Some("10.1.0.1"));
            p.aux = aux.iter().map(|a| a.parse().expect("aux")).collect();
            Plan::encode(&[p])
        };
        assert_eq!(
            with_aux(&["10.1.0.9", "10.1.0.5"]),
            with_aux(&["10.1.0.5", "10.1.0.9"])
        );
        assert_ne!(with_aux(&["10.1.0.5"]), with_aux(&[]));
        assert_eq!(
            Plan::describe(&with_aux(&["10.1.0.9", "10.1.0.5"])),
            "10.1.0.0/24 (gateway 10.1.0.1, aux 10.1.0.5, aux 10.1.0.9)"
        );
    }

    #[test]
    fn records_carry_the_host_and_tolerate_new_fields() {
        let lease = Lease {
            version: LEASE_VERSION,
            network: "n".into(),
            container: "c".into(),
            ifname: "eth0".into(),
            address: "10.0.0.2".parse().expect("addr"),
            prefix_len: 24,
            created: 5,
            owner: Default::default(),
        };
        let kv = |v: &str| Kv {
            key: b"/p/v1/leases/n/10.0.0.2".to_vec(),
            value: v.as_bytes().to_vec(),
            create_revision: 1,
            mod_revision: 1,
        };
        let json = serde_json::to_string(&Record {
            lease: lease.clone(),
            host: "h1".into(),
        })
        .expect("json");
        assert!(json.ends_with(r#""owner":{},"host":"h1"}"#), "{json}");
        let addr = lease.address;
        let rec = leases::decode::<Record>(&kv(&json).value, "n", addr).expect("parse");
        assert_eq!((rec.lease, rec.host.as_str()), (lease, "h1"));
        let newer = json.replace("\"host\"", "\"future\":[1],\"host\"");
        assert!(leases::decode::<Record>(&kv(&newer).value, "n", addr).is_ok());
        let no_host = json.replace(r#","host":"h1""#, "");
        assert!(
            leases::decode::<Record>(&kv(&no_host).value, "n", addr)
                .err()
                .unwrap_or_default()
                .contains("host")
        );
        assert!(leases::decode::<Record>(&kv(&json).value, "other", addr).is_err());
        assert!(
            leases::decode::<Record>(
                &kv(&json.replace("\"version\":1", "\"version\":2")).value,
                "n",
                addr
            )
            .is_err()
        );
    }
}
