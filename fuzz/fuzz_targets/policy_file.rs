//! The policy file (`CONFIG_DIR/policy.json`) through `Policy::load`, then
//! `check_annotation_network` against subnets taken from the tail of the input. A loaded policy
//! is checked against what it says: refused unless allowed, parents and subnets as listed.

#![no_main]

#[path = "common.rs"]
mod common;

use ipnetwork::IpNetwork;
use ipvlan_hook::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // "JSON\0parent subnet subnet ...": the part after the first NUL is the request.
    let (file, request) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let dir = common::scratch_dir();
    let path = dir.join("policy.json");
    std::fs::write(&path, file).expect("write scratch policy");
    let loaded = Policy::load(dir);
    std::fs::remove_file(&path).expect("remove scratch policy");
    let Ok(policy) = loaded else {
        return;
    };
    assert_eq!(policy.version, 1);

    let request = String::from_utf8_lossy(request);
    let mut words = request.split_ascii_whitespace();
    let parent = words.next().unwrap_or("eth0");
    let subnets: Vec<IpNetwork> = words.filter_map(|w| w.parse().ok()).collect();
    let verdict = policy.check_annotation_network(parent, &subnets);
    if verdict.is_ok() {
        assert!(policy.allow_annotation_networks);
        assert!(
            policy.allowed_parents.is_empty() || policy.allowed_parents.iter().any(|p| p == parent)
        );
        for s in &subnets {
            assert!(
                policy.allowed_subnets.is_empty()
                    || policy.allowed_subnets.iter().any(|a| {
                        a.is_ipv4() == s.is_ipv4()
                            && a.prefix() <= s.prefix()
                            && a.contains(s.network())
                    }),
                "{s} allowed by {:?}",
                policy.allowed_subnets
            );
        }
    } else {
        let refused = !policy.allow_annotation_networks
            || (!policy.allowed_parents.is_empty()
                && !policy.allowed_parents.iter().any(|p| p == parent))
            || subnets.iter().any(|s| {
                !policy.allowed_subnets.is_empty()
                    && !policy
                        .allowed_subnets
                        .iter()
                        .any(|a| a.contains(s.network()) && a.prefix() <= s.prefix())
            });
        assert!(refused, "refused without a reason");
    }
    // No policy file: secure by default.
    assert!(
        Policy::load(dir)
            .expect("no file")
            .check_annotation_network(parent, &subnets)
            .is_err()
    );
});
