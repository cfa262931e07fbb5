//! `bbr director restore` end to end: Go bbr artifacts, round trips, and refusal of bad
//! artifacts before any script runs on the VM.

mod support;

use std::path::Path;
use support::*;

fn restore_job(h: &Harness, job: &str) {
    h.script(job, Script::PreRestoreLock, "");
    h.script(job, Script::Restore, &format!("mkdir -p /var/vcap/store/restored/{job}\ncp -a \"$BBR_ARTIFACT_DIRECTORY\"/. /var/vcap/store/restored/{job}/"));
    h.script(job, Script::PostRestoreUnlock, "");
}

fn arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn restores_the_go_bbr_integration_fixture() {
    let h = Harness::new();
    restore_job(&h, "bosh");
    let fixture = fixture("director-backup-integration");
    let run = h.bbr(&["restore", "--artifact-path", &arg(&fixture)]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert_eq!(
        h.vm.read("store/restored/bosh/backup").unwrap(),
        "this is a backup\n"
    );
    let out = run.stdout();
    for line in [
        &format!("INFO - Starting restore of {}...", h.name()),
        &format!("INFO - Validating backup artifact for {}...", h.name()),
        "INFO - Copying backup -- 4.0K uncompressed -- for job bosh on bosh/0...",
        "INFO - Finished copying backup for job bosh on bosh/0.",
        "INFO - Locking bosh on bosh/0 for restore...",
        "INFO - Restoring bosh on bosh/0...",
        &format!("INFO - Completed restore of {}", h.name()),
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    assert_eq!(
        h.events(),
        vec![
            "bosh pre-restore-lock",
            "bosh restore",
            "bosh post-restore-unlock"
        ]
    );
    assert!(!h.remote_marker_exists());
}

#[test]
fn restores_the_go_bbr_three_job_fixture() {
    let h = Harness::new();
    for job in [
        "amazing-backup-and-restore",
        "remarkable-backup-and-restore",
        "test-backup-and-restore",
    ] {
        restore_job(&h, job);
    }
    let run = h.bbr(&["r", "-a", &arg(&fixture("director-backup"))]);
    assert_eq!(run.code(), 0, "{}", run.show());
    for job in [
        "amazing-backup-and-restore",
        "remarkable-backup-and-restore",
        "test-backup-and-restore",
    ] {
        assert_eq!(
            h.vm.read(format!("store/restored/{job}/backup")).unwrap(),
            "this is a backup\n"
        );
    }
}

#[test]
fn backup_then_restore_round_trips_every_file() {
    let h = Harness::new();
    h.script("db", Script::Backup, "cd \"$BBR_ARTIFACT_DIRECTORY\"\nmkdir -p 'dir with space/deeper' empty\nhead -c 2000000 /dev/urandom > 'dir with space/deeper/blob'\necho hi > top\ntouch zero");
    restore_job(&h, "db");
    let backup = h.bbr(&["backup"]);
    assert_eq!(backup.code(), 0, "{}", backup.show());
    let artifact = h.artifact_in(h.work.path());
    // what the VM produced, as bbr stored it
    let original = {
        let out = std::process::Command::new("tar")
            .args(["-xOf"])
            .arg(artifact.join("bosh-0-db.tar"))
            .arg("./dir with space/deeper/blob")
            .output()
            .unwrap();
        out.stdout
    };
    assert_eq!(original.len(), 2_000_000);
    let restore = h.bbr(&["restore", "--artifact-path", &arg(&artifact)]);
    assert_eq!(restore.code(), 0, "{}", restore.show());
    assert_eq!(
        h.vm.read_bytes("store/restored/db/dir with space/deeper/blob")
            .unwrap(),
        original
    );
    assert_eq!(h.vm.read("store/restored/db/top").unwrap(), "hi\n");
    assert!(h.vm.exists("store/restored/db/empty"));
    assert!(h.vm.exists("store/restored/db/zero"));
}

fn corrupt_copy(h: &Harness, edit: impl FnOnce(&Path)) -> std::path::PathBuf {
    let copy = h.work.path().join("artifact");
    copy_dir(&fixture("director-backup-integration"), &copy);
    edit(&copy);
    copy
}

#[test]
fn corrupted_content_is_refused_before_any_lock_or_restore_script() {
    let h = Harness::new();
    restore_job(&h, "bosh");
    h.script("bosh", Script::Metadata, "");
    let artifact = corrupt_copy(&h, |dir| {
        let tar = dir.join("bosh-0-bosh.tar");
        let mut bytes = std::fs::read(&tar).unwrap();
        let pos = bytes.windows(4).position(|w| w == b"this").unwrap();
        bytes[pos] = b'T';
        std::fs::write(&tar, bytes).unwrap();
    });
    let run = h.bbr(&["restore", "--artifact-path", &arg(&artifact)]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains("Backup is corrupted"),
        "{}",
        run.show()
    );
    assert!(
        run.stderr().contains("bosh-0-bosh.tar"),
        "names the file: {}",
        run.show()
    );
    assert!(h.events().is_empty(), "no script may run: {:?}", h.events());
    assert!(!h.remote_marker_exists(), "uploaded data is removed");
    assert!(!h.vm.exists("store/restored"));
}

#[test]
fn truncated_tar_is_refused_before_contacting_the_vm() {
    let h = Harness::new();
    restore_job(&h, "bosh");
    let artifact = corrupt_copy(&h, |dir| {
        let tar = dir.join("bosh-0-bosh.tar");
        let bytes = std::fs::read(&tar).unwrap();
        std::fs::write(&tar, &bytes[..700]).unwrap();
    });
    let run = h.bbr(&["restore", "--artifact-path", &arg(&artifact)]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(run.stderr().contains("bosh-0-bosh.tar"), "{}", run.show());
    assert!(
        !run.stdout().contains("Looking for scripts"),
        "{}",
        run.show()
    );
    assert!(h.events().is_empty());
}

#[test]
fn missing_tar_and_missing_metadata_are_named() {
    let h = Harness::new();
    restore_job(&h, "bosh");
    let artifact = corrupt_copy(&h, |dir| {
        std::fs::remove_file(dir.join("bosh-0-bosh.tar")).unwrap()
    });
    let run = h.bbr(&["restore", "--artifact-path", &arg(&artifact)]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("bosh-0-bosh.tar"), "{}", run.show());
    let run = h.bbr(&["restore", "--artifact-path", "i-am-not-here"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr()
            .contains("i-am-not-here: no such file or directory"),
        "{}",
        run.show()
    );
}

#[test]
fn tar_entry_escaping_the_target_is_refused() {
    let h = Harness::new();
    restore_job(&h, "bosh");
    let artifact = h.work.path().join("evil");
    std::fs::create_dir_all(artifact.join("src")).unwrap();
    std::fs::write(artifact.join("src/x"), "pwned\n").unwrap();
    // GNU tar stores ../ names verbatim with -P
    let status = std::process::Command::new("tar")
        .args(["-cPf"])
        .arg(artifact.join("bosh-0-bosh.tar"))
        .arg("-C")
        .arg(artifact.join("src"))
        .args(["--transform", "s,^,./../,", "x"])
        .status()
        .unwrap();
    assert!(status.success());
    let sum = sha256_hex(b"pwned\n");
    std::fs::write(
        artifact.join("metadata"),
        format!("instances:\n- name: bosh\n  index: \"0\"\n  artifacts:\n  - name: bosh\n    checksums:\n      ./../x: {sum}\n"),
    )
    .unwrap();
    let run = h.bbr(&["restore", "--artifact-path", &arg(&artifact)]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains("../x"),
        "names the entry: {}",
        run.show()
    );
    assert!(h.events().is_empty());
}

#[test]
fn pre_restore_lock_failure_skips_restore_but_unlocks() {
    let h = Harness::new();
    h.script("bosh", Script::PreRestoreLock, "echo 'nope' >&2\nexit 1");
    h.script("bosh", Script::Restore, "");
    h.script("bosh", Script::PostRestoreUnlock, "");
    let run = h.bbr(&[
        "restore",
        "-a",
        &arg(&fixture("director-backup-integration")),
    ]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(
        run.stderr().contains("pre-restore-lock failed"),
        "{}",
        run.show()
    );
    assert_eq!(
        h.events(),
        vec!["bosh pre-restore-lock", "bosh post-restore-unlock"]
    );
    assert!(!h.remote_marker_exists());
}

#[test]
fn restore_failure_still_unlocks() {
    let h = Harness::new();
    h.script("bosh", Script::Restore, "echo 'restore broke' >&2\nexit 2");
    h.script(
        "bosh",
        Script::PostRestoreUnlock,
        "echo 'unlock broke' >&2\nexit 1",
    );
    let run = h.bbr(&[
        "restore",
        "-a",
        &arg(&fixture("director-backup-integration")),
    ]);
    assert_eq!(run.code(), 9, "{}", run.show());
    assert!(run.stderr().contains("Failed to restore: Error attempting to run restore for job bosh on bosh/0: restore broke - exit code 2"), "{}", run.show());
    assert!(run.stderr().contains("unlock broke"));
    assert_eq!(h.events(), vec!["bosh restore", "bosh post-restore-unlock"]);
}

#[test]
fn restore_refuses_existing_marker_and_missing_scripts() {
    let h = Harness::new();
    restore_job(&h, "bosh");
    h.vm.install_file("store/bbr-backup/keep", "x", 0o644)
        .unwrap();
    let run = h.bbr(&[
        "restore",
        "-a",
        &arg(&fixture("director-backup-integration")),
    ]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("Check artifact dir failed: Directory /var/vcap/store/bbr-backup already exists on instance bosh/0"), "{}", run.show());
    assert!(h.vm.exists("store/bbr-backup/keep"));

    let empty = Harness::new();
    empty.script("bosh", Script::Backup, "");
    let run = empty.bbr(&[
        "restore",
        "-a",
        &arg(&fixture("director-backup-integration")),
    ]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().contains(&format!(
            "Deployment '{}' has no restore scripts",
            empty.name()
        )),
        "{}",
        run.show()
    );
}

#[test]
fn restore_orders_locks_by_metadata() {
    let h = Harness::new();
    for job in [
        "amazing-backup-and-restore",
        "remarkable-backup-and-restore",
        "test-backup-and-restore",
    ] {
        restore_job(&h, job);
    }
    h.script("test-backup-and-restore", Script::Metadata, "echo 'restore_should_be_locked_before:\n- job_name: amazing-backup-and-restore\n  release: bosh'");
    let run = h.bbr(&["restore", "-a", &arg(&fixture("director-backup"))]);
    assert_eq!(run.code(), 0, "{}", run.show());
    let events = h.events();
    let pos = |e: &str| events.iter().position(|x| x == e).unwrap();
    assert!(
        pos("test-backup-and-restore pre-restore-lock")
            < pos("amazing-backup-and-restore pre-restore-lock")
    );
    assert!(
        pos("amazing-backup-and-restore post-restore-unlock")
            < pos("test-backup-and-restore post-restore-unlock")
    );
}

#[test]
fn discontinued_restore_name_refuses_the_restore() {
    let h = Harness::new();
    restore_job(&h, "bosh");
    h.script("bosh", Script::Metadata, "echo 'restore_name: foo'");
    let run = h.bbr(&[
        "restore",
        "-a",
        &arg(&fixture("director-backup-integration")),
    ]);
    assert_eq!(run.code(), 1, "{}", run.show());
    assert!(run.stderr().contains("discontinued metadata keys backup_name/restore_name found on instance bosh. bbr cannot restore this backup artifact."));
    assert!(!h.events().iter().any(|e| e.contains("restore")));
    assert!(!h.remote_marker_exists());
}

/// A GNU-format tar header block written byte by byte (the `tar` crate refuses these).
fn raw_tar_header(name: &str, typeflag: u8, size: usize, link: &str, mode: u32) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    h[108..124].copy_from_slice(b"0000000\x000000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"14542132020\0");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..265].copy_from_slice(b"ustar  \0");
    h[329..345].copy_from_slice(b"0000001\x000000001\0"); // device 1,1 (/dev/mem)
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// An artifact for job `bosh` of `bosh/0` holding `./data` ("data\n") plus `hostile`.
fn hostile_artifact(h: &Harness, name: &str, hostile: &[u8]) -> std::path::PathBuf {
    let artifact = h.work.path().join(name);
    std::fs::create_dir_all(&artifact).unwrap();
    let mut tar = raw_tar_header("./", b'5', 0, "", 0o755);
    tar.extend(raw_tar_header("./sub/", b'5', 0, "", 0o755));
    tar.extend(raw_tar_header("./data", b'0', 5, "", 0o644));
    let mut block = b"data\n".to_vec();
    block.resize(512, 0);
    tar.extend(block);
    tar.extend_from_slice(hostile);
    tar.extend(vec![0u8; 1024]);
    std::fs::write(artifact.join("bosh-0-bosh.tar"), tar).unwrap();
    let sum = sha256_hex(b"data\n");
    std::fs::write(
        artifact.join("metadata"),
        format!("instances:\n- name: bosh\n  index: \"0\"\n  artifacts:\n  - name: bosh\n    checksums:\n      ./data: {sum}\n"),
    )
    .unwrap();
    artifact
}

#[test]
fn device_node_and_global_pax_artifacts_are_refused_before_any_script() {
    let h = Harness::new();
    restore_job(&h, "bosh");
    h.script("bosh", Script::Metadata, "");
    let device = raw_tar_header("./mem", b'3', 0, "", 0o666);
    let records = " linkpath=/etc/shadow\n";
    let record = format!("{}{records}", records.len() + 2);
    let mut global = raw_tar_header("./PaxHeaders/g", b'g', record.len(), "", 0o644);
    let mut block = record.into_bytes();
    block.resize(512, 0);
    global.extend(block);
    global.extend(raw_tar_header("./config", b'2', 0, "sub", 0o777));
    for (name, hostile, words) in [
        ("device", device, ["./mem", "character device 1,1"]),
        ("global-pax", global, ["global PAX header", "linkpath"]),
    ] {
        let artifact = hostile_artifact(&h, name, &hostile);
        let run = h.bbr(&["restore", "--artifact-path", &arg(&artifact)]);
        assert_eq!(run.code(), 1, "{name}: {}", run.show());
        assert!(
            run.stderr().contains("Backup is corrupted"),
            "{}",
            run.show()
        );
        for word in ["bosh-0-bosh.tar", words[0], words[1]] {
            assert!(
                run.stderr().contains(word),
                "{name}: no {word:?} in {}",
                run.show()
            );
        }
        assert!(
            !run.stdout().contains("Looking for scripts"),
            "the VM is not contacted: {}",
            run.show()
        );
        assert!(h.events().is_empty(), "no script may run: {:?}", h.events());
        assert!(!h.remote_marker_exists(), "nothing is uploaded");
        assert!(!h.vm.exists("store/restored"));
    }
}

#[test]
fn set_uid_file_is_restored_without_the_bit() {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::new();
    restore_job(&h, "bosh");
    let tool = raw_tar_header("./tool", b'0', 5, "", 0o4755);
    let mut hostile = tool;
    let mut block = b"tool\n".to_vec();
    block.resize(512, 0);
    hostile.extend(block);
    hostile.extend(raw_tar_header("./shared/", b'5', 0, "", 0o2775));
    let artifact = hostile_artifact(&h, "setuid", &hostile);
    let sum = sha256_hex(b"tool\n");
    let meta = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    std::fs::write(
        artifact.join("metadata"),
        format!("{meta}      ./tool: {sum}\n"),
    )
    .unwrap();
    let run = h.bbr(&["restore", "--artifact-path", &arg(&artifact)]);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert_eq!(h.vm.read("store/restored/bosh/tool").unwrap(), "tool\n");
    let mode = |rel: &str| {
        std::fs::symlink_metadata(h.vm.vcap_path(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("store/restored/bosh/tool"), 0o755, "{}", run.show());
    assert_eq!(mode("store/restored/bosh/shared"), 0o775, "{}", run.show());
    let out = run.show();
    for entry in ["./tool", "./shared/"] {
        assert!(
            out.contains(&format!(
                "Restoring {entry} of bosh-0-bosh.tar on bosh/0 without its set-uid/set-gid bits"
            )),
            "one warning per entry: {out}"
        );
    }
}

/// Issue 10, item 5: file names that are not UTF-8 (Latin-1 `é`, a lone 0xff, and one long
/// enough for yaml.v2's multi-line `!!binary` complex key) back up like Go bbr, with
/// `!!binary` metadata keys, and are restored with exactly those bytes and contents.
#[test]
fn non_utf8_file_names_round_trip_byte_for_byte() {
    use std::os::unix::ffi::OsStrExt;
    let h = Harness::new();
    h.script("db", Script::Backup, "cd \"$BBR_ARTIFACT_DIRECTORY\"\nmkdir -p sub\nprintf one > \"$(printf 'caf\\351')\"\nprintf two > \"sub/$(printf '\\377')\"\nprintf three > \"$(printf 'long-\\351%.0s' $(seq 20))\"\nprintf four > plain");
    restore_job(&h, "db");
    let backup = h.bbr(&["backup"]);
    assert_eq!(backup.code(), 0, "{}", backup.show());
    let artifact = h.artifact_in(h.work.path());
    let metadata = std::fs::read_to_string(artifact.join("metadata")).unwrap();
    // "./caf\xe9" and "./sub/\xff" as plain keys; the long name as a `? !!binary |` key.
    assert!(metadata.contains("!!binary Li9jYWbp: "), "{metadata}");
    assert!(metadata.contains("!!binary Li9zdWIv/w==: "), "{metadata}");
    assert!(metadata.contains("? !!binary |\n"), "{metadata}");
    assert!(metadata.contains("./plain: "), "{metadata}");

    let restore = h.bbr(&["restore", "--artifact-path", &arg(&artifact)]);
    assert_eq!(restore.code(), 0, "{}", restore.show());
    let restored = h.vm.vcap_path("store/restored/db");
    let long: Vec<u8> = (0..20).flat_map(|_| b"long-\xe9".to_vec()).collect();
    let expected: [(&[u8], &[u8]); 4] = [
        (b"caf\xe9", b"one"),
        (b"sub/\xff", b"two"),
        (&long, b"three"),
        (b"plain", b"four"),
    ];
    for (name, content) in expected {
        let path = restored.join(std::ffi::OsStr::from_bytes(name));
        assert_eq!(
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            content
        );
    }
    let mut top: Vec<Vec<u8>> = std::fs::read_dir(&restored)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    top.sort();
    let mut want = vec![
        b"caf\xe9".to_vec(),
        long.clone(),
        b"plain".to_vec(),
        b"sub".to_vec(),
    ];
    want.sort();
    assert_eq!(top, want, "exactly these names, byte for byte");
}
