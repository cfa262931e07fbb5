//! Machine-wide login users for the VMs (`vcap` with password-less sudo,
//! `nosudo` without any sudo rights, or custom ones).
//!
//! Users are created once per machine, serialised across test processes by
//! an exclusive lock on `/tmp/bbr-testkit/users.lock` (concurrent `useradd`
//! calls would otherwise fail on the `/etc/passwd` lock).

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::registry::state_dir;
use crate::write_atomic;

/// Users this process already checked (user name, sudo).
static ENSURED: Mutex<Option<HashSet<(String, bool)>>> = Mutex::new(None);

/// The sudoers drop-in the testkit manages for `user`.
pub fn sudoers_path(user: &str) -> PathBuf {
    PathBuf::from(format!("/etc/sudoers.d/90-{user}"))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.len() <= 32
}

fn field_of(file: &str, user: &str, index: usize) -> Option<String> {
    let text = fs::read_to_string(file).ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&user))
        .and_then(|f| f.get(index).map(|s| (*s).to_owned()))
}

/// Runs `cmd`, turning a non-zero exit into an error carrying the command and its stderr.
pub fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{cmd:?}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Take the machine-wide exclusive lock that serialises user-database
/// changes (`useradd`, `usermod`, `userdel`, `groupadd`) among all processes
/// using the testkit. Held until the returned file is dropped.
pub fn lock_user_database() -> io::Result<std::fs::File> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .open(state_dir()?.join("users.lock"))?;
    lock.lock()?;
    Ok(lock)
}

/// Make sure login user `name` exists (home directory, `/bin/bash`, password
/// hash `*`, so key login works with `UsePAM no` while password login and
/// `sudo` with a password are impossible) and that its sudo rights match
/// `sudo`: with `true`, `/etc/sudoers.d/90-<name>` grants `NOPASSWD:ALL`;
/// with `false` there must be no such file (an error otherwise, since other
/// tests may rely on it).
pub fn ensure_user(name: &str, sudo: bool) -> io::Result<()> {
    if !valid_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad user name {name:?}"),
        ));
    }
    let key = (name.to_owned(), sudo);
    if ENSURED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_default()
        .contains(&key)
    {
        return Ok(());
    }

    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .open(state_dir()?.join("users.lock"))?;
    lock.lock()?;

    if field_of("/etc/passwd", name, 0).is_none() {
        run(Command::new("useradd").args(["-m", "-s", "/bin/bash", "-p", "*", name]))?;
    }
    // useradd's default hash is '!', which sshd (UsePAM no) treats as locked.
    if field_of("/etc/shadow", name, 1).is_some_and(|h| h.starts_with('!')) {
        run(Command::new("usermod").args(["-p", "*", name]))?;
    }
    let sudoers = sudoers_path(name);
    if sudo {
        let want = format!("{name} ALL=(ALL) NOPASSWD:ALL\n");
        if fs::read_to_string(&sudoers).ok().as_deref() != Some(want.as_str()) {
            write_atomic(&sudoers, want.as_bytes(), 0o440)?;
        }
    } else if sudoers.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "user {name} must not have sudo rights but {} exists",
                sudoers.display()
            ),
        ));
    }
    drop(lock);

    ENSURED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_default()
        .insert(key);
    Ok(())
}
