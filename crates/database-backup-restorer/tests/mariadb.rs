//! MariaDB scenarios against a real Debian MariaDB 10.11 server, plain, TLS and mutual TLS.

mod common;

use common::{Certs, Maria, Sandbox};
use serde_json::{Value, json};

const APP_PW: &str = "app-pw-Mx9";
const CLIENT_DIRS: &str = "/usr/bin";

fn seed(m: &Maria, user: &str, db: &str) {
    // Views are created with the application user as definer, as a release would.
    m.sql(
        db,
        &format!("CREATE DEFINER = '{user}'@'%' VIEW active_people AS SELECT id, name FROM people WHERE active"),
    );
}

fn seed_tables(m: &Maria, db: &str) {
    m.sql(
        db,
        "CREATE TABLE people (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL,
           born DATE, balance DECIMAL(12,2), meta JSON, photo BLOB, active BOOLEAN,
           updated DATETIME(6), mood ENUM('sad','ok','happy'), note TEXT) ENGINE=InnoDB
           DEFAULT CHARSET=utf8mb4;
         CREATE TABLE places (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(80) UNIQUE,
           lat DOUBLE, person_id INT, FOREIGN KEY (person_id) REFERENCES people(id)) ENGINE=InnoDB;
         CREATE TABLE events (id BIGINT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(3) NULL,
           payload LONGTEXT, ip VARBINARY(16)) ENGINE=InnoDB;
         INSERT INTO people (name, born, balance, meta, photo, active, updated, mood, note)
           SELECT CONCAT('person ', seq, ' naïve ✓'), DATE_ADD('1970-01-01', INTERVAL seq DAY),
                  seq * 1.25, JSON_OBJECT('n', seq), UNHEX(MD5(seq)), seq % 2 = 0,
                  TIMESTAMP('2020-01-01 00:00:00.123456') + INTERVAL seq HOUR,
                  ELT(1 + seq % 3, 'sad', 'ok', 'happy'), REPEAT('x', seq % 100)
           FROM seq_1_to_500;
         INSERT INTO places (name, lat, person_id) SELECT CONCAT('place ', seq), seq / 7, 1 + seq % 500
           FROM seq_1_to_300;
         INSERT INTO events (at, payload, ip) SELECT TIMESTAMP('2026-01-01') + INTERVAL seq SECOND,
           REPEAT(MD5(seq), 10), INET6_ATON(CONCAT('10.0.0.', seq % 250)) FROM seq_1_to_2000;",
    );
}

fn fingerprint(m: &Maria, db: &str) -> Vec<String> {
    ["people", "places", "events"]
        .iter()
        .map(|t| {
            let sum = m.sql(db, &format!("CHECKSUM TABLE {t} EXTENDED"));
            let n = m.sql(db, &format!("SELECT COUNT(*) FROM {t}"));
            format!("{sum} rows={n}")
        })
        .chain(std::iter::once(
            m.sql(db, "SELECT COUNT(*) FROM active_people"),
        ))
        .collect()
}

fn mutate(m: &Maria, db: &str) {
    m.sql(
        db,
        "UPDATE people SET name = 'changed', meta = '{}';
         DELETE FROM places WHERE id > 100;
         DELETE FROM events WHERE id % 2 = 0;
         INSERT INTO people (name) VALUES ('newcomer');",
    );
}

fn cfg(m: &Maria, user: &str, db: &str) -> Value {
    json!({"username": user, "password": APP_PW, "host": "127.0.0.1", "port": m.port,
           "adapter": "mysql", "database": db})
}

#[test]
fn mariadb_round_trip_into_non_empty_database() {
    let m = Maria::start(None);
    m.create_user("app", APP_PW, "appdb", "");
    seed_tables(&m, "appdb");
    seed(&m, "app", "appdb");
    let before = fingerprint(&m, "appdb");
    let sb = Sandbox::new(CLIENT_DIRS);
    let c = sb.config("c.json", &cfg(&m, "app", "appdb"));
    let art = sb.path("db.sql");
    let r = sb.backup(&c, &art);
    r.ok();
    assert!(
        r.stderr.contains("MYSQL server version 10.11."),
        "{}",
        r.stderr
    );
    let dump = String::from_utf8_lossy(&std::fs::read(&art).expect("artifact")).into_owned();
    assert!(dump.contains("CREATE TABLE `people`"));

    mutate(&m, "appdb");
    m.sql(
        "appdb",
        "CREATE TABLE extra (v INT); INSERT INTO extra VALUES (42);",
    );
    m.sql("appdb", "DROP TABLE events");
    let r = sb.restore(&c, &art);
    r.ok();
    assert!(
        r.stdout.contains("CREATE TABLE `people`"),
        "restore is verbose"
    );
    assert_eq!(fingerprint(&m, "appdb"), before);
    assert_eq!(m.sql("appdb", "SELECT v FROM extra"), "42");
}

#[test]
fn mariadb_tables_subset_both_ways() {
    let m = Maria::start(None);
    m.create_user("app", APP_PW, "appdb", "");
    seed_tables(&m, "appdb");
    seed(&m, "app", "appdb");
    let before = fingerprint(&m, "appdb");
    let sb = Sandbox::new(CLIENT_DIRS);
    let mut c = cfg(&m, "app", "appdb");
    c["tables"] = json!(["people", "events"]);
    let c = sb.config("c.json", &c);
    let art = sb.path("subset.sql");
    sb.backup(&c, &art).ok();
    let dump = String::from_utf8_lossy(&std::fs::read(&art).expect("artifact")).into_owned();
    assert!(dump.contains("CREATE TABLE `people`") && dump.contains("CREATE TABLE `events`"));
    assert!(!dump.contains("CREATE TABLE `places`"));

    mutate(&m, "appdb");
    let mutated = fingerprint(&m, "appdb");
    sb.restore(&c, &art).ok();
    let after = fingerprint(&m, "appdb");
    assert_eq!(after[0], before[0]);
    assert_eq!(after[2], before[2]);
    assert_eq!(after[1], mutated[1]);
}

#[test]
fn mariadb_missing_table_wrong_password_wrong_database_unreachable() {
    let m = Maria::start(None);
    m.create_user("app", APP_PW, "appdb", "");
    seed_tables(&m, "appdb");
    seed(&m, "app", "appdb");
    let sb = Sandbox::new(CLIENT_DIRS);
    let art = sb.path("x.sql");

    let mut c = cfg(&m, "app", "appdb");
    c["tables"] = json!(["people", "lizards"]);
    let c1 = sb.config("tables.json", &c);
    sb.backup(&c1, &art)
        .fails_with(1, "Couldn't find table: \"lizards\"")
        .fails_with(1, "You may need to delete the artifact-file");

    let mut c = cfg(&m, "app", "appdb");
    c["password"] = json!("not-the-password");
    let c2 = sb.config("pw.json", &c);
    let r = sb.backup(&c2, &art);
    r.fails_with(1, "Access denied for user 'app'");
    assert!(!r.stderr.contains("not-the-password"));
    sb.restore(&c2, &art)
        .fails_with(1, "Access denied for user 'app'");

    let mut c = cfg(&m, "app", "appdb");
    c["database"] = json!("nope");
    let c3 = sb.config("db.json", &c);
    sb.backup(&c3, &art)
        .fails_with(1, "Access denied for user 'app'@'%' to database 'nope'");
    std::fs::write(&art, "SELECT 1;\n").expect("write");
    sb.restore(&c3, &art)
        .fails_with(1, "Access denied for user 'app'@'%' to database 'nope'");

    let mut c = cfg(&m, "app", "appdb");
    c["port"] = json!(common::free_port());
    let c4 = sb.config("port.json", &c);
    sb.backup(&c4, &sb.path("y.sql"))
        .fails_with(1, "Can't connect to server on '127.0.0.1'");
    assert!(!sb.path("y.sql").exists());

    // Restore of a missing artifact.
    let c5 = sb.config("ok.json", &cfg(&m, "app", "appdb"));
    sb.restore(&c5, &sb.path("missing.sql")).fails_with(
        1,
        &format!(
            "Error reading from artifact file, open {}: no such file or directory",
            sb.path("missing.sql").display()
        ),
    );
}

#[test]
fn mariadb_tls() {
    let sb = Sandbox::new(CLIENT_DIRS);
    let certs = Certs::new(&sb.path("certs"));
    let m = Maria::start(Some(&certs));
    m.create_user("tlsonly", APP_PW, "appdb", "REQUIRE SSL");
    seed_tables(&m, "appdb");
    seed(&m, "tlsonly", "appdb");
    let before = fingerprint(&m, "appdb");
    let art = sb.path("db.sql");
    let with_tls = |tls: Value| {
        let mut c = cfg(&m, "tlsonly", "appdb");
        c["tls"] = tls;
        c
    };

    let c = sb.config(
        "verify.json",
        &with_tls(json!({"cert": {"ca": certs.ca_pem}})),
    );
    sb.backup(&c, &art).ok();
    mutate(&m, "appdb");
    sb.restore(&c, &art).ok();
    assert_eq!(fingerprint(&m, "appdb"), before);

    // No tls block: the original's cipher list asks for TLS opportunistically.
    let c = sb.config("none.json", &cfg(&m, "tlsonly", "appdb"));
    sb.backup(&c, &art).ok();

    let c = sb.config(
        "skip.json",
        &with_tls(json!({"cert": {"ca": certs.ca_pem}, "skip_host_verify": true})),
    );
    sb.backup(&c, &art).ok();
    sb.restore(&c, &art).ok();

    let c = sb.config("bad.json", &with_tls(json!({"cert": {"ca": "fooooooo"}})));
    sb.backup(&c, &art).fails_with(1, "ERROR");
}

#[test]
fn mariadb_mutual_tls() {
    let sb = Sandbox::new(CLIENT_DIRS);
    let certs = Certs::new(&sb.path("certs"));
    let (cert, key) = certs.client("mtls");
    let m = Maria::start(Some(&certs));
    m.create_user("mtls", APP_PW, "appdb", "REQUIRE X509");
    seed_tables(&m, "appdb");
    seed(&m, "mtls", "appdb");
    let before = fingerprint(&m, "appdb");
    let art = sb.path("db.sql");
    let with_tls = |tls: Value| {
        let mut c = cfg(&m, "mtls", "appdb");
        c["tls"] = tls;
        c
    };

    let c = sb.config(
        "mtls.json",
        &with_tls(json!({"cert": {"ca": certs.ca_pem, "certificate": cert, "private_key": key}})),
    );
    sb.backup(&c, &art).ok();
    mutate(&m, "appdb");
    sb.restore(&c, &art).ok();
    assert_eq!(fingerprint(&m, "appdb"), before);

    let c = sb.config(
        "ca-only.json",
        &with_tls(json!({"cert": {"ca": certs.ca_pem}})),
    );
    sb.backup(&c, &art)
        .fails_with(1, "Access denied for user 'mtls'");
    let c = sb.config("none.json", &cfg(&m, "mtls", "appdb"));
    sb.backup(&c, &art)
        .fails_with(1, "Access denied for user 'mtls'");
}
