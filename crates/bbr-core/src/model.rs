//! The deployment as bbr sees it: instances, their jobs, the jobs' scripts and metadata.

use crate::ARTIFACT_DIRECTORY;
use crate::remote::Remote;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The seven release-author script names bbr recognises under `bin/bbr/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScriptKind {
    /// `metadata`: prints YAML describing ordering and switches.
    Metadata,
    /// `pre-backup-lock`.
    PreBackupLock,
    /// `backup`.
    Backup,
    /// `post-backup-unlock`.
    PostBackupUnlock,
    /// `pre-restore-lock`.
    PreRestoreLock,
    /// `restore`.
    Restore,
    /// `post-restore-unlock`.
    PostRestoreUnlock,
}

impl ScriptKind {
    /// Every kind.
    pub const ALL: [ScriptKind; 7] = [
        ScriptKind::Metadata,
        ScriptKind::PreBackupLock,
        ScriptKind::Backup,
        ScriptKind::PostBackupUnlock,
        ScriptKind::PreRestoreLock,
        ScriptKind::Restore,
        ScriptKind::PostRestoreUnlock,
    ];

    /// The file name of the script (also the phase name in error messages).
    pub fn file_name(self) -> &'static str {
        match self {
            ScriptKind::Metadata => "metadata",
            ScriptKind::PreBackupLock => "pre-backup-lock",
            ScriptKind::Backup => "backup",
            ScriptKind::PostBackupUnlock => "post-backup-unlock",
            ScriptKind::PreRestoreLock => "pre-restore-lock",
            ScriptKind::Restore => "restore",
            ScriptKind::PostRestoreUnlock => "post-restore-unlock",
        }
    }

    /// The kind for a script file name, if it is one of the seven.
    pub fn from_file_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.file_name() == name)
    }
}

/// A `{job_name, release}` entry of `backup_should_be_locked_before` /
/// `restore_should_be_locked_before`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct LockBefore {
    /// The job that must be locked after this one.
    #[serde(default)]
    pub job_name: String,
    /// Its release (blanked in director mode, where jobs match by name only).
    #[serde(default)]
    pub release: String,
}

/// What a job's `metadata` script declared.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct JobMetadata {
    /// Jobs whose `pre-backup-lock` must run after this job's.
    #[serde(default)]
    pub backup_should_be_locked_before: Vec<LockBefore>,
    /// Jobs whose `pre-restore-lock` must run after this job's.
    #[serde(default)]
    pub restore_should_be_locked_before: Vec<LockBefore>,
    /// `true` drops the job entirely.
    #[serde(default)]
    pub skip_bbr_scripts: bool,
    /// Discontinued: warned about at backup, ignored.
    #[serde(default)]
    pub backup_name: Option<String>,
    /// Discontinued: makes a restore of the instance fail.
    #[serde(default)]
    pub restore_name: Option<String>,
}

/// Why a `metadata` script's output was refused.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not YAML of the expected shape.
    #[error("failed to unmarshal job metadata: {0}")]
    Yaml(String),
    /// An ordering entry lacks `job_name` or `release`.
    #[error("both job name and release should be specified for should be locked before")]
    IncompleteOrdering,
    /// `backup_name` or `restore_name` is not a single safe path component.
    #[error(transparent)]
    UnsafeName(#[from] bbr_artifact::naming::UnsafeName),
}

impl JobMetadata {
    /// Parses a `metadata` script's stdout. With `omit_releases` (director mode) the releases
    /// of ordering entries are blanked after validation so that jobs match by name only.
    pub fn parse(text: &str, omit_releases: bool) -> Result<Self, MetadataError> {
        // Like Go's yaml.v2, an empty or null document (`---`, `~`, comments only) means
        // "no metadata".
        let meta: Option<JobMetadata> = if text.trim().is_empty() {
            None
        } else {
            serde_saphyr::from_str(text).map_err(|e| MetadataError::Yaml(e.to_string()))?
        };
        let mut meta = meta.unwrap_or_default();
        let named = [
            ("backup_name", &meta.backup_name),
            ("restore_name", &meta.restore_name),
        ];
        for (key, name) in named {
            if let Some(name) = name {
                bbr_artifact::naming::check_safe_name(
                    key,
                    name,
                    "in the metadata script's output",
                )?;
            }
        }
        let entries = meta
            .backup_should_be_locked_before
            .iter_mut()
            .chain(meta.restore_should_be_locked_before.iter_mut());
        for entry in entries {
            if entry.job_name.is_empty() || entry.release.is_empty() {
                return Err(MetadataError::IncompleteOrdering);
            }
            if omit_releases {
                entry.release.clear();
            }
        }
        Ok(meta)
    }
}

/// One job on one instance that has at least one bbr script.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job name (`/var/vcap/jobs/<name>`).
    pub name: String,
    /// The release the job comes from ("" when unknown, and always in director mode).
    pub release: String,
    /// The job's scripts by kind, as absolute paths.
    pub scripts: BTreeMap<ScriptKind, String>,
    /// What its metadata script declared.
    pub metadata: JobMetadata,
    /// `bbr.backup_one_restore_all` is set for this job in the manifest.
    pub backup_one_restore_all: bool,
    /// The job runs on the bootstrap instance of its group.
    pub on_bootstrap: bool,
}

impl Job {
    /// The job's script of `kind`, if it has one.
    pub fn script(&self, kind: ScriptKind) -> Option<&str> {
        self.scripts.get(&kind).map(String::as_str)
    }

    /// True when the job has a `backup` script.
    pub fn has_backup(&self) -> bool {
        self.scripts.contains_key(&ScriptKind::Backup)
    }

    /// True when the job has a `restore` script.
    pub fn has_restore(&self) -> bool {
        self.scripts.contains_key(&ScriptKind::Restore)
    }

    fn one_for_all_name(&self) -> String {
        format!("{}-{}-backup-one-restore-all", self.name, self.release)
    }

    /// True when this job's backup goes to a named (custom) artifact.
    pub fn has_named_backup_artifact(&self) -> bool {
        self.backup_one_restore_all && self.on_bootstrap
    }

    /// True when this job restores from a named (custom) artifact.
    pub fn has_named_restore_artifact(&self) -> bool {
        self.backup_one_restore_all
    }

    /// The artifact name the backup script writes to.
    pub fn backup_artifact_name(&self) -> String {
        if self.has_named_backup_artifact() {
            self.one_for_all_name()
        } else {
            self.name.clone()
        }
    }

    /// The artifact name the restore script reads from.
    pub fn restore_artifact_name(&self) -> String {
        if self.has_named_restore_artifact() {
            self.one_for_all_name()
        } else {
            self.name.clone()
        }
    }

    /// The remote directory for an artifact name (with trailing slash, as scripts see it).
    pub fn remote_directory(artifact_name: &str) -> String {
        format!("{ARTIFACT_DIRECTORY}/{artifact_name}/")
    }
}

/// One VM of the deployment.
pub struct Instance {
    /// Instance group name (`bosh` in director mode).
    pub group: String,
    /// BOSH index as a string (`0` in director mode).
    pub index: String,
    /// Instance id (UUID in deployment mode, `0` in director mode).
    pub id: String,
    /// Jobs with bbr scripts, in a deterministic (name) order.
    pub jobs: Vec<Job>,
    /// The connection to the VM.
    pub remote: Arc<dyn Remote>,
    artifact_dir_created: AtomicBool,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("group", &self.group)
            .field("index", &self.index)
            .field("id", &self.id)
            .field("jobs", &self.jobs)
            .finish()
    }
}

impl Instance {
    /// A discovered instance.
    pub fn new(
        group: impl Into<String>,
        index: impl Into<String>,
        id: impl Into<String>,
        jobs: Vec<Job>,
        remote: Arc<dyn Remote>,
    ) -> Self {
        Self {
            group: group.into(),
            index: index.into(),
            id: id.into(),
            jobs,
            remote,
            artifact_dir_created: AtomicBool::new(false),
        }
    }

    /// `<group>/<id>` as used in log lines and errors.
    pub fn identifier(&self) -> String {
        format!("{}/{}", self.group, self.id)
    }

    /// `<group>/<index>` as used in upload log lines.
    pub fn index_identifier(&self) -> String {
        format!("{}/{}", self.group, self.index)
    }

    /// True when some job has a backup script.
    pub fn is_backupable(&self) -> bool {
        self.jobs.iter().any(Job::has_backup)
    }

    /// True when some job has a restore script.
    pub fn is_restorable(&self) -> bool {
        self.jobs.iter().any(Job::has_restore)
    }

    /// Records that `/var/vcap/store/bbr-backup` was (or may have been) created here.
    pub fn mark_artifact_dir_created(&self) {
        self.artifact_dir_created.store(true, Ordering::SeqCst);
    }

    /// True when cleanup must remove the artifact directory.
    pub fn artifact_dir_created(&self) -> bool {
        self.artifact_dir_created.load(Ordering::SeqCst)
    }
}

/// A deployment: a name and its instances.
#[derive(Debug)]
pub struct Deployment {
    /// The deployment name (the host in director mode).
    pub name: String,
    /// Its instances, in discovery order.
    pub instances: Vec<Arc<Instance>>,
}

impl Deployment {
    /// True when some instance can be backed up.
    pub fn is_backupable(&self) -> bool {
        self.instances.iter().any(|i| i.is_backupable())
    }

    /// True when some instance can be restored.
    pub fn is_restorable(&self) -> bool {
        self.instances.iter().any(|i| i.is_restorable())
    }

    /// Every (instance, job) pair.
    pub fn jobs(&self) -> Vec<(Arc<Instance>, Job)> {
        self.instances
            .iter()
            .flat_map(|i| i.jobs.iter().map(move |j| (i.clone(), j.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names_round_trip() {
        for k in ScriptKind::ALL {
            assert_eq!(ScriptKind::from_file_name(k.file_name()), Some(k));
        }
        assert_eq!(ScriptKind::from_file_name("backup.sh"), None);
    }

    #[test]
    fn metadata_parsing() {
        let m = JobMetadata::parse(
            "---\nbackup_should_be_locked_before:\n- job_name: a\n  release: r\nskip_bbr_scripts: false\nunknown: 1\n",
            false,
        )
        .unwrap();
        assert_eq!(m.backup_should_be_locked_before[0].release, "r");
        let m = JobMetadata::parse(
            "restore_should_be_locked_before:\n- job_name: a\n  release: r\n",
            true,
        )
        .unwrap();
        assert_eq!(m.restore_should_be_locked_before[0].release, "");
        assert!(matches!(
            JobMetadata::parse("backup_should_be_locked_before:\n- job_name: a\n", false),
            Err(MetadataError::IncompleteOrdering)
        ));
        assert!(matches!(
            JobMetadata::parse("this is: [not valid", false),
            Err(MetadataError::Yaml(_))
        ));
        assert_eq!(
            JobMetadata::parse("", false).unwrap(),
            JobMetadata::default()
        );
    }

    #[test]
    fn metadata_artifact_names_must_be_single_components() {
        assert!(JobMetadata::parse("backup_name: ok-name\n", false).is_ok());
        for bad in [
            "backup_name: ../../evil",
            "restore_name: a/b",
            "backup_name: '..'",
        ] {
            let e = JobMetadata::parse(bad, false).unwrap_err();
            assert!(matches!(e, MetadataError::UnsafeName(_)), "{bad}: {e}");
            assert!(e.to_string().contains("is not a safe file name"), "{e}");
        }
    }
}
