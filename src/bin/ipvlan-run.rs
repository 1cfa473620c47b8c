//! `ipvlan-run ARGS` behaves exactly as `ipvlan-hook run ARGS`.
fn main() {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    args.splice(0..1.min(args.len()), ["ipvlan-hook".into(), "run".into()]);
    std::process::exit(ipvlan_hook::cli::main(args));
}
