//! Run metrics for unattended runs (`bbr` backup/restore/prune, `service-backup`): a
//! Prometheus text-format file for node_exporter's textfile collector.
//!
//! One call, [`MetricsFile::record`], after each run:
//!
//! - reads the existing file and keeps every series that is not this run's: other jobs
//!   (`service_backup_*` beside `bbr_*`), other deployments and other commands;
//! - replaces this run's series (those of the job's families whose identity labels, e.g.
//!   `deployment` and `command`, equal the run's) with the new values;
//! - on a failed run keeps the previous `<prefix>_last_success_timestamp_seconds` (0 when there
//!   never was a success), so an alert on its age fires, while `last_run_timestamp_seconds`,
//!   `run_duration_seconds` and the exit code / success gauge are updated;
//! - writes the result atomically: a temporary file `.<name>.tmp-<pid>` in the same directory
//!   (not matching the collector's `*.prom`), mode 0644 whatever the umask, fsync, rename over
//!   the file, fsync of the directory. Writers serialise on an advisory `flock` of the
//!   directory, so two runs finishing at once do not lose each other's series.
//!
//! A file that cannot be read or written is a [`MetricsError`] naming it. An existing file
//! that does not parse (it was not written by this crate, or is damaged) is replaced by one
//! holding only this run's series, and [`Recorded::discarded`] says so: the caller logs a
//! warning; the run's own metrics are never lost to a bad file.
//!
//! All series are gauges with HELP and TYPE lines; values are written without timestamps.

#![warn(missing_docs)]

mod exposition;
mod file;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use exposition::ParseError;
use exposition::{Exposition, Family, LabelSet, valid_label_name, valid_metric_name};

/// Which program and command a run was: decides the metric prefix (`bbr_`,
/// `service_backup_`) and, for bbr, the `command` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// `bbr ... backup`: `command="backup"`.
    BbrBackup,
    /// `bbr ... restore`: `command="restore"`.
    BbrRestore,
    /// `bbr ... backup-cleanup`/prune: `command="prune"`.
    BbrPrune,
    /// A service-backup run (daemon or manual-backup); no `command` label.
    ServiceBackup,
}

impl Job {
    /// The metric name prefix, without the trailing `_`.
    pub fn prefix(self) -> &'static str {
        match self {
            Job::BbrBackup | Job::BbrRestore | Job::BbrPrune => "bbr",
            Job::ServiceBackup => "service_backup",
        }
    }

    /// The `command` label value, for bbr's jobs.
    pub fn command(self) -> Option<&'static str> {
        match self {
            Job::BbrBackup => Some("backup"),
            Job::BbrRestore => Some("restore"),
            Job::BbrPrune => Some("prune"),
            Job::ServiceBackup => None,
        }
    }

    fn program(self) -> &'static str {
        match self {
            Job::ServiceBackup => "service-backup",
            _ => "bbr",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A process exit code (bbr): written as `<prefix>_exit_code`; success iff 0.
    Exited(i32),
    /// Success without an exit code (a service-backup daemon run): `<prefix>_success 1`.
    Succeeded,
    /// Failure without an exit code: `<prefix>_success 0`.
    Failed,
}

impl Outcome {
    /// Whether the run succeeded.
    pub fn succeeded(self) -> bool {
        matches!(self, Outcome::Exited(0) | Outcome::Succeeded)
    }
}

/// A job-specific gauge: its name after the prefix and its HELP text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauge {
    /// The name after `<prefix>_`, e.g. `bytes_drained`.
    pub name: &'static str,
    /// The HELP text.
    pub help: &'static str,
}

/// The job-specific gauges of bbr and service-backup.
pub mod gauges {
    use super::Gauge;

    /// `bbr_bytes_drained` (backup).
    pub const BYTES_DRAINED: Gauge = Gauge {
        name: "bytes_drained",
        help: "Bytes of backup artifacts drained from the VMs by the last run.",
    };
    /// `bbr_bytes_restored` (restore).
    pub const BYTES_RESTORED: Gauge = Gauge {
        name: "bytes_restored",
        help: "Bytes of backup artifacts streamed to the VMs by the last run.",
    };
    /// `bbr_artifacts_kept` (prune).
    pub const ARTIFACTS_KEPT: Gauge = Gauge {
        name: "artifacts_kept",
        help: "Backup artifacts kept by the last prune.",
    };
    /// `bbr_artifacts_pruned` (prune).
    pub const ARTIFACTS_PRUNED: Gauge = Gauge {
        name: "artifacts_pruned",
        help: "Backup artifacts deleted by the last prune.",
    };
    /// `bbr_lock_held_seconds`: from the first lock to the last unlock.
    pub const LOCK_HELD_SECONDS: Gauge = Gauge {
        name: "lock_held_seconds",
        help: "Seconds from the first pre-backup-lock to the last post-backup-unlock of the last run.",
    };
    /// `service_backup_bytes_uploaded{destination="..."}`.
    pub const BYTES_UPLOADED: Gauge = Gauge {
        name: "bytes_uploaded",
        help: "Bytes the last run stored in each destination (0 when its upload to that destination failed).",
    };
}

/// One run's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetrics {
    /// When the run finished: `<prefix>_last_run_timestamp_seconds` (and the last success
    /// when it succeeded).
    pub finished_at: SystemTime,
    /// `<prefix>_run_duration_seconds`.
    pub duration: Duration,
    /// The exit code or success.
    pub outcome: Outcome,
    gauges: Vec<(Gauge, LabelSet, f64)>,
}

impl RunMetrics {
    /// A run that finished at `finished_at` after `duration`.
    pub fn new(finished_at: SystemTime, duration: Duration, outcome: Outcome) -> Self {
        RunMetrics {
            finished_at,
            duration,
            outcome,
            gauges: Vec::new(),
        }
    }

    /// Adds a job-specific gauge with the run's labels only.
    pub fn with_gauge(self, gauge: Gauge, value: f64) -> Self {
        self.with_labelled_gauge(gauge, &[], value)
    }

    /// Adds a job-specific gauge with extra labels (e.g. `destination`).
    pub fn with_labelled_gauge(
        mut self,
        gauge: Gauge,
        labels: &[(&str, &str)],
        value: f64,
    ) -> Self {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.gauges.push((gauge, labels, value));
        self
    }
}

/// Why the metrics file could not be updated.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The existing file (or its directory, for the lock) could not be read.
    #[error("cannot read the metrics file {}: {source}", path.display())]
    Read {
        /// The metrics file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The new file could not be written or moved into place.
    #[error("cannot write the metrics file {}: {source}", path.display())]
    Write {
        /// The metrics file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A label or gauge name is not valid in the format, or collides with another.
    #[error("metrics file {}: {reason}", path.display())]
    InvalidName {
        /// The metrics file.
        path: PathBuf,
        /// Which name, and what is wrong with it.
        reason: String,
    },
}

/// An existing file that did not parse and was replaced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the metrics file {} could not be read back ({error}); it was replaced and any other series it held are lost",
    path.display()
)]
pub struct CorruptFile {
    /// The metrics file.
    pub path: PathBuf,
    /// Where and why it did not parse.
    pub error: ParseError,
}

/// What [`MetricsFile::record`] did besides writing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use = "a replaced corrupt file should be reported as a warning"]
pub struct Recorded {
    /// Set when the existing file did not parse and was replaced (warn about it).
    pub discarded: Option<CorruptFile>,
}

/// A metrics file in a node_exporter textfile-collector directory (name it `*.prom`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsFile {
    path: PathBuf,
}

fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

impl MetricsFile {
    /// The file at `path` (not touched until [`MetricsFile::record`]).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        MetricsFile { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn invalid(&self, reason: String) -> MetricsError {
        MetricsError::InvalidName {
            path: self.path.clone(),
            reason,
        }
    }

    /// The run's identity labels: `labels` plus `command` for bbr's jobs, validated and sorted.
    fn identity(&self, job: Job, labels: &[(&str, &str)]) -> Result<LabelSet, MetricsError> {
        let mut identity: LabelSet = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(command) = job.command() {
            identity.push(("command".to_owned(), command.to_owned()));
        }
        identity.sort();
        for (i, (name, _)) in identity.iter().enumerate() {
            if !valid_label_name(name) {
                return Err(self.invalid(format!("invalid label name {name:?}")));
            }
            if identity[..i].iter().any(|(n, _)| n == name) {
                return Err(self.invalid(format!(
                    "label {name} given twice (bbr's jobs set `command` themselves)"
                )));
            }
        }
        Ok(identity)
    }

    /// Records one run of `job` for the series identified by `labels` (bbr:
    /// `[("deployment", name)]`; service-backup: none), merging with the existing file as the
    /// crate docs describe, and replaces the file atomically.
    pub fn record(
        &self,
        job: Job,
        labels: &[(&str, &str)],
        run: &RunMetrics,
    ) -> Result<Recorded, MetricsError> {
        let identity = self.identity(job, labels)?;
        let prefix = job.prefix();
        let program = job.program();
        let mut new: Vec<(String, String, LabelSet, f64)> = Vec::new();
        let finished = unix_seconds(run.finished_at);
        let mut base = |name: &str, help: String, value: f64| {
            new.push((format!("{prefix}_{name}"), help, identity.clone(), value));
        };
        base(
            "last_run_timestamp_seconds",
            format!("When the last {program} run finished (Unix time), successful or not."),
            finished,
        );
        base(
            "run_duration_seconds",
            format!("How long the last {program} run took."),
            run.duration.as_secs_f64(),
        );
        match run.outcome {
            Outcome::Exited(code) => base(
                "exit_code",
                format!("The exit code of the last {program} run (0: success)."),
                f64::from(code),
            ),
            Outcome::Succeeded | Outcome::Failed => base(
                "success",
                format!("Whether the last {program} run succeeded (1) or failed (0)."),
                if run.outcome.succeeded() { 1.0 } else { 0.0 },
            ),
        }
        for (gauge, extra, value) in &run.gauges {
            let name = format!("{prefix}_{}", gauge.name);
            if !valid_metric_name(&name) {
                return Err(self.invalid(format!("invalid metric name {name:?}")));
            }
            let mut labels = identity.clone();
            for (k, v) in extra {
                if !valid_label_name(k) {
                    return Err(self.invalid(format!("invalid label name {k:?} on {name}")));
                }
                if labels.iter().any(|(n, _)| n == k) {
                    return Err(self.invalid(format!("label {k} given twice on {name}")));
                }
                labels.push((k.clone(), v.clone()));
            }
            labels.sort();
            new.push((name, gauge.help.to_owned(), labels, *value));
        }

        file::update(&self.path, |existing| {
            let parsed = existing.map(|bytes| {
                std::str::from_utf8(bytes)
                    .map_err(|e| ParseError {
                        line: 0,
                        reason: format!("not UTF-8: {e}"),
                    })
                    .and_then(Exposition::parse)
            });
            let (mut exposition, discarded) = match parsed {
                None => (Exposition::default(), None),
                Some(Ok(e)) => (e, None),
                Some(Err(error)) => (
                    Exposition::default(),
                    Some(CorruptFile {
                        path: self.path.clone(),
                        error,
                    }),
                ),
            };
            let success_name = format!("{prefix}_last_success_timestamp_seconds");
            let previous_success = exposition
                .families
                .get(&success_name)
                .and_then(|f| f.samples.get(&identity))
                .copied();
            let last_success = if run.outcome.succeeded() {
                finished
            } else {
                previous_success.unwrap_or(0.0)
            };
            // Drop this run's old series (a destination no longer configured goes too).
            let family_prefix = format!("{prefix}_");
            for (name, family) in exposition.families.iter_mut() {
                if name.starts_with(&family_prefix) {
                    family
                        .samples
                        .retain(|labels, _| !identity.iter().all(|pair| labels.contains(pair)));
                }
            }
            let success_help = format!(
                "When the last successful {program} run finished (Unix time; 0: none recorded). A failed run leaves it as it was."
            );
            for (name, help, labels, value) in new.iter().cloned().chain([(
                success_name,
                success_help,
                identity.clone(),
                last_success,
            )]) {
                let family: &mut Family = exposition.families.entry(name).or_default();
                family.help = help;
                family.samples.insert(labels, value);
            }
            exposition.families.retain(|_, f| !f.samples.is_empty());
            (exposition.render(), Recorded { discarded })
        })
    }
}

#[cfg(test)]
mod tests;
