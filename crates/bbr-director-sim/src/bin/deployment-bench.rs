//! Overhead benchmark for `bbr deployment` (issue: deployment mode): N VMs (default 50)
//! with no-op lock, backup and unlock scripts that only record when they start and end.
//! Reports the whole backup's wall time minus script time, the lock-held window (first lock
//! start to last unlock end) minus script time per VM, and the SSH handshakes bbr made,
//! against what Go bbr's connection-per-command design needs for the same run.
//!
//! `deployment-bench <path to bbr> drain [VMs] [MiB]` instead gives each VM (default 4) an
//! artifact of MiB (default 1024) of incompressible data in 8 files and compares the
//! backup's wall time with the same number of raw `ssh vm 'sudo tar -C dir -c .' | tee file
//! | openssl dgst -sha256` copies run in parallel with the same cipher.
//!
//! `BENCH_TRACE=1` runs bbr with `--debug` and prints each of its lines with its time.
//!
//! Usage: `deployment-bench <path to bbr> [VMs]` or `deployment-bench <path to bbr> drain
//! [VMs] [MiB]` (as root).

use bbr_director_sim::{
    DeploymentSpec, DirectorSim, InstanceGroupSpec, JobSpec, SimOptions, SimSpec,
};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

const SCRIPT: &str = "#!/bin/sh\nmkdir -p /var/vcap/sys\nprintf '%s %s ' \"$(date +%s%N)\" \"$(basename \"$0\")\" >> /var/vcap/sys/bench.log\n[ \"$(basename \"$0\")\" = backup ] && echo x > \"$BBR_ARTIFACT_DIRECTORY/x\"\ndate +%s%N >> /var/vcap/sys/bench.log\n";

/// `bbr deployment` against the simulator for `deployment`, run in `cwd`.
fn bbr_deployment(bbr: &Path, sim: &DirectorSim, deployment: &str, cwd: &Path) -> Command {
    let mut c = Command::new(bbr);
    c.current_dir(cwd)
        .args([
            "deployment",
            "-t",
            sim.url(),
            "-u",
            sim.username(),
            "-p",
            sim.password(),
        ])
        .args(["-d", deployment, "--ca-cert"])
        .arg(sim.ca_path());
    c
}

fn run(bbr: &Path, vms: usize) -> Result<(), String> {
    let spec = DeploymentSpec::new("bench")
        .group(InstanceGroupSpec::new("node", vms).job(JobSpec::new("app", "app-release")));
    let started = Instant::now();
    let sim = DirectorSim::start(
        SimSpec {
            deployments: vec![spec],
        },
        SimOptions::new(),
    )
    .map_err(|e| e.to_string())?;
    println!(
        "{vms} VMs started in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for inst in sim.instances("bench") {
        for s in ["pre-backup-lock", "backup", "post-backup-unlock"] {
            inst.vm
                .install_script("app", s, SCRIPT)
                .map_err(|e| e.to_string())?;
        }
    }
    let logins_before: usize = sim
        .instances("bench")
        .iter()
        .map(|i| i.vm.log().matches("Accepted publickey").count())
        .sum();
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    // BENCH_TRACE=1: run with --debug and print every line with its time, to see where the
    // overhead goes.
    let trace = std::env::var_os("BENCH_TRACE").is_some();
    let mut command = bbr_deployment(bbr, &sim, "bench", work.path());
    if trace {
        command.arg("--debug");
    }
    let mut child = command
        .arg("backup")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Phase banners, timed as they arrive.
    let phases = [
        "Looking for scripts",
        "Running pre-checks",
        "Starting backup of",
        "Running pre-backup-lock scripts",
        "Running backup scripts",
        "Running post-backup-unlock scripts",
        "Finished running post-backup-unlock scripts",
        "Copying backup --",
        "Backup created of",
        "Cleaning up",
    ];
    let mut seen = Vec::new();
    {
        use std::io::BufRead;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.map_err(|e| e.to_string())?;
            if trace {
                eprintln!("{:8.3} {line}", t0.elapsed().as_secs_f64());
            }
            if let Some(p) = phases
                .iter()
                .find(|p| line.contains(*p) && !seen.iter().any(|(s, _)| s == *p))
            {
                seen.push((p.to_string(), t0.elapsed().as_secs_f64()));
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let wall = t0.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("bbr failed: {status}"));
    }
    for (phase, at) in &seen {
        println!("  {at:7.3}s  {phase}");
    }
    let mut script_total = 0f64;
    let mut first_lock = u128::MAX;
    let mut last_unlock = 0u128;
    let mut lock_window_scripts = 0f64;
    for inst in sim.instances("bench") {
        let log = inst.vm.read("sys/bench.log").map_err(|e| e.to_string())?;
        for line in log.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(s), Some(name), Some(e)) = (f.first(), f.get(1), f.get(2)) else {
                continue;
            };
            let (s, e): (u128, u128) = (
                s.parse().map_err(|_| line.to_string())?,
                e.parse().map_err(|_| line.to_string())?,
            );
            let secs = (e - s) as f64 / 1e9;
            script_total += secs;
            lock_window_scripts += secs;
            if *name == "pre-backup-lock" {
                first_lock = first_lock.min(s);
            }
            if *name == "post-backup-unlock" {
                last_unlock = last_unlock.max(e);
            }
        }
    }
    let logins: usize = sim
        .instances("bench")
        .iter()
        .map(|i| i.vm.log().matches("Accepted publickey").count())
        .sum::<usize>()
        - logins_before;
    let window = (last_unlock - first_lock) as f64 / 1e9;
    // Scripts run 10 at a time, so their wall-clock share is about their total / 10.
    let script_wall = script_total / 10.0;
    println!(
        "backup of {vms} VMs: wall {wall:.3}s; scripts {script_total:.3}s in total (~{script_wall:.3}s of wall time at 10 in parallel)"
    );
    println!(
        "wall time minus script time: {:.3}s (target < 2 s)",
        wall - script_wall
    );
    println!(
        "lock held from first lock to last unlock: {window:.3}s; minus script time: {:.1} ms per VM (target < 10 ms)",
        ((window - lock_window_scripts / 10.0).max(0.0) / vms as f64) * 1000.0
    );
    // Go bbr per VM with one job: find, metadata-less discovery, echo %OS%, stat marker, lock,
    // mkdir, backup, unlock, du -sh, du -s, tar, shasum, rm job dir, rm marker: 14 commands,
    // each its own TCP connection and SSH handshake.
    println!(
        "SSH handshakes: bbr {logins} ({} per VM); Go bbr's design: about {} (14 per VM)",
        logins / vms.max(1),
        14 * vms
    );
    Ok(())
}

fn drain(bbr: &Path, vms: usize, mib: usize) -> Result<(), String> {
    let spec = DeploymentSpec::new("drain")
        .group(InstanceGroupSpec::new("node", vms).job(JobSpec::new("data", "data-release")));
    let sim = DirectorSim::start(
        SimSpec {
            deployments: vec![spec],
        },
        SimOptions::new(),
    )
    .map_err(|e| e.to_string())?;
    let per_file = mib / 8;
    for inst in sim.instances("drain") {
        let dir = inst.vm.vcap_path("store/bench-data");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for f in 0..8 {
            let status = Command::new("openssl")
                .args(["rand", "-out"])
                .arg(dir.join(format!("part-{f}")))
                .arg((per_file * 1024 * 1024).to_string())
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err("openssl rand failed".into());
            }
        }
        inst.vm
            .install_script(
                "data",
                "backup",
                "#!/bin/sh\ncp -al /var/vcap/store/bench-data/. \"$BBR_ARTIFACT_DIRECTORY\"\n",
            )
            .map_err(|e| e.to_string())?;
    }
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sync = || {
        let _ = Command::new("sync").status();
    };
    let mut baseline = Vec::new();
    let mut ours = Vec::new();
    for round in 0..3 {
        sync();
        let t = Instant::now();
        let copies: Vec<_> = sim
            .instances("drain")
            .iter()
            .enumerate()
            .map(|(n, inst)| {
                let vm = &inst.vm;
                let pipeline = format!(
                    "ssh -q -c aes128-gcm@openssh.com -i {} -p {} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null {}@{} 'sudo -n tar -C /var/vcap/store/bench-data -c .' | tee {}/raw-{n}.tar | openssl dgst -sha256 >/dev/null",
                    vm.client_key_path().display(),
                    vm.port(),
                    vm.user(),
                    vm.addr(),
                    work.path().display()
                );
                Command::new("bash").args(["-o", "pipefail", "-c", &pipeline]).spawn()
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for mut c in copies {
            let status = c.wait().map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("raw copy failed: {status}"));
            }
        }
        baseline.push(t.elapsed().as_secs_f64());
        sync();
        let out_dir = work.path().join(format!("bbr-{round}"));
        std::fs::create_dir(&out_dir).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let out = bbr_deployment(bbr, &sim, "drain", work.path())
            .args(["backup", "-a"])
            .arg(&out_dir)
            .output()
            .map_err(|e| e.to_string())?;
        ours.push(t.elapsed().as_secs_f64());
        if !out.status.success() {
            return Err(format!(
                "bbr failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let _ = std::fs::remove_dir_all(&out_dir);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (b, o) = (median(&mut baseline), median(&mut ours));
    let total = (vms * mib) as f64;
    println!(
        "{vms} VMs x {mib} MiB, medians of 3: raw ssh|tee|openssl in parallel {b:.2}s ({:.0} MiB/s), bbr deployment backup {o:.2}s ({:.0} MiB/s), ratio {:.3}",
        total / b,
        total / o,
        o / b
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(bbr) = args.get(1) else {
        eprintln!("usage: deployment-bench <path to bbr> [VMs] | <path to bbr> drain [VMs] [MiB]");
        return ExitCode::from(2);
    };
    if args.get(2).map(String::as_str) == Some("drain") {
        let vms = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(4);
        let mib = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(1024);
        return match drain(Path::new(bbr), vms, mib) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("benchmark failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let vms = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(50);
    match run(Path::new(bbr), vms) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}
