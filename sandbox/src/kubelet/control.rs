//! Signals from the Pod watch loop to a Pod's worker: delete, gone, deadline, shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

/// Why a Pod's containers are being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `activeDeadlineSeconds` passed.
    Deadline,
    /// The Pod has a deletionTimestamp (or was removed).
    Deleting,
    /// The kubelet itself is stopping.
    Shutdown,
}

/// Shared between the watch loop and one Pod worker.
#[derive(Debug)]
pub struct PodControl {
    stop: watch::Sender<Option<Duration>>,
    reason: Mutex<Option<StopReason>>,
    deleting: watch::Sender<bool>,
    gone: AtomicBool,
}

impl Default for PodControl {
    fn default() -> Self {
        PodControl {
            stop: watch::channel(None).0,
            reason: Mutex::new(None),
            deleting: watch::channel(false).0,
            gone: AtomicBool::new(false),
        }
    }
}

impl PodControl {
    /// Asks the worker to stop its containers with this grace period. The first reason is
    /// kept, but deletion still ends a Pod that already failed its deadline.
    pub fn request_stop(&self, reason: StopReason, grace: Duration) {
        {
            let mut current = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
            if current.is_none() {
                *current = Some(reason);
            }
        }
        if reason != StopReason::Deadline {
            self.deleting.send_replace(true);
        }
        self.stop.send_modify(|g| {
            *g = Some(match *g {
                Some(old) => old.min(grace),
                None => grace,
            })
        });
    }

    /// The API object no longer exists: no more writes for this Pod.
    pub fn mark_gone(&self) {
        self.gone.store(true, Ordering::SeqCst);
    }

    /// Whether the API object is gone (or the kubelet is shutting down).
    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }

    /// The first stop reason, if any.
    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver for container waits.
    pub fn stop_signal(&self) -> watch::Receiver<Option<Duration>> {
        self.stop.subscribe()
    }

    /// Waits until deletion (or shutdown) is requested.
    pub async fn deleted(&self) {
        let mut rx = self.deleting.subscribe();
        // The sender lives as long as self, so this only ends when deletion is requested.
        let _ = rx.wait_for(|d| *d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_reason_wins_and_grace_only_shrinks() {
        let c = PodControl::default();
        let rx = c.stop_signal();
        assert_eq!(*rx.borrow(), None);
        c.request_stop(StopReason::Deadline, Duration::from_secs(5));
        assert_eq!(*rx.borrow(), Some(Duration::from_secs(5)));
        assert_eq!(c.reason(), Some(StopReason::Deadline));
        let deleted = tokio::time::timeout(Duration::from_millis(50), c.deleted()).await;
        assert!(deleted.is_err(), "a deadline is not a deletion");
        c.request_stop(StopReason::Deleting, Duration::from_secs(9));
        assert_eq!(*rx.borrow(), Some(Duration::from_secs(5)));
        c.request_stop(StopReason::Deleting, Duration::from_secs(1));
        assert_eq!(*rx.borrow(), Some(Duration::from_secs(1)));
        assert_eq!(c.reason(), Some(StopReason::Deadline));
        tokio::time::timeout(Duration::from_secs(1), c.deleted())
            .await
            .unwrap();
        assert!(!c.is_gone());
        c.mark_gone();
        assert!(c.is_gone());
    }
}
