//! `bbr` as a plain process for commands that reach no VM (`bbr artifact …`): run with
//! exactly the given environment, its output captured; and Go bbr's `redis-backup` fixture
//! as name and bytes, to copy into directories or stores.

use serde_json::Value;
use std::fs;
use std::process::Command;

/// A finished `bbr`: exit code and output.
pub struct Run {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Both streams, for assertion messages.
    pub fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }

    /// Standard output as JSON (panics, showing the output, when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.all()))
    }
}

/// The built `bbr` with exactly `env` (plus `TZ=UTC`) as its environment.
pub fn bbr(args: &[&str], env: &[(&str, String)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_bbr"))
        .args(args)
        .env_clear()
        .env("TZ", "UTC")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run bbr");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The files of Go bbr's `redis-backup` fixture: name and bytes, sorted by name.
pub fn fixture() -> Vec<(String, Vec<u8>)> {
    let dir = bbr_testkit::gobbr::fixture("redis-backup");
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .expect("fixture")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).expect("read fixture file"),
            )
        })
        .collect();
    files.sort();
    assert!(files.iter().any(|(n, _)| n == "metadata"));
    files
}
