//! MySQL and MariaDB: version detection, `mysqldump`/`mariadb-dump` backup, `mysql`/`mariadb`
//! restore.
//!
//! Command lines (as the original's):
//!
//! - common prefix `--user=<u> --host=<h> --port=<p>` plus SSL flags; environment replaced by
//!   `MYSQL_PWD` only;
//! - version: `<client> <prefix> --skip-column-names --silent "--execute=SELECT VERSION()"`,
//!   logged as `MYSQL server version <v>`;
//! - backup: `<dump> <prefix> -v --skip-add-locks --single-transaction --result-file=<artifact>
//!   <db> [table...] [--set-gtid-purged=OFF]` (the last for MySQL only) — one consistent
//!   snapshot of InnoDB tables;
//! - restore: `<client> <prefix> -v <db>` with the artifact on stdin.
//!
//! Ours adds `--connect-timeout=<connect_timeout>` after the prefix of every `mysql`/`mariadb`
//! run, and `--init-command=SET SESSION lock_wait_timeout=<lock_timeout>` to the restore; the
//! dump programs have no connect-timeout option and are killed instead if they have not
//! connected in time ([`crate::timeouts`]).
//!
//! SSL flags depend on the client program's family (the original keys them on the server
//! version, which picked the client): MySQL clients get `--ssl-ca`/`--ssl-cert`/`--ssl-key`
//! and `--ssl-mode=VERIFY_IDENTITY` (`VERIFY_CA` with `skip_host_verify`), and nothing
//! without `tls` (the client's default `PREFERRED`); MariaDB clients get
//! `--ssl-ca`/`--ssl-cert`/`--ssl-key` plus `--ssl-verify-server-cert` unless
//! `skip_host_verify`, and without `tls` the original's `--ssl-cipher=<list>` that asks for
//! opportunistic TLS.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::ConnectionConfig;
use crate::discovery::ClientSearch;
use crate::golog;
use crate::run::Failure;
use crate::runner::{Command, RunError};
use crate::secrets::{PrivateDir, TlsFiles};
use crate::timeouts;
use crate::version::{self, MysqlImpl};

/// The original's OpenSSL cipher names (MariaDB clients without `tls`).
const OPENSSL_CIPHERS: &[&str] = &[
    "AES256-GCM-SHA384",
    "AES256-SHA",
    "AES256-SHA256",
    "CAMELLIA256-SHA",
    "DES-CBC3-SHA",
    "DHE-DSS-AES256-GCM-SHA384",
    "DHE-DSS-AES256-SHA",
    "DHE-DSS-AES256-SHA256",
    "DHE-DSS-CAMELLIA256-SHA",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-AES256-SHA",
    "DHE-RSA-AES256-SHA256",
    "DHE-RSA-CAMELLIA256-SHA",
    "ECDH-ECDSA-AES256-GCM-SHA384",
    "ECDH-ECDSA-AES256-SHA",
    "ECDH-ECDSA-AES256-SHA384",
    "ECDH-ECDSA-DES-CBC3-SHA",
    "ECDH-RSA-AES256-GCM-SHA384",
    "ECDH-RSA-AES256-SHA",
    "ECDH-RSA-AES256-SHA384",
    "ECDH-RSA-DES-CBC3-SHA",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-ECDSA-DES-CBC3-SHA",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-DES-CBC3-SHA",
    "EDH-DSS-DES-CBC3-SHA",
    "EDH-RSA-DES-CBC3-SHA",
    "PSK-3DES-EDE-CBC-SHA",
    "PSK-AES256-CBC-SHA",
    "SRP-DSS-3DES-EDE-CBC-SHA",
    "SRP-DSS-AES-128-CBC-SHA",
    "SRP-DSS-AES-256-CBC-SHA",
    "SRP-RSA-3DES-EDE-CBC-SHA",
    "SRP-RSA-AES-128-CBC-S",
    "SRP-RSA-AES-256-CBC-SHA",
];

/// The original's yaSSL cipher names.
const YASSL_CIPHERS: &[&str] = &[
    "AES128-RMD",
    "AES128-SHA",
    "AES256-RMD",
    "AES256-SHA",
    "DES-CBC-SHA",
    "DES-CBC3-RMD",
    "DES-CBC3-SHA",
    "DHE-RSA-AES128-RMD",
    "DHE-RSA-AES128-SHA",
    "DHE-RSA-AES256-RMD",
    "DHE-RSA-AES256-SHA",
    "DHE-RSA-DES-CBC3-RMD",
    "EDH-RSA-DES-CBC-SHA",
    "EDH-RSA-DES-CBC3-SHA",
    "RC4-MD5",
    "RC4-SHA",
];

/// The colon-joined cipher list.
pub fn cipher_list() -> String {
    let all: Vec<&str> = OPENSSL_CIPHERS
        .iter()
        .chain(YASSL_CIPHERS)
        .copied()
        .collect();
    all.join(":")
}

/// SSL flags for a client of family `client`.
pub fn ssl_args(client: MysqlImpl, tls: Option<&TlsFiles>) -> Vec<OsString> {
    let mut v: Vec<OsString> = Vec::new();
    let path_arg = |name: &str, p: &Path| {
        let mut s = OsString::from(name);
        s.push(p.as_os_str());
        s
    };
    match tls {
        Some(t) => {
            v.push(path_arg("--ssl-ca=", &t.ca));
            if let Some(c) = &t.cert {
                v.push(path_arg("--ssl-cert=", c));
            }
            if let Some(k) = &t.key {
                v.push(path_arg("--ssl-key=", k));
            }
            match client {
                MysqlImpl::Mysql => v.push(
                    if t.skip_host_verify {
                        "--ssl-mode=VERIFY_CA"
                    } else {
                        "--ssl-mode=VERIFY_IDENTITY"
                    }
                    .into(),
                ),
                MysqlImpl::Mariadb => {
                    if !t.skip_host_verify {
                        v.push("--ssl-verify-server-cert".into());
                    }
                }
            }
        }
        None => {
            if client == MysqlImpl::Mariadb {
                v.push(format!("--ssl-cipher={}", cipher_list()).into());
            }
        }
    }
    v
}

/// A configured connection for one client family.
pub struct Conn<'a> {
    cfg: &'a ConnectionConfig,
    tls: Option<&'a TlsFiles>,
}

impl<'a> Conn<'a> {
    /// Builds the connection.
    pub fn new(cfg: &'a ConnectionConfig, tls: Option<&'a TlsFiles>) -> Self {
        Conn { cfg, tls }
    }

    fn base(&self, program: &Path, family: MysqlImpl) -> Command {
        let mut env = BTreeMap::new();
        env.insert("MYSQL_PWD".to_string(), OsString::from(&self.cfg.password));
        Command::new(program)
            .arg(format!("--user={}", self.cfg.username))
            .arg(format!("--host={}", self.cfg.host))
            .arg(format!("--port={}", self.cfg.port))
            .args(ssl_args(family, self.tls))
            .env_only(env)
    }

    /// [`Conn::base`] for `mysql`/`mariadb`, which take `--connect-timeout`.
    fn client_base(&self, program: &Path, family: MysqlImpl) -> Command {
        self.base(program, family)
            .arg(format!("--connect-timeout={}", self.cfg.connect_timeout))
    }

    /// The connect-timeout message.
    fn timeout_message(&self) -> String {
        timeouts::connect_timeout_message(&self.cfg.host, self.cfg.port, self.cfg.connect_timeout)
    }

    /// `text`, plus the connect-timeout explanation when the failed client `e` ran out of its
    /// `--connect-timeout` (or was killed by its connect deadline).
    fn explain(&self, text: String, e: &RunError) -> String {
        match e {
            RunError::Failed { output, .. }
                if output.timed_out
                    || timeouts::mysql_connect_timed_out(
                        &output.stderr_text(),
                        output.elapsed,
                        self.cfg.connect_timeout,
                    ) =>
            {
                format!("{}\n{}", text.trim_end(), self.timeout_message())
            }
            _ => text,
        }
    }

    /// The version query.
    pub fn version_command(&self, client: &Path, family: MysqlImpl) -> Command {
        self.client_base(client, family)
            .args([
                "--skip-column-names",
                "--silent",
                "--execute=SELECT VERSION()",
            ])
            .capture_full()
    }

    /// The dump command.
    pub fn dump_command(
        &self,
        dump: &Path,
        family: MysqlImpl,
        server: MysqlImpl,
        artifact: &Path,
    ) -> Command {
        let mut result = OsString::from("--result-file=");
        result.push(artifact.as_os_str());
        let mut c = self
            .base(dump, family)
            .args(["-v", "--skip-add-locks", "--single-transaction"])
            .arg(result)
            .arg(&self.cfg.database);
        for t in self.cfg.tables.iter().flatten() {
            c = c.arg(t);
        }
        if server == MysqlImpl::Mysql {
            c = c.arg("--set-gtid-purged=OFF");
        }
        c.connect_deadline(
            Duration::from_secs(self.cfg.connect_timeout.into()),
            timeouts::dump_connected,
        )
    }

    /// The restore command (artifact on stdin).
    pub fn restore_command(&self, client: &Path, family: MysqlImpl, artifact: &Path) -> Command {
        self.client_base(client, family)
            .arg(format!(
                "--init-command=SET SESSION lock_wait_timeout={}",
                self.cfg.lock_timeout
            ))
            .arg("-v")
            .arg(&self.cfg.database)
            .stdin_file(artifact)
    }
}

fn action(e: impl std::fmt::Display) -> Failure {
    Failure::Action(e.to_string())
}

struct Prepared {
    server: MysqlImpl,
    tools: crate::discovery::MysqlTools,
}

fn prepare(conn: &Conn<'_>, search: &ClientSearch) -> Result<Prepared, Failure> {
    let (probe, family) = search
        .mysql_probe_client()
        .map_err(|e| Failure::Fatal(e.to_string()))?;
    let out = conn.version_command(&probe, family).run().map_err(|e| {
        let text = match &e {
            RunError::Failed { output, .. } => output.stderr_text(),
            other => other.to_string(),
        };
        Failure::Fatal(conn.explain(text, &e))
    })?;
    let text = out.stdout_text();
    let v = version::parse_semver(&text).map_err(|e| Failure::Fatal(e.to_string()))?;
    golog::log(&format!("MYSQL server version {v}"));
    let server = version::mysql_impl_of(&text);
    let target = version::supported_mysql(server, &v).map_err(|e| Failure::Fatal(e.to_string()))?;
    let tools = search
        .mysql_tools(target)
        .map_err(|e| Failure::Fatal(e.to_string()))?;
    Ok(Prepared { server, tools })
}

fn write_tls(cfg: &ConnectionConfig, dir: &PrivateDir) -> Result<Option<TlsFiles>, Failure> {
    match &cfg.tls {
        Some(t) => TlsFiles::write(dir, t).map(Some).map_err(|e| {
            Failure::Fatal(format!(
                "cannot write TLS files to a temporary directory: {e}"
            ))
        }),
        None => Ok(None),
    }
}

/// Backs the database up into `artifact`.
pub fn backup(
    cfg: &ConnectionConfig,
    search: &ClientSearch,
    dir: &PrivateDir,
    artifact: &Path,
) -> Result<(), Failure> {
    let tls = write_tls(cfg, dir)?;
    let conn = Conn::new(cfg, tls.as_ref());
    let p = prepare(&conn, search)?;
    conn.dump_command(&p.tools.dump, p.server, p.server, artifact)
        .run()
        .map(drop)
        .map_err(|e| action(conn.explain(e.go_text(), &e)))
}

/// Restores `artifact` into the database.
pub fn restore(
    cfg: &ConnectionConfig,
    search: &ClientSearch,
    dir: &PrivateDir,
    artifact: &Path,
) -> Result<(), Failure> {
    let tls = write_tls(cfg, dir)?;
    let conn = Conn::new(cfg, tls.as_ref());
    let p = prepare(&conn, search)?;
    if let Err(e) = std::fs::File::open(artifact) {
        return Err(Failure::Fatal(format!(
            "Error reading from artifact file, {}",
            crate::config::go_style_io_error("open", artifact, &e)
        )));
    }
    let client: PathBuf = p.tools.client;
    conn.restore_command(&client, p.server, artifact)
        .run()
        .map(drop)
        .map_err(|e| {
            let lock = match &e {
                RunError::Failed { output, .. } => {
                    timeouts::mysql_lock_error(&output.stderr_text()).map(|line| {
                        timeouts::mysql_lock_message(&cfg.database, cfg.lock_timeout, line)
                    })
                }
                _ => None,
            };
            match lock {
                Some(m) => action(format!("{}\n{m}", e.go_text())),
                None => action(conn.explain(e.go_text(), &e)),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Adapter;

    fn cfg() -> ConnectionConfig {
        ConnectionConfig {
            username: "u".into(),
            password: "s3cret".into(),
            host: "h".into(),
            port: 3306,
            adapter: Adapter::Mysql,
            database: "app".into(),
            tables: Some(vec!["people".into()]),
            tls: None,
            connect_timeout: 7,
            lock_timeout: 9,
        }
    }

    fn args(c: &Command) -> Vec<String> {
        c.get_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn dump_lines() {
        let cfg = cfg();
        let conn = Conn::new(&cfg, None);
        let d = conn.dump_command(
            Path::new("/b/mysqldump"),
            MysqlImpl::Mysql,
            MysqlImpl::Mysql,
            Path::new("/a/f"),
        );
        assert_eq!(
            args(&d),
            [
                "--user=u",
                "--host=h",
                "--port=3306",
                "-v",
                "--skip-add-locks",
                "--single-transaction",
                "--result-file=/a/f",
                "app",
                "people",
                "--set-gtid-purged=OFF"
            ]
        );
        assert_eq!(
            d.get_env().expect("env").keys().collect::<Vec<_>>(),
            ["MYSQL_PWD"]
        );
        let d = conn.dump_command(
            Path::new("/b/mariadb-dump"),
            MysqlImpl::Mariadb,
            MysqlImpl::Mariadb,
            Path::new("/a/f"),
        );
        let a = args(&d);
        assert!(a[3].starts_with("--ssl-cipher=AES256-GCM-SHA384:AES256-SHA:"));
        assert!(a[3].ends_with(":RC4-MD5:RC4-SHA"));
        assert!(!a.iter().any(|x| x.contains("gtid") || x.contains("s3cret")));
        let r = conn.restore_command(Path::new("/b/mysql"), MysqlImpl::Mysql, Path::new("/a/f"));
        assert_eq!(
            args(&r),
            [
                "--user=u",
                "--host=h",
                "--port=3306",
                "--connect-timeout=7",
                "--init-command=SET SESSION lock_wait_timeout=9",
                "-v",
                "app"
            ]
        );
        let v = conn.version_command(Path::new("/b/mysql"), MysqlImpl::Mysql);
        assert_eq!(args(&v)[3], "--connect-timeout=7");
    }

    #[test]
    fn ssl_flags() {
        let t = TlsFiles {
            ca: "/t/ca".into(),
            cert: Some("/t/c".into()),
            key: Some("/t/k".into()),
            skip_host_verify: false,
        };
        let s = |v: Vec<OsString>| {
            v.into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            s(ssl_args(MysqlImpl::Mysql, Some(&t))),
            [
                "--ssl-ca=/t/ca",
                "--ssl-cert=/t/c",
                "--ssl-key=/t/k",
                "--ssl-mode=VERIFY_IDENTITY"
            ]
        );
        assert_eq!(
            s(ssl_args(MysqlImpl::Mariadb, Some(&t))),
            [
                "--ssl-ca=/t/ca",
                "--ssl-cert=/t/c",
                "--ssl-key=/t/k",
                "--ssl-verify-server-cert"
            ]
        );
        let t = TlsFiles {
            ca: "/t/ca".into(),
            cert: None,
            key: None,
            skip_host_verify: true,
        };
        assert_eq!(
            s(ssl_args(MysqlImpl::Mysql, Some(&t))),
            ["--ssl-ca=/t/ca", "--ssl-mode=VERIFY_CA"]
        );
        assert_eq!(
            s(ssl_args(MysqlImpl::Mariadb, Some(&t))),
            ["--ssl-ca=/t/ca"]
        );
        assert!(ssl_args(MysqlImpl::Mysql, None).is_empty());
    }
}
