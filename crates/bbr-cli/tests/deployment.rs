//! `bbr deployment` end to end against the BOSH director simulator and real sshd VMs
//! (following Go bbr's `integration/deployment/*_test.go`).

mod support;

use bbr_director_sim::{
    AuthMode, DeploymentSpec, InstanceGroupSpec, JobSpec, Os, SimOptions, TaskKind,
};
use bbr_testkit::Vm;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::deployment::{Deployment, FOOTER, group};
use support::{Run, Script, fixture};

#[test]
fn single_instance_backup_through_the_director() {
    let h = Deployment::one(
        "redis",
        vec![group(
            "redis-dedicated-node",
            1,
            &[("redis", "redis-release")],
        )],
    );
    h.instance("redis", "redis-dedicated-node", 0)
        .job("redis")
        .backup_scripts();
    let run = h.bbr("redis", &["backup", "--with-manifest"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let artifact = h.artifact();
    let name = artifact.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("redis_") && name.ends_with('Z'), "{name}");
    assert!(artifact.join("redis-dedicated-node-0-redis.tar").exists());
    assert_eq!(
        std::fs::read_to_string(artifact.join("manifest.yml")).unwrap(),
        h.sim.manifest("redis")
    );
    let metadata = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    assert!(metadata.starts_with("instances:\n- name: redis-dedicated-node\n  index: \"0\"\n  artifacts:\n  - name: redis\n    checksums:\n      ./data: "), "{metadata}");
    assert_eq!(
        h.events("redis"),
        vec![
            "redis-dedicated-node/0 redis pre-backup-lock",
            "redis-dedicated-node/0 redis backup",
            "redis-dedicated-node/0 redis post-backup-unlock true",
        ]
    );
    assert!(
        h.sim.temp_users().is_empty(),
        "temporary users removed: {:?}",
        h.sim.temp_users()
    );
    let requests = h.sim.requests();
    assert_eq!(
        requests.first().map(String::as_str),
        Some("GET /info"),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r == "GET /deployments/redis/vms?format=full"),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r == "POST /deployments/redis/ssh"),
        "{requests:?}"
    );
    assert!(
        run.stdout().contains("INFO - redis-dedicated-node/"),
        "{}",
        run.show()
    );
}

#[test]
fn lock_order_across_instance_groups_and_release_matching() {
    let h = Deployment::one(
        "cf",
        vec![
            group("api", 1, &[("capi", "capi-release")]),
            group("db", 2, &[("redis-server", "redis-release")]),
        ],
    );
    let api = h.instance("cf", "api", 0);
    api.job("capi").script(
        Script::Metadata,
        "echo 'backup_should_be_locked_before:\n- job_name: redis-server\n  release: redis-release'",
    );
    api.job("capi").backup_scripts();
    for i in 0..2 {
        h.instance("cf", "db", i)
            .job("redis-server")
            .backup_scripts();
    }
    let run = h.bbr("cf", &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let events = h.events("cf");
    let pos = |e: &str| {
        events
            .iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("{e} not in {events:?}"))
    };
    for i in 0..2 {
        assert!(
            pos("api/0 capi pre-backup-lock")
                < pos(&format!("db/{i} redis-server pre-backup-lock"))
        );
        assert!(
            pos(&format!("db/{i} redis-server post-backup-unlock true"))
                < pos("api/0 capi post-backup-unlock true")
        );
    }
    let artifact = h.artifact();
    for f in [
        "api-0-capi.tar",
        "db-0-redis-server.tar",
        "db-1-redis-server.tar",
    ] {
        assert!(artifact.join(f).exists(), "{f}");
    }
}

#[test]
fn restores_the_go_bbr_redis_fixture_into_a_deployment_of_that_shape() {
    let h = Deployment::one(
        "redis",
        vec![
            group("redis", 2, &[("redis-server", "redis")]),
            group("other-redis", 1, &[("redis-server", "redis")]),
        ],
    );
    for (g, n) in [("redis", 2), ("other-redis", 1)] {
        for i in 0..n {
            h.instance("redis", g, i).job("redis-server").script(
                Script::Restore,
                "mkdir -p /var/vcap/store/restored && cp -a \"$BBR_ARTIFACT_DIRECTORY\"/. /var/vcap/store/restored/",
            );
        }
    }
    let run = h.bbr(
        "redis",
        &[
            "restore",
            "--artifact-path",
            &fixture("redis-backup").to_string_lossy(),
        ],
    );
    assert_eq!(run.code(), 0, "{}", run.show());
    for (g, i) in [("redis", 0), ("redis", 1), ("other-redis", 0)] {
        let vm = h.instance("redis", g, i).vm();
        assert!(vm.exists("store/restored/redis-server/dump.rdb"), "{g}/{i}");
        assert!(
            vm.exists("store/restored/redis-server/appendonly.aof"),
            "{g}/{i}"
        );
    }
    assert!(h.sim.temp_users().is_empty());
}

#[test]
fn restore_refuses_a_deployment_of_another_shape() {
    let h = Deployment::one(
        "redis",
        vec![group("redis", 1, &[("redis-server", "redis")])],
    );
    h.instance("redis", "redis", 0)
        .job("redis-server")
        .script(Script::Restore, "");
    let run = h.bbr(
        "redis",
        &["restore", "-a", &fixture("redis-backup").to_string_lossy()],
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("Deployment 'redis' does not match the structure of the provided backup"),
        "{}",
        run.show()
    );
    assert!(h.events("redis").is_empty());
}

#[test]
fn backup_one_restore_all() {
    let spec = DeploymentSpec::new("d").group(
        InstanceGroupSpec::new("redis", 2)
            .job(JobSpec::new("redis-server", "redis-test").backup_one_restore_all()),
    );
    let h = Deployment::start(vec![spec], SimOptions::new());
    for i in 0..2 {
        h.instance("d", "redis", i).job("redis-server").script(
            Script::Backup,
            &format!("echo 'from {i}' > \"$BBR_ARTIFACT_DIRECTORY/redis-backup\""),
        );
        h.instance("d", "redis", i).job("redis-server").script(
            Script::Restore,
            "cp \"$BBR_ARTIFACT_DIRECTORY/redis-backup\" /var/vcap/store/restored",
        );
    }
    let run = h.bbr("d", &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let artifact = h.artifact();
    assert!(
        artifact
            .join("redis-server-redis-test-backup-one-restore-all.tar")
            .exists()
    );
    assert!(artifact.join("redis-1-redis-server.tar").exists());
    let metadata = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    assert!(
        metadata.contains(
            "custom_artifacts:\n- name: redis-server-redis-test-backup-one-restore-all\n"
        ),
        "{metadata}"
    );
    let run = h.bbr("d", &["restore", "-a", &artifact.to_string_lossy()]);
    assert_eq!(run.code(), 0, "{}", run.show());
    for i in 0..2 {
        assert_eq!(
            h.instance("d", "redis", i)
                .vm()
                .read("store/restored")
                .unwrap(),
            "from 0\n",
            "instance {i} restored from the bootstrap's backup"
        );
    }
}

#[test]
fn a_missing_deployment_fails_cleanly() {
    let h = Deployment::one(
        "redis",
        vec![group("redis", 1, &[("redis-server", "redis")])],
    );
    let run = h.bbr("nope", &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("Director responded with non-successful status code"),
        "{}",
        run.show()
    );
    assert!(!run.stderr().contains(FOOTER));
}

#[test]
fn uaa_authentication_and_a_wrong_secret() {
    let spec = DeploymentSpec::new("d").group(group("g", 1, &[("j", "r")]));
    let h = Deployment::start(
        vec![spec],
        SimOptions::new().auth(AuthMode::uaa(
            "bbr-client",
            "uaa-secret",
            std::time::Duration::from_secs(600),
        )),
    );
    h.instance("d", "g", 0).job("j").backup_scripts();
    let run = h.bbr("d", &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let mut bad = h.command(Some("d"), &["pre-backup-check"]);
    let args: Vec<String> = bad
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let pos = args.iter().position(|a| a == "--password").unwrap();
    let mut fixed = Command::new(env!("CARGO_BIN_EXE_bbr"));
    let mut args = args.clone();
    args[pos + 1] = "wrong-secret".into();
    fixed.current_dir(h.work.path()).args(&args);
    let run = Run(fixed.output().unwrap());
    let _ = &mut bad;
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(run.stderr().contains("UAA"), "{}", run.show());
    assert!(!run.stderr().contains("wrong-secret") && !run.stdout().contains("wrong-secret"));
}

#[test]
fn a_wrong_ca_is_refused() {
    let h = Deployment::one("d", vec![group("g", 1, &[("j", "r")])]);
    let other = rcgen_free_ca(h.work.path());
    let out = Command::new(env!("CARGO_BIN_EXE_bbr"))
        .args([
            "deployment",
            "-t",
            h.sim.url(),
            "-u",
            h.sim.username(),
            "-p",
            h.sim.password(),
            "-d",
            "d",
            "--ca-cert",
        ])
        .arg(&other)
        .arg("pre-backup-check")
        .output()
        .unwrap();
    let run = Run(out);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("bosh director unreachable or unhealthy"),
        "{}",
        run.show()
    );
}

/// A CA certificate that did not sign the simulator's certificate.
fn rcgen_free_ca(dir: &Path) -> PathBuf {
    let key = dir.join("other-ca.key");
    let cert = dir.join("other-ca.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=other",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    cert
}

#[test]
fn ssh_setup_failure_is_reported_and_created_users_removed() {
    let h = Deployment::one(
        "d",
        vec![group("a", 1, &[("j", "r")]), group("b", 1, &[("j", "r")])],
    );
    h.instance("d", "a", 0).job("j").backup_scripts();
    h.instance("d", "b", 0).job("j").backup_scripts();
    h.sim.fail_ssh_setup("b");
    let run = h.bbr("d", &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains("failed to set up ssh"),
        "{}",
        run.show()
    );
    assert!(h.sim.temp_users().is_empty(), "{:?}", h.sim.temp_users());
    assert!(h.events("d").is_empty());
}

#[test]
fn no_backup_scripts_and_disabled_jobs() {
    let h = Deployment::one("d", vec![group("g", 1, &[("j", "r")])]);
    let g0 = h.instance("d", "g", 0);
    g0.job("j").script(Script::Backup, "");
    g0.job("j")
        .script(Script::Metadata, "echo 'skip_bbr_scripts: true'");
    let run = h.bbr("d", &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("Deployment 'd' has no backup scripts"),
        "{}",
        run.show()
    );
    assert!(h.sim.temp_users().is_empty());
}

#[test]
fn pre_backup_check_wording() {
    let h = Deployment::one("d", vec![group("g", 1, &[("j", "r")])]);
    let g0 = h.instance("d", "g", 0);
    g0.job("j").backup_scripts();
    let run = h.bbr("d", &["pre-backup-check"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout().contains("Deployment 'd' can be backed up."),
        "{}",
        run.show()
    );
    g0.vm()
        .install_file("store/bbr-backup/x", "x", 0o644)
        .unwrap();
    let run = h.bbr("d", &["pre-backup-check"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout().contains("Deployment 'd' cannot be backed up."),
        "{}",
        run.show()
    );
    assert!(run.stderr().contains(FOOTER), "{}", run.show());
}

#[test]
fn all_deployments_backup_and_cleanup() {
    let h = Deployment::start(
        vec![
            DeploymentSpec::new("first").group(group("g", 1, &[("j", "r")])),
            DeploymentSpec::new("second").group(group("g", 1, &[("j", "r")])),
        ],
        SimOptions::new(),
    );
    h.instance("first", "g", 0).job("j").backup_scripts();
    h.instance("second", "g", 0)
        .job("j")
        .script(Script::Backup, "echo broken >&2; exit 1");
    let artifacts = h.work.path().join("artifacts");
    std::fs::create_dir(&artifacts).unwrap();
    let run = Run(h
        .command(None, &["backup", "-a", &artifacts.to_string_lossy()])
        .output()
        .unwrap());
    assert_eq!(run.code(), 1, "{}", run.show());
    let out = run.stdout();
    assert!(out.starts_with("Starting backup...\n"), "{out}");
    assert!(out.contains("] Pending: first, second\n"), "{out}");
    assert!(
        out.contains("] Starting backup of first, log file: "),
        "{out}"
    );
    assert!(out.contains("] Finished backup of first\n"), "{out}");
    assert!(out.contains("] ERROR: failed to backup second\n"), "{out}");
    assert!(out.contains("] Successfully backed up: first\n"), "{out}");
    assert!(out.contains("] FAILED: second\n"), "{out}");
    let err = run.stderr();
    assert!(
        err.starts_with(
            "1 out of 2 deployments cannot be backed up:\n  second\n\nDeployment 'second':\n"
        ),
        "{err}"
    );
    let logs: Vec<String> = std::fs::read_dir(&artifacts)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");

    let run = Run(h.command(None, &["backup-cleanup"]).output().unwrap());
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout()
            .contains("] Successfully cleaned up: first, second"),
        "{}",
        run.show()
    );
}

#[test]
fn unsafe_lock_free_skips_lock_and_unlock() {
    let h = Deployment::one("d", vec![group("g", 1, &[("j", "r")])]);
    h.instance("d", "g", 0).job("j").backup_scripts();
    let run = h.bbr("d", &["backup", "--unsafe-lock-free"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert_eq!(h.events("d"), vec!["g/0 j backup"]);
    for line in [
        "Skipping lock for deployment",
        "Skipping unlock after successful backup for deployment",
    ] {
        assert!(run.stdout().contains(line), "{line}: {}", run.show());
    }
}

#[test]
fn windows_instances_are_skipped_with_a_warning() {
    let h = Deployment::one(
        "d",
        vec![
            group("linux", 1, &[("j", "r")]),
            group("win", 1, &[("j", "r")]).os(Os::Windows),
        ],
    );
    h.instance("d", "linux", 0).job("j").backup_scripts();
    let run = h.bbr("d", &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout()
            .contains("WARN - skipping Windows instance win/"),
        "{}",
        run.show()
    );
    assert!(
        h.sim.temp_users().is_empty(),
        "the skipped instance's user is removed too: {:?}",
        h.sim.temp_users()
    );
}

#[test]
fn ssh_user_cleanup_failure_after_a_good_backup_exits_16_with_the_artifact_kept() {
    let h = Deployment::one("d", vec![group("g", 1, &[("j", "r")])]);
    h.instance("d", "g", 0).job("j").backup_scripts();
    h.sim.fail_task(TaskKind::SshCleanup);
    let run = h.bbr("d", &["backup"]);
    assert_eq!(run.code(), 16, "{}", run.show());
    assert!(
        run.stderr()
            .contains("Deployment 'd' failed while cleaning up with error:"),
        "{}",
        run.show()
    );
    assert!(run.stderr().contains(FOOTER));
    assert!(h.artifact().join("g-0-j.tar").exists());
}

#[test]
fn an_expired_uaa_token_is_refreshed() {
    let spec = DeploymentSpec::new("d").group(group("g", 2, &[("j", "r")]));
    let h = Deployment::start(
        vec![spec],
        SimOptions::new().auth(AuthMode::uaa("c", "s", std::time::Duration::from_secs(1))),
    );
    for i in 0..2 {
        h.instance("d", "g", i).job("j").script(
            Script::Backup,
            "sleep 1.2; echo x > \"$BBR_ARTIFACT_DIRECTORY/x\"",
        );
    }
    let run = h.bbr("d", &["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        h.sim.tokens_issued() >= 2,
        "a second token was fetched: {}",
        h.sim.tokens_issued()
    );
    assert!(h.sim.temp_users().is_empty());
}

fn jump_host() -> Vm {
    Vm::start(bbr_testkit::VmOptions::new().log_level("DEBUG1")).expect("start the jump host")
}

#[test]
fn bosh_all_proxy_ssh_tunnel_through_a_jump_host() {
    let h = Deployment::one("d", vec![group("g", 2, &[("j", "r")])]);
    for i in 0..2 {
        h.instance("d", "g", i).job("j").backup_scripts();
    }
    let jump = jump_host();
    let proxy = format!(
        "ssh+socks5://{}@{}?private-key={}",
        jump.user(),
        jump.host_arg(),
        jump.client_key_path().display()
    );
    let out = h
        .command(Some("d"), &["backup"])
        .env("BOSH_ALL_PROXY", &proxy)
        .env("HOME", h.work.path())
        .output()
        .unwrap();
    let run = Run(out);
    assert_eq!(run.code(), 0, "{}", run.show());
    let log = jump.log();
    for inst in h.sim.instances("d") {
        let target = format!("target {} port {}", inst.vm.addr(), inst.vm.port());
        assert!(
            log.contains(&target),
            "{target} was reached through the jump host:\n{log}"
        );
    }
    let director = format!("target 127.0.0.1 port {}", h.sim.addr().port());
    assert!(
        log.contains(&director),
        "the director was reached through the jump host:\n{log}"
    );
    assert_eq!(
        log.matches("Accepted publickey").count(),
        1,
        "one connection to the jump host carries everything"
    );
    assert!(
        run.stdout().contains("Permanently added the host key of"),
        "the jump host's key is recorded: {}",
        run.show()
    );
}

#[test]
fn bosh_all_proxy_plain_socks5() {
    let h = Deployment::one("d", vec![group("g", 1, &[("j", "r")])]);
    let g0 = h.instance("d", "g", 0);
    g0.job("j").backup_scripts();
    let jump = jump_host();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut socks = Command::new("ssh")
        .args([
            "-N",
            "-D",
            &format!("127.0.0.1:{port}"),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-i",
        ])
        .arg(jump.client_key_path())
        .args([
            "-p",
            &jump.port().to_string(),
            &format!("{}@{}", jump.user(), jump.addr()),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    bbr_testkit::wait::until(
        "ssh -D to listen",
        std::time::Duration::from_secs(30),
        || {
            assert!(socks.try_wait().unwrap().is_none(), "ssh -D exited");
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        },
    );
    let out = h
        .command(Some("d"), &["backup"])
        .env("BOSH_ALL_PROXY", format!("socks5://127.0.0.1:{port}"))
        .output()
        .unwrap();
    let _ = socks.kill();
    let _ = socks.wait();
    let run = Run(out);
    assert_eq!(run.code(), 0, "{}", run.show());
    let vm = g0.vm();
    let target = format!("target {} port {}", vm.addr(), vm.port());
    assert!(
        jump.log().contains(&target),
        "the VM was reached through the proxy: {}",
        run.show()
    );
}

#[test]
fn a_malformed_bosh_all_proxy_is_named() {
    let h = Deployment::one("d", vec![group("g", 1, &[("j", "r")])]);
    let run = Run(h
        .command(Some("d"), &["backup"])
        .env("BOSH_ALL_PROXY", "ssh+socks5://host:22")
        .output()
        .unwrap());
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("BOSH_ALL_PROXY"), "{}", run.show());
}

#[test]
fn a_vm_whose_host_key_differs_from_the_directors_answer_is_refused() {
    let h = Deployment::one("d", vec![group("g", 1, &[("j", "r")])]);
    let g0 = h.instance("d", "g", 0);
    g0.job("j").backup_scripts();
    // sshd reads its host key for every new connection: swap it behind the director's back.
    let fresh = h.work.path().join("impostor_key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&fresh)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::copy(&fresh, g0.vm().root().join("host_key")).unwrap();
    let run = h.bbr("d", &["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("not the key the BOSH director reported"),
        "{}",
        run.show()
    );
    assert!(h.events("d").is_empty(), "nothing ran on an unverified VM");
    assert!(h.sim.temp_users().is_empty(), "{:?}", h.sim.temp_users());
}

#[test]
fn all_deployments_listing_failure_and_no_deployments() {
    let h = Deployment::one("d", vec![group("g", 1, &[("j", "r")])]);
    h.sim.fail_next("/deployments", 500);
    let run = Run(h.command(None, &["pre-backup-check"]).output().unwrap());
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("Director responded with non-successful status code '500'"),
        "{}",
        run.show()
    );

    let empty = Deployment::start(vec![], SimOptions::new());
    let run = Run(empty.command(None, &["backup"]).output().unwrap());
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains("Failed to find any deployments"),
        "{}",
        run.show()
    );
}

/// Go's system test "when a job is disabled / restores only the enabled job", with its
/// fixture `redis-backup-with-disabled-job` (one instance `redis`/0, job `redis-server`) read
/// in place: the deployment also has a `disabled-job` group whose job's metadata says
/// `skip_bbr_scripts`. Only the enabled job locks, restores (byte for byte) and unlocks.
#[test]
fn restores_the_go_fixture_with_a_disabled_job_into_the_enabled_job_only() {
    let d = "redis-with-disabled-job";
    let h = Deployment::one(
        d,
        vec![
            group("redis", 1, &[("redis-server", "redis")]),
            group("disabled-job", 1, &[("redis-server", "redis")]),
        ],
    );
    let disabled = h.instance(d, "disabled-job", 0);
    for g in ["redis", "disabled-job"] {
        h.instance(d, g, 0)
            .job("redis-server")
            .script(Script::PreRestoreLock, "");
        h.instance(d, g, 0).job("redis-server").script(
            Script::Restore,
            "mkdir -p /var/vcap/store/restored && cp -a \"$BBR_ARTIFACT_DIRECTORY\"/. /var/vcap/store/restored/",
        );
        h.instance(d, g, 0)
            .job("redis-server")
            .script(Script::PostRestoreUnlock, "");
    }
    disabled
        .job("redis-server")
        .script(Script::Metadata, "echo '---\nskip_bbr_scripts: true'");
    let artifact = fixture("redis-backup-with-disabled-job");
    let run = h.bbr(
        d,
        &["restore", "--artifact-path", &artifact.to_string_lossy()],
    );
    assert_eq!(run.code(), 0, "{}", run.show());
    assert_eq!(
        h.events(d),
        vec![
            // Its metadata is what disables the job; nothing else runs there.
            "disabled-job/0 redis-server metadata",
            "redis/0 redis-server pre-restore-lock",
            "redis/0 redis-server restore",
            "redis/0 redis-server post-restore-unlock",
        ],
        "{}",
        run.show()
    );
    // The restored files hash to the checksums Go bbr recorded in the fixture's metadata.
    for (file, sha) in [
        (
            "redis-server/appendonly.aof",
            "be1b7e4e577b7cbcd556ec75f2f4b2e2d3afca1e40f8ce5a2b748b462cf4bd53",
        ),
        (
            "redis-server/dump.rdb",
            "ba3589985f5f4869fe62d155faee8e59c328b42875cb7e3fbb18c7b8152a92d2",
        ),
    ] {
        let got = h
            .instance(d, "redis", 0)
            .vm()
            .read_bytes(format!("store/restored/{file}"))
            .unwrap();
        assert_eq!(support::sha256_hex(&got), sha, "{file}");
    }
    assert!(!disabled.vm().exists("store/restored"));
    assert!(h.sim.temp_users().is_empty());
}

/// The other side of the case above: a job that is *not* disabled and has no artifact in the
/// backup fails the restore before anything is locked, with Go's CopyToRemote error, and
/// what was uploaded is removed.
#[test]
fn an_enabled_job_without_an_artifact_fails_the_restore_before_any_lock() {
    let d = "redis-with-extra-job";
    let h = Deployment::one(
        d,
        vec![group(
            "redis",
            1,
            &[("redis-server", "redis"), ("extra", "redis")],
        )],
    );
    let redis0 = h.instance(d, "redis", 0);
    for job in ["redis-server", "extra"] {
        redis0.job(job).script(Script::PreRestoreLock, "");
        redis0.job(job).script(Script::Restore, "");
        redis0.job(job).script(Script::PostRestoreUnlock, "");
    }
    let artifact = fixture("redis-backup-with-disabled-job");
    let run = h.bbr(
        d,
        &["restore", "--artifact-path", &artifact.to_string_lossy()],
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains(
            "Unable to send backup to remote machine. Got error: the backup has no artifact redis-0-extra.tar for job extra on redis/"
        ),
        "{}",
        run.show()
    );
    assert_eq!(h.events(d), Vec::<String>::new(), "nothing was locked");
    assert!(!redis0.vm().exists("store/bbr-backup"));
    assert!(h.sim.temp_users().is_empty());
}
