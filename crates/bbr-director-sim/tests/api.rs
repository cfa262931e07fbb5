//! HTTP-level tests of the director simulator: TLS with the generated CA,
//! `/info`, basic auth, the UAA client-credentials flow and token expiry, the
//! `vms` task flow, manifests, 404s and failure injection.

mod common;

use std::time::Duration;

use bbr_director_sim::{
    AuthMode, DeploymentSpec, DirectorSim, InstanceGroupSpec, JobSpec, SimOptions, TaskKind,
};
use common::{client, get, result, task_id, wait_task};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TWO_GROUPS: &str = "\
deployments:
- name: redis
  instance_groups:
  - name: redis-server
    instances: 2
    jobs:
    - {name: redis, release: redis-release, backup_one_restore_all: true}
  - name: sentinel
    instances: 1
- name: empty
  manifest: |
    name: empty
    instance_groups: []
";

#[test]
fn info_is_public_and_basic_auth_guards_the_rest() {
    let sim = DirectorSim::from_yaml("deployments: []", SimOptions::default()).unwrap();
    let c = client(&sim);
    assert!(sim.url().starts_with("https://127.0.0.1:"));

    let r = c.get(format!("{}/info", sim.url())).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().unwrap();
    assert_eq!(info["user_authentication"]["type"], "basic");
    assert_eq!(info["name"], "bbr-director-sim");
    assert!(info["uuid"].as_str().unwrap().len() == 36);
    assert!(info["version"].as_str().unwrap().contains('.'));

    // The certificate is valid for `localhost` as well.
    let port = sim.addr().port();
    let r = c
        .get(format!("https://localhost:{port}/info"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let r = c.get(format!("{}/deployments", sim.url())).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let r = c
        .get(format!("{}/deployments", sim.url()))
        .basic_auth("admin", Some("wrong"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(format!("{}/deployments", sim.url()))
        .bearer_auth("admin")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = get(&sim, &c, "/deployments");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().unwrap(), json!([]));

    assert_eq!(
        sim.requests(),
        [
            "GET /info",
            "GET /info",
            "GET /deployments",
            "GET /deployments",
            "GET /deployments",
            "GET /deployments",
        ]
    );
    sim.clear_requests();
    assert!(sim.requests().is_empty());
}

#[test]
fn uaa_client_credentials_tokens_work_until_they_expire() {
    let opts = SimOptions::default().auth(AuthMode::uaa(
        "bbr-client",
        "s3cret",
        Duration::from_secs(2),
    ));
    let sim = DirectorSim::with_deployments(vec![DeploymentSpec::new("d")], opts).unwrap();
    let c = client(&sim);

    let info: Value = c
        .get(format!("{}/info", sim.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let uaa = format!("{}/uaa", sim.url());
    assert_eq!(
        info["user_authentication"],
        json!({"type": "uaa", "options": {"url": uaa, "urls": [uaa]}})
    );
    let token_url = format!("{uaa}/oauth/token");

    // Wrong secret: OAuth error JSON.
    let r = c
        .post(&token_url)
        .basic_auth("bbr-client", Some("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let e: Value = r.json().unwrap();
    assert_eq!(e["error"], "unauthorized");
    assert!(e["error_description"].is_string());

    // Unsupported grant.
    let r = c
        .post(&token_url)
        .basic_auth("bbr-client", Some("s3cret"))
        .form(&[("grant_type", "password")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().unwrap()["error"],
        "unsupported_grant_type"
    );

    // Form body.
    let r = c
        .post(&token_url)
        .basic_auth("bbr-client", Some("s3cret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tok: Value = r.json().unwrap();
    assert_eq!(tok["token_type"], "bearer");
    assert_eq!(tok["expires_in"], 2);
    let token = tok["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 3, "JWT-shaped");

    // Query string (as bosh-cli sends it).
    let r = c
        .post(format!("{token_url}?grant_type=client_credentials"))
        .basic_auth("bbr-client", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let token2 = r.json::<Value>().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sim.tokens_issued(), 2);

    let deployments = format!("{}/deployments", sim.url());
    let r = c
        .get(&deployments)
        .header("Authorization", format!("bearer {token}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().unwrap()[0]["name"], "d");
    // Basic auth is not accepted by a UAA director; unknown tokens neither.
    let r = c
        .get(&deployments)
        .basic_auth("bbr-client", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c.get(&deployments).bearer_auth("made-up").send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Expiry by TTL.
    std::thread::sleep(Duration::from_millis(2100));
    let r = c.get(&deployments).bearer_auth(&token).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // ... and on demand.
    let r = c
        .post(&token_url)
        .basic_auth("bbr-client", Some("s3cret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    let fresh = r.json::<Value>().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c.get(&deployments).bearer_auth(&fresh).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    sim.expire_tokens();
    let r = c.get(&deployments).bearer_auth(&fresh).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let _ = token2;
}

#[test]
fn vms_task_redirects_processes_once_and_lists_the_instances() {
    let sim = DirectorSim::from_yaml(TWO_GROUPS, SimOptions::default()).unwrap();
    let c = client(&sim);

    let r = get(&sim, &c, "/deployments/redis/vms?format=full");
    let id = task_id(&r);
    let t: Value = get(&sim, &c, &format!("/tasks/{id}")).json().unwrap();
    assert_eq!(t["id"], id);
    assert_eq!(t["state"], "processing");
    assert_eq!(t["deployment"], "redis");
    assert!(t["description"].is_string());
    assert_eq!(
        result(&sim, &c, id),
        "",
        "no result before the task is done"
    );
    let events = get(&sim, &c, &format!("/tasks/{id}/output?type=event"))
        .text()
        .unwrap();
    for line in events.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
    let t: Value = get(&sim, &c, &format!("/tasks/{id}")).json().unwrap();
    assert_eq!(t["state"], "done");

    let out = result(&sim, &c, id);
    assert!(out.ends_with('\n'));
    let vms: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(vms.len(), 3);
    let expect = [
        ("redis-server", 0, true),
        ("redis-server", 1, false),
        ("sentinel", 0, true),
    ];
    for (vm, (group, index, bootstrap)) in vms.iter().zip(expect) {
        let inst = sim.instance("redis", group, index);
        assert_eq!(vm["job_name"], group);
        assert_eq!(vm["index"], index);
        assert_eq!(vm["bootstrap"], bootstrap);
        assert_eq!(vm["id"], inst.id.as_str());
        assert_eq!(vm["agent_id"], inst.agent_id.as_str());
        assert_eq!(vm["vm_cid"], inst.vm_cid.as_str());
        assert_eq!(vm["job_state"], "running");
        assert_eq!(vm["az"], "z1");
        assert_eq!(vm["ips"], json!([inst.vm.host_arg()]));
        assert_eq!(vm["ips"], json!([sim.reported_ip(&inst.vm)]));
    }
    assert_eq!(vms[0]["processes"][0]["name"], "redis");

    // The bosh-cli sequence is recorded verbatim.
    assert_eq!(
        sim.requests(),
        [
            "GET /deployments/redis/vms?format=full".to_owned(),
            format!("GET /tasks/{id}"),
            format!("GET /tasks/{id}/output?type=result"),
            format!("GET /tasks/{id}/output?type=event"),
            format!("GET /tasks/{id}"),
            format!("GET /tasks/{id}/output?type=result"),
        ]
    );

    // The synchronous form and the task list.
    let plain: Value = get(&sim, &c, "/deployments/redis/vms").json().unwrap();
    assert_eq!(plain.as_array().unwrap().len(), 3);
    assert_eq!(plain[2]["job"], "sentinel");
    let tasks: Value = get(&sim, &c, "/tasks?deployment=redis").json().unwrap();
    assert_eq!(tasks[0]["id"], id);
}

#[test]
fn processing_polls_is_configurable_and_plain_ips_are_available() {
    let d = DeploymentSpec::new("d").group(InstanceGroupSpec::new("g", 1));
    let sim = DirectorSim::with_deployments(
        vec![d],
        SimOptions::default()
            .processing_polls(0)
            .ip_with_port(false),
    )
    .unwrap();
    let c = client(&sim);
    let id = task_id(&get(&sim, &c, "/deployments/d/vms?format=full"));
    let (t, seen) = wait_task(&sim, &c, id);
    assert_eq!(seen, ["done"]);
    assert_eq!(t["state"], "done");
    let vm: Value = serde_json::from_str(result(&sim, &c, id).trim()).unwrap();
    let addr = sim.vm("d", "g", 0).addr().to_string();
    assert_eq!(vm["ips"], json!([addr]));

    let sim3 = DirectorSim::with_deployments(
        vec![DeploymentSpec::new("e")],
        SimOptions::default().processing_polls(3),
    )
    .unwrap();
    let c3 = client(&sim3);
    let id = task_id(&get(&sim3, &c3, "/deployments/e/vms?format=full"));
    let (_, seen) = wait_task(&sim3, &c3, id);
    assert_eq!(seen, ["processing", "processing", "processing", "done"]);
    assert_eq!(result(&sim3, &c3, id), "", "no instances, empty result");
}

#[test]
fn manifests_generated_or_verbatim_and_deployment_list() {
    let custom = DeploymentSpec::new("custom")
        .manifest("name: custom\nfoo: bar\n")
        .group(InstanceGroupSpec::new("db", 0));
    let generated = DeploymentSpec::new("gen").group(
        InstanceGroupSpec::new("web", 0)
            .job(JobSpec::new("nginx", "nginx-release").backup_one_restore_all()),
    );
    let sim =
        DirectorSim::with_deployments(vec![custom, generated], SimOptions::default()).unwrap();
    let c = client(&sim);

    let list: Value = get(&sim, &c, "/deployments").json().unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["custom", "gen"]);
    assert_eq!(list[1]["releases"][0]["name"], "nginx-release");

    let m: Value = get(&sim, &c, "/deployments/custom").json().unwrap();
    assert_eq!(m, json!({"manifest": "name: custom\nfoo: bar\n"}));
    let m: Value = get(&sim, &c, "/deployments/gen").json().unwrap();
    let text = m["manifest"].as_str().unwrap();
    assert_eq!(text, sim.manifest("gen"));
    assert!(text.contains("instance_groups:\n- name: web\n"), "{text}");
    assert!(
        text.contains("  - name: nginx\n    release: nginx-release\n"),
        "{text}"
    );
    assert!(text.contains("backup_one_restore_all: true"), "{text}");
}

#[test]
fn unknown_deployments_and_tasks_are_404_like_a_director() {
    let sim = DirectorSim::with_deployments(vec![], SimOptions::default()).unwrap();
    let c = client(&sim);
    let expected = json!({"code": 70000, "description": "Deployment 'nope' doesn't exist"});
    for r in [
        get(&sim, &c, "/deployments/nope"),
        get(&sim, &c, "/deployments/nope/vms?format=full"),
        common::post_json(
            &sim,
            &c,
            "/deployments/nope/ssh",
            &json!({"command": "setup", "deployment_name": "nope",
                    "target": {"job": "g", "indexes": [], "ids": []},
                    "params": {"user": "bosh_x", "public_key": "ssh-ed25519 AAAA"}}),
        ),
    ] {
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.json::<Value>().unwrap(), expected);
    }
    let r = get(&sim, &c, "/tasks/999");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().unwrap()["code"], 10001);
    // Unauthenticated: 401 before 404.
    let r = c
        .get(format!("{}/deployments/nope", sim.url()))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn injected_http_failures_and_failed_tasks() {
    let d = DeploymentSpec::new("d").group(InstanceGroupSpec::new("g", 1));
    let sim = DirectorSim::with_deployments(vec![d], SimOptions::default()).unwrap();
    let c = client(&sim);

    sim.fail_next("/deployments/d/vms", 500);
    let r = get(&sim, &c, "/deployments/d/vms?format=full");
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.json::<Value>().unwrap()["description"].is_string());
    let r = get(&sim, &c, "/deployments/d/vms?format=full");
    assert_eq!(r.status(), StatusCode::FOUND, "fail_next fires once");

    sim.fail_always("/info", 503);
    for _ in 0..2 {
        let r = c.get(format!("{}/info", sim.url())).send().unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    sim.clear_failures();
    let r = c.get(format!("{}/info", sim.url())).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    sim.fail_task(TaskKind::Vms);
    let id = task_id(&get(&sim, &c, "/deployments/d/vms?format=full"));
    let (t, seen) = wait_task(&sim, &c, id);
    assert_eq!(seen, ["processing", "error"]);
    assert_eq!(t["state"], "error");
    assert!(t["result"].as_str().unwrap().contains("Injected"));
    assert_eq!(result(&sim, &c, id), "");
    let events = get(&sim, &c, &format!("/tasks/{id}/output?type=event"))
        .text()
        .unwrap();
    let last: Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{events}");
}
