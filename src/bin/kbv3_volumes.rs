//! `kbv3_volumes`: a binary Ansible module that converges a whole fleet's
//! Hetzner Cloud volumes in one task. See `kbv3::volumes`.

fn main() -> std::process::ExitCode {
    kbv3::module::binary::main(kbv3::volumes::run, kbv3::volumes::schema)
}
