//! One backup run (docs/service-backup.md#a-run): backup_guid → identifier → in-progress gate →
//! prepare → upload to every destination → size/duration line → cleanup (only after a fully
//! successful upload).
//!
//! Differences from the original, by design: the in-progress gate is the cross-process lock of
//! [`crate::state`]; prepare and cleanup output is logged (bounded, secrets redacted by the
//! sink) as `Perform backup output` / `Cleanup output`; uploads are cancelled through a
//! [`CancellationToken`] on shutdown.
//!
//! With `metrics_file` set, every run that got past startup (failed, rejected as in progress,
//! or successful) ends by updating the metrics file through `bbr-metrics`
//! (docs/service-backup.md#metrics); a failure to write it is logged
//! (`failed to write metrics file`) and does not change the run's result.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bbr_metrics::{Job as MetricsJob, MetricsFile, Outcome, RunMetrics, gauges};

use tokio_util::sync::CancellationToken;

use crate::config::TimeLimit;
use crate::data;
use crate::lager::Logger;
use crate::process::{Output, ProcessError, ProcessManager, split_command};
use crate::state::StateDir;
use crate::upload::{MultiUploader, UploadReport, dir_size};

/// The exact text of the in-progress rejection (logged and returned).
pub const IN_PROGRESS_MESSAGE: &str = "Backup currently in progress, exiting. Another backup will not be able to start until this is completed.";

/// How much child output goes into one log line.
pub const LOGGED_OUTPUT_LIMIT: usize = 4096;

/// A failed run, with the service instance it concerns (for the alert).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServiceInstanceError {
    /// What failed.
    pub message: String,
    /// The identifier, `""` if unknown.
    pub service_instance_id: String,
}

/// The parts of the configuration a run needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSettings {
    /// The uploaded directory.
    pub source_folder: String,
    /// Prepare command (`""`: none).
    pub source_executable: String,
    /// Cleanup command (`""`: none).
    pub cleanup_executable: String,
    /// How long the prepare command may run (`None`: no limit).
    pub source_executable_timeout: Option<TimeLimit>,
    /// How long the cleanup command may run (`None`: no limit).
    pub cleanup_executable_timeout: Option<TimeLimit>,
    /// Identifier command (`""`: none).
    pub service_identifier_executable: String,
    /// Reject overlapping runs.
    pub exit_if_in_progress: bool,
    /// Where each run's metrics go (`None`: nowhere).
    pub metrics_file: Option<PathBuf>,
}

impl RunSettings {
    /// The run settings of a parsed configuration.
    pub fn from_config(config: &crate::config::Config) -> Self {
        RunSettings {
            source_folder: config.source_folder.clone(),
            source_executable: config.source_executable.clone(),
            cleanup_executable: config.cleanup_executable.clone(),
            source_executable_timeout: config.source_executable_timeout.clone(),
            cleanup_executable_timeout: config.cleanup_executable_timeout.clone(),
            service_identifier_executable: config.service_identifier_executable.clone(),
            exit_if_in_progress: config.exit_if_in_progress,
            metrics_file: config.metrics_file.clone(),
        }
    }
}

/// Runs backups.
#[derive(Debug)]
pub struct Executor {
    settings: RunSettings,
    uploader: MultiUploader,
    processes: Arc<ProcessManager>,
    state: Option<StateDir>,
    logger: Logger,
    cancel: CancellationToken,
}

/// What a scheduled or manual trigger runs: a real backup, or the "disabled" stand-in used
/// when there are no destinations (docs/service-backup.md#configuration, `destinations`).
#[derive(Debug, Clone)]
pub enum Job {
    /// No destinations: logs `Backups Disabled`.
    Disabled(Logger),
    /// A real backup.
    Backup(Arc<Executor>),
}

impl Job {
    /// Runs once.
    pub async fn run(&self) -> Result<(), ServiceInstanceError> {
        match self {
            Job::Disabled(logger) => {
                logger.info("Backups Disabled", data! {});
                Ok(())
            }
            Job::Backup(executor) => executor.execute().await,
        }
    }
}

fn log_output(logger: &Logger, action: &str, output: &Output) {
    if let Some(text) = output.summary(LOGGED_OUTPUT_LIMIT) {
        logger.info(action, data! {"output" => text});
    }
}

/// A child's failure as logged: a timeout names the config key of the command, e.g.
/// `source_executable /bin/dump did not finish within its time limit of 6h; ...`.
fn name_timeout(key: &str, e: ProcessError) -> String {
    match e {
        ProcessError::TimedOut { .. } => format!("{key} {e}"),
        other => other.to_string(),
    }
}

impl Executor {
    /// An executor. `state` must be given when `exit_if_in_progress` is set (it holds the
    /// lock); `cancel` is handed to destinations so shutdown aborts uploads.
    pub fn new(
        settings: RunSettings,
        uploader: MultiUploader,
        processes: Arc<ProcessManager>,
        state: Option<StateDir>,
        logger: Logger,
        cancel: CancellationToken,
    ) -> Self {
        Executor {
            settings,
            uploader,
            processes,
            state,
            logger,
            cancel,
        }
    }

    async fn identify(&self, logger: &Logger) -> String {
        let command = &self.settings.service_identifier_executable;
        if command.is_empty() {
            return String::new();
        }
        let args = split_command(command);
        if let Err(e) = std::fs::metadata(&args[0]) {
            logger.error(
                "Service identifier command not found",
                &format!("stat {}: {e}", args[0]),
                data! {},
            );
            return String::new();
        }
        let output = tokio::process::Command::new(&args[0])
            .args(&args[1..])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await;
        match output {
            Err(e) => {
                logger.error("Service identifier command returned error", &e, data! {});
                String::new()
            }
            Ok(out) if !out.status.success() => {
                let err = match out.status.code() {
                    Some(code) => format!("exit status {code}"),
                    None => "signal: killed".to_owned(),
                };
                let mut combined = out.stdout;
                combined.extend_from_slice(&out.stderr);
                let text = String::from_utf8_lossy(&combined).trim().to_owned();
                let data = if text.is_empty() {
                    data! {}
                } else {
                    data! {"output" => text}
                };
                logger.error("Service identifier command returned error", &err, data);
                String::new()
            }
            Ok(out) => {
                let mut combined = out.stdout;
                combined.extend_from_slice(&out.stderr);
                String::from_utf8_lossy(&combined).trim().to_owned()
            }
        }
    }

    /// Runs one backup, then updates the metrics file if one is configured.
    pub async fn execute(&self) -> Result<(), ServiceInstanceError> {
        let started = Instant::now();
        let mut uploaded = None;
        let result = self.run(&mut uploaded).await;
        if let Some(path) = &self.settings.metrics_file {
            self.write_metrics(path, started, &result, uploaded).await;
        }
        result
    }

    /// Records a finished run: success or failure, its duration, and the bytes each
    /// destination stored (0 for all when the run failed before uploading).
    async fn write_metrics(
        &self,
        path: &Path,
        started: Instant,
        result: &Result<(), ServiceInstanceError>,
        uploaded: Option<UploadReport>,
    ) {
        let outcome = if result.is_ok() {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        };
        let mut run = RunMetrics::new(SystemTime::now(), started.elapsed(), outcome);
        let per_destination: Vec<(String, u64)> = match uploaded {
            Some(report) => report
                .destinations
                .into_iter()
                .map(|d| (d.label, d.bytes))
                .collect(),
            None => self.uploader.labels().into_iter().map(|l| (l, 0)).collect(),
        };
        for (label, bytes) in &per_destination {
            run = run.with_labelled_gauge(
                gauges::BYTES_UPLOADED,
                &[("destination", label)],
                *bytes as f64,
            );
        }
        let file = MetricsFile::new(path);
        let written =
            tokio::task::spawn_blocking(move || file.record(MetricsJob::ServiceBackup, &[], &run))
                .await;
        match written {
            Ok(Ok(recorded)) => {
                if let Some(corrupt) = recorded.discarded {
                    self.logger.info(
                        "WARNING: replaced an unreadable metrics file",
                        data! {"error" => corrupt.to_string()},
                    );
                }
            }
            Ok(Err(e)) => self
                .logger
                .error("failed to write metrics file", &e, data! {}),
            Err(e) => self
                .logger
                .error("failed to write metrics file", &e, data! {}),
        }
    }

    async fn run(&self, uploaded: &mut Option<UploadReport>) -> Result<(), ServiceInstanceError> {
        let guid = uuid::Uuid::new_v4().to_string();
        let mut logger = self.logger.with_data(data! {"backup_guid" => guid});
        let identifier = self.identify(&logger).await;
        if !identifier.is_empty() {
            logger = logger.session("WithIdentifier", data! {"identifier" => identifier.clone()});
        }
        let fail = |message: String| ServiceInstanceError {
            message,
            service_instance_id: identifier.clone(),
        };

        let _lock = if self.settings.exit_if_in_progress {
            let Some(state) = &self.state else {
                return Err(fail(
                    "exit_if_in_progress requires a state directory".into(),
                ));
            };
            match state.try_lock(&self.settings.source_folder) {
                Ok(Some(lock)) => Some(lock),
                Ok(None) => {
                    logger.error(IN_PROGRESS_MESSAGE, &IN_PROGRESS_MESSAGE, data! {});
                    return Err(fail(IN_PROGRESS_MESSAGE.to_owned()));
                }
                Err(e) => {
                    logger.error("Could not take the backup lock", &e, data! {});
                    return Err(fail(e.to_string()));
                }
            }
        } else {
            None
        };

        if self.settings.source_executable.is_empty() {
            logger.info(
                "source_executable not provided, skipping performing of backup",
                data! {},
            );
        } else {
            logger.info("Perform backup started", data! {});
            let argv = split_command(&self.settings.source_executable);
            let limit = self.settings.source_executable_timeout.as_ref();
            let (output, result) = self.processes.run_with_limit(&argv, None, limit).await;
            log_output(&logger, "Perform backup output", &output);
            if let Err(e) = result {
                let e = name_timeout("source_executable", e);
                logger.error("Perform backup completed with error", &e, data! {});
                return Err(fail(e));
            }
            logger.info("Perform backup completed successfully", data! {});
        }

        logger.info("Upload backup started", data! {});
        let started = Instant::now();
        let source = Path::new(&self.settings.source_folder);
        let report = self.uploader.upload(source, &logger, &self.cancel).await;
        let upload_result = report.result();
        *uploaded = Some(report);
        if let Err(e) = upload_result {
            logger.error("Upload backup completed with error", &e, data! {});
            return Err(fail(e.to_string()));
        }
        let duration = started.elapsed().as_secs_f64();
        let size = dir_size(source);
        logger.info(
            "Upload backup completed successfully",
            data! {"duration_in_seconds" => duration, "size_in_bytes" => size},
        );

        if self.settings.cleanup_executable.is_empty() {
            logger.info("Cleanup command not provided", data! {});
        } else {
            logger.info("Cleanup started", data! {});
            let argv = split_command(&self.settings.cleanup_executable);
            let limit = self.settings.cleanup_executable_timeout.as_ref();
            let (output, result) = self.processes.run_with_limit(&argv, None, limit).await;
            log_output(&logger, "Cleanup output", &output);
            match result {
                Ok(()) => logger.info("Cleanup completed successfully", data! {}),
                Err(e) => logger.error(
                    "Cleanup completed with error",
                    &name_timeout("cleanup_executable", e),
                    data! {},
                ),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lager::{LogFormat, MemoryLog, Sink};
    use crate::upload::{BoxFuture, UploadError, Uploader};
    use std::sync::Mutex;

    #[derive(Default)]
    struct FakeUploader {
        fail: Option<String>,
        calls: Mutex<usize>,
        delay: Option<std::time::Duration>,
    }

    impl Uploader for Arc<FakeUploader> {
        fn kind(&self) -> &str {
            "fake"
        }
        fn name(&self) -> &str {
            ""
        }
        fn upload<'a>(
            &'a self,
            _source: &'a Path,
            _logger: &'a Logger,
            _cancel: &'a CancellationToken,
        ) -> BoxFuture<'a, Result<u64, UploadError>> {
            Box::pin(async move {
                *self.calls.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                if let Some(d) = self.delay {
                    tokio::time::sleep(d).await;
                }
                match &self.fail {
                    Some(m) => Err(UploadError(m.clone())),
                    None => Ok(200),
                }
            })
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        source: std::path::PathBuf,
        root: std::path::PathBuf,
        log: MemoryLog,
        logger: Logger,
        state: StateDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("source");
        std::fs::create_dir_all(source.join("sub")).expect("mkdir");
        std::fs::write(source.join("a"), vec![b'a'; 150]).expect("write");
        std::fs::write(source.join("sub/b"), vec![b'b'; 50]).expect("write");
        let (sink, log) = Sink::memory(LogFormat::Pretty);
        let state = StateDir::prepare(Some(&dir.path().join("state")), "").expect("state");
        Fixture {
            root: dir.path().to_path_buf(),
            _dir: dir,
            source,
            log,
            logger: Logger::new("ServiceBackup", sink),
            state,
        }
    }

    fn executor(f: &Fixture, settings: RunSettings, uploader: Arc<FakeUploader>) -> Executor {
        Executor::new(
            settings,
            MultiUploader::new(vec![Box::new(uploader)]),
            Arc::new(ProcessManager::default()),
            Some(f.state.clone()),
            f.logger.clone(),
            CancellationToken::new(),
        )
    }

    fn messages(log: &MemoryLog) -> Vec<String> {
        log.lines()
            .iter()
            .map(|l| l["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    fn script(f: &Fixture, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = f.root.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path.display().to_string()
    }

    #[tokio::test]
    async fn full_successful_run_in_order() {
        let f = fixture();
        let ident = script(&f, "ident", "echo '  unit-identifier  '");
        let marker = f.root.join("cleaned");
        let settings = RunSettings {
            source_folder: f.source.display().to_string(),
            source_executable: "echo prepared <ok>".into(),
            cleanup_executable: format!("touch {}", marker.display()),
            service_identifier_executable: format!("{ident} arg1"),
            exit_if_in_progress: false,
            ..RunSettings::default()
        };
        let up = Arc::new(FakeUploader::default());
        executor(&f, settings, up.clone())
            .execute()
            .await
            .expect("run");
        assert!(marker.exists(), "cleanup ran");
        let p = "ServiceBackup.WithIdentifier.";
        assert_eq!(
            messages(&f.log),
            vec![
                format!("{p}Perform backup started"),
                format!("{p}Perform backup output"),
                format!("{p}Perform backup completed successfully"),
                format!("{p}Upload backup started"),
                format!("{p}Upload backup completed successfully"),
                format!("{p}Cleanup started"),
                format!("{p}Cleanup completed successfully"),
            ]
        );
        let lines = f.log.lines();
        let guid = lines[0]["data"]["backup_guid"]
            .as_str()
            .expect("guid")
            .to_owned();
        assert_eq!(guid.len(), 36);
        for line in &lines {
            assert_eq!(line["data"]["identifier"], "unit-identifier");
            assert_eq!(line["data"]["session"], "1");
            assert_eq!(line["data"]["backup_guid"], guid.as_str());
        }
        assert_eq!(lines[1]["data"]["output"], "prepared <ok>\n");
        assert!(f.log.contents().contains("prepared \\u003cok\\u003e"));
        assert_eq!(lines[4]["data"]["size_in_bytes"], 200);
        assert!(lines[4]["data"]["duration_in_seconds"].is_number());
        assert_eq!(*up.calls.lock().unwrap_or_else(|e| e.into_inner()), 1);
    }

    #[tokio::test]
    async fn no_commands_and_no_identifier() {
        let f = fixture();
        let settings = RunSettings {
            source_folder: f.source.display().to_string(),
            ..RunSettings::default()
        };
        executor(&f, settings, Arc::new(FakeUploader::default()))
            .execute()
            .await
            .expect("run");
        assert_eq!(
            messages(&f.log),
            vec![
                "ServiceBackup.source_executable not provided, skipping performing of backup",
                "ServiceBackup.Upload backup started",
                "ServiceBackup.Upload backup completed successfully",
                "ServiceBackup.Cleanup command not provided",
            ]
        );
        assert!(!f.log.contents().contains("identifier"));
    }

    #[tokio::test]
    async fn failing_prepare_stops_the_run() {
        let f = fixture();
        let settings = RunSettings {
            source_folder: f.source.display().to_string(),
            source_executable: "false".into(),
            cleanup_executable: "true".into(),
            ..RunSettings::default()
        };
        let up = Arc::new(FakeUploader::default());
        let err = executor(&f, settings, up.clone())
            .execute()
            .await
            .expect_err("fails");
        assert_eq!(err.message, "exit status 1");
        assert_eq!(err.service_instance_id, "");
        assert_eq!(*up.calls.lock().unwrap_or_else(|e| e.into_inner()), 0);
        let msgs = messages(&f.log);
        assert_eq!(
            msgs.last().map(String::as_str),
            Some("ServiceBackup.Perform backup completed with error")
        );
    }

    #[tokio::test]
    async fn upload_failure_skips_cleanup_and_carries_identifier() {
        let f = fixture();
        let ident = script(&f, "ident", "echo unit-identifier");
        let settings = RunSettings {
            source_folder: f.source.display().to_string(),
            cleanup_executable: "true".into(),
            service_identifier_executable: ident,
            ..RunSettings::default()
        };
        let up = Arc::new(FakeUploader {
            fail: Some("bucket gone".into()),
            ..FakeUploader::default()
        });
        let err = executor(&f, settings, up)
            .execute()
            .await
            .expect_err("fails");
        assert_eq!(
            err,
            ServiceInstanceError {
                message: "bucket gone".into(),
                service_instance_id: "unit-identifier".into()
            }
        );
        let msgs = messages(&f.log);
        assert!(msgs.iter().all(|m| !m.contains("Cleanup")), "{msgs:?}");
        let last = f.log.lines().pop().expect("line");
        assert_eq!(
            last["message"],
            "ServiceBackup.WithIdentifier.Upload backup completed with error"
        );
        assert_eq!(last["data"]["error"], "bucket gone");
        assert_eq!(last["level"], "error");
    }

    #[tokio::test]
    async fn failing_cleanup_does_not_fail_the_run() {
        let f = fixture();
        let settings = RunSettings {
            source_folder: f.source.display().to_string(),
            cleanup_executable: "sh -c exit_3".into(),
            ..RunSettings::default()
        };
        executor(&f, settings, Arc::new(FakeUploader::default()))
            .execute()
            .await
            .expect("cleanup failure is not a run failure");
        assert!(
            messages(&f.log).contains(&"ServiceBackup.Cleanup completed with error".to_owned())
        );
    }

    #[tokio::test]
    async fn identifier_problems_are_logged_and_ignored() {
        let f = fixture();
        let failing = script(&f, "ident-fail", "echo oops; exit 4");
        for (command, action) in [
            (
                "/no/such/identifier".to_owned(),
                "ServiceBackup.Service identifier command not found",
            ),
            (
                failing,
                "ServiceBackup.Service identifier command returned error",
            ),
        ] {
            let settings = RunSettings {
                source_folder: f.source.display().to_string(),
                service_identifier_executable: command,
                ..RunSettings::default()
            };
            executor(&f, settings, Arc::new(FakeUploader::default()))
                .execute()
                .await
                .expect("run");
            let lines = f.log.lines();
            let line = lines.iter().find(|l| l["message"] == action).expect(action);
            assert!(line["data"].get("identifier").is_none());
            assert!(lines.iter().all(|l| l["data"].get("identifier").is_none()));
        }
        let text = f.log.contents();
        assert!(text.contains("\"error\":\"exit status 4\""), "{text}");
    }

    /// How long the overlapping-run test waits for what happens at once unless it hangs.
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

    /// Sends one byte through `fifo` once a reader has it open (opening a FIFO for writing
    /// without blocking fails until then).
    fn release(fifo: &Path) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut writer =
            bbr_testkit::wait::until_some("the prepare step to open its FIFO", LIMIT, || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                    .open(fifo)
                    .ok()
            });
        writer.write_all(b"x").expect("release the prepare step");
    }

    // Multi-threaded: the test body blocks its own thread in its waits while the runs go on
    // on the runtime's workers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlapping_runs_with_exit_if_in_progress() {
        let f = fixture();
        // The first run's prepare step holds until the test sends it a byte through a FIFO,
        // so the second run overlaps it however slowly this machine runs (a fixed sleep
        // would race the second run on a loaded machine).
        let fifo = f.root.join("release");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let settings = RunSettings {
            source_folder: f.source.display().to_string(),
            // `timeout`: a reader left behind by a failed test does not wait for ever.
            source_executable: format!("timeout 300 head -c 1 {}", fifo.display()),
            exit_if_in_progress: true,
            ..RunSettings::default()
        };
        let up = Arc::new(FakeUploader::default());
        let ex = Arc::new(executor(&f, settings, up.clone()));
        let first = {
            let ex = ex.clone();
            tokio::spawn(async move { ex.execute().await })
        };
        bbr_testkit::wait::until("the first run to start its backup", LIMIT, || {
            f.log.contents().contains("Perform backup started")
        });
        let err = tokio::time::timeout(LIMIT, ex.execute())
            .await
            .expect("the second run was not turned away: it waits on a backup of its own")
            .expect_err("rejected");
        assert_eq!(err.message, IN_PROGRESS_MESSAGE);
        release(&fifo);
        tokio::time::timeout(LIMIT, first)
            .await
            .expect("the first run did not end once released")
            .expect("join")
            .expect("first run");
        let text = f.log.contents();
        assert_eq!(text.matches("Perform backup started").count(), 1);
        assert!(text.contains(&format!(
            "\"message\":\"ServiceBackup.{IN_PROGRESS_MESSAGE}\""
        )));
        // Sequential runs are fine.
        let third = {
            let ex = ex.clone();
            tokio::spawn(async move { ex.execute().await })
        };
        release(&fifo);
        tokio::time::timeout(LIMIT, third)
            .await
            .expect("the run after the first did not end once released")
            .expect("join")
            .expect("after the first finished");
        assert_eq!(*up.calls.lock().unwrap_or_else(|e| e.into_inner()), 2);
    }

    #[tokio::test]
    async fn overlapping_runs_without_the_flag_both_upload() {
        let f = fixture();
        let settings = RunSettings {
            source_folder: f.source.display().to_string(),
            ..RunSettings::default()
        };
        let up = Arc::new(FakeUploader {
            delay: Some(std::time::Duration::from_millis(200)),
            ..FakeUploader::default()
        });
        let ex = executor(&f, settings, up.clone());
        let (a, b) = tokio::join!(ex.execute(), ex.execute());
        a.expect("a");
        b.expect("b");
        assert_eq!(*up.calls.lock().unwrap_or_else(|e| e.into_inner()), 2);
    }

    #[tokio::test]
    async fn disabled_job_logs() {
        let (sink, log) = Sink::memory(LogFormat::Legacy);
        Job::Disabled(Logger::new("ServiceBackup", sink))
            .run()
            .await
            .expect("ok");
        assert_eq!(messages(&log), vec!["ServiceBackup.Backups Disabled"]);
    }
}
