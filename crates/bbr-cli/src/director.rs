//! Director mode: the single pseudo-instance `bosh/0` reached over plain SSH.

use async_trait::async_trait;
use bbr_core::discovery;
use bbr_core::error::BbrError;
use bbr_core::report::{Reporter, ReporterExt};
use bbr_core::source::{DeploymentSource, FoundDeployment, FoundInstance};
use bbr_ssh::{ConnectOptions, SshConnection};
use russh::keys::PrivateKey;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Connection options still missing their key.
pub type OptionsWithKey = Box<dyn Fn(Arc<PrivateKey>) -> ConnectOptions + Send + Sync>;

/// The director as a deployment of one instance.
pub struct DirectorSource {
    name: String,
    host: String,
    key_path: PathBuf,
    options: OptionsWithKey,
    connection: OnceCell<Arc<SshConnection>>,
}

impl DirectorSource {
    /// A source for `name` at `host`, connecting with `options` and the key read from
    /// `key_path` when the director is first looked at (as Go bbr reads it: after a
    /// restore has checked its artifact).
    pub fn new(name: String, host: String, key_path: PathBuf, options: OptionsWithKey) -> Self {
        Self {
            name,
            host,
            key_path,
            options,
            connection: OnceCell::new(),
        }
    }

    /// Closes the connection if one was made.
    pub async fn disconnect(&self) {
        if let Some(c) = self.connection.get() {
            c.disconnect().await;
        }
    }
}

#[async_trait]
impl DeploymentSource for DirectorSource {
    fn deployment_name(&self) -> &str {
        &self.name
    }

    fn omits_releases(&self) -> bool {
        true
    }

    async fn find(&self, reporter: &dyn Reporter) -> Result<FoundDeployment, BbrError> {
        reporter.debug(format!("Attempting to SSH onto {}, 0", self.host));
        let connection = self
            .connection
            .get_or_try_init(|| async {
                let key = ConnectOptions::load_key(&self.key_path)?;
                SshConnection::connect((self.options)(key)).await
            })
            .await
            .map_err(|e| BbrError::general(e.to_string()))?
            .clone();
        let scripts = discovery::find_scripts(connection.as_ref(), "bosh/0", reporter).await?;
        Ok(FoundDeployment {
            name: self.name.clone(),
            instances: vec![FoundInstance {
                group: "bosh".into(),
                index: "0".into(),
                id: "0".into(),
                remote: connection,
                scripts,
                releases: Default::default(),
                backup_one_restore_all: Default::default(),
                bootstrap: false,
            }],
        })
    }
}
