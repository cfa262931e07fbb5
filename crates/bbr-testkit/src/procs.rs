//! Process helpers: reading `/proc`, signalling by PID, waiting for exits
//! through pidfds, and killing a whole process tree without leaking
//! grandchildren that fork while we look.
//!
//! Everything here works on explicit PIDs that the testkit started itself (or
//! descendants of them); nothing is ever matched by name.

// Unsafe code is denied workspace-wide; this module calls libc directly. Each block
// carries its own SAFETY comment.
#![allow(unsafe_code)]

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Interval for the few places where no kernel event exists to wait for
/// (a process entering the stopped state, a log line appearing).
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// State letter and parent PID of `pid`, read from `/proc/<pid>/stat`;
/// `None` when the process does not exist any more.
pub(crate) fn stat(pid: i32) -> Option<(char, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself contain
    // spaces or ')'; everything after the last ')' is well formed.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` exists and is neither a zombie nor dead.
///
/// Orphans are reaped by PID 1, which on some machines does so lazily, so
/// `kill(pid, 0)` keeps succeeding for a while after the exit.
pub fn is_alive(pid: i32) -> bool {
    matches!(stat(pid), Some((s, _)) if s != 'Z' && s != 'X')
}

/// Command line of `pid` with NULs turned into spaces (empty if unreadable).
pub(crate) fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// All live descendants of `root` (not including `root`), parents before
/// children.
pub(crate) fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some((state, ppid)) = stat(pid)
                && state != 'Z'
                && state != 'X'
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        if let Some(kids) = children.get(&p) {
            for &k in kids {
                out.push(k);
                queue.push(k);
            }
        }
    }
    out
}

/// Send `sig` to `pid`. A process that is already gone is not an error.
pub(crate) fn signal(pid: i32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// A pidfd for `pid` (Linux ≥ 5.3): becomes readable when the process exits.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes plain integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Wait until the process behind `fd` has exited (zombie counts as exited)
/// or `deadline` passes. Returns whether it exited.
pub(crate) fn wait_pidfd(fd: &OwnedFd, deadline: Instant) -> io::Result<bool> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is a valid, initialised pollfd array of length 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc > 0 {
            return Ok(true);
        }
        if rc == 0 {
            return Ok(false);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Wait until every PID in `pids` has exited, or `deadline` passes.
/// Returns whether all exited.
pub(crate) fn wait_all_exited(pids: &[i32], deadline: Instant) -> bool {
    let mut all = true;
    for &pid in pids {
        match pidfd_open(pid) {
            Ok(fd) => {
                if !wait_pidfd(&fd, deadline).unwrap_or(false) {
                    all = false;
                }
            }
            // ESRCH: already gone (and reaped). Other errors: fall back to /proc.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(_) => {
                while is_alive(pid) && Instant::now() < deadline {
                    std::thread::sleep(POLL_INTERVAL);
                }
                all &= !is_alive(pid);
            }
        }
    }
    all
}

/// SIGKILL every descendant of `root` (but not `root`) without letting any of
/// them escape by forking meanwhile: the tree is first frozen with SIGSTOP,
/// re-scanned until no new member appears, and only then killed. Waits until
/// the killed processes are gone. Returns how many processes were killed.
/// The mount namespace of `pid` (the target of `/proc/<pid>/ns/mnt`, e.g. `mnt:[4026532]`).
pub(crate) fn mount_namespace(pid: i32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Kills (SIGKILL) every live process in mount namespace `ns` except `spare` (and never this
/// one), and waits for them until `timeout`. Catches what a VM's sessions left running after their
/// connection dropped: those are re-parented to init, out of reach of
/// [`kill_descendants`], yet still run inside the VM. Returns how many there were.
pub(crate) fn kill_namespace_members(ns: &str, spare: i32, timeout: Duration) -> usize {
    let own = mount_namespace(std::process::id() as i32);
    if own.as_deref() == Some(ns) {
        // Never the test process's own namespace.
        return 0;
    }
    let mut members = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if pid != spare && is_alive(pid) && mount_namespace(pid).as_deref() == Some(ns) {
                members.push(pid);
            }
        }
    }
    for &p in &members {
        let _ = signal(p, libc::SIGKILL);
    }
    wait_all_exited(&members, Instant::now() + timeout);
    members.len()
}

pub(crate) fn kill_descendants(root: i32, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    let mut frozen: BTreeSet<i32> = BTreeSet::new();
    let mut order: Vec<i32> = Vec::new();
    for _ in 0..64 {
        let fresh: Vec<i32> = descendants(root)
            .into_iter()
            .filter(|p| !frozen.contains(p))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for &p in &fresh {
            let _ = signal(p, libc::SIGSTOP);
            frozen.insert(p);
            order.push(p);
        }
        // No event tells us "has stopped" for a non-child; poll /proc briefly.
        let stop_deadline = (Instant::now() + Duration::from_secs(1)).min(deadline);
        while fresh.iter().any(
            |&p| matches!(stat(p), Some((s, _)) if s != 'T' && s != 't' && s != 'Z' && s != 'X'),
        ) && Instant::now() < stop_deadline
        {
            std::thread::sleep(POLL_INTERVAL);
        }
    }
    for &p in &order {
        let _ = signal(p, libc::SIGKILL);
    }
    wait_all_exited(&order, deadline);
    order.len()
}
