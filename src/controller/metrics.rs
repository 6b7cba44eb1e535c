//! The controller's metrics, served on `/metrics` in the OpenMetrics text format through the
//! Prometheus project's `prometheus-client`. Every label takes values from a bounded set (kinds,
//! phases, OpenShift's reasons, run policies, error categories, watch names).

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::{BuildPhase, BuildStatus, RunPolicy};

/// The reconciler a series is about.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

/// A failed reconcile: its reconciler and the error's category.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    controller: &'static str,
    category: &'static str,
}

/// A finished build: its phase and reason (empty for Complete).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FinishedLabels {
    phase: &'static str,
    reason: &'static str,
}

/// A build's phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

/// A run policy.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    run_policy: &'static str,
}

/// One of the controller's watches.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchLabels {
    watch: &'static str,
}

/// Seconds a build may take, from seconds to hours.
const BUILD_DURATION_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
];
/// Seconds a reconcile may take, from a tenth of a millisecond to ten seconds.
const RECONCILE_DURATION_BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0, 10.0,
];

/// Every series the controller serves.
pub(crate) struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    reconcile_duration: Family<ControllerLabels, Histogram>,
    reconcile_failures: Family<FailureLabels, Counter>,
    builds_created: Counter,
    pods_created: Counter,
    builds_finished: Family<FinishedLabels, Counter>,
    build_duration: Family<PhaseLabels, Histogram>,
    builds_waiting: Family<PolicyLabels, Gauge>,
    tag_events: Counter,
    watch_restarts: Family<WatchLabels, Counter>,
    objects_skipped: Family<WatchLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kiln");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        let reconcile_duration = Family::<ControllerLabels, Histogram>::new_with_constructor(
            reconcile_histogram as fn() -> Histogram,
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles took",
            reconcile_duration.clone(),
        );
        let reconcile_failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by error category (each is retried)",
            reconcile_failures.clone(),
        );
        let builds_created = Counter::default();
        registry.register(
            "builds_created",
            "Builds created by triggers",
            builds_created.clone(),
        );
        let pods_created = Counter::default();
        registry.register(
            "build_pods_created",
            "Build pods created",
            pods_created.clone(),
        );
        let builds_finished = Family::<FinishedLabels, Counter>::default();
        registry.register(
            "builds_finished",
            "Builds that finished, by phase and reason",
            builds_finished.clone(),
        );
        let build_duration = Family::<PhaseLabels, Histogram>::new_with_constructor(
            build_histogram as fn() -> Histogram,
        );
        registry.register(
            "build_duration_seconds",
            "How long finished builds took, by phase",
            build_duration.clone(),
        );
        let builds_waiting = Family::<PolicyLabels, Gauge>::default();
        registry.register(
            "builds_waiting",
            "New builds waiting to start, by their BuildConfig's run policy",
            builds_waiting.clone(),
        );
        let tag_events = Counter::default();
        registry.register("tag_events", "TagEvents recorded", tag_events.clone());
        let watch_restarts = Family::<WatchLabels, Counter>::default();
        registry.register(
            "watch_restarts",
            "Watches that failed and were restarted after a backoff",
            watch_restarts.clone(),
        );
        let objects_skipped = Family::<WatchLabels, Counter>::default();
        registry.register(
            "objects_skipped",
            "Watched objects that did not decode as their kind and were skipped",
            objects_skipped.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_duration,
            reconcile_failures,
            builds_created,
            pods_created,
            builds_finished,
            build_duration,
            builds_waiting,
            tag_events,
            watch_restarts,
            objects_skipped,
        }
    }
}

fn reconcile_histogram() -> Histogram {
    Histogram::new(RECONCILE_DURATION_BUCKETS)
}

fn build_histogram() -> Histogram {
    Histogram::new(BUILD_DURATION_BUCKETS)
}

impl Metrics {
    /// Counts one reconcile of `controller`; its duration is observed when the guard drops.
    pub(crate) fn reconcile(&self, controller: &'static str) -> ReconcileTimer<'_> {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        ReconcileTimer {
            metrics: self,
            labels,
            started: Instant::now(),
        }
    }

    /// Counts a failed reconcile of `controller`.
    pub(crate) fn reconcile_failed(&self, controller: &'static str, category: &'static str) {
        self.reconcile_failures
            .get_or_create(&FailureLabels {
                controller,
                category,
            })
            .inc();
    }

    /// Counts a Build created by a trigger.
    pub(crate) fn build_created(&self) {
        self.builds_created.inc();
    }

    /// Counts a build Pod created.
    pub(crate) fn pod_created(&self) {
        self.pods_created.inc();
    }

    /// Counts a recorded TagEvent.
    pub(crate) fn tag_event(&self) {
        self.tag_events.inc();
    }

    /// Counts a watch failure (the watch restarts after a backoff).
    pub(crate) fn watch_restarted(&self, watch: &'static str) {
        self.watch_restarts
            .get_or_create(&WatchLabels { watch })
            .inc();
    }

    /// Counts a watched object that did not decode and was skipped.
    pub(crate) fn object_skipped(&self, watch: &'static str) {
        self.objects_skipped
            .get_or_create(&WatchLabels { watch })
            .inc();
    }

    /// Counts a build that reached a terminal phase, with its reason and duration.
    pub(crate) fn build_finished(&self, status: &BuildStatus) {
        let phase = status.phase.as_str();
        let reason = status.reason.map(|r| r.as_str()).unwrap_or_default();
        self.builds_finished
            .get_or_create(&FinishedLabels { phase, reason })
            .inc();
        if let Some(nanos) = status.duration.filter(|d| *d >= 0) {
            let seconds = Duration::from_nanos(u64::try_from(nanos).unwrap_or_default());
            self.build_duration
                .get_or_create(&PhaseLabels { phase })
                .observe(seconds.as_secs_f64());
        }
    }

    /// The metrics' families in the OpenMetrics text format, without the closing `# EOF`, with
    /// `waiting` (New builds per run policy, counted from the cache at scrape time) as the
    /// waiting gauge.
    pub(crate) fn encode_families(&self, waiting: &[(RunPolicy, i64)], out: &mut String) {
        for policy in [
            RunPolicy::Serial,
            RunPolicy::SerialLatestOnly,
            RunPolicy::Parallel,
        ] {
            let count = waiting
                .iter()
                .filter(|(p, _)| *p == policy)
                .map(|(_, n)| *n)
                .sum();
            self.builds_waiting
                .get_or_create(&PolicyLabels {
                    run_policy: policy.as_str(),
                })
                .set(count);
        }
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }
}

/// Observes a reconcile's duration when dropped (however the reconcile ends).
pub(crate) struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    labels: ControllerLabels,
    started: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .reconcile_duration
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// Counts the New builds among `builds` per run policy (what the waiting gauge shows).
pub(crate) fn waiting_per_policy<'a>(
    builds: impl IntoIterator<Item = (BuildPhase, RunPolicy)> + 'a,
) -> Vec<(RunPolicy, i64)> {
    let mut counts: Vec<(RunPolicy, i64)> = Vec::new();
    for (phase, policy) in builds {
        if phase != BuildPhase::New {
            continue;
        }
        match counts.iter_mut().find(|(p, _)| *p == policy) {
            Some((_, n)) => *n += 1,
            None => counts.push((policy, 1)),
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::StatusReason;

    #[test]
    fn finished_builds_are_counted_by_phase_and_reason_with_their_duration() {
        let metrics = Metrics::default();
        let finished = |phase, reason, seconds: i64| BuildStatus {
            phase,
            reason,
            duration: Some(seconds * 1_000_000_000),
            ..BuildStatus::default()
        };
        metrics.build_finished(&finished(BuildPhase::Complete, None, 3));
        metrics.build_finished(&finished(
            BuildPhase::Failed,
            Some(StatusReason::DockerBuildFailed),
            20,
        ));
        metrics.build_finished(&finished(
            BuildPhase::Error,
            Some(StatusReason::BuildPodDeleted),
            2,
        ));
        let waiting = waiting_per_policy([
            (BuildPhase::New, RunPolicy::Serial),
            (BuildPhase::New, RunPolicy::Serial),
            (BuildPhase::Running, RunPolicy::Serial),
            (BuildPhase::New, RunPolicy::Parallel),
        ]);
        let mut text = String::new();
        metrics.encode_families(&waiting, &mut text);
        for line in [
            "kiln_builds_finished_total{phase=\"Complete\",reason=\"\"} 1",
            "kiln_builds_finished_total{phase=\"Failed\",reason=\"DockerBuildFailed\"} 1",
            "kiln_builds_finished_total{phase=\"Error\",reason=\"BuildPodDeleted\"} 1",
            "kiln_build_duration_seconds_count{phase=\"Failed\"} 1",
            "kiln_build_duration_seconds_sum{phase=\"Failed\"} 20.0",
            "kiln_build_duration_seconds_bucket{le=\"5.0\",phase=\"Complete\"} 1",
            "kiln_builds_waiting{run_policy=\"Serial\"} 2",
            "kiln_builds_waiting{run_policy=\"Parallel\"} 1",
            "kiln_builds_waiting{run_policy=\"SerialLatestOnly\"} 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn reconciles_are_timed_and_failures_counted_by_category() {
        let metrics = Metrics::default();
        drop(metrics.reconcile("build"));
        metrics.reconcile_failed("buildconfig", "Forbidden");
        metrics.watch_restarted("pods");
        let mut text = String::new();
        metrics.encode_families(&[], &mut text);
        for line in [
            "kiln_reconciles_total{controller=\"build\"} 1",
            "kiln_reconcile_duration_seconds_count{controller=\"build\"} 1",
            "kiln_reconcile_failures_total{controller=\"buildconfig\",category=\"Forbidden\"} 1",
            "kiln_watch_restarts_total{watch=\"pods\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
