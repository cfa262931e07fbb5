//! Errors of a workflow run, their kinds (which decide the exit-code bits and footers)
//! and their rendering as Go bbr prints them.

use std::fmt;

/// What kind of failure an error is; decides its exit-code bit and the cleanup footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A `pre-backup-lock` script failed (exit bit 4).
    Lock,
    /// A `backup` script failed (exit bit 1).
    Backup,
    /// A `post-backup-unlock` or `post-restore-unlock` script failed (exit bit 8).
    Unlock,
    /// Removing the remote artifact directory or a temporary SSH user failed (exit bit 16).
    Cleanup,
    /// `/var/vcap/store/bbr-backup` already exists on an instance (exit bit 1, footer).
    ArtifactDir,
    /// Copying or verifying an artifact failed (exit bit 1, footer).
    Drain,
    /// Anything else (exit bit 1).
    General,
}

/// One error of a workflow run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BbrError {
    /// The kind, deciding exit code and footer.
    pub kind: ErrorKind,
    /// The message shown to the operator.
    pub message: String,
}

impl BbrError {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A general error (exit bit 1).
    pub fn general(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::General, message)
    }
}

impl fmt::Display for BbrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BbrError {}

/// The ordered list of errors a workflow produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorList(pub Vec<BbrError>);

impl ErrorList {
    /// True when the run succeeded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends an error.
    pub fn push(&mut self, error: BbrError) {
        self.0.push(error);
    }

    /// Appends every error of another list.
    pub fn extend(&mut self, other: ErrorList) {
        self.0.extend(other.0);
    }

    /// `Ok(())` when empty, else the list as the error.
    pub fn into_result(self) -> Result<(), ErrorList> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Go bbr's exit code: bitwise OR of [`exit_code::LOCK`], [`exit_code::UNLOCK`],
    /// [`exit_code::CLEANUP`] and [`exit_code::GENERAL`] (anything else).
    pub fn exit_code(&self) -> i32 {
        self.0.iter().fold(0, |code, e| {
            code | match e.kind {
                ErrorKind::Lock => exit_code::LOCK,
                ErrorKind::Unlock => exit_code::UNLOCK,
                ErrorKind::Cleanup => exit_code::CLEANUP,
                _ => exit_code::GENERAL,
            }
        })
    }

    /// True when the backup footer (run `bbr backup-cleanup`) applies: an unlock, cleanup,
    /// artifact-directory or drain error is in the list.
    pub fn needs_cleanup_advice(&self) -> bool {
        self.0.iter().any(|e| {
            matches!(
                e.kind,
                ErrorKind::Unlock | ErrorKind::Cleanup | ErrorKind::ArtifactDir | ErrorKind::Drain
            )
        })
    }

    /// True when the first error is an artifact-directory error (pre-backup-check footer).
    pub fn first_is_artifact_dir(&self) -> bool {
        self.0
            .first()
            .is_some_and(|e| e.kind == ErrorKind::ArtifactDir)
    }

    /// Renders the list as `N error(s) occurred:` followed by `error i:` blocks. Unlike Go
    /// bbr, consecutive errors are separated by a newline.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} error{} occurred:\n",
            self.0.len(),
            if self.0.len() > 1 { "s" } else { "" }
        );
        for (i, e) in self.0.iter().enumerate() {
            out.push_str(&format!("error {}:\n{}", i + 1, e.message));
            if !e.message.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

/// Go bbr's exit-code bits, OR-ed together by [`ErrorList::exit_code`]; usage errors and
/// other failures outside a workflow exit [`exit_code::GENERAL`].
pub mod exit_code {
    /// Any failure that is not one of the bits below (usage, connection, backup, drain...).
    pub const GENERAL: i32 = 1;
    /// A lock script failed ([`super::ErrorKind::Lock`]).
    pub const LOCK: i32 = 4;
    /// An unlock script failed ([`super::ErrorKind::Unlock`]).
    pub const UNLOCK: i32 = 8;
    /// Removing a remote artifact directory or a temporary SSH user failed
    /// ([`super::ErrorKind::Cleanup`]).
    pub const CLEANUP: i32 = 16;
}

/// An error with its sources, `: `-separated, for messages: HTTP and TLS libraries
/// otherwise hide the cause ("error sending request" instead of "connection refused").
/// Lives in `bbr-gocompat`; re-exported for the crates built on this one.
pub use bbr_gocompat::error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    fn list(kinds: &[ErrorKind]) -> ErrorList {
        ErrorList(kinds.iter().map(|k| BbrError::new(*k, "x")).collect())
    }

    #[test]
    fn exit_codes_are_or_ed_bits() {
        use ErrorKind::*;
        assert_eq!(list(&[]).exit_code(), 0);
        assert_eq!(list(&[Lock]).exit_code(), 4);
        assert_eq!(list(&[Unlock]).exit_code(), 8);
        assert_eq!(list(&[Backup, Cleanup]).exit_code(), 17);
        assert_eq!(list(&[Cleanup]).exit_code(), 16);
        assert_eq!(list(&[Lock, Unlock, Lock]).exit_code(), 12);
        assert_eq!(list(&[Drain, ArtifactDir, General]).exit_code(), 1);
    }

    #[test]
    fn footer_rules() {
        use ErrorKind::*;
        assert!(!list(&[Backup]).needs_cleanup_advice());
        assert!(!list(&[Lock]).needs_cleanup_advice());
        assert!(list(&[Backup, Cleanup]).needs_cleanup_advice());
        assert!(list(&[Drain]).needs_cleanup_advice());
        assert!(list(&[ArtifactDir]).first_is_artifact_dir());
        assert!(!list(&[General, ArtifactDir]).first_is_artifact_dir());
    }

    #[test]
    fn rendering_singular_and_plural() {
        let one = ErrorList(vec![BbrError::general("foo")]);
        assert_eq!(one.render(), "1 error occurred:\nerror 1:\nfoo\n");
        let two = ErrorList(vec![BbrError::general("foo"), BbrError::general("bar")]);
        assert_eq!(
            two.render(),
            "2 errors occurred:\nerror 1:\nfoo\nerror 2:\nbar\n"
        );
    }
}
