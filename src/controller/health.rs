//! What `/healthz` reports: a controller task that ended, or a watch failing without a break for
//! longer than the configured time. (`/readyz` says whether the caches have synced.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The liveness of the controller's tasks and watches.
pub(crate) struct Health {
    watch_failure_timeout: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    ended_tasks: Vec<&'static str>,
    failing_since: HashMap<&'static str, Instant>,
}

impl Health {
    /// Reports a watch unhealthy once it has failed continuously for `watch_failure_timeout`.
    pub(crate) fn new(watch_failure_timeout: Duration) -> Self {
        Self {
            watch_failure_timeout,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A guard held by the task `name`: when it is dropped (the task returned, panicked or was
    /// aborted), the controller is unhealthy.
    pub(crate) fn task(self: &Arc<Self>, name: &'static str) -> TaskGuard {
        TaskGuard {
            health: self.clone(),
            name,
        }
    }

    /// Records a failure of the watch `name` (its first failure starts the clock).
    pub(crate) fn watch_failed(&self, name: &'static str, now: Instant) {
        self.state().failing_since.entry(name).or_insert(now);
    }

    /// Records that the watch `name` delivered an event: it is not failing.
    pub(crate) fn watch_ok(&self, name: &'static str) {
        let mut state = self.state();
        if !state.failing_since.is_empty() {
            state.failing_since.remove(name);
        }
    }

    /// What is wrong at `now`; empty when healthy.
    pub(crate) fn problems(&self, now: Instant) -> Vec<String> {
        let state = self.state();
        let mut problems: Vec<String> = state
            .ended_tasks
            .iter()
            .map(|task| format!("the {task} task has stopped"))
            .collect();
        let mut watches: Vec<String> = state
            .failing_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= self.watch_failure_timeout)
            .map(|(watch, since)| {
                format!(
                    "the {watch} watch has failed for {}s",
                    now.duration_since(*since).as_secs()
                )
            })
            .collect();
        watches.sort();
        problems.extend(watches);
        problems
    }
}

/// Marks its task ended when dropped.
pub(crate) struct TaskGuard {
    health: Arc<Health>,
    name: &'static str,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.health.state().ended_tasks.push(self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_when_a_task_ends_or_a_watch_fails_too_long() {
        let health = Arc::new(Health::new(Duration::from_secs(60)));
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let guard = health.task("build controller");
        assert!(health.problems(at(0)).is_empty());

        health.watch_failed("pods", at(0));
        health.watch_failed("pods", at(30));
        assert!(
            health.problems(at(59)).is_empty(),
            "not yet past the timeout"
        );
        assert_eq!(
            health.problems(at(61)),
            ["the pods watch has failed for 61s"]
        );
        health.watch_ok("pods");
        assert!(
            health.problems(at(120)).is_empty(),
            "an event ends the failure"
        );
        health.watch_failed("pods", at(200));
        assert!(
            health.problems(at(230)).is_empty(),
            "the clock starts again"
        );

        drop(guard);
        assert_eq!(
            health.problems(at(230)),
            ["the build controller task has stopped"]
        );
    }
}
