//! The object stores the destination tests upload to (one of each per test process, started
//! on first use), with names unique to the process and today's remote date directory.

use bbr_testkit::stores::{Azurite, FakeGcs, SeaweedFs};
use std::sync::OnceLock;

/// The process's SeaweedFS S3 server.
pub fn seaweed() -> &'static SeaweedFs {
    static S: OnceLock<SeaweedFs> = OnceLock::new();
    S.get_or_init(|| SeaweedFs::start().expect("start SeaweedFS"))
}

/// The process's Azurite blob server.
pub fn azurite() -> &'static Azurite {
    static S: OnceLock<Azurite> = OnceLock::new();
    S.get_or_init(|| Azurite::start().expect("start Azurite"))
}

/// The process's fake-gcs-server.
pub fn fake_gcs() -> &'static FakeGcs {
    static S: OnceLock<FakeGcs> = OnceLock::new();
    S.get_or_init(|| FakeGcs::start().expect("start fake-gcs-server"))
}

/// A bucket / container name unique to this test process and tag.
pub fn unique(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

/// Today's `YYYY/MM/DD` in the local zone, as the remote layout uses
/// (docs/service-backup.md#remote-layout).
pub fn today() -> String {
    chrono::Local::now().format("%Y/%m/%d").to_string()
}
