//! `Annotations::parse` without the JSON layer, so the fuzzer spends its time on the values:
//! each input line `KEY=VALUE` is one annotation (a key without `ipvlan.` gets it prepended when
//! the line starts with `+`).

#![no_main]

#[path = "common.rs"]
mod common;

use std::collections::HashMap;

use ipvlan_hook::oci::Annotations;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut map = HashMap::new();
    for line in text.split('\n') {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let key = match key.strip_prefix('+') {
            Some(k) => format!("ipvlan.{k}"),
            None => key.to_string(),
        };
        map.insert(key, value.to_string());
    }
    let ours = map.keys().any(|k| k.starts_with("ipvlan."));
    match Annotations::parse(Some(&map)) {
        Ok(None) => assert!(!ours),
        Ok(Some(a)) => {
            assert!(ours);
            common::check_annotations(&a);
            common::build_annotation_network(&a);
            // Accepting is deterministic and ignores everything but ipvlan.* keys.
            map.retain(|k, _| k.starts_with("ipvlan."));
            assert_eq!(Annotations::parse(Some(&map)).ok().flatten(), Some(a));
        }
        Err(_) => assert!(ours),
    }
});
