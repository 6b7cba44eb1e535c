//! Run policies (pure): which New builds of one BuildConfig may start now, and which queued builds
//! SerialLatestOnly cancels (OpenShift's `pkg/build/controller/policy`).

use crate::api::{BuildPhase, RunPolicy};

/// What the run policy needs to know of one build of a BuildConfig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BuildView {
    /// The Build's name.
    pub(crate) name: String,
    /// Its number within the BuildConfig.
    pub(crate) number: i64,
    /// Its phase.
    pub(crate) phase: BuildPhase,
    /// The run policy snapshotted when it was created.
    pub(crate) policy: RunPolicy,
    /// Cancellation was requested.
    pub(crate) cancel_requested: bool,
}

/// The run policy's verdict for one BuildConfig.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// New builds to cancel (cancel requested, or superseded under SerialLatestOnly).
    pub(crate) cancel: Vec<String>,
    /// New builds to start now, lowest number first.
    pub(crate) start: Vec<String>,
}

/// Decides, from every build of one BuildConfig, which New builds start and which are cancelled.
pub(crate) fn decide(builds: &[BuildView]) -> Decision {
    let mut decision = Decision::default();
    let mut queued: Vec<&BuildView> = builds
        .iter()
        .filter(|b| b.phase == BuildPhase::New)
        .collect();
    queued.sort_by_key(|b| b.number);
    // Cancellation requests of queued builds are honoured first.
    decision.cancel.extend(
        queued
            .iter()
            .filter(|b| b.cancel_requested)
            .map(|b| b.name.clone()),
    );
    queued.retain(|b| !b.cancel_requested);
    // SerialLatestOnly: the newest queued build supersedes every older queued one.
    if let Some(latest) = queued
        .last()
        .filter(|b| b.policy == RunPolicy::SerialLatestOnly)
    {
        let latest = latest.number;
        decision.cancel.extend(
            queued
                .iter()
                .filter(|b| b.number < latest)
                .map(|b| b.name.clone()),
        );
        queued.retain(|b| b.number == latest);
    }
    let active: Vec<&BuildView> = builds
        .iter()
        .filter(|b| matches!(b.phase, BuildPhase::Pending | BuildPhase::Running))
        .collect();
    let Some(next) = queued.first() else {
        return decision;
    };
    match next.policy {
        RunPolicy::Parallel => {
            if active.iter().all(|b| b.policy == RunPolicy::Parallel) {
                // Parallel builds start together, up to the first queued Serial one.
                decision.start.extend(
                    queued
                        .iter()
                        .take_while(|b| b.policy == RunPolicy::Parallel)
                        .map(|b| b.name.clone()),
                );
            }
        }
        RunPolicy::Serial | RunPolicy::SerialLatestOnly => {
            if active.is_empty() {
                decision.start.push(next.name.clone());
            }
        }
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use BuildPhase::*;
    use RunPolicy::*;

    fn b(number: i64, phase: BuildPhase, policy: RunPolicy) -> BuildView {
        BuildView {
            name: format!("bc-{number}"),
            number,
            phase,
            policy,
            cancel_requested: false,
        }
    }

    fn names(v: &[i64]) -> Vec<String> {
        v.iter().map(|n| format!("bc-{n}")).collect()
    }

    #[test]
    fn run_policy_table() {
        let mut cancelled = b(3, New, Serial);
        cancelled.cancel_requested = true;
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, Vec<BuildView>, Vec<i64>, Vec<i64>)> = vec![
            (
                "nothing queued",
                vec![b(1, Complete, Serial)],
                vec![],
                vec![],
            ),
            (
                "serial: lowest number first",
                vec![b(2, New, Serial), b(1, New, Serial)],
                vec![1],
                vec![],
            ),
            (
                "serial: waits for a running build",
                vec![b(1, Running, Serial), b(2, New, Serial)],
                vec![],
                vec![],
            ),
            (
                "serial: waits for a pending build",
                vec![b(1, Pending, Serial), b(2, New, Serial)],
                vec![],
                vec![],
            ),
            (
                "serial: after terminal builds",
                vec![
                    b(1, Failed, Serial),
                    b(2, Cancelled, Serial),
                    b(3, New, Serial),
                ],
                vec![3],
                vec![],
            ),
            (
                "serial: waits for a running parallel build",
                vec![b(1, Running, Parallel), b(2, New, Serial)],
                vec![],
                vec![],
            ),
            (
                "latest-only: cancels older queued",
                vec![
                    b(1, New, SerialLatestOnly),
                    b(2, New, SerialLatestOnly),
                    b(3, New, SerialLatestOnly),
                ],
                vec![3],
                vec![1, 2],
            ),
            (
                "latest-only: cancels queued, waits for running",
                vec![
                    b(1, Running, SerialLatestOnly),
                    b(2, New, SerialLatestOnly),
                    b(3, New, SerialLatestOnly),
                ],
                vec![],
                vec![2],
            ),
            (
                "latest-only: never cancels a running build",
                vec![b(1, Running, SerialLatestOnly), b(2, New, SerialLatestOnly)],
                vec![],
                vec![],
            ),
            (
                "parallel: all at once",
                vec![
                    b(1, New, Parallel),
                    b(2, New, Parallel),
                    b(3, New, Parallel),
                ],
                vec![1, 2, 3],
                vec![],
            ),
            (
                "parallel: beside running parallel",
                vec![b(1, Running, Parallel), b(2, New, Parallel)],
                vec![2],
                vec![],
            ),
            (
                "parallel: never beside a running serial",
                vec![b(1, Running, Serial), b(2, New, Parallel)],
                vec![],
                vec![],
            ),
            (
                "parallel: stops at a queued serial",
                vec![b(1, New, Parallel), b(2, New, Serial), b(3, New, Parallel)],
                vec![1],
                vec![],
            ),
            (
                "cancel requested while queued",
                vec![b(1, Running, Serial), b(2, New, Serial), cancelled.clone()],
                vec![],
                vec![3],
            ),
            (
                "cancel requested frees the queue",
                vec![cancelled, b(4, New, Serial)],
                vec![4],
                vec![3],
            ),
        ];
        for (name, builds, start, cancel) in cases {
            let got = decide(&builds);
            assert_eq!(got.start, names(&start), "{name}: start");
            let mut got_cancel = got.cancel.clone();
            got_cancel.sort();
            assert_eq!(got_cancel, names(&cancel), "{name}: cancel");
        }
    }
}
