//! `workflow::validate` (`bbr director|deployment validate --artifact-path P`) run in memory
//! against the `bbr_core::testing` doubles, on a real local artifact written by
//! `workflow::backup` first: both halves run (the deep offline check, the checks against the
//! target), every problem is an error naming what is wrong, and nothing but discovery's
//! reads reaches a VM (no script, not even `metadata`; no `mkdir`, upload or `rm`). The SSH
//! access is released in every case. The VM tests (bbr-cli/tests/validate_target.rs) are the
//! contract tests of the real transport.

mod common;

use bbr_core::artifact_location::ArtifactOrigin;
use bbr_core::report::{Level, MemoryReporter};
use bbr_core::testing::{Call, FakeSource};
use bbr_core::workflow;
use bbr_core::{ARTIFACT_DIRECTORY, ErrorKind, ErrorList, StopSignal, commands};
use common::{
    DEADLINE, artifact, backup_of, flip_content_of, kinds, messages, options, restorable, restore,
    with_backup_scripts, with_restore_scripts,
};
use std::path::Path;

const NODE: &str = "redis-dedicated-node/redis-dedicated-node-0-id";
const WRITER: &str = "writer/writer-0-id";

fn warnings(reporter: &MemoryReporter) -> Vec<String> {
    reporter
        .lines()
        .into_iter()
        .filter(|(level, _)| *level == Level::Warn)
        .map(|(_, line)| line)
        .collect()
}

async fn validate(source: &FakeSource, artifact: &Path) -> (ErrorList, MemoryReporter) {
    let reporter = MemoryReporter::default();
    let errors = tokio::time::timeout(
        DEADLINE,
        workflow::validate(
            source,
            options(&StopSignal::new()),
            &ArtifactOrigin::Local(artifact.to_path_buf()),
            &reporter,
        ),
    )
    .await
    .expect("validate ended before the deadline");
    (errors, reporter)
}

/// Every call reached a VM as one of discovery's reads: the script listing or the `stat` of
/// the artifact directory. No script (metadata included), no plain command (uploads), no
/// `mkdir`, `tar` or `rm`.
fn assert_only_discovery_reads(source: &FakeSource) {
    let find = commands::find_scripts().shell().to_string();
    let stat = commands::stat_artifact_directory().shell().to_string();
    let calls = source.journal().calls();
    assert!(!calls.is_empty(), "the target was not contacted at all");
    for call in &calls {
        match call {
            Call::Root { shell, .. } if *shell == find || *shell == stat => {}
            other => panic!("validate sent more than discovery's reads: {other:?} in {calls:?}"),
        }
    }
}

/// Which hosts were asked to list their scripts, and which to `stat` the artifact directory.
fn reads(source: &FakeSource) -> (Vec<String>, Vec<String>) {
    let find = commands::find_scripts().shell().to_string();
    let stat = commands::stat_artifact_directory().shell().to_string();
    let (mut found, mut statted) = (Vec::new(), Vec::new());
    for call in source.journal().calls() {
        if let Call::Root { host, shell } = call {
            if shell == find {
                found.push(host);
            } else if shell == stat {
                statted.push(host);
            }
        }
    }
    found.sort();
    statted.sort();
    (found, statted)
}

fn both_hosts() -> Vec<String> {
    vec!["redis-dedicated-node/0".to_string(), "writer/0".to_string()]
}

#[tokio::test]
async fn a_valid_artifact_passes_with_only_discovery_reads_on_the_vms() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    let (source, node, writer) = restorable();
    let (errors, reporter) = validate(&source, &artifact).await;
    assert!(errors.is_empty(), "{}", messages(&errors));
    assert_eq!(errors.exit_code(), 0);
    assert_only_discovery_reads(&source);
    assert_eq!(reads(&source), (both_hosts(), both_hosts()));
    assert!(reporter.contains("Validating backup artifact for dep..."));
    assert!(reporter.contains(&format!(
        "Backup artifact {} is valid and can be restored to dep",
        artifact.display()
    )));
    assert_eq!(warnings(&reporter), Vec::<String>::new());
    assert!(!node.has_artifact_directory() && !writer.has_artifact_directory());
    assert_eq!(source.released(), vec![NODE, WRITER]);
}

#[tokio::test]
async fn an_instance_of_the_backup_missing_from_the_deployment_is_named() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    // Only the node: writer/0 of the backup is gone.
    let mut source = FakeSource::new("dep", true);
    let node = source.instance("redis-dedicated-node", 0);
    with_backup_scripts(&node, "redis");
    with_restore_scripts(&node, "redis");
    let (errors, reporter) = validate(&source, &artifact).await;
    assert_eq!(errors.exit_code(), 1, "{}", messages(&errors));
    assert_eq!(
        messages(&errors),
        "Deployment 'dep' does not match the structure of the provided backup: instance writer/0 of the backup is not in the deployment"
    );
    assert!(reporter.contains("cannot be restored to dep: 1 problem(s)"));
    assert_only_discovery_reads(&source);
    assert_eq!(source.released(), vec![NODE]);
}

#[tokio::test]
async fn a_backed_up_job_without_a_restore_script_is_named_with_its_instance() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    // redis-writer lost its restore scripts; redis keeps them, so the deployment as a whole
    // is still restorable and only the job-level check can see it.
    let mut source = FakeSource::new("dep", true);
    let node = source.instance("redis-dedicated-node", 0);
    let writer = source.instance("writer", 0);
    with_backup_scripts(&node, "redis");
    with_restore_scripts(&node, "redis");
    with_backup_scripts(&writer, "redis-writer");
    let (errors, _) = validate(&source, &artifact).await;
    assert_eq!(kinds(&errors), vec![ErrorKind::General]);
    assert_eq!(
        messages(&errors),
        format!(
            "the backup holds an artifact of job redis-writer on writer/0, but that job has no restore script on instance {WRITER}"
        )
    );
    assert_only_discovery_reads(&source);
    assert_eq!(source.released(), vec![NODE, WRITER]);
}

#[tokio::test]
async fn a_deployment_without_any_restore_script_is_refused_and_every_job_named() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    let mut source = FakeSource::new("dep", true);
    let node = source.instance("redis-dedicated-node", 0);
    let writer = source.instance("writer", 0);
    with_backup_scripts(&node, "redis");
    with_backup_scripts(&writer, "redis-writer");
    let (errors, _) = validate(&source, &artifact).await;
    let text = messages(&errors);
    assert!(
        text.contains("Deployment 'dep' has no restore scripts"),
        "{text}"
    );
    for (job, slot, instance) in [
        ("redis", "redis-dedicated-node/0", NODE),
        ("redis-writer", "writer/0", WRITER),
    ] {
        assert!(
            text.contains(&format!(
                "job {job} on {slot}, but that job has no restore script on instance {instance}"
            )),
            "{job}: {text}"
        );
    }
    assert_only_discovery_reads(&source);
    assert_eq!(source.released(), vec![NODE, WRITER]);
}

#[tokio::test]
async fn a_leftover_artifact_directory_is_reported_and_left_in_place() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    let (source, node, writer) = restorable();
    node.with_artifact_directory();
    let (errors, _) = validate(&source, &artifact).await;
    assert_eq!(errors.exit_code(), 1, "{}", messages(&errors));
    assert_eq!(
        messages(&errors),
        format!(
            "Check artifact dir failed: Directory {ARTIFACT_DIRECTORY} already exists on instance {NODE}"
        )
    );
    // validate reports it; only `bbr restore-cleanup` may remove it.
    assert!(node.has_artifact_directory());
    assert!(!writer.has_artifact_directory());
    assert_only_discovery_reads(&source);
    assert_eq!(source.released(), vec![NODE, WRITER]);
}

#[tokio::test]
async fn a_corrupted_tar_is_named_and_the_target_is_still_checked() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    let tar = artifact.join("redis-dedicated-node-0-redis.tar");
    flip_content_of(&tar);
    let (source, node, writer) = restorable();
    // A target problem too: both halves report.
    writer.with_artifact_directory();
    let (errors, reporter) = validate(&source, &artifact).await;
    assert_eq!(errors.exit_code(), 1);
    assert_eq!(errors.0.len(), 2, "{}", messages(&errors));
    let offline = &errors.0[0].message;
    assert!(
        offline.starts_with(&format!("Backup is not valid: {}", tar.display())),
        "{offline}"
    );
    assert!(offline.contains("./dump"), "names the entry: {offline}");
    assert_eq!(
        errors.0[1].message,
        format!(
            "Check artifact dir failed: Directory {ARTIFACT_DIRECTORY} already exists on instance {WRITER}"
        )
    );
    assert!(reporter.contains("Checking dep against the backup..."));
    assert!(reporter.contains("cannot be restored to dep: 2 problem(s)"));
    assert_eq!(reads(&source), (both_hosts(), both_hosts()));
    assert_only_discovery_reads(&source);
    assert!(!node.has_artifact_directory());
    assert_eq!(source.released(), vec![NODE, WRITER]);
}

#[tokio::test]
async fn without_metadata_the_offline_error_comes_with_a_warning_and_discovery_still_runs() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    std::fs::remove_file(artifact.join("metadata")).unwrap();
    let (source, _, _) = restorable();
    let (errors, reporter) = validate(&source, &artifact).await;
    assert_eq!(errors.exit_code(), 1);
    let text = messages(&errors);
    assert!(!errors.is_empty());
    for e in &errors.0 {
        assert!(
            e.message.starts_with("Backup is not valid: "),
            "only offline problems: {text}"
        );
    }
    assert!(
        text.contains(&artifact.join("metadata").display().to_string()),
        "{text}"
    );
    assert_eq!(
        warnings(&reporter),
        vec![format!(
            "{}/metadata is unreadable, so the backup's structure could not be checked against dep",
            artifact.display()
        )]
    );
    assert_eq!(reads(&source).0, both_hosts());
    assert_only_discovery_reads(&source);
    assert_eq!(source.released(), vec![NODE, WRITER]);
}

#[tokio::test]
async fn a_custom_artifact_is_checked_against_the_jobs_that_restore_it() {
    // `redis-writer` is `bbr.backup_one_restore_all`: backed up into a named artifact.
    let one_for_all = || {
        let (mut source, _, _) = restorable();
        source.instances_mut()[1]
            .backup_one_restore_all
            .insert("redis-writer".to_string());
        source
    };
    let work = tempfile::tempdir().unwrap();
    let artifact = backup_of(&one_for_all(), work.path()).await;
    // Director mode: no release in the name.
    let custom = "redis-writer--backup-one-restore-all";
    assert!(artifact.join(format!("{custom}.tar")).exists());
    let source = one_for_all();
    let (errors, reporter) = validate(&source, &artifact).await;
    assert!(errors.is_empty(), "{}", messages(&errors));
    assert!(warnings(&reporter).is_empty(), "{:?}", warnings(&reporter));
    assert_only_discovery_reads(&source);
    assert_eq!(source.released(), vec![NODE, WRITER]);

    // The same target without the manifest property: nothing restores the artifact.
    let (plain, _, _) = restorable();
    let (errors, _) = validate(&plain, &artifact).await;
    assert_eq!(
        messages(&errors),
        format!(
            "the backup holds the custom artifact {custom}, but no job of the deployment with a restore script restores it (bbr.backup_one_restore_all)"
        )
    );
    assert_only_discovery_reads(&plain);
}

#[tokio::test]
async fn every_target_problem_is_reported_not_only_the_first() {
    let work = tempfile::tempdir().unwrap();
    // The backup has three instances; the target lacks two of them, and the one it has
    // holds a leftover artifact directory.
    let backed_up = {
        let (mut source, _, _) = restorable();
        let extra = source.instance("extra", 0);
        with_backup_scripts(&extra, "cache");
        source
    };
    let artifact = backup_of(&backed_up, work.path()).await;
    let mut source = FakeSource::new("dep", true);
    let node = source.instance("redis-dedicated-node", 0);
    with_backup_scripts(&node, "redis");
    with_restore_scripts(&node, "redis");
    node.with_artifact_directory();
    let (errors, _) = validate(&source, &artifact).await;
    let text = messages(&errors);
    for needle in [
        "instance writer/0 of the backup is not in the deployment",
        "instance extra/0 of the backup is not in the deployment",
        &format!("Directory {ARTIFACT_DIRECTORY} already exists on instance {NODE}"),
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    assert_only_discovery_reads(&source);
    assert!(node.has_artifact_directory());
    assert_eq!(source.released(), vec![NODE]);
}

#[tokio::test]
async fn without_metadata_the_checks_that_need_none_still_run() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    std::fs::remove_file(artifact.join("metadata")).unwrap();
    // No restore script anywhere, and a leftover directory: neither needs the backup's
    // structure to be seen.
    let mut source = FakeSource::new("dep", true);
    let node = source.instance("redis-dedicated-node", 0);
    with_backup_scripts(&node, "redis");
    node.with_artifact_directory();
    let (errors, _) = validate(&source, &artifact).await;
    let text = messages(&errors);
    for needle in [
        "Backup is not valid: ",
        "Deployment 'dep' has no restore scripts",
        &format!("Directory {ARTIFACT_DIRECTORY} already exists on instance {NODE}"),
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    assert_only_discovery_reads(&source);
    assert_eq!(source.released(), vec![NODE]);
}

#[tokio::test]
async fn a_restore_script_the_backup_has_no_artifact_for_is_warned_about() {
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path()).await;
    // The target gained a job with a restore script since the backup: a restore refuses it
    // ("the backup has no artifact") unless its metadata script disables it, which validate
    // does not run.
    let (source, node, _) = restorable();
    with_restore_scripts(&node, "newcomer");
    let (errors, reporter) = validate(&source, &artifact).await;
    assert!(errors.is_empty(), "{}", messages(&errors));
    assert_eq!(
        warnings(&reporter),
        vec![format!(
            "job newcomer on {NODE} has a restore script, but the backup has no artifact redis-dedicated-node-0-newcomer.tar for it: a restore fails unless the job's metadata script disables it (skip_bbr_scripts), which validate does not run"
        )]
    );
    assert_only_discovery_reads(&source);
    assert_eq!(source.released(), vec![NODE, WRITER]);
    // What the warning predicts.
    let (source, node, _) = restorable();
    with_restore_scripts(&node, "newcomer");
    let (restored, _) = restore(&source, &artifact, &StopSignal::new()).await;
    assert!(
        messages(&restored).contains(&format!(
            "the backup has no artifact redis-dedicated-node-0-newcomer.tar for job newcomer on {NODE}"
        )),
        "{}",
        messages(&restored)
    );
}
