//! Running the database client programs.
//!
//! A child gets an argv (no shell) and a **replaced** environment: only the variables the
//! command names (e.g. `PGPASSWORD`, `PGSSLMODE`, `MYSQL_PWD`), as the original does, so
//! neither the caller's `PG*`/`MYSQL*` variables nor `~/.pgpass` via `HOME` leak in.
//! Passwords are only ever put in that environment, never in argv, and [`Command`]'s
//! `Debug`/`Display` show environment variable names only.
//!
//! Its stdout and stderr are copied live to ours (unless the command is quiet) and captured:
//! fully when the output is parsed, otherwise only the last [`TAIL`] bytes (a `mysql -v`
//! restore echoes the whole dump).
//!
//! A client that has no connect-timeout option of its own (`mysqldump`, `mariadb-dump`) can
//! be given a [`Command::connect_deadline`]: unless its stderr shows that it got past
//! connecting within that time, it is killed and [`Output::timed_out`] is set.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How many trailing bytes of a non-parsed stream are kept.
pub const TAIL: usize = 64 * 1024;

/// One program invocation.
#[derive(Clone)]
pub struct Command {
    program: PathBuf,
    args: Vec<OsString>,
    env: Option<BTreeMap<String, OsString>>,
    stdin: Option<PathBuf>,
    echo: bool,
    capture_full: bool,
    connect_deadline: Option<(Duration, ConnectedTest)>,
}

/// Tells from the stderr seen so far whether a child got past connecting.
pub type ConnectedTest = fn(&[u8]) -> bool;

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Command {
    /// `NAME=… NAME=… program arg arg` with environment values hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(env) = &self.env {
            for k in env.keys() {
                write!(f, "{k}=… ")?;
            }
        }
        write!(f, "{}", self.program.display())?;
        for a in &self.args {
            write!(f, " {}", a.to_string_lossy())?;
        }
        Ok(())
    }
}

/// What a finished child left.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Captured stdout (complete when [`Command::capture_full`] was set, else the tail).
    pub stdout: Vec<u8>,
    /// Captured stderr (tail).
    pub stderr: Vec<u8>,
    /// How long the child ran.
    pub elapsed: Duration,
    /// Killed because it did not connect before its [`Command::connect_deadline`].
    pub timed_out: bool,
}

impl Output {
    /// Stdout as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Stderr as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Go's `ExitError` text: `exit status N` or `signal: N`.
pub fn status_text(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal: {s}"),
        (None, None) => "exit status unknown".into(),
    }
}

/// A child that could not be run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Spawning failed (missing program, not executable...).
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// The stdin file could not be opened.
    #[error("{0}")]
    Stdin(String),
    /// The program exited non-zero.
    #[error("{program}: {status}", status = status_text(&.output.status))]
    Failed {
        /// Program file name.
        program: String,
        /// What it left.
        output: Box<Output>,
    },
}

impl RunError {
    /// What Go's `os/exec` error would say: `exit status N` (or `signal: N`) for a program
    /// that failed, otherwise the error itself. The original prints this after the
    /// "You may need to delete the artifact-file" line; the program's own diagnostics are
    /// already on stderr.
    pub fn go_text(&self) -> String {
        match self {
            RunError::Failed { output, .. } => status_text(&output.status),
            other => other.to_string(),
        }
    }
}

impl Command {
    /// A command inheriting our environment.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: None,
            stdin: None,
            echo: true,
            capture_full: false,
            connect_deadline: None,
        }
    }

    /// Kills the child unless `connected` says, from its stderr, that it got past connecting
    /// within `limit` (for clients without a connect-timeout option). `connected` should
    /// answer `true` when in doubt: a false `false` kills a healthy child.
    pub fn connect_deadline(mut self, limit: Duration, connected: ConnectedTest) -> Self {
        self.connect_deadline = Some((limit, connected));
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Replaces the child's whole environment with `env` (an empty map gives an empty environment).
    pub fn env_only(mut self, env: BTreeMap<String, OsString>) -> Self {
        self.env = Some(env);
        self
    }

    /// Feeds this file to the child's stdin (default: `/dev/null`).
    pub fn stdin_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.stdin = Some(path.into());
        self
    }

    /// Don't copy the child's output to ours.
    pub fn quiet(mut self) -> Self {
        self.echo = false;
        self
    }

    /// Keep all of stdout (for parsing), not just the tail.
    pub fn capture_full(mut self) -> Self {
        self.capture_full = true;
        self
    }

    /// The program path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The arguments.
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    /// The replacement environment, if any.
    pub fn get_env(&self) -> Option<&BTreeMap<String, OsString>> {
        self.env.as_ref()
    }

    fn program_name(&self) -> String {
        self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// Runs to completion; a non-zero exit is [`RunError::Failed`].
    pub fn run(&self) -> Result<Output, RunError> {
        let out = self.run_status()?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(RunError::Failed {
                program: self.program_name(),
                output: Box::new(out),
            })
        }
    }

    /// Runs to completion and returns whatever the exit status.
    pub fn run_status(&self) -> Result<Output, RunError> {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args);
        if let Some(env) = &self.env {
            cmd.env_clear();
            cmd.envs(env);
        }
        match &self.stdin {
            Some(p) => {
                let f = File::open(p).map_err(|e| {
                    RunError::Stdin(crate::config::go_style_io_error("open", p, &e))
                })?;
                cmd.stdin(Stdio::from(f));
            }
            None => {
                cmd.stdin(Stdio::null());
            }
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
            program: self.program.display().to_string(),
            source,
        })?;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunError::Spawn {
                program: self.program.display().to_string(),
                source: io::Error::other("no pipes"),
            });
        };
        let echo = self.echo;
        let full = self.capture_full;
        let out_thread = thread::spawn(move || pump(out, echo.then(io::stdout), full, None));
        let mut timed_out = false;
        let err_bytes = match self.connect_deadline {
            None => pump(err, echo.then(io::stderr), false, None),
            Some((limit, connected)) => {
                // The stderr pump reports "connected" (or drops the sender when the child
                // closes stderr); meanwhile this thread waits until the deadline.
                let (tx, rx) = mpsc::channel::<()>();
                let err_thread = thread::spawn(move || {
                    pump(err, echo.then(io::stderr), false, Some((connected, tx)))
                });
                if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit)
                    && matches!(child.try_wait(), Ok(None))
                {
                    timed_out = child.kill().is_ok();
                }
                err_thread.join().unwrap_or_default()
            }
        };
        let out_bytes = out_thread.join().unwrap_or_default();
        let status = child.wait().map_err(|source| RunError::Spawn {
            program: self.program.display().to_string(),
            source,
        })?;
        Ok(Output {
            status,
            stdout: out_bytes,
            stderr: err_bytes,
            elapsed: started.elapsed(),
            timed_out,
        })
    }
}

/// Copies `from` to `to` (if any) and returns what it read (everything, or the last [`TAIL`]
/// bytes). With `watch`, sends once on its channel as soon as its test accepts what was read.
fn pump<R: Read, W: Write>(
    mut from: R,
    mut to: Option<W>,
    full: bool,
    mut watch: Option<(ConnectedTest, mpsc::Sender<()>)>,
) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if let Some(w) = to.as_mut()
            && w.write_all(&buf[..n]).and_then(|()| w.flush()).is_err()
        {
            to = None;
        }
        kept.extend_from_slice(&buf[..n]);
        if let Some((connected, tx)) = &watch
            && connected(&kept)
        {
            let _ = tx.send(());
            watch = None;
        }
        if !full && kept.len() > 2 * TAIL {
            kept.drain(..kept.len() - TAIL);
        }
    }
    if !full && kept.len() > TAIL {
        kept.drain(..kept.len() - TAIL);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_is_replaced_and_output_captured() {
        let mut env = BTreeMap::new();
        env.insert("ONLY".to_string(), OsString::from("this"));
        let out = Command::new("/bin/sh")
            .args(["-c", "env; echo err >&2"])
            .env_only(env)
            .quiet()
            .capture_full()
            .run()
            .expect("sh runs");
        let text = out.stdout_text();
        assert!(text.contains("ONLY=this"));
        assert!(!text.contains("HOME="));
        assert_eq!(out.stderr_text(), "err\n");
    }

    #[test]
    fn failure_text_is_go_like() {
        let err = Command::new("/bin/sh")
            .args(["-c", "exit 3"])
            .quiet()
            .run()
            .unwrap_err();
        assert_eq!(err.to_string(), "sh: exit status 3");
        let err = Command::new("/nonexistent/x").run().unwrap_err();
        assert!(matches!(err, RunError::Spawn { .. }));
    }

    #[test]
    fn display_hides_env_values() {
        let mut env = BTreeMap::new();
        env.insert("PGPASSWORD".to_string(), OsString::from("s3cret"));
        let c = Command::new("/usr/bin/pg_dump")
            .arg("--host=h")
            .env_only(env);
        let s = c.to_string();
        assert_eq!(s, "PGPASSWORD=… /usr/bin/pg_dump --host=h");
    }

    fn said_connected(stderr: &[u8]) -> bool {
        stderr.windows(9).any(|w| w == b"connected")
    }

    /// [`Command::run_status`] on a thread; fails naming `what` if it has not returned after
    /// a minute, which only a hang reaches (the children here sleep for 10 minutes).
    fn run_within(what: &str, command: Command) -> Output {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(command.run_status());
        });
        bbr_testkit::wait::until_some(what, Duration::from_secs(60), || rx.try_recv().ok())
            .expect("runs")
    }

    #[test]
    fn connect_deadline_kills_a_child_that_never_connects() {
        use std::os::unix::process::ExitStatusExt;
        let out = run_within(
            "the run to kill its child at the connect deadline",
            Command::new("/bin/sh")
                .args(["-c", "echo connecting >&2; exec sleep 600"])
                .quiet()
                .connect_deadline(Duration::from_millis(300), said_connected),
        );
        assert!(out.timed_out);
        assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{:?}", out.status);
        assert_eq!(out.stderr_text(), "connecting\n");
    }

    #[test]
    fn connect_deadline_spares_a_connected_or_finished_child() {
        // Connected at once, then works longer than the deadline (2 s: time enough for a
        // loaded machine to start the shell that says so).
        let out = Command::new("/bin/sh")
            .args(["-c", "echo connected >&2; sleep 3; echo done"])
            .quiet()
            .connect_deadline(Duration::from_secs(2), said_connected)
            .run()
            .expect("not killed");
        assert!(!out.timed_out);
        assert_eq!(out.stdout_text(), "done\n");
        assert!(out.elapsed >= Duration::from_secs(3));
        // Exits on its own long before the deadline without ever saying so: the run returns
        // then, instead of waiting the deadline out.
        let out = run_within(
            "the run to return once its child exited, before the connect deadline",
            Command::new("/bin/sh")
                .args(["-c", "exit 4"])
                .quiet()
                .connect_deadline(Duration::from_secs(600), said_connected),
        );
        assert!(!out.timed_out);
        assert_eq!(out.status.code(), Some(4));
    }

    #[test]
    fn tail_is_bounded() {
        let out = Command::new("/bin/sh")
            .args(["-c", "head -c 500000 /dev/zero"])
            .quiet()
            .run()
            .expect("runs");
        assert_eq!(out.stdout.len(), TAIL);
    }
}
