//! Azure destination against a real Azurite server, checked with the SharedKey client
//! `azblob.py`.

mod object_support;

use std::sync::OnceLock;

use bbr_storage::StorageError;
use bbr_storage::object::{AzureEndpoint, AzureSettings, ObjectDestination, StoreSettings};
use bbr_testkit::stores::Azurite;
use object_support::*;
use tokio_util::sync::CancellationToken;

/// One server per test binary (nextest: per test process); killed with the process.
fn azurite() -> &'static Azurite {
    static AZ: OnceLock<Azurite> = OnceLock::new();
    AZ.get_or_init(|| Azurite::start().expect("starting Azurite"))
}

fn settings(container: &str) -> AzureSettings {
    let a = azurite();
    AzureSettings {
        account: a.account().to_string(),
        access_key: a.access_key().to_string(),
        sas_token: None,
        container: container.to_string(),
        endpoint: AzureEndpoint::Url(a.blob_endpoint()),
    }
}

fn dest(container: &str) -> ObjectDestination {
    ObjectDestination::new(StoreSettings::Azure(settings(container))).unwrap()
}

async fn ready_container(prefix: &str) -> (String, ObjectDestination) {
    let c = bucket_name(prefix);
    let d = dest(&c);
    d.create_bucket().await.unwrap();
    (c, d)
}

fn get(c: &str, blob: &str) -> Option<Vec<u8>> {
    azurite().get_blob(c, blob).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_container_is_reported_then_created() {
    let c = bucket_name("az-create");
    let d = dest(&c);
    assert!(!d.bucket_exists().await.unwrap());
    d.create_bucket().await.unwrap();
    assert!(d.bucket_exists().await.unwrap());
    assert_eq!(
        azurite().list_blobs(&c).unwrap(),
        Some(vec![]),
        "azblob.py sees it"
    );
    d.create_bucket().await.unwrap(); // 409 ContainerAlreadyExists is fine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_made_elsewhere_exists() {
    let c = bucket_name("az-exists");
    azurite().create_container(&c).unwrap();
    assert!(dest(&c).bucket_exists().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_empty_and_nested_files_arrive_byte_for_byte() {
    let (c, d) = ready_container("az-small").await;
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
        "path//dep/2024/01/02/deep/f.tgz",
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(get(&c, "small.txt").unwrap(), b"hello, world\n");
    assert_eq!(get(&c, "empty").unwrap(), b"");
    assert_eq!(
        get(&c, "path/dep/2024/01/02/deep/f.tgz").unwrap(),
        nested_data
    );
    assert_eq!(
        azurite().list_blobs(&c).unwrap().unwrap(),
        vec!["empty", "path/dep/2024/01/02/deep/f.tgz", "small.txt"]
    );
    assert_eq!(d.get("small.txt").await.unwrap(), b"hello, world\n");
    assert_eq!(
        d.list("").await.unwrap(),
        vec![
            ("empty".to_string(), 0),
            ("path/dep/2024/01/02/deep/f.tgz".to_string(), 100_000),
            ("small.txt".to_string(), 13)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_goes_up_in_blocks_and_arrives_intact() {
    let (c, d) = ready_container("az-large").await;
    let dir = tempfile::tempdir().unwrap();
    let bytes = data(64 * MIB + 12_345, 2);
    let f = file(dir.path(), "big", &bytes);
    let n = d
        .put_file(&f, "big/file.bin", &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(n, bytes.len() as u64);
    let got = get(&c, "big/file.bin").unwrap();
    assert!(
        got == bytes,
        "content differs ({} bytes read back)",
        got.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_unknown_length_is_streamed() {
    let (c, d) = ready_container("az-reader").await;
    let bytes = data(20 * MIB + 5, 5);
    let n = d
        .put_reader("stream/obj", &bytes[..], &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(n, bytes.len() as u64);
    assert!(get(&c, "stream/obj").unwrap() == bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_fails_fast_without_the_key() {
    let (c, _) = ready_container("az-creds").await;
    // Valid base64, wrong key.
    let wrong = "V3JvbmdLZXlUaGF0TXVzdE5vdExlYWtXcm9uZ0tleVRoYXRNdXN0Tm90TGVhaw==";
    let mut s = settings(&c);
    s.access_key = wrong.to_string();
    let d = ObjectDestination::new(StoreSettings::Azure(s)).unwrap();
    let err = within(FAIL_FAST, d.bucket_exists()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("403"), "{text}");
    assert!(text.contains(&c), "names the container: {text}");
    assert!(!text.contains(wrong), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), "f", b"data");
    let err = within(FAIL_FAST, d.put_file(&f, "k", &CancellationToken::new()))
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains(wrong), "{err:?}");
    let err = d.create_bucket().await.unwrap_err();
    assert!(!err.to_string().contains(wrong), "{err}");
    assert_eq!(get(&c, "k"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_fast() {
    let mut s = settings("unreachable");
    s.endpoint = AzureEndpoint::Url(format!(
        "http://127.0.0.1:{}/devstoreaccount1",
        closed_port()
    ));
    let d = ObjectDestination::new(StoreSettings::Azure(s)).unwrap();
    let err = within(FAIL_FAST, d.bucket_exists()).await.unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), "f", b"data");
    within(FAIL_FAST, d.put_file(&f, "k", &CancellationToken::new()))
        .await
        .unwrap_err();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_is_refused_and_a_cancelled_upload_leaves_no_blob() {
    let (c, d) = ready_container("az-cancel-file").await;
    assert_fifo_refused_at_once(&d).await;
    // A stream of 40 MiB that cancels while the upload is mid-way (parts in flight).
    let cancel = CancellationToken::new();
    let reader = CancellingReader::new(40 * MIB, cancel.clone());
    let err = d
        .put_reader("cancelled/file", reader, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Cancelled), "{err:?}");
    assert_eq!(get(&c, "cancelled/file"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_overwrite_keeps_the_old_blob() {
    let (c, d) = ready_container("az-cancel-old").await;
    azurite().put_blob(&c, "keep/me", b"old content").unwrap();
    let cancel = CancellationToken::new();
    let reader = CancellingReader::new(40 * MIB, cancel.clone());
    let err = d.put_reader("keep/me", reader, &cancel).await.unwrap_err();
    assert!(matches!(err, StorageError::Cancelled), "{err:?}");
    assert_eq!(get(&c, "keep/me").unwrap(), b"old content");
}
