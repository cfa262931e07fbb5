//! File and directory names of an artifact (`bbr.md` §4.1, §3.11).

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

/// The name of a backup-one-restore-all artifact: `<job>-<release>-backup-one-restore-all`.
pub fn backup_one_restore_all_name(job: &str, release: &str) -> String {
    format!("{job}-{release}-backup-one-restore-all")
}

#[cfg(test)]
mod tests {
    use super::*;

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
