//! Waiting for an event in tests, always with a deadline: a condition that never comes true
//! fails the test naming what it waited for, instead of hanging the suite.

use std::time::{Duration, Instant};

/// How often [`until`] looks at its condition: short enough not to slow tests, long enough
/// not to take a core away from the processes under test.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `done` every [`POLL`] until it returns true; panics naming `what` once `limit` has
/// passed without it.
///
/// ```
/// let start = std::time::Instant::now();
/// bbr_testkit::wait::until("a moment to pass", std::time::Duration::from_secs(5), || {
///     start.elapsed() > std::time::Duration::from_millis(30)
/// });
/// ```
pub fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_the_condition_holds() {
        let mut calls = 0;
        until("the third look", Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        });
        assert_eq!(calls, 3);
    }

    #[test]
    #[should_panic(expected = "waiting for something that never happens")]
    fn fails_naming_what_it_waited_for() {
        until(
            "something that never happens",
            Duration::from_millis(50),
            || false,
        );
    }
}
