//! A stop request (SIGTERM) shared by everything in a run. Once raised, running lock, backup
//! and restore scripts are killed and the workflow takes its unlock-and-clean-up path.

use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A clonable stop flag with a future that completes when it is raised.
#[derive(Clone)]
pub struct StopSignal {
    raised: Arc<AtomicBool>,
    sender: Arc<Mutex<Option<oneshot::Sender<()>>>>,
    receiver: Shared<oneshot::Receiver<()>>,
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl StopSignal {
    /// A signal that has not been raised.
    pub fn new() -> Self {
        let (tx, rx) = oneshot::channel();
        Self {
            raised: Arc::new(AtomicBool::new(false)),
            sender: Arc::new(Mutex::new(Some(tx))),
            receiver: rx.shared(),
        }
    }

    /// Raises the signal (idempotent).
    pub fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        if let Some(tx) = self.sender.lock().ok().and_then(|mut s| s.take()) {
            let _ = tx.send(());
        }
    }

    /// True once raised.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Completes when the signal is raised.
    pub async fn raised(&self) {
        let _ = self.receiver.clone().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn raise_wakes_waiters() {
        let s = StopSignal::new();
        let c = s.clone();
        let waiter = tokio::spawn(async move { c.raised().await });
        assert!(!s.is_raised());
        s.raise();
        s.raise();
        waiter.await.unwrap();
        assert!(s.is_raised());
    }
}
