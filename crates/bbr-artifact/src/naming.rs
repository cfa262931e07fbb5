//! File and directory names of an artifact (docs/artifact-format.md#layout,
//! docs/script-contract.md#backup-one-restore-all), and the one rule every
//! name that becomes part of a local or remote path must pass: [`check_safe_name`].
//!
//! Instance group, job, deployment and artifact names come from the director, from
//! release authors' `metadata` scripts and from an artifact's `metadata` file; bbr joins
//! them into file names (`<group>-<index>-<job>.tar`, `<deployment>_<time>`,
//! `/var/vcap/store/bbr-backup/<artifact>/`). Each must be a single, ordinary path
//! component, or a hostile source could make bbr write outside the artifact directory.

use std::fmt;

/// Why a name is not a single safe path component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeReason {
    /// The empty string.
    Empty,
    /// `.` or `..`.
    Dots,
    /// Contains `/`.
    Slash,
    /// Contains NUL or another control character (newlines would also forge log lines).
    Control,
}

impl fmt::Display for UnsafeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnsafeReason::Empty => "it is empty",
            UnsafeReason::Dots => "it is a relative directory reference",
            UnsafeReason::Slash => "it contains '/'",
            UnsafeReason::Control => "it contains a control character",
        })
    }
}

/// A name refused by [`check_safe_name`]: what it names, the name (control characters
/// escaped) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} '{}' {origin} is not a safe file name ({reason})", .name.escape_debug())]
pub struct UnsafeName {
    /// What the name names (`instance group name`, `job name`, ...).
    pub what: String,
    /// The name as received.
    pub name: String,
    /// Where it came from (`reported by the director`, ...).
    pub origin: String,
    /// Why it was refused.
    pub reason: UnsafeReason,
}

/// Why `name` is not a single safe path component, if it is not one: empty, `.`, `..`,
/// containing `/`, NUL or any other control character.
pub fn unsafe_reason(name: &str) -> Option<UnsafeReason> {
    if name.is_empty() {
        Some(UnsafeReason::Empty)
    } else if name == "." || name == ".." {
        Some(UnsafeReason::Dots)
    } else if name.contains('/') {
        Some(UnsafeReason::Slash)
    } else if name.chars().any(char::is_control) {
        Some(UnsafeReason::Control)
    } else {
        None
    }
}

/// Checks that `name` can be used as one path component; `what` names the thing
/// (`instance group name`) and `origin` where it came from (`reported by the director`)
/// for the error.
pub fn check_safe_name(what: &str, name: &str, origin: &str) -> Result<(), UnsafeName> {
    match unsafe_reason(name) {
        None => Ok(()),
        Some(reason) => Err(UnsafeName {
            what: what.to_string(),
            name: name.to_string(),
            origin: origin.to_string(),
            reason,
        }),
    }
}

/// Checks the names an artifact's `metadata` file gives one of its artifacts (instance
/// name and index, artifact name) before they are joined into a tar file name.
pub fn check_listed_artifact(kind: &crate::artifact_dir::ArtifactKind) -> Result<(), UnsafeName> {
    use crate::artifact_dir::ArtifactKind;
    const ORIGIN: &str = "in the artifact's metadata";
    match kind {
        ArtifactKind::Instance { name, index, job } => {
            check_safe_name("instance name", name, ORIGIN)?;
            check_safe_name("instance index", index, ORIGIN)?;
            check_safe_name("artifact name", job, ORIGIN)
        }
        ArtifactKind::Custom { name } => check_safe_name("custom artifact name", name, ORIGIN),
    }
}

/// The tar of a default artifact: `<group>-<index>-<job>.tar`.
pub fn default_artifact_file(group: &str, index: &str, job: &str) -> String {
    format!("{group}-{index}-{job}.tar")
}

/// The tar of a custom (named) artifact: `<name>.tar`.
pub fn custom_artifact_file(name: &str) -> String {
    format!("{name}.tar")
}

/// The artifact directory: `<deployment>_<timestamp>` (timestamp from
/// [`crate::timefmt::artifact_timestamp`]; director mode passes the host as deployment).
pub fn artifact_dir_name(deployment: &str, timestamp: &str) -> String {
    format!("{deployment}_{timestamp}")
}

/// Splits an artifact directory name `<name>_<YYYYMMDDTHHMMSSZ>` into the name and the
/// time (UTC) it encodes; `None` when `dir_name` is not one: no `_`, a suffix that is not
/// exactly 8 digits, `T`, 6 digits, `Z`, an impossible date or time, or an unsafe or empty
/// name. The name is what comes before the last `_` (deployment names may hold `_`).
pub fn parse_artifact_dir_name(dir_name: &str) -> Option<(&str, chrono::DateTime<chrono::Utc>)> {
    let (name, stamp) = dir_name.rsplit_once('_')?;
    let b = stamp.as_bytes();
    let shape = b.len() == 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z';
    if !shape || unsafe_reason(name).is_some() {
        return None;
    }
    let time =
        chrono::NaiveDateTime::parse_from_str(stamp, crate::timefmt::ARTIFACT_TIMESTAMP_LAYOUT)
            .ok()?;
    Some((name, time.and_utc()))
}

/// The name of a backup-one-restore-all artifact: `<job>-<release>-backup-one-restore-all`.
pub fn backup_one_restore_all_name(job: &str, release: &str) -> String {
    format!("{job}-{release}-backup-one-restore-all")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_ordinary_components_are_safe() {
        for good in [
            "redis",
            "redis-server",
            "a.b",
            "...",
            "é",
            "a b",
            "a%2Fb",
            ".hidden",
        ] {
            assert_eq!(unsafe_reason(good), None, "{good}");
        }
        assert_eq!(unsafe_reason(""), Some(UnsafeReason::Empty));
        assert_eq!(unsafe_reason("."), Some(UnsafeReason::Dots));
        assert_eq!(unsafe_reason(".."), Some(UnsafeReason::Dots));
        assert_eq!(unsafe_reason("../../evil"), Some(UnsafeReason::Slash));
        assert_eq!(unsafe_reason("a/b"), Some(UnsafeReason::Slash));
        assert_eq!(unsafe_reason("/"), Some(UnsafeReason::Slash));
        assert_eq!(unsafe_reason("a\0b"), Some(UnsafeReason::Control));
        assert_eq!(unsafe_reason("a\nb"), Some(UnsafeReason::Control));
        assert_eq!(unsafe_reason("a\u{7f}"), Some(UnsafeReason::Control));
    }

    #[test]
    fn refusals_name_the_thing_and_its_origin() {
        let e = check_safe_name(
            "instance group name",
            "../../evil",
            "reported by the director",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "instance group name '../../evil' reported by the director is not a safe file name (it contains '/')"
        );
        let e = check_safe_name("job name", "a\nb", "found on x/0").unwrap_err();
        assert!(e.to_string().contains("'a\\nb'"), "{e}");
        assert!(check_safe_name("job name", "redis", "here").is_ok());
    }

    #[test]
    fn artifact_dir_names_parse_back() {
        let (name, time) = parse_artifact_dir_name("my_dep_20170123T141002Z").expect("parses");
        assert_eq!(name, "my_dep");
        assert_eq!(time.to_rfc3339(), "2017-01-23T14:10:02+00:00");
        assert_eq!(
            artifact_dir_name(name, &crate::timefmt::artifact_timestamp(time.into())),
            "my_dep_20170123T141002Z"
        );
        for bad in [
            "nodate",
            "dep_",
            "_20170123T141002Z",
            "dep_20170123T141002",
            "dep_20170123T141002Zx",
            "dep_2017012xT141002Z",
            "dep_20171323T141002Z",
            "dep_20170123T250000Z",
            "dep_+0170123T141002Z",
            "dep_20170123t141002Z",
            "dep_20170123T141002Z.log",
        ] {
            assert_eq!(parse_artifact_dir_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            default_artifact_file("redis", "0", "redis-server"),
            "redis-0-redis-server.tar"
        );
        assert_eq!(
            default_artifact_file("bosh", "0", "bosh"),
            "bosh-0-bosh.tar"
        );
        assert_eq!(
            custom_artifact_file("redis-server-redis-test-backup-one-restore-all"),
            "redis-server-redis-test-backup-one-restore-all.tar"
        );
        assert_eq!(
            artifact_dir_name("my-dep", "20170123T141002Z"),
            "my-dep_20170123T141002Z"
        );
        assert_eq!(
            backup_one_restore_all_name("redis-server", "redis-test"),
            "redis-server-redis-test-backup-one-restore-all"
        );
    }
}
