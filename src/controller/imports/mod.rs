//! The ImageStream reconciler: imports. A spec tag whose `from` is a `DockerImage` gets the digest
//! its registry serves (with the namespace's pull secrets, `secrets`), once, and again every
//! interval with `importPolicy.scheduled`; a `reference: true` tag points at its pull spec without
//! asking a registry; a tag from another ImageStreamTag or ImageStreamImage follows that image.
//! Each outcome becomes the tag's current TagEvent, or its `ImportSuccess=False` condition with
//! the registry's message. ImageChange triggers then fire on the new TagEvent like on a pushed
//! image. `decide` holds the pure decisions.

pub(crate) mod decide;
pub(crate) mod secrets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use serde_json::Value;

use self::decide::{
    apply, import_due, imported_reference, source_of, Attempt, Due, Outcome, Source,
};
use super::build::pod::DEFAULT_SERVICE_ACCOUNT;
use super::build_config::access::{Access as LayerAccess, AccessCheck, Purpose};
use super::build_config::start::layers_allowed;
use super::context::{api_error, Context, Error};
use super::reconcile::preamble;
use crate::api::current_image;
use crate::api::image_stream::{ImageStreamStatus, IMPORT_REQUEST_ANNOTATION};
use crate::api::{find_image, ImageStream, TagEvent};
use crate::registry::auth;
use crate::registry::digest::{self, Access};

/// How long one registry request of an import may take.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a tag that follows another stream's image without one yet looks again.
const PENDING_RECHECK: Duration = Duration::from_secs(10);
/// The reason of the condition of a tag whose `from` kiln cannot follow.
const INVALID: &str = "InvalidImageReference";

/// A tag's identity: namespace, stream, tag.
type TagKey = (String, String, String);

/// The last import of each tag, in memory: a restarted controller imports scheduled tags once at
/// once and leaves the others as their status shows them.
#[derive(Default)]
pub(crate) struct ImportLog {
    attempts: Mutex<HashMap<TagKey, Attempt>>,
}

impl ImportLog {
    fn get(&self, key: &TagKey) -> Option<Attempt> {
        self.lock().get(key).cloned()
    }

    fn record(&self, key: TagKey, attempt: Attempt) {
        self.lock().insert(key, attempt);
    }

    /// Forgets the tags of `namespace/stream` not in `tags`.
    fn retain(&self, namespace: &str, stream: &str, tags: &[&str]) {
        self.lock()
            .retain(|(n, s, t), _| n != namespace || s != stream || tags.contains(&t.as_str()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TagKey, Attempt>> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reconciles one ImageStream's imports.
#[tracing::instrument(skip_all, fields(namespace = is.metadata.namespace.as_deref().unwrap_or_default(), name = is.metadata.name.as_deref().unwrap_or_default()))]
pub(crate) async fn reconcile(is: Arc<ImageStream>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile("imagestream");
    if let Some(action) = preamble(&*is, &ctx) {
        return Ok(action);
    }
    let namespace = is.namespace().unwrap_or_default();
    let name = is.name_any();
    let tags: Vec<&str> = is.spec.tags.iter().map(|t| t.name.as_str()).collect();
    ctx.imports.retain(&namespace, &name, &tags);
    let before = is.status.clone().unwrap_or_default();
    let request = is.annotations().get(IMPORT_REQUEST_ANNOTATION).cloned();
    let requested = request.is_some() && request != before.observed_import_request;
    let generation = is.metadata.generation.unwrap_or(1);
    let now = Instant::now();
    let mut status = before.clone();
    let mut recheck: Option<Instant> = None;
    let mut soon = |at: Instant| recheck = Some(recheck.map_or(at, |r| r.min(at)));
    let mut pull: Option<Value> = None;
    for tag in &is.spec.tags {
        let key = (namespace.clone(), name.clone(), tag.name.clone());
        let outcome = match source_of(tag, &name, &namespace) {
            Ok(None) => continue,
            Err(message) => Outcome::Failed {
                reason: INVALID.into(),
                message,
            },
            Ok(Some(Source::Reference(image))) => Outcome::Image {
                reference: image,
                digest: String::new(),
            },
            Ok(Some(source @ (Source::Tag(_) | Source::Image(_)))) => {
                match refused_follow(&ctx, &namespace, &source).await? {
                    Some(refused) => refused,
                    None => {
                        let found = followed(&ctx, &name, &namespace, &status, &source);
                        if found.is_none() {
                            soon(now + PENDING_RECHECK);
                        }
                        found.map_or(Outcome::Pending, |e| Outcome::Image {
                            reference: e.docker_image_reference,
                            digest: e.image,
                        })
                    }
                }
            }
            Ok(Some(
                ref source @ Source::Import {
                    ref image,
                    insecure,
                    scheduled,
                },
            )) => {
                let last = ctx.imports.get(&key);
                let current = current_image(&before, &tag.name);
                match import_due(
                    source,
                    last.as_ref(),
                    current,
                    requested,
                    now,
                    ctx.settings.import_interval,
                ) {
                    Due::Now => {
                        if pull.is_none() {
                            pull = Some(secrets::pull_config(&ctx.client, &namespace).await?);
                        }
                        let outcome = import(&ctx, image, insecure, pull.as_ref()).await;
                        log_outcome(&name, &tag.name, image, &outcome);
                        ctx.imports.record(
                            key,
                            Attempt {
                                key: source.key(),
                                at: now,
                                outcome: outcome.clone(),
                            },
                        );
                        if scheduled {
                            soon(now + ctx.settings.import_interval);
                        }
                        outcome
                    }
                    Due::At(at) => {
                        soon(at);
                        last.map_or(Outcome::Pending, |a| a.outcome)
                    }
                    // Imported by this controller (its outcome is applied again, so a write
                    // lost to a conflict is made by the retry), or before it started.
                    Due::Never => last
                        .filter(|a| a.key == source.key())
                        .map_or(Outcome::Pending, |a| a.outcome),
                }
            }
        };
        apply(
            &mut status,
            &tag.name,
            &outcome,
            generation,
            Timestamp::now(),
            ctx.settings.tag_history_limit,
        );
    }
    if requested {
        status.observed_import_request = request;
    }
    if status != before {
        write_status(&ctx, &is, status).await?;
    }
    Ok(recheck.map_or_else(Action::await_change, |at| {
        Action::requeue(at.saturating_duration_since(Instant::now()))
    }))
}

/// Another namespace's stream is followed only when the namespace's `builder` ServiceAccount (the
/// account its builds pull with) may pull from it, as a build from that stream needs: OpenShift
/// checks the user who writes the tag, whom a controller cannot know. `Some` is the refusal.
async fn refused_follow(
    ctx: &Context,
    namespace: &str,
    source: &Source,
) -> Result<Option<Outcome>, Error> {
    let (source_ns, stream) = match source {
        Source::Tag(t) => (&t.namespace, &t.stream),
        Source::Image(i) => (&i.namespace, &i.stream),
        _ => return Ok(None),
    };
    if source_ns == namespace {
        return Ok(None);
    }
    let check = AccessCheck {
        purpose: Purpose::From,
        access: LayerAccess::Pull,
        namespace: source_ns.clone(),
        stream: stream.clone(),
    };
    if layers_allowed(
        ctx,
        namespace,
        DEFAULT_SERVICE_ACCOUNT,
        check.access.verb(),
        source_ns,
        stream,
    )
    .await?
    {
        return Ok(None);
    }
    let (_, message) = check.refusal(namespace, DEFAULT_SERVICE_ACCOUNT);
    Ok(Some(Outcome::Failed {
        reason: "Forbidden".into(),
        message,
    }))
}

/// The image a tag from another ImageStreamTag or ImageStreamImage points at: from `status`
/// (this stream, as being updated) or the cache (another stream).
fn followed(
    ctx: &Context,
    name: &str,
    namespace: &str,
    status: &ImageStreamStatus,
    source: &Source,
) -> Option<TagEvent> {
    let (source_ns, stream) = match source {
        Source::Tag(t) => (&t.namespace, &t.stream),
        Source::Image(i) => (&i.namespace, &i.stream),
        _ => return None,
    };
    let cached;
    let source_status = if source_ns == namespace && stream == name {
        status
    } else {
        cached = ctx
            .image_streams
            .get(&ObjectRef::new(stream).within(source_ns))?;
        cached.status.as_ref()?
    };
    match source {
        Source::Tag(t) => current_image(source_status, &t.tag).cloned(),
        Source::Image(i) => find_image(source_status, &i.digest).cloned(),
        _ => None,
    }
}

/// Asks `image`'s registry for its digest with the namespace's pull credentials for that host;
/// plain HTTP when the tag says `insecure` or the controller lists the registry as insecure.
async fn import(ctx: &Context, image: &str, insecure: bool, pull: Option<&Value>) -> Outcome {
    let host = auth::registry_of(image);
    let access = Access {
        insecure: insecure || ctx.settings.pod.insecure_registries.contains(&host),
        credentials: pull.and_then(|c| auth::credentials_for(c, &host)),
        bearer: None,
        timeout: Some(IMPORT_TIMEOUT),
    };
    match digest::manifest_digest(image, &access).await {
        Ok(digest) => match imported_reference(image, &digest) {
            Some(reference) => Outcome::Image { reference, digest },
            None => Outcome::Failed {
                reason: INVALID.into(),
                message: format!("{image:?} is not an image reference"),
            },
        },
        Err(e) => Outcome::Failed {
            reason: e.reason().as_str().into(),
            message: e.to_string(),
        },
    }
}

fn log_outcome(stream: &str, tag: &str, image: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Image { digest, .. } => {
            tracing::info!(stream, tag, image, digest, "imported");
        }
        Outcome::Failed { reason, message } => {
            tracing::info!(stream, tag, image, reason, message, "import failed");
        }
        Outcome::Pending => {}
    }
}

/// Replaces the ImageStream's status, guarded by the resourceVersion it was decided from.
async fn write_status(
    ctx: &Context,
    is: &ImageStream,
    status: ImageStreamStatus,
) -> Result<(), Error> {
    let mut updated = is.clone();
    updated.status = Some(status);
    let api: Api<ImageStream> =
        Api::namespaced(ctx.client.clone(), &is.namespace().unwrap_or_default());
    api.replace_status(&is.name_any(), &PostParams::default(), &updated)
        .await
        .map_err(api_error(format!(
            "updating ImageStream {} status",
            is.name_any()
        )))?;
    Ok(())
}
