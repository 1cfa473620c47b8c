fn main() {
    std::process::exit(ipvlan_hook::cli::main(std::env::args_os()));
}
