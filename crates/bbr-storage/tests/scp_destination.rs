//! The SCP destination against a real OpenSSH sshd (bbr-testkit VMs): tree copies, host-key
//! verification (configured lines and trust on first use), unreadable local files,
//! cancellation and authentication failures.

use bbr_storage::StorageError;
use bbr_storage::scp::{ScpDestination, ScpHostKeys, ScpSettings};
use bbr_testkit::{Vm, VmOptions, wait};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Another valid host key, which no test VM has.
const STRANGER_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKue6+71ZxoIMivmlx/n+tfqi+QzM0nEoVAMK4LjFbN3";

fn start_vm() -> Vm {
    Vm::start(VmOptions::default()).expect("start VM")
}

/// Creates `/var/vcap/store/<name>` owned by the login user; returns (remote path, host path).
fn writable_dir(vm: &Vm, name: &str) -> (String, PathBuf) {
    let remote = format!("/var/vcap/store/{name}");
    let quoted = format!("'{remote}'");
    let out = vm
        .ssh(&format!(
            "sudo -n mkdir -p {quoted} && sudo -n chown {} {quoted}",
            vm.user()
        ))
        .expect("ssh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let host = vm.vcap_path(&remote);
    (remote, host)
}

fn settings(vm: &Vm, host_keys: ScpHostKeys) -> ScpSettings {
    ScpSettings {
        user: vm.user().to_string(),
        server: vm.addr().to_string(),
        port: vm.port(),
        private_key_pem: vm.client_key().private_key_pem().expect("client key"),
        host_keys,
    }
}

fn pinned(vm: &Vm) -> ScpHostKeys {
    ScpHostKeys::KnownHostsLines(format!("{}\n", vm.known_hosts_line()))
}

async fn connect(settings: ScpSettings) -> ScpDestination {
    ScpDestination::connect(settings).await.expect("connect")
}

async fn connect_err(settings: ScpSettings) -> String {
    match ScpDestination::connect(settings).await {
        Ok(_) => panic!("connect succeeded"),
        Err(e) => e.to_string(),
    }
}

/// Deterministic, incompressible-looking bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every path under `dir` (relative), sorted, directories with a trailing `/`.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

fn partials(dir: &Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|p| p.contains(".bbr-partial"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_a_tree_byte_for_byte_into_a_path_with_spaces() {
    let vm = start_vm();
    let (base, _) = writable_dir(&vm, "backup dest");
    let local = tempfile::tempdir().unwrap();
    let l = local.path();
    fs::write(l.join("1.txt"), "one\n").unwrap();
    fs::write(l.join(".hidden"), "dot\n").unwrap();
    fs::write(l.join("empty.txt"), "").unwrap();
    fs::create_dir_all(l.join("sub dir")).unwrap();
    fs::write(l.join("sub dir/file with spaces 'quoted'.txt"), "spaces\n").unwrap();
    fs::create_dir_all(l.join("subdir/nested")).unwrap();
    let big = noise(3 * 1024 * 1024 + 17, 7);
    fs::write(l.join("subdir/nested/deep.bin"), &big).unwrap();
    fs::create_dir_all(l.join("empty")).unwrap();
    symlink("1.txt", l.join("link.txt")).unwrap();
    symlink("sub dir", l.join("linked dir")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(l.join("1.txt"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::set_permissions(l.join(".hidden"), fs::Permissions::from_mode(0o600)).unwrap();
    }

    let dest = connect(settings(&vm, pinned(&vm))).await;
    assert_eq!(dest.learned_host_key(), None);
    let remote = format!("{base}/2024/01/02");
    let total = dest
        .upload_tree(l, &remote, &CancellationToken::new())
        .await
        .expect("upload");
    dest.disconnect().await;

    let host = vm.vcap_path(&remote);
    assert_eq!(
        listing(&host),
        vec![
            ".hidden",
            "1.txt",
            "empty.txt",
            "empty/",
            "link.txt",
            "linked dir/",
            "linked dir/file with spaces 'quoted'.txt",
            "sub dir/",
            "sub dir/file with spaces 'quoted'.txt",
            "subdir/",
            "subdir/nested/",
            "subdir/nested/deep.bin",
        ]
    );
    for rel in [
        ".hidden",
        "1.txt",
        "empty.txt",
        "link.txt",
        "linked dir/file with spaces 'quoted'.txt",
        "sub dir/file with spaces 'quoted'.txt",
        "subdir/nested/deep.bin",
    ] {
        assert_eq!(
            fs::read(host.join(rel)).unwrap(),
            fs::read(l.join(rel)).unwrap(),
            "{rel}"
        );
    }
    // Permission bits travel with the file, as `scp` gives new files the source's mode.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |rel: &str| fs::metadata(host.join(rel)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("1.txt"), 0o750);
        assert_eq!(mode(".hidden"), 0o600);
    }
    assert!(
        !fs::symlink_metadata(host.join("link.txt"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "symlinks are followed, as scp does"
    );
    // .hidden, 1.txt and link.txt; the spaces file twice (once through the linked dir); deep.bin.
    let expected = 3 * 4 + 2 * 7 + big.len() as u64;
    assert_eq!(total, expected);

    // The same check through the server: sha256sum of the remote copy.
    let out = vm
        .ssh(&format!("sha256sum '{remote}/subdir/nested/deep.bin'"))
        .unwrap();
    let local_sum = std::process::Command::new("sha256sum")
        .arg(l.join("subdir/nested/deep.bin"))
        .output()
        .unwrap();
    let first = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(first(&out.stdout), first(&local_sum.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_upload_overwrites_and_merges_like_scp() {
    let vm = start_vm();
    let (base, host) = writable_dir(&vm, "merge");
    let local = tempfile::tempdir().unwrap();
    fs::create_dir_all(local.path().join("d")).unwrap();
    fs::write(local.path().join("d/a"), "first").unwrap();
    let dest = connect(settings(&vm, pinned(&vm))).await;
    let cancel = CancellationToken::new();
    dest.upload_tree(local.path(), &base, &cancel)
        .await
        .unwrap();
    fs::write(local.path().join("d/a"), "second, longer").unwrap();
    fs::write(local.path().join("d/b"), "new").unwrap();
    dest.upload_tree(local.path(), &base, &cancel)
        .await
        .unwrap();
    dest.disconnect().await;
    assert_eq!(
        fs::read_to_string(host.join("d/a")).unwrap(),
        "second, longer"
    );
    assert_eq!(fs::read_to_string(host.join("d/b")).unwrap(), "new");
    assert_eq!(listing(&host), vec!["d/", "d/a", "d/b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_dir_quotes_the_path() {
    let vm = start_vm();
    let (base, host) = writable_dir(&vm, "mk");
    let dest = connect(settings(&vm, pinned(&vm))).await;
    dest.make_dir(&format!("{base}/a b/it's; touch pwned/c"))
        .await
        .unwrap();
    dest.disconnect().await;
    assert!(host.join("a b/it's; touch pwned/c").is_dir());
    assert!(!vm.exists("store/mk/pwned"));
    assert_eq!(
        listing(&host),
        vec!["a b/", "a b/it's; touch pwned/", "a b/it's; touch pwned/c/"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_dir_failure_names_the_server_and_path() {
    let vm = start_vm();
    let dest = connect(settings(&vm, pinned(&vm))).await;
    let err = dest
        .make_dir("/var/vcap/store/not-mine/x")
        .await
        .unwrap_err()
        .to_string();
    dest.disconnect().await;
    assert!(err.contains("/var/vcap/store/not-mine/x"), "{err}");
    assert!(err.contains(&vm.addr().to_string()), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyscan_style_fingerprint_lines_are_accepted() {
    let vm = start_vm();
    let (base, host) = writable_dir(&vm, "fp");
    let lines = format!(
        "# {} SSH-2.0-OpenSSH\n{} {STRANGER_KEY}\n{}\n",
        vm.addr(),
        vm.addr(),
        vm.known_hosts_line()
    );
    let dest = connect(settings(&vm, ScpHostKeys::KnownHostsLines(lines))).await;
    assert_eq!(dest.learned_host_key(), None);
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("f"), "x").unwrap();
    dest.upload_tree(local.path(), &base, &CancellationToken::new())
        .await
        .unwrap();
    dest.disconnect().await;
    assert_eq!(fs::read_to_string(host.join("f")).unwrap(), "x");

    // A bare public key line (`.pub` format) works too.
    let bare = ScpHostKeys::KnownHostsLines(vm.host_public_key_line().to_string());
    connect(settings(&vm, bare)).await.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_invalid_fingerprint_is_refused() {
    let vm = start_vm();
    let (_, host) = writable_dir(&vm, "refused");

    let wrong = ScpHostKeys::KnownHostsLines(format!("{} {STRANGER_KEY}\n", vm.addr()));
    let err = connect_err(settings(&vm, wrong)).await;
    assert!(err.contains("Host key verification failed"), "{err}");
    assert!(err.contains(&vm.addr().to_string()), "{err}");
    assert!(err.contains("SHA256:"), "{err}");

    let invalid = ScpHostKeys::KnownHostsLines("localhost ssh-rsa totally-invalid".to_string());
    let err = connect_err(settings(&vm, invalid)).await;
    assert!(err.contains("Host key verification failed"), "{err}");
    assert!(err.contains("totally-invalid"), "{err}");

    let empty = ScpHostKeys::KnownHostsLines("  \n".to_string());
    let err = connect_err(settings(&vm, empty)).await;
    assert!(err.contains("Host key verification failed"), "{err}");

    assert!(listing(&host).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_on_first_use_records_once_then_refuses_a_changed_key() {
    let mut vm = start_vm();
    let (base, host) = writable_dir(&vm, "tofu");
    let state = tempfile::tempdir().unwrap();
    let record = state.path().join("state/known_hosts");
    let tofu = || ScpHostKeys::TrustOnFirstUse {
        record_file: record.clone(),
    };

    let dest = connect(settings(&vm, tofu())).await;
    let learned = dest.learned_host_key().expect("a key was learned");
    assert!(learned.starts_with("SHA256:"), "{learned}");
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("f"), "x").unwrap();
    dest.upload_tree(local.path(), &base, &CancellationToken::new())
        .await
        .unwrap();
    dest.disconnect().await;
    let recorded = fs::read_to_string(&record).unwrap();
    let blob = vm.host_public_key_line().split_whitespace().nth(1).unwrap();
    assert!(recorded.contains(blob), "{recorded}");
    let prefix = format!("[{}]:{} ", vm.addr(), vm.port());
    assert!(
        recorded
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(blob)),
        "{recorded}"
    );

    let dest = connect(settings(&vm, tofu())).await;
    assert_eq!(dest.learned_host_key(), None);
    dest.disconnect().await;
    assert_eq!(fs::read_to_string(&record).unwrap(), recorded);

    vm.regenerate_host_key().unwrap();
    let err = connect_err(settings(&vm, tofu())).await;
    assert!(err.contains("Host key verification failed"), "{err}");
    assert!(err.contains(&record.display().to_string()), "{err}");
    assert_eq!(fs::read_to_string(&record).unwrap(), recorded);
    assert_eq!(listing(&host), vec!["f"]);
}

/// The local rules of `bbr_storage::local`: a FIFO, a dangling link and a link leaving the
/// folder are skipped (the FIFO never opened: that would block), the rest is copied, and odd
/// names (byte 0xff, a newline) arrive byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_files_and_escaping_links_are_skipped_and_odd_names_kept() {
    use std::os::unix::ffi::OsStrExt;
    let vm = start_vm();
    let (base, host) = writable_dir(&vm, "skipped");
    let dest = connect(settings(&vm, pinned(&vm))).await;
    let cancel = CancellationToken::new();

    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "do not copy").unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("ok.txt"), "fine").unwrap();
    fs::create_dir_all(local.path().join("sub")).unwrap();
    let dangling = local.path().join("sub/dangling");
    symlink("/nonexistent/target", &dangling).unwrap();
    let escape = local.path().join("escape");
    symlink(outside.path().join("secret"), &escape).unwrap();
    let fifo = local.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let odd = std::ffi::OsStr::from_bytes(b"caf\xff\nname");
    fs::create_dir(local.path().join(odd)).unwrap();
    fs::write(local.path().join(odd).join(odd), "odd").unwrap();

    let tree = bbr_storage::local::walk(local.path()).unwrap();
    let mut skipped: Vec<PathBuf> = tree.skipped.iter().map(|s| s.path.clone()).collect();
    skipped.sort();
    let mut want = vec![dangling.clone(), escape.clone(), fifo.clone()];
    want.sort();
    assert_eq!(skipped, want);
    let done = dest.upload_walked(&tree, &base, &cancel).await.unwrap();
    assert!(done.skipped.is_empty());
    assert_eq!(done.bytes, 7);
    assert_eq!(fs::read(host.join("ok.txt")).unwrap(), b"fine");
    assert_eq!(fs::read(host.join(odd).join(odd)).unwrap(), b"odd");
    assert!(host.join("sub").is_dir());
    for gone in ["pipe", "escape", "sub/dangling"] {
        assert!(
            fs::symlink_metadata(host.join(gone)).is_err(),
            "{gone} copied"
        );
    }

    // A missing source directory.
    let missing = local.path().join("missing");
    let err = dest
        .upload_tree(&missing, &format!("{base}/three"), &cancel)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    dest.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_failure_names_the_file_and_leaves_no_partial_file() {
    let vm = start_vm();
    let (base, host) = writable_dir(&vm, "remote-fail");
    // A directory where a file should go: scp refuses, and so do we.
    fs::create_dir_all(host.join("clash/inner")).unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("clash"), "file").unwrap();
    let dest = connect(settings(&vm, pinned(&vm))).await;
    let err = dest
        .upload_tree(local.path(), &base, &CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    dest.disconnect().await;
    assert!(
        err.contains(&local.path().join("clash").display().to_string()),
        "{err}"
    );
    assert!(err.contains(&format!("{base}/clash")), "{err}");
    assert!(err.contains("is a directory"), "{err}");
    assert_eq!(listing(&host), vec!["clash/", "clash/inner/"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_large_upload_leaves_neither_file_nor_temporary() {
    let vm = start_vm();
    let (base, host) = writable_dir(&vm, "cancel");
    let local = tempfile::tempdir().unwrap();
    let big = fs::File::create(local.path().join("big.bin")).unwrap();
    big.set_len(200 * 1024 * 1024).unwrap();
    drop(big);

    let dest = Arc::new(connect(settings(&vm, pinned(&vm))).await);
    let cancel = CancellationToken::new();
    let upload = {
        let (dest, cancel) = (dest.clone(), cancel.clone());
        let (dir, base) = (local.path().to_path_buf(), base.clone());
        tokio::spawn(async move { dest.upload_tree(&dir, &base, &cancel).await })
    };

    // No event announces progress: watch the temporary grow on the VM's disk. (A blocking
    // poll on the test's own thread; the upload runs on the runtime's workers.)
    wait::until(
        "a temporary of over 1 MiB on the VM",
        Duration::from_secs(60),
        || {
            let growing = fs::read_dir(&host).unwrap().flatten().any(|e| {
                e.file_name().to_string_lossy().starts_with(".bbr-partial")
                    && e.metadata().is_ok_and(|m| m.len() > 1024 * 1024)
            });
            assert!(
                growing || !upload.is_finished(),
                "the upload finished before it could be cancelled"
            );
            growing
        },
    );
    cancel.cancel();
    // No wall-clock bound beyond the deadline: the `Cancelled` result shows the upload
    // stopped for the token rather than running to its end.
    let result = tokio::time::timeout(Duration::from_secs(30), upload)
        .await
        .expect("the cancelled upload ends within 30 s")
        .unwrap();
    assert!(matches!(result, Err(StorageError::Cancelled)), "{result:?}");
    assert!(!host.join("big.bin").exists());
    assert!(partials(&host).is_empty(), "{:?}", listing(&host));
    assert!(listing(&host).is_empty(), "{:?}", listing(&host));

    // The connection is still usable afterwards.
    let small = tempfile::tempdir().unwrap();
    fs::write(small.path().join("after"), "ok").unwrap();
    dest.upload_tree(small.path(), &base, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(listing(&host), vec!["after"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_token_uploads_nothing() {
    let vm = start_vm();
    let (base, host) = writable_dir(&vm, "precancelled");
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("f"), "x").unwrap();
    let dest = connect(settings(&vm, pinned(&vm))).await;
    let cancel = CancellationToken::new();
    cancel.cancel();
    let result = dest.upload_tree(local.path(), &base, &cancel).await;
    dest.disconnect().await;
    assert!(matches!(result, Err(StorageError::Cancelled)), "{result:?}");
    assert!(listing(&host).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_private_key_is_a_clear_auth_error_without_key_material() {
    let vm = start_vm();
    let other =
        bbr_testkit::keys::ClientKey::generate(bbr_testkit::keys::KeyType::default()).expect("key");
    let pem = other.private_key_pem().unwrap();
    let mut wrong = settings(&vm, pinned(&vm));
    wrong.private_key_pem = pem.clone();
    let err = connect_err(wrong).await;
    assert!(err.contains("authentication"), "{err}");
    assert!(err.contains(vm.user()), "{err}");
    assert!(err.contains(&vm.addr().to_string()), "{err}");
    let body_line = pem.lines().nth(1).unwrap();
    assert!(!err.contains(body_line), "{err}");

    let mut garbage = settings(&vm, pinned(&vm));
    garbage.private_key_pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END OPENSSH PRIVATE KEY-----\n".to_string();
    let err = connect_err(garbage).await;
    assert!(err.contains("private key"), "{err}");
    assert!(!err.contains("c2VjcmV0"), "{err}");
    let own = vm.client_key().private_key_pem().unwrap();
    let own_body = own.lines().nth(1).unwrap();
    assert!(!format!("{:?}", settings(&vm, pinned(&vm))).contains(own_body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_refused_by_the_server_fails_promptly() {
    let vm = start_vm();
    let (base, host) = writable_dir(&vm, "refusing");
    // A directory the login user may not write to (created by root on the host).
    fs::create_dir_all(host.join("locked")).unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::create_dir_all(local.path().join("locked")).unwrap();
    let big = fs::File::create(local.path().join("locked/big.bin")).unwrap();
    big.set_len(100 * 1024 * 1024).unwrap();
    drop(big);
    let dest = connect(settings(&vm, pinned(&vm))).await;
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        dest.upload_tree(local.path(), &base, &CancellationToken::new()),
    )
    .await
    .expect("the refused upload fails within 30 s")
    .unwrap_err()
    .to_string();
    dest.disconnect().await;
    assert!(err.contains("Permission denied"), "{err}");
    assert!(err.contains("locked/big.bin"), "{err}");
    assert_eq!(listing(&host), vec!["locked/"]);
}
