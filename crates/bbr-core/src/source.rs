//! Where a deployment comes from: director mode (one host over SSH), deployment mode (a BOSH
//! director) or an inventory. A source connects to every instance and finds its scripts;
//! the core runs the metadata scripts and the workflows.

use crate::discovery::FoundScripts;
use crate::error::BbrError;
use crate::model::Instance;
use crate::remote::Remote;
use crate::report::Reporter;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One instance as the source found it.
pub struct FoundInstance {
    /// Instance group.
    pub group: String,
    /// BOSH index (string).
    pub index: String,
    /// Instance id.
    pub id: String,
    /// Connection to the VM.
    pub remote: Arc<dyn Remote>,
    /// Scripts found, by job.
    pub scripts: FoundScripts,
    /// Release name per job name (deployment mode).
    pub releases: BTreeMap<String, String>,
    /// Jobs with `bbr.backup_one_restore_all` set in the manifest.
    pub backup_one_restore_all: BTreeSet<String>,
    /// The VM is its group's bootstrap instance.
    pub bootstrap: bool,
}

impl FoundInstance {
    /// `<group>/<id>`.
    pub fn identifier(&self) -> String {
        format!("{}/{}", self.group, self.id)
    }
}

/// A deployment as the source found it.
pub struct FoundDeployment {
    /// Deployment name (the host in director mode).
    pub name: String,
    /// Its instances.
    pub instances: Vec<FoundInstance>,
}

/// Why a source could not fetch the manifest or release an instance.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The director (or other backend) behind the source failed; its message is shown as it
    /// is, so `failed to cleanup ssh on <instance>: <message>` reads as it did in Go bbr.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl SourceError {
    /// Wraps a backend error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        SourceError::Backend(Box::new(e))
    }
}

/// Finds deployments and tears down what it set up for them.
#[async_trait]
pub trait DeploymentSource: Send + Sync {
    /// The deployment name used in logs and the artifact directory name.
    fn deployment_name(&self) -> &str;

    /// Director mode: ordering entries match by job name only.
    fn omits_releases(&self) -> bool;

    /// Connects to every instance and finds its scripts.
    async fn find(&self, reporter: &dyn Reporter) -> Result<FoundDeployment, BbrError>;

    /// The deployment manifest, for `backup --with-manifest` (director mode has none).
    async fn manifest(&self) -> Result<Option<String>, SourceError> {
        Ok(None)
    }

    /// Releases what the source set up for an instance (deployment mode: the temporary
    /// SSH user). Called by every cleanup step, after the remote directory is removed.
    async fn release_instance(&self, _instance: &Instance) -> Result<(), SourceError> {
        Ok(())
    }
}
