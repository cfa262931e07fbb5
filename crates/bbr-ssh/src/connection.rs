//! One SSH connection per host, with commands as exec channels on it.

use crate::hostkey::{ClientHandler, HostKeyPolicy, Verdict};
use crate::root_runner::{self, RootRunner, RunnerError};
use async_trait::async_trait;
use bbr_remote::{
    Exited, HELD_OUTPUT_GRACE, HELD_OUTPUT_LIMIT, Output, OutputSink, Remote, RemoteError,
    RootCommand, StdoutSink, Stream,
};
use bytes::Bytes;
use futures::future::Either;
use russh::ChannelWriteHalf;
use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, Preferred, cipher};
use std::borrow::Cow;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, Semaphore, SemaphorePermit};

/// Channels opened at once on one connection: OpenSSH's default `MaxSessions` is 10.
const CHANNELS_PER_CONNECTION: usize = 10;

/// How many times a refused session channel is asked for again (after 10, 20, ... 320 ms).
const OPEN_RETRIES: u32 = 6;

/// Size of the chunks an upload reads from its source.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// How many chunks an upload may read ahead of the network (bounds memory to ~2 MiB).
const READ_AHEAD_CHUNKS: usize = 8;

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The private key file could not be read.
    #[error("failed reading private key {path}: {reason}")]
    ReadKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The private key could not be parsed.
    #[error("ssh.NewConnection.ParsePrivateKey failed: {path}: {reason}")]
    ParseKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// TCP connect or the SSH handshake failed.
    #[error("ssh.Dial failed: {host}: {reason}")]
    Dial {
        /// host:port.
        host: String,
        /// Why.
        reason: String,
    },
    /// The host key was refused.
    #[error("{0}")]
    HostKey(String),
    /// The server refused the key for this user.
    #[error("ssh authentication as {user} on {host} failed: the server refused the private key")]
    AuthRefused {
        /// The user.
        user: String,
        /// host:port.
        host: String,
    },
}

/// Where and how to connect.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// The private key (OpenSSH or PEM; ed25519, RSA, ECDSA).
    pub key: Arc<PrivateKey>,
    /// Host-key policy.
    pub host_key: HostKeyPolicy,
    /// Called with a warning when an unknown host key was accepted and recorded.
    pub on_warning: Arc<dyn Fn(String) + Send + Sync>,
    /// How the TCP connection is made (directly, or through `BOSH_ALL_PROXY`).
    pub dialer: crate::proxy::Dialer,
    /// Run root commands through one root process kept on the VM (see `root_runner`)
    /// instead of one `sudo -n` channel each.
    pub root_runner: bool,
}

impl ConnectOptions {
    /// Loads a private key file with Go bbr's error texts.
    pub fn load_key(path: &std::path::Path) -> Result<Arc<PrivateKey>, SshError> {
        let text = std::fs::read_to_string(path).map_err(|e| SshError::ReadKey {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        russh::keys::decode_secret_key(&text, None)
            .map(Arc::new)
            .map_err(|e| SshError::ParseKey {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    }

    fn address(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn client_config(policy: &HostKeyPolicy) -> Arc<client::Config> {
    let mut preferred = Preferred {
        cipher: Cow::Borrowed(&[
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_CTR,
            cipher::AES_128_CTR,
        ]),
        ..Preferred::DEFAULT
    };
    if let Some(key) = policy.preferred_algorithms() {
        preferred.key = Cow::Owned(key);
    }
    Arc::new(client::Config {
        preferred,
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65535,
        channel_buffer_size: 32,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 6,
        nodelay: true,
        ..Default::default()
    })
}

/// A live connection to one host; implements [`Remote`].
pub struct SshConnection {
    options: ConnectOptions,
    address: String,
    handle: AsyncMutex<Arc<Handle<ClientHandler>>>,
    channels: Arc<Semaphore>,
    runner: AsyncMutex<RunnerSlot>,
}

/// How an attempt to start the runner ended.
enum RunnerStart {
    Up(Arc<RootRunner>),
    /// The VM said no (sudo refused, no perl): not tried again on this connection.
    Refused,
    /// The channel could not be opened or closed without an exit status.
    Unreachable,
}

/// Whether root commands go through a runner on the VM.
enum RunnerSlot {
    /// Not started yet (or gone, to be started again).
    Untried,
    Up(Arc<RootRunner>),
    /// Could not be started: one `sudo -n` channel per command from now on.
    Unavailable,
}

async fn establish(options: &ConnectOptions) -> Result<Handle<ClientHandler>, SshError> {
    let address = options.address();
    let verdict = Arc::new(Mutex::new(None));
    let handler = ClientHandler {
        policy: options.host_key.clone(),
        host: options.host.clone(),
        port: options.port,
        verdict: verdict.clone(),
    };
    let connected = match options.dialer.dial(&options.host, options.port).await {
        Ok(stream) => {
            client::connect_stream(client_config(&options.host_key), stream, handler).await
        }
        Err(reason) => {
            return Err(SshError::Dial {
                host: address,
                reason: reason.to_string(),
            });
        }
    };
    let recorded = verdict.lock().ok().and_then(|v| v.clone());
    let mut handle = match (connected, recorded) {
        (Ok(h), _) => h,
        (
            Err(_),
            Some(Verdict::Changed {
                fingerprint,
                file,
                line,
            }),
        ) => {
            return Err(SshError::HostKey(format!(
                "host key verification failed for {address}: the host now presents key {fingerprint}, which differs from the key recorded in {} line {line}. The VM may have been recreated, or someone may be intercepting the connection. If the change is expected, remove that line and run bbr again.",
                file.display()
            )));
        }
        (Err(_), Some(Verdict::PinMismatch { fingerprint })) => {
            return Err(SshError::HostKey(format!(
                "host key verification failed for {address}: the host presents key {fingerprint}, not the key the BOSH director reported"
            )));
        }
        (
            Err(_),
            Some(Verdict::NotListed {
                fingerprint,
                accepted,
            }),
        ) => {
            return Err(SshError::HostKey(format!(
                "Host key verification failed for {address}: the host presents key {fingerprint}, which is not one of the accepted keys ({})",
                accepted.join(", ")
            )));
        }
        (Err(_), Some(Verdict::FileError { file, reason })) => {
            return Err(SshError::HostKey(format!(
                "cannot verify the host key of {address}: known_hosts file {}: {reason}",
                file.display()
            )));
        }
        (Err(e), _) => {
            return Err(SshError::Dial {
                host: address,
                reason: e.to_string(),
            });
        }
    };
    if let Some(Verdict::Learned { fingerprint, file }) =
        verdict.lock().ok().and_then(|v| v.clone())
    {
        (options.on_warning)(format!(
            "Permanently added the host key of {address} ({fingerprint}) to {}: it was not known before",
            file.display()
        ));
    }
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    let auth = handle
        .authenticate_publickey(
            options.user.clone(),
            PrivateKeyWithHashAlg::new(options.key.clone(), hash),
        )
        .await
        .map_err(|e| SshError::Dial {
            host: address.clone(),
            reason: e.to_string(),
        })?;
    if !auth.success() {
        return Err(SshError::AuthRefused {
            user: options.user.clone(),
            host: address,
        });
    }
    Ok(handle)
}

impl SshConnection {
    /// Connects and authenticates.
    pub async fn connect(options: ConnectOptions) -> Result<Arc<SshConnection>, SshError> {
        let handle = establish(&options).await?;
        Ok(Arc::new(SshConnection {
            address: options.address(),
            options,
            handle: AsyncMutex::new(Arc::new(handle)),
            channels: Arc::new(Semaphore::new(CHANNELS_PER_CONNECTION)),
            runner: AsyncMutex::new(RunnerSlot::Untried),
        }))
    }

    /// The runner for root commands, started on first use (again after it went away with a
    /// dropped connection); `None` when this connection does without one.
    async fn root_runner(&self) -> Option<Arc<RootRunner>> {
        if !self.options.root_runner {
            return None;
        }
        let mut slot = self.runner.lock().await;
        match &*slot {
            RunnerSlot::Up(runner) if runner.is_alive() => return Some(runner.clone()),
            RunnerSlot::Unavailable => return None,
            _ => {}
        }
        match self.start_runner().await {
            RunnerStart::Up(runner) => {
                *slot = RunnerSlot::Up(runner.clone());
                Some(runner)
            }
            RunnerStart::Refused => {
                *slot = RunnerSlot::Unavailable;
                None
            }
            // The connection failed under it: try again with the next command.
            RunnerStart::Unreachable => {
                *slot = RunnerSlot::Untried;
                None
            }
        }
    }

    async fn start_runner(&self) -> RunnerStart {
        let Ok((permit, read, write)) = self.start(&root_runner::start_command()).await else {
            return RunnerStart::Unreachable;
        };
        // The runner holds its channel for the whole run: the slot is given back when the
        // channel closes.
        permit.forget();
        let channels = self.channels.clone();
        match RootRunner::serve(read, write, move || channels.add_permits(1)).await {
            Ok(runner) => RunnerStart::Up(Arc::new(runner)),
            Err(failure) if failure.status.is_none() => RunnerStart::Unreachable,
            Err(failure) => {
                // When sudo itself refused, the commands run without the runner fail with
                // sudo's own words; a missing perl only makes the run slower, so say so.
                if failure.perl_missing() {
                    (self.options.on_warning)(format!(
                        "{}: {failure}; running each root command through its own sudo, which is slower",
                        self.address
                    ));
                }
                RunnerStart::Refused
            }
        }
    }

    fn connection_error(&self, reason: impl ToString) -> RemoteError {
        RemoteError::Connection {
            host: self.address.clone(),
            reason: reason.to_string(),
        }
    }

    /// Opens a session channel and starts `command`, reconnecting once if the connection
    /// has gone away.
    async fn open(&self, command: &str) -> Result<russh::Channel<client::Msg>, RemoteError> {
        let mut slot = self.handle.lock().await;
        if slot.is_closed() {
            let fresh = establish(&self.options)
                .await
                .map_err(|e| self.connection_error(e))?;
            *slot = Arc::new(fresh);
        }
        let mut refusals = 0;
        let channel = loop {
            match slot.channel_open_session().await {
                Ok(c) => break c,
                Err(_) if slot.is_closed() => {
                    let fresh = establish(&self.options)
                        .await
                        .map_err(|e| self.connection_error(e))?;
                    *slot = Arc::new(fresh);
                    break slot
                        .channel_open_session()
                        .await
                        .map_err(|e| self.connection_error(e))?;
                }
                // sshd counts a session until it has collected the channel we just closed,
                // which it may do only after reading our next open request: with every
                // session slot in use, a slot freed a moment ago can still be refused.
                // Ask again shortly.
                Err(_) if refusals < OPEN_RETRIES => {
                    refusals += 1;
                    tokio::time::sleep(Duration::from_millis(5 << refusals)).await;
                }
                Err(e) => {
                    return Err(self.connection_error(format!("ssh.NewSession failed: {e}")));
                }
            }
        };
        drop(slot);
        channel
            .exec(true, command)
            .await
            .map_err(|e| self.connection_error(format!("ssh.Run failed: {e}")))?;
        Ok(channel)
    }

    /// Waits for a free channel slot, then opens a channel running `command`.
    async fn start(
        &self,
        command: &str,
    ) -> Result<
        (
            SemaphorePermit<'_>,
            russh::ChannelReadHalf,
            ChannelWriteHalf<client::Msg>,
        ),
        RemoteError,
    > {
        let permit = self
            .channels
            .acquire()
            .await
            .map_err(|e| self.connection_error(e))?;
        let (read, write) = self.open(command).await?.split();
        Ok((permit, read, write))
    }

    /// Opens a `direct-tcpip` channel to `host:port` through this connection (this host acting
    /// as a jump host).
    pub async fn open_tunnel(
        &self,
        host: &str,
        port: u16,
    ) -> Result<russh::ChannelStream<client::Msg>, russh::Error> {
        let slot = self.handle.lock().await.clone();
        let channel = slot
            .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
            .await?;
        Ok(channel.into_stream())
    }

    /// The host:port this connection goes to.
    pub fn address_text(&self) -> &str {
        &self.address
    }

    /// What a command the runner could not complete comes to: an error when it may have run,
    /// `Ok` when it never reached the runner and is to run on its own.
    fn runner_failure(&self, error: RunnerError) -> Result<(), RemoteError> {
        match error {
            RunnerError::Lost => Err(self.connection_error(
                "the connection was lost while the command ran; its outcome is unknown",
            )),
            RunnerError::Sink(source) => Err(RemoteError::Sink {
                host: self.address.clone(),
                source,
            }),
            // The runner was gone before the command reached it: run it on its own.
            RunnerError::NotSent => Ok(()),
        }
    }

    /// Runs `command` on a channel of its own, handing its output to `sink`.
    async fn run_streaming(
        &self,
        command: &str,
        sink: &mut OutputSink<'_>,
    ) -> Result<Exited, RemoteError> {
        let (_permit, mut read, write) = self.start(command).await?;
        let result = collect(&mut read, &self.address, sink).await;
        if !matches!(
            result,
            Ok(Exited {
                output_held_open: false,
                ..
            })
        ) {
            let _ = write.close().await;
        }
        result
    }

    /// Closes the connection (the runner, if any, first: it ends once its commands have).
    pub async fn disconnect(&self) {
        if let RunnerSlot::Up(runner) = &*self.runner.lock().await {
            runner.close().await;
        }
        let slot = self.handle.lock().await;
        let _ = slot
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Reads channel messages until the channel closes, handing stdout and stderr to
/// `on_output`. Once the exit status has come, the close is waited for at most
/// [`HELD_OUTPUT_GRACE`] after the last output and at most [`HELD_OUTPUT_LIMIT`] after the
/// exit: sshd closes the channel only when the
/// command's output pipes are closed, which a process the command left running may never do.
/// The caller closes the channel when the result says its output was held open.
async fn collect(
    read: &mut russh::ChannelReadHalf,
    address: &str,
    on_output: &mut OutputSink<'_>,
) -> Result<Exited, RemoteError> {
    let mut status = None;
    let mut exited_at: Option<tokio::time::Instant> = None;
    let mut output_held_open = false;
    // The server's end of output (EOF) arrived.
    let mut ended = false;
    loop {
        let msg = if let Some(exited_at) = exited_at {
            // The grace counts from the last output, the limit from the exit.
            let left = HELD_OUTPUT_LIMIT.saturating_sub(exited_at.elapsed());
            match tokio::time::timeout(HELD_OUTPUT_GRACE.min(left), read.wait()).await {
                Ok(msg) => msg,
                Err(_) => {
                    output_held_open = true;
                    break;
                }
            }
        } else {
            read.wait().await
        };
        let Some(msg) = msg else {
            if status.is_some() && !ended {
                // The exit status can arrive before the last of the output (the server
                // sends it when the command exits, not when its pipes are drained): a
                // connection lost before the end of output lost some of it.
                return Err(RemoteError::Connection {
                    host: address.to_string(),
                    reason: "the connection was lost before the end of the command's output"
                        .to_string(),
                });
            }
            break;
        };
        let sunk = match msg {
            ChannelMsg::Data { data } => on_output(Stream::Stdout, &data),
            ChannelMsg::ExtendedData { data, ext: 1 } => on_output(Stream::Stderr, &data),
            ChannelMsg::ExitStatus { exit_status } => {
                status = Some(exit_status);
                exited_at.get_or_insert_with(tokio::time::Instant::now);
                Ok(())
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                status = Some(128 + 9);
                exited_at.get_or_insert_with(tokio::time::Instant::now);
                on_output(
                    Stream::Stderr,
                    format!("killed by signal {signal_name:?}").as_bytes(),
                )
            }
            ChannelMsg::Close => break,
            ChannelMsg::Eof => {
                ended = true;
                Ok(())
            }
            _ => Ok(()),
        };
        sunk.map_err(|source| RemoteError::Sink {
            host: address.to_string(),
            source,
        })?;
    }
    match status {
        Some(exit_code) => Ok(Exited {
            exit_code,
            output_held_open,
        }),
        None => Err(RemoteError::NoExitStatus {
            host: address.to_string(),
        }),
    }
}

/// An [`OutputSink`] capturing stderr into `stderr` and handing stdout to `on_stdout`.
fn split_sink<'a>(
    stderr: &'a mut Vec<u8>,
    on_stdout: &'a mut StdoutSink<'_>,
) -> impl FnMut(Stream, &[u8]) -> std::io::Result<()> + Send + 'a {
    move |stream, data| match stream {
        Stream::Stdout => on_stdout(data),
        Stream::Stderr => {
            stderr.extend_from_slice(data);
            Ok(())
        }
    }
}

#[async_trait]
impl Remote for SshConnection {
    fn address(&self) -> &str {
        &self.address
    }

    async fn run(&self, command: &str) -> Result<Output, RemoteError> {
        let mut stdout = Vec::new();
        let mut sink = |chunk: &[u8]| -> std::io::Result<()> {
            stdout.extend_from_slice(chunk);
            Ok(())
        };
        let mut output = self.run_streaming_stdout(command, &mut sink).await?;
        output.stdout = stdout;
        Ok(output)
    }

    async fn run_as_root(&self, command: &RootCommand) -> Result<Output, RemoteError> {
        if let Some(runner) = self.root_runner().await {
            match runner.run(command).await {
                Ok(output) => return Ok(output),
                Err(e) => self.runner_failure(e)?,
            }
        }
        self.run(&command.with_sudo()).await
    }

    async fn run_as_root_streaming(
        &self,
        command: &RootCommand,
        sink: &mut OutputSink<'_>,
    ) -> Result<Exited, RemoteError> {
        if let Some(runner) = self.root_runner().await {
            match runner.run_streaming(command, sink).await {
                Ok(exited) => return Ok(exited),
                Err(e) => self.runner_failure(e)?,
            }
        }
        self.run_streaming(&command.with_sudo(), sink).await
    }

    async fn run_streaming_stdout(
        &self,
        command: &str,
        sink: &mut StdoutSink<'_>,
    ) -> Result<Output, RemoteError> {
        let mut stderr = Vec::new();
        let exited = self
            .run_streaming(command, &mut split_sink(&mut stderr, sink))
            .await?;
        Ok(Output {
            exit_code: exited.exit_code,
            stdout: Vec::new(),
            stderr,
        })
    }

    async fn run_with_stdin(
        &self,
        command: &str,
        mut source: Box<dyn Read + Send>,
    ) -> Result<Output, RemoteError> {
        let (_permit, mut read, write) = self.start(command).await?;
        let address = self.address.clone();
        // Read (and let the source hash) on a blocking thread, a few chunks ahead of the
        // sender, so that reading overlaps with encryption and the network.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(READ_AHEAD_CHUNKS);
        let reader = tokio::task::spawn_blocking(move || {
            loop {
                let mut buf = vec![0u8; UPLOAD_CHUNK];
                match source.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        break;
                    }
                }
            }
        });
        let send = async {
            while let Some(chunk) = rx.recv().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(source) => {
                        // Close the channel: the command must not take the input as complete,
                        // and would otherwise wait for more of it.
                        let _ = write.close().await;
                        return Err(RemoteError::Source {
                            host: address.clone(),
                            source,
                        });
                    }
                };
                if write.data_bytes(chunk).await.is_err() {
                    // The remote side stopped reading; its exit status tells why.
                    return Ok(());
                }
            }
            let _ = write.eof().await;
            Ok::<(), RemoteError>(())
        };
        let mut stderr = Vec::new();
        let mut discard = |_: &[u8]| -> std::io::Result<()> { Ok(()) };
        let mut sink = split_sink(&mut stderr, &mut discard);
        let receive = collect(&mut read, &self.address, &mut sink);
        let (sent, received) = {
            let (send, receive) = (std::pin::pin!(send), std::pin::pin!(receive));
            match futures::future::select(send, receive).await {
                // The channel was closed from this side: russh then drops the server's close
                // and exit status, so waiting for them would hang.
                Either::Left((Err(e), _)) => (Err(e), None),
                Either::Left((Ok(()), receive)) => (Ok(()), Some(receive.await)),
                // The command ended (and its channel is gone): stop sending, as a send
                // waiting for window space on that channel would never finish.
                Either::Right((received, _)) => (Ok(()), Some(received)),
            }
        };
        drop(rx);
        let _ = reader.await;
        sent?;
        let exited = received.unwrap_or_else(|| {
            Err(RemoteError::NoExitStatus {
                host: self.address.clone(),
            })
        })?;
        if exited.output_held_open {
            let _ = write.close().await;
        }
        drop(sink);
        Ok(Output {
            exit_code: exited.exit_code,
            stdout: Vec::new(),
            stderr,
        })
    }
}
