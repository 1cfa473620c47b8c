//! `network create` from arbitrary words: the input, split on whitespace, is the argument list
//! after `ipvlan-hook network create`; what clap accepts goes through `NetworkSpec::build`
//! exactly as the command does, and an accepted network must keep every promise.

#![no_main]

#[path = "common.rs"]
mod common;

use clap::Parser;
use ipvlan_hook::cli::{Cli, Command};
use ipvlan_hook::commands::network::NetworkCmd;
use ipvlan_hook::network::NetworkSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args = ["ipvlan-hook", "network", "create"]
        .into_iter()
        .chain(text.split_ascii_whitespace());
    let Ok(cli) = Cli::try_parse_from(args) else {
        return;
    };
    let Command::Network(NetworkCmd::Create(args)) = cli.command else {
        return;
    };
    if let Some(net) = NetworkSpec::try_from(args).ok().and_then(common::check_build) {
        let json = serde_json::to_vec_pretty(&net).expect("serialize");
        let back: ipvlan_hook::network::Network = serde_json::from_slice(&json).expect("re-read");
        assert_eq!(back, net);
    }
});
