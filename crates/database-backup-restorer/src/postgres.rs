//! PostgreSQL: version detection, table check, `pg_dump` backup and `pg_restore` restore.
//!
//! Command lines (as the original's, see the crate docs for the differences):
//!
//! - common prefix `--username=<u> --host=<h> --port=<p>`; environment replaced by
//!   `PGPASSWORD` and, with a `tls` block, `PGSSLROOTCERT`, `PGSSLMODE=verify-full`
//!   (`verify-ca` with `skip_host_verify`), `PGSSLCERT`/`PGSSLKEY` for mutual TLS;
//! - version: `psql <prefix> --tuples-only <db> "--command=SELECT VERSION()"`;
//! - backup: `pg_dump <prefix> --verbose --format=custom --file=<artifact> <db> [-t <table>]...`
//!   (the server's major's `pg_dump`), after checking that every listed table exists;
//! - restore: `pg_restore --list <artifact>`, the table of contents filtered, then
//!   `pg_restore <prefix> --verbose --format=custom --dbname=<db> --clean --if-exists
//!   --single-transaction --exit-on-error --use-list=<filtered> <artifact>` — one transaction
//!   that rolls back completely on the first error.
//!
//! Every connecting client also gets `PGCONNECT_TIMEOUT=<connect_timeout>`; the restoring
//! `pg_restore` gets a unique `PGAPPNAME` by which a second session finds it and cancels it
//! once it has waited for a lock longer than `lock_timeout` ([`crate::timeouts`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::config::ConnectionConfig;
use crate::discovery::{ClientSearch, PgTool};
use crate::golog;
use crate::run::Failure;
use crate::runner::{Command, RunError, status_text};
use crate::secrets::{PrivateDir, TlsFiles};
use crate::timeouts;
use crate::version::{self, SemVer};

/// `--username= --host= --port=`.
pub fn prefix_args(cfg: &ConnectionConfig) -> Vec<String> {
    vec![
        format!("--username={}", cfg.username),
        format!("--host={}", cfg.host),
        format!("--port={}", cfg.port),
    ]
}

/// The child environment: `PGPASSWORD`, `PGCONNECT_TIMEOUT` and the TLS variables.
pub fn child_env(cfg: &ConnectionConfig, tls: Option<&TlsFiles>) -> BTreeMap<String, OsString> {
    let mut env = BTreeMap::new();
    env.insert("PGPASSWORD".into(), OsString::from(&cfg.password));
    env.insert(
        "PGCONNECT_TIMEOUT".into(),
        OsString::from(cfg.connect_timeout.to_string()),
    );
    if let Some(t) = tls {
        env.insert("PGSSLROOTCERT".into(), t.ca.clone().into_os_string());
        env.insert(
            "PGSSLMODE".into(),
            OsString::from(if t.skip_host_verify {
                "verify-ca"
            } else {
                "verify-full"
            }),
        );
        if let Some(c) = &t.cert {
            env.insert("PGSSLCERT".into(), c.clone().into_os_string());
        }
        if let Some(k) = &t.key {
            env.insert("PGSSLKEY".into(), k.clone().into_os_string());
        }
    }
    env
}

/// The database argument. libpq treats a database "name" containing `=` or starting with a
/// URI scheme as a connection string; such names are wrapped as `dbname='...'` so that they
/// stay a name.
pub fn dbname_arg(db: &str) -> String {
    if db.contains('=') || db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let escaped = db.replace('\\', "\\\\").replace('\'', "\\'");
        format!("dbname='{escaped}'")
    } else {
        db.to_string()
    }
}

/// A configured connection: config, child environment and the psql to use for queries.
pub struct Conn<'a> {
    cfg: &'a ConnectionConfig,
    env: BTreeMap<String, OsString>,
    psql: std::path::PathBuf,
}

impl<'a> Conn<'a> {
    /// Builds the connection.
    pub fn new(
        cfg: &'a ConnectionConfig,
        tls: Option<&TlsFiles>,
        psql: std::path::PathBuf,
    ) -> Self {
        Conn {
            cfg,
            env: child_env(cfg, tls),
            psql,
        }
    }

    fn base(&self, program: &Path) -> Command {
        self.base_with(program, &[])
    }

    /// [`Conn::base`] with more environment variables.
    fn base_with(&self, program: &Path, extra: &[(&str, &str)]) -> Command {
        let mut env = self.env.clone();
        for (k, v) in extra {
            env.insert((*k).to_string(), OsString::from(v));
        }
        Command::new(program)
            .args(prefix_args(self.cfg))
            .env_only(env)
    }

    /// The message for a failed client: `text`, plus the connect-timeout explanation when
    /// its stderr says libpq's `connect_timeout` expired.
    fn explain(&self, text: String, e: &RunError) -> String {
        match e {
            RunError::Failed { output, .. }
                if timeouts::pg_connect_timed_out(&output.stderr_text()) =>
            {
                format!(
                    "{}\n{}",
                    text.trim_end(),
                    timeouts::connect_timeout_message(
                        &self.cfg.host,
                        self.cfg.port,
                        self.cfg.connect_timeout
                    )
                )
            }
            _ => text,
        }
    }

    /// `psql ... --tuples-only <db> "--command=SELECT VERSION()"`.
    pub fn version_command(&self) -> Command {
        self.base(&self.psql)
            .arg("--tuples-only")
            .arg(dbname_arg(&self.cfg.database))
            .arg("--command=SELECT VERSION()")
            .capture_full()
    }

    /// A quiet query returning unaligned rows.
    fn query_command(&self, sql: &str) -> Command {
        self.base(&self.psql)
            .args(["--no-psqlrc", "--tuples-only", "--no-align"])
            .arg(dbname_arg(&self.cfg.database))
            .arg(format!("--command={sql}"))
            .quiet()
            .capture_full()
    }

    /// Asks the server its version.
    pub fn detect_version(&self) -> Result<SemVer, Failure> {
        let out = self.version_command().run().map_err(|e| {
            let text = match &e {
                RunError::Failed { output, .. } => format!(
                    "Unable to check version of Postgres: {}\n{}\n{}",
                    status_text(&output.status),
                    output.stdout_text(),
                    output.stderr_text()
                ),
                other => format!("Unable to check version of Postgres: {other}"),
            };
            Failure::Fatal(self.explain(text, &e))
        })?;
        version::parse_postgres_version(&out.stdout_text())
            .map_err(|e| Failure::Fatal(format!("Unable to check version of Postgres: {e}")))
    }

    /// Names of `tables` that are not base tables in the database. An unqualified name means
    /// a table in schema `public` (as in the original); `schema.table` names another schema.
    pub fn missing_tables(&self, tables: &[String]) -> Result<Vec<String>, RunError> {
        let out = self
            .query_command(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables \
                 WHERE table_type='BASE TABLE' \
                 AND table_schema NOT IN ('pg_catalog', 'information_schema');",
            )
            .run()?;
        let text = out.stdout_text();
        let existing: BTreeSet<&str> = text.lines().map(str::trim).collect();
        Ok(tables
            .iter()
            .filter(|t| {
                let qualified = if t.contains('.') {
                    (*t).clone()
                } else {
                    format!("public.{t}")
                };
                !existing.contains(qualified.as_str())
            })
            .cloned()
            .collect())
    }

    /// Schemas and extensions that exist in the target database.
    pub fn existing_namespaces(&self) -> Result<Existing, RunError> {
        let out = self
            .query_command(
                "SELECT 's ' || nspname FROM pg_catalog.pg_namespace \
                 UNION ALL SELECT 'e ' || extname FROM pg_catalog.pg_extension;",
            )
            .run()?;
        let mut ex = Existing::default();
        for line in out.stdout_text().lines() {
            if let Some(s) = line.strip_prefix("s ") {
                ex.schemas.insert(s.to_string());
            } else if let Some(e) = line.strip_prefix("e ") {
                ex.extensions.insert(e.to_string());
            }
        }
        Ok(ex)
    }

    /// The `pg_dump` command line.
    pub fn dump_command(&self, pg_dump: &Path, artifact: &Path) -> Command {
        let mut c = self
            .base(pg_dump)
            .args(["--verbose", "--format=custom"])
            .arg(concat_os("--file=", artifact))
            .arg(dbname_arg(&self.cfg.database));
        for t in self.cfg.tables.iter().flatten() {
            c = c.arg("-t").arg(t);
        }
        c
    }

    /// The restoring `pg_restore` command line; `app` is its `PGAPPNAME`, by which
    /// [`Conn::lock_watch_command`] finds its session.
    pub fn restore_command(
        &self,
        pg_restore: &Path,
        list: &Path,
        artifact: &Path,
        app: &str,
    ) -> Command {
        self.base_with(pg_restore, &[("PGAPPNAME", app)])
            .args(["--verbose", "--format=custom"])
            .arg(format!("--dbname={}", dbname_arg(&self.cfg.database)))
            .args([
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--exit-on-error",
            ])
            .arg(concat_os("--use-list=", list))
            .arg(artifact)
    }
}

impl Conn<'_> {
    /// The query of the lock watch: cancels the session named `app` once it has waited more
    /// than the config's `lock_timeout` for a lock, printing `t|<holders>` per cancelled
    /// session. The wait is measured from `pg_locks.waitstart` (PostgreSQL 14 and later) or,
    /// on 13, from the start of the waiting statement. Bounded by a statement timeout.
    pub fn lock_watch_command(&self, app: &str, major: u32) -> Command {
        let since = if major >= 14 {
            "(SELECT min(l.waitstart) FROM pg_catalog.pg_locks l \
             WHERE l.pid = a.pid AND NOT l.granted)"
        } else {
            "a.query_start"
        };
        let secs = self.cfg.lock_timeout;
        let sql = format!(
            "WITH w AS MATERIALIZED (SELECT a.pid, (SELECT string_agg(format('session %s (user %s, \
             application %s)', b.pid, coalesce(b.usename, '?'), \
             coalesce(nullif(b.application_name, ''), '?')), ', ' ORDER BY b.pid) \
             FROM pg_catalog.pg_stat_activity b \
             WHERE b.pid = ANY (pg_catalog.pg_blocking_pids(a.pid))) AS holders \
             FROM pg_catalog.pg_stat_activity a \
             WHERE a.application_name = '{app}' AND a.wait_event_type = 'Lock' \
             AND clock_timestamp() - {since} > interval '{secs} seconds') \
             SELECT substr(pg_catalog.pg_cancel_backend(w.pid)::text, 1, 1) || '|' || \
             coalesce(w.holders, '') FROM w;"
        );
        let mut env = self.env.clone();
        env.insert(
            "PGOPTIONS".into(),
            OsString::from("-c statement_timeout=30s"),
        );
        self.query_command(&sql).env_only(env)
    }
}

/// A unique `application_name` for one restore session.
fn restore_app_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("database-backup-restorer-{}-{nanos:09}", std::process::id())
}

/// How often the lock watch looks: a tenth of the limit, between 0.2 s and 10 s.
fn lock_watch_interval(secs: u32) -> Duration {
    (Duration::from_secs(secs.into()) / 10)
        .clamp(Duration::from_millis(200), Duration::from_secs(10))
}

/// Runs `restore` while a second session watches it with `watch` every `every`; returns what
/// `restore` returned and, if the watch cancelled it, who held the lock.
fn run_watched(
    restore: &Command,
    watch: Command,
    every: Duration,
) -> (Result<crate::runner::Output, RunError>, Option<String>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let watcher = thread::spawn(move || {
        loop {
            if !matches!(
                stopped.recv_timeout(every),
                Err(mpsc::RecvTimeoutError::Timeout)
            ) {
                return None;
            }
            // A failing look (server busy, too many connections) is retried next time.
            if let Ok(out) = watch.run() {
                let text = out.stdout_text();
                if let Some(holders) = text.lines().find_map(|l| l.strip_prefix("t|")) {
                    return Some(holders.to_string());
                }
            }
        }
    });
    let result = restore.run();
    drop(stop);
    let cancelled = watcher.join().unwrap_or(None);
    (result, cancelled)
}

fn concat_os(prefix: &str, p: &Path) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(p.as_os_str());
    s
}

/// `pg_restore --list <artifact>` (no connection, empty environment).
pub fn list_command(pg_restore: &Path, artifact: &Path) -> Command {
    // With the caller's environment, as the original runs it (it connects to nothing).
    Command::new(pg_restore)
        .arg("--list")
        .arg(artifact)
        .quiet()
        .capture_full()
}

/// Schemas and extensions present in the target database.
#[derive(Debug, Default, Clone)]
pub struct Existing {
    /// `pg_namespace.nspname`
    pub schemas: BTreeSet<String>,
    /// `pg_extension.extname`
    pub extensions: BTreeSet<String>,
}

/// If a TOC line is about a schema or an extension (its creation, comment, ACL or security
/// label), returns `(is_schema, name)`.
fn namespace_entry(line: &str) -> Option<(bool, &str)> {
    // "<id>; <tableoid> <oid> <desc> <namespace> <name> <owner>"
    let (_, rest) = line.split_once("; ")?;
    let mut it = rest.splitn(3, ' ');
    let (_, _, rest) = (it.next()?, it.next()?, it.next()?);
    const FORMS: &[(&str, bool)] = &[
        ("SCHEMA - ", true),
        ("COMMENT - SCHEMA ", true),
        ("ACL - SCHEMA ", true),
        ("SECURITY LABEL - SCHEMA ", true),
        ("EXTENSION - ", false),
        ("COMMENT - EXTENSION ", false),
    ];
    for (prefix, is_schema) in FORMS {
        if let Some(tail) = rest.strip_prefix(prefix) {
            // The owner is the last word (empty for extensions).
            let name = tail.rsplit_once(' ').map_or(tail, |(n, _)| n);
            return Some((*is_schema, name));
        }
    }
    None
}

/// The original's list filter — drop every TOC line containing ` EXTENSION ` or ` SCHEMA `,
/// so that `--clean` never drops a schema or extension (e.g. `public`) — except that the
/// entries of schemas and extensions **missing** from the target are kept, so a restore
/// into a fresh database creates them inside the same transaction.
pub fn filter_list(list: &str, existing: &Existing) -> String {
    let mut out = String::with_capacity(list.len());
    for line in list.split('\n') {
        let keep = match namespace_entry(line) {
            Some((true, name)) => !existing.schemas.contains(name),
            Some((false, name)) => !existing.extensions.contains(name),
            None => !(line.contains(" EXTENSION ") || line.contains(" SCHEMA ")),
        };
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn action(e: impl std::fmt::Display) -> Failure {
    Failure::Action(e.to_string())
}

fn prepare<'a>(
    cfg: &'a ConnectionConfig,
    search: &ClientSearch,
    dir: &PrivateDir,
    tool: PgTool,
) -> Result<(Conn<'a>, std::path::PathBuf, u32), Failure> {
    let tls = match &cfg.tls {
        Some(t) => Some(TlsFiles::write(dir, t).map_err(|e| {
            Failure::Fatal(format!(
                "cannot write TLS files to a temporary directory: {e}"
            ))
        })?),
        None => None,
    };
    let psql = search.psql().map_err(|e| Failure::Fatal(e.to_string()))?;
    let conn = Conn::new(cfg, tls.as_ref(), psql);
    let v = conn.detect_version()?;
    let major = version::supported_postgres_major(&v).map_err(|e| Failure::Fatal(e.to_string()))?;
    let bin = search
        .pg_tool(tool, major)
        .map_err(|e| Failure::Fatal(e.to_string()))?;
    golog::log(&format!(
        "PostgreSQL server version {v}, using {}",
        bin.display()
    ));
    Ok((conn, bin, major))
}

/// Backs the database up into `artifact`.
pub fn backup(
    cfg: &ConnectionConfig,
    search: &ClientSearch,
    dir: &PrivateDir,
    artifact: &Path,
) -> Result<(), Failure> {
    let (conn, pg_dump, _) = prepare(cfg, search, dir, PgTool::Dump)?;
    if let Some(tables) = &cfg.tables {
        let missing = conn
            .missing_tables(tables)
            .map_err(|e| action(conn.explain(e.to_string(), &e)))?;
        if !missing.is_empty() {
            return Err(action(format!(
                "can't find specified table(s): {}",
                missing.join(", ")
            )));
        }
    }
    conn.dump_command(&pg_dump, artifact)
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
    let (conn, pg_restore, major) = prepare(cfg, search, dir, PgTool::Restore)?;
    let list = match list_command(&pg_restore, artifact).run() {
        Ok(o) => o.stdout_text(),
        Err(RunError::Failed { output, .. }) => {
            eprint!("{}", output.stderr_text());
            return Err(action(status_text(&output.status)));
        }
        Err(e) => return Err(action(e)),
    };
    let existing = conn
        .existing_namespaces()
        .map_err(|e| action(conn.explain(e.to_string(), &e)))?;
    let list_file = dir
        .write("restore.list", filter_list(&list, &existing).as_bytes())
        .map_err(action)?;
    let app = restore_app_name();
    let (result, cancelled) = run_watched(
        &conn.restore_command(&pg_restore, &list_file, artifact, &app),
        conn.lock_watch_command(&app, major),
        lock_watch_interval(cfg.lock_timeout),
    );
    match (result, cancelled) {
        (Ok(_), _) => Ok(()),
        (Err(e), Some(holders)) => Err(action(format!(
            "{}\n{}",
            e.go_text(),
            timeouts::pg_lock_message(&cfg.database, cfg.lock_timeout, &holders)
        ))),
        (Err(e), None) => Err(action(conn.explain(e.go_text(), &e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Adapter, CertConfig, TlsConfig};
    use std::path::PathBuf;

    fn cfg() -> ConnectionConfig {
        ConnectionConfig {
            username: "u".into(),
            password: "s3cret".into(),
            host: "db.example".into(),
            port: 5432,
            adapter: Adapter::Postgres,
            database: "app".into(),
            tables: Some(vec!["people".into(), "s.places".into()]),
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
    fn command_lines() {
        let cfg = cfg();
        let conn = Conn::new(&cfg, None, PathBuf::from("/x/psql"));
        assert_eq!(
            args(&conn.version_command()),
            [
                "--username=u",
                "--host=db.example",
                "--port=5432",
                "--tuples-only",
                "app",
                "--command=SELECT VERSION()"
            ]
        );
        let d = conn.dump_command(Path::new("/x/pg_dump"), Path::new("/a/db.dump"));
        assert_eq!(
            args(&d),
            [
                "--username=u",
                "--host=db.example",
                "--port=5432",
                "--verbose",
                "--format=custom",
                "--file=/a/db.dump",
                "app",
                "-t",
                "people",
                "-t",
                "s.places"
            ]
        );
        let env = d.get_env().expect("env replaced");
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            ["PGCONNECT_TIMEOUT", "PGPASSWORD"]
        );
        assert_eq!(env["PGCONNECT_TIMEOUT"], "7");
        assert!(!args(&d).iter().any(|a| a.contains("s3cret")));
        let r = conn.restore_command(
            Path::new("/x/pg_restore"),
            Path::new("/t/list"),
            Path::new("/a/db.dump"),
            "dbr-1",
        );
        assert_eq!(r.get_env().expect("env")["PGAPPNAME"], "dbr-1");
        assert_eq!(r.get_env().expect("env")["PGCONNECT_TIMEOUT"], "7");
        let w = args(&conn.lock_watch_command("dbr-1", 15));
        let q = w
            .iter()
            .find(|a| a.starts_with("--command="))
            .expect("query");
        assert!(
            q.contains("'dbr-1'") && q.contains("interval '9 seconds'") && q.contains("waitstart"),
            "{q}"
        );
        let w = args(&conn.lock_watch_command("dbr-1", 13));
        assert!(!w.iter().any(|a| a.contains("waitstart")), "{w:?}");
        assert_eq!(
            args(&r),
            [
                "--username=u",
                "--host=db.example",
                "--port=5432",
                "--verbose",
                "--format=custom",
                "--dbname=app",
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--exit-on-error",
                "--use-list=/t/list",
                "/a/db.dump"
            ]
        );
    }

    #[test]
    fn tls_env() {
        let mut c = cfg();
        c.tls = Some(TlsConfig {
            skip_host_verify: true,
            cert: CertConfig {
                ca: "CA".into(),
                certificate: "C".into(),
                private_key: "K".into(),
            },
        });
        let files = TlsFiles {
            ca: "/t/ca".into(),
            cert: Some("/t/c".into()),
            key: Some("/t/k".into()),
            skip_host_verify: true,
        };
        let env = child_env(&c, Some(&files));
        assert_eq!(env["PGSSLMODE"], "verify-ca");
        assert_eq!(env["PGSSLROOTCERT"], "/t/ca");
        assert_eq!(env["PGSSLCERT"], "/t/c");
        assert_eq!(env["PGSSLKEY"], "/t/k");
        let files = TlsFiles {
            ca: "/t/ca".into(),
            cert: None,
            key: None,
            skip_host_verify: false,
        };
        let env = child_env(&c, Some(&files));
        assert_eq!(env["PGSSLMODE"], "verify-full");
        assert!(!env.contains_key("PGSSLCERT"));
    }

    #[test]
    fn dbname_stays_a_name() {
        assert_eq!(dbname_arg("app"), "app");
        assert_eq!(dbname_arg("a=b"), "dbname='a=b'");
        assert_eq!(dbname_arg("x'y=\\"), "dbname='x\\'y=\\\\'");
    }

    #[test]
    fn list_filter() {
        let list = ";\n; Archive created at 2026-01-01\n;\n\
                    5; 2615 16385 SCHEMA - app postgres\n\
                    6; 2615 16390 SCHEMA - fresh postgres\n\
                    3400; 0 0 COMMENT - SCHEMA fresh postgres\n\
                    3401; 0 0 ACL - SCHEMA app postgres\n\
                    2; 3079 16386 EXTENSION - pgcrypto \n\
                    3381; 0 0 COMMENT - EXTENSION pgcrypto \n\
                    3; 3079 16387 EXTENSION - hstore \n\
                    216; 1259 16424 TABLE app people postgres\n\
                    217; 1259 16430 TABLE public x SCHEMA y postgres\n";
        let mut ex = Existing::default();
        ex.schemas.insert("app".into());
        ex.schemas.insert("public".into());
        ex.extensions.insert("pgcrypto".into());
        let f = filter_list(list, &ex);
        assert!(!f.contains("SCHEMA - app"));
        assert!(!f.contains("ACL - SCHEMA app"));
        assert!(f.contains("SCHEMA - fresh postgres\n"));
        assert!(f.contains("COMMENT - SCHEMA fresh"));
        assert!(!f.contains("pgcrypto"));
        assert!(f.contains("EXTENSION - hstore"));
        assert!(f.contains("TABLE app people"));
        // The original's blunt rule still applies to other lines.
        assert!(!f.contains("SCHEMA y"));
        // Everything present already: the original's filter exactly.
        ex.schemas.insert("fresh".into());
        ex.extensions.insert("hstore".into());
        let f = filter_list(list, &ex);
        assert!(!f.contains(" SCHEMA ") && !f.contains(" EXTENSION "));
    }
}
