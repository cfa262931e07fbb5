//! The deep offline check of one artifact directory (`bbr artifact validate`,
//! docs/artifact-format.md#validating-an-artifact): everything a restore checks and more,
//! with **every** problem listed instead of the first (restore's own check,
//! [`ArtifactDir::validate_structure`], stops at the first).
//!
//! [`validate_artifact`] reads `metadata` (Go bbr's schema), checks the names it lists, then
//! hashes every tar it lists and every other `*.tar` in the directory, several at once
//! (the same bounded threads as [`ArtifactDir::validate_full`]), each in one pass: the
//! stream must be a complete tar (end-of-archive present), every entry safe (the rules of
//! [`crate::safety`]), no name twice, the regular files exactly the artifact's checksum
//! keys, and each file's SHA-256 the recorded one. Each finding is a [`Problem`] naming
//! the file, the entry where there is one, and the reason; its [`ProblemKind`] has a stable
//! name for machine-readable reports.
//!
//! Files other than `*.tar` (`manifest.yml`, a Go bbr fixture's stray files) are ignored.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::artifact_dir::{
    ArtifactDir, ArtifactKind, METADATA_FILE, checksum_mismatches, file_differences, hash_each,
    listed_artifacts,
};
use crate::entry_name::EntryName;
use crate::error::{ArtifactError, go_io};
use crate::files::{ArtifactFiles, LocalArtifact};
use crate::metadata::{ArtifactMetadata, Metadata};
use crate::naming::check_listed_artifact;
use crate::safety::unsafe_entries;
use crate::tarstream::{EntryKind, TarSummary, hash_tar_reader};

/// What kind of problem a [`Problem`] is. [`ProblemKind::as_str`] is its stable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// The artifact directory does not exist, is not a directory or cannot be listed.
    Directory,
    /// There is no `metadata` file.
    MetadataMissing,
    /// `metadata` exists but cannot be read.
    MetadataUnreadable,
    /// `metadata` is not valid YAML of Go bbr's schema.
    MetadataInvalid,
    /// `metadata` gives an artifact an instance, index or job name that is not a single
    /// safe path component.
    InvalidName,
    /// `metadata` lists the same tar twice.
    DuplicateArtifact,
    /// A tar listed in `metadata` does not exist.
    TarMissing,
    /// A tar cannot be read (permissions, a directory, an I/O error).
    TarUnreadable,
    /// A tar ends early: inside a header or content, or without the end-of-archive marker.
    TarTruncated,
    /// A tar is malformed (bad header checksum, bad number field, ...).
    TarCorrupt,
    /// A tar uses a feature a restore refuses (sparse files, global PAX headers, ...).
    TarUnsupported,
    /// An entry is absolute, has a `..` component, is a link escaping the extraction
    /// directory, or is a device node or FIFO.
    UnsafeEntry,
    /// A name appears more than once in a tar.
    DuplicateEntry,
    /// A file recorded in `metadata` is not in the tar.
    MissingFile,
    /// The tar holds a file `metadata` does not record.
    UnexpectedFile,
    /// A file's SHA-256 differs from the one recorded in `metadata`.
    ChecksumMismatch,
    /// A `*.tar` in the directory that `metadata` does not list.
    UnlistedTar,
}

impl ProblemKind {
    /// The stable name (`checksum_mismatch`, `tar_truncated`, ...), as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::MetadataMissing => "metadata_missing",
            Self::MetadataUnreadable => "metadata_unreadable",
            Self::MetadataInvalid => "metadata_invalid",
            Self::InvalidName => "invalid_name",
            Self::DuplicateArtifact => "duplicate_artifact",
            Self::TarMissing => "tar_missing",
            Self::TarUnreadable => "tar_unreadable",
            Self::TarTruncated => "tar_truncated",
            Self::TarCorrupt => "tar_corrupt",
            Self::TarUnsupported => "tar_unsupported",
            Self::UnsafeEntry => "unsafe_entry",
            Self::DuplicateEntry => "duplicate_entry",
            Self::MissingFile => "missing_file",
            Self::UnexpectedFile => "unexpected_file",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::UnlistedTar => "unlisted_tar",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing wrong with an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The file it is about, relative to the artifact directory (`metadata`,
    /// `redis-0-redis-server.tar`), or `.` for the directory itself.
    pub file: String,
    /// The tar entry it is about, if any (shown as [`EntryName`] shows it).
    pub entry: Option<String>,
    /// Why, in words, naming the entry where there is one (not the file).
    pub reason: String,
}

impl Problem {
    fn new(kind: ProblemKind, file: &str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            file: file.to_string(),
            entry: None,
            reason: reason.into(),
        }
    }

    fn at(kind: ProblemKind, file: &str, entry: impl fmt::Display, reason: String) -> Self {
        Self {
            entry: Some(entry.to_string()),
            ..Self::new(kind, file, reason)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.reason)
    }
}

/// What was found for one tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarReport {
    /// The file name inside the artifact directory.
    pub name: String,
    /// The artifact of `metadata` it holds (`redis-server of redis/0`, or the custom
    /// artifact's name); `None` for a tar `metadata` does not list.
    pub artifact: Option<String>,
    /// Size in bytes, when the file exists.
    pub size: Option<u64>,
    /// Regular files it extracts to, when it could be read to the end.
    pub files: Option<usize>,
    /// Its problems, in the order found.
    pub problems: Vec<Problem>,
}

/// The outcome of [`validate_artifact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationReport {
    /// The artifact directory, as given.
    pub path: PathBuf,
    /// The tars: those `metadata` lists in its order (custom artifacts first, then per
    /// instance), then the other `*.tar` files of the directory by name.
    pub tars: Vec<TarReport>,
    /// Problems of the directory and of `metadata` itself (not of one tar).
    pub problems: Vec<Problem>,
}

impl ValidationReport {
    /// True when nothing is wrong.
    pub fn is_valid(&self) -> bool {
        self.all_problems().next().is_none()
    }

    /// Every problem: those of the directory and `metadata` first, then each tar's.
    pub fn all_problems(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .chain(self.tars.iter().flat_map(|t| t.problems.iter()))
    }

    /// The full path of the file a problem is about.
    pub fn file_path(&self, problem: &Problem) -> PathBuf {
        if problem.file == "." {
            self.path.clone()
        } else {
            self.path.join(&problem.file)
        }
    }
}

/// A tar to hash: its name, its artifact in `metadata` if listed.
struct TarJob<'m> {
    name: String,
    listed: Option<(ArtifactKind, &'m ArtifactMetadata)>,
}

/// Validates the artifact directory at `path`, listing every problem (see the module docs).
/// Never fails: an unreadable directory is itself a [`ProblemKind::Directory`] problem.
pub fn validate_artifact(path: &Path) -> ValidationReport {
    let directory_problem = |reason: String| ValidationReport {
        path: path.to_path_buf(),
        tars: Vec::new(),
        problems: vec![Problem::new(ProblemKind::Directory, ".", reason)],
    };
    match ArtifactDir::open(path) {
        Ok(_) => validate_files(&LocalArtifact(path.to_path_buf()), path),
        Err(ArtifactError::OpenDir { cause, .. }) => directory_problem(format!(
            "cannot open the artifact directory: {}",
            go_io(&cause)
        )),
        Err(_) => directory_problem("is not a directory".to_string()),
    }
}

/// Validates the artifact whose files `files` gives, listing every problem (see the module
/// docs); `location` names it in the report (a directory, or a URL such as
/// `s3://bucket/prefix/dep_20240101T000000Z`). Never fails: an artifact whose files cannot
/// be listed because it does not exist is one [`ProblemKind::Directory`] problem.
pub fn validate_files(files: &dyn ArtifactFiles, location: &Path) -> ValidationReport {
    let mut report = ValidationReport {
        path: location.to_path_buf(),
        tars: Vec::new(),
        problems: Vec::new(),
    };
    let on_disk = match files.files() {
        Ok(entries) => entries
            .into_iter()
            .map(|e| e.name)
            .filter(|n| n.ends_with(".tar"))
            .collect(),
        Err(cause) if cause.kind() == ErrorKind::NotFound => {
            report.problems.push(Problem::new(
                ProblemKind::Directory,
                ".",
                format!("cannot open the artifact directory: {}", go_io(&cause)),
            ));
            return report;
        }
        Err(cause) => {
            report.problems.push(Problem::new(
                ProblemKind::Directory,
                ".",
                format!(
                    "cannot list the artifact directory (tars it does not list are not checked): {}",
                    go_io(&cause)
                ),
            ));
            Vec::new()
        }
    };
    let metadata = match read_metadata(files, location) {
        Ok(m) => Some(m),
        Err(e) => {
            report.problems.push(metadata_problem(e));
            None
        }
    };

    let mut jobs: Vec<TarJob<'_>> = Vec::new();
    let mut listed_names: HashSet<String> = HashSet::new();
    if let Some(metadata) = &metadata {
        for (kind, artifact) in listed_artifacts(metadata) {
            if let Err(e) = check_listed_artifact(&kind) {
                report.problems.push(Problem::new(
                    ProblemKind::InvalidName,
                    METADATA_FILE,
                    format!("{e}; its tar is not checked"),
                ));
                continue;
            }
            let name = kind.file_name();
            if !listed_names.insert(name.clone()) {
                report.problems.push(Problem::new(
                    ProblemKind::DuplicateArtifact,
                    METADATA_FILE,
                    format!("lists {name} more than once (again as artifact {kind})"),
                ));
                continue;
            }
            jobs.push(TarJob {
                name,
                listed: Some((kind, artifact)),
            });
        }
    }
    let mut unlisted: Vec<String> = on_disk
        .into_iter()
        .filter(|n| !listed_names.contains(n))
        .collect();
    unlisted.sort();
    for name in unlisted {
        jobs.push(TarJob { name, listed: None });
    }

    // Stat first: a missing tar is reported as such and not hashed.
    let mut sizes: Vec<Option<u64>> = Vec::with_capacity(jobs.len());
    let mut pre: Vec<Vec<Problem>> = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let mut problems = Vec::new();
        if job.listed.is_none() && metadata.is_some() {
            problems.push(Problem::new(
                ProblemKind::UnlistedTar,
                &job.name,
                "is not listed in metadata",
            ));
        }
        match files.size(&job.name) {
            Ok(size) => sizes.push(Some(size)),
            Err(cause) => {
                sizes.push(None);
                problems.push(match (&job.listed, cause.kind()) {
                    (Some((kind, _)), ErrorKind::NotFound) => Problem::new(
                        ProblemKind::TarMissing,
                        &job.name,
                        format!("does not exist (metadata lists it for artifact {kind})"),
                    ),
                    _ => Problem::new(
                        ProblemKind::TarUnreadable,
                        &job.name,
                        format!("cannot be read: {}", go_io(&cause)),
                    ),
                });
            }
        }
        pre.push(problems);
    }
    let to_hash: Vec<usize> = (0..jobs.len()).filter(|&i| sizes[i].is_some()).collect();
    let hash = |&i: &usize| {
        let file = location.join(&jobs[i].name);
        let mut reader = files
            .open(&jobs[i].name)
            .map_err(|cause| ArtifactError::ReadFile {
                path: file.clone(),
                cause,
            })?;
        hash_tar_reader(&mut reader, &file)
    };
    let mut hashed: HashMap<usize, Result<TarSummary, ArtifactError>> = to_hash
        .iter()
        .copied()
        .zip(hash_each(&to_hash, false, hash))
        .filter_map(|(i, r)| r.map(|r| (i, r)))
        .collect();

    for (i, (job, mut problems)) in jobs.iter().zip(pre).enumerate() {
        let mut files = None;
        match hashed.remove(&i) {
            Some(Ok(summary)) => {
                files = Some(summary.file_names().len());
                problems.extend(tar_problems(job, &summary));
            }
            Some(Err(e)) => problems.push(tar_error_problem(&job.name, e)),
            None => {}
        }
        report.tars.push(TarReport {
            name: job.name.clone(),
            artifact: job.listed.as_ref().map(|(kind, _)| kind.to_string()),
            size: sizes[i],
            files,
            problems,
        });
    }
    report
}

/// Reads and parses `metadata` of `files` (errors as [`ArtifactDir::read_metadata`]'s,
/// naming `location/metadata`).
pub(crate) fn read_metadata(
    files: &dyn ArtifactFiles,
    location: &Path,
) -> Result<Metadata, ArtifactError> {
    let path = location.join(METADATA_FILE);
    let text = files
        .read_metadata()
        .and_then(|bytes| {
            String::from_utf8(bytes)
                .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e.utf8_error()))
        })
        .map_err(|cause| ArtifactError::MetadataRead {
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

fn metadata_problem(err: ArtifactError) -> Problem {
    match err {
        ArtifactError::MetadataRead { cause, .. } if cause.kind() == ErrorKind::NotFound => {
            Problem::new(
                ProblemKind::MetadataMissing,
                METADATA_FILE,
                "does not exist: the backup did not complete or the file was removed; the tars cannot be checked against it",
            )
        }
        ArtifactError::MetadataRead { cause, .. } if cause.kind() == ErrorKind::InvalidData => {
            Problem::new(
                ProblemKind::MetadataInvalid,
                METADATA_FILE,
                "failed to unmarshal metadata: it is not UTF-8 text",
            )
        }
        ArtifactError::MetadataRead { cause, .. } => Problem::new(
            ProblemKind::MetadataUnreadable,
            METADATA_FILE,
            format!("cannot be read: {}", go_io(&cause)),
        ),
        // The parser's first line says what and where; the rest is a source snippet.
        ArtifactError::MetadataParse { message, .. } => Problem::new(
            ProblemKind::MetadataInvalid,
            METADATA_FILE,
            format!(
                "failed to unmarshal metadata: {}",
                message.lines().next().unwrap_or_default()
            ),
        ),
        other => Problem::new(
            ProblemKind::MetadataUnreadable,
            METADATA_FILE,
            other.to_string(),
        ),
    }
}

/// The problem for a tar that could not be hashed to its end.
fn tar_error_problem(file: &str, err: ArtifactError) -> Problem {
    let in_entry = |entry: &Option<String>| match entry {
        Some(e) => format!(" in entry {e}"),
        None => String::new(),
    };
    let (kind, entry, reason) = match err {
        ArtifactError::ReadFile { cause, .. } => (
            ProblemKind::TarUnreadable,
            None,
            format!("cannot be read: {}", go_io(&cause)),
        ),
        ArtifactError::Truncated { entry, detail, .. } => (
            ProblemKind::TarTruncated,
            entry.clone(),
            format!("the tar is truncated{}: {detail}", in_entry(&entry)),
        ),
        ArtifactError::Corrupt { entry, detail, .. } => (
            ProblemKind::TarCorrupt,
            entry.clone(),
            format!("the tar is corrupt{}: {detail}", in_entry(&entry)),
        ),
        ArtifactError::Unsupported { entry, detail, .. } => (
            ProblemKind::TarUnsupported,
            entry.clone(),
            format!(
                "the tar has an unsupported entry{}: {detail}",
                in_entry(&entry)
            ),
        ),
        other => (ProblemKind::TarCorrupt, None, other.to_string()),
    };
    Problem {
        kind,
        file: file.to_string(),
        entry,
        reason,
    }
}

/// The problems of a tar that was read to its end: unsafe and duplicate entries, and for
/// a listed one the differences from its `metadata` entry.
fn tar_problems(job: &TarJob<'_>, summary: &TarSummary) -> Vec<Problem> {
    let file = job.name.as_str();
    let mut problems = Vec::new();
    for err in unsafe_entries(&summary.entries) {
        if let ArtifactError::UnsafeEntry { entry, reason, .. } = err {
            let text = format!("unsafe tar entry {entry}: {reason}");
            problems.push(Problem::at(ProblemKind::UnsafeEntry, file, entry, text));
        }
    }
    for (name, count) in duplicate_entries(summary) {
        problems.push(Problem::at(
            ProblemKind::DuplicateEntry,
            file,
            &name,
            format!("tar entry {name} appears {count} times (extraction keeps only the last)"),
        ));
    }
    let Some((kind, artifact)) = &job.listed else {
        return problems;
    };
    let names = summary.file_names();
    let (missing, unexpected) = file_differences(&artifact.checksums, &names);
    for name in missing {
        problems.push(Problem::at(
            ProblemKind::MissingFile,
            file,
            &name,
            format!(
                "file {name} is recorded in metadata for artifact {kind} but is not in the tar"
            ),
        ));
    }
    for name in unexpected {
        problems.push(Problem::at(
            ProblemKind::UnexpectedFile,
            file,
            &name,
            format!("file {name} is in the tar but not recorded in metadata for artifact {kind}"),
        ));
    }
    let actual = summary.file_checksums();
    for name in checksum_mismatches(&artifact.checksums, &actual) {
        let Some(found) = actual.get(&name) else {
            continue; // a missing file, reported above
        };
        let recorded = artifact.checksums.get(&name).map_or("", String::as_str);
        problems.push(Problem::at(
            ProblemKind::ChecksumMismatch,
            file,
            &name,
            format!("checksum mismatch for file {name}: metadata records {recorded}, the tar holds {found}"),
        ));
    }
    problems
}

/// Names that occur more than once among the entries (compared without `.` and empty
/// components, so `./a` and `a` are the same), with their count, in order of first
/// appearance; a directory repeated as a directory is not counted (GNU tar accepts it).
fn duplicate_entries(summary: &TarSummary) -> Vec<(EntryName, usize)> {
    let mut seen: HashMap<Vec<u8>, (usize, usize, bool)> = HashMap::new();
    for (i, e) in summary.entries.iter().enumerate() {
        let key: Vec<u8> = e
            .name
            .as_bytes()
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect::<Vec<_>>()
            .join(&b'/');
        let slot = seen.entry(key).or_insert((i, 0, true));
        slot.1 += 1;
        slot.2 &= e.kind == EntryKind::Dir;
    }
    let mut dups: Vec<(usize, usize)> = seen
        .into_values()
        .filter(|(_, count, all_dirs)| *count > 1 && !*all_dirs)
        .map(|(first, count, _)| (first, count))
        .collect();
    dups.sort_unstable();
    dups.into_iter()
        .map(|(first, count)| (summary.entries[first].name.clone(), count))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Checksums;
    use crate::testutil::RawTar;
    use sha2::{Digest, Sha256};
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn kinds(report: &ValidationReport) -> Vec<(ProblemKind, String, Option<String>)> {
        report
            .all_problems()
            .map(|p| (p.kind, p.file.clone(), p.entry.clone()))
            .collect()
    }

    fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dst = tmp.path().join(name);
        fs::create_dir(&dst).expect("mkdir");
        for entry in fs::read_dir(bbr_testkit::gobbr::fixture(name)).expect("read fixture") {
            let entry = entry.expect("entry");
            let target = dst.join(entry.file_name());
            fs::copy(entry.path(), &target).expect("copy");
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        (tmp, dst)
    }

    #[test]
    fn go_bbr_fixtures_are_valid() {
        for name in [
            "redis-backup",
            "redis-backup-with-disabled-job",
            "director-backup",
            "director-backup-integration",
        ] {
            let report = validate_artifact(&bbr_testkit::gobbr::fixture(name));
            assert!(report.is_valid(), "{name}: {:?}", kinds(&report));
            assert!(!report.tars.is_empty(), "{name}");
        }
        let report = validate_artifact(&bbr_testkit::gobbr::fixture("redis-backup"));
        type Row<'a> = (&'a str, Option<&'a str>, Option<u64>, Option<usize>);
        let tars: Vec<Row<'_>> = report
            .tars
            .iter()
            .map(|t| (t.name.as_str(), t.artifact.as_deref(), t.size, t.files))
            .collect();
        assert_eq!(
            tars,
            [
                (
                    "other-redis-0-redis-server.tar",
                    Some("redis-server of other-redis/0"),
                    Some(110_592),
                    Some(2)
                ),
                (
                    "redis-0-redis-server.tar",
                    Some("redis-server of redis/0"),
                    Some(110_592),
                    Some(2)
                ),
                (
                    "redis-1-redis-server.tar",
                    Some("redis-server of redis/1"),
                    Some(110_592),
                    Some(2)
                ),
            ]
        );
    }

    #[test]
    fn every_problem_is_listed_not_just_the_first() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = ArtifactDir::create(tmp.path(), "dep", "20240101T000000Z").expect("create");
        let tar = RawTar::new()
            .dir("./")
            .file("./a", b"a")
            .file("./changed", b"new content")
            .file("./extra", b"e")
            .file("../evil", b"x")
            .entry("./mem", b'3', b"", "")
            .file("./twice", b"1")
            .file("twice", b"2")
            .finish();
        fs::write(dir.file_path("custom.tar"), tar).expect("write tar");
        let ok = RawTar::new().dir("./").file("./f", b"f").finish();
        fs::write(dir.file_path("web-0-app.tar"), &ok).expect("write tar");
        fs::write(dir.file_path("stray.tar"), &ok).expect("write tar");
        fs::write(dir.file_path("manifest.yml"), b"not checked").expect("manifest");
        let mut meta = Metadata::default();
        let sums = |list: &[(&str, &[u8])]| -> Checksums {
            list.iter()
                .map(|(k, v)| (EntryName::from(*k), sha(v)))
                .collect()
        };
        meta.add_custom_artifact(ArtifactMetadata::new(
            "custom",
            sums(&[
                ("./a", b"a"),
                ("./changed", b"old content"),
                ("./gone", b"g"),
                ("../evil", b"x"),
                ("./twice", b"1"),
                ("twice", b"2"),
            ]),
        ));
        meta.add_instance_artifact(
            "web",
            "0",
            ArtifactMetadata::new("app", sums(&[("./f", b"f")])),
        );
        meta.add_instance_artifact("db", "0", ArtifactMetadata::new("pg", Checksums::new()));
        meta.add_instance_artifact("../up", "0", ArtifactMetadata::new("x", Checksums::new()));
        dir.write_metadata(&meta).expect("metadata");

        let report = validate_artifact(dir.path());
        assert!(!report.is_valid());
        let custom = |kind, entry: &str| (kind, "custom.tar".to_string(), Some(entry.to_string()));
        assert_eq!(
            kinds(&report),
            [
                (ProblemKind::InvalidName, "metadata".to_string(), None),
                custom(ProblemKind::UnsafeEntry, "../evil"),
                custom(ProblemKind::UnsafeEntry, "./mem"),
                custom(ProblemKind::DuplicateEntry, "./twice"),
                custom(ProblemKind::MissingFile, "./gone"),
                custom(ProblemKind::UnexpectedFile, "./extra"),
                custom(ProblemKind::ChecksumMismatch, "./changed"),
                (ProblemKind::TarMissing, "db-0-pg.tar".to_string(), None),
                (ProblemKind::UnlistedTar, "stray.tar".to_string(), None),
            ]
        );
        let reasons: Vec<String> = report.all_problems().map(ToString::to_string).collect();
        assert!(reasons[0].contains("instance name '../up'"), "{reasons:?}");
        assert!(reasons[1].contains("'..'"), "{reasons:?}");
        assert!(reasons[2].contains("character device 0,0"), "{reasons:?}");
        assert!(reasons[3].contains("2 times"), "{reasons:?}");
        assert!(
            reasons[6].contains(&sha(b"old content")) && reasons[6].contains(&sha(b"new content")),
            "{reasons:?}"
        );
        assert_eq!(
            reasons[7],
            "db-0-pg.tar: does not exist (metadata lists it for artifact pg of db/0)"
        );
        assert_eq!(
            report.file_path(report.all_problems().nth(7).expect("8th")),
            dir.file_path("db-0-pg.tar")
        );
        // The good tar is listed, with its size and files, and no problem.
        let web = &report.tars[1];
        assert_eq!(web.name, "web-0-app.tar");
        assert_eq!((web.size, web.files), (Some(ok.len() as u64), Some(1)));
        assert!(web.problems.is_empty());
        // The stray tar was still read through.
        assert_eq!(report.tars[3].name, "stray.tar");
        assert_eq!(report.tars[3].files, Some(1));
        assert_eq!(report.tars[3].artifact, None);
    }

    #[test]
    fn truncated_unreadable_and_duplicate_listing_are_named() {
        let (_tmp, path) = copy_fixture("redis-backup");
        let tar = path.join("redis-0-redis-server.tar");
        let bytes = fs::read(&tar).expect("read");
        fs::write(&tar, &bytes[..bytes.len() - 1024]).expect("truncate");
        let unreadable = path.join("redis-1-redis-server.tar");
        fs::remove_file(&unreadable).expect("rm");
        fs::create_dir(&unreadable).expect("a directory in its place");
        let mut meta = ArtifactDir::open(&path)
            .and_then(|d| d.read_metadata())
            .expect("metadata");
        let again = meta.instances[0].clone();
        meta.instances.push(again);
        ArtifactDir::open(&path)
            .and_then(|d| d.write_metadata(&meta))
            .expect("rewrite");

        let report = validate_artifact(&path);
        let found: Vec<(ProblemKind, String)> = report
            .all_problems()
            .map(|p| (p.kind, p.file.clone()))
            .collect();
        assert_eq!(
            found,
            [
                (ProblemKind::DuplicateArtifact, "metadata".to_string()),
                (
                    ProblemKind::TarTruncated,
                    "redis-0-redis-server.tar".to_string()
                ),
                (
                    ProblemKind::TarUnreadable,
                    "redis-1-redis-server.tar".to_string()
                ),
            ]
        );
        let texts: Vec<String> = report.all_problems().map(ToString::to_string).collect();
        assert!(
            texts[0].contains("lists other-redis-0-redis-server.tar more than once"),
            "{texts:?}"
        );
        assert!(texts[1].contains("end-of-archive"), "{texts:?}");
        assert!(
            texts[2].ends_with("cannot be read: is a directory"),
            "{texts:?}"
        );
        assert_eq!(report.tars[1].files, None);
    }

    #[test]
    fn without_metadata_the_tars_are_still_read_through() {
        let (_tmp, path) = copy_fixture("redis-backup");
        fs::remove_file(path.join("metadata")).expect("rm");
        let tar = path.join("redis-1-redis-server.tar");
        let mut bytes = fs::read(&tar).expect("read");
        bytes.truncate(600);
        fs::write(&tar, &bytes).expect("write");
        let report = validate_artifact(&path);
        let found: Vec<(ProblemKind, String)> = report
            .all_problems()
            .map(|p| (p.kind, p.file.clone()))
            .collect();
        assert_eq!(
            found,
            [
                (ProblemKind::MetadataMissing, "metadata".to_string()),
                (
                    ProblemKind::TarTruncated,
                    "redis-1-redis-server.tar".to_string()
                ),
            ]
        );
        assert_eq!(report.tars.len(), 3);

        fs::write(path.join("metadata"), "instances: [\n").expect("garbage");
        let report = validate_artifact(&path);
        let first = report.all_problems().next().expect("a problem");
        assert_eq!(first.kind, ProblemKind::MetadataInvalid);
        assert!(
            first.reason.starts_with("failed to unmarshal metadata: "),
            "{first}"
        );
        assert!(!first.reason.contains('\n'), "one line: {first}");
    }

    #[test]
    fn a_missing_directory_is_one_problem() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let report = validate_artifact(&tmp.path().join("nope"));
        assert_eq!(
            kinds(&report),
            [(ProblemKind::Directory, ".".to_string(), None)]
        );
        let p = report.all_problems().next().expect("problem");
        assert_eq!(report.file_path(p), tmp.path().join("nope"));
        assert!(p.reason.ends_with("no such file or directory"), "{p}");
        let file = tmp.path().join("file");
        fs::write(&file, b"x").expect("write");
        assert_eq!(
            validate_artifact(&file).problems[0].reason,
            "is not a directory"
        );
    }
}
