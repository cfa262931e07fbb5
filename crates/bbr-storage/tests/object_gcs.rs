//! GCS destination against a real fake-gcs-server, checked with plain HTTP GETs of the JSON
//! API (`/storage/v1/b/B/o/<name>?alt=media`).

mod object_support;

use std::sync::OnceLock;

use bbr_storage::StorageError;
use bbr_storage::object::{GcsSettings, ObjectDestination, StoreSettings};
use bbr_testkit::stores::{FakeGcs, gcs_service_account_json};
use object_support::*;
use tokio_util::sync::CancellationToken;

/// One server per test binary (nextest: per test process); killed with the process.
fn gcs() -> &'static FakeGcs {
    static GCS: OnceLock<FakeGcs> = OnceLock::new();
    GCS.get_or_init(|| FakeGcs::start().expect("starting fake-gcs-server"))
}

fn settings(bucket: &str) -> GcsSettings {
    GcsSettings {
        bucket: bucket.to_string(),
        project_id: "test-project".to_string(),
        service_account_json: gcs_service_account_json("test-project").unwrap(),
        endpoint: Some(gcs().endpoint()),
        anonymous: false,
    }
}

fn dest(bucket: &str) -> ObjectDestination {
    ObjectDestination::new(StoreSettings::Gcs(settings(bucket))).unwrap()
}

async fn ready_bucket(prefix: &str) -> (String, ObjectDestination) {
    let b = bucket_name(prefix);
    let d = dest(&b);
    d.create_bucket().await.unwrap();
    (b, d)
}

fn get(b: &str, name: &str) -> Option<Vec<u8>> {
    gcs().get_object(b, name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_reported_then_created() {
    let b = bucket_name("gcs-create");
    let d = dest(&b);
    assert!(!d.bucket_exists().await.unwrap());
    d.create_bucket().await.unwrap();
    assert!(d.bucket_exists().await.unwrap());
    assert!(gcs().bucket_exists(&b).unwrap(), "plain HTTP sees it");
    d.create_bucket().await.unwrap(); // 409 is fine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_made_elsewhere_exists() {
    let b = bucket_name("gcs-exists");
    gcs().create_bucket(&b).unwrap();
    assert!(dest(&b).bucket_exists().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_empty_and_nested_files_arrive_byte_for_byte() {
    let (b, d) = ready_bucket("gcs-small").await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let nested_data = data(100_000, 1);
    d.put_file(
        &file(dir.path(), "s", b"hello, world\n"),
        "small.txt",
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(
        d.put_file(&file(dir.path(), "e", b""), "empty", &cancel)
            .await
            .unwrap(),
        0
    );
    d.put_file(
        &file(dir.path(), "n", &nested_data),
        "dep/2024/01/02//deep/f.tgz",
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(get(&b, "small.txt").unwrap(), b"hello, world\n");
    assert_eq!(get(&b, "empty").unwrap(), b"");
    assert_eq!(get(&b, "dep/2024/01/02/deep/f.tgz").unwrap(), nested_data);
    assert_eq!(
        gcs().list_objects(&b).unwrap(),
        vec!["dep/2024/01/02/deep/f.tgz", "empty", "small.txt"]
    );
    assert_eq!(d.get("small.txt").await.unwrap(), b"hello, world\n");
    assert_eq!(
        d.list("dep").await.unwrap(),
        vec![("dep/2024/01/02/deep/f.tgz".to_string(), 100_000)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_goes_up_in_chunks_and_arrives_intact() {
    let (b, d) = ready_bucket("gcs-large").await;
    let dir = tempfile::tempdir().unwrap();
    let bytes = data(64 * MIB + 12_345, 2);
    let f = file(dir.path(), "big", &bytes);
    let n = d
        .put_file(&f, "big/file.bin", &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(n, bytes.len() as u64);
    let got = get(&b, "big/file.bin").unwrap();
    assert!(
        got == bytes,
        "content differs ({} bytes read back)",
        got.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_exactly_whole_chunks_is_streamed() {
    let (b, d) = ready_bucket("gcs-reader").await;
    // A multiple of the chunk size: the last chunk is only known to be last at EOF.
    let bytes = data(16 * MIB, 5);
    let n = d
        .put_reader("stream/obj", &bytes[..], &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(n, bytes.len() as u64);
    assert!(get(&b, "stream/obj").unwrap() == bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_service_account_keys_are_refused_without_leaking_them() {
    let json = gcs_service_account_json("p").unwrap();
    let marker = "MIIsecretKeyMaterialXYZ";
    let broken = json.replace(
        "-----BEGIN PRIVATE KEY-----\\n",
        &format!("-----BEGIN PRIVATE KEY-----\\n{marker}"),
    );
    let mut s = settings("gcs-badkey");
    s.service_account_json = broken;
    let err = match ObjectDestination::new(StoreSettings::Gcs(s)) {
        Err(e) => e,
        Ok(d) => d.bucket_exists().await.unwrap_err(),
    };
    assert!(!format!("{err} {err:?}").contains(marker), "{err:?}");
    assert!(err.to_string().contains("gcs-badkey"), "{err}");

    let mut s = settings("gcs-nojson");
    s.service_account_json = String::new();
    let err = ObjectDestination::new(StoreSettings::Gcs(s)).unwrap_err();
    assert!(matches!(err, StorageError::Config(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_fast() {
    let mut s = settings("unreachable");
    s.endpoint = Some(format!("http://127.0.0.1:{}", closed_port()));
    let d = ObjectDestination::new(StoreSettings::Gcs(s)).unwrap();
    let err = within(FAIL_FAST, d.bucket_exists()).await.unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), "f", b"data");
    within(FAIL_FAST, d.put_file(&f, "k", &CancellationToken::new()))
        .await
        .unwrap_err();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_is_refused_and_a_cancelled_upload_leaves_no_object() {
    let (b, d) = ready_bucket("gcs-cancel-file").await;
    assert_fifo_refused_at_once(&d).await;
    // A stream of 40 MiB that cancels while the upload is mid-way (parts in flight).
    let cancel = CancellationToken::new();
    let reader = CancellingReader::new(40 * MIB, cancel.clone());
    let err = d
        .put_reader("cancelled/file", reader, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Cancelled), "{err:?}");
    assert_eq!(get(&b, "cancelled/file"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_overwrite_keeps_the_old_object() {
    let (b, d) = ready_bucket("gcs-cancel-old").await;
    gcs().put_object(&b, "keep/me", b"old content").unwrap();
    let cancel = CancellationToken::new();
    let reader = CancellingReader::new(40 * MIB, cancel.clone());
    let err = d.put_reader("keep/me", reader, &cancel).await.unwrap_err();
    assert!(matches!(err, StorageError::Cancelled), "{err:?}");
    assert_eq!(get(&b, "keep/me").unwrap(), b"old content");
}
