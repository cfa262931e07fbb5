//! A `bbr` run watched while it runs: its stdout lines arrive as they are printed, so a test
//! can wait for a line, signal the process, answer its question, and collect the rest. Every
//! wait has a deadline (`bbr_testkit::wait`), so a run that never prints or never exits fails
//! the test showing what it printed, instead of hanging the suite.

use super::Run;
use bbr_testkit::wait;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running `bbr` with piped stdin, stdout and stderr.
pub struct Live {
    pub child: Child,
    lines: Receiver<String>,
    stderr: JoinHandle<String>,
    seen: String,
    limit: Duration,
}

impl Live {
    /// Spawns `command`; each later wait for a line gives up after `limit`.
    pub fn start(mut command: Command, limit: Duration) -> Live {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bbr");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Live {
            child,
            lines,
            stderr,
            seen: String::new(),
            limit,
        }
    }

    /// Reads stdout until a line containing `needle`, and returns that line.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        let (lines, seen) = (&self.lines, &mut self.seen);
        let found = wait::within(self.limit, || {
            loop {
                match lines.try_recv() {
                    Ok(line) => {
                        seen.push_str(&line);
                        if line.contains(needle) {
                            return Some(Some(line));
                        }
                    }
                    Err(TryRecvError::Empty) => return None,
                    Err(TryRecvError::Disconnected) => return Some(None),
                }
            }
        });
        match found {
            Some(Some(line)) => line,
            Some(None) => panic!(
                "bbr closed stdout before {needle:?}; stdout:\n{}",
                self.seen
            ),
            None => panic!(
                "no line with {needle:?} within {:?}; stdout so far:\n{}",
                self.limit, self.seen
            ),
        }
    }

    /// The stdout lines read so far.
    pub fn seen(&self) -> &str {
        &self.seen
    }

    /// Sends signal `sig` to bbr.
    #[allow(unsafe_code)]
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the PID of our own child process, which has not been reaped
        // (we hold its `Child`), so the PID cannot name another process.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Sends SIGINT, as a Ctrl-C at the terminal would.
    pub fn interrupt(&self) {
        self.signal(libc::SIGINT);
    }

    pub fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Writes `text` to bbr's stdin and closes it.
    pub fn answer(&mut self, text: &str) {
        let mut stdin = self.child.stdin.take().expect("stdin not yet closed");
        stdin.write_all(text.as_bytes()).unwrap();
    }

    /// Waits at most `within` for the exit; returns the code (-1 for a signal), the whole
    /// stdout and stderr.
    pub fn finish(self, within: Duration) -> (i32, String, String) {
        let run = self.finish_run(within);
        (run.code(), run.stdout(), run.stderr())
    }

    /// [`Live::finish`] as a [`Run`].
    pub fn finish_run(mut self, within: Duration) -> Run {
        let child = &mut self.child;
        let status: Option<ExitStatus> = wait::within(within, || child.try_wait().unwrap());
        let Some(status) = status else {
            let _ = self.child.kill();
            panic!("bbr did not exit within {within:?}; stdout:\n{}", self.seen);
        };
        // Once bbr has exited its stdout closes, which ends the reader thread and the channel.
        while let Ok(line) = self.lines.recv_timeout(self.limit) {
            self.seen.push_str(&line);
        }
        let stderr = self.stderr.join().unwrap();
        Run(Output {
            status,
            stdout: self.seen.into_bytes(),
            stderr: stderr.into_bytes(),
        })
    }
}
