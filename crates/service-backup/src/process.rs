//! Child processes (prepare, cleanup): started in their own process group, combined output captured
//! without blocking, and terminated as a group on shutdown
//! (docs/service-backup.md#exit-codes-and-signals).
//!
//! Unlike the Go original, [`ProcessManager::terminate`] signals the whole **process group** of
//! each child (so a shell script's own children stop too), and is bounded: after the grace
//! period the group gets SIGKILL.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

/// How long children get between SIGTERM and SIGKILL by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How much combined output is kept per child (the tail, if there is more).
pub const OUTPUT_LIMIT: usize = 1024 * 1024;

/// Why a child did not succeed. Texts follow Go's `os/exec` where the original surfaced them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// [`ProcessManager::terminate`] has been called; no new children start.
    #[error("Shutdown in progress")]
    ShutdownInProgress,
    /// The command string was empty.
    #[error("empty command")]
    EmptyCommand,
    /// No such program on `PATH`.
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    NotFound(String),
    /// The program exists but could not be started.
    #[error("fork/exec {program}: {reason}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        reason: String,
    },
    /// Non-zero exit.
    #[error("exit status {0}")]
    Exit(i32),
    /// Killed by a signal that we did not send.
    #[error("signal: {0}")]
    Signal(String),
    /// Ran longer than its time limit; its process group was terminated (TERM, then KILL
    /// after the grace period).
    #[error(
        "{program} did not finish within its time limit of {limit}; its process group was terminated"
    )]
    TimedOut {
        /// The program.
        program: String,
        /// The limit, as configured.
        limit: String,
    },
    /// Stopped by [`ProcessManager::terminate`].
    #[error("SIGTERM propagated to child process")]
    Terminated,
    /// Waiting for the child failed.
    #[error("wait: {0}")]
    Wait(String),
}

/// Combined stdout and stderr of a child, in arrival order, bounded to the last
/// [`OUTPUT_LIMIT`] bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The kept bytes.
    pub bytes: Vec<u8>,
    /// How many earlier bytes were dropped.
    pub dropped: u64,
}

impl Output {
    /// Total bytes the child wrote.
    pub fn total(&self) -> u64 {
        self.dropped + self.bytes.len() as u64
    }

    /// The last `max` bytes as text, prefixed with a note when something was left out; `None`
    /// when the child wrote nothing.
    pub fn summary(&self, max: usize) -> Option<String> {
        if self.bytes.is_empty() {
            return None;
        }
        let start = self.bytes.len().saturating_sub(max);
        let omitted = self.dropped + start as u64;
        let tail = String::from_utf8_lossy(&self.bytes[start..]);
        Some(if omitted > 0 {
            format!("[{omitted} earlier bytes omitted]\n{tail}")
        } else {
            tail.into_owned()
        })
    }
}

#[derive(Debug, Default)]
struct Capture {
    buf: Vec<u8>,
    dropped: u64,
}

impl Capture {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.len() > 2 * OUTPUT_LIMIT {
            let excess = self.buf.len() - OUTPUT_LIMIT;
            self.buf.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    fn finish(&mut self) -> Output {
        if self.buf.len() > OUTPUT_LIMIT {
            let excess = self.buf.len() - OUTPUT_LIMIT;
            self.buf.drain(..excess);
            self.dropped += excess as u64;
        }
        Output {
            bytes: std::mem::take(&mut self.buf),
            dropped: self.dropped,
        }
    }
}

/// Splits a command the way the original does: on single spaces, no quoting (double spaces
/// give empty arguments).
pub fn split_command(command: &str) -> Vec<String> {
    command.split(' ').map(str::to_owned).collect()
}

/// Starts children and terminates them all on shutdown.
#[derive(Debug)]
pub struct ProcessManager {
    shutdown: CancellationToken,
    running: tokio::sync::watch::Sender<usize>,
    grace: Duration,
}

impl Default for ProcessManager {
    fn default() -> Self {
        Self::new(DEFAULT_GRACE)
    }
}

struct RunningGuard<'a>(&'a tokio::sync::watch::Sender<usize>);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Kills the child's process group if the run is abandoned before the child was reaped.
struct GroupGuard {
    pgid: Option<Pid>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

async fn pump<R: AsyncRead + Unpin>(reader: Option<R>, capture: Arc<Mutex<Capture>>) {
    let Some(mut reader) = reader else { return };
    let mut chunk = vec![0_u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => capture
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(&chunk[..n]),
        }
    }
}

fn status_result(status: ExitStatus) -> Result<(), ProcessError> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return Ok(());
    }
    if let Some(code) = status.code() {
        return Err(ProcessError::Exit(code));
    }
    let name = match status.signal().map(Signal::try_from) {
        Some(Ok(Signal::SIGTERM)) => "terminated".to_owned(),
        Some(Ok(Signal::SIGKILL)) => "killed".to_owned(),
        Some(Ok(Signal::SIGINT)) => "interrupt".to_owned(),
        Some(Ok(Signal::SIGHUP)) => "hangup".to_owned(),
        Some(Ok(other)) => other.as_str().to_owned(),
        Some(Err(_)) | None => "unknown".to_owned(),
    };
    Err(ProcessError::Signal(name))
}

impl ProcessManager {
    /// A manager whose children get `grace` between SIGTERM and SIGKILL on shutdown.
    pub fn new(grace: Duration) -> Self {
        ProcessManager {
            shutdown: CancellationToken::new(),
            running: tokio::sync::watch::Sender::new(0),
            grace,
        }
    }

    /// How many children are running now.
    pub fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// Runs `argv` (PATH lookup for a bare name) in its own process group, in `cwd` if given,
    /// with stdin closed. Returns the captured output and how the child ended.
    pub async fn run(
        &self,
        argv: &[String],
        cwd: Option<&Path>,
    ) -> (Output, Result<(), ProcessError>) {
        self.run_with_limit(argv, cwd, None).await
    }

    /// [`run`](Self::run) with an optional time limit: once it expires the child's process
    /// group gets SIGTERM, then SIGKILL after the grace period, and the result is
    /// [`ProcessError::TimedOut`].
    pub async fn run_with_limit(
        &self,
        argv: &[String],
        cwd: Option<&Path>,
        limit: Option<&crate::config::TimeLimit>,
    ) -> (Output, Result<(), ProcessError>) {
        if self.shutdown.is_cancelled() {
            return (Output::default(), Err(ProcessError::ShutdownInProgress));
        }
        let Some(program) = argv.first().filter(|p| !p.is_empty()) else {
            return (Output::default(), Err(ProcessError::EmptyCommand));
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        self.running.send_modify(|n| *n += 1);
        let _running = RunningGuard(&self.running);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                let err = if e.kind() == std::io::ErrorKind::NotFound && !program.contains('/') {
                    ProcessError::NotFound(program.clone())
                } else {
                    let reason = match e.kind() {
                        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
                        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
                        _ => e.to_string(),
                    };
                    ProcessError::Spawn {
                        program: program.clone(),
                        reason,
                    }
                };
                return (Output::default(), Err(err));
            }
        };
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let mut group = GroupGuard { pgid };
        let capture = Arc::new(Mutex::new(Capture::default()));
        let readers = futures::future::join(
            pump(child.stdout.take(), capture.clone()),
            pump(child.stderr.take(), capture.clone()),
        );
        tokio::pin!(readers);
        let mut readers_done = false;

        let expired = async {
            match limit {
                Some(l) => tokio::time::sleep(l.duration).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        let outcome = loop {
            let stop = tokio::select! {
                _ = &mut readers, if !readers_done => { readers_done = true; continue; }
                status = child.wait() => break status.map_err(|e| ProcessError::Wait(e.to_string())).and_then(status_result),
                () = self.shutdown.cancelled() => ProcessError::Terminated,
                () = &mut expired => ProcessError::TimedOut {
                    program: program.clone(),
                    limit: limit.map(|l| l.text.clone()).unwrap_or_default(),
                },
            };
            if let Some(pgid) = pgid {
                let _ = killpg(pgid, Signal::SIGTERM);
            }
            let waited = tokio::time::timeout(self.grace, async {
                loop {
                    tokio::select! {
                        _ = &mut readers, if !readers_done => readers_done = true,
                        status = child.wait() => return status,
                    }
                }
            })
            .await;
            if waited.is_err() {
                if let Some(pgid) = pgid {
                    let _ = killpg(pgid, Signal::SIGKILL);
                }
                let _ = child.wait().await;
            }
            // Whatever is left of the group (children that ignored TERM) goes too.
            if let Some(pgid) = pgid {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            break Err(stop);
        };
        // The leader is reaped: from here on, never signal its (possibly reused) group id.
        group.pgid = None;
        if !readers_done {
            // Grandchildren may still hold the pipes open; give them a moment, then move on.
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut readers).await;
        }
        let output = capture.lock().unwrap_or_else(|e| e.into_inner()).finish();
        (output, outcome)
    }

    /// Stops starting children, sends SIGTERM to every running child's process group, and
    /// waits until all of them are gone (each gets SIGKILL after the grace period).
    pub async fn terminate(&self) {
        self.shutdown.cancel();
        let mut rx = self.running.subscribe();
        let bound = self.grace + Duration::from_secs(5);
        let _ = tokio::time::timeout(bound, rx.wait_for(|n| *n == 0)).await;
    }

    /// Whether [`ProcessManager::terminate`] has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bbr_testkit::{procs, wait};
    use std::time::Instant;

    /// How long a test waits for something that happens at once unless the code under test
    /// hangs: long enough for a loaded 2-core machine, short enough to fail a hang quickly.
    const HANG: Duration = Duration::from_secs(60);

    fn argv(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn successful_command_captures_combined_output() {
        let pm = ProcessManager::default();
        let (out, res) = pm
            .run(&argv(&["sh", "-c", "echo out; echo err >&2"]), None)
            .await;
        res.expect("success");
        let text = String::from_utf8_lossy(&out.bytes);
        assert!(text.contains("out\n") && text.contains("err\n"), "{text}");
    }

    #[tokio::test]
    async fn false_is_an_error() {
        let pm = ProcessManager::default();
        let (_, res) = pm.run(&argv(&["false"]), None).await;
        assert_eq!(res, Err(ProcessError::Exit(1)));
        assert_eq!(ProcessError::Exit(1).to_string(), "exit status 1");
    }

    #[tokio::test]
    async fn missing_binary_is_an_error() {
        let pm = ProcessManager::default();
        let (_, res) = pm.run(&argv(&["no-such-binary-xyz"]), None).await;
        let err = res.expect_err("missing");
        assert_eq!(
            err.to_string(),
            "exec: \"no-such-binary-xyz\": executable file not found in $PATH"
        );
        let (_, res) = pm.run(&argv(&["/no/such/file"]), None).await;
        assert_eq!(
            res.expect_err("missing").to_string(),
            "fork/exec /no/such/file: no such file or directory"
        );
        let (_, res) = pm.run(&[], None).await;
        assert_eq!(res, Err(ProcessError::EmptyCommand));
    }

    #[tokio::test]
    async fn stderr_is_captured() {
        let pm = ProcessManager::default();
        let (out, res) = pm.run(&argv(&["ls", "/no/such/dir/x"]), None).await;
        assert!(res.is_err());
        assert!(
            String::from_utf8_lossy(&out.bytes).contains("No such file or directory"),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn big_output_without_newline_does_not_block() {
        let pm = ProcessManager::default();
        // More than a pipe holds: unless the output is read while the child runs, the child
        // blocks on its write and the run never ends.
        let (out, res) = tokio::time::timeout(
            HANG,
            pm.run(
                &argv(&["sh", "-c", "head -c 131073 /dev/zero | tr '\\0' x"]),
                None,
            ),
        )
        .await
        .expect("the run hung: the child's output was not read while it ran");
        res.expect("success");
        assert_eq!(out.bytes.len(), 131_073);
        assert!(out.bytes.iter().all(|b| *b == b'x'));
    }

    #[tokio::test]
    async fn output_is_bounded_to_the_tail() {
        let pm = ProcessManager::default();
        let total = 3 * OUTPUT_LIMIT + 17;
        let (out, res) = pm
            .run(
                &argv(&[
                    "sh",
                    "-c",
                    &format!("head -c {total} /dev/zero; printf END"),
                ]),
                None,
            )
            .await;
        res.expect("success");
        assert_eq!(out.bytes.len(), OUTPUT_LIMIT);
        assert_eq!(out.total(), total as u64 + 3);
        assert!(out.bytes.ends_with(b"END"));
        let summary = out.summary(10).expect("summary");
        assert!(summary.starts_with('['), "{summary}");
        assert!(summary.ends_with("END"));
    }

    #[tokio::test]
    async fn sequential_and_overlapping_runs() {
        let pm = Arc::new(ProcessManager::default());
        pm.run(&argv(&["true"]), None).await.1.expect("first");
        pm.run(&argv(&["true"]), None).await.1.expect("second");
        let (argv_a, argv_b) = (argv(&["sleep", "0.2"]), argv(&["sleep", "0.1"]));
        let a = pm.run(&argv_a, None);
        let b = pm.run(&argv_b, None);
        let (a, b) = tokio::join!(a, b);
        a.1.expect("a");
        b.1.expect("b");
        assert_eq!(pm.running(), 0);
    }

    #[tokio::test]
    async fn terminate_without_children_returns() {
        let pm = ProcessManager::default();
        tokio::time::timeout(Duration::from_secs(2), pm.terminate())
            .await
            .expect("returns");
        let (_, res) = pm.run(&argv(&["true"]), None).await;
        assert_eq!(res, Err(ProcessError::ShutdownInProgress));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn terminate_kills_25_concurrent_sleeps() {
        // A grace far longer than the test's deadline: only SIGTERM itself can end the
        // sleeps in time, not the SIGKILL that follows the grace.
        let pm = Arc::new(ProcessManager::new(Duration::from_secs(600)));
        let mut tasks = Vec::new();
        for _ in 0..25 {
            let pm = pm.clone();
            tasks.push(tokio::spawn(async move {
                pm.run(&argv(&["sleep", "600"]), None).await
            }));
        }
        // The test body runs on its own thread (not a runtime worker), so this blocking
        // wait leaves both workers to the runs.
        wait::until("25 sleeps to start", HANG, || pm.running() == 25);
        tokio::time::timeout(HANG, pm.terminate())
            .await
            .expect("the sleeps outlived SIGTERM to their process groups");
        assert_eq!(pm.running(), 0, "every run ended");
        for t in tasks {
            let (_, res) = t.await.expect("join");
            assert_eq!(res, Err(ProcessError::Terminated));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_time_limit_terminates_the_group_and_escalates_to_kill() {
        let pm = ProcessManager::new(Duration::from_millis(300));
        let limit = crate::config::TimeLimit {
            duration: Duration::from_millis(200),
            text: "200ms".to_owned(),
        };
        let start = Instant::now();
        // The shell ignores TERM (its first sleep dies of it, the second never gets it), so
        // only the KILL after the grace period ends it within the deadline; without the
        // escalation it would run for 10 minutes.
        let (output, res) = tokio::time::timeout(
            HANG,
            pm.run_with_limit(
                &argv(&[
                    "sh",
                    "-c",
                    "trap '' TERM; echo started; sleep 600; sleep 600",
                ]),
                None,
                Some(&limit),
            ),
        )
        .await
        .expect("the group outlived its time limit: no SIGKILL after the grace period");
        // A lower bound holds however slow the machine: the limit and then the grace passed.
        assert!(
            start.elapsed() >= Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
        let err = res.expect_err("timed out");
        assert_eq!(
            err,
            ProcessError::TimedOut {
                program: "sh".to_owned(),
                limit: "200ms".to_owned()
            }
        );
        assert!(
            err.to_string()
                .contains("sh did not finish within its time limit of 200ms")
        );
        assert_eq!(output.summary(100).as_deref(), Some("started\n"));
        // Without a limit, the same manager runs a short command normally.
        let (_, ok) = pm.run_with_limit(&argv(&["true"]), None, None).await;
        assert_eq!(ok, Ok(()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn terminate_reaches_the_whole_group_and_escalates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("grandchild.pid");
        // The shell ignores TERM; its background grandchild records its pid. Without the TERM
        // to the group and the KILL after the grace, either would run for 10 minutes.
        let script = format!(
            "trap '' TERM; sleep 600 & echo $! > {}; wait; sleep 600",
            pidfile.display()
        );
        let pm = Arc::new(ProcessManager::new(Duration::from_millis(500)));
        let task = {
            let pm = pm.clone();
            tokio::spawn(async move { pm.run(&argv(&["sh", "-c", &script]), None).await })
        };
        // The test body runs on its own thread (not a runtime worker), so this blocking
        // wait leaves both workers to the run.
        let grandchild = wait::until_some("the script to record its grandchild", HANG, || {
            std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok())
        });
        // `terminate` gives up after the grace and 5 s more; the run itself only ends once
        // the leader, which ignores TERM, has been killed.
        let (_, res) = tokio::time::timeout(HANG, async {
            pm.terminate().await;
            task.await.expect("join")
        })
        .await
        .expect("the script outlived terminate: no SIGKILL after the grace period");
        assert_eq!(res, Err(ProcessError::Terminated));
        assert_eq!(pm.running(), 0);
        // The grandchild is gone too (reaped by init, or a zombie about to be).
        wait::until(&format!("the grandchild {grandchild} to end"), HANG, || {
            !procs::is_alive(grandchild)
        });
    }

    #[test]
    fn split_is_on_single_spaces() {
        assert_eq!(split_command("a b  c"), vec!["a", "b", "", "c"]);
        assert_eq!(split_command("whoami"), vec!["whoami"]);
    }
}
