//! `bbr artifact validate` and `bbr artifact list` run as the built binary against Go bbr's
//! fixtures (read through `bbr_testkit::gobbr`) and against copies corrupted one way at a
//! time (docs/cli.md#bbr-artifact). Checksums of hand-built tars come from `sha256sum`,
//! not from our own hashing.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.all()))
    }
}

fn bbr(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_bbr"))
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("run bbr");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn validate(path: &Path) -> Run {
    bbr(&["artifact", "validate", path.to_str().expect("utf-8 path")])
}

fn validate_json(path: &Path) -> Run {
    bbr(&[
        "artifact",
        "validate",
        path.to_str().expect("utf-8 path"),
        "--json",
    ])
}

/// SHA-256 of `data` as `sha256sum` computes it.
fn sha256sum(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = child.wait_with_output().expect("sha256sum output");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8")[..64].to_string()
}

/// A copy of a Go bbr fixture artifact, writable.
fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dst = tmp.path().join(name);
    fs::create_dir(&dst).expect("mkdir");
    for entry in fs::read_dir(bbr_testkit::gobbr::fixture(name)).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = dst.join(entry.file_name());
        fs::copy(entry.path(), &target).expect("copy");
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    (tmp, dst)
}

/// A tar header block written byte by byte (GNU magic), so that hostile names survive.
fn header(name: &str, typeflag: u8, size: usize) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..124].copy_from_slice(b"0000000\x000000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"14542132020\0");
    h[156] = typeflag;
    h[257..265].copy_from_slice(b"ustar  \0");
    h[329..345].copy_from_slice(b"0000001\x000000003\0"); // device 1,3 (/dev/null)
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A complete tar of `entries`: (name, typeflag, content).
fn tar(entries: &[(&str, u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, typeflag, content) in entries {
        out.extend(header(name, *typeflag, content.len()));
        out.extend_from_slice(content);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend(vec![0u8; 1024]);
    out
}

/// The director-backup-integration fixture with its one tar (`bosh-0-bosh.tar`, metadata:
/// `./backup` = "this is a backup\n") replaced by `entries` plus that file.
fn director_artifact_with(entries: &[(&str, u8, &[u8])]) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = copy_fixture("director-backup-integration");
    let mut all: Vec<(&str, u8, &[u8])> =
        vec![("./", b'5', b""), ("./backup", b'0', b"this is a backup\n")];
    all.extend_from_slice(entries);
    fs::write(dir.join("bosh-0-bosh.tar"), tar(&all)).expect("write tar");
    (tmp, dir)
}

/// Asserts that `dir` is invalid, with each of `needles` on one ERROR line of stdout that
/// names `file`, and in the error block on stderr.
fn assert_invalid(dir: &Path, file: &str, needles: &[&str]) -> Run {
    let run = validate(dir);
    assert_eq!(run.code, 1, "{}", run.all());
    let full = dir.join(file).display().to_string();
    for needle in needles {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.contains(" ERROR - ") && l.contains(&full) && l.contains(needle)),
            "no ERROR line naming {full} and {needle:?}: {}",
            run.all()
        );
        assert!(
            run.stderr.contains(needle) && run.stderr.contains(&full),
            "{}",
            run.all()
        );
    }
    assert!(
        run.stdout
            .contains(&format!("Backup artifact {} is not valid", dir.display())),
        "{}",
        run.all()
    );
    run
}

#[test]
fn go_bbr_fixtures_validate() {
    for name in [
        "redis-backup",
        "redis-backup-with-disabled-job",
        "director-backup",
        "director-backup-integration",
    ] {
        let dir = bbr_testkit::gobbr::fixture(name);
        let run = validate(&dir);
        assert_eq!(run.code, 0, "{name}: {}", run.all());
        assert!(run.stderr.is_empty(), "{name}: {}", run.all());
        assert!(
            run.stdout.contains(&format!(
                " INFO - Validating backup artifact {}...",
                dir.display()
            )),
            "{}",
            run.all()
        );
        assert!(
            run.stdout.contains(&format!(
                " INFO - Backup artifact {} is valid",
                dir.display()
            )),
            "{}",
            run.all()
        );
        assert!(
            run.stdout.lines().all(|l| l.starts_with("[bbr] ")),
            "{}",
            run.all()
        );
        assert!(!run.stdout.contains("ERROR"), "{}", run.all());
        let json = validate_json(&dir);
        assert_eq!(json.code, 0, "{}", json.all());
        assert_eq!(json.json()["valid"], Value::Bool(true));
    }
    let run = validate(&bbr_testkit::gobbr::fixture("redis-backup"));
    assert!(
        run.stdout.contains(
            " INFO - redis-1-redis-server.tar (artifact redis-server of redis/1): 110592 bytes, 2 files, checksums match"
        ),
        "{}",
        run.all()
    );
}

#[test]
fn a_tar_altered_by_one_byte_is_named_with_the_file_inside() {
    let (_tmp, dir) = copy_fixture("redis-backup");
    let tar = dir.join("redis-0-redis-server.tar");
    let mut bytes = fs::read(&tar).expect("read");
    bytes[151 * 512 + 512 + 10] ^= 0x20; // inside ./redis-server/dump.rdb
    fs::write(&tar, &bytes).expect("write");
    let run = assert_invalid(
        &dir,
        "redis-0-redis-server.tar",
        &["checksum mismatch for file ./redis-server/dump.rdb"],
    );
    assert!(
        run.stderr.starts_with("1 error occurred:\n"),
        "{}",
        run.all()
    );
}

#[test]
fn a_truncated_tar_is_named() {
    let (_tmp, dir) = copy_fixture("redis-backup");
    let tar = dir.join("redis-1-redis-server.tar");
    let bytes = fs::read(&tar).expect("read");
    fs::write(&tar, &bytes[..bytes.len() - 1024]).expect("truncate");
    assert_invalid(
        &dir,
        "redis-1-redis-server.tar",
        &["the tar is truncated", "end-of-archive"],
    );
}

#[test]
fn a_deleted_tar_is_named() {
    let (_tmp, dir) = copy_fixture("redis-backup");
    fs::remove_file(dir.join("other-redis-0-redis-server.tar")).expect("rm");
    assert_invalid(
        &dir,
        "other-redis-0-redis-server.tar",
        &["does not exist (metadata lists it for artifact redis-server of other-redis/0)"],
    );
}

#[test]
fn an_extra_file_in_a_tar_is_named() {
    let (_tmp, dir) = director_artifact_with(&[("./sneaky", b'0', b"x")]);
    assert_invalid(
        &dir,
        "bosh-0-bosh.tar",
        &["file ./sneaky is in the tar but not recorded in metadata for artifact bosh of bosh/0"],
    );
}

#[test]
fn a_missing_file_is_named() {
    let (_tmp, dir) = copy_fixture("director-backup-integration");
    fs::write(dir.join("bosh-0-bosh.tar"), tar(&[("./", b'5', b"")])).expect("write tar");
    assert_invalid(
        &dir,
        "bosh-0-bosh.tar",
        &[
            "file ./backup is recorded in metadata for artifact bosh of bosh/0 but is not in the tar",
        ],
    );
}

#[test]
fn an_unlisted_tar_is_named() {
    let (_tmp, dir) = copy_fixture("redis-backup-with-disabled-job");
    fs::copy(
        dir.join("redis-0-redis-server.tar"),
        dir.join("redis-0-disabled-job.tar"),
    )
    .expect("copy");
    assert_invalid(
        &dir,
        "redis-0-disabled-job.tar",
        &["is not listed in metadata"],
    );
}

#[test]
fn removed_and_unparseable_metadata_are_named() {
    let (_tmp, dir) = copy_fixture("redis-backup");
    fs::remove_file(dir.join("metadata")).expect("rm");
    assert_invalid(&dir, "metadata", &["does not exist"]);

    fs::write(dir.join("metadata"), "instances:\n- name: [unclosed\n").expect("garbage");
    assert_invalid(&dir, "metadata", &["failed to unmarshal metadata"]);
}

#[test]
fn dotdot_device_and_duplicate_entries_are_named() {
    let (_tmp, dir) = director_artifact_with(&[("../evil", b'0', b"x")]);
    assert_invalid(
        &dir,
        "bosh-0-bosh.tar",
        &["unsafe tar entry ../evil: path contains a '..' component"],
    );

    let (_tmp, dir) = director_artifact_with(&[("./null", b'3', b"")]);
    assert_invalid(
        &dir,
        "bosh-0-bosh.tar",
        &["unsafe tar entry ./null: character device 1,3: device nodes and FIFOs are refused"],
    );

    let (_tmp, dir) = director_artifact_with(&[("./backup", b'0', b"this is a backup\n")]);
    assert_invalid(
        &dir,
        "bosh-0-bosh.tar",
        &["tar entry ./backup appears 2 times"],
    );
}

#[test]
fn an_unreadable_tar_and_a_missing_directory_are_named() {
    // Tests run as root here, so a directory stands in for a file that cannot be read.
    let (_tmp, dir) = copy_fixture("redis-backup-with-disabled-job");
    let tar = dir.join("redis-0-redis-server.tar");
    fs::remove_file(&tar).expect("rm");
    fs::create_dir(&tar).expect("mkdir");
    assert_invalid(
        &dir,
        "redis-0-redis-server.tar",
        &["cannot be read: is a directory"],
    );

    let missing = dir.join("no-such-artifact");
    let run = validate(&missing);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains(&format!(
            "{}: cannot open the artifact directory: no such file or directory",
            missing.display()
        )),
        "{}",
        run.all()
    );
}

#[test]
fn several_problems_are_all_listed() {
    let (_tmp, dir) = copy_fixture("redis-backup");
    let flipped = dir.join("redis-0-redis-server.tar");
    let mut bytes = fs::read(&flipped).expect("read");
    bytes[151 * 512 + 512 + 10] ^= 0x20;
    fs::write(&flipped, &bytes).expect("write");
    fs::remove_file(dir.join("redis-1-redis-server.tar")).expect("rm");
    fs::write(dir.join("stray.tar"), tar(&[("./x", b'0', b"x")])).expect("stray");

    let run = validate(&dir);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.starts_with("3 errors occurred:\n"),
        "{}",
        run.all()
    );
    for (file, needle) in [
        ("redis-0-redis-server.tar", "checksum mismatch"),
        ("redis-1-redis-server.tar", "does not exist"),
        ("stray.tar", "is not listed in metadata"),
    ] {
        let line = format!("{}: ", dir.join(file).display());
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with(&line) && l.contains(needle)),
            "{file}: {}",
            run.all()
        );
    }
    assert!(
        run.stdout.contains(&format!(
            "ERROR - Backup artifact {} is not valid: 3 problems",
            dir.display()
        )),
        "{}",
        run.all()
    );
    // The intact tar is still reported as such.
    assert!(
        run.stdout.contains(
            "INFO - other-redis-0-redis-server.tar (artifact redis-server of other-redis/0)"
        ),
        "{}",
        run.all()
    );
}

#[test]
fn json_report_has_the_documented_schema() {
    let (_tmp, dir) = copy_fixture("redis-backup");
    let flipped = dir.join("redis-0-redis-server.tar");
    let mut bytes = fs::read(&flipped).expect("read");
    bytes[151 * 512 + 512 + 10] ^= 0x20;
    fs::write(&flipped, &bytes).expect("write");
    fs::write(dir.join("stray.tar"), tar(&[("./x", b'0', b"x")])).expect("stray");

    let run = validate_json(&dir);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.is_empty(),
        "--json prints nothing else: {}",
        run.all()
    );
    let report = run.json();
    assert_eq!(report["artifact"], dir.display().to_string());
    assert_eq!(report["valid"], false);
    let tars = report["tars"].as_array().expect("tars");
    let names: Vec<&str> = tars
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "other-redis-0-redis-server.tar",
            "redis-0-redis-server.tar",
            "redis-1-redis-server.tar",
            "stray.tar"
        ]
    );
    let good = &tars[0];
    assert_eq!(good["artifact"], "redis-server of other-redis/0");
    assert_eq!(good["listed"], true);
    assert_eq!(good["size"], 110_592);
    assert_eq!(good["files"], 2);
    assert_eq!(good["valid"], true);
    assert_eq!(good["problems"], Value::Array(vec![]));
    let bad = &tars[1];
    assert_eq!(bad["valid"], false);
    let problem = &bad["problems"][0];
    assert_eq!(problem["kind"], "checksum_mismatch");
    assert_eq!(problem["file"], "redis-0-redis-server.tar");
    assert_eq!(problem["entry"], "./redis-server/dump.rdb");
    assert!(
        problem["message"]
            .as_str()
            .expect("message")
            .starts_with("checksum mismatch for file ./redis-server/dump.rdb: metadata records ba3589985f5f4869fe62d155faee8e59c328b42875cb7e3fbb18c7b8152a92d2, the tar holds "),
        "{problem}"
    );
    let stray = &tars[3];
    assert_eq!(stray["listed"], false);
    assert_eq!(stray["artifact"], Value::Null);
    assert_eq!(stray["files"], 1);
    assert_eq!(stray["problems"][0]["kind"], "unlisted_tar");
    assert_eq!(stray["problems"][0]["entry"], Value::Null);
    // The top-level list holds every problem.
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["checksum_mismatch", "unlisted_tar"]);

    // Metadata problems are top-level only.
    fs::remove_file(dir.join("metadata")).expect("rm");
    let report = validate_json(&dir).json();
    assert_eq!(report["problems"][0]["kind"], "metadata_missing");
    assert_eq!(report["problems"][0]["file"], "metadata");
}

#[test]
fn list_shows_artifacts_newest_first_and_flags_incomplete_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let copy = |name: &str, to: &str| {
        let dst = root.join(to);
        fs::create_dir(&dst).expect("mkdir");
        for entry in fs::read_dir(bbr_testkit::gobbr::fixture(name)).expect("fixture") {
            let entry = entry.expect("entry");
            fs::copy(entry.path(), dst.join(entry.file_name())).expect("copy");
        }
        dst
    };
    copy("redis-backup", "redis_20240102T030405Z");
    copy("director-backup", "10.0.0.6_20231130T120000Z");
    let unfinished = copy("redis-backup-with-disabled-job", "redis_20240105T000000Z");
    fs::remove_file(unfinished.join("metadata")).expect("rm");
    let garbled = copy("redis-backup-with-disabled-job", "my_dep_20240101T000000Z");
    fs::write(garbled.join("metadata"), "instances: [\n").expect("garbage");
    // Ignored: a log file, a plain file named like an artifact, other directories.
    fs::write(root.join("redis_20240102T030405Z.log"), b"log").expect("log");
    fs::write(root.join("redis_20250101T000000Z"), b"file").expect("file");
    fs::create_dir(root.join("notes")).expect("dir");
    fs::create_dir(root.join("redis_2024010T000000Z")).expect("dir");

    let path = root.to_str().expect("utf-8");
    let run = bbr(&["artifact", "list", path]);
    assert_eq!(run.code, 0, "{}", run.all());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", run.all());
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("DEPLOYMENT")
            && lines[0].ends_with("STATUS"),
        "{}",
        run.all()
    );
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "redis_20240105T000000Z",
            "redis_20240102T030405Z",
            "my_dep_20240101T000000Z",
            "10.0.0.6_20231130T120000Z"
        ]
    );
    assert!(
        lines[1].ends_with("INCOMPLETE: no metadata"),
        "{}",
        run.all()
    );
    assert!(
        lines[2].contains(" redis ")
            && lines[2].contains("2024-01-02 03:04:05 UTC")
            && lines[2].ends_with("complete"),
        "{}",
        run.all()
    );
    assert!(
        lines[3].contains("INCOMPLETE: metadata does not parse"),
        "{}",
        run.all()
    );

    let run = bbr(&["artifact", "list", "--json", path]);
    assert_eq!(run.code, 0, "{}", run.all());
    let doc = run.json();
    assert_eq!(doc["path"], path);
    let artifacts = doc["artifacts"].as_array().expect("artifacts");
    assert_eq!(artifacts.len(), 4);
    let redis = &artifacts[1];
    assert_eq!(redis["name"], "redis_20240102T030405Z");
    assert_eq!(redis["deployment"], "redis");
    assert_eq!(redis["time"], "2024-01-02T03:04:05Z");
    assert_eq!(redis["complete"], true);
    assert_eq!(redis["incomplete_reason"], Value::Null);
    assert_eq!(redis["size"], 3 * 110_592 + 844 + 866);
    assert_eq!(
        redis["path"],
        root.join("redis_20240102T030405Z").display().to_string()
    );
    assert_eq!(artifacts[0]["complete"], false);
    assert_eq!(artifacts[0]["incomplete_reason"], "no metadata");
    assert_eq!(artifacts[3]["deployment"], "10.0.0.6");

    let empty = tempfile::tempdir().expect("tempdir");
    let run = bbr(&[
        "artifact",
        "list",
        empty.path().to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.json()["artifacts"], Value::Array(vec![]));

    let run = bbr(&["artifact", "list", &format!("{path}/missing")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("cannot list the artifacts in ")
            && run.stderr.contains("no such file or directory"),
        "{}",
        run.all()
    );
}

#[test]
fn usage_errors_and_help() {
    let run = bbr(&["help"]);
    assert!(
        run.stdout
            .contains("\n   artifact    Validate, list and prune backup artifacts\n"),
        "{}",
        run.all()
    );
    let run = bbr(&["artifact", "--help"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("   validate  Check a backup artifact without restoring it\n")
    );
    assert!(
        run.stdout
            .contains("   list      List the backup artifacts in a directory\n")
    );
    let run = bbr(&["artifact"]);
    assert_eq!(run.code, 1, "a command without subcommand shows its help");
    let run = bbr(&["artifact", "validate", "--help"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("bbr artifact validate [options] PATH"),
        "{}",
        run.all()
    );

    let run = bbr(&["artifact", "validate"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("bbr artifact validate [options] PATH"),
        "help: {}",
        run.all()
    );
    assert!(
        run.stderr.contains("PATH argument is required."),
        "{}",
        run.all()
    );

    let run = bbr(&["artifact", "list", "a", "b"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("unexpected argument 'b'"),
        "{}",
        run.all()
    );

    let run = bbr(&["artifact", "validate", "--bogus", "x"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .starts_with("Incorrect Usage: flag provided but not defined: -bogus"),
        "{}",
        run.all()
    );

    let run = bbr(&[
        "artifact",
        "validate",
        "s3://key:secret@bucket/dep_20240101T000000Z",
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "s3://<redacted>@bucket/dep_20240101T000000Z: an artifact URL must not contain credentials; they come from the environment"
        ),
        "{}",
        run.all()
    );
    assert!(!run.all().contains("secret"), "{}", run.all());
    let run = bbr(&["artifact", "list", "ftp://bucket/prefix"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("ftp://bucket/prefix: unsupported artifact URL scheme \"ftp\""),
        "{}",
        run.all()
    );

    let run = bbr(&["artifact", "verify", "x"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.starts_with("Error command 'verify' not found"),
        "{}",
        run.all()
    );
}

#[test]
fn hand_built_artifact_with_checksums_from_sha256sum_validates() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("dep_20240101T000000Z");
    fs::create_dir(&dir).expect("mkdir");
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(
        dir.join("web-0-app.tar"),
        tar(&[
            ("./", b'5', b""),
            ("./data/", b'5', b""),
            ("./data/blob", b'0', &content),
        ]),
    )
    .expect("tar");
    fs::write(
        dir.join("metadata"),
        format!(
            "instances:\n- name: web\n  index: \"0\"\n  artifacts:\n  - name: app\n    checksums:\n      ./data/blob: {}\n",
            sha256sum(&content)
        ),
    )
    .expect("metadata");
    let run = validate(&dir);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .contains("web-0-app.tar (artifact app of web/0): "),
        "{}",
        run.all()
    );
}
