//! One static binary for every shipped tool. It runs as the tool it is named
//! after (`kbv3_volume`, `kbv3_volumes`, `kbv3_inventory`, or the
//! collection's `volume`, `volumes`); under any other name, the first argument
//! names the tool (`kbv3 inventory --list`), or a module's args name it
//! (`_ansible_module_name`, which Ansible always sends).

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::ansible::binary::{self, Module};

/// A tool the binary can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// The `kbv3_volume` module.
    Volume,
    /// The `kbv3_volumes` module.
    Volumes,
    /// The inventory script and PH3-01 commands.
    Inventory,
}

impl Tool {
    /// The tool a program or module name means: the repository's names, the
    /// collection's short names, FQCNs (`kbv3.hcloud.volumes`), and the
    /// names Ansible gives a module it copies (`AnsiballZ_kbv3_volumes`).
    pub fn named(name: &str) -> Option<Tool> {
        let name = name.strip_prefix("AnsiballZ_").unwrap_or(name);
        let short = match name.rsplit_once('.') {
            Some(("kbv3.hcloud", short)) => short,
            Some(_) => return None,
            None => name,
        };
        match short.strip_prefix("kbv3_").unwrap_or(short) {
            "volume" => Some(Tool::Volume),
            "volumes" => Some(Tool::Volumes),
            "inventory" => Some(Tool::Inventory),
            _ => None,
        }
    }

    fn module(self) -> Option<Module> {
        match self {
            Tool::Volume => Some(Module {
                run: crate::modules::volume::run,
                schema: crate::modules::volume::schema,
            }),
            Tool::Volumes => Some(Module {
                run: crate::modules::volumes::run,
                schema: crate::modules::volumes::schema,
            }),
            Tool::Inventory => None,
        }
    }
}

/// Runs the tool this binary was called as.
pub fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let called = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .and_then(Tool::named);
    let tool = called.or_else(|| {
        let named = args.get(1).and_then(|a| a.to_str()).and_then(Tool::named);
        if named.is_some() {
            args.remove(0);
        }
        named
    });
    match tool {
        Some(Tool::Inventory) => inventory(args),
        // Without a name, Ansible's args name the module (`_ansible_module_name`).
        module => binary::main(
            module.and_then(Tool::module),
            args.get(1).map(OsString::as_os_str),
            module_named,
        ),
    }
}

fn module_named(name: &str) -> Option<Module> {
    Tool::named(name).and_then(Tool::module)
}

fn inventory(args: Vec<OsString>) -> ExitCode {
    let env = crate::hcloud::Environment::read();
    match crate::fleet::cli::run(crate::fleet::cli::Cli::parse_from(args), &env) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kbv3_inventory: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tool;

    #[test]
    fn names_mean_tools() {
        for (name, tool) in [
            ("kbv3_volume", Some(Tool::Volume)),
            ("volume", Some(Tool::Volume)),
            ("kbv3.hcloud.volume", Some(Tool::Volume)),
            ("kbv3_volumes", Some(Tool::Volumes)),
            ("kbv3.hcloud.volumes", Some(Tool::Volumes)),
            ("kbv3_inventory", Some(Tool::Inventory)),
            ("AnsiballZ_kbv3_volumes", Some(Tool::Volumes)),
            ("AnsiballZ_volume", Some(Tool::Volume)),
            ("inventory", Some(Tool::Inventory)),
            ("kbv3", None),
            ("hetzner.hcloud.volume", None),
            ("", None),
        ] {
            assert_eq!(Tool::named(name), tool, "{name}");
        }
    }
}
