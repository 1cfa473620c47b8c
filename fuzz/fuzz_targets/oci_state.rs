//! The hook's stdin: arbitrary bytes as the OCI state, then its `ipvlan.*` annotations, then
//! the annotation-only network the hook would build from them. Errors are fine; a panic, or an
//! accepted input that breaks a promise (a container id that is not one safe path component,
//! an unchecked annotation value), is a bug.

#![no_main]

#[path = "common.rs"]
mod common;

use ipvlan_hook::fsutil::check_name;
use ipvlan_hook::oci::{Annotations, State, netns_path, validate_container_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = State::read(data) else {
        return;
    };
    let id = state.id();
    assert!(!id.is_empty() && id.len() <= 255, "id {id:?}");
    assert!(id != "." && id != ".." && !id.starts_with('.'), "id {id:?}");
    assert!(!id.contains(['/', '\0']), "id {id:?}");
    assert!(id.bytes().all(|b| b.is_ascii_graphic()), "id {id:?}");
    assert!(validate_container_id(id).is_ok());
    // The lease store's own check must accept every id the hook accepts.
    assert!(check_name("container id", id).is_ok(), "id {id:?}");

    match state.live_pid() {
        Some(pid) => {
            assert!(pid > 0 && state.pid().map(i64::from) == Some(i64::from(pid)));
            let path = netns_path(&state, None).expect("a live pid names a netns");
            assert_eq!(
                path,
                std::path::PathBuf::from(format!("/proc/{pid}/ns/net"))
            );
        }
        None => {
            assert!(state.pid().is_none_or(|p| p <= 0));
            assert!(netns_path(&state, None).is_err());
        }
    }
    // (precreated_netns reads the bundle's config.json from the path the input names: left to
    // the integration tests, a fuzzer must not read arbitrary files.)

    let ours = state
        .annotations()
        .is_some_and(|m| m.keys().any(|k| k.starts_with("ipvlan.")));
    match Annotations::parse(state.annotations()) {
        Ok(None) => assert!(!ours, "ipvlan.* annotations ignored"),
        Ok(Some(a)) => {
            assert!(ours);
            common::check_annotations(&a);
            common::build_annotation_network(&a);
        }
        Err(e) => {
            assert!(ours, "error without an ipvlan.* annotation: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
});
