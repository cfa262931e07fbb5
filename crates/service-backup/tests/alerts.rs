//! The daemon sends exactly one CF Notifications alert for a failed run, against local
//! stand-ins for the Cloud Controller, UAA and the notifications service.

mod common;

use std::time::Duration;

use common::http::{Reply, StandIn};
use common::*;
use nix::sys::signal::Signal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_run_sends_one_alert() {
    let uaa = StandIn::start(|_req| Reply::json(200, r#"{"access_token":"tok"}"#)).await;
    let uaa_url = uaa.url();
    let cc = StandIn::start(move |req| {
        if req.path == "/v2/info" {
            Reply::json(200, &format!(r#"{{"token_endpoint":"{uaa_url}"}}"#))
        } else if req.path.ends_with("/spaces") {
            Reply::json(
                200,
                r#"{"total_results":1,"resources":[{"metadata":{"guid":"space-guid"}}]}"#,
            )
        } else {
            Reply::json(
                200,
                r#"{"total_results":1,"resources":[{"metadata":{"guid":"org-guid"}}]}"#,
            )
        }
    })
    .await;
    let notifications = StandIn::start(|_req| Reply::json(200, "{}")).await;

    let s = Scratch::new();
    let src = s.source();
    let first_done = s.path("first-done");
    // The first run fails; later ones block until the daemon is stopped (no more alerts).
    let prepare = s.script(
        "prepare",
        &format!(
            "if [ -e {f} ]; then exec sleep 1000; fi\ntouch {f}\nexit 1",
            f = first_done.display()
        ),
    );
    let ident = s.script("ident", "echo FakeIdentifier");
    let config = s.file(
        "backup.yml",
        &format!(
            r#"source_folder: {src}
source_executable: {prepare}
service_identifier_executable: {ident}
cron_schedule: "* * * * * *"
alerts:
  product_name: SomeDB
  config:
    cloud_controller: {{url: "{cc}", user: admin, password: pw}}
    notifications: {{service_url: "{n}", cf_org: org, cf_space: space, client_id: cid, client_secret: csecret}}
    timeout_seconds: 10
destinations:
{dest}"#,
            src = src.display(),
            prepare = prepare.display(),
            ident = ident.display(),
            cc = cc.url(),
            n = notifications.url(),
            dest = unreachable_s3("x-secret"),
        ),
    );
    let mut daemon = tokio::task::spawn_blocking(move || start(DAEMON, &config))
        .await
        .expect("start");
    let daemon = tokio::task::spawn_blocking(move || {
        daemon.wait_for("ServiceBackup.Sent alert.", Duration::from_secs(20));
        daemon.signal(Signal::SIGTERM);
        let status = daemon.wait_exit(Duration::from_secs(10));
        assert_eq!(status.code(), Some(1));
        daemon
    })
    .await
    .expect("daemon");
    let out = daemon.stdout();
    assert!(out.contains("ServiceBackup.Sending alert."), "{out}");
    assert_eq!(out.matches("Sent alert.").count(), 1, "{out}");

    assert_eq!(cc.requests().len(), 3, "{:#?}", cc.requests());
    assert_eq!(uaa.requests().len(), 2);
    let sent = notifications.requests();
    assert_eq!(sent.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&sent[0].body).expect("json");
    let subject = body["subject"].as_str().expect("subject");
    assert!(
        subject.contains("SomeDB") && subject.contains("Service Backup Failed"),
        "{subject}"
    );
    let text = body["text"].as_str().expect("text");
    assert!(
        text.contains("Alert from SomeDB, service instance FakeIdentifier:"),
        "{text}"
    );
    assert!(
        text.contains("A backup run has failed with the following error: exit status 1"),
        "{text}"
    );
}
