//! The Ansible binary-module protocol, shared by both modules: the shell
//! ([`binary`]), the args file ([`args`], [`convert`]), the result's one
//! failure shape ([`output`]) and the run's API client ([`client`]).

pub mod args;
pub mod binary;
pub mod client;
pub mod convert;
pub mod output;
