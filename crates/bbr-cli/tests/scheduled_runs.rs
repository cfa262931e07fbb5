//! The scheduled-run pieces under `deploy/` (issue 14, "Scheduled runs"): the systemd units are
//! checked with `systemd-analyze verify`, and the service's own command lines (ExecStart,
//! ExecStopPost, read from the unit file) are run with an env file the way systemd would run
//! them; the Concourse task scripts are run as Concourse runs them (a working directory holding
//! the declared inputs, params as the only environment, `run.path` + `run.args` of task.yml).
//! Both against the director simulator's sshd VMs and SeaweedFS, checked with the AWS CLI.
//! The pipeline and task YAML are checked against each other and against the task scripts.

mod support;

use bbr_testkit::stores::SeaweedFs;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::deployment::{Deployment, group};
use support::stores::{s3_get, s3_keys, single_artifact};
use support::{Run, Script};

/// Where the unit file expects the wrapper; the tests substitute the repository's copy.
const INSTALLED_WRAPPER_DIR: &str = "/usr/local/lib/bbr/";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn systemd_dir() -> PathBuf {
    repo().join("deploy/systemd")
}

fn concourse_dir() -> PathBuf {
    repo().join("deploy/concourse")
}

/// A PATH with the built `bbr` first (as /usr/local/bin in the unit's PATH).
fn path_with_bbr() -> String {
    let dir = Path::new(env!("CARGO_BIN_EXE_bbr")).parent().unwrap();
    format!("{}:/usr/bin:/bin", dir.display())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Runs `systemd-analyze ARGS`; panics with a clear message when it cannot run at all.
fn systemd_analyze(args: &[&str]) -> Run {
    match Command::new("systemd-analyze")
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => Run(out),
        Err(e) => panic!(
            "systemd-analyze cannot run ({e}): install the systemd package \
             (apt-get install systemd, .ci/install-deps.sh); these unit checks need it"
        ),
    }
}

/// The unit files in a temporary directory, the wrapper path pointing at the repository's
/// script (`verify` checks that every Exec command is an executable file).
fn units_in_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let service = read(&systemd_dir().join("bbr-backup@.service"));
    assert!(service.contains(&format!("{INSTALLED_WRAPPER_DIR}bbr-scheduled-backup")));
    let here = format!("{}/", systemd_dir().display());
    std::fs::write(
        dir.path().join("bbr-backup@.service"),
        service.replace(INSTALLED_WRAPPER_DIR, &here),
    )
    .unwrap();
    std::fs::copy(
        systemd_dir().join("bbr-backup@.timer"),
        dir.path().join("bbr-backup@.timer"),
    )
    .unwrap();
    dir
}

fn verify(dir: &Path) -> Run {
    let service = dir.join("bbr-backup@nightly.service");
    let timer = dir.join("bbr-backup@nightly.timer");
    systemd_analyze(&["verify", service.to_str().unwrap(), timer.to_str().unwrap()])
}

#[test]
fn systemd_units_pass_systemd_analyze_verify_without_a_warning() {
    let version = systemd_analyze(&["--version"]);
    assert_eq!(version.code(), 0, "{}", version.show());

    let dir = units_in_tempdir();
    let run = verify(dir.path());
    assert_eq!(run.code(), 0, "{}", run.show());
    assert_eq!(run.stdout() + &run.stderr(), "", "verify warned");

    // The check is strict: an unknown directive is reported.
    let path = dir.path().join("bbr-backup@.service");
    let mut text = read(&path);
    text.push_str("ProtectEverything=yes\n");
    std::fs::write(&path, text).unwrap();
    let run = verify(dir.path());
    assert!(
        run.stderr().contains("ProtectEverything"),
        "an unknown key is reported: {}",
        run.show()
    );

    // The hardening is real: systemd's own exposure score (0 best, 10 worst).
    let dir = units_in_tempdir();
    let service = dir.path().join("bbr-backup@nightly.service");
    let run = systemd_analyze(&["security", "--offline=true", service.to_str().unwrap()]);
    let score: f64 = run
        .stdout()
        .lines()
        .find_map(|l| l.split("Overall exposure level for").nth(1))
        .and_then(|rest| rest.split(": ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level: {}", run.show()));
    assert!(score <= 2.0, "exposure {score}: {}", run.show());
}

/// `KEY=value` lines of a systemd EnvironmentFile (comments and blank lines skipped).
fn environment_file(path: &Path) -> Vec<(String, String)> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The service's `key=` command line (ExecStart, ExecStopPost), as systemd runs it: the
/// env file and the unit's Environment= as the only environment, in the state directory.
fn service_command(key: &str, env_file: &Path, state: &Path) -> Command {
    let unit = read(&systemd_dir().join("bbr-backup@.service"));
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in bbr-backup@.service"));
    let here = format!("{}/", systemd_dir().display());
    let line = line.replace(INSTALLED_WRAPPER_DIR, &here);
    let mut words = line.split_whitespace();
    let mut c = Command::new(words.next().unwrap());
    c.args(words)
        .env_clear()
        .envs(environment_file(env_file))
        .env("HOME", state)
        .env("PATH", path_with_bbr())
        .env("TZ", "UTC")
        .current_dir(state)
        .stdin(Stdio::null());
    c
}

fn redis_backup_scripts(h: &Deployment, d: &str) {
    h.instance(d, "redis", 0).job("redis").backup_scripts();
}

fn failing_backup(h: &Deployment, d: &str) {
    h.instance(d, "redis", 0).job("redis").script(
        Script::Backup,
        "echo half > \"$BBR_ARTIFACT_DIRECTORY/data\"\nexit 1",
    );
}

fn forget_events(h: &Deployment, d: &str) {
    for vm in h.sim.vms(d) {
        let log = vm.vcap_path("sys/events/log");
        if log.exists() {
            std::fs::remove_file(log).unwrap();
        }
    }
}

fn metadata_keys(keys: &[String]) -> usize {
    keys.iter().filter(|k| k.ends_with("/metadata")).count()
}

#[test]
fn systemd_service_backs_up_to_s3_and_cleans_up_after_a_failed_backup() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "nightly";
    weed.create_bucket(bucket).unwrap();
    let d = "redis-dep";
    let h = Deployment::one(d, vec![group("redis", 1, &[("redis", "redis")])]);
    redis_backup_scripts(&h, d);

    let etc = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let env_file = etc.path().join("nightly.env");
    // Retention and metrics as an operator sets them; `--keep-last 1` must not prune after
    // the failed backup below.
    let metrics = state.path().join("bbr-nightly.prom");
    let env = format!(
        "# as /etc/bbr/nightly.env\nBBR_MODE=deployment\nBOSH_ENVIRONMENT={}\nBOSH_CLIENT={}\n\
         BOSH_CLIENT_SECRET={}\nBOSH_CA_CERT={}\nBBR_DEPLOYMENT={d}\n\
         BBR_ARTIFACT_PATH=s3://{bucket}/{d}\nAWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n\
         AWS_ENDPOINT_URL={}\n",
        h.sim.url(),
        h.sim.username(),
        h.sim.password(),
        h.sim.ca_path().display(),
        weed.access_key_id(),
        weed.secret_access_key(),
        weed.endpoint(),
    ) + &format!(
        "BBR_KEEP=--keep-last 1\nBBR_METRICS_FILE={}\n",
        metrics.display()
    );
    std::fs::write(&env_file, env).unwrap();

    let run = Run(service_command("ExecStart", &env_file, state.path())
        .output()
        .unwrap());
    assert_eq!(run.code(), 0, "{}", run.show());
    let keys = s3_keys(&weed, bucket);
    let (dir, files) = single_artifact(&keys, d, d);
    assert_eq!(files, ["metadata", "redis-0-redis.tar"], "{dir}");
    let text = read(&metrics);
    assert!(text.contains(d), "the metrics name the deployment: {text}");
    // An older complete artifact: a failed backup must not prune it.
    for f in &files {
        let data = s3_get(&weed, bucket, &format!("{d}/{dir}/{f}"));
        weed.put_object(bucket, &format!("{d}/{d}_20200101T020000Z/{f}"), &data)
            .unwrap();
    }
    // ExecStopPost after a success: nothing runs.
    forget_events(&h, d);
    let post = Run(service_command("ExecStopPost", &env_file, state.path())
        .env("SERVICE_RESULT", "success")
        .output()
        .unwrap());
    assert_eq!(post.code(), 0, "{}", post.show());
    assert!(h.events(d).is_empty(), "{:?}", h.events(d));

    // A failing backup script: the backup fails, stores no metadata; ExecStopPost (as
    // systemd runs it, SERVICE_RESULT=exit-code) runs backup-cleanup.
    failing_backup(&h, d);
    let vm = h.instance(d, "redis", 0).vm();
    let run = Run(service_command("ExecStart", &env_file, state.path())
        .output()
        .unwrap());
    assert_ne!(run.code(), 0, "{}", run.show());
    assert_eq!(
        metadata_keys(&s3_keys(&weed, bucket)),
        2,
        "no new metadata, nothing pruned"
    );
    // bbr's error log lands in the service's working directory (its StateDirectory).
    assert!(
        std::fs::read_dir(state.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".err.log")),
        "an error log in the working directory"
    );
    // Leftovers of the failed backup as a killed run would leave them.
    vm.install_file("store/bbr-backup/redis/data", "half done", 0o644)
        .unwrap();
    forget_events(&h, d);
    let post = Run(service_command("ExecStopPost", &env_file, state.path())
        .env("SERVICE_RESULT", "exit-code")
        .output()
        .unwrap());
    assert_eq!(post.code(), 0, "{}", post.show());
    assert!(
        post.stderr().contains("running backup-cleanup"),
        "{}",
        post.show()
    );
    assert!(!vm.exists("store/bbr-backup"), "{}", post.show());
    assert_eq!(h.events(d), ["redis/0 redis post-backup-unlock false"]);
}

// ----- Concourse ---------------------------------------------------------------------------

/// A task's declared inputs, outputs and params (name -> default, `None` for no default), and
/// its `run.path` + `run.args`.
struct Task {
    inputs: Vec<(String, bool)>,
    outputs: Vec<String>,
    params: BTreeMap<String, Option<String>>,
    run: Vec<String>,
}

fn names(list: &Value) -> Vec<&Value> {
    list.as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn task(name: &str) -> Task {
    let path = concourse_dir().join("tasks").join(name).join("task.yml");
    let y = yaml(&path);
    let inputs = names(&y["inputs"])
        .into_iter()
        .map(|i| {
            (
                i["name"].as_str().expect("input name").to_string(),
                i["optional"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let outputs = names(&y["outputs"])
        .into_iter()
        .map(|o| o["name"].as_str().expect("output name").to_string())
        .collect();
    let params = y["params"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let default = match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    };
                    (k.clone(), default)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut run = vec![y["run"]["path"].as_str().expect("run.path").to_string()];
    run.extend(
        names(&y["run"]["args"])
            .into_iter()
            .map(|a| a.as_str().expect("run.args").to_string()),
    );
    Task {
        inputs,
        outputs,
        params,
        run,
    }
}

/// A build's working directory: `bbr-repo` (this repository), `bbr-binary/bbr` (the built
/// bbr) and an empty directory per declared output.
struct Build {
    dir: tempfile::TempDir,
}

impl Build {
    fn new() -> Build {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(repo(), dir.path().join("bbr-repo")).unwrap();
        std::fs::create_dir(dir.path().join("bbr-binary")).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_bbr"), dir.path().join("bbr-binary/bbr")).unwrap();
        Build { dir }
    }

    /// Runs task `name` with `params` (over the task's defaults) as the only environment,
    /// `bbr` not on PATH: the task must use its `bbr-binary` input.
    fn run(&self, name: &str, params: &[(&str, String)]) -> Run {
        let t = task(name);
        for out in &t.outputs {
            std::fs::create_dir_all(self.dir.path().join(out)).unwrap();
        }
        let mut env: BTreeMap<String, String> = t
            .params
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        for (k, v) in params {
            assert!(t.params.contains_key(*k), "{name} declares no param {k}");
            env.insert(k.to_string(), v.clone());
        }
        Run(Command::new(&t.run[0])
            .args(&t.run[1..])
            .env_clear()
            .envs(env)
            .env("PATH", "/usr/bin:/bin")
            .env("TZ", "UTC")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run the task"))
    }
}

#[test]
fn concourse_tasks_back_up_to_s3_clean_up_after_a_failure_and_prune() {
    let weed = SeaweedFs::start().expect("SeaweedFS");
    let bucket = "concourse";
    weed.create_bucket(bucket).unwrap();
    let d = "redis-dep";
    let h = Deployment::one(d, vec![group("redis", 1, &[("redis", "redis")])]);
    redis_backup_scripts(&h, d);
    let ca = read(&h.sim.ca_path());
    let path = format!("s3://{bucket}/{d}");
    let bosh = vec![
        ("BOSH_ENVIRONMENT", h.sim.url().to_string()),
        ("BOSH_CLIENT", h.sim.username().to_string()),
        ("BOSH_CLIENT_SECRET", h.sim.password().to_string()),
        // As a Concourse var holds it: the PEM itself.
        ("BOSH_CA_CERT", ca),
        ("DEPLOYMENT", d.to_string()),
    ];
    let aws = vec![
        ("AWS_ACCESS_KEY_ID", weed.access_key_id().to_string()),
        (
            "AWS_SECRET_ACCESS_KEY",
            weed.secret_access_key().to_string(),
        ),
        ("AWS_ENDPOINT_URL", weed.endpoint()),
    ];
    let backup_params: Vec<(&str, String)> = bosh
        .iter()
        .chain(&aws)
        .cloned()
        .chain([("ARTIFACT_PATH", path.clone())])
        .collect();

    let build = Build::new();
    let run = build.run("bbr-backup", &backup_params);
    assert_eq!(run.code(), 0, "{}", run.show());
    let keys = s3_keys(&weed, bucket);
    let (dir, files) = single_artifact(&keys, d, d);
    assert_eq!(files, ["metadata", "redis-0-redis.tar"]);
    let workdir: Vec<String> = std::fs::read_dir(build.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !workdir.iter().any(|n| n.starts_with(d)),
        "nothing stored on the worker: {workdir:?}"
    );

    // A failed backup, then the on_failure cleanup task.
    failing_backup(&h, d);
    let vm = h.instance(d, "redis", 0).vm();
    let build = Build::new();
    let run = build.run("bbr-backup", &backup_params);
    assert_ne!(run.code(), 0, "{}", run.show());
    vm.install_file("store/bbr-backup/redis/data", "half done", 0o644)
        .unwrap();
    forget_events(&h, d);
    let mut cleanup: Vec<(&str, String)> = bosh.clone();
    cleanup.push(("MODE", "deployment".to_string()));
    let run = build.run("bbr-cleanup", &cleanup);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert!(!vm.exists("store/bbr-backup"));
    assert_eq!(h.events(d), ["redis/0 redis post-backup-unlock false"]);

    // Prune: two older complete copies of the artifact, `--keep-last 1` keeps the newest.
    let objects: Vec<(String, Vec<u8>)> = ["metadata", "redis-0-redis.tar"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                s3_get(&weed, bucket, &format!("{d}/{dir}/{f}")),
            )
        })
        .collect();
    for old in ["20200101T020000Z", "20200102T020000Z"] {
        for (f, data) in &objects {
            weed.put_object(bucket, &format!("{d}/{d}_{old}/{f}"), data)
                .unwrap();
        }
    }
    let mut prune: Vec<(&str, String)> = aws.clone();
    prune.extend([
        ("ARTIFACT_PATH", path.clone()),
        ("DEPLOYMENT", d.to_string()),
        ("KEEP", "--keep-last 1".to_string()),
        ("METRICS_FILE", "metrics/prune.prom".to_string()),
    ]);
    let run = build.run("bbr-prune", &prune);
    assert_eq!(run.code(), 0, "{}", run.show());
    let keys = s3_keys(&weed, bucket);
    let (left, _) = single_artifact(&keys, d, d);
    assert_eq!(left, dir, "the newest stays: {keys:?}");
    let metrics = read(&build.dir.path().join("metrics/prune.prom"));
    assert!(metrics.contains(d), "{metrics}");
}

// ----- pipeline and task YAML -----------------------------------------------------------------

/// Every `task` step of a plan (also inside in_parallel, do, on_failure, ensure, try...).
fn task_steps<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("task") {
                out.push(v);
            }
            for child in m.values() {
                task_steps(child, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| task_steps(c, out)),
        _ => {}
    }
}

/// Every `get` step's resource name in a plan.
fn gets(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(name)) = m.get("get") {
                out.insert(name.clone());
            }
            m.values().for_each(|c| gets(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| gets(c, out)),
        _ => {}
    }
}

/// Upper-case `$NAME` / `${NAME` references of a shell script.
fn script_params(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    for (i, _) in text.match_indices('$') {
        let start = if b.get(i + 1) == Some(&b'{') {
            i + 2
        } else {
            i + 1
        };
        let end = b[start..]
            .iter()
            .position(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_'))
            .map_or(b.len(), |p| start + p);
        if end > start && b[start].is_ascii_uppercase() {
            out.insert(text[start..end].to_string());
        }
    }
    out
}

#[test]
fn pipeline_and_task_yaml_agree_with_each_other_and_with_the_scripts() {
    let pipeline = yaml(&concourse_dir().join("pipeline.yml"));
    let resources: BTreeSet<String> = names(&pipeline["resources"])
        .into_iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    let jobs = names(&pipeline["jobs"]);
    assert!(jobs.len() >= 3, "two deployments and the director");
    let mut used = BTreeSet::new();
    let mut problems = Vec::new();
    for job in &jobs {
        let job_name = job["name"].as_str().unwrap();
        let mut available = BTreeSet::new();
        gets(&job["plan"], &mut available);
        for r in &available {
            if !resources.contains(r) {
                problems.push(format!("{job_name}: get {r} is no resource"));
            }
        }
        let triggered = names(&job["plan"]).iter().any(|s| {
            let mut g = BTreeSet::new();
            gets(s, &mut g);
            g.contains("nightly") && s.to_string().contains("\"trigger\":true")
        });
        if !triggered {
            problems.push(format!("{job_name}: not triggered by the time resource"));
        }
        let mut steps = Vec::new();
        task_steps(&job["plan"], &mut steps);
        for step in steps {
            let name = step["task"].as_str().unwrap();
            let file = step["file"].as_str().expect("task file");
            let (input, rel) = file.split_once('/').unwrap();
            if input != "bbr-repo" || !available.contains(input) {
                problems.push(format!("{job_name}/{name}: {file} is not in a get input"));
            }
            let Some(task_dir) = rel
                .strip_prefix("deploy/concourse/tasks/")
                .and_then(|r| r.strip_suffix("/task.yml"))
            else {
                problems.push(format!("{job_name}/{name}: {file} is not a task of ours"));
                continue;
            };
            assert!(repo().join(rel).is_file(), "{file} exists");
            used.insert(task_dir.to_string());
            let t = task(task_dir);
            // Inputs: every required one is a get of the job (after input_mapping).
            let mapping = step["input_mapping"].as_object();
            for (input, optional) in &t.inputs {
                let source = mapping
                    .and_then(|m| m.get(input))
                    .and_then(Value::as_str)
                    .unwrap_or(input);
                if !optional && !available.contains(source) {
                    problems.push(format!("{job_name}/{name}: input {input} missing"));
                }
            }
            if let Some(m) = mapping {
                for k in m.keys() {
                    if !t.inputs.iter().any(|(i, _)| i == k) {
                        problems.push(format!("{job_name}/{name}: maps undeclared input {k}"));
                    }
                }
            }
            if let Some(m) = step["output_mapping"].as_object() {
                for k in m.keys() {
                    if !t.outputs.contains(k) {
                        problems.push(format!("{job_name}/{name}: maps undeclared output {k}"));
                    }
                }
            }
            // Params: every one passed is declared; every declared one without a default
            // that the script requires (`${NAME:?`) is passed.
            let passed = step["params"].as_object().cloned().unwrap_or_default();
            for k in passed.keys() {
                if !t.params.contains_key(k) {
                    problems.push(format!("{job_name}/{name}: passes undeclared param {k}"));
                }
            }
            let script = read(&repo().join(t.run[2].trim_start_matches("bbr-repo/")));
            for (k, default) in &t.params {
                if default.is_none()
                    && script.contains(&format!("${{{k}:?"))
                    && !passed.contains_key(k)
                {
                    let exempt = name == "bbr-cleanup"; // MODE picks which group is required
                    if !exempt {
                        problems.push(format!("{job_name}/{name}: required param {k} not passed"));
                    }
                }
            }
            if name == "bbr-cleanup" {
                let mode = passed.get("MODE").and_then(Value::as_str).unwrap_or("");
                let need: &[&str] = match mode {
                    "deployment" => &["DEPLOYMENT", "BOSH_ENVIRONMENT"],
                    "director" => &["DIRECTOR_HOST", "DIRECTOR_PRIVATE_KEY"],
                    other => panic!("{job_name}: cleanup MODE {other:?}"),
                };
                for k in need {
                    if !passed.contains_key(*k) {
                        problems.push(format!("{job_name}/{name}: {k} not passed ({mode})"));
                    }
                }
            }
        }
        let failure_cleanup = job.to_string().contains("\"on_failure\"")
            && job["plan"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["on_failure"]["task"] == "bbr-cleanup");
        if !failure_cleanup {
            problems.push(format!(
                "{job_name}: no on_failure bbr-cleanup on the backup"
            ));
        }
    }

    // Every task: run.args names its own script, which reads only declared params.
    let mut all = BTreeSet::new();
    for e in std::fs::read_dir(concourse_dir().join("tasks")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let t = task(&name);
        assert_eq!(t.run[..2], ["bash", "-eu"], "{name}: run as bash -eu");
        let want = format!("bbr-repo/deploy/concourse/tasks/{name}/task.sh");
        assert_eq!(t.run[2], want, "{name}: run.args");
        let script = read(&concourse_dir().join("tasks").join(&name).join("task.sh"));
        for p in script_params(&script) {
            if !t.params.contains_key(&p) && !["PWD", "PATH", "HOME"].contains(&p.as_str()) {
                problems.push(format!(
                    "{name}/task.sh reads {p}, not declared in task.yml"
                ));
            }
        }
        all.insert(name);
    }
    assert_eq!(
        all,
        BTreeSet::from(
            [
                "bbr-backup",
                "bbr-backup-director",
                "bbr-cleanup",
                "bbr-prune"
            ]
            .map(String::from)
        )
    );
    assert_eq!(used, all, "every task is used by the pipeline");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_script_param_scanner_finds_both_forms_and_skips_locals() {
    let found = script_params("a=$FOO; b=${BAR:-x}; c=$lower; d=\"${BAZ_2}\" $1 $@");
    assert_eq!(
        found,
        BTreeSet::from(["BAR", "BAZ_2", "FOO"].map(String::from))
    );
}

/// Runs the wrapper with `action` and exactly `env`, `BBR` a stand-in printing its arguments
/// one a line; returns the run and those lines.
fn wrapper_with_stand_in(action: &str, env: &[(&str, &str)]) -> (Run, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let stand_in = dir.path().join("bbr");
    std::fs::write(&stand_in, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = Run(Command::new(systemd_dir().join("bbr-scheduled-backup"))
        .arg(action)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("BBR", &stand_in)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap());
    let args = run.stdout().lines().map(str::to_string).collect();
    (run, args)
}

#[test]
fn wrapper_passes_each_setting_to_bbr() {
    let deployment = [
        ("BOSH_ENVIRONMENT", "https://10.0.0.6:25555"),
        ("BBR_DEPLOYMENT", "cf"),
        ("BBR_ARTIFACT_PATH", "s3://backups/cf"),
        ("BBR_WITH_MANIFEST", "true"),
        ("BBR_KEEP", "--keep-daily 7 --keep-weekly 4"),
        (
            "BBR_METRICS_FILE",
            "/var/lib/prometheus/node-exporter/bbr-cf.prom",
        ),
        ("BBR_EXTRA_FLAGS", "--script-timeout 2h"),
    ];
    let (run, args) = wrapper_with_stand_in("backup", &deployment);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert_eq!(
        args,
        [
            "deployment",
            "--deployment",
            "cf",
            "--script-timeout",
            "2h",
            "backup",
            "--artifact-path",
            "s3://backups/cf",
            "--with-manifest",
            "--keep-daily",
            "7",
            "--keep-weekly",
            "4",
            "--metrics-file",
            "/var/lib/prometheus/node-exporter/bbr-cf.prom"
        ]
    );

    // Cleanup: nothing after a success; backup-cleanup after anything else.
    let (run, args) = wrapper_with_stand_in(
        "cleanup",
        &[deployment.as_slice(), &[("SERVICE_RESULT", "success")]].concat(),
    );
    assert_eq!((run.code(), args.len()), (0, 0), "{}", run.show());
    for result in ["exit-code", "timeout", "signal"] {
        let (run, args) = wrapper_with_stand_in(
            "cleanup",
            &[deployment.as_slice(), &[("SERVICE_RESULT", result)]].concat(),
        );
        assert_eq!(run.code(), 0, "{}", run.show());
        assert_eq!(
            args,
            [
                "deployment",
                "--deployment",
                "cf",
                "--script-timeout",
                "2h",
                "backup-cleanup"
            ],
            "{result}"
        );
    }

    let director = [
        ("BBR_MODE", "director"),
        ("BBR_DIRECTOR_HOST", "10.0.0.6"),
        ("BBR_DIRECTOR_PRIVATE_KEY", "/etc/bbr/director.pem"),
        ("BBR_KNOWN_HOSTS", "/var/lib/bbr/director/known_hosts"),
        ("BBR_ARTIFACT_PATH", "s3://backups/director"),
    ];
    let (run, args) = wrapper_with_stand_in("backup", &director);
    assert_eq!(run.code(), 0, "{}", run.show());
    assert_eq!(
        args,
        [
            "director",
            "--host",
            "10.0.0.6",
            "--username",
            "jumpbox",
            "--private-key-path",
            "/etc/bbr/director.pem",
            "--known-hosts",
            "/var/lib/bbr/director/known_hosts",
            "backup",
            "--artifact-path",
            "s3://backups/director"
        ]
    );

    // A missing setting is named, and bbr is not run.
    let without: Vec<(&str, &str)> = deployment
        .iter()
        .copied()
        .filter(|(k, _)| *k != "BBR_DEPLOYMENT")
        .collect();
    let (run, args) = wrapper_with_stand_in("backup", &without);
    assert_eq!((run.code(), args.len()), (2, 0), "{}", run.show());
    assert!(
        run.stderr().contains("BBR_DEPLOYMENT is not set"),
        "{}",
        run.show()
    );
    let (run, _) = wrapper_with_stand_in(
        "backup",
        &[deployment.as_slice(), &[("BBR_MODE", "jumpbox")]].concat(),
    );
    assert!(run.stderr().contains("BBR_MODE must be"), "{}", run.show());
}
