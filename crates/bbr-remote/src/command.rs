//! The root-command type: a command to run as root on a VM, and the one kind of command
//! whose shape a transport must know, a release-author script launched in its own process
//! group ([`run_script`], stopped by [`kill_script`]).
//!
//! Each command is a [`RootCommand`]: the shell text to run as root. A transport may run it
//! through `sudo -n` on a channel of its own ([`RootCommand::with_sudo`]) or hand it to a
//! root process it already has on the VM. Unlike Go bbr, `sudo -n` is used everywhere so
//! that a missing password-less sudo rule fails at once instead of hanging on a prompt.
//!
//! The commands bbr's workflows run (find the scripts, `mkdir`, `du`, `tar`, `rm` of the
//! artifact directory) are built in `bbr_core::commands`: they name the domain's paths.

/// POSIX shell quoting; lives in `bbr-gocompat`, re-exported for the transports.
pub use bbr_gocompat::shell_quote;

/// A command to run as root on a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootCommand {
    shell: String,
    /// True when `shell` is one program with quoted arguments, which `sudo` can run directly.
    simple: bool,
    /// For a release-author script, what `shell` does, for a transport that can launch it
    /// without a shell.
    launch: Option<ScriptLaunch>,
}

/// A release-author script run by [`run_script`]: the script, its variables, its time limit
/// and the file that receives its process group's id while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptLaunch {
    /// The script's path.
    pub path: String,
    /// Variables added to root's environment.
    pub env: Vec<(String, String)>,
    /// Seconds before the group gets TERM (then KILL 10 s later) and the status is 124;
    /// 0 for no limit.
    pub timeout_secs: u64,
    /// Holds the process group's id while the script runs.
    pub pid_file: String,
}

impl RootCommand {
    /// One program with its (already quoted) arguments, which `sudo` runs without a shell:
    /// no globs, redirections or several commands (those are [`RootCommand::shell_text`]).
    pub fn program(line: String) -> Self {
        Self {
            shell: line,
            simple: true,
            launch: None,
        }
    }

    /// Shell text that needs a shell (globs, redirections, several commands).
    fn script(text: String) -> Self {
        Self {
            shell: text,
            simple: false,
            launch: None,
        }
    }

    /// Any shell text, run as root by `/bin/sh -c` (for tools beyond this vocabulary).
    pub fn shell_text(text: impl Into<String>) -> Self {
        Self::script(text.into())
    }

    /// The shell text, for `/bin/sh -c` run as root.
    pub fn shell(&self) -> &str {
        &self.shell
    }

    /// The script launch this command performs, when it runs a release-author script.
    pub fn launch(&self) -> Option<&ScriptLaunch> {
        self.launch.as_ref()
    }

    /// The command line for an SSH exec channel: `sudo -n <program> <args>`, or
    /// `sudo -n sh -c '<text>'` when a shell is needed.
    pub fn with_sudo(&self) -> String {
        if self.simple {
            format!("sudo -n {}", self.shell)
        } else {
            format!("sudo -n sh -c {}", shell_quote(&self.shell))
        }
    }
}

/// Runs a release-author script as root with `env`, in its own process group under
/// coreutils `timeout` (`0` = no limit; `timeout` makes the group, which dash's job control
/// cannot without a terminal), recording the group's id in `pid_file` so that
/// [`kill_script`] can stop it. Exit status 124 means the time limit struck. The variables
/// are shell assignments in front of `timeout`, so the script inherits them without an
/// `env` process.
pub fn run_script(
    path: &str,
    env: &[(&str, String)],
    timeout_secs: u64,
    pid_file: &str,
) -> RootCommand {
    let mut inner = String::new();
    for (k, v) in env {
        inner.push_str(&shell_quote(&format!("{k}={v}")));
        inner.push(' ');
    }
    inner.push_str(&format!(
        "timeout -k 10 {timeout_secs} {}",
        shell_quote(path)
    ));
    let pid = shell_quote(pid_file);
    let mut command = RootCommand::script(format!(
        "{inner} </dev/null & p=$!; echo $p > {pid}; wait $p; rc=$?; rm -f {pid}; exit $rc"
    ));
    command.launch = Some(ScriptLaunch {
        path: path.to_string(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        timeout_secs,
        pid_file: pid_file.to_string(),
    });
    command
}

/// Stops the process group recorded in `pid_file` (TERM, then KILL after 5 s). Written for
/// dash as well as bash: dash's `kill` takes no `--`, so the group is given as `-PGID`.
///
/// The pid is recorded as soon as the script's leader is forked, which may be a moment before
/// it makes itself a group leader (`timeout` calls `setpgid` as it starts): while the process
/// lives but its group does not exist yet, the TERM is tried again every 0.1 s (for up to 2 s)
/// instead of concluding that there is nothing left to stop.
pub fn kill_script(pid_file: &str) -> RootCommand {
    let pid = shell_quote(pid_file);
    RootCommand::script(format!(
        "p=$(cat {pid} 2>/dev/null) || exit 0; \
         for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do \
         kill -TERM -$p 2>/dev/null && break; kill -0 $p 2>/dev/null || exit 0; sleep 0.1; done; \
         for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 -$p 2>/dev/null || exit 0; sleep 0.5; done; \
         kill -KILL -$p 2>/dev/null; exit 0"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/var/vcap/store"), "/var/vcap/store");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn script_command_sets_env_and_records_group() {
        let c = run_script(
            "/var/vcap/jobs/bosh/bin/bbr/backup",
            &[(
                "BBR_ARTIFACT_DIRECTORY",
                "/var/vcap/store/bbr-backup/bosh/".into(),
            )],
            0,
            "/tmp/bbr-1.pid",
        )
        .with_sudo();
        assert!(c.starts_with("sudo -n sh -c '"));
        assert!(c.contains("BBR_ARTIFACT_DIRECTORY=/var/vcap/store/bbr-backup/bosh/ timeout -k 10 0 /var/vcap/jobs/bosh/bin/bbr/backup </dev/null &"), "{c}");
        let timed = run_script("/x", &[], 30, "/tmp/p").with_sudo();
        assert!(
            timed.contains("timeout -k 10 30 /x </dev/null &"),
            "{timed}"
        );
    }
}

#[cfg(test)]
mod shell_tests {
    use super::*;
    use bbr_testkit::wait;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    /// How long these tests wait for what takes seconds at most unless the kill fails.
    const LIMIT: Duration = Duration::from_secs(30);

    /// Waits up to [`LIMIT`] for `child` to exit; kills it and fails naming `what` if not.
    fn exit_of(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
        wait::within(LIMIT, || child.try_wait().unwrap()).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {LIMIT:?}");
        })
    }

    /// The kill command must work under dash (`/bin/sh` on Debian and Ubuntu stemcells).
    #[test]
    fn kill_script_waits_for_a_leader_that_is_not_yet_a_group_leader() {
        use std::os::unix::process::ExitStatusExt;
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("p.pid");
        // Like `timeout` right after the fork: alive, but its group does not exist until it
        // calls setsid a moment later (the shell is not a group leader, so `setsid` does not
        // fork and the pid stays the same).
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("sleep 0.5; exec setsid sleep 100")
            .spawn()
            .unwrap();
        std::fs::write(&pid_file, format!("{}\n", child.id())).unwrap();
        let kill = kill_script(pid_file.to_str().unwrap()).shell().to_string();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(kill)
            .status()
            .unwrap();
        assert!(status.success());
        let exit = exit_of(
            &mut child,
            "the group was never signalled: the process outlived the kill",
        );
        assert_eq!(exit.signal(), Some(libc::SIGTERM), "{exit:?}");
    }

    #[test]
    fn kill_script_stops_a_process_group_under_dash() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hang");
        std::fs::write(&script, "#!/bin/sh\nsleep 100 &\nwait\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pid_file = dir.path().join("p.pid");
        let pid_file = pid_file.to_str().unwrap();
        let run = run_script(script.to_str().unwrap(), &[], 0, pid_file)
            .shell()
            .to_string();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(run)
            .spawn()
            .unwrap();
        wait::until("the script's pid file", LIMIT, || {
            std::fs::read_to_string(pid_file).is_ok_and(|p| !p.trim().is_empty())
        });
        let kill = kill_script(pid_file).shell().to_string();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(kill)
            .status()
            .unwrap();
        assert!(status.success());
        // The script sleeps for 100 s: only the kill ends it within the limit.
        let exit = exit_of(&mut child, "the script outlived the kill of its group");
        assert_ne!(exit.code(), Some(0), "the script was killed, not completed");
        assert!(
            !std::path::Path::new(pid_file).exists(),
            "the pid file is removed"
        );
    }
}
