//! Pure address arithmetic: which addresses of a pool dynamic allocation may hand out and in
//! which order, and whether a requested static address is acceptable. No IO: the caller asks
//! its store whether a candidate is taken, so every store shares this code and it is tested
//! exhaustively without a filesystem.
//!
//! Addresses are handled as `u128` (an IPv4 address is its 32-bit value), so one code path
//! serves both families.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::Result;

/// One subnet of a network as the caller passes it: `subnet` is the network address/prefix
/// (host bits zero, already validated); `ip_range` only limits dynamic allocation (like
/// Docker's `--ip-range`); the gateway is never handed out. Serialized as the etcd store's
/// address plan compares it across hosts: mind the bytes (field order, skipped fields).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Pool {
    pub subnet: IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNetwork>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

fn to_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(bits: u128, family: Family) -> IpAddr {
    match family {
        // Only ever called with values inside an IPv4 subnet, so the cast keeps every bit.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

/// First and last address of a network (host bits all zero, all one).
fn bounds(net: IpNetwork) -> (u128, u128) {
    let width = if net.is_ipv4() { 32 } else { 128 };
    let host_bits = width - u32::from(net.prefix()).min(width);
    let mask = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let first = to_bits(net.ip()) & !mask;
    (first, first | mask)
}

impl Pool {
    pub(crate) fn family(&self) -> Family {
        Family::of(self.subnet.ip())
    }

    /// The subnet's own addresses no container may have: the network address, the IPv4
    /// broadcast, the gateway. Says which, for error messages.
    fn reserved(&self, addr: IpAddr) -> Option<&'static str> {
        let (first, last) = bounds(self.subnet);
        let bits = to_bits(addr);
        if bits == first {
            Some("the network address")
        } else if self.family() == Family::V4 && bits == last {
            Some("the broadcast address")
        } else if self.gateway == Some(addr) {
            Some("the gateway")
        } else {
            None
        }
    }

    /// Inclusive bounds dynamic allocation walks: subnet ∩ ip_range without the network
    /// address and the IPv4 broadcast. None when nothing is left (e.g. an IPv4 /31 or /32).
    fn span(&self) -> Option<(u128, u128)> {
        let (sub_first, sub_last) = bounds(self.subnet);
        let mut lo = sub_first.checked_add(1)?;
        let mut hi = if self.family() == Family::V4 {
            sub_last.checked_sub(1)?
        } else {
            sub_last
        };
        if let Some(range) = self.ip_range {
            if range.is_ipv4() != self.subnet.is_ipv4() {
                return None;
            }
            let (r_first, r_last) = bounds(range);
            lo = lo.max(r_first);
            hi = hi.min(r_last);
        }
        (lo <= hi).then_some((lo, hi))
    }
}

/// The addresses dynamic allocation may try in `pool`, round-robin: starting right after
/// `cursor` (the last address handed out) when it lies in the pool's range, otherwise at the
/// start of the range; wrapping once; each address at most once, the cursor itself last.
/// Never the network address, the IPv4 broadcast, the gateway or anything outside ip_range.
pub fn candidates(pool: &Pool, cursor: Option<IpAddr>) -> Candidates {
    let family = pool.family();
    let gateway = pool
        .gateway
        .filter(|g| Family::of(*g) == family)
        .map(to_bits);
    let Some((lo, hi)) = pool.span() else {
        return Candidates {
            family,
            lo: 0,
            hi: 0,
            next: 0,
            left: 0,
            gateway,
        };
    };
    let next = match cursor.filter(|c| Family::of(*c) == family).map(to_bits) {
        Some(c) if (lo..=hi).contains(&c) => {
            if c == hi {
                lo
            } else {
                c + 1
            }
        }
        _ => lo,
    };
    // hi - lo < u128::MAX because lo >= 1, so the count cannot overflow.
    Candidates {
        family,
        lo,
        hi,
        next,
        left: hi - lo + 1,
        gateway,
    }
}

pub struct Candidates {
    family: Family,
    lo: u128,
    hi: u128,
    next: u128,
    left: u128,
    gateway: Option<u128>,
}

impl Iterator for Candidates {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        while self.left > 0 {
            let bits = self.next;
            self.left -= 1;
            self.next = if bits == self.hi { self.lo } else { bits + 1 };
            if Some(bits) != self.gateway {
                return Some(from_bits(bits, self.family));
            }
        }
        None
    }
}

/// Where a network's own address (its host-access link's) comes from: the top of the subnet
/// down, first outside ip_range (where dynamic allocation never looks), then inside it. Never
/// the network address, the IPv4 broadcast or the gateway. Lazy: a range covering most of a
/// huge IPv6 subnet is stepped over, not walked.
pub fn reserve_candidates(pool: &Pool) -> impl Iterator<Item = IpAddr> + use<> {
    let family = pool.family();
    let whole = Pool {
        ip_range: None,
        ..pool.clone()
    };
    let (lo, hi) = whole.span().unwrap_or((1, 0));
    let range = pool.ip_range.map(bounds);
    let gateway = pool.gateway.map(to_bits);
    // Below the range when `b` lies in it.
    let skip = move |b: u128| match range {
        Some((r_lo, r_hi)) if (r_lo..=r_hi).contains(&b) => r_lo.checked_sub(1),
        _ => Some(b),
    };
    let in_span = move |b: &u128| (lo..=hi).contains(b);
    let first = skip(hi).filter(in_span);
    let outside = std::iter::successors(first, move |b| {
        b.checked_sub(1).and_then(skip).filter(in_span)
    });
    let inside = range
        .map(|(r_lo, r_hi)| (r_lo.max(lo)..=r_hi.min(hi)).rev())
        .into_iter()
        .flatten();
    outside
        .chain(inside)
        .filter(move |b| Some(*b) != gateway)
        .map(move |b| from_bits(b, family))
}

/// The subnets of one family, for messages: "10.1.0.0/24, 10.2.0.0/24".
pub fn subnets_text(pools: &[Pool], family: Family) -> String {
    let subnets: Vec<String> = pools
        .iter()
        .filter(|p| p.family() == family)
        .map(|p| p.subnet.to_string())
        .collect();
    subnets.join(", ")
}

/// The pool a requested static address belongs to, or an error saying why it cannot be used.
/// Static addresses need only lie in a subnet, not in its ip_range (as with Docker).
pub fn static_pool<'p>(network: &str, pools: &'p [Pool], addr: IpAddr) -> Result<&'p Pool> {
    let family = Family::of(addr);
    let Some(pool) = pools
        .iter()
        .find(|p| p.family() == family && p.subnet.contains(addr))
    else {
        if pools.iter().all(|p| p.family() != family) {
            bail!("cannot use {addr}: network {network} has no {family} subnet");
        }
        bail!(
            "{addr} lies outside every {family} subnet of network {network} ({}): choose an address inside one of them",
            subnets_text(pools, family)
        );
    };
    if let Some(what) = pool.reserved(addr) {
        bail!(
            "{addr} is {what} of subnet {} on network {network}: choose another address",
            pool.subnet
        );
    }
    // A gateway of another pool (only possible with overlapping subnets) is just as reserved.
    if pools.iter().any(|p| p.gateway == Some(addr)) {
        bail!("{addr} is a gateway on network {network}: choose another address");
    }
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn reserved_addresses_come_from_the_top_outside_the_range() {
        let take = |subnet: &str, range: Option<&str>, gw: Option<&str>, n: usize| {
            let pool = Pool {
                subnet: subnet.parse().unwrap(),
                ip_range: range.map(|r| r.parse().unwrap()),
                gateway: gw.map(|g| g.parse().unwrap()),
            };
            reserve_candidates(&pool)
                .take(n)
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            take("10.0.0.0/24", None, Some("10.0.0.254"), 2),
            ["10.0.0.253", "10.0.0.252"]
        );
        // The range at the top: below it, then (nothing else left) inside it.
        assert_eq!(
            take("10.0.0.0/30", Some("10.0.0.2/31"), None, 3),
            ["10.0.0.1", "10.0.0.2"]
        );
        assert_eq!(
            take("10.0.0.0/24", Some("10.0.0.0/24"), None, 1),
            ["10.0.0.254"]
        );
        // A range over the upper half of a /64 is stepped over at once.
        assert_eq!(
            take("fd00::/64", Some("fd00::8000:0:0:0/65"), None, 1),
            ["fd00::7fff:ffff:ffff:ffff"]
        );
        assert_eq!(
            take("fd00::/64", None, None, 1),
            ["fd00::ffff:ffff:ffff:ffff"]
        );
    }

    /// xorshift64*: deterministic, so a failing case can be replayed from its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    fn net(s: &str) -> IpNetwork {
        s.parse().expect("test network")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn pool(subnet: &str, range: Option<&str>, gateway: Option<&str>) -> Pool {
        Pool {
            subnet: net(subnet),
            ip_range: range.map(net),
            gateway: gateway.map(ip),
        }
    }

    fn all(pool: &Pool, cursor: Option<&str>) -> Vec<String> {
        candidates(pool, cursor.map(ip))
            .map(|a| a.to_string())
            .collect()
    }

    #[test]
    fn walks_the_subnet_without_reserved_addresses() {
        let p = pool("10.0.0.0/29", None, Some("10.0.0.1"));
        assert_eq!(
            all(&p, None),
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
        );
    }

    #[test]
    fn round_robin_starts_after_the_cursor_and_wraps() {
        let p = pool("10.0.0.0/29", None, Some("10.0.0.1"));
        assert_eq!(
            all(&p, Some("10.0.0.4")),
            ["10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
        );
        assert_eq!(
            all(&p, Some("10.0.0.6")),
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
        );
        // A cursor outside the range (the range changed, or it is from another pool) is ignored.
        assert_eq!(all(&p, Some("10.9.0.4"))[0], "10.0.0.2");
        assert_eq!(all(&p, Some("fd00::4"))[0], "10.0.0.2");
    }

    #[test]
    fn ip_range_limits_dynamic_allocation() {
        let p = pool("10.0.0.0/24", Some("10.0.0.8/30"), Some("10.0.0.1"));
        assert_eq!(
            all(&p, None),
            ["10.0.0.8", "10.0.0.9", "10.0.0.10", "10.0.0.11"]
        );
        // The range reaching the broadcast address does not make it usable.
        let p = pool("10.0.0.0/24", Some("10.0.0.252/30"), None);
        assert_eq!(all(&p, None), ["10.0.0.252", "10.0.0.253", "10.0.0.254"]);
    }

    #[test]
    fn tiny_and_huge_subnets() {
        assert!(all(&pool("10.0.0.0/31", None, None), None).is_empty());
        assert!(all(&pool("10.0.0.7/32", None, None), None).is_empty());
        assert_eq!(
            all(&pool("10.0.0.0/30", None, Some("10.0.0.1")), None),
            ["10.0.0.2"]
        );
        assert_eq!(all(&pool("fd00::/127", None, None), None), ["fd00::1"]);
        let p = pool("fd00::/64", None, Some("fd00::1"));
        let first: Vec<IpAddr> = candidates(&p, None).take(2).collect();
        assert_eq!(first, [ip("fd00::2"), ip("fd00::3")]);
        assert_eq!(
            candidates(&p, Some(ip("fd00::ffff:ffff:ffff:ffff"))).next(),
            Some(ip("fd00::2"))
        );
        // Whole address spaces: no overflow at either end.
        assert_eq!(
            candidates(&pool("::/0", None, None), None).next(),
            Some(ip("::1"))
        );
        let top = candidates(
            &pool("::/0", None, None),
            Some(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")),
        )
        .next();
        assert_eq!(top, Some(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert_eq!(
            candidates(&pool("0.0.0.0/0", None, None), None).next(),
            Some(ip("0.0.0.1"))
        );
    }

    #[test]
    fn static_addresses() {
        let pools = [
            pool("10.1.0.0/24", Some("10.1.0.128/25"), Some("10.1.0.1")),
            pool("fd00::/64", None, None),
        ];
        assert_eq!(
            static_pool("net", &pools, ip("10.1.0.7"))
                .map(|p| p.subnet)
                .ok(),
            Some(net("10.1.0.0/24"))
        );
        assert_eq!(
            static_pool("net", &pools, ip("fd00::7"))
                .map(|p| p.subnet)
                .ok(),
            Some(net("fd00::/64"))
        );
        let err = |a: &str| {
            static_pool("net", &pools, ip(a))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            err("10.1.0.0"),
            "10.1.0.0 is the network address of subnet 10.1.0.0/24 on network net: choose another address"
        );
        assert_eq!(
            err("10.1.0.255"),
            "10.1.0.255 is the broadcast address of subnet 10.1.0.0/24 on network net: choose another address"
        );
        assert_eq!(
            err("10.1.0.1"),
            "10.1.0.1 is the gateway of subnet 10.1.0.0/24 on network net: choose another address"
        );
        assert_eq!(
            err("fd00::"),
            "fd00:: is the network address of subnet fd00::/64 on network net: choose another address"
        );
        assert_eq!(
            err("10.2.0.5"),
            "10.2.0.5 lies outside every IPv4 subnet of network net (10.1.0.0/24): choose an address inside one of them"
        );
        let v4_only = [pool("10.1.0.0/24", None, None)];
        let e = static_pool("net", &v4_only, ip("fd00::5"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("cannot use fd00::5: network net has no IPv6 subnet")
        );
    }

    /// What `candidates(..).find(free)` must return, computed the slow, obvious way.
    fn expected(pool: &Pool, leased: &HashSet<u128>, cursor: Option<u128>) -> Option<u128> {
        let (first, last) = bounds(pool.subnet);
        let v4 = pool.family() == Family::V4;
        let in_range = |a: u128| {
            pool.ip_range
                .is_none_or(|r| r.contains(from_bits(a, pool.family())))
        };
        let walkable = |a: u128| a != first && !(v4 && a == last) && in_range(a);
        let usable = |a: u128| {
            walkable(a) && Some(from_bits(a, pool.family())) != pool.gateway && !leased.contains(&a)
        };
        let after = cursor.filter(|c| (first..=last).contains(c) && walkable(*c));
        after
            .and_then(|c| (c..=last).skip(1).find(|a| usable(*a)))
            .or_else(|| (first..=last).find(|a| usable(*a)))
    }

    /// Random subnets, ranges, gateways, cursors and leased sets, both families: the allocator
    /// never returns a reserved, out-of-range or leased address, finds the round-robin next
    /// free one, yields each address once, and reports exhaustion only when the pool is full.
    #[test]
    fn property_random_pools() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..3000 {
            let v4 = case % 2 == 0;
            let (width, min_prefix) = if v4 { (32u8, 21u8) } else { (128, 117) };
            let prefix = min_prefix + rng.below(u64::from(width - min_prefix) + 1) as u8;
            let raw = if v4 {
                u128::from(rng.next() as u32)
            } else {
                u128::from(rng.next()) << 64 | u128::from(rng.next())
            };
            let family = if v4 { Family::V4 } else { Family::V6 };
            let subnet = IpNetwork::new(from_bits(raw, family), prefix).expect("prefix fits");
            let subnet = IpNetwork::new(subnet.network(), prefix).expect("prefix fits");
            let (first, last) = bounds(subnet);
            let size = last - first + 1;
            let in_subnet = |rng: &mut Rng| first + u128::from(rng.next()) % size;
            let ip_range = rng.chance(50).then(|| {
                let p = prefix.saturating_sub(1)
                    + rng.below(u64::from(width - prefix.saturating_sub(1)) + 1) as u8;
                // Mostly inside the subnet, sometimes overlapping its edge or beside it.
                let base = if rng.chance(85) {
                    in_subnet(&mut rng)
                } else {
                    first.wrapping_add(size)
                };
                let r = IpNetwork::new(
                    from_bits(
                        base & if v4 { u128::from(u32::MAX) } else { u128::MAX },
                        family,
                    ),
                    p,
                )
                .expect("prefix fits");
                IpNetwork::new(r.network(), p).expect("prefix fits")
            });
            let gateway = rng
                .chance(70)
                .then(|| from_bits(in_subnet(&mut rng), family));
            let density = rng.below(101);
            let leased: HashSet<u128> = (first..=last).filter(|_| rng.chance(density)).collect();
            let cursor = match rng.below(4) {
                0 => None,
                1 => {
                    Some(first.wrapping_sub(1) & if v4 { u128::from(u32::MAX) } else { u128::MAX })
                }
                _ => Some(in_subnet(&mut rng)),
            };
            let p = Pool {
                subnet,
                ip_range,
                gateway,
            };
            let ctx = format!("case {case}: {p:?} cursor {cursor:?} density {density}");

            let cur = cursor.map(|c| from_bits(c, family));
            let got = candidates(&p, cur).find(|a| !leased.contains(&to_bits(*a)));
            assert_eq!(got.map(to_bits), expected(&p, &leased, cursor), "{ctx}");
            if let Some(a) = got {
                assert!(subnet.contains(a), "{ctx}: {a} outside subnet");
                assert!(
                    ip_range.is_none_or(|r| r.contains(a)),
                    "{ctx}: {a} outside ip-range"
                );
                assert_ne!(to_bits(a), first, "{ctx}: network address");
                assert!(!(v4 && to_bits(a) == last), "{ctx}: broadcast");
                assert_ne!(Some(a), gateway, "{ctx}: gateway");
                assert!(!leased.contains(&to_bits(a)), "{ctx}: leased");
            }
            // Every address at most once, and nothing usable left out.
            let seen: Vec<IpAddr> = candidates(&p, cur).collect();
            let unique: HashSet<&IpAddr> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len(), "{ctx}: duplicates");
            let usable = (first..=last).filter(|a| {
                let a = from_bits(*a, family);
                p.reserved(a).is_none() && ip_range.is_none_or(|r| r.contains(a))
            });
            assert_eq!(usable.count(), seen.len(), "{ctx}: candidate count");
            // Static addresses: accepted exactly when not reserved.
            let s = from_bits(in_subnet(&mut rng), family);
            assert_eq!(
                static_pool("net", std::slice::from_ref(&p), s).is_ok(),
                p.reserved(s).is_none(),
                "{ctx}: static {s}"
            );
        }
    }
}
