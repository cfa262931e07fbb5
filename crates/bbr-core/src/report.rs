//! What the operator sees: log lines at bbr's levels and per-artifact transfer progress.
//! The CLI renders them (`[bbr] YYYY/MM/DD HH:MM:SS LEVEL - msg`, progress bars or
//! `-- N% complete` lines).

/// Log levels, as bbr prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Shown with `--debug` only.
    Debug,
    /// Normal progress.
    Info,
    /// Something odd that does not stop the run.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// The level name as bbr prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Progress of one artifact transfer.
pub trait TransferProgress: Send {
    /// `bytes` more have been moved.
    fn advance(&mut self, bytes: u64);
    /// The transfer ended: `completed` when every byte arrived and the command succeeded,
    /// false when it was cut or failed (progress must then not claim 100%).
    fn finish(&mut self, completed: bool);
}

/// Receives everything a workflow reports.
pub trait Reporter: Send + Sync {
    /// One log line.
    fn log(&self, level: Level, message: &str);

    /// Whether lines at `level` are shown at all, so that a caller can skip the work of
    /// making them (splitting a script's output into DEBUG lines).
    fn wants(&self, _level: Level) -> bool {
        true
    }

    /// A transfer of about `total` bytes starts; `job` and `instance` name it
    /// (`Copying backup for job <job> on <instance> -- N% complete`).
    fn transfer(&self, job: &str, instance: &str, total: u64) -> Box<dyn TransferProgress>;
}

/// Shorthand logging methods.
pub trait ReporterExt {
    /// DEBUG line.
    fn debug(&self, message: impl AsRef<str>);
    /// INFO line.
    fn info(&self, message: impl AsRef<str>);
    /// WARN line.
    fn warn(&self, message: impl AsRef<str>);
    /// ERROR line.
    fn error(&self, message: impl AsRef<str>);
}

impl<R: Reporter + ?Sized> ReporterExt for R {
    fn debug(&self, message: impl AsRef<str>) {
        self.log(Level::Debug, message.as_ref());
    }
    fn info(&self, message: impl AsRef<str>) {
        self.log(Level::Info, message.as_ref());
    }
    fn warn(&self, message: impl AsRef<str>) {
        self.log(Level::Warn, message.as_ref());
    }
    fn error(&self, message: impl AsRef<str>) {
        self.log(Level::Error, message.as_ref());
    }
}

/// A reporter that keeps every line in memory; for tests.
#[derive(Default)]
pub struct MemoryReporter {
    lines: std::sync::Mutex<Vec<(Level, String)>>,
}

impl MemoryReporter {
    /// Every line logged so far.
    pub fn lines(&self) -> Vec<(Level, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// True when some line contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.lines().iter().any(|(_, l)| l.contains(needle))
    }
}

struct NoProgress;

impl TransferProgress for NoProgress {
    fn advance(&mut self, _bytes: u64) {}
    fn finish(&mut self, _completed: bool) {}
}

impl Reporter for MemoryReporter {
    fn log(&self, level: Level, message: &str) {
        if let Ok(mut l) = self.lines.lock() {
            l.push((level, message.to_string()));
        }
    }

    fn transfer(&self, _job: &str, _instance: &str, _total: u64) -> Box<dyn TransferProgress> {
        Box::new(NoProgress)
    }
}
