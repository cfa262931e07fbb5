//! Test support for the bbr re-implementation. Never shipped (`publish = false`).
//!
//! The centrepiece is [`Vm`]: a real OpenSSH `sshd`, running as root on its
//! own loopback address `127.A.B.C` and a free port, inside a private mount
//! namespace where a per-VM host directory is bind-mounted on `/var/vcap`.
//! bbr talks to it exactly as to a BOSH instance (SSH, `sudo`, scripts under
//! `/var/vcap/jobs/<job>/bin/bbr/`, artifacts under
//! `/var/vcap/store/bbr-backup`), while the test inspects and prepares the
//! VM's files directly on the host with [`Vm::vcap_path`],
//! [`Vm::install_script`], [`Vm::read`] and friends.
//!
//! ```no_run
//! use bbr_testkit::{Vm, VmOptions};
//!
//! let vm = Vm::start(VmOptions::default())?;
//! vm.install_script("redis", "backup", "#!/bin/sh\necho hi > \"$BBR_ARTIFACT_DIRECTORY/dump\"\n")?;
//! let out = vm.ssh("sudo -n ls /var/vcap/jobs")?;
//! assert_eq!(String::from_utf8_lossy(&out.stdout), "redis\n");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Requirements: root, `openssh-server`, `openssh-client`, `sudo`,
//! `util-linux` (`unshare`, `mount`), `passwd` (`useradd`); see
//! `.ci/install-deps.sh`.
//!
//! Environment: `BBR_TESTKIT_KEEP=1` keeps VM state directories and client
//! keys after drop (their paths are printed to stderr); processes are always
//! stopped.
//!
//! Modules:
//! - [`vm`]: [`Vm`], [`VmOptions`];
//! - [`gobbr`]: the artifacts written by Go bbr, read from the shared folder;
//! - [`keys`]: [`KeyType`], [`ClientKey`];
//! - [`users`]: machine-wide login users (`vcap`, `nosudo`);
//! - [`registry`]: cross-process address/port allocation and leftover sweeping;
//! - [`procs`]: PID-based process helpers;
//! - [`wait`]: waiting for a condition, always with a deadline;
//! - [`stores`]: real object-store servers (SeaweedFS S3, Azurite, fake-gcs-server) with
//!   independent verifier clients, for `bbr-storage` tests.

#![warn(missing_docs)]

pub mod gobbr;
pub mod keys;
pub mod procs;
pub mod registry;
pub mod stores;
pub mod users;
pub mod vm;
pub mod wait;

pub use keys::{ClientKey, KeyType};
pub use vm::{DEFAULT_USER, NOSUDO_USER, Vm, VmOptions};

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether `BBR_TESTKIT_KEEP` asks to keep temporary directories.
pub(crate) fn keep_requested() -> bool {
    std::env::var("BBR_TESTKIT_KEEP").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Write `body` to a hidden temporary file beside `path` (sudo ignores
/// sudoers.d names containing a dot) and rename it into place with `mode`.
pub(crate) fn write_atomic(path: &Path, body: &[u8], mode: u32) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(body)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
