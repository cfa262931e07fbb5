//! Machine-wide Linux accounts for the temporary SSH users that
//! `POST /deployments/<d>/ssh` (`command: setup`) creates, the way a BOSH
//! agent does: `useradd -m -s /bin/bash -p '*'`, supplementary group
//! `bosh_sshers` (plus `vcap` when that group exists), and password-less
//! sudo through `/etc/sudoers.d/bosh_sshers`
//! (`%bosh_sshers ALL=(ALL) NOPASSWD:ALL`).
//!
//! The account is machine-wide but a login only works on the VMs whose
//! `authorized_keys/<user>` holds the key, so "the user exists on VM X" is
//! decided per VM by [`bbr_testkit::Vm::add_authorized_key`].
//!
//! Every account created is recorded in
//! `/tmp/bbr-testkit/director-sim-users-<pid>`; the first simulator started
//! in a process deletes the accounts recorded by processes that died
//! without dropping their simulator. The group and the sudoers drop-in are
//! shared by all simulators and stay.

use bbr_testkit::users::run;
use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, Once};

/// Group that grants password-less sudo to the temporary users.
pub const SSHERS_GROUP: &str = "bosh_sshers";

/// The sudoers drop-in for [`SSHERS_GROUP`] (no dot in the name: sudo
/// ignores such files).
pub const SUDOERS_FILE: &str = "/etc/sudoers.d/bosh_sshers";

const STATE_DIR: &str = "/tmp/bbr-testkit";
const RECORD_PREFIX: &str = "director-sim-users-";

/// Serialises this process's changes to its record file.
static RECORD: Mutex<()> = Mutex::new(());

/// Whether `name` is acceptable to `useradd` (and what BOSH would accept).
pub fn valid_user_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.len() <= 32
}

/// Whether a Linux account called `name` exists (`/etc/passwd`).
pub fn user_exists(name: &str) -> bool {
    line_field_exists("/etc/passwd", name)
}

fn group_exists(name: &str) -> bool {
    line_field_exists("/etc/group", name)
}

fn line_field_exists(file: &str, name: &str) -> bool {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(':').next() == Some(name))
}

fn record_path() -> PathBuf {
    PathBuf::from(STATE_DIR).join(format!("{RECORD_PREFIX}{}", std::process::id()))
}

fn record_change(name: &str, add: bool) -> io::Result<()> {
    let _guard = RECORD.lock().unwrap_or_else(|e| e.into_inner());
    let path = record_path();
    let mut names: BTreeSet<String> = fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    if add {
        names.insert(name.to_owned());
    } else {
        names.remove(name);
    }
    if names.is_empty() {
        let _ = fs::remove_file(&path);
        return Ok(());
    }
    fs::create_dir_all(STATE_DIR)?;
    let mut body = String::new();
    for n in &names {
        body.push_str(n);
        body.push('\n');
    }
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o644)
        .open(&tmp)?;
    f.write_all(body.as_bytes())?;
    drop(f);
    fs::rename(tmp, path)
}

/// Make sure the group and the sudoers drop-in exist. Call with the user
/// database lock held.
fn ensure_group_and_sudoers() -> io::Result<()> {
    if !group_exists(SSHERS_GROUP) {
        run(Command::new("groupadd").arg(SSHERS_GROUP))?;
    }
    let want = format!("%{SSHERS_GROUP} ALL=(ALL) NOPASSWD:ALL\n");
    if fs::read_to_string(SUDOERS_FILE).ok().as_deref() != Some(want.as_str()) {
        let tmp = PathBuf::from(format!("{SUDOERS_FILE}.{}.tmp", std::process::id()));
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o440)
            .open(&tmp)?;
        f.write_all(want.as_bytes())?;
        drop(f);
        fs::rename(&tmp, SUDOERS_FILE)?;
    }
    Ok(())
}

/// Create the temporary login user `name` (see the [module docs](self)).
/// Returns `false` if the account already existed (it is then left as it
/// is and not recorded as ours).
pub fn create_temp_user(name: &str) -> io::Result<bool> {
    if !valid_user_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid user name {name:?}"),
        ));
    }
    sweep_stale_once();
    let _lock = bbr_testkit::users::lock_user_database()?;
    ensure_group_and_sudoers()?;
    if user_exists(name) {
        return Ok(false);
    }
    let mut groups = SSHERS_GROUP.to_owned();
    if group_exists("vcap") {
        groups.push_str(",vcap");
    }
    // Record first: a crash between useradd and the record would leak.
    record_change(name, true)?;
    let created = run(Command::new("useradd").args([
        "-m",
        "-s",
        "/bin/bash",
        "-p",
        "*",
        "-G",
        &groups,
        name,
    ]));
    if let Err(e) = created {
        let _ = record_change(name, false);
        return Err(e);
    }
    Ok(true)
}

/// Delete the account `name` and its home directory (`userdel -f -r`:
/// also while processes of the user still run). A missing account is not
/// an error.
pub fn delete_temp_user(name: &str) -> io::Result<()> {
    let _lock = bbr_testkit::users::lock_user_database()?;
    if user_exists(name) {
        // userdel -r exits 12 when the home directory cannot be removed
        // fully; the account is gone then, which is what matters.
        let out = Command::new("userdel").args(["-f", "-r", name]).output()?;
        if !out.status.success() && user_exists(name) {
            return Err(io::Error::other(format!(
                "userdel {name} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    record_change(name, false)
}

fn pid_alive(pid: i32) -> bool {
    bbr_testkit::procs::is_alive(pid)
}

/// Delete accounts recorded by processes that no longer exist (once per
/// process).
fn sweep_stale_once() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| {
        let Ok(entries) = fs::read_dir(STATE_DIR) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(RECORD_PREFIX))
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            if pid == std::process::id() as i32 || pid_alive(pid) {
                continue;
            }
            let users = fs::read_to_string(entry.path()).unwrap_or_default();
            let Ok(_lock) = bbr_testkit::users::lock_user_database() else {
                return;
            };
            for user in users.lines().filter(|u| valid_user_name(u)) {
                if user_exists(user) {
                    let _ = Command::new("userdel").args(["-f", "-r", user]).output();
                }
            }
            let _ = fs::remove_file(entry.path());
        }
    });
}
