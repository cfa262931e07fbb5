//! Helpers of the `deployment_*` scenario binaries (backup, restore, --all-deployments,
//! checks and cleanups): Go's failing script, lock-order metadata, the files of an artifact
//! directory, and what every scenario asserts at the end.

use super::deployment::{Deployment, group};
use std::path::{Path, PathBuf};

/// Go bbr's failing script body in the integration tests.
pub const FAILING: &str = "echo 'ultra-bar'; (>&2 echo 'ultra-baz'); exit 1";

/// `<kind>_should_be_locked_before: [{job_name, release}]`.
pub fn locked_before(kind: &str, job: &str, release: &str) -> String {
    format!("{kind}_should_be_locked_before:\n- job_name: {job}\n  release: {release}\n")
}

/// Directories directly under `dir` (artifact directories).
pub fn dirs_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Names of the regular files directly under `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The `.tar` files of an artifact directory, sorted.
pub fn tars(artifact: &Path) -> Vec<String> {
    files_in(artifact)
        .into_iter()
        .filter(|n| n.ends_with(".tar"))
        .collect()
}

/// One instance group `redis-dedicated-node` with job `redis` of release `redis`.
pub fn redis_node(d: &str) -> Deployment {
    Deployment::one(
        d,
        vec![group("redis-dedicated-node", 1, &[("redis", "redis")])],
    )
}

pub fn assert_temp_users_removed(h: &Deployment) {
    assert!(
        h.sim.temp_users().is_empty(),
        "temporary users removed: {:?}",
        h.sim.temp_users()
    );
}

pub fn err_logs(dir: &Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|n| n.starts_with("bbr-") && n.ends_with(".err.log"))
        .collect()
}

/// `<d>_YYYYMMDDTHHMMSSZ<suffix>`.
pub fn is_timestamped(name: &str, d: &str, suffix: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix(&format!("{d}_"))
        .and_then(|r| r.strip_suffix(suffix))
    else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// Whether `line` starts with `[HH:MM:SS] ` (`printlnWithTimestamp`, docs/cli.md#--all-deployments).
pub fn has_clock_prefix(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 11
        && b[0] == b'['
        && b[3] == b':'
        && b[6] == b':'
        && &b[9..11] == b"] "
        && [1, 2, 4, 5, 7, 8].iter().all(|&i| b[i].is_ascii_digit())
}
