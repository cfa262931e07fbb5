//! Waiting for an event in tests, always with a deadline: a condition that never comes true
//! fails the test naming what it waited for, instead of hanging the suite.

use std::time::{Duration, Instant};

/// How often the waits look at their condition: short enough not to slow tests, long enough
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
    until_some(what, limit, || done().then_some(()))
}

/// Polls `found` every [`POLL`] until it returns a value, and returns that value (a PID, an
/// exit status, a line); panics naming `what` once `limit` has passed without one.
///
/// ```
/// let mut looks = 0;
/// let n = bbr_testkit::wait::until_some("the third look", std::time::Duration::from_secs(5), || {
///     looks += 1;
///     (looks == 3).then_some(looks)
/// });
/// assert_eq!(n, 3);
/// ```
pub fn until_some<T>(what: &str, limit: Duration, found: impl FnMut() -> Option<T>) -> T {
    within(limit, found).unwrap_or_else(|| panic!("timed out after {limit:?} waiting for {what}"))
}

/// Polls `found` every [`POLL`] until it returns a value or `limit` has passed; `None` then,
/// so that the caller can fail with what it has seen so far (the output of a process, say).
pub fn within<T>(limit: Duration, mut found: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = found() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
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

    #[test]
    fn until_some_returns_the_value_found() {
        let mut calls = 0;
        let found = until_some("the second look", Duration::from_secs(5), || {
            calls += 1;
            (calls == 2).then(|| format!("look {calls}"))
        });
        assert_eq!(found, "look 2");
    }

    #[test]
    fn within_gives_up_once_the_limit_has_passed() {
        let started = Instant::now();
        let mut calls = 0;
        let found: Option<()> = within(Duration::from_millis(60), || {
            calls += 1;
            None
        });
        assert_eq!(found, None);
        assert!(started.elapsed() >= Duration::from_millis(60));
        assert!(calls >= 2, "looked {calls} times");
    }
}
