//! `database-backup-restorer`: the BOSH Backup and Restore SDK utility that release authors
//! call from their `bin/bbr/backup` and `bin/bbr/restore` scripts to dump and load
//! PostgreSQL, MySQL and MariaDB databases. A drop-in re-implementation of the SDK's
//! `database-backup-restore` (same flags, `config.json`, messages, exit codes and
//! artifacts).
//!
//! # Usage
//!
//! ```sh
//! database-backup-restorer --backup  --config /var/vcap/jobs/app/config/db.json --artifact-file "$BBR_ARTIFACT_DIRECTORY/db"
//! database-backup-restorer --restore --config /var/vcap/jobs/app/config/db.json --artifact-file "$BBR_ARTIFACT_DIRECTORY/db"
//! database-backup-restorer --install-wrappers /var/vcap/jobs/database-backup-restorer
//! ```
//!
//! Flags follow Go's `flag` package ([`flags`]); `--install-wrappers DIR` writes the BOSH
//! job's `DIR/bin/backup` and `DIR/bin/restore` scripts ([`wrappers`]), which take
//! `--config` and `--artifact-file`. Exit status: 0 success; 1 any failure, logged as
//! `YYYY/MM/DD HH:MM:SS <message>` on stderr (a failed backup that created the artifact file
//! starts with `You may need to delete the artifact-file that was created before re-running.`);
//! 2 a flag syntax error (`flag provided but not defined: -x`).
//!
//! The config file is described in [`config`]; the supported servers in [`version`]; how
//! client programs are found (no environment variables needed, the original's
//! `PG_DUMP_<N>_PATH`-style variables and `BBR_DB_CLIENT_DIRS` honoured) in [`discovery`];
//! command lines in [`postgres`] and [`mysql`]. Passwords reach the children only through
//! their environment (`PGPASSWORD`, `MYSQL_PWD`), never argv or logs ([`runner`]); TLS
//! material goes into a private temporary directory that is always removed ([`secrets`]).
//! No wait is unbounded: connect timeout and restore lock limit in [`timeouts`].
//!
//! # Differences from the original, and why
//!
//! - Client programs are discovered by version instead of ten mandatory `*_PATH`
//!   variables; a client of another version is never used (the error names the version
//!   needed). PostgreSQL 13-18, MariaDB 10 and 11, MySQL 8.0 and 8.4 are supported.
//! - Config checks the original lacks (missing `host`, `port` as a string, ...) fail with a
//!   message naming the key, after the original's own checks.
//! - The PostgreSQL table check uses the connection's TLS settings (the original's ignored
//!   them) and accepts `schema.table` names.
//! - PostgreSQL restore keeps the schema/extension entries of the archive that do not exist
//!   in the target database yet, so a restore into a fresh database works and still happens
//!   in one transaction; existing ones are filtered out as in the original.
//! - Database names that libpq would read as a connection string stay names.
//! - The temporary directory is removed on failure too.
//! - Every client has a connect timeout (config key `connect_timeout`, default 30 s): a host
//!   that accepts TCP and never answers fails with a message naming `host:port` and the
//!   timeout, exit 1 (the original waited forever).
//! - A restore waits at most `lock_timeout` (default 300 s) for another session's lock, then
//!   stops with a message saying so (PostgreSQL: one transaction, rolled back, nothing
//!   changed; MySQL/MariaDB: statements before the blocked one were applied).
//! - "You may need to delete the artifact-file ..." is only said after a failed backup that
//!   created the artifact file, never after a restore (whose file may be anything, e.g.
//!   `/etc/passwd`) or a backup that failed before creating it.

pub mod config;
pub mod discovery;
pub mod flags;
pub mod golog;
pub mod mysql;
pub mod postgres;
pub mod run;
pub mod runner;
pub mod secrets;
pub mod timeouts;
pub mod version;
pub mod wrappers;
