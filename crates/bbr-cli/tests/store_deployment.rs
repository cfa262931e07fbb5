//! `bbr deployment backup` and `restore` with an `s3://` artifact path, against the BOSH
//! director simulator with real sshd VMs and a real S3 server (SeaweedFS): one deployment
//! backed up (with its manifest) and restored, and `--all-deployments` backing every
//! deployment up into its own `<deployment>_<timestamp>/` prefix. The built `bbr` gets only
//! the cloud CLI variables; what landed in the bucket is read back with the AWS CLI.

mod support;

use bbr_director_sim::{DeploymentSpec, SimOptions};
use bbr_testkit::stores::SeaweedFs;
use support::Script;
use support::deployment::{Deployment, group};
use support::scenarios::{assert_temp_users_removed, files_in, is_timestamped};
use support::stores::{run_with, s3_env, s3_get, s3_keys, single_artifact, tar_member};

/// Backup scripts on every instance of `d` (each writes `<group>-<index>` to `data`, see
/// `JobRef::backup_scripts`), and restore scripts copying the artifact to
/// `/var/vcap/store/restored`.
fn redis_jobs(h: &Deployment, d: &str, instances: usize) {
    for i in 0..instances {
        let job = h.instance(d, "redis", i).job("redis");
        job.backup_scripts();
        job.script(Script::PreRestoreLock, "");
        job.script(
            Script::Restore,
            "mkdir -p /var/vcap/store/restored\ncp -a \"$BBR_ARTIFACT_DIRECTORY\"/. /var/vcap/store/restored/",
        );
        job.script(Script::PostRestoreUnlock, "");
    }
}

fn forget_events(h: &Deployment, d: &str) {
    for vm in h.sim.vms(d) {
        let log = vm.vcap_path("sys/events/log");
        if log.exists() {
            std::fs::remove_file(log).unwrap();
        }
    }
}

#[test]
fn a_deployment_backs_up_to_s3_with_its_manifest_and_restores_from_there() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-deployment";
    weed.create_bucket(bucket).unwrap();
    let d = "redis-dep";
    let h = Deployment::one(d, vec![group("redis", 2, &[("redis", "redis")])]);
    redis_jobs(&h, d, 2);
    let url = format!("s3://{bucket}/deployments");
    let run = run_with(
        h.command(
            Some(d),
            &["backup", "--with-manifest", "--artifact-path", &url],
        ),
        &s3_env(&weed),
    );
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        files_in(h.work.path()).is_empty()
            && std::fs::read_dir(h.work.path()).unwrap().count() == 0,
        "nothing written locally: {:?}",
        files_in(h.work.path())
    );

    let keys = s3_keys(&weed, bucket);
    let (dir, files) = single_artifact(&keys, "deployments", d);
    assert_eq!(
        files,
        [
            "manifest.yml",
            "metadata",
            "redis-0-redis.tar",
            "redis-1-redis.tar"
        ]
    );
    let key = |name: &str| format!("deployments/{dir}/{name}");
    for i in 0..2 {
        let tar = s3_get(&weed, bucket, &key(&format!("redis-{i}-redis.tar")));
        assert_eq!(
            tar_member(&tar, "./data"),
            format!("redis-{i}\n").as_bytes()
        );
    }
    assert_eq!(
        String::from_utf8(s3_get(&weed, bucket, &key("manifest.yml"))).unwrap(),
        h.sim.manifest(d)
    );
    let metadata = String::from_utf8(s3_get(&weed, bucket, &key("metadata"))).unwrap();
    for i in 0..2 {
        assert!(
            metadata.contains(&format!(
                "- name: redis\n  index: \"{i}\"\n  artifacts:\n  - name: redis\n    checksums:\n      ./data: {}\n",
                support::sha256_hex(format!("redis-{i}\n").as_bytes())
            )),
            "{metadata}"
        );
    }
    assert!(weed.multipart_uploads(bucket).unwrap().is_empty());
    assert_temp_users_removed(&h);

    forget_events(&h, d);
    let run = run_with(
        h.command(
            Some(d),
            &["restore", "--artifact-path", &format!("{url}/{dir}")],
        ),
        &s3_env(&weed),
    );
    assert_eq!(run.code(), 0, "{}", run.show());
    for i in 0..2 {
        let vm = h.instance(d, "redis", i).vm();
        assert_eq!(
            vm.read("store/restored/data").unwrap(),
            format!("redis-{i}\n")
        );
        assert!(!vm.exists("store/bbr-backup"));
    }
    let mut events = h.events(d);
    events.sort();
    assert_eq!(
        events,
        [
            "redis/0 redis post-restore-unlock",
            "redis/0 redis pre-restore-lock",
            "redis/0 redis restore",
            "redis/1 redis post-restore-unlock",
            "redis/1 redis pre-restore-lock",
            "redis/1 redis restore",
        ]
    );
    assert_eq!(s3_keys(&weed, bucket), keys, "the restore wrote nothing");
    assert_temp_users_removed(&h);
}

#[test]
fn all_deployments_back_up_to_s3_each_into_its_own_prefix_with_logs_in_the_working_dir() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-all";
    weed.create_bucket(bucket).unwrap();
    let names = ["first-dep", "second-dep"];
    let h = Deployment::start(
        names
            .iter()
            .map(|d| DeploymentSpec::new(*d).group(group("redis", 1, &[("redis", "redis")])))
            .collect(),
        SimOptions::new(),
    );
    for d in names {
        redis_jobs(&h, d, 1);
    }
    let run = run_with(
        h.command(
            None,
            &["backup", "--artifact-path", &format!("s3://{bucket}/all")],
        ),
        &s3_env(&weed),
    );
    assert_eq!(run.code(), 0, "{}", run.show());

    let keys = s3_keys(&weed, bucket);
    assert_eq!(keys.len(), 4, "{keys:?}");
    for d in names {
        let own: Vec<String> = keys
            .iter()
            .filter(|k| k.starts_with(&format!("all/{d}_")))
            .cloned()
            .collect();
        let (dir, files) = single_artifact(&own, "all", d);
        assert_eq!(files, ["metadata", "redis-0-redis.tar"], "{keys:?}");
        let tar = s3_get(&weed, bucket, &format!("all/{dir}/redis-0-redis.tar"));
        assert_eq!(tar_member(&tar, "./data"), b"redis-0\n");
        let metadata =
            String::from_utf8(s3_get(&weed, bucket, &format!("all/{dir}/metadata"))).unwrap();
        assert!(metadata.contains("finish_time: "), "{metadata}");
        assert_eq!(
            h.events(d),
            [
                "redis/0 redis pre-backup-lock",
                "redis/0 redis backup",
                "redis/0 redis post-backup-unlock true"
            ]
        );
        // The deployment's log file lands in the working directory (a store holds artifacts
        // only) and tells where the artifact went.
        let logs: Vec<String> = files_in(h.work.path())
            .into_iter()
            .filter(|n| is_timestamped(n, d, ".log"))
            .collect();
        assert_eq!(logs.len(), 1, "{d}: {:?}", files_in(h.work.path()));
        assert!(
            run.stdout()
                .contains(&format!("Starting backup of {d}, log file: {}", logs[0])),
            "{}",
            run.show()
        );
        let log = std::fs::read_to_string(h.work.path().join(&logs[0])).unwrap();
        assert!(
            log.contains(&format!("INFO - Backup created of {d} on")),
            "{log}"
        );
    }
    assert!(weed.multipart_uploads(bucket).unwrap().is_empty());
    assert_temp_users_removed(&h);
}
