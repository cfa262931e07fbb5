//! SSH-user tests of the director simulator: `setup` really creates a user
//! that logs into the targeted VMs (host key as reported, password-less
//! sudo) and nowhere else, `cleanup` removes it per instance, drop removes
//! leftovers, failure injection, and "Windows" instances.

mod common;

use bbr_director_sim::{DirectorSim, SimOptions, TaskKind};
use bbr_testkit::{ClientKey, KeyType};
use common::{account_exists, bosh_user, client, post_json, result, ssh_as, task_id, wait_task};
use reqwest::StatusCode;
use serde_json::{Value, json};

const YAML: &str = "\
deployments:
- name: redis
  instance_groups:
  - {name: redis-server, instances: 2}
  - {name: other, instances: 1}
";

fn setup_body(group: &str, user: &str, key: &ClientKey) -> Value {
    json!({
        "command": "setup",
        "deployment_name": "redis",
        "target": {"job": group, "indexes": [], "ids": []},
        "params": {"user": user, "public_key": key.public_key_line()},
    })
}

fn cleanup_body(group: &str, id: &str, user: &str) -> Value {
    json!({
        "command": "cleanup",
        "deployment_name": "redis",
        "target": {"job": group, "indexes": [id], "ids": [id]},
        "params": {"user_regex": format!("^{user}")},
    })
}

/// POST, follow, wait; returns (final task, result array).
fn run_ssh(sim: &DirectorSim, body: &Value) -> (Value, Value) {
    let c = client(sim);
    let id = task_id(&post_json(sim, &c, "/deployments/redis/ssh", body));
    let (t, _) = wait_task(sim, &c, id);
    let out = result(sim, &c, id);
    let v = if out.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(out.trim()).unwrap()
    };
    (t, v)
}

#[test]
fn setup_creates_a_sudo_user_on_the_group_and_cleanup_removes_it() {
    let sim = DirectorSim::from_yaml(YAML, SimOptions::default()).unwrap();
    let key = ClientKey::generate(KeyType::Rsa).unwrap();
    let user = bosh_user();
    let scratch = tempfile::tempdir().unwrap();

    let (t, hosts) = run_ssh(&sim, &setup_body("redis-server", &user, &key));
    assert_eq!(t["state"], "done");
    let hosts = hosts.as_array().unwrap().clone();
    assert_eq!(hosts.len(), 2);
    for (n, h) in hosts.iter().enumerate() {
        let inst = sim.instance("redis", "redis-server", n);
        assert_eq!(h["status"], "success");
        assert_eq!(h["command"], "setup");
        assert_eq!(h["job"], "redis-server");
        assert_eq!(h["index"], n);
        assert_eq!(h["id"], inst.id.as_str());
        assert_eq!(h["ip"], sim.reported_ip(&inst.vm));
        assert_eq!(h["host_public_key"], inst.vm.host_public_key_line());
        assert_eq!(h["gateway_user"], "vcap");
        assert!(h["gateway_host"].is_string());

        let out = ssh_as(
            h["ip"].as_str().unwrap(),
            h["host_public_key"].as_str().unwrap(),
            &user,
            key.path(),
            scratch.path(),
            "sudo -n id -u",
        );
        assert!(
            out.status.success(),
            "login as {user} on {}: {}\n{}",
            inst.vm.host_arg(),
            String::from_utf8_lossy(&out.stderr),
            inst.vm.log()
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
        assert_eq!(sim.users_on(&inst.vm), [user.as_str()]);
    }
    assert!(account_exists(&user));
    assert_eq!(sim.temp_users(), [user.as_str()]);

    // Not on the other group's VM.
    let other = sim.vm("redis", "other", 0);
    assert!(sim.users_on(other).is_empty());
    let out = ssh_as(
        &sim.reported_ip(other),
        other.host_public_key_line(),
        &user,
        key.path(),
        scratch.path(),
        "true",
    );
    assert!(!out.status.success(), "login on a VM of another group");

    // Clean up instance 0 only: login refused there, still fine on 1.
    let id0 = sim.instance("redis", "redis-server", 0).id.clone();
    let (t, res) = run_ssh(&sim, &cleanup_body("redis-server", &id0, &user));
    assert_eq!(t["state"], "done");
    assert_eq!(res.as_array().unwrap().len(), 1);
    assert_eq!(res[0]["status"], "success");
    assert_eq!(res[0]["command"], "cleanup");
    assert_eq!(res[0]["id"], id0.as_str());
    let vm0 = sim.vm("redis", "redis-server", 0);
    let vm1 = sim.vm("redis", "redis-server", 1);
    assert!(sim.users_on(vm0).is_empty());
    let refused = ssh_as(
        hosts[0]["ip"].as_str().unwrap(),
        vm0.host_public_key_line(),
        &user,
        key.path(),
        scratch.path(),
        "true",
    );
    assert!(!refused.status.success(), "login after cleanup");
    assert_eq!(sim.users_on(vm1), [user.as_str()]);
    assert!(account_exists(&user), "still on instance 1");

    // Clean up instance 1 (by index, as strings): the account goes too.
    let (t, _) = run_ssh(
        &sim,
        &json!({"command": "cleanup", "deployment_name": "redis",
                "target": {"job": "redis-server", "indexes": ["1"], "ids": []},
                "params": {"user_regex": "^bosh_"}}),
    );
    assert_eq!(t["state"], "done");
    assert!(sim.users_on(vm1).is_empty());
    assert!(!account_exists(&user));
    assert!(sim.temp_users().is_empty());
    let refused = ssh_as(
        hosts[1]["ip"].as_str().unwrap(),
        vm1.host_public_key_line(),
        &user,
        key.path(),
        scratch.path(),
        "true",
    );
    assert!(!refused.status.success());
}

#[test]
fn drop_deletes_accounts_that_were_not_cleaned_up() {
    let key = ClientKey::generate(KeyType::Ed25519).unwrap();
    let user = bosh_user();
    {
        let sim = DirectorSim::from_yaml(YAML, SimOptions::default()).unwrap();
        let (t, hosts) = run_ssh(&sim, &setup_body("other", &user, &key));
        assert_eq!(t["state"], "done");
        assert_eq!(hosts.as_array().unwrap().len(), 1);
        assert!(account_exists(&user));
    }
    assert!(!account_exists(&user), "drop removes the account");
}

#[test]
fn injected_ssh_failures() {
    let sim = DirectorSim::from_yaml(YAML, SimOptions::default()).unwrap();
    let key = ClientKey::generate(KeyType::Ed25519).unwrap();

    // Per-group setup failure: status "failure", no user anywhere in it.
    sim.fail_ssh_setup("redis-server");
    let user = bosh_user();
    let (t, hosts) = run_ssh(&sim, &setup_body("redis-server", &user, &key));
    assert_eq!(t["state"], "done");
    for h in hosts.as_array().unwrap() {
        assert_eq!(h["status"], "failure");
    }
    for vm in sim.vms("redis") {
        assert!(sim.users_on(vm).is_empty());
    }
    assert!(!account_exists(&user));
    // Other groups are unaffected.
    let (_, hosts) = run_ssh(&sim, &setup_body("other", &user, &key));
    assert_eq!(hosts[0]["status"], "success");
    assert_eq!(sim.users_on(sim.vm("redis", "other", 0)), [user.as_str()]);

    // Whole-task failure.
    sim.clear_failures();
    sim.fail_task(TaskKind::SshSetup);
    let user2 = bosh_user();
    let (t, res) = run_ssh(&sim, &setup_body("redis-server", &user2, &key));
    assert_eq!(t["state"], "error");
    assert!(res.is_null());
    assert!(!account_exists(&user2));

    sim.fail_task(TaskKind::SshCleanup);
    let id = sim.instance("redis", "other", 0).id.clone();
    let (t, _) = run_ssh(&sim, &cleanup_body("other", &id, &user));
    assert_eq!(t["state"], "error");
    assert_eq!(sim.users_on(sim.vm("redis", "other", 0)), [user.as_str()]);

    // Unknown group and bad requests.
    sim.clear_failures();
    let (t, _) = run_ssh(&sim, &setup_body("nope", &bosh_user(), &key));
    assert_eq!(t["state"], "error");
    let c = client(&sim);
    let r = post_json(
        &sim,
        &c,
        "/deployments/redis/ssh",
        &json!({"command": "dance"}),
    );
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn windows_instances_answer_the_os_probe() {
    let sim = DirectorSim::from_yaml(
        "- name: mixed\n  instance_groups:\n  - {name: win, instances: 1, os: windows}\n  - {name: lin, instances: 1}\n",
        SimOptions::default(),
    )
    .unwrap();
    let win = sim.vm("mixed", "win", 0);
    let out = win.ssh("echo %OS%").unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Windows_NT");
    let out = win.ssh("sudo -n id -u").unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    let lin = sim.vm("mixed", "lin", 0);
    let out = lin.ssh("echo %OS%").unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "%OS%");
    assert!(sim.manifest("mixed").contains("os: windows2019"));
}
