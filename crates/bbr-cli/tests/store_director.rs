//! `bbr director backup` and `restore` with an object-store `--artifact-path` (`s3://`,
//! `az://`/`azure://`, `gs://`), end to end: the built `bbr` with only the cloud CLI variables
//! in its environment, a real sshd VM, and the test kit's real stores (SeaweedFS, Azurite,
//! fake-gcs-server). What landed in a store is always checked with a client independent of
//! bbr-storage (the AWS CLI, `azblob.py`, plain HTTP), and stored artifacts to restore are
//! written and altered with the AWS CLI.
//!
//! Covered: a round trip per store; a backup stopped mid-upload by SIGTERM and by a dropped
//! SSH connection (no `metadata`, no pending multipart upload, jobs unlocked); a store that
//! refuses writes; wrong credentials (secret never printed, even with `--debug`); restores
//! refused for an altered, truncated or missing tar or a missing `metadata` before any
//! script runs (and `bbr artifact validate` naming the same object); a Go bbr artifact
//! restored from S3.

mod support;

use bbr_testkit::stores::{Azurite, FakeGcs, SeaweedFs};
use bbr_testkit::wait;
use std::time::Duration;
use support::live::Live;
use support::stores::{
    CloudEnv, assert_secret_hidden, aws, azure_env, bbr_alone, gcs_env, noise, read_only_identity,
    run_with, s3_delete, s3_env, s3_env_with, s3_get, s3_keys, s3_put_dir, send_signal,
    single_artifact, tar_member, tar_names, vm_processes, with_env,
};
use support::*;

/// How long a test waits for an event (a line of output, an upload to start, an exit).
const LIMIT: Duration = Duration::from_secs(120);

/// The text file every data job backs up.
const NOTE: &[u8] = b"this is a backup\n";

/// Installs the VM's data under `/var/vcap/store/data`: `sub dir/note` and `blob`, 12 MB of
/// noise (streamed on a channel of its own and uploaded in two parts of 8 MiB), and job
/// `bosh` whose scripts back it up and restore it; `pre-backup-lock` leaves the lock marker
/// `/var/vcap/sys/locked` that `post-backup-unlock` removes. Returns the blob.
fn data_job(h: &Harness) -> Vec<u8> {
    let blob = noise(0x5eed, 12 * 1024 * 1024 + 123);
    h.vm.install_file("store/data/blob", &blob, 0o644).unwrap();
    h.vm.install_file("store/data/sub dir/note", NOTE, 0o644)
        .unwrap();
    lock_marking_scripts(h);
    h.script(
        "bosh",
        Script::Backup,
        "cp -a /var/vcap/store/data/. \"$BBR_ARTIFACT_DIRECTORY\"/",
    );
    restore_scripts(h, "bosh");
    blob
}

/// `pre-backup-lock` creating `/var/vcap/sys/locked`, `post-backup-unlock` removing it.
fn lock_marking_scripts(h: &Harness) {
    h.script("bosh", Script::PreBackupLock, "touch /var/vcap/sys/locked");
    h.script(
        "bosh",
        Script::PostBackupUnlock,
        "rm -f /var/vcap/sys/locked",
    );
}

/// Restore scripts of `job` putting the artifact back into `/var/vcap/store/data`, and
/// recording every run (so that an empty event log proves no script ran).
fn restore_scripts(h: &Harness, job: &str) {
    h.script(job, Script::PreRestoreLock, "");
    h.script(
        job,
        Script::Restore,
        &format!(
            "mkdir -p /var/vcap/store/data/{job}\ncp -a \"$BBR_ARTIFACT_DIRECTORY\"/. /var/vcap/store/data/{job}/"
        ),
    );
    h.script(job, Script::PostRestoreUnlock, "");
}

/// Forgets the recorded script runs.
fn clear_events(h: &Harness) {
    let log = h.vm.vcap_path("sys/events/log");
    if log.exists() {
        std::fs::remove_file(log).unwrap();
    }
}

const BACKUP_EVENTS: [&str; 3] = [
    "bosh pre-backup-lock",
    "bosh backup",
    "bosh post-backup-unlock true",
];

/// Lists the keys of the bucket or container.
type ListKeys<'a> = Box<dyn Fn() -> Vec<String> + 'a>;
/// Reads one object by its key.
type GetObject<'a> = Box<dyn Fn(&str) -> Vec<u8> + 'a>;

/// One store as the round trip sees it: the URL bbr gets, its environment, and independent
/// ways to list the keys of the bucket and to read one.
struct StoreView<'a> {
    url: String,
    /// The URL's prefix inside the bucket (`""`: the bucket's root).
    prefix: &'a str,
    env: CloudEnv,
    keys: ListKeys<'a>,
    get: GetObject<'a>,
}

/// Backs the VM's data up to the store, checks what landed there, wipes the data, restores
/// it from the artifact's URL and checks it is back.
fn round_trip(store: &StoreView<'_>) {
    let h = Harness::new();
    let blob = data_job(&h);
    let run = run_with(
        h.command(&["backup", "--artifact-path", &store.url]),
        &store.env,
    );
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout()
            .contains(&format!("INFO - Backup created of {} on", h.name())),
        "{}",
        run.show()
    );
    assert_eq!(h.events(), BACKUP_EVENTS);
    assert!(!h.vm.exists("sys/locked"), "unlocked");
    assert!(!h.remote_marker_exists());

    let keys = (store.keys)();
    let (dir, files) = single_artifact(&keys, store.prefix, &h.name());
    assert_eq!(files, ["bosh-0-bosh.tar", "metadata"], "{keys:?}");
    let key = |name: &str| {
        if store.prefix.is_empty() {
            format!("{dir}/{name}")
        } else {
            format!("{}/{dir}/{name}", store.prefix)
        }
    };
    let tar = (store.get)(&key("bosh-0-bosh.tar"));
    let names = tar_names(&tar);
    for name in ["./blob", "./sub dir/note"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    assert!(
        tar_member(&tar, "./blob") == blob,
        "the blob as the VM had it"
    );
    assert_eq!(tar_member(&tar, "./sub dir/note"), NOTE);
    let metadata = String::from_utf8((store.get)(&key("metadata"))).unwrap();
    assert!(
        metadata.starts_with("instances:\n- name: bosh\n  index: \"0\"\n  artifacts:\n  - name: bosh\n    checksums:\n"),
        "{metadata}"
    );
    for (name, data) in [("./blob", &blob[..]), ("./sub dir/note", NOTE)] {
        assert!(
            metadata.contains(&format!("{name}: {}", sha256_hex(data))),
            "{name} in {metadata}"
        );
    }
    assert!(metadata.contains("\n  finish_time: "), "{metadata}");

    // The data is gone from the VM; the restore brings it back.
    std::fs::remove_dir_all(h.vm.vcap_path("store/data")).unwrap();
    clear_events(&h);
    let artifact_url = format!("{}/{dir}", store.url.trim_end_matches('/'));
    let run = run_with(
        h.command(&["restore", "--artifact-path", &artifact_url]),
        &store.env,
    );
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout()
            .contains(&format!("INFO - Completed restore of {}", h.name())),
        "{}",
        run.show()
    );
    assert!(
        h.vm.read_bytes("store/data/bosh/blob").unwrap() == blob,
        "the blob is back"
    );
    assert_eq!(
        h.vm.read_bytes("store/data/bosh/sub dir/note").unwrap(),
        NOTE
    );
    assert_eq!(
        h.events(),
        [
            "bosh pre-restore-lock",
            "bosh restore",
            "bosh post-restore-unlock"
        ]
    );
    assert!(!h.remote_marker_exists());
    assert_eq!(
        (store.keys)(),
        keys,
        "a restore writes nothing to the store"
    );
}

#[test]
fn s3_backup_lands_in_the_bucket_and_restores_into_a_wiped_vm() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-director";
    weed.create_bucket(bucket).unwrap();
    round_trip(&StoreView {
        url: format!("s3://{bucket}/backups/director"),
        prefix: "backups/director",
        env: s3_env(&weed),
        keys: Box::new(|| s3_keys(&weed, bucket)),
        get: Box::new(|key| s3_get(&weed, bucket, key)),
    });
    assert!(weed.multipart_uploads(bucket).unwrap().is_empty());
}

#[test]
fn azure_backup_lands_in_the_container_and_restores_into_a_wiped_vm() {
    let azurite = Azurite::start().expect("Azurite");
    let container = "bbr-director";
    azurite.create_container(container).unwrap();
    round_trip(&StoreView {
        url: format!("azure://{container}/p/q/"),
        prefix: "p/q",
        env: azure_env(&azurite),
        keys: Box::new(|| azurite.list_blobs(container).unwrap().unwrap_or_default()),
        get: Box::new(|blob| {
            azurite
                .get_blob(container, blob)
                .unwrap()
                .unwrap_or_else(|| panic!("no blob {blob}"))
        }),
    });
}

#[test]
fn gcs_backup_lands_at_the_bucket_root_and_restores_into_a_wiped_vm() {
    let gcs = FakeGcs::start().expect("fake-gcs-server");
    let bucket = "bbr-director";
    gcs.create_bucket(bucket).unwrap();
    round_trip(&StoreView {
        url: format!("gs://{bucket}"),
        prefix: "",
        env: gcs_env(&gcs),
        keys: Box::new(|| gcs.list_objects(bucket).unwrap()),
        get: Box::new(|name| {
            gcs.get_object(bucket, name)
                .unwrap()
                .unwrap_or_else(|| panic!("no object {name}"))
        }),
    });
}

// ----- a backup cut short mid-upload ----------------------------------------------------

/// Job `bosh` backing up `mb` MB of `/dev/urandom` (enough for many 8 MiB parts), with the
/// lock marker scripts.
fn big_job(h: &Harness, mb: u32) {
    lock_marking_scripts(h);
    h.script(
        "bosh",
        Script::Backup,
        &format!("head -c {mb}000000 /dev/urandom > \"$BBR_ARTIFACT_DIRECTORY/big\""),
    );
}

/// A backup of `h` to `s3://bucket/prefix` held in mid-upload: the VM's `tar` has sent part
/// of the artifact (the first progress line, 5% of 200 MB, more than one 8 MiB part) and is
/// then stopped (SIGSTOP), so the SSH stream is certainly incomplete, and the store shows the
/// multipart upload in progress. Returns the run and the stopped `tar`'s PID.
fn backup_in_mid_upload(h: &Harness, weed: &SeaweedFs, bucket: &str, prefix: &str) -> (Live, u32) {
    let url = format!("s3://{bucket}/{prefix}");
    let mut live = Live::start(
        with_env(
            h.command(&["backup", "--artifact-path", &url]),
            &s3_env(weed),
        ),
        LIMIT,
    );
    live.wait_for_line("INFO - Copying backup -- ");
    let tar = wait::until_some("the drain's tar on the VM", LIMIT, || {
        vm_processes(&h.vm, "tar").first().copied()
    });
    live.wait_for_line("-- 5% complete");
    send_signal(tar, "STOP");
    assert!(
        !live.seen().contains("100% complete"),
        "the copy ended before tar was stopped: {}",
        live.seen()
    );
    wait::until("a multipart upload in progress", LIMIT, || {
        assert!(live.still_running(), "bbr exited: {}", live.seen());
        !weed.multipart_uploads(bucket).unwrap().is_empty()
    });
    let uploads = weed.multipart_uploads(bucket).unwrap();
    assert!(
        uploads
            .iter()
            .all(|k| k.starts_with(&format!("{prefix}/{}_", h.name()))
                && k.ends_with("/bosh-0-bosh.tar")),
        "{uploads:?}"
    );
    (live, tar)
}

/// What a backup stopped mid-upload must leave: no object at all under the prefix (the one
/// tar was never completed, so no `metadata` either), no pending multipart upload, the
/// job unlocked, the VM's artifact directory removed, and an error saying so.
fn assert_nothing_left(h: &Harness, weed: &SeaweedFs, bucket: &str, run: &Run) {
    assert_ne!(run.code(), 0, "{}", run.show());
    let keys = s3_keys(weed, bucket);
    assert!(
        !keys.iter().any(|k| k.ends_with("/metadata")),
        "no metadata: {keys:?}"
    );
    assert!(keys.is_empty(), "the aborted tar never appears: {keys:?}");
    assert_eq!(
        weed.multipart_uploads(bucket).unwrap(),
        Vec::<String>::new(),
        "the multipart upload was aborted: {}",
        run.show()
    );
    assert_eq!(h.events(), BACKUP_EVENTS, "{}", run.show());
    assert!(!h.vm.exists("sys/locked"), "unlocked: {}", run.show());
    assert!(!h.remote_marker_exists(), "{}", run.show());
    assert!(
        run.stderr().contains(&format!(
            "The backup failed, so no metadata was written to s3://{bucket}/backups/{}_",
            h.name()
        )),
        "{}",
        run.show()
    );
    assert!(
        run.stdout().contains(&format!(
            "Aborted the upload of the incomplete s3://{bucket}/backups/{}_",
            h.name()
        )),
        "{}",
        run.show()
    );
    assert!(!run.show().contains("100% complete"), "{}", run.show());
}

#[test]
fn sigterm_mid_upload_aborts_the_upload_writes_no_metadata_and_leaves_the_job_unlocked() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-sigterm";
    weed.create_bucket(bucket).unwrap();
    let h = Harness::new();
    big_job(&h, 200);
    let (live, tar) = backup_in_mid_upload(&h, &weed, bucket, "backups");
    live.signal(libc::SIGTERM);
    let run = live.finish_run(LIMIT);
    // Let the VM's tar go on: its reader is gone.
    send_signal(tar, "CONT");
    assert_nothing_left(&h, &weed, bucket, &run);
}

#[test]
fn an_ssh_drop_mid_upload_aborts_the_upload_writes_no_metadata_and_leaves_the_job_unlocked() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-ssh-drop";
    weed.create_bucket(bucket).unwrap();
    let h = Harness::new();
    big_job(&h, 200);
    let (live, _tar) = backup_in_mid_upload(&h, &weed, bucket, "backups");
    // Kills the stopped tar with the session's other processes.
    assert!(h.vm.kill_connections().unwrap() > 0);
    let run = live.finish_run(LIMIT);
    assert_nothing_left(&h, &weed, bucket, &run);
    assert!(
        run.stderr()
            .contains("Error streaming backup from remote instance"),
        "{}",
        run.show()
    );
}

// ----- refusals by the store --------------------------------------------------------------

#[test]
fn a_store_that_refuses_writes_fails_the_backup_naming_the_object_and_unlocks() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-read-only";
    weed.create_bucket(bucket).unwrap();
    let (key_id, secret) = read_only_identity(&weed);
    let h = Harness::new();
    data_job(&h);
    let url = format!("s3://{bucket}/backups");
    let run = run_with(
        h.command(&["--debug", "backup", "--artifact-path", &url]),
        &s3_env_with(&weed, &key_id, &secret),
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    // The credentials may list the bucket, so the refusal shows on the first write: the
    // upload of the tar, named by its URL.
    assert!(
        run.stderr()
            .contains(&format!("writing {url}/{}_", h.name()))
            && run.stderr().contains("/bosh-0-bosh.tar failed"),
        "{}",
        run.show()
    );
    assert!(
        run.stderr().contains(&format!(
            "The backup failed, so no metadata was written to {url}/{}_",
            h.name()
        )),
        "{}",
        run.show()
    );
    assert_secret_hidden(&run, &secret);
    assert_eq!(h.events(), BACKUP_EVENTS, "{}", run.show());
    assert!(!h.vm.exists("sys/locked"), "unlocked");
    assert!(!h.remote_marker_exists());
    assert_eq!(s3_keys(&weed, bucket), Vec::<String>::new());
    assert!(weed.multipart_uploads(bucket).unwrap().is_empty());
}

#[test]
fn wrong_credentials_fail_backup_and_restore_before_any_script_without_printing_the_secret() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-wrong-key";
    weed.create_bucket(bucket).unwrap();
    s3_put_dir(
        &weed,
        bucket,
        "good",
        &fixture("director-backup-integration"),
        &["backup"],
    );
    let before = s3_keys(&weed, bucket);
    let h = Harness::new();
    data_job(&h);
    let secret = "WRONGsecretQ7x9Zk2LmN4pR8sT1vW3yB5cD6fG0hJ";
    let env = s3_env_with(&weed, weed.access_key_id(), secret);

    let url = format!("s3://{bucket}/backups");
    let run = run_with(
        h.command(&["--debug", "backup", "--artifact-path", &url]),
        &env,
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(run.stderr().contains(&url), "names the URL: {}", run.show());
    assert!(run.stdout().contains("DEBUG"), "debug output is on");
    assert_secret_hidden(&run, secret);
    assert!(h.events().is_empty(), "no lock ran: {:?}", h.events());
    assert!(!h.remote_marker_exists());
    assert_eq!(s3_keys(&weed, bucket), before, "nothing was written");

    let url = format!("s3://{bucket}/good");
    let run = run_with(
        h.command(&["--debug", "restore", "--artifact-path", &url]),
        &env,
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(run.stderr().contains(&url), "names the URL: {}", run.show());
    assert_secret_hidden(&run, secret);
    assert!(h.events().is_empty(), "no script ran: {:?}", h.events());
    assert!(!h.vm.exists("store/data/bosh"));
}

// ----- restores refused -------------------------------------------------------------------

/// The Go bbr fixture `director-backup-integration` (its tar and `metadata`; the loose
/// `backup` file beside them is not part of the artifact) uploaded to `s3://bucket/prefix`.
fn put_integration_fixture(weed: &SeaweedFs, bucket: &str, prefix: &str) {
    s3_put_dir(
        weed,
        bucket,
        prefix,
        &fixture("director-backup-integration"),
        &["backup"],
    );
}

/// Restores `url`, expecting a refusal before any script ran; returns the run.
fn refused_restore(h: &Harness, weed: &SeaweedFs, url: &str) -> Run {
    let run = run_with(
        h.command(&["restore", "--artifact-path", url]),
        &s3_env(weed),
    );
    assert_eq!(run.code(), 1, "{url}: {}", run.show());
    assert!(
        h.events().is_empty(),
        "{url}: no script may run: {:?}\n{}",
        h.events(),
        run.show()
    );
    assert!(!h.vm.exists("store/data"), "{url}: nothing restored");
    assert!(!h.remote_marker_exists(), "{url}: {}", run.show());
    run
}

/// `bbr artifact validate url` fails naming `object` (text and `--json`).
fn validate_names(weed: &SeaweedFs, url: &str, object: &str) {
    let run = bbr_alone(&["artifact", "validate", url], &s3_env(weed));
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stdout().contains(&format!("ERROR - {object}: ")),
        "validate names {object}: {}",
        run.show()
    );
}

#[test]
fn restores_of_altered_truncated_or_incomplete_stored_artifacts_are_refused_before_any_script() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-refusals";
    weed.create_bucket(bucket).unwrap();
    let h = Harness::new();
    restore_scripts(&h, "bosh");
    let tar = std::fs::read(fixture("director-backup-integration/bosh-0-bosh.tar")).unwrap();
    let url = |prefix: &str| format!("s3://{bucket}/{prefix}");
    let tar_url = |prefix: &str| format!("{}/bosh-0-bosh.tar", url(prefix));

    // One content byte of ./backup changed (an upper-case T): caught while streaming, before
    // any lock or restore script.
    put_integration_fixture(&weed, bucket, "flipped");
    let mut flipped = tar.clone();
    let at = flipped.windows(4).position(|w| w == b"this").unwrap();
    flipped[at] = b'T';
    weed.put_object(bucket, "flipped/bosh-0-bosh.tar", &flipped)
        .unwrap();
    let run = refused_restore(&h, &weed, &url("flipped"));
    // The content check names the tar by its URL and the file whose checksum differs.
    assert!(
        run.stderr().contains(&format!(
            "checksum mismatch in {} for [./backup]",
            tar_url("flipped")
        )),
        "names the tar and the file: {}",
        run.show()
    );
    validate_names(&weed, &url("flipped"), &tar_url("flipped"));

    // Cut inside a record: not the size of any tar, refused before the VM is contacted.
    put_integration_fixture(&weed, bucket, "cut");
    weed.put_object(bucket, "cut/bosh-0-bosh.tar", &tar[..700])
        .unwrap();
    let run = refused_restore(&h, &weed, &url("cut"));
    assert!(
        run.stderr().contains(&tar_url("cut")),
        "names the object: {}",
        run.show()
    );
    assert!(
        !run.stdout().contains("Looking for scripts"),
        "the VM was not contacted: {}",
        run.show()
    );
    validate_names(&weed, &url("cut"), &tar_url("cut"));

    // Cut at a record boundary, the end-of-archive records missing (the file itself is
    // whole, so only the tar's structure tells): caught while streaming.
    put_integration_fixture(&weed, bucket, "no-end");
    weed.put_object(bucket, "no-end/bosh-0-bosh.tar", &tar[..1536])
        .unwrap();
    let run = refused_restore(&h, &weed, &url("no-end"));
    assert!(
        run.stderr()
            .contains(&format!("tar file {} is truncated", tar_url("no-end"))),
        "names the tar: {}",
        run.show()
    );
    validate_names(&weed, &url("no-end"), &tar_url("no-end"));

    // The tar deleted.
    put_integration_fixture(&weed, bucket, "no-tar");
    s3_delete(&weed, bucket, "no-tar/bosh-0-bosh.tar");
    let run = refused_restore(&h, &weed, &url("no-tar"));
    assert!(
        run.stderr()
            .contains(&format!("{} is missing", tar_url("no-tar"))),
        "{}",
        run.show()
    );
    assert!(
        !run.stdout().contains("Looking for scripts"),
        "{}",
        run.show()
    );
    validate_names(&weed, &url("no-tar"), &tar_url("no-tar"));

    // metadata deleted: the backup never completed.
    put_integration_fixture(&weed, bucket, "no-metadata");
    s3_delete(&weed, bucket, "no-metadata/metadata");
    let run = refused_restore(&h, &weed, &url("no-metadata"));
    assert!(
        run.stderr().contains(&format!(
            "{} is incomplete: it has no metadata object",
            url("no-metadata")
        )),
        "{}",
        run.show()
    );
    assert!(
        !run.stdout().contains("Looking for scripts"),
        "{}",
        run.show()
    );
    validate_names(
        &weed,
        &url("no-metadata"),
        &format!("{}/metadata", url("no-metadata")),
    );

    // The same artifact unaltered restores on this VM: the refusals were the alterations'.
    put_integration_fixture(&weed, bucket, "good");
    let run = run_with(
        h.command(&["restore", "--artifact-path", &url("good")]),
        &s3_env(&weed),
    );
    assert_eq!(run.code(), 0, "{}", run.show());
    assert_eq!(
        h.vm.read("store/data/bosh/backup").unwrap(),
        "this is a backup\n"
    );
}

// ----- a Go bbr artifact ----------------------------------------------------------------

#[test]
fn a_go_bbr_artifact_uploaded_with_the_aws_cli_restores_from_s3() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-go-artifact";
    weed.create_bucket(bucket).unwrap();
    let prefix = "director/bosh_20170516T130600Z";
    s3_put_dir(&weed, bucket, prefix, &fixture("director-backup"), &[]);
    let jobs = [
        "amazing-backup-and-restore",
        "remarkable-backup-and-restore",
        "test-backup-and-restore",
    ];
    let h = Harness::new();
    for job in jobs {
        restore_scripts(&h, job);
    }
    let url = format!("s3://{bucket}/{prefix}");
    let run = run_with(
        h.command(&["restore", "--artifact-path", &url]),
        &s3_env(&weed),
    );
    assert_eq!(run.code(), 0, "{}", run.show());
    for job in jobs {
        assert_eq!(
            h.vm.read(format!("store/data/{job}/backup")).unwrap(),
            "this is a backup\n",
            "{job}"
        );
        assert!(
            run.stdout().contains(&format!(
                "INFO - Copying backup -- 4.0K uncompressed -- for job {job} on bosh/0..."
            )),
            "{}",
            run.show()
        );
    }
    assert_eq!(h.events().len(), 9, "{:?}", h.events());
    assert!(!h.remote_marker_exists());
    // The restore only read: the artifact is as uploaded.
    let listed = aws(
        &weed,
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            bucket,
            "--query",
            "length(Contents)",
        ],
    );
    assert_eq!(listed.trim(), "4");
}

// ----- a stored tar goes through the restore gate -----------------------------------------

/// A one-job artifact for `bosh` whose tar holds the file `tool` (`tool\n`, mode `mode`) of
/// the local directory `src`, named as `tar --transform` makes it, uploaded to
/// `s3://bucket/prefix` with the AWS CLI.
fn put_tool_artifact(weed: &SeaweedFs, bucket: &str, prefix: &str, mode: u32, transform: &str) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("tool"), "tool\n").unwrap();
    std::fs::set_permissions(src.join("tool"), std::fs::Permissions::from_mode(mode)).unwrap();
    let tar = tmp.path().join("bosh-0-bosh.tar");
    let status = std::process::Command::new("tar")
        .arg("-cPf")
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .args(["--transform", transform, "tool"])
        .status()
        .unwrap();
    assert!(status.success());
    let entry = transform
        .strip_prefix("s,^,")
        .unwrap()
        .trim_end_matches(',');
    let names = tar_names(&std::fs::read(&tar).unwrap());
    assert_eq!(names, [format!("{entry}tool")]);
    std::fs::write(
        tmp.path().join("metadata"),
        format!(
            "instances:\n- name: bosh\n  index: \"0\"\n  artifacts:\n  - name: bosh\n    checksums:\n      {entry}tool: {}\n",
            sha256_hex(b"tool\n")
        ),
    )
    .unwrap();
    std::fs::remove_dir_all(&src).unwrap();
    s3_put_dir(weed, bucket, prefix, tmp.path(), &[]);
}

#[test]
fn a_stored_tar_is_checked_in_the_stream_set_uid_bits_stripped_and_escapes_refused() {
    use std::os::unix::fs::PermissionsExt;
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-gate";
    weed.create_bucket(bucket).unwrap();
    let h = Harness::new();
    restore_scripts(&h, "bosh");

    // An entry leaving the job's directory: refused by the gate, before any script.
    put_tool_artifact(&weed, bucket, "escape", 0o644, "s,^,./../,");
    let run = refused_restore(&h, &weed, &format!("s3://{bucket}/escape"));
    assert!(
        run.stderr().contains("./../tool"),
        "names the entry: {}",
        run.show()
    );
    assert!(!h.vm.exists("store/bbr-backup/tool") && !h.vm.exists("store/tool"));

    // A set-uid file: restored, without the bit, with a warning (the VM's tar never sees
    // the bit: the header is rewritten in the stream).
    put_tool_artifact(&weed, bucket, "setuid", 0o4755, "s,^,./,");
    let run = run_with(
        h.command(&[
            "restore",
            "--artifact-path",
            &format!("s3://{bucket}/setuid"),
        ]),
        &s3_env(&weed),
    );
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout().contains(&format!(
            "Restoring ./tool of s3://{bucket}/setuid/bosh-0-bosh.tar on bosh/0 without its set-uid/set-gid bits (mode 4755 becomes 0755)"
        )),
        "{}",
        run.show()
    );
    let restored = h.vm.vcap_path("store/data/bosh/tool");
    assert_eq!(std::fs::read_to_string(&restored).unwrap(), "tool\n");
    let mode = std::fs::metadata(&restored).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755, "{}", run.show());
}
