//! The local bbr backup artifact, compatible with Go bbr in both directions.
//!
//! An artifact is a directory `<deployment>_<YYYYMMDDTHHMMSSZ>` holding a `metadata`
//! YAML file and one uncompressed tar per backed-up job (see docs/artifact-format.md).
//! This crate knows everything about that directory and nothing about BOSH or SSH:
//!
//! * [`metadata`] — the Go bbr `metadata` schema, parsed with serde-saphyr and written
//!   byte-for-byte like Go's `gopkg.in/yaml.v2`;
//! * [`entry_name`] — [`EntryName`], a tar entry name as raw bytes (file names are byte
//!   strings; names that are not UTF-8 go to `metadata` as `!!binary` keys, as in Go);
//! * [`timefmt`] — the two timestamp layouts (metadata times, directory names);
//! * [`naming`] — artifact file and directory names;
//! * [`tarstream`] — a zero-copy incremental tar parser that SHA-256 hashes every
//!   file entry while the bytes stream in from the network;
//! * [`safety`] — path-traversal and entry-type checks (no devices, no FIFOs) for tar
//!   entries before a restore and after a backup drain;
//! * [`gate`] — [`TarGate`], a reader that passes a tar on to the VM only as far as its
//!   headers were parsed and found safe (restores straight from an object store);
//! * [`artifact_dir`] — creating, opening and validating the artifact directory;
//! * [`validation`] — the deep offline check of `bbr artifact validate`, listing every
//!   problem of an artifact (restore's own check stops at the first);
//! * [`files`] — what validation and listing read ([`ArtifactFiles`], [`ArtifactTree`]),
//!   a local directory or (implemented by bbr-cli) an object-store prefix;
//! * [`listing`] — the artifact directories under a directory (`bbr artifact list`);
//! * [`retention`] — which of them a restic-style `--keep-*` policy keeps (`bbr artifact
//!   prune`), with every reason;
//! * [`artifact_file`] — writing a drained tar and reading one for a restore with page-cache
//!   hints (write-behind and drop, read-ahead), the crate's only file I/O through `libc`;
//! * [`yaml_limits`] — YAML parser limits scaled from the input's size, for every reader of
//!   YAML that bbr wrote (so whatever it writes, it reads back).
//!
//! Everything is synchronous and free of global state except [`timefmt::metadata_time`],
//! which consults the process time zone (`TZ`).

pub mod artifact_dir;
pub mod artifact_file;
pub mod entry_name;
pub mod error;
pub mod files;
pub mod gate;
pub mod listing;
pub mod metadata;
pub mod naming;
pub mod retention;
pub mod safety;
pub mod tarstream;
#[cfg(test)]
mod testutil;
pub mod timefmt;
pub mod validation;
mod yaml_emit;
pub mod yaml_limits;

pub use artifact_dir::{ArtifactCheck, ArtifactDir, ArtifactKind, listed_artifacts};
pub use artifact_file::{ArtifactFileReader, ArtifactFileWriter};
pub use entry_name::EntryName;
pub use error::ArtifactError;
pub use files::{ArtifactFiles, ArtifactTree, FileEntry, LocalArtifact, LocalTree};
pub use gate::{GateReport, StrippedSetid, TarGate, refusal_of};
pub use listing::{ListedArtifact, list_artifacts, list_artifacts_in};
pub use metadata::{ArtifactMetadata, BackupActivity, Checksums, InstanceMetadata, Metadata};
pub use naming::{
    artifact_dir_name, backup_one_restore_all_name, custom_artifact_file, default_artifact_file,
};
pub use retention::{
    CalendarDuration, Count, Decision, KeepReason, Period, Policy, RemoveReason, RetentionError,
    RetentionPlan, Verdict, plan_retention,
};
pub use safety::{
    StreamSafety, check_entries_safe, check_entry_kind, check_entry_safe, unsafe_entries,
};
pub use tarstream::{
    EntryKind, HeaderPatch, TarEntryInfo, TarHasher, TarSummary, hash_tar_file, hash_tar_reader,
    scan_tar_file, setid_patches,
};
pub use timefmt::{artifact_timestamp, metadata_time};
pub use validation::{
    Problem, ProblemKind, TarReport, ValidationReport, validate_artifact, validate_files,
};
