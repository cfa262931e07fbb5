//! Running one release-author script on a VM: as root, with its environment, optionally
//! under a time limit, and killable (its whole process group) when a stop is requested.
//!
//! A script's output is never held whole: it is streamed from the VM, only the last
//! [`SCRIPT_OUTPUT_TAIL`] bytes of each stream are kept (for the error message) with a count
//! of those dropped, and with `--debug` every line is logged as it arrives (`stdout: <line>`,
//! `stderr: <line>`, as Go bbr logs the chunks it reads). The one script whose stdout bbr
//! reads, `metadata`, is kept whole up to a limit ([`Capture::Whole`]) and stopped beyond it.

use crate::commands;
use crate::remote::{Exited, HELD_OUTPUT_GRACE, OutputSink, Remote, RemoteError, Stream, Tail};
use crate::report::{Level, Reporter, ReporterExt};
use crate::stop::StopSignal;
use futures::FutureExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How much of each of a script's stdout and stderr is kept: the end of it, where a failing
/// script says why.
pub const SCRIPT_OUTPUT_TAIL: usize = 64 * 1024;

/// Longest DEBUG line made of a script's output; the rest of a longer line is counted, not
/// shown (a line that long is data, not a message, and would only flood the log).
pub const DEBUG_LINE_LIMIT: usize = 4096;

/// How bounded a run is.
#[derive(Clone, Default)]
pub struct ScriptLimits {
    /// Kill the script's process group after this long (`None`: no limit).
    pub timeout: Option<Duration>,
    /// Kill the script's process group when this is raised (`None`: never; used for unlock
    /// scripts, which must always run to completion).
    pub stop: Option<StopSignal>,
}

/// What is kept of a script's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// The last [`SCRIPT_OUTPUT_TAIL`] bytes (lifecycle scripts, whose stdout bbr only logs).
    Tail,
    /// All of it, up to `limit` bytes; a script writing more is stopped and fails with
    /// [`ScriptError::OutputTooLarge`] (the metadata script, whose stdout bbr parses).
    Whole {
        /// Most bytes accepted.
        limit: usize,
    },
}

/// One script to run.
pub struct Script<'a> {
    /// The job it belongs to (for messages).
    pub job: &'a str,
    /// The instance it runs on, `<group>/<id>` (for messages).
    pub instance: &'a str,
    /// The script's path on the VM.
    pub path: &'a str,
    /// Variables added to its environment.
    pub env: &'a [(&'a str, String)],
    /// What is kept of its stdout.
    pub capture: Capture,
}

/// What a script that ran left behind.
#[derive(Debug, Clone)]
pub struct ScriptOutput {
    /// Its exit status.
    pub exit_code: u32,
    /// Its stdout: the end of it, or all of it with [`Capture::Whole`].
    pub stdout: Tail,
    /// The end of its stderr.
    pub stderr: Tail,
    /// True when a process the script left running held its output open after it exited.
    pub output_held_open: bool,
}

/// Why a script did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The script exited non-zero: `<stderr> - exit code <n>`.
    #[error("{stderr} - exit code {code}")]
    Failed {
        /// The end of its stderr, trimmed, after `[... <n> bytes of stderr dropped ...]`
        /// when it wrote more.
        stderr: String,
        /// Exit status.
        code: u32,
    },
    /// The time limit struck and the script's process group was killed.
    #[error("timed out after {0:?}; its process group was killed")]
    TimedOut(Duration),
    /// A stop was requested and the script's process group was killed.
    #[error("stopped by a termination request; its process group was killed")]
    Stopped,
    /// The script wrote more to stdout than bbr reads from it; it was stopped.
    #[error(
        "it wrote more than {limit} bytes to stdout, the most bbr reads from this script; its process group was killed"
    )]
    OutputTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The command could not be run at all.
    #[error("{0}")]
    Remote(#[from] RemoteError),
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

fn pid_file() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "/tmp/bbr-script-{}-{}-{}.pid",
        std::process::id(),
        RUN_COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// Splits one output stream into DEBUG lines as it arrives.
struct DebugLines {
    stream: Stream,
    line: Vec<u8>,
    /// Bytes of the current line beyond [`DEBUG_LINE_LIMIT`].
    cut: u64,
}

impl DebugLines {
    fn new(stream: Stream) -> Self {
        Self {
            stream,
            line: Vec::new(),
            cut: 0,
        }
    }

    fn push(&mut self, mut data: &[u8], reporter: &dyn Reporter) {
        while let Some(end) = data.iter().position(|b| *b == b'\n') {
            self.take(&data[..end]);
            self.emit(reporter);
            data = &data[end + 1..];
        }
        self.take(data);
    }

    fn take(&mut self, part: &[u8]) {
        let room = DEBUG_LINE_LIMIT
            .saturating_sub(self.line.len())
            .min(part.len());
        self.line.extend_from_slice(&part[..room]);
        self.cut += (part.len() - room) as u64;
    }

    fn emit(&mut self, reporter: &dyn Reporter) {
        let text = String::from_utf8_lossy(&self.line);
        let name = self.stream.name();
        if self.cut > 0 {
            reporter.debug(format!(
                "{name}: {text} [... {} more bytes of this line dropped ...]",
                self.cut
            ));
        } else {
            reporter.debug(format!("{name}: {text}"));
        }
        self.line.clear();
        self.cut = 0;
    }

    /// Logs the last line, when the output did not end with a newline.
    fn finish(&mut self, reporter: &dyn Reporter) {
        if !self.line.is_empty() || self.cut > 0 {
            self.emit(reporter);
        }
    }
}

/// Keeps what is kept of a script's output and logs its lines.
struct Collector {
    stdout: Tail,
    stderr: Tail,
    /// With [`Capture::Whole`]: more would not fit.
    whole: bool,
    overflowed: bool,
    lines: Option<(DebugLines, DebugLines)>,
}

impl Collector {
    fn new(capture: Capture, debug: bool) -> Self {
        let (limit, whole) = match capture {
            Capture::Tail => (SCRIPT_OUTPUT_TAIL, false),
            Capture::Whole { limit } => (limit, true),
        };
        Self {
            stdout: Tail::new(limit),
            stderr: Tail::new(SCRIPT_OUTPUT_TAIL),
            whole,
            overflowed: false,
            lines: debug.then(|| {
                (
                    DebugLines::new(Stream::Stdout),
                    DebugLines::new(Stream::Stderr),
                )
            }),
        }
    }

    fn take(
        &mut self,
        stream: Stream,
        data: &[u8],
        reporter: &dyn Reporter,
    ) -> std::io::Result<()> {
        if self.whole && stream == Stream::Stdout && self.stdout.would_drop(data) {
            self.overflowed = true;
            return Err(std::io::Error::other("the script's stdout is too large"));
        }
        if let Some((out, err)) = &mut self.lines {
            match stream {
                Stream::Stdout => out.push(data, reporter),
                Stream::Stderr => err.push(data, reporter),
            }
        }
        match stream {
            Stream::Stdout => self.stdout.push(data),
            Stream::Stderr => self.stderr.push(data),
        }
        Ok(())
    }

    fn finish(&mut self, reporter: &dyn Reporter) {
        if let Some((out, err)) = &mut self.lines {
            out.finish(reporter);
            err.finish(reporter);
        }
    }
}

/// How driving the script's command ended.
enum Driven {
    Exited(Exited),
    Failed(RemoteError),
    Stopped,
}

/// Runs the script's command, killing its process group when a stop is requested.
async fn drive(
    remote: &dyn Remote,
    command: &commands::RootCommand,
    pid_file: &str,
    path: &str,
    limits: &ScriptLimits,
    sink: &mut OutputSink<'_>,
    reporter: &dyn Reporter,
) -> Driven {
    let run = remote.run_as_root_streaming(command, sink).fuse();
    futures::pin_mut!(run);
    let ran = match &limits.stop {
        None => run.await,
        Some(stop) => {
            let stopped = stop.raised().fuse();
            futures::pin_mut!(stopped);
            futures::select! {
                out = run => out,
                _ = stopped => {
                    reporter.warn(format!("Stopping '{path}' on {}: killing its process group", remote.address()));
                    let kill = async {
                        if let Err(e) = remote.run_as_root(&commands::kill_script(pid_file)).await {
                            reporter.error(format!("Could not kill '{path}' on {}: {e}", remote.address()));
                        }
                    };
                    // The script's output is read on while the kill runs: a transport that
                    // streams it may need it read before it can deliver the kill's outcome.
                    // The kill escalates to SIGKILL within seconds; never let a stuck channel
                    // keep bbr from unlocking.
                    let ended = async {
                        let grace = futures_timer::Delay::new(Duration::from_secs(30)).fuse();
                        futures::pin_mut!(grace);
                        futures::select! {
                            _ = run => true,
                            _ = grace => false,
                        }
                    };
                    let ((), ended) = futures::join!(kill, ended);
                    if !ended {
                        reporter.error(format!(
                            "'{path}' on {} did not end after being killed; going on with unlock",
                            remote.address()
                        ));
                    }
                    return Driven::Stopped;
                }
            }
        }
    };
    match ran {
        Ok(exited) => Driven::Exited(exited),
        Err(e) => Driven::Failed(e),
    }
}

/// Runs `script` on `remote` as root, logging its output at DEBUG line by line.
pub async fn run_script(
    remote: &dyn Remote,
    script: &Script<'_>,
    limits: &ScriptLimits,
    reporter: &dyn Reporter,
) -> Result<ScriptOutput, ScriptError> {
    let path = script.path;
    let pid_file = pid_file();
    let secs = limits.timeout.map(|d| d.as_secs().max(1)).unwrap_or(0);
    let command = commands::run_script(path, script.env, secs, &pid_file);
    reporter.debug(format!("Trying to execute '{path}' on remote"));
    let mut collector = Collector::new(script.capture, reporter.wants(Level::Debug));
    let driven = {
        let mut sink = |stream: Stream, data: &[u8]| -> std::io::Result<()> {
            collector.take(stream, data, reporter)
        };
        drive(
            remote, &command, &pid_file, path, limits, &mut sink, reporter,
        )
        .await
    };
    collector.finish(reporter);
    let exited = match driven {
        Driven::Exited(exited) => exited,
        Driven::Stopped => return Err(ScriptError::Stopped),
        Driven::Failed(_) if collector.overflowed => {
            let limit = match script.capture {
                Capture::Whole { limit } => limit,
                Capture::Tail => SCRIPT_OUTPUT_TAIL,
            };
            if let Err(e) = remote.run_as_root(&commands::kill_script(&pid_file)).await {
                reporter.error(format!(
                    "Could not kill '{path}' on {}: {e}",
                    remote.address()
                ));
            }
            return Err(ScriptError::OutputTooLarge { limit });
        }
        Driven::Failed(e) => return Err(e.into()),
    };
    if exited.output_held_open {
        reporter.warn(format!(
            "Script {path} of job {} on {} exited with status {}, but a process it left running kept its stdout or stderr open; stopped waiting for that output after {} s",
            script.job,
            script.instance,
            exited.exit_code,
            HELD_OUTPUT_GRACE.as_secs()
        ));
    }
    let output = ScriptOutput {
        exit_code: exited.exit_code,
        stdout: collector.stdout,
        stderr: collector.stderr,
        output_held_open: exited.output_held_open,
    };
    match output.exit_code {
        0 => Ok(output),
        124 if secs > 0 => Err(ScriptError::TimedOut(Duration::from_secs(secs))),
        137 if secs > 0 && output.stderr.is_empty() => {
            Err(ScriptError::TimedOut(Duration::from_secs(secs)))
        }
        code => Err(ScriptError::Failed {
            stderr: output.stderr.text(Stream::Stderr),
            code,
        }),
    }
}
