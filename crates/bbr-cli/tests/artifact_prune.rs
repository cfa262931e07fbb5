//! `bbr artifact prune` as the built binary, on a local directory and on SeaweedFS (S3) and
//! fake-gcs-server (GCS) prefixes written and checked with independent means (std::fs, the
//! AWS CLI, the emulator's HTTP API through the test kit). The artifacts are copies of Go
//! bbr's `redis-backup` fixture under `redis_<time>` names relative to now: ten complete
//! ones a day apart, an old incomplete one (no metadata) and a fresh incomplete one (a
//! backup in progress). `--metrics-file` output is read by Python `prometheus_client`.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use support::metrics::metric;
use support::offline::{bbr, fixture};

use bbr_testkit::stores::{Azurite, FakeGcs, SeaweedFs};
use chrono::{Duration, Utc};
use serde_json::Value;

/// The artifacts: (name, complete). Complete ones are 1..=10 days old; `old_incomplete` is
/// 5 days and 1 hour old, `fresh_incomplete` one hour old.
struct Layout {
    complete: Vec<String>,
    old_incomplete: String,
    fresh_incomplete: String,
}

fn name(age: Duration) -> String {
    format!("redis_{}", (Utc::now() - age).format("%Y%m%dT%H%M%SZ"))
}

fn layout() -> Layout {
    Layout {
        complete: (1..=10).map(|d| name(Duration::days(d))).collect(),
        old_incomplete: name(Duration::days(5) + Duration::hours(1)),
        fresh_incomplete: name(Duration::hours(1)),
    }
}

impl Layout {
    /// Every artifact's files: (artifact, file name, bytes).
    fn files(&self) -> Vec<(String, String, Vec<u8>)> {
        let fixture = fixture();
        let mut out = Vec::new();
        for a in &self.complete {
            for (n, b) in &fixture {
                out.push((a.clone(), n.clone(), b.clone()));
            }
        }
        for a in [&self.old_incomplete, &self.fresh_incomplete] {
            for (n, b) in fixture.iter().filter(|(n, _)| n != "metadata") {
                out.push((a.clone(), n.clone(), b.clone()));
            }
        }
        out
    }

    /// What `--keep-last 3` keeps: the three newest complete ones and the fresh incomplete.
    fn kept(&self) -> Vec<String> {
        let mut kept: Vec<String> = self.complete[..3].to_vec();
        kept.push(self.fresh_incomplete.clone());
        kept.sort();
        kept
    }
}

fn local_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn local_dry_run_then_prune_keeps_exactly_the_policy() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("backups");
    fs::create_dir(&dir).unwrap();
    let layout = layout();
    for (a, n, b) in layout.files() {
        fs::create_dir_all(dir.join(&a)).unwrap();
        fs::write(dir.join(&a).join(n), b).unwrap();
    }
    let before = local_dirs(&dir);
    assert_eq!(before.len(), 12);
    let path = dir.to_str().unwrap();

    // Bad input: refused, naming the flag and value, nothing deleted.
    for (args, expected) in [
        (
            vec!["--keep-last", "-3"],
            r#"--keep-last: invalid keep count "-3""#,
        ),
        (
            vec!["--keep-daily", "1", "--keep-within", "3x"],
            r#"--keep-within: invalid retention duration "3x""#,
        ),
        (
            vec![],
            "the policy keeps everything: give at least one --keep-* flag",
        ),
        (
            vec!["--keep-forever", "2"],
            "flag provided but not defined: -keep-forever",
        ),
        (
            vec!["--keep-last", "1", "--metrics-file", "/no/such/dir/m.prom"],
            r#"--metrics-file "/no/such/dir/m.prom""#,
        ),
    ] {
        let run = bbr(&[&["artifact", "prune", path], &args[..]].concat(), &[]);
        assert_eq!(run.code, 1, "{args:?}: {}", run.all());
        assert!(run.all().contains(expected), "{args:?}: {}", run.all());
        assert_eq!(local_dirs(&dir), before, "{args:?} deleted something");
    }

    // Dry run: every decision with reasons, nothing deleted.
    let run = bbr(
        &["artifact", "prune", path, "--keep-last", "3", "--dry-run"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(local_dirs(&dir), before);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 14, "{}", run.all());
    assert_eq!(
        lines[1],
        format!(
            "{}  kept: incomplete, younger than 24h (may be a backup in progress)",
            layout.fresh_incomplete
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "{}  kept: last 1; newest complete artifact",
            layout.complete[0]
        )
    );
    assert!(run.stdout.contains(&format!(
        "{}  would remove: incomplete and older than 24h",
        layout.old_incomplete
    )));
    assert!(run.stdout.contains(&format!(
        "{}  would remove: not kept by any rule",
        layout.complete[9]
    )));

    // JSON of a dry run.
    let run = bbr(
        &[
            "artifact",
            "prune",
            path,
            "--keep-last",
            "3",
            "--dry-run",
            "--json",
        ],
        &[],
    );
    let doc: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(
        (doc["kept"].as_u64(), doc["removed"].as_u64()),
        (Some(4), Some(8))
    );

    // The real prune, with metrics.
    let metrics = root.path().join("bbr.prom");
    let run = bbr(
        &[
            "artifact",
            "prune",
            path,
            "--keep-last",
            "3",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(local_dirs(&dir), layout.kept(), "{}", run.all());
    assert!(
        run.stdout
            .contains("4 kept, 8 removed, 0 could not be removed")
    );
    let labels = serde_json::json!({"command": "prune", "deployment": "redis"});
    assert_eq!(
        metric(&metrics, "bbr_artifacts_kept", labels.clone()),
        Some(4.0)
    );
    assert_eq!(
        metric(&metrics, "bbr_artifacts_pruned", labels.clone()),
        Some(8.0)
    );
    assert_eq!(metric(&metrics, "bbr_exit_code", labels), Some(0.0));
}

#[test]
fn local_failure_to_delete_one_is_named_and_the_others_go() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path();
    let layout = layout();
    for (a, n, b) in layout.files() {
        fs::create_dir_all(dir.join(&a)).unwrap();
        fs::write(dir.join(&a).join(n), b).unwrap();
    }
    // An immutable file (chattr +i; refused even to root) inside one to-be-removed
    // artifact: it cannot go, the others must.
    let stuck = dir.join(&layout.complete[5]).join("sub");
    fs::create_dir(&stuck).unwrap();
    fs::write(stuck.join("f"), b"x").unwrap();
    let chattr = |flag: &str| {
        let ok = Command::new("chattr")
            .arg(flag)
            .arg(stuck.join("f"))
            .status()
            .expect("chattr");
        assert!(ok.success(), "chattr {flag}");
    };
    chattr("+i");
    let run = bbr(
        &[
            "artifact",
            "prune",
            dir.to_str().unwrap(),
            "--keep-last",
            "3",
        ],
        &[],
    );
    chattr("-i");
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains(&format!(
            "could not remove artifact {}",
            dir.join(&layout.complete[5]).display()
        )),
        "{}",
        run.all()
    );
    let mut expected = layout.kept();
    expected.push(layout.complete[5].clone());
    expected.sort();
    assert_eq!(local_dirs(dir), expected);
    // Its metadata went first: it reads as incomplete now.
    assert!(!dir.join(&layout.complete[5]).join("metadata").exists());
}

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

#[test]
fn s3_prune_removes_whole_artifacts_checked_with_the_aws_cli() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "bbr-prune";
    weed.create_bucket(bucket).expect("bucket");
    let layout = layout();
    let staging = tempfile::tempdir().unwrap();
    for (a, n, b) in layout.files() {
        fs::create_dir_all(staging.path().join(&a)).unwrap();
        fs::write(staging.path().join(&a).join(n), b).unwrap();
    }
    let out = weed
        .aws()
        .args(["s3", "cp", "--recursive", "--quiet"])
        .arg(staging.path())
        .arg(format!("s3://{bucket}/backups/"))
        .output()
        .expect("aws");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = || -> Vec<String> {
        let out = weed
            .aws()
            .args([
                "s3",
                "ls",
                "--recursive",
                &format!("s3://{bucket}/backups/"),
            ])
            .output()
            .expect("aws");
        let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
            .collect();
        keys.sort();
        keys
    };
    let before = listed();
    let env = s3_env(&weed);
    let url = format!("s3://{bucket}/backups");
    let run = bbr(
        &["artifact", "prune", &url, "--keep-last", "3", "--dry-run"],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(listed(), before);
    assert!(run.stdout.contains("8 would be removed"), "{}", run.all());

    let run = bbr(&["artifact", "prune", &url, "--keep-last", "3"], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    let mut dirs: Vec<String> = listed()
        .iter()
        .filter_map(|k| {
            k.strip_prefix("backups/")?
                .split('/')
                .next()
                .map(str::to_string)
        })
        .collect();
    dirs.dedup();
    assert_eq!(dirs, layout.kept(), "{}", run.all());
    // Kept artifacts are whole.
    let per_complete = fixture().len();
    let of = |a: &str| {
        listed()
            .iter()
            .filter(|k| k.starts_with(&format!("backups/{a}/")))
            .count()
    };
    assert_eq!(of(&layout.complete[0]), per_complete);
    assert_eq!(of(&layout.fresh_incomplete), per_complete - 1);
}

#[test]
fn gcs_prune_smaller_case() {
    let gcs = FakeGcs::start().expect("fake-gcs-server");
    let bucket = "bbr-prune";
    gcs.create_bucket(bucket).expect("bucket");
    let fixture = fixture();
    let names: Vec<String> = (1..=3).map(|d| name(Duration::days(d))).collect();
    for a in &names {
        for (n, b) in &fixture {
            gcs.put_object(bucket, &format!("p/{a}/{n}"), b)
                .expect("put");
        }
    }
    let env = vec![("STORAGE_EMULATOR_HOST", gcs.endpoint())];
    let run = bbr(
        &[
            "artifact",
            "prune",
            &format!("gs://{bucket}/p"),
            "--keep-last",
            "1",
            "--json",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let doc: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc["removed"], 2, "{}", run.all());
    for (i, a) in names.iter().enumerate() {
        let exists = gcs
            .get_object(bucket, &format!("p/{a}/metadata"))
            .expect("get")
            .is_some();
        assert_eq!(exists, i == 0, "{a}");
    }
}

#[test]
fn azure_prune_smaller_case() {
    let azurite = Azurite::start().expect("Azurite");
    let container = "bbr-prune";
    azurite.create_container(container).expect("container");
    let fixture = fixture();
    let names: Vec<String> = (1..=3).map(|d| name(Duration::days(d))).collect();
    for a in &names {
        for (n, b) in &fixture {
            azurite
                .put_blob(container, &format!("p/{a}/{n}"), b)
                .expect("put");
        }
    }
    let env = support::stores::azure_env(&azurite);
    let run = bbr(
        &[
            "artifact",
            "prune",
            &format!("az://{container}/p"),
            "--keep-last",
            "1",
            "--json",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let doc: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc["removed"], 2, "{}", run.all());
    // What is left, listed with azblob.py: the newest artifact, whole.
    let left = azurite
        .list_blobs(container)
        .expect("list")
        .unwrap_or_default();
    let mut want: Vec<String> = fixture
        .iter()
        .map(|(n, _)| format!("p/{}/{n}", names[0]))
        .collect();
    want.sort();
    let mut left: Vec<String> = left.into_iter().collect();
    left.sort();
    assert_eq!(left, want);
}
