//! Scenarios from the original's specification (docs/database-backup-restorer.md: exit codes and error
//! surface, what it runs, differences; and the original's database system-test suite) that `cli.rs`,
//! `postgres.rs` and `mariadb.rs` do not cover with the same strength: exact command lines,
//! child environments, invocation counts, temporary TLS files, the restore list filter, what is
//! in an artifact and whether the original's own commands can read it, and the exact error
//! lines.
//!
//! Command lines and environments are observed with recording wrappers put where the tool
//! looks for clients: each wrapper writes its argv, its initial environment
//! (`/proc/$$/environ`, exactly what we passed), what its stdin is and a copy of the run's
//! temporary directory, then `exec`s the real client against a real server. There is no MySQL
//! server on these machines (Debian 12 ships MariaDB only), so the MySQL-only items
//! (`--ssl-mode=...`, `--set-gtid-purged=OFF`, 8.0/8.4 client choice) stay with the unit tests
//! in `src/mysql.rs` and the fake-client tests in `cli.rs`.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bbr_testkit::wait;
use common::{Certs, Maria, PG15_BIN, Pg, Sandbox, script, sh};
use serde_json::{Value, json};

const APP_PW: &str = "scn-pw-8Kd";

/// First line of every action failure (docs/database-backup-restorer.md "Output and exit codes").
const HINT: &str = "You may need to delete the artifact-file that was created before re-running.";

/// The connect timeout every PostgreSQL client gets by default (crate docs: ours, the
/// original had none).
const PG_CONNECT_TIMEOUT: (&str, &str) = ("PGCONNECT_TIMEOUT", "30");

/// Whether `call` is the restore's lock watch (ours: a second session that cancels a restore
/// waiting for a lock longer than `lock_timeout`), which the original does not have.
fn is_lock_watch(call: &Call) -> bool {
    call.args.iter().any(|a| a.contains("pg_cancel_backend"))
}

// ---------------------------------------------------------------------------------------
// Recording wrappers

/// One recorded invocation of a client program.
struct Call {
    prog: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    stdin: String,
    /// Copy of the sandbox's `TMPDIR` taken when the program started.
    snap: PathBuf,
}

/// A directory of wrappers that record each call and then run the real program.
struct Recorder {
    bin: PathBuf,
    log: PathBuf,
    tmp: PathBuf,
}

impl Recorder {
    /// Wrappers `bin_dir/<name>` for each `(name, real program)`. `--version` probes (client
    /// discovery) are passed through unrecorded.
    fn new(sb: &Sandbox, bin_dir: &str, tools: &[(&str, PathBuf)]) -> Recorder {
        let bin = sb.path(bin_dir);
        std::fs::create_dir_all(&bin).expect("mkdir wrappers");
        let log = sb.path(&format!("{}-calls", bin_dir.replace('/', "-")));
        std::fs::create_dir_all(&log).expect("mkdir calls");
        let tmp = sb.path("tmp");
        for (name, real) in tools {
            let (log, tmp, real) = (log.display(), tmp.display(), real.display());
            script(
                &bin.join(name),
                &format!(
                    "if [ \"$1\" = --version ]; then exec {real} \"$@\"; fi\n\
                     n=$(/bin/ls {log} | /usr/bin/wc -l)\n\
                     d={log}/$(printf %04d \"$n\")\n\
                     /bin/mkdir \"$d\"\n\
                     printf '%s' {name} > \"$d/prog\"\n\
                     for a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$d/args\"\n\
                     /bin/cat /proc/$$/environ > \"$d/env\"\n\
                     /usr/bin/readlink /proc/$$/fd/0 > \"$d/stdin\"\n\
                     /bin/cp -a {tmp} \"$d/tmp\"\n\
                     exec {real} \"$@\"\n"
                ),
            );
        }
        Recorder { bin, log, tmp }
    }

    fn tool(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }

    /// The calls so far, in order.
    fn calls(&self) -> Vec<Call> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&self.log)
            .expect("calls dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        dirs.sort();
        let nul_split = |b: Vec<u8>| -> Vec<String> {
            String::from_utf8_lossy(&b)
                .split('\0')
                .map(String::from)
                .collect()
        };
        dirs.into_iter()
            .map(|d| {
                let mut args = nul_split(std::fs::read(d.join("args")).expect("args"));
                args.pop(); // after the last NUL
                let env = nul_split(std::fs::read(d.join("env")).expect("env"))
                    .into_iter()
                    .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
                    .collect();
                Call {
                    prog: std::fs::read_to_string(d.join("prog")).expect("prog"),
                    args,
                    env,
                    stdin: std::fs::read_to_string(d.join("stdin"))
                        .expect("stdin")
                        .trim_end()
                        .to_string(),
                    snap: d.join("tmp"),
                }
            })
            .collect()
    }

    fn clear(&self) {
        std::fs::remove_dir_all(&self.log).expect("rm calls");
        std::fs::create_dir(&self.log).expect("mkdir calls");
    }

    /// Where the copy of temporary file `p` (a path under the sandbox `TMPDIR`) is in `call`'s
    /// snapshot; panics if `p` is not a temporary file.
    fn in_snapshot(&self, call: &Call, p: &str) -> PathBuf {
        let rel = Path::new(p).strip_prefix(&self.tmp).unwrap_or_else(|_| {
            panic!(
                "{p} is not in the temporary directory {}",
                self.tmp.display()
            )
        });
        call.snap.join(rel)
    }
}

fn progs(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.prog.as_str()).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn env_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Asserts that temporary file `p` existed during `call` with mode 0600 and `contents`.
fn assert_private_file(rec: &Recorder, call: &Call, p: &str, contents: &str) {
    let copy = rec.in_snapshot(call, p);
    let meta = std::fs::metadata(&copy)
        .unwrap_or_else(|e| panic!("{p} did not exist while {} ran: {e}", call.prog));
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "mode of {p}");
    assert_eq!(
        std::fs::read_to_string(&copy).expect("read copy"),
        contents,
        "{p}"
    );
}

/// Neither the password nor any PEM text is on a command line.
fn assert_no_secrets_in_argv(calls: &[Call]) {
    for c in calls {
        for a in &c.args {
            assert!(
                !a.contains(APP_PW) && !a.contains("-----BEGIN"),
                "secret on the command line of {}: {a}",
                c.prog
            );
        }
    }
}

/// `YYYY/MM/DD HH:MM:SS ` (Go `log`).
fn has_log_prefix(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 20
        && b.iter().enumerate().take(19).all(|(i, c)| match i {
            4 | 7 => *c == b'/',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
        && b[19] == b' '
}

// ---------------------------------------------------------------------------------------
// PostgreSQL fixtures

fn pg15(tool: &str) -> PathBuf {
    Path::new(PG15_BIN).join(tool)
}

fn pg_owner(pg: &Pg, user: &str, db: &str) {
    pg.psql(
        "postgres",
        &format!("CREATE ROLE {user} LOGIN PASSWORD '{APP_PW}'"),
    );
    pg.psql("postgres", &format!("CREATE DATABASE {db} OWNER {user}"));
}

/// Two tables in `public` (one with a serial), one in schema `inventory`, owned by `user`.
fn pg_seed(pg: &Pg, user: &str, db: &str) {
    pg_owner(pg, user, db);
    pg.psql(
        db,
        &format!(
            "SET ROLE {user};
CREATE SCHEMA inventory;
CREATE TABLE public.people (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE public.places (id serial PRIMARY KEY, name text,
  person_id int REFERENCES public.people(id));
CREATE TABLE inventory.items (sku text PRIMARY KEY, qty int);
INSERT INTO public.people (name) SELECT 'person ' || g FROM generate_series(1, 200) g;
INSERT INTO public.places (name, person_id) SELECT 'place ' || g, g FROM generate_series(1, 100) g;
INSERT INTO inventory.items SELECT 'sku-' || g, g FROM generate_series(1, 50) g;"
        ),
    );
}

const PG_TABLES: &[(&str, &str)] = &[
    ("public.people", "id"),
    ("public.places", "id"),
    ("inventory.items", "sku"),
];

/// Rows of every seeded table (count and digest) and the state of the people id sequence.
fn pg_fingerprint(pg: &Pg, db: &str) -> Vec<String> {
    let mut v: Vec<String> = PG_TABLES
        .iter()
        .map(|(t, o)| {
            let fp = pg
                .try_psql(
                    db,
                    &format!(
                        "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY {o})), '') FROM {t} t"
                    ),
                )
                .unwrap_or_else(|e| format!("error: {e}"));
            format!("{t}={fp}")
        })
        .collect();
    v.push(
        pg.try_psql(
            db,
            "SELECT 'seq=' || last_value || '/' || is_called FROM public.people_id_seq",
        )
        .unwrap_or_else(|e| format!("seq error: {e}")),
    );
    v
}

fn pg_mutate(pg: &Pg, user: &str, db: &str) {
    pg.psql(
        db,
        &format!(
            "SET ROLE {user};
UPDATE public.people SET name = 'changed';
DELETE FROM public.places WHERE id > 50;
UPDATE inventory.items SET qty = 0;
INSERT INTO public.people (name) VALUES ('newcomer');"
        ),
    );
}

fn pg_cfg(pg: &Pg, user: &str, db: &str) -> Value {
    json!({"username": user, "password": APP_PW, "host": "127.0.0.1", "port": pg.port,
           "adapter": "postgres", "database": db})
}

fn pg_prefix(pg: &Pg, user: &str) -> Vec<String> {
    vec![
        format!("--username={user}"),
        "--host=127.0.0.1".into(),
        format!("--port={}", pg.port),
    ]
}

/// The original's `ListFileFilter` (postgres/list_file_filter.go): drop every line containing
/// ` EXTENSION ` or ` SCHEMA `.
fn original_list_filter(list: &str) -> Vec<String> {
    list.split('\n')
        .filter(|l| !(l.contains(" EXTENSION ") || l.contains(" SCHEMA ")))
        .map(String::from)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .lines()
        .map(String::from)
        .collect()
}

fn pg_list(artifact: &Path) -> String {
    sh(Command::new(pg15("pg_restore")).arg("--list").arg(artifact))
}

/// Turns on `log_connections` and waits until new sessions see it.
fn pg_log_connections(pg: &Pg) {
    pg.psql("postgres", "ALTER SYSTEM SET log_connections = on");
    pg.psql("postgres", "SELECT pg_reload_conf()");
    wait::until(
        "log_connections to take effect",
        Duration::from_secs(20),
        || pg.psql("postgres", "SHOW log_connections") == "on",
    );
}

/// `connection authorized` lines of the server log for `user`.
fn pg_connections(pg: &Pg, user: &str) -> Vec<String> {
    let needle = format!("connection authorized: user={user} ");
    pg.log()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(String::from)
        .collect()
}

// ---------------------------------------------------------------------------------------
// CLI (no server)

/// docs/database-backup-restorer.md "Command line": flag errors are checked before the config is read, and each is logged
/// as `<timestamp> <error>` followed by the usage line, exit 1; Go's `--backup=true` syntax;
/// "config.json": config checks in the original's order, each one winning over the later ones.
#[test]
fn cli_flag_errors_precede_config_errors_and_config_checks_keep_their_order() {
    let sb = Sandbox::new("");
    let usage = "Usage: database-backup-restorer [--backup|--restore] --config <config-file> --artifact-file <artifact-file>";
    let missing = sb.path("missing.json");
    let missing = missing.to_string_lossy();
    for (args, want) in [
        (vec![], "Missing --backup or --restore flag"),
        (
            vec!["--backup", "--restore"],
            "Only one of: --backup or --restore can be provided",
        ),
        (vec!["--restore"], "Missing --config flag"),
        (
            vec!["--backup", "--config", &missing],
            "Missing --artifact-file flag",
        ),
        (
            vec![
                "--backup=false",
                "--restore=false",
                "--config",
                &missing,
                "--artifact-file",
                "a",
            ],
            "Missing --backup or --restore flag",
        ),
    ] {
        let r = sb.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {}", r.stderr);
        assert!(has_log_prefix(lines[0]), "{}", lines[0]);
        assert_eq!(&lines[0][20..], want, "{args:?}");
        assert_eq!(lines[1], usage);
        assert!(r.stdout.is_empty());
    }
    // `--backup=true` is a backup: it gets as far as reading the config.
    sb.run(&[
        "--backup=true",
        "--restore=false",
        "--config",
        &missing,
        "--artifact-file",
        "a",
    ])
    .fails_with(
        1,
        &format!("Fail reading config file: open {missing}: no such file or directory"),
    );
    // A directory: Go's os.ReadFile fails on read, not open.
    let dir = sb.path("cfgdir");
    std::fs::create_dir(&dir).expect("mkdir");
    sb.backup(&dir, &sb.path("a")).fails_with(
        1,
        &format!(
            "Fail reading config file: read {}: is a directory",
            dir.display()
        ),
    );

    // Config checks: each earlier one wins.
    let base = json!({"username": "u", "password": "p", "host": "127.0.0.1", "port": 5432,
                      "adapter": "postgres", "database": "d"});
    for (patch, want, not) in [
        (
            json!({"adapter": "oracle", "tables": [], "tls": {}}),
            "Unsupported adapter oracle",
            "Tables specified but empty",
        ),
        (
            json!({"tables": [], "tls": {}}),
            "Tables specified but empty",
            "TLS block",
        ),
        (
            json!({"tls": {"cert": {"certificate": "c"}}}),
            "TLS block specified without tls.cert.ca",
            "private_key",
        ),
        (
            json!({"tls": {"skip_host_verify": true}}),
            "TLS block specified without tls.cert.ca",
            "private_key",
        ),
    ] {
        let mut c = base.clone();
        if let (Value::Object(o), Value::Object(p)) = (&mut c, patch) {
            o.extend(p);
        }
        let cfg = sb.config("c.json", &c);
        let r = sb.restore(&cfg, &sb.path("a"));
        r.fails_with(1, want);
        let line = r.stderr.lines().next().unwrap_or_default();
        assert!(has_log_prefix(line) && &line[20..] == want, "{}", r.stderr);
        assert!(!r.stderr.contains(not), "{}", r.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// docs/database-backup-restorer.md "What it runs" (the original's binmock suite: exact argv, env, invocation counts),
/// "What it runs" (the wrappers' `PG_*_PATH` variables), "What it runs" (argv, list filter, minimal env), "Output and exit codes"
/// (tool verbose output on success), "What it runs": restore does not consult `tables`.
#[test]
fn pg_command_lines_environment_and_invocations_match_the_original() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    pg_seed(&pg, "app", "appdb");
    let before = pg_fingerprint(&pg, "appdb");
    // No client directories: the clients come only from the variables the original's
    // wrappers export (PATH's /usr/bin has other psql/pg_dump that must not be used).
    let mut sb = Sandbox::new("");
    let rec = Recorder::new(
        &sb,
        "postgres-15/bin",
        &[
            ("psql", pg15("psql")),
            ("pg_dump", pg15("pg_dump")),
            ("pg_restore", pg15("pg_restore")),
        ],
    );
    sb.extra_env = vec![
        ("PG_CLIENT_PATH".into(), rec.tool("psql")),
        ("PG_DUMP_15_PATH".into(), rec.tool("pg_dump")),
        ("PG_RESTORE_15_PATH".into(), rec.tool("pg_restore")),
        // The original's wrappers export every major's variables.
        (
            "PG_DUMP_13_PATH".into(),
            "/var/vcap/packages/database-backup-restorer-postgres-13/bin/pg_dump".into(),
        ),
    ];
    let prefix = pg_prefix(&pg, "app");
    // The password, and (ours) the connect timeout.
    let only_password = env_of(&[("PGPASSWORD", APP_PW), PG_CONNECT_TIMEOUT]);
    let with = |tail: &[&str]| -> Vec<String> {
        let mut v = prefix.clone();
        v.extend(strings(tail));
        v
    };
    let version_args = with(&["--tuples-only", "appdb", "--command=SELECT VERSION()"]);

    // Whole database: one version query, one pg_dump.
    let c = sb.config("c.json", &pg_cfg(&pg, "app", "appdb"));
    let art = sb.path("db.dump");
    let art_s = art.display().to_string();
    let r = sb.backup(&c, &art);
    r.ok();
    let calls = rec.calls();
    assert_eq!(progs(&calls), ["psql", "pg_dump"]);
    assert_eq!(calls[0].args, version_args);
    assert_eq!(calls[0].env, only_password);
    assert_eq!(
        calls[1].args,
        with(&[
            "--verbose",
            "--format=custom",
            &format!("--file={art_s}"),
            "appdb"
        ])
    );
    assert_eq!(calls[1].env, only_password);
    assert_eq!(calls[1].stdin, "/dev/null");
    // pg_dump's --verbose output reaches our stderr.
    assert!(
        r.stderr
            .contains("pg_dump: dumping contents of table \"public.people\""),
        "{}",
        r.stderr
    );
    assert_no_secrets_in_argv(&calls);

    // With tables: version query, table check, pg_dump with -t per table.
    rec.clear();
    let mut tc = pg_cfg(&pg, "app", "appdb");
    tc["tables"] = json!(["people", "places"]);
    let tc = sb.config("tables.json", &tc);
    let subset = sb.path("subset.dump");
    sb.backup(&tc, &subset).ok();
    let calls = rec.calls();
    assert_eq!(progs(&calls), ["psql", "psql", "pg_dump"]);
    assert_eq!(calls[0].args, version_args);
    // The table check: the original runs `psql --tuples-only <prefix> <db> "--command=SELECT
    // table_name FROM information_schema.tables WHERE table_type='BASE TABLE' AND
    // table_schema='public';"`. Ours also accepts `schema.table` names (crate docs), so its
    // query covers every schema; assert what both have.
    let check = &calls[1];
    for want in prefix.iter().chain(&strings(&["--tuples-only", "appdb"])) {
        assert!(check.args.contains(want), "{want} not in {:?}", check.args);
    }
    let query = check
        .args
        .iter()
        .find(|a| a.starts_with("--command="))
        .expect("a --command");
    assert!(
        query.contains("information_schema.tables") && query.contains("'BASE TABLE'"),
        "{query}"
    );
    assert_eq!(check.env, only_password);
    assert_eq!(
        calls[2].args,
        with(&[
            "--verbose",
            "--format=custom",
            &format!("--file={}", subset.display()),
            "appdb",
            "-t",
            "people",
            "-t",
            "places",
        ])
    );

    // Restore (of the whole-database artifact) with a config whose `tables` names a table
    // that does not exist: restore neither checks nor uses `tables`.
    pg_mutate(&pg, "app", "appdb");
    assert_ne!(pg_fingerprint(&pg, "appdb"), before);
    rec.clear();
    let mut rc = pg_cfg(&pg, "app", "appdb");
    rc["tables"] = json!(["lizards"]);
    let rc = sb.config("restore.json", &rc);
    let r = sb.restore(&rc, &art);
    r.ok();
    assert_eq!(pg_fingerprint(&pg, "appdb"), before);
    let calls: Vec<Call> = rec
        .calls()
        .into_iter()
        .filter(|c| !is_lock_watch(c))
        .collect();
    assert_eq!(calls[0].prog, "psql");
    assert_eq!(calls[0].args, version_args);
    let restores: Vec<&Call> = calls.iter().filter(|c| c.prog == "pg_restore").collect();
    assert_eq!(restores.len(), 2, "{:?}", progs(&calls));
    assert!(!progs(&calls).contains(&"pg_dump"));
    // Ours asks the target which schemas/extensions exist (crate docs: restore into a fresh
    // database); the original runs no query besides the version. Every query gets only the
    // password.
    for c in calls.iter().filter(|c| c.prog == "psql") {
        assert_eq!(c.env, only_password, "{:?}", c.args);
        assert_eq!(c.args[..3], prefix[..], "{:?}", c.args);
        assert!(
            !c.args.iter().any(|a| a.contains("lizards")),
            "{:?}",
            c.args
        );
    }
    assert_eq!(restores[0].args, ["--list", art_s.as_str()]);
    let list_arg = restores[1]
        .args
        .iter()
        .find(|a| a.starts_with("--use-list="))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        restores[1].args,
        with(&[
            "--verbose",
            "--format=custom",
            "--dbname=appdb",
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            &list_arg,
            &art_s,
        ])
    );
    // Ours also names the restoring session, so that the lock watch can find it.
    let mut restore_env = restores[1].env.clone();
    let app = restore_env.remove("PGAPPNAME").unwrap_or_default();
    assert!(app.starts_with("database-backup-restorer-"), "{app}");
    assert_eq!(restore_env, only_password);
    // The list is a temporary file holding exactly the original's filtered list: every
    // schema in the archive exists in the target, so nothing about schemas or extensions is
    // kept.
    let list_file = list_arg.strip_prefix("--use-list=").expect("--use-list=");
    let used = std::fs::read_to_string(rec.in_snapshot(restores[1], list_file)).expect("list");
    // (Ours ends the file with one more newline; blank lines mean nothing to pg_restore.)
    let used: Vec<String> = used.trim_end().lines().map(String::from).collect();
    assert_eq!(used, original_list_filter(&pg_list(&art)));
    assert!(used.iter().any(|l| l.contains("TABLE DATA public people")));
    assert!(
        used.iter()
            .any(|l| l.contains("TABLE DATA inventory items"))
    );
    // pg_restore's --verbose output reaches our stderr.
    assert!(
        r.stderr
            .contains("pg_restore: creating TABLE \"public.people\"")
            && r.stderr
                .contains("pg_restore: processing data for table \"public.people\""),
        "{}",
        r.stderr
    );
    assert_no_secrets_in_argv(&calls);
}

/// docs/database-backup-restorer.md "What it runs": `pg_restore --list <artifact>` is run with no environment override,
/// so it inherits the caller's environment (unlike the connecting commands, whose
/// environment is replaced). Nothing in the crate docs or README says we differ here.
#[test]
fn pg_restore_list_inherits_the_callers_environment() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    pg_seed(&pg, "app", "appdb");
    let mut sb = Sandbox::new("");
    let rec = Recorder::new(
        &sb,
        "rec",
        &[
            ("psql", pg15("psql")),
            ("pg_dump", pg15("pg_dump")),
            ("pg_restore", pg15("pg_restore")),
        ],
    );
    sb.client_dirs = rec.bin.display().to_string();
    sb.extra_env = vec![("BBR_SCENARIO_MARKER".into(), "from-the-caller".into())];
    let c = sb.config("c.json", &pg_cfg(&pg, "app", "appdb"));
    let art = sb.path("db.dump");
    sb.backup(&c, &art).ok();
    rec.clear();
    sb.restore(&c, &art).ok();
    let calls = rec.calls();
    let list = calls
        .iter()
        .find(|c| c.prog == "pg_restore" && c.args.first().map(String::as_str) == Some("--list"))
        .expect("pg_restore --list ran");
    assert_eq!(
        list.env.get("BBR_SCENARIO_MARKER").map(String::as_str),
        Some("from-the-caller"),
        "pg_restore --list environment: {:?}",
        list.env
    );
    assert_eq!(
        list.env.get("PATH").map(String::as_str),
        Some("/usr/bin:/bin"),
        "pg_restore --list environment: {:?}",
        list.env
    );
    // The connecting pg_restore still gets only the password (and ours: the connect timeout
    // and the session name).
    let restore = calls
        .iter()
        .rfind(|c| c.prog == "pg_restore")
        .expect("pg_restore ran");
    let mut env = restore.env.clone();
    assert!(env.remove("PGAPPNAME").is_some());
    assert_eq!(env, env_of(&[("PGPASSWORD", APP_PW), PG_CONNECT_TIMEOUT]));
}

/// docs/database-backup-restorer.md "What it runs" (PGSSLROOTCERT / PGSSLMODE verify-full|verify-ca / PGSSLCERT / PGSSLKEY),
/// "What it runs" (PEM texts written to private temporary files, removed afterwards), the original's system tests (TLS user
/// cannot connect without TLS; mutual TLS; a user without TLS requirements and a TLS config),
/// and the server's own view: every connection of the run used TLS.
#[test]
fn pg_tls_material_reaches_libpq_through_private_files_and_the_environment() {
    let mut sb = Sandbox::new("");
    let certs = Certs::new(&sb.path("certs"));
    let (cert, key) = certs.client("mtls");
    let pg = Pg::start(Path::new(PG15_BIN), Some(&certs));
    pg_seed(&pg, "mtls", "appdb");
    pg_seed(&pg, "app", "plaindb");
    let before = pg_fingerprint(&pg, "appdb");
    pg_log_connections(&pg);
    let rec = Recorder::new(
        &sb,
        "rec",
        &[
            ("psql", pg15("psql")),
            ("pg_dump", pg15("pg_dump")),
            ("pg_restore", pg15("pg_restore")),
        ],
    );
    sb.client_dirs = rec.bin.display().to_string();

    // The setup is meaningful: without TLS the server refuses this user.
    let out = Command::new(pg15("psql"))
        .args(["-X", "-h", "127.0.0.1", "-p", &pg.port.to_string()])
        .args(["-U", "mtls", "-d", "appdb", "-c", "SELECT 1"])
        .env_clear()
        .env("PGPASSWORD", APP_PW)
        .env("PGSSLMODE", "disable")
        .output()
        .expect("psql");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pg_hba.conf rejects connection"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Mutual TLS with host verification, and a table list (the table check runs too).
    let mut c = pg_cfg(&pg, "mtls", "appdb");
    c["tls"] = json!({"cert": {"ca": certs.ca_pem, "certificate": cert, "private_key": key}});
    let full = c.clone();
    c["tables"] = json!(["people", "places"]);
    let c = sb.config("mtls.json", &c);
    let full = sb.config("mtls-full.json", &full);
    let art = sb.path("db.dump");
    sb.backup(&full, &art).ok();
    let subset = sb.path("subset.dump");
    sb.backup(&c, &subset).ok();
    pg_mutate(&pg, "mtls", "appdb");
    sb.restore(&full, &art).ok();
    assert_eq!(pg_fingerprint(&pg, "appdb"), before);
    let calls = rec.calls();
    // backup: version + dump; subset: version + check + dump; restore: version, list,
    // (our namespace query), restore.
    assert_eq!(progs(&calls).iter().filter(|p| **p == "pg_dump").count(), 2);
    let keys = [
        "PGCONNECT_TIMEOUT",
        "PGPASSWORD",
        "PGSSLCERT",
        "PGSSLKEY",
        "PGSSLMODE",
        "PGSSLROOTCERT",
    ];
    for call in &calls {
        if call.args.first().map(String::as_str) == Some("--list") || is_lock_watch(call) {
            continue; // no connection; ours
        }
        let mut call_env = call.env.clone();
        call_env.remove("PGAPPNAME"); // ours, on the restoring pg_restore
        // (The original's table check gets PGPASSWORD only; ours uses the connection's TLS
        // settings, a documented difference.)
        assert_eq!(
            call_env.keys().map(String::as_str).collect::<Vec<_>>(),
            keys,
            "{} {:?}",
            call.prog,
            call.args
        );
        assert_eq!(call.env["PGPASSWORD"], APP_PW);
        assert_eq!(call.env["PGSSLMODE"], "verify-full");
        assert_private_file(&rec, call, &call.env["PGSSLROOTCERT"], &certs.ca_pem);
        assert_private_file(&rec, call, &call.env["PGSSLCERT"], &cert);
        assert_private_file(&rec, call, &call.env["PGSSLKEY"], &key);
        // TLS material travels in the environment only.
        assert!(
            !call
                .args
                .iter()
                .any(|a| a.contains(&*rec.tmp.to_string_lossy()) && !a.starts_with("--use-list=")),
            "{:?}",
            call.args
        );
    }
    assert_no_secrets_in_argv(&calls);
    let conns = pg_connections(&pg, "mtls");
    // (Ours names the restoring pg_restore's session, for the lock watch.)
    for app in ["psql ", "pg_dump ", "database-backup-restorer-"] {
        assert!(
            conns
                .iter()
                .any(|l| l.contains(&format!("application_name={app}"))),
            "no {app} connection logged: {conns:#?}"
        );
    }
    assert!(
        conns.iter().all(|l| l.contains("SSL enabled")),
        "{conns:#?}"
    );

    // skip_host_verify: verify-ca, so a host name the certificate does not name is fine.
    rec.clear();
    let mut c = pg_cfg(&pg, "mtls", "appdb");
    c["host"] = json!("localhost");
    c["tls"] = json!({"skip_host_verify": true,
                      "cert": {"ca": certs.ca_pem, "certificate": cert, "private_key": key}});
    let c = sb.config("skip.json", &c);
    sb.backup(&c, &art).ok();
    let calls = rec.calls();
    assert_eq!(progs(&calls), ["psql", "pg_dump"]);
    for call in &calls {
        assert_eq!(call.env["PGSSLMODE"], "verify-ca");
        assert!(call.args.contains(&"--host=localhost".to_string()));
    }

    // A CA only (no client certificate) for a user without TLS requirements: no
    // PGSSLCERT/PGSSLKEY, and the connection still uses (verified) TLS.
    rec.clear();
    let mut c = pg_cfg(&pg, "app", "plaindb");
    c["tls"] = json!({"cert": {"ca": certs.ca_pem}});
    let c = sb.config("plain-user.json", &c);
    sb.backup(&c, &sb.path("plain.dump")).ok();
    for call in rec.calls() {
        assert_eq!(
            call.env.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "PGCONNECT_TIMEOUT",
                "PGPASSWORD",
                "PGSSLMODE",
                "PGSSLROOTCERT"
            ]
        );
        assert_private_file(&rec, &call, &call.env["PGSSLROOTCERT"], &certs.ca_pem);
    }
    let conns = pg_connections(&pg, "app");
    assert!(
        !conns.is_empty() && conns.iter().all(|l| l.contains("SSL enabled")),
        "{conns:#?}"
    );
}

/// docs/database-backup-restorer.md "What it runs": the list filter keeps `--clean` from dropping schemas and
/// extensions: an extension the restoring user does not own, and the schemas, survive the
/// restore untouched (same OIDs), while the tables are dropped and recreated.
#[test]
fn pg_restore_leaves_existing_schemas_and_extensions_alone() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    pg_seed(&pg, "app", "appdb");
    // Installed by the superuser, as an operator would.
    pg.psql("appdb", "CREATE EXTENSION pgcrypto");
    let before = pg_fingerprint(&pg, "appdb");
    let oids = |pg: &Pg| {
        pg.psql(
            "appdb",
            "SELECT (SELECT oid FROM pg_extension WHERE extname = 'pgcrypto') || ' ' || \
             (SELECT oid FROM pg_namespace WHERE nspname = 'public') || ' ' || \
             (SELECT oid FROM pg_namespace WHERE nspname = 'inventory')",
        )
    };
    let table_oid = |pg: &Pg| pg.psql("appdb", "SELECT 'public.people'::regclass::oid");
    let (ns_before, table_before) = (oids(&pg), table_oid(&pg));
    let sb = Sandbox::new(PG15_BIN);
    let c = sb.config("c.json", &pg_cfg(&pg, "app", "appdb"));
    let art = sb.path("db.dump");
    sb.backup(&c, &art).ok();
    let list = pg_list(&art);
    assert!(list.contains("EXTENSION - pgcrypto"), "{list}");
    assert!(list.contains("SCHEMA - inventory"), "{list}");

    // Without the filter this restore cannot work: the user does not own the extension.
    let out = Command::new(pg15("pg_restore"))
        .args(pg_prefix(&pg, "app"))
        .args([
            "--dbname=appdb",
            "--clean",
            "--if-exists",
            "--single-transaction",
        ])
        .arg("--exit-on-error")
        .arg(&art)
        .env_clear()
        .env("PGPASSWORD", APP_PW)
        .output()
        .expect("pg_restore");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be owner of extension pgcrypto"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    pg_mutate(&pg, "app", "appdb");
    sb.restore(&c, &art).ok();
    assert_eq!(pg_fingerprint(&pg, "appdb"), before);
    assert_eq!(
        oids(&pg),
        ns_before,
        "a schema or the extension was recreated"
    );
    assert_ne!(
        table_oid(&pg),
        table_before,
        "tables are dropped and recreated"
    );
    assert_eq!(
        pg.psql("appdb", "SELECT encode(digest('abc', 'sha1'), 'hex')"),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
}

/// docs/database-backup-restorer.md "What it runs": the artifact is one PostgreSQL custom-format archive, interchangeable
/// with the original: an archive made by the original's exact `pg_dump` command restores with
/// ours, and ours restores with the original's exact restore steps; nothing else is written
/// next to it. Rows and the sequence come back exactly.
#[test]
fn pg_artifacts_are_interchangeable_with_the_originals_commands() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    pg_seed(&pg, "app", "appdb");
    let before = pg_fingerprint(&pg, "appdb");
    let sb = Sandbox::new(PG15_BIN);
    let c = sb.config("c.json", &pg_cfg(&pg, "app", "appdb"));
    let pw_only = |cmd: &mut Command| {
        cmd.env_clear().env("PGPASSWORD", APP_PW);
    };

    // The original's backup (docs/database-backup-restorer.md "What it runs"), restored by us.
    let theirs = sb.path("theirs.dump");
    let mut cmd = Command::new(pg15("pg_dump"));
    cmd.args(pg_prefix(&pg, "app"))
        .args(["--verbose", "--format=custom"])
        .arg(format!("--file={}", theirs.display()))
        .arg("appdb");
    pw_only(&mut cmd);
    sh(&mut cmd);
    pg_mutate(&pg, "app", "appdb");
    sb.restore(&c, &theirs).ok();
    assert_eq!(pg_fingerprint(&pg, "appdb"), before);

    // Our backup: a single custom-format file, nothing beside it.
    let out = sb.path("out");
    std::fs::create_dir(&out).expect("mkdir");
    let ours = out.join("db.dump");
    sb.backup(&c, &ours).ok();
    let names: Vec<_> = std::fs::read_dir(&out)
        .expect("out")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["db.dump"]);
    assert!(
        std::fs::read(&ours)
            .expect("artifact")
            .starts_with(b"PGDMP")
    );

    // Restored with the original's steps (docs/database-backup-restorer.md "What it runs", the original's restore steps).
    pg_mutate(&pg, "app", "appdb");
    assert_ne!(pg_fingerprint(&pg, "appdb"), before);
    let list = sb.path("backup-restore-sdk-list");
    std::fs::write(&list, original_list_filter(&pg_list(&ours)).join("\n")).expect("list");
    let mut cmd = Command::new(pg15("pg_restore"));
    cmd.args(pg_prefix(&pg, "app"))
        .args([
            "--verbose",
            "--format=custom",
            "--dbname=appdb",
            "--clean",
            "--if-exists",
        ])
        .args(["--single-transaction", "--exit-on-error"])
        .arg(format!("--use-list={}", list.display()))
        .arg(&ours);
    pw_only(&mut cmd);
    sh(&mut cmd);
    assert_eq!(pg_fingerprint(&pg, "appdb"), before);
    // The sequence carries on from the backed-up value.
    assert_eq!(
        pg.psql(
            "appdb",
            "WITH i AS (INSERT INTO public.people (name) VALUES ('next') RETURNING id) \
             SELECT id FROM i"
        ),
        "201"
    );
}

/// docs/database-backup-restorer.md "Output and exit codes": failures exit 1 with the original's texts. The version check
/// prints `Unable to check version of Postgres: <err>\n<stdout>\n<stderr>`; restore never
/// creates the database; a file that is not an archive and a dump that cannot be written are
/// action failures (the tool's own message) that leave the database alone. Unlike the
/// original, neither gets the "delete the artifact-file" hint: the restore's file is not
/// ours, and the failed dump created none.
#[test]
fn pg_failures_exit_1_with_the_originals_messages() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    pg_seed(&pg, "app", "appdb");
    let before = pg_fingerprint(&pg, "appdb");
    let sb = Sandbox::new(PG15_BIN);
    let good = sb.config("c.json", &pg_cfg(&pg, "app", "appdb"));
    let art = sb.path("db.dump");
    sb.backup(&good, &art).ok();

    let mut c = pg_cfg(&pg, "app", "appdb");
    c["password"] = json!("wrong-pw");
    let c = sb.config("pw.json", &c);
    let r = sb.restore(&c, &art);
    r.fails_with(
        1,
        &format!(
            "Unable to check version of Postgres: exit status 2\n\npsql: error: connection to server at \"127.0.0.1\", port {} failed: FATAL:  password authentication failed for user \"app\"",
            pg.port
        ),
    );
    assert!(!r.stderr.contains(HINT), "not an action failure");

    // Restore assumes the database exists and does not create it.
    let mut c = pg_cfg(&pg, "app", "newdb");
    c["database"] = json!("newdb");
    let c = sb.config("newdb.json", &c);
    sb.restore(&c, &art)
        .fails_with(1, "database \"newdb\" does not exist");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'newdb'"
        ),
        "0"
    );

    let garbage = sb.path("garbage.dump");
    std::fs::write(&garbage, "this is not a pg_dump archive\n").expect("write");
    let r = sb.restore(&good, &garbage);
    r.fails_with(1, "input file does not appear to be a valid archive");
    assert!(!r.stderr.contains(HINT), "{}", r.stderr);
    let r = sb.restore(&good, &sb.path("missing.dump"));
    r.fails_with(1, "missing.dump");
    assert!(!r.stderr.contains(HINT), "{}", r.stderr);
    let r = sb.backup(&good, &sb.path("no-such-dir/db.dump"));
    r.fails_with(1, "could not open output file");
    assert!(!r.stderr.contains(HINT), "{}", r.stderr);
    assert!(!sb.path("no-such-dir").exists());
    assert_eq!(pg_fingerprint(&pg, "appdb"), before);
}

/// docs/database-backup-restorer.md "Output and exit codes": an action failure is logged as the error, which for a failed child is
/// Go's `exit status N`, after the hint line (`log.Fatalf("You may need to delete the
/// artifact-file that was created before re-running.\n%s\n", err)` with an `*exec.ExitError`)
/// when the failed backup created the artifact file; ours gives no hint otherwise.
#[test]
fn pg_action_failures_log_exit_status_after_the_hint() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    pg_seed(&pg, "app", "appdb");
    let sb = Sandbox::new(PG15_BIN);
    let c = sb.config("c.json", &pg_cfg(&pg, "app", "appdb"));
    let mut wrong = Vec::new();
    // pg_dump exits 1 after creating its output file (a table app may not read).
    pg.psql("appdb", "CREATE TABLE public.secret (v int)");
    let art = sb.path("db.dump");
    let r = sb.backup(&c, &art);
    assert_eq!(r.code, 1);
    if !r.stderr.contains(&format!("{HINT}\nexit status 1\n")) || !art.exists() {
        wrong.push(format!("pg_dump failure:\n{}", r.stderr));
    }
    pg.psql("appdb", "DROP TABLE public.secret");
    // pg_dump exits 1 (cannot open its output file): no file, no hint.
    let r = sb.backup(&c, &sb.path("no-such-dir/db.dump"));
    assert_eq!(r.code, 1);
    if !r.stderr.lines().any(|l| l.ends_with(" exit status 1")) || r.stderr.contains(HINT) {
        wrong.push(format!("pg_dump failure without a file:\n{}", r.stderr));
    }
    // pg_restore --list exits 1 (not an archive): no hint for a file we did not create.
    let garbage = sb.path("garbage.dump");
    std::fs::write(&garbage, "this is not a pg_dump archive\n").expect("write");
    let r = sb.restore(&c, &garbage);
    assert_eq!(r.code, 1);
    if !r.stderr.lines().any(|l| l.ends_with(" exit status 1")) || r.stderr.contains(HINT) {
        wrong.push(format!("pg_restore --list failure:\n{}", r.stderr));
    }
    assert!(
        wrong.is_empty(),
        "want `exit status 1`, after the hint only when the backup created the file:\n{}",
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// MariaDB

/// The original's cipher list for MariaDB without `tls` (mysql/ssl_command_provider.go:
/// OpenSSLCipherList then YaSSLCipherList, colon-joined), typo included.
const ORIGINAL_CIPHERS: &[&str] = &[
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

/// Three tables, a trigger (defined by `definer`, who restores it) and a stored procedure.
fn maria_seed(m: &Maria, db: &str, definer: &str) {
    m.sql(
        db,
        &format!(
            "CREATE TABLE people (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL,
           born DATE, note TEXT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
         CREATE TABLE places (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(80),
           person_id INT, FOREIGN KEY (person_id) REFERENCES people(id)) ENGINE=InnoDB;
         CREATE TABLE events (id BIGINT AUTO_INCREMENT PRIMARY KEY, payload LONGTEXT) ENGINE=InnoDB;
         INSERT INTO people (name, born, note) SELECT CONCAT('person ', seq, ' ✓'),
           DATE_ADD('1970-01-01', INTERVAL seq DAY), REPEAT('x', seq % 50) FROM seq_1_to_200;
         INSERT INTO places (name, person_id) SELECT CONCAT('place ', seq), seq FROM seq_1_to_100;
         INSERT INTO events (payload) SELECT REPEAT(MD5(seq), 5) FROM seq_1_to_300;
         CREATE DEFINER = '{definer}'@'%' TRIGGER people_bi BEFORE INSERT ON people
           FOR EACH ROW SET NEW.note = COALESCE(NEW.note, 'trg');
         CREATE PROCEDURE count_people() SELECT COUNT(*) FROM people;"
        ),
    );
}

fn maria_fp(m: &Maria, db: &str) -> Vec<String> {
    ["people", "places", "events"]
        .iter()
        .map(|t| {
            let sum = m.sql(db, &format!("CHECKSUM TABLE {t} EXTENDED"));
            let n = m.sql(db, &format!("SELECT COUNT(*) FROM {t}"));
            format!("{sum} rows={n}")
        })
        .collect()
}

fn maria_mutate(m: &Maria, db: &str) {
    m.sql(
        db,
        "UPDATE people SET name = 'changed';
         DELETE FROM places WHERE id > 50;
         DELETE FROM events WHERE id % 2 = 0;
         INSERT INTO people (name) VALUES ('newcomer');",
    );
}

fn maria_cfg(m: &Maria, user: &str, db: &str) -> Value {
    json!({"username": user, "password": APP_PW, "host": "127.0.0.1", "port": m.port,
           "adapter": "mysql", "database": db})
}

fn maria_prefix(m: &Maria, user: &str) -> Vec<String> {
    vec![
        format!("--user={user}"),
        "--host=127.0.0.1".into(),
        format!("--port={}", m.port),
    ]
}

/// docs/database-backup-restorer.md "What it runs" (binmock: exact argv, `MYSQL_PWD`, invocation counts, restore stdin),
/// "What it runs" (the wrappers' `MARIADB_*_PATH` variables, pointing at programs named like the
/// original's package's `mysql`/`mysqldump`), "What it runs" (legacy cipher list without `tls`, no
/// `--set-gtid-purged` for MariaDB, minimal env), "What it runs" (artifact is plain SQL text with
/// mysqldump's defaults: DROP TABLE IF EXISTS and triggers, no routines), and the
/// system tests' tables subset, missing tables and `CREATE TABLE \`people\`` in the restore
/// output.
#[test]
fn mariadb_command_lines_environment_stdin_and_artifact_match_the_original() {
    let m = Maria::start(None);
    m.create_user("app", APP_PW, "appdb", "");
    maria_seed(&m, "appdb", "app");
    let before = maria_fp(&m, "appdb");
    let mut sb = Sandbox::new("");
    let rec = Recorder::new(
        &sb,
        "database-backup-restorer-mariadb/bin",
        &[
            ("mysql", PathBuf::from("/usr/bin/mysql")),
            ("mysqldump", PathBuf::from("/usr/bin/mysqldump")),
        ],
    );
    sb.extra_env = vec![
        ("MARIADB_CLIENT_PATH".into(), rec.tool("mysql")),
        ("MARIADB_DUMP_PATH".into(), rec.tool("mysqldump")),
    ];
    let ciphers = format!("--ssl-cipher={}", ORIGINAL_CIPHERS.join(":"));
    let mut prefix = maria_prefix(&m, "app");
    prefix.push(ciphers);
    let with = |tail: &[&str]| -> Vec<String> {
        let mut v = prefix.clone();
        v.extend(strings(tail));
        v
    };
    let only_password = env_of(&[("MYSQL_PWD", APP_PW)]);
    // The original probes with the MySQL 8.0 client and MySQL-style SSL flags (none without
    // `tls`); ours probes with the client it found, here MariaDB's, whose SSL flags are the
    // legacy ones (documented in src/mysql.rs: flags follow the client's family).
    let version_args = with(&[
        "--connect-timeout=30",
        "--skip-column-names",
        "--silent",
        "--execute=SELECT VERSION()",
    ]);

    let c = sb.config("c.json", &maria_cfg(&m, "app", "appdb"));
    let art = sb.path("db.sql");
    let art_s = art.display().to_string();
    let r = sb.backup(&c, &art);
    r.ok();
    let calls = rec.calls();
    assert_eq!(progs(&calls), ["mysql", "mysqldump"]);
    assert_eq!(calls[0].args, version_args);
    assert_eq!(calls[0].env, only_password);
    assert_eq!(
        calls[1].args,
        with(&[
            "-v",
            "--skip-add-locks",
            "--single-transaction",
            &format!("--result-file={art_s}"),
            "appdb",
        ])
    );
    assert_eq!(calls[1].env, only_password);
    assert!(
        r.stderr.contains("MYSQL server version 10.11."),
        "{}",
        r.stderr
    );
    // mysqldump -v's progress reaches our stderr.
    assert!(
        r.stderr
            .contains("-- Retrieving table structure for table people"),
        "{}",
        r.stderr
    );
    // Plain SQL text with mysqldump's defaults.
    let dump = std::fs::read_to_string(&art).expect("artifact is UTF-8 text");
    // (MariaDB 10.11.19's mariadb-dump opens with a `/*M!999999\- enable the sandbox mode */`
    // line, then the usual header.)
    assert!(
        dump.lines()
            .take(3)
            .any(|l| l.starts_with("-- MariaDB dump") || l.starts_with("-- MySQL dump")),
        "{}",
        &dump[..dump.len().min(200)]
    );
    for want in [
        "DROP TABLE IF EXISTS `people`",
        "CREATE TABLE `people`",
        "INSERT INTO `people` VALUES",
    ] {
        assert!(dump.contains(want), "{want} not in the artifact");
    }
    // Triggers are dumped (as the server's SHOW CREATE TRIGGER text), routines are not.
    assert!(
        dump.lines()
            .any(|l| l.contains("TRIGGER") && l.contains("people_bi")),
        "no trigger in the artifact"
    );
    assert!(!dump.contains("count_people"), "routines are not dumped");

    // Tables subset: the names follow the database.
    rec.clear();
    let mut tc = maria_cfg(&m, "app", "appdb");
    tc["tables"] = json!(["people", "events"]);
    let tc = sb.config("tables.json", &tc);
    let subset = sb.path("subset.sql");
    sb.backup(&tc, &subset).ok();
    let calls = rec.calls();
    assert_eq!(progs(&calls), ["mysql", "mysqldump"]);
    assert_eq!(
        calls[1].args,
        with(&[
            "-v",
            "--skip-add-locks",
            "--single-transaction",
            &format!("--result-file={}", subset.display()),
            "appdb",
            "people",
            "events",
        ])
    );
    let text = std::fs::read_to_string(&subset).expect("subset");
    assert!(text.contains("CREATE TABLE `events`") && !text.contains("CREATE TABLE `places`"));

    // Restore of the subset: the artifact is mysql's stdin; `tables` in the config is not
    // consulted; listed tables come back, the other keeps its new rows.
    maria_mutate(&m, "appdb");
    let mutated = maria_fp(&m, "appdb");
    rec.clear();
    let mut rc = maria_cfg(&m, "app", "appdb");
    rc["tables"] = json!(["lizards"]);
    let rc = sb.config("restore.json", &rc);
    let r = sb.restore(&rc, &subset);
    r.ok();
    let calls = rec.calls();
    assert_eq!(progs(&calls), ["mysql", "mysql"]);
    assert_eq!(calls[0].args, version_args);
    assert_eq!(
        calls[1].args,
        with(&[
            "--connect-timeout=30",
            "--init-command=SET SESSION lock_wait_timeout=300",
            "-v",
            "appdb"
        ])
    );
    assert_eq!(calls[1].stdin, subset.display().to_string());
    assert_eq!(calls[1].env, only_password);
    assert!(
        r.stdout.contains("CREATE TABLE `people`"),
        "restore is verbose"
    );
    let after = maria_fp(&m, "appdb");
    assert_eq!(after[0], before[0]);
    assert_eq!(after[2], before[2]);
    assert_eq!(after[1], mutated[1]);

    // Full restore brings everything back, the trigger included.
    sb.restore(&c, &art).ok();
    assert_eq!(maria_fp(&m, "appdb"), before);
    m.sql("appdb", "INSERT INTO people (name) VALUES ('via trigger')");
    assert_eq!(
        m.sql(
            "appdb",
            "SELECT note FROM people WHERE name = 'via trigger'"
        ),
        "trg"
    );

    // Tables that do not exist: mysqldump's own message, then the hint (system tests: some
    // and none of the tables missing, a name with a space); mysqldump created the file.
    for (n, (tables, missing)) in [
        (json!(["people", "not there"]), "not there"),
        (json!(["lizards", "form-shifting-people"]), "lizards"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = maria_cfg(&m, "app", "appdb");
        c["tables"] = tables;
        let c = sb.config("missing.json", &c);
        let r = sb.backup(&c, &sb.path(&format!("missing-{n}.sql")));
        r.fails_with(1, &format!("mysqldump: Couldn't find table: \"{missing}\""))
            .fails_with(1, HINT);
        let hint = r.stderr.find(HINT).unwrap_or_default();
        let err = r.stderr.find("Couldn't find table").unwrap_or_default();
        assert!(err < hint, "the tool's message comes first:\n{}", r.stderr);
    }
    assert_no_secrets_in_argv(&rec.calls());
}

/// docs/database-backup-restorer.md "Output and exit codes" / "What it runs": a failed MariaDB version check logs just the client's stderr; a
/// restore is not transactional (an error mid-file leaves what ran before it).
#[test]
fn mariadb_failures_exit_1_with_the_originals_messages() {
    let m = Maria::start(None);
    m.create_user("app", APP_PW, "appdb", "");
    let sb = Sandbox::new("/usr/bin");

    let mut c = maria_cfg(&m, "app", "appdb");
    c["password"] = json!("wrong-pw");
    let c = sb.config("pw.json", &c);
    let r = sb.backup(&c, &sb.path("x.sql"));
    assert_eq!(r.code, 1);
    let want = "ERROR 1045 (28000): Access denied for user 'app'@'127.0.0.1' (using password: YES)";
    assert!(
        r.stderr
            .lines()
            .any(|l| has_log_prefix(l) && &l[20..] == want),
        "no log line that is exactly the client's stderr:\n{}",
        r.stderr
    );
    assert!(!r.stderr.contains(HINT));
    assert!(!sb.path("x.sql").exists());

    let good = sb.config("c.json", &maria_cfg(&m, "app", "appdb"));
    let art = sb.path("partial.sql");
    std::fs::write(
        &art,
        "CREATE TABLE t1 (a INT);\nINSERT INTO t1 VALUES (1);\nTHIS IS NOT SQL;\nCREATE TABLE t2 (a INT);\n",
    )
    .expect("write");
    let r = sb.restore(&good, &art);
    r.fails_with(1, "ERROR 1064");
    assert!(!r.stderr.contains(HINT), "not a file this run created");
    assert_eq!(m.sql("appdb", "SELECT COUNT(*) FROM t1"), "1");
    assert_eq!(
        m.sql(
            "",
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'appdb' AND table_name = 't2'"
        ),
        "0"
    );
}

/// docs/database-backup-restorer.md "Output and exit codes": as for PostgreSQL, the error is Go's `exit status N`, after the hint
/// when the failed backup created the file.
#[test]
fn mariadb_action_failures_log_exit_status_after_the_hint() {
    let m = Maria::start(None);
    m.create_user("app", APP_PW, "appdb", "");
    maria_seed(&m, "appdb", "app");
    let sb = Sandbox::new("/usr/bin");
    let mut wrong = Vec::new();
    let mut c = maria_cfg(&m, "app", "appdb");
    c["tables"] = json!(["lizards"]);
    let c = sb.config("missing.json", &c);
    let r = sb.backup(&c, &sb.path("x.sql"));
    assert_eq!(r.code, 1);
    let after = r
        .stderr
        .split_once(&format!("{HINT}\n"))
        .map(|(_, rest)| rest.lines().next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let ok = after
        .strip_prefix("exit status ")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        wrong.push(format!("dump failure, line after the hint: {after:?}"));
    }
    let good = sb.config("c.json", &maria_cfg(&m, "app", "appdb"));
    let art = sb.path("bad.sql");
    std::fs::write(&art, "THIS IS NOT SQL;\n").expect("write");
    let r = sb.restore(&good, &art);
    assert_eq!(r.code, 1);
    if !r.stderr.lines().any(|l| l.ends_with(" exit status 1")) || r.stderr.contains(HINT) {
        wrong.push(format!("restore failure:\n{}", r.stderr));
    }
    assert!(
        wrong.is_empty(),
        "want `exit status N`, after the hint only when the backup created the file:\n{}",
        wrong.join("\n")
    );
}

/// A test CA and a server certificate naming only DNS `name` (no IP), so that connecting by
/// IP fails host verification as in the original's "IP host vs cert" system test. Uses the
/// file names [`Certs`] expects, so [`Certs::client`] can issue client certificates.
fn certs_for_name(dir: &Path, name: &str) -> Certs {
    std::fs::create_dir_all(dir).expect("mkdir certs");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ossl = |args: &str| {
        sh(Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(dir));
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    ossl(&format!(
        "req -x509 {ec} -keyout ca.key -out ca.crt -days 3 -subj /CN=dbr-scenario-CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
    ));
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
             subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .expect("ext");
    ossl(&format!(
        "req {ec} -keyout server.key -out server.csr -subj /CN={name}"
    ));
    ossl(
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
         -days 3 -extfile server.ext",
    );
    for f in ["server.crt", "server.key", "ca.crt"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    Certs {
        dir: dir.to_path_buf(),
        ca_pem: std::fs::read_to_string(dir.join("ca.crt")).expect("ca"),
    }
}

/// docs/database-backup-restorer.md "What it runs" legacy SSL flags (`--ssl-ca` [`--ssl-cert` `--ssl-key`] and
/// `--ssl-verify-server-cert` unless `skip_host_verify`), "What it runs" (PEM texts in private
/// temporary files, removed afterwards), the original's MySQL TLS system tests: host (an IP) not in the
/// certificate → exit 1, `skip_host_verify` works, mutual TLS with valid and malformed client
/// certificates, a user without TLS requirements with a TLS config.
#[test]
fn mariadb_tls_flags_files_and_host_verification() {
    let mut sb = Sandbox::new("");
    let certs = certs_for_name(&sb.path("certs"), "db.bbr-scenarios.test");
    let (cert, key) = certs.client("mtls");
    let m = Maria::start(Some(&certs));
    m.create_user("tlsonly", APP_PW, "appdb", "REQUIRE SSL");
    m.create_user("mtls", APP_PW, "appdb", "REQUIRE X509");
    m.create_user("app", APP_PW, "appdb", "");
    // tlsonly restores the trigger, so it defines it.
    maria_seed(&m, "appdb", "tlsonly");
    let before = maria_fp(&m, "appdb");
    let rec = Recorder::new(
        &sb,
        "rec",
        &[
            ("mariadb", PathBuf::from("/usr/bin/mariadb")),
            ("mariadb-dump", PathBuf::from("/usr/bin/mariadb-dump")),
        ],
    );
    sb.client_dirs = rec.bin.display().to_string();
    let art = sb.path("db.sql");
    let cfg = |user: &str, tls: Value| {
        let mut c = maria_cfg(&m, user, "appdb");
        c["tls"] = tls;
        c
    };
    let ssl_args = |call: &Call| -> Vec<String> {
        call.args
            .iter()
            .filter(|a| a.starts_with("--ssl"))
            .cloned()
            .collect()
    };
    let file_of = |args: &[String], flag: &str| -> String {
        args.iter()
            .find_map(|a| a.strip_prefix(flag))
            .unwrap_or_else(|| panic!("no {flag} in {args:?}"))
            .to_string()
    };

    // Host verification against a certificate that does not name the IP: refused.
    let c = sb.config(
        "verify.json",
        &cfg("tlsonly", json!({"cert": {"ca": certs.ca_pem}})),
    );
    sb.backup(&c, &art)
        .fails_with(1, "Validation of SSL server certificate failed");
    assert!(!art.exists());
    let calls = rec.calls();
    assert_eq!(
        progs(&calls),
        ["mariadb"],
        "nothing runs after the version check"
    );
    let ssl = ssl_args(&calls[0]);
    assert_eq!(ssl.len(), 2, "{ssl:?}");
    assert_eq!(ssl[1], "--ssl-verify-server-cert");
    assert_private_file(&rec, &calls[0], &file_of(&ssl, "--ssl-ca="), &certs.ca_pem);

    // skip_host_verify: only the CA, no verification flag; backup and restore work.
    rec.clear();
    let c = sb.config(
        "skip.json",
        &cfg(
            "tlsonly",
            json!({"skip_host_verify": true, "cert": {"ca": certs.ca_pem}}),
        ),
    );
    sb.backup(&c, &art).ok();
    maria_mutate(&m, "appdb");
    sb.restore(&c, &art).ok();
    assert_eq!(maria_fp(&m, "appdb"), before);
    let calls = rec.calls();
    assert_eq!(
        progs(&calls),
        ["mariadb", "mariadb-dump", "mariadb", "mariadb"]
    );
    for call in &calls {
        let ssl = ssl_args(call);
        assert_eq!(ssl.len(), 1, "{ssl:?}");
        assert_private_file(&rec, call, &file_of(&ssl, "--ssl-ca="), &certs.ca_pem);
        assert_eq!(call.env, env_of(&[("MYSQL_PWD", APP_PW)]));
        assert_eq!(call.args[..3], maria_prefix(&m, "tlsonly")[..]);
    }
    assert_eq!(
        calls[1].args[4..],
        strings(&[
            "-v",
            "--skip-add-locks",
            "--single-transaction",
            &format!("--result-file={}", art.display()),
            "appdb",
        ])[..]
    );
    assert_eq!(
        calls[3].args[4..],
        strings(&[
            "--connect-timeout=30",
            "--init-command=SET SESSION lock_wait_timeout=300",
            "-v",
            "appdb"
        ])[..]
    );

    // Mutual TLS: client certificate and key in private files.
    rec.clear();
    let mtls = json!({"skip_host_verify": true,
                      "cert": {"ca": certs.ca_pem, "certificate": cert, "private_key": key}});
    let c = sb.config("mtls.json", &cfg("mtls", mtls));
    sb.backup(&c, &art).ok();
    let calls = rec.calls();
    assert_eq!(progs(&calls), ["mariadb", "mariadb-dump"]);
    for call in &calls {
        let ssl = ssl_args(call);
        assert_eq!(ssl.len(), 3, "{ssl:?}");
        assert!(ssl[0].starts_with("--ssl-ca=") && ssl[1].starts_with("--ssl-cert="));
        assert_private_file(&rec, call, &file_of(&ssl, "--ssl-ca="), &certs.ca_pem);
        assert_private_file(&rec, call, &file_of(&ssl, "--ssl-cert="), &cert);
        assert_private_file(&rec, call, &file_of(&ssl, "--ssl-key="), &key);
    }
    assert_no_secrets_in_argv(&calls);
    // ... with host verification: the flag is added, and the IP does not match.
    rec.clear();
    let c = sb.config(
        "mtls-verify.json",
        &cfg(
            "mtls",
            json!({"cert": {"ca": certs.ca_pem, "certificate": cert, "private_key": key}}),
        ),
    );
    sb.backup(&c, &art)
        .fails_with(1, "Validation of SSL server certificate failed");
    let ssl = ssl_args(&rec.calls()[0]);
    assert_eq!(ssl.len(), 4, "{ssl:?}");
    assert_eq!(ssl[3], "--ssl-verify-server-cert");
    // ... malformed client certificate and key: refused.
    let c = sb.config(
        "mtls-bad.json",
        &cfg(
            "mtls",
            json!({"skip_host_verify": true,
                   "cert": {"ca": certs.ca_pem, "certificate": "garbage", "private_key": "garbage"}}),
        ),
    );
    sb.backup(&c, &art)
        .fails_with(1, "ERROR 2026 (HY000): TLS/SSL error");

    // A user without TLS requirements, with a TLS config.
    let c = sb.config(
        "plain.json",
        &cfg(
            "app",
            json!({"skip_host_verify": true, "cert": {"ca": certs.ca_pem}}),
        ),
    );
    sb.backup(&c, &art).ok();
}
