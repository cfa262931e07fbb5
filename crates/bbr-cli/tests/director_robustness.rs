//! What happens when things go wrong underneath bbr: host keys, dropped connections, full
//! disks, hanging scripts, signals, key types, sudo, secrets.

mod support;

use bbr_testkit::{KeyType, VmOptions};
use std::time::Duration;
use support::live::Live;
use support::*;

/// How long a test waits for an event (a line of output, a script starting, an exit).
const LIMIT: Duration = Duration::from_secs(60);

fn simple_backup(h: &Harness) {
    h.locked_backup_job("bosh", "echo data > \"$BBR_ARTIFACT_DIRECTORY/d\"");
}

#[test]
fn unknown_host_key_is_recorded_with_a_warning_and_a_changed_one_refused() {
    let mut h = Harness::new();
    simple_backup(&h);
    let first = h.bbr(&["pre-backup-check"]);
    assert_eq!(first.code(), 0, "{}", first.show());
    assert!(
        first
            .stdout()
            .contains("WARN - Permanently added the host key"),
        "{}",
        first.show()
    );
    let known = std::fs::read_to_string(h.known_hosts()).unwrap();
    assert!(
        known.contains(&format!("[{}]:{}", h.vm.addr(), h.vm.port())),
        "{known}"
    );

    let second = h.bbr(&["pre-backup-check"]);
    assert_eq!(second.code(), 0);
    assert!(!second.stdout().contains("WARN"), "{}", second.show());

    h.vm.regenerate_host_key().unwrap();
    let changed = h.bbr(&["backup"]);
    assert_eq!(changed.code(), 1, "{}", changed.show());
    assert!(
        changed.stderr().contains("host key verification failed"),
        "{}",
        changed.show()
    );
    assert!(
        changed
            .stderr()
            .contains(&h.known_hosts().display().to_string())
    );
    assert!(h.events().is_empty(), "nothing ran on an unverified host");
}

#[test]
fn every_client_key_type_works() {
    for key_type in [KeyType::Rsa, KeyType::Ecdsa, KeyType::Ed25519] {
        let h = Harness::with(
            VmOptions::new()
                .client_key_type(key_type)
                .host_key_type(key_type),
        );
        simple_backup(&h);
        let run = h.bbr(&["backup"]);
        assert_eq!(run.code(), 0, "{key_type:?}: {}", run.show());
    }
}

#[test]
fn a_user_without_passwordless_sudo_gets_a_clear_error() {
    let h = Harness::with(VmOptions::new().without_sudo());
    simple_backup(&h);
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains("finding scripts failed on bosh/0"),
        "{}",
        run.show()
    );
    assert!(
        run.stderr().contains("password-less sudo"),
        "{}",
        run.show()
    );
}

#[test]
fn unreadable_and_invalid_keys_and_unresolvable_hosts() {
    let h = Harness::new();
    let bad_key = h.work.path().join("bad_key");
    std::fs::write(&bad_key, "not a key").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bbr"))
        .current_dir(h.work.path())
        .args([
            "director",
            "--host",
            &h.vm.host_arg(),
            "-u",
            "vcap",
            "--key",
        ])
        .arg(&bad_key)
        .arg("backup")
        .output()
        .unwrap();
    let run = Run(out);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr()
            .contains("ssh.NewConnection.ParsePrivateKey failed"),
        "{}",
        run.show()
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bbr"))
        .current_dir(h.work.path())
        .args([
            "director",
            "--host",
            "no-such-host.invalid",
            "-u",
            "vcap",
            "--key",
        ])
        .arg(h.vm.client_key_path())
        .arg("backup")
        .output()
        .unwrap();
    let run = Run(out);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr()
            .contains("ssh.Dial failed: no-such-host.invalid"),
        "{}",
        run.show()
    );
}

#[test]
fn the_private_key_never_reaches_output_or_logs() {
    let h = Harness::new();
    h.script("bosh", Script::Backup, "echo oops >&2; exit 1");
    let run = h.bbr(&["--debug", "backup"]);
    assert_eq!(run.code(), 1);
    let key = std::fs::read_to_string(h.vm.client_key_path()).unwrap();
    let mut logs = String::new();
    for e in std::fs::read_dir(h.work.path()).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with(".err.log") {
            logs.push_str(&std::fs::read_to_string(e.path()).unwrap());
        }
    }
    assert!(run.stdout().contains("DEBUG"), "debug output is on");
    for line in key
        .lines()
        .filter(|l| l.len() > 20 && !l.starts_with("-----"))
    {
        assert!(
            !run.stdout().contains(line) && !run.stderr().contains(line) && !logs.contains(line)
        );
    }
}

#[test]
fn a_hanging_script_is_killed_at_the_timeout_and_jobs_are_unlocked() {
    let h = Harness::new();
    h.locked_backup_job(
        "bosh",
        "echo $$ > /var/vcap/sys/backup.pid\nsleep 300 &\nwait",
    );
    let started = std::time::Instant::now();
    let run = h.bbr(&["--script-timeout", "2s", "backup"]);
    assert!(
        started.elapsed().as_secs() < 60,
        "bbr waited for the script"
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains("timed out after 2s"),
        "{}",
        run.show()
    );
    assert_eq!(
        h.events(),
        vec![
            "bosh pre-backup-lock",
            "bosh backup",
            "bosh post-backup-unlock false"
        ]
    );
    let pid = h.vm.read("sys/backup.pid").unwrap();
    let alive = std::path::Path::new(&format!("/proc/{}", pid.trim())).exists();
    assert!(!alive, "the script's process group is gone");
    assert!(!h.remote_marker_exists());
}

#[test]
fn sigterm_kills_the_running_script_unlocks_and_cleans_up() {
    let h = Harness::new();
    h.locked_backup_job("bosh", "touch /var/vcap/sys/backup-started\nsleep 300");
    let mut live = Live::start(h.command(&["backup"]), LIMIT);
    live.wait_for_line("Backing up bosh on bosh/0...");
    // wait until the script itself is running, then terminate bbr
    bbr_testkit::wait::until("the backup script to start", LIMIT, || {
        h.vm.exists("sys/backup-started")
    });
    live.signal(libc::SIGTERM);
    let (code, out, _) = live.finish(LIMIT);
    assert_ne!(code, 0, "{out}");
    assert_eq!(
        h.events(),
        vec![
            "bosh pre-backup-lock",
            "bosh backup",
            "bosh post-backup-unlock false"
        ],
        "{out}"
    );
    assert!(!h.remote_marker_exists(), "{out}");
}

/// Interrupts a backup while its script runs, answers bbr's question with `answer` once it
/// is asked, then lets the script finish.
fn sigint_run(answer: &str) -> (Harness, Run) {
    let h = Harness::new();
    h.script("bosh", Script::Backup, "touch /var/vcap/sys/backup-started\nwhile [ ! -e /var/vcap/sys/go-on ]; do sleep 0.05; done\necho d > \"$BBR_ARTIFACT_DIRECTORY/d\"");
    let mut live = Live::start(h.command(&["backup"]), LIMIT);
    bbr_testkit::wait::until("the backup script to start", LIMIT, || {
        h.vm.exists("sys/backup-started")
    });
    live.interrupt();
    live.wait_for_line("[yes/no]");
    live.answer(answer);
    h.vm.install_file("sys/go-on", "", 0o644).unwrap();
    let run = live.finish_run(LIMIT);
    (h, run)
}

#[test]
fn sigint_answered_no_lets_the_backup_finish() {
    let (h, run) = sigint_run("no\n");
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(run.stdout().contains("Stopping a backup can leave the system in bad state. Are you sure you want to cancel? [yes/no]\n"), "{}", run.show());
    assert!(
        h.artifact_in(h.work.path())
            .join("bosh-0-bosh.tar")
            .exists()
    );
}

#[test]
fn sigint_answered_yes_exits_1_with_advice() {
    let (_h, run) = sigint_run("yes\n");
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stdout()
            .contains("It is recommended that you run `bbr backup-cleanup`"),
        "{}",
        run.show()
    );
}

#[test]
fn a_connection_dropped_mid_drain_fails_the_backup_and_cleanup_still_happens() {
    let h = Harness::new();
    h.script(
        "bosh",
        Script::Backup,
        "head -c 400000000 /dev/zero > \"$BBR_ARTIFACT_DIRECTORY/big\"",
    );
    h.script("bosh", Script::PostBackupUnlock, "");
    let mut live = Live::start(h.command(&["backup"]), LIMIT);
    // bytes are flowing on the tar channel (killing earlier would only exercise the
    // reconnect that later commands get)
    live.wait_for_line("-- 5% complete");
    let before = live.seen().len();
    h.vm.kill_connections().unwrap();
    let (code, out, stderr) = live.finish(LIMIT);
    let (seen, rest) = out.split_at(before);
    let all = format!("{seen}{rest}\n--- stderr\n{stderr}");
    assert_eq!(code, 1, "{all}");
    assert!(
        stderr.contains("Error streaming backup from remote instance")
            || stderr.contains("Backup is corrupted"),
        "{all}"
    );
    // Progress never claims a copy that did not complete.
    assert!(!all.contains("100% complete"), "{all}");
    assert!(
        stderr.contains("It is recommended that you run `bbr backup-cleanup`"),
        "{all}"
    );
    assert!(
        !h.remote_marker_exists(),
        "bbr reconnected for cleanup: {all}"
    );
    assert!(rest.contains("Failed to create backup of"), "{all}");
}

#[test]
fn a_full_artifact_disk_fails_the_drain_with_a_clear_error() {
    let h = Harness::new();
    h.locked_backup_job(
        "bosh",
        "head -c 8000000 /dev/urandom > \"$BBR_ARTIFACT_DIRECTORY/big\"",
    );
    let small = h.work.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "tests run as root and can mount a small tmpfs"
    );
    let run = h.bbr(&["backup", "--artifact-path", &small.to_string_lossy()]);
    let _ = std::process::Command::new("umount").arg(&small).status();
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains("No space left on device"),
        "{}",
        run.show()
    );
    assert!(
        run.stderr()
            .contains("It is recommended that you run `bbr backup-cleanup`")
    );
    assert_eq!(
        h.events(),
        vec![
            "bosh pre-backup-lock",
            "bosh backup",
            "bosh post-backup-unlock true"
        ]
    );
    assert!(!h.remote_marker_exists());
}

#[test]
fn a_whole_backup_and_restore_each_use_one_ssh_connection() {
    let h = Harness::new();
    for job in ["one", "two", "three"] {
        h.script(job, Script::Metadata, "echo '---'");
        h.locked_backup_job(job, "echo x > \"$BBR_ARTIFACT_DIRECTORY/x\"");
        h.script(job, Script::PreRestoreLock, "");
        h.script(job, Script::Restore, "");
        h.script(job, Script::PostRestoreUnlock, "");
    }
    let logins = |h: &Harness| h.vm.log().matches("Accepted publickey").count();
    let before = logins(&h);
    let backup = h.bbr(&["backup"]);
    assert_eq!(backup.code(), 0, "{}", backup.show());
    assert_eq!(logins(&h) - before, 1, "backup: {}", h.vm.log());
    let artifact = h.artifact_in(h.work.path());
    let before = logins(&h);
    let restore = h.bbr(&["restore", "-a", &artifact.to_string_lossy()]);
    assert_eq!(restore.code(), 0, "{}", restore.show());
    assert_eq!(logins(&h) - before, 1, "restore: {}", h.vm.log());
}

/// By default the scripts are started by the one root process bbr keeps on the VM;
/// `BBR_SUDO_EACH_COMMAND=true` runs each through its own `sudo` (and `timeout`), as Go bbr
/// does. Both make the same backup.
#[test]
fn root_commands_use_one_runner_unless_each_command_is_to_get_its_own_sudo() {
    let h = Harness::new();
    h.locked_backup_job(
        "bosh",
        "echo data > \"$BBR_ARTIFACT_DIRECTORY/d\"\ncat /proc/$PPID/comm >> /var/vcap/sys/parents",
    );
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    // Elsewhere: both runs may fall in the same second, which names the artifact.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut each = h.command(&[
        "backup",
        "--artifact-path",
        elsewhere.path().to_str().unwrap(),
    ]);
    each.env("BBR_SUDO_EACH_COMMAND", "true");
    let each = Run(each.output().unwrap());
    assert_eq!(each.code(), 0, "{}", each.show());
    assert_eq!(h.vm.read("sys/parents").unwrap(), "perl\ntimeout\n");
    for parent in [h.work.path(), elsewhere.path()] {
        let tar = h.artifact_in(parent).join("bosh-0-bosh.tar");
        assert!(tar.exists(), "{}", tar.display());
    }
}

#[test]
fn a_drained_device_node_fails_the_backup_and_a_set_uid_file_is_kept_with_a_warning() {
    let h = Harness::new();
    h.locked_backup_job(
        "bosh",
        "cd \"$BBR_ARTIFACT_DIRECTORY\"\necho data > d\nmknod mem c 1 1",
    );
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    for word in [
        "Backup of job bosh on",
        "refused",
        "./mem",
        "character device 1,1",
    ] {
        assert!(run.stderr().contains(word), "no {word:?}: {}", run.show());
    }
    assert_eq!(
        h.events(),
        vec![
            "bosh pre-backup-lock",
            "bosh backup",
            "bosh post-backup-unlock true"
        ]
    );
    let artifact = h.artifact_in(h.work.path());
    assert!(
        !artifact.join("bosh-0-bosh.tar").exists(),
        "the refused tar is not kept"
    );

    h.script(
        "bosh",
        Script::Backup,
        "cd \"$BBR_ARTIFACT_DIRECTORY\"\necho tool > tool\nchmod 4755 tool",
    );
    let parent = h.work.path().join("second");
    std::fs::create_dir(&parent).unwrap();
    let run = h.bbr(&["backup", "--artifact-path", &parent.to_string_lossy()]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout()
            .contains("./tool has set-uid/set-gid bits (mode 4755)"),
        "{}",
        run.show()
    );
}
