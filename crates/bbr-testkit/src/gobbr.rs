//! The artifacts written by the Go bbr (`fixtures/gobbr/` of the shared folder beside this
//! repository). Another project produced them, so they stay outside the repository; this
//! module is the one place that knows where they are.
//!
//! The folder is `$BBR_GOBBR_FIXTURES` when set, else `../shared/fixtures/gobbr` next to the
//! repository's root. A missing folder fails the test with a message saying both.

use std::path::PathBuf;

/// Environment variable naming the folder of Go bbr fixtures.
pub const ENV: &str = "BBR_GOBBR_FIXTURES";

/// The folder holding the Go bbr fixtures (see the module docs). Panics, saying where it
/// looked and how to point elsewhere, when the folder does not exist.
pub fn dir() -> PathBuf {
    let dir = match std::env::var_os(ENV) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/gobbr"),
    };
    assert!(
        dir.is_dir(),
        "the Go bbr fixtures are not at {} (set {ENV} to the folder holding \
         director-backup/, redis-backup/, ...)",
        dir.display()
    );
    dir
}

/// One fixture, e.g. `fixture("redis-backup")` or `fixture("redis-backup/metadata")`.
pub fn fixture(name: &str) -> PathBuf {
    let path = dir().join(name);
    assert!(
        path.exists(),
        "Go bbr fixture {name} is missing from {}",
        dir().display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_fixtures_are_found() {
        let metadata = std::fs::read_to_string(fixture("redis-backup/metadata")).unwrap();
        assert!(metadata.contains("instances:"), "{metadata}");
    }
}
