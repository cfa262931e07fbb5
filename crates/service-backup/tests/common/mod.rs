//! Helpers for driving the built `service-backup` and `manual-backup` binaries: temp configs,
//! shell-script fixtures, live stdout capture and waiting for lines / files / exit with a
//! deadline (`bbr_testkit::wait::until`; no fixed sleeps). A test that fails while a binary
//! runs shows that binary's stdout and stderr (printed when its [`Running`] is dropped).

#![allow(dead_code)]

pub mod http;
pub mod stores;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bbr_testkit::wait;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const DAEMON: &str = env!("CARGO_BIN_EXE_service-backup");
pub const MANUAL: &str = env!("CARGO_BIN_EXE_manual-backup");

/// A scratch directory with a config file and fixtures.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name` and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    /// Writes an executable `/bin/sh` script and returns its path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.file(name, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// A source folder with a couple of files.
    pub fn source(&self) -> PathBuf {
        let src = self.path("source");
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::write(src.join("a.txt"), "hello").expect("write");
        std::fs::write(src.join("sub/b.txt"), "world").expect("write");
        src
    }
}

/// How long the binary's stdout and stderr may stay open after it exited. Its children get
/// pipes of their own, so the ends close with the binary; this only bounds a defect.
const PIPES_CLOSE: Duration = Duration::from_secs(10);

/// A running binary whose stdout is collected as it arrives.
pub struct Running {
    pub child: Child,
    binary: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(mut reader: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(String::new()));
    let out = buf.clone();
    let handle = std::thread::spawn(move || {
        let mut chunk = [0_u8; 8192];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => out
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&String::from_utf8_lossy(&chunk[..n])),
            }
        }
    });
    (buf, handle)
}

pub fn start(binary: &str, config: &Path) -> Running {
    start_with_env(binary, config, &[])
}

/// Like [`start`], with extra environment variables.
pub fn start_with_env(binary: &str, config: &Path, env: &[(&str, &Path)]) -> Running {
    let mut cmd = Command::new(binary);
    cmd.arg(config).env_remove("GCP_SERVICE_ACCOUNT_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    start_command(&mut cmd)
}

/// Runs `cmd` to its end, like `Command::output` but failing the test (and killing the
/// process) after `limit`; stdout and stderr are read as UTF-8, lossily.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut running = start_command(cmd);
    let status = running.wait_exit(limit);
    Output {
        status,
        stdout: running.stdout().into_bytes(),
        stderr: running.stderr().into_bytes(),
    }
}

/// Starts `cmd` with stdin closed and stdout and stderr collected.
pub fn start_command(cmd: &mut Command) -> Running {
    let binary = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {binary}: {e}"));
    let (stdout, out_reader) = collect(child.stdout.take().expect("stdout"));
    let (stderr, err_reader) = collect(child.stderr.take().expect("stderr"));
    Running {
        child,
        binary: binary.rsplit('/').next().unwrap_or(&binary).to_owned(),
        stdout,
        stderr,
        readers: vec![out_reader, err_reader],
    }
}

/// Runs a binary to completion (bounded) and returns (exit status, stdout).
pub fn run_to_end(binary: &str, config: &Path, limit: Duration) -> (ExitStatus, String) {
    let mut running = start(binary, config);
    let status = running.wait_exit(limit);
    (status, running.stdout())
}

impl Running {
    pub fn stdout(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until stdout contains `needle`.
    pub fn wait_for(&self, needle: &str, limit: Duration) {
        wait::until(
            &format!("{needle:?} in the stdout of {}", self.binary),
            limit,
            || self.stdout().contains(needle),
        );
    }

    pub fn signal(&self, sig: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        kill(Pid::from_raw(pid), sig).expect("kill");
    }

    /// Waits for the process to exit and for its stdout and stderr to be read to the end
    /// (failing the test after `limit`; the drop then kills the process).
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let mut status = None;
        wait::until(&format!("{} to exit", self.binary), limit, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        wait::until(
            &format!("the stdout and stderr of {} to close", self.binary),
            PIPES_CLOSE,
            || self.readers.iter().all(JoinHandle::is_finished),
        );
        for reader in self.readers.drain(..) {
            reader.join().expect("pipe reader");
        }
        status.expect("exited")
    }

    /// Asserts the process is still running.
    pub fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().expect("try_wait").is_none(),
            "exited early; stdout:\n{}",
            self.stdout()
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- {} stdout:\n{}\n--- {} stderr:\n{}",
                self.binary,
                self.stdout(),
                self.binary,
                self.stderr()
            );
        }
    }
}

/// Waits until `path` exists.
pub fn wait_for_file(path: &Path, limit: Duration) {
    wait::until(&path.display().to_string(), limit, || path.exists());
}

/// Waits until the process whose pid `pid_file` holds is gone: reaped, or a zombie about to be.
pub fn wait_for_pid_gone(pid_file: &Path, limit: Duration) {
    let pid = std::fs::read_to_string(pid_file).expect("pid file");
    let pid = pid.trim();
    wait::until(&format!("process {pid} to end"), limit, || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.contains(") Z "))
    });
}

/// Parses every JSON line of `stdout`.
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// An S3 destination that is never reachable (connection refused at once).
pub fn unreachable_s3(secret: &str) -> String {
    format!(
        "- type: s3\n  name: unreachable\n  config:\n    bucket_name: bkt\n    bucket_path: some/path\n    access_key_id: AKIDEXAMPLE\n    secret_access_key: {secret}\n    endpoint_url: http://127.0.0.1:9\n    region: us-east-1\n    force_path_style: true\n"
    )
}
