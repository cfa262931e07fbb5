//! `bbr artifact validate PATH [--json]` and `bbr artifact list PATH [--json]`
//! (docs/cli.md#bbr-artifact): offline commands on local artifacts, no director or VM.
//!
//! The checks themselves are [`bbr_artifact::validate_artifact`] and
//! [`bbr_artifact::list_artifacts`]; this module parses the PATH operand into an
//! [`ArtifactLocation`] and prints the outcome: log lines in Go bbr's layout on stdout and
//! the error block on stderr, or one JSON document on stdout whose schema is documented in
//! docs/cli.md and pinned by [`validation_json`] and [`list_json`].

use crate::commands::ArtifactSubcommand;
use crate::output::Logger;
use bbr_artifact::{ListedArtifact, ValidationReport, list_artifacts, validate_artifact};
use bbr_core::error::{BbrError, ErrorList, exit_code};
use bbr_core::report::ReporterExt;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;

/// Where an artifact (or a directory of artifacts) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactLocation {
    /// A directory on this machine.
    Local(PathBuf),
}

/// A PATH operand bbr cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// `s3://`, `az://`, `gs://` or any other `scheme://` URL (user info hidden).
    #[error("object-store artifact paths are not supported yet: {0}")]
    ObjectStore(String),
}

impl ArtifactLocation {
    /// A `scheme://…` operand is a URL (refused for now, see [`LocationError`]); anything
    /// else is a local path (`./s3://x` is a local directory).
    pub fn parse(operand: &str) -> Result<ArtifactLocation, LocationError> {
        match operand.split_once("://") {
            Some((scheme, rest)) if is_scheme(scheme) => {
                Err(LocationError::ObjectStore(without_userinfo(scheme, rest)))
            }
            _ => Ok(ArtifactLocation::Local(PathBuf::from(operand))),
        }
    }
}

/// An RFC 3986 scheme: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `scheme://rest` with any `user:secret@` before the host replaced, so a credential given
/// in the URL is never printed.
fn without_userinfo(scheme: &str, rest: &str) -> String {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://<redacted>@{}", &rest[at + 1..]),
        None => format!("{scheme}://{rest}"),
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
}

/// Runs the invocation; returns the exit code (0 valid / listed, 1 otherwise).
pub fn run(inv: &ArtifactInvocation) -> i32 {
    let ArtifactLocation::Local(path) = &inv.location;
    match inv.sub {
        ArtifactSubcommand::Validate => validate(path, inv.json),
        ArtifactSubcommand::List => list(path, inv.json),
    }
}

fn print_json(value: &Value) {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string());
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn exit_for(ok: bool) -> i32 {
    if ok { 0 } else { exit_code::GENERAL }
}

fn validate(path: &std::path::Path, as_json: bool) -> i32 {
    if as_json {
        let report = validate_artifact(path);
        print_json(&validation_json(&report));
        return exit_for(report.is_valid());
    }
    let logger = Logger::new(false);
    logger.info(format!("Validating backup artifact {}...", path.display()));
    let report = validate_artifact(path);
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

fn list(path: &std::path::Path, as_json: bool) -> i32 {
    let artifacts = match list_artifacts(path) {
        Ok(a) => a,
        Err(e) => {
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "{}",
                ErrorList(vec![BbrError::general(e.to_string())]).render()
            );
            return exit_code::GENERAL;
        }
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
pub fn list_json(path: &std::path::Path, artifacts: &[ListedArtifact]) -> Value {
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
    fn urls_are_refused_and_paths_are_local() {
        for (operand, shown) in [
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("az://container/p", "az://container/p"),
            ("gs://b", "gs://b"),
            (
                "s3://AKIA:secret@host:9000/b/p",
                "s3://<redacted>@host:9000/b/p",
            ),
            ("https://u@h/x@y", "https://<redacted>@h/x@y"),
        ] {
            assert_eq!(
                ArtifactLocation::parse(operand),
                Err(LocationError::ObjectStore(shown.to_string())),
                "{operand}"
            );
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
