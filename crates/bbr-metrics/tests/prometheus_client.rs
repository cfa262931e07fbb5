//! The files we write, read by Python `prometheus_client`'s text parser
//! (`text_string_to_metric_families`), installed into `$BBR_STORAGE_TOOLS/venv` by
//! `.ci/install-storage-deps.sh`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bbr_metrics::{Job, MetricsFile, Outcome, RunMetrics, gauges};
use serde_json::{Value, json};

/// The venv's Python (`$BBR_STORAGE_TOOLS` or `/opt/bbr-storage-tools`).
fn python() -> PathBuf {
    let root = std::env::var_os("BBR_STORAGE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/bbr-storage-tools"));
    let python = root.join("venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run .ci/install-storage-deps.sh",
        python.display()
    );
    python
}

/// The file's families as prometheus_client sees them.
fn parse(path: &Path) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prometheus_client_parse.py");
    let out = std::process::Command::new(python())
        .arg(&script)
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "prometheus_client refused {}: {}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("json")
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
fn prometheus_client_reads_merged_bbr_and_service_backup_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = MetricsFile::new(dir.path().join("backups.prom"));
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    let tricky = "dep \"q\" \\ back\nslash";
    let ok = RunMetrics::new(
        at(1_718_000_000),
        Duration::from_millis(1250),
        Outcome::Exited(0),
    )
    .with_gauge(gauges::BYTES_DRAINED, 1_073_741_824.0)
    .with_gauge(gauges::LOCK_HELD_SECONDS, 3.25);
    let _ = file
        .record(Job::BbrBackup, &[("deployment", tricky)], &ok)
        .expect("ok");
    let failed = RunMetrics::new(
        at(1_718_000_600),
        Duration::from_secs(7),
        Outcome::Exited(1),
    )
    .with_gauge(gauges::BYTES_DRAINED, 0.0);
    let _ = file
        .record(Job::BbrBackup, &[("deployment", tricky)], &failed)
        .expect("failed");
    let restore = RunMetrics::new(
        at(1_718_000_700),
        Duration::from_secs(2),
        Outcome::Exited(0),
    )
    .with_gauge(gauges::BYTES_RESTORED, 42.0);
    let _ = file
        .record(Job::BbrRestore, &[("deployment", "other")], &restore)
        .expect("restore");
    let sb = RunMetrics::new(at(1_718_000_800), Duration::from_secs(4), Outcome::Failed)
        .with_labelled_gauge(
            gauges::BYTES_UPLOADED,
            &[("destination", "s3 \"main\"")],
            10.0,
        );
    let _ = file
        .record(Job::ServiceBackup, &[], &sb)
        .expect("service-backup");

    let families = parse(file.path());
    for f in &families {
        assert_eq!(f["type"], "gauge", "{f}");
        assert!(!f["help"].as_str().unwrap_or("").is_empty(), "{f}");
    }
    let bbr = json!({"deployment": tricky, "command": "backup"});
    assert_eq!(
        value(&families, "bbr_last_success_timestamp_seconds", bbr.clone()),
        Some(1_718_000_000.0)
    );
    assert_eq!(
        value(&families, "bbr_last_run_timestamp_seconds", bbr.clone()),
        Some(1_718_000_600.0)
    );
    assert_eq!(value(&families, "bbr_exit_code", bbr.clone()), Some(1.0));
    assert_eq!(
        value(&families, "bbr_run_duration_seconds", bbr.clone()),
        Some(7.0)
    );
    assert_eq!(
        value(&families, "bbr_bytes_drained", bbr.clone()),
        Some(0.0)
    );
    // The failed run wrote no lock gauge: the successful run's is gone with its other series.
    assert_eq!(value(&families, "bbr_lock_held_seconds", bbr), None);
    let restore = json!({"deployment": "other", "command": "restore"});
    assert_eq!(
        value(&families, "bbr_bytes_restored", restore.clone()),
        Some(42.0)
    );
    assert_eq!(value(&families, "bbr_exit_code", restore), Some(0.0));
    assert_eq!(
        value(
            &families,
            "service_backup_bytes_uploaded",
            json!({"destination": "s3 \"main\""})
        ),
        Some(10.0)
    );
    assert_eq!(
        value(&families, "service_backup_success", json!({})),
        Some(0.0)
    );
    assert_eq!(
        value(
            &families,
            "service_backup_last_success_timestamp_seconds",
            json!({})
        ),
        Some(0.0)
    );
}
