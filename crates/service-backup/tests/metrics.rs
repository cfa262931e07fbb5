//! `metrics_file`: manual-backup runs against SeaweedFS leave a Prometheus textfile that
//! Python `prometheus_client` parses; a failed run after a good one keeps the good run's last
//! success and reports each destination's bytes.

mod common;

use std::path::Path;
use std::time::Duration;

use common::stores::{seaweed, unique};
use common::{MANUAL, Scratch, run_to_end};
use serde_json::{Value, json};

fn s3_destination(name: &str, bucket: &str, secret: &str) -> String {
    let s = seaweed();
    format!(
        "- type: s3\n  name: {name}\n  config:\n    bucket_name: {bucket}\n    bucket_path: p\n    access_key_id: {}\n    secret_access_key: {secret}\n    endpoint_url: {}\n    region: us-east-1\n",
        s.access_key_id(),
        s.endpoint()
    )
}

/// The metrics file's families as prometheus_client's text parser reads them.
fn parse(path: &Path) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bbr-metrics/tests/prometheus_client_parse.py");
    let python = bbr_testkit::stores::tools_dir().join("venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run .ci/install-storage-deps.sh)",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "prometheus_client refused {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn value(families: &[Value], name: &str, labels: Value) -> Option<f64> {
    families
        .iter()
        .filter(|f| f["name"] == name)
        .flat_map(|f| f["samples"].as_array().cloned().unwrap_or_default())
        .find(|s| s["labels"] == labels)
        .and_then(|s| s["value"].as_f64())
}

#[test]
fn a_failed_run_after_a_good_one_keeps_its_last_success_and_counts_bytes_per_destination() {
    let s = Scratch::new();
    let src = s.source();
    let size = std::fs::metadata(src.join("a.txt")).unwrap().len()
        + std::fs::metadata(src.join("sub/b.txt")).unwrap().len();
    let metrics = s.path("textfile/service_backup.prom");
    std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    let good = s3_destination(
        "main",
        &unique("metrics-good"),
        seaweed().secret_access_key(),
    );
    let config = |destinations: &str| {
        s.file(
            "config.yml",
            &format!(
                "destinations:\n{destinations}source_folder: {}\nmetrics_file: {}\nstate_dir: {}\n",
                src.display(),
                metrics.display(),
                s.path("state").display()
            ),
        )
    };

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (status, out) = run_to_end(MANUAL, &config(&good), Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{out}");
    let first = parse(&metrics);
    let success = value(
        &first,
        "service_backup_last_success_timestamp_seconds",
        json!({}),
    )
    .expect("last success after a good run");
    assert!(success >= before, "{success} < {before}");
    assert_eq!(
        value(&first, "service_backup_success", json!({})),
        Some(1.0)
    );
    assert_eq!(
        value(
            &first,
            "service_backup_bytes_uploaded",
            json!({"destination": "main"})
        ),
        Some(size as f64)
    );

    // The same destination plus one whose store refuses the credentials.
    let refused = s3_destination(
        "refused",
        &unique("metrics-bad"),
        "definitely-the-wrong-secret",
    );
    let (status, out) = run_to_end(
        MANUAL,
        &config(&format!("{good}{refused}")),
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(!out.contains("failed to write metrics file"), "{out}");
    let second = parse(&metrics);
    assert_eq!(
        value(
            &second,
            "service_backup_last_success_timestamp_seconds",
            json!({})
        ),
        Some(success),
        "a failed run keeps the last success"
    );
    let last_run = value(
        &second,
        "service_backup_last_run_timestamp_seconds",
        json!({}),
    )
    .expect("last run");
    assert!(last_run > success, "{last_run} <= {success}");
    assert_eq!(
        value(&second, "service_backup_success", json!({})),
        Some(0.0)
    );
    assert!(value(&second, "service_backup_run_duration_seconds", json!({})).is_some());
    assert_eq!(
        value(
            &second,
            "service_backup_bytes_uploaded",
            json!({"destination": "main"})
        ),
        Some(size as f64)
    );
    assert_eq!(
        value(
            &second,
            "service_backup_bytes_uploaded",
            json!({"destination": "refused"})
        ),
        Some(0.0)
    );
    for f in &second {
        assert_eq!(f["type"], "gauge", "{f}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(metrics.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from("service_backup.prom")]
    );
}

#[test]
fn an_unwritable_metrics_file_is_logged_and_does_not_fail_the_run() {
    let s = Scratch::new();
    let src = s.source();
    let metrics = s.path("no-such-dir/service_backup.prom");
    let good = s3_destination(
        "main",
        &unique("metrics-nodir"),
        seaweed().secret_access_key(),
    );
    let cfg = s.file(
        "config.yml",
        &format!(
            "destinations:\n{good}source_folder: {}\nmetrics_file: {}\n",
            src.display(),
            metrics.display()
        ),
    );
    let (status, out) = run_to_end(MANUAL, &cfg, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("failed to write metrics file"))
        .unwrap_or_else(|| panic!("no metrics error line:\n{out}"));
    assert!(line.contains(&metrics.display().to_string()), "{line}");
}
