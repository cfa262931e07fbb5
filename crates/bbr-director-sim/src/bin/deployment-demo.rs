//! The deployment-mode half of the README demo: a 3-VM deployment (two `redis` instances
//! and one `cache` instance, each running a real Redis with the release-style scripts of
//! `demo/redis-job`) behind the director simulator; `bbr deployment` backs it up, the data
//! is flushed, `bbr deployment restore` brings it back, and the data is checked.
//!
//! Usage: `deployment-demo <path to bbr> <demo/redis-job directory>` (as root).

use bbr_director_sim::{
    DeploymentSpec, DirectorSim, InstanceGroupSpec, JobSpec, SimOptions, SimSpec,
};
use bbr_testkit::Vm;
use std::path::Path;
use std::process::{Command, ExitCode};

const SCRIPTS: [&str; 7] = [
    "metadata",
    "pre-backup-lock",
    "backup",
    "post-backup-unlock",
    "pre-restore-lock",
    "restore",
    "post-restore-unlock",
];

fn ssh(vm: &Vm, command: &str) -> Result<String, String> {
    let out = vm
        .ssh(command)
        .map_err(|e| format!("ssh to {}: {e}", vm.host_arg()))?;
    if !out.status.success() {
        return Err(format!(
            "`{command}` on {} failed: {}",
            vm.host_arg(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn summary(vm: &Vm, port: u16) -> Result<String, String> {
    ssh(
        vm,
        &format!(
            "echo \"greeting = $(redis-cli -p {port} GET greeting), keys = $(redis-cli -p {port} DBSIZE)\""
        ),
    )
}

fn run(bbr: &Path, job_dir: &Path) -> Result<(), String> {
    let spec = DeploymentSpec::new("redis-demo")
        .group(InstanceGroupSpec::new("redis", 2).job(JobSpec::new("redis", "redis-release")))
        .group(InstanceGroupSpec::new("cache", 1).job(JobSpec::new("redis", "redis-release")));
    println!("== starting the director simulator with deployment redis-demo (3 VMs)");
    let sim = DirectorSim::start(
        SimSpec {
            deployments: vec![spec],
        },
        SimOptions::new(),
    )
    .map_err(|e| format!("starting the director simulator: {e}"))?;
    let vms: Vec<(&Vm, u16, String)> = sim
        .instances("redis-demo")
        .iter()
        .enumerate()
        .map(|(n, i)| (&i.vm, 6391 + n as u16, format!("{}/{}", i.group, i.index)))
        .collect();
    for (vm, port, name) in &vms {
        for script in SCRIPTS {
            let body = std::fs::read_to_string(job_dir.join(script))
                .map_err(|e| format!("{script}: {e}"))?;
            vm.install_script("redis", script, &body)
                .map_err(|e| e.to_string())?;
        }
        let ctl = std::fs::read_to_string(job_dir.join("ctl")).map_err(|e| format!("ctl: {e}"))?;
        vm.install_file("jobs/redis/bin/ctl", ctl, 0o755)
            .map_err(|e| e.to_string())?;
        vm.install_file("jobs/redis/config/port", port.to_string(), 0o644)
            .map_err(|e| e.to_string())?;
        ssh(vm, "sudo -n /var/vcap/jobs/redis/bin/ctl start")?;
        ssh(
            vm,
            &format!(
                "redis-cli -p {port} SET greeting 'hello from {name}' >/dev/null; \
                 for i in $(seq 1 50); do redis-cli -p {port} SET key:$i v$i >/dev/null; done"
            ),
        )?;
        println!("{name}: {}", summary(vm, *port)?);
    }
    let stop_redis = |vms: &[(&Vm, u16, String)]| {
        for (vm, port, _) in vms {
            let _ = ssh(vm, &format!("sudo -n redis-cli -p {port} SHUTDOWN NOSAVE"));
        }
    };
    let result = (|| {
        let work = tempfile::tempdir().map_err(|e| e.to_string())?;
        let bbr_deployment = |args: &[&str]| -> Result<(), String> {
            let status = Command::new(bbr)
                .current_dir(work.path())
                .args([
                    "deployment",
                    "--target",
                    sim.url(),
                    "--username",
                    sim.username(),
                ])
                .args([
                    "--password",
                    sim.password(),
                    "--deployment",
                    "redis-demo",
                    "--ca-cert",
                ])
                .arg(sim.ca_path())
                .args(args)
                .status()
                .map_err(|e| e.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("bbr deployment {args:?} failed: {status}"))
            }
        };
        println!("== bbr deployment backup");
        bbr_deployment(&["backup"])?;
        let artifact = std::fs::read_dir(work.path())
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.is_dir())
            .ok_or("no artifact directory was written")?;
        println!("== the artifact: {}", artifact.display());
        for e in std::fs::read_dir(&artifact)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            println!("   {}", e.file_name().to_string_lossy());
        }
        println!("== damaging the data on every VM");
        for (vm, port, name) in &vms {
            ssh(vm, &format!("redis-cli -p {port} FLUSHALL >/dev/null"))?;
            println!("{name}: {}", summary(vm, *port)?);
        }
        println!("== bbr deployment restore");
        bbr_deployment(&["restore", "--artifact-path", &artifact.to_string_lossy()])?;
        println!("== the data is back");
        for (vm, port, name) in &vms {
            let now = summary(vm, *port)?;
            println!("{name}: {now}");
            if now != format!("greeting = hello from {name}, keys = 51") {
                return Err(format!("{name} does not have its data back"));
            }
        }
        Ok(())
    })();
    stop_redis(&vms);
    result
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(bbr), Some(jobs)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: deployment-demo <path to bbr> <demo/redis-job directory>");
        return ExitCode::from(2);
    };
    match run(Path::new(bbr), Path::new(jobs)) {
        Ok(()) => {
            println!(
                "DEPLOYMENT DEMO OK: 3 VMs backed up through the director, damaged, restored."
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("DEPLOYMENT DEMO FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
