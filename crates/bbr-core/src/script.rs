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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::RootCommand;
    use crate::remote::{Output, StdoutSink};
    use crate::report::MemoryReporter;
    use std::sync::Mutex;

    /// Writes the given chunks as the script's output, then exits as told.
    struct Scripted {
        chunks: Vec<(Stream, Vec<u8>)>,
        exited: Exited,
        /// Root commands run besides the script (kills).
        others: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Remote for Scripted {
        fn address(&self) -> &str {
            "10.0.0.1"
        }
        async fn run(&self, command: &str) -> Result<Output, RemoteError> {
            self.others.lock().unwrap().push(command.to_string());
            Ok(Output::default())
        }
        async fn run_as_root_streaming(
            &self,
            _: &RootCommand,
            sink: &mut OutputSink<'_>,
        ) -> Result<Exited, RemoteError> {
            for (stream, data) in &self.chunks {
                sink(*stream, data).map_err(|source| RemoteError::Sink {
                    host: "10.0.0.1".into(),
                    source,
                })?;
            }
            Ok(self.exited)
        }
        async fn run_streaming_stdout(
            &self,
            _: &str,
            _: &mut StdoutSink<'_>,
        ) -> Result<Output, RemoteError> {
            unreachable!()
        }
        async fn run_with_stdin(
            &self,
            _: &str,
            _: Box<dyn std::io::Read + Send>,
        ) -> Result<Output, RemoteError> {
            unreachable!()
        }
    }

    fn scripted(chunks: Vec<(Stream, Vec<u8>)>, exit_code: u32, held: bool) -> Scripted {
        Scripted {
            chunks,
            exited: Exited {
                exit_code,
                output_held_open: held,
            },
            others: Mutex::new(Vec::new()),
        }
    }

    async fn run(
        remote: &Scripted,
        capture: Capture,
        reporter: &dyn Reporter,
    ) -> Result<ScriptOutput, ScriptError> {
        let script = Script {
            job: "redis",
            instance: "redis/0",
            path: "/var/vcap/jobs/redis/bin/bbr/backup",
            env: &[],
            capture,
        };
        run_script(remote, &script, &ScriptLimits::default(), reporter).await
    }

    /// A reporter that shows no DEBUG lines.
    struct Quiet(MemoryReporter);

    impl Reporter for Quiet {
        fn log(&self, level: Level, message: &str) {
            self.0.log(level, message)
        }
        fn wants(&self, level: Level) -> bool {
            level != Level::Debug
        }
        fn transfer(
            &self,
            job: &str,
            instance: &str,
            total: u64,
        ) -> Box<dyn crate::report::TransferProgress> {
            self.0.transfer(job, instance, total)
        }
    }

    /// `n` bytes of numbered lines, `line 0000001\n` ...
    fn numbered(n: usize) -> Vec<u8> {
        (0..)
            .flat_map(|i| format!("line {i:07}\n").into_bytes())
            .take(n)
            .collect()
    }

    #[tokio::test]
    async fn a_noisy_script_leaves_the_tail_of_each_stream_and_the_count_dropped() {
        let out = numbered(20 << 20);
        let err = numbered(3 << 20);
        let chunks = out
            .chunks(32 * 1024)
            .map(|c| (Stream::Stdout, c.to_vec()))
            .chain(err.chunks(7000).map(|c| (Stream::Stderr, c.to_vec())))
            .collect();
        let remote = scripted(chunks, 2, false);
        let reporter = Quiet(MemoryReporter::default());
        let Err(ScriptError::Failed { stderr, code }) =
            run(&remote, Capture::Tail, &reporter).await
        else {
            panic!("the script failed");
        };
        let tail_start = err.len() - SCRIPT_OUTPUT_TAIL;
        assert_eq!(code, 2);
        assert_eq!(
            stderr,
            format!(
                "[... {tail_start} bytes of stderr dropped ...] {}",
                String::from_utf8_lossy(&err[tail_start..]).trim()
            )
        );
        assert!(
            !reporter.0.contains("stdout:") && !reporter.0.contains("stderr:"),
            "no output lines are made when DEBUG is not shown"
        );
        let remote = scripted(
            out.chunks(32 * 1024)
                .map(|c| (Stream::Stdout, c.to_vec()))
                .collect(),
            0,
            false,
        );
        let output = run(&remote, Capture::Tail, &reporter).await.unwrap();
        assert_eq!(
            output.stdout.bytes(),
            &out[out.len() - SCRIPT_OUTPUT_TAIL..]
        );
        assert_eq!(
            output.stdout.dropped(),
            (out.len() - SCRIPT_OUTPUT_TAIL) as u64
        );
        assert!(output.stderr.is_empty());
    }

    #[tokio::test]
    async fn debug_lines_are_logged_as_they_arrive_and_long_ones_are_cut() {
        let long = vec![b'x'; DEBUG_LINE_LIMIT + 10];
        let remote = scripted(
            vec![
                (Stream::Stdout, b"ab".to_vec()),
                (Stream::Stderr, b"oops\n".to_vec()),
                (Stream::Stdout, b"c\nde".to_vec()),
                (Stream::Stdout, b"f\n".to_vec()),
                (Stream::Stdout, long.clone()),
                (Stream::Stdout, b"\nlast".to_vec()),
            ],
            0,
            false,
        );
        let reporter = MemoryReporter::default();
        run(&remote, Capture::Tail, &reporter).await.unwrap();
        let debug: Vec<String> = reporter
            .lines()
            .into_iter()
            .filter(|(l, _)| *l == Level::Debug)
            .map(|(_, m)| m)
            .collect();
        assert_eq!(
            debug,
            vec![
                "Trying to execute '/var/vcap/jobs/redis/bin/bbr/backup' on remote".to_string(),
                "stderr: oops".to_string(),
                "stdout: abc".to_string(),
                "stdout: def".to_string(),
                format!(
                    "stdout: {} [... 10 more bytes of this line dropped ...]",
                    "x".repeat(DEBUG_LINE_LIMIT)
                ),
                "stdout: last".to_string(),
            ]
        );
    }

    #[tokio::test]
    async fn a_script_writing_more_than_its_whole_capture_is_stopped() {
        let remote = scripted(
            vec![
                (Stream::Stdout, vec![b'a'; 600]),
                (Stream::Stdout, vec![b'b'; 600]),
            ],
            0,
            false,
        );
        let reporter = MemoryReporter::default();
        let err = run(&remote, Capture::Whole { limit: 1000 }, &reporter)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ScriptError::OutputTooLarge { limit: 1000 }),
            "{err}"
        );
        let others = remote.others.lock().unwrap().clone();
        assert!(
            others.len() == 1 && others[0].contains("kill -TERM"),
            "its process group is killed: {others:?}"
        );
        let remote = scripted(vec![(Stream::Stdout, vec![b'a'; 1000])], 0, false);
        let output = run(&remote, Capture::Whole { limit: 1000 }, &reporter)
            .await
            .unwrap();
        assert_eq!(
            (output.stdout.bytes().len(), output.stdout.dropped()),
            (1000, 0)
        );
    }

    #[tokio::test]
    async fn output_held_open_is_reported_with_job_and_instance() {
        let remote = scripted(vec![(Stream::Stdout, b"started\n".to_vec())], 0, true);
        let reporter = MemoryReporter::default();
        let output = run(&remote, Capture::Tail, &reporter).await.unwrap();
        assert!(output.output_held_open);
        assert!(
            reporter.lines().contains(&(
                Level::Warn,
                "Script /var/vcap/jobs/redis/bin/bbr/backup of job redis on redis/0 exited with status 0, but a process it left running kept its stdout or stderr open; stopped waiting for that output after 5 s".to_string()
            )),
            "{:?}",
            reporter.lines()
        );
    }
}
