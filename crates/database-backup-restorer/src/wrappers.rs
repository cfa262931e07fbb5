//! The BOSH job's `bin/backup` and `bin/restore` wrappers.
//!
//! `database-backup-restorer --install-wrappers DIR` writes `DIR/bin/backup` and
//! `DIR/bin/restore` (mode 0755). Each is a bash script that runs this binary (by the
//! absolute path it was installed from) with `--backup` / `--restore` and passes its own
//! arguments on, quoted (`"$@"`, where the original's `$*` split paths with spaces):
//!
//! ```sh
//! /var/vcap/jobs/database-backup-restorer/bin/backup --config cfg.json --artifact-file "$BBR_ARTIFACT_DIRECTORY/db"
//! ```
//!
//! Client discovery needs no environment variables (see [`crate::discovery`]); variables the
//! caller exports (`PG_DUMP_17_PATH`, `BBR_DB_CLIENT_DIRS`, ...) pass through.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::flags::Action;

use bbr_gocompat::shell_quote as sh_quote;

/// The script text for `action`, running `exe`.
pub fn script(action: Action, exe: &Path) -> String {
    let a = action.as_str();
    format!(
        "#!/usr/bin/env bash\n\
         # bin/{a}: written by `database-backup-restorer --install-wrappers`.\n\
         # usage: {a} --config CONFIG --artifact-file FILE\n\
         set -e\n\
         exec {} --{a} \"$@\"\n",
        sh_quote(&exe.to_string_lossy())
    )
}

/// Writes `dir/bin/backup` and `dir/bin/restore` running `exe`; returns their paths.
pub fn install(dir: &Path, exe: &Path) -> io::Result<Vec<PathBuf>> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    let mut out = Vec::new();
    for action in [Action::Backup, Action::Restore] {
        let p = bin.join(action.as_str());
        let tmp = bin.join(format!(".{}.tmp", action.as_str()));
        std::fs::write(&tmp, script(action, exe))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &p)?;
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_quote_the_path_and_args() {
        let s = script(Action::Restore, Path::new("/opt/it's here/dbr"));
        assert!(s.starts_with("#!/usr/bin/env bash\n"));
        assert!(s.contains("exec '/opt/it'\\''s here/dbr' --restore \"$@\"\n"));
    }

    #[test]
    fn install_writes_executables() {
        let t = tempfile::tempdir().expect("tmp");
        let files = install(t.path(), Path::new("/x/dbr")).expect("install");
        assert_eq!(files.len(), 2);
        for f in files {
            let m = std::fs::metadata(&f).expect("meta");
            assert_eq!(m.permissions().mode() & 0o777, 0o755);
        }
    }
}
