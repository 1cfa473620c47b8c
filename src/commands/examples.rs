//! The examples every `--help` ends with (clap's `after_help`), kept together so they read as
//! one set. tests/docs.rs checks that every command has one, and puts them in the man pages.

use clap::Command;

/// The examples of a `network` subcommand, unless its definition has its own.
pub fn network(cmd: Command) -> Command {
    let text = match cmd.get_name() {
        "rm" => NETWORK_RM,
        "ls" => NETWORK_LS,
        "inspect" => NETWORK_INSPECT,
        "connect" => NETWORK_CONNECT,
        "disconnect" => NETWORK_DISCONNECT,
        _ => return cmd,
    };
    with_default(cmd, text)
}

/// The examples of a `lease` subcommand, unless its definition has its own.
pub fn lease(cmd: Command) -> Command {
    let text = match cmd.get_name() {
        "ls" => LEASE_LS,
        "drain" => LEASE_DRAIN,
        _ => return cmd,
    };
    with_default(cmd, text)
}

fn with_default(cmd: Command, text: &'static str) -> Command {
    if cmd.get_after_help().is_some() {
        cmd
    } else {
        cmd.after_help(text)
    }
}

pub const ROOT: &str = "Examples:
  ipvlan-hook network create db_net --parent eth0 --subnet 192.168.1.0/24
  podman run --rm --network none --annotation ipvlan.network=db_net IMAGE ip addr
  podman run --rm --network none --annotation ipvlan.networks=web,db IMAGE ip addr
  ipvlan-run --network db_net -- ip addr
  ipvlan-hook lease ls
  ipvlan-hook doctor

See ipvlan-hook(8), ipvlan-run(8) and ipvlan-hook(5).";

pub const HOOK: &str = "Examples (a runtime runs it, with the container state on stdin):
  \"args\": [\"ipvlan-hook\", \"hook\", \"createRuntime\"]      # in a hooks.d file
  ipvlan-hook hook poststop < state.json    # by hand: release what it held";

pub const NETWORK: &str = "Examples:
  ipvlan-hook network create db_net --parent eth0 --subnet 192.168.1.0/24
  ipvlan-hook network ls
  ipvlan-hook network inspect db_net
  ipvlan-hook network rm db_net";

pub const NETWORK_RM: &str = "Examples:
  ipvlan-hook network rm vlan20               # also deletes eth0.20 if the network created it
  ipvlan-hook network rm --force db_net       # even while containers hold leases on it";

pub const NETWORK_LS: &str = "Examples:
  ipvlan-hook network ls
  ipvlan-hook network ls --format json | jq -r '.[].name'";

pub const NETWORK_INSPECT: &str = "Examples:
  ipvlan-hook network inspect db_net
  ipvlan-hook network inspect db_net vlan20 | jq '.[].subnets'";

pub const NETWORK_CONNECT: &str = "Examples:
  ip netns add blue
  ipvlan-hook network connect vlan20 --netns blue --id blue
  ipvlan-hook network connect vlan30 --netns blue --id blue --ifname eth1 --ip 192.168.30.9
  ipvlan-hook network connect vlan20 --pid 4242 --id nspawn-web     # a process's netns";

pub const NETWORK_DISCONNECT: &str = "Examples:
  ipvlan-hook network disconnect vlan30 --id blue --ifname eth1
  ipvlan-hook network disconnect vlan20 --id blue      # every interface of blue on vlan20";

pub const LEASE: &str = "Examples:
  ipvlan-hook lease ls
  ipvlan-hook lease ls db_net --format json";

pub const LEASE_LS: &str = "Examples:
  ipvlan-hook lease ls                        # every network; STATE stale = container gone
  ipvlan-hook lease ls db_net --format json";

pub const LEASE_DRAIN: &str = "Examples:
  ipvlan-hook lease drain --host node7 --dry-run    # what node7 holds in etcd
  ipvlan-hook lease drain --host node7              # node7 is gone for good";

pub const GC: &str = "Examples:
  ipvlan-hook gc --dry-run                    # list the leases of containers that are gone
  ipvlan-hook gc";

pub const RUN: &str = "Examples:
  ipvlan-run --network db_net -- ip addr
  ipvlan-run --network db_net --ip 192.168.1.50 --name job1 -- ./server
  ipvlan-run --net web:ip=192.168.20.9 --net db:interface_name=db0,gw_priority=-1 -- ip route
  ipvlan-run --subnet 192.168.77.0/24 -- ip addr          # isolated, on a dummy link
  ipvlan-run --parent eth0 --mode l3 --subnet 10.1.100.0/24 -- ping -c1 10.1.100.1";

pub const DOCTOR: &str = "Examples:
  ipvlan-hook doctor
  ipvlan-hook doctor --format json
  ipvlan-hook doctor --hooks-dir /etc/crio/hooks.d    # another hooks.d directory

Exits 1 when a check fails; WARN rows do not fail.";
