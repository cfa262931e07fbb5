//! The one error type of this crate.

use std::path::PathBuf;

/// What went wrong talking to a destination. Messages name the store, bucket/container, key
/// or file involved, and never contain credentials or request signatures.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The upload was cancelled (for example on SIGTERM); nothing partial is left visible.
    #[error("upload cancelled")]
    Cancelled,
    /// The settings cannot work (bad endpoint URL, malformed key or service-account JSON, …).
    /// Detected without any network I/O.
    #[error("invalid destination settings: {0}")]
    Config(String),
    /// An object key that cannot be stored (`..` segments, control characters).
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Why it was refused.
        reason: String,
    },
    /// The store refused the credentials' permission for the operation (S3 `AccessDenied`,
    /// HTTP 403 on a create call). service-backup logs
    /// `Configured S3 user unable to create buckets` for this one.
    #[error("{0}")]
    AccessDenied(String),
    /// The object (or bucket) asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Reading the local file (or stream) being uploaded failed.
    #[error("reading local file {}: {source}", path.display())]
    LocalRead {
        /// The file (`-` style placeholder `<stream>` for [`put_reader`](crate::object::ObjectDestination::put_reader)).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A local entry that is not uploaded by rule (a special file, or a symbolic link that
    /// leaves the source folder or cannot be resolved; see [`crate::local`]). Callers skip it
    /// with a warning naming it instead of failing the upload.
    #[error("{0}")]
    NotUploadable(crate::local::Skipped),
    /// The store answered, with an error status not covered above (S3 `HeadBucket` 403 …).
    #[error("{0}")]
    Rejected(String),
    /// Any other failure, already worded for an operator.
    #[error("{0}")]
    Other(String),
}

impl StorageError {
    /// Whether this is a permission refusal (see [`StorageError::AccessDenied`]).
    pub fn is_access_denied(&self) -> bool {
        matches!(self, StorageError::AccessDenied(_))
    }

    /// Whether the store itself answered with an error (as opposed to no answer at all:
    /// connection refused, DNS, TLS, timeouts).
    pub fn is_store_reply(&self) -> bool {
        matches!(
            self,
            StorageError::Rejected(_) | StorageError::AccessDenied(_) | StorageError::NotFound(_)
        )
    }

    /// Whether the upload was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, StorageError::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_told_from_no_answer() {
        assert!(StorageError::Rejected("403".into()).is_store_reply());
        assert!(StorageError::AccessDenied("denied".into()).is_store_reply());
        assert!(!StorageError::Other("connection refused".into()).is_store_reply());
        assert!(!StorageError::Cancelled.is_store_reply());
    }
}
