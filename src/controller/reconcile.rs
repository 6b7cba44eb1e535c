//! What every reconcile does first, and what happens when one fails.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::Resource;

use super::context::{Context, Error, Metrics};
use crate::api::Build;

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

/// Retries failed reconciles with a short backoff (conflicts sooner).
pub(crate) fn error_policy<K: Resource<DynamicType = ()>>(
    _object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    Metrics::inc(&ctx.metrics.reconcile_failures);
    tracing::debug!(kind = %K::kind(&()), category = error.category(), %error, "reconcile failed");
    match error {
        Error::Conflict(_) => {
            Action::requeue(Duration::from_millis(50).min(ctx.settings.retry_after))
        }
        _ => Action::requeue(ctx.settings.retry_after),
    }
}
