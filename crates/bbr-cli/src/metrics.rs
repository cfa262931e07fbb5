//! `--metrics-file PATH` of backup, restore and `bbr artifact prune`: after the run, success
//! or failure, its series are merged into the Prometheus text file by [`bbr_metrics`] (one
//! series per deployment and command; a failed run keeps the last-success timestamp). A file
//! that cannot be written is a warning on stderr, never a failed run; the path's directory
//! was checked before the run ([`crate::resolve::metrics_file`]).

use bbr_metrics::{Gauge, Job, MetricsFile, Outcome, RunMetrics};
use std::path::Path;
use std::time::{Instant, SystemTime};

/// Records one run of `job` for `deployment` that started at `started` and exits `code`,
/// with `gauges`. Blocking (file lock, fsync): call from a blocking thread.
pub fn record(
    path: &Path,
    job: Job,
    deployment: &str,
    started: Instant,
    code: i32,
    gauges: &[(Gauge, f64)],
) {
    let mut metrics = RunMetrics::new(SystemTime::now(), started.elapsed(), Outcome::Exited(code));
    for (gauge, value) in gauges {
        metrics = metrics.with_gauge(*gauge, *value);
    }
    match MetricsFile::new(path).record(job, &[("deployment", deployment)], &metrics) {
        Ok(recorded) => {
            if let Some(corrupt) = recorded.discarded {
                warn(&corrupt.to_string());
            }
        }
        Err(e) => warn(&format!("{e}; the run's metrics were not recorded")),
    }
}

/// [`record`] from async code (on a blocking thread).
pub async fn record_async(
    path: &Path,
    job: Job,
    deployment: &str,
    started: Instant,
    code: i32,
    gauges: Vec<(Gauge, f64)>,
) {
    let path = path.to_path_buf();
    let deployment = deployment.to_string();
    let _ = tokio::task::spawn_blocking(move || {
        record(&path, job, &deployment, started, code, &gauges)
    })
    .await;
}

fn warn(text: &str) {
    eprintln!("Warning: {text}");
}
