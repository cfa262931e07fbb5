//! What [`crate::validation`] and [`crate::listing`] read, behind two small traits, so the
//! same checks run on a local directory and on an object store (whose implementation lives
//! with the store client, in bbr-cli; this crate stays synchronous and store-agnostic):
//!
//! - [`ArtifactFiles`]: the files of one artifact: their names (and sizes), the size of one,
//!   one opened as a reader, `metadata`'s bytes. [`LocalArtifact`] is a directory.
//! - [`ArtifactTree`]: a directory of artifacts: its child directories, each as an
//!   [`ArtifactFiles`]. [`LocalTree`] is a directory.
//!
//! Errors are [`std::io::Error`]s: [`ErrorKind::NotFound`](std::io::ErrorKind::NotFound)
//! means "does not exist" (a missing tar, a missing `metadata`, a missing artifact); any
//! other error's text is shown as the reason.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::artifact_dir::METADATA_FILE;
use crate::artifact_file::ArtifactFileReader;

/// One file directly inside an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Its name (no `/`).
    pub name: String,
    /// Its size when it is a regular file (an object is always one); `None` for anything
    /// else (a directory or a symlink in a local artifact).
    pub size: Option<u64>,
}

/// The files of one artifact (see the [module docs](self)). `Sync`: tars are hashed on
/// several threads at once, each opening its own reader.
pub trait ArtifactFiles: Sync {
    /// Every file directly inside the artifact, in any order.
    fn files(&self) -> io::Result<Vec<FileEntry>>;
    /// The size of `name`; `NotFound` when it does not exist.
    fn size(&self, name: &str) -> io::Result<u64>;
    /// `name` opened for reading from its start.
    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>>;
    /// All of `metadata` (`NotFound` when it does not exist).
    fn read_metadata(&self) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(METADATA_FILE)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// A directory of artifacts (see the [module docs](self)).
pub trait ArtifactTree {
    /// The names of its child directories (all of them; the caller picks those named like
    /// an artifact).
    fn children(&self) -> io::Result<Vec<String>>;
    /// The child directory `name` as an artifact.
    fn child(&self, name: &str) -> Box<dyn ArtifactFiles + '_>;
}

/// An artifact directory on this machine.
#[derive(Debug, Clone)]
pub struct LocalArtifact(pub PathBuf);

impl ArtifactFiles for LocalArtifact {
    fn files(&self) -> io::Result<Vec<FileEntry>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.0)? {
            let entry = entry?;
            // symlink_metadata: a symlink is not a regular file here (not followed).
            let size = entry
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            found.push(FileEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                size,
            });
        }
        Ok(found)
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        fs::metadata(self.0.join(name)).map(|m| m.len())
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        // Read-ahead and page-cache hints, as restore's own hashing.
        Ok(Box::new(ArtifactFileReader::new(File::open(
            self.0.join(name),
        )?)))
    }

    fn read_metadata(&self) -> io::Result<Vec<u8>> {
        fs::read(self.0.join(METADATA_FILE))
    }
}

/// A directory on this machine holding artifact directories.
#[derive(Debug, Clone)]
pub struct LocalTree(pub PathBuf);

impl LocalTree {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl ArtifactTree for LocalTree {
    fn children(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.path())? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: not a name bbr writes
            };
            // fs::metadata follows a symlink to a directory.
            if fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn child(&self, name: &str) -> Box<dyn ArtifactFiles + '_> {
        Box::new(LocalArtifact(self.0.join(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::{ProblemKind, validate_artifact, validate_files};
    use std::collections::BTreeMap;

    /// An artifact in memory, as an object store would give it.
    struct InMemory(BTreeMap<String, Vec<u8>>);

    impl ArtifactFiles for InMemory {
        fn files(&self) -> io::Result<Vec<FileEntry>> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no objects"));
            }
            Ok(self
                .0
                .iter()
                .map(|(name, data)| FileEntry {
                    name: name.clone(),
                    size: Some(data.len() as u64),
                })
                .collect())
        }
        fn size(&self, name: &str) -> io::Result<u64> {
            self.0
                .get(name)
                .map(|d| d.len() as u64)
                .ok_or_else(|| io::ErrorKind::NotFound.into())
        }
        fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
            let data = self.0.get(name).ok_or(io::ErrorKind::NotFound)?;
            Ok(Box::new(io::Cursor::new(data.clone())))
        }
    }

    fn fixture() -> (BTreeMap<String, Vec<u8>>, PathBuf) {
        let dir = bbr_testkit::gobbr::fixture("redis-backup");
        let files = fs::read_dir(&dir)
            .expect("fixture")
            .map(|e| {
                let e = e.expect("entry");
                let name = e.file_name().to_string_lossy().into_owned();
                (name, fs::read(e.path()).expect("read"))
            })
            .collect();
        (files, dir)
    }

    #[test]
    fn other_file_sources_get_the_same_report_as_a_directory() {
        let (mut files, dir) = fixture();
        let local = validate_artifact(&dir);
        assert!(local.is_valid(), "{:?}", local.problems);
        let remote = validate_files(&InMemory(files.clone()), &dir);
        assert_eq!(remote, local);

        let tar = "redis-0-redis-server.tar".to_string();
        let bytes = files.get_mut(&tar).expect("tar");
        let last = bytes.len() - 2048; // inside content, before the end-of-archive blocks
        let at = bytes[..last]
            .iter()
            .rposition(|b| *b != 0)
            .expect("content");
        bytes[at] ^= 1;
        files.remove("metadata");
        let shown = Path::new("s3://b/p/redis_20240101T000000Z");
        let report = validate_files(&InMemory(files), shown);
        let found: Vec<(ProblemKind, String)> = report
            .all_problems()
            .map(|p| (p.kind, p.file.clone()))
            .collect();
        assert_eq!(found[0], (ProblemKind::MetadataMissing, "metadata".into()));
        assert_eq!(
            report.file_path(report.all_problems().next().expect("problem")),
            shown.join("metadata")
        );

        let empty = validate_files(&InMemory(BTreeMap::new()), shown);
        assert_eq!(empty.problems[0].kind, ProblemKind::Directory);
        assert_eq!(
            empty.problems[0].reason,
            "cannot open the artifact directory: no objects"
        );
    }
}
