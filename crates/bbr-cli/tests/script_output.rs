//! A script's output end to end against a real sshd VM: a failing script that wrote megabytes
//! of stderr fails with the end of it and the count of the rest, and a script whose child
//! keeps its stdout open does not hold bbr up (issue 10).

mod support;

use std::process::Stdio;
use std::time::Duration;
use support::*;

#[test]
fn a_failing_noisy_script_shows_the_tail_of_its_stderr_and_what_was_dropped() {
    let h = Harness::new();
    h.locked_backup_job("bosh", "yes 'noise noise noise' | head -c 10000000 >&2\nhead -c 50000000 /dev/zero\necho 'the real reason' >&2\nexit 3");
    let run = h.bbr(&["backup"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    let mut stderr: Vec<u8> = b"noise noise noise\n"
        .iter()
        .copied()
        .cycle()
        .take(10_000_000)
        .collect();
    stderr.extend_from_slice(b"the real reason\n");
    let dropped = stderr.len() - 64 * 1024;
    let tail = String::from_utf8_lossy(&stderr[dropped..])
        .trim()
        .to_string();
    let expected = format!(
        "Error attempting to run backup for job bosh on bosh/0: [... {dropped} bytes of stderr dropped ...] {tail} - exit code 3"
    );
    assert!(
        run.stderr().contains(&expected),
        "missing {:?} in stderr of {} bytes ending {:?}",
        &expected[..120],
        run.stderr().len(),
        &run.stderr()[run.stderr().len().saturating_sub(300)..]
    );
    assert_eq!(
        h.events(),
        vec![
            "bosh pre-backup-lock",
            "bosh backup",
            "bosh post-backup-unlock false"
        ]
    );
}

#[test]
fn a_child_keeping_the_scripts_stdout_open_is_left_behind_with_a_warning() {
    let h = Harness::new();
    std::fs::create_dir_all(h.vm.vcap_path("sys")).unwrap();
    h.script(
        "bosh",
        Script::Backup,
        "echo data > \"$BBR_ARTIFACT_DIRECTORY/d\"",
    );
    // A daemon restarted by the unlock script inherits its stdout.
    h.script(
        "bosh",
        Script::PostBackupUnlock,
        "sleep 300 &\necho $! > /var/vcap/sys/daemon.pid",
    );
    let child = h
        .command(&["backup"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(150)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
            panic!("bbr still waits for the daemon's output after 150 s");
        }
    };
    if let Ok(daemon) = h.vm.read("sys/daemon.pid") {
        let _ = std::process::Command::new("kill")
            .arg(daemon.trim())
            .status();
    }
    let run = Run(out);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(
        run.stdout().contains("WARN - Script /var/vcap/jobs/bosh/bin/bbr/post-backup-unlock of job bosh on bosh/0 exited with status 0, but a process it left running kept its stdout or stderr open; stopped waiting for that output after 5 s"),
        "{}",
        run.show()
    );
    assert!(
        run.stdout()
            .contains("INFO - Finished unlocking bosh on bosh/0."),
        "{}",
        run.show()
    );
}
