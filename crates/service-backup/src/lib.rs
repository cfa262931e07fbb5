//! A Rust re-implementation of pivotal-cf **service-backup**: a daemon that, on a robfig/cron
//! schedule, runs a prepare command, uploads a local folder to one or more destinations (S3,
//! Azure Blob, GCS, SCP) under a dated path, runs a cleanup command, and alerts through CF
//! Notifications on failure; plus `manual-backup`, which does one run and exits.
//!
//! Compatibility: same YAML config, same lager JSON log lines (texts, prefixes, data keys,
//! both formats), same remote layout and exit codes. Deliberate improvements: the config is
//! validated at startup; the `exit_if_in_progress` gate works across processes (a lock file in
//! a state directory); children run in their own process groups and are terminated with a
//! bound; uploads are cancellable; prepare/cleanup output is logged, with secrets redacted.
//!
//! Modules, in the order a run touches them:
//!
//! - [`config`]: the YAML file and its validation;
//! - [`cron`] (+ [`duration`]): robfig/cron v3 schedules;
//! - [`lager`]: the JSON log formats, sessions and redaction;
//! - [`state`]: the state directory and the cross-process run lock;
//! - [`process`]: child processes in process groups;
//! - [`remote_path`]: dated remote paths;
//! - [`upload`]: the uploader interface, the multi-uploader and the folder walk;
//! - [`destination`]: S3 / Azure / GCS / SCP adapters over `bbr-storage`;
//! - [`executor`]: one backup run;
//! - [`alerts`]: CF Notifications alerts;
//! - [`scheduler`]: the daemon's cron loop;
//! - [`app`]: the two programs' startup and shutdown.

#![warn(missing_docs)]

pub mod alerts;
pub mod app;
pub mod config;
pub mod cron;
pub mod destination;
/// Go's `time.ParseDuration`, shared with `bbr` (it lives in `bbr-gocompat`).
pub use bbr_gocompat::duration;
pub mod executor;
pub mod lager;
pub mod process;
pub mod remote_path;
pub mod scheduler;
pub mod state;
pub mod upload;

#[cfg(test)]
#[path = "../tests/common/http.rs"]
mod test_http;

/// Installs the process-wide rustls crypto provider (aws-lc-rs) once; harmless if another
/// crate already did.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
