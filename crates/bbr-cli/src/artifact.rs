//! `bbr artifact validate PATH [--json]` and `bbr artifact list PATH [--json]`
//! (docs/cli.md#bbr-artifact): offline commands on artifacts in a local directory or an
//! object store (`s3://`, `az://`, `gs://`), no director or VM.
//!
//! The checks themselves are [`bbr_artifact::validate_artifact`] and
//! [`bbr_artifact::list_artifacts`] (for a store, [`bbr_artifact::validate_files`] and
//! [`bbr_artifact::list_artifacts_in`] over [`store`]); this module parses the PATH operand
//! into an [`ArtifactLocation`] and prints the outcome: log lines in Go bbr's layout on stdout and
//! the error block on stderr, or one JSON document on stdout whose schema is documented in
//! docs/cli.md and pinned by [`validation_json`] and [`list_json`].

use crate::commands::ArtifactSubcommand;
use crate::output::Logger;
use bbr_artifact::{
    ListedArtifact, ValidationReport, list_artifacts, list_artifacts_in, validate_artifact,
    validate_files,
};
use bbr_core::error::{BbrError, ErrorList, exit_code};
use bbr_core::report::ReporterExt;
use bbr_storage::artifact_store::ArtifactStore;
use bbr_storage::artifact_url::{ArtifactUrl, ArtifactUrlError, CloudEnv};
use bbr_storage::object::UploadBudget;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

pub mod prune;
mod store;
pub mod stored;

/// Where an artifact (or a directory of artifacts) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactLocation {
    /// A directory on this machine.
    Local(PathBuf),
    /// A prefix in an object store (`s3://`, `az://`/`azure://`, `gs://`).
    Store(ArtifactUrl),
}

/// A PATH operand bbr cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// A `scheme://…` URL that is not a usable artifact URL (another scheme, credentials,
    /// a query, a bad bucket name, …); the message quotes it with secrets redacted.
    /// (Boxed: usage errors travel by value.)
    #[error(transparent)]
    Url(Box<ArtifactUrlError>),
}

impl From<ArtifactUrlError> for LocationError {
    fn from(e: ArtifactUrlError) -> Self {
        LocationError::Url(Box::new(e))
    }
}

impl ArtifactLocation {
    /// An `s3://`, `az://`, `azure://` or `gs://` URL is a store location, another
    /// `scheme://…` is refused ([`LocationError`]); anything else is a local path
    /// (`./s3://x` is a local directory).
    pub fn parse(operand: &str) -> Result<ArtifactLocation, LocationError> {
        Ok(match ArtifactUrl::classify(operand)? {
            Some(url) => ArtifactLocation::Store(url),
            None => ArtifactLocation::Local(PathBuf::from(operand)),
        })
    }
}

/// What the `--artifact-path` of `backup` and `restore` names: a local directory, or an
/// object-store prefix whose client is built from the cloud CLI environment.
#[derive(Clone)]
pub enum ArtifactPath {
    /// A directory on this machine.
    Local(PathBuf),
    /// A prefix in an object store.
    Stored(std::sync::Arc<stored::StoredPrefix>),
}

impl ArtifactPath {
    /// Resolves `--artifact-path` (`None`: the working directory). A store URL gets its
    /// client here, from the process environment, so that a bad URL or missing
    /// credentials fail before the director or any VM is contacted. Call from inside the
    /// process's runtime.
    pub fn resolve(path: Option<&Path>) -> Result<ArtifactPath, String> {
        let Some(path) = path else {
            return Ok(ArtifactPath::Local(PathBuf::from(".")));
        };
        let Some(text) = path.to_str() else {
            return Ok(ArtifactPath::Local(path.to_path_buf()));
        };
        match ArtifactLocation::parse(text).map_err(|e| e.to_string())? {
            ArtifactLocation::Local(p) => Ok(ArtifactPath::Local(p)),
            ArtifactLocation::Store(url) => {
                let store = ArtifactStore::from_env(url, &CloudEnv::from_process())
                    .map_err(|e| e.to_string())?
                    .with_upload_budget(UploadBudget::new(stored::UPLOAD_BUDGET));
                Ok(ArtifactPath::Stored(std::sync::Arc::new(
                    stored::StoredPrefix::new(store, tokio::runtime::Handle::current()),
                )))
            }
        }
    }

    /// Where a backup creates its artifact.
    pub fn destination(&self) -> bbr_core::artifact_location::BackupDestination {
        use bbr_core::artifact_location::BackupDestination;
        match self {
            ArtifactPath::Local(p) => BackupDestination::Local(p.clone()),
            ArtifactPath::Stored(s) => BackupDestination::Stored(s.clone()),
        }
    }

    /// Where a restore reads its artifact.
    pub fn origin(&self) -> bbr_core::artifact_location::ArtifactOrigin {
        use bbr_core::artifact_location::ArtifactOrigin;
        match self {
            ArtifactPath::Local(p) => ArtifactOrigin::Local(p.clone()),
            ArtifactPath::Stored(s) => ArtifactOrigin::Stored(s.clone()),
        }
    }

    /// The local directory, `None` for a store.
    pub fn local(&self) -> Option<&Path> {
        match self {
            ArtifactPath::Local(p) => Some(p),
            ArtifactPath::Stored(_) => None,
        }
    }
}

/// A resolved `bbr artifact` command line.
#[derive(Debug)]
pub struct ArtifactInvocation {
    /// `validate` or `list`.
    pub sub: ArtifactSubcommand,
    /// PATH.
    pub location: ArtifactLocation,
    /// `--json`.
    pub json: bool,
    /// The settings of `prune` (`None` for the other subcommands).
    pub prune: Option<prune::PruneSettings>,
}

/// Runs the invocation; returns the exit code (0 valid / listed, 1 otherwise). `handle` is
/// the process's runtime, used for store locations; call this from a thread that is not
/// one of its workers (store reads block on it), e.g. through `spawn_blocking`.
pub fn run(inv: &ArtifactInvocation, handle: &tokio::runtime::Handle) -> i32 {
    if let Some(settings) = &inv.prune {
        return prune::run(&inv.location, settings, inv.json, handle);
    }
    match &inv.location {
        ArtifactLocation::Local(path) => match inv.sub {
            ArtifactSubcommand::Validate => validate(path, inv.json, || validate_artifact(path)),
            ArtifactSubcommand::List => list(path, inv.json, || list_artifacts(path)),
            // Dispatched above.
            ArtifactSubcommand::Prune => exit_code::GENERAL,
        },
        ArtifactLocation::Store(url) => run_store(inv, url, handle),
    }
}

/// `validate` / `list` of a store location: the client from the cloud CLI environment,
/// the bucket checked first so that a refusal (wrong credentials) or a missing bucket is
/// one clear error, then the same checks as for a directory through
/// [`store::StoreFiles`] / [`store::StoreTree`].
fn run_store(inv: &ArtifactInvocation, url: &ArtifactUrl, handle: &tokio::runtime::Handle) -> i32 {
    let shown = PathBuf::from(url.to_string());
    let artifact_store = match ArtifactStore::from_env(url.clone(), &CloudEnv::from_process()) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => return fail(e.to_string()),
    };
    // The caller's thread is not one of the runtime's workers: blocking on it is allowed.
    if let Err(e) = handle.block_on(artifact_store.check_bucket()) {
        return fail(store::naming_url(url, &e.to_string()));
    }
    match inv.sub {
        ArtifactSubcommand::Validate => validate(&shown, inv.json, || {
            validate_files(
                &store::StoreFiles::new(artifact_store.clone(), "", handle.clone()),
                &shown,
            )
        }),
        ArtifactSubcommand::List => list(&shown, inv.json, || {
            list_artifacts_in(
                &store::StoreTree::new(artifact_store.clone(), handle.clone()),
                &shown,
            )
        }),
        // Dispatched in `run`.
        ArtifactSubcommand::Prune => exit_code::GENERAL,
    }
}

/// Prints `message` as the error block on stderr; exit 1.
pub(crate) fn fail(message: String) -> i32 {
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "{}",
        ErrorList(vec![BbrError::general(message)]).render()
    );
    exit_code::GENERAL
}

pub(crate) fn print_json(value: &Value) {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string());
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn exit_for(ok: bool) -> i32 {
    if ok { 0 } else { exit_code::GENERAL }
}

fn validate(path: &Path, as_json: bool, check: impl FnOnce() -> ValidationReport) -> i32 {
    if as_json {
        let report = check();
        print_json(&validation_json(&report));
        return exit_for(report.is_valid());
    }
    let logger = Logger::new(false);
    logger.info(format!("Validating backup artifact {}...", path.display()));
    let report = check();
    for p in &report.problems {
        logger.error(format!("{}: {}", report.file_path(p).display(), p.reason));
    }
    for tar in &report.tars {
        if tar.problems.is_empty() {
            let (artifact, verdict) = match &tar.artifact {
                Some(a) => (format!(" (artifact {a})"), "checksums match"),
                None => (String::new(), "complete, not checked against metadata"),
            };
            logger.info(format!(
                "{}{artifact}: {} bytes, {} files, {verdict}",
                tar.name,
                tar.size.unwrap_or_default(),
                tar.files.unwrap_or_default(),
            ));
        }
        for p in &tar.problems {
            logger.error(format!("{}: {}", report.file_path(p).display(), p.reason));
        }
    }
    let problems: Vec<BbrError> = report
        .all_problems()
        .map(|p| BbrError::general(format!("{}: {}", report.file_path(p).display(), p.reason)))
        .collect();
    if problems.is_empty() {
        logger.info(format!("Backup artifact {} is valid", path.display()));
        return 0;
    }
    logger.error(format!(
        "Backup artifact {} is not valid: {} problem{}",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    ));
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{}", ErrorList(problems).render());
    exit_code::GENERAL
}

/// The JSON document of `bbr artifact validate --json` (docs/cli.md#json-of-validate).
pub fn validation_json(report: &ValidationReport) -> Value {
    let problem = |p: &bbr_artifact::Problem| {
        json!({
            "kind": p.kind.as_str(),
            "file": p.file,
            "entry": p.entry,
            "message": p.reason,
        })
    };
    json!({
        "artifact": report.path.display().to_string(),
        "valid": report.is_valid(),
        "tars": report.tars.iter().map(|t| json!({
            "name": t.name,
            "artifact": t.artifact,
            "listed": t.artifact.is_some(),
            "size": t.size,
            "files": t.files,
            "valid": t.problems.is_empty(),
            "problems": t.problems.iter().map(problem).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "problems": report.all_problems().map(problem).collect::<Vec<_>>(),
    })
}

fn list(
    path: &Path,
    as_json: bool,
    find: impl FnOnce() -> Result<Vec<ListedArtifact>, bbr_artifact::ArtifactError>,
) -> i32 {
    let artifacts = match find() {
        Ok(a) => a,
        Err(e) => return fail(e.to_string()),
    };
    if as_json {
        print_json(&list_json(path, &artifacts));
        return 0;
    }
    let mut out = std::io::stdout().lock();
    if artifacts.is_empty() {
        let _ = writeln!(out, "No backup artifacts in {}", path.display());
        return 0;
    }
    let mut rows = vec![[
        "NAME".to_string(),
        "DEPLOYMENT".to_string(),
        "TIME".to_string(),
        "SIZE".to_string(),
        "STATUS".to_string(),
    ]];
    for a in &artifacts {
        rows.push([
            a.name.clone(),
            a.deployment.clone(),
            a.time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            bbr_core::transfer::human_size(a.size_bytes),
            match &a.incomplete {
                None => "complete".to_string(),
                Some(why) => format!("INCOMPLETE: {why}"),
            },
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    0
}

/// The JSON document of `bbr artifact list --json` (docs/cli.md#json-of-list).
pub fn list_json(path: &Path, artifacts: &[ListedArtifact]) -> Value {
    json!({
        "path": path.display().to_string(),
        "artifacts": artifacts.iter().map(|a| json!({
            "name": a.name,
            "path": a.path.display().to_string(),
            "deployment": a.deployment,
            "time": a.time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "size": a.size_bytes,
            "complete": a.is_complete(),
            "incomplete_reason": a.incomplete,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_other_urls_and_local_paths() {
        for (operand, shown) in [
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("az://container/p/", "az://container/p"),
            ("azure://container/p", "az://container/p"),
            ("gs://bkt", "gs://bkt"),
        ] {
            match ArtifactLocation::parse(operand) {
                Ok(ArtifactLocation::Store(url)) => assert_eq!(url.to_string(), shown),
                other => panic!("{operand}: {other:?}"),
            }
        }
        for (operand, error) in [
            (
                "s3://AKIA:secret@host/b/p",
                "s3://<redacted>@host/b/p: an artifact URL must not contain credentials; they come from the environment",
            ),
            (
                "https://u@h/x",
                "https://<redacted>@h/x: unsupported artifact URL scheme \"https\" (use s3://, az://, azure:// or gs://)",
            ),
        ] {
            let e = ArtifactLocation::parse(operand).expect_err(operand);
            assert_eq!(e.to_string(), error);
        }
        for local in [
            "/abs/dep_20240101T000000Z",
            "rel",
            "./s3://x",
            "a:b",
            "1s3://x",
        ] {
            assert_eq!(
                ArtifactLocation::parse(local),
                Ok(ArtifactLocation::Local(PathBuf::from(local))),
                "{local}"
            );
        }
    }
}
