//! Integration tests for `bbr_testkit::Vm`: real sshd processes, the system
//! `ssh` client, real `sudo`. Need root and openssh-server/sudo installed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::thread;

use bbr_testkit::{ClientKey, KeyType, Vm, VmOptions};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run a command over SSH and insist that it succeeds; returns stdout.
fn ssh_ok(vm: &Vm, cmd: &str) -> String {
    let out = vm.ssh(cmd).expect("spawn ssh");
    assert!(
        out.status.success(),
        "ssh {cmd:?} on {} failed: {}\nsshd log:\n{}",
        vm.host_arg(),
        stderr(&out),
        vm.log()
    );
    stdout(&out)
}

fn assert_vm_addr(vm: &Vm) {
    let [a, b, _, d] = vm.addr().octets();
    assert_eq!(a, 127, "{}", vm.addr());
    assert!((100..=199).contains(&b), "{}", vm.addr());
    assert!((1..=254).contains(&d), "{}", vm.addr());
    assert_eq!(vm.host_arg(), format!("{}:{}", vm.addr(), vm.port()));
}

#[test]
fn three_concurrent_vms_each_see_only_their_own_jobs() {
    let vms: Vec<Vm> = (0..3)
        .map(|_| thread::spawn(|| Vm::start(VmOptions::default()).expect("start vm")))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();

    let mut hosts: Vec<String> = vms.iter().map(Vm::host_arg).collect();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 3, "addresses must be distinct");
    for (i, vm) in vms.iter().enumerate() {
        assert_vm_addr(vm);
        vm.install_script(&format!("job-{i}"), "backup", "#!/bin/sh\nexit 0\n")
            .unwrap();
    }

    thread::scope(|s| {
        for (i, vm) in vms.iter().enumerate() {
            s.spawn(move || {
                // exactly the client invocation from the brief
                let out = std::process::Command::new("ssh")
                    .args([
                        "-o",
                        "StrictHostKeyChecking=no",
                        "-o",
                        "UserKnownHostsFile=/dev/null",
                    ])
                    .args(["-o", "BatchMode=yes", "-i"])
                    .arg(vm.client_key_path())
                    .arg("-p")
                    .arg(vm.port().to_string())
                    .arg(format!("vcap@{}", vm.addr()))
                    .arg("sudo -n ls /var/vcap/jobs")
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}\n{}", stderr(&out), vm.log());
                assert_eq!(stdout(&out), format!("job-{i}\n"));
                // /var/vcap/store exists in every VM and is empty
                assert_eq!(ssh_ok(vm, "sudo -n ls -A /var/vcap/store"), "");
            });
        }
    });

    // The host's own /var/vcap is untouched by the VMs' trees.
    for i in 0..3 {
        assert!(!Path::new(&format!("/var/vcap/jobs/job-{i}")).exists());
    }
}

#[test]
fn files_written_on_either_side_are_visible_on_the_other() {
    let vm = Vm::start(VmOptions::default()).unwrap();
    assert!(vm.exists("store"));
    assert!(vm.exists("/var/vcap/jobs"));

    // host -> VM
    vm.install_file("store/from-host.txt", "hello from host\n", 0o600)
        .unwrap();
    assert_eq!(
        ssh_ok(&vm, "sudo -n cat /var/vcap/store/from-host.txt"),
        "hello from host\n"
    );

    // VM -> host, through a bbr-style script run with sudo and env vars
    vm.install_script(
        "redis",
        "backup",
        "#!/bin/sh\nset -e\necho \"dump of $(hostname) by $(id -un)\" > \"$BBR_ARTIFACT_DIRECTORY/dump.rdb\"\n",
    )
    .unwrap();
    ssh_ok(&vm, "sudo mkdir -p /var/vcap/store/bbr-backup/redis");
    ssh_ok(
        &vm,
        "sudo BBR_ARTIFACT_DIRECTORY=/var/vcap/store/bbr-backup/redis/ ARTIFACT_DIRECTORY=/var/vcap/store/bbr-backup/redis/ /var/vcap/jobs/redis/bin/bbr/backup",
    );
    let dump = vm
        .read("/var/vcap/store/bbr-backup/redis/dump.rdb")
        .unwrap();
    assert!(dump.ends_with("by root\n"), "{dump:?}");
    assert_eq!(
        vm.vcap_path("store/bbr-backup"),
        vm.vcap_root().join("store/bbr-backup")
    );
    assert_eq!(
        vm.vcap_path("/var/vcap/store/bbr-backup"),
        vm.vcap_path("./store/bbr-backup")
    );

    // script discovery as bbr does it
    assert_eq!(
        ssh_ok(&vm, "sudo sh -c 'find /var/vcap/jobs/*/bin/bbr/* -type f'"),
        "/var/vcap/jobs/redis/bin/bbr/backup\n"
    );
    assert!(!Path::new("/var/vcap/store/bbr-backup/redis/dump.rdb").exists());
}

#[test]
#[should_panic(expected = "..")]
fn vcap_path_rejects_parent_components() {
    let vm = Vm::start(VmOptions::default()).unwrap();
    let _ = vm.vcap_path("store/../../etc/passwd");
}

#[test]
fn user_without_sudo_cannot_sudo() {
    let vm = Vm::start(VmOptions::default().without_sudo()).unwrap();
    assert_eq!(vm.user(), "nosudo");
    assert!(!vm.has_sudo());
    assert_eq!(ssh_ok(&vm, "id -un"), "nosudo\n");
    let out = vm.ssh("sudo -n ls /var/vcap/jobs").unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("a password is required"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stop_kills_the_pid_and_restart_comes_back_on_the_same_port() {
    let mut vm = Vm::start(VmOptions::default()).unwrap();
    let pid = vm.pid().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let (addr, port) = (vm.addr(), vm.port());
    ssh_ok(&vm, "true");

    vm.stop().unwrap();
    assert_eq!(vm.pid(), None);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "sshd {pid} still exists after stop"
    );
    let out = vm.ssh("true").unwrap();
    assert_eq!(
        out.status.code(),
        Some(255),
        "connecting to a stopped VM must fail"
    );
    vm.stop().unwrap(); // idempotent

    vm.restart().unwrap();
    assert_eq!((vm.addr(), vm.port()), (addr, port));
    assert_ne!(vm.pid(), Some(pid));
    ssh_ok(&vm, "true");
}

#[test]
fn drop_stops_sshd_and_removes_the_state_dir() {
    let vm = Vm::start(VmOptions::default()).unwrap();
    let pid = vm.pid().unwrap();
    let root = vm.root().to_path_buf();
    assert!(root.join("sshd_config").exists());
    drop(vm);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    if std::env::var_os("BBR_TESTKIT_KEEP").is_none() {
        assert!(!root.exists());
    }
}

fn strict_ssh(vm: &Vm, known_hosts: &Path) -> Output {
    std::process::Command::new("ssh")
        .arg("-p")
        .arg(vm.port().to_string())
        .arg("-i")
        .arg(vm.client_key_path())
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg(format!("{}@{}", vm.user(), vm.addr()))
        .arg("echo ok")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn known_hosts_line_matches_openssh_for_every_key_type() {
    let dir = tempfile::tempdir().unwrap();
    for (client, host) in [
        (KeyType::Ed25519, KeyType::Ed25519),
        (KeyType::Rsa, KeyType::Ecdsa),
        (KeyType::Ecdsa, KeyType::Rsa),
    ] {
        let vm = Vm::start(VmOptions::new().client_key_type(client).host_key_type(host)).unwrap();
        assert_eq!(vm.client_key().key_type(), client);
        assert!(
            vm.client_key()
                .public_key_line()
                .starts_with(client.ssh_name())
        );
        assert!(vm.host_public_key_line().starts_with(host.ssh_name()));
        let line = vm.known_hosts_line();
        assert!(
            line.starts_with(&format!(
                "[{}]:{} {} AAAA",
                vm.addr(),
                vm.port(),
                host.ssh_name()
            )),
            "{line}"
        );

        let kh = dir.path().join(format!("kh-{client:?}-{host:?}"));
        std::fs::write(&kh, format!("{line}\n")).unwrap();
        let out = strict_ssh(&vm, &kh);
        assert!(
            out.status.success(),
            "{client:?}/{host:?}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "ok\n");

        // Let ssh itself record the key and compare with ours.
        let learned = dir.path().join(format!("learned-{client:?}-{host:?}"));
        let out = std::process::Command::new("ssh")
            .arg("-p")
            .arg(vm.port().to_string())
            .arg("-i")
            .arg(vm.client_key_path())
            .args([
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "BatchMode=yes",
                "-o",
                "HashKnownHosts=no",
            ])
            .args([
                "-o",
                &format!(
                    "HostKeyAlgorithms={}",
                    if host == KeyType::Rsa {
                        "rsa-sha2-512"
                    } else {
                        host.ssh_name()
                    }
                ),
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", learned.display()))
            .arg(format!("{}@{}", vm.user(), vm.addr()))
            .arg("true")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string(&learned).unwrap(),
            format!("{line}\n")
        );
    }
}

#[test]
fn regenerated_host_key_is_detected_as_changed() {
    let mut vm = Vm::start(VmOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let old = vm.known_hosts_line();
    std::fs::write(&kh, format!("{old}\n")).unwrap();
    assert!(strict_ssh(&vm, &kh).status.success());

    let port = vm.port();
    vm.regenerate_host_key().unwrap();
    assert_eq!(vm.port(), port);
    assert_ne!(vm.known_hosts_line(), old);
    let out = strict_ssh(&vm, &kh);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        stderr(&out)
    );

    std::fs::write(&kh, format!("{}\n", vm.known_hosts_line())).unwrap();
    assert!(strict_ssh(&vm, &kh).status.success());
}

#[test]
fn kill_connections_drops_sessions_but_keeps_listening() {
    let vm = Vm::start(VmOptions::default()).unwrap();
    let mut client = vm
        .ssh_command("echo started; exec sudo -n sleep 300")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(client.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "started\n");
    assert_eq!(vm.connection_pids().len(), 1);

    let killed = vm.kill_connections().unwrap();
    assert!(
        killed >= 3,
        "expected [priv], session sshd, sudo/sleep; killed {killed}"
    );
    let status = client.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(255),
        "client must see the connection drop"
    );
    assert!(vm.connection_pids().is_empty());

    // the listener survives and accepts new connections
    assert_eq!(ssh_ok(&vm, "echo again"), "again\n");
}

#[test]
fn one_client_key_can_be_shared_by_several_vms() {
    let key = Arc::new(ClientKey::generate(KeyType::Ed25519).unwrap());
    let a = Vm::start(VmOptions::new().client_key(key.clone())).unwrap();
    let b = Vm::start(VmOptions::new().client_key(key.clone())).unwrap();
    assert_eq!(a.client_key_path(), key.path());
    assert_eq!(b.client_key_path(), key.path());
    assert_ne!(a.host_arg(), b.host_arg());
    assert_eq!(ssh_ok(&a, "echo a"), "a\n");
    assert_eq!(ssh_ok(&b, "echo b"), "b\n");
    assert!(
        key.private_key_pem()
            .unwrap()
            .contains("OPENSSH PRIVATE KEY")
    );
}

#[test]
fn many_parallel_sessions_are_accepted() {
    let vm = Vm::start(VmOptions::default()).unwrap();
    let children: Vec<_> = (0..20)
        .map(|i| {
            vm.ssh_command(&format!("sudo -n echo {i}"))
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), format!("{i}\n"));
    }
}

/// Helper for `leftovers_of_killed_test_processes_are_swept`: started as a
/// separate process (it does nothing unless `BBR_TESTKIT_HELPER` is set).
#[test]
#[ignore = "helper process for leftovers_of_killed_test_processes_are_swept"]
fn helper_process() {
    match std::env::var("BBR_TESTKIT_HELPER").as_deref() {
        Ok("hang") => {
            let vm = Vm::start(VmOptions::default()).unwrap();
            // libtest prints "test helper_process ... " without a newline first.
            println!(
                "\nHELPER-VM {} {} {}",
                vm.pid().unwrap(),
                vm.root().display(),
                vm.client_key_path().parent().unwrap().display()
            );
            loop {
                thread::park();
            }
        }
        Ok("start") => {
            let vm = Vm::start(VmOptions::default()).unwrap();
            println!("STARTED {}", vm.host_arg());
        }
        _ => {}
    }
}

fn run_helper(mode: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BBR_TESTKIT_HELPER", mode)
        .env_remove("BBR_TESTKIT_KEEP")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn leftovers_of_killed_test_processes_are_swept() {
    // A test process that dies without running Drop leaves an orphan sshd...
    let mut hang = run_helper("hang");
    let mut reader = BufReader::new(hang.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("HELPER-VM ") {
        line.clear();
        assert_ne!(
            reader.read_line(&mut line).unwrap(),
            0,
            "helper exited early"
        );
    }
    let mut parts = line.split_whitespace().skip(1);
    let pid: i32 = parts.next().unwrap().parse().unwrap();
    let root = std::path::PathBuf::from(parts.next().unwrap());
    let key_dir = std::path::PathBuf::from(parts.next().unwrap());
    hang.kill().unwrap();
    hang.wait().unwrap();
    assert!(
        bbr_testkit::procs::is_alive(pid),
        "orphan sshd should still run"
    );
    assert!(root.exists());
    assert!(key_dir.exists());

    // ...which the next process that starts a VM stops and removes.
    let out = run_helper("start").wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains("STARTED 127."), "{}", stdout(&out));
    assert!(
        !bbr_testkit::procs::is_alive(pid),
        "orphan sshd {pid} was not swept"
    );
    assert!(!root.exists(), "{} was not removed", root.display());
    assert!(!key_dir.exists(), "{} was not removed", key_dir.display());
}

#[test]
fn authorized_keys_hooks_and_extra_sshd_config() {
    let script_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        script_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let script = script_dir.path().join("forced");
    std::fs::write(
        &script,
        "#!/bin/sh\necho forced:\"$SSH_ORIGINAL_COMMAND\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let vm = Vm::start(
        VmOptions::default().extra_sshd_config(format!("ForceCommand {}", script.display())),
    )
    .unwrap();
    assert_eq!(ssh_ok(&vm, "hello"), "forced:hello\n");
    assert!(
        std::fs::read_to_string(vm.root().join("sshd_config"))
            .unwrap()
            .ends_with(&format!("ForceCommand {}\n", script.display()))
    );

    // A second key for the login user, added and removed through the hooks.
    assert_eq!(vm.authorized_users(), [vm.user()]);
    let other = ClientKey::generate(KeyType::Ed25519).unwrap();
    vm.add_authorized_key(vm.user(), other.public_key_line())
        .unwrap();
    let body = std::fs::read_to_string(vm.authorized_keys_path(vm.user())).unwrap();
    assert_eq!(body.lines().count(), 2);
    assert!(body.ends_with(&format!("{}\n", other.public_key_line())));
    assert!(vm.remove_authorized_keys(vm.user()).unwrap());
    assert!(!vm.remove_authorized_keys(vm.user()).unwrap());
    assert!(vm.authorized_users().is_empty());
    assert!(!vm.ssh("true").unwrap().status.success(), "key removed");
}

/// A root process whose session's connection dropped is re-parented to init, no longer a
/// descendant of sshd; stopping the VM still kills it, since it runs in the VM's namespace.
#[test]
fn stop_kills_what_a_dropped_session_left_running_in_the_vm() {
    let mut vm = Vm::start(VmOptions::default()).unwrap();
    let mut client = vm
        .ssh_command("sudo -n sh -c 'sleep 300 </dev/null >/dev/null 2>&1 & echo $!'")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(client.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    client.wait().unwrap();
    let pid: i32 = line.trim().parse().unwrap();
    let stat = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    let ppid = stat(pid)
        .and_then(|s| {
            s.rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse::<i32>()
                .ok()
        })
        .expect("the sleeper runs after its session ended");
    assert!(
        !vm.connection_pids().contains(&(ppid as u32)),
        "left behind, outside sshd's tree (parent {ppid})"
    );
    vm.stop().unwrap();
    let state = stat(pid).and_then(|s| s.rsplit(')').next()?.trim().chars().next());
    assert!(
        matches!(state, None | Some('Z')),
        "the sleeper was killed with the VM (state {state:?})"
    );
}
