//! `kbv3_volume`: a binary Ansible module for one Hetzner Cloud volume.
//! See `kbv3::module`.

fn main() -> std::process::ExitCode {
    kbv3::module::binary::main(kbv3::module::run, kbv3::module::schema)
}
