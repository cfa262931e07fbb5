//! Cross-process allocation of loopback addresses for VMs.
//!
//! Every running [`Vm`](crate::Vm) holds an exclusive `flock` on
//! `/tmp/bbr-testkit/addr-127.A.B.C.lock` for its whole life. The address is
//! drawn at random from `127.100.0.1 ..= 127.199.255.254` (6.5 million
//! addresses) and the lock makes it exclusive among all processes on the
//! machine that use the testkit (`cargo test` threads and `cargo nextest`
//! processes alike). Since nobody else listens on such an address, any port
//! on it is free unless something listens on the wildcard address with the
//! same port; the port is therefore chosen at random below the ephemeral range
//! (so that outgoing connections never take it), probed with a bind, and
//! sshd's own bind failure ("Address already in use") makes the caller retry
//! with another port.
//!
//! The lock file also records the owner's PID, the sshd PID and the VM's state
//! directory. A lock is released by the kernel when its process dies, so a
//! file that can be locked but still has a record belongs to a test process
//! that was killed before its `Drop` ran: the first VM started in each process
//! sweeps such leftovers (stops that sshd by PID after checking its command
//! line, removes its directory) and removes client key directories
//! (`bbr-testkit-key-<pid>-*`) whose owner PID is gone.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, Read, Seek, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::procs;

/// Fixed (not `$TMPDIR`-relative) so that every process agrees on it.
const STATE_DIR: &str = "/tmp/bbr-testkit";

/// Ports are drawn from this range, below Linux's default ephemeral range
/// (32768–60999) used for outgoing connections.
const PORT_RANGE: std::ops::RangeInclusive<u16> = 20000..=32000;

/// `/tmp/bbr-testkit`, created (mode 0755) if missing.
pub(crate) fn state_dir() -> io::Result<PathBuf> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(STATE_DIR)?;
    Ok(PathBuf::from(STATE_DIR))
}

/// A random `u64` (per-process random keys plus a counter; no extra crates).
pub(crate) fn random_u64() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

fn random_addr() -> Ipv4Addr {
    let r = random_u64();
    let a = 100 + (r % 100) as u8;
    let b = ((r >> 8) & 0xff) as u8;
    let c = 1 + ((r >> 16) % 254) as u8;
    Ipv4Addr::new(127, a, b, c)
}

/// A random port in [`PORT_RANGE`] that can currently be bound on `addr`.
pub(crate) fn free_port(addr: Ipv4Addr) -> io::Result<u16> {
    let span = u64::from(PORT_RANGE.end() - PORT_RANGE.start()) + 1;
    let mut last = None;
    for _ in 0..200 {
        let port = PORT_RANGE.start() + (random_u64() % span) as u16;
        match TcpListener::bind((addr, port)) {
            Ok(_) => return Ok(port),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}

/// Exclusive use of one loopback address, held until drop.
#[derive(Debug)]
pub(crate) struct AddrLease {
    file: File,
    path: PathBuf,
    addr: Ipv4Addr,
}

impl AddrLease {
    /// Reserve a random unused loopback address.
    pub(crate) fn acquire() -> io::Result<AddrLease> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_stale);
        let dir = state_dir()?;
        for _ in 0..1000 {
            let addr = random_addr();
            let path = dir.join(format!("addr-{addr}.lock"));
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .mode(0o644)
                .open(&path)?;
            if file.try_lock().is_err() {
                continue;
            }
            // Someone may have unlinked the file between our open and lock
            // (a finished owner, or a sweeper): then the lock is worthless.
            match fs::metadata(&path) {
                Ok(m) if same_file(&m, &file.metadata()?) => {}
                _ => continue,
            }
            let mut lease = AddrLease { file, path, addr };
            if let Some(rec) = lease.read_record() {
                cleanup_record(&rec);
            }
            lease.file.set_len(0)?;
            return Ok(lease);
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free loopback address found",
        ))
    }

    /// The reserved address.
    pub(crate) fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Record the sshd PID and state directory for stale-VM sweeping.
    pub(crate) fn record(&mut self, sshd_pid: Option<u32>, root: &Path) -> io::Result<()> {
        let text = format!(
            "owner={}\nsshd={}\nroot={}\n",
            std::process::id(),
            sshd_pid.map(|p| p.to_string()).unwrap_or_default(),
            root.display()
        );
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(text.as_bytes())?;
        Ok(())
    }

    fn read_record(&mut self) -> Option<Record> {
        let mut text = String::new();
        self.file.rewind().ok()?;
        self.file.read_to_string(&mut text).ok()?;
        Record::parse(&text)
    }
}

impl Drop for AddrLease {
    fn drop(&mut self) {
        // Unlink while still holding the lock; see the inode check in acquire.
        let _ = fs::remove_file(&self.path);
    }
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[derive(Debug)]
struct Record {
    sshd: Option<i32>,
    root: PathBuf,
}

impl Record {
    fn parse(text: &str) -> Option<Record> {
        let mut sshd = None;
        let mut root = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("sshd=") {
                sshd = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("root=") {
                root = Some(PathBuf::from(v));
            }
        }
        Some(Record { sshd, root: root? })
    }
}

/// Stop the sshd of a dead owner (only if its command line still names that
/// VM's config, so a reused PID is never hit) and remove its directory.
fn cleanup_record(rec: &Record) {
    let config = rec.root.join("sshd_config");
    if let Some(pid) = rec.sshd
        && procs::is_alive(pid)
        && procs::cmdline(pid).contains(&*config.to_string_lossy())
    {
        let _ = procs::signal(pid, libc::SIGSTOP);
        procs::kill_descendants(pid, Duration::from_secs(5));
        let _ = procs::signal(pid, libc::SIGKILL);
        procs::wait_all_exited(&[pid], std::time::Instant::now() + Duration::from_secs(5));
    }
    let is_ours = rec
        .root
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(crate::vm::ROOT_PREFIX));
    if is_ours && !crate::keep_requested() {
        let _ = fs::remove_dir_all(&rec.root);
    }
}

/// Clean up after test processes that died without dropping their VMs.
fn sweep_stale() {
    let Ok(dir) = state_dir() else { return };
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with("addr-") && name.ends_with(".lock")) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue; // owned by a live process
        }
        match fs::metadata(&path) {
            Ok(m) if file.metadata().is_ok_and(|fm| same_file(&m, &fm)) => {}
            _ => continue,
        }
        let mut lease = AddrLease {
            file,
            path,
            addr: Ipv4Addr::LOCALHOST,
        };
        if let Some(rec) = lease.read_record() {
            cleanup_record(&rec);
        }
        drop(lease); // unlinks, then unlocks
    }
    if crate::keep_requested() {
        return;
    }
    // Client key directories of dead processes.
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(crate::keys::KEY_DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if !procs::is_alive(owner) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
