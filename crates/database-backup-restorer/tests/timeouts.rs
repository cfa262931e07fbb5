//! No wait is unbounded: a host that accepts TCP and never answers, a server that answers the
//! version probe and then goes silent, and a restore blocked by another session's lock, for
//! PostgreSQL 15 and MariaDB; and the "delete the artifact-file" advice only for a file this
//! run created.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Maria, PG15_BIN, Pg, Run, Sandbox};
use serde_json::{Value, json};

const APP_PW: &str = "to-pw-4Rq";
const HINT: &str = "You may need to delete the artifact-file that was created before re-running.";
/// The connect timeout the tests configure.
const CONNECT_SECS: u64 = 2;
/// How long a run may take in these tests: far above the timeouts, far below "forever".
const RUN_DEADLINE: Duration = Duration::from_secs(90);

/// A listener on 127.0.0.1 that relays its first `forward` connections to `target` and
/// accepts every later one without ever answering. Lives until the test process ends.
fn listener(forward: usize, target: Option<u16>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = l.local_addr().expect("addr").port();
    thread::spawn(move || {
        let mut silent: Vec<TcpStream> = Vec::new();
        for (n, conn) in l.incoming().enumerate() {
            let Ok(conn) = conn else { continue };
            match target {
                Some(t) if n < forward => relay(conn, t),
                _ => silent.push(conn),
            }
        }
    });
    port
}

fn relay(client: TcpStream, target: u16) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
        return;
    };
    for (mut from, mut to) in [
        (
            client.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        ),
        (server, client),
    ] {
        thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
    }
}

/// Runs `f` on another thread and fails the test unless it returns within [`RUN_DEADLINE`].
fn finishes<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    let v = rx
        .recv_timeout(RUN_DEADLINE)
        .unwrap_or_else(|_| panic!("{what} still running after {RUN_DEADLINE:?}"));
    (v, started.elapsed())
}

/// Backup or restore with `cfg`, bounded by [`RUN_DEADLINE`].
fn run_bounded(sb: &Sandbox, action: &str, cfg: &Value, artifact: &Path) -> (Run, Duration) {
    let c = sb.config(&format!("{action}-{}.json", cfg["port"]), cfg);
    let args: Vec<String> = vec![
        format!("--{action}"),
        "--config".into(),
        c.display().to_string(),
        "--artifact-file".into(),
        artifact.display().to_string(),
    ];
    let sb_dir = sb.dir.path().to_path_buf();
    let client_dirs = sb.client_dirs.clone();
    finishes(&format!("--{action}"), move || {
        let sb = Sandbox {
            dir: tempfile::TempDir::new_in(&sb_dir).expect("tempdir"),
            client_dirs,
            extra_env: Vec::new(),
        };
        std::fs::create_dir(sb.path("tmp")).expect("mkdir tmp");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sb.run(&args)
    })
}

fn assert_timeout_message(r: &Run, port: u16, elapsed: Duration) {
    r.fails_with(
        1,
        &format!(
            "Timed out connecting to 127.0.0.1:{port}: no answer from the database server within the connect timeout of {CONNECT_SECS} s."
        ),
    );
    assert!(
        elapsed >= Duration::from_secs(CONNECT_SECS) - Duration::from_millis(100),
        "gave up before the timeout: {elapsed:?}"
    );
}

fn pg_cfg(port: u16, db: &str) -> Value {
    json!({"username": "app", "password": APP_PW, "host": "127.0.0.1", "port": port,
           "adapter": "postgres", "database": db, "connect_timeout": CONNECT_SECS,
           "lock_timeout": 2})
}

fn maria_cfg(port: u16, db: &str) -> Value {
    json!({"username": "app", "password": APP_PW, "host": "127.0.0.1", "port": port,
           "adapter": "mysql", "database": db, "connect_timeout": CONNECT_SECS,
           "lock_timeout": 2})
}

/// A file that is not ours and must never be called deletable (or be changed).
fn not_ours(sb: &Sandbox) -> PathBuf {
    let p = sb.path("someone-elses-file");
    std::fs::write(&p, "root:x:0:0:root:/root:/bin/bash\n").expect("write");
    p
}

#[test]
fn silent_host_times_out_for_both_adapters_backup_and_restore() {
    let port = listener(0, None);
    for (cfg, clients) in [
        (pg_cfg(port, "appdb"), PG15_BIN),
        (maria_cfg(port, "appdb"), "/usr/bin"),
    ] {
        let sb = Sandbox::new(clients);
        let art = sb.path("db.dump");
        let (r, took) = run_bounded(&sb, "backup", &cfg, &art);
        assert_timeout_message(&r, port, took);
        // The version probe timed out: no artifact, no advice to delete it.
        assert!(!r.stderr.contains(HINT), "{}", r.stderr);
        assert!(!art.exists());

        let theirs = not_ours(&sb);
        let (r, took) = run_bounded(&sb, "restore", &cfg, &theirs);
        assert_timeout_message(&r, port, took);
        assert!(!r.stderr.contains(HINT), "{}", r.stderr);
    }
}

#[test]
fn pg15_server_silent_after_the_version_probe() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    pg.psql(
        "postgres",
        &format!("CREATE ROLE app LOGIN PASSWORD '{APP_PW}'"),
    );
    pg.psql("postgres", "CREATE DATABASE appdb OWNER app");
    let sb = Sandbox::new(PG15_BIN);

    // pg_dump's connection gets no answer; it had created the artifact file: advice given.
    let port = listener(1, Some(pg.port));
    let art = sb.path("db.dump");
    let (r, took) = run_bounded(&sb, "backup", &pg_cfg(port, "appdb"), &art);
    assert_timeout_message(&r, port, took);
    r.fails_with(1, &format!("{HINT}\nexit status 1\nTimed out connecting"));
    assert!(art.exists());

    // A real backup, then a restore whose second connection gets no answer.
    let good = pg_cfg(pg.port, "appdb");
    let (r, _) = run_bounded(&sb, "backup", &good, &art);
    r.ok();
    let port = listener(1, Some(pg.port));
    let (r, took) = run_bounded(&sb, "restore", &pg_cfg(port, "appdb"), &art);
    assert_timeout_message(&r, port, took);
    assert!(!r.stderr.contains(HINT), "{}", r.stderr);
}

#[test]
fn mariadb_server_silent_after_the_version_probe() {
    let m = Maria::start(None);
    m.create_user("app", APP_PW, "appdb", "");
    m.sql(
        "appdb",
        "CREATE TABLE people (id int PRIMARY KEY); INSERT INTO people VALUES (1);",
    );
    let sb = Sandbox::new("/usr/bin");

    // mariadb-dump has no --connect-timeout: it is stopped when it has not connected in time.
    let port = listener(1, Some(m.port));
    let art = sb.path("db.sql");
    let (r, took) = run_bounded(&sb, "backup", &maria_cfg(port, "appdb"), &art);
    assert_timeout_message(&r, port, took);
    assert!(
        r.stderr.contains("-- Connecting to 127.0.0.1"),
        "{}",
        r.stderr
    );

    let good = maria_cfg(m.port, "appdb");
    let art = sb.path("good.sql");
    let (r, _) = run_bounded(&sb, "backup", &good, &art);
    r.ok();
    let port = listener(1, Some(m.port));
    let (r, took) = run_bounded(&sb, "restore", &maria_cfg(port, "appdb"), &art);
    assert_timeout_message(&r, port, took);
    assert!(!r.stderr.contains(HINT), "{}", r.stderr);
}

/// A client session kept open on stdin, whose output lines arrive on a channel.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Session {
    fn start(cmd: &mut Command) -> Session {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn session");
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Session {
            child,
            stdin,
            lines,
        }
    }

    /// Sends `sql` and waits for an output line equal to `marker`. Not a poll: each line is
    /// an event from the reader thread, awaited with what is left of one 30 s deadline.
    fn send_and_wait(&mut self, sql: &str, marker: &str) {
        const LIMIT: Duration = Duration::from_secs(30);
        let stdin = self.stdin.as_mut().expect("open");
        stdin.write_all(sql.as_bytes()).expect("write");
        stdin.flush().expect("flush");
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.trim() == marker => return,
                Ok(_) => {}
                Err(_) => panic!("no {marker:?} from the session within {LIMIT:?}"),
            }
        }
    }

    /// Ends the session (its transaction and locks with it).
    fn close(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

#[test]
fn pg15_restore_blocked_by_a_lock_stops_and_changes_nothing() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    pg.psql(
        "postgres",
        &format!("CREATE ROLE app LOGIN PASSWORD '{APP_PW}'"),
    );
    pg.psql("postgres", "CREATE DATABASE appdb OWNER app");
    pg.psql(
        "appdb",
        "SET ROLE app; CREATE TABLE people (id int PRIMARY KEY, name text); \
         INSERT INTO people SELECT g, 'p' || g FROM generate_series(1, 100) g;",
    );
    let sb = Sandbox::new(PG15_BIN);
    let cfg = pg_cfg(pg.port, "appdb");
    let art = sb.path("db.dump");
    run_bounded(&sb, "backup", &cfg, &art).0.ok();
    pg.psql(
        "appdb",
        "DELETE FROM people WHERE id > 10; UPDATE people SET name = 'changed';",
    );
    let changed = pg.psql("appdb", "SELECT count(*), min(name) FROM people");

    let mut holder = Session::start(
        Command::new(Path::new(PG15_BIN).join("psql"))
            .args(["-X", "-At", "-h"])
            .arg(&pg.data)
            .args(["-p", &pg.port.to_string(), "-U", "postgres", "-d", "appdb"])
            .env_clear()
            .env("PGAPPNAME", "lock-holder"),
    );
    holder.send_and_wait(
        "BEGIN; LOCK TABLE people IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n",
        "locked",
    );
    let (r, took) = run_bounded(&sb, "restore", &cfg, &art);
    r.fails_with(
        1,
        "The restore was blocked for more than 2 s by another session's lock on database \"appdb\" (held by session ",
    )
    .fails_with(1, "user postgres, application lock-holder)")
    .fails_with(1, "Nothing was changed: the restore runs in one transaction, which was rolled back.");
    assert!(!r.stderr.contains(HINT), "{}", r.stderr);
    assert!(took >= Duration::from_secs(2), "stopped early: {took:?}");
    // The other session was left alone; once it ends, the data is as it was before the restore.
    holder.send_and_wait("SELECT 'still';\n", "still");
    holder.close();
    assert_eq!(
        pg.psql("appdb", "SELECT count(*), min(name) FROM people"),
        changed
    );

    // Now the same restore goes through.
    run_bounded(&sb, "restore", &cfg, &art).0.ok();
    assert_eq!(
        pg.psql("appdb", "SELECT count(*), min(name) FROM people"),
        "100|p1"
    );
}

#[test]
fn mariadb_restore_blocked_by_a_table_lock_stops_with_a_clear_message() {
    let m = Maria::start(None);
    m.create_user("app", APP_PW, "appdb", "");
    m.sql(
        "appdb",
        "CREATE TABLE people (id int PRIMARY KEY, name text); \
         INSERT INTO people VALUES (1, 'a'), (2, 'b');",
    );
    let sb = Sandbox::new("/usr/bin");
    let cfg = maria_cfg(m.port, "appdb");
    let art = sb.path("db.sql");
    run_bounded(&sb, "backup", &cfg, &art).0.ok();
    m.sql("appdb", "DELETE FROM people WHERE id = 2");

    let mut holder = Session::start(
        Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", m.data.join("mysqld.sock").display()))
            .args([
                "-u",
                "root",
                "--batch",
                "--skip-column-names",
                "--unbuffered",
                "appdb",
            ])
            .env_clear(),
    );
    holder.send_and_wait("LOCK TABLES people WRITE; SELECT 'locked';\n", "locked");
    let (r, took) = run_bounded(&sb, "restore", &cfg, &art);
    r.fails_with(1, "ERROR 1205")
        .fails_with(
            1,
            "The restore was blocked for more than 2 s by another session's lock on a table of database \"appdb\" and was stopped (ERROR 1205 (HY000) at line ",
        )
        .fails_with(1, "MySQL restores are not transactional");
    assert!(!r.stderr.contains(HINT), "{}", r.stderr);
    assert!(took >= Duration::from_secs(2), "stopped early: {took:?}");
    holder.send_and_wait("SELECT 'still';\n", "still");
    holder.close();
    assert_eq!(m.sql("appdb", "SELECT count(*) FROM people"), "1");

    run_bounded(&sb, "restore", &cfg, &art).0.ok();
    assert_eq!(m.sql("appdb", "SELECT count(*) FROM people"), "2");
}

#[test]
fn restore_of_a_file_we_did_not_create_never_advises_deleting_it() {
    let pg = Pg::start(Path::new(PG15_BIN), None);
    pg.psql(
        "postgres",
        &format!("CREATE ROLE app LOGIN PASSWORD '{APP_PW}'"),
    );
    pg.psql("postgres", "CREATE DATABASE appdb OWNER app");
    let m = Maria::start(None);
    m.create_user("app", APP_PW, "appdb", "");
    for (cfg, clients, needle) in [
        (pg_cfg(pg.port, "appdb"), PG15_BIN, "exit status 1"),
        (maria_cfg(m.port, "appdb"), "/usr/bin", "ERROR 1064"),
    ] {
        let sb = Sandbox::new(clients);
        // A private file, not /etc/passwd itself: other suites on the machine add users
        // while this runs, and the check is that the restore leaves the file as it was.
        let passwd = not_ours(&sb);
        let before = std::fs::read(&passwd).expect("read the file");
        let (r, _) = run_bounded(&sb, "restore", &cfg, &passwd);
        r.fails_with(1, needle);
        assert!(
            !r.stderr.contains("delete the artifact-file"),
            "{}",
            r.stderr
        );
        assert_eq!(std::fs::read(&passwd).expect("read the file"), before);

        // A backup over an existing file that fails before writing: no advice either.
        let theirs = not_ours(&sb);
        let mut bad = cfg.clone();
        bad["tables"] = json!(["lizards"]);
        let (r, _) = run_bounded(&sb, "backup", &bad, &theirs);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            !r.stderr.contains("delete the artifact-file"),
            "{}",
            r.stderr
        );
    }
}
