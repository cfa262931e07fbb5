//! Connecting: the way out of this machine (`BOSH_ALL_PROXY`), the director API client of
//! `bbr deployment`, the SSH settings of `bbr director`, and the one rule that names the
//! default `known_hosts` file.

use crate::all_deployments::Connection;
use crate::director::OptionsWithKey;
use crate::output::Logger;
use crate::values::HostAddr;
use bbr_core::StopSignal;
use bbr_core::report::ReporterExt;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// No `known_hosts` file can be named.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("HOME is not set and the password database has no home directory for uid {uid}: {remedy}")]
pub struct KnownHostsError {
    /// The effective user id looked up.
    pub uid: u32,
    /// What the operator can do (differs per mode: only director mode has `--known-hosts`).
    pub remedy: &'static str,
}

/// The remedy of director mode.
pub const GIVE_KNOWN_HOSTS_FLAG: &str = "give --known-hosts FILE.";

/// The remedy of deployment mode (the file is only needed for an SSH jump host).
pub const SET_HOME: &str =
    "set HOME to the directory whose .ssh/known_hosts holds the jump host's key.";

/// The default `known_hosts` file, for both modes: `$HOME/.ssh/known_hosts`, or, when
/// `HOME` is unset or empty (cron, systemd units, `env -i`), `.ssh/known_hosts` in the
/// effective user's home directory from the password database, the directory OpenSSH
/// itself reads `~/.ssh/known_hosts` from. `HOME` comes first because operators (and our
/// tests) point it elsewhere on purpose. With neither, no file is guessed: the error says
/// what to give instead (`remedy`).
///
/// The file is the trust anchor for the host it checks (the director VM in director mode,
/// the `BOSH_ALL_PROXY` jump host in both modes), so the rule never falls back to a file the
/// user cannot have meant, such as root's `/root/.ssh/known_hosts` for another user.
/// Director mode can override the default with `--known-hosts`; deployment mode has no
/// such flag because the instances' keys are pinned to what the director reports and only
/// the jump host is checked against the file (docs/cli.md, "`--known-hosts FILE`").
pub fn default_known_hosts(remedy: &'static str) -> Result<PathBuf, KnownHostsError> {
    known_hosts_from(std::env::var_os("HOME"), remedy, account_home)
}

/// [`default_known_hosts`] with its inputs given: the `HOME` value and the lookup of the
/// effective user's home directory (and uid) in the password database.
pub fn known_hosts_from(
    home: Option<OsString>,
    remedy: &'static str,
    account_home: impl FnOnce() -> (u32, Option<PathBuf>),
) -> Result<PathBuf, KnownHostsError> {
    let in_home = |dir: &Path| dir.join(".ssh").join("known_hosts");
    if let Some(home) = home.filter(|h| !h.is_empty()) {
        return Ok(in_home(Path::new(&home)));
    }
    match account_home() {
        (_, Some(dir)) if !dir.as_os_str().is_empty() => Ok(in_home(&dir)),
        (uid, _) => Err(KnownHostsError { uid, remedy }),
    }
}

/// The effective uid and its home directory from the password database.
fn account_home() -> (u32, Option<PathBuf>) {
    let uid = nix::unistd::Uid::effective();
    let dir = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|user| user.dir);
    (uid.as_raw(), dir)
}

/// Where the `known_hosts` file for the jump host comes from.
pub enum KnownHosts {
    /// Already named (director mode: `--known-hosts` or the default, resolved up front
    /// because the director VM's own key is checked against it).
    Path(PathBuf),
    /// Named by [`default_known_hosts`] only if a jump host needs it (deployment mode).
    DefaultWhenNeeded,
}

/// The way out of this machine: direct, or through `proxy` (the `BOSH_ALL_PROXY` value),
/// whose SSH jump host's key is checked against `known_hosts`.
pub async fn proxy_dialer(
    logger: &Logger,
    proxy: Option<&str>,
    known_hosts: KnownHosts,
) -> Result<bbr_ssh::Dialer, String> {
    let Some(value) = proxy else {
        return Ok(bbr_ssh::Dialer::Direct);
    };
    let spec = bbr_ssh::ProxySpec::parse(value).map_err(|e| e.to_string())?;
    let known_hosts = match (known_hosts, &spec) {
        (KnownHosts::Path(p), _) => p,
        // A plain SOCKS5 proxy checks no host key: no file needed.
        (KnownHosts::DefaultWhenNeeded, bbr_ssh::ProxySpec::Socks5 { .. }) => PathBuf::new(),
        (KnownHosts::DefaultWhenNeeded, bbr_ssh::ProxySpec::SshTunnel { .. }) => {
            default_known_hosts(SET_HOME).map_err(|e| format!("BOSH_ALL_PROXY: {e}"))?
        }
    };
    let warn_logger = logger.clone();
    bbr_ssh::Dialer::for_proxy(&spec, known_hosts, Arc::new(move |m| warn_logger.warn(m)))
        .await
        .map_err(|e| format!("BOSH_ALL_PROXY: {e}"))
}

/// The director API settings of a `bbr deployment` run.
pub struct DirectorApi<'a> {
    /// `--target` as given (parsed here, after the proxy, so a broken proxy is reported
    /// first as before).
    pub target: &'a str,
    /// `--ca-cert`: PEM text or a path to one.
    pub ca_cert: Option<&'a str>,
    /// `--username`.
    pub username: &'a str,
    /// `--password`.
    pub password: &'a bbr_director::client::Secret,
    /// `BOSH_ALL_PROXY`.
    pub proxy: Option<&'a str>,
    /// The wait for each director task.
    pub task_timeout: Duration,
}

/// The director connection of a `bbr deployment` run; every client made waits at most
/// `api.task_timeout` for a task and gives up its requests once `stop` is raised.
pub async fn director_connection(
    api: DirectorApi<'_>,
    logger: &Logger,
    stop: StopSignal,
) -> Result<Connection, String> {
    let dialer = proxy_dialer(logger, api.proxy, KnownHosts::DefaultWhenNeeded).await?;
    let proxy_url = dialer.http_proxy_url().await.map_err(|e| e.to_string())?;
    let target = bbr_director::Target::parse(api.target).map_err(|e| e.to_string())?;
    let ca = api
        .ca_cert
        .map(bbr_director::CaCert::load)
        .transpose()
        .map_err(|e| e.to_string())?;
    let username = api.username.to_string();
    let password = api.password.clone();
    let task_timeout = api.task_timeout;
    let debug_logger = logger.clone();
    Ok(Connection {
        dialer,
        connect: Arc::new(move || {
            let (target, ca, username, password, debug_logger, proxy_url, stop) = (
                target.clone(),
                ca.clone(),
                username.clone(),
                password.clone(),
                debug_logger.clone(),
                proxy_url.clone(),
                stop.clone(),
            );
            Box::pin(async move {
                bbr_director::DirectorClient::connect(
                    &target,
                    ca.as_ref(),
                    &username,
                    password,
                    proxy_url.as_deref(),
                    Arc::new(move |line| debug_logger.debug(line)),
                )
                .await
                .map(|c| Arc::new(c.with_stop(stop).with_task_timeout(task_timeout)))
                .map_err(|e| e.to_string())
            })
        }),
    })
}

/// The SSH settings of `bbr director`, waiting for the key (read when the VM is first
/// contacted): the VM's host key is checked against `known_hosts`.
pub fn director_ssh_options(
    host: &HostAddr,
    user: &str,
    known_hosts: &Path,
    dialer: bbr_ssh::Dialer,
    root_runner: bool,
    logger: &Logger,
) -> OptionsWithKey {
    let warn_logger = logger.clone();
    let on_warning: Arc<dyn Fn(String) + Send + Sync> = Arc::new(move |m| warn_logger.warn(m));
    let (connect_host, port, user, known_hosts) = (
        host.connect_host.clone(),
        host.port,
        user.to_string(),
        known_hosts.to_path_buf(),
    );
    Box::new(move |key| bbr_ssh::ConnectOptions {
        host: connect_host.clone(),
        port,
        user: user.clone(),
        key,
        host_key: bbr_ssh::HostKeyPolicy::KnownHosts(known_hosts.clone()),
        on_warning: on_warning.clone(),
        dialer: dialer.clone(),
        root_runner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_account() -> (u32, Option<PathBuf>) {
        (4242, None)
    }

    #[test]
    fn home_comes_first() {
        let got = known_hosts_from(Some("/home/op".into()), GIVE_KNOWN_HOSTS_FLAG, || {
            panic!("the password database is not consulted when HOME is set")
        });
        assert_eq!(got.unwrap(), PathBuf::from("/home/op/.ssh/known_hosts"));
    }

    #[test]
    fn without_home_the_account_home_is_used() {
        let account = || (0, Some(PathBuf::from("/root")));
        assert_eq!(
            known_hosts_from(None, GIVE_KNOWN_HOSTS_FLAG, account).unwrap(),
            PathBuf::from("/root/.ssh/known_hosts")
        );
        let account = || (1000, Some(PathBuf::from("/home/backup")));
        assert_eq!(
            known_hosts_from(Some("".into()), SET_HOME, account).unwrap(),
            PathBuf::from("/home/backup/.ssh/known_hosts"),
            "an empty HOME counts as unset (it used to give a relative .ssh/known_hosts)"
        );
    }

    #[test]
    fn neither_is_refused_with_the_mode_remedy() {
        let e = known_hosts_from(None, GIVE_KNOWN_HOSTS_FLAG, no_account).unwrap_err();
        assert_eq!(
            e.to_string(),
            "HOME is not set and the password database has no home directory for uid 4242: give --known-hosts FILE."
        );
        let e = known_hosts_from(None, SET_HOME, || (7, Some(PathBuf::new()))).unwrap_err();
        assert_eq!(e.remedy, SET_HOME);
    }

    #[test]
    fn this_process_has_a_default() {
        // The machine running the tests has HOME or a password entry (root's is /root).
        let path = default_known_hosts(GIVE_KNOWN_HOSTS_FLAG).unwrap();
        assert!(path.ends_with(".ssh/known_hosts"), "{}", path.display());
    }

    #[tokio::test]
    async fn a_socks5_proxy_needs_no_known_hosts_file() {
        let logger = Logger::new(false);
        let dialer = proxy_dialer(
            &logger,
            Some("socks5://127.0.0.1:1080"),
            KnownHosts::DefaultWhenNeeded,
        )
        .await
        .unwrap();
        assert!(matches!(dialer, bbr_ssh::Dialer::Socks5(_, 1080)));
        assert!(matches!(
            proxy_dialer(&logger, None, KnownHosts::DefaultWhenNeeded).await,
            Ok(bbr_ssh::Dialer::Direct)
        ));
        let e = proxy_dialer(&logger, Some("bogus://x"), KnownHosts::DefaultWhenNeeded)
            .await
            .err()
            .unwrap();
        assert!(e.starts_with("BOSH_ALL_PROXY \"bogus://x\""), "{e}");
    }
}
