//! `kbv3`: the modules and the inventory tool in one static binary, run as
//! the tool it is named after. See `kbv3::multicall`.

fn main() -> std::process::ExitCode {
    kbv3::multicall::main()
}
