//! The bbr domain and its workflows.
//!
//! This crate knows what a deployment, an instance, a job and a release-author script are,
//! how jobs are ordered for locking, and how the backup, restore, pre-backup-check and
//! cleanup workflows proceed step by step, including every failure edge of Go bbr.
//!
//! It knows nothing of SSH, HTTP, terminals or command-line parsing: VMs are reached through
//! the [`remote::Remote`] trait, deployments are found through [`source::DeploymentSource`],
//! and everything the operator should see goes to a [`report::Reporter`].

pub mod artifact_location;
pub mod commands;
pub mod discovery;
pub mod error;
pub mod lock_order;
pub mod model;
pub mod remote;
pub mod report;
pub mod script;
pub mod source;
pub mod stop;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transfer;
pub mod workflow;

pub use error::{BbrError, ErrorKind, ErrorList};
pub use model::{Deployment, Instance, Job, ScriptKind};
pub use remote::{Output, Remote, RemoteError};
pub use report::{Level, Reporter};
pub use stop::StopSignal;

/// The directory on every VM under which artifacts are staged; its existence marks a
/// backup or restore in progress (or an interrupted one that needs `backup-cleanup`).
pub const ARTIFACT_DIRECTORY: &str = "/var/vcap/store/bbr-backup";
