//! Object stores for the `store_*` end-to-end tests: the environment the built `bbr` gets
//! (only the cloud CLI variables, as an operator's shell would give it), and what the tests
//! check the stores with. Every check goes through a client independent of bbr-storage: the
//! AWS CLI (SeaweedFS), `azblob.py` (Azurite) and plain HTTP (fake-gcs-server), all through
//! `bbr_testkit::stores`.

use super::Run;
use bbr_testkit::stores::{Azurite, FakeGcs, SeaweedFs};
use std::process::{Command, Stdio};

/// A cloud CLI environment: variable names and values.
pub type CloudEnv = Vec<(&'static str, String)>;

/// Runs `command` (a `bbr` command line from a harness) with exactly `env` (plus `TZ=UTC`)
/// as its environment: no credentials leak in from the test's own environment.
pub fn with_env(mut command: Command, env: &CloudEnv) -> Command {
    command
        .env_clear()
        .env("TZ", "UTC")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    command
}

/// Runs `command` with exactly `env` and waits for it.
pub fn run_with(command: Command, env: &CloudEnv) -> Run {
    Run(with_env(command, env).output().expect("run bbr"))
}

/// The built `bbr` with `args` and exactly `env` (for `bbr artifact ...`).
pub fn bbr_alone(args: &[&str], env: &CloudEnv) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bbr"));
    c.args(args).stdin(Stdio::null());
    run_with(c, env)
}

// ----- S3 (SeaweedFS, checked with the AWS CLI) ----------------------------------------

/// The S3 variables for `weed` with this key pair.
pub fn s3_env_with(weed: &SeaweedFs, key_id: &str, secret: &str) -> CloudEnv {
    vec![
        ("AWS_ACCESS_KEY_ID", key_id.to_string()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
        ("AWS_ENDPOINT_URL", weed.endpoint()),
    ]
}

/// The S3 variables for `weed`'s own (read-write) key pair.
pub fn s3_env(weed: &SeaweedFs) -> CloudEnv {
    s3_env_with(weed, weed.access_key_id(), weed.secret_access_key())
}

/// `aws <args>` against `weed`; panics with its stderr on failure, returns its stdout.
pub fn aws(weed: &SeaweedFs, args: &[&str]) -> String {
    let out = weed.aws().args(args).output().expect("run aws");
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The keys in `bucket`, sorted (`aws s3api list-objects-v2`).
pub fn s3_keys(weed: &SeaweedFs, bucket: &str) -> Vec<String> {
    weed.list_objects(bucket)
        .expect("aws s3api list-objects-v2")
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// The object's bytes (`aws s3api get-object`); panics if it does not exist.
pub fn s3_get(weed: &SeaweedFs, bucket: &str, key: &str) -> Vec<u8> {
    weed.get_object(bucket, key)
        .expect("aws s3api get-object")
        .unwrap_or_else(|| panic!("no object s3://{bucket}/{key}"))
}

/// `aws s3api delete-object`.
pub fn s3_delete(weed: &SeaweedFs, bucket: &str, key: &str) {
    aws(
        weed,
        &["s3api", "delete-object", "--bucket", bucket, "--key", key],
    );
}

/// Uploads every regular file of the local directory `dir` (not below it) as
/// `prefix/<name>` with the AWS CLI, skipping the names in `skip`.
pub fn s3_put_dir(
    weed: &SeaweedFs,
    bucket: &str,
    prefix: &str,
    dir: &std::path::Path,
    skip: &[&str],
) {
    for e in std::fs::read_dir(dir).expect("read the artifact directory") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.path().is_file() || skip.contains(&name.as_str()) {
            continue;
        }
        let data = std::fs::read(e.path()).expect("read artifact file");
        weed.put_object(bucket, &format!("{prefix}/{name}"), &data)
            .expect("aws s3api put-object");
    }
}

/// A read-only identity on `weed` (see [`SeaweedFs::add_read_only_identity`]); its key pair.
pub fn read_only_identity(weed: &SeaweedFs) -> (String, String) {
    let key_id = "AKREADONLY0TESTKEY".to_string();
    let secret = "ROsecretZ9y8X7w6V5u4T3s2R1q0PoNmLkJiHgF".to_string();
    weed.add_read_only_identity("reader", &key_id, &secret)
        .expect("a read-only identity");
    (key_id, secret)
}

// ----- Azure (Azurite, checked with azblob.py) ------------------------------------------

/// A connection string for `azurite` (the variable the `az` CLI reads).
pub fn azure_env(azurite: &Azurite) -> CloudEnv {
    vec![(
        "AZURE_STORAGE_CONNECTION_STRING",
        format!(
            "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={};",
            azurite.account(),
            azurite.access_key(),
            azurite.blob_endpoint()
        ),
    )]
}

// ----- GCS (fake-gcs-server, checked over plain HTTP) -----------------------------------

/// `STORAGE_EMULATOR_HOST` for `gcs`.
pub fn gcs_env(gcs: &FakeGcs) -> CloudEnv {
    vec![("STORAGE_EMULATOR_HOST", format!("127.0.0.1:{}", gcs.port()))]
}

// ----- Artifacts ------------------------------------------------------------------------

/// The single artifact directory `<name>_<YYYYMMDDTHHMMSSZ>` found among `keys` below
/// `prefix` (`""`: the bucket's root), and the names of the objects in it, sorted. Panics
/// unless every key below `prefix` is in that one directory.
pub fn single_artifact(keys: &[String], prefix: &str, name: &str) -> (String, Vec<String>) {
    let below = |k: &String| -> Option<String> {
        if prefix.is_empty() {
            Some(k.clone())
        } else {
            k.strip_prefix(&format!("{prefix}/")).map(str::to_string)
        }
    };
    let mut dir = None;
    let mut files = Vec::new();
    for key in keys.iter().filter_map(below) {
        let (d, file) = key
            .split_once('/')
            .unwrap_or_else(|| panic!("{key} is not inside an artifact directory: {keys:?}"));
        assert!(is_artifact_dir(d, name), "{d} in {keys:?}");
        match &dir {
            None => dir = Some(d.to_string()),
            Some(seen) => assert_eq!(seen, d, "one artifact directory: {keys:?}"),
        }
        files.push(file.to_string());
    }
    files.sort();
    (
        dir.unwrap_or_else(|| panic!("no artifact below {prefix:?}: {keys:?}")),
        files,
    )
}

/// `<name>_YYYYMMDDTHHMMSSZ`.
pub fn is_artifact_dir(dir: &str, name: &str) -> bool {
    let Some(stamp) = dir.strip_prefix(&format!("{name}_")) else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// The bytes of `member` of the tar `tar` (GNU `tar -xO`); panics if it is not there.
pub fn tar_member(tar: &[u8], member: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.tar");
    std::fs::write(&path, tar).expect("write tar");
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(&path)
        .arg(member)
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{member} in the tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The member names of the tar `tar` (GNU `tar -t`), sorted.
pub fn tar_names(tar: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.tar");
    std::fs::write(&path, tar).expect("write tar");
    let out = Command::new("tar")
        .arg("-tf")
        .arg(&path)
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar -t");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// `len` bytes that do not compress, the same for the same `seed` (xorshift).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Asserts that neither stdout nor stderr of `run` holds `secret`.
pub fn assert_secret_hidden(run: &Run, secret: &str) {
    assert!(
        !run.stdout().contains(secret) && !run.stderr().contains(secret),
        "the secret was printed: {}",
        run.show()
    );
}

// ----- processes of a VM ----------------------------------------------------------------

/// PIDs of the processes named `comm` (as `/proc/PID/comm` has it) running below the VM's
/// sshd, i.e. started for bbr's sessions on that VM.
pub fn vm_processes(vm: &bbr_testkit::Vm, comm: &str) -> Vec<u32> {
    let Some(root) = vm.pid() else {
        return Vec::new();
    };
    // pid -> (comm, ppid) of every process.
    let mut table = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0);
        table.insert(pid, (name, ppid));
    }
    let below_root = |mut pid: u32| {
        for _ in 0..64 {
            match table.get(&pid) {
                Some((_, ppid)) if *ppid == root => return true,
                Some((_, ppid)) if *ppid > 1 => pid = *ppid,
                _ => return false,
            }
        }
        false
    };
    let mut pids: Vec<u32> = table
        .iter()
        .filter(|(pid, (name, _))| name == comm && below_root(**pid))
        .map(|(pid, _)| *pid)
        .collect();
    pids.sort();
    pids
}

/// Sends `signal` (`STOP`, `CONT`, ...) to `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}
