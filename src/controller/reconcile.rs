//! What every reconcile does first, and what happens when one fails: the failure is counted
//! by category, logged at `warn` and published as a Warning Event on the object with the API's
//! message (both at most once a minute per object; conflicts, which are expected races, only at
//! `debug`), and the reconcile is retried.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::context::{Context, Error};
use super::events::EventType;
use crate::api::Build;

/// How often one object's failing reconcile is logged at `warn` and published as an Event.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// Past this many objects, entries older than [`REPORT_EVERY`] are forgotten.
const FAILURE_LOG_PRUNE_AT: usize = 1024;

/// How long a reconcile waits for the caches to sync before it looks again.
const UNSYNCED_RETRY: Duration = Duration::from_millis(100);

/// The checks every reconcile makes before deciding anything: an object being deleted is left
/// alone, and nothing is decided before every cache has synced (a restarted controller must see
/// every Build and Pod, so a Pod missing from an unsynced cache never fails a build). `Some` is
/// the action to return at once.
pub(crate) fn preamble<K: Resource>(object: &K, ctx: &Context) -> Option<Action> {
    if object.meta().deletion_timestamp.is_some() {
        return Some(Action::await_change());
    }
    if !ctx.ready.load(Ordering::Relaxed) {
        return Some(Action::requeue(UNSYNCED_RETRY));
    }
    None
}

/// Decide only from a cache that shows the controller's own writes: when one of `builds` is at a
/// version the controller already replaced, the action that waits for its watch event.
pub(crate) fn await_own_writes<'a>(
    ctx: &Context,
    builds: impl IntoIterator<Item = &'a Build>,
) -> Option<Action> {
    builds
        .into_iter()
        .find_map(|b| ctx.superseded.stale_for(b))
        .map(Action::requeue)
}

/// The reconciler label of a kind: `build`, `buildconfig` or `imagestream`.
pub(crate) fn controller_of(kind: &str) -> &'static str {
    match kind {
        "Build" => "build",
        "ImageStream" => "imagestream",
        _ => "buildconfig",
    }
}

/// When each object's failure was last reported, so a reconcile failing every two seconds is
/// reported once a minute.
#[derive(Default)]
pub(crate) struct FailureLog {
    last: Mutex<HashMap<String, Instant>>,
}

impl FailureLog {
    /// Whether a failure of `key` at `now` should be reported (and records it when so).
    pub(crate) fn should_report(&self, key: &str, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last
            .get(key)
            .is_some_and(|at| now.duration_since(*at) < REPORT_EVERY)
        {
            return false;
        }
        if last.len() >= FAILURE_LOG_PRUNE_AT {
            last.retain(|_, at| now.duration_since(*at) < REPORT_EVERY);
        }
        last.insert(key.to_string(), now);
        true
    }
}

/// Counts, reports and retries a failed reconcile (conflicts sooner).
pub(crate) fn error_policy<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let kind = K::kind(&());
    let category = error.category();
    ctx.metrics.reconcile_failed(controller_of(&kind), category);
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let key = format!("{kind}/{namespace}/{name}");
    if matches!(error, Error::Conflict(_)) {
        tracing::debug!(%kind, namespace, name, category, %error, "reconcile conflicted; retrying");
    } else if ctx.failures.should_report(&key, Instant::now()) {
        tracing::warn!(%kind, namespace, name, category, %error, "reconcile failed; retrying");
        let regarding = object.object_ref(&());
        let events = ctx.events.clone();
        let note = error.to_string();
        tokio::spawn(async move {
            if let Err(err) = events
                .publish(&regarding, EventType::Warning, "ReconcileFailed", note)
                .await
            {
                tracing::debug!(%err, "cannot publish the reconcile failure event");
            }
        });
    } else {
        tracing::debug!(%kind, namespace, name, category, %error, "reconcile failed again; retrying");
    }
    match error {
        Error::Conflict(_) => {
            Action::requeue(Duration::from_millis(50).min(ctx.settings.retry_after))
        }
        _ => Action::requeue(ctx.settings.retry_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_object_is_reported_once_a_minute() {
        let log = FailureLog::default();
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let reported: Vec<bool> = [
            (0, "a"),
            (2, "a"),
            (2, "b"),
            (59, "a"),
            (61, "a"),
            (62, "b"),
        ]
        .iter()
        .map(|(t, key)| log.should_report(key, at(*t)))
        .collect();
        assert_eq!(reported, [true, false, true, false, true, true]);
    }
}
