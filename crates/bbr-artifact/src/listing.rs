//! The artifacts under a directory (`bbr artifact list`, docs/artifact-format.md#listing-artifacts):
//! its direct children that are directories named `<name>_<YYYYMMDDTHHMMSSZ>`
//! ([`crate::naming::parse_artifact_dir_name`]), newest first. An artifact is complete when
//! its `metadata` reads and parses (a backup writes it after its first tar and rewrites it
//! after each; Go bbr writes it at the start, so a parseable `metadata` is the most a
//! listing can tell without [`crate::validation`]). Everything else in the directory is
//! ignored.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{ArtifactError, go_io};
use crate::files::{ArtifactTree, LocalTree};
use crate::naming::parse_artifact_dir_name;
use crate::validation::read_metadata;

/// One artifact directory found by [`list_artifacts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedArtifact {
    /// The directory's name (`redis_20240101T000000Z`).
    pub name: String,
    /// Its path (the listed directory joined with the name).
    pub path: PathBuf,
    /// The deployment (or, for a director backup, host) name: the part before the last `_`.
    pub deployment: String,
    /// The time in the name (UTC, second resolution).
    pub time: DateTime<Utc>,
    /// Sum of the sizes of the regular files directly inside it.
    pub size_bytes: u64,
    /// Why it is incomplete (no `metadata`, or one that cannot be read or parsed); `None`
    /// when it is complete.
    pub incomplete: Option<String>,
}

impl ListedArtifact {
    /// True when its `metadata` reads and parses.
    pub fn is_complete(&self) -> bool {
        self.incomplete.is_none()
    }
}

/// The artifact directories directly inside `parent`, newest first (then by name). Fails
/// only when `parent` itself cannot be listed; an artifact that cannot be inspected is
/// listed as incomplete, saying why.
pub fn list_artifacts(parent: &Path) -> Result<Vec<ListedArtifact>, ArtifactError> {
    list_artifacts_in(&LocalTree(parent.to_path_buf()), parent)
}

/// [`list_artifacts`] over any [`ArtifactTree`] (a directory, an object-store prefix);
/// `location` names it (each artifact's `path` is `location` joined with its name).
pub fn list_artifacts_in(
    tree: &dyn ArtifactTree,
    location: &Path,
) -> Result<Vec<ListedArtifact>, ArtifactError> {
    let children = tree.children().map_err(|cause| ArtifactError::ListDir {
        path: location.to_path_buf(),
        cause,
    })?;
    let mut found = Vec::new();
    for name in children {
        let Some((deployment, time)) = parse_artifact_dir_name(&name) else {
            continue;
        };
        let path = location.join(&name);
        let files = tree.child(&name);
        let (size_bytes, size_problem) = match files.files() {
            Ok(entries) => (
                entries
                    .iter()
                    .filter_map(|e| e.size)
                    .fold(0u64, u64::saturating_add),
                None,
            ),
            Err(cause) => (0, Some(format!("cannot be listed: {}", go_io(&cause)))),
        };
        let incomplete = match read_metadata(files.as_ref(), &path) {
            Ok(_) => size_problem,
            Err(ArtifactError::MetadataRead { cause, .. })
                if cause.kind() == std::io::ErrorKind::NotFound =>
            {
                Some("no metadata".to_string())
            }
            Err(ArtifactError::MetadataRead { cause, .. }) => {
                Some(format!("metadata cannot be read: {}", go_io(&cause)))
            }
            Err(ArtifactError::MetadataParse { message, .. }) => {
                Some(format!("metadata does not parse: {}", first_line(&message)))
            }
            Err(other) => Some(other.to_string()),
        };
        found.push(ListedArtifact {
            deployment: deployment.to_string(),
            time,
            name,
            path,
            size_bytes,
            incomplete,
        });
    }
    found.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
    Ok(found)
}

/// The first line of a parser message (the rest is a source snippet).
fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact_dir::ArtifactDir;
    use crate::metadata::Metadata;
    use std::fs;

    #[test]
    fn lists_artifacts_newest_first_and_flags_incomplete_ones() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let complete = ArtifactDir::create(root, "redis", "20240102T030405Z").expect("create");
        complete
            .write_metadata(&Metadata::default())
            .expect("metadata");
        fs::write(complete.file_path("redis-0-redis.tar"), vec![0u8; 1024]).expect("tar");
        let older = ArtifactDir::create(root, "my_dep", "20231231T235959Z").expect("create");
        fs::write(older.file_path("metadata"), "instances: [\n").expect("garbage");
        ArtifactDir::create(root, "redis", "20240103T000000Z").expect("no metadata");
        // Ignored: files, names that are not artifacts, impossible dates.
        fs::write(root.join("redis_20240104T000000Z"), b"a file").expect("file");
        fs::write(root.join("redis_20240102T030405Z.log"), b"log").expect("log");
        fs::create_dir(root.join("notes")).expect("dir");
        fs::create_dir(root.join("redis_20241332T000000Z")).expect("dir");

        let listed = list_artifacts(root).expect("list");
        let names: Vec<&str> = listed.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "redis_20240103T000000Z",
                "redis_20240102T030405Z",
                "my_dep_20231231T235959Z"
            ]
        );
        assert_eq!(listed[0].incomplete.as_deref(), Some("no metadata"));
        assert!(listed[1].is_complete());
        assert_eq!(listed[1].deployment, "redis");
        assert_eq!(listed[1].time.to_rfc3339(), "2024-01-02T03:04:05+00:00");
        let metadata_len = fs::metadata(complete.metadata_path()).expect("stat").len();
        assert_eq!(listed[1].size_bytes, 1024 + metadata_len);
        assert_eq!(listed[2].deployment, "my_dep");
        let why = listed[2].incomplete.as_deref().expect("incomplete");
        assert!(why.starts_with("metadata does not parse: "), "{why}");
        assert!(!why.contains('\n'), "one line: {why}");

        let err = list_artifacts(&root.join("missing")).expect_err("missing");
        assert!(
            err.to_string().starts_with("cannot list the artifacts in ")
                && err
                    .to_string()
                    .ends_with("missing: no such file or directory"),
            "{err}"
        );
    }
}
