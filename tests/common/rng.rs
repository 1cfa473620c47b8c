//! Deterministic randomness for the tests that search (crash, property tests): one u64 seed,
//! printed by the test, replays a run.

/// splitmix64: tiny, good enough, and replayable from one u64.
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from `IPVLAN_TEST_SEED`, else the clock; the seed is printed so that a failing
    /// run can be replayed.
    pub fn from_env() -> Rng {
        let seed = env_u64("IPVLAN_TEST_SEED").unwrap_or_else(clock_seed);
        eprintln!("seed {seed} (IPVLAN_TEST_SEED={seed} repeats the random choices)");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` %.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// A random duration from `from` to `to` milliseconds.
    pub fn millis(&mut self, from: u64, to: u64) -> std::time::Duration {
        std::time::Duration::from_millis(from + self.next() % (to - from))
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// A fresh seed for a run that names none.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}
