//! The local artifact directory (docs/artifact-format.md#layout): creating it for a
//! backup, opening it for a restore, reading and atomically writing its `metadata`, and
//! validating it before any remote action (docs/artifact-format.md#what-restore-checks).
//!
//! Validation compares each tar with `metadata` the way the remote side records it
//! (`find . -type f | xargs shasum`): the regular files a tar extracts to (hardlinks
//! count as the file they link to; symlinks, directories and devices do not) must be
//! exactly the checksum keys of its artifact. Artifacts are checked custom ones first,
//! then per instance, in metadata order, like Go bbr.
//!
//! These checks stop at the first problem, as a restore must. `bbr artifact validate`
//! ([`crate::validation`]) shares their parallel hashing and comparisons but lists every
//! problem.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::entry_name::EntryName;
use crate::error::ArtifactError;
use crate::metadata::{ArtifactMetadata, Checksums, Metadata};
use crate::naming::{artifact_dir_name, custom_artifact_file, default_artifact_file};
use crate::safety::check_entries_safe;
use crate::tarstream::{TarEntryInfo, TarSummary, hash_tar_file, scan_tar_file};

/// Name of the metadata file inside the artifact directory.
pub const METADATA_FILE: &str = "metadata";
const METADATA_TMP: &str = "metadata.tmp";
/// Most tars hashed concurrently by [`ArtifactDir::validate_full`].
const MAX_HASH_THREADS: usize = 4;

/// An artifact directory on the local disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactDir {
    path: PathBuf,
}

/// Which artifact of `metadata` a tar belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    /// A default artifact of an instance (`instances[].artifacts[]`).
    Instance {
        /// Instance group.
        name: String,
        /// Instance index.
        index: String,
        /// Job (artifact) name.
        job: String,
    },
    /// A custom (backup-one-restore-all) artifact (`custom_artifacts[]`).
    Custom {
        /// Artifact name.
        name: String,
    },
}

impl ArtifactKind {
    /// The tar file name: `<name>-<index>-<job>.tar` or `<name>.tar`.
    pub fn file_name(&self) -> String {
        match self {
            Self::Instance { name, index, job } => default_artifact_file(name, index, job),
            Self::Custom { name } => custom_artifact_file(name),
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Instance { name, index, job } => write!(f, "{job} of {name}/{index}"),
            Self::Custom { name } => f.write_str(name),
        }
    }
}

/// What [`ArtifactDir::validate_structure`] found for one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactCheck {
    /// The artifact.
    pub kind: ArtifactKind,
    /// Tar file name inside the directory.
    pub file_name: String,
    /// Full path of the tar file.
    pub path: PathBuf,
    /// Size of the tar file in bytes.
    pub size_bytes: u64,
    /// Number of tar entries (directories, links and files).
    pub entry_count: usize,
    /// Number of regular files after extraction (= checksum keys in metadata).
    pub file_count: usize,
    /// The entries whose mode has a set-uid or set-gid bit, with their header offsets:
    /// a restore sends their headers rewritten without those bits
    /// ([`setid_patches`](crate::tarstream::setid_patches)).
    pub setid_entries: Vec<TarEntryInfo>,
}

/// The artifacts listed in `metadata`, custom ones first, then per instance.
pub fn listed_artifacts(metadata: &Metadata) -> Vec<(ArtifactKind, &ArtifactMetadata)> {
    let custom = metadata.custom_artifacts.iter().map(|a| {
        (
            ArtifactKind::Custom {
                name: a.name.clone(),
            },
            a,
        )
    });
    let instances = metadata.instances.iter().flat_map(|i| {
        i.artifacts.iter().map(move |a| {
            (
                ArtifactKind::Instance {
                    name: i.name.clone(),
                    index: i.index.clone(),
                    job: a.name.clone(),
                },
                a,
            )
        })
    });
    custom.chain(instances).collect()
}

impl ArtifactDir {
    /// Creates `<parent>/<deployment>_<timestamp>` with mode 0700 (plain `mkdir`: the
    /// directory must not exist yet). `parent` must be an existing directory.
    pub fn create(
        parent: &Path,
        deployment: &str,
        timestamp: &str,
    ) -> Result<ArtifactDir, ArtifactError> {
        match fs::metadata(parent) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(ArtifactError::NotADirectory {
                    path: parent.to_path_buf(),
                });
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(ArtifactError::ParentMissing {
                    path: parent.to_path_buf(),
                });
            }
            Err(e) => {
                return Err(ArtifactError::CreateDir {
                    path: parent.to_path_buf(),
                    cause: e,
                });
            }
        }
        let path = parent.join(artifact_dir_name(deployment, timestamp));
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|cause| ArtifactError::CreateDir {
                path: path.clone(),
                cause,
            })?;
        Ok(ArtifactDir { path })
    }

    /// Opens an existing artifact directory (nothing is read yet).
    pub fn open(path: &Path) -> Result<ArtifactDir, ArtifactError> {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(ArtifactDir {
                path: path.to_path_buf(),
            }),
            Ok(_) => Err(ArtifactError::OpenNotDir {
                path: path.to_path_buf(),
            }),
            Err(cause) => Err(ArtifactError::OpenDir {
                path: path.to_path_buf(),
                cause,
            }),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<dir>/metadata`.
    pub fn metadata_path(&self) -> PathBuf {
        self.path.join(METADATA_FILE)
    }

    /// `<dir>/<name>`.
    pub fn file_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates a new file (mode 0644, must not exist) inside the directory, e.g. a tar
    /// being downloaded or `manifest.yml`.
    pub fn create_file(&self, name: &str) -> Result<File, ArtifactError> {
        let path = self.file_path(name);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(|cause| ArtifactError::CreateFile { path, cause })
    }

    /// Reads and parses `metadata`.
    pub fn read_metadata(&self) -> Result<Metadata, ArtifactError> {
        let path = self.metadata_path();
        let text = fs::read_to_string(&path).map_err(|cause| ArtifactError::MetadataRead {
            path: path.clone(),
            cause,
        })?;
        Metadata::parse(&text).map_err(|e| match e {
            ArtifactError::MetadataParse { message, .. } => ArtifactError::MetadataParse {
                path: Some(path),
                message,
            },
            other => other,
        })
    }

    /// Writes `metadata` atomically: `metadata.tmp` (mode 0644), fsync, rename over
    /// `metadata`, fsync of the directory.
    pub fn write_metadata(&self, metadata: &Metadata) -> Result<(), ArtifactError> {
        let tmp = self.file_path(METADATA_TMP);
        let target = self.metadata_path();
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |cause| ArtifactError::MetadataWrite { path, cause }
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(write_err(&tmp))?;
        file.write_all(metadata.to_yaml().as_bytes())
            .map_err(write_err(&tmp))?;
        file.sync_all().map_err(write_err(&tmp))?;
        drop(file);
        fs::rename(&tmp, &target).map_err(write_err(&target))?;
        File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(write_err(&self.path))?;
        Ok(())
    }

    /// Cheap validation before any remote action: `metadata` parses; every artifact it
    /// lists has its tar; each tar is a complete, well-formed tar (headers walked,
    /// content seeked over, nothing hashed) whose regular files are exactly the
    /// artifact's checksum keys; every entry passes the safety checks (no device node or
    /// FIFO, nothing outside the root). Set-uid/set-gid entries are listed in
    /// [`ArtifactCheck::setid_entries`].
    ///
    /// Errors are prefixed `Could not validate backup: ` (unreadable metadata or tar)
    /// or `Backup is corrupted: ` (content does not match), and name the file.
    pub fn validate_structure(&self) -> Result<Vec<ArtifactCheck>, ArtifactError> {
        let metadata = self
            .read_metadata()
            .map_err(ArtifactError::could_not_validate)?;
        self.validate_structure_of(&metadata)
            .map(|checks| checks.into_iter().map(|(check, _)| check).collect())
    }

    fn validate_structure_of<'m>(
        &self,
        metadata: &'m Metadata,
    ) -> Result<Vec<(ArtifactCheck, &'m ArtifactMetadata)>, ArtifactError> {
        let mut checks = Vec::new();
        for (kind, artifact) in listed_artifacts(metadata) {
            crate::naming::check_listed_artifact(&kind).map_err(|e| {
                let path = Some(self.metadata_path());
                ArtifactError::MetadataParse {
                    path,
                    message: e.to_string(),
                }
                .could_not_validate()
            })?;
            let file_name = kind.file_name();
            let path = self.file_path(&file_name);
            let summary = scan_tar_file(&path).map_err(classify_tar_error)?;
            let file_count = check_tar_matches(&path, &kind, artifact, &summary)?;
            checks.push((
                ArtifactCheck {
                    kind,
                    file_name,
                    path,
                    size_bytes: summary.total_bytes,
                    entry_count: summary.entries.len(),
                    file_count,
                    setid_entries: summary
                        .entries
                        .iter()
                        .filter(|e| e.has_setid())
                        .cloned()
                        .collect(),
                },
                artifact,
            ));
        }
        Ok(checks)
    }

    /// [`validate_structure`](Self::validate_structure), then hashes every tar (several
    /// at once) and compares with `metadata`. A difference gives
    /// `Backup is corrupted: checksum mismatch in <tar> for [<entries>]`.
    pub fn validate_full(&self) -> Result<(), ArtifactError> {
        let metadata = self
            .read_metadata()
            .map_err(ArtifactError::could_not_validate)?;
        let checks = self.validate_structure_of(&metadata)?;
        let paths: Vec<&Path> = checks
            .iter()
            .map(|(check, _)| check.path.as_path())
            .collect();
        let results = hash_tars(&paths, true);
        for ((check, artifact), result) in checks.iter().zip(results) {
            let Some(result) = result else {
                continue; // not hashed because an earlier tar failed; that error wins
            };
            let summary = result.map_err(classify_tar_error)?;
            let actual = summary.file_checksums();
            let mut entries: Vec<EntryName> = checksum_mismatches(&artifact.checksums, &actual)
                .into_iter()
                .chain(
                    actual
                        .keys()
                        .filter(|name| !artifact.checksums.contains_key(*name))
                        .cloned(),
                )
                .collect();
            if !entries.is_empty() {
                entries.sort();
                return Err(ArtifactError::ChecksumMismatch {
                    file: check.path.clone(),
                    entries: entries.iter().map(EntryName::to_string).collect(),
                });
            }
        }
        // Only reachable without error when every tar was hashed.
        Ok(())
    }
}

/// Hashes the tars at `paths` ([`hash_tar_file`]) on up to [`MAX_HASH_THREADS`] threads
/// (bounded by the CPUs), each thread taking the next tar when it is done with one. The
/// result at index `i` is that of `paths[i]`; with `fail_fast`, tars not yet started when
/// one fails are not hashed (`None`).
pub(crate) fn hash_tars(
    paths: &[&Path],
    fail_fast: bool,
) -> Vec<Option<Result<TarSummary, ArtifactError>>> {
    hash_each(paths, fail_fast, |path| hash_tar_file(path))
}

/// [`hash_tars`] with any hashing function: `hash(&items[i])` on the same bounded threads.
pub(crate) fn hash_each<T: Sync>(
    paths: &[T],
    fail_fast: bool,
    hash: impl Fn(&T) -> Result<TarSummary, ArtifactError> + Sync,
) -> Vec<Option<Result<TarSummary, ArtifactError>>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_HASH_THREADS)
        .min(paths.len());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<TarSummary, ArtifactError>>>> =
        Mutex::new((0..paths.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else {
                        break;
                    };
                    let result = hash(path);
                    let failed = result.is_err();
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(result);
                    }
                    if failed && fail_fast {
                        // Let the others finish their current tar; take no more.
                        next.store(paths.len(), Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// The names recorded in `expected` whose checksum in `actual` differs or is absent.
pub(crate) fn checksum_mismatches(expected: &Checksums, actual: &Checksums) -> Vec<EntryName> {
    expected
        .iter()
        .filter(|(name, sum)| actual.get(*name) != Some(*sum))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The checksum keys of `expected` absent from `files` (sorted), and the `files` that are
/// not checksum keys.
pub(crate) fn file_differences(
    expected: &Checksums,
    files: &[EntryName],
) -> (Vec<EntryName>, Vec<EntryName>) {
    let missing = expected
        .keys()
        .filter(|k| files.binary_search(k).is_err())
        .cloned()
        .collect();
    let unexpected = files
        .iter()
        .filter(|f| !expected.contains_key(*f))
        .cloned()
        .collect();
    (missing, unexpected)
}

/// Unreadable tar → `Could not validate backup`; malformed tar → `Backup is corrupted`.
fn classify_tar_error(err: ArtifactError) -> ArtifactError {
    match err {
        ArtifactError::ReadFile { .. } => err.could_not_validate(),
        other => other.corrupted(),
    }
}

/// Safety of every entry, then regular files == checksum keys. Returns the file count.
fn check_tar_matches(
    path: &Path,
    kind: &ArtifactKind,
    artifact: &ArtifactMetadata,
    summary: &TarSummary,
) -> Result<usize, ArtifactError> {
    check_entries_safe(&summary.entries).map_err(|e| e.with_file(path).corrupted())?;
    let files = summary.file_names();
    let (missing, unexpected) = file_differences(&artifact.checksums, &files);
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(ArtifactError::EntriesMismatch {
            file: path.to_path_buf(),
            artifact: kind.to_string(),
            missing: missing.iter().map(EntryName::to_string).collect(),
            unexpected: unexpected.iter().map(EntryName::to_string).collect(),
        });
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::RawTar;
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;

    fn fixtures() -> PathBuf {
        bbr_testkit::gobbr::dir()
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    /// Copies a fixture artifact into a temp dir (for tests that modify it).
    fn copy_fixture(name: &str) -> (tempfile::TempDir, ArtifactDir) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dst = tmp.path().join(name);
        fs::create_dir(&dst).expect("mkdir");
        for entry in fs::read_dir(fixtures().join(name)).expect("read fixture") {
            let entry = entry.expect("entry");
            let target = dst.join(entry.file_name());
            fs::copy(entry.path(), &target).expect("copy");
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        let dir = ArtifactDir::open(&dst).expect("open");
        (tmp, dir)
    }

    /// An artifact with one custom artifact made of `tar`, listed with `checksums`.
    fn custom_artifact(
        tar: &[u8],
        checksums: &[(&str, &[u8])],
    ) -> (tempfile::TempDir, ArtifactDir) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = ArtifactDir::create(tmp.path(), "dep", "20240101T000000Z").expect("create");
        let mut meta = Metadata::default();
        let sums: Checksums = checksums
            .iter()
            .map(|(k, v)| (EntryName::from(*k), sha(v)))
            .collect();
        meta.add_custom_artifact(ArtifactMetadata::new("custom", sums));
        dir.write_metadata(&meta).expect("write metadata");
        fs::write(dir.file_path("custom.tar"), tar).expect("write tar");
        (tmp, dir)
    }

    #[test]
    fn every_fixture_validates() {
        for name in [
            "redis-backup",
            "redis-backup-with-disabled-job",
            "director-backup",
            "director-backup-integration",
        ] {
            let dir = ArtifactDir::open(&fixtures().join(name)).expect("open");
            let checks = dir
                .validate_structure()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!checks.is_empty());
            for c in &checks {
                assert!(c.path.is_file());
                assert_eq!(c.size_bytes, fs::metadata(&c.path).expect("stat").len());
            }
            dir.validate_full()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let dir = ArtifactDir::open(&fixtures().join("redis-backup")).expect("open");
        let checks = dir.validate_structure().expect("structure");
        let names: Vec<_> = checks.iter().map(|c| c.file_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "other-redis-0-redis-server.tar",
                "redis-0-redis-server.tar",
                "redis-1-redis-server.tar"
            ]
        );
        assert_eq!(checks[0].entry_count, 4);
        assert_eq!(checks[0].file_count, 2);
        assert_eq!(checks[0].size_bytes, 110_592);
    }

    #[test]
    fn create_makes_a_0700_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = ArtifactDir::create(tmp.path(), "my-dep", "20170123T141002Z").expect("create");
        assert_eq!(dir.path(), tmp.path().join("my-dep_20170123T141002Z"));
        let mode = fs::metadata(dir.path()).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(dir.metadata_path(), dir.path().join("metadata"));
        assert_eq!(dir.file_path("a.tar"), dir.path().join("a.tar"));

        let err = ArtifactDir::create(tmp.path(), "my-dep", "20170123T141002Z").expect_err("clash");
        assert!(
            err.to_string()
                .starts_with("failed creating artifact directory: mkdir ")
                && err
                    .to_string()
                    .ends_with("my-dep_20170123T141002Z: file exists"),
            "{err}"
        );

        let missing = tmp.path().join("nope");
        let err = ArtifactDir::create(&missing, "d", "t").expect_err("missing parent");
        assert_eq!(
            err.to_string(),
            format!("{}: no such file or directory", missing.display())
        );

        let file = tmp.path().join("file");
        fs::write(&file, b"x").expect("write");
        let err = ArtifactDir::create(&file, "d", "t").expect_err("not a dir");
        assert_eq!(
            err.to_string(),
            format!("artifact path {} is not a directory", file.display())
        );
    }

    #[test]
    fn open_errors_match_go() {
        let err = ArtifactDir::open(Path::new("i-am-not-here")).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "Could not open backup: failed opening the directory: stat i-am-not-here: no such file or directory"
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("f");
        fs::write(&file, b"").expect("write");
        let err = ArtifactDir::open(&file).expect_err("file");
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }

    #[test]
    fn metadata_write_is_atomic_and_0644() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = ArtifactDir::create(tmp.path(), "d", "t").expect("create");
        let err = dir.read_metadata().expect_err("absent");
        assert!(
            err.to_string()
                .starts_with("failed to read metadata: open ")
                && err
                    .to_string()
                    .ends_with("metadata: no such file or directory"),
            "{err}"
        );
        let src = fs::read_to_string(fixtures().join("redis-backup/metadata")).expect("read");
        let meta = Metadata::parse(&src).expect("parse");
        dir.write_metadata(&meta).expect("write");
        assert!(!dir.file_path("metadata.tmp").exists());
        let mode = fs::metadata(dir.metadata_path())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o022, 0, "not group/world writable");
        assert_eq!(dir.read_metadata().expect("read back"), meta);
        assert_eq!(
            fs::read_to_string(dir.metadata_path()).expect("text"),
            format!("{src}\n")
        );
        // Overwrite.
        let mut meta2 = meta.clone();
        meta2.backup_activity.finish_time = Some("2017/01/23 14:10:31 UTC".into());
        dir.write_metadata(&meta2).expect("rewrite");
        assert_eq!(dir.read_metadata().expect("read back"), meta2);

        fs::write(dir.metadata_path(), "instances: [\n").expect("garbage");
        let err = dir.read_metadata().expect_err("garbage");
        assert!(
            err.to_string().starts_with(&format!(
                "failed to unmarshal metadata from {}: ",
                dir.metadata_path().display()
            )),
            "{err}"
        );
        let err = dir.validate_structure().expect_err("garbage");
        assert!(
            err.to_string()
                .starts_with("Could not validate backup: failed to unmarshal metadata"),
            "{err}"
        );

        let mut f = dir.create_file("x.tar").expect("create file");
        f.write_all(b"x").expect("write");
        assert!(dir.create_file("x.tar").is_err());
    }

    #[test]
    fn missing_tar_is_reported() {
        let (_tmp, dir) = copy_fixture("redis-backup");
        fs::remove_file(dir.file_path("redis-1-redis-server.tar")).expect("rm");
        let err = dir.validate_structure().expect_err("missing tar");
        let msg = err.to_string();
        assert!(
            msg.starts_with("Could not validate backup: Error reading artifact file ")
                && msg.ends_with("redis-1-redis-server.tar: no such file or directory"),
            "{msg}"
        );
        assert!(!err.is_corruption());
        assert!(dir.validate_full().is_err());
    }

    #[test]
    fn truncated_and_flipped_tars_are_corrupted() {
        let original =
            fs::read(fixtures().join("redis-backup/redis-0-redis-server.tar")).expect("read");
        let cases: [(&str, usize, &str); 4] = [
            (
                "cut in a header",
                512 + 100,
                "inside a header (100 of 512 bytes)",
            ),
            (
                "cut in content",
                3 * 512 + 1000,
                "./redis-server/appendonly.aof",
            ),
            (
                "missing end blocks",
                original.len() - 1024,
                "end-of-archive",
            ),
            ("one end block", original.len() - 512, "one of the two"),
        ];
        for (what, len, needle) in cases {
            let (_tmp, dir) = copy_fixture("redis-backup");
            fs::write(dir.file_path("redis-0-redis-server.tar"), &original[..len]).expect("write");
            for err in [
                dir.validate_structure().expect_err(what),
                dir.validate_full().expect_err(what),
            ] {
                let msg = err.to_string();
                assert!(err.is_corruption(), "{what}: {msg}");
                assert!(msg.starts_with("Backup is corrupted: "), "{what}: {msg}");
                assert!(msg.contains("redis-0-redis-server.tar"), "{what}: {msg}");
                assert!(msg.contains(needle), "{what}: {msg}");
            }
        }

        // A flipped content byte passes the structure check but not the full one.
        let (_tmp, dir) = copy_fixture("redis-backup");
        let mut flipped = original.clone();
        flipped[151 * 512 + 512 + 10] ^= 0x20; // inside ./redis-server/dump.rdb
        fs::write(dir.file_path("redis-0-redis-server.tar"), &flipped).expect("write");
        dir.validate_structure().expect("structure is fine");
        let err = dir.validate_full().expect_err("flipped");
        assert_eq!(
            err.to_string(),
            format!(
                "Backup is corrupted: checksum mismatch in {} for [./redis-server/dump.rdb]",
                dir.file_path("redis-0-redis-server.tar").display()
            )
        );

        // A corrupted header.
        let mut bad_header = original.clone();
        bad_header[2 * 512 + 5] ^= 0x01;
        fs::write(dir.file_path("redis-0-redis-server.tar"), &bad_header).expect("write");
        let err = dir.validate_structure().expect_err("header");
        assert!(
            err.to_string().contains("header checksum mismatch"),
            "{err}"
        );
    }

    #[test]
    fn extra_and_missing_files_are_named() {
        let tar = RawTar::new()
            .dir("./")
            .file("./a", b"a")
            .file("./extra", b"e")
            .finish();
        let (_tmp, dir) = custom_artifact(&tar, &[("./a", b"a"), ("./gone", b"g")]);
        let err = dir.validate_structure().expect_err("mismatch");
        assert_eq!(
            err.to_string(),
            format!(
                "Backup is corrupted: {} does not match the metadata of artifact custom: missing files [./gone], unexpected files [./extra]",
                dir.file_path("custom.tar").display()
            )
        );
        assert!(dir.validate_full().is_err());
    }

    #[test]
    fn extra_file_in_a_fixture_tar_is_named() {
        let (_tmp, dir) = copy_fixture("director-backup-integration");
        let tar = RawTar::new()
            .dir("./")
            .file("./backup", b"this is a backup\n")
            .file("./sneaky", b"x")
            .finish();
        fs::write(dir.file_path("bosh-0-bosh.tar"), tar).expect("write");
        let err = dir.validate_structure().expect_err("extra");
        let msg = err.to_string();
        assert!(msg.contains("bosh-0-bosh.tar"), "{msg}");
        assert!(msg.contains("artifact bosh of bosh/0"), "{msg}");
        assert!(msg.contains("unexpected files [./sneaky]"), "{msg}");
        assert!(msg.contains("missing files []"), "{msg}");
    }

    #[test]
    fn unsafe_entries_are_refused() {
        for (tar, entry, needle) in [
            (
                RawTar::new().file("../evil", b"x").finish(),
                "../evil",
                "'..'",
            ),
            (
                RawTar::new().file("/etc/cron.d/evil", b"x").finish(),
                "/etc/cron.d/evil",
                "absolute",
            ),
            (
                RawTar::new().symlink("./link", "../../etc").finish(),
                "./link",
                "escapes",
            ),
            (
                RawTar::new()
                    .symlink("./d", "/etc")
                    .file("./d/passwd", b"x")
                    .finish(),
                "./d",
                "absolute",
            ),
        ] {
            let (_tmp, dir) = custom_artifact(&tar, &[(entry, b"x")]);
            let err = dir.validate_structure().expect_err(entry);
            let msg = err.to_string();
            assert!(
                msg.starts_with("Backup is corrupted: unsafe tar entry "),
                "{msg}"
            );
            assert_eq!(err.entry(), Some(entry), "{msg}");
            assert!(msg.contains("custom.tar") && msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn symlinks_and_hardlinks_inside_the_root_are_accepted() {
        let tar = RawTar::new()
            .dir("./")
            .file("./data", b"payload")
            .symlink("./latest", "data")
            .hardlink("./copy", "./data")
            .finish();
        let (_tmp, dir) = custom_artifact(&tar, &[("./data", b"payload"), ("./copy", b"payload")]);
        let checks = dir.validate_structure().expect("structure");
        assert_eq!(checks[0].entry_count, 4);
        assert_eq!(checks[0].file_count, 2);
        dir.validate_full().expect("full");
    }

    #[test]
    fn listed_artifacts_order_is_custom_first() {
        let mut meta = Metadata::default();
        meta.add_instance_artifact("redis", "0", ArtifactMetadata::new("job", Checksums::new()));
        meta.add_custom_artifact(ArtifactMetadata::new("named", Checksums::new()));
        let files: Vec<String> = listed_artifacts(&meta)
            .iter()
            .map(|(k, _)| k.file_name())
            .collect();
        assert_eq!(files, ["named.tar", "redis-0-job.tar"]);
    }

    #[test]
    fn empty_metadata_has_nothing_to_validate() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = ArtifactDir::create(tmp.path(), "d", "t").expect("create");
        dir.write_metadata(&Metadata::default()).expect("write");
        assert!(dir.validate_structure().expect("structure").is_empty());
        dir.validate_full().expect("full");
    }
}
