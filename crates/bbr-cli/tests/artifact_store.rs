//! `bbr artifact validate` and `bbr artifact list` on object-store URLs, run as the built
//! binary with only the cloud CLI variables in its environment, against the test kit's real
//! stores: SeaweedFS (S3), Azurite (Azure Blob), fake-gcs-server (GCS). Go bbr's
//! `redis-backup` fixture is uploaded and corrupted with independent clients (the AWS CLI,
//! `azblob.py`, plain HTTP), never through bbr-storage. Memory is the peak RSS of the `bbr`
//! process as `/usr/bin/time` reports it.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use support::offline::{Run, bbr, fixture};

use bbr_testkit::stores::{Azurite, FakeGcs, SeaweedFs};

/// `redis-0-redis-server.tar` of the fixture with one byte of `./redis-server/appendonly.aof`
/// (its content starts at 1536, after two directory headers and its own) changed.
fn flipped_tar() -> Vec<u8> {
    let path = bbr_testkit::gobbr::fixture("redis-backup").join("redis-0-redis-server.tar");
    let mut bytes = fs::read(path).expect("tar");
    bytes[2000] ^= 0x20;
    bytes
}

const TAR: &str = "redis-0-redis-server.tar";

/// Validate `url` as text and as JSON; returns both runs.
fn validate(url: &str, env: &[(&str, String)]) -> (Run, Run) {
    (
        bbr(&["artifact", "validate", url], env),
        bbr(&["artifact", "validate", "--json", url], env),
    )
}

fn assert_valid(url: &str, env: &[(&str, String)]) {
    let (text, json) = validate(url, env);
    assert_eq!(text.code, 0, "{}", text.all());
    assert!(
        text.stdout
            .contains(&format!("INFO - Backup artifact {url} is valid")),
        "{}",
        text.all()
    );
    assert!(
        text.stdout.contains(&format!(
            "INFO - {TAR} (artifact redis-server of redis/0): 110592 bytes, 2 files, checksums match"
        )),
        "{}",
        text.all()
    );
    assert_eq!(json.code, 0, "{}", json.all());
    let doc = json.json();
    assert_eq!(doc["artifact"], url);
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["tars"].as_array().map(Vec::len), Some(3), "{doc}");
}

/// The flipped tar: exit 1, the object's URL and the file named, kind `checksum_mismatch`.
fn assert_flipped(url: &str, env: &[(&str, String)]) {
    let (text, json) = validate(url, env);
    assert_eq!(text.code, 1, "{}", text.all());
    let object = format!("{url}/{TAR}");
    assert!(
        text.stdout.contains(&format!(
            "ERROR - {object}: checksum mismatch for file ./redis-server/appendonly.aof"
        )),
        "{}",
        text.all()
    );
    assert!(
        text.stderr.contains(&object),
        "the error block names the object: {}",
        text.all()
    );
    assert_eq!(json.code, 1, "{}", json.all());
    let doc = json.json();
    let problems: Vec<(&str, &str)> = doc["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or_default(),
                p["file"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(problems, [("checksum_mismatch", TAR)], "{doc}");
}

// ----- S3 ------------------------------------------------------------------------------------

fn s3_env(weed: &SeaweedFs) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", weed.access_key_id().to_string()),
        (
            "AWS_SECRET_ACCESS_KEY",
            weed.secret_access_key().to_string(),
        ),
        ("AWS_ENDPOINT_URL", weed.endpoint()),
    ]
}

fn aws(weed: &SeaweedFs, args: &[&str]) {
    let out = weed.aws().args(args).output().expect("aws");
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn s3_validate_and_list_with_objects_written_by_the_aws_cli() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-validate";
    weed.create_bucket(bucket).expect("bucket");
    let put_all = |dir: &str| {
        for (name, data) in fixture() {
            weed.put_object(bucket, &format!("backups/{dir}/{name}"), &data)
                .expect("aws s3api put-object");
        }
    };
    let env = s3_env(&weed);
    let url = |dir: &str| format!("s3://{bucket}/backups/{dir}");

    // The untouched fixture is valid.
    let good = "redis_20240102T030405Z";
    put_all(good);
    assert_valid(&url(good), &env);

    // One byte of one tar changed.
    let flipped = "redis_20240103T000000Z";
    put_all(flipped);
    weed.put_object(bucket, &format!("backups/{flipped}/{TAR}"), &flipped_tar())
        .expect("put flipped");
    assert_flipped(&url(flipped), &env);

    // A tar deleted: named, as missing.
    let key = format!("backups/{flipped}/redis-1-redis-server.tar");
    aws(
        &weed,
        &["s3api", "delete-object", "--bucket", bucket, "--key", &key],
    );
    let (text, json) = validate(&url(flipped), &env);
    assert_eq!(text.code, 1, "{}", text.all());
    assert!(
        text.stdout.contains(&format!(
            "ERROR - {}/redis-1-redis-server.tar: does not exist (metadata lists it for artifact redis-server of redis/1)",
            url(flipped)
        )),
        "{}",
        text.all()
    );
    let kinds: Vec<String> = json.json()["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| format!("{} {}", p["kind"], p["file"]))
        .collect();
    assert_eq!(
        kinds,
        [
            r#""checksum_mismatch" "redis-0-redis-server.tar""#,
            r#""tar_missing" "redis-1-redis-server.tar""#
        ]
    );

    // metadata deleted: incomplete, the tars still read through.
    let incomplete = "redis_20240101T000000Z";
    put_all(incomplete);
    let key = format!("backups/{incomplete}/metadata");
    aws(
        &weed,
        &["s3api", "delete-object", "--bucket", bucket, "--key", &key],
    );
    let (text, json) = validate(&url(incomplete), &env);
    assert_eq!(text.code, 1, "{}", text.all());
    assert!(
        text.stdout.contains(&format!(
            "ERROR - {}/metadata: does not exist: the backup did not complete",
            url(incomplete)
        )),
        "{}",
        text.all()
    );
    let doc = json.json();
    assert_eq!(doc["problems"][0]["kind"], "metadata_missing", "{doc}");
    assert_eq!(doc["tars"].as_array().map(Vec::len), Some(3), "{doc}");

    // Nothing at the prefix: one directory problem.
    let nothing = url("redis_20240104T000000Z");
    let run = bbr(&["artifact", "validate", "--json", &nothing], &env);
    assert_eq!(run.code, 1, "{}", run.all());
    let doc = run.json();
    assert_eq!(doc["problems"][0]["kind"], "directory", "{doc}");
    assert_eq!(
        doc["problems"][0]["message"],
        format!("cannot open the artifact directory: no object exists under {nothing}")
    );

    // list: newest first, the one without metadata flagged; stray keys ignored.
    weed.put_object(bucket, "backups/notes.txt", b"x")
        .expect("stray");
    weed.put_object(bucket, "backups/not-an-artifact/x", b"x")
        .expect("stray dir");
    let list_url = format!("s3://{bucket}/backups");
    let run = bbr(&["artifact", "list", &list_url], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.all());
    assert!(lines[0].starts_with("NAME"), "{}", run.all());
    assert!(
        lines[1].starts_with(flipped) && lines[1].ends_with("complete"),
        "{}",
        run.all()
    );
    assert!(
        lines[2].starts_with(good) && lines[2].ends_with("complete"),
        "{}",
        run.all()
    );
    assert!(
        lines[3].starts_with(incomplete) && lines[3].ends_with("INCOMPLETE: no metadata"),
        "{}",
        run.all()
    );
    let run = bbr(&["artifact", "list", "--json", &list_url], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    let doc = run.json();
    assert_eq!(doc["path"], list_url);
    let found: Vec<(String, bool, u64)> = doc["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap_or_default().to_string(),
                a["complete"].as_bool().unwrap_or_default(),
                a["size"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let fixture_size: u64 = fixture().iter().map(|(_, d)| d.len() as u64).sum();
    assert_eq!(
        found,
        [
            (url(flipped), true, fixture_size - 110_592),
            (url(good), true, fixture_size),
            (url(incomplete), false, fixture_size - 844),
        ]
    );

    // An artifact whose every object was deleted is gone, even where the store (SeaweedFS)
    // still shows its emptied "directory" in a delimited listing.
    aws(
        &weed,
        &["s3", "rm", "--recursive", &format!("{}/", url(incomplete))],
    );
    let run = bbr(&["artifact", "list", &list_url], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!run.stdout.contains(incomplete), "{}", run.all());
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.all());
}

#[test]
fn s3_wrong_credentials_and_missing_bucket_are_one_clear_error() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-refused";
    weed.create_bucket(bucket).expect("bucket");
    for (name, data) in fixture() {
        weed.put_object(bucket, &format!("redis_20240102T030405Z/{name}"), &data)
            .expect("put");
    }
    let secret = "WRONGsecretQ7x9Zk2LmN4pR8sT1vW3yB5cD6fG0hJ";
    let env = vec![
        ("AWS_ACCESS_KEY_ID", weed.access_key_id().to_string()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
        ("AWS_ENDPOINT_URL", weed.endpoint()),
    ];
    let url = format!("s3://{bucket}/redis_20240102T030405Z");
    for args in [
        vec!["artifact", "validate", url.as_str()],
        vec!["artifact", "validate", "--json", url.as_str()],
        vec!["artifact", "list", "s3://bbr-refused"],
    ] {
        let run = bbr(&args, &env);
        assert_eq!(run.code, 1, "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains(&format!("s3://{bucket}")),
            "names the URL: {}",
            run.all()
        );
        assert!(!run.all().contains(secret), "secret shown: {}", run.all());
        assert!(!run.all().contains("is valid"), "{}", run.all());
    }

    // No credentials at all: the variables to set are named.
    let run = bbr(
        &["artifact", "validate", &url],
        &[("AWS_ENDPOINT_URL", weed.endpoint())],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains(&format!("{url}: no S3 credentials in the environment")),
        "{}",
        run.all()
    );

    // The right credentials, a bucket that does not exist.
    let run = bbr(
        &["artifact", "list", "s3://no-such-bucket/x"],
        &s3_env(&weed),
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("s3://no-such-bucket/x") && run.stderr.contains("does not exist"),
        "{}",
        run.all()
    );
}

// ----- Azure ---------------------------------------------------------------------------------

#[test]
fn azure_validate_and_list_with_blobs_written_by_azblob() {
    let azurite = Azurite::start().expect("Azurite");
    let container = "bbr-validate";
    azurite.create_container(container).expect("container");
    let good = "redis_20240102T030405Z";
    let flipped = "redis_20240103T000000Z";
    for dir in [good, flipped] {
        for (name, data) in fixture() {
            azurite
                .put_blob(container, &format!("p/{dir}/{name}"), &data)
                .expect("put blob");
        }
    }
    azurite
        .put_blob(container, &format!("p/{flipped}/{TAR}"), &flipped_tar())
        .expect("put flipped");
    let env = vec![(
        "AZURE_STORAGE_CONNECTION_STRING",
        format!(
            "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={};",
            azurite.account(),
            azurite.access_key(),
            azurite.blob_endpoint()
        ),
    )];
    assert_valid(&format!("az://{container}/p/{good}"), &env);
    assert_flipped(&format!("az://{container}/p/{flipped}"), &env);
    // azure:// is the same store, shown as az://.
    let run = bbr(
        &[
            "artifact",
            "list",
            "--json",
            &format!("azure://{container}/p"),
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let doc = run.json();
    let names: Vec<&str> = doc["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, [flipped, good], "{doc}");
    assert_eq!(doc["path"], format!("az://{container}/p"));
}

// ----- GCS -----------------------------------------------------------------------------------

#[test]
fn gcs_validate_and_list_with_objects_written_over_plain_http() {
    let gcs = FakeGcs::start().expect("fake-gcs-server");
    let bucket = "bbr-validate";
    gcs.create_bucket(bucket).expect("bucket");
    let good = "redis_20240102T030405Z";
    let flipped = "redis_20240103T000000Z";
    for dir in [good, flipped] {
        for (name, data) in fixture() {
            gcs.put_object(bucket, &format!("{dir}/{name}"), &data)
                .expect("put object");
        }
    }
    gcs.put_object(bucket, &format!("{flipped}/{TAR}"), &flipped_tar())
        .expect("put flipped");
    let env = vec![("STORAGE_EMULATOR_HOST", format!("127.0.0.1:{}", gcs.port()))];
    assert_valid(&format!("gs://{bucket}/{good}"), &env);
    assert_flipped(&format!("gs://{bucket}/{flipped}"), &env);
    // The bucket's root as the parent.
    let run = bbr(&["artifact", "list", &format!("gs://{bucket}")], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.all());
    assert!(lines[1].starts_with(flipped), "{}", run.all());
    assert!(lines[2].starts_with(good), "{}", run.all());
}

#[test]
fn the_fixture_is_what_the_assertions_assume() {
    // Offsets and sizes above rely on this layout of the fixture.
    let files = fixture();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "manifest.yml",
            "metadata",
            "other-redis-0-redis-server.tar",
            "redis-0-redis-server.tar",
            "redis-1-redis-server.tar"
        ]
    );
    let tar = &files[3].1;
    assert_eq!(tar.len(), 110_592);
    assert_eq!(files[1].1.len(), 844);
    // The third header is appendonly.aof's (75630 bytes: content covers 1536..77166).
    assert!(tar[1024..].starts_with(b"./redis-server/appendonly.aof"));
    assert!(Path::new(env!("CARGO_BIN_EXE_bbr")).exists());
}

/// Peak RSS limit for validating a tar larger than it: proof that the tar is hashed as it
/// streams, not downloaded into memory.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

#[test]
fn s3_a_tar_larger_than_the_memory_limit_is_hashed_as_it_streams() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-large";
    weed.create_bucket(bucket).expect("bucket");
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    // 192 MiB of incompressible bytes, written a MiB at a time.
    let len_mib = 192;
    {
        let mut out = std::io::BufWriter::new(fs::File::create(src.join("data")).expect("data"));
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..len_mib {
            for w in chunk.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w.copy_from_slice(&x.to_le_bytes());
            }
            std::io::Write::write_all(&mut out, &chunk).expect("write");
        }
    }
    let tar = tmp.path().join("big-0-data.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(&tar)
        .arg("./data")
        .status()
        .expect("tar");
    assert!(status.success());
    let out = Command::new("sha256sum")
        .arg(src.join("data"))
        .output()
        .expect("sha256sum");
    let sha = String::from_utf8_lossy(&out.stdout)[..64].to_string();
    let metadata = tmp.path().join("metadata");
    fs::write(
        &metadata,
        format!(
            "instances:\n- name: big\n  index: \"0\"\n  artifacts:\n  - name: data\n    checksums:\n      ./data: {sha}\n"
        ),
    )
    .expect("metadata");
    let dir = "big_20240102T030405Z";
    for (file, name) in [(&tar, "big-0-data.tar"), (&metadata, "metadata")] {
        let key = format!("{dir}/{name}");
        let out = weed
            .aws()
            .args([
                "s3api",
                "put-object",
                "--bucket",
                bucket,
                "--key",
                &key,
                "--body",
            ])
            .arg(file)
            .output()
            .expect("aws");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let out = Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kib=%M"])
        .arg(env!("CARGO_BIN_EXE_bbr"))
        .args(["artifact", "validate", &format!("s3://{bucket}/{dir}")])
        .env_clear()
        .env("TZ", "UTC")
        .envs(s3_env(&weed))
        .output()
        .expect("run bbr under time");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "big-0-data.tar (artifact data of big/0): {} bytes, 1 files, checksums match",
            fs::metadata(&tar).expect("stat").len()
        )),
        "{stdout}"
    );
    let rss: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {stderr}"));
    eprintln!("peak RSS of bbr validating a {len_mib} MiB tar from S3: {rss} KiB");
    assert!(
        rss < RSS_LIMIT_KIB,
        "peak RSS {rss} KiB for a {len_mib} MiB tar"
    );
}
