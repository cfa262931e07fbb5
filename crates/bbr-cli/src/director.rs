//! Director mode: the single pseudo-instance `bosh/0` reached over plain SSH.

use async_trait::async_trait;
use bbr_core::discovery;
use bbr_core::error::BbrError;
use bbr_core::report::{Reporter, ReporterExt};
use bbr_core::source::{DeploymentSource, FoundDeployment, FoundInstance};
use bbr_ssh::{ConnectOptions, SshConnection};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The director as a deployment of one instance.
pub struct DirectorSource {
    name: String,
    options: ConnectOptions,
    connection: OnceCell<Arc<SshConnection>>,
}

impl DirectorSource {
    /// A source for `name` connecting with `options`.
    pub fn new(name: String, options: ConnectOptions) -> Self {
        Self {
            name,
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
        reporter.debug(format!("Attempting to SSH onto {}, 0", self.options.host));
        let connection = self
            .connection
            .get_or_try_init(|| SshConnection::connect(self.options.clone()))
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
