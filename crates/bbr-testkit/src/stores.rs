//! Real object-store servers for tests, and independent clients to check what they hold.
//!
//! - [`SeaweedFs`]: SeaweedFS `weed mini` (a real S3 server with versioning), checked with
//!   the AWS CLI;
//! - [`Azurite`]: Microsoft's Azure Blob emulator, checked with the stdlib-only SharedKey
//!   client `azblob.py` (`python3`);
//! - [`FakeGcs`]: fake-gcs-server (GCS JSON API, plain HTTP), checked with plain HTTP
//!   requests from this module.
//!
//! The programs come from `.ci/install-storage-deps.sh`, found under `$BBR_STORAGE_TOOLS`
//! (default `/opt/bbr-storage-tools`). `azblob.py` is taken from `$BBR_AZBLOB_PY`, by default
//! `../shared/reference/infra-scripts/azblob.py` beside the workspace.
//!
//! Every server listens on `127.0.0.1` on a block of 16 ports (plus `base + 10004` for
//! SeaweedFS's admin gRPC) that is reserved machine-wide through an `flock`ed file in
//! `/tmp/bbr-testkit`, so parallel test processes never collide. Readiness is awaited by polling
//! the server's HTTP port. The server is a direct child of a process-wide spawner thread that
//! never exits, with `PR_SET_PDEATHSIG = SIGKILL`: it dies with the test process even when that
//! process is killed or keeps the server in a `static`. Dropping the handle SIGKILLs the server,
//! reaps it, and removes its data directory (kept with `BBR_TESTKIT_KEEP=1`).
//!
//! ```no_run
//! let s3 = bbr_testkit::stores::SeaweedFs::start()?;
//! s3.create_bucket("b1")?;
//! assert_eq!(s3.get_object("b1", "missing")?, None);
//! # Ok::<(), std::io::Error>(())
//! ```

// Unsafe code is denied workspace-wide; this module calls libc directly. Each block
// carries its own SAFETY comment.
#![allow(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::registry;

/// The loopback address every store server binds.
pub const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Azurite's well-known account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known account key.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Poll interval while waiting for a server to answer.
const READY_POLL: Duration = Duration::from_millis(20);
/// Port blocks: `BLOCK_BASE + i * BLOCK` for `i < BLOCKS` (SeaweedFS also uses `base + 10004`,
/// which stays below Linux's ephemeral range).
const BLOCK_BASE: u16 = 20000;
const BLOCK: u16 = 16;
const BLOCKS: u16 = 124;
const WEED_ADMIN_GRPC_OFFSET: u16 = 10004;
/// Prefix of server data directories in the temp dir (`<prefix><pid>-<random>`).
const DATA_PREFIX: &str = "bbr-testkit-store-";

/// Root of the installed tools: `$BBR_STORAGE_TOOLS` or `/opt/bbr-storage-tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("BBR_STORAGE_TOOLS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/bbr-storage-tools"))
}

/// The AWS CLI of the tools venv.
pub fn aws_cli() -> PathBuf {
    tools_dir().join("venv/bin/aws")
}

/// `azblob.py`: `$BBR_AZBLOB_PY`, else the reference copy beside the workspace.
pub fn azblob_py() -> PathBuf {
    std::env::var_os("BBR_AZBLOB_PY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/reference/infra-scripts/azblob.py")
        })
}

fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_file() && e.file_name() == name {
            return Some(p);
        }
        if ft.is_dir() {
            subdirs.push(p);
        }
    }
    if depth == 0 {
        return None;
    }
    subdirs.iter().find_map(|d| find_file(d, name, depth - 1))
}

fn require(path: PathBuf, what: &str) -> io::Result<PathBuf> {
    if path.exists() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{what} not found at {} (run .ci/install-storage-deps.sh or set BBR_STORAGE_TOOLS)",
                path.display()
            ),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Process plumbing

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawn `cmd` from a thread that lives as long as the process, with `PR_SET_PDEATHSIG`, so
/// the child is killed when the test process goes away, however it goes.
fn spawn_tied(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("bbr-testkit-store-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let parent = std::process::id();
                    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between
                    // fork and exec.
                    unsafe {
                        cmd.pre_exec(move || {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(io::Error::last_os_error());
                            }
                            if libc::getppid() as u32 != parent {
                                libc::_exit(1);
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
                // The sender lives in a static: this loop never ends, so neither does the thread.
            })
            .expect("spawning the store spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .map_err(|_| io::Error::other("store spawner poisoned"))?
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("store spawner gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("store spawner gone"))?
}

/// A reserved block of 16 ports on 127.0.0.1 (held through an `flock`).
#[derive(Debug)]
struct PortBlock {
    _lock: File,
    base: u16,
}

impl PortBlock {
    /// Reserve a block whose ports (and `extra` offsets) can all be bound right now.
    fn acquire(extra: &[u16]) -> io::Result<PortBlock> {
        let dir = registry::state_dir()?;
        let start = registry::random_u64() % u64::from(BLOCKS);
        for i in 0..u64::from(BLOCKS) {
            let n = ((start + i) % u64::from(BLOCKS)) as u16;
            let base = BLOCK_BASE + n * BLOCK;
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o644)
                .open(dir.join(format!("store-ports-{base}.lock")))?;
            if file.try_lock().is_err() {
                continue;
            }
            let free = (0..BLOCK)
                .chain(extra.iter().copied())
                .all(|off| TcpListener::bind((HOST, base + off)).is_ok());
            if free {
                return Ok(PortBlock { _lock: file, base });
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free store port block on 127.0.0.1",
        ))
    }
}

/// Remove data directories of test processes that no longer exist.
fn sweep_dead_data_dirs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if crate::keep_requested() {
            return;
        }
        let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(DATA_PREFIX))
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            if !crate::procs::is_alive(pid) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    });
}

fn new_data_dir(kind: &str) -> io::Result<PathBuf> {
    sweep_dead_data_dirs();
    let dir = std::env::temp_dir().join(format!(
        "{DATA_PREFIX}{}-{kind}-{:016x}",
        std::process::id(),
        registry::random_u64()
    ));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A running server process and what it owns.
#[derive(Debug)]
struct Server {
    name: &'static str,
    child: Child,
    ports: PortBlock,
    dir: PathBuf,
}

impl Server {
    /// Start `make(base, data_dir, log)` until the server answers `probe` (any HTTP status
    /// counts), trying a new port block if it exits early (e.g. a port was taken meanwhile).
    fn start(
        name: &'static str,
        extra_ports: &[u16],
        make: impl Fn(u16, &Path) -> io::Result<Command>,
        probe: &str,
    ) -> io::Result<Server> {
        let mut last_log = String::new();
        for _ in 0..5 {
            let ports = PortBlock::acquire(extra_ports)?;
            let dir = new_data_dir(name)?;
            let data = dir.join("data");
            fs::create_dir_all(&data)?;
            let log_path = dir.join("server.log");
            let log = File::create(&log_path)?;
            let mut cmd = make(ports.base, &data)?;
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            let child = spawn_tied(cmd)?;
            let mut server = Server {
                name,
                child,
                ports,
                dir,
            };
            match server.wait_ready(probe)? {
                true => return Ok(server),
                false => last_log = fs::read_to_string(&log_path).unwrap_or_default(),
            }
            // Dropping `server` kills what is left and removes its directory.
        }
        let tail: String = last_log
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        Err(io::Error::other(format!("{name} did not start:\n{tail}")))
    }

    /// Poll until the server answers; `false` if it exited first.
    fn wait_ready(&mut self, probe: &str) -> io::Result<bool> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(false);
            }
            if http_request(self.ports.base, "GET", probe, &[], &[]).is_ok() {
                return Ok(true);
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} did not answer within {START_TIMEOUT:?}", self.name),
                ));
            }
            std::thread::sleep(READY_POLL);
        }
    }

    fn port(&self) -> u16 {
        self.ports.base
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Test servers need no graceful shutdown: SIGKILL, then reap (no zombie is left, the
        // server is our child).
        let _ = self.child.kill();
        let _ = self.child.wait();
        if crate::keep_requested() {
            eprintln!(
                "bbr-testkit: kept {} data in {}",
                self.name,
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.0 client (test verification only)

/// Send one HTTP/1.0 request to `127.0.0.1:port` and return the status and body.
pub fn http_request(
    port: u16,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&(HOST, port).into(), Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    s.set_write_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!(
        "{method} {path_and_query} HTTP/1.0\r\nHost: {HOST}:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::other("malformed HTTP reply"))?;
    let status_line = String::from_utf8_lossy(&reply[..split]);
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line: {status_line}")))?;
    Ok((status, reply[split + 4..].to_vec()))
}

/// Percent-encode everything but unreserved characters (for one path segment or query value).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn check_output(what: &str, out: Output) -> io::Result<Output> {
    if out.status.success() {
        Ok(out)
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn random_hex(len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        s.push_str(&format!("{:016x}", registry::random_u64()));
    }
    s.truncate(len);
    s
}

// ---------------------------------------------------------------------------------------------
// SeaweedFS (S3)

/// A SeaweedFS `weed mini` S3 server on 127.0.0.1 with one random access key.
#[derive(Debug)]
pub struct SeaweedFs {
    server: Server,
    access_key_id: String,
    secret_access_key: String,
}

impl SeaweedFs {
    /// Start a server (about 1–3 s) with a fresh random key pair.
    pub fn start() -> io::Result<SeaweedFs> {
        let weed = require(tools_dir().join("venv/bin/weed"), "weed")?;
        let access_key_id = format!("AKTEST{}", random_hex(14).to_uppercase());
        let secret_access_key = random_hex(40);
        let (k, s) = (access_key_id.clone(), secret_access_key.clone());
        let server = Server::start(
            "seaweedfs",
            &[WEED_ADMIN_GRPC_OFFSET],
            |p, data| {
                let mut c = Command::new(&weed);
                c.env("AWS_ACCESS_KEY_ID", &k)
                    .env("AWS_SECRET_ACCESS_KEY", &s)
                    .arg("mini")
                    .arg(format!("-dir={}", data.display()))
                    .arg(format!("-ip={HOST}"))
                    .arg(format!("-ip.bind={HOST}"))
                    .arg(format!("-s3.port={p}"))
                    .arg(format!("-master.port={}", p + 1))
                    .arg(format!("-volume.port={}", p + 2))
                    .arg(format!("-filer.port={}", p + 3))
                    .arg(format!("-admin.port={}", p + 4))
                    .arg(format!("-master.port.grpc={}", p + 5))
                    .arg(format!("-volume.port.grpc={}", p + 6))
                    .arg(format!("-filer.port.grpc={}", p + 7))
                    .arg(format!("-s3.port.grpc={}", p + 9))
                    .args([
                        "-s3.port.iceberg=0",
                        "-s3.port.lance=0",
                        "-webdav=false",
                        "-admin.ui=false",
                    ]);
                Ok(c)
            },
            "/",
        )?;
        let weed = SeaweedFs {
            server,
            access_key_id,
            secret_access_key,
        };
        weed.wait_s3_ready()?;
        Ok(weed)
    }

    /// The S3 gateway answers before the filer behind it is ready: wait until a signed
    /// request (through the AWS CLI) succeeds.
    fn wait_s3_ready(&self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = self.aws().args(["s3api", "list-buckets"]).output()?;
            if out.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return check_output("waiting for SeaweedFS S3", out).map(|_| ());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{HOST}:{}", self.server.port())
    }

    /// The S3 port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Adds an identity `user` that may read and list every bucket but not write or delete
    /// (SeaweedFS's `s3.configure -actions Read,List`, applied through `weed shell`, which
    /// reaches the master and the filer on this kit's port layout: the S3 port plus 1 and 3,
    /// gRPC plus 5 and 7), and returns once the S3 gateway accepts its key pair.
    pub fn add_read_only_identity(&self, user: &str, key_id: &str, secret: &str) -> io::Result<()> {
        let p = self.port();
        let mut shell = Command::new(tools_dir().join("venv/bin/weed"))
            .arg("shell")
            .arg(format!("-master={HOST}:{}.{}", p + 1, p + 5))
            .arg(format!("-filer={HOST}:{}.{}", p + 3, p + 7))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        shell
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("weed shell: no stdin"))?
            .write_all(
                format!(
                    "s3.configure -user {user} -access_key {key_id} -secret_key {secret} -actions Read,List -apply\n"
                )
                .as_bytes(),
            )?;
        let out = shell.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.contains(key_id) {
            return Err(io::Error::other(format!(
                "weed shell s3.configure: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        // The gateway picks the identity up from the filer: wait until it is accepted.
        let accepted = crate::wait::within(Duration::from_secs(30), || {
            let out = self
                .aws()
                .env("AWS_ACCESS_KEY_ID", key_id)
                .env("AWS_SECRET_ACCESS_KEY", secret)
                .args(["s3api", "list-buckets"])
                .output()
                .ok()?;
            out.status.success().then_some(())
        });
        accepted.ok_or_else(|| io::Error::other("the read-only identity was not accepted"))
    }

    /// The access key ID the server accepts.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The matching secret.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// The AWS CLI (`venv/bin/aws`) set up for this server: `--endpoint-url`, its keys,
    /// region `us-east-1`, and no host configuration (`AWS_CONFIG_FILE`,
    /// `AWS_SHARED_CREDENTIALS_FILE` point to `/dev/null`, `AWS_CA_BUNDLE` and `AWS_PROFILE`
    /// unset). Add the subcommand arguments.
    pub fn aws(&self) -> Command {
        let mut c = Command::new(aws_cli());
        c.env("AWS_ACCESS_KEY_ID", &self.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_access_key)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .arg("--endpoint-url")
            .arg(self.endpoint())
            .stdin(Stdio::null());
        c
    }

    /// `aws s3api create-bucket`.
    pub fn create_bucket(&self, bucket: &str) -> io::Result<()> {
        let out = self
            .aws()
            .args(["s3api", "create-bucket", "--bucket", bucket])
            .output()?;
        check_output("aws s3api create-bucket", out).map(|_| ())
    }

    /// Whether `aws s3api head-bucket` finds the bucket.
    pub fn bucket_exists(&self, bucket: &str) -> io::Result<bool> {
        let out = self
            .aws()
            .args(["s3api", "head-bucket", "--bucket", bucket])
            .output()?;
        if out.status.success() {
            return Ok(true);
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("404") || err.contains("Not Found") || err.contains("NoSuchBucket") {
            Ok(false)
        } else {
            check_output("aws s3api head-bucket", out).map(|_| false)
        }
    }

    /// Turn versioning on (`put-bucket-versioning Status=Enabled`).
    pub fn enable_versioning(&self, bucket: &str) -> io::Result<()> {
        let out = self
            .aws()
            .args([
                "s3api",
                "put-bucket-versioning",
                "--bucket",
                bucket,
                "--versioning-configuration",
                "Status=Enabled",
            ])
            .output()?;
        check_output("aws s3api put-bucket-versioning", out).map(|_| ())
    }

    /// Upload `data` to `bucket/key` with the AWS CLI.
    pub fn put_object(&self, bucket: &str, key: &str, data: &[u8]) -> io::Result<()> {
        let tmp = tempfile::NamedTempFile::new()?;
        fs::write(tmp.path(), data)?;
        let out = self
            .aws()
            .args([
                "s3api",
                "put-object",
                "--bucket",
                bucket,
                "--key",
                key,
                "--body",
            ])
            .arg(tmp.path())
            .output()?;
        check_output("aws s3api put-object", out).map(|_| ())
    }

    /// The object's bytes via `aws s3api get-object`, `None` if there is no such key.
    pub fn get_object(&self, bucket: &str, key: &str) -> io::Result<Option<Vec<u8>>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("object");
        let out = self
            .aws()
            .args(["s3api", "get-object", "--bucket", bucket, "--key", key])
            .arg(&file)
            .output()?;
        if out.status.success() {
            return fs::read(&file).map(Some);
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("NoSuchKey") || err.contains("404") {
            return Ok(None);
        }
        check_output("aws s3api get-object", out).map(|_| None)
    }

    /// `(key, size)` of every object in `bucket` (latest versions), via `list-objects-v2`.
    pub fn list_objects(&self, bucket: &str) -> io::Result<Vec<(String, u64)>> {
        let out = self
            .aws()
            .args([
                "s3api",
                "list-objects-v2",
                "--bucket",
                bucket,
                "--query",
                "Contents[].[Key,Size]",
                "--output",
                "text",
            ])
            .output()?;
        let out = check_output("aws s3api list-objects-v2", out)?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut v = Vec::new();
        for line in text.lines() {
            if let Some((k, s)) = line.rsplit_once('\t') {
                v.push((k.to_string(), s.trim().parse().unwrap_or(0)));
            }
        }
        v.sort();
        Ok(v)
    }

    /// Keys with an unfinished multipart upload in `bucket`.
    pub fn multipart_uploads(&self, bucket: &str) -> io::Result<Vec<String>> {
        let out = self
            .aws()
            .args([
                "s3api",
                "list-multipart-uploads",
                "--bucket",
                bucket,
                "--query",
                "Uploads[].Key",
                "--output",
                "text",
            ])
            .output()?;
        let out = check_output("aws s3api list-multipart-uploads", out)?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter(|k| *k != "None")
            .map(str::to_string)
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Azurite (Azure Blob)

/// Azurite's blob service on 127.0.0.1 (account `devstoreaccount1`, well-known key).
#[derive(Debug)]
pub struct Azurite {
    server: Server,
}

impl Azurite {
    /// Start Azurite (about 2 s), with `--disableTelemetry`.
    pub fn start() -> io::Result<Azurite> {
        let main = require(
            tools_dir().join("npm/node_modules/azurite/dist/src/blob/main.js"),
            "azurite",
        )?;
        let server = Server::start(
            "azurite",
            &[],
            |p, data| {
                let mut c = Command::new("node");
                c.arg(&main)
                    .arg("--blobHost")
                    .arg(HOST.to_string())
                    .arg("--blobPort")
                    .arg(p.to_string())
                    .arg("--location")
                    .arg(data)
                    .args(["--disableTelemetry", "--skipApiVersionCheck", "--loose"]);
                Ok(c)
            },
            &format!("/{AZURITE_ACCOUNT}?comp=list"),
        )?;
        Ok(Azurite { server })
    }

    /// The blob service URL, `http://127.0.0.1:<port>/devstoreaccount1`.
    pub fn blob_endpoint(&self) -> String {
        format!("http://{HOST}:{}/{AZURITE_ACCOUNT}", self.server.port())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The account name.
    pub fn account(&self) -> &'static str {
        AZURITE_ACCOUNT
    }

    /// The account key.
    pub fn access_key(&self) -> &'static str {
        AZURITE_KEY
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// `python3 azblob.py <endpoint>`; add the subcommand arguments.
    pub fn azblob(&self) -> Command {
        let mut c = Command::new("python3");
        c.arg(azblob_py())
            .arg(self.blob_endpoint())
            .env("AZ_ACCOUNT", AZURITE_ACCOUNT)
            .env("AZ_KEY", AZURITE_KEY)
            .stdin(Stdio::null());
        c
    }

    /// Create a container.
    pub fn create_container(&self, container: &str) -> io::Result<()> {
        let out = self.azblob().args(["mkcontainer", container]).output()?;
        check_output("azblob.py mkcontainer", out).map(|_| ())
    }

    /// Upload `data` as a block blob.
    pub fn put_blob(&self, container: &str, blob: &str, data: &[u8]) -> io::Result<()> {
        let tmp = tempfile::NamedTempFile::new()?;
        fs::write(tmp.path(), data)?;
        let out = self
            .azblob()
            .args(["put", container, blob])
            .arg(tmp.path())
            .output()?;
        check_output("azblob.py put", out).map(|_| ())
    }

    /// The blob's bytes, `None` if it (or the container) does not exist.
    pub fn get_blob(&self, container: &str, blob: &str) -> io::Result<Option<Vec<u8>>> {
        let out = self.azblob().args(["get", container, blob, "-"]).output()?;
        if out.status.success() {
            return Ok(Some(out.stdout));
        }
        if String::from_utf8_lossy(&out.stderr).contains(": 404 ") {
            return Ok(None);
        }
        check_output("azblob.py get", out).map(|_| None)
    }

    /// Names of the blobs in `container`, `None` if the container does not exist.
    pub fn list_blobs(&self, container: &str) -> io::Result<Option<Vec<String>>> {
        let out = self.azblob().args(["list", container]).output()?;
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains(": 404 ") {
            return Ok(None);
        }
        let out = check_output("azblob.py list", out)?;
        let xml = String::from_utf8_lossy(&out.stdout);
        let mut names: Vec<String> = xml
            .split("<Name>")
            .skip(1)
            .filter_map(|s| s.split("</Name>").next())
            .map(xml_unescape)
            .collect();
        names.sort();
        Ok(Some(names))
    }
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

// ---------------------------------------------------------------------------------------------
// fake-gcs-server (GCS)

/// fake-gcs-server on 127.0.0.1, plain HTTP, filesystem backend (it accepts any credentials).
#[derive(Debug)]
pub struct FakeGcs {
    server: Server,
}

impl FakeGcs {
    /// Start fake-gcs-server (about 0.1 s).
    pub fn start() -> io::Result<FakeGcs> {
        let venv = tools_dir().join("venv");
        let bin = find_file(&venv, "fake-gcs-server-linux-amd64", 8).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "fake-gcs-server-linux-amd64 not found under {} (run .ci/install-storage-deps.sh)",
                    venv.display()
                ),
            )
        })?;
        let server = Server::start(
            "fake-gcs",
            &[],
            |p, data| {
                let mut c = Command::new(&bin);
                c.args(["-scheme", "http", "-host"])
                    .arg(HOST.to_string())
                    .arg("-port")
                    .arg(p.to_string())
                    .args(["-backend", "filesystem", "-filesystem-root"])
                    .arg(data)
                    .arg("-external-url")
                    .arg(format!("http://{HOST}:{p}"))
                    .arg("-public-host")
                    .arg(format!("{HOST}:{p}"))
                    .args(["-log-level", "warn"]);
                Ok(c)
            },
            "/storage/v1/b",
        )?;
        Ok(FakeGcs { server })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{HOST}:{}", self.server.port())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        http_request(
            self.server.port(),
            method,
            path,
            &[("Content-Type", "application/json")],
            body,
        )
    }

    /// Create a bucket (`POST /storage/v1/b?project=test`).
    pub fn create_bucket(&self, bucket: &str) -> io::Result<()> {
        let body = format!("{{\"name\":\"{bucket}\"}}");
        match self.call("POST", "/storage/v1/b?project=test", body.as_bytes())? {
            (200..=299, _) => Ok(()),
            (s, b) => Err(io::Error::other(format!(
                "creating bucket {bucket}: {s} {}",
                String::from_utf8_lossy(&b)
            ))),
        }
    }

    /// Whether the bucket exists.
    pub fn bucket_exists(&self, bucket: &str) -> io::Result<bool> {
        match self.call("GET", &format!("/storage/v1/b/{}", url_encode(bucket)), &[])? {
            (200..=299, _) => Ok(true),
            (404, _) => Ok(false),
            (s, b) => Err(io::Error::other(format!(
                "getting bucket {bucket}: {s} {}",
                String::from_utf8_lossy(&b)
            ))),
        }
    }

    /// Upload `data` with a media upload.
    pub fn put_object(&self, bucket: &str, name: &str, data: &[u8]) -> io::Result<()> {
        let path = format!(
            "/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            url_encode(bucket),
            url_encode(name)
        );
        match http_request(
            self.server.port(),
            "POST",
            &path,
            &[("Content-Type", "application/octet-stream")],
            data,
        )? {
            (200..=299, _) => Ok(()),
            (s, b) => Err(io::Error::other(format!(
                "uploading {bucket}/{name}: {s} {}",
                String::from_utf8_lossy(&b)
            ))),
        }
    }

    /// The object's bytes (`GET /storage/v1/b/B/o/<name>?alt=media`), `None` if missing.
    pub fn get_object(&self, bucket: &str, name: &str) -> io::Result<Option<Vec<u8>>> {
        let path = format!(
            "/storage/v1/b/{}/o/{}?alt=media",
            url_encode(bucket),
            url_encode(name)
        );
        match self.call("GET", &path, &[])? {
            (200, body) => Ok(Some(body)),
            (404, _) => Ok(None),
            (s, b) => Err(io::Error::other(format!(
                "downloading {bucket}/{name}: {s} {}",
                String::from_utf8_lossy(&b)
            ))),
        }
    }

    /// Names of the objects in `bucket` (raw JSON listing, names extracted).
    pub fn list_objects(&self, bucket: &str) -> io::Result<Vec<String>> {
        let (status, body) = self.call(
            "GET",
            &format!("/storage/v1/b/{}/o", url_encode(bucket)),
            &[],
        )?;
        if status != 200 {
            return Err(io::Error::other(format!(
                "listing {bucket}: {status} {}",
                String::from_utf8_lossy(&body)
            )));
        }
        let text = String::from_utf8_lossy(&body);
        let mut names: Vec<String> = text
            .split("\"name\":\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// A GCS service-account key file (JSON) with a fresh 2048-bit RSA key made by
/// `openssl genpkey` (one per process, reused). object_store signs its own JWT with it, so no
/// token endpoint is contacted; fake-gcs-server accepts any token.
pub fn gcs_service_account_json(project: &str) -> io::Result<String> {
    static KEY: OnceLock<String> = OnceLock::new();
    let pem = match KEY.get() {
        Some(k) => k.clone(),
        None => {
            let out = Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ])
                .stdin(Stdio::null())
                .output()?;
            let out = check_output("openssl genpkey", out)?;
            let pem = String::from_utf8_lossy(&out.stdout).into_owned();
            KEY.get_or_init(|| pem).clone()
        }
    };
    let escaped = pem.replace('\n', "\\n");
    Ok(format!(
        concat!(
            "{{\"type\":\"service_account\",\"project_id\":\"{p}\",",
            "\"private_key_id\":\"{id}\",\"private_key\":\"{key}\",",
            "\"client_email\":\"backup@{p}.iam.gserviceaccount.com\",",
            "\"client_id\":\"1\",\"token_uri\":\"https://oauth2.googleapis.com/token\"}}"
        ),
        p = project,
        id = random_hex(40),
        key = escaped
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding() {
        assert_eq!(url_encode("a/b c~"), "a%2Fb%20c~");
    }

    #[test]
    fn service_account_json_has_a_pkcs8_key() {
        let j = gcs_service_account_json("proj").unwrap();
        assert!(j.contains("-----BEGIN PRIVATE KEY-----\\n"), "{j}");
        assert!(j.contains("\"project_id\":\"proj\""));
    }
}
