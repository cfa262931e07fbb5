//! How a command ends when its exit status comes before the last of its output, against an
//! in-process russh server on 127.0.0.1 that plays the server's side message by message.
//!
//! OpenSSH sends the exit status when the command exits, which can be before its stdout pipe
//! is drained: output still follows, then EOF and the close. A connection lost between the
//! exit status and EOF lost some of that output, so the command fails with a connection error
//! (a drain cut there used to report success with a truncated stream); with EOF and the close
//! it succeeds with every byte and its exit code.

use bbr_remote::{Remote, RemoteError};
use bbr_ssh::{ConnectOptions, Dialer, HostKeyPolicy, SshConnection};
use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::server::{self, Auth, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// What the command sends before its exit status.
const BEFORE_EXIT: &[u8] = b"output written before the exit\n";
/// What it sends after its exit status (the drained rest of the pipe).
const AFTER_EXIT: &[u8] = b"output drained after the exit\n";

/// Well under [`bbr_remote::HELD_OUTPUT_GRACE`]: an answer within it comes from the lost
/// connection, not from giving up on output held open.
const LOST_DEADLINE: Duration = Duration::from_secs(3);
/// For the commands that end normally (they need no grace either).
const DEADLINE: Duration = Duration::from_secs(20);

/// An ed25519 key from a fixed seed (keys for this test only).
fn key(seed: u8) -> PrivateKey {
    PrivateKey::new(
        Ed25519Keypair::from_seed(&[seed; 32]).into(),
        "lost-output-test",
    )
    .expect("ed25519 key")
}

/// The server's side of each command, chosen by the command line.
#[derive(Clone)]
struct Commands;

impl server::Handler for Commands {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        _key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        command: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        match command {
            // The connection goes away after the exit status and more output, before EOF:
            // neither EOF nor the close is ever sent (the test cuts the TCP connection).
            b"lost" => {
                session.data(channel, BEFORE_EXIT)?;
                session.exit_status_request(channel, 0)?;
                session.data(channel, AFTER_EXIT)?;
            }
            b"normal" => {
                session.data(channel, BEFORE_EXIT)?;
                session.exit_status_request(channel, 0)?;
                session.data(channel, AFTER_EXIT)?;
                session.eof(channel)?;
                session.close(channel)?;
            }
            b"exit 3" => {
                session.exit_status_request(channel, 3)?;
                session.eof(channel)?;
                session.close(channel)?;
            }
            other => panic!("unexpected command {:?}", String::from_utf8_lossy(other)),
        }
        Ok(())
    }
}

/// The server: one SSH connection at a time, each cut (both directions of its TCP stream
/// shut down, nothing more sent, no SSH disconnect) when `cut` is notified.
struct FakeServer {
    addr: SocketAddr,
    host_key: PrivateKey,
    cut: Arc<Notify>,
    task: JoinHandle<()>,
}

impl FakeServer {
    async fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let host_key = key(1);
        let config = Arc::new(server::Config {
            keys: vec![host_key.clone()],
            auth_rejection_time: Duration::ZERO,
            ..Default::default()
        });
        let cut = Arc::new(Notify::new());
        let cut_signal = cut.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                // A second handle on the socket, to cut it under the session.
                let std = tcp.into_std().expect("std socket");
                let socket = std.try_clone().expect("socket clone");
                let tcp = TcpStream::from_std(std).expect("tokio socket");
                let Ok(session) = server::run_stream(config.clone(), tcp, Commands).await else {
                    continue;
                };
                tokio::select! {
                    _ = session => {}
                    _ = cut_signal.notified() => {
                        let _ = socket.shutdown(Shutdown::Both);
                    }
                }
            }
        });
        FakeServer {
            addr,
            host_key,
            cut,
            task,
        }
    }

    /// Connects bbr-ssh's client to this server, its host key pinned.
    async fn connect(&self) -> Arc<SshConnection> {
        SshConnection::connect(ConnectOptions {
            host: self.addr.ip().to_string(),
            port: self.addr.port(),
            user: "vcap".to_string(),
            key: Arc::new(key(2)),
            host_key: HostKeyPolicy::Pinned(self.host_key.public_key().clone()),
            on_warning: Arc::new(|w| panic!("unexpected warning: {w}")),
            dialer: Dialer::Direct,
            root_runner: false,
        })
        .await
        .expect("connect")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_connection_lost_after_the_exit_status_before_eof_is_a_connection_error() {
    let server = FakeServer::start().await;
    let conn = server.connect().await;
    let mut received = Vec::new();
    let mut cut_at = None;
    let cut = server.cut.clone();
    // The connection is cut once the output sent after the exit status has arrived: the exit
    // status (sent before it on the same channel) has then arrived too, and EOF never will.
    let mut sink = |chunk: &[u8]| -> std::io::Result<()> {
        received.extend_from_slice(chunk);
        if received == [BEFORE_EXIT, AFTER_EXIT].concat() {
            cut_at = Some(Instant::now());
            cut.notify_one();
        }
        Ok(())
    };
    let result = tokio::time::timeout(LOST_DEADLINE, conn.run_streaming_stdout("lost", &mut sink))
        .await
        .expect("the lost connection ends the command promptly");
    let cut_at = cut_at.expect("the connection was cut after all the output sent had arrived");
    match result {
        Err(e @ RemoteError::Connection { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("lost before the end of the command's output"),
                "{text}"
            );
            assert!(
                text.contains(&server.addr.to_string()),
                "names the host: {text}"
            );
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
    assert!(
        cut_at.elapsed() < LOST_DEADLINE,
        "answered {:?} after the cut",
        cut_at.elapsed()
    );
    assert_eq!(received, [BEFORE_EXIT, AFTER_EXIT].concat());
}

#[tokio::test]
async fn output_after_the_exit_status_is_received_when_eof_and_close_follow() {
    let server = FakeServer::start().await;
    let conn = server.connect().await;
    let output = tokio::time::timeout(DEADLINE, conn.run("normal"))
        .await
        .expect("the command ends")
        .expect("the command succeeds");
    assert_eq!(output.exit_code, 0);
    assert_eq!(output.stdout, [BEFORE_EXIT, AFTER_EXIT].concat());
    assert!(output.stderr.is_empty());
    conn.disconnect().await;
}

#[tokio::test]
async fn an_exit_status_then_eof_and_close_gives_the_exit_code() {
    let server = FakeServer::start().await;
    let conn = server.connect().await;
    let output = tokio::time::timeout(DEADLINE, conn.run("exit 3"))
        .await
        .expect("the command ends")
        .expect("the command's end is received");
    assert_eq!(output.exit_code, 3);
    assert!(output.stdout.is_empty());
    conn.disconnect().await;
}
