//! Lock ordering by Kahn's algorithm: jobs are grouped into levels such that every job a
//! job "should be locked before" is in a later level. Lock runs levels in order, unlock in
//! reverse. A cycle is an error.

use crate::model::{Instance, Job, JobMetadata};
use std::sync::Arc;

/// Which ordering list of the metadata applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `backup_should_be_locked_before`.
    Backup,
    /// `restore_should_be_locked_before`.
    Restore,
}

/// The error for a cyclic ordering.
pub const CYCLIC: &str = "job locking dependency graph is cyclic";

/// The ordering lists of the jobs form a cycle: no job can be locked first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", CYCLIC)]
pub struct CyclicOrder;

/// One (instance, job) to be ordered.
pub type InstanceJob = (Arc<Instance>, Job);

/// Orders `jobs` into levels. Every entry `{job_name, release}` in a job's ordering list adds
/// an edge to every job (on any instance) with that name and release; entries naming absent
/// jobs are ignored. Within a level, the input order is kept.
pub fn order(jobs: &[InstanceJob], phase: Phase) -> Result<Vec<Vec<InstanceJob>>, CyclicOrder> {
    let n = jobs.len();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut incoming = vec![0usize; n];
    for (from, (_, job)) in jobs.iter().enumerate() {
        let before = match phase {
            Phase::Backup => &job.metadata.backup_should_be_locked_before,
            Phase::Restore => &job.metadata.restore_should_be_locked_before,
        };
        for entry in before {
            for (to, (_, other)) in jobs.iter().enumerate() {
                if other.name == entry.job_name
                    && other.release == entry.release
                    && !edges[from].contains(&to)
                {
                    edges[from].push(to);
                    incoming[to] += 1;
                }
            }
        }
    }
    let mut done = vec![false; n];
    let mut remaining = n;
    let mut levels = Vec::new();
    while remaining > 0 {
        let level: Vec<usize> = (0..n).filter(|&i| !done[i] && incoming[i] == 0).collect();
        if level.is_empty() {
            return Err(CyclicOrder);
        }
        for &i in &level {
            done[i] = true;
            remaining -= 1;
            for &to in &edges[i] {
                incoming[to] -= 1;
            }
        }
        levels.push(level.into_iter().map(|i| jobs[i].clone()).collect());
    }
    Ok(levels)
}

/// The order-detection log lines for one job's metadata, as Go bbr logs them while it reads
/// the metadata: every backup entry, then every restore entry (an empty release prints only
/// the job name).
pub fn detected_order_lines(job_name: &str, metadata: &JobMetadata) -> Vec<String> {
    let phases = [
        (&metadata.backup_should_be_locked_before, "backup"),
        (&metadata.restore_should_be_locked_before, "restore"),
    ];
    let mut lines = Vec::new();
    for (list, word) in phases {
        for e in list {
            let target = if e.release.is_empty() {
                e.job_name.clone()
            } else {
                format!("{}/{}", e.release, e.job_name)
            };
            lines.push(format!(
                "Detected order: {job_name} should be locked before {target} during {word}"
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobMetadata, LockBefore};
    use crate::remote::{Output, Remote, RemoteError, StdoutSink};
    use std::collections::BTreeMap;

    struct Nowhere;

    #[async_trait::async_trait]
    impl Remote for Nowhere {
        fn address(&self) -> &str {
            "nowhere"
        }
        async fn run(&self, _: &str) -> Result<Output, RemoteError> {
            unreachable!()
        }
        async fn run_streaming_stdout(
            &self,
            _: &str,
            _: &mut StdoutSink<'_>,
        ) -> Result<Output, RemoteError> {
            unreachable!()
        }
        async fn run_with_stdin(
            &self,
            _: &str,
            _: Box<dyn std::io::Read + Send>,
        ) -> Result<Output, RemoteError> {
            unreachable!()
        }
    }

    fn job(name: &str, release: &str, before: &[(&str, &str)]) -> Job {
        Job {
            name: name.into(),
            release: release.into(),
            scripts: BTreeMap::new(),
            metadata: JobMetadata {
                backup_should_be_locked_before: before
                    .iter()
                    .map(|(j, r)| LockBefore {
                        job_name: j.to_string(),
                        release: r.to_string(),
                    })
                    .collect(),
                ..Default::default()
            },
            backup_one_restore_all: false,
            on_bootstrap: false,
        }
    }

    fn on(group: &str, jobs: Vec<Job>) -> Vec<InstanceJob> {
        let i = Arc::new(Instance::new(group, "0", "0", vec![], Arc::new(Nowhere)));
        jobs.into_iter().map(|j| (i.clone(), j)).collect()
    }

    fn names(levels: &[Vec<InstanceJob>]) -> Vec<Vec<String>> {
        levels
            .iter()
            .map(|l| {
                l.iter()
                    .map(|(i, j)| format!("{}/{}", i.group, j.name))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn no_jobs_no_levels() {
        assert!(order(&[], Phase::Backup).unwrap().is_empty());
    }

    #[test]
    fn independent_jobs_share_a_level() {
        let jobs = on("a", vec![job("x", "r", &[]), job("y", "r", &[])]);
        assert_eq!(
            names(&order(&jobs, Phase::Backup).unwrap()),
            vec![vec!["a/x", "a/y"]]
        );
    }

    #[test]
    fn chained_dependencies_across_instances() {
        let mut jobs = on("a", vec![job("x", "r", &[("y", "r")])]);
        jobs.extend(on("b", vec![job("y", "r", &[("z", "r")])]));
        jobs.extend(on("c", vec![job("z", "r", &[])]));
        jobs.extend(on("d", vec![job("y", "r", &[])]));
        assert_eq!(
            names(&order(&jobs, Phase::Backup).unwrap()),
            vec![vec!["a/x"], vec!["b/y", "d/y"], vec!["c/z"]]
        );
    }

    #[test]
    fn release_must_match_and_absent_jobs_are_ignored() {
        let jobs = on(
            "a",
            vec![
                job("x", "r", &[("y", "other"), ("ghost", "r")]),
                job("y", "r", &[]),
            ],
        );
        assert_eq!(
            names(&order(&jobs, Phase::Backup).unwrap()),
            vec![vec!["a/x", "a/y"]]
        );
    }

    #[test]
    fn cycles_are_refused() {
        let jobs = on(
            "a",
            vec![job("x", "r", &[("y", "r")]), job("y", "r", &[("x", "r")])],
        );
        let err = order(&jobs, Phase::Backup).unwrap_err();
        assert_eq!(err, CyclicOrder);
        assert_eq!(err.to_string(), CYCLIC);
        // restore ordering is independent of backup ordering
        assert_eq!(order(&jobs, Phase::Restore).unwrap().len(), 1);
    }

    #[test]
    fn detected_order_lines_join_release_backup_first() {
        let metadata = JobMetadata {
            backup_should_be_locked_before: vec![
                LockBefore {
                    job_name: "y".into(),
                    release: "r".into(),
                },
                LockBefore {
                    job_name: "y".into(),
                    release: String::new(),
                },
            ],
            restore_should_be_locked_before: vec![LockBefore {
                job_name: "w".into(),
                release: "r".into(),
            }],
            ..Default::default()
        };
        assert_eq!(
            detected_order_lines("x", &metadata),
            vec![
                "Detected order: x should be locked before r/y during backup",
                "Detected order: x should be locked before y during backup",
                "Detected order: x should be locked before r/w during restore",
            ]
        );
    }
}
