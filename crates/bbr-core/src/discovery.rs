//! Finding the jobs of an instance: `find` the scripts under `/var/vcap/jobs/*/bin/bbr/`,
//! group them by job, run every `metadata` script and apply what it says.

use crate::commands;
use crate::error::BbrError;
use crate::lock_order;
use crate::model::{Job, JobMetadata, ScriptKind};
use crate::remote::{Remote, RootCommandError, run_as_root_checked};
use crate::report::{Reporter, ReporterExt};
use crate::script::{Capture, Script, ScriptLimits, run_script};
use std::collections::BTreeMap;

/// Most stdout read from a `metadata` script: a few lines of YAML are expected, and bbr keeps
/// them whole to parse them; a script writing more is stopped and its job fails.
pub const METADATA_OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

/// Jobs that bbr ignores entirely (legacy cf-mysql).
pub const IGNORED_JOBS: [&str; 2] = ["mysql-backup", "mysql-restore"];

/// Classifies one path printed by `find`: `Some((job, kind))` when it is
/// `/var/vcap/jobs/<job>/bin/bbr/<one of the seven names>`.
pub fn classify_script_path(path: &str) -> Option<(String, ScriptKind)> {
    let rest = path.strip_prefix("/var/vcap/jobs/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [job, "bin", "bbr", name] if !job.is_empty() => {
            ScriptKind::from_file_name(name).map(|k| (job.to_string(), k))
        }
        _ => None,
    }
}

/// The scripts found on an instance, by job, before metadata is applied.
pub type FoundScripts = BTreeMap<String, BTreeMap<ScriptKind, String>>;

/// Runs the script `find` on `remote`; `instance` names the instance in errors and logs.
pub async fn find_scripts(
    remote: &dyn Remote,
    instance: &str,
    reporter: &dyn Reporter,
) -> Result<FoundScripts, BbrError> {
    reporter.debug(format!("Attempting to find scripts on {instance}"));
    let mut found = FoundScripts::new();
    let out = match run_as_root_checked(remote, &commands::find_scripts()).await {
        Ok(out) => out,
        Err(RootCommandError::Exit(e)) if e.stderr.contains("No such file or directory") => {
            reporter.debug("No files found for pattern '/var/vcap/jobs/*/bin/bbr/*'");
            return Ok(found);
        }
        Err(e) => {
            let hint = match &e {
                RootCommandError::Exit(exit) => sudo_hint(&exit.stderr),
                RootCommandError::Remote(_) => "",
            };
            return Err(BbrError::general(format!(
                "finding scripts failed on {instance}: {e}{hint}"
            )));
        }
    };
    for line in out.stdout_text().lines() {
        let Some((job, kind)) = classify_script_path(line.trim()) else {
            continue;
        };
        if IGNORED_JOBS.contains(&job.as_str()) {
            continue;
        }
        // The job name becomes part of artifact file names and remote directories.
        bbr_artifact::naming::check_safe_name("job name", &job, &format!("found on {instance}"))
            .map_err(|e| BbrError::general(e.to_string()))?;
        reporter.info(format!("{instance}/{job}/{}", kind.file_name()));
        found
            .entry(job)
            .or_default()
            .insert(kind, line.trim().to_string());
    }
    Ok(found)
}

/// A hint appended to errors whose stderr shows that sudo wants a password.
pub fn sudo_hint(stderr: &str) -> &'static str {
    if stderr.contains("sudo:") && (stderr.contains("password") || stderr.contains("tty")) {
        " (the SSH user needs password-less sudo on the VM)"
    } else {
        ""
    }
}

/// Options of job discovery.
pub struct DiscoveryOptions<'a> {
    /// The bbr version given to metadata scripts as `BBR_VERSION`.
    pub bbr_version: &'a str,
    /// Director mode: ordering entries match by job name only.
    pub omit_releases: bool,
    /// Time limit for metadata scripts.
    pub limits: ScriptLimits,
    /// Release of each job name (deployment mode); missing names get "".
    pub releases: BTreeMap<String, String>,
}

/// Builds the jobs of an instance from its found scripts: runs each `metadata` script,
/// logs the lock order it declares and warns about discontinued keys, drops disabled jobs.
pub async fn load_jobs(
    remote: &dyn Remote,
    instance: &str,
    found: &FoundScripts,
    options: &DiscoveryOptions<'_>,
    reporter: &dyn Reporter,
) -> Result<Vec<Job>, BbrError> {
    let mut jobs = Vec::new();
    let mut disabled = Vec::new();
    for (name, scripts) in found {
        let metadata = match scripts.get(&ScriptKind::Metadata) {
            None => JobMetadata::default(),
            Some(path) => {
                let env = [("BBR_VERSION", options.bbr_version.to_string())];
                let script = Script {
                    job: name,
                    instance,
                    path,
                    env: &env,
                    capture: Capture::Whole {
                        limit: METADATA_OUTPUT_LIMIT,
                    },
                };
                let out = run_script(remote, &script, &options.limits, reporter)
                    .await
                    .map_err(|e| {
                        BbrError::general(format!(
                            "An error occurred while running metadata script for job {name} on {instance}: {e}"
                        ))
                    })?;
                JobMetadata::parse(
                    &String::from_utf8_lossy(&out.stdout.bytes()),
                    options.omit_releases,
                )
                .map_err(|e| {
                    BbrError::general(format!(
                        "Parsing metadata from job {name} on {instance} failed: {e}"
                    ))
                })?
            }
        };
        // Logged as the metadata is read, for disabled jobs too, as Go bbr does.
        for line in lock_order::detected_order_lines(name, &metadata) {
            reporter.info(line);
        }
        if metadata.backup_name.is_some() || metadata.restore_name.is_some() {
            reporter.warn(format!(
                "discontinued metadata keys backup_name/restore_name found in job {name}. bbr will not be able to restore this backup artifact."
            ));
        }
        if metadata.skip_bbr_scripts {
            disabled.push(name.clone());
            continue;
        }
        jobs.push(Job {
            name: name.clone(),
            release: options.releases.get(name).cloned().unwrap_or_default(),
            scripts: scripts.clone(),
            metadata,
            backup_one_restore_all: false,
            on_bootstrap: false,
        });
    }
    if !disabled.is_empty() {
        reporter.debug(format!(
            "Found disabled jobs on instance {instance} jobs: {}",
            disabled.join(" ")
        ));
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_only_the_seven_scripts_one_level_deep() {
        assert_eq!(
            classify_script_path("/var/vcap/jobs/bosh/bin/bbr/backup"),
            Some(("bosh".into(), ScriptKind::Backup))
        );
        assert_eq!(
            classify_script_path("/var/vcap/jobs/x/bin/bbr/post-restore-unlock"),
            Some(("x".into(), ScriptKind::PostRestoreUnlock))
        );
        assert_eq!(
            classify_script_path("/var/vcap/jobs/x/bin/bbr/backup.bak"),
            None
        );
        assert_eq!(
            classify_script_path("/var/vcap/jobs/x/bin/bbr/sub/backup"),
            None
        );
        assert_eq!(classify_script_path("/var/vcap/jobs/x/bin/backup"), None);
        assert_eq!(classify_script_path("/other/jobs/x/bin/bbr/backup"), None);
    }

    struct Lists(&'static str);

    #[async_trait::async_trait]
    impl Remote for Lists {
        fn address(&self) -> &str {
            "lists"
        }
        async fn run(&self, _: &str) -> Result<crate::remote::Output, crate::remote::RemoteError> {
            Ok(crate::remote::Output {
                exit_code: 0,
                stdout: self.0.as_bytes().to_vec(),
                stderr: Vec::new(),
            })
        }
        async fn run_streaming_stdout(
            &self,
            _: &str,
            _: &mut crate::remote::StdoutSink<'_>,
        ) -> Result<crate::remote::Output, crate::remote::RemoteError> {
            unreachable!()
        }
        async fn run_with_stdin(
            &self,
            _: &str,
            _: Box<dyn std::io::Read + Send>,
        ) -> Result<crate::remote::Output, crate::remote::RemoteError> {
            unreachable!()
        }
    }

    #[tokio::test]
    async fn a_job_name_that_is_not_a_single_component_is_refused() {
        let reporter = crate::report::MemoryReporter::default();
        let ok = find_scripts(
            &Lists("/var/vcap/jobs/a/bin/bbr/backup\n"),
            "g/0",
            &reporter,
        )
        .await
        .unwrap();
        assert!(ok.contains_key("a"));
        let listing = "/var/vcap/jobs/a/bin/bbr/backup\n/var/vcap/jobs/../bin/bbr/backup\n";
        let e = find_scripts(&Lists(listing), "g/0", &reporter)
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            "job name '..' found on g/0 is not a safe file name (it is a relative directory reference)"
        );
    }

    #[test]
    fn sudo_hints() {
        assert!(!sudo_hint("sudo: a password is required").is_empty());
        assert!(sudo_hint("find: nope").is_empty());
    }
}
