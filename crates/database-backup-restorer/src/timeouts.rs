//! Bounded waits: the connect timeout every client gets and the limit on how long a restore
//! waits for another session's lock, with the messages given when one strikes.
//!
//! - PostgreSQL clients get `PGCONNECT_TIMEOUT` in their environment (libpq's
//!   `connect_timeout`, covering TCP connect, TLS and authentication).
//! - `mysql`/`mariadb` get `--connect-timeout=N`. `mysqldump`/`mariadb-dump` have no such
//!   option, so they run with a [`crate::runner::Command::connect_deadline`]: killed unless
//!   their `-v` output shows they got past `-- Connecting to ...` in time ([`dump_connected`]).
//! - A PostgreSQL restore is watched from a second session and cancelled when it has waited
//!   for a lock longer than the limit (`pg_restore` itself sets `lock_timeout = 0`, so the
//!   server setting cannot be used); one transaction, so nothing is changed. A MySQL/MariaDB
//!   restore sets `lock_wait_timeout` with `--init-command`.

use std::time::Duration;

/// `host:port`, with brackets around an IPv6 address (a host already written `[v6]` is not
/// bracketed twice).
pub fn host_port(host: &str, port: u16) -> String {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bbr_gocompat::join_host_port(bare, port)
}

/// The message for a client that could not connect within `secs`.
pub fn connect_timeout_message(host: &str, port: u16, secs: u32) -> String {
    format!(
        "Timed out connecting to {hp}: no answer from the database server within the connect \
         timeout of {secs} s. Check \"host\" and \"port\" in the config and that the server is \
         running and reachable (a host that accepts the TCP connection and never answers ends \
         here too); config key \"connect_timeout\" sets the limit.",
        hp = host_port(host, port)
    )
}

/// Whether a failed MySQL/MariaDB client's stderr and run time look like its
/// `--connect-timeout` expired: a client-side connection error (`ERROR 2002`, `2003`, `2013`)
/// after at least the timeout.
pub fn mysql_connect_timed_out(stderr: &str, elapsed: Duration, secs: u32) -> bool {
    let client_error = ["ERROR 2002", "ERROR 2003", "ERROR 2013"]
        .iter()
        .any(|code| stderr.contains(code));
    client_error && elapsed + Duration::from_millis(250) >= Duration::from_secs(secs.into())
}

/// Whether a failed libpq client's stderr says its `connect_timeout` expired.
pub fn pg_connect_timed_out(stderr: &str) -> bool {
    stderr.contains("timeout expired")
}

/// [`crate::runner::ConnectedTest`] for `mysqldump -v` / `mariadb-dump -v`: connected once a
/// complete stderr line other than `-- Connecting to <host>...` has appeared (the next
/// verbose line is printed only after the connection is up). Any other line counts as
/// connected, so a dump is never killed because its output looks unexpected.
pub fn dump_connected(stderr: &[u8]) -> bool {
    let Some(end) = stderr.iter().rposition(|b| *b == b'\n') else {
        return false;
    };
    stderr[..end]
        .split(|b| *b == b'\n')
        .any(|line| !line.starts_with(b"-- Connecting to"))
}

/// The message for a PostgreSQL restore cancelled after waiting `secs` for a lock.
/// `blockers` describes the sessions holding it (may be empty).
pub fn pg_lock_message(database: &str, secs: u32, blockers: &str) -> String {
    let by = if blockers.is_empty() {
        String::new()
    } else {
        format!(" (held by {blockers})")
    };
    format!(
        "The restore was blocked for more than {secs} s by another session's lock on database \
         \"{database}\"{by} and was stopped. Nothing was changed: the restore runs in one \
         transaction, which was rolled back. End the session holding the lock or wait until it \
         finishes (see pg_stat_activity and pg_locks), then run the restore again; config key \
         \"lock_timeout\" sets the limit."
    )
}

/// The message for a MySQL/MariaDB restore stopped by `lock_wait_timeout`; `error_line` is
/// the client's `ERROR 1205 ... at line N: ...` line.
pub fn mysql_lock_message(database: &str, secs: u32, error_line: &str) -> String {
    format!(
        "The restore was blocked for more than {secs} s by another session's lock on a table of \
         database \"{database}\" and was stopped ({error_line}). MySQL restores are not \
         transactional: the statements before that line of the artifact were applied, the rest \
         were not. End the session holding the lock or wait until it finishes (SHOW \
         PROCESSLIST), then run the restore again; config key \"lock_timeout\" sets the limit."
    )
}

/// The `ERROR 1205` (lock wait timeout) line of a MySQL/MariaDB client's stderr, if any.
pub fn mysql_lock_error(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .find(|l| l.starts_with("ERROR 1205"))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_brackets_ipv6() {
        assert_eq!(host_port("127.0.0.1", 5432), "127.0.0.1:5432");
        assert_eq!(host_port("db.example", 3306), "db.example:3306");
        assert_eq!(host_port("::1", 5432), "[::1]:5432");
        let m = connect_timeout_message("10.0.0.5", 5432, 30);
        assert!(m.contains("10.0.0.5:5432") && m.contains("30 s"), "{m}");
    }

    #[test]
    fn dump_connected_needs_a_line_after_connecting() {
        assert!(!dump_connected(b""));
        assert!(!dump_connected(b"-- Connecting to 127.0.0.1...\n"));
        assert!(!dump_connected(
            b"-- Connecting to 127.0.0.1...\n-- Retrieving"
        ));
        assert!(dump_connected(
            b"-- Connecting to 127.0.0.1...\n-- Retrieving table structure for table people...\n"
        ));
        assert!(dump_connected(
            b"-- Connecting to h...\nmysqldump: Got error: 1045\n"
        ));
        // Unexpected output counts as connected (never kill a healthy dump).
        assert!(dump_connected(b"Warning: something\n"));
    }

    #[test]
    fn mysql_timeouts_and_lock_errors() {
        let e = "ERROR 2013 (HY000): Lost connection to server at 'handshake: reading initial \
                 communication packet', system error: 110\n";
        assert!(mysql_connect_timed_out(e, Duration::from_secs(2), 2));
        assert!(!mysql_connect_timed_out(e, Duration::from_millis(10), 2));
        assert!(!mysql_connect_timed_out(
            "ERROR 1045 (28000): Access denied",
            Duration::from_secs(5),
            2
        ));
        let e = "CREATE TABLE x\nERROR 1205 (HY000) at line 25: Lock wait timeout exceeded; try restarting transaction\n";
        assert_eq!(
            mysql_lock_error(e),
            Some(
                "ERROR 1205 (HY000) at line 25: Lock wait timeout exceeded; try restarting transaction"
            )
        );
        assert_eq!(mysql_lock_error("ERROR 1146 (42S02)"), None);
        assert!(pg_connect_timed_out(
            "psql: error: connection to server at \"127.0.0.1\", port 1 failed: timeout expired"
        ));
    }
}
