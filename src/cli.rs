//! The command line: clap definitions and dispatch. `ipvlan-run ARGS` is `ipvlan-hook run ARGS`;
//! without arguments and with `CNI_COMMAND` set, the CNI plugin (commands/cni.rs).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::hook::{self, Stage};
use crate::commands::run::{self, RunArgs};
use crate::commands::{doctor, examples, gc, lease, network};
use crate::dirs::{self, Dirs};
use crate::error::Result;

#[derive(Parser, Debug)]
#[command(
    name = "ipvlan-hook",
    version,
    about = "Attach containers to ipvlan networks, Docker-style: an OCI runtime hook and a launcher",
    after_help = examples::ROOT
)]
pub struct Cli {
    /// Where network definitions and the policy live.
    #[arg(
        long,
        global = true,
        env = dirs::CONFIG_ENV,
        default_value = dirs::DEFAULT_CONFIG
    )]
    pub config_dir: PathBuf,
    /// Where leases and locks live.
    #[arg(
        long,
        global = true,
        env = dirs::STATE_ENV,
        default_value = dirs::DEFAULT_STATE
    )]
    pub state_dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// OCI hook: reads the container state on stdin.
    #[command(after_help = examples::HOOK)]
    Hook {
        #[arg(value_enum)]
        stage: Stage,
    },
    /// Define, remove and list networks.
    #[command(
        subcommand,
        after_help = examples::NETWORK,
        mut_subcommands = examples::network
    )]
    Network(network::NetworkCmd),
    /// Show leases.
    #[command(
        subcommand,
        after_help = examples::LEASE,
        mut_subcommands = examples::lease
    )]
    Lease(lease::LeaseCmd),
    /// Release the leases of containers that no longer exist; make missing host-access links
    /// and container routes again.
    #[command(after_help = examples::GC)]
    Gc {
        /// Only list what would be released (and repair nothing).
        #[arg(long)]
        dry_run: bool,
    },
    /// Run a command in a new network namespace attached to a network.
    #[command(after_help = examples::RUN)]
    Run(RunArgs),
    /// Check that this host is ready: kernel support, networks, directories, hooks.d files, CNI.
    #[command(after_help = examples::DOCTOR)]
    Doctor(doctor::DoctorArgs),
}

/// Parse, dispatch, and return the process exit status.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    // A CNI runtime runs the plugin without arguments and says what to do in CNI_COMMAND; a
    // command line always has a subcommand, so neither door can be taken for the other.
    if args.len() == 1 && std::env::var_os("CNI_COMMAND").is_some() {
        return crate::commands::cni::main();
    }
    if let Some((stage, dirs)) = hook_args(&args) {
        return finish(hook::run(stage, &dirs, std::io::stdin().lock()).map(|()| 0));
    }
    let cli = Cli::parse_from(args);
    let dirs = Dirs {
        config: cli.config_dir,
        state: cli.state_dir,
    };
    let result: Result<i32> = match cli.command {
        Command::Hook { stage } => hook::run(stage, &dirs, std::io::stdin().lock()).map(|()| 0),
        Command::Network(cmd) => network::run(cmd, &dirs).map(|()| 0),
        Command::Lease(cmd) => lease::run(cmd, &dirs).map(|()| 0),
        Command::Gc { dry_run } => gc::run(dry_run, &dirs).map(|()| 0),
        Command::Run(args) => run::run(args, &dirs),
        Command::Doctor(args) => doctor::run(args, &dirs),
    };
    finish(result)
}

/// `hook STAGE`, the command runtimes run at every container start and stop, read without
/// clap: building clap's whole command tree cost a hook with nothing to do a tenth of its time
/// (docs/benchmark-notes.md). Anything else, including a directory variable set but empty
/// (which the command line refuses), goes through clap.
fn hook_args(args: &[std::ffi::OsString]) -> Option<(Stage, Dirs)> {
    let [_, command, stage] = args else {
        return None;
    };
    if command != "hook" {
        return None;
    }
    let stage = <Stage as clap::ValueEnum>::from_str(stage.to_str()?, false).ok()?;
    let dirs = Dirs {
        config: dirs::from_env(dirs::CONFIG_ENV, dirs::DEFAULT_CONFIG)?,
        state: dirs::from_env(dirs::STATE_ENV, dirs::DEFAULT_STATE)?,
    };
    Some((stage, dirs))
}

/// The exit status of a command's result; an error goes to stderr.
fn finish(result: Result<i32>) -> i32 {
    result.unwrap_or_else(|e| {
        crate::log_line(&format!("ipvlan-hook: {e}\n"));
        1
    })
}
