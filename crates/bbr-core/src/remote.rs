//! How the core reaches a VM: run a command, stream its stdout to a sink, or stream a source
//! into its stdin. Implemented by the SSH transport (one connection per host) and by tests.

use crate::commands::RootCommand;
use async_trait::async_trait;

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
    /// The local sink refused data (e.g. the artifact disk is full).
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
