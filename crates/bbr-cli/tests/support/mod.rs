//! Shared harness for the end-to-end tests: a real sshd VM, a work directory, and a way to
//! run the built `bbr` binary against the VM.

#![allow(dead_code)]

pub mod deployment;
pub mod live;
pub mod metrics;
pub mod offline;
pub mod scenarios;
pub mod stores;

use bbr_testkit::{Vm, VmOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The bbr scripts a job can have, under `/var/vcap/jobs/<job>/bin/bbr/` (see
/// docs/script-contract.md#where-scripts-live).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    Metadata,
    PreBackupLock,
    Backup,
    PostBackupUnlock,
    PreRestoreLock,
    Restore,
    PostRestoreUnlock,
}

impl Script {
    /// The script's file name, which is also how events and log lines name it.
    pub const fn file_name(self) -> &'static str {
        match self {
            Script::Metadata => "metadata",
            Script::PreBackupLock => "pre-backup-lock",
            Script::Backup => "backup",
            Script::PostBackupUnlock => "post-backup-unlock",
            Script::PreRestoreLock => "pre-restore-lock",
            Script::Restore => "restore",
            Script::PostRestoreUnlock => "post-restore-unlock",
        }
    }
}

impl std::fmt::Display for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.file_name())
    }
}

pub struct Harness {
    pub vm: Vm,
    pub work: tempfile::TempDir,
}

/// A script line that appends `<nanos> <job> <script> [extra]` to the VM's event log.
pub fn record(job: &str, script: &str) -> String {
    format!(
        "#!/bin/sh\nmkdir -p /var/vcap/sys/events\necho \"$(date +%s%N) {job} {script} ${{BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL:-}}\" >> /var/vcap/sys/events/log\n"
    )
}

/// Installs `script` of `job` on `vm`: it records its run (see [`record`]), then runs `body`.
pub fn install_recorded(vm: &bbr_testkit::Vm, job: &str, script: Script, body: &str) {
    let name = script.file_name();
    let text = format!("{}{}\n", record(job, name), body);
    vm.install_script(job, name, &text)
        .unwrap_or_else(|e| panic!("install {job}/bin/bbr/{name}: {e}"));
}

impl Harness {
    pub fn new() -> Self {
        Self::with(VmOptions::default())
    }

    pub fn with(options: VmOptions) -> Self {
        let vm = Vm::start(options).expect("start sshd VM");
        let work = tempfile::tempdir().expect("tempdir");
        Harness { vm, work }
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.work.path().join("known_hosts")
    }

    /// The deployment name bbr uses: the host without port.
    pub fn name(&self) -> String {
        self.vm.addr().to_string()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bbr"));
        c.current_dir(self.work.path())
            .arg("director")
            .arg("--host")
            .arg(self.vm.host_arg())
            .arg("--username")
            .arg(self.vm.user())
            .arg("--private-key-path")
            .arg(self.vm.client_key_path())
            .arg("--known-hosts")
            .arg(self.known_hosts())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn bbr(&self, args: &[&str]) -> Run {
        Run(self.command(args).output().expect("run bbr"))
    }

    /// A job with do-nothing `pre-backup-lock` and `post-backup-unlock` scripts (each still
    /// recorded) and a `backup` script running `backup_body`.
    pub fn locked_backup_job(&self, job: &str, backup_body: &str) {
        self.script(job, Script::PreBackupLock, "");
        self.script(job, Script::Backup, backup_body);
        self.script(job, Script::PostBackupUnlock, "");
    }

    /// Installs a script of `job` that records its run and then runs `body`.
    pub fn script(&self, job: &str, script: Script, body: &str) {
        install_recorded(&self.vm, job, script, body);
    }

    /// The recorded script runs, in time order, as `job script [successful]`.
    pub fn events(&self) -> Vec<String> {
        let text = self.vm.read("sys/events/log").unwrap_or_default();
        let mut lines: Vec<(u128, String)> = text
            .lines()
            .filter_map(|l| {
                let (t, rest) = l.split_once(' ')?;
                Some((t.parse().ok()?, rest.trim().to_string()))
            })
            .collect();
        lines.sort_by_key(|(t, _)| *t);
        lines.into_iter().map(|(_, l)| l).collect()
    }

    /// The single artifact directory created under `parent`.
    pub fn artifact_in(&self, parent: &Path) -> PathBuf {
        let dirs: Vec<PathBuf> = std::fs::read_dir(parent)
            .expect("read artifact parent")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(
            dirs.len(),
            1,
            "expected one artifact dir in {}: {dirs:?}",
            parent.display()
        );
        dirs[0].clone()
    }

    pub fn artifact_dirs(&self, parent: &Path) -> usize {
        std::fs::read_dir(parent)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .count()
            })
            .unwrap_or(0)
    }

    pub fn remote_marker_exists(&self) -> bool {
        self.vm.exists("store/bbr-backup")
    }
}

pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn show(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }
}

/// A Go bbr artifact (see `bbr_testkit::gobbr`).
pub fn fixture(name: &str) -> PathBuf {
    bbr_testkit::gobbr::fixture(name)
}

/// Copies a directory tree (fixtures are read-only inputs; tests that alter them copy first).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        });
    String::from_utf8_lossy(&out.unwrap().stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Asserts that `needles` occur in `text` in this order (like consecutive `gbytes.Say`).
pub fn assert_in_order(text: &str, needles: &[&str]) {
    let mut at = 0;
    for needle in needles {
        match text[at..].find(needle) {
            Some(i) => at += i + needle.len(),
            None => panic!(
                "{needle:?} missing, or not after the previous lines, in\n{text}\n(checked up to byte {at})"
            ),
        }
    }
}
