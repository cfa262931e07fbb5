//! The artifacts under a directory (`bbr artifact list`, docs/artifact-format.md#listing-artifacts):
//! its direct children that are directories named `<name>_<YYYYMMDDTHHMMSSZ>`
//! ([`crate::naming::parse_artifact_dir_name`]), newest first. An artifact is complete when
//! its `metadata` reads and parses (a backup writes it after its first tar and rewrites it
//! after each; Go bbr writes it at the start, so a parseable `metadata` is the most a
//! listing can tell without [`crate::validation`]). Everything else in the directory is
//! ignored.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::artifact_dir::ArtifactDir;
use crate::error::{ArtifactError, go_io};
use crate::naming::parse_artifact_dir_name;

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
    let list_err = |cause| ArtifactError::ListDir {
        path: parent.to_path_buf(),
        cause,
    };
    let mut found = Vec::new();
    for entry in fs::read_dir(parent).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // not UTF-8: not a name bbr writes
        };
        let Some((deployment, time)) = parse_artifact_dir_name(&name) else {
            continue;
        };
        let path = entry.path();
        if !fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let (size_bytes, size_problem) = match dir_size(&path) {
            Ok(size) => (size, None),
            Err(cause) => (0, Some(format!("cannot be listed: {}", go_io(&cause)))),
        };
        let incomplete = match ArtifactDir::open(&path).and_then(|d| d.read_metadata()) {
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

/// Sum of the sizes of the regular files directly inside `dir` (symlinks not followed).
fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0u64;
    for entry in fs::read_dir(dir)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            total = total.saturating_add(meta.len());
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Metadata;

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
