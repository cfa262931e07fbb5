//! How the core reaches a VM: run a command, stream its stdout to a sink, or stream a source
//! into its stdin. Implemented by the SSH transport (one connection per host) and by tests.
//!
//! The trait and its types live in `bbr-remote`, so that a transport or a destination can
//! use them without depending on the domain; they are re-exported here at their old paths.

pub use bbr_remote::{
    ExitFailure, Exited, HELD_OUTPUT_GRACE, HELD_OUTPUT_LIMIT, Output, OutputSink, Remote,
    RemoteError, RootCommandError, StdoutSink, Stream, Tail, run_as_root_checked,
};
