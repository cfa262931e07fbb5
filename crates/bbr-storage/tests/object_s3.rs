//! S3 destination against a real SeaweedFS server, checked with the AWS CLI.

mod object_support;

use std::sync::OnceLock;

use bbr_storage::StorageError;
use bbr_storage::object::{ObjectDestination, S3Settings, StoreSettings};
use bbr_testkit::stores::SeaweedFs;
use object_support::*;
use tokio_util::sync::CancellationToken;

/// One server per test binary (nextest: per test process); killed with the process.
fn weed() -> &'static SeaweedFs {
    static WEED: OnceLock<SeaweedFs> = OnceLock::new();
    WEED.get_or_init(|| SeaweedFs::start().expect("starting SeaweedFS"))
}

fn settings(bucket: &str) -> S3Settings {
    let w = weed();
    S3Settings {
        bucket: bucket.to_string(),
        region: None,
        endpoint: Some(w.endpoint()),
        access_key_id: w.access_key_id().to_string(),
        secret_access_key: w.secret_access_key().to_string(),
        session_token: None,
        force_path_style: false, // 127.0.0.1 → path style automatically
        ca_cert_pem: None,
    }
}

fn dest(bucket: &str) -> ObjectDestination {
    ObjectDestination::new(StoreSettings::S3(settings(bucket))).unwrap()
}

/// A destination whose bucket exists.
async fn ready_bucket(prefix: &str) -> (String, ObjectDestination) {
    let b = bucket_name(prefix);
    let d = dest(&b);
    d.create_bucket().await.unwrap();
    (b, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_reported_then_created() {
    let b = bucket_name("s3-create");
    let d = dest(&b);
    assert!(!d.bucket_exists().await.unwrap());
    d.create_bucket().await.unwrap();
    assert!(d.bucket_exists().await.unwrap());
    assert!(weed().bucket_exists(&b).unwrap(), "the AWS CLI sees it too");
    // Creating it again is fine (already owned by us).
    d.create_bucket().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_made_elsewhere_exists() {
    let b = bucket_name("s3-exists");
    weed().create_bucket(&b).unwrap();
    assert!(dest(&b).bucket_exists().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_empty_and_nested_files_arrive_byte_for_byte() {
    let (b, d) = ready_bucket("s3-small").await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let small = file(dir.path(), "small", b"hello, world\n");
    let empty = file(dir.path(), "empty", b"");
    let nested_data = data(100_000, 1);
    let nested = file(dir.path(), "nested", &nested_data);

    assert_eq!(d.put_file(&small, "small.txt", &cancel).await.unwrap(), 13);
    assert_eq!(d.put_file(&empty, "empty", &cancel).await.unwrap(), 0);
    let n = d
        .put_file(&nested, "/base//path/dep/2024/01/02/./deep/f.tgz", &cancel)
        .await
        .unwrap();
    assert_eq!(n, 100_000);

    let w = weed();
    assert_eq!(
        w.get_object(&b, "small.txt").unwrap().unwrap(),
        b"hello, world\n"
    );
    assert_eq!(w.get_object(&b, "empty").unwrap().unwrap(), b"");
    assert_eq!(
        w.get_object(&b, "base/path/dep/2024/01/02/deep/f.tgz")
            .unwrap()
            .unwrap(),
        nested_data
    );
    assert_eq!(
        w.list_objects(&b).unwrap(),
        vec![
            ("base/path/dep/2024/01/02/deep/f.tgz".to_string(), 100_000),
            ("empty".to_string(), 0),
            ("small.txt".to_string(), 13),
        ]
    );
    // Our own read side agrees.
    assert_eq!(d.get("small.txt").await.unwrap(), b"hello, world\n");
    assert_eq!(
        d.list("base/path").await.unwrap(),
        vec![("base/path/dep/2024/01/02/deep/f.tgz".to_string(), 100_000)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_goes_up_in_parts_and_arrives_intact() {
    let (b, d) = ready_bucket("s3-large").await;
    let dir = tempfile::tempdir().unwrap();
    let bytes = data(64 * MIB + 12_345, 2);
    let f = file(dir.path(), "big", &bytes);
    let n = d
        .put_file(&f, "big/file.bin", &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(n, bytes.len() as u64);
    let got = weed().get_object(&b, "big/file.bin").unwrap().unwrap();
    assert!(
        got == bytes,
        "content differs ({} bytes read back)",
        got.len()
    );
    assert!(weed().multipart_uploads(&b).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_to_a_versioned_bucket_and_overwrites() {
    let b = bucket_name("s3-versioned");
    weed().create_bucket(&b).unwrap();
    weed().enable_versioning(&b).unwrap();
    let d = dest(&b);
    assert!(d.bucket_exists().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let v1 = data(20 * MIB, 3);
    let v2 = data(20 * MIB + 1, 4);
    d.put_file(&file(dir.path(), "v1", &v1), "same/key", &cancel)
        .await
        .unwrap();
    d.put_file(&file(dir.path(), "v2", &v2), "same/key", &cancel)
        .await
        .unwrap();
    d.put_file(&file(dir.path(), "s", b"x"), "small", &cancel)
        .await
        .unwrap();
    assert!(weed().get_object(&b, "same/key").unwrap().unwrap() == v2);
    assert_eq!(weed().get_object(&b, "small").unwrap().unwrap(), b"x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_unknown_length_is_streamed() {
    let (b, d) = ready_bucket("s3-reader").await;
    let bytes = data(24 * MIB + 5, 5);
    let n = d
        .put_reader("stream/obj", &bytes[..], &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(n, bytes.len() as u64);
    assert!(weed().get_object(&b, "stream/obj").unwrap().unwrap() == bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_fast_with_forbidden_and_without_the_secret() {
    let (b, _) = ready_bucket("s3-creds").await;
    let secret = "Wr0ngSecretValueThatMustNotLeak0123456789";
    let mut s = settings(&b);
    s.secret_access_key = secret.to_string();
    let d = ObjectDestination::new(StoreSettings::S3(s)).unwrap();
    let err = within(FAIL_FAST, d.bucket_exists()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("Forbidden"), "{text}");
    assert!(text.contains(&b), "names the bucket: {text}");
    assert!(!text.contains(secret), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), "f", b"data");
    let err = within(FAIL_FAST, d.put_file(&f, "k", &CancellationToken::new()))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains(secret), "{err}");
    assert!(!format!("{err:?}").contains(secret), "{err:?}");
    let err = d.create_bucket().await.unwrap_err();
    assert!(!err.to_string().contains(secret), "{err}");
    assert_eq!(weed().get_object(&b, "k").unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_fast() {
    let mut s = settings("unreachable");
    s.endpoint = Some(format!("http://127.0.0.1:{}", closed_port()));
    let d = ObjectDestination::new(StoreSettings::S3(s)).unwrap();
    let err = within(FAIL_FAST, d.bucket_exists()).await.unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), "f", b"data");
    let err = within(FAIL_FAST, d.put_file(&f, "k", &CancellationToken::new()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"k\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_local_file_is_named() {
    let (_, d) = ready_bucket("s3-missing").await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = d
        .put_file(&missing, "k", &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::LocalRead { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&*missing.to_string_lossy()),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_is_refused_and_a_cancelled_upload_leaves_no_object() {
    let (b, d) = ready_bucket("s3-cancel-file").await;
    assert_fifo_refused_at_once(&d).await;
    // A stream of 40 MiB that cancels while the upload is mid-way (parts in flight).
    let cancel = CancellationToken::new();
    let reader = CancellingReader::new(40 * MIB, cancel.clone());
    let err = d
        .put_reader("cancelled/file", reader, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Cancelled), "{err:?}");
    assert_eq!(weed().get_object(&b, "cancelled/file").unwrap(), None);
    assert!(weed().multipart_uploads(&b).unwrap().is_empty(), "aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_overwrite_keeps_the_old_object() {
    let (b, d) = ready_bucket("s3-cancel-old").await;
    weed().put_object(&b, "keep/me", b"old content").unwrap();
    let cancel = CancellationToken::new();
    let reader = CancellingReader::new(40 * MIB, cancel.clone());
    let err = d.put_reader("keep/me", reader, &cancel).await.unwrap_err();
    assert!(matches!(err, StorageError::Cancelled), "{err:?}");
    assert_eq!(
        weed().get_object(&b, "keep/me").unwrap().unwrap(),
        b"old content"
    );
    assert!(weed().multipart_uploads(&b).unwrap().is_empty(), "aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_already_cancelled_token_uploads_nothing() {
    let (b, d) = ready_bucket("s3-precancel").await;
    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), "f", b"data");
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = d.put_file(&f, "k", &cancel).await.unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(weed().get_object(&b, "k").unwrap(), None);
}

/// Rough throughput / memory check, not a timed test: `cargo nextest run -p bbr-storage
/// --test object_s3 --run-ignored only bench_` (size from `BENCH_MIB`, default 1024).
/// Prints our upload time and peak RSS next to `aws s3 cp` for the same file.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn bench_upload_against_aws_cli() {
    let mib: usize = std::env::var("BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let (b, d) = ready_bucket("s3-bench").await;
    let env_mib = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let d = match env_mib("BENCH_PART_MIB") {
        Some(p) => d.with_part_size(p * MIB),
        None => d,
    };
    let d = match env_mib("BENCH_IN_FLIGHT_MIB") {
        Some(p) => d.with_in_flight_bytes(p * MIB),
        None => d,
    };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big");
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("head -c {}M /dev/urandom > {}", mib, f.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let rss = |field: &str| {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_default()
            .to_string()
    };
    let before = rss("VmHWM");
    let t = std::time::Instant::now();
    let n = d
        .put_file(&f, "ours", &CancellationToken::new())
        .await
        .unwrap();
    let ours = t.elapsed();
    let after = rss("VmHWM");
    let t = std::time::Instant::now();
    let out = weed()
        .aws()
        .args(["s3", "cp", "--quiet"])
        .arg(&f)
        .arg(format!("s3://{b}/aws"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let aws = t.elapsed();
    let mb = n as f64 / 1e6;
    eprintln!(
        "{mib} MiB: ours {ours:?} ({:.0} MB/s), aws s3 cp {aws:?} ({:.0} MB/s); \
         test process {before} -> {after}",
        mb / ours.as_secs_f64(),
        mb / aws.as_secs_f64()
    );
}
