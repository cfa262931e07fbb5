//! Version strings: the original's semver parser, server version detection output, client
//! `--version` output, and the supported server matrix.
//!
//! Supported servers (each needs a client of the same version, never an older or newer one):
//! PostgreSQL 13-18 (`pg_dump`/`pg_restore` of the same major), MariaDB 10.x and 11.x
//! (a MariaDB `mariadb-dump`/`mariadb` of the same major), MySQL 8.0 and 8.4 (a MySQL
//! `mysqldump`/`mysql` of the same major.minor). Anything else is
//! `unsupported version of <postgresql|mariadb|mysql>: <major>.<minor>`, as in the original.

use std::fmt;

/// The original's `SemanticVersion`: major and minor are digits, patch is free text
/// (`27-MariaDB-log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemVer {
    /// Major version digits.
    pub major: String,
    /// Minor version digits.
    pub minor: String,
    /// Patch: anything up to the next whitespace.
    pub patch: String,
}

impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl SemVer {
    /// The major as a number (0 if absurdly large).
    pub fn major_num(&self) -> u32 {
        self.major.parse().unwrap_or(0)
    }
    /// The minor as a number (0 if absurdly large).
    pub fn minor_num(&self) -> u32 {
        self.minor.parse().unwrap_or(0)
    }
}

/// Error from [`parse_semver`] / [`parse_postgres_version`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    /// No `N.N` in the text.
    #[error("could not parse semver: {0:?}")]
    Semver(String),
    /// `SELECT VERSION()` output with fewer than two words.
    #[error("invalid postgres version: {0:?}")]
    Postgres(String),
}

/// A server version outside the supported matrix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unsupported version of {product}: {major}.{minor}")]
pub struct UnsupportedVersion {
    /// `postgresql`, `mysql` or `mariadb`.
    pub product: &'static str,
    /// The server's major version.
    pub major: String,
    /// The server's minor version.
    pub minor: String,
}

fn digits_at(b: &[u8], i: usize) -> usize {
    b[i..].iter().take_while(|c| c.is_ascii_digit()).count()
}

/// The original's parser: first match of `(\d+)\.(\d+)\.(\S+)`, else `(\d+)\.(\d+)` with patch `0`.
pub fn parse_semver(s: &str) -> Result<SemVer, VersionError> {
    let b = s.as_bytes();
    let mut two_part: Option<SemVer> = None;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let n1 = digits_at(b, i);
        let dot = i + n1;
        if dot < b.len() && b[dot] == b'.' {
            let n2 = digits_at(b, dot + 1);
            if n2 > 0 {
                let end2 = dot + 1 + n2;
                let major = &s[i..dot];
                let minor = &s[dot + 1..end2];
                if end2 < b.len() && b[end2] == b'.' {
                    let rest = &s[end2 + 1..];
                    let plen = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    if plen > 0 {
                        return Ok(SemVer {
                            major: major.into(),
                            minor: minor.into(),
                            patch: rest[..plen].into(),
                        });
                    }
                }
                if two_part.is_none() {
                    two_part = Some(SemVer {
                        major: major.into(),
                        minor: minor.into(),
                        patch: "0".into(),
                    });
                }
            }
        }
        // A regex match can start at any digit, so advance by one (not past the run):
        // `(\d+)` is greedy and leftmost, so the first start that matches wins; later starts
        // inside the same run only matter when the earlier one failed.
        i += 1;
    }
    two_part.ok_or_else(|| VersionError::Semver(s.to_string()))
}

/// Parses `psql --tuples-only -c 'SELECT VERSION()'` output (` PostgreSQL 15.18 (Debian ...) on ...`):
/// the second word, as a semver.
pub fn parse_postgres_version(out: &str) -> Result<SemVer, VersionError> {
    let words: Vec<&str> = out.trim().split(' ').collect();
    if words.len() < 2 {
        return Err(VersionError::Postgres(out.to_string()));
    }
    parse_semver(words[1])
}

/// MySQL-protocol server implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MysqlImpl {
    /// MariaDB (version string contains `mariadb`).
    Mariadb,
    /// Oracle MySQL.
    Mysql,
}

impl MysqlImpl {
    /// `mariadb` / `mysql`, as in the original's messages.
    pub fn as_str(self) -> &'static str {
        match self {
            MysqlImpl::Mariadb => "mariadb",
            MysqlImpl::Mysql => "mysql",
        }
    }
}

/// Implementation from a version string, as the original decides it.
pub fn mysql_impl_of(version_text: &str) -> MysqlImpl {
    if version_text.to_ascii_lowercase().contains("mariadb") {
        MysqlImpl::Mariadb
    } else {
        MysqlImpl::Mysql
    }
}

/// PostgreSQL server majors this tool handles.
pub const POSTGRES_MAJORS: std::ops::RangeInclusive<u32> = 13..=18;

/// Checks a PostgreSQL server version against [`POSTGRES_MAJORS`]; returns the major.
pub fn supported_postgres_major(v: &SemVer) -> Result<u32, UnsupportedVersion> {
    let m = v.major_num();
    if POSTGRES_MAJORS.contains(&m) {
        Ok(m)
    } else {
        Err(UnsupportedVersion {
            product: "postgresql",
            major: v.major.clone(),
            minor: v.minor.clone(),
        })
    }
}

/// What client a MySQL-protocol server needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MysqlTarget {
    /// Implementation.
    pub implementation: MysqlImpl,
    /// Major version the client must have.
    pub major: u32,
    /// Minor version the client must have (MySQL only; `None` for MariaDB).
    pub minor: Option<u32>,
}

impl fmt::Display for MysqlTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.implementation, self.minor) {
            (MysqlImpl::Mysql, Some(minor)) => write!(f, "MySQL {}.{minor}", self.major),
            (MysqlImpl::Mysql, None) => write!(f, "MySQL {}", self.major),
            (MysqlImpl::Mariadb, _) => write!(f, "MariaDB {}", self.major),
        }
    }
}

/// Checks a MySQL/MariaDB server version against the supported matrix.
pub fn supported_mysql(
    implementation: MysqlImpl,
    v: &SemVer,
) -> Result<MysqlTarget, UnsupportedVersion> {
    let (maj, min) = (v.major_num(), v.minor_num());
    let ok = match implementation {
        MysqlImpl::Mariadb => matches!(maj, 10 | 11),
        MysqlImpl::Mysql => maj == 8 && matches!(min, 0 | 4),
    };
    if !ok {
        return Err(UnsupportedVersion {
            product: implementation.as_str(),
            major: v.major.clone(),
            minor: v.minor.clone(),
        });
    }
    Ok(MysqlTarget {
        implementation,
        major: maj,
        minor: (implementation == MysqlImpl::Mysql).then_some(min),
    })
}

/// A client program's version, from its `--version` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientVersion {
    /// MariaDB or MySQL (for MySQL-family tools); `None` for PostgreSQL tools.
    pub implementation: Option<MysqlImpl>,
    /// Parsed version.
    pub version: SemVer,
}

/// Parses `pg_dump --version` (`pg_dump (PostgreSQL) 17.11`, `... 15.18 (Debian 15.18-0+deb12u1)`).
pub fn parse_pg_client_version(out: &str) -> Option<SemVer> {
    let line = out.lines().next()?;
    let after = line.split_once(")").map_or(line, |(_, r)| r);
    parse_semver(after.trim()).ok()
}

/// Parses `mysqldump --version` / `mariadb --version` output:
/// `mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for ...`,
/// `mariadb-dump from 11.4.2-MariaDB, client 10.19 for ...`,
/// `mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)`.
pub fn parse_mysql_client_version(out: &str) -> Option<ClientVersion> {
    let line = out.lines().next()?;
    let implementation = mysql_impl_of(line);
    let text = if let Some((_, r)) = line.split_once(" Distrib ") {
        r
    } else if let Some((_, r)) = line.split_once(" from ") {
        r
    } else if let Some((_, r)) = line.split_once(" Ver ") {
        r
    } else {
        line
    };
    let word = text.split([' ', ',']).find(|w| !w.is_empty())?;
    Some(ClientVersion {
        implementation: Some(implementation),
        version: parse_semver(word).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sv(a: &str, b: &str, c: &str) -> SemVer {
        SemVer {
            major: a.into(),
            minor: b.into(),
            patch: c.into(),
        }
    }

    #[test]
    fn semver_like_the_original() {
        assert_eq!(parse_semver("8.0.27").unwrap(), sv("8", "0", "27"));
        assert_eq!(
            parse_semver("10.1.34-MariaDB").unwrap(),
            sv("10", "1", "34-MariaDB")
        );
        assert_eq!(
            parse_semver("5.7.mysql_aurora.2.04").unwrap(),
            sv("5", "7", "mysql_aurora.2.04")
        );
        assert_eq!(parse_semver("17.2").unwrap(), sv("17", "2", "0"));
        assert_eq!(parse_semver("v 9.6\n").unwrap(), sv("9", "6", "0"));
        assert_eq!(
            parse_semver("nope").unwrap_err().to_string(),
            "could not parse semver: \"nope\""
        );
    }

    #[test]
    fn postgres_version_output() {
        let out = " PostgreSQL 13.2 on x86_64-pc-linux-gnu, compiled by gcc\n\n";
        assert_eq!(parse_postgres_version(out).unwrap(), sv("13", "2", "0"));
        let out = " PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu";
        assert_eq!(parse_postgres_version(out).unwrap(), sv("15", "18", "0"));
        assert!(matches!(
            parse_postgres_version("garbage"),
            Err(VersionError::Postgres(_))
        ));
    }

    #[test]
    fn matrix() {
        assert_eq!(supported_postgres_major(&sv("17", "2", "0")), Ok(17));
        assert_eq!(
            supported_postgres_major(&sv("12", "9", "0")).map_err(|e| e.to_string()),
            Err("unsupported version of postgresql: 12.9".into())
        );
        assert_eq!(
            supported_postgres_major(&sv("9", "6", "0")).map_err(|e| e.to_string()),
            Err("unsupported version of postgresql: 9.6".into())
        );
        assert!(supported_mysql(MysqlImpl::Mariadb, &sv("10", "11", "19-MariaDB")).is_ok());
        assert_eq!(
            supported_mysql(MysqlImpl::Mariadb, &sv("5", "5", "0")).map_err(|e| e.to_string()),
            Err("unsupported version of mariadb: 5.5".into())
        );
        assert!(supported_mysql(MysqlImpl::Mysql, &sv("8", "0", "666")).is_ok());
        assert!(supported_mysql(MysqlImpl::Mysql, &sv("8", "4", "666")).is_ok());
        for (a, b) in [("5", "7"), ("8", "1"), ("9", "0"), ("4", "7")] {
            assert_eq!(
                supported_mysql(MysqlImpl::Mysql, &sv(a, b, "20")).map_err(|e| e.to_string()),
                Err(format!("unsupported version of mysql: {a}.{b}"))
            );
        }
        assert_eq!(mysql_impl_of("10.1.34-MariaDB"), MysqlImpl::Mariadb);
        assert_eq!(mysql_impl_of("8.0.27"), MysqlImpl::Mysql);
    }

    #[test]
    fn client_versions() {
        assert_eq!(
            parse_pg_client_version("pg_dump (PostgreSQL) 17.11\n").unwrap(),
            sv("17", "11", "0")
        );
        assert_eq!(
            parse_pg_client_version("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")
                .unwrap()
                .major,
            "15"
        );
        let v = parse_mysql_client_version(
            "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)",
        )
        .unwrap();
        assert_eq!(v.implementation, Some(MysqlImpl::Mariadb));
        assert_eq!(v.version, sv("10", "11", "19-MariaDB"));
        let v = parse_mysql_client_version(
            "mariadb-dump from 11.4.2-MariaDB, client 10.19 for linux-systemd (x86_64)",
        )
        .unwrap();
        assert_eq!(v.version.major, "11");
        let v = parse_mysql_client_version(
            "mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)",
        )
        .unwrap();
        assert_eq!(v.implementation, Some(MysqlImpl::Mysql));
        assert_eq!(v.version, sv("8", "0", "36"));
    }
}
