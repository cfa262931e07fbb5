//! The daemon's cron loop (docs/service-backup.md#configuration, `cron_schedule`): sleeps until the
//! next activation of the schedule, starts the job in its own task (runs may overlap, as with
//! robfig's default chain; `exit_if_in_progress` is the only overlap control), and sends an alert
//! when a run fails.
//!
//! [`Scheduler::stop`] stops new activations at once; runs already started are tracked so the
//! shutdown sequence can wait for them (bounded).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts::AlertsClient;
use crate::cron::Schedule;
use crate::data;
use crate::executor::{Job, ServiceInstanceError};
use crate::lager::Logger;

/// Runs a job on a schedule.
#[derive(Debug)]
pub struct Scheduler {
    schedule: Schedule,
    job: Job,
    alerts: Option<Arc<AlertsClient>>,
    logger: Logger,
    stop: CancellationToken,
    runs: TaskTracker,
}

/// What the job wrapper does after a run: alert on failure (daemon only).
pub async fn report_failure(
    result: Result<(), ServiceInstanceError>,
    alerts: Option<&AlertsClient>,
    logger: &Logger,
) {
    let Err(err) = result else { return };
    let Some(alerts) = alerts else {
        logger.info("Alerts not configured.", data! {});
        return;
    };
    logger.info("Sending alert.", data! {});
    let content = format!(
        "A backup run has failed with the following error: {}",
        err.message
    );
    match alerts
        .send_backup_failure(&err.service_instance_id, &content)
        .await
    {
        Ok(()) => logger.info("Sent alert.", data! {}),
        Err(e) => logger.error("error sending service alert", &e, data! {}),
    }
}

impl Scheduler {
    /// A scheduler; nothing runs until [`Scheduler::run`].
    pub fn new(
        schedule: Schedule,
        job: Job,
        alerts: Option<Arc<AlertsClient>>,
        logger: Logger,
    ) -> Self {
        Scheduler {
            schedule,
            job,
            alerts,
            logger,
            stop: CancellationToken::new(),
            runs: TaskTracker::new(),
        }
    }

    /// Stops scheduling new runs (runs in flight continue).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits up to `bound` for runs in flight to finish; whether they all did.
    pub async fn wait_for_runs(&self, bound: Duration) -> bool {
        self.runs.close();
        tokio::time::timeout(bound, self.runs.wait()).await.is_ok()
    }

    /// How many runs are in flight.
    pub fn runs_in_flight(&self) -> usize {
        self.runs.len()
    }

    /// Fires the job at every activation until [`Scheduler::stop`].
    pub async fn run(&self) {
        let mut after = chrono::Utc::now();
        loop {
            let Some(next) = self.schedule.next_after(after) else {
                // Never fires again (e.g. the 30th of February): idle until stopped.
                self.stop.cancelled().await;
                return;
            };
            let wait = (next - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            if self.stop.is_cancelled() {
                return;
            }
            let job = self.job.clone();
            let alerts = self.alerts.clone();
            let logger = self.logger.clone();
            let stopped = self.stop.clone();
            self.runs.spawn(async move {
                let result = job.run().await;
                // A run cut short by the daemon's shutdown is not a backup failure to
                // alert about (the original exits before it could), and a slow alerts
                // endpoint must not hold the shutdown up.
                if !stopped.is_cancelled() {
                    report_failure(result, alerts.as_deref(), &logger).await;
                }
            });
            after = next.max(chrono::Utc::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lager::{LogFormat, Sink};

    // Multi-threaded: the test body blocks its own thread in its wait while the scheduler
    // runs on the runtime's workers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fires_repeatedly_and_stops() {
        let (sink, log) = Sink::memory(LogFormat::Pretty);
        let logger = Logger::new("ServiceBackup", sink);
        let scheduler = Arc::new(Scheduler::new(
            Schedule::parse("* * * * * *").expect("parse"),
            Job::Disabled(logger.clone()),
            None,
            logger,
        ));
        let runner = {
            let s = scheduler.clone();
            tokio::spawn(async move { s.run().await })
        };
        // Every second: two runs take about two seconds; the limit only catches a hang.
        let limit = Duration::from_secs(60);
        bbr_testkit::wait::until("the every-second schedule to fire twice", limit, || {
            log.contents().matches("Backups Disabled").count() >= 2
        });
        scheduler.stop();
        tokio::time::timeout(limit, runner)
            .await
            .expect("the scheduler loop did not return after stop")
            .expect("join");
        assert!(scheduler.wait_for_runs(Duration::from_secs(5)).await);
        let count = log.contents().matches("Backups Disabled").count();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(
            log.contents().matches("Backups Disabled").count(),
            count,
            "no run after stop"
        );
    }

    #[tokio::test]
    async fn failure_without_alerts_is_logged() {
        let (sink, log) = Sink::memory(LogFormat::Pretty);
        let logger = Logger::new("ServiceBackup", sink);
        report_failure(
            Err(ServiceInstanceError {
                message: "x".into(),
                service_instance_id: String::new(),
            }),
            None,
            &logger,
        )
        .await;
        report_failure(Ok(()), None, &logger).await;
        let lines = log.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["message"], "ServiceBackup.Alerts not configured.");
    }
}
