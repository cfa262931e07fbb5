//! [`Vm`]: a real OpenSSH `sshd` standing in for a BOSH instance.
//!
//! Each VM is an `sshd -D -e` running as root, bound to its own loopback
//! address `127.A.B.C` (see [`registry`] for how addresses
//! and ports stay unique across parallel test processes), started through
//! `unshare --mount --propagation private` so that it lives in a private mount
//! namespace in which `<state dir>/var-vcap` is bind-mounted on `/var/vcap`.
//! Scripts and artifacts seen over SSH at `/var/vcap/...` are therefore plain
//! files on the host under [`Vm::vcap_root`], and every VM has its own
//! `/var/vcap/jobs` and `/var/vcap/store`.
//!
//! State directory layout (`/tmp/bbr-testkit-vm-XXXXXX`, mode 0755 so that
//! the login user can read its `authorized_keys`):
//!
//! ```text
//! sshd_config  sshd.log  sshd.pid
//! host_key  host_key.pub
//! authorized_keys/<user>
//! var-vcap/jobs/  var-vcap/store/      (= /var/vcap inside the VM)
//! ```

// Unsafe code is denied workspace-wide; this module calls libc directly. Each block
// carries its own SAFETY comment.
#![allow(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::keys::{self, ClientKey, KeyType};
use crate::registry::{self, AddrLease};
use crate::{procs, users, write_atomic};

/// Prefix of every VM state directory (used to recognise leftovers).
pub(crate) const ROOT_PREFIX: &str = "bbr-testkit-vm-";

/// Default login user: has password-less sudo, like BOSH's SSH users.
pub const DEFAULT_USER: &str = "vcap";

/// Login user without any sudo rights (see [`VmOptions::without_sudo`]).
pub const NOSUDO_USER: &str = "nosudo";

/// How long sshd may take to print "Server listening" (generous: the
/// machine may be busy compiling).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Grace period after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// `sh -c` body run inside the new mount namespace: `$1` = host directory
/// for `/var/vcap`, `$2` = sshd binary, `$3` = config. `exec` keeps the PID,
/// so the PID we spawned is sshd's own.
const NS_SCRIPT: &str = r#"mount --bind "$1" /var/vcap || exit 1; sshd=$2; config=$3; shift 3; for p in "$@"; do mount --bind /dev/null "$p" || exit 1; done; exec "$sshd" -D -e -f "$config""#;

/// Options for [`Vm::start`]. `VmOptions::default()` gives user `vcap` with
/// sudo, a fresh ed25519 client key, and an ed25519 host key.
#[derive(Clone, Debug)]
pub struct VmOptions {
    user: String,
    sudo: bool,
    client_key: Option<Arc<ClientKey>>,
    client_key_type: KeyType,
    host_key_type: KeyType,
    extra_sshd_config: String,
    log_level: String,
    hidden: Vec<PathBuf>,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            user: DEFAULT_USER.to_owned(),
            sudo: true,
            client_key: None,
            client_key_type: KeyType::default(),
            host_key_type: KeyType::default(),
            extra_sshd_config: String::new(),
            log_level: "INFO".to_string(),
            hidden: Vec::new(),
        }
    }
}

impl VmOptions {
    /// Same as [`VmOptions::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Log in as `name` (created machine-wide if missing). With `sudo`,
    /// `/etc/sudoers.d/90-<name>` grants `NOPASSWD:ALL`; without, the user
    /// must not have such a file.
    pub fn user(mut self, name: impl Into<String>, sudo: bool) -> Self {
        self.user = name.into();
        self.sudo = sudo;
        self
    }

    /// Log in as [`NOSUDO_USER`], which has no sudo rights at all, so
    /// `sudo -n ...` fails with "a password is required".
    pub fn without_sudo(self) -> Self {
        self.user(NOSUDO_USER, false)
    }

    /// Use this (shared) client key instead of generating one per VM.
    pub fn client_key(mut self, key: Arc<ClientKey>) -> Self {
        self.client_key = Some(key);
        self
    }

    /// Type of the client key generated for this VM (ignored when a key is
    /// given with [`VmOptions::client_key`]).
    pub fn client_key_type(mut self, key_type: KeyType) -> Self {
        self.client_key_type = key_type;
        self
    }

    /// Type of the VM's host key.
    pub fn host_key_type(mut self, key_type: KeyType) -> Self {
        self.host_key_type = key_type;
        self
    }

    /// sshd's `LogLevel` (default `INFO`; `DEBUG1` logs every forwarded connection).
    pub fn log_level(mut self, level: impl Into<String>) -> Self {
        self.log_level = level.into();
        self
    }

    /// Make the program at `path` (for example `/usr/bin/perl`) unusable inside the VM: it
    /// is covered by `/dev/null`, so running it fails with "Permission denied" (exit 126
    /// from a shell), as on a stemcell without it.
    pub fn hide_program(mut self, path: impl Into<PathBuf>) -> Self {
        self.hidden.push(path.into());
        self
    }

    /// Append `lines` verbatim to the VM's `sshd_config` (after the
    /// testkit's own settings, so only options the testkit does not set take
    /// effect; `Match` blocks work). Used for example by the director
    /// simulator to give a "Windows" VM a `ForceCommand`.
    pub fn extra_sshd_config(mut self, lines: impl Into<String>) -> Self {
        let mut lines = lines.into();
        if !lines.is_empty() && !lines.ends_with('\n') {
            lines.push('\n');
        }
        self.extra_sshd_config.push_str(&lines);
        self
    }
}

/// A running OpenSSH server with a private `/var/vcap`; see the
/// [module docs](self). Dropping it stops sshd (and every connection) and
/// removes its state directory, unless `BBR_TESTKIT_KEEP=1`.
#[derive(Debug)]
pub struct Vm {
    dir: Option<TempDir>,
    root: PathBuf,
    lease: AddrLease,
    port: u16,
    user: String,
    sudo: bool,
    client_key: Arc<ClientKey>,
    host_key_type: KeyType,
    host_public: String,
    sshd: PathBuf,
    child: Option<Child>,
    extra_sshd_config: String,
    log_level: String,
    hidden: Vec<PathBuf>,
}

impl Vm {
    /// Start a VM. Takes about 0.1 s (plus key generation: RSA keys take
    /// longer). Needs root, `sshd`, `ssh-keygen`, `unshare`, `mount`,
    /// `useradd` and (for sudo users) `sudo`.
    pub fn start(opts: VmOptions) -> io::Result<Vm> {
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        if unsafe { libc::geteuid() } != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "bbr-testkit VMs need root (sshd, mount namespaces, useradd)",
            ));
        }
        let sshd = find_sshd()?;
        users::ensure_user(&opts.user, opts.sudo)?;
        let client_key = match opts.client_key {
            Some(k) => k,
            None => Arc::new(ClientKey::generate(opts.client_key_type)?),
        };

        // Directories on the host: the bind-mount target and sshd's
        // privilege-separation directory.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create("/var/vcap")?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create("/run/sshd")?;

        let dir = tempfile::Builder::new().prefix(ROOT_PREFIX).tempdir()?;
        let root = dir.path().to_path_buf();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755))?;
        let mkdir = |p: PathBuf| fs::DirBuilder::new().recursive(true).mode(0o755).create(p);
        mkdir(root.join("var-vcap/jobs"))?;
        mkdir(root.join("var-vcap/store"))?;
        mkdir(root.join("authorized_keys"))?;
        write_atomic(
            &root.join("authorized_keys").join(&opts.user),
            format!("{}\n", client_key.public_key_line()).as_bytes(),
            0o644,
        )?;
        let host_key = root.join("host_key");
        keys::keygen(&host_key, opts.host_key_type, "bbr-testkit-host")?;
        let host_public = keys::read_pub(&host_key)?;

        let lease = AddrLease::acquire()?;
        let mut vm = Vm {
            dir: Some(dir),
            root,
            lease,
            port: 0,
            user: opts.user,
            sudo: opts.sudo,
            client_key,
            host_key_type: opts.host_key_type,
            host_public,
            sshd,
            child: None,
            extra_sshd_config: opts.extra_sshd_config,
            hidden: opts.hidden,
            log_level: opts.log_level,
        };
        // The address is ours alone; only a wildcard listener on the same
        // port can get in the way, so retry with other ports on EADDRINUSE.
        let mut attempt = 0;
        loop {
            attempt += 1;
            vm.port = registry::free_port(vm.addr())?;
            match vm.spawn() {
                Ok(()) => return Ok(vm),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < 10 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Write `sshd_config`, start sshd in its mount namespace and wait for
    /// "Server listening".
    fn spawn(&mut self) -> io::Result<()> {
        let config = self.root.join("sshd_config");
        fs::write(&config, self.sshd_config())?;
        let log_path = self.root.join("sshd.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let offset = log.metadata()?.len();
        let child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-c",
                NS_SCRIPT,
                "bbr-testkit-vm",
            ])
            .arg(self.root.join("var-vcap"))
            .arg(&self.sshd)
            .arg(&config)
            .args(&self.hidden)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: a Ctrl-C aimed at the test run does not
            // hit sshd before Drop can stop it in order.
            .process_group(0)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawning unshare/sshd: {e}")))?;
        self.child = Some(child);
        self.lease.record(self.pid(), &self.root)?;

        let ready = format!("Server listening on {} port {}.", self.addr(), self.port);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = read_from(&log_path, offset)?;
            if text.contains(&ready) {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(c) => c.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                self.child = None;
                let text = read_from(&log_path, offset)?;
                let kind = if text.contains("Address already in use") {
                    io::ErrorKind::AddrInUse
                } else {
                    io::ErrorKind::Other
                };
                return Err(io::Error::new(
                    kind,
                    format!(
                        "sshd on {} exited during start ({status}):\n{text}",
                        self.host_arg()
                    ),
                ));
            }
            if Instant::now() >= deadline {
                let _ = self.stop();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "sshd on {} not listening after {START_TIMEOUT:?}:\n{text}",
                        self.host_arg()
                    ),
                ));
            }
            // No event announces the log line: poll with a short interval.
            std::thread::sleep(procs::POLL_INTERVAL);
        }
    }

    fn sshd_config(&self) -> String {
        let r = self.root.display();
        format!(
            "# bbr-testkit VM\n\
             ListenAddress {addr}\n\
             Port {port}\n\
             AddressFamily inet\n\
             HostKey {r}/host_key\n\
             PidFile {r}/sshd.pid\n\
             AuthorizedKeysFile {r}/authorized_keys/%u\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin no\n\
             UsePAM no\n\
             StrictModes no\n\
             UseDNS no\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             X11Forwarding no\n\
             MaxSessions 64\n\
             MaxStartups 100:30:200\n\
             Subsystem sftp internal-sftp\n\
             LogLevel {log_level}\n\
             {extra}",
            addr = self.addr(),
            port = self.port,
            extra = self.extra_sshd_config,
            log_level = self.log_level,
        )
    }

    /// The VM's loopback address (`127.A.B.C`, A in 100..=199).
    pub fn addr(&self) -> Ipv4Addr {
        self.lease.addr()
    }

    /// The port sshd listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.A.B.C:port`, the form bbr accepts as an instance host.
    pub fn host_arg(&self) -> String {
        format!("{}:{}", self.addr(), self.port)
    }

    /// The login user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether the login user has password-less sudo.
    pub fn has_sudo(&self) -> bool {
        self.sudo
    }

    /// The client key authorised for the login user.
    pub fn client_key(&self) -> &Arc<ClientKey> {
        &self.client_key
    }

    /// Path of the client private key (mode 0600).
    pub fn client_key_path(&self) -> &Path {
        self.client_key.path()
    }

    /// Type of the current host key.
    pub fn host_key_type(&self) -> KeyType {
        self.host_key_type
    }

    /// The host key's `.pub` line (`ssh-ed25519 AAAA... bbr-testkit-host`),
    /// without the trailing newline.
    pub fn host_public_key_line(&self) -> &str {
        &self.host_public
    }

    /// The `known_hosts` line exactly as OpenSSH writes it for this non-22
    /// port: `[127.A.B.C]:port ssh-ed25519 AAAA...` (no comment).
    pub fn known_hosts_line(&self) -> String {
        let mut parts = self.host_public.split_ascii_whitespace();
        let kind = parts.next().unwrap_or_default();
        let blob = parts.next().unwrap_or_default();
        format!("[{}]:{} {kind} {blob}", self.addr(), self.port)
    }

    /// PID of the sshd listener, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The VM's state directory on the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Host directory that is `/var/vcap` inside the VM.
    pub fn vcap_root(&self) -> PathBuf {
        self.root.join("var-vcap")
    }

    /// Host path of `/var/vcap/<rel>` inside the VM. `rel` may be relative
    /// (`store/bbr-backup`) or absolute (`/var/vcap/store/bbr-backup`).
    ///
    /// # Panics
    /// If `rel` contains `..` or is an absolute path outside `/var/vcap`.
    pub fn vcap_path(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        let rel = match rel.strip_prefix("/var/vcap") {
            Ok(inner) => inner,
            Err(_) if rel.is_absolute() => panic!("vcap_path: {rel:?} is outside /var/vcap"),
            Err(_) => rel,
        };
        let mut out = self.vcap_root();
        for c in rel.components() {
            match c {
                Component::Normal(s) => out.push(s),
                Component::CurDir => {}
                _ => panic!("vcap_path: {rel:?} must not contain `..`"),
            }
        }
        out
    }

    /// Write `/var/vcap/jobs/<job>/bin/bbr/<script>` (mode 0755) in this VM,
    /// atomically (a script that is being run keeps its old content).
    /// Returns the host path.
    pub fn install_script(&self, job: &str, script: &str, body: &str) -> io::Result<PathBuf> {
        self.install_file(format!("jobs/{job}/bin/bbr/{script}"), body, 0o755)
    }

    /// Write `/var/vcap/<rel>` with `mode`, creating parent directories
    /// (mode 0755, owned by root). Returns the host path.
    pub fn install_file(
        &self,
        rel: impl AsRef<Path>,
        body: impl AsRef<[u8]>,
        mode: u32,
    ) -> io::Result<PathBuf> {
        let path = self.vcap_path(rel);
        if let Some(parent) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)?;
        }
        write_atomic(&path, body.as_ref(), mode)?;
        Ok(path)
    }

    /// Content of `/var/vcap/<rel>` as UTF-8 text.
    pub fn read(&self, rel: impl AsRef<Path>) -> io::Result<String> {
        fs::read_to_string(self.vcap_path(rel))
    }

    /// Content of `/var/vcap/<rel>` as bytes.
    pub fn read_bytes(&self, rel: impl AsRef<Path>) -> io::Result<Vec<u8>> {
        fs::read(self.vcap_path(rel))
    }

    /// Whether `/var/vcap/<rel>` exists in this VM.
    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.vcap_path(rel).exists()
    }

    /// A system `ssh` command for this VM running `remote_command` as the
    /// login user (host key checking off, batch mode, this VM's client key).
    pub fn ssh_command(&self, remote_command: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-p")
            .arg(self.port.to_string())
            .arg("-i")
            .arg(self.client_key_path())
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=20",
            ])
            .arg(format!("{}@{}", self.user, self.addr()))
            .arg(remote_command)
            .stdin(Stdio::null());
        cmd
    }

    /// Run [`Vm::ssh_command`] and collect its output.
    pub fn ssh(&self, remote_command: &str) -> io::Result<Output> {
        self.ssh_command(remote_command).output()
    }

    /// Everything sshd logged so far (across restarts).
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("sshd.log")).unwrap_or_default()
    }

    /// PIDs of sshd's per-connection processes (direct children of the
    /// listener, `sshd: <user> [priv]`).
    pub fn connection_pids(&self) -> Vec<u32> {
        let Some(pid) = self.pid_i32() else {
            return Vec::new();
        };
        procs::descendants(pid)
            .into_iter()
            .filter(|&p| procs::stat(p).is_some_and(|(_, ppid)| ppid == pid))
            .filter_map(|p| u32::try_from(p).ok())
            .collect()
    }

    /// Kill every process below the sshd listener (each connection's
    /// privileged and unprivileged sshd plus the commands they run) with
    /// SIGKILL, keeping the listener. Clients see the connection drop
    /// without an exit status; new connections work. Returns how many
    /// processes were killed; waits until they are gone.
    pub fn kill_connections(&self) -> io::Result<usize> {
        match self.pid_i32() {
            Some(pid) => Ok(procs::kill_descendants(pid, STOP_TIMEOUT)),
            None => Ok(0),
        }
    }

    /// Stop the VM by PID: freeze the listener (no new connections), kill
    /// all connection processes, then SIGTERM the listener, wait up to 10 s,
    /// SIGKILL if needed, and reap it. Idempotent. The state directory stays
    /// (see [`Vm::restart`]).
    pub fn stop(&mut self) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = i32::try_from(child.id()).map_err(io::Error::other)?;
        if child.try_wait()?.is_none() {
            let pidfd = procs::pidfd_open(pid).ok();
            let namespace = procs::mount_namespace(pid);
            let _ = procs::signal(pid, libc::SIGSTOP);
            procs::kill_descendants(pid, STOP_TIMEOUT);
            // What sessions left behind when their connection dropped (bbr exiting at once
            // after Ctrl-C, say) no longer descends from sshd but still runs in the VM.
            if let Some(ns) = &namespace {
                procs::kill_namespace_members(ns, pid, STOP_TIMEOUT);
            }
            procs::signal(pid, libc::SIGTERM)?;
            procs::signal(pid, libc::SIGCONT)?;
            let deadline = Instant::now() + STOP_TIMEOUT;
            let exited = match &pidfd {
                Some(fd) => procs::wait_pidfd(fd, deadline)?,
                None => procs::wait_all_exited(&[pid], deadline),
            };
            if !exited {
                procs::signal(pid, libc::SIGKILL)?;
            }
        }
        child.wait()?;
        Ok(())
    }

    /// Stop (if running) and start sshd again on the same address and port,
    /// with the same keys and `/var/vcap` tree.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Replace the host key with a new one of the same type and restart, so
    /// that clients pinning the old key see "host key changed".
    pub fn regenerate_host_key(&mut self) -> io::Result<()> {
        self.regenerate_host_key_as(self.host_key_type)
    }

    /// Replace the host key with a new one of `key_type` and restart.
    pub fn regenerate_host_key_as(&mut self, key_type: KeyType) -> io::Result<()> {
        self.stop()?;
        let host_key = self.root.join("host_key");
        keys::keygen(&host_key, key_type, "bbr-testkit-host")?;
        self.host_public = keys::read_pub(&host_key)?;
        self.host_key_type = key_type;
        self.spawn()
    }

    /// Host path of the `authorized_keys` file sshd consults for `user` on
    /// this VM (`<root>/authorized_keys/<user>`; it need not exist).
    ///
    /// # Panics
    /// If `user` is empty or contains `/` or is `.`/`..`.
    pub fn authorized_keys_path(&self, user: &str) -> PathBuf {
        assert!(
            !user.is_empty() && !user.contains('/') && user != "." && user != "..",
            "authorized_keys_path: bad user name {user:?}"
        );
        self.root.join("authorized_keys").join(user)
    }

    /// Append `public_key_line` to `user`'s `authorized_keys` on this VM
    /// only (atomically; mode 0644). The Linux user itself is machine-wide
    /// and must exist for a login to work.
    pub fn add_authorized_key(&self, user: &str, public_key_line: &str) -> io::Result<()> {
        let path = self.authorized_keys_path(user);
        let mut body = fs::read_to_string(&path).unwrap_or_default();
        if !body.is_empty() && !body.ends_with('\n') {
            body.push('\n');
        }
        body.push_str(public_key_line.trim_end());
        body.push('\n');
        write_atomic(&path, body.as_bytes(), 0o644)
    }

    /// Remove `user`'s `authorized_keys` on this VM, so that `user` can no
    /// longer log in here. Returns whether there was one.
    pub fn remove_authorized_keys(&self, user: &str) -> io::Result<bool> {
        match fs::remove_file(self.authorized_keys_path(user)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Users that currently have an `authorized_keys` file on this VM
    /// (including the login user [`Vm::user`]), sorted.
    pub fn authorized_users(&self) -> Vec<String> {
        let mut users: Vec<String> = fs::read_dir(self.root.join("authorized_keys"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        users.sort();
        users
    }

    fn pid_i32(&self) -> Option<i32> {
        self.pid().and_then(|p| i32::try_from(p).ok())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("bbr-testkit: stopping VM {}: {e}", self.root.display());
        }
        if let Some(dir) = self.dir.take() {
            if crate::keep_requested() {
                let kept = dir.keep();
                eprintln!(
                    "bbr-testkit: keeping VM {} dir {}",
                    self.host_arg(),
                    kept.display()
                );
            } else if let Err(e) = dir.close() {
                eprintln!("bbr-testkit: removing {}: {e}", self.root.display());
            }
        }
    }
}

fn find_sshd() -> io::Result<PathBuf> {
    let path_dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        .iter()
        .map(PathBuf::from)
        .chain(path_dirs.unwrap_or_default())
        .map(|d| d.join("sshd"))
        .find(|p| p.is_absolute() && p.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "sshd not found (apt-get install openssh-server)",
            )
        })
}

fn read_from(path: &Path, offset: u64) -> io::Result<String> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
