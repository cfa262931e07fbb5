//! What `manual-backup` does with awkward entries of the source folder (README "service-backup
//! and manual-backup"): special files and symbolic links leaving the folder are skipped with a
//! warning naming them while the rest uploads; odd names (a 0xff byte, a newline) are stored
//! escaped in object keys and byte for byte over SCP; a file growing during its upload is
//! uploaded as the prefix seen when it was opened; `source_executable_timeout` bounds the
//! prepare command. Real SeaweedFS and a real sshd "VM".

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bbr_testkit::{Vm, VmOptions};
use common::stores::{seaweed, today, unique};
use common::{MANUAL, Scratch, json_lines, run_to_end, start, wait_for_pid_gone};
use serde_json::Value;

fn s3_destination(bucket: &str) -> String {
    let s = seaweed();
    format!(
        "- type: s3\n  config:\n    endpoint_url: '{}'\n    region: us-east-1\n    bucket_name: {bucket}\n    bucket_path: p\n    access_key_id: {}\n    secret_access_key: {}\n",
        s.endpoint(),
        s.access_key_id(),
        s.secret_access_key(),
    )
}

fn scp_destination(vm: &Vm, destination: &Path) -> String {
    let key: String = vm
        .client_key()
        .private_key_pem()
        .expect("key pem")
        .lines()
        .map(|l| format!("      {l}\n"))
        .collect();
    format!(
        "- type: scp\n  config:\n    server: {}\n    user: {}\n    destination: {}\n    fingerprint: '{}'\n    key: |\n{key}    port: {}\n",
        vm.addr(),
        vm.user(),
        destination.display(),
        vm.known_hosts_line(),
        vm.port()
    )
}

/// A directory on the host the VM's login user may write to (the "remote" side of SCP).
fn remote_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

fn objects(bucket: &str) -> Vec<String> {
    seaweed()
        .list_objects(bucket)
        .expect("list")
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

fn object(bucket: &str, key: &str) -> Vec<u8> {
    seaweed()
        .get_object(bucket, key)
        .expect("get")
        .unwrap_or_else(|| panic!("no object {key}"))
}

/// The lines with this action (prefix `ServiceBackup.`).
fn lines_with(out: &str, action: &str) -> Vec<Value> {
    let message = format!("ServiceBackup.{action}");
    json_lines(out)
        .into_iter()
        .filter(|v| v["message"] == message.as_str())
        .collect()
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(made.success());
}

/// Item 9: a FIFO hung the run forever (the walk opened every file); a link to a file outside
/// the folder uploaded that file's content. Now both are skipped with a warning naming them,
/// as are a socket and a dangling link; a link inside the folder is followed; the rest
/// uploads to S3 and SCP and the run succeeds.
#[test]
fn special_files_and_links_leaving_the_folder_are_skipped_with_a_warning() {
    let s = Scratch::new();
    let outside = s.file("outside/secret", "root:x:0:0 secret content");
    let src = s.path("source");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    std::fs::write(src.join("a.txt"), "hello").expect("write");
    std::fs::write(src.join("sub/b.txt"), "world").expect("write");
    mkfifo(&src.join("pipe"));
    let _socket = std::os::unix::net::UnixListener::bind(src.join("sock")).expect("socket");
    symlink(&outside, src.join("shadow-link")).expect("link");
    symlink("../../outside", src.join("sub/up-link")).expect("link");
    symlink("missing", src.join("dangling")).expect("link");
    symlink("sub/b.txt", src.join("inside-link")).expect("link");

    let bucket = unique("special");
    let vm = Vm::start(VmOptions::default()).expect("vm");
    let remote = remote_dir();
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}{}source_folder: {}\nstate_dir: {}\n",
            s3_destination(&bucket),
            scp_destination(&vm, remote.path()),
            src.display(),
            s.path("state").display()
        ),
    );
    let (status, out) = run_to_end(MANUAL, &config, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{out}");

    let prefix = format!("p/{}", today());
    assert_eq!(
        objects(&bucket),
        vec![
            format!("{prefix}/a.txt"),
            format!("{prefix}/inside-link"),
            format!("{prefix}/sub/b.txt"),
        ]
    );
    assert_eq!(object(&bucket, &format!("{prefix}/inside-link")), b"world");
    let dated = remote.path().join(today());
    assert_eq!(std::fs::read(dated.join("a.txt")).expect("a"), b"hello");
    assert_eq!(
        std::fs::read(dated.join("inside-link")).expect("l"),
        b"world"
    );
    assert_eq!(std::fs::read(dated.join("sub/b.txt")).expect("b"), b"world");
    for gone in ["pipe", "sock", "shadow-link", "sub/up-link", "dangling"] {
        assert!(
            std::fs::symlink_metadata(dated.join(gone)).is_err(),
            "{gone} copied over SCP"
        );
    }
    assert!(!out.contains("secret content"), "{out}");

    // One warning per skipped entry and destination, naming it and why.
    let warnings = lines_with(&out, "WARNING: skipping file");
    for (name, why) in [
        ("pipe", "FIFO"),
        ("sock", "socket"),
        ("shadow-link", "outside the source folder"),
        ("sub/up-link", "outside the source folder"),
        ("dangling", "cannot be resolved"),
    ] {
        let path = src.join(name).display().to_string();
        let hits: Vec<&Value> = warnings
            .iter()
            .filter(|w| w["data"]["path"] == path.as_str())
            .collect();
        assert_eq!(hits.len(), 2, "{name}: one per destination:\n{out}");
        let reason = hits[0]["data"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(why), "{name}: {reason}");
    }
    assert_eq!(warnings.len(), 10, "{out}");
}

/// The service-backup items: a newline in one file name failed the whole run (object keys
/// refuse control characters), and a non-UTF-8 name was mangled without a word. Now object
/// keys spell such bytes as `%XY` with a warning naming the file, SCP writes the name byte
/// for byte, and the other files upload.
#[test]
fn odd_file_names_upload_escaped_to_s3_and_byte_for_byte_over_scp() {
    let s = Scratch::new();
    let src = s.path("source");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("normal.txt"), "n").expect("write");
    let latin1 = OsStr::from_bytes(b"caf\xe9-\xff.dump");
    let newline = OsStr::from_bytes(b"two\nlines.txt");
    std::fs::write(src.join(latin1), "latin1").expect("write");
    std::fs::write(src.join(newline), "newline").expect("write");

    let bucket = unique("oddnames");
    let vm = Vm::start(VmOptions::default()).expect("vm");
    let remote = remote_dir();
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}{}source_folder: {}\nstate_dir: {}\n",
            s3_destination(&bucket),
            scp_destination(&vm, remote.path()),
            src.display(),
            s.path("state").display()
        ),
    );
    let (status, out) = run_to_end(MANUAL, &config, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{out}");

    let prefix = format!("p/{}", today());
    let latin1_key = format!("{prefix}/caf%E9-%FF.dump");
    let newline_key = format!("{prefix}/two%0Alines.txt");
    assert_eq!(
        objects(&bucket),
        vec![
            latin1_key.clone(),
            format!("{prefix}/normal.txt"),
            newline_key.clone(),
        ]
    );
    assert_eq!(object(&bucket, &latin1_key), b"latin1");
    assert_eq!(object(&bucket, &newline_key), b"newline");
    let escaped = lines_with(&out, "WARNING: file name escaped in the object key");
    let keys: Vec<&str> = escaped
        .iter()
        .map(|w| w["data"]["key"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        vec![latin1_key.as_str(), newline_key.as_str()],
        "{out}"
    );
    assert_eq!(
        escaped[0]["data"]["path"],
        src.join(latin1).to_string_lossy().as_ref()
    );

    let dated = remote.path().join(today());
    assert_eq!(
        std::fs::read(dated.join(latin1)).expect("latin1"),
        b"latin1"
    );
    assert_eq!(
        std::fs::read(dated.join(newline)).expect("newline"),
        b"newline"
    );
    assert_eq!(std::fs::read(dated.join("normal.txt")).expect("n"), b"n");
}

/// A file growing while it is uploaded (a dump still being written) used to be read until
/// its momentary end, so a part could come up short in the middle of a multipart upload (S3
/// `EntityTooSmall`). Now exactly the size seen when the file was opened is uploaded (as
/// `aws s3 cp` does), with a warning naming the file. The writer starts when the upload of the
/// file before it is announced and appends at a steady pace until the run ends.
#[test]
fn a_file_growing_during_its_upload_is_uploaded_as_the_prefix_seen_at_open() {
    const MIB: usize = 1024 * 1024;
    let s = Scratch::new();
    let src = s.path("source");
    std::fs::create_dir_all(&src).expect("mkdir");
    let first: Vec<u8> = (0..24 * MIB).map(|i| (i % 251) as u8).collect();
    std::fs::write(src.join("a-first.bin"), &first).expect("write");
    let growing = src.join("b-growing.bin");
    let initial: Vec<u8> = (0..20 * MIB).map(|i| (i % 241) as u8).collect();
    std::fs::write(&growing, &initial).expect("write");

    let bucket = unique("growing");
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}source_folder: {}\n",
            s3_destination(&bucket),
            src.display()
        ),
    );
    let mut run = start(MANUAL, &config);
    run.wait_for(
        &format!(
            "S3 putting local file: {}",
            src.join("a-first.bin").display()
        ),
        Duration::from_secs(30),
    );
    // Append 256 KiB every 5 ms (about 50 MiB/s, slower than the local upload reads, so the
    // old reader hit the momentary end mid-part), at most 256 MiB, until the run is over.
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = done.clone();
        let growing = growing.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&growing)
                .expect("open");
            let block = vec![7u8; 256 * 1024];
            let mut written = 0usize;
            while !done.load(Ordering::SeqCst) && written < 256 * MIB {
                f.write_all(&block).expect("append");
                written += block.len();
                std::thread::sleep(Duration::from_millis(5));
            }
            written
        })
    };
    let status = run.wait_exit(Duration::from_secs(120));
    done.store(true, Ordering::SeqCst);
    let appended = writer.join().expect("writer");
    let out = run.stdout();
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(!out.contains("EntityTooSmall"), "{out}");

    let key = format!("p/{}/b-growing.bin", today());
    let uploaded = object(&bucket, &key);
    let now = std::fs::read(&growing).expect("read");
    assert!(appended > 0);
    assert!(uploaded.len() >= initial.len(), "{}", uploaded.len());
    assert!(
        uploaded.len() < now.len(),
        "the file grew after it was opened"
    );
    assert!(now.starts_with(&uploaded), "a consistent prefix");
    let warning = lines_with(&out, "WARNING: file changed size during upload");
    assert_eq!(warning.len(), 1, "{out}");
    assert_eq!(warning[0]["data"]["path"], growing.display().to_string());
    assert_eq!(warning[0]["data"]["uploaded_bytes"], uploaded.len());
}

/// `source_executable` had no time limit. With `source_executable_timeout: 1s` a prepare
/// command that would run for a minute is terminated (process group: its child too), the run
/// fails naming the executable and the limit, and nothing is uploaded or cleaned up.
#[test]
fn source_executable_timeout_terminates_the_prepare_command_and_fails_the_run() {
    let s = Scratch::new();
    let src = s.source();
    let child_pid = s.path("child.pid");
    let prepare = s.script(
        "prepare",
        &format!("sleep 60 &\necho $! > {}\nwait", child_pid.display()),
    );
    let marker = s.path("cleaned");
    let bucket = unique("timeout");
    let config = s.file(
        "backup.yml",
        &format!(
            "destinations:\n{}source_folder: {}\nsource_executable: {}\nsource_executable_timeout: 1s\ncleanup_executable: touch {}\n",
            s3_destination(&bucket),
            src.display(),
            prepare.display(),
            marker.display()
        ),
    );
    // The deadline is below the prepare command's 60 s: only the 1 s limit can end it in time.
    let (status, out) = run_to_end(MANUAL, &config, Duration::from_secs(45));
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        !out.contains("ignoring unknown configuration key"),
        "the key is known:\n{out}"
    );
    let failed = json_lines(&out)
        .into_iter()
        .find(|v| v["message"] == "ServiceBackup.Perform backup completed with error")
        .unwrap_or_else(|| panic!("no failure line:\n{out}"));
    let error = failed["data"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&prepare.display().to_string()) && error.contains("1s"),
        "{error}"
    );
    assert!(error.contains("source_executable"), "{error}");
    assert!(!out.contains("Upload backup started"), "{out}");
    assert!(!marker.exists(), "no cleanup after a failed prepare");
    // The prepare script's own child was in its process group and went too.
    wait_for_pid_gone(&child_pid, Duration::from_secs(10));
}
