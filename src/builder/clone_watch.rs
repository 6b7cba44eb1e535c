//! Connect and idle timeouts for clones. libgit2's own socket timeouts are process-wide settings
//! that git2 exposes only as `unsafe` functions (and kiln forbids unsafe code), so a clone runs on
//! a thread of its own and is watched from the caller's: the clone marks its phase and every sign
//! of life (a progress callback, a finished step), and once it has been quiet longer than its
//! phase allows the caller gets [`Stall`] and goes on. The quiet thread is left behind, blocked on
//! its socket; every caller (the build Pod's clone step, `kiln build`, `kiln new-build`) ends its
//! process right after a failed clone.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// What a clone is doing, which decides how long it may stay quiet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connecting and listing the remote's refs.
    Connecting = 0,
    /// Receiving objects (and any later connection for a deeper fetch).
    Transferring = 1,
    /// Working on the local disk only (checkout): never timed out.
    Local = 2,
}

/// How long each phase may stay quiet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// From the start of a connection to the remote's list of refs.
    pub(crate) connect: Duration,
    /// Between two signs of life while receiving.
    pub(crate) idle: Duration,
}

/// A clone that stopped answering.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Stall {
    /// No connection or no list of refs within the connect limit.
    #[error("no answer from the server within {}s", .0.as_secs())]
    Connect(Duration),
    /// No data for the idle limit while receiving.
    #[error("no data from the server for {}s", .0.as_secs())]
    Idle(Duration),
    /// The clone's thread ended without a result (it panicked).
    #[error("the clone ended without a result")]
    Lost,
}

/// The phase and the last sign of life of a running clone, shared with its watcher.
#[derive(Debug)]
pub(crate) struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    phase: AtomicU8,
}

impl Activity {
    /// A clone starting to connect now.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            phase: AtomicU8::new(Phase::Connecting as u8),
        })
    }

    /// A sign of life.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Enters `phase` (itself a sign of life).
    pub(crate) fn enter(&self, phase: Phase) {
        self.touch();
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    fn quiet_for(&self, now: Instant) -> (Phase, Duration) {
        let phase = match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Connecting,
            1 => Phase::Transferring,
            _ => Phase::Local,
        };
        let last = self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        (phase, now.saturating_duration_since(last))
    }
}

/// Whether a clone quiet for `quiet` in `phase` has stalled under `limits`.
pub(crate) fn overdue(phase: Phase, quiet: Duration, limits: Limits) -> Option<Stall> {
    match phase {
        Phase::Connecting if quiet > limits.connect => Some(Stall::Connect(limits.connect)),
        Phase::Transferring if quiet > limits.idle => Some(Stall::Idle(limits.idle)),
        _ => None,
    }
}

/// Runs `work` on its own thread and returns its result, or [`Stall`] as soon as `activity`
/// has been quiet longer than `limits` allow (the thread is then left to itself).
pub(crate) fn run<T: Send + 'static>(
    limits: Limits,
    activity: Arc<Activity>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stall> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("git-clone".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|_| Stall::Lost)?;
    let tick = limits
        .connect
        .min(limits.idle)
        .min(Duration::from_millis(250));
    loop {
        match rx.recv_timeout(tick) {
            Ok(value) => return Ok(value),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Stall::Lost),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let (phase, quiet) = activity.quiet_for(Instant::now());
                if let Some(stall) = overdue(phase, quiet, limits) {
                    return Err(stall);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overdue_table() {
        let limits = Limits {
            connect: Duration::from_secs(60),
            idle: Duration::from_secs(120),
        };
        let s = Duration::from_secs;
        for (phase, quiet, want) in [
            (Phase::Connecting, s(59), None),
            (Phase::Connecting, s(61), Some(Stall::Connect(s(60)))),
            (Phase::Transferring, s(61), None),
            (Phase::Transferring, s(121), Some(Stall::Idle(s(120)))),
            (Phase::Local, s(100_000), None),
        ] {
            assert_eq!(overdue(phase, quiet, limits), want, "{phase:?} {quiet:?}");
        }
        assert_eq!(
            Stall::Idle(s(120)).to_string(),
            "no data from the server for 120s"
        );
    }

    #[test]
    fn a_result_comes_back_and_a_quiet_clone_is_given_up() {
        let limits = Limits {
            connect: Duration::from_millis(50),
            idle: Duration::from_millis(50),
        };
        assert_eq!(run(limits, Activity::new(), || 7), Ok(7));
        let (release, wait) = mpsc::channel::<()>();
        let stalled = run(limits, Activity::new(), move || wait.recv().is_ok());
        assert_eq!(stalled, Err(Stall::Connect(limits.connect)));
        drop(release);
        let patient = Limits {
            connect: Duration::from_secs(600),
            idle: Duration::from_secs(600),
        };
        assert_eq!(
            run(patient, Activity::new(), || -> u8 { panic!("lost") }),
            Err(Stall::Lost)
        );
    }
}
