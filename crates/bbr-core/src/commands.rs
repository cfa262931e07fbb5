//! The remote command vocabulary: every shell command bbr runs as root on a VM. Stemcells
//! and release scripts rely on these being plain `sudo` + coreutils/findutils/tar commands.
//!
//! Each command is a [`RootCommand`]: the shell text to run as root. A transport may run it
//! through `sudo -n` on a channel of its own ([`RootCommand::with_sudo`]) or hand it to a
//! root process it already has on the VM. Unlike Go bbr, `sudo -n` is used everywhere so
//! that a missing password-less sudo rule fails at once instead of hanging on a prompt.
//!
//! The type, the script launch ([`run_script`], [`kill_script`]) and shell quoting live in
//! `bbr-remote` (what a transport must know) and are re-exported here; the commands that name
//! the domain's paths are built here.

use crate::ARTIFACT_DIRECTORY;
use bbr_artifact::EntryName;

/// POSIX shell quoting (from `bbr-gocompat`), the root-command type and the script launch.
pub use bbr_remote::{RootCommand, ScriptLaunch, kill_script, run_script, shell_quote};

/// Lists every file under the jobs' `bin/bbr` directories.
pub fn find_scripts() -> RootCommand {
    RootCommand::shell_text("find /var/vcap/jobs/*/bin/bbr/* -type f")
}

/// Checks whether the artifact directory exists (exit 0 means it does).
pub fn stat_artifact_directory() -> RootCommand {
    RootCommand::program(format!("stat {ARTIFACT_DIRECTORY}"))
}

/// Creates one job's artifact directory.
pub fn make_directory(dir: &str) -> RootCommand {
    RootCommand::program(format!("mkdir -p {}", shell_quote(dir)))
}

/// Human-readable disk usage of a directory (first field, e.g. `3.0M`).
pub fn human_size(dir: &str) -> RootCommand {
    RootCommand::program(format!("du -sh {}", shell_quote(dir)))
}

/// Lists the regular files under `dir` as NUL-terminated `<size> <relative path>` records;
/// reads metadata only, never file content.
pub fn list_files(dir: &str) -> RootCommand {
    RootCommand::program(format!(
        "find {} -type f -printf '%s %P\\0'",
        shell_quote(dir)
    ))
}

/// Streams `dir` as an uncompressed tar to stdout (entries `./`, `./file`, ...).
pub fn archive(dir: &str) -> RootCommand {
    RootCommand::program(format!("tar -C {} -c .", shell_quote(dir)))
}

/// Extracts a tar read from stdin into `dir`.
pub fn extract(dir: &str) -> RootCommand {
    RootCommand::shell_text(format!("tar -C {} -x", shell_quote(dir)))
}

/// Removes a directory tree.
pub fn remove(dir: &str) -> RootCommand {
    RootCommand::program(format!("rm -rf {}", shell_quote(dir)))
}

/// Parses the output of [`list_files`] into `(./path, size)` pairs.
pub fn parse_file_list(out: &[u8]) -> Vec<(EntryName, u64)> {
    out.split(|b| *b == 0)
        .filter(|r| !r.is_empty())
        .filter_map(|r| {
            // Names are bytes (any but NUL), compared with the tar's byte for byte.
            let space = r.iter().position(|b| *b == b' ')?;
            let size = std::str::from_utf8(&r[..space]).ok()?.parse().ok()?;
            let mut name = b"./".to_vec();
            name.extend_from_slice(&r[space + 1..]);
            Some((EntryName::from(name), size))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_command_lines() {
        assert_eq!(
            find_scripts().with_sudo(),
            "sudo -n sh -c 'find /var/vcap/jobs/*/bin/bbr/* -type f'"
        );
        assert_eq!(
            stat_artifact_directory().with_sudo(),
            "sudo -n stat /var/vcap/store/bbr-backup"
        );
        assert_eq!(
            list_files("/a b").with_sudo(),
            r"sudo -n find '/a b' -type f -printf '%s %P\0'"
        );
        assert_eq!(archive("/d").with_sudo(), "sudo -n tar -C /d -c .");
        assert_eq!(
            extract("/a b").with_sudo(),
            r"sudo -n sh -c 'tar -C '\''/a b'\'' -x'"
        );
        assert_eq!(extract("/a b").shell(), "tar -C '/a b' -x");
        assert_eq!(remove("/d").shell(), "rm -rf /d");
    }

    #[test]
    fn file_list_parsing() {
        let out = b"5 a/b\x0012 c d\x00";
        assert_eq!(
            parse_file_list(out),
            vec![("./a/b".into(), 5), ("./c d".into(), 12)]
        );
    }

    #[test]
    fn file_list_keeps_non_utf8_names_byte_for_byte() {
        let out = b"3 caf\xe9\x001 d/\xff x\x00";
        assert_eq!(
            parse_file_list(out),
            vec![
                (EntryName::from(b"./caf\xe9".to_vec()), 3),
                (EntryName::from(b"./d/\xff x".to_vec()), 1),
            ]
        );
    }
}
