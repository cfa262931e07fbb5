//! `bbr director|deployment validate --artifact-path P` end to end, on real sshd VMs (and the
//! BOSH director simulator for deployment mode, SeaweedFS for an `s3://` path): an artifact
//! `bbr backup` just wrote is valid, a target that lost a restore script or a corrupted tar
//! is refused naming it, and on the VMs no script ran (every script, `metadata` included,
//! records its run), nothing was written and no artifact directory was left.

mod support;

use bbr_testkit::stores::SeaweedFs;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use support::deployment::{Deployment, group};
use support::scenarios::assert_temp_users_removed;
use support::{Harness, Run, Script};

fn arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// What `backup` writes for `job`: `data` holding `<job> content`.
fn backup_body(job: &str) -> String {
    format!("echo '{job} content' > \"$BBR_ARTIFACT_DIRECTORY/data\"")
}

/// Every bbr script of `job` on the director VM, each recording its run; `metadata` prints
/// an empty document.
fn all_scripts(h: &Harness, job: &str) {
    h.locked_backup_job(job, &backup_body(job));
    h.script(job, Script::Metadata, "echo '---'");
    h.script(job, Script::PreRestoreLock, "");
    h.script(job, Script::Restore, "");
    h.script(job, Script::PostRestoreUnlock, "");
}

/// Every file and directory under the VM's `/var/vcap`, with its size and modification
/// time: equal before and after a run that wrote nothing.
fn tree(root: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (u64, SystemTime)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            out.insert(rel, (meta.len(), meta.modified().unwrap()));
            if meta.is_dir() {
                walk(root, &e.path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Backs the director VM up and returns the artifact, with the backup's events forgotten.
fn backed_up(h: &Harness) -> PathBuf {
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 0, "backup: {}", run.show());
    std::fs::remove_file(h.vm.vcap_path("sys/events/log")).unwrap();
    h.artifact_in(h.work.path())
}

fn validate(h: &Harness, artifact: &str) -> Run {
    h.bbr(&["validate", "--artifact-path", artifact])
}

#[test]
fn a_fresh_backup_is_valid_and_nothing_runs_or_is_written_on_the_vm() {
    let h = Harness::new();
    all_scripts(&h, "bosh");
    let artifact = backed_up(&h);
    let before = tree(&h.vm.vcap_root());
    let run = validate(&h, &arg(&artifact));
    assert_eq!(run.code(), 0, "{}", run.show());
    let name = h.name();
    support::assert_in_order(
        &run.stdout(),
        &[
            &format!("INFO - Validating backup artifact for {name}..."),
            &format!("INFO - Checking {name} against the backup..."),
            "INFO - Looking for scripts",
            &format!(
                "INFO - Backup artifact {} is valid and can be restored to {name}",
                artifact.display()
            ),
        ],
    );
    assert_eq!(run.stderr(), "", "{}", run.show());
    assert!(
        h.events().is_empty(),
        "no script may run, not even metadata: {:?}",
        h.events()
    );
    assert!(!h.remote_marker_exists());
    assert_eq!(
        tree(&h.vm.vcap_root()),
        before,
        "nothing under /var/vcap was created, changed or removed"
    );
}

#[test]
fn a_job_that_lost_its_restore_script_is_named() {
    let h = Harness::new();
    all_scripts(&h, "bosh");
    all_scripts(&h, "db");
    let artifact = backed_up(&h);
    std::fs::remove_file(h.vm.vcap_path("jobs/db/bin/bbr/restore")).unwrap();
    let run = validate(&h, &arg(&artifact));
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains(
            "the backup holds an artifact of job db on bosh/0, but that job has no restore script on instance bosh/0"
        ),
        "{}",
        run.show()
    );
    assert!(
        !run.stderr().contains("job bosh "),
        "only db is named: {}",
        run.show()
    );
    assert!(
        run.stdout()
            .contains(&format!("cannot be restored to {}: 1 problem(s)", h.name())),
        "{}",
        run.show()
    );
    assert!(h.events().is_empty(), "{:?}", h.events());
    assert!(!h.remote_marker_exists());
}

#[test]
fn a_corrupted_tar_is_named_and_nothing_runs_on_the_vm() {
    let h = Harness::new();
    all_scripts(&h, "bosh");
    let artifact = backed_up(&h);
    let tar = artifact.join("bosh-0-bosh.tar");
    let mut bytes = std::fs::read(&tar).unwrap();
    let at = bytes
        .windows(b"bosh content".len())
        .position(|w| w == b"bosh content")
        .expect("the file's content inside the tar");
    bytes[at] = b'B';
    std::fs::write(&tar, bytes).unwrap();
    let run = validate(&h, &arg(&artifact));
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains(&format!("Backup is not valid: {}", tar.display())),
        "{}",
        run.show()
    );
    // The target was checked all the same, and found fine.
    assert!(
        run.stdout().contains("Looking for scripts"),
        "{}",
        run.show()
    );
    assert!(
        run.stdout().contains(": 1 problem(s)"),
        "only the tar: {}",
        run.show()
    );
    assert!(h.events().is_empty(), "{:?}", h.events());
    assert!(!h.remote_marker_exists());
}

#[test]
fn all_deployments_validate_is_a_usage_error() {
    let work = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bbr"))
        .current_dir(work.path())
        .args([
            "deployment",
            "--target",
            "https://127.0.0.1:1",
            "--username",
            "admin",
            "--password",
            "secret",
            "--all-deployments",
            "validate",
            "--artifact-path",
        ])
        .arg(work.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let run = Run(out);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains(
            "--all-deployments is only supported for pre-backup-check, backup and backup-cleanup."
        ),
        "{}",
        run.show()
    );
    assert!(
        std::fs::read_dir(work.path()).unwrap().next().is_none(),
        "no error log, no artifact: refused before anything ran"
    );
}

#[test]
fn deployment_validate_checks_every_instance_and_leaves_no_ssh_user() {
    let d = "my-deployment";
    let h = Deployment::one(
        d,
        vec![
            group("redis-dedicated-node", 1, &[("redis", "redis")]),
            group("redis-server", 1, &[("redis-writer", "redis")]),
        ],
    );
    let instances = [
        ("redis-dedicated-node", "redis"),
        ("redis-server", "redis-writer"),
    ];
    for (g, job) in instances {
        let j = h.instance(d, g, 0).job(job);
        j.backup_scripts();
        j.script(Script::Metadata, "echo '---'");
        j.script(Script::PreRestoreLock, "");
        j.script(Script::Restore, "");
        j.script(Script::PostRestoreUnlock, "");
    }
    let backup = h.bbr(d, &["backup"]);
    assert_eq!(backup.code(), 0, "{}", backup.show());
    for vm in h.sim.vms(d) {
        std::fs::remove_file(vm.vcap_path("sys/events/log")).unwrap();
    }
    let artifact = arg(&h.artifact());

    let run = h.bbr(d, &["validate", "--artifact-path", &artifact]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout().contains(&format!(
            "Backup artifact {artifact} is valid and can be restored to {d}"
        )),
        "{}",
        run.show()
    );
    assert!(h.events(d).is_empty(), "{:?}", h.events(d));
    assert_temp_users_removed(&h);

    // A leftover artifact directory on the writer: named, and left for restore-cleanup.
    let writer = h.instance(d, "redis-server", 0);
    writer
        .vm()
        .install_file("store/bbr-backup/redis-writer/old", "x", 0o644)
        .unwrap();
    let run = h.bbr(d, &["validate", "--artifact-path", &artifact]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains(&format!(
            "Directory /var/vcap/store/bbr-backup already exists on instance {}",
            writer.slug()
        )),
        "{}",
        run.show()
    );
    assert!(writer.vm().exists("store/bbr-backup/redis-writer/old"));
    for (g, _) in instances {
        if g != "redis-server" {
            assert!(!h.instance(d, g, 0).vm().exists("store/bbr-backup"), "{g}");
        }
    }
    assert!(h.events(d).is_empty(), "{:?}", h.events(d));
    assert_temp_users_removed(&h);
}

#[test]
fn an_artifact_on_s3_is_validated_against_the_director() {
    let h = Harness::new();
    all_scripts(&h, "bosh");
    let artifact = backed_up(&h);
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-validate-target";
    weed.create_bucket(bucket).expect("bucket");
    let dir = artifact.file_name().unwrap().to_string_lossy().into_owned();
    let upload = |prefix: &str, flip: bool| {
        for e in std::fs::read_dir(&artifact).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut data = std::fs::read(e.path()).unwrap();
            if flip && name == "bosh-0-bosh.tar" {
                let at = data
                    .windows(b"bosh content".len())
                    .position(|w| w == b"bosh content")
                    .unwrap();
                data[at] = b'B';
            }
            weed.put_object(bucket, &format!("{prefix}/{dir}/{name}"), &data)
                .expect("aws s3api put-object");
        }
        format!("s3://{bucket}/{prefix}/{dir}")
    };
    let cloud = [
        ("AWS_ACCESS_KEY_ID", weed.access_key_id().to_string()),
        (
            "AWS_SECRET_ACCESS_KEY",
            weed.secret_access_key().to_string(),
        ),
        ("AWS_ENDPOINT_URL", weed.endpoint()),
    ];
    let validate_url = |url: &str| {
        let mut c = h.command(&["validate", "--artifact-path", url]);
        c.env_clear().env("TZ", "UTC").envs(cloud.clone());
        Run(c.output().expect("run bbr"))
    };

    let good = upload("good", false);
    let run = validate_url(&good);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout().contains(&format!(
            "Backup artifact {good} is valid and can be restored to {}",
            h.name()
        )),
        "{}",
        run.show()
    );

    let bad = upload("bad", true);
    let run = validate_url(&bad);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains(&format!("Backup is not valid: {bad}/bosh-0-bosh.tar")),
        "{}",
        run.show()
    );
    assert!(h.events().is_empty(), "{:?}", h.events());
    assert!(!h.remote_marker_exists());
}
