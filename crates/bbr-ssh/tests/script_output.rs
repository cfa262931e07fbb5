//! A script's output against a real sshd VM, through the root runner and through one `sudo`
//! per command: a script writing 200 MB leaves only the last 64 KiB of it (and the count of
//! the rest), and a script whose child keeps its stdout open does not hold bbr up.

mod support;

use bbr_core::remote::{Remote, Stream};
use bbr_core::report::{Level, MemoryReporter, Reporter, TransferProgress};
use bbr_core::script::{Capture, SCRIPT_OUTPUT_TAIL, Script, ScriptLimits, run_script};
use bbr_testkit::{Vm, VmOptions};
use std::time::{Duration, Instant};
use support::connect;

/// Shows no DEBUG lines (as bbr without `--debug`), keeping the others.
#[derive(Default)]
struct NoDebug(MemoryReporter);

impl Reporter for NoDebug {
    fn log(&self, level: Level, message: &str) {
        self.0.log(level, message)
    }
    fn wants(&self, level: Level) -> bool {
        level != Level::Debug
    }
    fn transfer(&self, job: &str, instance: &str, total: u64) -> Box<dyn TransferProgress> {
        self.0.transfer(job, instance, total)
    }
}

const NOISE: u64 = 200_000_000;

/// 200 MB of `a` on stdout, then `THE END`; a few lines on stderr.
const NOISY: &str = "#!/bin/sh\nhead -c 200000000 /dev/zero | tr '\\0' a\nprintf 'THE END\\n'\necho warming up >&2\necho done >&2\n";

async fn noisy_script_keeps_only_the_tail(root_runner: bool) {
    let vm = Vm::start(VmOptions::default()).unwrap();
    vm.install_script("noisy", "backup", NOISY).unwrap();
    let conn = connect(&vm, root_runner).await;
    let reporter = NoDebug::default();
    let script = Script {
        job: "noisy",
        instance: "noisy/0",
        path: "/var/vcap/jobs/noisy/bin/bbr/backup",
        env: &[],
        capture: Capture::Tail,
    };
    let out = run_script(conn.as_ref(), &script, &ScriptLimits::default(), &reporter)
        .await
        .expect("the script succeeds");
    let end = b"THE END\n";
    let mut expected = vec![b'a'; SCRIPT_OUTPUT_TAIL - end.len()];
    expected.extend_from_slice(end);
    assert!(out.stdout.bytes() == expected, "the last 64 KiB of stdout");
    assert_eq!(
        out.stdout.dropped(),
        NOISE + end.len() as u64 - SCRIPT_OUTPUT_TAIL as u64
    );
    assert_eq!(
        (out.stderr.bytes(), out.stderr.dropped()),
        (b"warming up\ndone\n".to_vec(), 0)
    );
    assert!(out.stdout.text(Stream::Stdout).starts_with(&format!(
        "[... {} bytes of stdout dropped ...] aaa",
        out.stdout.dropped()
    )));
    assert!(!out.output_held_open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_script_leaves_the_tail_of_its_output_through_the_runner() {
    noisy_script_keeps_only_the_tail(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_script_leaves_the_tail_of_its_output_through_sudo_each() {
    noisy_script_keeps_only_the_tail(false).await;
}

/// Starts `sleep 300` with the script's stdout and exits 0.
const HOLDS_OUTPUT: &str =
    "#!/bin/sh\necho starting\nsleep 300 &\necho $! > /var/vcap/sys/held.pid\necho started\n";

async fn held_output_is_let_go(root_runner: bool) {
    let vm = Vm::start(VmOptions::default()).unwrap();
    std::fs::create_dir_all(vm.vcap_path("sys")).unwrap();
    vm.install_script("daemon", "post-backup-unlock", HOLDS_OUTPUT)
        .unwrap();
    let conn = connect(&vm, root_runner).await;
    let reporter = NoDebug::default();
    let script = Script {
        job: "daemon",
        instance: "daemon/0",
        path: "/var/vcap/jobs/daemon/bin/bbr/post-backup-unlock",
        env: &[],
        capture: Capture::Tail,
    };
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        run_script(conn.as_ref(), &script, &ScriptLimits::default(), &reporter),
    )
    .await
    .expect("bbr goes on well before the child's 300 s are up")
    .expect("the script succeeds");
    let took = started.elapsed();
    let child = vm.read("sys/held.pid").unwrap();
    let _ = std::process::Command::new("kill")
        .arg(child.trim())
        .status();
    assert!(out.output_held_open, "{out:?}");
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout.bytes(), b"starting\nstarted\n");
    assert!(
        reporter
            .0
            .lines()
            .iter()
            .any(|(level, line)| *level == Level::Warn
                && line.contains("of job daemon on daemon/0 exited with status 0")
                && line.contains("a process it left running kept its stdout or stderr open")),
        "{:?}",
        reporter.0.lines()
    );
    // The connection goes on serving commands.
    let after = conn
        .run_as_root(&bbr_core::commands::RootCommand::shell_text(
            "echo still here",
        ))
        .await
        .unwrap();
    assert_eq!(after.stdout_text(), "still here\n");
    assert!(took >= bbr_core::remote::HELD_OUTPUT_GRACE, "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_holding_the_output_open_is_let_go_through_the_runner() {
    held_output_is_let_go(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_holding_the_output_open_is_let_go_through_sudo_each() {
    held_output_is_let_go(false).await;
}

/// A metadata script that never stops writing.
const ENDLESS: &str = "#!/bin/sh\necho $$ > /var/vcap/sys/endless.pid\nexec yes 'backup_should_be_locked_before: []'\n";

async fn endless_metadata_is_stopped(root_runner: bool) {
    let vm = Vm::start(VmOptions::default()).unwrap();
    std::fs::create_dir_all(vm.vcap_path("sys")).unwrap();
    vm.install_script("endless", "metadata", ENDLESS).unwrap();
    let conn = connect(&vm, root_runner).await;
    let reporter = NoDebug::default();
    let script = Script {
        job: "endless",
        instance: "endless/0",
        path: "/var/vcap/jobs/endless/bin/bbr/metadata",
        env: &[],
        capture: Capture::Whole {
            limit: bbr_core::discovery::METADATA_OUTPUT_LIMIT,
        },
    };
    let err = tokio::time::timeout(
        Duration::from_secs(120),
        run_script(conn.as_ref(), &script, &ScriptLimits::default(), &reporter),
    )
    .await
    .expect("the endless script is given up on")
    .expect_err("the endless script fails");
    assert_eq!(
        err.to_string(),
        "it wrote more than 16777216 bytes to stdout, the most bbr reads from this script; its process group was killed"
    );
    // The kill waits for the group to be gone before it returns.
    let pid = vm.read("sys/endless.pid").unwrap();
    let state = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
        .map(|s| s.rsplit(')').next().unwrap_or("").trim().chars().next())
        .unwrap_or(None);
    assert!(
        matches!(state, None | Some('Z')),
        "the script was killed (state {state:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_metadata_script_is_stopped_through_the_runner() {
    endless_metadata_is_stopped(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_metadata_script_is_stopped_through_sudo_each() {
    endless_metadata_is_stopped(false).await;
}
