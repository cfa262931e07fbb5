//! `bbr deployment` against a director that misbehaves: names that are not single path
//! components, names that need percent-encoding, tasks that never finish, oversized answers;
//! and how a run stops (one SIGTERM, SIGINT answered `yes`). Also the err.log's mode and an
//! artifact whose metadata names escape its directory.

mod support;

use bbr_director_sim::TaskKind;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::deployment::{Deployment, group};
use support::live::Live;
use support::*;

const DEADLINE: Duration = Duration::from_secs(90);

fn redis() -> Deployment {
    let h = Deployment::one("redis", vec![group("redis-server", 1, &[])]);
    h.instance("redis", "redis-server", 0)
        .job("redis-server")
        .backup_scripts();
    h
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn err_logs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("bbr-") && n.ends_with(".err.log")
        })
        .collect()
}

fn wait_until(what: &str, done: impl FnMut() -> bool) {
    bbr_testkit::wait::until(what, DEADLINE, done);
}

/// Issue 10 item 6: an instance group reported as `../../evil` once made bbr write
/// `evil-0-<job>.tar` two levels above the artifact directory and report success.
#[test]
fn a_hostile_instance_group_name_is_refused_before_any_lock_or_write() {
    let h = redis();
    h.sim.report_group_as("redis-server", "../../evil");
    let parent = h.work.path().join("a").join("b");
    std::fs::create_dir_all(&parent).unwrap();
    let run = Run(h
        .command(Some("redis"), &["backup", "--artifact-path"])
        .arg(&parent)
        .output()
        .unwrap());
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains(
            "instance group name '../../evil' reported by the director is not a safe file name"
        ),
        "{}",
        run.show()
    );
    let tars: Vec<PathBuf> = files_under(h.work.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    assert!(tars.is_empty(), "tars written: {tars:?}");
    assert_eq!(
        std::fs::read_dir(&parent).unwrap().count(),
        0,
        "no artifact directory"
    );
    assert!(
        h.events("redis").is_empty(),
        "no script ran: {:?}",
        h.events("redis")
    );
    assert!(h.sim.temp_users().is_empty(), "{:?}", h.sim.temp_users());
    assert!(
        !h.sim.requests().iter().any(|r| r.contains("/ssh")),
        "no SSH user was even asked for: {:?}",
        h.sim.requests()
    );
    assert!(
        !h.instance("redis", "redis-server", 0)
            .vm()
            .exists("store/bbr-backup")
    );
    // the err.log holds scripts' stderr in other runs: owner-only from its creation
    let logs = err_logs(h.work.path());
    assert_eq!(logs.len(), 1, "{logs:?}");
    let mode = std::fs::metadata(&logs[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "err.log mode {mode:o}");
}

/// Deployment names are one percent-encoded URL segment: a name needing encoding reaches its
/// route; `a/b` and `..`, which cannot name an artifact directory, are refused before any
/// deployment request; a director listing `..` gets that deployment refused.
#[test]
fn deployment_names_are_encoded_in_urls_or_refused() {
    let h = redis();
    let odd = "red is?x#1%";
    h.sim.report_deployment_as("redis", odd);
    let run = h.bbr(odd, &["pre-backup-check"]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let requests = h.sim.requests();
    assert!(
        requests.contains(&"GET /deployments/red%20is%3Fx%231%25/vms?format=full".to_string()),
        "{requests:?}"
    );
    for bad in ["a/b", ".."] {
        h.sim.clear_requests();
        let run = h.bbr(bad, &["backup"]);
        assert_eq!(run.code(), 1, "{}", run.show());
        assert!(
            run.stderr().contains(&format!(
                "deployment name '{bad}' given with --deployment is not a safe file name"
            )),
            "{}",
            run.show()
        );
        assert!(
            !h.sim.requests().iter().any(|r| r.contains("/deployments/")),
            "{:?}",
            h.sim.requests()
        );
    }
    h.sim.report_deployment_as("redis", "..");
    let run = Run(h.command(None, &["pre-backup-check"]).output().unwrap());
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("deployment name '..' reported by the director is not a safe file name"),
        "{}",
        run.show()
    );
    assert!(
        !h.sim.requests().iter().any(|r| r.contains("/vms")),
        "{:?}",
        h.sim.requests()
    );
}

/// Issue 10 item 7: a task that stays `processing` is waited for at most
/// `BBR_DIRECTOR_TASK_TIMEOUT`; the error names the task and what it was for.
#[test]
fn a_director_task_that_never_finishes_times_out() {
    let h = redis();
    h.sim.hold_tasks(TaskKind::SshSetup);
    let started = Instant::now();
    let run = Run(h
        .command(Some("redis"), &["backup"])
        .env("BBR_DIRECTOR_TASK_TIMEOUT", "2s")
        .output()
        .unwrap());
    assert!(started.elapsed() < Duration::from_secs(60), "bbr waited on");
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains("(setting up SSH for instance group 'redis-server' of deployment 'redis') did not finish within 2s"),
        "{}",
        run.show()
    );
    assert!(run.stderr().contains("director task 2 "), "{}", run.show());
    assert!(h.events("redis").is_empty(), "{:?}", h.events("redis"));
    // The held setup still created the user on the group's VM: it is removed all the same.
    assert!(h.sim.temp_users().is_empty(), "{:?}", h.sim.temp_users());
    let run = Run(h
        .command(Some("redis"), &["backup"])
        .env("BBR_DIRECTOR_TASK_TIMEOUT", "soon")
        .output()
        .unwrap());
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("BBR_DIRECTOR_TASK_TIMEOUT: time: invalid duration \"soon\""),
        "{}",
        run.show()
    );
}

/// Issue 10 item 7: one SIGTERM stops bbr while it polls a task that never finishes (it
/// used to print its line and poll on until a second SIGTERM).
#[test]
fn one_sigterm_stops_a_wait_for_an_endless_task() {
    let h = redis();
    h.sim.hold_tasks(TaskKind::Vms);
    let mut live = Live::start(h.command(Some("redis"), &["backup"]), DEADLINE);
    live.wait_for_line("Looking for scripts");
    wait_until("task polling", || {
        h.sim
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /tasks/1"))
    });
    live.signal(libc::SIGTERM);
    let (code, out, err) = live.finish(Duration::from_secs(20));
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(out.contains("received SIGTERM"), "{out}");
    assert!(
        err.contains("bbr was asked to stop while listing the VMs of deployment 'redis'"),
        "{out}\n--- stderr\n{err}"
    );
}

/// A director answer larger than the endpoint's cap is refused, naming the request
/// (a 100 MB answer once cost 207 MB of RSS).
#[test]
fn oversized_director_answers_are_refused() {
    let h = redis();
    h.sim
        .serve_oversized("/tasks/1/output?type=result", 65 << 20);
    let run = h.bbr("redis", &["pre-backup-check"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains(
            "the director's answer to GET /tasks/1/output?type=result is larger than 67108864 bytes"
        ),
        "{}",
        run.show()
    );
    h.sim.clear_failures();
    h.sim.serve_oversized("/info", 2 << 20);
    let run = h.bbr("redis", &["pre-backup-check"]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("the director's answer to GET /info is larger than 1048576 bytes"),
        "{}",
        run.show()
    );
}

/// SIGINT answered `yes` stops as SIGTERM does: the running backup script is killed, the
/// job unlocked, the remote artifact directory removed; then Go's footer and exit 1 (Go bbr
/// exits at once, leaving jobs locked).
#[test]
fn sigint_answered_yes_unlocks_and_cleans_up_before_exiting() {
    let h = Deployment::one("redis", vec![group("redis-server", 1, &[])]);
    let server = h.instance("redis", "redis-server", 0);
    server.job("redis-server").script(Script::PreBackupLock, "");
    server.job("redis-server").script(
        Script::Backup,
        "touch /var/vcap/sys/backup-started\nsleep 300",
    );
    server
        .job("redis-server")
        .script(Script::PostBackupUnlock, "");
    let vm = server.vm();
    let mut live = Live::start(h.command(Some("redis"), &["backup"]), DEADLINE);
    wait_until("the backup script", || vm.exists("sys/backup-started"));
    live.signal(libc::SIGINT);
    live.wait_for_line("Are you sure you want to cancel? [yes/no]");
    live.child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"yes\n")
        .unwrap();
    let (code, out, err) = live.finish(DEADLINE);
    assert_eq!(code, 1, "{out}\n--- stderr\n{err}");
    assert!(
        out.contains("It is recommended that you run `bbr backup-cleanup`"),
        "{out}"
    );
    let events = h.events("redis");
    assert!(
        events.iter().any(|e| e.contains("post-backup-unlock")),
        "unlock ran: {events:?}"
    );
    assert!(!vm.exists("store/bbr-backup"), "remote directory removed");
    assert!(h.sim.temp_users().is_empty(), "{:?}", h.sim.temp_users());
}

/// An artifact whose metadata names escape its directory is refused as such, naming the
/// name (it used to be joined into a path and reported as a missing file).
#[test]
fn restore_refuses_artifact_metadata_names_that_are_not_single_components() {
    let h = redis();
    let artifact = h.work.path().join("artifact");
    copy_dir(&fixture("director-backup-integration"), &artifact);
    let metadata = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    let hostile = metadata.replacen("- name: bosh\n", "- name: ../../bosh\n", 2);
    assert_ne!(hostile, metadata);
    std::fs::write(artifact.join("metadata"), hostile).unwrap();
    let run = h.bbr(
        "redis",
        &["restore", "--artifact-path", artifact.to_str().unwrap()],
    );
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr()
            .contains("'../../bosh' in the artifact's metadata is not a safe file name"),
        "{}",
        run.show()
    );
    assert!(h.events("redis").is_empty(), "{:?}", h.events("redis"));
}
