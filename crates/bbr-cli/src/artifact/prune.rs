//! `bbr artifact prune PATH --keep-… [--deployment NAME] [--dry-run] [--json]
//! [--metrics-file FILE]` (docs/cli.md#bbr-artifact-prune): the decisions of
//! [`bbr_artifact::retention::plan_retention`] carried out on a local directory or an
//! object-store prefix.
//!
//! * The location is listed once: a directory with [`bbr_artifact::list_artifacts`]; a store
//!   with one [`ArtifactStore::list_objects`] of the whole prefix, from which the artifacts
//!   and their files are read (only each `metadata` is fetched), so 1,000 artifacts cost one
//!   listing, not 1,000.
//! * Every removed artifact goes whole, `metadata` first, so an artifact half deleted by a
//!   failure or a kill reads as incomplete (and is not restored from): locally `metadata`
//!   is unlinked, then the directory removed; in a store every key of every removed
//!   artifact goes through one [`ArtifactStore::delete_many`] (the store's bulk form, every
//!   `metadata` before any other key; an artifact whose `metadata` survives keeps its
//!   other objects).
//! * An artifact that cannot be deleted is reported naming it and the others go on; the
//!   exit code is then 1.
//! * Output: one line per judged artifact, grouped by deployment, newest first
//!   (`<name>  kept: <reasons>`, `removed: <reason>`, with `--dry-run` `would remove:`), or
//!   with `--json` one document ([`prune_json`]).

use super::{ArtifactLocation, fail, print_json, store};
use bbr_artifact::retention::{Decision, Policy, Verdict, plan_retention};
use bbr_artifact::{
    ArtifactFiles, ArtifactTree, FileEntry, ListedArtifact, list_artifacts, list_artifacts_in,
};
use bbr_core::error::{BbrError, ErrorList, exit_code};
use bbr_metrics::{Job, gauges};
use bbr_storage::artifact_store::ArtifactStore;
use bbr_storage::artifact_url::CloudEnv;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::runtime::Handle;

/// The settings of `bbr artifact prune` (and of `backup --keep-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneSettings {
    /// The keep rules, grace and deployment filter (never empty).
    pub policy: Policy,
    /// `--dry-run`: decide and print, delete nothing.
    pub dry_run: bool,
    /// `--metrics-file`.
    pub metrics_file: Option<PathBuf>,
}

/// What happened to one judged artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Kept by the policy.
    Kept,
    /// Deleted.
    Removed,
    /// Would be deleted (`--dry-run`).
    WouldRemove,
    /// To be deleted, but the deletion failed (why).
    Failed(String),
}

/// One line of the outcome.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The decision.
    pub decision: Decision,
    /// What was done.
    pub fate: Fate,
}

/// The outcome of a prune.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    /// Every judged artifact, grouped by deployment (by name), newest first in each.
    pub judged: Vec<Judged>,
}

impl PruneReport {
    fn count(&self, f: impl Fn(&Fate) -> bool) -> usize {
        self.judged.iter().filter(|j| f(&j.fate)).count()
    }

    /// Artifacts kept.
    pub fn kept(&self) -> usize {
        self.count(|f| *f == Fate::Kept)
    }

    /// Artifacts deleted (or, in a dry run, that would be).
    pub fn removed(&self) -> usize {
        self.count(|f| matches!(f, Fate::Removed | Fate::WouldRemove))
    }

    /// Artifacts whose deletion failed.
    pub fn failed(&self) -> usize {
        self.count(|f| matches!(f, Fate::Failed(_)))
    }

    /// The deployments judged, with their kept and deleted counts.
    pub fn per_deployment(&self) -> BTreeMap<String, (usize, usize)> {
        let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for j in &self.judged {
            let entry = out
                .entry(j.decision.artifact.deployment.clone())
                .or_default();
            match j.fate {
                Fate::Kept => entry.0 += 1,
                Fate::Removed => entry.1 += 1,
                _ => {}
            }
        }
        out
    }
}

/// Runs `bbr artifact prune`; returns the exit code. Call from a blocking thread (store
/// calls block on `handle`).
pub fn run(
    location: &ArtifactLocation,
    settings: &PruneSettings,
    as_json: bool,
    handle: &Handle,
) -> i32 {
    let started = Instant::now();
    let (code, report) = match prune(location, settings, handle) {
        Ok(report) => {
            let code = print_report(location, settings, &report, as_json);
            (code, Some(report))
        }
        Err(message) => (fail(message), None),
    };
    if let Some(path) = &settings.metrics_file {
        record_metrics(path, settings, report.as_ref(), started, code);
    }
    code
}

/// Records `bbr_*{command="prune"}` for each deployment judged (or the filter's, or `""`
/// when the run failed before judging any).
pub fn record_metrics(
    path: &Path,
    settings: &PruneSettings,
    report: Option<&PruneReport>,
    started: Instant,
    code: i32,
) {
    let mut per = report.map(PruneReport::per_deployment).unwrap_or_default();
    if per.is_empty() {
        per.insert(
            settings.policy.deployment.clone().unwrap_or_default(),
            (0, 0),
        );
    }
    for (deployment, (kept, pruned)) in per {
        crate::metrics::record(
            path,
            Job::BbrPrune,
            &deployment,
            started,
            code,
            &[
                (gauges::ARTIFACTS_KEPT, kept as f64),
                (gauges::ARTIFACTS_PRUNED, pruned as f64),
            ],
        );
    }
}

/// Lists, decides and (unless a dry run) deletes. `Err` when the location cannot be listed
/// (nothing was deleted then).
pub fn prune(
    location: &ArtifactLocation,
    settings: &PruneSettings,
    handle: &Handle,
) -> Result<PruneReport, String> {
    match location {
        ArtifactLocation::Local(dir) => {
            let artifacts = list_artifacts(dir).map_err(|e| e.to_string())?;
            decide_and_delete(&artifacts, settings, |removals| {
                removals
                    .iter()
                    .filter_map(|a| {
                        delete_local(&a.path)
                            .err()
                            .map(|e| (a.name.clone(), e.to_string()))
                    })
                    .collect()
            })
        }
        ArtifactLocation::Store(url) => {
            let artifact_store = ArtifactStore::from_env(url.clone(), &CloudEnv::from_process())
                .map_err(|e| e.to_string())?;
            let artifact_store = Arc::new(artifact_store);
            prune_store(artifact_store, settings, handle)
        }
    }
}

/// [`prune`] of a store prefix whose client is built.
pub fn prune_store(
    artifact_store: Arc<ArtifactStore>,
    settings: &PruneSettings,
    handle: &Handle,
) -> Result<PruneReport, String> {
    let url = artifact_store.url().clone();
    handle
        .block_on(artifact_store.check_bucket())
        .map_err(|e| store::naming_url(&url, &e.to_string()))?;
    let objects = handle
        .block_on(artifact_store.list_objects(""))
        .map_err(|e| store::naming_url(&url, &e.to_string()))?;
    let mut by_dir: BTreeMap<String, Vec<FileEntry>> = BTreeMap::new();
    let mut keys_by_dir: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in objects {
        let Some((dir, rest)) = o.key.split_once('/') else {
            continue;
        };
        keys_by_dir
            .entry(dir.to_string())
            .or_default()
            .push(o.key.clone());
        let entries = by_dir.entry(dir.to_string()).or_default();
        if !rest.is_empty() && !rest.contains('/') {
            entries.push(FileEntry {
                name: rest.to_string(),
                size: Some(o.size),
            });
        }
    }
    let tree = ListedTree {
        store: artifact_store.clone(),
        dirs: by_dir,
        handle: handle.clone(),
    };
    let shown = PathBuf::from(url.to_string());
    let artifacts = list_artifacts_in(&tree, &shown).map_err(|e| e.to_string())?;
    decide_and_delete(&artifacts, settings, |removals| {
        let mut keys = Vec::new();
        for a in removals {
            keys.extend(keys_by_dir.get(&a.name).cloned().unwrap_or_default());
        }
        let failures = handle.block_on(artifact_store.delete_many(&keys));
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for (key, e) in failures {
            let dir = key.split('/').next().unwrap_or_default().to_string();
            out.entry(dir)
                .and_modify(|t| {
                    t.push_str("; ");
                    t.push_str(&format!("{key}: {e}"));
                })
                .or_insert_with(|| format!("{key}: {e}"));
        }
        out
    })
}

/// Plans with `settings` and, unless a dry run, hands the artifacts to remove to `delete`,
/// which returns the ones that failed (by name) with why.
fn decide_and_delete(
    artifacts: &[ListedArtifact],
    settings: &PruneSettings,
    delete: impl FnOnce(&[&ListedArtifact]) -> BTreeMap<String, String>,
) -> Result<PruneReport, String> {
    let plan = plan_retention(artifacts, &settings.policy, chrono::Utc::now())
        .map_err(|e| e.to_string())?;
    let mut decisions = plan.decisions;
    // Newest first within a deployment: the listing's order, grouped by deployment.
    decisions.sort_by(|a, b| {
        a.artifact
            .deployment
            .cmp(&b.artifact.deployment)
            .then(b.artifact.time.cmp(&a.artifact.time))
            .then(a.index.cmp(&b.index))
    });
    let removals: Vec<&ListedArtifact> = decisions
        .iter()
        .filter(|d| !d.verdict.is_keep())
        .map(|d| &d.artifact)
        .collect();
    let failures = if settings.dry_run || removals.is_empty() {
        BTreeMap::new()
    } else {
        delete(&removals)
    };
    let judged = decisions
        .into_iter()
        .map(|decision| {
            let fate = if decision.verdict.is_keep() {
                Fate::Kept
            } else if settings.dry_run {
                Fate::WouldRemove
            } else if let Some(why) = failures.get(&decision.artifact.name) {
                Fate::Failed(why.clone())
            } else {
                Fate::Removed
            };
            Judged { decision, fate }
        })
        .collect();
    Ok(PruneReport { judged })
}

/// Deletes a local artifact directory: `metadata` first (so a half-deleted artifact reads
/// as incomplete), then the rest.
pub fn delete_local(dir: &Path) -> io::Result<()> {
    match std::fs::remove_file(dir.join("metadata")) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("metadata: {e}"))),
    }
    std::fs::remove_dir_all(dir)
}

/// The reasons of a verdict, each as its text.
fn reasons(verdict: &Verdict) -> Vec<String> {
    match verdict {
        Verdict::Keep(reasons) => reasons.iter().map(ToString::to_string).collect(),
        Verdict::Remove(reason) => vec![reason.to_string()],
    }
}

/// One output line: `<name>  kept: <reasons>` and the like.
pub fn line(j: &Judged) -> String {
    let reasons = reasons(&j.decision.verdict).join("; ");
    let name = &j.decision.artifact.name;
    match &j.fate {
        Fate::Kept => format!("{name}  kept: {reasons}"),
        Fate::Removed => format!("{name}  removed: {reasons}"),
        Fate::WouldRemove => format!("{name}  would remove: {reasons}"),
        Fate::Failed(why) => format!("{name}  NOT removed ({reasons}): {why}"),
    }
}

/// The lines of a report and its summary line.
pub fn lines(report: &PruneReport, dry_run: bool) -> Vec<String> {
    let mut out: Vec<String> = report.judged.iter().map(line).collect();
    out.push(if dry_run {
        format!(
            "Dry run: {} kept, {} would be removed, nothing deleted",
            report.kept(),
            report.removed()
        )
    } else {
        format!(
            "{} kept, {} removed, {} could not be removed",
            report.kept(),
            report.removed(),
            report.failed()
        )
    });
    out
}

fn print_report(
    location: &ArtifactLocation,
    settings: &PruneSettings,
    report: &PruneReport,
    as_json: bool,
) -> i32 {
    let shown = match location {
        ArtifactLocation::Local(p) => p.display().to_string(),
        ArtifactLocation::Store(u) => u.to_string(),
    };
    if as_json {
        print_json(&prune_json(&shown, settings, report));
    } else {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "Pruning {shown}: {}", settings.policy);
        for l in lines(report, settings.dry_run) {
            let _ = writeln!(out, "{l}");
        }
        let _ = out.flush();
    }
    failures_block(report)
}

/// Prints the failed deletions as the error block; exit 1 if any, else 0.
pub fn failures_block(report: &PruneReport) -> i32 {
    let failed: Vec<BbrError> = report
        .judged
        .iter()
        .filter_map(|j| match &j.fate {
            Fate::Failed(why) => Some(BbrError::general(format!(
                "could not remove artifact {}: {why}",
                j.decision.artifact.path.display()
            ))),
            _ => None,
        })
        .collect();
    if failed.is_empty() {
        return 0;
    }
    let mut err = io::stderr().lock();
    let _ = write!(err, "{}", ErrorList(failed).render());
    exit_code::GENERAL
}

/// The JSON document of `bbr artifact prune --json` (docs/cli.md#json-of-prune).
pub fn prune_json(path: &str, settings: &PruneSettings, report: &PruneReport) -> Value {
    json!({
        "path": path,
        "policy": settings.policy.to_string(),
        "dry_run": settings.dry_run,
        "artifacts": report.judged.iter().map(|j| {
            let a = &j.decision.artifact;
            json!({
                "name": a.name,
                "deployment": a.deployment,
                "time": a.time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "complete": a.is_complete(),
                "keep": j.decision.verdict.is_keep(),
                "reasons": reasons(&j.decision.verdict),
                "removed": j.fate == Fate::Removed,
                "error": match &j.fate { Fate::Failed(why) => Some(why.clone()), _ => None },
            })
        }).collect::<Vec<_>>(),
        "kept": report.kept(),
        "removed": report.removed(),
        "failed": report.failed(),
    })
}

/// A store prefix as listed once: each artifact's files from the listing, `metadata` (and
/// any other file) read from the store.
struct ListedTree {
    store: Arc<ArtifactStore>,
    dirs: BTreeMap<String, Vec<FileEntry>>,
    handle: Handle,
}

impl ArtifactTree for ListedTree {
    fn children(&self) -> io::Result<Vec<String>> {
        Ok(self
            .dirs
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect())
    }

    fn child(&self, name: &str) -> Box<dyn ArtifactFiles + '_> {
        Box::new(ListedFiles {
            entries: self.dirs.get(name).cloned().unwrap_or_default(),
            inner: store::StoreFiles::new(self.store.clone(), name, self.handle.clone()),
        })
    }
}

struct ListedFiles {
    entries: Vec<FileEntry>,
    inner: store::StoreFiles,
}

impl ArtifactFiles for ListedFiles {
    fn files(&self) -> io::Result<Vec<FileEntry>> {
        Ok(self.entries.clone())
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.size)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        if !self.entries.iter().any(|e| e.name == name) {
            return Err(io::ErrorKind::NotFound.into());
        }
        self.inner.open(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bbr_artifact::retention::Count;
    use chrono::TimeZone;

    fn artifact(deployment: &str, day: u32, complete: bool) -> ListedArtifact {
        let time = chrono::Utc.with_ymd_and_hms(2024, 1, day, 0, 0, 0).unwrap();
        let name = format!("{deployment}_{}", time.format("%Y%m%dT%H%M%SZ"));
        ListedArtifact {
            path: PathBuf::from("/x").join(&name),
            name,
            deployment: deployment.into(),
            time,
            size_bytes: 10,
            incomplete: (!complete).then(|| "no metadata".to_string()),
        }
    }

    fn settings(dry_run: bool) -> PruneSettings {
        PruneSettings {
            policy: Policy {
                keep_last: Count::N(1),
                ..Policy::default()
            },
            dry_run,
            metrics_file: None,
        }
    }

    fn listing() -> Vec<ListedArtifact> {
        vec![
            artifact("redis", 4, false),
            artifact("redis", 3, true),
            artifact("mysql", 2, true),
            artifact("redis", 2, true),
            artifact("redis", 1, true),
        ]
    }

    #[test]
    fn lines_are_grouped_newest_first_and_failures_named() {
        let report = decide_and_delete(&listing(), &settings(false), |removals| {
            let names: Vec<&str> = removals.iter().map(|a| a.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "redis_20240104T000000Z",
                    "redis_20240102T000000Z",
                    "redis_20240101T000000Z"
                ]
            );
            BTreeMap::from([("redis_20240102T000000Z".to_string(), "denied".to_string())])
        })
        .unwrap();
        assert_eq!(
            lines(&report, false),
            [
                "mysql_20240102T000000Z  kept: last 1; newest complete artifact",
                "redis_20240104T000000Z  removed: incomplete and older than 24h",
                "redis_20240103T000000Z  kept: last 1; newest complete artifact",
                "redis_20240102T000000Z  NOT removed (not kept by any rule): denied",
                "redis_20240101T000000Z  removed: not kept by any rule",
                "2 kept, 2 removed, 1 could not be removed",
            ]
        );
        assert_eq!(
            report.per_deployment(),
            BTreeMap::from([("mysql".into(), (1, 0)), ("redis".into(), (1, 2))])
        );
        assert_eq!(failures_block(&report), 1);
    }

    #[test]
    fn dry_run_deletes_nothing_and_says_would() {
        let report =
            decide_and_delete(&listing(), &settings(true), |_| panic!("a dry run deletes"))
                .unwrap();
        let text = lines(&report, true);
        assert_eq!(
            text[1],
            "redis_20240104T000000Z  would remove: incomplete and older than 24h"
        );
        assert_eq!(
            text.last().unwrap(),
            "Dry run: 2 kept, 3 would be removed, nothing deleted"
        );
        let doc = prune_json("/x", &settings(true), &report);
        assert_eq!(doc["dry_run"], true);
        assert_eq!(doc["removed"], 3);
        assert_eq!(doc["artifacts"][1]["removed"], false);
    }

    #[test]
    fn json_document() {
        let report = decide_and_delete(&listing(), &settings(false), |_| {
            BTreeMap::from([(
                "redis_20240101T000000Z".to_string(),
                "gone wrong".to_string(),
            )])
        })
        .unwrap();
        let doc = prune_json("s3://b/p", &settings(false), &report);
        assert_eq!(doc["path"], "s3://b/p");
        assert_eq!(doc["policy"], "keep the last 1");
        assert_eq!(
            (
                doc["kept"].clone(),
                doc["removed"].clone(),
                doc["failed"].clone()
            ),
            (json!(2), json!(2), json!(1))
        );
        let first = &doc["artifacts"][2];
        assert_eq!(
            first,
            &json!({
                "name": "redis_20240103T000000Z",
                "deployment": "redis",
                "time": "2024-01-03T00:00:00Z",
                "complete": true,
                "keep": true,
                "reasons": ["last 1", "newest complete artifact"],
                "removed": false,
                "error": null,
            })
        );
        assert_eq!(doc["artifacts"][4]["error"], "gone wrong");
        assert_eq!(doc["artifacts"][4]["keep"], false);
        assert_eq!(doc["artifacts"][1]["complete"], false);
    }

    #[test]
    fn local_delete_removes_metadata_then_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("redis_20240101T000000Z");
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("metadata"), "x").unwrap();
        std::fs::write(a.join("r.tar"), "y").unwrap();
        delete_local(&a).unwrap();
        assert!(!a.exists());
        // Without metadata (an incomplete one) too.
        std::fs::create_dir(&a).unwrap();
        delete_local(&a).unwrap();
        assert!(!a.exists());
    }
}
