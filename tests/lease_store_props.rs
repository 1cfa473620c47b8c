//! Property tests of the lease store through the public IPAM API: random sequences of allocate
//! (dynamic and static, IPv4 and IPv6, several containers and interfaces, ip-ranges, full
//! networks), release, gc with live and dead owners, owners dying, and a worker process
//! SIGKILLed at a random instant of a burst of allocations and releases.
//!
//! A model (the store's own listing before the step, plus the documented semantics of
//! `allocate`, `release` and `gc`) predicts what every step must do, and after every step the
//! invariants are checked: every lease file parses, no address is leased twice, every lease lies
//! in a subnet of its network and is not its network, broadcast or gateway address, each
//! container interface holds at most one lease per family, release takes exactly that
//! container's leases, gc takes exactly the dead owners' leases.
//!
//! Deterministic from a seed, printed on failure: `IPVLAN_PROPTEST_SEED=S` replays a case (the
//! instant of each SIGKILL is not replayed), `IPVLAN_PROPTEST_CASES=N` runs more (default 8,
//! a few seconds), `IPVLAN_PROPTEST_STEPS=N` makes each case longer (default 60).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use ipvlan_hook::ipam::{
    LEASE_VERSION, Lease, LeaseEntry, LeaseFiles, Owner, Pool, Request, allocate, gc, leases,
    release,
};

use common::rng::{Rng, clock_seed, env_u64};

const WORKER_DIR: &str = "IPVLAN_PROPTEST_WORKER_DIR";
const WORKER_SEED: &str = "IPVLAN_PROPTEST_WORKER_SEED";

// ---------------------------------------------------------------------------------------------
// The networks under test: small, so that full networks (and the collection of dead owners that
// a full network triggers) happen often.

struct Net {
    name: &'static str,
    pools: Vec<Pool>,
}

fn pool(subnet: &str, range: Option<&str>, gateway: Option<&str>) -> Pool {
    Pool {
        subnet: subnet.parse().expect("test subnet"),
        ip_range: range.map(|r| r.parse().expect("test range")),
        gateway: gateway.map(|g| g.parse().expect("test gateway")),
    }
}

fn networks() -> Vec<Net> {
    vec![
        // 13 usable IPv4 addresses, 4 of them (.8-.11) for dynamic allocation; 6 IPv6.
        Net {
            name: "alpha",
            pools: vec![
                pool("10.1.0.0/28", Some("10.1.0.8/30"), Some("10.1.0.1")),
                pool("fd00:a::/125", None, Some("fd00:a::1")),
            ],
        },
        // Two IPv4 pools (the second used once the first is full), a small IPv6 range.
        Net {
            name: "beta",
            pools: vec![
                pool("10.2.0.0/29", None, Some("10.2.0.1")),
                pool("10.3.0.0/30", None, None),
                pool("fd00:b::/125", Some("fd00:b::4/126"), None),
            ],
        },
        // IPv6 only, three addresses.
        Net {
            name: "gamma",
            pools: vec![pool("fd00:c::/126", None, None)],
        },
    ]
}

const CONTAINERS: &[&str] = &["c0", "c1", "c2", "c3", "c4", "c5"];
const IFNAMES: &[&str] = &["eth0", "eth1"];

// ---------------------------------------------------------------------------------------------
// Address arithmetic of the model (independent of the allocator's own)

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Fam {
    V4,
    V6,
}

fn fam(a: IpAddr) -> Fam {
    if a.is_ipv4() { Fam::V4 } else { Fam::V6 }
}

fn fam_of_net(n: IpNetwork) -> Fam {
    fam(n.ip())
}

fn to_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(b: u128, f: Fam) -> IpAddr {
    match f {
        Fam::V4 => IpAddr::V4(u32::try_from(b).expect("IPv4 bits").into()),
        Fam::V6 => IpAddr::V6(b.into()),
    }
}

/// First and last address of a subnet (for IPv6 `broadcast` is the last address).
fn first_last(n: IpNetwork) -> (u128, u128) {
    (to_bits(n.network()), to_bits(n.broadcast()))
}

/// The pool a static address may come from: in a subnet of its family, and not the network
/// address, the IPv4 broadcast or any gateway of the network.
fn static_pool(pools: &[Pool], a: IpAddr) -> Option<&Pool> {
    let p = pools
        .iter()
        .find(|p| fam_of_net(p.subnet) == fam(a) && p.subnet.contains(a))?;
    let (first, last) = first_last(p.subnet);
    let bits = to_bits(a);
    let reserved = bits == first
        || (fam(a) == Fam::V4 && bits == last)
        || pools.iter().any(|q| q.gateway == Some(a));
    (!reserved).then_some(p)
}

/// The bounds dynamic allocation walks in `p`: subnet and ip_range, without the network
/// address and the IPv4 broadcast (the gateway is skipped separately).
fn dynamic_span(p: &Pool) -> (u128, u128) {
    let f = fam_of_net(p.subnet);
    let (first, last) = first_last(p.subnet);
    let (mut lo, mut hi) = (first + 1, if f == Fam::V4 { last - 1 } else { last });
    if let Some(r) = p.ip_range {
        let (rf, rl) = first_last(r);
        lo = lo.max(rf);
        hi = hi.min(rl);
    }
    (lo, hi)
}

/// May dynamic allocation hand out `a` from `p`?
fn is_dynamic_candidate(p: &Pool, a: IpAddr) -> bool {
    let (lo, hi) = dynamic_span(p);
    fam(a) == fam_of_net(p.subnet) && (lo..=hi).contains(&to_bits(a)) && p.gateway != Some(a)
}

/// Is any address of `p` free for dynamic allocation? (Lazy: pools may be a /64.)
fn has_free(p: &Pool, taken: &BTreeMap<IpAddr, Lease>) -> bool {
    let (lo, hi) = dynamic_span(p);
    let f = fam_of_net(p.subnet);
    (lo..=hi)
        .map(|b| from_bits(b, f))
        .any(|a| p.gateway != Some(a) && !taken.contains_key(&a))
}

/// Addresses to ask for statically: mostly good ones, sometimes reserved or outside.
fn static_choice(rng: &mut Rng, pools: &[Pool], f: Fam) -> IpAddr {
    let mine: Vec<&Pool> = pools.iter().filter(|p| fam_of_net(p.subnet) == f).collect();
    if mine.is_empty() || rng.chance(8) {
        return match f {
            Fam::V4 => *rng.pick(&["10.9.9.9", "10.1.0.16", "192.168.0.1"]),
            Fam::V6 => *rng.pick(&["fd00:9::1", "fd00:a::8", "2001:db8::1"]),
        }
        .parse()
        .expect("test address");
    }
    let p = *rng.pick(&mine);
    let (first, last) = first_last(p.subnet);
    from_bits(first + (rng.next() as u128) % (last - first + 1), f)
}

// ---------------------------------------------------------------------------------------------
// Owners: processes that live and die during a case

/// Recorded owners of this case: long-lived children that can be killed at any step (a
/// container whose process died without poststop), this test process, and "unknown".
struct Owners {
    live: Vec<(Child, Owner)>,
    dead: HashSet<(u32, u64)>,
    me: Owner,
}

impl Owners {
    fn new() -> Owners {
        Owners {
            live: Vec::new(),
            dead: HashSet::new(),
            me: Owner::of_pid(std::process::id()).expect("own /proc/PID/stat"),
        }
    }

    fn spawn(&mut self) {
        let child = Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let owner = Owner::of_pid(child.id()).expect("child's /proc/PID/stat");
        self.live.push((child, owner));
    }

    /// Kill one live child (if any): its leases now belong to a dead owner.
    fn kill(&mut self, rng: &mut Rng) -> Option<u32> {
        if self.live.is_empty() {
            return None;
        }
        let (mut child, owner) = self.live.swap_remove(rng.below(self.live.len()));
        child.kill().expect("kill owner");
        child.wait().expect("reap owner");
        self.mark_dead(&owner);
        Some(child.id())
    }

    fn mark_dead(&mut self, owner: &Owner) {
        let key = (
            owner.pid.expect("owner pid"),
            owner.pid_start.expect("owner start"),
        );
        self.dead.insert(key);
    }

    fn is_dead(&self, o: &Owner) -> bool {
        matches!((o.pid, o.pid_start), (Some(p), Some(s)) if self.dead.contains(&(p, s)))
    }

    /// An owner a hook could record right now: never a dead one.
    fn choose(&mut self, rng: &mut Rng) -> Owner {
        if self.live.len() < 3 || rng.chance(10) {
            self.spawn();
        }
        match rng.below(6) {
            0 => Owner::default(),
            1 => Owner::this_boot(),
            2 => self.me.clone(),
            _ => rng.pick(&self.live).1.clone(),
        }
    }
}

impl Drop for Owners {
    fn drop(&mut self) {
        for (child, _) in &mut self.live {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots and the invariants that hold after every step

type Key = (String, IpAddr);

fn key(l: &Lease) -> Key {
    (l.network.clone(), l.address)
}

/// All leases, checked against every invariant of the store.
/// With `per_network`, also checks that listing one network agrees with listing all.
fn snapshot(
    store: &LeaseFiles,
    nets: &[Net],
    owners: &Owners,
    per_network: bool,
) -> BTreeMap<Key, Lease> {
    let entries = leases(store, None).expect("leases()");
    let mut all = BTreeMap::new();
    let mut addresses = HashSet::new();
    let mut per_interface = BTreeMap::new();
    for entry in entries {
        let l = match entry {
            LeaseEntry::Lease(l) => l,
            LeaseEntry::Corrupt { path, reason } => {
                panic!("corrupt lease file {}: {reason}", path.display())
            }
        };
        assert_eq!(l.version, LEASE_VERSION, "{l:?}");
        let net = nets
            .iter()
            .find(|n| n.name == l.network)
            .unwrap_or_else(|| panic!("lease on an unknown network: {l:?}"));
        let pool = static_pool(&net.pools, l.address).unwrap_or_else(|| {
            panic!("lease outside its subnets, or on a network/broadcast/gateway address: {l:?}")
        });
        assert_eq!(l.prefix_len, pool.subnet.prefix(), "{l:?}");
        // The subnets of the test networks are disjoint: an address is leased at most once.
        assert!(addresses.insert(l.address), "address leased twice: {l:?}");
        per_interface
            .entry((
                l.network.clone(),
                l.container.clone(),
                l.ifname.clone(),
                fam(l.address),
            ))
            .or_insert_with(Vec::new)
            .push(l.clone());
        assert_eq!(
            l.owner.is_alive(),
            !owners.is_dead(&l.owner),
            "Owner::is_alive disagrees with the test's record: {l:?}"
        );
        assert!(all.insert(key(&l), l).is_none(), "listed twice");
    }
    // One lease per family per container interface. The one exception is an allocate killed
    // while it moved an interface to a new static address: the new lease is made before the old
    // one goes (an error must leave the old one in place), so a SIGKILL in between leaves both,
    // owned by the dead process, until the next allocate, release or gc of that container.
    for ((_, container, _, _), held) in per_interface {
        if held.len() > 1 {
            assert!(
                held.len() == 2
                    && container.starts_with('w')
                    && held.iter().all(|l| owners.is_dead(&l.owner)),
                "several leases of one family for one interface: {held:?}"
            );
        }
    }
    for net in nets.iter().filter(|_| per_network) {
        let one: Vec<Lease> = leases(store, Some(net.name))
            .expect("leases(network)")
            .into_iter()
            .map(|e| match e {
                LeaseEntry::Lease(l) => l,
                LeaseEntry::Corrupt { path, .. } => panic!("corrupt {}", path.display()),
            })
            .collect();
        let want: Vec<&Lease> = all.values().filter(|l| l.network == net.name).collect();
        assert_eq!(
            one.iter().collect::<Vec<_>>(),
            want,
            "leases(Some({})) differs from leases(None)",
            net.name
        );
    }
    all
}

fn describe(m: &BTreeMap<Key, Lease>) -> String {
    m.values()
        .map(|l| format!("{}:{}/{}={}", l.network, l.container, l.ifname, l.address))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Content that must not change while a lease is merely kept (creation time included).
fn same_lease(a: &Lease, b: &Lease) -> bool {
    a == b
}

// ---------------------------------------------------------------------------------------------
// The model of `allocate`

struct AllocReq {
    net: usize,
    container: String,
    ifname: &'static str,
    want: [bool; 2],
    statics: [Option<IpAddr>; 2],
    owner: Owner,
}

#[derive(Debug)]
enum Pick {
    /// The lease held already, at this address.
    Keep(IpAddr),
    Exact(IpAddr),
    /// A new dynamic address: a candidate of this pool (the first of the family with room)
    /// that none of these took before.
    FreeIn(Pool, Vec<IpAddr>),
}

#[derive(Debug)]
enum Expect {
    Ok(Vec<(Fam, Pick)>),
    Err(&'static str),
}

/// What `allocate` must do, by its documented semantics, given the network's leases before.
/// Returns the outcome and the addresses whose dead owners are collected on the way (a dynamic
/// family that is full runs that collection once before giving up; it spares the leases the
/// request keeps, which have the request's live owner by then).
fn expect_allocate(
    pools: &[Pool],
    before: &BTreeMap<IpAddr, Lease>,
    req: &AllocReq,
    owners: &Owners,
) -> (Expect, Vec<IpAddr>) {
    let fams = [Fam::V4, Fam::V6];
    for (i, f) in fams.iter().enumerate() {
        if let Some(a) = req.statics[i]
            && (fam(a) != *f || static_pool(pools, a).is_none())
        {
            return (Expect::Err("invalid static address"), Vec::new());
        }
    }
    let mut state = before.clone();
    let mut collected = Vec::new();
    let held: Vec<Lease> = before
        .values()
        .filter(|l| l.container == req.container && l.ifname == req.ifname)
        .cloned()
        .collect();
    // Per requested family, the held lease that is kept: the requested static address, or
    // without one the first one still valid (there can be two after a killed move, see
    // `snapshot`).
    let keep: Vec<Option<IpAddr>> = fams
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if !(req.want[i] || req.statics[i].is_some()) {
                return None;
            }
            held.iter()
                .filter(|l| fam(l.address) == *f)
                .find(|l| match req.statics[i] {
                    Some(a) => l.address == a,
                    None => static_pool(pools, l.address).is_some(),
                })
                .map(|l| l.address)
        })
        .collect();
    let mut picks = Vec::new();
    for (i, f) in fams.iter().enumerate() {
        if !(req.want[i] || req.statics[i].is_some()) {
            continue;
        }
        if let Some(a) = keep[i] {
            picks.push((*f, Pick::Keep(a)));
            continue;
        }
        if let Some(a) = req.statics[i] {
            if state.contains_key(&a) {
                return (Expect::Err("static address taken"), collected);
            }
            state.insert(a, placeholder(a));
            picks.push((*f, Pick::Exact(a)));
            continue;
        }
        let fam_pools: Vec<&Pool> = pools
            .iter()
            .filter(|p| fam_of_net(p.subnet) == *f)
            .collect();
        if fam_pools.is_empty() {
            return (Expect::Err("no subnet of the family"), collected);
        }
        let mut found = None;
        for round in 0..2 {
            found = fam_pools
                .iter()
                .find(|p| has_free(p, &state))
                .map(|p| ((*p).clone(), state.keys().copied().collect::<Vec<_>>()));
            if found.is_some() || round == 1 || !collected.is_empty() {
                break;
            }
            collected = state
                .values()
                .filter(|l| owners.is_dead(&l.owner))
                .map(|l| l.address)
                .filter(|a| !keep.contains(&Some(*a)))
                .collect();
            for a in &collected {
                state.remove(a);
            }
        }
        match found {
            Some((pool, taken)) => {
                // Which free address is taken is round-robin's business: mark the pool full
                // enough for the model's purpose (the other family never looks at it).
                picks.push((*f, Pick::FreeIn(pool, taken)));
            }
            None => return (Expect::Err("no free address"), collected),
        }
    }
    (Expect::Ok(picks), collected)
}

/// Does the error message of a refused allocation give the reason the model expects?
fn gives_reason(why: &str, msg: &str) -> bool {
    match why {
        "invalid static address" => msg.contains(": choose ") || msg.starts_with("cannot use "),
        "static address taken" => msg.contains(" is leased to container "),
        "no subnet of the family" => msg.contains(" subnet to allocate an address from"),
        "no free address" => msg.starts_with("no free "),
        _ => panic!("unknown reason {why:?}"),
    }
}

fn placeholder(a: IpAddr) -> Lease {
    Lease {
        version: LEASE_VERSION,
        network: String::new(),
        container: String::new(),
        ifname: String::new(),
        address: a,
        prefix_len: 0,
        created: 0,
        owner: Owner::default(),
    }
}

// ---------------------------------------------------------------------------------------------
// One case

struct Case<'a> {
    rng: Rng,
    dir: PathBuf,
    store: LeaseFiles,
    nets: &'a [Net],
    owners: Owners,
    log: Vec<String>,
    worker_containers: Vec<String>,
    stats: &'a mut Stats,
}

#[derive(Default, Debug)]
struct Stats {
    steps: u64,
    alloc_ok: u64,
    alloc_err: u64,
    collections: u64,
    releases: u64,
    released_leases: u64,
    gcs: u64,
    gc_released: u64,
    owner_deaths: u64,
    crashes: u64,
    crash_leases: u64,
    torn_moves: u64,
}

impl Case<'_> {
    fn snapshot(&self) -> BTreeMap<Key, Lease> {
        snapshot(&self.store, self.nets, &self.owners, false)
    }

    /// The same, plus the per-network listings (after the steps that touch several networks).
    fn full_snapshot(&self) -> BTreeMap<Key, Lease> {
        snapshot(&self.store, self.nets, &self.owners, true)
    }

    fn container(&mut self) -> String {
        if !self.worker_containers.is_empty() && self.rng.chance(20) {
            return self.rng.pick(&self.worker_containers).clone();
        }
        self.rng.pick(CONTAINERS).to_string()
    }

    fn step(&mut self) {
        self.stats.steps += 1;
        match self.rng.below(100) {
            0..=47 => self.allocate(),
            48..=57 => self.restart(),
            58..=69 => self.release(),
            70..=77 => self.gc(),
            78..=89 => {
                let pid = self.owners.kill(&mut self.rng);
                self.stats.owner_deaths += u64::from(pid.is_some());
                self.log.push(format!("owner {pid:?} dies"));
                // Nothing in the store changes; the invariants (is_alive) are checked again.
                self.snapshot();
            }
            _ => self.crash(),
        }
    }

    fn allocate(&mut self) {
        let n = self.rng.below(self.nets.len());
        let pools = &self.nets[n].pools;
        let has = |f: Fam| pools.iter().any(|p| fam_of_net(p.subnet) == f);
        let mut want = [has(Fam::V4), has(Fam::V6)];
        for w in &mut want {
            // Sometimes a family is not wanted (or wanted where the network has none).
            if self.rng.chance(15) {
                *w = !*w;
            }
        }
        let mut statics = [None, None];
        for (i, f) in [Fam::V4, Fam::V6].into_iter().enumerate() {
            if self.rng.chance(20) {
                statics[i] = Some(static_choice(&mut self.rng, pools, f));
            }
        }
        let req = AllocReq {
            net: n,
            container: self.container(),
            ifname: IFNAMES[self.rng.below(IFNAMES.len())],
            want,
            statics,
            owner: self.owners.choose(&mut self.rng),
        };
        self.check_allocate(&req);
    }

    /// A container whose process died without poststop starts again under the same id (a
    /// restart): its interface is allocated again, for every family of the network, by a new
    /// live owner. Otherwise a plain allocate.
    fn restart(&mut self) {
        let stale: Vec<(usize, String, String)> = self
            .snapshot()
            .values()
            .filter(|l| self.owners.is_dead(&l.owner))
            .map(|l| {
                let n = self.nets.iter().position(|n| n.name == l.network);
                (
                    n.expect("known network"),
                    l.container.clone(),
                    l.ifname.clone(),
                )
            })
            .collect();
        if stale.is_empty() {
            return self.allocate();
        }
        let (n, container, ifname) = self.rng.pick(&stale).clone();
        let pools = &self.nets[n].pools;
        let has = |f: Fam| pools.iter().any(|p| fam_of_net(p.subnet) == f);
        let req = AllocReq {
            net: n,
            container,
            ifname: if ifname == "eth0" { "eth0" } else { "eth1" },
            want: [has(Fam::V4), has(Fam::V6)],
            statics: [None, None],
            owner: self.owners.choose(&mut self.rng),
        };
        self.log.push("restart:".into());
        self.check_allocate(&req);
    }

    fn check_allocate(&mut self, req: &AllocReq) {
        let net = &self.nets[req.net];
        let before = self.snapshot();
        let on_net: BTreeMap<IpAddr, Lease> = before
            .values()
            .filter(|l| l.network == net.name)
            .map(|l| (l.address, l.clone()))
            .collect();
        let (expect, collected) = expect_allocate(&net.pools, &on_net, req, &self.owners);
        let request = Request {
            network: net.name,
            container: &req.container,
            ifname: req.ifname,
            pools: net.pools.clone(),
            want_v4: req.want[0],
            want_v6: req.want[1],
            static_v4: req.statics[0],
            static_v6: req.statics[1],
            owner: req.owner.clone(),
        };
        let got = allocate(&self.store, &request);
        self.log.push(format!(
            "allocate {} {}/{} want={:?} static={:?} owner={:?} -> {}",
            net.name,
            req.container,
            req.ifname,
            req.want,
            req.statics,
            req.owner.pid,
            match &got {
                Ok(l) => format!(
                    "{:?}",
                    l.iter().map(|l| l.address.to_string()).collect::<Vec<_>>()
                ),
                Err(e) => format!("error: {e}"),
            }
        ));
        let after = self.snapshot();
        let ctx = || {
            format!(
                "allocate {} {}/{} want={:?} static={:?}\n  expected {expect:?} (collects dead owners' {collected:?})\n  got {got:?}\n  before: {}\n  after:  {}",
                net.name,
                req.container,
                req.ifname,
                req.want,
                req.statics,
                describe(&before),
                describe(&after)
            )
        };
        self.stats.collections += u64::from(!collected.is_empty());

        // Other networks are untouched.
        let others = |m: &BTreeMap<Key, Lease>| -> Vec<Lease> {
            m.values()
                .filter(|l| l.network != net.name)
                .cloned()
                .collect()
        };
        assert_eq!(others(&before), others(&after), "{}", ctx());

        // The expected leases of this network afterwards, except the container interface's own.
        let is_mine = |l: &Lease| l.container == req.container && l.ifname == req.ifname;
        let mut expect_rest: Vec<Lease> = on_net
            .values()
            .filter(|l| !is_mine(l))
            .filter(|l| !collected.contains(&l.address))
            .cloned()
            .collect();
        let after_on_net: Vec<Lease> = after
            .values()
            .filter(|l| l.network == net.name)
            .cloned()
            .collect();
        let after_rest: Vec<Lease> = after_on_net
            .iter()
            .filter(|l| !is_mine(l))
            .cloned()
            .collect();
        let after_mine: Vec<Lease> = after_on_net
            .iter()
            .filter(|l| is_mine(l))
            .cloned()
            .collect();
        let before_mine: Vec<Lease> = on_net.values().filter(|l| is_mine(l)).cloned().collect();

        match (&expect, &got) {
            (Expect::Err(why), Err(e)) => {
                self.stats.alloc_err += 1;
                assert!(gives_reason(why, &e.to_string()), "{}", ctx());
                // Nothing half-allocated: the interface's own leases are as they were, owners
                // included (unless the collection took them: the ones not kept, owner dead).
                let mut expect_mine = before_mine.clone();
                expect_mine.retain(|l| !collected.contains(&l.address));
                assert_eq!(after_mine, expect_mine, "{}", ctx());
                assert_eq!(after_rest, expect_rest, "{}", ctx());
            }
            (Expect::Ok(picks), Ok(leases)) => {
                self.stats.alloc_ok += 1;
                assert_eq!(leases.len(), picks.len(), "{}", ctx());
                for (f, pick) in picks {
                    let l = leases
                        .iter()
                        .find(|l| fam(l.address) == *f)
                        .unwrap_or_else(|| panic!("no {f:?} lease returned: {}", ctx()));
                    assert_eq!(
                        (l.network.as_str(), l.container.as_str(), l.ifname.as_str()),
                        (net.name, req.container.as_str(), req.ifname),
                        "{}",
                        ctx()
                    );
                    assert_eq!(l.owner, req.owner, "owner not recorded: {}", ctx());
                    match pick {
                        Pick::Keep(a) => {
                            assert_eq!(l.address, *a, "held lease not kept: {}", ctx());
                            let old = &on_net[a];
                            assert_eq!(l.created, old.created, "{}", ctx());
                        }
                        Pick::Exact(a) => assert_eq!(l.address, *a, "{}", ctx()),
                        Pick::FreeIn(pool, taken) => assert!(
                            is_dynamic_candidate(pool, l.address) && !taken.contains(&l.address),
                            "dynamic address {} is not a free one of {:?}, the first pool with room: {}",
                            l.address,
                            pool,
                            ctx()
                        ),
                    }
                }
                let mut returned = leases.clone();
                returned.sort_by_key(|l| l.address);
                assert!(
                    after_mine.len() == returned.len()
                        && after_mine
                            .iter()
                            .zip(&returned)
                            .all(|(a, b)| same_lease(a, b)),
                    "the store does not hold what allocate returned: {}",
                    ctx()
                );
                assert_eq!(after_rest, expect_rest, "{}", ctx());
                // Idempotent: the same request again returns the same leases and changes nothing.
                if self.rng.chance(15) {
                    let again = allocate(&self.store, &request)
                        .unwrap_or_else(|e| panic!("repeated allocate failed: {e}: {}", ctx()));
                    let mut again_sorted = again.clone();
                    again_sorted.sort_by_key(|l| l.address);
                    assert_eq!(again_sorted, returned, "{}", ctx());
                    assert_eq!(self.snapshot(), after, "{}", ctx());
                }
            }
            _ => panic!("allocate outcome differs from the model: {}", ctx()),
        }
        // Leases only ever disappear for dead owners of this network, never appear for others.
        expect_rest.retain(|l| !after_rest.contains(l));
        assert!(expect_rest.is_empty(), "{}", ctx());
    }

    fn release(&mut self) {
        let c = self.container();
        let before = self.snapshot();
        let mut released = release(&self.store, &c).expect("release");
        self.log.push(format!("release {c} -> {}", released.len()));
        let after = self.full_snapshot();
        released.sort_by_key(key);
        let expected: Vec<Lease> = before
            .values()
            .filter(|l| l.container == c)
            .cloned()
            .collect();
        assert_eq!(
            released,
            expected,
            "release({c}) did not return exactly its leases\n  before: {}",
            describe(&before)
        );
        let rest: BTreeMap<Key, Lease> = before
            .into_iter()
            .filter(|(_, l)| l.container != c)
            .collect();
        assert_eq!(after, rest, "release({c}) changed other leases");
        self.stats.releases += 1;
        self.stats.released_leases += released.len() as u64;
    }

    fn gc(&mut self) {
        let dry_run = self.rng.chance(25);
        let before = self.snapshot();
        let mut found = gc(&self.store, dry_run).expect("gc");
        self.log
            .push(format!("gc dry_run={dry_run} -> {}", found.len()));
        let after = self.full_snapshot();
        found.sort_by_key(key);
        let dead: Vec<Lease> = before
            .values()
            .filter(|l| self.owners.is_dead(&l.owner))
            .cloned()
            .collect();
        assert_eq!(
            found,
            dead,
            "gc did not find exactly the dead owners' leases\n  before: {}",
            describe(&before)
        );
        if dry_run {
            assert_eq!(after, before, "gc --dry-run changed the store");
        } else {
            let live: BTreeMap<Key, Lease> = before
                .into_iter()
                .filter(|(_, l)| !self.owners.is_dead(&l.owner))
                .collect();
            assert_eq!(
                after, live,
                "gc did not leave exactly the live owners' leases"
            );
            self.stats.gc_released += found.len() as u64;
        }
        self.stats.gcs += 1;
    }

    /// A worker process churns on the same store and is SIGKILLed at a random instant.
    fn crash(&mut self) {
        let before = self.snapshot();
        let exe = std::env::current_exe().expect("test binary");
        let seed = self.rng.next();
        let mut child = Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "crash_worker",
                "--test-threads=1",
                "-q",
            ])
            .env(WORKER_DIR, &self.dir)
            .env(WORKER_SEED, seed.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn worker");
        // Read before the kill, while it lives: its leases record this owner.
        let owner = Owner::of_pid(child.id()).expect("worker's /proc/PID/stat");
        let delay = Duration::from_micros(2_000 + self.rng.next() % 30_000);
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL worker");
        let status = child.wait().expect("reap worker");
        assert!(
            status.code().is_none(),
            "the worker ended by itself ({status}) before it was killed: did it fail?"
        );
        self.owners.mark_dead(&owner);
        let prefix = format!("w{}-", child.id());
        self.log.push(format!(
            "crash: worker {} killed after {delay:?}",
            child.id()
        ));
        let after = self.full_snapshot();
        self.log
            .push(format!("  {} -> {} leases", before.len(), after.len()));
        // The worker only added leases of its own containers, and only took leases of its own
        // containers or of dead owners (gc, or a full network's collection).
        for (k, l) in &after {
            if before.get(k) != Some(l) {
                assert!(
                    l.container.starts_with(&prefix) && l.owner.pid == owner.pid,
                    "a lease appeared or changed that is not the worker's: {l:?}"
                );
                self.stats.crash_leases += 1;
            }
        }
        for (k, l) in &before {
            if after.get(k) != Some(l) {
                assert!(
                    self.owners.is_dead(&l.owner),
                    "the worker took or changed a live owner's lease: {l:?}"
                );
            }
        }
        let mut interfaces = HashSet::new();
        for l in after.values().filter(|l| l.container.starts_with(&prefix)) {
            let interface = (&l.network, &l.container, &l.ifname, fam(l.address));
            if !interfaces.insert(interface) {
                // Killed between the new lease and the removal of the old one (see `snapshot`).
                self.stats.torn_moves += 1;
            }
        }
        for l in after.values() {
            if l.container.starts_with(&prefix) && !self.worker_containers.contains(&l.container) {
                self.worker_containers.push(l.container.clone());
            }
        }
        self.stats.crashes += 1;
    }
}

fn run_case(seed: u64, steps: u64, nets: &[Net], stats: &mut Stats) {
    run_scripted(seed, nets, stats, |case| {
        for _ in 0..steps {
            case.step();
        }
        // At the end, gc leaves exactly the live owners' leases, and releasing everyone
        // leaves nothing.
        case.gc();
        let everyone: HashSet<String> = case
            .snapshot()
            .values()
            .map(|l| l.container.clone())
            .collect();
        for c in everyone {
            release(&case.store, &c).expect("release");
        }
        assert!(
            case.snapshot().is_empty(),
            "leases left after releasing all"
        );
    });
}

/// Run `script` on a fresh store; on failure print how to replay it and the last steps.
fn run_scripted(seed: u64, nets: &[Net], stats: &mut Stats, script: impl FnOnce(&mut Case)) {
    let dir = TempDir::new(seed);
    let mut case = Case {
        rng: Rng(seed),
        dir: dir.0.clone(),
        store: LeaseFiles::new(&dir.0),
        nets,
        owners: Owners::new(),
        log: Vec::new(),
        worker_containers: Vec::new(),
        stats,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| script(&mut case)));
    if let Err(panic) = result {
        let tail = case.log.len().saturating_sub(30);
        eprintln!(
            "\nlease_store_props: case failed; replay it with IPVLAN_PROPTEST_SEED={seed} IPVLAN_PROPTEST_CASES=1 (and the same IPVLAN_PROPTEST_STEPS)\nlast steps:\n  {}\nstate dir kept: {}",
            case.log[tail..].join("\n  "),
            dir.0.display()
        );
        std::mem::forget(dir);
        std::panic::resume_unwind(panic);
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(seed: u64) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "ipvlan-hook-props-{}-{seed:016x}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn random_sequences_keep_the_lease_store_invariants() {
    let nets = networks();
    let given = env_u64("IPVLAN_PROPTEST_SEED");
    let (base, replay) = (given.unwrap_or_else(clock_seed), given.is_some());
    let cases = env_u64("IPVLAN_PROPTEST_CASES").unwrap_or(8);
    let steps = env_u64("IPVLAN_PROPTEST_STEPS").unwrap_or(60);
    let mut stats = Stats::default();
    let start = Instant::now();
    let mut seeder = Rng(base);
    for i in 0..cases {
        // With an explicit seed, the first case is exactly that seed (a replay).
        let seed = if replay && i == 0 {
            base
        } else {
            seeder.next()
        };
        run_case(seed, steps, &nets, &mut stats);
    }
    eprintln!(
        "lease_store_props: {cases} cases x {steps} steps (base seed {base}) in {:.1?}: {stats:?}",
        start.elapsed()
    );
    assert!(stats.alloc_ok > 0 && stats.alloc_err > 0, "{stats:?}");
    if cases >= 8 {
        assert!(stats.crashes > 0 && stats.gc_released > 0, "{stats:?}");
    }
}

/// A restart on a full network, as one deterministic case through the model: container `c0`
/// holds only an IPv6 lease, recorded for a process that then dies; it restarts (same id, new
/// process) asking for IPv4 as well, on a network whose only dynamic IPv4 address is held by
/// another dead container. Collecting the dead makes room, and spares the IPv6 lease c0 keeps.
#[test]
fn restart_on_a_full_network_keeps_its_own_lease() {
    let nets = vec![Net {
        name: "tiny",
        pools: vec![
            pool("10.9.0.0/30", None, Some("10.9.0.1")),
            pool("fd00:9::/64", None, None),
        ],
    }];
    let mut stats = Stats::default();
    run_scripted(0, &nets, &mut stats, |case| {
        case.owners.spawn();
        let old = case.owners.live[0].1.clone();
        let req = |container: &str, want_v4, owner: &Owner| AllocReq {
            net: 0,
            container: container.to_string(),
            ifname: "eth0",
            want: [want_v4, true],
            statics: [None, None],
            owner: owner.clone(),
        };
        case.check_allocate(&req("c0", false, &old));
        case.check_allocate(&req("c1", true, &old));
        case.owners.kill(&mut Rng(0));
        let me = case.owners.me.clone();
        case.check_allocate(&req("c0", true, &me));
        let held: Vec<String> = case
            .snapshot()
            .values()
            .map(|l| format!("{}={}", l.container, l.address))
            .collect();
        assert_eq!(held, ["c0=10.9.0.2", "c0=fd00:9::1"]);
    });
    assert_eq!((stats.alloc_ok, stats.collections), (3, 1), "{stats:?}");
}

/// The worker role of the crash steps, which run it with WORKER_DIR set: ignored in a normal
/// run, and it fails when run without them. It allocates and releases on the store there (as
/// its own live owner) until it is killed.
#[test]
#[ignore = "helper process of the crash steps, run by them"]
fn crash_worker() {
    let dir = std::env::var_os(WORKER_DIR)
        .expect("crash_worker runs only as the helper process of the crash steps");
    let seed = env_u64(WORKER_SEED).unwrap_or(1);
    worker(Path::new(&dir), seed);
}

fn worker(dir: &Path, seed: u64) {
    let store = LeaseFiles::new(dir);
    let nets = networks();
    let me = Owner::of_pid(std::process::id()).expect("own stat");
    let mut rng = Rng(seed);
    let prefix = format!("w{}-", std::process::id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let c = format!("{prefix}{}", rng.below(4));
        match rng.below(10) {
            0..=5 => {
                let net = rng.pick(&nets);
                let mut statics = [None, None];
                for (i, f) in [Fam::V4, Fam::V6].into_iter().enumerate() {
                    if rng.chance(20) {
                        statics[i] = Some(static_choice(&mut rng, &net.pools, f));
                    }
                }
                let req = Request {
                    network: net.name,
                    container: &c,
                    ifname: IFNAMES[rng.below(IFNAMES.len())],
                    pools: net.pools.clone(),
                    want_v4: net.pools.iter().any(|p| p.subnet.is_ipv4()),
                    want_v6: net.pools.iter().any(|p| p.subnet.is_ipv6()),
                    static_v4: statics[0],
                    static_v6: statics[1],
                    owner: me.clone(),
                };
                // Full networks and taken static addresses are expected here.
                let _ = allocate(&store, &req);
            }
            6..=8 => {
                release(&store, &c).expect("worker release");
            }
            _ => {
                gc(&store, false).expect("worker gc");
            }
        }
    }
    // Not killed in time: the parent reports that as a failure.
    std::process::exit(3);
}
