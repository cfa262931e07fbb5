//! Finding the client programs that match the server.
//!
//! Order of search for a tool:
//!
//! 1. The original's environment variables, when set and non-empty: `PG_CLIENT_PATH` (psql),
//!    `PG_DUMP_<N>_PATH` / `PG_RESTORE_<N>_PATH` (any major N), `MARIADB_DUMP_PATH`,
//!    `MARIADB_CLIENT_PATH`, `MYSQL_DUMP_8_0_PATH`, `MYSQL_CLIENT_8_0_PATH`,
//!    `MYSQL_DUMP_8_4_PATH`, `MYSQL_CLIENT_8_4_PATH`. Unlike the original none is mandatory.
//!    A path given this way must exist and be of the right version, or it is an error (it is
//!    never skipped in favour of another binary).
//! 2. The client directories: `BBR_DB_CLIENT_DIRS` (colon-separated) if set, otherwise the
//!    defaults `/var/vcap/packages/database-backup-restorer-postgres-<N>`,
//!    `/var/vcap/packages/database-backup-restorer-{mariadb,mysql-8.0,mysql-8.4}`,
//!    `/usr/lib/postgresql` and `/opt/bbr-pg-binaries`. Each entry `E` is probed as
//!    `E/<tool>`, `E/bin/<tool>` and (PostgreSQL) `E/<N>/bin/<tool>`.
//! 3. `PATH`.
//!
//! Every candidate's `--version` is checked: `pg_dump`/`pg_restore` must have the server's
//! major; `mariadb-dump`/`mariadb` must be MariaDB of the server's major; `mysqldump`/`mysql`
//! must be MySQL of the server's major.minor. The first match wins; when none matches the
//! error names the version needed and what was found instead — there is no fallback to
//! another version. `psql` (version probe and queries) may be of any version.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::runner::Command;
use crate::version::{
    ClientVersion, MysqlImpl, MysqlTarget, POSTGRES_MAJORS, SemVer, parse_mysql_client_version,
    parse_pg_client_version,
};

/// Environment variable listing client directories (replaces the defaults).
pub const CLIENT_DIRS_VAR: &str = "BBR_DB_CLIENT_DIRS";

/// A client program could not be found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiscoveryError {
    /// No candidate of the needed version.
    #[error(
        "no {tool} for {needed} found{found}; install the {needed} client tools and add their bin directory to {CLIENT_DIRS_VAR} or PATH, or set {env_var} (a client of another version is never used instead)"
    )]
    NotFound {
        /// Tool name, e.g. `pg_dump`.
        tool: String,
        /// e.g. `PostgreSQL 17`.
        needed: String,
        /// `" (found only: /usr/bin/pg_dump 15.18)"` or empty.
        found: String,
        /// The override variable, e.g. `PG_DUMP_17_PATH`.
        env_var: String,
    },
    /// An override variable points at something unusable.
    #[error("{env_var}={path}: {reason}")]
    BadOverride {
        /// The variable.
        env_var: String,
        /// Its value.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
}

/// PostgreSQL tools selected per server major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTool {
    /// `pg_dump`
    Dump,
    /// `pg_restore`
    Restore,
}

impl PgTool {
    fn name(self) -> &'static str {
        match self {
            PgTool::Dump => "pg_dump",
            PgTool::Restore => "pg_restore",
        }
    }
    fn env_var(self, major: u32) -> String {
        match self {
            PgTool::Dump => format!("PG_DUMP_{major}_PATH"),
            PgTool::Restore => format!("PG_RESTORE_{major}_PATH"),
        }
    }
}

/// The dump and client programs for a MySQL-protocol server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlTools {
    /// `mysqldump` / `mariadb-dump`.
    pub dump: PathBuf,
    /// `mysql` / `mariadb` (restore).
    pub client: PathBuf,
}

/// Where to look for clients; a snapshot of the relevant environment.
#[derive(Debug, Clone)]
pub struct ClientSearch {
    vars: BTreeMap<String, String>,
    dirs: Option<Vec<PathBuf>>,
    path: Vec<PathBuf>,
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn split_dirs(s: &str) -> Vec<PathBuf> {
    s.split(':')
        .filter(|e| !e.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// Runs `prog --version` with an empty environment and returns its stdout.
fn version_output(prog: &Path) -> Option<String> {
    let out = Command::new(prog)
        .arg("--version")
        .env_only(BTreeMap::<String, OsString>::new())
        .quiet()
        .capture_full()
        .run()
        .ok()?;
    Some(out.stdout_text())
}

const VCAP: &str = "/var/vcap/packages";

impl ClientSearch {
    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// From explicit variables (tests).
    pub fn from_vars<I: IntoIterator<Item = (String, String)>>(vars: I) -> Self {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        let dirs = vars.get(CLIENT_DIRS_VAR).map(|s| split_dirs(s));
        let path = vars.get("PATH").map(|s| split_dirs(s)).unwrap_or_default();
        ClientSearch { vars, dirs, path }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn entries(&self, defaults: Vec<PathBuf>) -> Vec<PathBuf> {
        self.dirs.clone().unwrap_or(defaults)
    }

    /// Candidate paths, in search order, without duplicates.
    fn candidates(&self, tools: &[&str], majors: &[u32], defaults: Vec<PathBuf>) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        let mut push = |p: PathBuf| {
            if !out.contains(&p) && is_executable(&p) {
                out.push(p);
            }
        };
        for e in self.entries(defaults) {
            for t in tools {
                push(e.join(t));
                push(e.join("bin").join(t));
                for m in majors {
                    push(e.join(m.to_string()).join("bin").join(t));
                }
            }
        }
        for d in &self.path {
            for t in tools {
                push(d.join(t));
            }
        }
        out
    }

    fn pg_defaults(majors: &[u32]) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = majors
            .iter()
            .map(|m| PathBuf::from(format!("{VCAP}/database-backup-restorer-postgres-{m}")))
            .collect();
        v.push(PathBuf::from("/usr/lib/postgresql"));
        v.push(PathBuf::from("/opt/bbr-pg-binaries"));
        v
    }

    fn mysql_defaults() -> Vec<PathBuf> {
        ["mariadb", "mysql-8.0", "mysql-8.4"]
            .iter()
            .map(|s| PathBuf::from(format!("{VCAP}/database-backup-restorer-{s}")))
            .collect()
    }

    fn override_path(&self, env_var: &str) -> Result<Option<PathBuf>, DiscoveryError> {
        let Some(v) = self.var(env_var) else {
            return Ok(None);
        };
        let p = PathBuf::from(v);
        if !is_executable(&p) {
            return Err(DiscoveryError::BadOverride {
                env_var: env_var.into(),
                path: v.into(),
                reason: "not an executable file".into(),
            });
        }
        Ok(Some(p))
    }

    /// `psql` for the version probe and queries: `PG_CLIENT_PATH`, else any psql found.
    pub fn psql(&self) -> Result<PathBuf, DiscoveryError> {
        if let Some(p) = self.override_path("PG_CLIENT_PATH")? {
            return Ok(p);
        }
        let majors: Vec<u32> = POSTGRES_MAJORS.rev().collect();
        self.candidates(&["psql"], &majors, Self::pg_defaults(&majors))
            .into_iter()
            .next()
            .ok_or_else(|| DiscoveryError::NotFound {
                tool: "psql".into(),
                needed: "PostgreSQL".into(),
                found: String::new(),
                env_var: "PG_CLIENT_PATH".into(),
            })
    }

    /// `pg_dump` / `pg_restore` of exactly `major`.
    pub fn pg_tool(&self, tool: PgTool, major: u32) -> Result<PathBuf, DiscoveryError> {
        let env_var = tool.env_var(major);
        let check = |p: &Path| -> Result<(), String> {
            match version_output(p)
                .as_deref()
                .and_then(parse_pg_client_version)
            {
                Some(v) if v.major_num() == major => Ok(()),
                Some(v) => Err(format!("{}.{}", v.major, v.minor)),
                None => Err("unknown version".into()),
            }
        };
        if let Some(p) = self.override_path(&env_var)? {
            return match check(&p) {
                Ok(()) => Ok(p),
                Err(found) => Err(DiscoveryError::BadOverride {
                    env_var,
                    path: p.display().to_string(),
                    reason: format!(
                        "{} is version {found}, but the server needs PostgreSQL {major}",
                        tool.name()
                    ),
                }),
            };
        }
        let mut rejected = Vec::new();
        for p in self.candidates(&[tool.name()], &[major], Self::pg_defaults(&[major])) {
            match check(&p) {
                Ok(()) => return Ok(p),
                Err(found) => rejected.push(format!("{} {found}", p.display())),
            }
        }
        Err(DiscoveryError::NotFound {
            tool: tool.name().into(),
            needed: format!("PostgreSQL {major}"),
            found: found_text(&rejected),
            env_var,
        })
    }

    /// The client used to ask a MySQL-protocol server its version: `MYSQL_CLIENT_8_0_PATH`,
    /// `MYSQL_CLIENT_8_4_PATH` or `MARIADB_CLIENT_PATH` if set, else the first `mariadb` or
    /// `mysql` found. Returns the path and its implementation (which decides the SSL flags).
    pub fn mysql_probe_client(&self) -> Result<(PathBuf, MysqlImpl), DiscoveryError> {
        for var in [
            "MYSQL_CLIENT_8_0_PATH",
            "MYSQL_CLIENT_8_4_PATH",
            "MARIADB_CLIENT_PATH",
        ] {
            if let Some(p) = self.override_path(var)? {
                let imp = mysql_client_version(&p)
                    .and_then(|v| v.implementation)
                    .unwrap_or(if var.starts_with("MARIADB") {
                        MysqlImpl::Mariadb
                    } else {
                        MysqlImpl::Mysql
                    });
                return Ok((p, imp));
            }
        }
        for p in self.candidates(&["mariadb", "mysql"], &[], Self::mysql_defaults()) {
            if let Some(imp) = mysql_client_version(&p).and_then(|v| v.implementation) {
                return Ok((p, imp));
            }
        }
        Err(DiscoveryError::NotFound {
            tool: "mariadb or mysql client".into(),
            needed: "MySQL/MariaDB".into(),
            found: String::new(),
            env_var: "MARIADB_CLIENT_PATH or MYSQL_CLIENT_8_0_PATH".into(),
        })
    }

    /// Dump and client programs matching `target`.
    pub fn mysql_tools(&self, target: MysqlTarget) -> Result<MysqlTools, DiscoveryError> {
        let (dump_names, client_names, dump_var, client_var): (&[&str], &[&str], String, String) =
            match (target.implementation, target.minor) {
                (MysqlImpl::Mariadb, _) => (
                    &["mariadb-dump", "mysqldump"],
                    &["mariadb", "mysql"],
                    "MARIADB_DUMP_PATH".into(),
                    "MARIADB_CLIENT_PATH".into(),
                ),
                (MysqlImpl::Mysql, minor) => {
                    let mm = format!("{}_{}", target.major, minor.unwrap_or(0));
                    (
                        &["mysqldump"],
                        &["mysql"],
                        format!("MYSQL_DUMP_{mm}_PATH"),
                        format!("MYSQL_CLIENT_{mm}_PATH"),
                    )
                }
            };
        let dump = self.mysql_tool(target, dump_names, &dump_var)?;
        let client = self.mysql_tool(target, client_names, &client_var)?;
        Ok(MysqlTools { dump, client })
    }

    fn mysql_tool(
        &self,
        target: MysqlTarget,
        names: &[&str],
        env_var: &str,
    ) -> Result<PathBuf, DiscoveryError> {
        let check = |p: &Path| -> Result<(), String> {
            match mysql_client_version(p) {
                Some(v) if matches_target(&v, target) => Ok(()),
                Some(v) => Err(format!(
                    "{} {}.{}",
                    v.implementation.map_or("?", MysqlImpl::as_str),
                    v.version.major,
                    v.version.minor
                )),
                None => Err("unknown version".into()),
            }
        };
        if let Some(p) = self.override_path(env_var)? {
            return match check(&p) {
                Ok(()) => Ok(p),
                Err(found) => Err(DiscoveryError::BadOverride {
                    env_var: env_var.into(),
                    path: p.display().to_string(),
                    reason: format!("{} is {found}, but the server needs {target}", names[0]),
                }),
            };
        }
        let mut rejected = Vec::new();
        for p in self.candidates(names, &[], Self::mysql_defaults()) {
            match check(&p) {
                Ok(()) => return Ok(p),
                Err(found) => rejected.push(format!("{} {found}", p.display())),
            }
        }
        Err(DiscoveryError::NotFound {
            tool: names[0].into(),
            needed: target.to_string(),
            found: found_text(&rejected),
            env_var: env_var.into(),
        })
    }
}

fn found_text(rejected: &[String]) -> String {
    if rejected.is_empty() {
        String::new()
    } else {
        format!(" (found only: {})", rejected.join(", "))
    }
}

fn mysql_client_version(p: &Path) -> Option<ClientVersion> {
    version_output(p)
        .as_deref()
        .and_then(parse_mysql_client_version)
}

fn matches_target(v: &ClientVersion, target: MysqlTarget) -> bool {
    let sv: &SemVer = &v.version;
    v.implementation == Some(target.implementation)
        && sv.major_num() == target.major
        && target.minor.is_none_or(|m| sv.minor_num() == m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn fake(dir: &Path, name: &str, version_line: &str) -> PathBuf {
        let p = dir.join(name);
        let mut f = std::fs::File::create(&p).expect("create");
        writeln!(f, "#!/bin/sh\necho '{version_line}'").expect("write");
        drop(f);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    #[test]
    fn picks_matching_major_and_never_another() {
        let t = tempfile::tempdir().expect("tmp");
        let d15 = t.path().join("15/bin");
        let d17 = t.path().join("17/bin");
        std::fs::create_dir_all(&d15).expect("mkdir");
        std::fs::create_dir_all(&d17).expect("mkdir");
        fake(&d15, "pg_dump", "pg_dump (PostgreSQL) 15.18");
        let want = fake(&d17, "pg_dump", "pg_dump (PostgreSQL) 17.11");
        let s = ClientSearch::from_vars([(
            CLIENT_DIRS_VAR.to_string(),
            t.path().display().to_string(),
        )]);
        assert_eq!(s.pg_tool(PgTool::Dump, 17).expect("found"), want);
        let err = s.pg_tool(PgTool::Restore, 17).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no pg_restore for PostgreSQL 17 found")
        );

        let s = ClientSearch::from_vars([(CLIENT_DIRS_VAR.to_string(), d15.display().to_string())]);
        let err = s.pg_tool(PgTool::Dump, 17).unwrap_err().to_string();
        assert!(err.contains("PostgreSQL 17"), "{err}");
        assert!(err.contains("15.18"), "{err}");
        assert!(err.contains("PG_DUMP_17_PATH"), "{err}");
    }

    #[test]
    fn override_must_match() {
        let t = tempfile::tempdir().expect("tmp");
        let p = fake(t.path(), "pg_dump", "pg_dump (PostgreSQL) 15.18");
        let s = ClientSearch::from_vars([("PG_DUMP_16_PATH".into(), p.display().to_string())]);
        let err = s.pg_tool(PgTool::Dump, 16).unwrap_err();
        assert!(matches!(err, DiscoveryError::BadOverride { .. }), "{err}");
        let s = ClientSearch::from_vars([("PG_DUMP_15_PATH".into(), p.display().to_string())]);
        assert_eq!(s.pg_tool(PgTool::Dump, 15).expect("ok"), p);
        let s = ClientSearch::from_vars([("PG_CLIENT_PATH".into(), "/nonexistent/psql".into())]);
        assert!(s.psql().is_err());
    }

    #[test]
    fn mysql_family_and_version() {
        let t = tempfile::tempdir().expect("tmp");
        fake(
            t.path(),
            "mysqldump",
            "mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)",
        );
        fake(
            t.path(),
            "mariadb-dump",
            "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)",
        );
        fake(
            t.path(),
            "mariadb",
            "mariadb  Ver 15.1 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)",
        );
        fake(
            t.path(),
            "mysql",
            "mysql  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)",
        );
        let s = ClientSearch::from_vars([(
            CLIENT_DIRS_VAR.to_string(),
            t.path().display().to_string(),
        )]);
        let maria = MysqlTarget {
            implementation: MysqlImpl::Mariadb,
            major: 10,
            minor: None,
        };
        let tools = s.mysql_tools(maria).expect("mariadb tools");
        assert!(tools.dump.ends_with("mariadb-dump"));
        assert!(tools.client.ends_with("mariadb"));
        let my80 = MysqlTarget {
            implementation: MysqlImpl::Mysql,
            major: 8,
            minor: Some(0),
        };
        let tools = s.mysql_tools(my80).expect("mysql tools");
        assert!(tools.dump.ends_with("mysqldump"));
        let my84 = MysqlTarget {
            implementation: MysqlImpl::Mysql,
            major: 8,
            minor: Some(4),
        };
        let err = s.mysql_tools(my84).unwrap_err().to_string();
        assert!(
            err.contains("MySQL 8.4") && err.contains("mysql 8.0"),
            "{err}"
        );
        let maria11 = MysqlTarget {
            implementation: MysqlImpl::Mariadb,
            major: 11,
            minor: None,
        };
        assert!(s.mysql_tools(maria11).is_err());
        let (probe, imp) = s.mysql_probe_client().expect("probe");
        assert!(probe.ends_with("mariadb"));
        assert_eq!(imp, MysqlImpl::Mariadb);
    }
}
