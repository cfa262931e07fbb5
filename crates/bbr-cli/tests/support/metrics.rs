//! Reading a `--metrics-file` the way Prometheus does: Python `prometheus_client`'s text
//! parser (installed in the storage tools' venv by `.ci/install-storage-deps.sh`), through
//! bbr-metrics' `tests/prometheus_client_parse.py`, which prints the families as JSON.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    std::env::var_os("BBR_STORAGE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/bbr-storage-tools"))
        .join("venv/bin/python")
}

/// prometheus_client's reading of `path`: the value of `name` for exactly `labels`
/// (`None` when there is no such sample). Panics when the parser refuses the file.
pub fn metric(path: &Path, name: &str, labels: Value) -> Option<f64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bbr-metrics/tests/prometheus_client_parse.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "prometheus_client refused {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let families: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    families
        .iter()
        .filter(|f| f["name"] == name)
        .flat_map(|f| f["samples"].as_array().cloned().unwrap_or_default())
        .find(|s| s["labels"] == labels)
        .and_then(|s| s["value"].as_f64())
}
