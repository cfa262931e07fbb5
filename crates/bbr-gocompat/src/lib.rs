//! Small, pure helpers that the `bbr`, `service-backup` and `database-backup-restorer`
//! binaries share, each with exactly one implementation:
//!
//! - [`duration`]: Go's `time.ParseDuration`, with Go's error texts.
//! - [`hostport`]: Go's `net.SplitHostPort` / `net.JoinHostPort`, and "host with an
//!   optional port" on top of them (`[::1]:22`, `::1`, `host`, `host:2222`).
//! - [`shell`]: POSIX shell quoting.
//! - [`redact`]: replacing registered secret values in text.
//! - [`error_chain`]: an error and its sources joined with `: `, as Go's wrapped errors print.
//!
//! No I/O, no async runtime, no dependency beyond `thiserror`, so the domain crate
//! (`bbr-core`) and the standalone binaries can all use it.

pub mod duration;
pub mod hostport;
pub mod redact;
pub mod shell;

pub use duration::{DurationError, parse_go_duration};
pub use hostport::{HostPortError, join_host_port, split_host_port};
pub use shell::shell_quote;

/// An error and its sources joined with `: ` (sources whose text the message already
/// contains are skipped), the way Go prints an error wrapped with `fmt.Errorf("...: %w")`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_joins_sources() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
