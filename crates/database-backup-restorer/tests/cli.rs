//! The command line, config validation, wrappers, and version selection with fake clients
//! (no servers needed).

mod common;

use std::path::Path;
use std::process::Command;

use common::{Sandbox, script};
use serde_json::{Value, json};

fn valid(adapter: &str) -> Value {
    json!({"username": "u", "password": "p", "host": "127.0.0.1", "port": 5432,
           "adapter": adapter, "database": "d"})
}

#[test]
fn flag_errors_and_exit_codes() {
    let sb = Sandbox::new("");
    let usage = "Usage: database-backup-restorer [--backup|--restore] --config <config-file> --artifact-file <artifact-file>";
    sb.run(&[
        "--backup",
        "--restore",
        "--config",
        "c",
        "--artifact-file",
        "a",
    ])
    .fails_with(1, "Only one of: --backup or --restore can be provided")
    .fails_with(1, usage);
    sb.run(&["--config", "c", "--artifact-file", "a"])
        .fails_with(1, "Missing --backup or --restore flag");
    sb.run(&["--backup", "--artifact-file", "a"])
        .fails_with(1, "Missing --config flag");
    sb.run(&["-restore", "-config=c"])
        .fails_with(1, "Missing --artifact-file flag");
    let r = sb.run(&["--backup", "--foo"]);
    r.fails_with(2, "flag provided but not defined: -foo");
    assert!(
        r.stderr
            .contains("  -artifact-file string\n    \tPath to output file")
    );
    sb.run(&["--backup", "--config"])
        .fails_with(2, "flag needs an argument: -config");
    let r = sb.run(&["-h"]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("-backup\n    \tRun database backup"));

    // Go log prefix: "YYYY/MM/DD HH:MM:SS ".
    let r = sb.run(&["--backup"]);
    let first = r.stderr.lines().next().unwrap_or_default();
    let b = first.as_bytes();
    assert!(
        b.len() > 20 && b[4] == b'/' && b[7] == b'/' && b[10] == b' ' && b[13] == b':',
        "{first}"
    );
}

#[test]
fn config_file_errors() {
    let sb = Sandbox::new("");
    let a = sb.path("a");
    let missing = sb.path("nope.json");
    sb.backup(&missing, &a).fails_with(
        1,
        &format!(
            "Fail reading config file: open {}: no such file or directory",
            missing.display()
        ),
    );
    let bad = sb.path("bad.json");
    std::fs::write(&bad, "{not json").expect("write");
    sb.backup(&bad, &a)
        .fails_with(1, "Could not parse config json: ");

    let mut cases: Vec<(Value, &str)> = vec![
        (json!({"adapter": "oracle"}), "Unsupported adapter oracle"),
        (json!({"tables": []}), "Tables specified but empty"),
        (
            json!({"tls": {}}),
            "TLS block specified without tls.cert.ca",
        ),
        (
            json!({"tls": {"cert": {"ca": "x", "certificate": "c"}}}),
            "tls.cert.certificate specified but not tls.cert.private_key",
        ),
        (
            json!({"tls": {"cert": {"ca": "x", "private_key": "k"}}}),
            "tls.cert.private_key specified but not tls.cert.certificate",
        ),
        (
            json!({"port": "5432"}),
            "Could not parse config json: config key \"port\" must be a number, not a string (\"5432\")",
        ),
        (
            json!({"port": 70000}),
            "key \"port\" must be between 1 and 65535",
        ),
        (
            json!({"host": ""}),
            "Invalid config: key \"host\" must not be empty",
        ),
        (
            json!({"tables": ["people", ""]}),
            "key \"tables[1]\" must not be empty",
        ),
    ];
    for key in ["username", "password", "host", "database", "adapter"] {
        cases.push((json!({ key: 1 }), ""));
    }
    for (i, (patch, want)) in cases.into_iter().enumerate() {
        let mut c = valid("postgres");
        let mut key = String::new();
        if let (Value::Object(o), Value::Object(p)) = (&mut c, patch) {
            for (k, v) in p {
                key = k.clone();
                o.insert(k, v);
            }
        }
        let want = if want.is_empty() {
            format!("config key \"{key}\" must be a string, not a number")
        } else {
            want.to_string()
        };
        let path = sb.config(&format!("c{i}.json"), &c);
        sb.backup(&path, &a).fails_with(1, &want);
    }
    // Every required key missing, one at a time.
    for key in ["username", "password", "host", "port", "database"] {
        let mut c = valid("mysql");
        if let Value::Object(o) = &mut c {
            o.remove(key);
        }
        let path = sb.config(&format!("missing-{key}.json"), &c);
        sb.restore(&path, &a).fails_with(
            1,
            &format!("Invalid config: missing required key \"{key}\""),
        );
    }
    let mut c = valid("mysql");
    if let Value::Object(o) = &mut c {
        o.remove("adapter");
    }
    let path = sb.config("missing-adapter.json", &c);
    sb.backup(&path, &a)
        .fails_with(1, "Unsupported adapter (config key \"adapter\" is missing");
    // Wrong types inside tls and tables.
    for (patch, key) in [
        (json!({"tls": "yes"}), "tls"),
        (json!({"tls": {"cert": "x"}}), "tls.cert"),
        (json!({"tls": {"cert": {"ca": 1}}}), "tls.cert.ca"),
        (
            json!({"tls": {"cert": {"ca": "x"}, "skip_host_verify": "no"}}),
            "tls.skip_host_verify",
        ),
        (json!({"tables": "people"}), "tables"),
        (json!({"tables": [1]}), "tables[0]"),
    ] {
        let mut c = valid("postgres");
        if let (Value::Object(o), Value::Object(p)) = (&mut c, patch) {
            o.extend(p);
        }
        let path = sb.config("t.json", &c);
        sb.backup(&path, &a).fails_with(
            1,
            &format!("Could not parse config json: config key \"{key}\" must be"),
        );
    }
}

#[test]
fn installed_wrappers_pass_arguments_through() {
    let sb = Sandbox::new("");
    let job = sb.path("job");
    let r = sb.run(&["--install-wrappers", &job.to_string_lossy()]);
    r.ok();
    assert!(r.stdout.contains("bin/backup") && r.stdout.contains("bin/restore"));
    let run = |wrapper: &str, args: &[&str]| {
        Command::new(job.join("bin").join(wrapper))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .expect("run wrapper")
    };
    let out = run("backup", &["--config", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Missing --artifact-file flag"));
    let spaced = sb.path("my config.json");
    let out = run(
        "restore",
        &[
            "--config",
            &spaced.to_string_lossy(),
            "--artifact-file",
            "a b",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains(&format!("open {}: no such file", spaced.display())),
        "{err}"
    );
    let out = run(
        "backup",
        &["--restore", "--config", "c", "--artifact-file", "a"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Only one of: --backup or --restore can be provided")
    );
}

/// A directory of fake clients: `name` prints `version_line` for `--version` and runs `body`
/// otherwise (appending its arguments to `calls.log`).
fn fake_clients(sb: &Sandbox, fakes: &[(&str, &str, &str)]) -> String {
    let dir = sb.path("fake");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let log = sb.path("calls.log");
    for (name, version_line, body) in fakes {
        script(
            &dir.join(name),
            &format!(
                "if [ \"$1\" = --version ]; then echo '{version_line}'; exit 0; fi\n\
                 echo \"{name} $*\" >> '{}'\n{body}\n",
                log.display()
            ),
        );
    }
    dir.display().to_string()
}

fn with_dirs(sb: Sandbox, dirs: String) -> Sandbox {
    Sandbox {
        client_dirs: dirs,
        ..sb
    }
}

#[test]
fn unsupported_postgres_versions_are_rejected() {
    for (server, want) in [
        ("12.22", "unsupported version of postgresql: 12.22"),
        ("9.6.24", "unsupported version of postgresql: 9.6"),
        ("19.1", "unsupported version of postgresql: 19.1"),
    ] {
        let sb = Sandbox::new("");
        let dirs = fake_clients(
            &sb,
            &[(
                "psql",
                "psql (PostgreSQL) 15.18",
                &format!("echo ' PostgreSQL {server} on x86_64-pc-linux-gnu, compiled by gcc'"),
            )],
        );
        let sb = with_dirs(sb, dirs);
        let c = sb.config("c.json", &valid("postgres"));
        sb.backup(&c, &sb.path("a")).fails_with(1, want);
        sb.restore(&c, &sb.path("a")).fails_with(1, want);
    }
}

#[test]
fn unsupported_mysql_and_mariadb_versions_are_rejected() {
    for (server, want) in [
        ("5.5.68-MariaDB", "unsupported version of mariadb: 5.5"),
        ("12.0.2-MariaDB", "unsupported version of mariadb: 12.0"),
        ("5.7.44", "unsupported version of mysql: 5.7"),
        ("8.1.0", "unsupported version of mysql: 8.1"),
        ("9.0.1", "unsupported version of mysql: 9.0"),
    ] {
        let sb = Sandbox::new("");
        let dirs = fake_clients(
            &sb,
            &[(
                "mysql",
                "mysql  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)",
                &format!("echo '{server}'"),
            )],
        );
        let sb = with_dirs(sb, dirs);
        let c = sb.config("c.json", &valid("mysql"));
        let r = sb.backup(&c, &sb.path("a"));
        r.fails_with(1, want);
        assert!(r.stderr.contains("MYSQL server version"));
    }
}

#[test]
fn mysql_server_needs_a_client_of_its_own_version() {
    let sb = Sandbox::new("");
    let dirs = fake_clients(
        &sb,
        &[
            (
                "mysql",
                "mysql  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)",
                "echo '8.4.2'",
            ),
            (
                "mysqldump",
                "mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)",
                "exit 0",
            ),
        ],
    );
    let sb = with_dirs(sb, dirs);
    let c = sb.config("c.json", &valid("mysql"));
    let r = sb.backup(&c, &sb.path("a"));
    r.fails_with(1, "no mysqldump for MySQL 8.4 found");
    assert!(r.stderr.contains("MYSQL_DUMP_8_4_PATH"), "{}", r.stderr);
    assert!(r.stderr.contains("mysql 8.0"), "{}", r.stderr);
}

#[test]
fn mysql_8_0_command_lines_with_tls() {
    let sb = Sandbox::new("");
    let env_body = format!(
        "/usr/bin/env | /usr/bin/grep -c '^MYSQL_PWD=p$' >> '{}'",
        sb.path("env.log").display()
    );
    let dirs = fake_clients(
        &sb,
        &[
            (
                "mysql",
                "mysql  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)",
                "case \"$*\" in *VERSION*) echo '8.0.36';; *) cat > /dev/null;; esac",
            ),
            (
                "mysqldump",
                "mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)",
                &env_body,
            ),
        ],
    );
    let sb = with_dirs(sb, dirs);
    let mut c = valid("mysql");
    c["tables"] = json!(["people", "places"]);
    c["tls"] = json!({"cert": {"ca": "CA", "certificate": "C", "private_key": "K"}});
    let cfg = sb.config("c.json", &c);
    let art = sb.path("a");
    sb.backup(&cfg, &art).ok();
    std::fs::write(&art, "SELECT 1;").expect("write");
    sb.restore(&cfg, &art).ok();
    let calls = std::fs::read_to_string(sb.path("calls.log")).expect("log");
    let dump = calls
        .lines()
        .find(|l| l.starts_with("mysqldump "))
        .expect("mysqldump ran");
    for want in [
        "--user=u --host=127.0.0.1 --port=5432 --ssl-ca=",
        "--ssl-cert=",
        "--ssl-key=",
        "--ssl-mode=VERIFY_IDENTITY -v --skip-add-locks --single-transaction --result-file=",
        " d people places --set-gtid-purged=OFF",
    ] {
        assert!(dump.contains(want), "{want:?} not in {dump}");
    }
    assert!(
        !calls.contains(" p "),
        "password on a command line: {calls}"
    );
    let restore = calls
        .lines()
        .rfind(|l| l.starts_with("mysql "))
        .expect("mysql ran");
    // (Ours adds the connect timeout and the restore's lock wait limit.)
    assert!(
        restore.ends_with(
            "--ssl-mode=VERIFY_IDENTITY --connect-timeout=30 \
             --init-command=SET SESSION lock_wait_timeout=300 -v d"
        ),
        "{restore}"
    );
    assert_eq!(
        std::fs::read_to_string(sb.path("env.log"))
            .expect("env")
            .trim(),
        "1"
    );
}

#[test]
fn original_env_var_overrides_are_honoured_and_checked() {
    let sb = Sandbox::new("");
    let dirs = fake_clients(
        &sb,
        &[(
            "psql",
            "psql (PostgreSQL) 15.18",
            "echo ' PostgreSQL 16.4 on x86_64-pc-linux-gnu'",
        )],
    );
    let wrong = Path::new(common::PG15_BIN).join("pg_dump");
    let sb = Sandbox {
        client_dirs: dirs,
        extra_env: vec![("PG_DUMP_16_PATH".into(), wrong.display().to_string())],
        ..sb
    };
    let c = sb.config("c.json", &valid("postgres"));
    sb.backup(&c, &sb.path("a")).fails_with(
        1,
        &format!(
            "PG_DUMP_16_PATH={}: pg_dump is version 15.",
            wrong.display()
        ),
    );
}
