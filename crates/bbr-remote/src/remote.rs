//! How bbr reaches a VM: run a command, stream its stdout to a sink, or stream a source
//! into its stdin. Implemented by the SSH transport (one connection per host) and by tests.

use crate::command::RootCommand;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::time::Duration;

/// How long a command's output is still waited for once its own process has exited, counted
/// from the last byte that arrived. Output written just before the exit is normally read within
/// milliseconds; a few seconds let a loaded VM or a slow link deliver what is still buffered on
/// the way. Output still open after that is held by a process the command left running (a
/// daemon started by a script, with the script's stdout inherited), which may never close it:
/// waiting for it would keep bbr waiting as long as that process lives.
pub const HELD_OUTPUT_GRACE: Duration = Duration::from_secs(5);

/// The longest a command's output is waited for once its own process has exited, however
/// often more output arrives: [`HELD_OUTPUT_GRACE`] counts from the last byte, so a process
/// left running that keeps writing would otherwise keep bbr waiting for as long as it lives.
/// A minute is far more than any buffered output needs to arrive, even on a loaded VM.
pub const HELD_OUTPUT_LIMIT: Duration = Duration::from_secs(60);

/// The last bytes of an output stream, at most a fixed number, and how many came before them.
/// Keeps a command that writes gigabytes from costing bbr more than that much memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    kept: VecDeque<u8>,
    limit: usize,
    dropped: u64,
}

impl Tail {
    /// An empty tail keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            kept: VecDeque::new(),
            limit,
            dropped: 0,
        }
    }

    /// Appends `data`, dropping the oldest bytes beyond the limit.
    pub fn push(&mut self, data: &[u8]) {
        if data.len() >= self.limit {
            self.dropped += (self.kept.len() + data.len() - self.limit) as u64;
            self.kept.clear();
            self.kept.extend(&data[data.len() - self.limit..]);
            return;
        }
        let excess = (self.kept.len() + data.len()).saturating_sub(self.limit);
        if excess > 0 {
            self.kept.drain(..excess);
            self.dropped += excess as u64;
        }
        self.kept.extend(data);
    }

    /// Whether `data` would push bytes out of the tail.
    pub fn would_drop(&self, data: &[u8]) -> bool {
        self.kept.len() + data.len() > self.limit
    }

    /// The bytes kept (the last ones written).
    pub fn bytes(&self) -> Vec<u8> {
        self.kept.iter().copied().collect()
    }

    /// How many bytes came before the kept ones and were dropped.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// True when nothing was written at all.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.dropped == 0
    }

    /// The kept bytes as (lossy) UTF-8, trimmed, preceded by
    /// `[... <n> bytes of <stream> dropped ...]` when some were dropped.
    pub fn text(&self, stream: Stream) -> String {
        let tail = String::from_utf8_lossy(&self.bytes()).trim().to_string();
        if self.dropped == 0 {
            tail
        } else {
            format!(
                "[... {} bytes of {} dropped ...] {tail}",
                self.dropped,
                stream.name()
            )
        }
    }
}

/// One of a command's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Receives a command's output chunks as they arrive; returning an error aborts the command.
pub type OutputSink<'a> = dyn FnMut(Stream, &[u8]) -> std::io::Result<()> + Send + 'a;

/// How a command whose output was streamed ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exited {
    /// The command's exit status.
    pub exit_code: u32,
    /// True when the command's process exited but its output was still open
    /// [`HELD_OUTPUT_GRACE`] later (a process it left running holds it): the rest of the
    /// output, if any ever comes, was abandoned.
    pub output_held_open: bool,
}

/// The result of a remote command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The command's exit status.
    pub exit_code: u32,
    /// Captured stdout (empty when stdout was streamed to a sink).
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
}

impl Output {
    /// True when the command exited with status 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    /// Stdout as (lossy) UTF-8.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as (lossy) UTF-8, trimmed.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

impl Output {
    /// `Ok(self)` when the command exited 0, otherwise its [`ExitFailure`].
    pub fn checked(self) -> Result<Output, ExitFailure> {
        if self.success() {
            Ok(self)
        } else {
            Err(ExitFailure {
                stderr: self.stderr_text(),
                exit_code: self.exit_code,
            })
        }
    }
}

/// A command that ran but exited non-zero, shown as Go bbr shows it: `<stderr> - exit code N`.
#[derive(Debug, thiserror::Error)]
#[error("{stderr} - exit code {exit_code}")]
pub struct ExitFailure {
    /// The command's stderr, trimmed.
    pub stderr: String,
    /// Its exit status.
    pub exit_code: u32,
}

/// Why a checked root command failed: it could not be run, or it exited non-zero.
#[derive(Debug, thiserror::Error)]
pub enum RootCommandError {
    /// The command could not be run at all.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The command exited non-zero.
    #[error(transparent)]
    Exit(#[from] ExitFailure),
}

/// Runs `command` as root on `remote` and checks its exit status: the one place where a root
/// command's failure is rendered, either the transport's error or `<stderr> - exit code N`.
pub async fn run_as_root_checked(
    remote: &dyn Remote,
    command: &RootCommand,
) -> Result<Output, RootCommandError> {
    Ok(remote.run_as_root(command).await?.checked()?)
}

/// A failure to run a remote command at all (as opposed to a command exiting non-zero).
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The connection to the host failed or dropped.
    #[error("ssh connection to {host} failed: {reason}")]
    Connection {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The session ended without the remote side reporting an exit status.
    #[error("ssh session ended before returning an exit code (host {host})")]
    NoExitStatus {
        /// The host.
        host: String,
    },
    /// The local sink refused data (e.g. the artifact disk is full, or a command wrote more
    /// than its reader takes).
    #[error("writing data from {host} failed: {source}")]
    Sink {
        /// The host.
        host: String,
        /// The local I/O error.
        source: std::io::Error,
    },
    /// The local source could not be read.
    #[error("reading data to send to {host} failed: {source}")]
    Source {
        /// The host.
        host: String,
        /// The local I/O error.
        source: std::io::Error,
    },
}

/// Receives streamed stdout bytes; returning an error aborts the command.
pub type StdoutSink<'a> = dyn FnMut(&[u8]) -> std::io::Result<()> + Send + 'a;

/// A connection to one VM on which commands run.
#[async_trait]
pub trait Remote: Send + Sync {
    /// The address used in messages (host or host:port).
    fn address(&self) -> &str;

    /// Runs `command` and captures its stdout and stderr.
    async fn run(&self, command: &str) -> Result<Output, RemoteError>;

    /// Runs `command` as root and captures its stdout and stderr. By default through
    /// `sudo -n` like any other command; a transport may use a root process it keeps on the
    /// VM instead, as long as the command sees the same environment, stdin (none) and exit
    /// status.
    async fn run_as_root(&self, command: &RootCommand) -> Result<Output, RemoteError> {
        self.run(&command.with_sudo()).await
    }

    /// Runs `command` as root like [`Remote::run_as_root`], but hands its stdout and stderr
    /// to `sink` chunk by chunk as they arrive instead of capturing them, so that a command
    /// writing gigabytes costs no memory. Once the command's own process has exited, its
    /// output is waited for at most [`HELD_OUTPUT_GRACE`] (see [`Exited::output_held_open`]).
    /// By default the output is captured and then handed over: for transports whose
    /// commands write little (test doubles).
    async fn run_as_root_streaming(
        &self,
        command: &RootCommand,
        sink: &mut OutputSink<'_>,
    ) -> Result<Exited, RemoteError> {
        let output = self.run_as_root(command).await?;
        let sunk = sink(Stream::Stdout, &output.stdout)
            .and_then(|()| sink(Stream::Stderr, &output.stderr));
        sunk.map_err(|source| RemoteError::Sink {
            host: self.address().to_string(),
            source,
        })?;
        Ok(Exited {
            exit_code: output.exit_code,
            output_held_open: false,
        })
    }

    /// Runs `command`, handing every stdout chunk to `sink` as it arrives; stderr is captured.
    async fn run_streaming_stdout(
        &self,
        command: &str,
        sink: &mut StdoutSink<'_>,
    ) -> Result<Output, RemoteError>;

    /// Runs `command` with everything read from `source` as its stdin, then EOF. The
    /// transport may read `source` on a thread of its own, so that reading (and whatever the
    /// source does, such as hashing) overlaps with sending.
    async fn run_with_stdin(
        &self,
        command: &str,
        source: Box<dyn std::io::Read + Send>,
    ) -> Result<Output, RemoteError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_last_bytes_and_counts_the_rest() {
        let mut tail = Tail::new(4);
        tail.push(b"ab");
        assert_eq!((tail.bytes(), tail.dropped()), (b"ab".to_vec(), 0));
        assert_eq!(tail.text(Stream::Stdout), "ab");
        tail.push(b"cde");
        assert_eq!((tail.bytes(), tail.dropped()), (b"bcde".to_vec(), 1));
        tail.push(b"0123456789");
        assert_eq!((tail.bytes(), tail.dropped()), (b"6789".to_vec(), 11));
        tail.push(b"");
        assert_eq!((tail.bytes(), tail.dropped()), (b"6789".to_vec(), 11));
        assert_eq!(
            tail.text(Stream::Stderr),
            "[... 11 bytes of stderr dropped ...] 6789"
        );
        assert!(tail.would_drop(b"x") && !Tail::new(4).would_drop(b"abcd"));
        assert!(Tail::new(4).is_empty() && !tail.is_empty());
    }

    /// The rendering Go bbr uses for a failed root command, which several errors embed.
    #[test]
    fn a_failed_command_renders_as_stderr_dash_exit_code() {
        let failed = Output {
            exit_code: 2,
            stdout: b"ignored".to_vec(),
            stderr: b"  mkdir: cannot create directory\n".to_vec(),
        };
        let e = failed.checked().expect_err("exit 2 is a failure");
        assert_eq!(
            e.to_string(),
            "mkdir: cannot create directory - exit code 2"
        );
        let wrapped = RootCommandError::from(e);
        assert_eq!(
            wrapped.to_string(),
            "mkdir: cannot create directory - exit code 2"
        );
        let ok = Output {
            exit_code: 0,
            stdout: b"out".to_vec(),
            stderr: b"warning".to_vec(),
        };
        assert_eq!(ok.checked().expect("exit 0 passes").stdout, b"out");
        let unreachable = RootCommandError::from(RemoteError::NoExitStatus {
            host: "10.0.0.1".into(),
        });
        assert_eq!(
            unreachable.to_string(),
            "ssh session ended before returning an exit code (host 10.0.0.1)"
        );
    }
}
