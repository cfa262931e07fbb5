//! What bbr reads from a deployment manifest: each job's release name and whether
//! `bbr.backup_one_restore_all` is set, for v2 (`instance_groups`) and v1 (`jobs` with
//! `templates`) manifests.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
struct RawManifest {
    #[serde(default)]
    instance_groups: Vec<RawGroup>,
    /// v1: instance groups are `jobs`, their jobs `templates`.
    #[serde(default)]
    jobs: Vec<RawGroup>,
}

#[derive(Debug, Default, Deserialize)]
struct RawGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    jobs: Vec<RawJob>,
    #[serde(default)]
    templates: Vec<RawJob>,
    #[serde(default)]
    properties: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct RawJob {
    #[serde(default)]
    name: String,
    #[serde(default)]
    release: String,
    #[serde(default)]
    properties: Option<serde_json::Value>,
}

/// Per instance group: job name → (release, backup_one_restore_all).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    groups: BTreeMap<String, BTreeMap<String, (String, bool)>>,
}

fn bora(props: &Option<serde_json::Value>) -> bool {
    props
        .as_ref()
        .and_then(|p| p.get("bbr"))
        .and_then(|b| b.get("backup_one_restore_all"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// Why a deployment manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not YAML of the expected shape, or over the parser's limits.
    #[error(transparent)]
    Yaml(#[from] serde_saphyr::Error),
}

impl ManifestInfo {
    /// Parses a manifest; errors name what is wrong.
    pub fn parse(text: &str) -> Result<ManifestInfo, ManifestError> {
        // The same limits as for the artifact's metadata: scaled from the text's size, so a
        // large manifest (which `--with-manifest` stores verbatim) is never refused for its
        // size, while alias bombs and deep nesting still are.
        let raw: RawManifest = bbr_artifact::yaml_limits::from_str(text)?;
        let mut groups = BTreeMap::new();
        let v2 = !raw.instance_groups.is_empty();
        for g in if v2 { raw.instance_groups } else { raw.jobs } {
            let jobs = if v2 { g.jobs } else { g.templates };
            let group_bora = bora(&g.properties);
            let entry: &mut BTreeMap<String, (String, bool)> = groups.entry(g.name).or_default();
            for j in jobs {
                // v2 reads the job's properties; v1 the instance group's.
                let flag = if v2 { bora(&j.properties) } else { group_bora };
                entry.insert(j.name, (j.release, flag));
            }
        }
        Ok(ManifestInfo { groups })
    }

    /// The release of `job` in `group`, if the manifest names one.
    pub fn release(&self, group: &str, job: &str) -> Option<&str> {
        self.groups
            .get(group)
            .and_then(|g| g.get(job))
            .map(|(r, _)| r.as_str())
            .filter(|r| !r.is_empty())
    }

    /// True when `bbr.backup_one_restore_all` is set for `job` in `group`.
    pub fn backup_one_restore_all(&self, group: &str, job: &str) -> bool {
        self.groups
            .get(group)
            .and_then(|g| g.get(job))
            .is_some_and(|(_, b)| *b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_manifest() {
        let m = ManifestInfo::parse(
            "name: d\ninstance_groups:\n- name: redis\n  jobs:\n  - name: redis-server\n    release: redis-test\n    properties:\n      bbr:\n        backup_one_restore_all: true\n  - name: other\n    release: r2\n",
        )
        .unwrap();
        assert_eq!(m.release("redis", "redis-server"), Some("redis-test"));
        assert!(m.backup_one_restore_all("redis", "redis-server"));
        assert!(!m.backup_one_restore_all("redis", "other"));
        assert_eq!(m.release("redis", "missing"), None);
    }

    #[test]
    fn v1_manifest() {
        let m = ManifestInfo::parse(
            "name: d\njobs:\n- name: redis\n  templates:\n  - name: redis-server\n    release: redis-test\n  properties:\n    bbr:\n      backup_one_restore_all: true\n",
        )
        .unwrap();
        assert_eq!(m.release("redis", "redis-server"), Some("redis-test"));
        assert!(m.backup_one_restore_all("redis", "redis-server"));
    }

    #[test]
    fn a_manifest_beyond_the_parser_default_node_budget_parses() {
        // 300,000 property entries: over serde-saphyr's default 250,000 nodes.
        let mut text = String::from(
            "name: d\ninstance_groups:\n- name: big\n  jobs:\n  - name: j\n    release: r\n    properties:\n      bbr:\n        backup_one_restore_all: true\n      users:\n",
        );
        for i in 0..150_000 {
            text.push_str(&format!("        user{i}: pw{i}\n"));
        }
        let m = ManifestInfo::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.release("big", "j"), Some("r"));
        assert!(m.backup_one_restore_all("big", "j"));
    }

    #[test]
    fn an_alias_bomb_manifest_is_refused() {
        let mut text = String::from("name: d\nl0: &a0 [\"lol\"]\n");
        for i in 1..=10 {
            let items = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("l{i}: &a{i} [{items}]\n"));
        }
        text.push_str("instance_groups: []\n");
        let err = ManifestInfo::parse(&text).expect_err("bomb");
        assert!(err.to_string().contains("budget breached"), "{err}");
    }

    #[test]
    fn the_go_fixture_manifest_parses() {
        let text =
            std::fs::read_to_string(bbr_testkit::gobbr::fixture("redis-backup/manifest.yml"))
                .unwrap();
        ManifestInfo::parse(&text).unwrap();
    }
}
