//! Destinations that a backup directory (or, later, a bbr artifact) is uploaded to.
//!
//! - [`object`]: S3 (and S3-compatible stores), Azure Blob Storage (and Azurite) and Google
//!   Cloud Storage (and fake-gcs-server) through `object_store`, plus the hand-signed
//!   "create bucket / container if missing" calls `object_store` leaves out. Files are streamed
//!   in bounded chunks (multipart / block list / resumable), never read whole into memory, and
//!   an upload that fails or is cancelled is aborted so no partial object looks complete.
//! - [`artifact_url`]: `s3://`, `az://` / `azure://` and `gs://` artifact URLs, and store
//!   settings resolved from each cloud CLI's standard environment; [`artifact_store`]: the
//!   primitives a bbr artifact in a store needs (list, stream-read, upload, delete).
//! - [`local`]: the source folder side: the walk (special files and symbolic links leaving
//!   the folder are skipped, never opened or followed) and non-blocking, checked opens.
//! - [`scp`]: a directory on an SSH server, reached with bbr's own SSH transport (one
//!   connection, host key pinned from known_hosts lines or trusted on first use and recorded).
//!
//! The crate logs nothing: callers (service-backup's lager logger, bbr's reporter) narrate.

#![warn(missing_docs)]

pub mod artifact_store;
pub mod artifact_url;
pub mod error;
pub mod local;
pub mod object;
pub mod scp;

pub use error::StorageError;
