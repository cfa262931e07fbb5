//! One root process per VM that runs bbr's root commands (scripts, `mkdir`, `du`, `find`,
//! `rm`) for the whole run.
//!
//! Run one by one, every command costs the VM an SSH session, the login user's shell and a
//! `sudo` (about 7 ms of CPU of the ~10 a no-op script costs), and a deployment backup runs
//! ten or more per VM, three of them while the deployment is locked. So the first root command
//! on a connection starts `sudo -n perl -e <root_runner.pl>` on a channel of its own, and
//! later commands are written to its stdin; each then costs a fork and an exec of `/bin/sh`.
//! Commands run exactly as under `sudo -n sh -c`: as root, with sudo's environment, stdin from
//! `/dev/null`, their own stdout, stderr and exit status, as many at once as asked.
//!
//! Should the runner not start (no `perl`, sudo refused), the connection falls back to one
//! `sudo -n` channel per command for the rest of the run, so errors read as they always did.
//! Artifact streams (`tar`) always use channels of their own.

use bbr_remote::{
    Exited, HELD_OUTPUT_GRACE, HELD_OUTPUT_LIMIT, Output, OutputSink, RootCommand, Stream,
    shell_quote,
};
use bytes::Bytes;
use russh::client;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as AsyncMutex, mpsc};

/// The runner program (perl-base only); its header documents the protocol.
const PROGRAM: &str = include_str!("root_runner.pl");

/// The first line the runner writes once it runs as root.
const HELLO: &[u8] = b"bbr-runner 1\n";

/// The exec command that starts the runner. The shell in between makes a missing `perl`
/// exit 127 (126 if not executable), told apart from sudo refusing (exit 1). The program
/// itself follows on stdin (see [`bootstrap`]), so that the line the VM's sudo log records
/// stays short.
pub(crate) fn start_command() -> String {
    format!(
        "sudo -n sh -c {} bbr-runner {}",
        shell_quote("exec perl -e \"$1\""),
        shell_quote(&bootstrap())
    )
}

/// A perl one-liner that reads the runner program (its exact length) from stdin, unbuffered
/// so that the requests after it stay unread, and runs it with `$grace` set to
/// [`HELD_OUTPUT_GRACE`] and `$held_limit` to [`HELD_OUTPUT_LIMIT`], in seconds.
fn bootstrap() -> String {
    bootstrap_with(HELD_OUTPUT_GRACE, HELD_OUTPUT_LIMIT)
}

/// [`bootstrap`] with other held-output limits (tests use short ones).
fn bootstrap_with(grace: std::time::Duration, held_limit: std::time::Duration) -> String {
    format!(
        "my($n,$p,$grace,$held_limit)=({},'',{},{});while(length($p)<$n){{sysread(STDIN,$p,$n-length($p),length($p))or exit 2}}eval($p);die($@)if$@;",
        PROGRAM.len(),
        grace.as_secs_f64(),
        held_limit.as_secs_f64()
    )
}

/// Why the runner did not start.
#[derive(Debug)]
pub(crate) struct NotStarted {
    /// The exit status of the start command, when it ended with one.
    pub(crate) status: Option<u32>,
    /// What it wrote to stderr.
    pub(crate) complaint: String,
}

impl NotStarted {
    /// True when the VM has no usable `perl` (sudo itself worked): the shell could not
    /// find it (127) or not execute it (126).
    pub(crate) fn perl_missing(&self) -> bool {
        matches!(self.status, Some(126 | 127))
    }
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the root command runner did not start (exit status {}): {}",
            self.status.map_or("none".to_string(), |s| s.to_string()),
            self.complaint
        )
    }
}

/// Why a command given to the runner has no result.
#[derive(Debug)]
pub(crate) enum RunnerError {
    /// The runner was gone before the command reached it: the command did not run.
    NotSent,
    /// The runner went away while the command was running: its outcome is unknown.
    Lost,
    /// The caller's sink refused the command's output; the rest of it is ignored.
    Sink(std::io::Error),
}

/// What the runner reported about one command, in order.
#[derive(Debug)]
enum Event {
    Output(Stream, Bytes),
    Exit(Exited),
}

/// Events queued for one command at most: once its caller lags this far behind, reading
/// the runner's replies waits (and the SSH window holds the VM's output back), so that a
/// command's output never piles up in bbr's memory.
const EVENTS_QUEUED: usize = 16;

type Reply = mpsc::Sender<Event>;

/// Commands sent and not yet finished, by request id.
#[derive(Default)]
struct InFlight {
    running: HashMap<u64, Reply>,
    /// False once the runner's channel has closed; nothing is registered after that.
    open: bool,
}

/// A runner process on one VM.
pub(crate) struct RootRunner {
    write: AsyncMutex<ChannelWriteHalf<client::Msg>>,
    in_flight: Arc<Mutex<InFlight>>,
    alive: Arc<AtomicBool>,
    next_id: AtomicU64,
}

impl RootRunner {
    /// Waits for the runner started on `read`/`write` to say hello, then serves it. `on_end`
    /// runs once the runner's channel has closed.
    pub(crate) async fn serve(
        mut read: ChannelReadHalf,
        write: ChannelWriteHalf<client::Msg>,
        on_end: impl FnOnce() + Send + 'static,
    ) -> Result<RootRunner, NotStarted> {
        // Should sudo refuse, nobody reads this: the exit status below tells.
        let _ = write
            .data_bytes(Bytes::from_static(PROGRAM.as_bytes()))
            .await;
        let mut buffer = Vec::new();
        let mut complaint = Vec::new();
        let mut status = None;
        while buffer.len() < HELLO.len() {
            match read.wait().await {
                Some(ChannelMsg::Data { data }) => buffer.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, .. }) => complaint.extend_from_slice(&data),
                Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            }
        }
        if !buffer.starts_with(HELLO) {
            let _ = write.close().await;
            on_end();
            return Err(NotStarted {
                status,
                complaint: String::from_utf8_lossy(&complaint).trim().to_string(),
            });
        }
        buffer.drain(..HELLO.len());
        let in_flight = Arc::new(Mutex::new(InFlight {
            running: HashMap::new(),
            open: true,
        }));
        let alive = Arc::new(AtomicBool::new(true));
        tokio::spawn(receive(
            read,
            buffer,
            in_flight.clone(),
            alive.clone(),
            on_end,
        ));
        Ok(RootRunner {
            write: AsyncMutex::new(write),
            in_flight,
            alive,
            next_id: AtomicU64::new(1),
        })
    }

    /// True until the runner's channel closes.
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Runs `command` as root and waits for its outcome, capturing its output.
    pub(crate) async fn run(&self, command: &RootCommand) -> Result<Output, RunnerError> {
        let mut output = Output::default();
        let mut sink = |stream: Stream, data: &[u8]| -> std::io::Result<()> {
            match stream {
                Stream::Stdout => output.stdout.extend_from_slice(data),
                Stream::Stderr => output.stderr.extend_from_slice(data),
            }
            Ok(())
        };
        let exited = self.run_streaming(command, &mut sink).await?;
        output.exit_code = exited.exit_code;
        Ok(output)
    }

    /// Runs `command` as root, handing its output to `sink` as it arrives, and waits for
    /// its outcome.
    pub(crate) async fn run_streaming(
        &self,
        command: &RootCommand,
        sink: &mut OutputSink<'_>,
    ) -> Result<Exited, RunnerError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, mut events) = mpsc::channel(EVENTS_QUEUED);
        {
            let mut in_flight = self.in_flight.lock().map_err(|_| RunnerError::NotSent)?;
            if !in_flight.open {
                return Err(RunnerError::NotSent);
            }
            in_flight.running.insert(id, reply);
        }
        let sent = self
            .write
            .lock()
            .await
            .data_bytes(Bytes::from(request(id, command)))
            .await;
        if sent.is_err() {
            if let Ok(mut in_flight) = self.in_flight.lock() {
                in_flight.running.remove(&id);
            }
            return Err(RunnerError::NotSent);
        }
        // Dropping the sender (the runner went away) ends the events without an exit.
        while let Some(event) = events.recv().await {
            match event {
                Event::Output(stream, data) => {
                    if let Err(e) = sink(stream, &data) {
                        // Whatever else the command writes is dropped on arrival.
                        if let Ok(mut in_flight) = self.in_flight.lock() {
                            in_flight.running.remove(&id);
                        }
                        return Err(RunnerError::Sink(e));
                    }
                }
                Event::Exit(exited) => return Ok(exited),
            }
        }
        Err(RunnerError::Lost)
    }

    /// Closes the runner's stdin: it ends once the commands still running have finished.
    pub(crate) async fn close(&self) {
        let _ = self.write.lock().await.eof().await;
    }
}

/// Encodes `command` as a request: a script launch as such (no shell, no `timeout`), anything
/// else as shell text.
fn request(id: u64, command: &RootCommand) -> Vec<u8> {
    let (kind, payload) = match command.launch() {
        Some(launch) => {
            let mut fields = vec![
                launch.timeout_secs.to_string(),
                launch.pid_file.clone(),
                launch.path.clone(),
            ];
            fields.extend(launch.env.iter().map(|(k, v)| format!("{k}={v}")));
            if fields.iter().any(|f| f.contains('\0')) {
                ('C', command.shell().to_string())
            } else {
                ('S', fields.join("\0"))
            }
        }
        None => ('C', command.shell().to_string()),
    };
    let mut request = format!("{kind} {id} {}\n", payload.len()).into_bytes();
    request.extend_from_slice(payload.as_bytes());
    request
}

/// Reads the runner's replies until its channel closes, completing commands as they end.
async fn receive(
    mut read: ChannelReadHalf,
    mut buffer: Vec<u8>,
    in_flight: Arc<Mutex<InFlight>>,
    alive: Arc<AtomicBool>,
    on_end: impl FnOnce(),
) {
    loop {
        while let Some((frame, used)) = parse_frame(&buffer) {
            if let Some((reply, event)) = route(&in_flight, frame) {
                // The caller may have gone (a cancelled run): nothing to tell then.
                let _ = reply.send(event).await;
            }
            buffer.drain(..used);
        }
        match read.wait().await {
            Some(ChannelMsg::Data { data }) => buffer.extend_from_slice(&data),
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    alive.store(false, Ordering::SeqCst);
    if let Ok(mut in_flight) = in_flight.lock() {
        in_flight.open = false;
        // Dropping the reply senders tells every waiting command that its outcome is lost.
        in_flight.running.clear();
    }
    on_end();
}

/// The command a reply is for and what it says, if that command is still waited for.
fn route(in_flight: &Mutex<InFlight>, frame: Frame<'_>) -> Option<(Reply, Event)> {
    let Ok(mut in_flight) = in_flight.lock() else {
        return None;
    };
    match frame {
        Frame::Stdout(id, data) => in_flight.running.get(&id).map(|r| {
            (
                r.clone(),
                Event::Output(Stream::Stdout, Bytes::copy_from_slice(data)),
            )
        }),
        Frame::Stderr(id, data) => in_flight.running.get(&id).map(|r| {
            (
                r.clone(),
                Event::Output(Stream::Stderr, Bytes::copy_from_slice(data)),
            )
        }),
        Frame::Exit(id, exit_code, output_held_open) => in_flight.running.remove(&id).map(|r| {
            (
                r,
                Event::Exit(Exited {
                    exit_code,
                    output_held_open,
                }),
            )
        }),
        Frame::Malformed => {
            // Not a reply of ours: the stream can no longer be trusted, so every command
            // still running is reported lost rather than given someone else's output.
            in_flight.running.clear();
            None
        }
    }
}

/// One reply of the runner.
#[derive(Debug, PartialEq, Eq)]
enum Frame<'a> {
    Stdout(u64, &'a [u8]),
    Stderr(u64, &'a [u8]),
    /// The status, and whether the output was abandoned while still held open.
    Exit(u64, u32, bool),
    Malformed,
}

/// Parses the reply at the start of `buffer`, returning it and the bytes it took, or `None`
/// when more bytes are needed.
fn parse_frame(buffer: &[u8]) -> Option<(Frame<'_>, usize)> {
    let end = buffer.iter().position(|b| *b == b'\n')?;
    let header = std::str::from_utf8(&buffer[..end]).ok();
    let fields: Vec<&str> = header.map(|h| h.split(' ').collect()).unwrap_or_default();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (fields.first().copied(), number(1), number(2), fields.len()) {
        (Some(tag @ ("O" | "E")), Some(id), Some(len), 3) => {
            let start = end + 1;
            let stop = start.checked_add(usize::try_from(len).ok()?)?;
            let data = buffer.get(start..stop)?;
            let frame = if tag == "O" {
                Frame::Stdout(id, data)
            } else {
                Frame::Stderr(id, data)
            };
            Some((frame, stop))
        }
        (Some(tag @ ("X" | "H")), Some(id), Some(status), 3) => Some((
            Frame::Exit(id, u32::try_from(status).unwrap_or(u32::MAX), tag == "H"),
            end + 1,
        )),
        _ => Some((Frame::Malformed, end + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_parsed_only_when_complete() {
        assert_eq!(parse_frame(b"O 3 5\nhel"), None);
        assert_eq!(parse_frame(b"O 3"), None);
        assert_eq!(
            parse_frame(b"O 3 5\nhello\nX 3 0\n"),
            Some((Frame::Stdout(3, b"hello\n".split_at(5).0), 11))
        );
        assert_eq!(
            parse_frame(b"E 12 2\n\n\0rest"),
            Some((Frame::Stderr(12, b"\n\0"), 9))
        );
        assert_eq!(
            parse_frame(b"X 7 137\n"),
            Some((Frame::Exit(7, 137, false), 8))
        );
        assert_eq!(parse_frame(b"H 7 0\n"), Some((Frame::Exit(7, 0, true), 6)));
        assert_eq!(parse_frame(b"O 0 0\n"), Some((Frame::Stdout(0, b""), 6)));
    }

    #[test]
    fn a_foreign_line_is_malformed() {
        assert_eq!(
            parse_frame(b"perl: warning: oops\n"),
            Some((Frame::Malformed, 20))
        );
        assert_eq!(parse_frame(b"X 1\n"), Some((Frame::Malformed, 4)));
        assert_eq!(parse_frame(b"O x 1\nA"), Some((Frame::Malformed, 6)));
    }

    /// Commands registered as running, and what each was told, gathered from `stream`.
    struct Gathered {
        in_flight: Mutex<InFlight>,
        receivers: Vec<mpsc::Receiver<Event>>,
    }

    impl Gathered {
        fn new(n: u64) -> Self {
            let in_flight = Mutex::new(InFlight {
                running: HashMap::new(),
                open: true,
            });
            let mut receivers = Vec::new();
            for id in 1..=n {
                let (tx, rx) = mpsc::channel(100_000);
                in_flight.lock().unwrap().running.insert(id, tx);
                receivers.push(rx);
            }
            Gathered {
                in_flight,
                receivers,
            }
        }

        /// Routes every frame of `stream`; returns the ids in the order they exited.
        fn feed(&self, mut stream: &[u8]) -> Vec<u64> {
            let mut exits = Vec::new();
            while let Some((frame, used)) = parse_frame(stream) {
                assert_ne!(frame, Frame::Malformed);
                if let Frame::Exit(id, ..) = frame {
                    exits.push(id);
                }
                if let Some((reply, event)) = route(&self.in_flight, frame) {
                    reply.try_send(event).unwrap();
                }
                stream = &stream[used..];
            }
            assert!(stream.is_empty());
            exits
        }

        /// Each command's output and whether its output was held open.
        fn outputs(self) -> Vec<(Output, bool)> {
            self.receivers
                .into_iter()
                .map(|mut rx| {
                    let mut output = Output::default();
                    loop {
                        match rx.try_recv().expect("an exit") {
                            Event::Output(Stream::Stdout, d) => output.stdout.extend_from_slice(&d),
                            Event::Output(Stream::Stderr, d) => output.stderr.extend_from_slice(&d),
                            Event::Exit(e) => {
                                output.exit_code = e.exit_code;
                                return (output, e.output_held_open);
                            }
                        }
                    }
                })
                .collect()
        }
    }

    #[test]
    fn outputs_are_gathered_per_command() {
        let gathered = Gathered::new(2);
        gathered.feed(b"O 1 2\nabE 2 1\nzO 1 1\ncX 2 4\nX 1 0\n");
        assert!(gathered.in_flight.lock().unwrap().running.is_empty());
        let outputs = gathered.outputs();
        let (a, b) = (&outputs[0].0, &outputs[1].0);
        assert_eq!((a.stdout.as_slice(), a.exit_code), (&b"abc"[..], 0));
        assert_eq!(
            (b.stdout.as_slice(), b.stderr.as_slice(), b.exit_code),
            (&b""[..], &b"z"[..], 4)
        );
    }

    /// Runs the runner program locally (no sudo), sends `requests`, closes its stdin and
    /// returns the outputs of commands `1..=n` and the order in which they ended.
    fn converse(requests: &[Vec<u8>]) -> (Vec<Output>, Vec<u64>) {
        let (outputs, exits) = converse_held(requests);
        (outputs.into_iter().map(|(o, _)| o).collect(), exits)
    }

    /// [`converse`], with whether each command's output was abandoned while held open.
    fn converse_held(requests: &[Vec<u8>]) -> (Vec<(Output, bool)>, Vec<u64>) {
        converse_with(&bootstrap(), requests)
    }

    /// How long a conversation may take: a few seconds unless the runner hangs (a command's
    /// output never abandoned, a script over its time limit never killed).
    const CONVERSATION_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

    /// [`converse_held`] with the given bootstrap. Fails (killing the runner) if the runner
    /// has not ended after [`CONVERSATION_LIMIT`].
    fn converse_with(bootstrap: &str, requests: &[Vec<u8>]) -> (Vec<(Output, bool)>, Vec<u64>) {
        use bbr_testkit::wait;
        use std::io::{Read, Write};
        // As on the VM, without sudo: the bootstrap, then the program on stdin.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "exec perl -e \"$1\"", "bbr-runner", bootstrap])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(PROGRAM.as_bytes()).unwrap();
        for r in requests {
            stdin.write_all(r).unwrap();
        }
        drop(stdin);
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = tx.send(stdout.read_to_end(&mut out).map(|_| out));
        });
        let status = wait::within(CONVERSATION_LIMIT, || {
            let out = rx.try_recv().ok()?;
            // Its output closed: the runner is exiting.
            let status = wait::until_some("the runner to exit", CONVERSATION_LIMIT, || {
                child.try_wait().unwrap()
            });
            Some((out, status))
        });
        let Some((out, status)) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the runner's commands had not all ended after {CONVERSATION_LIMIT:?}");
        };
        let out = out.unwrap();
        assert!(status.success());
        assert!(out.starts_with(HELLO));
        let gathered = Gathered::new(requests.len() as u64);
        let exits = gathered.feed(&out[HELLO.len()..]);
        (gathered.outputs(), exits)
    }

    fn shell(id: u64, text: &str) -> Vec<u8> {
        format!("C {id} {}\n{text}", text.len()).into_bytes()
    }

    #[test]
    fn the_program_runs_commands_concurrently_and_reports_each() {
        let (outputs, exits) = converse(&[
            // Finishes last although sent first: commands do not wait for one another.
            shell(
                1,
                "read line </dev/stdin || echo \"no stdin\"; sleep 0.3; echo slow",
            ),
            shell(2, "printf 'a\\0b'; echo oops >&2; exit 3"),
            shell(3, "kill -9 $$"),
            shell(4, "echo one; pwd >/dev/null\necho two lines"),
        ]);
        assert_eq!(exits.last(), Some(&1), "the slow command ends last");
        assert_eq!(
            (outputs[0].stdout_text(), outputs[0].exit_code),
            ("no stdin\nslow\n".to_string(), 0)
        );
        assert_eq!(
            (
                outputs[1].stdout.as_slice(),
                outputs[1].stderr_text(),
                outputs[1].exit_code
            ),
            (&b"a\0b"[..], "oops".to_string(), 3)
        );
        assert_eq!(outputs[2].exit_code, 128 + 9);
        assert_eq!(outputs[3].stdout_text(), "one\ntwo lines\n");
    }

    fn write_script(dir: &std::path::Path, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_string()
    }

    #[test]
    fn a_script_runs_in_its_own_group_with_its_variables_and_pid_file() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("s.pid").to_str().unwrap().to_string();
        let script = write_script(
            dir.path(),
            "backup",
            "echo \"dir=$BBR_ARTIFACT_DIRECTORY v=$BBR_VERSION\"\n\
             read line || echo no-stdin\n\
             echo \"pgid=$(cut -d' ' -f5 /proc/$$/stat) pid=$$ file=$(cat \"$PID_FILE\")\"\n\
             echo done >&2\nexit 5\n",
        );
        let command = bbr_remote::run_script(
            &script,
            &[
                (
                    "BBR_ARTIFACT_DIRECTORY",
                    "/var/vcap/store/bbr-backup/a b/".into(),
                ),
                ("BBR_VERSION", "1.2.3".into()),
                ("PID_FILE", pid_file.clone()),
            ],
            0,
            &pid_file,
        );
        let (outputs, _) = converse(&[request(1, &command)]);
        let out = &outputs[0];
        assert_eq!(out.exit_code, 5, "{out:?}");
        assert_eq!(out.stderr_text(), "done");
        let text = out.stdout_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "dir=/var/vcap/store/bbr-backup/a b/ v=1.2.3");
        assert_eq!(lines[1], "no-stdin");
        let ids: Vec<&str> = lines[2]
            .split(' ')
            .map(|f| f.split_once('=').unwrap().1)
            .collect();
        assert_eq!(ids[0], ids[1], "the script leads its own process group");
        assert_eq!(ids[1], ids[2], "the pid file holds the group's id");
        assert!(
            !std::path::Path::new(&pid_file).exists(),
            "the pid file is removed"
        );
    }

    #[test]
    fn a_script_over_its_time_limit_is_killed_with_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let child_pid = dir.path().join("child.pid");
        let script = write_script(
            dir.path(),
            "lock",
            &format!(
                "sleep 100 &\necho $! > {}\nwait\n",
                child_pid.to_str().unwrap()
            ),
        );
        let pid_file = dir.path().join("s.pid").to_str().unwrap().to_string();
        let started = std::time::Instant::now();
        let (outputs, _) = converse(&[request(
            1,
            &bbr_remote::run_script(&script, &[], 1, &pid_file),
        )]);
        // 124 is `timeout`'s: the limit struck, not the script's own end.
        assert_eq!(outputs[0].exit_code, 124, "{:?}", outputs[0]);
        // The 1 s limit is what is under test: a generous multiple of it, well under the
        // script's 100 s, tells a limit that struck from one counted wrongly, without timing
        // a loaded machine.
        let elapsed = started.elapsed();
        assert!(
            elapsed < std::time::Duration::from_secs(30),
            "ended after {elapsed:?}"
        );
        let pid: i32 = std::fs::read_to_string(&child_pid)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Gone, or a zombie waiting for init to reap it.
        bbr_testkit::wait::until(
            "the script's background child to be killed with it",
            std::time::Duration::from_secs(30),
            || !bbr_testkit::procs::is_alive(pid),
        );
    }

    #[test]
    fn a_script_within_its_time_limit_is_not_killed() {
        let dir = tempfile::tempdir().unwrap();
        let script = write_script(dir.path(), "lock", "sleep 0.7\necho finished\n");
        let pid_file = dir.path().join("s.pid").to_str().unwrap().to_string();
        // Several at once, started at different points of a second: a limit counted in whole
        // seconds of the wall clock would strike some of them early.
        let requests: Vec<Vec<u8>> = (1..=4)
            .map(|id| {
                request(
                    id,
                    &bbr_remote::run_script(&script, &[], 1, &format!("{pid_file}{id}")),
                )
            })
            .collect();
        let (outputs, _) = converse(&requests);
        for out in outputs {
            assert_eq!((out.exit_code, out.stdout_text()), (0, "finished\n".into()));
        }
    }

    #[test]
    fn a_missing_script_fails_like_timeout_reports_it() {
        let (outputs, _) = converse(&[request(
            1,
            &bbr_remote::run_script("/nonexistent/bbr/backup", &[], 0, "/tmp/x.pid"),
        )]);
        assert_eq!(outputs[0].exit_code, 127);
        assert!(
            outputs[0].stderr_text().contains("/nonexistent/bbr/backup"),
            "{:?}",
            outputs[0]
        );
    }

    #[test]
    fn output_held_open_by_a_child_is_abandoned_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let child_pid = dir.path().join("child.pid");
        // The child inherits the script's stdout and keeps it open for 300 s, and the hard
        // limit is 10 minutes: only the grace lets the runner end the command within the
        // conversation's limit.
        let script = write_script(
            dir.path(),
            "backup",
            &format!(
                "echo before\nsleep 300 &\necho $! > {}\necho bye >&2\nexit 3\n",
                child_pid.to_str().unwrap()
            ),
        );
        let pid_file = dir.path().join("s.pid").to_str().unwrap().to_string();
        let started = std::time::Instant::now();
        let (outputs, _) = converse_with(
            &bootstrap_with(HELD_OUTPUT_GRACE, std::time::Duration::from_secs(600)),
            &[
                request(1, &bbr_remote::run_script(&script, &[], 0, &pid_file)),
                shell(2, "echo plain"),
            ],
        );
        let elapsed = started.elapsed();
        let pid = std::fs::read_to_string(&child_pid).unwrap();
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        let (out, held) = &outputs[0];
        assert_eq!(
            (out.exit_code, out.stdout_text(), out.stderr_text(), *held),
            (3, "before\n".to_string(), "bye".to_string(), true)
        );
        assert_eq!(
            outputs[1],
            (
                Output {
                    exit_code: 0,
                    stdout: b"plain\n".to_vec(),
                    stderr: vec![]
                },
                false
            )
        );
        // A lower bound holds however slow the machine: the grace was waited out.
        assert!(elapsed >= HELD_OUTPUT_GRACE, "ended after {elapsed:?}");
    }

    #[test]
    fn output_kept_flowing_by_a_child_is_abandoned_at_the_hard_limit() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let child_pid = dir.path().join("child.pid");
        // The child writes every 0.2 s forever, so the 3 s grace after the last byte never
        // runs out (unless the machine stalls it for 3 s): only the 6 s limit after the
        // script's exit lets it go, and without it the conversation's limit fails the test.
        let script = write_script(
            dir.path(),
            "chatty",
            &format!(
                "(while :; do echo tick; sleep 0.2; done) &\necho $! > {}\nexit 0\n",
                child_pid.to_str().unwrap()
            ),
        );
        let pid_file = dir.path().join("s.pid").to_str().unwrap().to_string();
        let started = std::time::Instant::now();
        let (outputs, _) = converse_with(
            &bootstrap_with(Duration::from_secs(3), Duration::from_secs(6)),
            &[request(
                1,
                &bbr_remote::run_script(&script, &[], 0, &pid_file),
            )],
        );
        let elapsed = started.elapsed();
        let pid = std::fs::read_to_string(&child_pid).unwrap();
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        let (out, held) = &outputs[0];
        assert_eq!((out.exit_code, *held), (0, true));
        assert!(
            out.stdout_text().starts_with("tick\n"),
            "{:?}",
            out.stdout_text()
        );
        // A lower bound holds however slow the machine: the hard limit was waited out.
        assert!(elapsed >= Duration::from_secs(6), "ended after {elapsed:?}");
    }
}
