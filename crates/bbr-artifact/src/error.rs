//! The error type of this crate.
//!
//! Every variant carries the path, artifact or tar entry it is about, and its
//! `Display` text starts with Go bbr's verbatim fragment where one exists (`Backup is
//! corrupted`, `Could not open backup: ...`, `failed to unmarshal metadata`, ...; see
//! docs/log-lines.md#error-messages and docs/artifact-format.md#what-restore-checks).
//! The validation entry points of [`ArtifactDir`](crate::ArtifactDir) return messages
//! that are already prefixed with `Backup is corrupted: ` or `Could not validate backup: `,
//! so callers print them as they are.
//!
//! `Display` is always the complete message, wrapped causes included (Go's
//! `outer: inner: innermost`); the causes are kept in `cause` fields rather than
//! exposed through `Error::source`, so that printing an error chain (e.g. anyhow's
//! `{:#}`) does not repeat them.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong with a local artifact, its metadata or a tar stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// The metadata text is not valid YAML or does not have the Go bbr schema.
    #[error("failed to unmarshal metadata{}: {message}", from_path(.path))]
    MetadataParse {
        /// The metadata file, when the text came from one.
        path: Option<PathBuf>,
        /// What is wrong, including the parser's position.
        message: String,
    },
    /// The metadata file could not be read.
    #[error("failed to read metadata: open {}: {}", .path.display(), go_io(.cause))]
    MetadataRead {
        /// The metadata file.
        path: PathBuf,
        /// The underlying I/O error.
        cause: io::Error,
    },
    /// The metadata file could not be written (or atomically renamed into place).
    #[error("failed to write metadata {}: {}", .path.display(), go_io(.cause))]
    MetadataWrite {
        /// The file being written.
        path: PathBuf,
        /// The underlying I/O error.
        cause: io::Error,
    },
    /// The parent directory given for a new artifact does not exist.
    #[error("{}: no such file or directory", .path.display())]
    ParentMissing {
        /// The missing parent directory.
        path: PathBuf,
    },
    /// The parent directory given for a new artifact is not a directory.
    #[error("artifact path {} is not a directory", .path.display())]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// `mkdir` of the artifact directory failed (typically: it already exists).
    #[error("failed creating artifact directory: mkdir {}: {}", .path.display(), go_io(.cause))]
    CreateDir {
        /// The directory that could not be created.
        path: PathBuf,
        /// The underlying I/O error.
        cause: io::Error,
    },
    /// The artifact directory to open does not exist or cannot be inspected.
    #[error(
        "Could not open backup: failed opening the directory: stat {}: {}",
        .path.display(),
        go_io(.cause)
    )]
    OpenDir {
        /// The artifact directory.
        path: PathBuf,
        /// The underlying I/O error.
        cause: io::Error,
    },
    /// The artifact path to open exists but is not a directory.
    #[error(
        "Could not open backup: failed opening the directory: {} is not a directory",
        .path.display()
    )]
    OpenNotDir {
        /// The offending path.
        path: PathBuf,
    },
    /// A file inside the artifact directory could not be created.
    #[error("Error creating file {}: {}", .path.display(), go_io(.cause))]
    CreateFile {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        cause: io::Error,
    },
    /// An artifact file (tar) could not be opened or read.
    #[error("Error reading artifact file {}: {}", .path.display(), go_io(.cause))]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        cause: io::Error,
    },
    /// A tar stream ended early: inside a header, inside an entry's content or
    /// before the end-of-archive marker.
    #[error("tar {} is truncated{}: {detail}", stream_name(.file), in_entry(.entry))]
    Truncated {
        /// The tar file, when known.
        file: Option<PathBuf>,
        /// The entry being read when the stream ended, when known.
        entry: Option<String>,
        /// What was expected.
        detail: String,
    },
    /// A tar stream is malformed (bad header checksum, bad number, ...).
    #[error("tar {} is corrupt{}: {detail}", stream_name(.file), in_entry(.entry))]
    Corrupt {
        /// The tar file, when known.
        file: Option<PathBuf>,
        /// The entry concerned, when known.
        entry: Option<String>,
        /// What is wrong.
        detail: String,
    },
    /// A tar stream uses a feature this implementation refuses (e.g. GNU sparse files).
    #[error("tar {} has an unsupported entry{}: {detail}", stream_name(.file), in_entry(.entry))]
    Unsupported {
        /// The tar file, when known.
        file: Option<PathBuf>,
        /// The entry concerned, when known.
        entry: Option<String>,
        /// What is unsupported.
        detail: String,
    },
    /// A tar entry would be extracted outside the extraction root.
    #[error("unsafe tar entry {entry}{}: {reason}", in_file(.file))]
    UnsafeEntry {
        /// The tar file, when known.
        file: Option<PathBuf>,
        /// The entry name as stored in the tar.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// A tar of the artifact is malformed or unsafe; `source` says which and where.
    #[error("Backup is corrupted: {cause}")]
    Corrupted {
        /// The tar-level error ([`Truncated`](Self::Truncated), [`Corrupt`](Self::Corrupt),
        /// [`Unsupported`](Self::Unsupported) or [`UnsafeEntry`](Self::UnsafeEntry)).
        cause: Box<ArtifactError>,
    },
    /// The regular files of a tar differ from the checksum keys recorded in `metadata`.
    #[error(
        "Backup is corrupted: {} does not match the metadata of artifact {artifact}: missing files [{}], unexpected files [{}]",
        .file.display(),
        .missing.join(" "),
        .unexpected.join(" ")
    )]
    EntriesMismatch {
        /// The tar file.
        file: PathBuf,
        /// The artifact as named in metadata (`<name>/<index>/<job>` or the custom name).
        artifact: String,
        /// Files recorded in metadata but absent from the tar.
        missing: Vec<String>,
        /// Files present in the tar but not recorded in metadata.
        unexpected: Vec<String>,
    },
    /// The content of some files differs from the checksums recorded in `metadata`.
    #[error(
        "Backup is corrupted: checksum mismatch in {} for [{}]",
        .file.display(),
        .entries.join(" ")
    )]
    ChecksumMismatch {
        /// The tar file.
        file: PathBuf,
        /// The entries whose SHA-256 differs, sorted.
        entries: Vec<String>,
    },
    /// The directory whose artifacts are listed cannot be read.
    #[error("cannot list the artifacts in {}: {}", .path.display(), go_io(.cause))]
    ListDir {
        /// The directory.
        path: PathBuf,
        /// The underlying I/O error.
        cause: io::Error,
    },
    /// The artifact could not be validated (unreadable metadata or tar).
    #[error("Could not validate backup: {cause}")]
    CouldNotValidate {
        /// What failed.
        cause: Box<ArtifactError>,
    },
}

impl ArtifactError {
    /// Sets the tar file on tar-level errors that do not name one yet; other errors
    /// are returned unchanged.
    pub fn with_file(mut self, path: &Path) -> Self {
        match &mut self {
            Self::Truncated { file, .. }
            | Self::Corrupt { file, .. }
            | Self::Unsupported { file, .. }
            | Self::UnsafeEntry { file, .. }
                if file.is_none() =>
            {
                *file = Some(path.to_path_buf());
            }
            _ => {}
        }
        self
    }

    /// The tar entry this error is about, if any.
    pub fn entry(&self) -> Option<&str> {
        match self {
            Self::Truncated { entry, .. }
            | Self::Corrupt { entry, .. }
            | Self::Unsupported { entry, .. } => entry.as_deref(),
            Self::UnsafeEntry { entry, .. } => Some(entry),
            Self::Corrupted { cause } | Self::CouldNotValidate { cause } => cause.entry(),
            _ => None,
        }
    }

    /// Whether this error means "the artifact content is bad" (Go bbr's
    /// `Backup is corrupted`) rather than "it could not be read".
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Self::Corrupted { .. } | Self::EntriesMismatch { .. } | Self::ChecksumMismatch { .. }
        )
    }

    pub(crate) fn corrupted(self) -> Self {
        Self::Corrupted {
            cause: Box::new(self),
        }
    }

    pub(crate) fn could_not_validate(self) -> Self {
        Self::CouldNotValidate {
            cause: Box::new(self),
        }
    }
}

/// Renders an I/O error the way Go prints a `syscall.Errno`: lowercase strerror text
/// without Rust's ` (os error N)` suffix, e.g. `no such file or directory`.
pub fn go_io(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match (err.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(pos)) => &text[..pos],
        _ => text.as_str(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn from_path(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" from {}", p.display()),
        None => String::new(),
    }
}

fn stream_name(file: &Option<PathBuf>) -> String {
    match file {
        Some(p) => format!("file {}", p.display()),
        None => "stream".to_string(),
    }
}

fn in_entry(entry: &Option<String>) -> String {
    match entry {
        Some(e) => format!(" in entry {e}"),
        None => String::new(),
    }
}

fn in_file(file: &Option<PathBuf>) -> String {
    match file {
        Some(p) => format!(" in {}", p.display()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_io_strips_os_error_suffix_and_lowercases() {
        let err = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(go_io(&err), "no such file or directory");
        let err = io::Error::from_raw_os_error(libc::EEXIST);
        assert_eq!(go_io(&err), "file exists");
        let err = io::Error::other("Custom thing");
        assert_eq!(go_io(&err), "custom thing");
    }

    #[test]
    fn messages_name_file_and_entry() {
        let err = ArtifactError::Truncated {
            file: None,
            entry: Some("./a".into()),
            detail: "x".into(),
        }
        .with_file(Path::new("/b/c.tar"));
        assert_eq!(
            err.to_string(),
            "tar file /b/c.tar is truncated in entry ./a: x"
        );
        let err = err.corrupted();
        assert!(
            err.to_string()
                .starts_with("Backup is corrupted: tar file /b/c.tar")
        );
        assert_eq!(err.entry(), Some("./a"));
        assert!(err.is_corruption());
    }

    #[test]
    fn open_dir_message_matches_go() {
        let err = ArtifactError::OpenDir {
            path: PathBuf::from("i-am-not-here"),
            cause: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(
            err.to_string(),
            "Could not open backup: failed opening the directory: stat i-am-not-here: no such file or directory"
        );
    }
}
