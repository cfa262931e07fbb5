//! Helpers shared by the `object_*` integration tests: test data, readers that cancel an
//! upload at a chosen point, and timing.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::CancellationToken;

pub const MIB: usize = 1024 * 1024;

/// Deterministic, incompressible bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Write `bytes` to `dir/name`.
pub fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A unique, DNS-compatible bucket name.
pub fn bucket_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An endless stream of data that cancels `token` once `after` bytes have been handed out.
pub struct CancellingReader {
    produced: usize,
    after: usize,
    token: CancellationToken,
    block: Vec<u8>,
}

impl CancellingReader {
    pub fn new(after: usize, token: CancellationToken) -> Self {
        CancellingReader {
            produced: 0,
            after,
            token,
            block: data(MIB, 7),
        }
    }
}

impl AsyncRead for CancellingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.produced >= self.after {
            self.token.cancel();
        }
        let off = self.produced % self.block.len();
        let n = buf.remaining().min(self.block.len() - off);
        let chunk = self.block[off..off + n].to_vec();
        buf.put_slice(&chunk);
        self.produced += n;
        Poll::Ready(Ok(()))
    }
}

/// How long a request that must fail fast may take: well above what a loaded two-core
/// machine needs for our three quick retries (about a second), well below the minute of
/// backoff `object_store`'s default retry policy would spend on the same failure.
pub const FAIL_FAST: Duration = Duration::from_secs(10);

/// Awaits `f`, failing the test unless it completes within `limit` (a deadline: a request
/// that hangs fails here instead of hanging the suite).
pub async fn within<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("not done within {limit:?}"))
}

/// A TCP port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

/// A FIFO is not a regular file: `put_file` refuses it at once, naming it (opening it for
/// reading without `O_NONBLOCK` would wait for a writer forever).
pub async fn assert_fifo_refused_at_once(d: &bbr_storage::object::ObjectDestination) {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let err = within(
        FAIL_FAST,
        d.put_file(&fifo, "cancelled/file", &CancellationToken::new()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, bbr_storage::StorageError::NotUploadable(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains(&*fifo.to_string_lossy()), "{err}");
}
