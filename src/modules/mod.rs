//! The two Ansible modules, peers on the shared reconcile core
//! ([`crate::reconcile`]): [`volume`] (`kbv3_volume`, one volume) and
//! [`volumes`] (`kbv3_volumes`, a whole fleet in one task), and the option
//! shapes they share ([`options`]).

pub mod options;
pub mod volume;
pub mod volumes;
