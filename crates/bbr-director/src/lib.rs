//! The BOSH director side of `bbr deployment`.
//!
//! * [`target`]: the `--target` and `--ca-cert` arguments, parsed as bosh-cli does;
//! * [`client`]: the director API (basic auth or UAA client credentials, tasks, VMs,
//!   manifests, deployments, temporary SSH users), secrets kept out of every message;
//! * [`manifest`]: release names and `bbr.backup_one_restore_all` from v1 and v2 manifests;
//! * [`source`]: a [`bbr_core::source::DeploymentSource`] that discovers a deployment's
//!   instances through the director and reaches them over SSH with temporary users.

pub mod client;
pub mod manifest;
pub mod source;
pub mod target;

pub use client::{DirectorClient, DirectorError, SshHost, VmInfo};
pub use target::{CaCert, CaCertError, Target, TargetError};
