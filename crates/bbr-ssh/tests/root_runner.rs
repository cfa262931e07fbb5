//! The root command runner against a real sshd VM: commands share one root process, run at
//! once, return exact bytes and statuses; a lost runner fails only the command it was running
//! and is started again; without sudo the commands fail with sudo's own words.

mod support;

use bbr_core::commands::RootCommand;
use bbr_core::remote::Remote;
use bbr_ssh::{ConnectOptions, SshConnection};
use bbr_testkit::{Vm, VmOptions};
use std::sync::Arc;
use support::{connect, options};

fn root(text: &str) -> RootCommand {
    RootCommand::shell_text(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_commands_run_at_once_in_one_root_process() {
    let vm = Vm::start(VmOptions::default()).unwrap();
    let conn = connect(&vm, true).await;
    let dir = "/var/vcap/sys/arrived";
    // Each command waits until all twenty have started: run one after the other, they
    // would never finish.
    let commands: Vec<RootCommand> = (0..20)
        .map(|i| {
            root(&format!(
                "mkdir -p {dir}; touch {dir}/{i}; n=0; \
                 while [ $(ls {dir} | wc -l) -lt 20 ]; do n=$((n+1)); [ $n -gt 600 ] && exit 9; sleep 0.05; done; \
                 echo \"{i} $(id -u) $PPID $(cat /proc/$PPID/comm) $(wc -c < /proc/$PPID/cmdline)\""
            ))
        })
        .collect();
    let outputs = futures::future::join_all(commands.iter().map(|c| conn.run_as_root(c))).await;
    let mut parents = std::collections::BTreeSet::new();
    for (i, out) in outputs.into_iter().enumerate() {
        let out = out.unwrap();
        assert_eq!(out.exit_code, 0, "{out:?}");
        let text = out.stdout_text();
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(fields[0], i.to_string(), "{text}");
        assert_eq!(fields[1], "0", "runs as root");
        assert_eq!(fields[3], "perl", "started by the runner");
        // The program came on stdin: what sudo logged and `ps` shows is a short bootstrap.
        let cmdline: usize = fields[4].parse().unwrap();
        assert!(cmdline < 300, "runner command line of {cmdline} bytes");
        parents.insert(fields[2].to_string());
    }
    assert_eq!(
        parents.len(),
        1,
        "one runner for the connection: {parents:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_bytes_and_statuses_are_exact() {
    let vm = Vm::start(VmOptions::default()).unwrap();
    let conn = connect(&vm, true).await;
    let out = conn
        .run_as_root(&root(
            "mkdir -p /var/vcap/sys; head -c 3000000 /dev/urandom > /var/vcap/sys/blob; cat /var/vcap/sys/blob; \
             printf 'half a line' >&2; exit 7",
        ))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 7);
    assert_eq!(out.stderr, b"half a line");
    assert_eq!(out.stdout, vm.read_bytes("sys/blob").unwrap());
    // The vocabulary's own commands, as the workflows use them.
    let listed = conn
        .run_as_root(&bbr_core::commands::list_files("/var/vcap/sys"))
        .await
        .unwrap();
    assert!(
        bbr_core::commands::parse_file_list(&listed.stdout).contains(&("./blob".into(), 3_000_000))
    );
    let missing = conn
        .run_as_root(&bbr_core::commands::stat_artifact_directory())
        .await
        .unwrap();
    assert_eq!(missing.exit_code, 1);
    assert!(
        missing.stderr_text().contains("No such file"),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_runner_fails_its_running_command_and_is_started_again() {
    // OpenSSH's default session limit (the test VMs allow more).
    let vm =
        Vm::start(VmOptions::default().extra_sshd_config("Match all\n  MaxSessions 10\n")).unwrap();
    let conn = connect(&vm, true).await;
    let mut runner = conn
        .run_as_root(&root("echo $PPID"))
        .await
        .unwrap()
        .stdout_text();
    // Ten times over: were the runner's channel slot not given back when it goes, the
    // connection would run out of slots and hang below.
    for _ in 0..10 {
        let lost = conn.run_as_root(&root("kill -9 $PPID; sleep 1")).await;
        let err = lost.expect_err("the runner died under the command");
        assert!(err.to_string().contains("outcome is unknown"), "{err}");
        let next = conn
            .run_as_root(&root("echo $PPID"))
            .await
            .unwrap()
            .stdout_text();
        assert_ne!(runner, next, "a new runner");
        runner = next;
    }
    // Ten plain channels asked for at once next to the runner: sshd allows ten sessions
    // (MaxSessions), so one must wait for a slot instead of being refused.
    let commands: Vec<String> = (0..10).map(|i| format!("sleep 0.2; echo {i}")).collect();
    let plain = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        futures::future::join_all(commands.iter().map(|c| conn.run(c))),
    )
    .await
    .expect("channel slots were lost");
    for (i, out) in plain.into_iter().enumerate() {
        assert_eq!(out.unwrap().stdout_text(), format!("{i}\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sudo_root_commands_fail_with_sudos_own_words() {
    let vm = Vm::start(VmOptions::default().without_sudo()).unwrap();
    let conn = connect(&vm, true).await;
    for _ in 0..2 {
        let out = conn
            .run_as_root(&bbr_core::commands::find_scripts())
            .await
            .unwrap();
        assert_eq!(out.exit_code, 1);
        assert!(
            out.stderr_text().contains("a password is required"),
            "{out:?}"
        );
    }
    let plain = conn.run("echo still here").await.unwrap();
    assert_eq!(plain.stdout_text(), "still here\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_perl_each_root_command_gets_its_own_sudo_after_a_warning() {
    let vm = Vm::start(VmOptions::default().hide_program("/usr/bin/perl")).unwrap();
    let warnings = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = warnings.clone();
    let conn = SshConnection::connect(ConnectOptions {
        on_warning: Arc::new(move |w| seen.lock().unwrap().push(w)),
        ..options(&vm, true)
    })
    .await
    .unwrap();
    for _ in 0..3 {
        let out = conn
            .run_as_root(&root("id -u; cat /proc/$PPID/comm"))
            .await
            .unwrap();
        assert_eq!(out.stdout_text(), "0\nsudo\n", "{out:?}");
    }
    let warnings = warnings.lock().unwrap();
    assert_eq!(warnings.len(), 1, "said once: {warnings:?}");
    assert!(
        warnings[0].contains("root command runner did not start")
            && warnings[0].contains("perl")
            && warnings[0].contains("its own sudo"),
        "{}",
        warnings[0]
    );
}
