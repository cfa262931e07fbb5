//! End-to-end runs of the built binaries against real destinations: SeaweedFS (S3), Azurite
//! (Azure Blob), fake-gcs-server (GCS) and an OpenSSH sshd "VM" (SCP). Every upload is checked
//! byte for byte with an independent client (the aws CLI, azblob.py, plain HTTP, the host's
//! view of the VM's files), never with our own storage code.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bbr_testkit::stores::gcs_service_account_json;
use bbr_testkit::wait;
use bbr_testkit::{Vm, VmOptions};
use common::stores::{azurite, fake_gcs, seaweed, today, unique};
use common::{MANUAL, Scratch, output_within, run_to_end, start};
use nix::sys::signal::Signal;
use serde_json::Value;

fn s3_destination(name: &str, bucket: &str, path: &str) -> String {
    let s = seaweed();
    format!(
        "- type: s3\n  name: {name}\n  config:\n    bucket_name: {bucket}\n    bucket_path: {path}\n    access_key_id: {}\n    secret_access_key: {}\n    endpoint_url: {}\n    region: us-east-1\n",
        s.access_key_id(),
        s.secret_access_key(),
        s.endpoint()
    )
}

fn azure_destination(name: &str, container: &str, path: &str) -> String {
    let a = azurite();
    format!(
        "- type: azure\n  name: {name}\n  config:\n    storage_account: {}\n    storage_access_key: {}\n    container: {container}\n    path: {path}\n    endpoint: {}\n",
        a.account(),
        a.access_key(),
        a.blob_endpoint()
    )
}

fn gcs_destination(name: &str, bucket: &str) -> String {
    let json = gcs_service_account_json("sb-project").expect("service account json");
    let indented: String = json.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        "- type: gcs\n  name: {name}\n  config:\n    project_id: sb-project\n    bucket_name: {bucket}\n    endpoint: {}\n    service_account_json: |\n{indented}",
        fake_gcs().endpoint()
    )
}

/// A source folder with nested files, an empty directory and a dotfile.
fn nested_source(s: &Scratch) -> std::path::PathBuf {
    let src = s.path("source");
    std::fs::create_dir_all(src.join("d1/d2")).unwrap();
    std::fs::create_dir_all(src.join("empty")).unwrap();
    std::fs::write(src.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(src.join("d1/b.txt"), "bravo\n").unwrap();
    std::fs::write(src.join("d1/d2/c.bin"), pattern(300_000, 7)).unwrap();
    std::fs::write(src.join(".hidden"), "dot\n").unwrap();
    src
}

/// Deterministic, incompressible-looking bytes.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Every file under `root` as relative path → bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn config(s: &Scratch, body: &str) -> std::path::PathBuf {
    s.file(
        "config.yml",
        &format!(
            "{body}\ncron_schedule: '@daily'\nstate_dir: {}\n",
            s.path("state").display()
        ),
    )
}

/// The parsed JSON log lines of a run.
fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn messages(stdout: &str) -> Vec<String> {
    lines(stdout)
        .iter()
        .map(|v| v["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn s3_run_writes_the_tree_and_logs_every_line_in_the_original_shape() {
    let s = Scratch::new();
    let src = nested_source(&s);
    let bucket = unique("shape");
    let evidence = s.path("cleaned");
    let identifier = s.script("identify", "echo FakeIdentifier");
    let prepare = s.script("prepare", "echo preparing the backup");
    let cleanup = s.script("cleanup", &format!("touch {}", evidence.display()));
    let cfg = config(
        &s,
        &format!(
            "destinations:\n{}source_folder: {}\nsource_executable: {}\ncleanup_executable: {}\nservice_identifier_executable: {}\ndeployment_name: dep\nadd_deployment_name_to_backup_path: true\n",
            s3_destination("primary", &bucket, "base/path"),
            src.display(),
            prepare.display(),
            cleanup.display(),
            identifier.display()
        ),
    );
    let (status, out) = run_to_end(MANUAL, &cfg, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(evidence.exists(), "cleanup did not run:\n{out}");

    // Byte for byte, read back with the aws CLI; the empty directory is not an object.
    let prefix = format!("base/path/dep/{}", today());
    let listed: Vec<String> = seaweed()
        .list_objects(&bucket)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let expected = tree(&src);
    let expected_keys: Vec<String> = expected.keys().map(|k| format!("{prefix}/{k}")).collect();
    let mut sorted = expected_keys.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "{out}");
    for (rel, bytes) in &expected {
        let got = seaweed()
            .get_object(&bucket, &format!("{prefix}/{rel}"))
            .unwrap()
            .unwrap_or_else(|| panic!("{rel} missing"));
        assert!(got == *bytes, "{rel} differs");
    }

    // The exact sequence of run lines (legacy format, identifier session).
    let p = "ServiceBackup.WithIdentifier.";
    let src_s = src.display().to_string();
    let remote = format!("{bucket}/base/path/dep/{}", today());
    let mut want = vec![
        format!("{p}Perform backup started"),
        format!("{p}Perform backup output"),
        format!("{p}Perform backup completed successfully"),
        format!("{p}Upload backup started"),
        format!("{p}about to upload {src_s} to S3 remote path {remote}"),
        format!("{p}Checking for remote path"),
        format!("{p}Checking for remote path - remote path does not exist - making it now"),
        format!("{p}Checking for remote path - remote path created ok"),
    ];
    for rel in expected.keys() {
        want.push(format!(
            "{p}S3 putting local file: {src_s}/{rel} into bucket {bucket} with remote file: {prefix}/{rel} "
        ));
    }
    want.extend([
        format!("{p}s3 completed"),
        format!("{p}Upload backup completed successfully"),
        format!("{p}Cleanup started"),
        format!("{p}Cleanup completed successfully"),
    ]);
    let got = messages(&out);
    assert_eq!(got, want, "full log:\n{out}");

    let guid = lines(&out)[0]["data"]["backup_guid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(guid.len(), 36);
    for (raw, v) in out.lines().zip(lines(&out)) {
        // Legacy layout: timestamp (epoch with 9 decimals), source, message, log_level, data.
        let ts = v["timestamp"].as_str().unwrap();
        let (secs, frac) = ts.split_once('.').unwrap();
        assert!(
            secs.bytes().all(|b| b.is_ascii_digit()) && frac.len() == 9,
            "{raw}"
        );
        let order: Vec<usize> = [
            "\"timestamp\":",
            "\"source\":",
            "\"message\":",
            "\"log_level\":",
            "\"data\":",
        ]
        .iter()
        .map(|k| {
            raw.find(k)
                .unwrap_or_else(|| panic!("{k} missing in {raw}"))
        })
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "key order: {raw}");
        assert_eq!(v["source"], "ServiceBackup");
        assert_eq!(v["log_level"], 1, "{raw}");
        let data = v["data"].as_object().unwrap();
        assert_eq!(data["backup_guid"], guid.as_str(), "{raw}");
        assert_eq!(data["identifier"], "FakeIdentifier", "{raw}");
        assert_eq!(data["session"], "1", "{raw}");
        let msg = v["message"].as_str().unwrap();
        let in_destination = msg.contains("S3")
            || msg.contains("s3 completed")
            || msg.contains("Checking for remote path");
        assert_eq!(
            data.contains_key("destination_name"),
            in_destination,
            "{raw}"
        );
        if in_destination {
            assert_eq!(data["destination_name"], "primary");
        }
        if msg.ends_with("Checking for remote path") {
            assert_eq!(data["remotePath"], remote.as_str(), "{raw}");
        }
        if msg.ends_with("Upload backup completed successfully") {
            let size: u64 = expected.values().map(|b| b.len() as u64).sum();
            assert_eq!(data["size_in_bytes"], size, "{raw}");
            assert!(data["duration_in_seconds"].as_f64().unwrap() > 0.0, "{raw}");
        }
        if msg.ends_with("Perform backup output") {
            assert!(
                data["output"]
                    .as_str()
                    .unwrap()
                    .contains("preparing the backup")
            );
        }
        // Data keys come sorted, as Go's map encoding writes them.
        let keys: Vec<usize> = data
            .keys()
            .map(|k| raw.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "data key order: {raw}"
        );
    }
}

#[test]
fn same_day_rerun_overwrites_the_objects() {
    let s = Scratch::new();
    let src = s.source();
    let bucket = unique("rerun");
    let cfg = config(
        &s,
        &format!(
            "destinations:\n{}source_folder: {}\n",
            s3_destination("", &bucket, "p"),
            src.display()
        ),
    );
    let (status, out) = run_to_end(MANUAL, &cfg, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{out}");
    std::fs::write(src.join("a.txt"), "second run").unwrap();
    let (status, out) = run_to_end(MANUAL, &cfg, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(
        !out.contains("making it now"),
        "bucket exists on the rerun:\n{out}"
    );
    assert!(
        !out.contains("destination_name"),
        "unnamed destination:\n{out}"
    );
    let key = format!("p/{}/a.txt", today());
    assert_eq!(
        seaweed().get_object(&bucket, &key).unwrap().as_deref(),
        Some(&b"second run"[..])
    );
}

#[test]
fn azure_gcs_and_scp_receive_the_same_tree() {
    let s = Scratch::new();
    let src = nested_source(&s);
    let container = unique("azc");
    let gbucket = unique("gcsb");
    let vm = Vm::start(VmOptions::default()).expect("vm");
    let remote_base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(remote_base.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let destination = remote_base.path().join("backups with space");
    let key_pem = vm.client_key().private_key_pem().unwrap();
    let key_yaml: String = key_pem.lines().map(|l| format!("      {l}\n")).collect();
    let scp = format!(
        "- type: scp\n  name: remote\n  config:\n    user: {}\n    server: {}\n    port: {}\n    destination: {}\n    fingerprint: '{}'\n    key: |\n{key_yaml}",
        vm.user(),
        vm.addr(),
        vm.port(),
        destination.display(),
        vm.known_hosts_line()
    );
    let cfg = config(
        &s,
        &format!(
            "destinations:\n{}{}{scp}source_folder: {}\n",
            azure_destination("blobs", &container, "az/base"),
            gcs_destination("objects", &gbucket),
            src.display()
        ),
    );
    let (status, out) = run_to_end(MANUAL, &cfg, Duration::from_secs(90));
    assert_eq!(status.code(), Some(0), "{out}");
    let expected = tree(&src);
    let date = today();
    for (rel, bytes) in &expected {
        let blob = azurite()
            .get_blob(&container, &format!("az/base/{date}/{rel}"))
            .unwrap();
        assert!(blob.as_deref() == Some(&bytes[..]), "azure {rel}");
        let obj = fake_gcs()
            .get_object(&gbucket, &format!("{date}/{rel}"))
            .unwrap();
        assert!(obj.as_deref() == Some(&bytes[..]), "gcs {rel}");
    }
    // SCP copies the tree like `scp -r`, empty directory included.
    let copied = destination.join(&date);
    assert_eq!(tree(&copied), expected);
    assert!(copied.join("empty").is_dir());

    let msgs = messages(&out);
    for m in [
        "ServiceBackup.Uploading azure blobs",
        "ServiceBackup.The container and remote path will be created if they don't already exist",
        &format!(
            "ServiceBackup.will upload {} to Google Cloud Storage",
            src.display()
        ),
        "ServiceBackup.scp completed",
        "ServiceBackup.Upload backup completed successfully",
    ] {
        assert!(msgs.iter().any(|x| x == m), "missing {m:?} in:\n{out}");
    }
    assert!(
        !out.contains("performing key-scan"),
        "a fingerprint was given:\n{out}"
    );
    for v in lines(&out) {
        let msg = v["message"].as_str().unwrap();
        let name = v["data"]["destination_name"].as_str();
        if msg.contains("azure") || msg.contains("uploadFile:") {
            assert_eq!(name, Some("blobs"), "{msg}");
        }
        if msg.contains("Google Cloud Storage") || msg.contains("to bucket") {
            assert_eq!(name, Some("objects"), "{msg}");
        }
        if msg.ends_with("scp completed") {
            assert_eq!(name, Some("remote"), "{msg}");
        }
    }
}

#[test]
fn scp_without_fingerprint_trusts_once_then_refuses_a_changed_key() {
    let s = Scratch::new();
    let src = s.source();
    let mut vm = Vm::start(VmOptions::default()).expect("vm");
    let remote_base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(remote_base.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let key_yaml: String = vm
        .client_key()
        .private_key_pem()
        .unwrap()
        .lines()
        .map(|l| format!("      {l}\n"))
        .collect();
    let cfg = config(
        &s,
        &format!(
            "destinations:\n- type: scp\n  config:\n    user: {}\n    server: {}\n    port: {}\n    destination: {}\n    key: |\n{key_yaml}source_folder: {}\n",
            vm.user(),
            vm.addr(),
            vm.port(),
            remote_base.path().display(),
            src.display()
        ),
    );
    let (status, out) = run_to_end(MANUAL, &cfg, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(
        out.contains("Fingerprint not found, performing key-scan"),
        "{out}"
    );
    let record = s.path("state/scp_known_hosts");
    let recorded = std::fs::read_to_string(&record).expect("known hosts recorded");
    let host_key = vm.host_public_key_line();
    let key_b64 = host_key.split_whitespace().nth(1).unwrap();
    assert!(recorded.contains(key_b64), "{recorded}");

    let (status, out) = run_to_end(MANUAL, &cfg, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(
        !out.contains("performing key-scan"),
        "trusted once only:\n{out}"
    );

    vm.regenerate_host_key().unwrap();
    std::fs::write(src.join("a.txt"), "must not arrive").unwrap();
    let (status, out) = run_to_end(MANUAL, &cfg, Duration::from_secs(60));
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("Host key verification failed"), "{out}");
    assert!(out.contains("scp_known_hosts"), "names the file:\n{out}");
    let landed = remote_base.path().join(today()).join("a.txt");
    assert_eq!(std::fs::read_to_string(landed).unwrap(), "hello");
}

#[test]
fn one_failing_destination_does_not_stop_the_others_and_skips_cleanup() {
    let s = Scratch::new();
    let src = s.source();
    let bad = unique("bad");
    let good = unique("good");
    let gbucket = unique("alsogood");
    let evidence = s.path("cleaned");
    let cleanup = s.script("cleanup", &format!("touch {}", evidence.display()));
    let wrong = s3_destination("broken", &bad, "x")
        .replace(seaweed().secret_access_key(), "definitely-the-wrong-secret");
    let cfg = config(
        &s,
        &format!(
            "destinations:\n{wrong}{}{}source_folder: {}\ncleanup_executable: {}\n",
            s3_destination("fine", &good, "yp"),
            gcs_destination("gcs", &gbucket),
            src.display(),
            cleanup.display()
        ),
    );
    let (status, out) = run_to_end(MANUAL, &cfg, Duration::from_secs(60));
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        !evidence.exists(),
        "cleanup must not run after a failed upload"
    );
    assert!(!out.contains("definitely-the-wrong-secret"), "{out}");
    let date = today();
    assert_eq!(
        seaweed()
            .get_object(&good, &format!("yp/{date}/a.txt"))
            .unwrap()
            .as_deref(),
        Some(&b"hello"[..]),
        "{out}"
    );
    assert_eq!(
        fake_gcs()
            .get_object(&gbucket, &format!("{date}/sub/b.txt"))
            .unwrap()
            .as_deref(),
        Some(&b"world"[..])
    );
    assert!(
        !seaweed().bucket_exists(&bad).unwrap(),
        "nothing created with bad creds"
    );
    let failed = lines(&out)
        .into_iter()
        .find(|v| v["message"] == "ServiceBackup.Upload backup completed with error")
        .unwrap_or_else(|| panic!("no failure line:\n{out}"));
    assert_eq!(failed["log_level"], 2);
    let error = failed["data"]["error"].as_str().unwrap();
    assert!(error.contains("bucketExists: api error"), "{error}");
    assert!(error.contains("api error Forbidden"), "{error}");
    assert_eq!(
        error.matches("; ").count(),
        0,
        "only one destination failed: {error}"
    );
    assert_eq!(
        messages(&out)
            .iter()
            .filter(|m| m.ends_with("s3 completed"))
            .count(),
        2
    );
    assert!(out.contains("ServiceBackup.Error running backup"), "{out}");
}

#[test]
fn unreadable_file_or_directory_fails_the_run_naming_it() {
    bbr_testkit::users::ensure_user("vcap", true).expect("vcap user");
    let s = Scratch::new();
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = s.source();
    let secret_file = src.join("sub/locked.txt");
    std::fs::write(&secret_file, "no").unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o000)).unwrap();
    let bucket = unique("unreadable");
    let state = s.path("state");
    std::fs::create_dir_all(&state).unwrap();
    let cfg = config(
        &s,
        &format!(
            "destinations:\n{}source_folder: {}\n",
            s3_destination("", &bucket, "p"),
            src.display()
        ),
    );
    let chown = |p: &Path| {
        let ok = Command::new("chown")
            .args(["-R", "vcap:vcap"])
            .arg(p)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    chown(&state);
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_vcap = || {
        output_within(
            Command::new("setpriv")
                .args(["--reuid=vcap", "--regid=vcap", "--init-groups"])
                .arg(MANUAL)
                .arg(&cfg)
                .env_remove("GCP_SERVICE_ACCOUNT_FILE"),
            Duration::from_secs(60),
        )
    };
    let out = as_vcap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&secret_file.display().to_string()),
        "names the file:\n{text}"
    );
    assert!(
        text.contains("Upload backup completed with error"),
        "{text}"
    );

    // An unreadable directory is an error too, not silently skipped.
    std::fs::remove_file(&secret_file).unwrap();
    let locked_dir = src.join("locked-dir");
    std::fs::create_dir(&locked_dir).unwrap();
    std::fs::write(locked_dir.join("inner"), "x").unwrap();
    std::fs::set_permissions(&locked_dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = as_vcap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&locked_dir.display().to_string()),
        "names the dir:\n{text}"
    );
    std::fs::set_permissions(&locked_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn sigterm_during_an_upload_leaves_no_object_and_no_pending_multipart() {
    let s = Scratch::new();
    let src = s.path("source");
    std::fs::create_dir_all(&src).unwrap();
    // Big enough that the upload is still running when the signal arrives.
    let big = src.join("big.bin");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&big).unwrap();
        let chunk = pattern(8 << 20, 3);
        for _ in 0..96 {
            f.write_all(&chunk).unwrap();
        }
    }
    let bucket = unique("term");
    seaweed().create_bucket(&bucket).unwrap();
    let cfg = s.file(
        "config.yml",
        &format!(
            "destinations:\n{}source_folder: {}\ncron_schedule: '* * * * * *'\nstate_dir: {}\n",
            s3_destination("", &bucket, "p"),
            src.display(),
            s.path("state").display()
        ),
    );
    let mut daemon = start(common::DAEMON, &cfg);
    daemon.wait_for("S3 putting local file", Duration::from_secs(30));
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{}", daemon.stdout());
    let out = daemon.stdout();
    assert!(
        out.contains("All backup processes terminated. Exiting"),
        "{out}"
    );
    assert!(
        !out.contains("Upload backup completed successfully"),
        "{out}"
    );
    // The daemon writes lager's pretty layout: RFC 3339 UTC with nine fractional digits.
    for (raw, v) in out.lines().zip(lines(&out)) {
        let ts = v["timestamp"].as_str().unwrap();
        assert!(
            ts.len() == 30 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
            "{raw}"
        );
        assert!(
            ["debug", "info", "error", "fatal"].contains(&v["level"].as_str().unwrap()),
            "{raw}"
        );
        let order: Vec<usize> = [
            "\"timestamp\":",
            "\"level\":",
            "\"source\":",
            "\"message\":",
            "\"data\":",
        ]
        .iter()
        .map(|k| {
            raw.find(k)
                .unwrap_or_else(|| panic!("{k} missing in {raw}"))
        })
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "key order: {raw}");
    }
    assert_eq!(seaweed().list_objects(&bucket).unwrap(), vec![], "{out}");
    assert_eq!(
        seaweed().multipart_uploads(&bucket).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn overlapping_runs_without_exit_if_in_progress_both_upload() {
    let s = Scratch::new();
    let src = s.source();
    let bucket = unique("overlap");
    let gate = s.path("gate");
    // Each prepare announces itself and waits for the gate, so the two runs truly overlap.
    let prepare = s.script(
        "prepare",
        &format!(
            "touch {dir}/started-$$\nwhile [ ! -e {gate} ]; do sleep 0.05; done",
            dir = s.dir.path().display(),
            gate = gate.display()
        ),
    );
    let cfg = config(
        &s,
        &format!(
            "destinations:\n{}source_folder: {}\nsource_executable: {}\nexit_if_in_progress: false\n",
            s3_destination("", &bucket, "p"),
            src.display(),
            prepare.display()
        ),
    );
    let mut first = start(MANUAL, &cfg);
    let mut second = start(MANUAL, &cfg);
    wait::until(
        "both prepares to run at once",
        Duration::from_secs(20),
        || {
            std::fs::read_dir(s.dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("started-")
                })
                .count()
                == 2
        },
    );
    std::fs::write(&gate, "").unwrap();
    assert_eq!(
        first.wait_exit(Duration::from_secs(60)).code(),
        Some(0),
        "{}",
        first.stdout()
    );
    assert_eq!(
        second.wait_exit(Duration::from_secs(60)).code(),
        Some(0),
        "{}",
        second.stdout()
    );
    for run in [&first, &second] {
        assert!(
            run.stdout()
                .contains("Upload backup completed successfully")
        );
        assert!(!run.stdout().contains("Backup currently in progress"));
    }
}

/// Several GiB through the streaming multipart path, checked with the aws CLI.
#[test]
fn a_file_of_several_gib_arrives_intact() {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Write};
    let s = Scratch::new();
    let src = s.path("source");
    std::fs::create_dir_all(&src).unwrap();
    let big = src.join("several-gib.bin");
    let mut hasher = Sha256::new();
    let mut size = 0_u64;
    {
        let mut f =
            std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(&big).unwrap());
        let base = pattern(16 << 20, 11);
        // 3 GiB + a tail so the last part is short; each block differs by its index.
        for i in 0..192_u32 {
            let mut block = base.clone();
            block[..4].copy_from_slice(&i.to_le_bytes());
            f.write_all(&block).unwrap();
            hasher.update(&block);
            size += block.len() as u64;
        }
        f.write_all(b"tail").unwrap();
        hasher.update(b"tail");
        size += 4;
    }
    let want = hex::encode(hasher.finalize());
    let bucket = unique("big");
    let cfg = config(
        &s,
        &format!(
            "destinations:\n{}source_folder: {}\n",
            s3_destination("", &bucket, "huge"),
            src.display()
        ),
    );
    let (status, out) = run_to_end(MANUAL, &cfg, Duration::from_secs(600));
    std::fs::remove_file(&big).unwrap();
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains(&format!("\"size_in_bytes\":{size}")), "{out}");
    let key = format!("s3://{bucket}/huge/{}/several-gib.bin", today());
    let mut child = seaweed()
        .aws()
        .args(["s3", "cp", &key, "-"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 4 << 20];
    let mut got = 0_u64;
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        got += n as u64;
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(got, size);
    assert_eq!(hex::encode(hasher.finalize()), want);
    assert_eq!(
        seaweed().multipart_uploads(&bucket).unwrap(),
        Vec::<String>::new()
    );
    // Give the disk back: the suite shares it with a fresh build and other stores.
    let removed = seaweed().aws().args(["s3", "rm", &key]).output().unwrap();
    assert!(removed.status.success(), "{removed:?}");
}
